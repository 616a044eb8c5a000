"""App-supplied transports: how frames travel, written in Python.

Subclass Transport and implement open(), send() and close(); report back with
report_open(), report_closed() and deliver_frame(). Pass an instance as
Client(transport=...). One transport serves one client.

The contract (parley.h, "App-supplied transport"):
- open/send/close are called on the client's internal thread, one at a time.
  They must return quickly: hand the work to your own I/O (a thread, an
  asyncio loop) and return. Do not close the Client from them.
- open(url, subprotocol): connect to url offering the WebSocket subprotocol
  (always "parley.v1" today); then report_open() or report_closed(...).
  At most one connection at a time.
- send(frame): one text frame (a str); frames must leave in the order given.
- close(code, reason): send a close frame; report_closed(...) once closed.
- deliver_frame(text) for each complete text frame received, report_open()
  and report_closed() may be called from any thread, including from inside
  open/send/close: they only queue and never block on the network.
- Once the Client is closed these calls are dropped (the C handle is gone),
  so a late callback of your socket is harmless.
- Client.close() from inside open/send/close raises InvalidArgumentError;
  shutdown() is called after the C client is freed, never on its threads.

Every frame is a UTF-8 JSON text frame (docs/protocol.md, "Transport").
"""

import contextlib
import ctypes
import threading

from . import _lib


class Transport:
    """Base class of an app-supplied transport."""

    def __init__(self):
        self._handle = None      # parley_transport *, from the latest open
        self._lock = threading.Lock()
        self._detached = False

    # ---- to implement -----------------------------------------------------------

    def open(self, url, subprotocol):
        raise NotImplementedError

    def send(self, frame):
        raise NotImplementedError

    def close(self, code, reason):
        raise NotImplementedError

    def shutdown(self):
        """Called by Client.close() after the client is freed: release
        threads and sockets. Optional."""

    # ---- to call (any thread) ------------------------------------------------------

    def deliver_frame(self, frame):
        """One complete text frame received (str or UTF-8 bytes). Returns
        False when dropped (no client attached any more)."""
        data = frame.encode("utf-8") if isinstance(frame, str) else bytes(frame)
        with self._lock:
            if self._handle is None:
                return False
            _lib.lib().transport_deliver_frame(self._handle, data, len(data))
            return True

    def report_open(self):
        """The connection is open; frames may be sent."""
        return self._set_state(_lib.TRANSPORT_STATE_OPEN, 0, None)

    def report_closed(self, code=1006, reason=""):
        """The connection closed or could not be opened: `code` is the
        WebSocket close code (0 or 1006 for a network failure)."""
        return self._set_state(_lib.TRANSPORT_STATE_CLOSED, int(code),
                               _lib.enc(reason or ""))

    def _set_state(self, state, code, reason):
        with self._lock:
            if self._handle is None:
                return False
            _lib.lib().transport_set_state(self._handle, state, code, reason)
            return True

    # ---- glue to the C callbacks (used by Client) ------------------------------------

    def _callbacks(self, scope=contextlib.nullcontext):
        """The parley_transport_callbacks struct. The CFUNCTYPE thunks are
        kept on self, and the Client keeps self in a module-level registry
        until parley_client_free has returned, so C never calls a freed
        thunk. `scope()` is entered around each callback (the Client marks
        its thread there, to refuse a close() from inside)."""

        def on_open(handle, url, subprotocol, user_data):
            try:
                with scope():
                    with self._lock:
                        if self._detached:
                            return
                        self._handle = handle
                    self.open(_lib.dec(url), _lib.dec(subprotocol))
            except BaseException as e:  # never let an exception reach C
                self._callback_failed("open", e)
                self.report_closed(1006, "transport open failed: %s" % e)

        def on_send(frame, length, user_data):
            try:
                with scope():
                    self.send(ctypes.string_at(frame, length).decode("utf-8", "replace"))
            except BaseException as e:
                self._callback_failed("send", e)

        def on_close(code, reason, user_data):
            try:
                with scope():
                    self.close(int(code), _lib.dec(reason))
            except BaseException as e:
                self._callback_failed("close", e)
                self.report_closed(1006, "transport close failed: %s" % e)

        self._thunks = (_lib.TRANSPORT_OPEN(on_open), _lib.TRANSPORT_SEND(on_send),
                        _lib.TRANSPORT_CLOSE(on_close))
        cb = _lib.parley_transport_callbacks()
        cb.version = _lib.TRANSPORT_CALLBACKS_VERSION
        cb.user_data = None
        cb.open, cb.send, cb.close = self._thunks
        self._struct = cb
        return cb

    def _detach(self):
        """Called before the client is freed: no more calls into C."""
        with self._lock:
            self._detached = True
            self._handle = None

    def _callback_failed(self, what, error):
        import sys
        import traceback
        print("parley: transport %s raised %r" % (what, error), file=sys.stderr)
        traceback.print_exc()
