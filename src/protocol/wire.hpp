// The wire messages of protocol parley.v1 as plain structs, shared by the
// client and the server. docs/protocol.md is their specification; codec.hpp
// turns them into JSON text frames and back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace parley::wire {

inline constexpr const char* kSubprotocol = "parley.v1";
inline constexpr std::size_t kMaxTextBytes = 8192;
inline constexpr std::uint32_t kMaxHistoryLimit = 500;
inline constexpr std::size_t kDefaultMaxFrame = 64 * 1024;
// A history reply is one frame of at most about this many bytes (clients
// accept frames of several MiB; client-to-server frames stay small).
inline constexpr std::size_t kMaxHistoryPageBytes = 1024 * 1024;
// Channel metadata limits, in bytes (docs/channels.md).
inline constexpr std::size_t kMaxMetaName = 128;
inline constexpr std::size_t kMaxMetaTopic = 512;
inline constexpr std::size_t kMaxMetaDescription = 2048;
inline constexpr std::size_t kMaxMetaAvatar = 1024;
inline constexpr std::size_t kMaxMetaData = 4096;
inline constexpr std::size_t kMaxReportReason = 1024;
// Presence (docs/presence.md).
inline constexpr std::size_t kMaxStatusText = 256;       // bytes of custom status text
inline constexpr std::size_t kMaxPresenceUsers = 100;    // users per watch or get_presence
inline constexpr std::size_t kMaxWatchedUsers = 1000;    // users watched by one connection
// End-to-end encryption (docs/e2e.md).
inline constexpr std::size_t kMaxOneTimePerRequest = 100;  // one-time prekeys per keys request
inline constexpr std::size_t kMaxOneTimeStored = 200;      // per device, on the server
inline constexpr std::size_t kOneTimeLowWater = 20;        // keys_state pushed below this
inline constexpr std::size_t kMaxEnvelopes = 16;           // recipients of one e2e message
inline constexpr std::size_t kMaxEnvelopeBody = 12000;     // base64 characters of one body
// Several devices, recovery, blocks (docs/e2e.md, "Devices").
inline constexpr std::size_t kMaxDevicesPerUser = 8;       // devices with keys, per user
inline constexpr std::size_t kMaxNoticesPerDevice = 1000;  // e2e_notice frames queued
inline constexpr std::size_t kMaxBlockedUsers = 1000;      // per user
// Collaborative documents (docs/collab.md, "Documents in channels").
inline constexpr std::size_t kMaxDocTitle = 128;          // bytes of UTF-8
inline constexpr std::size_t kMaxDocUpdate = 32 * 1024;   // base64 characters of one update
inline constexpr std::size_t kMaxDocChars = 1u << 20;     // characters ever inserted, per doc
inline constexpr std::size_t kMaxDocMentions = 10;        // users named by one update
inline constexpr std::size_t kMaxDocsOpen = 100;          // documents open per connection
inline constexpr std::size_t kMaxAwarenessName = 64;      // bytes of the display name
inline constexpr std::uint32_t kAwarenessPerSecond = 10;  // awareness updates per connection
inline constexpr std::int64_t kAwarenessLifetimeMs = 30000;  // without a refresh

// Channel metadata (create, set_meta, events, channel_info). `data` holds the
// text of a JSON object. Absent: unchanged (or unset); "": cleared.
struct Meta {
  std::optional<std::string> name{};
  std::optional<std::string> topic{};
  std::optional<std::string> description{};
  std::optional<std::string> avatar{};
  std::optional<std::string> data{};
};

// ---- client to server -------------------------------------------------------

