// The server's SQLite store on a real file: gap-free sequences, membership
// rules, deduplication, history ranges, and migrations.
#include <doctest/doctest.h>

#include <array>
#include <fstream>
#include <utility>

#include "server_fixture.hpp"
#include "store.hpp"
#include "store/sqlite.hpp"

using namespace parley;
using namespace parley::server;
using parley::test::TempDir;

namespace {

std::unique_ptr<ServerStore> open_store(const TempDir& dir) {
  auto store = ServerStore::open((dir.path / "server.db").string());
  REQUIRE_MESSAGE(store.ok(), store.status().to_string());
  return std::move(*store);
}

std::string id(int n) { return parley::test::client_id(n); }

}  // namespace

TEST_CASE("store: each channel's sequence is gap-free from 1") {
  TempDir dir;
  auto store = open_store(dir);
  auto created = store->create_channel("a", "alice", 1000);
  REQUIRE(created.ok());
  CHECK(created->seq == 1);
  CHECK(created->kind == EventKind::create);
  CHECK(created->sender == "alice");
  REQUIRE(store->create_channel("b", "bob", 1001).ok());

  CHECK(store->join("a", "bob", 1002)->seq == 2);
  CHECK(store->append_message("a", "alice", id(1), "one", 1003)->seq == 3);
  CHECK(store->append_message("b", "bob", id(2), "b one", 1004)->seq == 2);
  CHECK(store->append_message("a", "bob", id(3), "two", 1005)->seq == 4);
  CHECK(store->leave("a", "bob", 1006)->seq == 5);

  // Refusals take no sequence number.
  auto exists = store->create_channel("a", "carol", 1007);
  CHECK(exists.status().reason() == "channel_exists");
  CHECK(store->join("a", "alice", 1008).status().reason() == "already_member");
  CHECK(store->leave("a", "bob", 1009).status().reason() == "not_member");
  CHECK(store->append_message("a", "bob", id(4), "gone", 1010).status().reason() == "not_member");
  CHECK(store->join("nowhere", "bob", 1011).status().reason() == "no_such_channel");
  CHECK(store->append_message("nowhere", "bob", id(5), "x", 1012).status().reason() ==
        "no_such_channel");
  CHECK(store->append_message("a", "alice", id(6), "three", 1013)->seq == 6);

  auto events = store->history("a", 0, std::nullopt, 200);
  REQUIRE(events.ok());
  REQUIRE(events->size() == 6);
  const EventKind kinds[] = {EventKind::create,  EventKind::join,  EventKind::message,
                             EventKind::message, EventKind::leave, EventKind::message};
  for (std::size_t i = 0; i < events->size(); ++i) {
    CHECK((*events)[i].seq == i + 1);
    CHECK((*events)[i].kind == kinds[i]);
    CHECK((*events)[i].channel == "a");
  }
  CHECK((*events)[2].text == "one");
  CHECK((*events)[2].client_id == id(1));
  CHECK((*events)[2].ts == 1003);
  CHECK((*events)[1].client_id.empty());

  auto channels = store->channels();
  REQUIRE(channels->size() == 2);
  CHECK((*channels)[0].name == "a");
  CHECK((*channels)[0].last_seq == 6);
  CHECK((*channels)[1].last_seq == 2);
  auto members = store->memberships();
  REQUIRE(members->size() == 2);  // alice in a, bob in b
  CHECK((*members)[0].channel == "a");
  CHECK((*members)[0].user == "alice");
}

TEST_CASE("store: deduplication on (sender, client id)") {
  TempDir dir;
  auto store = open_store(dir);
  REQUIRE(store->create_channel("a", "alice", 1).ok());
  REQUIRE(store->create_channel("b", "alice", 1).ok());
  REQUIRE(store->join("a", "bob", 2).ok());
  auto first = store->append_message("a", "alice", id(1), "hello", 10);
  REQUIRE(first.ok());

  auto again = store->append_message("a", "alice", id(1), "hello again", 11);
  CHECK(again.status().reason() == "duplicate");
  // Also in another channel: an id is the sender's, wherever it was sent.
  CHECK(store->append_message("b", "alice", id(1), "elsewhere", 12).status().reason() ==
        "duplicate");
  // Another sender may use the same id.
  CHECK(store->append_message("a", "bob", id(1), "mine", 13)->seq == 4);

  auto found = store->find_message("alice", id(1));
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->channel == "a");
  CHECK((*found)->seq == 3);
  CHECK((*found)->ts == 10);
  CHECK((*found)->text == "hello");
  CHECK_FALSE(store->find_message("alice", id(2))->has_value());
  CHECK(store->history("a", 0, std::nullopt, 200)->size() == 4);
  CHECK(store->history("b", 0, std::nullopt, 200)->size() == 1);
}

