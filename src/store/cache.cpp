// The client cache on SQLite. Schema and decisions:
//
// - meta(key, value): 'user' (the owner, fixed at first open) and 'device_id'.
// - channels(name, member, last_seq, read_to): a row is created by whichever
//   call first mentions a channel; rows created implicitly (by store_events,
//   advance_cursor, outbox_acknowledge) start with member = 1, since the
//   client only receives events and acks for channels it is in.
// - messages(channel, seq, ...): every channel event, keyed by (channel, seq).
// - message_runs(channel, lo, hi): the stored seqs of each channel as maximal
//   runs of consecutive numbers, kept in the same transaction as messages.
//   It makes contiguous_down_from / contiguous_up_from one index lookup each,
//   however long the channel (a count over messages would read every row of
//   the run). Anything that deletes messages (eviction, later) must split runs.
// - outbox(ord, id, channel, text, created_ms, state, error): our messages not
//   yet acknowledged ('pending') or refused for good ('failed'); `ord` keeps
//   insertion order (AUTOINCREMENT: never reused, even after deletes).
#include "store/cache.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <system_error>
#include <utility>

#include "store/sqlite.hpp"

namespace parley::store {
namespace {

// ---- schema ---------------------------------------------------------------

// Migration N (1-based) brings user_version from N-1 to N. Append only; never
// edit a step that has shipped.
constexpr const char* kMigrations[] = {
    // 1: the initial schema.
    R"sql(
CREATE TABLE meta(
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE channels(
  name     TEXT PRIMARY KEY,
  member   INTEGER NOT NULL DEFAULT 1,
  last_seq INTEGER NOT NULL DEFAULT 0,
  read_to  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE messages(
  channel   TEXT NOT NULL REFERENCES channels(name) ON DELETE CASCADE,
  seq       INTEGER NOT NULL,
  kind      TEXT NOT NULL,
  sender    TEXT NOT NULL,
  client_id TEXT NOT NULL DEFAULT '',
  text      TEXT NOT NULL DEFAULT '',
  ts        INTEGER NOT NULL,
  PRIMARY KEY(channel, seq)
) WITHOUT ROWID;
-- latest_messages skips non-message events without scanning them.
CREATE INDEX messages_by_kind ON messages(channel, kind, seq);
CREATE TABLE message_runs(
  channel TEXT NOT NULL REFERENCES channels(name) ON DELETE CASCADE,
  lo      INTEGER NOT NULL,
  hi      INTEGER NOT NULL,
  PRIMARY KEY(channel, lo)
) WITHOUT ROWID;
CREATE TABLE outbox(
  ord        INTEGER PRIMARY KEY AUTOINCREMENT,
  id         TEXT NOT NULL UNIQUE,
  channel    TEXT NOT NULL,
  text       TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  state      TEXT NOT NULL DEFAULT 'pending' CHECK(state IN ('pending', 'failed')),
  error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_by_state ON outbox(state, ord);
)sql",
    // 2: receipts (issue 3): the user's own read cursor, others' cursors, members.
    R"sql(
ALTER TABLE channels ADD COLUMN my_read INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN my_read_sent INTEGER NOT NULL DEFAULT 0;
CREATE TABLE receipts(
  channel TEXT NOT NULL,
  user    TEXT NOT NULL,
  device  TEXT NOT NULL DEFAULT '',
  kind    TEXT NOT NULL CHECK(kind IN ('delivered', 'read')),
  seq     INTEGER NOT NULL,
  PRIMARY KEY(channel, user, device, kind)
) WITHOUT ROWID;
CREATE TABLE members(
  channel TEXT NOT NULL,
  user    TEXT NOT NULL,
  PRIMARY KEY(channel, user)
) WITHOUT ROWID;
)sql",
};
static_assert(std::size(kMigrations) == Cache::kSchemaVersion,
              "one migration step per schema version");

// ---- statements -------------------------------------------------------------

constexpr const char* kGetMeta = "SELECT value FROM meta WHERE key = ?1";
constexpr const char* kSetMeta =
    "INSERT INTO meta(key, value) VALUES(?1, ?2) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value";

constexpr const char* kUpsertChannel =
    "INSERT INTO channels(name, member, last_seq) VALUES(?1, ?2, ?3) "
    "ON CONFLICT(name) DO UPDATE SET member = excluded.member, "
    "last_seq = max(last_seq, excluded.last_seq)";
constexpr const char* kRaiseLastSeq =
    "INSERT INTO channels(name, member, last_seq) VALUES(?1, 1, ?2) "
    "ON CONFLICT(name) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)";
constexpr const char* kSetMember =
    "INSERT INTO channels(name, member) VALUES(?1, ?2) "
    "ON CONFLICT(name) DO UPDATE SET member = excluded.member";
constexpr const char* kAdvanceCursor =
    "INSERT INTO channels(name, member, read_to) VALUES(?1, 1, ?2) "
    "ON CONFLICT(name) DO UPDATE SET read_to = max(read_to, excluded.read_to)";
constexpr const char* kAllChannels =
    "SELECT name, member, last_seq, read_to FROM channels ORDER BY name";
constexpr const char* kOneChannel =
    "SELECT name, member, last_seq, read_to FROM channels WHERE name = ?1";

constexpr const char* kInsertEvent =
    "INSERT OR IGNORE INTO messages(channel, seq, kind, sender, client_id, text, ts) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr const char* kEventRange =
    "SELECT channel, seq, kind, sender, client_id, text, ts FROM messages "
    "WHERE channel = ?1 AND seq BETWEEN ?2 AND ?3 ORDER BY seq";
constexpr const char* kLatestMessages =
    "SELECT channel, seq, kind, sender, client_id, text, ts FROM messages "
    "WHERE channel = ?1 AND kind = 'message' AND seq < ?2 ORDER BY seq DESC LIMIT ?3";
constexpr const char* kMaxSeq = "SELECT max(seq) FROM messages WHERE channel = ?1";

// The run containing seq ?2, or the last one before it.
constexpr const char* kRunAtOrBefore =
    "SELECT lo, hi FROM message_runs WHERE channel = ?1 AND lo <= ?2 "
    "ORDER BY lo DESC LIMIT 1";
constexpr const char* kRunStartingAt = "SELECT hi FROM message_runs WHERE channel = ?1 AND lo = ?2";
constexpr const char* kInsertRun = "INSERT INTO message_runs(channel, lo, hi) VALUES(?1, ?2, ?3)";
constexpr const char* kSetRunHi = "UPDATE message_runs SET hi = ?3 WHERE channel = ?1 AND lo = ?2";
constexpr const char* kDeleteRun = "DELETE FROM message_runs WHERE channel = ?1 AND lo = ?2";

constexpr const char* kOutboxAdd =
    "INSERT INTO outbox(id, channel, text, created_ms) VALUES(?1, ?2, ?3, ?4)";
constexpr const char* kOutboxByState =
    "SELECT channel, id, text, error FROM outbox WHERE state = ?1 ORDER BY ord";
constexpr const char* kOutboxPendingOne =
    "SELECT channel, text FROM outbox WHERE id = ?1 AND state = 'pending'";
constexpr const char* kOutboxDelete = "DELETE FROM outbox WHERE id = ?1";
constexpr const char* kOutboxFail =
    "UPDATE outbox SET state = 'failed', error = ?2 WHERE id = ?1 AND state = 'pending'";
constexpr const char* kOutboxState = "SELECT state FROM outbox WHERE id = ?1";

// ---- helpers ----------------------------------------------------------------

constexpr std::int64_t kMaxSeqValue = std::numeric_limits<std::int64_t>::max();

// SQLite integers are signed 64-bit; sequence numbers never get near the top.
std::int64_t clamp_seq(std::uint64_t seq) {
  return seq > static_cast<std::uint64_t>(kMaxSeqValue) ? kMaxSeqValue
                                                        : static_cast<std::int64_t>(seq);
}

const char* kind_name(EventKind kind) {
  switch (kind) {
    case EventKind::message:
      return "message";
    case EventKind::create:
      return "create";
    case EventKind::join:
      return "join";
    case EventKind::leave:
      return "leave";
  }
  return "";
}

bool parse_kind(const std::string& name, EventKind* out) {
  for (EventKind k : {EventKind::message, EventKind::create, EventKind::join, EventKind::leave}) {
    if (name == kind_name(k)) {
      *out = k;
      return true;
    }
  }
  return false;
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

Status with_path(const std::string& path, const Status& s) {
  return Status(s.code(), fmt::format("cache \"{}\": {}", path, s.message()));
}

}  // namespace

struct Cache::Rep {
  std::string path;
  Database db;
  std::string device_id;
  // Prepared once, keyed by the address of the SQL constants above.
  std::map<const char*, Statement> statements;

  Result<Statement*> stmt(const char* sql) {
    auto it = statements.find(sql);
    if (it == statements.end()) {
      auto prepared = db.prepare(sql);
      if (!prepared) return prepared.status();
      it = statements.emplace(sql, std::move(*prepared)).first;
    }
    return &it->second;
  }

  // Reads one text value; nullopt when absent.
  Result<std::optional<std::string>> get_meta(const std::string& key) {
    auto st = stmt(kGetMeta);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, key);
    auto row = q->step();
    if (!row) return row.status();
    if (!*row) return std::optional<std::string>();
    return std::optional<std::string>(q->column_text(0));
  }

  Status set_meta(const std::string& key, const std::string& value) {
    auto st = stmt(kSetMeta);
    if (!st) return st.status();
    Scoped q(**st);
    return q->bind(1, key).bind(2, value).run();
  }

  Result<Message> read_event(Statement& q) {
    Message m;
    m.channel = q.column_text(0);
    m.seq = static_cast<std::uint64_t>(q.column_int(1));
    std::string kind = q.column_text(2);
    if (!parse_kind(kind, &m.kind)) {
      return Status(StatusCode::corrupt,
                    fmt::format("cache \"{}\": event {} of channel \"{}\" has unknown kind \"{}\"",
                                path, m.seq, m.channel, kind));
    }
    m.sender = q.column_text(3);
    m.id = q.column_text(4);
    m.text = q.column_text(5);
    m.ts_ms = q.column_int(6);
    m.state = DeliveryState::sent;
    return m;
  }

  Result<std::vector<Message>> read_events(Statement& q) {
    std::vector<Message> out;
    for (;;) {
      auto row = q.step();
      if (!row) return row.status();
      if (!*row) break;
      auto m = read_event(q);
      if (!m) return m.status();
      out.push_back(std::move(*m));
    }
    return out;
  }

  // The run of stored seqs containing `seq`, if any.
  Result<std::optional<std::pair<std::int64_t, std::int64_t>>> run_at(const std::string& channel,
                                                                      std::int64_t seq) {
    auto st = stmt(kRunAtOrBefore);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel).bind(2, seq);
    auto row = q->step();
    if (!row) return row.status();
    using Run = std::optional<std::pair<std::int64_t, std::int64_t>>;
    if (!*row || q->column_int(1) < seq) return Run();
    return Run(std::pair(q->column_int(0), q->column_int(1)));
  }