struct Auth {
  std::uint64_t rid = 0;
  std::string token;
  std::optional<std::string> device{};  // the device's stable id
  std::optional<std::string> client{};  // free-form software name, for logs
  // true: this connection wants notification, unread and notify events
  // (docs/notifications.md). Absent: it gets none of them.
  std::optional<bool> notifications{};
  // true: this connection wants the presence of its channels' members, its
  // own presence and online counts (docs/presence.md). Absent: it gets
  // presence only for the users it watches.
  std::optional<bool> presence{};
};
struct CreateChannel {
  std::uint64_t rid = 0;
  std::string channel;
  std::optional<std::string> kind{};  // "public" (default), "private" or "broadcast"
  std::optional<Meta> meta{};
};
// The direct channel of this user and `user`, created when it does not exist
// yet and rejoined when this user had left it. Reply: ok.
struct OpenDirect {
  std::uint64_t rid = 0;
  std::string user;
};
// A membership change made to `user` by this user. action: "invite",
// "remove", "ban", "unban", "mute", "unmute", "role" (with role) or
// "transfer" (ownership). seconds: for ban and mute, how long; absent or 0:
// until lifted. Reply: ok with the event's seq.
struct MemberAction {
  std::uint64_t rid = 0;
  std::string channel;
  std::string action;
  std::string user;
  std::optional<std::string> role{};
  std::optional<std::uint64_t> seconds{};
};
// Changes the fields of `meta` that are present. Reply: ok.
struct SetMeta {
  std::uint64_t rid = 0;
  std::string channel;
  Meta meta;
};
// Deletes the message at `seq`. Reply: ok with the deletion event's seq.
struct DeleteMessage {
  std::uint64_t rid = 0;
  std::string channel;
  std::uint64_t seq = 0;
};
// Pins (pinned true) or unpins the message at `seq`. Reply: ok.
struct PinMessage {
  std::uint64_t rid = 0;
  std::string channel;
  std::uint64_t seq = 0;
  bool pinned = true;
};
// Reports the message at `seq` to the server's administrators. Reply: ok, seq 0.
// What a reporter discloses of a direct message (docs/security.md,
// "Verifiable reports"): the plaintext and its franking key, with what the
// message carried (sender device, id, server time, commitment, tag).
struct FrankingOpening {
  std::string sender;
  std::string device;
  std::string id;
  std::int64_t ts = 0;
  std::string text;
  std::string key;     // base64 of 32 bytes
  std::string commit;  // base64 of 32 bytes
  std::string tag;     // base64 of 32 bytes
};
// Reports the message at `seq`. In a direct channel, `e2e` is required and
// must verify. Reply: ok.
struct Report {
  std::uint64_t rid = 0;
  std::string channel;
  std::uint64_t seq = 0;
  std::string reason;
  std::optional<FrankingOpening> e2e{};
};
// The channel's kind, metadata, members with their roles, bans and pins.
// Reply: channel_info.
struct ChannelInfoRequest {
  std::uint64_t rid = 0;
  std::string channel;
};
// This user's notification level for `channel` ("all", "mentions" or
// "none"), on every device; mute_until (ms since the epoch): plain messages
// do not notify before then (0 or absent: not muted). Reply: ok, seq 0.
struct Notify {
  std::uint64_t rid = 0;
  std::string channel;
  std::string level;
  std::optional<std::int64_t> mute_until{};
};
// Server administration; needs a token with the admin claim. action:
// "channels", "users", "reports", "ban_user" (user, seconds), "unban_user"
// (user), "delete_channel" (channel), "system_message" (channel, text).
// Reply: admin_result.
struct Admin {
  std::uint64_t rid = 0;
  std::string action;
  std::optional<std::string> channel{};
  std::optional<std::string> user{};
  std::optional<std::string> text{};
  std::optional<std::uint64_t> seconds{};
};
struct JoinChannel {
  std::uint64_t rid = 0;
  std::string channel;
};
struct LeaveChannel {
  std::uint64_t rid = 0;
  std::string channel;
};
// ---- end-to-end encryption (docs/e2e.md) ---------------------------------
// Keys are base64 (standard alphabet, with padding). An identity is 64 bytes:
// the Ed25519 public key followed by the X25519 public key.