TEST_CASE("store: history ranges") {
  TempDir dir;
  auto store = open_store(dir);
  REQUIRE(store->create_channel("h", "alice", 1).ok());
  for (int n = 2; n <= 20; ++n) REQUIRE(store->append_message("h", "alice", id(n), "m", n).ok());
  auto seqs = [&](std::optional<std::uint64_t> after, std::optional<std::uint64_t> before,
                  std::uint32_t limit) {
    std::vector<std::uint64_t> out;
    auto events = store->history("h", after, before, limit);
    REQUIRE(events.ok());
    for (const auto& e : *events) out.push_back(e.seq);
    return out;
  };
  using V = std::vector<std::uint64_t>;
  CHECK(seqs(std::nullopt, std::nullopt, 3) == V{18, 19, 20});
  CHECK(seqs(std::nullopt, 10, 3) == V{7, 8, 9});
  CHECK(seqs(0, std::nullopt, 3) == V{1, 2, 3});
  CHECK(seqs(5, std::nullopt, 3) == V{6, 7, 8});
  CHECK(seqs(5, 8, 10) == V{6, 7});
  CHECK(seqs(20, std::nullopt, 10).empty());
  CHECK(seqs(std::nullopt, 1, 10).empty());
  CHECK(seqs(10, 5, 10).empty());
  CHECK(seqs(std::nullopt, UINT64_MAX, 2) == V{19, 20});
  CHECK(seqs(UINT64_MAX, std::nullopt, 2).empty());
  CHECK(store->history("nowhere", 0, std::nullopt, 10)->empty());
}

