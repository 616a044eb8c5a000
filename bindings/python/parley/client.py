"""parley.Client: the chat client over libparley's C ABI."""

import collections
import ctypes
import json
import threading
import time

from . import _lib, errors
from . import events as ev
from ._lib import c_int, c_i64, c_u64, c_void_p, check, enc, take_string

STATES = ("disconnected", "connecting", "authenticating", "syncing", "ready")
CHANNEL_KINDS = {"public": 0, "private": 1, "direct": 2, "broadcast": 3}
ROLES = {"owner": 0, "admin": 1, "moderator": 2, "member": 3, "read_only": 4}
PERMISSIONS = {"post": 0, "invite": 1, "remove": 2, "ban": 3, "mute": 4, "edit_meta": 5,
               "delete_others": 6, "pin": 7, "change_roles": 8}
NOTIFY_LEVELS = {"all": 0, "mentions": 1, "none": 2}
PRESENCE_MODES = {"online": 0, "away": 1, "invisible": 2}

_META_FIELDS = ("name", "topic", "description", "avatar_url", "data")


def _name_of(table, value):
    for k, v in table.items():
        if v == value:
            return k
    return value


def _enum(table, value, what):
    if isinstance(value, int) and value in table.values():
        return value
    try:
        return table[value]
    except KeyError:
        raise errors.InvalidArgumentError("unknown %s %r (one of %s)" % (
            what, value, ", ".join(table)), "invalid_argument") from None


def _meta_json(meta):
    fields = {}
    for k, v in meta.items():
        if k not in _META_FIELDS:
            raise errors.InvalidArgumentError("unknown channel meta field %r" % k,
                                              "invalid_meta")
        if v is None:
            continue
        if k == "data" and not isinstance(v, str):
            v = json.dumps(v)
        fields[k] = v
    return json.dumps(fields) if fields else None


def _ms(seconds):
    return int(round(seconds * 1000))


# ---- lifetime of what C may call back into ------------------------------------------
#
# C calls the listener's and the analytics callable's CFUNCTYPE wrappers and the
# transport's thunks on the client's own threads until parley_client_free has
# returned (on a thread that is not one of the client's). Those wrappers live
# on a _Core, and every _Core stays in _LIVE from before parley_client_create
# until parley_client_free has returned, so garbage collection of the Client
# or of the transport cannot free them while C may still call them.

_LIVE = set()
_LIVE_LOCK = threading.Lock()
_tls = threading.local()  # .cores: the _Cores whose callback this thread is running


def _in_callback_of(core):
    return any(c is core for c in getattr(_tls, "cores", ()))


class _CallbackScope:
    """Marks the current thread as running a callback of `core` (the
    listener, the analytics callable or a transport callback), so that
    close() there is refused."""

    def __init__(self, core):
        self.core = core

    def __enter__(self):
        stack = getattr(_tls, "cores", None)
        if stack is None:
            stack = _tls.cores = []
        stack.append(self.core)
        self.core.callback_threads.add(threading.get_ident())

    def __exit__(self, *exc):
        _tls.cores.pop()
        return False


def _closed_error():
    return errors.InvalidArgumentError("the client is closed", "closed")


class _Core:
    """The C handle and everything C calls back into, apart from the Client,
    plus the guard that keeps the handle alive during calls: every call
    taking the handle runs between enter() and leave(); close() marks the
    core closing, waits for the calls in flight, then frees."""

    def __init__(self, lib):
        self.lib = lib
        self.handle = None
        self.cond = threading.Condition(threading.Lock())
        self.inflight = 0
        self.closing = False
        self.freed = threading.Event()
        self.callback_threads = set()  # idents of threads that ran our callbacks
        self.on_event = None           # the listener's CFUNCTYPE wrapper
        self.on_analytics = None       # the analytics callable's CFUNCTYPE wrapper
        self.transport = None          # holds its CFUNCTYPE thunks
        self.transport_struct = None

    def enter(self):
        with self.cond:
            if self.closing or self.handle is None:
                raise _closed_error()
            self.inflight += 1
            return self.handle

    def leave(self):
        with self.cond:
            self.inflight -= 1
            if self.inflight == 0:
                self.cond.notify_all()

    def begin_close(self):
        """Marks the core closing; False when another close() got there first."""
        with self.cond:
            if self.closing:
                return False
            self.closing = True
            return True

    def finish_close(self):
        """Waits for the calls in flight, frees the handle (no C callback runs
        after that), then lets the callbacks go and shuts the transport down.
        Never on one of the client's own threads."""
        try:
            with self.cond:
                while self.inflight:
                    self.cond.wait()
                handle, self.handle = self.handle, None
            if self.transport is not None:
                self.transport._detach()
            if handle:
                self.lib.client_free(handle)
            with _LIVE_LOCK:
                _LIVE.discard(self)
            if self.transport is not None:
                self.transport.shutdown()
        finally:
            self.freed.set()