// A prekey signed by the identity's Ed25519 key (a detached signature of the
// 32-byte X25519 public key).
struct SignedKey {
  std::uint32_t id = 0;
  std::string key;        // base64 of 32 bytes
  std::string signature;  // base64 of 64 bytes
};
struct OneTimeKey {
  std::uint32_t id = 0;
  std::string key;  // base64 of 32 bytes
};
// Publishes this device's keys (type "keys"). The first publish, and any
// with a new identity, carries identity, signed_prekey and last_resort; a
// new identity replaces the device's keys (its one-time prekeys are
// dropped). Later: a rotated signed prekey and more one-time prekeys.
// Reply: keys_state.
struct PublishKeys {
  std::uint64_t rid = 0;
  std::string identity;
  std::optional<SignedKey> signed_prekey{};
  std::optional<SignedKey> last_resort{};
  std::optional<std::vector<OneTimeKey>> one_time{};
};
// The devices of `user` with their prekey bundles (type "bundle"): each
// bundle takes one of the device's one-time prekeys, which the server hands
// out once. identities_only: just the identities; nothing is taken.
// Reply: bundles.
struct GetBundle {
  std::uint64_t rid = 0;
  std::string user;
  std::optional<bool> identities_only{};
  std::optional<std::string> device{};  // only this device's bundle
};
// What starts a session (X3DH section 3.3): sent with each message until the
// responder has answered.
struct PrekeyHeader {
  std::string identity;   // the sender device's identity (base64, 64 bytes)
  std::string ephemeral;  // base64 of 32 bytes
  std::uint32_t signed_prekey = 0;
  std::optional<std::uint32_t> one_time{};  // a one-time or the last-resort prekey
};
// One recipient device's copy of an e2e message.
struct Envelope {
  std::string user;
  std::string device;
  std::optional<PrekeyHeader> prekey{};
  std::string body;  // base64: Double Ratchet header (40 bytes) || ciphertext
};
// The envelopes go to every device of both members except the sending one
// (docs/e2e.md, "Devices"). commit: the franking commitment (base64 of 32
// bytes), set by the sender. tag: the server's franking tag (base64 of 32
// bytes), added by the server when it stores the message.
struct E2e {
  std::string device;  // the sender's device
  std::vector<Envelope> to;
  std::optional<std::string> commit{};
  std::optional<std::string> tag{};
};

// A message (type "send"): text in channels, e2e (and no text) in direct
// channels.
struct Send {
  std::uint64_t rid = 0;
  std::string channel;
  std::string id;    // 32 lowercase hex digits
  std::string text;  // absent on the wire when empty and e2e is set
  std::optional<E2e> e2e{};
};
// Events of `channel` with after < seq < before, newest first when only
// `before` is given, oldest first otherwise; at most `limit`.
struct History {
  std::uint64_t rid = 0;
  std::string channel;
  std::optional<std::uint64_t> before{};
  std::optional<std::uint64_t> after{};
  std::uint32_t limit = 50;
};
struct ListChannels {
  std::uint64_t rid = 0;
};

// The user is typing (active) or stopped. Never stored; relayed to the
// members connected now. No reply unless refused.
struct Typing {
  std::uint64_t rid = 0;
  std::string channel;
  bool active = true;
};
// A receipt cursor: kind "delivered" (this device has received the channel up
// to seq) or "read" (this user has read it up to seq). Monotonic: the server
// keeps the highest. Reply: ok with seq = the cursor now stored.
struct Receipt {
  std::uint64_t rid = 0;
  std::string channel;
  std::string kind;
  std::uint64_t seq = 0;
};
// The channel's members and their latest receipt cursors. Reply: receipts.
struct ListReceipts {
  std::uint64_t rid = 0;
  std::string channel;
};

// Presence (docs/presence.md). This user's presence settings, on every
// device; each field present is changed. status: "online" (derived from
// activity), "away" or "invisible" (shown offline to others). text: custom
// status text ("" clears it), text_until: when it expires (ms since the
// epoch; 0 or absent: never). hide_last_seen: others get no last_seen.
// Reply: ok (channel "", seq 0).
struct SetPresence {
  std::uint64_t rid = 0;
  std::optional<std::string> status{};
  std::optional<std::string> text{};
  std::optional<std::int64_t> text_until{};
  std::optional<bool> hide_last_seen{};
};
// The user is active on this device (input, app in the foreground): resets
// this connection's idle timer. No reply unless refused.
struct Activity {
  std::uint64_t rid = 0;
};
// Subscribes this connection to the presence of `users` (1-100; at most 1000
// per connection) until unwatch or disconnect. notify: also mark the change
// that brings one of them online with "notify": true. Reply: presence_list
// (the snapshot), then presence events as they change.
struct Watch {
  std::uint64_t rid = 0;
  std::vector<std::string> users;
  std::optional<bool> notify{};
};
// Ends this connection's subscriptions to `users`. Reply: ok (channel "", seq 0).
struct Unwatch {
  std::uint64_t rid = 0;
  std::vector<std::string> users;
};
// The presence of `users` (1-100) now, without subscribing. Reply: presence_list.
struct GetPresence {
  std::uint64_t rid = 0;
  std::vector<std::string> users;
};

