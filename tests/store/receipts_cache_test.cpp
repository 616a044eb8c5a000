// The cache's receipt cursors, members and the user's own read cursor.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>

#include "store/cache.hpp"
#include "store/sqlite.hpp"

namespace fs = std::filesystem;
using parley::ReceiptKind;
using parley::store::Cache;

namespace {
struct Dir {
  Dir() {
    std::string tmpl = (fs::temp_directory_path() / "parley-receipts-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~Dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};
}  // namespace

TEST_CASE("receipt cursors only move up") {
  Dir dir;
  auto cache = Cache::open(dir.path.string(), "alice");
  REQUIRE(cache.ok());
  auto& c = **cache;
  CHECK(*c.raise_receipt("g", "bob", "d1", ReceiptKind::delivered, 5));
  CHECK_FALSE(*c.raise_receipt("g", "bob", "d1", ReceiptKind::delivered, 3));
  CHECK_FALSE(*c.raise_receipt("g", "bob", "d1", ReceiptKind::delivered, 5));
  CHECK(*c.raise_receipt("g", "bob", "d2", ReceiptKind::delivered, 2));  // another device
  CHECK(*c.raise_receipt("g", "bob", "ignored", ReceiptKind::read, 4));
  CHECK_FALSE(*c.raise_receipt("g", "bob", "other", ReceiptKind::read, 4));  // read is per user
}

TEST_CASE("receipt summary counts members other than the sender") {
  Dir dir;
  auto cache = Cache::open(dir.path.string(), "alice");
  REQUIRE(cache.ok());
  auto& c = **cache;
  REQUIRE(c.set_members("g", {"alice", "bob", "carol", "dave"}).ok());
  c.raise_receipt("g", "bob", "d1", ReceiptKind::delivered, 10);
  c.raise_receipt("g", "carol", "d1", ReceiptKind::delivered, 7);
  c.raise_receipt("g", "carol", "d2", ReceiptKind::delivered, 12);
  c.raise_receipt("g", "bob", "", ReceiptKind::read, 10);
  c.raise_receipt("g", "alice", "x", ReceiptKind::delivered, 99);  // the sender: not counted
  c.raise_receipt("g", "erin", "x", ReceiptKind::delivered, 99);   // not a member
  auto s = c.receipt_summary("g", 10, "alice");
  REQUIRE(s.ok());
  CHECK(s->members == 3);
  CHECK(s->delivered == 2);  // bob, and carol through her second device
  CHECK(s->read == 1);
  auto later = c.receipt_summary("g", 11, "alice");
  CHECK(later->delivered == 1);
  CHECK(later->read == 0);
  REQUIRE(c.remove_member("g", "carol").ok());
  CHECK(c.receipt_summary("g", 10, "alice")->members == 2);
}

TEST_CASE("own read cursor is monotonic and remembered until the server has it") {
  Dir dir;
  {
    auto cache = Cache::open(dir.path.string(), "alice");
    REQUIRE(cache.ok());
    auto& c = **cache;
    CHECK(*c.raise_my_read("g", 8) == 8);
    CHECK(*c.raise_my_read("g", 3) == 8);
    auto unsent = c.unsent_reads();
    REQUIRE(unsent.ok());
    REQUIRE(unsent->size() == 1);
    CHECK((*unsent)[0].seq == 8);
  }
  auto cache = Cache::open(dir.path.string(), "alice");  // survives a restart
  REQUIRE(cache.ok());
  CHECK((*cache)->unsent_reads()->size() == 1);
  REQUIRE((*cache)->set_my_read_sent("g", 8).ok());
  CHECK((*cache)->unsent_reads()->empty());
}

TEST_CASE("a version 1 cache migrates to the current version keeping its data, outbox and device id") {
  Dir dir;
  {
    auto cache = Cache::open(dir.path.string(), "alice");
    REQUIRE(cache.ok());
    REQUIRE((*cache)->upsert_channel("g", 5, true).ok());
  }
  {
    // Roll the schema back to version 1 as an older library left it: the
    // outbox and the device id in parley.db, no outbox.db.
    fs::remove(dir.path / "outbox.db");
    auto db = parley::store::Database::open((dir.path / "parley.db").string());
    REQUIRE(db.ok());
    REQUIRE(db->exec("DROP TABLE receipts; DROP TABLE members; "
                     "ALTER TABLE channels DROP COLUMN my_read; "
                     "ALTER TABLE channels DROP COLUMN my_read_sent; "
                     "ALTER TABLE channels DROP COLUMN kind; "
                     "ALTER TABLE channels DROP COLUMN role; "
                     "ALTER TABLE channels DROP COLUMN muted_until; "
                     "ALTER TABLE channels DROP COLUMN meta; "
                     // and of notifications (schema 5)
                     "ALTER TABLE channels DROP COLUMN unread; "
                     "ALTER TABLE channels DROP COLUMN mentions; "
                     "ALTER TABLE channels DROP COLUMN notify_level; "
                     "ALTER TABLE channels DROP COLUMN mute_until; "
                     "ALTER TABLE messages DROP COLUMN deleted; "
                     "ALTER TABLE messages DROP COLUMN target; "
                     "ALTER TABLE messages DROP COLUMN role; "
                     "ALTER TABLE messages DROP COLUMN until_ms; "
                     "ALTER TABLE messages DROP COLUMN ref; "
                     "ALTER TABLE messages DROP COLUMN channel_kind; "
                     "ALTER TABLE messages DROP COLUMN meta; "
                     "CREATE TABLE outbox(ord INTEGER PRIMARY KEY AUTOINCREMENT, "
                     "id TEXT NOT NULL UNIQUE, channel TEXT NOT NULL, text TEXT NOT NULL, "
                     "created_ms INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending', "
                     "error TEXT NOT NULL DEFAULT ''); "
                     "INSERT INTO outbox(ord, id, channel, text, created_ms) "
                     "VALUES(7, 'aaaa', 'g', 'keep me', 1), (9, 'bbbb', 'g', 'and me', 2); "
                     "INSERT OR REPLACE INTO meta(key, value) VALUES('device_id', 'dev-1'); "
                     // and of end-to-end encryption (schema 6)
                     "DROP TABLE e2e_franking; DROP TABLE e2e_device_lists; DROP TABLE e2e_recipients; "  // schema 8
                     "DROP INDEX messages_e2e_by_id; "  // schema 7
                     "ALTER TABLE messages DROP COLUMN e2e; "
                     "ALTER TABLE messages DROP COLUMN e2e_error; "
                     "DROP TABLE e2e_sessions; DROP TABLE e2e_devices; "
                     "DROP TABLE e2e_verified; DROP TABLE e2e_outgoing; "
                     "PRAGMA user_version = 1")
                .ok());
  }
  {
    auto cache = Cache::open(dir.path.string(), "alice");
    REQUIRE_MESSAGE(cache.ok(), cache.status().to_string());
    auto pending = (*cache)->outbox_pending();
    REQUIRE(pending.ok());
    REQUIRE(pending->size() == 2);
    CHECK((*pending)[0].text == "keep me");
    CHECK((*pending)[1].text == "and me");
    CHECK((*cache)->device_id() == "dev-1");
    CHECK(*(*cache)->raise_my_read("g", 2) == 2);
    CHECK((*(*cache)->channel("g"))->last_seq == 5);
    // New entries go after the moved ones.
    REQUIRE((*cache)->outbox_add("g", "cccc", "later", 3).ok());
    CHECK((*(*cache)->outbox_pending()).back().id == "cccc");
  }
  auto db = parley::store::Database::open((dir.path / "parley.db").string());
  REQUIRE(db.ok());
  CHECK(*db->user_version() == Cache::kSchemaVersion);
  auto q = db->prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'outbox'");
  REQUIRE(*q->step());
  CHECK(q->column_int(0) == 0);
}

TEST_CASE("a new cache is created with incremental auto-vacuum") {
  Dir dir;
  { REQUIRE(Cache::open(dir.path.string(), "alice").ok()); }
  auto db = parley::store::Database::open((dir.path / "parley.db").string());
  REQUIRE(db.ok());
  auto st = db->prepare("PRAGMA auto_vacuum");
  REQUIRE(st.ok());
  REQUIRE(*st->step());
  CHECK(st->column_int(0) == 2);  // INCREMENTAL
}
