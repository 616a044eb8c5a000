// parley/client.hpp - the chat client.
//
//   parley::ClientOptions opts;
//   opts.server_url = "ws://127.0.0.1:7700";
//   opts.token = token;
//   opts.data_dir = "./alice";
//   auto client = parley::Client::open(opts);
//   if (!client) return fail(client.status());
//   (*client)->join_channel("general");
//   (*client)->send("general", "hello");
//   while (auto ev = (*client)->next_event(std::chrono::seconds(5))) handle(*ev);
//
// Safe to call from any thread. Calls return at once (send() after writing the
// outbox); results and updates arrive as events (events.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parley/events.hpp"
#include "parley/export.hpp"
#include "parley/options.hpp"
#include "parley/roles.hpp"
#include "parley/status.hpp"
#include "parley/types.hpp"

namespace parley {

// Which part of a channel's history to load.
struct HistoryQuery {
  // Only messages with seq < before; 0 means from the newest.
  std::uint64_t before = 0;
  // At most this many text messages (1-1000). Events of other kinds in the
  // range come along and do not count.
  std::uint32_t limit = 50;
};

// How a new channel starts (Client::create_channel). A direct channel is not
// created this way: see Client::open_direct.
struct ChannelOptions {
  ChannelKind kind = ChannelKind::public_channel;
  ChannelMeta meta;  // the fields to set; each within its limit (docs/channels.md)
};

// How much the cache holds (Client::cache_usage).
struct CacheUsage {
  std::uint64_t file_bytes = 0;  // DATA_DIR/parley.db
  std::uint64_t wal_bytes = 0;   // DATA_DIR/parley.db-wal
  std::uint64_t events = 0;      // channel events stored
  std::uint64_t evicted = 0;     // events evicted since open (to stay within budget)
};

// A channel's unread and mention counts, as the server last pushed them
// (Client::unread, Client::badge).
struct UnreadCount {
  std::uint64_t unread = 0;    // messages of others after this user's read cursor
  std::uint64_t mentions = 0;  // of those, the ones that mention this user
  bool operator==(const UnreadCount&) const = default;
};

// What set_presence changes; fields left empty stay as they are.
struct PresenceSettings {
  std::optional<PresenceMode> status;
  // Custom status text, up to 256 bytes of UTF-8; "" clears it (and its expiry).
  std::optional<std::string> text;
  // When the text expires (the server then clears it). Setting `text` without
  // it means no expiry; on its own it changes the expiry of the current text.
  std::optional<std::chrono::system_clock::time_point> text_until;
  // Others get no last seen time.
  std::optional<bool> hide_last_seen;
};

class PARLEY_EXPORT Client {
 public:
  // Opens (or creates) the cache in options.data_dir and starts the client's
  // thread. Fails with invalid_argument for bad options, corrupt or io_error
  // for a cache that cannot be used (unless options.rebuild_corrupt_cache:
  // then a corrupt cache is rebuilt). The caller owns the returned client.
  static Result<std::unique_ptr<Client>> open(ClientOptions options);

  // Closes the connection and stops the thread. Outbox entries stay in the
  // cache and are sent by the next client opened on the same directory.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts connecting, then keeps the connection up (reconnecting with backoff).
  void connect();
  // Closes the connection and stops reconnecting.
  void disconnect();
  // Tells the client the network just came back (or the app returned to the
  // foreground): skip the rest of the backoff wait and connect now.
  void reconnect_now();
  // Replaces the token (for example after token_expired) and reconnects.
  void set_token(std::string token);

  LifecycleState state() const;
  // The user named by the token.
  const std::string& user() const;

  // Channel membership. Completion: ChannelRequestDone with the same id.
  // The creator of a channel is its owner. Names starting with '@' are
  // reserved for direct channels. Requests made offline wait for the
  // connection up to ClientOptions::request_timeout, then fail with offline.
  RequestId create_channel(const std::string& name);
  RequestId create_channel(const std::string& name, const ChannelOptions& options);
  RequestId join_channel(const std::string& name);
  RequestId leave_channel(const std::string& name);
  // The direct channel of this user and `user`: created on first use, found
  // again by the pair afterwards. ChannelRequestDone::channel is its name
  // (chosen by the server; it starts with '@').
  RequestId open_direct(const std::string& user);