// Removes one of this user's devices (type "remove_device"): its keys are
// deleted, its connections closed, and the id is refused from then on
// (device_removed). Reply: ok.
struct RemoveDevice {
  std::uint64_t rid = 0;
  std::string device;
};
// Blocks (blocked true or absent) or unblocks `user` (type "block"): no
// direct messages either way while blocked. Reply: blocks.
struct Block {
  std::uint64_t rid = 0;
  std::string user;
  std::optional<bool> blocked{};
};
// The users this user blocks (type "blocks"). Reply: blocks.
struct ListBlocks {
  std::uint64_t rid = 0;
};
// This device could not decrypt the e2e message at `seq` of direct `channel`
// (type "e2e_retry"): the sending device is asked to send it again in a new
// session. Reply: ok.
struct E2eRetry {
  std::uint64_t rid = 0;
  std::string channel;
  std::uint64_t seq = 0;
};
// The message at `seq` again, for the one device that asked (type
// "e2e_resend"); from the device that sent it. Reply: ok.
struct E2eResend {
  std::uint64_t rid = 0;
  std::string channel;
  std::uint64_t seq = 0;
  Envelope envelope;
};
// The notice `nid` is handled (type "e2e_ack"). Reply: ok.
struct E2eAck {
  std::uint64_t rid = 0;
  std::uint64_t nid = 0;
};

// ---- collaborative documents (docs/collab.md) ---------------------------------
// A document is named by (channel, title); title: 1-128 bytes of UTF-8 without
// control characters. `update` and `sv` are base64 (standard alphabet, with
// padding) of the CRDT engine's encodings (crdt::Document::take_update /
// encode_update, encode_state_vector). `version` of a replica: characters ever
// inserted plus characters deleted (replicas holding the same state have the
// same version).

// Creates document `title` in `channel` (type "doc_create"): appends an event
// of kind "doc" to the channel. Needs the post permission; not in direct
// channels. Reply: ok with the event's seq.
struct DocCreate {
  std::uint64_t rid = 0;
  std::string channel;
  std::string title;
  std::optional<std::string> kind{};  // "text" (the default; the only kind so far)
};
// Opens the document on this connection (type "doc_open"): `sv` is the state
// vector the client holds (empty string: nothing). Reply: doc_state with what
// the client lacks; from then on the connection gets the document's doc_update
// and doc_awareness events until doc_close or disconnect.
struct DocOpen {
  std::uint64_t rid = 0;
  std::string channel;
  std::string title;
  std::string sv;
};
// Stops the document's events on this connection (type "doc_close"). Reply: ok.
struct DocClose {
  std::uint64_t rid = 0;
  std::string channel;
  std::string title;
};
// An update of the document (type "doc_update"), applied, stored durably, then
// acknowledged (doc_ack) and sent to every other connection that has the
// document open. Needs the post permission and no active mute. mentions:
// members the inserted text mentions (at most 10): each is notified.
struct DocUpdate {
  std::uint64_t rid = 0;
  std::string channel;
  std::string title;
  std::string update;
  std::optional<std::vector<std::string>> mentions{};
};
// This connection's cursor in an open document (type "doc_awareness"):
// relayed to the document's other connections, never stored. cursor and
// anchor: code-point positions (selection from anchor to cursor; absent: no
// cursor). At most 10 per second per connection; others show it for 30 s
// unless refreshed. No reply unless refused.
struct DocAwareness {
  std::uint64_t rid = 0;
  std::string channel;
  std::string title;
  std::optional<std::uint64_t> cursor{};
  std::optional<std::uint64_t> anchor{};
  std::optional<std::string> name{};   // display name, up to 64 bytes
  std::optional<std::string> color{};  // "#rrggbb"
};
// The documents of `channel` (type "doc_list"). Reply: doc_list.
struct DocList {
  std::uint64_t rid = 0;
  std::string channel;
};

