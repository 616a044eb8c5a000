"""Parley for Python: a pure-Python binding (ctypes) over libparley's C ABI.

    import parley

    with parley.Client(server_url="ws://127.0.0.1:7700", token=token,
                       data_dir="./alice") as client:
        client.wait_ready(10)
        client.wait_request(client.join("general"), 10)
        client.send("general", "hello")
        while (event := client.next_event(5.0)) is not None:
            if isinstance(event, parley.MessageReceived):
                print(event.message.sender, event.message.text)

libparley.so is found through the PARLEY_LIBRARY environment variable, else
next to this package, in the source tree's build/lib, or on the system's
library path. docs/python.md is the guide.
"""

from . import _lib
from .client import Client
from .errors import (AlreadyExistsError, CancelledError, CorruptError, ForbiddenError,
                     InternalError, InvalidArgumentError, IoError, NoMemoryError, NotFoundError,
                     OfflineError, ParleyError, ProtocolError, RateLimitedError, TimeoutError,
                     TokenExpiredError, UnauthenticatedError)
from .events import (AnalyticsEvent, BlockedUsersLoaded, ChannelBan, ChannelInfo,
                     ChannelInfoLoaded, ChannelMember, ChannelMeta, ChannelRequestDone,
                     DeviceInfo, DevicesLoaded, DocumentAwareness, DocumentChanged,
                     DocumentFailed, DocumentInfo, DocumentsLoaded, DocumentView, Event,
                     HistoryLoaded, IdentityChanged, Mention,
                     Message, MessageFailed, MessagePending, MessageReceived, MessageSent,
                     MessageUpdated, NotificationLevelChanged, NotificationReceived,
                     OnlineCountChanged, Presence, PresenceChanged, PresenceNotified,
                     ReceiptSummary, ReceiptUpdated, SafetyNumberLoaded, SessionReset, Status,
                     StateChanged, SyncProgress, TypingChanged, UnknownEvent, UnreadChanged,
                     UnreadCount)
from .roles import check_channel_name, check_user_name, outranks, role_allows
from .transport import Transport
from .websockets_transport import WebSocketsTransport

__all__ = [name for name in dir()
           if not name.startswith("_") and name not in ("client", "errors", "events",
                                                        "roles", "transport",
                                                        "websockets_transport")]


def version():
    """The loaded library's version, such as "0.1.0"."""
    return _lib.dec(_lib.lib().version())


def abi_version():
    return _lib.lib().abi_version()


def status_name(code):
    """"ok", "invalid_argument", ... for a status code."""
    return _lib.dec(_lib.lib().status_name(code))
