// The client's local cache: DATA_DIR/parley.db (channels, events, cursors,
// receipts) and DATA_DIR/outbox.db (the outbox and the device's identity),
// both SQLite in WAL mode with schema migrations keyed by PRAGMA user_version.
// parley.db can be lost and refetched from the server; outbox.db cannot, so it
// lives in its own small file that damage to the big one cannot reach.
// docs/cache.md describes the budget, eviction and recovery.
//
// Use from one thread at a time: the client's own thread. (After open, a
// helper thread owned by the Cache reads parley.db once through its own
// connection to check every page; see Options::background_check.)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "parley/events.hpp"
#include "parley/roles.hpp"
#include "parley/status.hpp"
#include "parley/types.hpp"

namespace parley::store {

class Cache {
 public:
  // How much history parley.db may hold. Past a limit, the oldest stored
  // events of each channel are evicted (docs/cache.md, "Budget").
  struct Budget {
    // parley.db plus its WAL, in bytes; 0: no limit.
    std::uint64_t max_bytes = 0;
    // Stored channel events; 0: no limit.
    std::uint64_t max_messages = 0;
    // Per channel, this many delivered events just below the live cursor are
    // never evicted, nor is anything above it.
    std::uint32_t keep_per_channel = 200;
  };

  struct Options {
    Budget budget;
    // A corrupt parley.db is moved aside (parley.db.corrupt-<UTC time>) and a
    // new one made, keeping outbox.db and what can be read of the channel
    // cursors; otherwise open refuses it with code corrupt.
    bool rebuild_corrupt = false;
    // Open checks the header, the file size, the small tables and both ends of
    // every channel's events; the full PRAGMA quick_check (every page) then
    // runs on a helper thread. Off: open runs the full check itself.
    bool background_check = true;
    // Any thread: called once when the background check has an answer (see
    // corruption()). Must not call into the Cache.
    std::function<void()> on_check_done;
  };

  // What happened when parley.db was rebuilt.
  struct RebuildReport {
    Status cause;                    // the corruption found
    std::string moved_to;            // where the damaged file went ("" if it could not be moved)
    std::size_t channels_kept = 0;   // channel rows (with cursors) read back from it
    std::size_t outbox_pending = 0;  // messages waiting in the outbox afterwards
    Status status;                   // ok, or why the new file could not be made (then in memory)
    // One line for people, naming both files.
    std::string describe() const;
  };

  // How big the cache is now.
  struct Usage {
    std::uint64_t file_bytes = 0;  // parley.db on disk
    std::uint64_t wal_bytes = 0;   // parley.db-wal on disk
    std::uint64_t used_bytes = 0;  // pages in use (the rest is free for reuse)
    std::uint64_t events = 0;      // stored channel events
    std::uint64_t evicted = 0;     // events evicted since open
  };

  // Opens or creates the cache in `data_dir` (creating the directory), runs
  // migrations, and checks that it belongs to `user` (another user's cache is
  // refused with invalid_argument). A parley.db that is not a database or
  // fails the checks above is refused with code corrupt naming the file,
  // unless options.rebuild_corrupt (then last_rebuild() says what happened).
  // A corrupt outbox.db is always refused, never moved. A schema newer than
  // this library knows is refused too.
  static Result<std::unique_ptr<Cache>> open(const std::string& data_dir, const std::string& user,
                                             Options options);
  static Result<std::unique_ptr<Cache>> open(const std::string& data_dir, const std::string& user);
  ~Cache();

  static constexpr int kSchemaVersion = 8;        // parley.db
  static constexpr int kOutboxSchemaVersion = 3;  // outbox.db

  // ---- meta -------------------------------------------------------------
  // Stable device id, generated (32 hex digits) on first open unless set.
  // Kept in outbox.db, so a rebuilt cache is still the same device.
  std::string device_id() const;
  Status set_device_id(const std::string& id);

  // ---- channels and cursors ---------------------------------------------
  // Marks the user a member (creates the row if missing). `last_seq` only grows.
  Status upsert_channel(const std::string& channel, std::uint64_t last_seq, bool member);
  Status set_member(const std::string& channel, bool member);
  Result<std::vector<ChannelInfo>> channels();
  Result<std::optional<ChannelInfo>> channel(const std::string& channel);
  // The live cursor: every event 1..cursor that the app should see has been
  // delivered to it (read_to in ChannelInfo). Monotonic: a lower value is ignored.
  Status advance_cursor(const std::string& channel, std::uint64_t seq);

