// Finding damage in parley.db and recovering from it.
//
// Open stays fast however big the cache is: it checks what a cheap read can
// (the header and the schema, that the file is as long as its pages, the
// small tables in full, and both ends of every channel's events against
// message_runs), and leaves the full PRAGMA quick_check, which reads every
// page, to a helper thread with its own read-only connection. Damage found
// there, or by any later statement (SQLITE_CORRUPT), is recorded in
// corruption() and in outbox.db, so that the next open knows it too.
//
// rebuild() moves the damaged file aside, salvages the channel rows (cursors)
// and, from a file older than schema 3, the outbox rows, and starts a new file.
// outbox.db is a separate file and is never touched by it.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>

#include "store/cache_rep.hpp"

namespace parley::store {

namespace fs = std::filesystem;

// ---- the background check ------------------------------------------------------

class BackgroundCheck {
 public:
  BackgroundCheck(std::string path, std::function<void()> done) {
    thread_ = std::thread([this, path = std::move(path), done = std::move(done)] {
      run(path);
      if (done) done();
    });
  }
  ~BackgroundCheck() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      if (db_ != nullptr) sqlite3_interrupt(db_);
    }
    thread_.join();
  }
  BackgroundCheck(const BackgroundCheck&) = delete;
  BackgroundCheck& operator=(const BackgroundCheck&) = delete;

  bool done() const {
    std::lock_guard lock(mu_);
    return done_;
  }
  // Ok (also when the check could not run or was stopped), or corrupt.
  Status result() const {
    std::lock_guard lock(mu_);
    return result_;
  }
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return done_; });
  }

 private:
  void run(const std::string& path) {
    Status result;
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
    bool go = rc == SQLITE_OK;
    if (go) {
      sqlite3_busy_timeout(raw, 5000);
      std::lock_guard lock(mu_);
      go = !stop_;
      if (go) db_ = raw;
    }
    if (go) {
      sqlite3_stmt* q = nullptr;
      rc = sqlite3_prepare_v2(raw, "PRAGMA quick_check(1)", -1, &q, nullptr);
      std::string answer;
      if (rc == SQLITE_OK) {
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
          answer = text != nullptr ? text : "";
        }
      }
      int primary = rc & 0xff;
      if (rc == SQLITE_ROW && answer != "ok") {
        std::replace(answer.begin(), answer.end(), '\n', ' ');
        result = Status(StatusCode::corrupt,
                        fmt::format("cache \"{}\" is corrupt: quick_check: {}", path, answer));
      } else if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
        result = Status(StatusCode::corrupt,
                        fmt::format("cache \"{}\" is corrupt: {}", path, sqlite3_errmsg(raw)));
      }
      // Anything else (interrupted, busy, out of memory) proves nothing.
      sqlite3_finalize(q);
      std::lock_guard lock(mu_);
      db_ = nullptr;
    }
    sqlite3_close(raw);
    {
      std::lock_guard lock(mu_);
      done_ = true;
      result_ = result;
    }
    cv_.notify_all();
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  sqlite3* db_ = nullptr;  // guarded by mu_; set while the check runs
  bool stop_ = false;      // guarded by mu_
  bool done_ = false;      // guarded by mu_
  Status result_;          // guarded by mu_
  std::thread thread_;
};

Cache::Rep::Rep() = default;