using ClientMessage =
    std::variant<Auth, CreateChannel, JoinChannel, LeaveChannel, Send, History, ListChannels, Typing,
                 Receipt, ListReceipts, OpenDirect, MemberAction, SetMeta, DeleteMessage,
                 PinMessage, Report, ChannelInfoRequest, Admin, Notify, SetPresence, Activity,
                 Watch, Unwatch, GetPresence, PublishKeys, GetBundle, RemoveDevice, Block,
                 ListBlocks, E2eRetry, E2eResend, E2eAck, DocCreate, DocOpen, DocClose,
                 DocUpdate, DocAwareness, DocList>;

// ---- server to client -------------------------------------------------------

// A mention found in a message's text (bytes [offset, offset + length)).
struct MentionInfo {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::string user;  // a user name, "@channel" or "@here"
};

// One entry of a channel's sequence. kind: "message", "create", "join",
// "leave", "invite", "remove", "ban", "unban", "mute", "unmute", "role",
// "meta", "delete", "pin", "unpin", "system", "channel_deleted", "doc"
// (docs/protocol.md lists which fields each carries).
struct ChannelEvent {
  std::string channel;
  std::uint64_t seq = 0;
  std::string kind;
  std::string sender;
  std::int64_t ts = 0;              // server time, ms since the Unix epoch
  std::optional<std::string> id{};    // message
  std::optional<std::string> text{};  // message (absent once deleted), system
  std::optional<bool> deleted{};      // message: true once deleted
  std::optional<std::string> target{};        // the member acted on
  std::optional<std::string> role{};          // role: the new role
  std::optional<std::int64_t> until{};        // ban, mute: expiry (ms since the epoch)
  std::optional<std::uint64_t> ref{};         // delete, pin, unpin: the message's seq
  std::optional<std::string> channel_kind{};  // create
  std::optional<Meta> meta{};                 // create, meta
  std::optional<std::vector<MentionInfo>> mentions{};  // message: when it mentions anyone
  std::optional<E2e> e2e{};  // message in a direct channel (absent once deleted)
  std::optional<std::string> title{};     // doc: the document created
  std::optional<std::string> doc_kind{};  // doc: its kind ("text")
};
struct ChannelState {
  std::string channel;
  std::uint64_t last_seq = 0;
  std::optional<std::string> kind{};  // the channel's kind
  std::optional<std::string> role{};  // the user's role in it
  std::optional<std::string> level{};          // notification level, when not "all"
  std::optional<std::int64_t> mute_until{};    // when muted for plain messages
  std::optional<std::uint64_t> unread{};       // messages after the user's read cursor
  std::optional<std::uint64_t> mentions{};     // of those, the ones mentioning the user
};
// This device's keys as the server holds them (type "keys_state"): the reply
// to keys, in the welcome (when the device has published), and pushed with
// rid 0 when bundles taken leave fewer than kOneTimeLowWater one-time prekeys.
struct KeysState {
  std::uint64_t rid = 0;
  std::string identity;
  std::uint32_t signed_prekey = 0;
  std::uint32_t last_resort = 0;
  std::uint64_t one_time = 0;  // one-time prekeys left
};
struct Welcome {
  std::uint64_t rid = 0;
  std::string user;
  std::string device;
  std::int64_t server_time = 0;
  std::uint64_t max_frame = 0;
  std::vector<ChannelState> channels;  // the user's memberships
  std::optional<KeysState> keys{};     // absent: this device has published none
};
// Reply to create, join and leave. seq: the membership event, 0 for a no-op.
struct Ok {
  std::uint64_t rid = 0;
  std::string channel;
  std::uint64_t seq = 0;
  std::uint64_t last_seq = 0;
};
// Reply to send. duplicate: the id was seen before; seq and ts are the original.
struct Ack {
  std::uint64_t rid = 0;
  std::string channel;
  std::string id;
  std::uint64_t seq = 0;
  std::int64_t ts = 0;
  bool duplicate = false;
};
struct HistoryPage {
  std::uint64_t rid = 0;
  std::string channel;
  std::uint64_t last_seq = 0;
  std::vector<ChannelEvent> events;  // ascending seq
};
struct ChannelList {
  std::uint64_t rid = 0;
  std::vector<ChannelState> channels;
};
struct Error {
  std::optional<std::uint64_t> rid{};  // the request refused, if any
  std::string code;
  std::string message;
  std::optional<std::string> id{};     // the message id, for a refused send
  std::optional<std::uint64_t> retry_after_ms{};  // rate_limited: when to try again
  std::optional<std::int64_t> until{};            // banned, muted: when it ends (absent: never)
};

