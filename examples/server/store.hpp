// The reference server's durable state in SQLite: users, channels, members,
// each channel's gap-free event sequence and the receipt cursors
// (docs/server.md, "Store").
//
//   auto store = ServerStore::open(dir + "/server.db");
//   auto event = (*store)->create_channel("general", "alice", now_ms);
//
// Use from one thread at a time (the server's loop thread).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "parley/roles.hpp"
#include "parley/status.hpp"
#include "parley/types.hpp"
#include "store/sqlite.hpp"

namespace parley::server {

class Checkpointer;  // checkpointer.hpp, included by store.cpp only

// One entry of a channel's sequence as stored. The fields after `ts` belong
// to the kinds parley::Message documents them for.
struct StoredEvent {
  std::string channel;
  std::uint64_t seq = 0;
  EventKind kind = EventKind::message;
  std::string sender;
  std::string client_id;  // kind message only
  std::string text;       // kinds message and system
  std::int64_t ts = 0;    // ms since the Unix epoch
  bool deleted = false;   // message: its text was deleted
  std::string target;
  std::string role;
  std::int64_t until = 0;  // ban, mute: expiry in ms since the epoch; 0: until lifted
  std::uint64_t ref = 0;
  std::string channel_kind;
  ChannelMeta meta;
  std::string e2e;  // kind message in a direct channel: the payload's JSON; "" otherwise
  // Kind doc: `text` holds the document's title and `channel_kind` its kind.
};

struct StoredChannel {
  std::string name;
  std::uint64_t last_seq = 0;
  ChannelKind kind = ChannelKind::public_channel;
  ChannelMeta meta;  // every field set ("" when empty)
  bool deleted = false;
};

struct StoredMembership {
  std::string channel;
  std::string user;
  Role role = Role::member;
  std::optional<std::int64_t> muted_until;  // 0: until lifted
};

struct StoredBan {
  std::string channel;
  std::string user;
  std::int64_t until = 0;  // 0: until lifted
};

struct StoredPin {
  std::string channel;
  std::uint64_t seq = 0;
};

struct StoredUser {
  std::string name;
  std::int64_t first_seen = 0;
  std::int64_t last_seen = 0;
  std::optional<std::int64_t> banned_until;  // server-wide ban; 0: until lifted
};

// A user's presence settings and last seen (docs/presence.md).
struct StoredPresence {
  std::string user;
  std::string status = "online";  // "online", "away" or "invisible"
  std::string text;               // custom status text; "" when unset
  std::int64_t text_until = 0;    // ms since the epoch; 0: no expiry
  bool hide_last_seen = false;
  std::int64_t last_seen = 0;     // ms since the epoch; 0: never seen online
};

struct StoredNotify {
  std::string channel;
  std::string user;
  std::string level;           // "all", "mentions", "none"
  std::int64_t mute_until = 0;  // 0: not muted
};

struct UnreadCounts {
  std::uint64_t unread = 0;
  std::uint64_t mentions = 0;
  bool operator==(const UnreadCounts&) const = default;
};

struct StoredReport {
  std::uint64_t id = 0;
  std::string channel;
  std::uint64_t seq = 0;
  std::string reporter;
  std::string reason;
  std::int64_t ts = 0;
  std::string sender;               // of the reported message
  std::optional<std::string> text;  // of the reported message, unless deleted
  // A franked report of a direct message (docs/security.md, "Verifiable
  // reports"): text is what the reporter disclosed, checked against the
  // message's commitment and the server's tag.
  bool verified = false;
};

// A recorded e2e_retry of one device for one message.
struct RetryState {
  bool resent = false;       // answered by a resend since the last retry
  std::uint32_t rounds = 0;  // retries recorded in all (each queued a notice)
};

// A queued e2e notice (store_devices.cpp) for the device (user, device).
// kind "retry": from_user's device from_device asks for the message at seq
// again; "resend": from_user/from_device sends it again, e2e holding the
// payload (one envelope, the original's commit and tag).
struct StoredNotice {
  std::uint64_t nid = 0;
  std::string user;
  std::string device;
  std::string kind;
  std::string channel;
  std::uint64_t seq = 0;
  std::string client_id;
  std::string from_user;
  std::string from_device;
  std::int64_t ts = 0;  // the message's server time
  std::string e2e;      // resend: the payload's JSON; "" otherwise
  std::int64_t created = 0;
};

// The two users of a direct channel (from its create event).
struct StoredDirectPair {
  std::string channel;
  std::string creator;
  std::string other;
};

// End-to-end encryption (store_keys.cpp). Keys are kept as the base64 the
// device sent; the hub has checked sizes and signatures.
struct StoredSignedKey {
  std::uint32_t id = 0;
  std::string key;
  std::string signature;
};
struct StoredOneTimeKey {
  std::uint32_t id = 0;
  std::string key;
};
// A device's keys as stored, with how many one-time prekeys it has left.
struct StoredDeviceKeys {
  std::string identity;
  StoredSignedKey signed_prekey;
  StoredSignedKey last_resort;
  std::int64_t updated = 0;
  std::uint64_t one_time_left = 0;
};
// What one keys request publishes. A new identity needs both signed keys.
struct KeysUpdate {
  std::string identity;
  std::optional<StoredSignedKey> signed_prekey;
  std::optional<StoredSignedKey> last_resort;
  std::vector<StoredOneTimeKey> one_time;
};
// One device's bundle as handed out. one_time: the one-time prekey taken, or
// the last-resort prekey (last_resort true) when none was left; absent when
// nothing was taken (identities only).
struct TakenBundle {
  std::string device;
  std::string identity;
  StoredSignedKey signed_prekey;
  std::optional<StoredOneTimeKey> one_time;
  bool last_resort = false;
  std::uint64_t one_time_left = 0;
};

// A receipt cursor: kind "read" (per user, device empty) or "delivered" (per
// user and device).
struct StoredReceipt {
  std::string user;
  std::string device;
  std::string kind;
  std::uint64_t seq = 0;
};

// The outcome of raising a receipt cursor: the cursor now stored, and whether
// this request moved it.
struct ReceiptAdvance {
  std::uint64_t seq = 0;
  bool advanced = false;
};

// A collaborative document's row (store_docs.cpp). size and version: of the
// server's replica after the last stored update (docs/collab.md).
struct StoredDoc {
  std::int64_t id = 0;
  std::string channel;
  std::string title;
  std::string kind;
  std::string creator;
  std::int64_t created = 0;
  std::uint64_t seq = 0;  // its doc event
  std::uint64_t size = 0;
  std::uint64_t version = 0;
};
// What a document is made of: the latest snapshot (empty: none yet) and the
// updates stored after it, oldest first.
struct StoredDocContent {
  std::string snapshot;
  std::uint64_t snapshot_n = 0;  // the last update the snapshot holds
  std::vector<std::pair<std::uint64_t, std::string>> updates;  // (n, data)
};

class ServerStore {
 public:
  static constexpr int kSchemaVersion = 10;