  // Records that `seq` (newly stored) is present: joins it to the run ending
  // at seq-1 and the run starting at seq+1. Inside the caller's transaction.
  Status add_to_runs(const std::string& channel, std::int64_t seq) {
    std::optional<std::int64_t> prev_lo;  // run ending at seq-1
    {
      auto st = stmt(kRunAtOrBefore);
      if (!st) return st.status();
      Scoped q(**st);
      q->bind(1, channel).bind(2, seq);
      auto row = q->step();
      if (!row) return row.status();
      if (*row) {
        std::int64_t hi = q->column_int(1);
        if (hi >= seq) return Status();  // already covered
        if (hi == seq - 1) prev_lo = q->column_int(0);
      }
    }
    std::optional<std::int64_t> next_hi;  // hi of the run starting at seq+1
    if (seq < kMaxSeqValue) {
      auto st = stmt(kRunStartingAt);
      if (!st) return st.status();
      Scoped q(**st);
      q->bind(1, channel).bind(2, seq + 1);
      auto row = q->step();
      if (!row) return row.status();
      if (*row) next_hi = q->column_int(0);
    }
    if (next_hi) {
      auto st = stmt(kDeleteRun);
      if (!st) return st.status();
      Scoped q(**st);
      if (Status s = q->bind(1, channel).bind(2, seq + 1).run(); !s.ok()) return s;
    }
    std::int64_t hi = next_hi.value_or(seq);
    if (prev_lo) {
      auto st = stmt(kSetRunHi);
      if (!st) return st.status();
      Scoped q(**st);
      return q->bind(1, channel).bind(2, *prev_lo).bind(3, hi).run();
    }
    auto st = stmt(kInsertRun);
    if (!st) return st.status();
    Scoped q(**st);
    return q->bind(1, channel).bind(2, seq).bind(3, hi).run();
  }

