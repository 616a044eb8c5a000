"""A real parley-server for the tests: 127.0.0.1 only, a fresh data directory,
every wait bounded."""

import os
import re
import signal
import subprocess
import tempfile
import threading
import time

_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


class ParleyServer:
    """Starts parley-server (keygen, then --listen 127.0.0.1:0) and mints tokens.

        with ParleyServer(path) as server:
            token = server.mint_token("alice")
            url = server.url
    """

    def __init__(self, binary, start_timeout=20.0):
        self.binary = binary
        self.start_timeout = start_timeout
        self.work = tempfile.mkdtemp(prefix="parley-py-")
        self.key = os.path.join(self.work, "server.key")
        self.process = None
        self.port = None
        self._lines = []

    @property
    def url(self):
        return "ws://127.0.0.1:%d" % self.port

    def _run(self, *args, timeout=20.0):
        done = subprocess.run([self.binary, *args], capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError("parley-server %s exited with %d: %s"
                               % (args[0], done.returncode, done.stderr.strip()))
        return done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""

    def mint_token(self, user):
        return self._run("mint-token", "--key", self.key, "--user", user)

    def keygen(self):
        """Writes the server's key (start() does it too); then mint_token works."""
        if not os.path.exists(self.key):
            self._run("keygen", "--out", self.key)
        return self

    def start(self):
        self.keygen()
        self._log = open(os.path.join(self.work, "server.log"), "w")
        self.process = subprocess.Popen(
            [self.binary, "--listen", "127.0.0.1:0", "--data", os.path.join(self.work, "data"),
             "--key", self.key],
            stdout=subprocess.PIPE, stderr=self._log, text=True)
        found = threading.Event()

        def read():  # also drains stdout until the server ends
            for line in self.process.stdout:
                self._lines.append(line)
                m = _LISTENING.search(line)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(self.start_timeout):
            self.stop()
            raise RuntimeError("parley-server did not say where it listens within %.0f s: %r"
                               % (self.start_timeout, "".join(self._lines)))
        return self

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None
        self.process = None

    def log_tail(self, lines=30):
        try:
            with open(os.path.join(self.work, "server.log")) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        import shutil
        shutil.rmtree(self.work, ignore_errors=True)
        return False