  // ---- messages (channel events) ----------------------------------------
  // What a page from the server says of its channel: its newest seq.
  struct ChannelTop {
    std::string channel;
    std::uint64_t last_seq = 0;
  };
  // Stores events; an event already stored (same channel and seq) is left as is.
  // Returns how many were new. Also raises the channel's last_seq. Keeps the
  // cache within its budget, evicting old history first when needed.
  // With `top`, also does upsert_channel(top->channel, top->last_seq, true)
  // in the same transaction (one commit per page instead of two), even when
  // `events` is empty. A bad event or top stores nothing.
  struct E2eWrite;  // below
  // With `e2e`, its sessions and devices are written in the same
  // transaction (the ratchet state that decrypted the events).
  Result<int> store_events(const std::vector<Message>& events,
                           const std::optional<ChannelTop>& top = std::nullopt,
                           const E2eWrite* e2e = nullptr);
  // Events with from <= seq <= to, ascending.
  Result<std::vector<Message>> events(const std::string& channel, std::uint64_t from,
                                      std::uint64_t to);
  // Up to `limit` events of kind message with seq < before (0 = no bound),
  // ascending (the newest `limit` of them).
  Result<std::vector<Message>> latest_messages(const std::string& channel, std::uint64_t before,
                                               std::uint32_t limit);
  // How many events of kind message with from <= seq <= to are stored; with
  // at_most > 0 it stops counting there (answers min(count, at_most)). Reads
  // only the index messages_by_kind, never the rows.
  Result<std::uint64_t> count_messages(const std::string& channel, std::uint64_t from,
                                       std::uint64_t to, std::uint64_t at_most = 0);
  // The lowest seq s such that every event s..to is stored (to+1 if `to` is missing).
  Result<std::uint64_t> contiguous_down_from(const std::string& channel, std::uint64_t to);
  // The highest seq s >= from such that every event from..s is stored (from-1 if none).
  Result<std::uint64_t> contiguous_up_from(const std::string& channel, std::uint64_t from);
  // Highest stored seq of the channel (0 if none).
  Result<std::uint64_t> max_seq(const std::string& channel);

  // ---- budget (cache_budget.cpp) ------------------------------------------
  const Budget& budget() const;
  // Applies a new budget at the next store (enforce_budget() to apply now).
  void set_budget(const Budget& budget);
  // Evicts and gives pages back until the cache is within budget, as far as
  // the events that may be evicted allow.
  Status enforce_budget();
  Result<Usage> usage();
  // While a channel is pinned (counted), none of its events is evicted: a
  // history load pins its channel so the pages it fetches stay until it answers.
  // The last unpin of a channel applies the budget.
  void pin(const std::string& channel);
  void unpin(const std::string& channel);

  // ---- corruption and rebuild (cache_recovery.cpp) ------------------------
  // Ok, or the first sign that parley.db is corrupt: a statement that failed
  // with SQLITE_CORRUPT, or the background check. Stays until rebuild(), and
  // is remembered in outbox.db so that the next open knows it too.
  Status corruption();
  // Moves the damaged parley.db aside and starts a new one, keeping outbox.db
  // and the channel cursors that can still be read. If no new file can be
  // made the cache continues in memory and the error is returned (also in
  // last_rebuild()). The caller then resyncs from the server.
  Status rebuild(const Status& cause);
  const std::optional<RebuildReport>& last_rebuild() const;
  // Waits for the background check (if any) and returns corruption().
  Status test_wait_background_check();
  const std::string& path() const;

  // ---- outbox (outbox.db) -------------------------------------------------
  // Adds a pending message; durable (committed) when this returns.
  Status outbox_add(const std::string& channel, const std::string& id, const std::string& text,
                    std::int64_t created_ms);
  // Pending entries in the order they were added.
  Result<std::vector<OutboxEntry>> outbox_pending();
  // Acknowledged: stores the message at `seq` in parley.db, then removes the
  // entry from outbox.db. (Two files, two commits, in that order: a crash in
  // between leaves the entry pending; it is sent again and the server answers
  // with the same seq.) Returns false if no such pending entry.
  // An end-to-end encrypted entry (e2e) is stored as such, and its encrypted
  // form (e2e_outgoing) is dropped in the same transaction.
  Result<bool> outbox_acknowledge(const std::string& id, std::uint64_t seq, std::int64_t ts_ms,
                                  const std::string& sender, bool e2e = false);
  // Refused for good: the entry leaves the pending set, kept as failed with `error`.
  Status outbox_fail(const std::string& id, const std::string& error);
  // Failed entries (newest last).
  Result<std::vector<OutboxEntry>> outbox_failed();
  // The text of a pending or failed outbox entry (nullopt: no such entry).
  Result<std::optional<std::string>> outbox_text(const std::string& id);