  Status raise_last_seq(const std::string& channel, std::int64_t seq) {
    auto st = stmt(kRaiseLastSeq);
    if (!st) return st.status();
    Scoped q(**st);
    return q->bind(1, channel).bind(2, seq).run();
  }

  // Inserts one event unless (channel, seq) is stored; true if it was new.
  // The channel row must exist (foreign key). Inside the caller's transaction.
  Result<bool> insert_event(const Message& m) {
    auto st = stmt(kInsertEvent);
    if (!st) return st.status();
    {
      Scoped q(**st);
      q->bind(1, m.channel)
          .bind(2, m.seq)
          .bind(3, kind_name(m.kind))
          .bind(4, m.sender)
          .bind(5, m.id)
          .bind(6, m.text)
          .bind(7, m.ts_ms);
      if (Status s = q->run(); !s.ok()) return s;
    }
    if (db.changes() == 0) return false;
    if (Status s = add_to_runs(m.channel, static_cast<std::int64_t>(m.seq)); !s.ok()) return s;
    return true;
  }

  Result<std::vector<OutboxEntry>> outbox_in_state(const char* state, DeliveryState as) {
    auto st = stmt(kOutboxByState);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, state);
    std::vector<OutboxEntry> out;
    for (;;) {
      auto row = q->step();
      if (!row) return row.status();
      if (!*row) break;
      OutboxEntry e;
      e.channel = q->column_text(0);
      e.id = q->column_text(1);
      e.text = q->column_text(2);
      e.error = q->column_text(3);
      e.state = as;
      out.push_back(std::move(e));
    }
    return out;
  }
};

