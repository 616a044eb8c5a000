// The client cache against real SQLite files in a temporary directory.
#include "store/cache.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "store/sqlite.hpp"

namespace fs = std::filesystem;
using parley::DeliveryState;
using parley::EventKind;
using parley::Message;
using parley::Status;
using parley::StatusCode;
using parley::store::Cache;
using parley::store::Database;

namespace {

// A fresh directory under /tmp, removed with everything in it at scope end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "parley-cache-test-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str() const { return path_.string(); }
  std::string db() const { return (path_ / "parley.db").string(); }

 private:
  fs::path path_;
};

std::unique_ptr<Cache> open_ok(const std::string& dir, const std::string& user = "alice") {
  auto cache = Cache::open(dir, user);
  INFO(cache.status().message());
  REQUIRE(cache.ok());
  return std::move(*cache);
}

Message event(const std::string& channel, std::uint64_t seq, EventKind kind = EventKind::message) {
  Message m;
  m.channel = channel;
  m.seq = seq;
  m.kind = kind;
  m.sender = seq % 2 == 0 ? "bob" : "alice";
  if (kind == EventKind::message) {
    m.id = std::string(31, '0') + std::to_string(seq % 10);
    m.text = "message " + std::to_string(seq);
  }
  m.ts_ms = 1'700'000'000'000 + static_cast<std::int64_t>(seq);
  return m;
}

std::vector<Message> events(const std::string& channel, std::uint64_t from, std::uint64_t to) {
  std::vector<Message> out;
  for (std::uint64_t s = from; s <= to; ++s) out.push_back(event(channel, s));
  return out;
}

std::vector<std::uint64_t> seqs(const std::vector<Message>& ms) {
  std::vector<std::uint64_t> out;
  for (const Message& m : ms) out.push_back(m.seq);
  return out;
}