  // Opens or creates the database at `path` and migrates it to kSchemaVersion.
  // Fails with corrupt for a file that is not a database, and with
  // io_error for a schema newer than this server knows.
  // full_sync: PRAGMA synchronous = FULL (fsync at every commit: an ack
  // survives power loss); otherwise NORMAL (an ack survives the server being
  // killed, the OS keeps the WAL; see docs/reliability.md).
  static Result<std::unique_ptr<ServerStore>> open(const std::string& path, bool full_sync = false);
  ~ServerStore();  // out of line: Checkpointer is complete only in store.cpp

  // Records that `user` was seen (first_seen is kept, last_seen updated).
  Status touch_user(const std::string& user, std::int64_t now_ms);

  // Each of these appends one event in its own transaction and returns it.
  // Failures leave the store unchanged. Reasons: channel_exists,
  // no_such_channel, not_member, already_member, duplicate.
  Result<StoredEvent> create_channel(const std::string& channel, const std::string& creator,
                                     std::int64_t ts,
                                     ChannelKind kind = ChannelKind::public_channel,
                                     const ChannelMeta& meta = {});
  // A direct channel of `creator` and `other`: one create event (target
  // `other`), both members with role member.
  Result<StoredEvent> create_direct(const std::string& channel, const std::string& creator,
                                    const std::string& other, std::int64_t ts);
  Result<StoredEvent> join(const std::string& channel, const std::string& user, std::int64_t ts);
  Result<StoredEvent> leave(const std::string& channel, const std::string& user, std::int64_t ts);
  Result<StoredEvent> append_message(const std::string& channel, const std::string& sender,
                                     const std::string& client_id, const std::string& text,
                                     std::int64_t ts, const std::string& e2e = {});

  // Appends `event` to its channel (the seq is assigned here) and runs
  // `effects` with the channel's row id inside the same transaction: both
  // happen or neither. Reasons: no_such_channel, or the effects' own.
  using Effects = std::function<Status(std::int64_t channel_id, std::uint64_t seq)>;
  Result<StoredEvent> append_event(StoredEvent event, const Effects& effects = {});

  // Changes for Effects (inside append_event's transaction).
  Status put_member(std::int64_t channel_id, const std::string& user, Role role,
                    std::uint64_t joined_seq);  // adds, or changes the role
  Status drop_member(std::int64_t channel_id, const std::string& user);
  Status put_mute(std::int64_t channel_id, const std::string& user,
                  std::optional<std::int64_t> until);  // nullopt: unmuted
  Status put_ban(std::int64_t channel_id, const std::string& user, std::int64_t until,
                 const std::string& by, std::int64_t ts);
  Status drop_ban(std::int64_t channel_id, const std::string& user);
  Status put_meta(std::int64_t channel_id, const ChannelMeta& changes);  // the set fields
  Status clear_message(std::int64_t channel_id, std::uint64_t seq);      // deletion
  Status put_pin(std::int64_t channel_id, std::uint64_t seq, bool pinned);
  Status close_channel(std::int64_t channel_id);  // deleted, members dropped
  // What a member who leaves keeps for their return: a role below member, a mute.
  Status put_restriction(std::int64_t channel_id, const StoredMembership& restriction);
  Status drop_restriction(std::int64_t channel_id, const std::string& user);
  Result<std::vector<StoredMembership>> restrictions();

  // The event at `seq` of `channel`, if any.
  Result<std::optional<StoredEvent>> event_at(const std::string& channel, std::uint64_t seq);

  Result<std::uint64_t> add_report(const std::string& channel, std::uint64_t seq,
                                   const std::string& reporter, const std::string& reason,
                                   std::int64_t ts);
  // The newest `limit` reports, newest first.
  Result<std::vector<StoredReport>> reports(std::uint32_t limit);
  Result<std::vector<StoredUser>> users();
  // A server-wide ban (nullopt lifts it). The user need not be known yet.
  Status set_user_ban(const std::string& user, std::optional<std::int64_t> until,
                      std::int64_t now_ms);
  Result<std::vector<StoredBan>> bans();
  Result<std::vector<StoredPin>> pins();

  // Presence (store_notify.cpp): replaces the user's row.
  Status save_presence(const StoredPresence& presence);
  Result<std::vector<StoredPresence>> presences();

  // Notifications (store_notify.cpp).
  Status set_notify(const std::string& channel, const std::string& user, const std::string& level,
                    std::int64_t mute_until);
  Result<std::vector<StoredNotify>> notify_settings();
  // Records that the message at `seq` mentions `users` ("@channel" stands
  // for every member).
  Status add_mentions(const std::string& channel, std::uint64_t seq,
                      const std::vector<std::string>& users);
  // `user`'s messages to read in `channel`: those of others, not deleted,
  // after both the user's read cursor and the seq at which they joined; and
  // of those, the ones that mention them.
  Result<UnreadCounts> unread_counts(const std::string& channel, const std::string& user);

  // End-to-end encryption keys (store_keys.cpp).
  // Publishes keys of (user, device) in one transaction. When the device has
  // no identity stored, or another one, both signed keys are required and
  // replace the row, and its one-time prekeys are dropped; otherwise each
  // part present replaces its own, and one-time prekeys whose id is stored
  // already are ignored. Reason invalid_keys: signed keys missing, or more
  // than `max_one_time` one-time prekeys would be stored.
  Result<StoredDeviceKeys> publish_keys(const std::string& user, const std::string& device,
                                        const KeysUpdate& update, std::int64_t now_ms,
                                        std::size_t max_one_time);
  Result<std::optional<StoredDeviceKeys>> device_keys(const std::string& user,
                                                      const std::string& device);
  // The devices of `user` that have keys, in device order. take: each gets
  // its signed prekey and takes its lowest one-time prekey, deleted in the
  // same transaction (the last-resort prekey when none is left); otherwise
  // only device and identity are filled.
  // device: only that device (empty: all).
  Result<std::vector<TakenBundle>> take_bundles(const std::string& user, bool take,
                                                const std::string& device = {});

  // Devices, blocks, recovery notices, franking (store_devices.cpp).
  // The devices of `user` with keys, in device order.
  Result<std::vector<std::string>> devices(const std::string& user);
  Result<bool> device_removed(const std::string& user, const std::string& device);
  // How many device ids of `user` were removed (all kept for good).
  Result<std::uint64_t> count_removed_devices(const std::string& user);
  // Deletes the device's keys, one-time prekeys, queued notices and retries
  // and records it as removed, in one transaction.
  Status remove_device(const std::string& user, const std::string& device, std::int64_t now_ms);
  // Every (user, blocked user) pair.
  Result<std::vector<std::pair<std::string, std::string>>> blocks();
  Status set_block(const std::string& user, const std::string& other, bool blocked,
                   std::int64_t now_ms);
  // Queues `notice` (its nid is assigned) and returns the nid.
  Result<std::uint64_t> add_notice(const StoredNotice& notice);
  Result<std::uint64_t> count_notices(const std::string& user, const std::string& device);
  // The oldest `limit` notices queued for (user, device).
  Result<std::vector<StoredNotice>> notices(const std::string& user, const std::string& device,
                                            std::uint32_t limit);
  // Deletes notice `nid` if it is queued for (user, device); true if it was.
  Result<bool> delete_notice(const std::string& user, const std::string& device, std::uint64_t nid);
  // Drops notices and retries recorded before `before_ms`.
  Status drop_old_notices(std::int64_t before_ms);
  // The retry of (user, device) for the message at `seq`: absent, or whether
  // it was answered by a resend since and how many retries were recorded.
  Result<std::optional<RetryState>> retry_state(const std::string& channel, std::uint64_t seq,
                                          const std::string& user, const std::string& device);
  Status put_retry(const std::string& channel, std::uint64_t seq, const std::string& user,
                   const std::string& device, bool resent, std::int64_t now_ms);
  // The server's franking key (32 bytes), created at the first call and kept.
  Result<std::array<std::uint8_t, 32>> franking_key();
  // A verified report: the disclosed text and the message's sender are kept with it.
  Result<std::uint64_t> add_verified_report(const std::string& channel, std::uint64_t seq,
                                            const std::string& reporter,
                                            const std::string& reason, std::int64_t ts,
                                            const std::string& sender, const std::string& text);
  // The users of every direct channel.
  Result<std::vector<StoredDirectPair>> direct_pairs();

  // Collaborative documents (store_docs.cpp).
  // The document row for the doc event at `seq` (an Effects of append_event);
  // *id gets its row id. Reason doc_exists when the title is taken.
  Status put_doc(std::int64_t channel_id, std::uint64_t seq, const std::string& title,
                 const std::string& kind, const std::string& creator, std::int64_t ts,
                 std::int64_t* id);
  Result<std::vector<StoredDoc>> docs();
  Result<StoredDocContent> doc_content(std::int64_t doc_id);
  // Stores one update and the replica's new size and version in one
  // transaction; returns the update's number.
  Result<std::uint64_t> append_doc_update(std::int64_t doc_id, std::string_view data,
                                          const std::string& user, std::int64_t ts,
                                          std::uint64_t size, std::uint64_t version);
  // Replaces the snapshot with one holding updates up to `upto_n` and deletes them.
  Status compact_doc(std::int64_t doc_id, std::string_view snapshot, std::uint64_t upto_n);

  // The message `sender` sent with `client_id`, if any.
  Result<std::optional<StoredEvent>> find_message(const std::string& sender,
                                                  const std::string& client_id);

  // Up to `limit` events with after < seq < before, in ascending seq: the
  // oldest of them when `after` is given, else the newest.
  Result<std::vector<StoredEvent>> history(const std::string& channel,
                                           std::optional<std::uint64_t> after,
                                           std::optional<std::uint64_t> before,
                                           std::uint32_t limit);

  // Raises the cursor (channel, user, device, kind) to `seq` unless it is
  // already at or above it; `device` is empty for kind "read". Reasons:
  // no_such_channel, not_member, invalid_kind, invalid_seq (seq not within
  // 1..last_seq).
  Result<ReceiptAdvance> raise_receipt(const std::string& channel, const std::string& user,
                                       const std::string& device, const std::string& kind,
                                       std::uint64_t seq);
  // Every stored cursor of the channel, by kind, user and device. Rows of
  // users who left are kept.
  Result<std::vector<StoredReceipt>> receipts(const std::string& channel);

  Result<std::vector<StoredChannel>> channels();
  Result<std::vector<StoredMembership>> memberships();

 private:
  ServerStore() = default;
  Status migrate();
  Status prepare_statements();
  // Bumps the channel's last_seq inside the caller's transaction: (id, seq).
  Result<std::pair<std::int64_t, std::uint64_t>> next_seq(const std::string& channel);
  Status insert_event(std::int64_t channel_id, const StoredEvent& event);
  // Runs `sql` with `bind` applied, for the rare statements not kept prepared.
  Status run_once(std::string_view sql, const std::function<void(store::Statement&)>& bind);
  Result<bool> is_member(std::int64_t channel_id, const std::string& user);
  static Result<StoredEvent> read_event(const store::Statement& stmt, const std::string& channel);
  Status failure(std::string_view what, const Status& status);

  store::Database db_;
  store::Statement touch_user_;
  store::Statement insert_channel_;
  store::Statement next_seq_;
  store::Statement insert_event_;
  store::Statement insert_member_;
  store::Statement delete_member_;
  store::Statement is_member_;
  store::Statement find_message_;
  store::Statement history_asc_;
  store::Statement history_desc_;
  store::Statement channels_;
  store::Statement memberships_;
  store::Statement channel_state_;
  store::Statement raise_receipt_;
  store::Statement receipt_;
  store::Statement receipts_;
  // Last, so that its thread stops before the connection above closes.
  std::unique_ptr<Checkpointer> checkpointer_;
};

}  // namespace parley::server
