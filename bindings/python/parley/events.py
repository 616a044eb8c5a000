"""Events and the values they carry, as dataclasses.

Each event of the C API arrives as its kind plus a JSON object
(parley.h, "Events"); parse_event() turns it into one of the classes below.
Field names and meanings follow include/parley/events.hpp. An event kind this
version does not know becomes UnknownEvent (a newer library may add kinds),
and fields it does not know are ignored.

Analytics events (docs/analytics.md) are not client events: they reach the
Client's analytics= callable as AnalyticsEvent, parsed by parse_analytics().
"""

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Dict, List, Optional


def _from_dict(cls, data):
    """Builds dataclass `cls` from a JSON object, nested values included."""
    if data is None:
        return None
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        kwargs[f.name] = _convert(hints[f.name], data[f.name])
    return cls(**kwargs)


def _convert(hint, value):
    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:  # Optional[X]
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value) if inner else value
    if origin in (list, List):
        return [_convert(args[0], v) for v in value] if args else list(value)
    if dataclasses.is_dataclass(hint):
        return _from_dict(hint, value)
    return value


# ---- values ------------------------------------------------------------------

@dataclass
class Status:
    """Why something failed (ok: code 0). `code` is the C status code (negative
    on failure), `reason` the stable machine-readable name (for example
    "channel_exists"), `message` one line for people."""
    code: int = 0
    reason: str = "ok"
    message: str = ""

    @property
    def ok(self):
        return self.code == 0

    def __bool__(self):
        return self.ok


@dataclass
class ChannelMeta:
    name: Optional[str] = None
    topic: Optional[str] = None
    description: Optional[str] = None
    avatar_url: Optional[str] = None
    data: Optional[str] = None


@dataclass
class Mention:
    offset: int = 0
    length: int = 0
    user: str = ""


@dataclass
class Message:
    """One entry of a channel's sequence (kind "message" for a text message)."""
    channel: str = ""
    seq: int = 0
    kind: str = "message"
    sender: str = ""
    id: str = ""
    text: str = ""
    ts_ms: int = 0
    state: str = "sent"
    deleted: bool = False
    target: str = ""
    role: str = ""
    until_ms: int = 0
    ref: int = 0
    channel_kind: str = ""
    meta: ChannelMeta = field(default_factory=ChannelMeta)
    mentions: List[Mention] = field(default_factory=list)
    e2e: bool = False
    e2e_error: str = ""


@dataclass
class Presence:
    user: str = ""
    status: str = "offline"
    last_seen_ms: Optional[int] = None
    text: Optional[str] = None
    text_until_ms: Optional[int] = None
    invisible: bool = False
    hide_last_seen: bool = False


@dataclass
class ChannelMember:
    user: str = ""
    role: str = "member"
    muted: bool = False
    muted_until_ms: int = 0


@dataclass
class ChannelBan:
    user: str = ""
    until_ms: int = 0


@dataclass
class DeviceInfo:
    device: str = ""
    fingerprint: str = ""
    current: bool = False


@dataclass
class ChannelInfo:
    """A channel of this user as the cache knows it (Client.channels())."""
    name: str = ""
    last_seq: int = 0
    read_to: int = 0
    member: bool = True


@dataclass
class OutboxEntry:
    channel: str = ""
    id: str = ""
    text: str = ""
    state: str = "pending"
    error: str = ""


@dataclass
class ReceiptSummary:
    members: int = 0
    delivered: int = 0
    read: int = 0


@dataclass
class UnreadCount:
    unread: int = 0
    mentions: int = 0


@dataclass
class CacheUsage:
    file_bytes: int = 0
    wal_bytes: int = 0
    events: int = 0
    evicted: int = 0


# ---- events ------------------------------------------------------------------

@dataclass
class Event:
    """Base of every event."""


@dataclass
class StateChanged(Event):
    """The lifecycle moved to `state` ("disconnected", "connecting",
    "authenticating", "syncing", "ready"); `reason` says why when it went
    back to disconnected."""
    state: str = "disconnected"
    reason: Status = field(default_factory=Status)


@dataclass
class MessageReceived(Event):
    message: Message = field(default_factory=Message)


@dataclass
class MessageUpdated(Event):
    message: Message = field(default_factory=Message)


@dataclass
class MessagePending(Event):
    channel: str = ""
    id: str = ""


@dataclass
class MessageSent(Event):
    channel: str = ""
    id: str = ""
    seq: int = 0
    ts_ms: int = 0


