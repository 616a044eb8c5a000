// Keeping parley.db within its budget (docs/cache.md, "Budget").
//
// - What counts: parley.db's pages plus its WAL. The WAL is held to
//   wal_limit() (journal_size_limit and wal_autocheckpoint), the main file to
//   the rest, main_limit().
// - When: before each store, if the pages in use (as last measured, plus a
//   conservative estimate of what was stored since) and the incoming batch
//   would pass the limit, and again after it. Measuring is two PRAGMAs that
//   read the header, so it never scans anything.
// - What goes: the oldest stored events, across channels by timestamp, in
//   chunks from the bottom of each channel's lowest run, down to 90% of the
//   limit (so eviction runs once per tenth of the budget, not per store).
//   Never: events above a channel's live cursor (not delivered yet), the
//   keep_per_channel events just below it, pinned channels, and anything in
//   other tables or in outbox.db.
// - Freed pages are reused by later stores; PRAGMA incremental_vacuum gives
//   back whatever still lies past the limit, so the file itself stays within.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <queue>
#include <system_error>

#include "store/cache_rep.hpp"

namespace parley::store {
namespace {

constexpr std::uint64_t kMaxWal = 4u << 20;
constexpr std::uint64_t kMinWal = 256u << 10;

std::uint64_t wal_limit(const Cache::Budget& b) {
  if (b.max_bytes == 0) return kMaxWal;
  return std::clamp<std::uint64_t>(b.max_bytes / 16, kMinWal, kMaxWal);
}

std::uint64_t main_limit(const Cache::Budget& b) {
  std::uint64_t wal = wal_limit(b);
  return b.max_bytes > 2 * wal ? b.max_bytes - wal : b.max_bytes / 2;
}

std::uint64_t size_or_zero(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<std::uint64_t>(n);
}

constexpr const char* kPageCount = "PRAGMA page_count";
constexpr const char* kFreePages = "PRAGMA freelist_count";
constexpr const char* kPageSize = "PRAGMA page_size";
constexpr const char* kCountEvents = "SELECT coalesce(sum(hi - lo + 1), 0) FROM message_runs";
// Direct channels are never evicted: their messages were decrypted with keys
// that are gone, so the server's copy could not be read again.
constexpr const char* kCursors = "SELECT name, read_to FROM channels WHERE kind != 'direct'";
constexpr const char* kLowestRun =
    "SELECT lo, hi FROM message_runs WHERE channel = ?1 ORDER BY lo LIMIT 1";
constexpr const char* kEventTs = "SELECT ts FROM messages WHERE channel = ?1 AND seq = ?2";
constexpr const char* kDeleteEvents =
    "DELETE FROM messages WHERE channel = ?1 AND seq BETWEEN ?2 AND ?3";
constexpr const char* kDropRun = "DELETE FROM message_runs WHERE channel = ?1 AND lo = ?2";
constexpr const char* kRaiseRunLo =
    "UPDATE message_runs SET lo = ?3 WHERE channel = ?1 AND lo = ?2";

struct Measure {
  std::uint64_t page_size = 4096;
  std::uint64_t pages = 0;
  std::uint64_t free_pages = 0;
  std::uint64_t wal = 0;  // bytes on disk
  std::uint64_t used() const { return (pages - std::min(pages, free_pages)) * page_size; }
  std::uint64_t main() const { return pages * page_size; }
};

Result<std::int64_t> one_int(Cache::Rep& rep, const char* sql) {
  auto st = rep.stmt(sql);
  if (!st) return st.status();
  Scoped q(**st);
  auto row = q->step();
  if (!row) return row.status();
  return *row ? q->column_int(0) : 0;
}

Result<Measure> measure(Cache::Rep& rep) {
  Measure m;
  auto pages = one_int(rep, kPageCount);
  if (!pages) return pages.status();
  auto free_pages = one_int(rep, kFreePages);
  if (!free_pages) return free_pages.status();
  auto page_size = one_int(rep, kPageSize);
  if (!page_size) return page_size.status();
  m.pages = static_cast<std::uint64_t>(*pages);
  m.free_pages = static_cast<std::uint64_t>(*free_pages);
  m.page_size = static_cast<std::uint64_t>(std::max<std::int64_t>(*page_size, 512));
  m.wal = size_or_zero(rep.path + "-wal");
  return m;
}

struct Run {
  std::int64_t lo = 0, hi = 0;
};

Result<std::optional<Run>> lowest_run(Cache::Rep& rep, const std::string& channel) {
  auto st = rep.stmt(kLowestRun);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, channel);
  auto row = q->step();
  if (!row) return row.status();
  if (!*row) return std::optional<Run>();
  return std::optional<Run>(Run{q->column_int(0), q->column_int(1)});
}

}  // namespace