int user_version_of(const std::string& path) {
  auto db = Database::open(path);
  REQUIRE(db.ok());
  auto v = db->user_version();
  REQUIRE(v.ok());
  return *v;
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("open creates the directory, migrates an empty file and reopens") {
  TempDir tmp;
  std::string dir = tmp.str() + "/nested/data";
  {
    auto cache = open_ok(dir);
    CHECK(fs::exists(dir + "/parley.db"));
  }
  CHECK(user_version_of(dir + "/parley.db") == Cache::kSchemaVersion);
  {
    auto db = Database::open(dir + "/parley.db");
    REQUIRE(db.ok());
    auto q = db->prepare("PRAGMA journal_mode");
    REQUIRE(q.ok());
    REQUIRE(*q->step());
    CHECK(q->column_text(0) == "wal");
    auto tables = db->prepare(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
        "('meta', 'channels', 'messages', 'message_runs', 'outbox')");
    REQUIRE(tables.ok());
    REQUIRE(*tables->step());
    CHECK(tables->column_int(0) == 4);  // the outbox lives in outbox.db
  }
  {
    auto db = Database::open(dir + "/outbox.db");
    REQUIRE(db.ok());
    auto tables = db->prepare(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('meta', 'outbox')");
    REQUIRE(tables.ok());
    REQUIRE(*tables->step());
    CHECK(tables->column_int(0) == 2);
  }
  // Reopening runs no migration twice and keeps the data.
  {
    auto cache = open_ok(dir);
    REQUIRE(cache->upsert_channel("general", 3, true).ok());
  }
  auto cache = open_ok(dir);
  auto c = cache->channel("general");
  REQUIRE(c.ok());
  REQUIRE(c->has_value());
  CHECK((*c)->last_seq == 3);
  CHECK(user_version_of(dir + "/parley.db") == Cache::kSchemaVersion);
}

TEST_CASE("a schema newer than the library is refused and the file kept") {
  TempDir tmp;
  { open_ok(tmp.str()); }
  {
    auto db = Database::open(tmp.db());
    REQUIRE(db.ok());
    REQUIRE(db->set_user_version(Cache::kSchemaVersion + 41).ok());
  }
  auto cache = Cache::open(tmp.str(), "alice");
  REQUIRE_FALSE(cache.ok());
  CHECK(cache.status().code() == StatusCode::invalid_argument);
  const std::string& msg = cache.status().message();
  INFO(msg);
  CHECK(contains(msg, tmp.db()));
  CHECK(contains(msg, "has schema version " + std::to_string(Cache::kSchemaVersion + 41) +
                          ", newer than this library's " + std::to_string(Cache::kSchemaVersion)));
  CHECK(fs::exists(tmp.db()));
  CHECK(user_version_of(tmp.db()) == Cache::kSchemaVersion + 41);
}

// Found by the cache_file fuzzer: a negative version indexed the migrations
// below their start.
TEST_CASE("a negative schema version is refused as corrupt and the file kept") {
  TempDir tmp;
  {
    auto db = Database::open(tmp.db());
    REQUIRE(db.ok());
    REQUIRE(db->exec("CREATE TABLE t(x)").ok());
    REQUIRE(db->set_user_version(-7).ok());
  }
  auto cache = Cache::open(tmp.str(), "alice");
  REQUIRE_FALSE(cache.ok());
  INFO(cache.status().message());
  CHECK(contains(cache.status().message(), "schema version -7"));
  CHECK(fs::exists(tmp.db()));
}

TEST_CASE("a database of another program is refused") {
  TempDir tmp;
  {
    auto db = Database::open(tmp.db());
    REQUIRE(db.ok());
    REQUIRE(db->exec("CREATE TABLE notes(x)").ok());
  }
  auto cache = Cache::open(tmp.str(), "alice");
  REQUIRE_FALSE(cache.ok());
  CHECK(cache.status().code() == StatusCode::invalid_argument);
  CHECK(contains(cache.status().message(), tmp.db()));
}

TEST_CASE("a cache of another user is refused") {
  TempDir tmp;
  { open_ok(tmp.str(), "alice"); }
  auto other = Cache::open(tmp.str(), "bob");
  REQUIRE_FALSE(other.ok());
  CHECK(other.status().code() == StatusCode::invalid_argument);
  INFO(other.status().message());
  CHECK(contains(other.status().message(), "\"alice\""));
  CHECK(contains(other.status().message(), "\"bob\""));
  // The owner still gets in.
  open_ok(tmp.str(), "alice");
}

TEST_CASE("bad arguments to open") {
  TempDir tmp;
  CHECK(Cache::open("", "alice").status().code() == StatusCode::invalid_argument);
  CHECK(Cache::open(tmp.str(), "").status().code() == StatusCode::invalid_argument);
  // The data directory's place is taken by a file.
  write_file(tmp.str() + "/file", "x");
  auto r = Cache::open(tmp.str() + "/file/data", "alice");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::io_error);
  CHECK(contains(r.status().message(), tmp.str() + "/file/data"));
}

TEST_CASE("device id is 32 hex digits and stable across reopen") {
  TempDir tmp;
  TempDir other;
  std::string id;
  {
    auto cache = open_ok(tmp.str());
    id = cache->device_id();
  }
  CHECK(id.size() == 32);
  CHECK(std::all_of(id.begin(), id.end(),
                    [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }));
  CHECK(open_ok(tmp.str())->device_id() == id);
  CHECK(open_ok(other.str())->device_id() != id);

  {
    auto cache = open_ok(tmp.str());
    CHECK(cache->set_device_id("0123456789abcdef0123456789abcdef").ok());
    CHECK(cache->device_id() == "0123456789abcdef0123456789abcdef");
    CHECK(cache->set_device_id("").code() == StatusCode::invalid_argument);
    CHECK(cache->set_device_id("has space").code() == StatusCode::invalid_argument);
  }
  CHECK(open_ok(tmp.str())->device_id() == "0123456789abcdef0123456789abcdef");
}

TEST_CASE("outbox: add, acknowledge, fail, order, durability") {
  TempDir tmp;
  const std::string a(32, 'a'), b(32, 'b'), c(32, 'c'), d(32, 'd');
  {
    auto cache = open_ok(tmp.str());
    REQUIRE(cache->upsert_channel("general", 0, true).ok());
    // Ids out of lexical order: the outbox keeps insertion order.
    REQUIRE(cache->outbox_add("general", c, "first", 1).ok());
    REQUIRE(cache->outbox_add("random", a, "second", 2).ok());
    REQUIRE(cache->outbox_add("general", b, "third", 3).ok());
    REQUIRE(cache->outbox_add("general", d, "fourth", 4).ok());
    CHECK(cache->outbox_add("general", b, "again", 5).code() == StatusCode::already_exists);
    CHECK(cache->outbox_add("", d, "x", 5).code() == StatusCode::invalid_argument);
    CHECK(cache->outbox_add("general", "", "x", 5).code() == StatusCode::invalid_argument);

    auto pending = cache->outbox_pending();
    REQUIRE(pending.ok());
    REQUIRE(pending->size() == 4);
    CHECK((*pending)[0].id == c);
    CHECK((*pending)[0].channel == "general");
    CHECK((*pending)[0].text == "first");
    CHECK((*pending)[0].state == DeliveryState::pending);
    CHECK((*pending)[1].id == a);
    CHECK((*pending)[1].channel == "random");
    CHECK((*pending)[2].id == b);
    CHECK((*pending)[3].id == d);

    auto acked = cache->outbox_acknowledge(b, 7, 1'700'000'000'123, "alice");
    REQUIRE(acked.ok());
    CHECK(*acked);
    // Twice, or an unknown id: nothing to do.
    CHECK_FALSE(*cache->outbox_acknowledge(b, 7, 1'700'000'000'123, "alice"));
    CHECK_FALSE(*cache->outbox_acknowledge(std::string(32, 'e'), 8, 0, "alice"));
    CHECK(cache->outbox_acknowledge(c, 0, 0, "alice").status().code() ==
          StatusCode::invalid_argument);

    auto stored = cache->events("general", 7, 7);
    REQUIRE(stored.ok());
    REQUIRE(stored->size() == 1);
    const Message& m = (*stored)[0];
    CHECK(m.channel == "general");
    CHECK(m.seq == 7);
    CHECK(m.kind == EventKind::message);
    CHECK(m.sender == "alice");
    CHECK(m.id == b);
    CHECK(m.text == "third");
    CHECK(m.ts_ms == 1'700'000'000'123);
    CHECK(m.state == DeliveryState::sent);
    CHECK((*cache->channel("general"))->last_seq == 7);

    // Acknowledging into a channel the cache has no row for creates it.
    REQUIRE(*cache->outbox_acknowledge(a, 2, 5, "alice"));
    auto random = cache->channel("random");
    REQUIRE(random->has_value());
    CHECK((*random)->last_seq == 2);
    CHECK((*random)->member);

    REQUIRE(cache->outbox_fail(d, "forbidden").ok());
    CHECK(cache->outbox_fail(d, "forbidden").ok());                     // already failed: no-op
    CHECK(cache->outbox_fail(b, "x").code() == StatusCode::not_found);  // acknowledged
    CHECK_FALSE(*cache->outbox_acknowledge(d, 9, 0, "alice"));          // failed is not pending
  }
  // Everything above was committed: a new connection sees it.
  auto cache = open_ok(tmp.str());
  auto pending = cache->outbox_pending();
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 1);
  CHECK((*pending)[0].id == c);
  auto failed = cache->outbox_failed();
  REQUIRE(failed.ok());
  REQUIRE(failed->size() == 1);
  CHECK((*failed)[0].id == d);
  CHECK((*failed)[0].text == "fourth");
  CHECK((*failed)[0].error == "forbidden");
  CHECK((*failed)[0].state == DeliveryState::failed);
  CHECK(seqs(*cache->events("general", 1, 100)) == std::vector<std::uint64_t>{7});

  // New entries go after the old ones even though earlier rows were deleted.
  REQUIRE(cache->outbox_add("general", std::string(32, 'f'), "fifth", 6).ok());
  pending = cache->outbox_pending();
  REQUIRE(pending->size() == 2);
  CHECK((*pending)[1].id == std::string(32, 'f'));
}