  // Moderation (docs/channels.md). Each completes with ChannelRequestDone,
  // whose seq is the event appended (0 for a no-op); the server checks the
  // permission and refuses with reasons such as forbidden, not_member,
  // banned, invalid_user, no_such_message. Arguments are checked here first
  // (invalid_argument with reason invalid_name, invalid_user, invalid_meta,
  // invalid_seq or invalid_text). A zero duration means until lifted.
  RequestId invite(const std::string& channel, const std::string& user);
  RequestId remove_member(const std::string& channel, const std::string& user);
  RequestId ban(const std::string& channel, const std::string& user,
                std::chrono::seconds duration = {});
  RequestId unban(const std::string& channel, const std::string& user);
  RequestId mute(const std::string& channel, const std::string& user,
                 std::chrono::seconds duration = {});
  RequestId unmute(const std::string& channel, const std::string& user);
  RequestId set_role(const std::string& channel, const std::string& user, Role role);
  // Makes `user` the owner; this user becomes an admin.
  RequestId transfer_ownership(const std::string& channel, const std::string& user);
  // Changes the fields of `meta` that are set; an empty string clears a field.
  RequestId set_meta(const std::string& channel, const ChannelMeta& meta);
  // Deletes the message at `seq` (one's own, or anyone's with delete_others):
  // its text leaves the server and every member's cache.
  RequestId delete_message(const std::string& channel, std::uint64_t seq);
  RequestId pin_message(const std::string& channel, std::uint64_t seq, bool pinned = true);
  // Reports the message at `seq` to the server's administrators (reason: 1-1024
  // bytes of UTF-8). Completes with seq 0. In a direct channel the report
  // discloses that one message's text to the server with its franking
  // opening, which the server verifies (docs/security.md, "Verifiable
  // reports"): only decrypted messages of the other user can be reported.
  RequestId report_message(const std::string& channel, std::uint64_t seq,
                           const std::string& reason);

  // Kind, metadata, members with roles, bans and pins. Completion:
  // ChannelInfoLoaded with the same id (from the cache when offline).
  RequestId load_channel_info(const std::string& channel);

  // From the cache, kept current by the channel's events, for the UI: whether
  // this user may do `permission` in `channel` now (false when not a member,
  // and for post while muted), and this user's role there (nullopt when not a
  // member or not known yet). The server makes the same checks and has the
  // last word. Fast: no network.
  bool can(const std::string& channel, Permission permission);
  std::optional<Role> role(const std::string& channel);
  // The channel's kind and metadata as the cache knows them (nullopt when unknown).
  std::optional<ChannelKind> channel_kind(const std::string& channel);
  std::optional<ChannelMeta> channel_meta(const std::string& channel);

  // End-to-end encrypted direct messages (docs/e2e.md). Every message sent to
  // a direct channel (a name starting with '@', from open_direct) is
  // encrypted on this device for each device of the other user (X3DH, then
  // the Double Ratchet); the server stores and relays only ciphertext.
  // Received ones are MessageReceived with Message::e2e set. This device's
  // keys are published before the client reports ready.
  //
  // The other user of a direct channel, and the direct channel with `user`,
  // as the cache knows them (nullopt when unknown). Fast: no network.
  std::optional<std::string> direct_peer(const std::string& channel);
  std::optional<std::string> direct_channel(const std::string& user);
  // The safety number of this user and `user`: SafetyNumberLoaded. Online it
  // asks the server for the contact's current identities first (an identity
  // change then also gives IdentityChanged); offline it answers from the cache.
  RequestId load_safety_number(const std::string& user);
  // Marks `user` verified (after comparing safety numbers) for the
  // identities the cache knows now, or not verified. Verification ends by
  // itself when an identity changes. Fails with not_found (reason no_keys)
  // when no identity of `user` is known yet. With `shown_number` (the number
  // the users compared), fails with invalid_argument (reason
  // safety_changed) when the identities changed since it was shown.
  Status verify_contact(const std::string& user, bool verified = true,
                        const std::string& shown_number = {});