void Cache::Rep::configure_wal() {
  // Best effort: these only bound how far the WAL grows between checkpoints.
  auto page_size = query_text(db, kPageSize);
  std::uint64_t ps =
      page_size ? std::max<std::uint64_t>(std::strtoull(page_size->c_str(), nullptr, 10), 512)
                : 4096;
  std::uint64_t wal = wal_limit(budget);
  db.exec(fmt::format("PRAGMA journal_size_limit = {}", wal));
  db.exec(fmt::format("PRAGMA wal_autocheckpoint = {}", std::max<std::uint64_t>(16, wal / ps)));
}

void Cache::Rep::reset_budget_state() {
  events_total.reset();
  auto m = measure(*this);
  approx_used = m ? m->used() : 0;
}

Result<std::uint64_t> Cache::Rep::count_events() {
  if (!events_total) {
    auto n = one_int(*this, kCountEvents);
    if (!n) return n.status();
    events_total = static_cast<std::uint64_t>(std::max<std::int64_t>(*n, 0));
  }
  return *events_total;
}

Status Cache::Rep::before_store(std::uint64_t bytes, std::uint64_t count) {
  if (!corrupt.ok()) return Status();  // a damaged file is left as it is
  bool over = budget.max_bytes != 0 && approx_used + bytes > main_limit(budget);
  if (!over && budget.max_messages != 0) {
    auto n = count_events();
    if (!n) return note(n.status());
    over = *n + count > budget.max_messages;
  }
  return over ? enforce(bytes, count) : Status();
}