TEST_CASE("outbox_add is durable without a clean close") {
  TempDir tmp;
  auto cache = open_ok(tmp.str());
  REQUIRE(cache->outbox_add("general", std::string(32, 'a'), "hello", 1).ok());
  // A second connection, while the first is still open (as after a kill, the
  // first never gets to close): the row is committed.
  auto db = Database::open(tmp.str() + "/outbox.db");
  REQUIRE(db.ok());
  auto q = db->prepare("SELECT text, state FROM outbox");
  REQUIRE(q.ok());
  REQUIRE(*q->step());
  CHECK(q->column_text(0) == "hello");
  CHECK(q->column_text(1) == "pending");
}

TEST_CASE("acknowledging a message the server already sent us keeps the stored copy") {
  TempDir tmp;
  auto cache = open_ok(tmp.str());
  const std::string id(32, 'a');
  REQUIRE(cache->outbox_add("general", id, "hello", 1).ok());
  Message live = event("general", 4);
  live.id = id;
  live.text = "hello";
  live.sender = "alice";
  REQUIRE(*cache->store_events({live}) == 1);
  REQUIRE(*cache->outbox_acknowledge(id, 4, 99, "alice"));
  CHECK(cache->outbox_pending()->empty());
  auto stored = cache->events("general", 4, 4);
  REQUIRE(stored->size() == 1);
  CHECK((*stored)[0].ts_ms == live.ts_ms);
  CHECK(*cache->contiguous_up_from("general", 4) == 4);
}

TEST_CASE("store_events is idempotent and raises last_seq") {
  TempDir tmp;
  auto cache = open_ok(tmp.str());
  std::vector<Message> batch = {event("general", 1, EventKind::create),
                                event("general", 2, EventKind::join), event("general", 3),
                                event("general", 4, EventKind::leave), event("general", 5)};
  auto n = cache->store_events(batch);
  REQUIRE(n.ok());
  CHECK(*n == 5);
  CHECK(*cache->store_events(batch) == 0);
  CHECK(*cache->store_events({}) == 0);

  // Overlapping batch: only the new ones count; a stored event is not replaced.
  auto more = events("general", 3, 7);
  more[0].text = "changed";
  CHECK(*cache->store_events(more) == 2);
  auto stored = cache->events("general", 1, 7);
  REQUIRE(stored.ok());
  REQUIRE(stored->size() == 7);
  CHECK((*stored)[0].kind == EventKind::create);
  CHECK((*stored)[1].kind == EventKind::join);
  CHECK((*stored)[3].kind == EventKind::leave);
  CHECK((*stored)[2].text == "message 3");
  CHECK((*stored)[2].id == batch[2].id);
  CHECK((*stored)[2].sender == batch[2].sender);
  CHECK((*stored)[2].ts_ms == batch[2].ts_ms);
  CHECK((*stored)[2].state == DeliveryState::sent);
  CHECK(seqs(*cache->events("general", 2, 4)) == std::vector<std::uint64_t>{2, 3, 4});
  CHECK(cache->events("general", 5, 4)->empty());

  auto ch = cache->channel("general");
  REQUIRE(ch->has_value());
  CHECK((*ch)->last_seq == 7);
  CHECK((*ch)->member);  // created by store_events: member
  CHECK(*cache->max_seq("general") == 7);
  CHECK(*cache->max_seq("nowhere") == 0);

  // An older batch never lowers last_seq; several channels in one batch.
  CHECK(*cache->store_events({event("general", 1), event("random", 9)}) == 1);
  CHECK((*cache->channel("general"))->last_seq == 7);
  CHECK((*cache->channel("random"))->last_seq == 9);

  // A bad event refuses the whole batch.
  auto bad = cache->store_events({event("general", 8), event("general", 0)});
  CHECK(bad.status().code() == StatusCode::invalid_argument);
  CHECK(cache->events("general", 8, 8)->empty());
  CHECK(cache->store_events({event("", 3)}).status().code() == StatusCode::invalid_argument);
}