  // This user's devices (docs/e2e.md, "Devices"). Every direct message goes
  // to each device of both users, this user's other devices included, so a
  // conversation reads the same on all of them. list_devices: DevicesLoaded.
  // remove_device: ChannelRequestDone (channel ""); the removed device stops
  // receiving at once, is disconnected, and can never connect again under
  // that id; contacts get IdentityChanged (removed_device) when they notice.
  RequestId list_devices();
  RequestId remove_device(const std::string& device);
  // Blocks (or unblocks) `user`: no direct message either way while
  // blocked (error blocked). Completion: BlockedUsersLoaded with the list.
  RequestId block_user(const std::string& user, bool blocked = true);
  RequestId load_blocked_users();

  // Writes a text message to the durable outbox and returns its id; works
  // offline. Then MessagePending, later MessageSent or MessageFailed.
  // Fails with invalid_argument for a bad channel name or text (empty, invalid
  // UTF-8, over 8192 bytes).
  Result<std::string> send(const std::string& channel, const std::string& text);

  // Loads history from the cache, asking the server for what the cache lacks.
  // Completion: HistoryLoaded with the same id.
  RequestId load_history(const std::string& channel, HistoryQuery query = {});

  // Typing indicator. Call with true as the user types (the SDK sends at most
  // one signal per 3 s) and false when the text is cleared; sending a message
  // in the channel also stops it. Ephemeral: nothing is sent while offline.
  void set_typing(const std::string& channel, bool typing);

  // Marks the channel read up to `seq` (0: everything received so far). The
  // read cursor is monotonic, kept in the cache and sent to the server when
  // connected. Fails with invalid_argument for a bad channel name.
  Status mark_read(const std::string& channel, std::uint64_t seq = 0);

  // Notifications (docs/notifications.md, "In the SDK and the CLI").
  // This user's level for `channel` on every device; mute_until silences
  // plain messages until then (mentions still notify unless the level is
  // none); nullopt or a time in the past: not muted. Completion:
  // ChannelRequestDone (seq 0), then NotificationLevelChanged if it changed.
  RequestId set_notification_level(
      const std::string& channel, NotificationLevel level,
      std::optional<std::chrono::system_clock::time_point> mute_until = {});
  // The level and mute as the cache knows them (kept in step by the welcome
  // and by changes from other devices); nullopt for an unknown channel.
  std::optional<NotificationLevel> notification_level(const std::string& channel);
  std::optional<std::chrono::system_clock::time_point> notification_muted_until(
      const std::string& channel);
  // The counts the server last gave for `channel` (zero when unknown). The
  // server computes them; mark_read lowers them once the server has the read
  // cursor and pushes the new counts (UnreadChanged).
  UnreadCount unread(const std::string& channel);
  // Totals over the channels this user is a member of, for an app badge:
  // mentions of every channel, unread messages of channels whose level is not
  // none (a channel set to none asked for no attention unless mentioned).
  UnreadCount badge();

  // Presence (docs/presence.md, "In the SDK and the CLI"). The server
  // publishes presence to the members of this user's small channels, to
  // watchers and to the user's own devices; each item arrives as
  // PresenceChanged and updates an in-memory cache that presence() reads.
  // The four requests complete with ChannelRequestDone (channel empty, seq 0)
  // and, like the channel requests, wait for a connection up to
  // request_timeout. Arguments are checked here first (invalid_argument with
  // reason invalid_user, too_many_users, invalid_text or invalid_status):
  // 1-100 valid user names per call.
  //
  // This user's status, custom text and privacy settings, on every device.
  RequestId set_presence(const PresenceSettings& settings);
  // Subscribes to `users`' presence: a snapshot (PresenceChanged for each,
  // before the completion), then their changes. With notify, the change that
  // brings one of them online also gives PresenceNotified. The client keeps
  // its watch list (at most 1000 users) and watches again after every
  // reconnect, which brings a fresh snapshot.
  RequestId watch_presence(const std::vector<std::string>& users, bool notify = false);
  RequestId unwatch_presence(const std::vector<std::string>& users);
  // The current presence of `users`, once, without subscribing: PresenceChanged
  // for each, then the completion.
  RequestId query_presence(const std::vector<std::string>& users);
  // The user did something (input, the app came to the foreground): keeps
  // them online rather than away. Cheap to call often: the SDK sends at most
  // one signal per 10 s, and nothing while offline. Sending a message or a
  // typing signal counts as activity by itself.
  void report_activity();
  // From the in-memory cache: the presence last received for `user` (nullopt
  // when none was), and the online count last received for a large channel.
  // Kept across reconnects until fresh snapshots replace them. Fast: no network.
  std::optional<Presence> presence(const std::string& user);
  std::optional<std::uint64_t> online_count(const std::string& channel);