class _Guarded:
    """self._c.<fn>(...): the library function, called with the handle
    guarded (see _Core)."""

    def __init__(self, core):
        self._core = core

    def __getattr__(self, name):
        core = self._core

        def call(*args):
            core.enter()
            try:
                return getattr(core.lib, name)(*args)
            finally:
                core.leave()
        return call


class Client:
    """A Parley chat client: one account on one device, with its own cache.

        with parley.Client(server_url=url, token=token, data_dir="./alice") as c:
            c.wait_ready(10)
            c.wait_request(c.join("general"), 10)
            c.send("general", "hello")

    Calls return at once; results arrive as events (parley.events). Pull them
    with next_event(timeout), or pass listener= to get each one on the
    client's own thread. A failed call raises a parley.ParleyError subclass.
    Safe to use from several threads.

    analytics=callable receives each analytics event (docs/analytics.md) as a
    parley.AnalyticsEvent on the client's internal thread; it must return
    quickly, and calling the client from it raises InvalidArgumentError
    (reason "in_analytics_callback").

    Options (seconds for times): server_url, token, data_dir (required);
    device_id, transport (a parley.Transport; default the built-in
    WebSocket), auto_connect, notifications, presence, request_timeout,
    reconnect_base, reconnect_max, heartbeat_interval,
    dead_connection_timeout, cache_max_bytes, cache_max_messages,
    rebuild_corrupt_cache, sync_page_size, max_incoming_frame,
    document_name, document_color (how this user appears beside their cursor
    in a collaborative document), listener, analytics.
    """

    def __init__(self, server_url, token, data_dir, *, device_id=None, transport=None,
                 auto_connect=True, notifications=True, presence=True, request_timeout=None,
                 reconnect_base=None, reconnect_max=None, heartbeat_interval=None,
                 dead_connection_timeout=None, cache_max_bytes=None, cache_max_messages=None,
                 rebuild_corrupt_cache=False, sync_page_size=None, max_incoming_frame=None,
                 document_name=None, document_color=None, listener=None, analytics=None):
        L = _lib.lib()
        self._lib = L
        self._core = core = _Core(L)
        self._c = _Guarded(core)
        self._transport = transport
        self._listener = listener
        self._backlog = collections.deque()  # events taken by a wait_* and not matched
        self._backlog_lock = threading.Lock()
        self._closed = False

        o = _lib.parley_client_options()
        L.client_options_init(ctypes.byref(o))
        o.version = _lib.CLIENT_OPTIONS_VERSION
        # Keep the encoded strings alive through parley_client_create (it copies them).
        self._keep = [enc(server_url), enc(token), enc(str(data_dir)), enc(device_id),
                      enc(document_name), enc(document_color)]
        (o.server_url, o.token, o.data_dir, o.device_id, o.document_name,
         o.document_color) = self._keep
        o.auto_connect = int(bool(auto_connect))
        o.notifications = int(bool(notifications))
        o.presence = int(bool(presence))
        o.rebuild_corrupt_cache = int(bool(rebuild_corrupt_cache))
        if request_timeout is not None:
            o.request_timeout_ms = _ms(request_timeout)
        if reconnect_base is not None:
            o.reconnect_base_ms = _ms(reconnect_base)
        if reconnect_max is not None:
            o.reconnect_max_ms = _ms(reconnect_max)
        if heartbeat_interval is not None:
            o.heartbeat_interval_s = int(heartbeat_interval)
        if dead_connection_timeout is not None:
            o.dead_connection_timeout_s = int(dead_connection_timeout)
        if cache_max_bytes is not None:
            o.cache_max_bytes = cache_max_bytes
        if cache_max_messages is not None:
            o.cache_max_messages = cache_max_messages
        if sync_page_size is not None:
            o.sync_page_size = sync_page_size
        if max_incoming_frame is not None:
            o.max_incoming_frame = max_incoming_frame
        if listener is not None:
            # Refers to the listener and the core only, never to the Client.
            def on_event(event_ptr, user_data):
                try:
                    with _CallbackScope(core):
                        listener(_convert_event(event_ptr.contents))
                except BaseException:  # never let an exception reach C
                    import traceback
                    traceback.print_exc()
            core.on_event = _lib.EVENT_CALLBACK(on_event)
            o.on_event = core.on_event
        if analytics is not None:
            # Like the listener: refers to the callable and the core only.
            def on_analytics(json_text, user_data):
                try:
                    with _CallbackScope(core):
                        analytics(ev.parse_analytics(json_text))
                except BaseException:  # never let an exception reach C
                    import traceback
                    traceback.print_exc()
            core.on_analytics = _lib.ANALYTICS_CALLBACK(on_analytics)
            o.on_analytics = core.on_analytics
        if transport is not None:
            if getattr(transport, "_detached", False) or getattr(transport, "_in_use", False):
                raise errors.InvalidArgumentError(
                    "this transport already served a client: make a new one", "invalid_argument")
            transport._in_use = True
            core.transport = transport
            core.transport_struct = transport._callbacks(lambda: _CallbackScope(core))
            o.transport = ctypes.pointer(core.transport_struct)

        handle = c_void_p()
        with _LIVE_LOCK:
            _LIVE.add(core)
        try:
            check(L.client_create(ctypes.byref(handle), ctypes.byref(o)))
        except BaseException:
            with _LIVE_LOCK:
                _LIVE.discard(core)
            core.closing = True
            core.freed.set()
            raise
        core.handle = handle

    # ---- lifetime ------------------------------------------------------------------

    def close(self):
        """Closes the connection and stops the client (the outbox stays in the
        cache for the next client on the same data_dir). Waits for calls in
        flight on other threads; later calls raise InvalidArgumentError
        (reason "closed"). Idempotent. Raises InvalidArgumentError (reason
        "close_from_callback") on the client's own threads, from the
        listener, the analytics callable or a transport callback: close it
        from another thread."""
        core = self._core
        if _in_callback_of(core):
            if core.closing:
                return
            raise errors.InvalidArgumentError(
                "Client.close() called from the client's own thread (its listener, analytics "
                "or a transport callback): close it from another thread", "close_from_callback")
        if not core.begin_close():
            core.freed.wait()
            return
        self._closed = True
        core.finish_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        core = self.__dict__.get("_core")
        if core is None:
            return
        try:
            if not _in_callback_of(core):
                self.close()
                return
            # The last reference went on the client's own thread (inside the
            # listener, analytics or a transport callback): parley_client_free must not
            # run here. Free it from a thread of ours once the callback has
            # returned; the core (and the callbacks) live until then.
            if core.begin_close():
                threading.Thread(target=core.finish_close, name="parley-client-free",
                                 daemon=True).start()
        except Exception:
            pass

    def _h(self):
        core = self._core
        if core.closing or core.handle is None:
            raise _closed_error()
        return core.handle

    def _request(self, fn, *args):
        rid = c_u64()
        check(fn(ctypes.byref(rid), self._h(), *args))
        return rid.value

    # ---- connection ------------------------------------------------------------------

    def connect(self):
        check(self._c.client_connect(self._h()))

    def disconnect(self):
        check(self._c.client_disconnect(self._h()))

    def reconnect_now(self):
        check(self._c.client_reconnect_now(self._h()))

    def set_token(self, token):
        check(self._c.client_set_token(self._h(), enc(token)))

    @property
    def state(self):
        """"disconnected", "connecting", "authenticating", "syncing" or "ready"."""
        out = c_int()
        check(self._c.client_state(ctypes.byref(out), self._h()))
        return STATES[out.value] if 0 <= out.value < len(STATES) else out.value

    @property
    def user(self):
        """The user named by the token."""
        out = c_void_p()
        check(self._c.client_user(ctypes.byref(out), self._h()))
        return take_string(out)

    # ---- events ------------------------------------------------------------------------

    def next_event(self, timeout=1.0):
        """The next event, waiting at most `timeout` seconds (0: no wait);
        None when none came. Not available with a listener."""
        with self._backlog_lock:
            if self._backlog:
                return self._backlog.popleft()
        return self._pull(timeout)

    _PULL_SLICE = 0.2  # seconds: how long close() may wait for a next_event

    def _pull(self, timeout):
        # In slices, so that a close() on another thread is not held up by a
        # long wait here: it waits for the current slice, then this raises.
        out = ctypes.POINTER(_lib.parley_event)()
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            left = deadline - time.monotonic()
            ms = max(0, min(_ms(min(left, self._PULL_SLICE)), 2**31 - 1))
            check(self._c.client_next_event(ctypes.byref(out), self._h(), ms))
            if out or left <= self._PULL_SLICE:
                break
        if not out:
            return None
        try:
            return _convert_event(out.contents)
        finally:
            self._lib.event_free(out)

    def events(self, timeout=1.0):
        """Yields events until none came for `timeout` seconds."""
        while True:
            e = self.next_event(timeout)
            if e is None:
                return
            yield e

    def wait_for(self, match, timeout=10.0):
        """Waits up to `timeout` seconds for the first event matching `match`
        (an event class, a tuple of classes, or a predicate) and returns it.
        Events that do not match stay queued, in order, for next_event().
        Raises parley.TimeoutError when none came in time."""
        if isinstance(match, type) or isinstance(match, tuple):
            classes = match
            match = lambda e: isinstance(e, classes)  # noqa: E731
        with self._backlog_lock:
            for i, e in enumerate(self._backlog):
                if match(e):
                    del self._backlog[i]
                    return e
        deadline = time.monotonic() + timeout
        taken = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise errors.TimeoutError(
                        "no matching event within %.1f s" % timeout, "timeout")
                e = self._pull(min(left, 0.5))
                if e is None:
                    continue
                if match(e):
                    return e
                taken.append(e)
        finally:
            with self._backlog_lock:
                self._backlog.extend(taken)

    def wait_request(self, request, timeout=10.0):
        """Waits for the event completing `request` (a request id) and returns
        it; raises the mapped ParleyError (with .event set) when it failed."""
        e = self.wait_for(lambda x: getattr(x, "request", None) == request, timeout)
        status = getattr(e, "status", None)
        if status is not None and status.code != 0:
            raise errors.error_for(status.code, status.reason, status.message, event=e)
        return e

    def wait_ready(self, timeout=10.0):
        """Waits until the lifecycle is "ready" (connected and caught up)."""
        deadline = time.monotonic() + timeout
        while self.state != "ready":
            left = deadline - time.monotonic()
            if left <= 0:
                raise errors.TimeoutError("not ready within %.1f s (state %s)"
                                          % (timeout, self.state), "timeout")
            try:
                self.wait_for(lambda e: isinstance(e, ev.StateChanged) and e.state == "ready",
                              min(left, 0.5))
            except errors.TimeoutError:
                pass

    # ---- channels ----------------------------------------------------------------------

    def create_channel(self, name, kind="public", **meta):
        """Creates a channel ("public", "private" or "broadcast"); meta fields:
        name, topic, description, avatar_url, data. Returns the request id;
        completion: ChannelRequestDone."""
        return self._request(self._c.channel_create, enc(name),
                             _enum(CHANNEL_KINDS, kind, "channel kind"),
                             enc(_meta_json(meta)))

    def join(self, channel):
        return self._request(self._c.channel_join, enc(channel))

    def leave(self, channel):
        return self._request(self._c.channel_leave, enc(channel))

    def load_channel_info(self, channel):
        """Completion: ChannelInfoLoaded."""
        return self._request(self._c.channel_load_info, enc(channel))

    def invite(self, channel, user):
        return self._request(self._c.channel_invite, enc(channel), enc(user))

    def remove_member(self, channel, user):
        return self._request(self._c.channel_remove, enc(channel), enc(user))

    def ban(self, channel, user, duration=0):
        """duration in seconds; 0: until lifted."""
        return self._request(self._c.channel_ban, enc(channel), enc(user), int(duration))

    def unban(self, channel, user):
        return self._request(self._c.channel_unban, enc(channel), enc(user))

    def mute(self, channel, user, duration=0):
        return self._request(self._c.channel_mute, enc(channel), enc(user), int(duration))

    def unmute(self, channel, user):
        return self._request(self._c.channel_unmute, enc(channel), enc(user))

    def set_role(self, channel, user, role):
        """role: "owner", "admin", "moderator", "member" or "read_only"."""
        return self._request(self._c.channel_set_role, enc(channel), enc(user),
                             _enum(ROLES, role, "role"))

    def transfer_ownership(self, channel, user):
        return self._request(self._c.channel_transfer, enc(channel), enc(user))

    def set_meta(self, channel, **meta):
        """Changes the given fields; "" clears one."""
        return self._request(self._c.channel_set_meta, enc(channel),
                             enc(_meta_json(meta) or "{}"))

    def delete_message(self, channel, seq):
        return self._request(self._c.channel_delete_message, enc(channel), int(seq))

    def pin_message(self, channel, seq, pinned=True):
        return self._request(self._c.channel_pin, enc(channel), int(seq), int(bool(pinned)))

    def report_message(self, channel, seq, reason):
        return self._request(self._c.channel_report, enc(channel), int(seq), enc(reason))

    def can(self, channel, permission):
        """From the cache: whether this user may do `permission` ("post",
        "invite", "ban", ...) in `channel` now."""
        out = c_int()
        check(self._c.channel_can(ctypes.byref(out), self._h(), enc(channel),
                                    _enum(PERMISSIONS, permission, "permission")))
        return bool(out.value)

    def role(self, channel):
        """This user's role in `channel`, or None when not a member or unknown."""
        out = c_int()
        rc = self._c.channel_role(ctypes.byref(out), self._h(), enc(channel))
        if rc == errors.E_NOT_FOUND:
            return None
        check(rc)
        return _name_of(ROLES, out.value)

    def channel_kind(self, channel):
        out = c_int()
        rc = self._c.channel_kind(ctypes.byref(out), self._h(), enc(channel))
        if rc == errors.E_NOT_FOUND:
            return None
        check(rc)
        return _name_of(CHANNEL_KINDS, out.value)

    def channel_meta(self, channel):
        out = c_void_p()
        rc = self._c.channel_meta(ctypes.byref(out), self._h(), enc(channel))
        if rc == errors.E_NOT_FOUND:
            return None
        check(rc)
        return ev._from_dict(ev.ChannelMeta, json.loads(take_string(out) or "{}"))

    def channels(self):
        """The channels this user is in, as the cache knows them."""
        return [ev._from_dict(ev.ChannelInfo, c)
                for c in self._json_out(self._c.channel_list)]

    def outbox(self):
        return [ev._from_dict(ev.OutboxEntry, c) for c in self._json_out(self._c.client_outbox)]

    def cache_usage(self):
        return ev._from_dict(ev.CacheUsage, self._json_out(self._c.client_cache_usage))

    def _json_out(self, fn):
        out = c_void_p()
        check(fn(ctypes.byref(out), self._h()))
        return json.loads(take_string(out) or "null")

    # ---- messages, history, typing, reads, receipts -------------------------------------

    def send(self, channel, text):
        """Writes a text message to the durable outbox (works offline) and
        returns its id. Then MessagePending, later MessageSent or
        MessageFailed. A direct channel's messages are end-to-end encrypted."""
        out = c_void_p()
        check(self._c.message_send(ctypes.byref(out), self._h(), enc(channel), enc(text)))
        return take_string(out)

    def load_history(self, channel, before=0, limit=50):
        """Completion: HistoryLoaded (messages with seq < before; 0: newest)."""
        return self._request(self._c.channel_load_history, enc(channel), int(before),
                             int(limit))

    def history(self, channel, before=0, limit=50, timeout=10.0):
        """load_history, waited for: the list of Message."""
        return self.wait_request(self.load_history(channel, before, limit), timeout).messages

    def typing(self, channel, active=True):
        """Typing indicator: True as the user types, False when cleared."""
        check(self._c.channel_set_typing(self._h(), enc(channel), int(bool(active))))

    set_typing = typing

    def mark_read(self, channel, seq=0):
        """Marks the channel read up to `seq` (0: everything received so far)."""
        check(self._c.channel_mark_read(self._h(), enc(channel), int(seq)))

    def receipts(self, channel, seq):
        """How far message `seq` got: a ReceiptSummary (members, delivered, read)."""
        out = _lib.parley_receipt_summary()
        check(self._c.receipt_summary_get(ctypes.byref(out), self._h(), enc(channel),
                                            int(seq)))
        return ev.ReceiptSummary(out.members, out.delivered, out.read)

    receipt_summary = receipts

    # ---- presence --------------------------------------------------------------------------

    def set_presence(self, status=None, text=None, text_until_ms=None, hide_last_seen=None):
        """status: "online", "away", "invisible" (None: unchanged); text
        ("" clears it); text_until_ms; hide_last_seen. Completion:
        ChannelRequestDone."""
        mode = -1 if status is None else _enum(PRESENCE_MODES, status, "presence mode")
        return self._request(self._c.presence_set, mode, enc(text),
                             -1 if text_until_ms is None else int(text_until_ms),
                             -1 if hide_last_seen is None else int(bool(hide_last_seen)))

    @staticmethod
    def _users(users):
        if isinstance(users, str):
            users = [users]
        arr = (ctypes.c_char_p * max(1, len(users)))(*[enc(u) for u in users])
        return arr, len(users)

    def watch_presence(self, users, notify=False):
        arr, n = self._users(users)
        return self._request(self._c.presence_watch, arr, n, int(bool(notify)))

    def unwatch_presence(self, users):
        arr, n = self._users(users)
        return self._request(self._c.presence_unwatch, arr, n)

    def query_presence(self, users):
        arr, n = self._users(users)
        return self._request(self._c.presence_query, arr, n)

    def presence(self, user):
        """The Presence last received for `user`, or None."""
        out = c_void_p()
        rc = self._c.presence_get(ctypes.byref(out), self._h(), enc(user))
        if rc == errors.E_NOT_FOUND:
            return None
        check(rc)
        return ev._from_dict(ev.Presence, json.loads(take_string(out)))

    def online_count(self, channel):
        out = c_u64()
        rc = self._c.presence_online_count(ctypes.byref(out), self._h(), enc(channel))
        if rc == errors.E_NOT_FOUND:
            return None
        check(rc)
        return out.value

    def report_activity(self):
        check(self._c.presence_report_activity(self._h()))

    # ---- direct messages, safety numbers, devices, blocks ---------------------------------

    def open_direct(self, user):
        """The direct channel with `user`: ChannelRequestDone whose channel is
        its name (starting with '@')."""
        return self._request(self._c.direct_open, enc(user))

    def direct(self, user, timeout=10.0):
        """open_direct, waited for: the direct channel's name."""
        return self.wait_request(self.open_direct(user), timeout).channel

    def direct_peer(self, channel):
        return self._string_or_none(self._c.direct_peer, channel)

    def direct_channel(self, user):
        return self._string_or_none(self._c.direct_channel, user)

    def _string_or_none(self, fn, arg):
        out = c_void_p()
        rc = fn(ctypes.byref(out), self._h(), enc(arg))
        if rc == errors.E_NOT_FOUND:
            return None
        check(rc)
        return take_string(out)

    def load_safety_number(self, user):
        """Completion: SafetyNumberLoaded."""
        return self._request(self._c.safety_number_load, enc(user))

    def safety_number(self, user, timeout=10.0):
        """load_safety_number, waited for: the SafetyNumberLoaded event."""
        return self.wait_request(self.load_safety_number(user), timeout)

    def verify_contact(self, user, verified=True, shown_number=None):
        check(self._c.contact_verify(self._h(), enc(user), int(bool(verified)),
                                       enc(shown_number)))

    def list_devices(self):
        """Completion: DevicesLoaded."""
        return self._request(self._c.device_list)

    def remove_device(self, device):
        return self._request(self._c.device_remove, enc(device))

    def block_user(self, user, blocked=True):
        """Completion: BlockedUsersLoaded."""
        fn = self._c.user_block if blocked else self._c.user_unblock
        return self._request(fn, enc(user))

    def load_blocked_users(self):
        return self._request(self._c.user_list_blocked)

    # ---- notifications and unread counts -----------------------------------------------------

    def set_notification_level(self, channel, level, mute_until_ms=0):
        """level: "all", "mentions" or "none"."""
        return self._request(self._c.notification_set_level, enc(channel),
                             _enum(NOTIFY_LEVELS, level, "notification level"),
                             int(mute_until_ms or 0))

    def notification_level(self, channel):
        """(level, mute_until_ms) from the cache, or None for an unknown channel."""
        level, until = c_int(), c_i64()
        rc = self._c.notification_level(ctypes.byref(level), ctypes.byref(until),
                                          self._h(), enc(channel))
        if rc == errors.E_NOT_FOUND:
            return None
        check(rc)
        return _name_of(NOTIFY_LEVELS, level.value), until.value

    def unread(self, channel):
        u, m = c_u64(), c_u64()
        check(self._c.unread_count(ctypes.byref(u), ctypes.byref(m), self._h(), enc(channel)))
        return ev.UnreadCount(u.value, m.value)

    def badge(self):
        u, m = c_u64(), c_u64()
        check(self._c.unread_badge(ctypes.byref(u), ctypes.byref(m), self._h()))
        return ev.UnreadCount(u.value, m.value)

    # ---- collaborative documents (docs/collab.md) ---------------------------------------

    def create_document(self, channel, title):
        """Creates document `title` in `channel`. Completion:
        ChannelRequestDone (AlreadyExistsError, reason "doc_exists", when the
        title is taken)."""
        return self._request(self._c.doc_create, enc(channel), enc(title))

    def open_document(self, channel, title):
        """Opens the document and keeps it in sync: DocumentChanged with the
        whole text, then ChannelRequestDone; then others' edits
        (DocumentChanged) and cursors (DocumentAwareness) while open."""
        return self._request(self._c.doc_open, enc(channel), enc(title))

    def close_document(self, channel, title):
        return self._request(self._c.doc_close, enc(channel), enc(title))

    def insert_text(self, channel, title, pos, text):
        """Inserts `text` before code point `pos` of a document in the cache
        (works offline); emits DocumentChanged (local True)."""
        check(self._c.doc_insert(self._h(), enc(channel), enc(title), int(pos), enc(text)))

    def delete_text(self, channel, title, pos, count):
        """Deletes `count` code points from `pos`."""
        check(self._c.doc_delete(self._h(), enc(channel), enc(title), int(pos), int(count)))

    def document_text(self, channel, title):
        """The document as the cache holds it: a DocumentView (text,
        version, pending_updates). NotFoundError (reason "no_such_doc")
        when the cache has no such document."""
        out, n, version, pending = c_void_p(), ctypes.c_size_t(), c_u64(), c_u64()
        check(self._c.doc_text(ctypes.byref(out), ctypes.byref(n), ctypes.byref(version),
                               ctypes.byref(pending), self._h(), enc(channel), enc(title)))
        try:
            text = ctypes.string_at(out, n.value).decode("utf-8", "replace")
        finally:
            self._lib.string_free(out)
        return ev.DocumentView(text, version.value, pending.value)

    def list_documents(self, channel):
        """Completion: DocumentsLoaded."""
        return self._request(self._c.doc_list, enc(channel))

    def set_document_cursor(self, channel, title, cursor, anchor=None):
        """This user's cursor (None: none shown) and selection anchor in an
        open document, shown to the others as DocumentAwareness."""
        check(self._c.doc_set_cursor(self._h(), enc(channel), enc(title),
                                     -1 if cursor is None else int(cursor),
                                     -1 if anchor is None else int(anchor)))

    def pending_document_updates(self):
        """Local document edits the server has not acknowledged yet."""
        out = c_u64()
        check(self._c.doc_pending(ctypes.byref(out), self._h()))
        return out.value


def _convert_event(e):
    text = ctypes.string_at(e.json, e.json_len).decode("utf-8", "replace") if e.json else ""
    return ev.parse_event(e.kind, e.status, _lib.dec(e.reason), _lib.dec(e.message), text)