@dataclass
class MessageFailed(Event):
    channel: str = ""
    id: str = ""
    status: Status = field(default_factory=Status)


@dataclass
class ChannelRequestDone(Event):
    request: int = 0
    channel: str = ""
    status: Status = field(default_factory=Status)
    seq: int = 0


@dataclass
class HistoryLoaded(Event):
    request: int = 0
    channel: str = ""
    status: Status = field(default_factory=Status)
    messages: List[Message] = field(default_factory=list)
    complete: bool = True


@dataclass
class TypingChanged(Event):
    channel: str = ""
    user: str = ""
    active: bool = False


@dataclass
class ReceiptUpdated(Event):
    channel: str = ""
    user: str = ""
    device: str = ""
    kind: str = "read"  # "delivered" or "read"
    seq: int = 0


@dataclass
class SyncProgress(Event):
    channel: str = ""
    fetched: int = 0
    total: int = 0


@dataclass
class ChannelInfoLoaded(Event):
    request: int = 0
    channel: str = ""
    status: Status = field(default_factory=Status)
    kind: str = "public"
    last_seq: int = 0
    meta: ChannelMeta = field(default_factory=ChannelMeta)
    members: List[ChannelMember] = field(default_factory=list)
    bans: List[ChannelBan] = field(default_factory=list)
    pinned: List[int] = field(default_factory=list)
    complete: bool = True


@dataclass
class NotificationReceived(Event):
    channel: str = ""
    seq: int = 0
    kind: str = ""
    sender: str = ""
    title: str = ""  # kinds "doc" and "doc_mention": the document


@dataclass
class UnreadChanged(Event):
    channel: str = ""
    unread: int = 0
    mentions: int = 0


@dataclass
class NotificationLevelChanged(Event):
    channel: str = ""
    level: str = "all"
    mute_until_ms: int = 0


@dataclass
class PresenceChanged(Event):
    presence: Presence = field(default_factory=Presence)


@dataclass
class PresenceNotified(Event):
    user: str = ""


@dataclass
class OnlineCountChanged(Event):
    channel: str = ""
    online: int = 0
    members: int = 0


@dataclass
class IdentityChanged(Event):
    user: str = ""
    device: str = ""
    was_verified: bool = False
    new_device: bool = False
    removed_device: bool = False


@dataclass
class SafetyNumberLoaded(Event):
    request: int = 0
    user: str = ""
    number: str = ""
    verified: bool = False
    status: Status = field(default_factory=Status)


@dataclass
class SessionReset(Event):
    user: str = ""
    device: str = ""
    channel: str = ""
    seq: int = 0
    reason: str = ""
    by_this_device: bool = False


@dataclass
class DevicesLoaded(Event):
    request: int = 0
    devices: List[DeviceInfo] = field(default_factory=list)
    status: Status = field(default_factory=Status)


@dataclass
class BlockedUsersLoaded(Event):
    request: int = 0
    users: List[str] = field(default_factory=list)
    status: Status = field(default_factory=Status)


@dataclass
class DocumentInfo:
    """One document of a channel (DocumentsLoaded.docs)."""
    title: str = ""
    kind: str = "text"
    creator: str = ""
    created_ms: int = 0
    seq: int = 0       # its "doc" event in the channel
    size: int = 0      # visible characters
    version: int = 0   # see DocumentView.version


@dataclass
class DocumentView:
    """A document's text as the cache holds it (Client.document_text()).
    version: characters ever inserted plus characters deleted (equal on two
    replicas holding the same edits); pending_updates: local edits the
    server has not acknowledged yet."""
    text: str = ""
    version: int = 0
    pending_updates: int = 0


@dataclass
class DocumentChanged(Event):
    """A document's text changed in this device's replica: `text` is the
    whole text after the change; local True for this client's own edit."""
    channel: str = ""
    title: str = ""
    text: str = ""
    version: int = 0
    local: bool = False
    pending: int = 0


@dataclass
class DocumentAwareness(Event):
    """Another participant's cursor (None: no cursor) and selection from
    anchor to cursor, in code points; gone: drop their cursor."""
    channel: str = ""
    title: str = ""
    user: str = ""
    device: str = ""
    cursor: Optional[int] = None
    anchor: Optional[int] = None
    name: str = ""
    color: str = ""
    gone: bool = False