Cache::Rep::~Rep() {
  check.reset();
  // Closing a damaged file must not checkpoint its WAL into it.
  if (!corrupt.ok() && db.handle() != nullptr) {
    sqlite3_db_config(db.handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  }
}

void Cache::Rep::start_background_check() {
  if (!options.background_check || checked_fully || !corrupt.ok()) return;
  check = std::make_unique<BackgroundCheck>(path, options.on_check_done);
}

bool Cache::Rep::check_running() const { return check && !check->done(); }

// ---- checks at open ----------------------------------------------------------------

namespace {

Status corrupt_at(const std::string& path, const Status& s) {
  if (s.code() != StatusCode::corrupt) return with_path(path, s);
  return Status(StatusCode::corrupt, fmt::format("cache \"{}\" is corrupt: {}", path, s.message()));
}

Result<std::int64_t> pragma_int(Database& db, const char* sql) {
  auto text = query_text(db, sql);
  if (!text) return text.status();
  return static_cast<std::int64_t>(std::strtoll(text->c_str(), nullptr, 10));
}

std::uint64_t size_or_zero(const std::string& path) {
  std::error_code ec;
  auto n = fs::file_size(path, ec);
  return ec ? 0 : static_cast<std::uint64_t>(n);
}

// How many channels open compares with message_runs, at most.
constexpr int kOpenProbeChannels = 512;
// Up to this size the full check takes a few milliseconds: open runs it
// itself rather than start a thread.
constexpr std::uint64_t kInlineCheckBytes = 1u << 20;

}  // namespace

Status full_check(Database& db, const std::string& path) {
  auto result = query_text(db, "PRAGMA quick_check(1)");
  if (!result) return corrupt_at(path, result.status());
  if (*result != "ok") {
    std::string detail = *result;
    std::replace(detail.begin(), detail.end(), '\n', ' ');
    return Status(StatusCode::corrupt,
                  fmt::format("cache \"{}\" is corrupt: quick_check: {}", path, detail));
  }
  return Status();
}

Status check_on_open(Cache::Rep& rep) {
  Database& db = rep.db;
  const std::string& path = rep.path;
  // Page 1 and the schema: a file that is not a database fails here.
  std::set<std::string> tables;
  {
    auto q = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'");
    if (!q) return corrupt_at(path, q.status());
    for (;;) {
      auto row = q->step();
      if (!row) return corrupt_at(path, row.status());
      if (!*row) break;
      tables.insert(q->column_text(0));
    }
  }
  if (!rep.options.background_check) {
    rep.checked_fully = true;
    return full_check(db, path);
  }
  // Truncation: the file must hold every page the database counts. With a
  // WAL, the last pages may legitimately be there instead; only reading every
  // page can tell, so then the full check runs now.
  auto pages = pragma_int(db, "PRAGMA page_count");
  if (!pages) return corrupt_at(path, pages.status());
  auto page_size = pragma_int(db, "PRAGMA page_size");
  if (!page_size) return corrupt_at(path, page_size.status());
  std::uint64_t want = static_cast<std::uint64_t>(*pages) * static_cast<std::uint64_t>(*page_size);
  std::uint64_t have = size_or_zero(path);
  if (have < want) {
    if (size_or_zero(path + "-wal") == 0) {
      return Status(StatusCode::corrupt,
                    fmt::format("cache \"{}\" is corrupt: the file is {} bytes, shorter than its "
                                "{} pages of {} bytes",
                                path, have, *pages, *page_size));
    }
    rep.checked_fully = true;
    return full_check(db, path);
  }
  if (have + size_or_zero(path + "-wal") <= kInlineCheckBytes) {
    rep.checked_fully = true;
    return full_check(db, path);
  }
  // The small tables, every page of them.
  for (const char* table : {"meta", "channels", "message_runs", "receipts", "members", "outbox"}) {
    if (!tables.count(table)) continue;
    auto answer = query_text(db, fmt::format("PRAGMA quick_check({})", table).c_str());
    if (!answer) return corrupt_at(path, answer.status());
    if (*answer != "ok") {
      std::replace(answer->begin(), answer->end(), '\n', ' ');
      return Status(StatusCode::corrupt, fmt::format("cache \"{}\" is corrupt: quick_check({}): {}",
                                                     path, table, *answer));
    }
  }
  if (!tables.count("messages") || !tables.count("message_runs")) return Status();
  // Both ends of each channel's events, by the table and by its index, must
  // agree with message_runs: reads the first and last leaf of each channel.
  auto runs =
      db.prepare("SELECT channel, min(lo), max(hi) FROM message_runs GROUP BY channel LIMIT ?1");
  if (!runs) return corrupt_at(path, runs.status());
  runs->bind(1, kOpenProbeChannels);
  auto lo_q = db.prepare("SELECT min(seq) FROM messages WHERE channel = ?1");
  auto hi_q = db.prepare("SELECT max(seq) FROM messages WHERE channel = ?1");
  auto kind_q = db.prepare(
      "SELECT max(seq) FROM messages INDEXED BY messages_by_kind "
      "WHERE channel = ?1 AND kind = 'message'");
  if (!lo_q) return corrupt_at(path, lo_q.status());
  if (!hi_q) return corrupt_at(path, hi_q.status());
  if (!kind_q) return corrupt_at(path, kind_q.status());
  for (;;) {
    auto row = runs->step();
    if (!row) return corrupt_at(path, row.status());
    if (!*row) break;
    std::string channel = runs->column_text(0);
    std::int64_t run_lo = runs->column_int(1), run_hi = runs->column_int(2);
    std::int64_t ends[3] = {0, 0, 0};
    Statement* probes[3] = {&*lo_q, &*hi_q, &*kind_q};
    for (int i = 0; i < 3; ++i) {
      probes[i]->bind(1, channel);
      auto r = probes[i]->step();
      if (!r) return corrupt_at(path, r.status());
      ends[i] = *r ? probes[i]->column_int(0) : 0;
      probes[i]->reset();
    }
    if (ends[0] != run_lo || ends[1] != run_hi || ends[2] > run_hi) {
      return Status(StatusCode::corrupt,
                    fmt::format("cache \"{}\" is corrupt: channel \"{}\" stores events {}..{} but "
                                "its runs say {}..{}",
                                path, channel, ends[0], ends[1], run_lo, run_hi));
    }
  }
  return Status();
}

// ---- corruption seen later -------------------------------------------------------

Status Cache::Rep::note(Status s) {
  if (s.code() == StatusCode::corrupt) record_corruption(s);
  return s;
}

void Cache::Rep::record_corruption(const Status& s) {
  if (!corrupt.ok()) return;
  const std::string& m = s.message();
  corrupt = m.find(path) != std::string::npos
                ? Status(StatusCode::corrupt, m)
                : Status(StatusCode::corrupt, fmt::format("cache \"{}\" is corrupt: {}", path, m));
  // Remembered in the file that stays good, for the next open. Best effort:
  // if it cannot be written the next open's checks (or its background check)
  // find the damage again.
  set_meta(odb, "cache_corrupt", corrupt.message());
}

Status Cache::corruption() {
  if (rep_->corrupt.ok() && rep_->check && rep_->check->done()) {
    Status found = rep_->check->result();
    if (!found.ok()) rep_->record_corruption(found);
  }
  return rep_->corrupt;
}

Status Cache::test_wait_background_check() {
  if (rep_->check) rep_->check->wait();
  return corruption();
}

// ---- rebuild ----------------------------------------------------------------------

namespace {

struct Salvage {
  std::vector<ChannelRow> channels;
  std::vector<OutboxRow> outbox;
};

// Reads rows by ascending key until the first error, then by descending key
// until an error or the rows already read: what lies on either side of a
// damaged page. `read` returns the row's key.
void read_both_ways(Database& db, const std::string& asc, const std::string& desc,
                    const std::function<std::int64_t(Statement&)>& read) {
  std::int64_t top = std::numeric_limits<std::int64_t>::min();
  if (auto q = db.prepare(asc)) {
    for (;;) {
      auto row = q->step();
      if (!row || !*row) break;
      top = std::max(top, read(*q));
    }
  }
  if (auto q = db.prepare(desc)) {
    q->bind(1, top);
    for (;;) {
      auto row = q->step();
      if (!row || !*row) break;
      read(*q);
    }
  }
}

Salvage salvage(Database& db) {
  Salvage out;
  if (db.handle() == nullptr) return out;
  // A file shorter than its header says is refused outright by SQLite unless
  // the schema is writable; then it reads the pages that are there. (Nothing
  // is written through this connection: it is closed right after.)
  db.exec("PRAGMA writable_schema = ON");
  std::set<std::string> seen;
  auto channel_row = [&](Statement& q) {
    ChannelRow c;
    c.name = q.column_text(1);
    c.member = q.column_int(2) != 0;
    c.last_seq = q.column_int(3);
    c.read_to = q.column_int(4);
    c.my_read = q.column_int(5);
    c.my_read_sent = q.column_int(6);
    bool sane = !c.name.empty() && c.name.size() <= 256 && c.read_to >= 0 && c.my_read >= 0 &&
                c.my_read_sent >= 0;
    if (sane && seen.insert(c.name).second) out.channels.push_back(std::move(c));
    return q.column_int(0);
  };
  // Schema 1 has no my_read columns.
  bool has_my_read = static_cast<bool>(db.prepare("SELECT my_read FROM channels LIMIT 0"));
  std::string cols = has_my_read ? "rowid, name, member, last_seq, read_to, my_read, my_read_sent"
                                 : "rowid, name, member, last_seq, read_to, 0, 0";
  read_both_ways(db, "SELECT " + cols + " FROM channels ORDER BY rowid",
                 "SELECT " + cols + " FROM channels WHERE rowid > ?1 ORDER BY rowid DESC",
                 channel_row);
  // Before schema 3 the outbox lived here.
  if (db.prepare("SELECT ord FROM outbox LIMIT 0")) {
    std::set<std::string> ids;
    auto outbox_row = [&](Statement& q) {
      OutboxRow r{q.column_int(0),  q.column_text(1), q.column_text(2), q.column_text(3),
                  q.column_text(5), q.column_text(6), q.column_int(4)};
      if (!r.id.empty() && !r.channel.empty() && ids.insert(r.id).second) {
        out.outbox.push_back(std::move(r));
      }
      return q.column_int(0);
    };
    const std::string cols2 = "ord, id, channel, text, created_ms, state, error";
    read_both_ways(db, "SELECT " + cols2 + " FROM outbox ORDER BY ord",
                   "SELECT " + cols2 + " FROM outbox WHERE ord > ?1 ORDER BY ord DESC", outbox_row);
    std::sort(out.outbox.begin(), out.outbox.end(),
              [](const OutboxRow& a, const OutboxRow& b) { return a.ord < b.ord; });
  }
  return out;
}

std::string utc_stamp() {
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// Moves parley.db and its WAL to parley.db.corrupt-<UTC time>[-N] (removing
// the shared-memory file), and deletes older moved-aside copies: only the
// latest is kept for inspection. Returns the new name.
Result<std::string> move_aside(const std::string& path) {
  std::string base = path + ".corrupt-" + utc_stamp();
  std::string dst = base;
  std::error_code ec;
  for (int n = 2; fs::exists(dst, ec) || fs::exists(dst + "-wal", ec); ++n) {
    dst = base + "-" + std::to_string(n);
  }
  fs::rename(path, dst, ec);
  if (ec && fs::exists(path)) {
    return Status(StatusCode::io_error, fmt::format("cache \"{}\": cannot move it to \"{}\": {}",
                                                    path, dst, ec.message()));
  }
  // The old WAL must not be read as the new file's.
  if (fs::exists(path + "-wal")) {
    fs::rename(path + "-wal", dst + "-wal", ec);
    if (ec && !fs::remove(path + "-wal", ec)) {
      return Status(StatusCode::io_error, fmt::format("cache \"{}\": cannot remove \"{}-wal\": {}",
                                                      path, path, ec.message()));
    }
  }
  fs::remove(path + "-shm", ec);
  fs::path dir = fs::path(path).parent_path();
  std::string prefix = fs::path(path).filename().string() + ".corrupt-";
  std::string keep = fs::path(dst).filename().string();
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && name != keep && name != keep + "-wal") {
      fs::remove(entry.path(), ec);
    }
  }
  return dst;
}

constexpr const char* kRestoreChannel =
    "INSERT INTO channels(name, member, last_seq, read_to, my_read, my_read_sent) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name) DO NOTHING";

}  // namespace