TEST_CASE("store_events with a channel top raises last_seq and membership in the same call") {
  TempDir tmp;
  auto cache = open_ok(tmp.str());
  REQUIRE(cache->set_member("general", false).ok());
  // The page's last_seq is above its events: upsert_channel(channel, 40, true).
  CHECK(*cache->store_events(events("general", 1, 10), Cache::ChannelTop{"general", 40}) == 10);
  auto ch = cache->channel("general");
  REQUIRE(ch->has_value());
  CHECK((*ch)->last_seq == 40);
  CHECK((*ch)->member);
  CHECK(*cache->contiguous_up_from("general", 1) == 10);

  // last_seq only grows; a page without events still applies its top.
  CHECK(*cache->store_events({}, Cache::ChannelTop{"general", 30}) == 0);
  CHECK((*cache->channel("general"))->last_seq == 40);
  REQUIRE(cache->set_member("general", false).ok());
  CHECK(*cache->store_events({}, Cache::ChannelTop{"general", 50}) == 0);
  CHECK((*cache->channel("general"))->last_seq == 50);
  CHECK((*cache->channel("general"))->member);

  // The top of a channel with no event in the batch: creates its row.
  CHECK(*cache->store_events(events("general", 11, 12), Cache::ChannelTop{"random", 7}) == 2);
  CHECK((*cache->channel("random"))->last_seq == 7);
  CHECK((*cache->channel("general"))->last_seq == 50);

  // A bad batch stores nothing, its top neither; nor does a top without a channel.
  auto bad = cache->store_events({event("general", 13), event("general", 0)},
                                 Cache::ChannelTop{"general", 99});
  CHECK(bad.status().code() == StatusCode::invalid_argument);
  CHECK((*cache->channel("general"))->last_seq == 50);
  CHECK(cache->events("general", 13, 13)->empty());
  CHECK(cache->store_events(events("general", 13, 13), Cache::ChannelTop{"", 99}).status().code() ==
        StatusCode::invalid_argument);
  CHECK(cache->events("general", 13, 13)->empty());
}

TEST_CASE("count_messages counts messages in a range from the index") {
  TempDir tmp;
  auto cache = open_ok(tmp.str());
  std::vector<Message> all;
  for (std::uint64_t s = 1; s <= 30; ++s) {
    all.push_back(event("general", s, s % 5 == 0 ? EventKind::join : EventKind::message));
  }
  all.push_back(event("other", 31));
  REQUIRE(*cache->store_events(all) == 31);

  CHECK(*cache->count_messages("general", 1, 30) == 24);  // 5, 10, ..., 30 are joins
  CHECK(*cache->count_messages("general", 0, 1000) == 24);
  CHECK(*cache->count_messages("general", 6, 9) == 4);
  CHECK(*cache->count_messages("general", 10, 10) == 0);
  CHECK(*cache->count_messages("general", 11, 11) == 1);
  CHECK(*cache->count_messages("general", 12, 11) == 0);
  CHECK(*cache->count_messages("general", 31, 100) == 0);
  CHECK(*cache->count_messages("other", 1, 100) == 1);
  CHECK(*cache->count_messages("nowhere", 1, 100) == 0);
  // Bounded: stops at at_most.
  CHECK(*cache->count_messages("general", 1, 30, 10) == 10);
  CHECK(*cache->count_messages("general", 1, 30, 24) == 24);
  CHECK(*cache->count_messages("general", 1, 30, 100) == 24);
  CHECK(*cache->count_messages("general", 21, 30, 1) == 1);
  // Agrees with latest_messages over every range.
  for (std::uint64_t from = 1; from <= 31; from += 3) {
    for (std::uint64_t to = from; to <= 31; to += 4) {
      auto page = cache->latest_messages("general", to + 1, 1000);
      auto n = std::count_if(page->begin(), page->end(),
                             [&](const Message& m) { return m.seq >= from; });
      INFO(from << ".." << to);
      CHECK(*cache->count_messages("general", from, to) == static_cast<std::uint64_t>(n));
    }
  }

  // The same query on the file: SQLite answers it from messages_by_kind alone.
  auto db = Database::open(tmp.db());
  REQUIRE(db.ok());
  auto plan = db->prepare(
      "EXPLAIN QUERY PLAN SELECT count(*) FROM (SELECT 1 FROM messages "
      "WHERE channel = ?1 AND kind = 'message' AND seq BETWEEN ?2 AND ?3 LIMIT ?4)");
  REQUIRE(plan.ok());
  std::string details;
  for (;;) {
    auto row = plan->step();
    REQUIRE(row.ok());
    if (!*row) break;
    details += plan->column_text(3) + "\n";
  }
  INFO(details);
  CHECK(contains(
      details, "USING COVERING INDEX messages_by_kind (channel=? AND kind=? AND seq>? AND seq<?)"));
}