Cache::Cache(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
Cache::~Cache() = default;

namespace {

// Runs `sql` and returns the first column of its first row ("" if no row).
Result<std::string> pragma_text(Database& db, const char* sql) {
  auto stmt = db.prepare(sql);
  if (!stmt) return stmt.status();
  auto row = stmt->step();
  if (!row) return row.status();
  return *row ? stmt->column_text(0) : std::string();
}

// Refuses a file that is not a database or whose pages don't hold together.
// (An empty file is a valid, empty database to SQLite: it is simply migrated.)
Status check_integrity(Database& db, const std::string& path) {
  // quick_check reads every page, so a truncated or scribbled file is found
  // here rather than by some later query.
  auto result = pragma_text(db, "PRAGMA quick_check(1)");
  if (!result) {
    if (result.status().code() != StatusCode::corrupt) return with_path(path, result.status());
    return Status(StatusCode::corrupt,
                  fmt::format("cache \"{}\" is corrupt: {}", path, sqlite3_errmsg(db.handle())));
  }
  if (*result != "ok") {
    std::string detail = *result;
    std::replace(detail.begin(), detail.end(), '\n', ' ');
    return Status(StatusCode::corrupt,
                  fmt::format("cache \"{}\" is corrupt: quick_check: {}", path, detail));
  }
  return Status();
}

Status migrate(Database& db, const std::string& path) {
  auto version = db.user_version();
  if (!version) return with_path(path, version.status());
  if (*version > Cache::kSchemaVersion) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("cache \"{}\" has schema version {}, newer than this library's {}",
                              path, *version, Cache::kSchemaVersion));
  }
  if (*version == 0) {
    // A version-0 file with tables is some other program's database: leave it be.
    auto tables = pragma_text(db, "SELECT count(*) FROM sqlite_schema");
    if (!tables) return with_path(path, tables.status());
    if (*tables != "0") {
      return Status(StatusCode::invalid_argument,
                    fmt::format("cache \"{}\" is not a parley cache: it has tables but no "
                                "schema version",
                                path));
    }
  }
  // One transaction per step: a crash between steps leaves a consistent file
  // at the last completed version, and the next open resumes from there.
  for (int v = *version + 1; v <= Cache::kSchemaVersion; ++v) {
    Transaction tx(db);
    if (!tx.begin_status().ok()) return with_path(path, tx.begin_status());
    if (Status s = db.exec(kMigrations[v - 1]); !s.ok()) {
      return Status(s.code(), fmt::format("cache \"{}\": migration to schema version {}: {}", path,
                                          v, s.message()));
    }
    if (Status s = db.set_user_version(v); !s.ok()) return with_path(path, s);
    if (Status s = tx.commit(); !s.ok()) return with_path(path, s);
  }
  return Status();
}

std::string new_device_id() {
  unsigned char bytes[16];
  randombytes_buf(bytes, sizeof bytes);
  char hex[sizeof bytes * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
  return std::string(hex);
}

}  // namespace

