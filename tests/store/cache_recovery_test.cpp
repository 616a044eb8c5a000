// Rebuilding a corrupt parley.db: what is moved aside, what is kept (outbox.db,
// channel cursors, the device id), and damage found after open.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "store/cache.hpp"
#include "store/sqlite.hpp"

namespace fs = std::filesystem;
using parley::EventKind;
using parley::Message;
using parley::Status;
using parley::StatusCode;
using parley::store::Cache;
using parley::store::Database;

namespace {

struct Dir {
  Dir() {
    std::string tmpl = (fs::temp_directory_path() / "parley-recovery-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~Dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
  std::string db() const { return (path / "parley.db").string(); }
  fs::path path;
};

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::vector<Message> range(const std::string& channel, std::uint64_t from, std::uint64_t to) {
  std::vector<Message> out;
  for (std::uint64_t s = from; s <= to; ++s) {
    Message m;
    m.channel = channel;
    m.seq = s;
    m.kind = EventKind::message;
    m.sender = "bob";
    m.id = std::string(32, 'b');
    m.text = "event " + std::to_string(s) + std::string(60, '.');
    m.ts_ms = static_cast<std::int64_t>(s);
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<fs::path> moved_aside(const Dir& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir.path)) {
    std::string name = e.path().filename().string();
    if (name.rfind("parley.db.corrupt-", 0) == 0 && name.find("-wal") == std::string::npos) {
      out.push_back(e.path());
    }
  }
  return out;
}

Cache::Options rebuilding() {
  Cache::Options o;
  o.rebuild_corrupt = true;
  return o;
}

// A cache with two channels of events and cursors, a pending and a failed
// outbox entry; returns its device id. Over 1 MiB, so that open leaves the
// full check to its helper thread.
std::string fill(const Dir& dir) {
  auto cache = Cache::open(dir.str(), "alice");
  REQUIRE(cache.ok());
  auto& c = **cache;
  REQUIRE(c.store_events(range("general", 1, 15000)).ok());
  REQUIRE(c.advance_cursor("general", 14990).ok());
  REQUIRE(c.raise_my_read("general", 14900).ok());
  REQUIRE(c.set_my_read_sent("general", 14800).ok());
  REQUIRE(c.store_events(range("random", 1, 10)).ok());
  REQUIRE(c.advance_cursor("random", 10).ok());
  REQUIRE(c.outbox_add("general", std::string(32, '1'), "still pending", 1).ok());
  REQUIRE(c.outbox_add("general", std::string(32, '2'), "refused", 2).ok());
  REQUIRE(c.outbox_fail(std::string(32, '2'), "forbidden").ok());
  REQUIRE(c.outbox_add("random", std::string(32, '3'), "pending too", 3).ok());
  return c.device_id();
}

void check_kept(Cache& c, const std::string& device) {
  auto pending = c.outbox_pending();
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 2);
  CHECK((*pending)[0].text == "still pending");
  CHECK((*pending)[1].text == "pending too");
  CHECK(c.outbox_failed()->size() == 1);
  CHECK(c.device_id() == device);
  // The events are gone (refetched from the server when needed).
  CHECK(*c.max_seq("general") == 0);
  CHECK(c.corruption().ok());
  // The new file works.
  REQUIRE(c.store_events(range("general", 14991, 15000)).ok());
  CHECK(*c.contiguous_down_from("general", 15000) == 14991);
}

}  // namespace

TEST_CASE("a garbage parley.db is moved aside and rebuilt, keeping the outbox") {
  Dir dir;
  std::string device = fill(dir);
  std::mt19937 rng(3);
  std::string garbage(64 * 1024, '\0');
  for (char& ch : garbage) ch = static_cast<char>(rng());
  write_file(dir.db(), garbage);
  fs::remove(dir.db() + "-wal");

  CHECK(Cache::open(dir.str(), "alice").status().code() == StatusCode::corrupt);  // by default
  auto cache = Cache::open(dir.str(), "alice", rebuilding());
  REQUIRE_MESSAGE(cache.ok(), cache.status().to_string());
  auto& c = **cache;
  REQUIRE(c.last_rebuild().has_value());
  const auto& report = *c.last_rebuild();
  INFO(report.describe());
  CHECK(report.status.ok());
  CHECK(report.cause.code() == StatusCode::corrupt);
  CHECK(report.outbox_pending == 2);
  CHECK(report.channels_kept == 0);  // nothing readable
  CHECK(report.describe().find(dir.db()) != std::string::npos);
  CHECK(report.describe().find('\n') == std::string::npos);
  REQUIRE(moved_aside(dir).size() == 1);
  CHECK(moved_aside(dir)[0].string() == report.moved_to);
  CHECK(file_bytes(report.moved_to) == garbage);  // kept as it was, for inspection
  check_kept(c, device);
}

TEST_CASE("a truncated parley.db is rebuilt; the cursors that can be read are kept") {
  Dir dir;
  std::string device = fill(dir);
  REQUIRE_FALSE(fs::exists(dir.db() + "-wal"));
  std::string whole = file_bytes(dir.db());
  write_file(dir.db(), whole.substr(0, whole.size() / 2));

  auto cache = Cache::open(dir.str(), "alice", rebuilding());
  REQUIRE_MESSAGE(cache.ok(), cache.status().to_string());
  auto& c = **cache;
  REQUIRE(c.last_rebuild().has_value());
  INFO(c.last_rebuild()->describe());
  CHECK(c.last_rebuild()->cause.code() == StatusCode::corrupt);
  check_kept(c, device);
  // The channels table sits early in the file: its rows survive the cut.
  auto general = c.channel("general");
  REQUIRE(general.ok());
  REQUIRE(general->has_value());
  CHECK((*general)->read_to == 14990);
  CHECK(c.unsent_reads()->size() == 1);
  CHECK(c.unsent_reads()->at(0).seq == 14900);
}

TEST_CASE("a scribbled page found after open: rebuild() while open, outbox untouched") {
  Dir dir;
  std::string device = fill(dir);
  std::string bytes = file_bytes(dir.db());
  REQUIRE(bytes.size() > 4096 * 41);
  for (std::size_t i = 4096 * 40 + 10; i < 4096 * 40 + 80; ++i) bytes[i] = 'X';
  write_file(dir.db(), bytes);

  auto cache = Cache::open(dir.str(), "alice", rebuilding());
  REQUIRE(cache.ok());
  auto& c = **cache;
  Status found = c.last_rebuild() ? c.last_rebuild()->cause : c.test_wait_background_check();
  INFO(found.message());
  REQUIRE(found.code() == StatusCode::corrupt);
  if (!c.last_rebuild()) REQUIRE(c.rebuild(found).ok());
  REQUIRE(c.last_rebuild().has_value());
  CHECK(c.last_rebuild()->channels_kept == 2);
  check_kept(c, device);
  CHECK((*c.channel("general"))->read_to == 14990);
  CHECK((*c.channel("random"))->read_to == 10);
  REQUIRE(moved_aside(dir).size() == 1);
  CHECK(file_bytes(moved_aside(dir)[0].string()) == bytes);
}

TEST_CASE("a read that meets a corrupt page is recorded, and the next open knows") {
  Dir dir;
  fill(dir);
  std::string bytes = file_bytes(dir.db());
  // Scribble over the header of a page in the middle of the events, so that
  // open's probes of both ends are likely to pass and a read in the middle fails.
  std::size_t page = bytes.size() / 4096 / 2;
  for (std::size_t i = page * 4096; i < page * 4096 + 8; ++i) bytes[i] = static_cast<char>(0xff);
  write_file(dir.db(), bytes);
  Cache::Options quiet;
  quiet.background_check = true;
  auto cache = Cache::open(dir.str(), "alice", quiet);
  if (!cache.ok()) {
    // open's probes happened to meet a scribbled page: also fine.
    CHECK(cache.status().code() == StatusCode::corrupt);
    return;
  }
  auto& c = **cache;
  bool failed = false;
  for (std::uint64_t from = 1; from <= 15000 && !failed; from += 100) {
    auto r = c.events("general", from, from + 99);
    if (!r.ok()) {
      CHECK(r.status().code() == StatusCode::corrupt);
      failed = true;
    }
  }
  Status seen = failed ? c.corruption() : c.test_wait_background_check();
  INFO(seen.message());
  CHECK(seen.code() == StatusCode::corrupt);
  CHECK(seen.message().find(dir.db()) != std::string::npos);
  cache = Status(StatusCode::cancelled, "closed");
  auto again = Cache::open(dir.str(), "alice");
  CHECK(again.status().code() == StatusCode::corrupt);
  // With rebuild, the remembered damage leads to a rebuild, and is forgotten.
  auto rebuilt = Cache::open(dir.str(), "alice", rebuilding());
  REQUIRE(rebuilt.ok());
  CHECK((*rebuilt)->last_rebuild().has_value());
  rebuilt = Status(StatusCode::cancelled, "closed");
  CHECK(Cache::open(dir.str(), "alice").ok());
}

TEST_CASE("a corrupt cache of schema 2 gives up its outbox rows to outbox.db") {
  Dir dir;
  {
    auto cache = Cache::open(dir.str(), "alice");
    REQUIRE(cache.ok());
    REQUIRE((*cache)->store_events(range("general", 1, 2000)).ok());
  }
  // As an older library left it: outbox rows in parley.db, no outbox.db.
  fs::remove(dir.path / "outbox.db");
  {
    auto db = Database::open(dir.db());
    REQUIRE(db.ok());
    REQUIRE(db->exec("CREATE TABLE outbox(ord INTEGER PRIMARY KEY AUTOINCREMENT, "
                     "id TEXT NOT NULL UNIQUE, channel TEXT NOT NULL, text TEXT NOT NULL, "
                     "created_ms INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending', "
                     "error TEXT NOT NULL DEFAULT ''); "
                     "INSERT INTO outbox(id, channel, text, created_ms) "
                     "VALUES('x1', 'general', 'old pending', 1); "
                     "PRAGMA user_version = 2")
                .ok());
  }
  // Damage two of the events' pages, in the middle of the file (the schema
  // and the tables' first pages come before them; the outbox table and its
  // schema entry after them).
  std::string bytes = file_bytes(dir.db());
  REQUIRE_FALSE(fs::exists(dir.db() + "-wal"));
  REQUIRE(bytes.size() > 4096 * 40);
  std::size_t page = bytes.size() / 2 / 4096 * 4096;
  for (std::size_t i = page; i < page + 4096 * 2; ++i) bytes[i] = 'X';
  write_file(dir.db(), bytes);

  auto cache = Cache::open(dir.str(), "alice", rebuilding());
  REQUIRE_MESSAGE(cache.ok(), cache.status().to_string());
  REQUIRE((*cache)->last_rebuild().has_value());
  auto pending = (*cache)->outbox_pending();
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 1);
  CHECK((*pending)[0].text == "old pending");
}

TEST_CASE("only the latest moved-aside copy is kept") {
  Dir dir;
  for (int round = 0; round < 3; ++round) {
    write_file(dir.db(), "not a database, round " + std::to_string(round));
    auto cache = Cache::open(dir.str(), "alice", rebuilding());
    REQUIRE(cache.ok());
    REQUIRE((*cache)->last_rebuild().has_value());
  }
  auto aside = moved_aside(dir);
  REQUIRE(aside.size() == 1);
  CHECK(file_bytes(aside[0].string()) == "not a database, round 2");
}

TEST_CASE("a corrupt outbox.db is refused, never moved") {
  Dir dir;
  fill(dir);
  write_file((dir.path / "outbox.db").string(), std::string(8192, 'z'));
  auto cache = Cache::open(dir.str(), "alice", rebuilding());
  REQUIRE_FALSE(cache.ok());
  CHECK(cache.status().code() == StatusCode::corrupt);
  CHECK(cache.status().message().find("outbox.db") != std::string::npos);
  CHECK(file_bytes((dir.path / "outbox.db").string()) == std::string(8192, 'z'));
}