TEST_CASE("latest_messages pages backwards over messages only") {
  TempDir tmp;
  auto cache = open_ok(tmp.str());
  std::vector<Message> all;
  for (std::uint64_t s = 1; s <= 30; ++s) {
    all.push_back(event("general", s, s % 5 == 0 ? EventKind::join : EventKind::message));
  }
  all.push_back(event("other", 31));
  REQUIRE(*cache->store_events(all) == 31);

  auto page = cache->latest_messages("general", 0, 4);
  REQUIRE(page.ok());
  CHECK(seqs(*page) == std::vector<std::uint64_t>{26, 27, 28, 29});
  page = cache->latest_messages("general", 26, 4);
  CHECK(seqs(*page) == std::vector<std::uint64_t>{21, 22, 23, 24});
  page = cache->latest_messages("general", 3, 4);
  CHECK(seqs(*page) == std::vector<std::uint64_t>{1, 2});
  CHECK(cache->latest_messages("general", 1, 4)->empty());
  CHECK(cache->latest_messages("general", 0, 0)->empty());
  CHECK(cache->latest_messages("nowhere", 0, 10)->empty());

  // Walking all pages yields every message once, in order.
  std::vector<std::uint64_t> walked;
  std::uint64_t before = 0;
  for (;;) {
    auto p = cache->latest_messages("general", before, 7);
    REQUIRE(p.ok());
    if (p->empty()) break;
    auto s = seqs(*p);
    walked.insert(walked.begin(), s.begin(), s.end());
    before = s.front();
  }
  REQUIRE(walked.size() == 24);
  CHECK(std::is_sorted(walked.begin(), walked.end()));
  CHECK(std::none_of(walked.begin(), walked.end(), [](std::uint64_t s) { return s % 5 == 0; }));
}

TEST_CASE("contiguous_down_from and contiguous_up_from around gaps") {
  TempDir tmp;
  auto cache = open_ok(tmp.str());
  // Stored: 1-3, 5-6, 8 (inserted out of order).
  REQUIRE(*cache->store_events({event("g", 8), event("g", 2), event("g", 6)}) == 3);
  REQUIRE(*cache->store_events({event("g", 1), event("g", 5), event("g", 3)}) == 3);
  REQUIRE(*cache->store_events({event("h", 4)}) == 1);  // another channel, in a gap of g

  CHECK(*cache->contiguous_down_from("g", 3) == 1);
  CHECK(*cache->contiguous_down_from("g", 2) == 1);
  CHECK(*cache->contiguous_down_from("g", 6) == 5);
  CHECK(*cache->contiguous_down_from("g", 8) == 8);
  CHECK(*cache->contiguous_down_from("g", 4) == 5);  // missing: to + 1
  CHECK(*cache->contiguous_down_from("g", 100) == 101);
  CHECK(*cache->contiguous_down_from("g", 0) == 1);
  CHECK(*cache->contiguous_down_from("nowhere", 5) == 6);

  CHECK(*cache->contiguous_up_from("g", 1) == 3);
  CHECK(*cache->contiguous_up_from("g", 2) == 3);
  CHECK(*cache->contiguous_up_from("g", 4) == 3);  // missing: from - 1
  CHECK(*cache->contiguous_up_from("g", 5) == 6);
  CHECK(*cache->contiguous_up_from("g", 7) == 6);
  CHECK(*cache->contiguous_up_from("g", 8) == 8);
  CHECK(*cache->contiguous_up_from("g", 9) == 8);
  CHECK(*cache->contiguous_up_from("g", 0) == 3);  // seq 0 never exists: from 1
  CHECK(*cache->contiguous_up_from("nowhere", 1) == 0);

  // Filling the gaps joins the runs.
  REQUIRE(*cache->store_events({event("g", 4)}) == 1);
  CHECK(*cache->contiguous_down_from("g", 6) == 1);
  CHECK(*cache->contiguous_up_from("g", 1) == 6);
  REQUIRE(*cache->store_events({event("g", 7)}) == 1);
  CHECK(*cache->contiguous_up_from("g", 1) == 8);
  CHECK(*cache->contiguous_down_from("g", 8) == 1);
  CHECK(*cache->contiguous_up_from("h", 4) == 4);
  CHECK(*cache->contiguous_down_from("h", 4) == 4);
}

