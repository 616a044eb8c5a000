"""Loading libparley and declaring the C functions (parley.h) for ctypes."""

import ctypes
import ctypes.util
import os
import threading

from . import errors

c_int = ctypes.c_int
c_u32 = ctypes.c_uint32
c_u64 = ctypes.c_uint64
c_i64 = ctypes.c_int64
c_size = ctypes.c_size_t
c_char_p = ctypes.c_char_p
c_void_p = ctypes.c_void_p
P = ctypes.POINTER

ABI_VERSION = 0  # the PARLEY_ABI_VERSION this binding was written for


class parley_event(ctypes.Structure):
    _fields_ = [
        ("kind", c_int),
        ("status", c_int),
        ("request", c_u64),
        ("reason", c_char_p),
        ("message", c_char_p),
        ("channel", c_char_p),
        ("json", c_void_p),  # not NUL-safe in general: read json_len bytes
        ("json_len", c_size),
    ]


# Every callback takes its user_data last.
EVENT_CALLBACK = ctypes.CFUNCTYPE(None, P(parley_event), c_void_p)
ANALYTICS_CALLBACK = ctypes.CFUNCTYPE(None, c_char_p, c_void_p)
TRANSPORT_OPEN = ctypes.CFUNCTYPE(None, c_void_p, c_char_p, c_char_p, c_void_p)
TRANSPORT_SEND = ctypes.CFUNCTYPE(None, c_void_p, c_size, c_void_p)
TRANSPORT_CLOSE = ctypes.CFUNCTYPE(None, c_int, c_char_p, c_void_p)

TRANSPORT_CALLBACKS_VERSION = 2
TRANSPORT_STATE_OPEN = 1
TRANSPORT_STATE_CLOSED = 2


class parley_transport_callbacks(ctypes.Structure):
    _fields_ = [
        ("version", c_u32),
        ("user_data", c_void_p),
        ("open", TRANSPORT_OPEN),
        ("send", TRANSPORT_SEND),
        ("close", TRANSPORT_CLOSE),
    ]


CLIENT_OPTIONS_VERSION = 3  # 3: document_name and document_color


class parley_client_options(ctypes.Structure):
    _fields_ = [
        ("version", c_u32),
        ("server_url", c_char_p),
        ("token", c_char_p),
        ("data_dir", c_char_p),
        ("device_id", c_char_p),
        ("cache_max_bytes", c_u64),
        ("cache_max_messages", c_u64),
        ("rebuild_corrupt_cache", c_int),
        ("auto_connect", c_int),
        ("notifications", c_int),
        ("presence", c_int),
        ("request_timeout_ms", c_i64),
        ("reconnect_base_ms", c_i64),
        ("reconnect_max_ms", c_i64),
        ("heartbeat_interval_s", c_i64),
        ("dead_connection_timeout_s", c_i64),
        ("sync_page_size", c_u32),
        ("max_incoming_frame", c_u64),
        ("on_event", EVENT_CALLBACK),
        ("on_event_user_data", c_void_p),
        ("transport", P(parley_transport_callbacks)),
        ("on_analytics", ANALYTICS_CALLBACK),
        ("on_analytics_user_data", c_void_p),
        ("document_name", c_char_p),
        ("document_color", c_char_p),
    ]


class parley_receipt_summary(ctypes.Structure):
    _fields_ = [("members", c_u32), ("delivered", c_u32), ("read", c_u32)]