  // ---- receipts -------------------------------------------------------------
  // Raises another member's cursor (device is ignored for read cursors).
  // Returns true if the stored cursor grew.
  Result<bool> raise_receipt(const std::string& channel, const std::string& user,
                             const std::string& device, ReceiptKind kind, std::uint64_t seq);
  // The channel's members as the server last listed them, kept up to date by
  // the channel's events. Members who stay keep their role and mute.
  Status set_members(const std::string& channel, const std::vector<std::string>& users);
  Status add_member(const std::string& channel, const std::string& user);
  Status remove_member(const std::string& channel, const std::string& user);
  // Members other than `sender`, and how many of them have a delivered / read
  // cursor at or above `seq`.
  Result<ReceiptSummary> receipt_summary(const std::string& channel, std::uint64_t seq,
                                         const std::string& sender);
  // This user's own read cursor: monotonic; returns the cursor now stored.
  Result<std::uint64_t> raise_my_read(const std::string& channel, std::uint64_t seq);
  // The server stored our read cursor up to `seq`.
  Status set_my_read_sent(const std::string& channel, std::uint64_t seq);
  struct PendingRead {
    std::string channel;
    std::uint64_t seq = 0;
  };
  // Channels whose read cursor the server has not acknowledged yet.
  Result<std::vector<PendingRead>> unsent_reads();

  // ---- kinds, roles, metadata, deletions (cache_channels.cpp) -------------
  // What this user may do in a channel, as far as the cache knows.
  struct ChannelAccess {
    bool member = false;
    std::optional<ChannelKind> kind;          // nullopt: not known yet
    std::optional<Role> role;                 // this user's; nullopt: none, or not known
    std::optional<std::int64_t> muted_until;  // this user's mute: 0 until lifted; nullopt: none
  };
  // nullopt: no such channel row.
  Result<std::optional<ChannelAccess>> channel_access(const std::string& channel);
  // These change an existing channel row only.
  Status set_channel_kind(const std::string& channel, ChannelKind kind);
  Status set_my_role(const std::string& channel, std::optional<Role> role);
  Status set_my_mute(const std::string& channel, std::optional<std::int64_t> until_ms);
  // A meta event: the fields set in `changes` replace the stored ones ("" clears).
  Status merge_meta(const std::string& channel, const ChannelMeta& changes);
  // The whole metadata (from a create event or channel_info).
  Status replace_meta(const std::string& channel, const ChannelMeta& meta);
  // nullopt: no such channel. Cleared fields are absent.
  Result<std::optional<ChannelMeta>> channel_meta(const std::string& channel);
  struct MemberRow {
    std::string user;
    std::optional<Role> role;                 // nullopt: not known
    std::optional<std::int64_t> muted_until;  // 0: until lifted; nullopt: not muted
  };
  // Adds the member if missing.
  Status set_member_role(const std::string& channel, const std::string& user, Role role);
  Status set_member_mute(const std::string& channel, const std::string& user,
                         std::optional<std::int64_t> until_ms);
  // The whole list (channel_info), with roles and mutes.
  Status replace_members(const std::string& channel, const std::vector<MemberRow>& members);
  Result<std::vector<MemberRow>> members(const std::string& channel);
  // A deletion event: the message at `seq`, if stored, keeps its place and
  // loses its text (deleted set).
  Status mark_deleted(const std::string& channel, std::uint64_t seq);

  // ---- notifications (cache_notify.cpp) ------------------------------------
  // This user's counts and notification setting of one channel.
  struct NotifyRow {
    std::string channel;
    bool member = true;
    std::uint64_t unread = 0;
    std::uint64_t mentions = 0;
    NotificationLevel level = NotificationLevel::all;
    std::int64_t mute_until = 0;  // ms since the epoch; 0: not muted
  };
  // nullopt: no such channel row.
  Result<std::optional<NotifyRow>> notify_state(const std::string& channel);
  // Every channel row, by name.
  Result<std::vector<NotifyRow>> notify_states();
  // These change an existing channel row only, and answer whether it changed.
  Result<bool> set_unread(const std::string& channel, std::uint64_t unread, std::uint64_t mentions);
  Result<bool> set_notify_level(const std::string& channel, NotificationLevel level,
                                std::int64_t mute_until);