Result<std::unique_ptr<Cache>> Cache::open(const std::string& data_dir, const std::string& user) {
  if (data_dir.empty()) {
    return Status(StatusCode::invalid_argument, "cache: data directory may not be empty");
  }
  if (user.empty()) return Status(StatusCode::invalid_argument, "cache: user may not be empty");
  static const int sodium_rc = sodium_init();  // thread-safe, once per process
  if (sodium_rc < 0) return Status(StatusCode::internal, "cache: libsodium failed to initialize");

  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return Status(
        StatusCode::io_error,
        fmt::format("cache: cannot create data directory \"{}\": {}", data_dir, ec.message()));
  }
  auto rep = std::make_unique<Rep>();
  rep->path = (std::filesystem::path(data_dir) / "parley.db").string();
  const std::string& path = rep->path;

  // Nothing below deletes or rewrites a file that fails a check: a corrupt
  // cache stays where it is for the app (or a person) to inspect.
  auto db = Database::open(path);
  if (!db) return db.status();  // names the path already
  rep->db = std::move(*db);

  if (Status s = check_integrity(rep->db, path); !s.ok()) return s;
  // Takes effect only on a new, empty file (before WAL mode writes its first
  // page and before the first table): lets the cache give evicted pages back
  // to the file system (PRAGMA incremental_vacuum) when it is kept to a budget.
  // On an existing cache it changes nothing.
  if (Status s = rep->db.exec("PRAGMA auto_vacuum = INCREMENTAL"); !s.ok()) return with_path(path, s);
  // WAL: readers don't block the writer, and a commit is one append. If the
  // file system cannot do WAL, SQLite keeps the rollback journal, which is
  // slower but just as safe, so the answer is not checked.
  if (auto mode = pragma_text(rep->db, "PRAGMA journal_mode = WAL"); !mode) {
    return with_path(path, mode.status());
  }
  // FULL, not NORMAL: in WAL mode NORMAL syncs only at checkpoints, so a commit
  // survives a killed process but may be rolled back by a power loss or OS
  // crash. FULL syncs the WAL at every commit, so an outbox entry whose send()
  // returned is on stable storage; the cost is one fsync per commit.
  if (Status s = rep->db.exec("PRAGMA synchronous = FULL"); !s.ok()) return with_path(path, s);
  if (Status s = migrate(rep->db, path); !s.ok()) return s;

  {
    Transaction tx(rep->db);
    if (!tx.begin_status().ok()) return with_path(path, tx.begin_status());
    auto owner = rep->get_meta("user");
    if (!owner) return with_path(path, owner.status());
    if (!*owner) {
      if (Status s = rep->set_meta("user", user); !s.ok()) return with_path(path, s);
    } else if (**owner != user) {
      return Status(
          StatusCode::invalid_argument,
          fmt::format("cache \"{}\" belongs to user \"{}\", not \"{}\"", path, **owner, user));
    }
    auto device = rep->get_meta("device_id");
    if (!device) return with_path(path, device.status());
    if (*device) {
      rep->device_id = **device;
    } else {
      std::string id = new_device_id();
      if (Status s = rep->set_meta("device_id", id); !s.ok()) return with_path(path, s);
      rep->device_id = id;
    }
    if (Status s = tx.commit(); !s.ok()) return with_path(path, s);
  }
  return std::unique_ptr<Cache>(new Cache(std::move(rep)));
}

// ---- meta -------------------------------------------------------------------

std::string Cache::device_id() const { return rep_->device_id; }

Status Cache::set_device_id(const std::string& id) {
  bool printable = std::all_of(id.begin(), id.end(), [](char c) {
    return static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
  });
  if (!printable) {
    // Not echoed: the message must stay one line.
    return Status(StatusCode::invalid_argument,
                  "device id: may not contain spaces or control characters");
  }
  if (id.empty() || id.size() > 128) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("device id \"{}\": must be 1-128 characters", id));
  }
  if (Status s = rep_->set_meta("device_id", id); !s.ok()) return s;
  rep_->device_id = id;
  return Status();
}

// ---- channels and cursors ---------------------------------------------------

Status Cache::upsert_channel(const std::string& channel, std::uint64_t last_seq, bool member) {
  auto st = rep_->stmt(kUpsertChannel);
  if (!st) return st.status();
  Scoped q(**st);
  return q->bind(1, channel).bind(2, member ? 1 : 0).bind(3, clamp_seq(last_seq)).run();
}

Status Cache::set_member(const std::string& channel, bool member) {
  auto st = rep_->stmt(kSetMember);
  if (!st) return st.status();
  Scoped q(**st);
  return q->bind(1, channel).bind(2, member ? 1 : 0).run();
}

namespace {
ChannelInfo read_channel(Statement& q) {
  ChannelInfo c;
  c.name = q.column_text(0);
  c.member = q.column_int(1) != 0;
  c.last_seq = static_cast<std::uint64_t>(q.column_int(2));
  c.read_to = static_cast<std::uint64_t>(q.column_int(3));
  return c;
}
}  // namespace

