// parley/types.hpp - the values the SDK hands to apps: messages, channels, ids.
//
//   for (const parley::Message& m : page.messages)
//     std::printf("#%llu %s: %s\n", (unsigned long long)m.seq, m.sender.c_str(), m.text.c_str());
//
// All types here are plain values: safe to copy and to move between threads.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/export.hpp"

namespace parley {

// A client-generated 128-bit message id, written as 32 lowercase hex digits.
struct PARLEY_EXPORT MessageId {
  std::array<std::uint8_t, 16> bytes{};

  static MessageId random();
  // Parses 32 hex digits (either case); false if `hex` is anything else.
  static bool parse(const std::string& hex, MessageId* out);
  std::string hex() const;
  bool operator==(const MessageId&) const = default;
};

// What happened at a position of a channel's sequence. In every kind `sender`
// is the user who did it; `target` the member it was done to.
enum class EventKind {
  message,          // a text message
  create,           // the channel was created (seq 1); meta and channel_kind set
  join,             // sender joined
  leave,            // sender left
  invite,           // sender added target (role member)
  remove,           // sender removed target from the channel
  ban,              // sender banned target (until_ms, 0: no expiry); target is no longer a member
  unban,            // sender lifted target's ban
  mute,             // sender muted target (until_ms, 0: no expiry)
  unmute,           // sender lifted target's mute
  role,             // target's role is now `role` (a change or an ownership transfer)
  meta,             // sender changed the metadata: the fields set in `meta`
  deletion,         // sender deleted the message at seq `ref` (wire name "delete")
  pin,              // sender pinned the message at seq `ref`
  unpin,            // sender unpinned the message at seq `ref`
  system,           // a system message from a server administrator (text)
  channel_deleted,  // an administrator deleted the channel; nothing follows
  doc,              // sender created the collaborative document `title` (docs/collab.md)
};
PARLEY_EXPORT const char* to_string(EventKind kind);
PARLEY_EXPORT bool parse_event_kind(std::string_view text, EventKind* out);

// A channel's descriptive metadata. In a `meta` event only the fields that
// changed are set; an empty string clears a field.
struct ChannelMeta {
  std::optional<std::string> name;         // display name, up to 128 bytes
  std::optional<std::string> topic;        // up to 512 bytes
  std::optional<std::string> description;  // up to 2048 bytes
  std::optional<std::string> avatar_url;   // http(s) URL, up to 1024 bytes
  std::optional<std::string> data;         // the app's own JSON object, up to 4096 bytes
  bool operator==(const ChannelMeta&) const = default;
};

// Where a message of ours stands.
enum class DeliveryState {
  pending,  // in the durable outbox, not yet acknowledged
  sent,     // stored by the server: has seq and server timestamp
  failed,   // refused by the server for good
};
PARLEY_EXPORT const char* to_string(DeliveryState state);

// A mention in a message's text, found by the server when the message was
// sent: `length` bytes at byte `offset` (the "@" included) name `user`, or
// are "@channel" (every member) or "@here" (the members online then).
struct Mention {
  std::size_t offset = 0;
  std::size_t length = 0;
  std::string user;  // a user name, "@channel" or "@here"
  bool operator==(const Mention&) const = default;
};

// The mentions in `text` (docs/notifications.md, "Mentions"): "@" at the start
// or after a character that cannot be part of a user name, followed by a
// valid user name (a final "." is not part of it); "@channel" and "@here" are
// the special ones. At most 50, in order.
PARLEY_EXPORT std::vector<Mention> find_mentions(std::string_view text);

// One entry of a channel's gap-free sequence. `id` and `text` belong to kind
// message (text also to system); the fields after them to the kinds that
// name them above, and are empty otherwise.
struct Message {
  std::string channel;
  std::uint64_t seq = 0;        // 0 while pending
  EventKind kind = EventKind::message;
  std::string sender;           // user name
  std::string id;               // client id, 32 hex digits
  std::string text;             // empty once deleted
  std::int64_t ts_ms = 0;       // server time, ms since the Unix epoch (local time while pending)
  DeliveryState state = DeliveryState::sent;
  bool deleted = false;         // a message whose text was deleted (a later deletion event)
  std::string target;           // invite, remove, ban, unban, mute, unmute, role
  std::string role;             // role: the new role ("owner", "admin", ...)
  std::int64_t until_ms = 0;    // ban, mute: when it ends, ms since the epoch; 0: never
  std::uint64_t ref = 0;        // deletion, pin, unpin: the seq of the message
  std::string channel_kind;     // create: "public", "private", "direct" or "broadcast"
  ChannelMeta meta;             // create, meta
  std::vector<Mention> mentions;  // message
  std::string title;            // doc: the document's title
  // A direct message, end-to-end encrypted: the server never had `text`.
  bool e2e = false;
  // Set when this device could not decrypt it (then `text` is empty): for
  // example "no_session", "bad_message", "too_far_ahead" (docs/e2e.md).
  std::string e2e_error;
};

// A message of ours in the outbox.
struct OutboxEntry {
  std::string channel;
  std::string id;
  std::string text;
  DeliveryState state = DeliveryState::pending;
  std::string error;            // reason code when failed
};

// A channel this user is a member of, as the cache knows it.
struct ChannelInfo {
  std::string name;
  std::uint64_t last_seq = 0;   // the highest seq known
  std::uint64_t read_to = 0;    // delivered to the app up to this seq (the live cursor)
  bool member = true;
};

// How far one message has got, from the receipt cursors the cache holds:
// among the channel's members other than the message's sender, how many have
// it on at least one device, and how many have read it.
struct ReceiptSummary {
  std::uint32_t members = 0;
  std::uint32_t delivered = 0;
  std::uint32_t read = 0;
};

// Presence (docs/presence.md, "In the SDK and the CLI").
// How a user appears to others, derived by the server from their connections.
enum class PresenceStatus {
  online,   // connected, and active within the server's idle time
  away,     // connected but idle, or set to away
  offline,  // no connection (after the grace period), or invisible
};
PARLEY_EXPORT const char* to_string(PresenceStatus status);
// Parses "online", "away" or "offline"; false for anything else.
PARLEY_EXPORT bool parse_presence_status(std::string_view text, PresenceStatus* out);

// How this user chooses to appear (Client::set_presence), on every device.
enum class PresenceMode {
  online,     // automatic: online while active, away when idle
  away,       // away while connected
  invisible,  // offline to everyone else; this user's own devices see the truth
};
PARLEY_EXPORT const char* to_string(PresenceMode mode);
// Parses "online", "away" or "invisible"; false for anything else.
PARLEY_EXPORT bool parse_presence_mode(std::string_view text, PresenceMode* out);

// A user's presence as the server last told this client. For this user's own
// presence, `status` is the real one (online or away even while invisible)
// and `invisible` and `hide_last_seen` are their settings; for others both
// are false.
struct Presence {
  std::string user;
  PresenceStatus status = PresenceStatus::offline;
  // Offline users only: when they were last seen online (ms since the epoch);
  // absent when they hide it, or were never seen.
  std::optional<std::int64_t> last_seen_ms;
  std::optional<std::string> text;            // custom status text, when set
  std::optional<std::int64_t> text_until_ms;  // when the text expires; absent: never
  bool invisible = false;
  bool hide_last_seen = false;
  bool operator==(const Presence&) const = default;
};

// Collaborative documents (docs/collab.md, "In the SDK"). A document's text
// as this device's cache holds it (Client::document_text): with this device's
// edits, acknowledged or not, and the others' edits received so far.
struct DocumentView {
  std::string text;
  // Characters ever inserted plus characters deleted: two replicas holding the
  // same edits have the same version (the server's DocAck and doc_list count
  // the same way).
  std::uint64_t version = 0;
  std::uint64_t pending_updates = 0;  // local edits the server has not acknowledged
};

// One document of a channel, as Client::list_documents lists it.
struct DocumentInfo {
  std::string title;
  std::string kind;  // "text"
  std::string creator;
  std::int64_t created_ms = 0;
  std::uint64_t seq = 0;      // its "doc" event in the channel
  std::uint64_t size = 0;     // visible characters
  std::uint64_t version = 0;  // see DocumentView::version
};

// Rules shared by the SDK and the server: 1-64 bytes of UTF-8, no spaces and
// no control characters. Returns an empty string when valid, else why not.
PARLEY_EXPORT std::string check_channel_name(const std::string& name);
// User names: 1-64 characters from [A-Za-z0-9_.@-], not starting with '.' or '-'.
PARLEY_EXPORT std::string check_user_name(const std::string& name);

// Formats ms since the Unix epoch as ISO-8601 UTC with milliseconds.
PARLEY_EXPORT std::string format_timestamp(std::int64_t ts_ms);

}  // namespace parley