  // ---- end-to-end encryption (cache_e2e.cpp) --------------------------------
  // This device's identity and prekeys live in outbox.db; sessions, contacts'
  // devices, verification and encrypted outgoing messages in parley.db, where
  // a session is committed with the messages it decrypts (store_events).
  struct IdentityRow {
    std::string sign_pub, sign_secret, dh_pub, dh_secret;  // raw bytes
    std::int64_t created_ms = 0;
  };
  Result<std::optional<IdentityRow>> e2e_identity();
  Status set_e2e_identity(const IdentityRow& identity);
  struct PrekeyRow {
    std::uint32_t id = 0;
    std::string kind;  // "signed", "one_time", "last_resort"
    std::string pub, secret, signature;  // raw bytes; signature empty for one_time
    std::int64_t created_ms = 0;
  };
  // Adds prekeys (ids must be new).
  Status add_prekeys(const std::vector<PrekeyRow>& prekeys);
  Result<std::optional<PrekeyRow>> prekey(std::uint32_t id);
  // Of one kind, oldest id first.
  Result<std::vector<PrekeyRow>> prekeys(const std::string& kind);
  Status delete_prekeys(const std::vector<std::uint32_t>& ids);
  // The highest prekey id ever used (kept in meta, so ids are never reused).
  Result<std::uint32_t> last_prekey_id();
  Status set_last_prekey_id(std::uint32_t id);

  struct SessionRow {
    std::string user, device;
    std::string state;     // crypto::Ratchet::serialize()
    std::string base_key;  // the X3DH ephemeral key that started it (raw)
    std::optional<std::string> pending_prekey;  // the prekey header to repeat
    std::int64_t updated_ms = 0;
    // The session before this one with the same device, tried when this one
    // cannot open a message (and then made current again).
    std::optional<std::string> previous_state;
    std::optional<std::string> previous_base_key;
  };
  Result<std::optional<SessionRow>> e2e_session(const std::string& user, const std::string& device);
  Result<std::vector<SessionRow>> e2e_sessions_of(const std::string& user);
  struct DeviceRow {
    std::string user, device;
    std::string identity;  // 64 raw bytes: Ed25519 public key || X25519 public key
    std::int64_t seen_ms = 0;
  };
  Result<std::vector<DeviceRow>> e2e_devices(const std::string& user);
  // The digest of the identity set the user verified ("" if never).
  Result<std::string> e2e_verified(const std::string& user);
  Status set_e2e_verified(const std::string& user, const std::string& digest);
  Result<std::optional<std::string>> e2e_outgoing(const std::string& id);
  // Forgets the sealed form of outbox message `id` (it is sealed again).
  Status e2e_drop_outgoing(const std::string& id);
  // What a decryption or an encryption changes, written in one transaction:
  // by store_events with the messages, or by apply_e2e on its own.
  // What a recipient keeps to report a direct message (message franking,
  // docs/security.md): raw bytes.
  struct FrankingRow {
    std::string channel;
    std::uint64_t seq = 0;
    std::string device;  // the sender's device
    std::string key, commit, tag;
  };
  // A stored message's text and e2e_error, set after the fact (a message
  // sent again in a new session, or one waiting for that).
  struct TextUpdate {
    std::string channel;
    std::uint64_t seq = 0;
    std::string text;
    std::string error;  // e2e_error; "" with the text
  };
  // One device a message of this device was sealed for (identity: raw).
  struct RecipientRow {
    std::string id, user, device, identity;
    std::int64_t created_ms = 0;
  };
  struct E2eWrite {
    std::vector<SessionRow> sessions;             // upserted
    std::vector<DeviceRow> devices;               // upserted
    std::vector<std::pair<std::string, std::string>> outgoing;  // (message id, payload JSON)
    std::vector<std::pair<std::string, std::string>> dropped;   // sessions (user, device) ended
    std::vector<std::pair<std::string, std::string>> forgotten;  // devices (user, device) gone
    std::vector<FrankingRow> franking;            // upserted
    std::vector<TextUpdate> texts;
    std::vector<std::pair<std::string, std::int64_t>> lists;  // (user, ms): whole list fetched
    std::vector<RecipientRow> recipients;         // inserted
    bool empty() const {
      return sessions.empty() && devices.empty() && outgoing.empty() && dropped.empty() &&
             forgotten.empty() && franking.empty() && texts.empty() && lists.empty() &&
             recipients.empty();
    }
  };
  // The identity this device sealed its message `id` to for (user, device),
  // if it did.
  Result<std::optional<std::string>> e2e_recipient(const std::string& id, const std::string& user,
                                                   const std::string& device);
  // Forgets the recipients of messages sealed before `before_ms`.
  Status e2e_prune_recipients(std::int64_t before_ms);
  // Whether this device has fetched `user`'s whole device list before.
  Result<bool> e2e_list_known(const std::string& user);
  Result<std::optional<FrankingRow>> e2e_franking(const std::string& channel, std::uint64_t seq);
  // Direct messages this device could not decrypt with `error` one of
  // `errors`, oldest first, at most `limit`.
  Result<std::vector<Message>> e2e_undecrypted(const std::vector<std::string>& errors,
                                               std::size_t limit);
  // The stored message (kind message) at (channel, seq).
  Result<std::optional<Message>> message_at(const std::string& channel, std::uint64_t seq);
  // This user's stored message with client id `id` in `channel`.
  Result<std::optional<Message>> own_message(const std::string& channel, const std::string& id);
  Status apply_e2e(const E2eWrite& write);
  // Whether the event (channel, seq) is stored.
  Result<bool> has_event(const std::string& channel, std::uint64_t seq);
  // Whether an end-to-end message of `sender` with this id is stored in
  // `channel` (under any seq).
  Result<bool> has_e2e_message(const std::string& channel, const std::string& sender,
                               const std::string& id);