void Cache::Rep::after_store(std::uint64_t bytes, int added) {
  approx_used += bytes;
  if (events_total) *events_total += static_cast<std::uint64_t>(std::max(added, 0));
  if (!corrupt.ok() || (budget.max_bytes == 0 && budget.max_messages == 0)) return;
  bool over = budget.max_bytes != 0 && approx_used > main_limit(budget);
  if (!over && budget.max_messages != 0) {
    auto n = count_events();
    over = n && *n > budget.max_messages;
  }
  if (over) {
    enforce(0, 0);
  } else if (budget.max_bytes != 0 && !check_running() &&
             size_or_zero(path + "-wal") > wal_limit(budget)) {
    // A big batch leaves the WAL longer than its share until the next
    // checkpoint resets it; bring it back now (one stat per store to know).
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
}

Status Cache::Rep::enforce(std::uint64_t room_bytes, std::uint64_t room_events) {
  if (!corrupt.ok() || (budget.max_bytes == 0 && budget.max_messages == 0)) return Status();
  const std::uint64_t limit = main_limit(budget);
  // Down to 90%, less the room asked for.
  const std::uint64_t low_bytes = std::max<std::int64_t>(
      0, static_cast<std::int64_t>(limit - limit / 10) - static_cast<std::int64_t>(room_bytes));
  const std::uint64_t low_events = std::max<std::int64_t>(
      0, static_cast<std::int64_t>(budget.max_messages - budget.max_messages / 10) -
             static_cast<std::int64_t>(room_events));

  auto m = measure(*this);
  if (!m) return note(m.status());
  auto total = count_events();
  if (!total) return note(total.status());
  bool over_bytes = budget.max_bytes != 0 && m->used() + room_bytes > limit;
  bool over_events = budget.max_messages != 0 && *total + room_events > budget.max_messages;
  if (over_bytes || over_events) {
    // Deleting n events frees about n * (used / events) bytes; pages left part
    // full free less, hence a few rounds.
    for (int round = 0; round < 8; ++round) {
      std::uint64_t need = 0;
      if (budget.max_messages != 0 && *total > low_events) need = *total - low_events;
      if (budget.max_bytes != 0 && m->used() > low_bytes && *total > 0) {
        std::uint64_t avg = std::max<std::uint64_t>(1, m->used() / *total);
        need = std::max(need, (m->used() - low_bytes + avg - 1) / avg);
      }
      if (need == 0) break;
      auto got = evict_oldest(need);
      if (!got) return note(got.status());
      if (*got == 0) break;  // nothing left that may go
      m = measure(*this);
      if (!m) return note(m.status());
      total = count_events();
      if (!total) return note(total.status());
    }
  }
  if (budget.max_bytes != 0 && m->main() > limit) {
    // Give back the free pages past the limit. A file made before the budget
    // existed has no auto_vacuum: it is converted once (a full VACUUM).
    std::uint64_t excess = (m->main() - limit + m->page_size - 1) / m->page_size;
    auto mode = one_int(*this, "PRAGMA auto_vacuum");
    if (!mode) return note(mode.status());
    if (*mode == 2) {
      std::uint64_t n = std::min(excess, m->free_pages);
      if (n > 0) {
        if (Status s = db.exec(fmt::format("PRAGMA incremental_vacuum({})", n)); !s.ok()) {
          return note(s);
        }
      }
    } else if (!vacuum_converted) {
      vacuum_converted = true;
      if (Status s = db.exec("PRAGMA auto_vacuum = INCREMENTAL; VACUUM"); !s.ok()) return note(s);
    }
    m = measure(*this);
    if (!m) return note(m.status());
  }
  // A big transaction can leave the WAL long; truncate it unless the
  // background check is still reading (the checkpoint would wait for it).
  if (budget.max_bytes != 0 && m->wal > wal_limit(budget) && !check_running()) {
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
  approx_used = m->used();
  return Status();
}

Result<std::uint64_t> Cache::Rep::evict_oldest(std::uint64_t n) {
  struct Head {
    std::int64_t ts;
    std::string channel;
    Run run;
    std::int64_t floor;  // highest seq that may go
    bool operator>(const Head& o) const { return ts != o.ts ? ts > o.ts : channel > o.channel; }
  };
  std::priority_queue<Head, std::vector<Head>, std::greater<Head>> heads;

  Transaction tx(db);
  if (!tx.begin_status().ok()) return tx.begin_status();
  auto head_of = [this](const std::string& channel,
                        std::int64_t floor) -> Result<std::optional<Head>> {
    auto run = lowest_run(*this, channel);
    if (!run) return run.status();
    if (!*run || (*run)->lo > floor) return std::optional<Head>();
    auto st = stmt(kEventTs);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel).bind(2, (*run)->lo);
    auto row = q->step();
    if (!row) return row.status();
    std::int64_t ts = *row ? q->column_int(0) : 0;
    return std::optional<Head>(Head{ts, channel, **run, floor});
  };

  std::vector<std::pair<std::string, std::int64_t>> cursors;
  {
    auto st = stmt(kCursors);
    if (!st) return st.status();
    Scoped q(**st);
    for (;;) {
      auto row = q->step();
      if (!row) return row.status();
      if (!*row) break;
      cursors.emplace_back(q->column_text(0), q->column_int(1));
    }
  }
  const auto keep = static_cast<std::int64_t>(budget.keep_per_channel);
  for (const auto& [channel, read_to] : cursors) {
    if (pins.count(channel) || read_to <= keep) continue;
    auto head = head_of(channel, read_to - keep);
    if (!head) return head.status();
    if (*head) heads.push(std::move(**head));
  }
  if (heads.empty()) return std::uint64_t{0};

  // Small chunks keep the order by timestamp across channels close; not so
  // small that the statements dominate.
  const std::uint64_t chunk = std::clamp<std::uint64_t>(n / (heads.size() * 4), 64, 4096);
  std::uint64_t gone = 0;
  while (gone < n && !heads.empty()) {
    Head h = heads.top();
    heads.pop();
    std::int64_t want = static_cast<std::int64_t>(std::min(chunk, n - gone));
    std::int64_t cut = std::min({h.run.hi, h.floor, h.run.lo + want - 1});
    {
      auto st = stmt(kDeleteEvents);
      if (!st) return st.status();
      Scoped q(**st);
      if (Status s = q->bind(1, h.channel).bind(2, h.run.lo).bind(3, cut).run(); !s.ok()) return s;
    }
    {
      auto st = stmt(cut == h.run.hi ? kDropRun : kRaiseRunLo);
      if (!st) return st.status();
      Scoped q(**st);
      q->bind(1, h.channel).bind(2, h.run.lo);
      if (cut != h.run.hi) q->bind(3, cut + 1);
      if (Status s = q->run(); !s.ok()) return s;
    }
    gone += static_cast<std::uint64_t>(cut - h.run.lo + 1);
    auto next = head_of(h.channel, h.floor);
    if (!next) return next.status();
    if (*next) heads.push(std::move(**next));
  }
  if (Status s = tx.commit(); !s.ok()) return s;
  if (events_total) *events_total -= std::min(*events_total, gone);
  evicted += gone;
  return gone;
}

// ---- Cache ----------------------------------------------------------------------

const Cache::Budget& Cache::budget() const { return rep_->budget; }

void Cache::set_budget(const Budget& budget) {
  rep_->budget = budget;
  rep_->configure_wal();
}

Status Cache::enforce_budget() { return rep_->enforce(0, 0); }

Result<Cache::Usage> Cache::usage() {
  auto m = measure(*rep_);
  if (!m) return rep_->note(m.status());
  auto total = rep_->count_events();
  if (!total) return rep_->note(total.status());
  Usage u;
  u.file_bytes = size_or_zero(rep_->path);
  u.wal_bytes = m->wal;
  u.used_bytes = m->used();
  u.events = *total;
  u.evicted = rep_->evicted;
  return u;
}

void Cache::pin(const std::string& channel) { ++rep_->pins[channel]; }

void Cache::unpin(const std::string& channel) {
  auto it = rep_->pins.find(channel);
  if (it != rep_->pins.end() && --it->second <= 0) {
    rep_->pins.erase(it);
    // What the pin held back may go now (history pages are stored only while
    // their channel is pinned, so no store would otherwise look).
    rep_->after_store(0, 0);
  }
}

}  // namespace parley::store