TEST_CASE("contiguous_* agree with a brute-force answer after random inserts") {
  TempDir tmp;
  auto cache = open_ok(tmp.str());
  std::mt19937 rng(12345);
  constexpr std::uint64_t kMax = 300;
  std::vector<std::uint64_t> order;
  for (std::uint64_t s = 1; s <= kMax; ++s) order.push_back(s);
  std::shuffle(order.begin(), order.end(), rng);
  std::set<std::uint64_t> stored;
  std::size_t i = 0;
  while (i < order.size()) {
    // Random batches, with repeats of stored seqs mixed in.
    std::size_t n = std::uniform_int_distribution<std::size_t>(1, 25)(rng);
    std::vector<Message> batch;
    for (std::size_t k = 0; k < n && i < order.size(); ++k, ++i)
      batch.push_back(event("g", order[i]));
    if (!stored.empty()) batch.push_back(event("g", *stored.begin()));
    for (const Message& m : batch) stored.insert(m.seq);
    REQUIRE(cache->store_events(batch).ok());

    for (std::uint64_t s = 1; s <= kMax + 1; ++s) {
      std::uint64_t down = s + 1;
      if (stored.count(s)) {
        down = s;
        while (down > 1 && stored.count(down - 1)) --down;
      }
      std::uint64_t up = s - 1;
      while (stored.count(up + 1)) ++up;
      INFO("seq " << s << " after " << stored.size() << " stored");
      REQUIRE(*cache->contiguous_down_from("g", s) == down);
      REQUIRE(*cache->contiguous_up_from("g", s) == up);
    }
  }
  CHECK(*cache->contiguous_down_from("g", kMax) == 1);
}

using Runs = std::vector<std::pair<std::int64_t, std::int64_t>>;

// message_runs of one channel as stored, read through a connection of its own.
Runs runs_of(const std::string& db_path, const std::string& channel) {
  auto db = Database::open(db_path);
  REQUIRE(db.ok());
  auto q = db->prepare("SELECT lo, hi FROM message_runs WHERE channel = ?1 ORDER BY lo");
  REQUIRE(q.ok());
  q->bind(1, channel);
  Runs out;
  for (;;) {
    auto row = q->step();
    REQUIRE(row.ok());
    if (!*row) break;
    out.emplace_back(q->column_int(0), q->column_int(1));
  }
  return out;
}

// The maximal runs of consecutive numbers in `stored`.
Runs runs_in(const std::set<std::uint64_t>& stored) {
  Runs out;
  for (std::uint64_t s : stored) {
    if (!out.empty() && out.back().second + 1 == static_cast<std::int64_t>(s)) {
      ++out.back().second;
    } else {
      out.emplace_back(s, s);
    }
  }
  return out;
}

TEST_CASE("store_events keeps maximal runs: holes, repeats, any order, bridges") {
  TempDir tmp;
  auto cache = open_ok(tmp.str());
  auto batch = [](const std::string& channel, std::vector<std::uint64_t> seqs) {
    std::vector<Message> out;
    for (std::uint64_t s : seqs) out.push_back(event(channel, s));
    return out;
  };
  auto count = [&](const std::string& channel) { return cache->events(channel, 1, 1000)->size(); };

  // Out of order, a repeat inside the batch, a hole (15-19).
  CHECK(*cache->store_events(batch("g", {10, 12, 11, 12, 20, 14, 13})) == 6);
  CHECK(runs_of(tmp.db(), "g") == Runs{{10, 14}, {20, 20}});
  CHECK(*cache->contiguous_up_from("g", 10) == 14);
  CHECK(*cache->contiguous_down_from("g", 14) == 10);
  CHECK(*cache->contiguous_down_from("g", 20) == 20);

  // Holes on both sides of the new range.
  CHECK(*cache->store_events(batch("g", {18, 16, 17})) == 3);
  CHECK(runs_of(tmp.db(), "g") == Runs{{10, 14}, {16, 18}, {20, 20}});

  // Single seqs that each bridge two runs, with stored and repeated ones mixed in.
  CHECK(*cache->store_events(batch("g", {19, 15, 14, 19, 10})) == 2);
  CHECK(runs_of(tmp.db(), "g") == Runs{{10, 20}});
  CHECK(*cache->contiguous_up_from("g", 10) == 20);
  CHECK(*cache->contiguous_down_from("g", 20) == 10);

  // A range of several seqs bridging two runs; the run above it begins right
  // after, the run below ends right before.
  CHECK(*cache->store_events(batch("g", {30, 31, 32, 36, 37, 38})) == 6);
  CHECK(*cache->store_events(batch("g", {35, 33, 34, 34})) == 3);
  CHECK(runs_of(tmp.db(), "g") == Runs{{10, 20}, {30, 38}});

  // Two channels interleaved in one batch; extends g at both ends and starts at 1.
  CHECK(*cache->store_events({event("g", 9), event("h", 5), event("g", 21), event("h", 4),
                              event("g", 8), event("g", 22), event("h", 1)}) == 7);
  CHECK(runs_of(tmp.db(), "g") == Runs{{8, 22}, {30, 38}});
  CHECK(runs_of(tmp.db(), "h") == Runs{{1, 1}, {4, 5}});
  CHECK(*cache->contiguous_up_from("h", 1) == 1);
  CHECK(*cache->contiguous_down_from("h", 5) == 4);
  CHECK(*cache->store_events(batch("h", {3, 2})) == 2);
  CHECK(runs_of(tmp.db(), "h") == Runs{{1, 5}});
  CHECK(*cache->contiguous_up_from("h", 1) == 5);

  CHECK(count("g") == 24);
  CHECK(count("h") == 5);
  CHECK(cache->usage()->events == 29);  // summed from message_runs

  // Random batches over two channels, with repeats inside a batch and of
  // stored seqs: the runs stay exactly the maximal runs of what is stored.
  std::mt19937 rng(777);
  std::map<std::string, std::set<std::uint64_t>> stored;
  for (const auto& [channel, n] : {std::pair<std::string, std::uint64_t>{"g", 24}, {"h", 5}}) {
    auto all = cache->events(channel, 1, 1000);
    for (const Message& m : *all) stored[channel].insert(m.seq);
    REQUIRE(stored[channel].size() == n);
  }
  for (int round = 0; round < 60; ++round) {
    std::vector<Message> b;
    std::size_t n = std::uniform_int_distribution<std::size_t>(1, 40)(rng);
    int added = 0;
    std::map<std::string, std::set<std::uint64_t>> in_batch;
    for (std::size_t k = 0; k < n; ++k) {
      std::string channel = rng() % 3 == 0 ? "h" : "g";
      std::uint64_t seq = std::uniform_int_distribution<std::uint64_t>(1, 400)(rng);
      int copies = rng() % 5 == 0 ? 2 : 1;
      for (int c = 0; c < copies; ++c) b.push_back(event(channel, seq));
      if (!stored[channel].count(seq) && in_batch[channel].insert(seq).second) ++added;
    }
    std::shuffle(b.begin(), b.end(), rng);
    REQUIRE(*cache->store_events(b) == added);
    std::uint64_t total = 0;
    for (auto& [channel, seqs] : in_batch) stored[channel].insert(seqs.begin(), seqs.end());
    for (const auto& [channel, seqs] : stored) {
      INFO("round " << round << ", channel " << channel);
      REQUIRE(runs_of(tmp.db(), channel) == runs_in(seqs));
      REQUIRE(cache->events(channel, 1, 1000)->size() == seqs.size());
      total += seqs.size();
    }
    REQUIRE(cache->usage()->events == total);
  }
  // Counted afresh from message_runs at open.
  std::uint64_t total = stored["g"].size() + stored["h"].size();
  cache.reset();
  cache = open_ok(tmp.str());
  CHECK(cache->usage()->events == total);
}