  // ---- collaborative documents (cache_docs.cpp, in outbox.db) --------------
  // A document's replica: the snapshot and the updates applied since, to be
  // applied in order (crdt::Document::load_snapshot, then apply_update).
  struct DocRow {
    std::string channel, title, kind;
    std::uint64_t agent = 0;       // this device's agent id in the document
    std::string snapshot;          // crdt snapshot (raw bytes)
    std::vector<std::string> log;  // crdt updates (raw bytes), oldest first
  };
  // A local update the server has not acknowledged.
  struct DocOutboxRow {
    std::int64_t ord = 0;  // increasing: the order of the edits
    std::string channel, title;
    std::string update;                 // raw bytes
    std::vector<std::string> mentions;  // users the inserted text mentions
  };
  struct DocSummary {
    std::string title, kind;
    std::uint64_t pending = 0;  // rows in doc_outbox
  };
  // nullopt: the cache has no such document.
  Result<std::optional<DocRow>> doc(const std::string& channel, const std::string& title);
  // The documents of `channel` the cache holds, by title.
  Result<std::vector<DocSummary>> docs(const std::string& channel);
  // Adds a document (or replaces it and drops its log and outbox: a replica
  // started again from the server's state).
  Status doc_put(const DocRow& row, std::int64_t now_ms);
  // A local edit, durable (committed) when this returns: appended to the
  // log and to the outbox in one transaction. Returns its outbox ord.
  Result<std::int64_t> doc_local_update(const std::string& channel, const std::string& title,
                                        const std::string& update,
                                        const std::vector<std::string>& mentions,
                                        std::int64_t now_ms);
  // Updates from the server, applied: appended to the log in one transaction.
  Status doc_remote_updates(const std::string& channel, const std::string& title,
                            const std::vector<std::string>& updates);
  // How many updates the log holds since the snapshot, and their bytes.
  Result<std::pair<std::uint64_t, std::uint64_t>> doc_log_size(const std::string& channel,
                                                               const std::string& title);
  // Replaces the snapshot with `snapshot` (which holds everything in the
  // log) and empties the log, in one transaction.
  Status doc_compact(const std::string& channel, const std::string& title,
                     const std::string& snapshot, std::int64_t now_ms);
  // The unacknowledged local updates of one document (or of all, with both
  // empty), oldest first.
  Result<std::vector<DocOutboxRow>> doc_outbox(const std::string& channel = {},
                                               const std::string& title = {});
  Result<std::uint64_t> doc_outbox_count(const std::string& channel, const std::string& title);
  // Acknowledged (or refused for good): the row leaves the outbox.
  Status doc_outbox_remove(std::int64_t ord);
  // Forgets the document: its replica, log and outbox.
  Status doc_forget(const std::string& channel, const std::string& title);

  struct Rep;  // cache_rep.hpp

 private:
  explicit Cache(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace parley::store