struct MemberInfo {
  std::string user;
  std::string role;
  std::optional<std::int64_t> muted_until{};  // 0: muted until lifted
};
struct BanInfo {
  std::string user;
  std::int64_t until = 0;  // 0: until lifted
};
// Reply to info (type "channel_info"). bans: only for those who may ban.
struct ChannelInfoReply {
  std::uint64_t rid = 0;
  std::string channel;
  std::string kind;
  std::uint64_t last_seq = 0;
  Meta meta;
  std::vector<MemberInfo> members;
  std::vector<BanInfo> bans;
  std::vector<std::uint64_t> pinned;
};

struct AdminChannel {
  std::string channel;
  std::string kind;
  std::uint64_t members = 0;
  std::uint64_t last_seq = 0;
};
struct AdminUser {
  std::string user;
  std::int64_t first_seen = 0;
  std::int64_t last_seen = 0;
  std::optional<std::int64_t> banned_until{};  // 0: until lifted
};
struct AdminReport {
  std::uint64_t id = 0;
  std::string channel;
  std::uint64_t seq = 0;
  std::string reporter;
  std::string reason;
  std::int64_t ts = 0;
  std::string sender;               // the reported message's author
  std::optional<std::string> text{};  // its text, unless deleted since
  // True for a report of a direct message whose disclosed text the server
  // verified (message franking); `text` is then the disclosed text.
  std::optional<bool> verified{};
};
// Reply to admin (type "admin_result"): the lists the action asked for.
struct AdminResult {
  std::uint64_t rid = 0;
  std::string action;
  std::optional<std::vector<AdminChannel>> channels{};
  std::optional<std::vector<AdminUser>> users{};
  std::optional<std::vector<AdminReport>> reports{};
  std::optional<std::uint64_t> seq{};  // system_message: the event's seq
};

// Something the user should be told of (type "notification"), sent to every
// connection of the user according to their level for the channel. kind:
// "message", "mention", or the membership event that concerns them
// ("invite", "remove", "ban", "role").
// Documents: "doc" (a document was created; seq is its event) and
// "doc_mention" (`sender` mentioned the user in document `title`; seq is the
// document's creation event).
struct NotificationEvent {
  std::string channel;
  std::uint64_t seq = 0;
  std::string kind;
  std::string sender;
  std::optional<std::string> title{};  // doc, doc_mention
};
// The user's unread and mention counts of a channel changed (type "unread").
struct UnreadEvent {
  std::string channel;
  std::uint64_t unread = 0;
  std::uint64_t mentions = 0;
};
// The user's notification level changed on another device (type "notify").
struct NotifyEvent {
  std::string channel;
  std::string level;
  std::optional<std::int64_t> mute_until{};
};

// Relayed typing signal (type "typing").
struct TypingEvent {
  std::string channel;
  std::string user;
  bool active = true;
};
// A receipt cursor moved (type "receipt"). device: for kind "delivered".
struct ReceiptEvent {
  std::string channel;
  std::string user;
  std::string kind;
  std::uint64_t seq = 0;
  std::optional<std::string> device{};
};
struct ReceiptCursor {
  std::string user;
  std::optional<std::string> device{};  // for delivered cursors
  std::uint64_t seq = 0;
};
// Reply to receipts (type "receipts").
struct ReceiptList {
  std::uint64_t rid = 0;
  std::string channel;
  std::vector<std::string> members;
  std::vector<ReceiptCursor> read;       // one per user
  std::vector<ReceiptCursor> delivered;  // one per user and device
};

