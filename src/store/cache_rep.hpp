// The inside of store::Cache, shared by cache.cpp (schema, open, queries),
// cache_budget.cpp (eviction) and cache_recovery.cpp (checks, rebuild).
// Not a public header: include only from src/store/cache*.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/cache.hpp"
#include "store/sqlite.hpp"

namespace parley::store {

constexpr std::int64_t kMaxSeqValue = std::numeric_limits<std::int64_t>::max();

// SQLite integers are signed 64-bit; sequence numbers never get near the top.
inline std::int64_t clamp_seq(std::uint64_t seq) {
  return seq > static_cast<std::uint64_t>(kMaxSeqValue) ? kMaxSeqValue
                                                        : static_cast<std::int64_t>(seq);
}

// Resets a cached statement when the scope ends, so that no statement keeps a
// read transaction open between calls.
class Scoped {
 public:
  explicit Scoped(Statement& stmt) : stmt_(stmt) {}
  ~Scoped() { stmt_.reset(); }
  Scoped(const Scoped&) = delete;
  Scoped& operator=(const Scoped&) = delete;
  Statement* operator->() { return &stmt_; }
  Statement& operator*() { return stmt_; }

 private:
  Statement& stmt_;
};

Status with_path(const std::string& path, const Status& s);
// The first column of the first row of `sql` ("" if no row).
Result<std::string> query_text(Database& db, const char* sql);

// The full PRAGMA quick_check of one file, on a thread of its own with its own
// read-only connection (cache_recovery.cpp).
class BackgroundCheck;

// One channel row as salvaged from a damaged file.
struct ChannelRow {
  std::string name;
  bool member = true;
  std::int64_t last_seq = 0, read_to = 0, my_read = 0, my_read_sent = 0;
};
// One outbox row (for moving rows between files).
struct OutboxRow {
  std::int64_t ord = 0;
  std::string id, channel, text, state, error;
  std::int64_t created_ms = 0;
};

// While alive (and `on`), commits on parley.db are synchronous FULL: fsynced
// before COMMIT returns, rather than at the next checkpoint.
class DurableCommit {
 public:
  DurableCommit(Cache::Rep& rep, bool on);
  ~DurableCommit();
  DurableCommit(const DurableCommit&) = delete;
  DurableCommit& operator=(const DurableCommit&) = delete;

 private:
  Cache::Rep& rep_;
  bool on_;
};

struct Cache::Rep {
  Rep();
  ~Rep();  // stops the background check before the connections close

  std::string dir;
  std::string path;         // DATA_DIR/parley.db
  std::string outbox_path;  // DATA_DIR/outbox.db
  std::string user;
  Options options;
  Database db;   // parley.db (":memory:" if a rebuild could not make a file)
  Database odb;  // outbox.db
  std::string device_id;
  // Prepared once, keyed by the address of the SQL constants.
  std::map<const char*, Statement> statements;   // on db
  std::map<const char*, Statement> ostatements;  // on odb

  Result<Statement*> stmt(const char* sql);
  Result<Statement*> ostmt(const char* sql);

  // ---- end-to-end encryption (cache_e2e.cpp) ----
  // Inside the caller's transaction on parley.db.
  Status write_e2e(const E2eWrite& write);
  Status drop_outgoing(const std::string& id);
  // Our own e2e message stored from the server's copy (undecryptable here):
  // gets its text and loses the error.
  Status restore_own_e2e(const Message& m);

  // ---- corruption (cache_recovery.cpp) ----
  Status corrupt;              // first corruption seen in parley.db; ok if none
  bool checked_fully = false;  // open ran the full check itself (no background check)
  std::unique_ptr<BackgroundCheck> check;
  std::optional<RebuildReport> rebuilt;
  // Records a corrupt status from a parley.db statement; returns it unchanged.
  Status note(Status s);
  template <typename T>
  Result<T> note(Result<T> r) {
    if (!r.ok()) note(r.status());
    return r;
  }
  void record_corruption(const Status& s);
  // Opens parley.db at `path`: fast checks (or the full one), pragmas,
  // migrations. Leaves `db` open even when a check fails, for salvage.
  Status open_cache_file();
  void start_background_check();
  bool check_running() const;
  Status rebuild(const Status& cause);

  // ---- budget (cache_budget.cpp) ----
  Budget budget;
  std::optional<std::uint64_t> events_total;  // counted lazily from message_runs
  std::uint64_t approx_used = 0;              // used bytes as last measured plus estimates since
  std::uint64_t evicted = 0;
  std::map<std::string, int> pins;
  void configure_wal();
  void reset_budget_state();
  // Around each store: make room for about `bytes` / `count` more first, and
  // count what was added.
  Status before_store(std::uint64_t bytes, std::uint64_t count);
  void after_store(std::uint64_t bytes, int added);
  Status enforce(std::uint64_t room_bytes, std::uint64_t room_events);
  Result<std::uint64_t> count_events();
  // Deletes about `n` of the oldest evictable events; returns how many.
  Result<std::uint64_t> evict_oldest(std::uint64_t n);
  bool vacuum_converted = false;  // a pre-budget file was given auto_vacuum once

  // ---- parley.db helpers (cache.cpp) ----
  Result<std::optional<std::string>> get_meta(Database& on, const std::string& key);
  Status set_meta(Database& on, const std::string& key, const std::string& value);
  Result<std::vector<Message>> read_events(Statement& q);
  Result<std::optional<std::pair<std::int64_t, std::int64_t>>> run_at(const std::string& channel,
                                                                      std::int64_t seq);
  Status merge_run(const std::string& channel, std::int64_t a, std::int64_t b);
  Status add_to_runs(const std::string& channel, std::vector<std::int64_t>& fresh);
  Status upsert_channel(const std::string& channel, std::uint64_t last_seq, bool member);
  Status raise_last_seq(const std::string& channel, std::int64_t seq);
  Result<bool> insert_event(const Message& m);
  // The runs of `channel` that hold any seq in lo..hi, ascending.
  Result<std::vector<std::pair<std::int64_t, std::int64_t>>> runs_within(const std::string& channel,
                                                                         std::int64_t lo,
                                                                         std::int64_t hi);
  // Stores the events of one channel (sorting `events` by seq): raises its
  // last_seq, inserts those not stored yet (the first of repeated seqs),
  // several rows per statement, and adds them to message_runs. Returns how
  // many were new. Inside the caller's transaction.
  Result<int> store_channel_events(const std::string& channel, std::vector<const Message*>& events);
  Result<std::vector<OutboxEntry>> outbox_in_state(const char* state, DeliveryState as);
};

// The checks at open (cache_recovery.cpp). check_on_open reads little and
// sets rep.checked_fully when it had to fall back to full_check, which reads
// every page (PRAGMA quick_check).
Status check_on_open(Cache::Rep& rep);
Status full_check(Database& db, const std::string& path);

// Moves outbox rows into outbox.db (INSERT OR IGNORE: ids already there stay).
Status copy_outbox_rows(Database& odb, const std::vector<OutboxRow>& rows);

}  // namespace parley::store