@dataclass
class DocumentsLoaded(Event):
    """Completion of Client.list_documents(); complete False: from the cache."""
    request: int = 0
    channel: str = ""
    status: Status = field(default_factory=Status)
    docs: List[DocumentInfo] = field(default_factory=list)
    complete: bool = True


@dataclass
class DocumentFailed(Event):
    """The server refused this device's edits to a document for good
    (`dropped` of them); the replica starts again from the server's state."""
    channel: str = ""
    title: str = ""
    status: Status = field(default_factory=Status)
    dropped: int = 0


@dataclass
class UnknownEvent(Event):
    """An event kind this version of the binding does not know."""
    kind: int = 0
    name: str = ""
    data: dict = field(default_factory=dict)


# ---- from the C event ----------------------------------------------------------

# parley_event.kind -> class (PARLEY_EVENT_* in parley.h; values fixed forever).
EVENT_CLASSES = {
    1: StateChanged, 2: MessageReceived, 3: MessagePending, 4: MessageSent,
    5: MessageFailed, 6: ChannelRequestDone, 7: HistoryLoaded, 8: TypingChanged,
    9: ReceiptUpdated, 10: SyncProgress, 11: ChannelInfoLoaded, 12: NotificationReceived,
    13: UnreadChanged, 14: NotificationLevelChanged, 15: PresenceChanged,
    16: PresenceNotified, 17: OnlineCountChanged, 18: IdentityChanged,
    19: SafetyNumberLoaded, 20: SessionReset, 21: MessageUpdated, 22: DevicesLoaded,
    23: BlockedUsersLoaded, 24: DocumentChanged, 25: DocumentAwareness, 26: DocumentsLoaded,
    27: DocumentFailed,
}

_STATES = ["disconnected", "connecting", "authenticating", "syncing", "ready"]


def parse_event(kind, status, reason, message, json_text):
    """Builds the event dataclass from a C event: its kind, the status,
    reason and message of its head, and its JSON form (docs/c-api.md,
    "Events as JSON"; the status of an event is flattened there as
    "status" (int), "reason" and "message")."""
    try:
        data = json.loads(json_text) if json_text else {}
    except ValueError:
        data = {}
    cls = EVENT_CLASSES.get(kind)
    if cls is None:
        return UnknownEvent(kind=kind, name=str(data.get("type", "")), data=data)
    head = Status(code=status, reason=reason or ("ok" if status == 0 else ""),
                  message=message or "")
    fields = dict(data)
    fields.pop("v", None)
    fields.pop("type", None)
    has_status = cls is StateChanged or "status" in cls.__dataclass_fields__
    if has_status:  # the flattened status: the head has the same
        for key in ("status", "reason", "message"):
            fields.pop(key, None)
    if cls is SessionReset and "session_reason" in fields:
        fields["reason"] = fields.pop("session_reason")
    event = _from_dict(cls, fields)
    if cls is StateChanged:
        event.reason = head
        if isinstance(event.state, int) and 0 <= event.state < len(_STATES):
            event.state = _STATES[event.state]
    elif hasattr(event, "status"):
        event.status = head
    return event


# ---- analytics -------------------------------------------------------------------

@dataclass
class AnalyticsEvent:
    """One analytics event (docs/analytics.md), as passed to Client(analytics=...):
    `name` such as "message_sent", wall-clock `ts_ms`, string `labels` (channel
    names, ids, states, reason codes; never message text) and numeric `values`
    (floats; None where the library had no finite number)."""
    name: str = ""
    ts_ms: int = 0
    labels: Dict[str, str] = field(default_factory=dict)
    values: Dict[str, Optional[float]] = field(default_factory=dict)


def parse_analytics(json_text):
    """Builds an AnalyticsEvent from the C library's JSON form
    ({"v":1,"name":...,"ts_ms":...,"labels":{...},"values":{...}}). Unknown
    fields are ignored; raises ValueError when it is not a JSON object."""
    if isinstance(json_text, bytes):
        json_text = json_text.decode("utf-8", "replace")
    data = json.loads(json_text)
    if not isinstance(data, dict):
        raise ValueError("analytics event is not a JSON object: %.80r" % json_text)
    labels = data.get("labels") or {}
    values = data.get("values") or {}
    return AnalyticsEvent(
        name=str(data.get("name", "")),
        ts_ms=int(data.get("ts_ms") or 0),
        labels={str(k): str(v) for k, v in labels.items()},
        values={str(k): (None if v is None else float(v)) for k, v in values.items()})