// A user's presence (type "presence"; also the items of presence_list).
// status: "online", "away" or "offline". last_seen (ms since the epoch):
// for an offline user, when they were last seen online; absent while online
// or away, when hidden by the user, or when never seen. text: custom status
// text, absent when unset or expired. The user's own connections also get
// invisible and hide_last_seen (their settings) and their real status.
// notify: this change brought a user watched with notify online.
struct PresenceEvent {
  std::string user;
  std::string status;
  std::optional<std::int64_t> last_seen{};
  std::optional<std::string> text{};
  std::optional<std::int64_t> text_until{};
  std::optional<bool> invisible{};
  std::optional<bool> hide_last_seen{};
  std::optional<bool> notify{};
};
// Reply to watch and get_presence; with rid 0 and `channel`, the snapshot of
// a channel's members sent after the welcome and after joining a channel.
struct PresenceList {
  std::uint64_t rid = 0;
  std::optional<std::string> channel{};
  std::vector<PresenceEvent> users;
};
// A channel too large for per-member presence (type "online_count"): how many
// of its members are online or away. Sent after the welcome and when it
// changes, at most once per count interval (1 s).
struct OnlineCount {
  std::string channel;
  std::uint64_t online = 0;
  std::uint64_t members = 0;
};

// One device in a bundles reply. signed_prekey: absent with identities_only.
// one_time: a one-time prekey, or the last-resort prekey (last_resort true)
// when the device has none left.
struct DeviceBundle {
  std::string device;
  std::string identity;
  std::optional<SignedKey> signed_prekey{};
  std::optional<OneTimeKey> one_time{};
  std::optional<bool> last_resort{};
};
// Reply to bundle (type "bundles"); devices in device order.
struct Bundles {
  std::uint64_t rid = 0;
  std::string user;
  std::vector<DeviceBundle> devices;
};

// Reply to block and blocks: every user this user blocks, in name order.
struct Blocks {
  std::uint64_t rid = 0;
  std::vector<std::string> users;
};
// Queued for one device until it sends e2e_ack with `nid` (type
// "e2e_notice"); pushed live and after each welcome. kind "retry": `user`'s
// device `device` could not decrypt this device's message at `seq` (id `id`)
// and asks for it again. kind "resend": `user`'s device `device` sends that
// message again in `envelope`, with the commit and tag of the original.
struct E2eNotice {
  std::uint64_t nid = 0;
  std::string kind;
  std::string channel;
  std::uint64_t seq = 0;
  std::string id;
  std::string user;
  std::string device;
  std::int64_t ts = 0;  // the original message's server time
  std::optional<Envelope> envelope{};
  std::optional<std::string> commit{};
  std::optional<std::string> tag{};
};

// Reply to doc_open (type "doc_state"): `update` holds what the client lacked
// (every character it had not, and the whole delete set); `sv` is the
// server's state vector, so the client can send what the server lacks.
struct DocState {
  std::uint64_t rid = 0;
  std::string channel;
  std::string title;
  std::string kind;
  std::string update;
  std::string sv;
  std::uint64_t version = 0;  // the server's replica, after the update
};
// Reply to doc_update (type "doc_ack"): the update is durable.
struct DocAck {
  std::uint64_t rid = 0;
  std::string channel;
  std::string title;
  std::uint64_t version = 0;  // the server's replica, with the update applied
};
// Another connection's update (type "doc_update"), to the connections that
// have the document open, in the order the server applied them.
struct DocUpdateEvent {
  std::string channel;
  std::string title;
  std::string update;
  std::string user;
  std::string device;
  std::uint64_t version = 0;
};
// A participant's cursor (type "doc_awareness"); gone: they closed the
// document or disconnected (drop their cursor now).
struct DocAwarenessEvent {
  std::string channel;
  std::string title;
  std::string user;
  std::string device;
  std::optional<std::uint64_t> cursor{};
  std::optional<std::uint64_t> anchor{};
  std::optional<std::string> name{};
  std::optional<std::string> color{};
  std::optional<bool> gone{};
};
struct DocInfo {
  std::string title;
  std::string kind;
  std::string creator;
  std::int64_t created = 0;  // ms since the epoch
  std::uint64_t seq = 0;     // its "doc" event
  std::uint64_t size = 0;    // visible characters
  std::uint64_t version = 0;
};
// Reply to doc_list (type "doc_list"), in title order.
struct DocListReply {
  std::uint64_t rid = 0;
  std::string channel;
  std::vector<DocInfo> docs;
};

using ServerMessage =
    std::variant<Welcome, Ok, Ack, HistoryPage, ChannelList, Error, ChannelEvent, TypingEvent,
                 ReceiptEvent, ReceiptList, ChannelInfoReply, AdminResult, NotificationEvent,
                 UnreadEvent, NotifyEvent, PresenceEvent, PresenceList, OnlineCount, KeysState,
                 Bundles, Blocks, E2eNotice, DocState, DocAck, DocUpdateEvent,
                 DocAwarenessEvent, DocListReply>;