Result<std::vector<ChannelInfo>> Cache::channels() {
  auto st = rep_->stmt(kAllChannels);
  if (!st) return st.status();
  Scoped q(**st);
  std::vector<ChannelInfo> out;
  for (;;) {
    auto row = q->step();
    if (!row) return row.status();
    if (!*row) break;
    out.push_back(read_channel(*q));
  }
  return out;
}

Result<std::optional<ChannelInfo>> Cache::channel(const std::string& channel) {
  auto st = rep_->stmt(kOneChannel);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, channel);
  auto row = q->step();
  if (!row) return row.status();
  if (!*row) return std::optional<ChannelInfo>();
  return std::optional<ChannelInfo>(read_channel(*q));
}

Status Cache::advance_cursor(const std::string& channel, std::uint64_t seq) {
  auto st = rep_->stmt(kAdvanceCursor);
  if (!st) return st.status();
  Scoped q(**st);
  return q->bind(1, channel).bind(2, clamp_seq(seq)).run();
}

// ---- messages -----------------------------------------------------------------

Result<int> Cache::store_events(const std::vector<Message>& events) {
  // Checked before anything is written, so a bad batch stores nothing.
  std::map<std::string, std::int64_t> top;  // channel -> highest seq in the batch
  for (const Message& m : events) {
    if (m.channel.empty()) {
      return Status(StatusCode::invalid_argument,
                    fmt::format("event {}: channel may not be empty", m.seq));
    }
    if (m.seq == 0 || m.seq > static_cast<std::uint64_t>(kMaxSeqValue)) {
      return Status(StatusCode::invalid_argument,
                    fmt::format("event of channel \"{}\": seq {} out of range", m.channel, m.seq));
    }
    auto& t = top[m.channel];
    t = std::max(t, static_cast<std::int64_t>(m.seq));
  }
  if (events.empty()) return 0;

  Transaction tx(rep_->db);
  if (!tx.begin_status().ok()) return tx.begin_status();
  for (const auto& [channel, seq] : top) {
    if (Status s = rep_->raise_last_seq(channel, seq); !s.ok()) return s;
  }
  int added = 0;
  for (const Message& m : events) {
    auto fresh = rep_->insert_event(m);
    if (!fresh) return fresh.status();
    if (*fresh) ++added;
  }
  if (Status s = tx.commit(); !s.ok()) return s;
  return added;
}

Result<std::vector<Message>> Cache::events(const std::string& channel, std::uint64_t from,
                                           std::uint64_t to) {
  if (from > to) return std::vector<Message>();
  auto st = rep_->stmt(kEventRange);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, channel).bind(2, clamp_seq(from)).bind(3, clamp_seq(to));
  return rep_->read_events(*q);
}

Result<std::vector<Message>> Cache::latest_messages(const std::string& channel,
                                                    std::uint64_t before, std::uint32_t limit) {
  if (limit == 0) return std::vector<Message>();
  auto st = rep_->stmt(kLatestMessages);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, channel)
      .bind(2, before == 0 ? kMaxSeqValue : clamp_seq(before))
      .bind(3, static_cast<std::int64_t>(limit));
  auto out = rep_->read_events(*q);
  if (!out) return out;
  std::reverse(out->begin(), out->end());
  return out;
}

Result<std::uint64_t> Cache::contiguous_down_from(const std::string& channel, std::uint64_t to) {
  if (to == 0 || to > static_cast<std::uint64_t>(kMaxSeqValue)) return to + 1;
  auto run = rep_->run_at(channel, static_cast<std::int64_t>(to));
  if (!run) return run.status();
  if (!*run) return to + 1;
  return static_cast<std::uint64_t>((*run)->first);
}

Result<std::uint64_t> Cache::contiguous_up_from(const std::string& channel, std::uint64_t from) {
  // Seq 0 never exists: from 0 means from 1 (and "none" is then 0).
  if (from == 0) from = 1;
  if (from > static_cast<std::uint64_t>(kMaxSeqValue)) return from - 1;
  auto run = rep_->run_at(channel, static_cast<std::int64_t>(from));
  if (!run) return run.status();
  if (!*run) return from - 1;
  return static_cast<std::uint64_t>((*run)->second);
}

Result<std::uint64_t> Cache::max_seq(const std::string& channel) {
  auto st = rep_->stmt(kMaxSeq);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, channel);
  auto row = q->step();
  if (!row) return row.status();
  return static_cast<std::uint64_t>(*row ? q->column_int(0) : 0);  // NULL reads as 0
}

// ---- outbox -------------------------------------------------------------------