Status Cache::Rep::rebuild(const Status& cause) {
  check.reset();
  RebuildReport report;
  report.cause =
      cause.code() == StatusCode::corrupt ? cause : Status(StatusCode::corrupt, cause.message());
  Salvage saved = salvage(db);
  if (db.handle() != nullptr) {
    sqlite3_db_config(db.handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  }
  statements.clear();
  db = Database();

  Status made;
  auto moved = move_aside(path);
  if (moved) {
    report.moved_to = *moved;
    made = open_cache_file();
  } else {
    made = moved.status();
  }
  if (!made.ok()) {
    // No file: keep going in memory, so the client still works (the outbox
    // is on disk in its own file); the next open tries again.
    statements.clear();
    db = Database();
    std::string real = path;
    path = ":memory:";
    Status mem = open_cache_file();
    path = real;
    if (!mem.ok()) made = Status(made.code(), made.message() + "; in memory too: " + mem.message());
  }
  report.status = made;
  if (Status s = copy_outbox_rows(odb, saved.outbox); !s.ok() && report.status.ok()) {
    report.status = with_path(outbox_path, s);
  }
  if (auto st = stmt(kRestoreChannel)) {
    Transaction tx(db);
    for (const ChannelRow& c : saved.channels) {
      Scoped q(**st);
      // last_seq comes from the server at the next sync; the cursors are ours.
      Status s = q->bind(1, c.name)
                     .bind(2, c.member ? 1 : 0)
                     .bind(3, c.read_to)
                     .bind(4, c.read_to)
                     .bind(5, c.my_read)
                     .bind(6, c.my_read_sent)
                     .run();
      if (s.ok()) ++report.channels_kept;
    }
    tx.commit();
  }
  set_meta(db, "user", user);
  corrupt = Status();
  checked_fully = true;  // a new file
  if (auto st = odb.prepare("DELETE FROM meta WHERE key = 'cache_corrupt'")) st->run();
  if (auto pending = outbox_in_state("pending", DeliveryState::pending)) {
    report.outbox_pending = pending->size();
  }
  reset_budget_state();
  rebuilt = report;
  return made;
}

Status Cache::rebuild(const Status& cause) { return rep_->rebuild(cause); }

const std::optional<Cache::RebuildReport>& Cache::last_rebuild() const { return rep_->rebuilt; }

std::string Cache::RebuildReport::describe() const {
  std::string out = fmt::format(
      "{}; rebuilt from the server, keeping the outbox ({} pending) and {} channel cursors",
      cause.message(), outbox_pending, channels_kept);
  if (!moved_to.empty()) out += fmt::format("; the damaged file is now \"{}\"", moved_to);
  if (!status.ok()) out += fmt::format("; running in memory: {}", status.message());
  return out;
}

}  // namespace parley::store