// ---- error codes (docs/errors.md) -----------------------------------------

namespace code {
inline constexpr const char* kBadFrame = "bad_frame";
inline constexpr const char* kInvalidUtf8 = "invalid_utf8";
inline constexpr const char* kFrameTooLarge = "frame_too_large";
inline constexpr const char* kBinaryFrame = "binary_frame";
inline constexpr const char* kUnknownType = "unknown_type";
inline constexpr const char* kMissingField = "missing_field";
inline constexpr const char* kBadField = "bad_field";
inline constexpr const char* kNotAuthenticated = "not_authenticated";
inline constexpr const char* kAlreadyAuthenticated = "already_authenticated";
inline constexpr const char* kInvalidToken = "invalid_token";
inline constexpr const char* kTokenExpired = "token_expired";
inline constexpr const char* kInvalidName = "invalid_name";
inline constexpr const char* kInvalidId = "invalid_id";
inline constexpr const char* kInvalidText = "invalid_text";
inline constexpr const char* kInvalidLimit = "invalid_limit";
inline constexpr const char* kInvalidKind = "invalid_kind";
inline constexpr const char* kInvalidSeq = "invalid_seq";
inline constexpr const char* kChannelExists = "channel_exists";
inline constexpr const char* kNoSuchChannel = "no_such_channel";
inline constexpr const char* kNotMember = "not_member";
inline constexpr const char* kShuttingDown = "shutting_down";
inline constexpr const char* kForbidden = "forbidden";
inline constexpr const char* kBanned = "banned";
inline constexpr const char* kMuted = "muted";
inline constexpr const char* kFiltered = "filtered";
inline constexpr const char* kRateLimited = "rate_limited";
inline constexpr const char* kInvalidUser = "invalid_user";
inline constexpr const char* kInvalidRole = "invalid_role";
inline constexpr const char* kInvalidAction = "invalid_action";
inline constexpr const char* kInvalidMeta = "invalid_meta";
inline constexpr const char* kNoSuchMessage = "no_such_message";
inline constexpr const char* kInvalidLevel = "invalid_level";
inline constexpr const char* kInvalidStatus = "invalid_status";
inline constexpr const char* kTooManyUsers = "too_many_users";
inline constexpr const char* kE2eRequired = "e2e_required";
inline constexpr const char* kInvalidE2e = "invalid_e2e";
inline constexpr const char* kInvalidKeys = "invalid_keys";
inline constexpr const char* kNoKeys = "no_keys";
inline constexpr const char* kBlocked = "blocked";
inline constexpr const char* kStaleDevices = "stale_devices";
inline constexpr const char* kDeviceRemoved = "device_removed";
inline constexpr const char* kNoSuchDevice = "no_such_device";
inline constexpr const char* kTooManyDevices = "too_many_devices";
inline constexpr const char* kInvalidReport = "invalid_report";
inline constexpr const char* kInvalidTitle = "invalid_title";
inline constexpr const char* kDocExists = "doc_exists";
inline constexpr const char* kNoSuchDoc = "no_such_doc";
inline constexpr const char* kDocNotOpen = "doc_not_open";
inline constexpr const char* kInvalidUpdate = "invalid_update";
inline constexpr const char* kDocTooLarge = "doc_too_large";
inline constexpr const char* kTooManyDocs = "too_many_docs";
inline constexpr const char* kInternal = "internal";
}  // namespace code

// WebSocket close codes the server uses (RFC 6455 section 7.4; 4000-4999 are ours).
namespace close_code {
inline constexpr int kNormal = 1000;
inline constexpr int kGoingAway = 1001;      // server shutting down
inline constexpr int kPolicy = 1008;         // protocol violation
inline constexpr int kInvalidToken = 4001;
inline constexpr int kTokenExpired = 4002;
inline constexpr int kNotAuthenticated = 4003;
inline constexpr int kBanned = 4004;          // banned from the server by an administrator
inline constexpr int kDeviceRemoved = 4005;   // this device was removed by its user
}  // namespace close_code

}  // namespace parley::wire