TEST_CASE("store_events reports message_runs missing stored events as corrupt") {
  TempDir tmp;
  auto cache = open_ok(tmp.str());
  REQUIRE(*cache->store_events(events("g", 1, 10)) == 10);
  {
    // Damage: the runs forget 1-10, the events stay.
    auto db = Database::open(tmp.db());
    REQUIRE(db.ok());
    REQUIRE(db->exec("DELETE FROM message_runs WHERE channel = 'g'").ok());
  }
  auto stored = cache->store_events(events("g", 5, 12));
  CHECK(stored.status().code() == StatusCode::corrupt);
  CHECK(contains(stored.status().message(), "message_runs"));
  CHECK(cache->corruption().code() == StatusCode::corrupt);
  CHECK(cache->events("g", 11, 12)->empty());  // nothing of the batch was stored
}

TEST_CASE("contiguous_* on a long channel") {
  TempDir tmp;
  auto cache = open_ok(tmp.str());
  constexpr std::uint64_t kCount = 100'000;
  for (std::uint64_t from = 1; from <= kCount; from += 10'000) {
    REQUIRE(*cache->store_events(events("big", from, from + 9'999)) == 10'000);
  }
  CHECK(*cache->contiguous_down_from("big", kCount) == 1);
  CHECK(*cache->contiguous_up_from("big", 1) == kCount);
  CHECK(*cache->max_seq("big") == kCount);
  CHECK(seqs(*cache->latest_messages("big", 0, 3)) ==
        std::vector<std::uint64_t>{kCount - 2, kCount - 1, kCount});
}

TEST_CASE("channels, membership and the monotonic cursor") {
  TempDir tmp;
  {
    auto cache = open_ok(tmp.str());
    REQUIRE(cache->upsert_channel("general", 10, true).ok());
    REQUIRE(cache->upsert_channel("general", 4, true).ok());  // last_seq only grows
    REQUIRE(cache->advance_cursor("general", 5).ok());
    REQUIRE(cache->advance_cursor("general", 3).ok());  // lower: ignored
    auto c = cache->channel("general");
    REQUIRE(c->has_value());
    CHECK((*c)->last_seq == 10);
    CHECK((*c)->read_to == 5);
    REQUIRE(cache->advance_cursor("general", 9).ok());
    CHECK((*cache->channel("general"))->read_to == 9);

    // The cursor of an unknown channel creates its row.
    REQUIRE(cache->advance_cursor("news", 2).ok());
    auto news = cache->channel("news");
    REQUIRE(news->has_value());
    CHECK((*news)->read_to == 2);
    CHECK((*news)->member);

    REQUIRE(cache->set_member("general", false).ok());
    REQUIRE(cache->upsert_channel("random", 0, false).ok());
    CHECK_FALSE(cache->channel("missing")->has_value());
  }
  auto cache = open_ok(tmp.str());
  auto list = cache->channels();
  REQUIRE(list.ok());
  REQUIRE(list->size() == 3);
  CHECK((*list)[0].name == "general");
  CHECK_FALSE((*list)[0].member);
  CHECK((*list)[0].read_to == 9);  // survives reopen, and set_member left it alone
  CHECK((*list)[0].last_seq == 10);
  CHECK((*list)[1].name == "news");
  CHECK((*list)[2].name == "random");
  CHECK_FALSE((*list)[2].member);
  REQUIRE(cache->advance_cursor("general", 1).ok());
  CHECK((*cache->channel("general"))->read_to == 9);
  REQUIRE(cache->upsert_channel("general", 0, true).ok());
  CHECK((*cache->channel("general"))->member);
}

TEST_CASE("a file of garbage is refused as corrupt, naming the path, and kept") {
  TempDir tmp;
  std::mt19937 rng(7);
  std::string garbage(8192, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  write_file(tmp.db(), garbage);

  auto cache = Cache::open(tmp.str(), "alice");
  REQUIRE_FALSE(cache.ok());
  INFO(cache.status().message());
  CHECK(cache.status().code() == StatusCode::corrupt);
  CHECK(contains(cache.status().message(), tmp.db()));
  CHECK(file_bytes(tmp.db()) == garbage);

  // Short text too.
  write_file(tmp.db(), "hello, not a database\n");
  cache = Cache::open(tmp.str(), "alice");
  REQUIRE_FALSE(cache.ok());
  CHECK(cache.status().code() == StatusCode::corrupt);
  CHECK(file_bytes(tmp.db()) == "hello, not a database\n");
}

TEST_CASE("a scribbled page: found at open by the full check, or after it in the background") {
  TempDir tmp;
  {
    auto cache = open_ok(tmp.str());
    // Big enough (over 1 MiB) that open leaves the full check to a thread.
    REQUIRE(*cache->store_events(events("general", 1, 20000)) == 20000);
  }
  std::string bytes = file_bytes(tmp.db());
  REQUIRE(bytes.size() > 4096 * 100);
  // Inside a b-tree page among the events (written after the schema's root
  // pages, so counted from the end), past its header: the file still opens,
  // quick_check objects.
  std::size_t page = bytes.size() - 4096 * 40;
  for (std::size_t i = page + 10; i < page + 60; ++i) bytes[i] = 'X';
  write_file(tmp.db(), bytes);

  SUBCASE("the full check at open") {
    Cache::Options full;
    full.background_check = false;
    auto cache = Cache::open(tmp.str(), "alice", full);
    REQUIRE_FALSE(cache.ok());
    INFO(cache.status().message());
    CHECK(cache.status().code() == StatusCode::corrupt);
    CHECK(contains(cache.status().message(), tmp.db()));
    CHECK(cache.status().message().find('\n') == std::string::npos);
  }
  SUBCASE("the background check, remembered by the next open") {
    {
      auto cache = Cache::open(tmp.str(), "alice");
      if (cache.ok()) {
        Status found = (*cache)->test_wait_background_check();
        INFO(found.message());
        CHECK(found.code() == StatusCode::corrupt);
        CHECK(contains(found.message(), tmp.db()));
        CHECK(found.message().find('\n') == std::string::npos);
        CHECK((*cache)->corruption().code() == StatusCode::corrupt);
      } else {
        CHECK(cache.status().code() == StatusCode::corrupt);  // the page was probed at open
      }
    }
    auto again = Cache::open(tmp.str(), "alice");
    REQUIRE_FALSE(again.ok());
    CHECK(again.status().code() == StatusCode::corrupt);
    CHECK(contains(again.status().message(), tmp.db()));
  }
  CHECK(file_bytes(tmp.db()) == bytes);  // left as it was
}

TEST_CASE("a truncated cache is refused as corrupt, naming the path, and kept") {
  TempDir tmp;
  {
    auto cache = open_ok(tmp.str());
    REQUIRE(*cache->store_events(events("general", 1, 2000)) == 2000);
  }
  REQUIRE_FALSE(fs::exists(tmp.db() + "-wal"));  // checkpointed at close
  auto size = fs::file_size(tmp.db());
  REQUIRE(size > 16384);
  std::string whole = file_bytes(tmp.db());

  for (std::uintmax_t keep : {size / 2, std::uintmax_t{4096 + 100}, std::uintmax_t{60}}) {
    CAPTURE(keep);
    write_file(tmp.db(), whole.substr(0, keep));
    auto cache = Cache::open(tmp.str(), "alice");
    REQUIRE_FALSE(cache.ok());
    INFO(cache.status().message());
    CHECK(cache.status().code() == StatusCode::corrupt);
    CHECK(contains(cache.status().message(), tmp.db()));
    CHECK(fs::file_size(tmp.db()) == keep);
  }

  // Restored, the same file opens again: nothing was deleted or rewritten.
  write_file(tmp.db(), whole);
  auto cache = open_ok(tmp.str());
  CHECK(*cache->max_seq("general") == 2000);
}