TEST_CASE("store: migrations on a real file") {
  TempDir dir;
  std::string path = (dir.path / "server.db").string();
  {
    auto store = open_store(dir);
    REQUIRE(store->create_channel("kept", "alice", 1).ok());
    REQUIRE(store->append_message("kept", "alice", id(1), "durable", 2).ok());
    REQUIRE(store->touch_user("alice", 5).ok());
    REQUIRE(store->touch_user("alice", 9).ok());
  }
  {
    auto db = store::Database::open(path);
    REQUIRE(db.ok());
    CHECK(*db->user_version() == ServerStore::kSchemaVersion);
    auto mode = db->prepare("PRAGMA journal_mode");
    REQUIRE(*mode->step());
    CHECK(mode->column_text(0) == "wal");
    auto user = db->prepare("SELECT first_seen, last_seen FROM users WHERE name = 'alice'");
    REQUIRE(*user->step());
    CHECK(user->column_int(0) == 5);
    CHECK(user->column_int(1) == 9);
    // The dedup index is in the schema.
    auto index = db->prepare(
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'events_by_client_id'");
    REQUIRE(*index->step());
    CHECK(index->column_int(0) == 1);
  }
  {
    // Reopening migrates nothing and keeps everything.
    auto store = open_store(dir);
    auto events = store->history("kept", 0, std::nullopt, 10);
    REQUIRE(events->size() == 2);
    CHECK((*events)[1].text == "durable");
    CHECK(store->append_message("kept", "alice", id(2), "more", 3)->seq == 3);
  }
  {
    auto db = store::Database::open(path);
    REQUIRE(db->set_user_version(ServerStore::kSchemaVersion + 1).ok());
  }
  auto newer = ServerStore::open(path);
  REQUIRE_FALSE(newer.ok());
  CHECK(newer.status().message().find("newer") != std::string::npos);
  CHECK(newer.status().message().find(path) != std::string::npos);
}

TEST_CASE("store: a file that is not a database is refused, not overwritten") {
  TempDir dir;
  std::string path = (dir.path / "server.db").string();
  std::string junk(8192, 'j');
  std::ofstream(path, std::ios::binary) << junk;
  auto store = ServerStore::open(path);
  REQUIRE_FALSE(store.ok());
  CHECK(store.status().code() == StatusCode::corrupt);
  std::ifstream in(path, std::ios::binary);
  std::string after((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(after == junk);
}

TEST_CASE("store: receipt cursors are monotonic, per device for delivered, per user for read") {
  TempDir dir;
  auto store = open_store(dir);
  REQUIRE(store->create_channel("c", "alice", 1).ok());
  REQUIRE(store->join("c", "bob", 2).ok());
  for (int n = 0; n < 5; ++n) REQUIRE(store->append_message("c", "alice", id(n), "m", 3 + n).ok());
  // last_seq is 7.

  auto raise = [&](const std::string& user, const std::string& device, const std::string& kind,
                   std::uint64_t seq) {
    auto r = store->raise_receipt("c", user, device, kind, seq);
    REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    return std::pair{r->seq, r->advanced};
  };
  using P = std::pair<std::uint64_t, bool>;
  CHECK(raise("bob", "", "read", 5) == P{5, true});
  CHECK(raise("bob", "", "read", 3) == P{5, false});
  CHECK(raise("bob", "", "read", 5) == P{5, false});
  CHECK(raise("bob", "", "read", 6) == P{6, true});
  CHECK(raise("bob", "phone", "delivered", 7) == P{7, true});
  CHECK(raise("bob", "laptop", "delivered", 2) == P{2, true});
  CHECK(raise("bob", "laptop", "delivered", 1) == P{2, false});
  CHECK(raise("alice", "", "read", 1) == P{1, true});

  auto all = store->receipts("c");
  REQUIRE(all.ok());
  REQUIRE(all->size() == 4);
  CHECK((*all)[0].kind == "delivered");
  CHECK((*all)[0].user == "bob");
  CHECK((*all)[0].device == "laptop");
  CHECK((*all)[0].seq == 2);
  CHECK((*all)[1].device == "phone");
  CHECK((*all)[1].seq == 7);
  CHECK((*all)[2].kind == "read");
  CHECK((*all)[2].user == "alice");
  CHECK((*all)[3].user == "bob");
  CHECK((*all)[3].device.empty());
  CHECK((*all)[3].seq == 6);

  // Refusals change nothing.
  auto reason = [&](const std::string& channel, const std::string& user, const std::string& kind,
                    std::uint64_t seq) {
    return store->raise_receipt(channel, user, "", kind, seq).status().reason();
  };
  CHECK(reason("c", "bob", "seen", 1) == "invalid_kind");
  CHECK(reason("c", "bob", "read", 0) == "invalid_seq");
  CHECK(reason("c", "bob", "read", 8) == "invalid_seq");
  CHECK(reason("c", "bob", "read", UINT64_MAX) == "invalid_seq");
  CHECK(reason("c", "carol", "read", 1) == "not_member");
  CHECK(reason("nowhere", "bob", "read", 1) == "no_such_channel");
  CHECK(store->receipts("c")->size() == 4);
  CHECK(store->receipts("nowhere")->empty());

  // Leaving keeps the rows.
  REQUIRE(store->leave("c", "bob", 9).ok());
  CHECK(store->receipts("c")->size() == 4);
  CHECK(reason("c", "bob", "read", 8) == "not_member");
}

// The schema version 1 shipped with (migration 1 of store.cpp), written by
// hand so that the test opens a file as that server left it.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE users (name TEXT PRIMARY KEY, first_seen INTEGER NOT NULL,
                    last_seen INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE channels (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, creator TEXT NOT NULL,
                       created_at INTEGER NOT NULL, last_seq INTEGER NOT NULL);
CREATE TABLE members (channel_id INTEGER NOT NULL REFERENCES channels(id), user TEXT NOT NULL,
                      joined_seq INTEGER NOT NULL, PRIMARY KEY (channel_id, user)) WITHOUT ROWID;
CREATE INDEX members_by_user ON members(user);
CREATE TABLE events (
  channel_id INTEGER NOT NULL REFERENCES channels(id), seq INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('create', 'join', 'leave', 'message')),
  sender TEXT NOT NULL, client_id TEXT, text TEXT, ts INTEGER NOT NULL,
  PRIMARY KEY (channel_id, seq)) WITHOUT ROWID;
CREATE UNIQUE INDEX events_by_client_id ON events(sender, client_id);
INSERT INTO users VALUES ('alice', 1, 2), ('bob', 1, 3);
INSERT INTO channels VALUES (1, 'old', 'alice', 1, 3);
INSERT INTO members VALUES (1, 'alice', 1), (1, 'bob', 2);
INSERT INTO events VALUES (1, 1, 'create', 'alice', NULL, NULL, 1),
                          (1, 2, 'join', 'bob', NULL, NULL, 2),
                          (1, 3, 'message', 'alice', '00000000000000000000000000000001',
                           'from v1', 3);
PRAGMA user_version = 1;
)sql";

TEST_CASE("store: migrations from version 1 keep everything") {
  TempDir dir;
  std::string path = (dir.path / "server.db").string();
  {
    auto db = store::Database::open(path);
    REQUIRE(db.ok());
    REQUIRE(db->exec(kSchemaV1).ok());
  }
  {
    auto store = open_store(dir);
    auto events = store->history("old", 0, std::nullopt, 10);
    REQUIRE(events.ok());
    REQUIRE(events->size() == 3);
    CHECK((*events)[0].kind == EventKind::create);
    CHECK((*events)[0].channel_kind == "public");  // channels before kinds were public
    CHECK((*events)[2].text == "from v1");
    // A resend still finds the original.
    auto found = store->find_message("alice", "00000000000000000000000000000001");
    REQUIRE(found.ok());
    REQUIRE(found->has_value());
    CHECK((*found)->seq == 3);
    auto channels = store->channels();
    REQUIRE(channels->size() == 1);
    CHECK((*channels)[0].kind == ChannelKind::public_channel);
    CHECK((*channels)[0].last_seq == 3);
    auto members = store->memberships();
    REQUIRE(members->size() == 2);
    CHECK((*members)[0].user == "alice");
    CHECK((*members)[0].role == Role::owner);  // the creator
    CHECK((*members)[1].role == Role::member);
    auto raised = store->raise_receipt("old", "alice", "", "read", 2);
    REQUIRE(raised.ok());
    CHECK(raised->advanced);
    auto next = store->append_message("old", "bob", id(2), "after", 4);
    REQUIRE(next.ok());
    CHECK(next->seq == 4);
  }
  auto db = store::Database::open(path);
  CHECK(*db->user_version() == ServerStore::kSchemaVersion);
}

TEST_CASE("store: a negative schema version is refused, the file kept") {
  TempDir dir;
  std::string path = (dir.path / "server.db").string();
  {
    auto db = store::Database::open(path);
    REQUIRE(db.ok());
    REQUIRE(db->set_user_version(-1).ok());
  }
  auto store = ServerStore::open(path);
  REQUIRE_FALSE(store.ok());
  CHECK(store.status().code() == StatusCode::corrupt);
  CHECK(std::filesystem::exists(path));
}

TEST_CASE("store: schema 8 keeps devices removed, blocks, notices, the franking key, reports") {
  TempDir dir;
  std::array<std::uint8_t, 32> key{};
  {
    auto store = open_store(dir);
    REQUIRE(store->create_direct("@alice+bob", "alice", "bob", 1).ok());
    auto message = store->append_message("@alice+bob", "alice", id(1), "", 2, "{}");
    REQUIRE(message.ok());
    auto first = store->franking_key();
    REQUIRE(first.ok());
    key = *first;
    CHECK(*store->franking_key() == key);  // created once
    REQUIRE(store->set_block("alice", "bob", true, 3).ok());
    REQUIRE(store->set_block("alice", "carol", true, 3).ok());
    REQUIRE(store->set_block("alice", "carol", false, 4).ok());
    REQUIRE(store->remove_device("alice", "old", 5).ok());
    StoredNotice n;
    n.user = "alice";
    n.device = "phone";
    n.kind = "retry";
    n.channel = "@alice+bob";
    n.seq = message->seq;
    n.client_id = id(1);
    n.from_user = "bob";
    n.from_device = "laptop";
    n.ts = 2;
    n.created = 6;
    auto nid = store->add_notice(n);
    REQUIRE(nid.ok());
    n.created = 7;
    auto second = store->add_notice(n);
    REQUIRE(second.ok());
    CHECK(*second > *nid);
    CHECK(*store->delete_notice("alice", "laptop", *nid) == false);  // another device's
    CHECK(*store->delete_notice("alice", "phone", *nid) == true);
    REQUIRE(store->put_retry("@alice+bob", message->seq, "bob", "laptop", false, 6).ok());
    REQUIRE(store->add_report("@alice+bob", message->seq, "bob", "plain", 7).ok());
    REQUIRE(store->add_verified_report("@alice+bob", message->seq, "bob", "franked", 8, "alice",
                                       "the disclosed text")
                .ok());
  }
  auto store = open_store(dir);
  CHECK(*store->franking_key() == key);
  auto blocks = store->blocks();
  REQUIRE(blocks.ok());
  REQUIRE(blocks->size() == 1);
  CHECK((*blocks)[0] == std::pair<std::string, std::string>{"alice", "bob"});
  CHECK(*store->device_removed("alice", "old"));
  CHECK_FALSE(*store->device_removed("alice", "phone"));
  auto notices = store->notices("alice", "phone", 10);
  REQUIRE(notices->size() == 1);
  CHECK((*notices)[0].channel == "@alice+bob");
  CHECK((*notices)[0].from_device == "laptop");
  CHECK(*store->count_notices("alice", "phone") == 1);
  auto retry = store->retry_state("@alice+bob", 2, "bob", "laptop");
  REQUIRE(retry.ok());
  REQUIRE(retry->has_value());
  CHECK_FALSE((*retry)->resent);
  CHECK((*retry)->rounds == 1);
  CHECK(*store->count_removed_devices("alice") == 1);
  REQUIRE(store->drop_old_notices(100).ok());  // both were recorded before
  CHECK(*store->count_notices("alice", "phone") == 0);
  CHECK_FALSE(store->retry_state("@alice+bob", 2, "bob", "laptop")->has_value());
  auto reports = store->reports(10);
  REQUIRE(reports->size() == 2);
  CHECK((*reports)[0].verified);
  CHECK((*reports)[0].text == "the disclosed text");
  CHECK((*reports)[0].sender == "alice");
  CHECK_FALSE((*reports)[1].verified);
  auto pairs = store->direct_pairs();
  REQUIRE(pairs->size() == 1);
  CHECK((*pairs)[0].creator == "alice");
  CHECK((*pairs)[0].other == "bob");
}

TEST_CASE("store: migration from version 1 to the latest adds a franking key and the new tables") {
  TempDir dir;
  {
    auto db = store::Database::open((dir.path / "server.db").string());
    REQUIRE(db.ok());
    REQUIRE(db->exec(kSchemaV1).ok());
  }
  auto store = open_store(dir);
  CHECK(store->franking_key().ok());
  CHECK(store->blocks()->empty());
  CHECK(store->notices("alice", "phone", 10)->empty());
  CHECK(store->reports(10)->empty());
  CHECK(store->set_block("alice", "bob", true, 1).ok());
}

TEST_CASE("store: a retry counts its rounds; a resend only answers it") {
  TempDir dir;
  auto store = open_store(dir);
  REQUIRE(store->create_direct("@alice+bob", "alice", "bob", 1).ok());
  auto message = store->append_message("@alice+bob", "alice", id(1), "", 2, "{}");
  REQUIRE(message.ok());
  auto state = [&] {
    auto s = store->retry_state("@alice+bob", message->seq, "bob", "laptop");
    REQUIRE(s.ok());
    REQUIRE(s->has_value());
    return **s;
  };
  REQUIRE(store->put_retry("@alice+bob", message->seq, "bob", "laptop", false, 3).ok());
  CHECK(state().rounds == 1);
  CHECK_FALSE(state().resent);
  REQUIRE(store->put_retry("@alice+bob", message->seq, "bob", "laptop", true, 4).ok());
  CHECK(state().rounds == 1);
  CHECK(state().resent);
  REQUIRE(store->put_retry("@alice+bob", message->seq, "bob", "laptop", false, 5).ok());
  CHECK(state().rounds == 2);
  CHECK_FALSE(state().resent);
  // Another device of the same user has its own count.
  REQUIRE(store->put_retry("@alice+bob", message->seq, "bob", "phone", false, 5).ok());
  CHECK((*store->retry_state("@alice+bob", message->seq, "bob", "phone"))->rounds == 1);
  // Removed ids are counted per user.
  CHECK(*store->count_removed_devices("alice") == 0);
  REQUIRE(store->remove_device("alice", "a", 6).ok());
  REQUIRE(store->remove_device("alice", "b", 6).ok());
  REQUIRE(store->remove_device("alice", "a", 7).ok());  // the same id again: one row
  CHECK(*store->count_removed_devices("alice") == 2);
  CHECK(*store->count_removed_devices("bob") == 0);
}