# name: (restype, argtypes). restype int means a status checked by the caller.
_PROTOTYPES = {
    "parley_error_last": (c_char_p, []),
    "parley_error_last_reason": (c_char_p, []),
    "parley_status_name": (c_char_p, [c_int]),
    "parley_version": (c_char_p, []),
    "parley_abi_version": (c_int, []),
    "parley_string_free": (None, [c_void_p]),
    "parley_event_free": (None, [P(parley_event)]),
    "parley_event_kind_name": (c_char_p, [c_int]),
    "parley_role_allows": (c_int, [P(c_int), c_int, c_int, c_int]),
    "parley_role_outranks": (c_int, [P(c_int), c_int, c_int]),
    "parley_channel_name_check": (c_int, [c_char_p]),
    "parley_user_name_check": (c_int, [c_char_p]),
    "parley_transport_deliver_frame": (c_int, [c_void_p, c_char_p, c_size]),
    "parley_transport_set_state": (c_int, [c_void_p, c_int, c_int, c_char_p]),
    "parley_client_options_init": (None, [P(parley_client_options)]),
    "parley_client_create": (c_int, [P(c_void_p), P(parley_client_options)]),
    "parley_client_free": (None, [c_void_p]),
    "parley_client_connect": (c_int, [c_void_p]),
    "parley_client_disconnect": (c_int, [c_void_p]),
    "parley_client_reconnect_now": (c_int, [c_void_p]),
    "parley_client_set_token": (c_int, [c_void_p, c_char_p]),
    "parley_client_state": (c_int, [P(c_int), c_void_p]),
    "parley_client_user": (c_int, [P(c_void_p), c_void_p]),
    "parley_client_next_event": (c_int, [P(P(parley_event)), c_void_p, c_int]),
    "parley_channel_list": (c_int, [P(c_void_p), c_void_p]),
    "parley_client_outbox": (c_int, [P(c_void_p), c_void_p]),
    "parley_client_cache_usage": (c_int, [P(c_void_p), c_void_p]),
    "parley_channel_create": (c_int, [P(c_u64), c_void_p, c_char_p, c_int, c_char_p]),
    "parley_channel_join": (c_int, [P(c_u64), c_void_p, c_char_p]),
    "parley_channel_leave": (c_int, [P(c_u64), c_void_p, c_char_p]),
    "parley_channel_load_info": (c_int, [P(c_u64), c_void_p, c_char_p]),
    "parley_channel_invite": (c_int, [P(c_u64), c_void_p, c_char_p, c_char_p]),
    "parley_channel_remove": (c_int, [P(c_u64), c_void_p, c_char_p, c_char_p]),
    "parley_channel_ban": (c_int, [P(c_u64), c_void_p, c_char_p, c_char_p, c_i64]),
    "parley_channel_unban": (c_int, [P(c_u64), c_void_p, c_char_p, c_char_p]),
    "parley_channel_mute": (c_int, [P(c_u64), c_void_p, c_char_p, c_char_p, c_i64]),
    "parley_channel_unmute": (c_int, [P(c_u64), c_void_p, c_char_p, c_char_p]),
    "parley_channel_set_role": (c_int, [P(c_u64), c_void_p, c_char_p, c_char_p, c_int]),
    "parley_channel_transfer": (c_int, [P(c_u64), c_void_p, c_char_p, c_char_p]),
    "parley_channel_set_meta": (c_int, [P(c_u64), c_void_p, c_char_p, c_char_p]),
    "parley_channel_delete_message": (c_int, [P(c_u64), c_void_p, c_char_p, c_u64]),
    "parley_channel_pin": (c_int, [P(c_u64), c_void_p, c_char_p, c_u64, c_int]),
    "parley_channel_report": (c_int, [P(c_u64), c_void_p, c_char_p, c_u64, c_char_p]),
    "parley_channel_can": (c_int, [P(c_int), c_void_p, c_char_p, c_int]),
    "parley_channel_role": (c_int, [P(c_int), c_void_p, c_char_p]),
    "parley_channel_kind": (c_int, [P(c_int), c_void_p, c_char_p]),
    "parley_channel_meta": (c_int, [P(c_void_p), c_void_p, c_char_p]),
    "parley_message_send": (c_int, [P(c_void_p), c_void_p, c_char_p, c_char_p]),
    "parley_channel_load_history": (c_int, [P(c_u64), c_void_p, c_char_p, c_u64, c_u32]),
    "parley_channel_set_typing": (c_int, [c_void_p, c_char_p, c_int]),
    "parley_channel_mark_read": (c_int, [c_void_p, c_char_p, c_u64]),
    "parley_receipt_summary_get": (c_int, [P(parley_receipt_summary), c_void_p, c_char_p,
                                           c_u64]),
    "parley_presence_set": (c_int, [P(c_u64), c_void_p, c_int, c_char_p, c_i64, c_int]),
    "parley_presence_watch": (c_int, [P(c_u64), c_void_p, P(c_char_p), c_size, c_int]),
    "parley_presence_unwatch": (c_int, [P(c_u64), c_void_p, P(c_char_p), c_size]),
    "parley_presence_query": (c_int, [P(c_u64), c_void_p, P(c_char_p), c_size]),
    "parley_presence_get": (c_int, [P(c_void_p), c_void_p, c_char_p]),
    "parley_presence_online_count": (c_int, [P(c_u64), c_void_p, c_char_p]),
    "parley_presence_report_activity": (c_int, [c_void_p]),
    "parley_direct_open": (c_int, [P(c_u64), c_void_p, c_char_p]),
    "parley_direct_peer": (c_int, [P(c_void_p), c_void_p, c_char_p]),
    "parley_direct_channel": (c_int, [P(c_void_p), c_void_p, c_char_p]),
    "parley_safety_number_load": (c_int, [P(c_u64), c_void_p, c_char_p]),
    "parley_contact_verify": (c_int, [c_void_p, c_char_p, c_int, c_char_p]),
    "parley_device_list": (c_int, [P(c_u64), c_void_p]),
    "parley_device_remove": (c_int, [P(c_u64), c_void_p, c_char_p]),
    "parley_user_block": (c_int, [P(c_u64), c_void_p, c_char_p]),
    "parley_user_unblock": (c_int, [P(c_u64), c_void_p, c_char_p]),
    "parley_user_list_blocked": (c_int, [P(c_u64), c_void_p]),
    "parley_notification_set_level": (c_int, [P(c_u64), c_void_p, c_char_p, c_int, c_i64]),
    "parley_notification_level": (c_int, [P(c_int), P(c_i64), c_void_p, c_char_p]),
    "parley_unread_count": (c_int, [P(c_u64), P(c_u64), c_void_p, c_char_p]),
    "parley_unread_badge": (c_int, [P(c_u64), P(c_u64), c_void_p]),
    "parley_doc_create": (c_int, [P(c_u64), c_void_p, c_char_p, c_char_p]),
    "parley_doc_open": (c_int, [P(c_u64), c_void_p, c_char_p, c_char_p]),
    "parley_doc_close": (c_int, [P(c_u64), c_void_p, c_char_p, c_char_p]),
    "parley_doc_insert": (c_int, [c_void_p, c_char_p, c_char_p, c_u64, c_char_p]),
    "parley_doc_delete": (c_int, [c_void_p, c_char_p, c_char_p, c_u64, c_u64]),
    "parley_doc_text": (c_int, [P(c_void_p), P(c_size), P(c_u64), P(c_u64), c_void_p, c_char_p,
                                c_char_p]),
    "parley_doc_list": (c_int, [P(c_u64), c_void_p, c_char_p]),
    "parley_doc_set_cursor": (c_int, [c_void_p, c_char_p, c_char_p, c_i64, c_i64]),
    "parley_doc_pending": (c_int, [P(c_u64), c_void_p]),
}


