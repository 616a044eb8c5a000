// parley/events.hpp - what the client tells the app, in the order it happened.
//
//   while (auto ev = client->next_event(std::chrono::seconds(1))) {
//     if (auto* m = std::get_if<parley::MessageReceived>(&*ev))
//       show(m->message);
//   }
//
// Events are plain values: safe to copy and to move between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "parley/export.hpp"
#include "parley/roles.hpp"
#include "parley/status.hpp"
#include "parley/types.hpp"

namespace parley {

// Identifies an asynchronous call; its completion event carries the same id.
using RequestId = std::uint64_t;

// The client's connection lifecycle, in the order a connection goes through it.
enum class LifecycleState {
  disconnected,    // no connection; reconnects by itself unless stopped or refused
  connecting,      // opening the transport
  authenticating,  // transport open, token sent
  syncing,         // authenticated, catching up on missed events
  ready,           // caught up; live events flow
};
PARLEY_EXPORT const char* to_string(LifecycleState state);

// The lifecycle moved to `state`. `reason` says why when it went back to
// disconnected: ok for a disconnect the app asked for, "connection_lost",
// "invalid_token" or "token_expired" (the client then stops retrying until
// set_token), "shutting_down" and so on.
struct StateChanged {
  LifecycleState state = LifecycleState::disconnected;
  Status reason;
};

// A channel event the app has not seen yet, of any kind: live, or caught up
// after being offline. Per channel, events arrive in increasing seq order with
// no gaps. The client's own messages, creates, joins and leaves are not echoed
// (MessageSent and ChannelRequestDone stand for them); the events of its
// moderation calls (invite, ban, set_meta, delete_message, ...) are, after
// the call's ChannelRequestDone. By the time an event arrives the cache has
// applied it (roles, metadata, membership, deleted text).
struct MessageReceived {
  Message message;
};

// Our message is in the durable outbox (emitted once per send()).
struct MessagePending {
  std::string channel;
  std::string id;
};

// The server stored our message.
struct MessageSent {
  std::string channel;
  std::string id;
  std::uint64_t seq = 0;
  std::int64_t ts_ms = 0;
};

// The server refused our message for good; it left the outbox.
struct MessageFailed {
  std::string channel;
  std::string id;
  Status status;
};

// A channel request finished: create_channel, join_channel, leave_channel,
// open_direct (`channel` is then the direct channel's name), or one of the
// moderation calls (invite, ban, set_meta, delete_message, ...). `seq` is the
// channel event the request appended: 0 when there was none (a no-op such as
// inviting a member, a report, or a failure). Also the completion of the
// calls that concern no channel: set_presence, watch_presence,
// unwatch_presence and query_presence, with `channel` empty and seq 0.
struct ChannelRequestDone {
  RequestId request = 0;
  std::string channel;
  Status status;
  std::uint64_t seq = 0;
};

// A member of a channel and their role, as ChannelInfoLoaded lists them.
struct ChannelMember {
  std::string user;
  Role role = Role::member;
  bool muted = false;
  std::int64_t muted_until_ms = 0;  // when muted: the end, ms since the epoch; 0: until lifted
};

// A ban in force (listed only to members who may ban).
struct ChannelBan {
  std::string user;
  std::int64_t until_ms = 0;  // ms since the epoch; 0: until lifted
};

// load_channel_info finished. From the server when it could be asked
// (`complete` true); otherwise from the cache, which knows the kind, metadata
// and members as of the last events received, but not bans or pins
// (`complete` false).
struct ChannelInfoLoaded {
  RequestId request = 0;
  std::string channel;
  Status status;
  ChannelKind kind = ChannelKind::public_channel;
  std::uint64_t last_seq = 0;
  ChannelMeta meta;
  std::vector<ChannelMember> members;
  std::vector<ChannelBan> bans;
  std::vector<std::uint64_t> pinned;  // seqs of the pinned messages, ascending
  bool complete = true;
};

// load_history finished. `messages` are in ascending seq order. `complete` is
// false when the server could not be asked and the cache lacked some of the
// range (the messages are what the cache had).
struct HistoryLoaded {
  RequestId request = 0;
  std::string channel;
  Status status;
  std::vector<Message> messages;
  bool complete = true;
};

// Another user started or stopped typing in a channel. `active` false when
// they stopped, sent their message, or nothing was heard for about 5 s.
struct TypingChanged {
  std::string channel;
  std::string user;
  bool active = false;
};

// Whose receipt cursor moved. Monotonic: seq only grows per (user, device, kind).
enum class ReceiptKind {
  delivered,  // that device has received the channel up to seq
  read,       // that user has read the channel up to seq
};
PARLEY_EXPORT const char* to_string(ReceiptKind kind);

struct ReceiptUpdated {
  std::string channel;
  std::string user;
  std::string device;  // for delivered receipts; empty for read
  ReceiptKind kind = ReceiptKind::read;
  std::uint64_t seq = 0;
};

// Catching up on a channel after being offline: `fetched` events so far of
// `total` missing (total is 0 when not known). The last one has fetched == total.
struct SyncProgress {
  std::string channel;
  std::uint64_t fetched = 0;
  std::uint64_t total = 0;
};

// How much of a channel deserves this user's attention, on every device of
// theirs (docs/notifications.md, "Levels"): every message, only mentions of
// them (and invites, removals, bans, role changes), or nothing but removals.
enum class NotificationLevel {
  all,       // the default
  mentions,  // mentions of this user, @channel, @here
  none,
};
PARLEY_EXPORT const char* to_string(NotificationLevel level);
// Parses "all", "mentions" or "none"; false for anything else.
PARLEY_EXPORT bool parse_notification_level(std::string_view text, NotificationLevel* out);

// The server says something in a channel deserves this user's attention
// (only with ClientOptions::notifications). `kind`: "message", "mention",
// "invite", "remove", "ban" or "role" (a newer server may add others). Never
// for the user's own messages. The message itself arrives as MessageReceived.
// Documents: "doc" (`sender` created document `title`; seq is its event) and
// "doc_mention" (`sender` mentioned this user in document `title`).
struct NotificationReceived {
  std::string channel;
  std::uint64_t seq = 0;
  std::string kind;
  std::string sender;
  std::string title;  // doc, doc_mention: the document
};

// This user's unread and mention counts of a channel changed: pushed by the
// server (a new message, a read on any of the user's devices, a deletion)
// or found changed in a welcome. Client::unread answers the same from the cache.
struct UnreadChanged {
  std::string channel;
  std::uint64_t unread = 0;
  std::uint64_t mentions = 0;
};

// This user's notification level of a channel changed: set on another device,
// found changed in a welcome, or by this device's set_notification_level
// (after its ChannelRequestDone). mute_until_ms: plain messages do not notify
// before then (ms since the epoch); 0: not muted.
struct NotificationLevelChanged {
  std::string channel;
  NotificationLevel level = NotificationLevel::all;
  std::int64_t mute_until_ms = 0;
};

// A user's presence as the server sent it: a change, or an item of a snapshot
// (after each welcome, after joining a small channel, and the answers to
// watch_presence and query_presence, which come before their
// ChannelRequestDone). Emitted for every item received, changed or not; by
// then Client::presence answers the same. Includes this user's own presence.
struct PresenceChanged {
  Presence presence;
};

// A user watched with notify (Client::watch_presence) came online: from
// offline to online or away. Follows that user's PresenceChanged.
struct PresenceNotified {
  std::string user;
};

// How many members of a large channel (too large for per-member presence:
// the server's presence_max_members, 100 by default) are online or away.
// After each welcome, then at most once a second while it changes.
struct OnlineCountChanged {
  std::string channel;
  std::uint64_t online = 0;
  std::uint64_t members = 0;
};

// End-to-end encryption (docs/e2e.md). A contact's identities changed: a
// device of theirs presented an identity key other than the one this device
// knew for it (a reinstall, or an attack), or a device this device did not
// know appeared beside the known ones (new_device: a new phone, a new
// install under a new device id, or an attack). The contact's safety number
// changes with it: a verified contact is no longer verified (was_verified
// tells the app to warn). The first identities seen of a contact are not news.
// removed_device: the contact (or this user, from another device) removed
// the device; no message goes to it any more.
struct IdentityChanged {
  std::string user;
  std::string device;
  bool was_verified = false;
  bool new_device = false;
  bool removed_device = false;
};

// A session between this device and `device` of `user` was started again
// (docs/e2e.md, "Recovery"). by_this_device: this device could not decrypt
// the message at (channel, seq) (reason: the e2e_error it had) and asked its
// sender to send it again; the message then has e2e_error "waiting" until it
// comes (MessageUpdated). Otherwise `user`'s device asked this device, which
// sent its message at (channel, seq) again in a new session (reason
// "retry_requested"). `device` may be empty when not known here.
struct SessionReset {
  std::string user;
  std::string device;
  std::string channel;
  std::uint64_t seq = 0;
  std::string reason;
  bool by_this_device = false;
};

// A stored message changed after it was delivered: a direct message that
// could not be decrypted came again and now has its text.
struct MessageUpdated {
  Message message;
};

// One of this user's devices, as the server lists them.
struct DeviceInfo {
  std::string device;
  std::string fingerprint;  // of its identity key: 16 groups of 4 hex digits
  bool current = false;     // this device
};
// Answer to Client::list_devices.
struct DevicesLoaded {
  RequestId request = 0;
  std::vector<DeviceInfo> devices;
  Status status;
};
// Answer to Client::block_user and Client::load_blocked_users: the users
// this user blocks now, in name order.
struct BlockedUsersLoaded {
  RequestId request = 0;
  std::vector<std::string> users;
  Status status;
};

// Answer to Client::load_safety_number: the number both users see (60 digits
// in 12 groups of five), and whether this user marked the contact verified
// for the identities it covers. On failure, status says why (no_keys: the
// contact has no device that can receive encrypted messages).
struct SafetyNumberLoaded {
  RequestId request = 0;
  std::string user;
  std::string number;
  bool verified = false;
  Status status;
};

// Collaborative documents (docs/collab.md, "In the SDK").
//
// A document's text changed in this device's replica: a local edit
// (insert_text, delete_text: local true), updates from the server (another
// participant's edit, or what open_document fetched: local false), or the
// replica started again from the server's state after the server refused an
// edit (see DocumentFailed). `text` is the whole text after the change.
// pending: local edits the server has not acknowledged yet.
struct DocumentChanged {
  std::string channel;
  std::string title;
  std::string text;
  std::uint64_t version = 0;  // DocumentView::version
  bool local = false;
  std::uint64_t pending = 0;
};

// Another participant's cursor in an open document: `cursor` and `anchor`
// are code-point positions (a selection from anchor to cursor; absent: no
// cursor), name and color ("#rrggbb") as they set them. gone: they closed the
// document, disconnected, or were not heard of for 30 s: drop their cursor.
struct DocumentAwareness {
  std::string channel;
  std::string title;
  std::string user;
  std::string device;
  std::optional<std::uint64_t> cursor;
  std::optional<std::uint64_t> anchor;
  std::string name;
  std::string color;
  bool gone = false;
};

// Answer to Client::list_documents, in title order. complete false: the
// server could not be asked and `docs` are the documents this device's
// cache holds (title, kind and size only).
struct DocumentsLoaded {
  RequestId request = 0;
  std::string channel;
  Status status;
  std::vector<DocumentInfo> docs;
  bool complete = true;
};

// The server refused this device's edits to a document for good (forbidden
// for a read-only member, muted, not_member, doc_too_large, invalid_update):
// they left the outbox (`dropped` of them), and the replica is being started
// again from the server's state, which a DocumentChanged brings once the
// document is open again (until then, edits of it fail with not_found,
// reason no_such_doc).
struct DocumentFailed {
  std::string channel;
  std::string title;
  Status status;
  std::uint64_t dropped = 0;
};

using Event =
    std::variant<StateChanged, MessageReceived, MessagePending, MessageSent, MessageFailed,
                 ChannelRequestDone, HistoryLoaded, TypingChanged, ReceiptUpdated, SyncProgress,
                 ChannelInfoLoaded, NotificationReceived, UnreadChanged, NotificationLevelChanged,
                 PresenceChanged, PresenceNotified, OnlineCountChanged, IdentityChanged,
                 SafetyNumberLoaded, SessionReset, MessageUpdated, DevicesLoaded,
                 BlockedUsersLoaded, DocumentChanged, DocumentAwareness, DocumentsLoaded,
                 DocumentFailed>;

}  // namespace parley
