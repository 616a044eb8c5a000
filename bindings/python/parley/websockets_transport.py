"""An app-supplied transport written in Python on the `websockets` package.

The SDK calls open/send/close (see parley.Transport for the contract); this
class runs an asyncio event loop on a thread of its own, does the WebSocket
I/O there, and hands what happens back to the SDK with deliver_frame() and
the state helpers, from that thread.

    client = parley.Client(server_url=url, token=token, data_dir=path,
                           transport=parley.WebSocketsTransport())
"""

import asyncio
import threading

from .transport import Transport

try:
    import websockets
except ImportError:  # pragma: no cover - reported when used
    websockets = None


class WebSocketsTransport(Transport):
    """A Transport on `websockets` (Debian: python3-websockets), threaded.

    open_timeout: seconds to wait for the WebSocket handshake.
    max_size: the largest frame accepted from the server (the protocol asks
    for at least 4 MiB).
    ping_interval: WebSocket keepalive pings, in seconds (None: none).
    """

    def __init__(self, open_timeout=10.0, max_size=8 << 20, ping_interval=20.0):
        if websockets is None:
            raise ImportError("WebSocketsTransport needs the websockets package "
                              "(apt-get install python3-websockets)")
        super().__init__()
        self.open_timeout = open_timeout
        self.max_size = max_size
        self.ping_interval = ping_interval
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="parley-websockets",
                                        daemon=True)
        self._thread.start()
        self._conn = None      # the current connection task's state, loop thread only
        self._generation = 0   # counts open() calls; stale connections stay silent

    def _run_loop(self):
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    # ---- called by the SDK (any thread; must not block) ----------------------

    def open(self, url, subprotocol):
        self._loop.call_soon_threadsafe(self._start, url, subprotocol)

    def send(self, frame):
        self._loop.call_soon_threadsafe(self._queue_frame, frame)

    def close(self, code, reason):
        self._loop.call_soon_threadsafe(self._close, code, reason)

    def shutdown(self):
        """Stops the loop thread (after the client that used it is closed)."""
        if self._loop.is_closed():
            return
        if threading.current_thread() is self._thread:
            # Closed from our own loop thread (a report_* or deliver_frame
            # callback): cannot wait for ourselves; just stop the loop.
            self._generation += 1
            self._loop.stop()
            return

        async def stop_all():
            self._generation += 1
            conn, self._conn = self._conn, None
            if conn is not None:
                conn["task"].cancel()
                try:
                    await asyncio.wait_for(asyncio.shield(conn["task"]), 2.0)
                except BaseException:
                    pass

        try:
            fut = asyncio.run_coroutine_threadsafe(stop_all(), self._loop)
            fut.result(5.0)
        except Exception:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()

    # ---- on the loop thread ---------------------------------------------------

    def _start(self, url, subprotocol):
        self._generation += 1
        old, self._conn = self._conn, None
        if old is not None:
            old["task"].cancel()
        conn = {"queue": asyncio.Queue(), "ws": None, "closing": None,
                "generation": self._generation}
        conn["task"] = self._loop.create_task(self._connection(conn, url, subprotocol))
        self._conn = conn

    def _queue_frame(self, frame):
        if self._conn is not None:
            self._conn["queue"].put_nowait(frame)

    def _close(self, code, reason):
        conn = self._conn
        if conn is None:
            return
        conn["closing"] = (code, reason)
        conn["queue"].put_nowait(None)  # wakes the writer, which closes

    def _current(self, conn):
        return self._conn is conn and conn["generation"] == self._generation

    async def _connection(self, conn, url, subprotocol):
        try:
            ws = await websockets.connect(
                url, subprotocols=[subprotocol], open_timeout=self.open_timeout,
                max_size=self.max_size, ping_interval=self.ping_interval,
                compression=None)
        except asyncio.CancelledError:
            return
        except Exception as e:  # refused, unreachable, handshake failed, timed out
            if self._current(conn):
                self._conn = None
                self.report_closed(1006, "could not connect: %s" % e)
            return
        if not self._current(conn):
            await ws.close()
            return
        if ws.subprotocol != subprotocol:
            self._conn = None
            await ws.close(1002, "subprotocol")
            self.report_closed(1002, "the server did not accept subprotocol " + subprotocol)
            return
        conn["ws"] = ws
        self.report_open()
        reader = asyncio.ensure_future(self._reader(conn, ws))
        writer = asyncio.ensure_future(self._writer(conn, ws))
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            reader.cancel()
            writer.cancel()
            try:
                await asyncio.wait_for(ws.close(1001, "going away"), 2.0)
            except BaseException:
                pass
            return
        reader.cancel()
        writer.cancel()
        if conn["closing"] is not None:
            code, reason = conn["closing"]
            try:
                await asyncio.wait_for(ws.close(code, reason), 5.0)
            except Exception:
                pass
        else:
            try:
                await asyncio.wait_for(ws.close(), 2.0)
            except Exception:
                pass
        if self._current(conn):
            self._conn = None
            if conn["closing"] is not None:
                self.report_closed(conn["closing"][0], conn["closing"][1])
            else:
                code = ws.close_code or 1006
                reason = ws.close_reason or ""
                self.report_closed(code, reason or "connection lost")

    async def _reader(self, conn, ws):
        try:
            async for message in ws:
                if not self._current(conn):
                    return
                if isinstance(message, bytes):  # the protocol has text frames only
                    continue
                self.deliver_frame(message)
        except Exception:
            return

    async def _writer(self, conn, ws):
        queue = conn["queue"]
        while True:
            frame = await queue.get()
            if frame is None:
                return
            try:
                await ws.send(frame)
            except Exception:
                return