def _candidates():
    env = os.environ.get("PARLEY_LIBRARY")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.normpath(os.path.join(here, "..", "..", ".."))
    found = [os.path.join(here, "libparley.so")]  # a copy shipped inside the package
    for build in ("build", "build-debug"):
        found.append(os.path.join(repo, build, "lib", "libparley.so"))
    name = ctypes.util.find_library("parley")
    found.append(name or "libparley.so.%d" % ABI_VERSION)
    return found


class _Library:
    def __init__(self):
        tried = []
        self.dll = None
        for path in _candidates():
            if os.sep in path and not os.path.exists(path):
                tried.append(path + " (missing)")
                continue
            try:
                self.dll = ctypes.CDLL(path)  # CDLL: the GIL is released during calls
                self.path = path
                break
            except OSError as e:
                tried.append("%s (%s)" % (path, e))
        if self.dll is None:
            raise OSError("cannot load libparley (set PARLEY_LIBRARY to its path); tried: "
                          + "; ".join(tried))
        missing = []
        for name, (restype, argtypes) in _PROTOTYPES.items():
            try:
                fn = getattr(self.dll, name)
            except AttributeError:
                missing.append(name)
                continue
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name[len("parley_"):], fn)
        self.missing = missing
        abi = self.dll.parley_abi_version() if "parley_abi_version" not in missing else None
        if abi is not None and abi != ABI_VERSION:
            raise OSError("%s has ABI version %d; this binding needs %d"
                          % (self.path, abi, ABI_VERSION))

    def __getattr__(self, name):  # only reached for functions the library lacks
        raise errors.InternalError("libparley at %s lacks parley_%s" % (
            self.__dict__.get("path", "?"), name), "unsupported")


_lib = None
_lib_lock = threading.Lock()


def lib():
    """The loaded library (loaded on first use)."""
    global _lib
    if _lib is None:
        with _lib_lock:
            if _lib is None:
                _lib = _Library()
    return _lib


def enc(s):
    """str -> UTF-8 bytes for a const char * argument (None stays NULL)."""
    if s is None:
        return None
    if isinstance(s, bytes):
        return s
    return str(s).encode("utf-8")


def dec(b):
    return b.decode("utf-8", "replace") if b is not None else ""


def last_error(code):
    L = lib()
    return errors.error_for(code, dec(L.error_last_reason()), dec(L.error_last()))


def check(code):
    """Raises the mapped ParleyError for a failed status (reads the thread's
    last error right away, on the calling thread)."""
    if code != 0:
        raise last_error(code)
    return code


def take_string(ptr):
    """Copies and frees a char * returned through an out pointer."""
    if not ptr:
        return None
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        lib().string_free(ptr)