Status Cache::outbox_add(const std::string& channel, const std::string& id, const std::string& text,
                         std::int64_t created_ms) {
  if (channel.empty()) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("outbox message \"{}\": channel may not be empty", id));
  }
  if (id.empty()) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("outbox message for channel \"{}\": id may not be empty", channel));
  }
  auto st = rep_->stmt(kOutboxAdd);
  if (!st) return st.status();
  Scoped q(**st);
  // Autocommit: with synchronous = FULL the row is on disk when this returns.
  Status s = q->bind(1, id).bind(2, channel).bind(3, text).bind(4, created_ms).run();
  if (!s.ok() && sqlite3_extended_errcode(rep_->db.handle()) == SQLITE_CONSTRAINT_UNIQUE) {
    return Status(StatusCode::already_exists,
                  fmt::format("outbox message \"{}\" already exists", id));
  }
  return s;
}

Result<std::vector<OutboxEntry>> Cache::outbox_pending() {
  return rep_->outbox_in_state("pending", DeliveryState::pending);
}

Result<bool> Cache::outbox_acknowledge(const std::string& id, std::uint64_t seq, std::int64_t ts_ms,
                                       const std::string& sender) {
  if (seq == 0 || seq > static_cast<std::uint64_t>(kMaxSeqValue)) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("outbox message \"{}\": seq {} out of range", id, seq));
  }
  Transaction tx(rep_->db);
  if (!tx.begin_status().ok()) return tx.begin_status();
  Message m;
  {
    auto st = rep_->stmt(kOutboxPendingOne);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, id);
    auto row = q->step();
    if (!row) return row.status();
    if (!*row) return false;  // the transaction rolls back: nothing written
    m.channel = q->column_text(0);
    m.text = q->column_text(1);
  }
  m.seq = seq;
  m.kind = EventKind::message;
  m.sender = sender;
  m.id = id;
  m.ts_ms = ts_ms;
  {
    auto st = rep_->stmt(kOutboxDelete);
    if (!st) return st.status();
    Scoped q(**st);
    if (Status s = q->bind(1, id).run(); !s.ok()) return s;
  }
  if (Status s = rep_->raise_last_seq(m.channel, static_cast<std::int64_t>(seq)); !s.ok()) {
    return s;
  }
  // If the event at seq arrived first (live, or in a history page), the stored
  // copy from the server stands.
  if (auto fresh = rep_->insert_event(m); !fresh) return fresh.status();
  if (Status s = tx.commit(); !s.ok()) return s;
  return true;
}

Status Cache::outbox_fail(const std::string& id, const std::string& error) {
  auto st = rep_->stmt(kOutboxFail);
  if (!st) return st.status();
  {
    Scoped q(**st);
    if (Status s = q->bind(1, id).bind(2, error).run(); !s.ok()) return s;
  }
  if (rep_->db.changes() > 0) return Status();
  // Failing an entry that already failed is a no-op; an unknown or already
  // acknowledged id is the caller's to hear about.
  auto state_st = rep_->stmt(kOutboxState);
  if (!state_st) return state_st.status();
  Scoped q(**state_st);
  q->bind(1, id);
  auto row = q->step();
  if (!row) return row.status();
  if (*row) return Status();
  return Status(StatusCode::not_found, fmt::format("outbox message \"{}\" not found", id));
}

Result<std::vector<OutboxEntry>> Cache::outbox_failed() {
  return rep_->outbox_in_state("failed", DeliveryState::failed);
}

}  // namespace parley::store

// ---- receipts -------------------------------------------------------------------