  // Collaborative documents (docs/collab.md, "In the SDK"). A document
  // belongs to a channel and is named by its title (1-128 bytes of UTF-8, no
  // control characters); channel roles decide who may edit (read-only members
  // and muted ones may open and read, not edit). Positions and counts are in
  // Unicode code points. This device keeps a replica of every document it
  // opened in its cache: edits apply to it at once, are durable before the
  // call returns, and go to the server when connected (again after a
  // reconnect, or by the next client opened on the same data_dir, until the
  // server acknowledges them). Concurrent edits from anyone converge.
  //
  // Creates document `title` in `channel` (it then appears in the channel as
  // a Message of kind doc). Completion: ChannelRequestDone with the event's
  // seq; already_exists (reason doc_exists) when the title is taken.
  RequestId create_document(const std::string& channel, const std::string& title);
  // Opens the document on this connection: sends what the replica holds, gets
  // what it lacks, then sends this device's unacknowledged edits. Then
  // DocumentChanged with the whole text, and ChannelRequestDone (seq 0).
  // While open, others' edits arrive as DocumentChanged (local false) and
  // their cursors as DocumentAwareness; after a lost connection the client
  // opens it again by itself. Offline: fails with offline after the request
  // timeout, but a document already in the cache stays readable and editable
  // and is opened when the connection is back. not_found (reason
  // no_such_doc) for a document the server does not have.
  RequestId open_document(const std::string& channel, const std::string& title);
  // Stops the document's live updates (its replica and unsent edits stay in
  // the cache). Completion: ChannelRequestDone.
  RequestId close_document(const std::string& channel, const std::string& title);
  // Edits of a document in the cache (opened once on this device), online or
  // offline; each emits DocumentChanged (local true). Errors: invalid_argument
  // with reason invalid_position (past the end), invalid_utf8, invalid_text
  // (empty), invalid_count (0), too_large (an insert over about 24 KB, whose
  // update would not fit one frame: split it), doc_too_large (over 1,048,576
  // characters ever inserted), invalid_name or invalid_title; not_found with
  // reason no_such_doc when the cache has no such document. An insert naming
  // "@user" of a channel member notifies them (mentions). The server may
  // still refuse an edit (a read-only or muted member): DocumentFailed.
  Status insert_text(const std::string& channel, const std::string& title, std::uint64_t pos,
                     const std::string& utf8);
  Status delete_text(const std::string& channel, const std::string& title, std::uint64_t pos,
                     std::uint64_t count);
  // The document's text as the cache holds it. Fast: no network.
  Result<DocumentView> document_text(const std::string& channel, const std::string& title);
  // The channel's documents. Completion: DocumentsLoaded (from the cache,
  // complete false, when the server cannot be asked).
  RequestId list_documents(const std::string& channel);
  // This user's cursor (and selection from anchor to cursor) in an open
  // document, shown to the others with ClientOptions::document_name and
  // document_color. Cheap to call on every move: the SDK sends at most 10 per
  // second (the latest), refreshes it every 15 s while the document is open,
  // and sends it again after a reconnect. nullopt cursor: none shown.
  // not_found (reason doc_not_open) unless the document was opened.
  Status set_document_cursor(const std::string& channel, const std::string& title,
                             std::optional<std::uint64_t> cursor,
                             std::optional<std::uint64_t> anchor = std::nullopt);
  // Local edits of every document that the server has not acknowledged yet
  // (to wait for before quitting, as for outbox()).
  Result<std::uint64_t> pending_document_updates();

  // Delivered to / read by how many members, for message `seq` of `channel`,
  // from the receipt cursors in the cache.
  Result<ReceiptSummary> receipt_summary(const std::string& channel, std::uint64_t seq);

  // What the cache knows, without the server.
  Result<std::vector<ChannelInfo>> channels();
  Result<std::vector<OutboxEntry>> outbox();
  // The cache's size against its budget (ClientOptions::cache_max_bytes).
  Result<CacheUsage> cache_usage();

  // The next event, waiting at most `timeout`; nullopt on timeout or when a
  // listener is set.
  std::optional<Event> next_event(std::chrono::milliseconds timeout);

  class Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley
