// The client's local cache: one SQLite database per account and device
// (DATA_DIR/parley.db), in WAL mode, with schema migrations keyed by
// PRAGMA user_version. Holds channels, messages, the durable outbox and the
// per-channel cursors.
//
// Use from one thread at a time: the client's own thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parley/events.hpp"
#include "parley/status.hpp"
#include "parley/types.hpp"

namespace parley::store {

class Cache {
 public:
  // Opens or creates DATA_DIR/parley.db (creating DATA_DIR), runs migrations,
  // and checks that the cache belongs to `user` (a cache of another user is
  // refused with invalid_argument). A file that is not a SQLite database, or
  // fails PRAGMA quick_check, is refused with code corrupt and a message
  // naming the file. A schema newer than this library knows is refused too.
  static Result<std::unique_ptr<Cache>> open(const std::string& data_dir, const std::string& user);
  ~Cache();

  static constexpr int kSchemaVersion = 2;

  // ---- meta -------------------------------------------------------------
  // Stable device id, generated (32 hex digits) on first open unless set.
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
  // Stores events; an event already stored (same channel and seq) is left as is.
  // Returns how many were new. Also raises the channel's last_seq.
  Result<int> store_events(const std::vector<Message>& events);
  // Events with from <= seq <= to, ascending.
  Result<std::vector<Message>> events(const std::string& channel, std::uint64_t from,
                                      std::uint64_t to);
  // Up to `limit` events of kind message with seq < before (0 = no bound),
  // ascending (the newest `limit` of them).
  Result<std::vector<Message>> latest_messages(const std::string& channel, std::uint64_t before,
                                               std::uint32_t limit);
  // The lowest seq s such that every event s..to is stored (to+1 if `to` is missing).
  Result<std::uint64_t> contiguous_down_from(const std::string& channel, std::uint64_t to);
  // The highest seq s >= from such that every event from..s is stored (from-1 if none).
  Result<std::uint64_t> contiguous_up_from(const std::string& channel, std::uint64_t from);
  // Highest stored seq of the channel (0 if none).
  Result<std::uint64_t> max_seq(const std::string& channel);

  // ---- outbox -----------------------------------------------------------
  // Adds a pending message; durable (committed) when this returns.
  Status outbox_add(const std::string& channel, const std::string& id, const std::string& text,
                    std::int64_t created_ms);
  // Pending entries in the order they were added.
  Result<std::vector<OutboxEntry>> outbox_pending();
  // Acknowledged: removes the entry and stores the message at `seq` in one
  // transaction. Returns false if no such pending entry.
  Result<bool> outbox_acknowledge(const std::string& id, std::uint64_t seq, std::int64_t ts_ms,
                                  const std::string& sender);
  // Refused for good: the entry leaves the pending set, kept as failed with `error`.
  Status outbox_fail(const std::string& id, const std::string& error);
  // Failed entries (newest last).
  Result<std::vector<OutboxEntry>> outbox_failed();

  // ---- receipts -------------------------------------------------------------
  // Raises another member's cursor (device is ignored for read cursors).
  // Returns true if the stored cursor grew.
  Result<bool> raise_receipt(const std::string& channel, const std::string& user,
                             const std::string& device, ReceiptKind kind, std::uint64_t seq);
  // The channel's members as the server last listed them, kept up to date by
  // join and leave events.
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

 private:
  struct Rep;
  explicit Cache(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace parley::store