namespace parley::store {
namespace {
constexpr const char* kRaiseReceipt =
    "INSERT INTO receipts(channel, user, device, kind, seq) VALUES(?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT(channel, user, device, kind) DO UPDATE SET seq = excluded.seq "
    "WHERE excluded.seq > receipts.seq";
constexpr const char* kClearMembers = "DELETE FROM members WHERE channel = ?1";
constexpr const char* kAddMember = "INSERT OR IGNORE INTO members(channel, user) VALUES(?1, ?2)";
constexpr const char* kRemoveMember = "DELETE FROM members WHERE channel = ?1 AND user = ?2";
constexpr const char* kCountMembers =
    "SELECT count(*) FROM members WHERE channel = ?1 AND user != ?2";
constexpr const char* kCountReached =
    "SELECT count(DISTINCT r.user) FROM receipts r "
    "JOIN members m ON m.channel = r.channel AND m.user = r.user "
    "WHERE r.channel = ?1 AND r.user != ?2 AND r.kind = ?3 AND r.seq >= ?4";
constexpr const char* kRaiseMyRead =
    "INSERT INTO channels(name, member, my_read) VALUES(?1, 1, ?2) "
    "ON CONFLICT(name) DO UPDATE SET my_read = max(my_read, excluded.my_read)";
constexpr const char* kMyRead = "SELECT my_read FROM channels WHERE name = ?1";
constexpr const char* kSetMyReadSent =
    "UPDATE channels SET my_read_sent = max(my_read_sent, ?2) WHERE name = ?1";
constexpr const char* kUnsentReads =
    "SELECT name, my_read FROM channels WHERE my_read > my_read_sent ORDER BY name";
}  // namespace

Result<bool> Cache::raise_receipt(const std::string& channel, const std::string& user,
                                  const std::string& device, ReceiptKind kind, std::uint64_t seq) {
  auto st = rep_->stmt(kRaiseReceipt);
  if (!st) return st.status();
  Scoped q(**st);
  Status s = q->bind(1, channel)
                 .bind(2, user)
                 .bind(3, kind == ReceiptKind::read ? std::string() : device)
                 .bind(4, to_string(kind))
                 .bind(5, clamp_seq(seq))
                 .run();
  if (!s.ok()) return s;
  return rep_->db.changes() > 0;
}

Status Cache::set_members(const std::string& channel, const std::vector<std::string>& users) {
  Transaction tx(rep_->db);
  if (!tx.begin_status().ok()) return tx.begin_status();
  {
    auto st = rep_->stmt(kClearMembers);
    if (!st) return st.status();
    Scoped q(**st);
    if (Status s = q->bind(1, channel).run(); !s.ok()) return s;
  }
  for (const auto& user : users) {
    auto st = rep_->stmt(kAddMember);
    if (!st) return st.status();
    Scoped q(**st);
    if (Status s = q->bind(1, channel).bind(2, user).run(); !s.ok()) return s;
  }
  return tx.commit();
}

Status Cache::add_member(const std::string& channel, const std::string& user) {
  auto st = rep_->stmt(kAddMember);
  if (!st) return st.status();
  Scoped q(**st);
  return q->bind(1, channel).bind(2, user).run();
}

Status Cache::remove_member(const std::string& channel, const std::string& user) {
  auto st = rep_->stmt(kRemoveMember);
  if (!st) return st.status();
  Scoped q(**st);
  return q->bind(1, channel).bind(2, user).run();
}

Result<ReceiptSummary> Cache::receipt_summary(const std::string& channel, std::uint64_t seq,
                                              const std::string& sender) {
  ReceiptSummary out;
  {
    auto st = rep_->stmt(kCountMembers);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel).bind(2, sender);
    auto row = q->step();
    if (!row) return row.status();
    out.members = *row ? static_cast<std::uint32_t>(q->column_int(0)) : 0;
  }
  for (ReceiptKind kind : {ReceiptKind::delivered, ReceiptKind::read}) {
    auto st = rep_->stmt(kCountReached);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel).bind(2, sender).bind(3, to_string(kind)).bind(4, clamp_seq(seq));
    auto row = q->step();
    if (!row) return row.status();
    auto n = *row ? static_cast<std::uint32_t>(q->column_int(0)) : 0;
    (kind == ReceiptKind::read ? out.read : out.delivered) = n;
  }
  // Whoever read a message has it: count readers as delivered too.
  out.delivered = std::max(out.delivered, out.read);
  return out;
}

Result<std::uint64_t> Cache::raise_my_read(const std::string& channel, std::uint64_t seq) {
  {
    auto st = rep_->stmt(kRaiseMyRead);
    if (!st) return st.status();
    Scoped q(**st);
    if (Status s = q->bind(1, channel).bind(2, clamp_seq(seq)).run(); !s.ok()) return s;
  }
  auto st = rep_->stmt(kMyRead);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, channel);
  auto row = q->step();
  if (!row) return row.status();
  return *row ? static_cast<std::uint64_t>(q->column_int(0)) : 0;
}

Status Cache::set_my_read_sent(const std::string& channel, std::uint64_t seq) {
  auto st = rep_->stmt(kSetMyReadSent);
  if (!st) return st.status();
  Scoped q(**st);
  return q->bind(1, channel).bind(2, clamp_seq(seq)).run();
}

Result<std::vector<Cache::PendingRead>> Cache::unsent_reads() {
  auto st = rep_->stmt(kUnsentReads);
  if (!st) return st.status();
  Scoped q(**st);
  std::vector<PendingRead> out;
  for (;;) {
    auto row = q->step();
    if (!row) return row.status();
    if (!*row) break;
    out.push_back({q->column_text(0), static_cast<std::uint64_t>(q->column_int(1))});
  }
  return out;
}

}  // namespace parley::store
