// The cache's view of group channels: kinds, roles, mutes, metadata, members
// with roles, deleted messages, and the fields of the new event kinds.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>

#include "store/cache.hpp"
#include "store/sqlite.hpp"

namespace fs = std::filesystem;
using parley::ChannelKind;
using parley::ChannelMeta;
using parley::EventKind;
using parley::Message;
using parley::Role;
using parley::store::Cache;

namespace {
struct Dir {
  Dir() {
    std::string tmpl = (fs::temp_directory_path() / "parley-channels-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~Dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};

Message event(const std::string& channel, std::uint64_t seq, EventKind kind,
              const std::string& sender) {
  Message m;
  m.channel = channel;
  m.seq = seq;
  m.kind = kind;
  m.sender = sender;
  m.ts_ms = 1000 + static_cast<std::int64_t>(seq);
  return m;
}
}  // namespace

TEST_CASE("kind, own role and mute of a channel") {
  Dir dir;
  auto cache = Cache::open(dir.path.string(), "alice");
  REQUIRE(cache.ok());
  auto& c = **cache;
  CHECK_FALSE(c.channel_access("g")->has_value());
  REQUIRE(c.upsert_channel("g", 1, true).ok());
  auto a = c.channel_access("g");
  REQUIRE(a.ok());
  REQUIRE(a->has_value());
  CHECK((*a)->member);
  CHECK_FALSE((*a)->kind.has_value());  // not known yet
  CHECK_FALSE((*a)->role.has_value());
  CHECK_FALSE((*a)->muted_until.has_value());

  REQUIRE(c.set_channel_kind("g", ChannelKind::broadcast).ok());
  REQUIRE(c.set_my_role("g", Role::moderator).ok());
  REQUIRE(c.set_my_mute("g", 0).ok());
  a = c.channel_access("g");
  CHECK((*a)->kind == ChannelKind::broadcast);
  CHECK((*a)->role == Role::moderator);
  CHECK((*a)->muted_until == 0);  // until lifted

  REQUIRE(c.set_my_mute("g", 123456).ok());
  CHECK((*c.channel_access("g"))->muted_until == 123456);
  REQUIRE(c.set_my_mute("g", std::nullopt).ok());
  REQUIRE(c.set_my_role("g", std::nullopt).ok());
  REQUIRE(c.set_member("g", false).ok());
  a = c.channel_access("g");
  CHECK_FALSE((*a)->member);
  CHECK_FALSE((*a)->role.has_value());
  CHECK_FALSE((*a)->muted_until.has_value());
  CHECK((*a)->kind == ChannelKind::broadcast);

  // Only existing rows change: no channel appears by itself.
  REQUIRE(c.set_channel_kind("other", ChannelKind::direct).ok());
  CHECK_FALSE(c.channel_access("other")->has_value());
}

TEST_CASE("metadata: replaced whole, merged field by field, cleared with an empty string") {
  Dir dir;
  auto cache = Cache::open(dir.path.string(), "alice");
  REQUIRE(cache.ok());
  auto& c = **cache;
  CHECK_FALSE(c.channel_meta("g")->has_value());
  REQUIRE(c.upsert_channel("g", 1, true).ok());
  CHECK(**c.channel_meta("g") == ChannelMeta{});

  ChannelMeta start;
  start.name = "General \"chat\"";
  start.topic = "hello";
  start.data = R"({"a":[1,2],"b":"x"})";
  REQUIRE(c.replace_meta("g", start).ok());
  CHECK(**c.channel_meta("g") == start);

  ChannelMeta change;
  change.topic = "";                  // cleared
  change.description = "what it is";  // set
  change.avatar_url = "https://example.com/a.png";
  REQUIRE(c.merge_meta("g", change).ok());
  auto now = **c.channel_meta("g");
  CHECK(now.name == "General \"chat\"");
  CHECK_FALSE(now.topic.has_value());
  CHECK(now.description == "what it is");
  CHECK(now.avatar_url == "https://example.com/a.png");
  CHECK(now.data == R"({"a":[1,2],"b":"x"})");

  REQUIRE(c.replace_meta("g", ChannelMeta{}).ok());
  CHECK(**c.channel_meta("g") == ChannelMeta{});
  REQUIRE(c.merge_meta("nowhere", change).ok());  // no row: nothing to do
}

TEST_CASE("members keep their roles and mutes when the member list is refreshed") {
  Dir dir;
  auto cache = Cache::open(dir.path.string(), "alice");
  REQUIRE(cache.ok());
  auto& c = **cache;
  REQUIRE(c.upsert_channel("g", 1, true).ok());
  REQUIRE(c.replace_members("g", {{"alice", Role::owner, std::nullopt},
                                  {"bob", Role::member, 5000},
                                  {"carol", std::nullopt, std::nullopt}})
              .ok());
  auto rows = c.members("g");
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 3);
  CHECK((*rows)[0].user == "alice");
  CHECK((*rows)[0].role == Role::owner);
  CHECK((*rows)[1].muted_until == 5000);
  CHECK_FALSE((*rows)[2].role.has_value());

  // The receipts' member list (no roles): carol left, dave came.
  REQUIRE(c.set_members("g", {"alice", "bob", "dave"}).ok());
  rows = c.members("g");
  REQUIRE(rows->size() == 3);
  CHECK((*rows)[0].role == Role::owner);
  CHECK((*rows)[1].user == "bob");
  CHECK((*rows)[1].role == Role::member);
  CHECK((*rows)[1].muted_until == 5000);
  CHECK((*rows)[2].user == "dave");
  CHECK_FALSE((*rows)[2].role.has_value());

  REQUIRE(c.set_member_role("g", "dave", Role::admin).ok());
  REQUIRE(c.set_member_role("g", "erin", Role::member).ok());  // added
  REQUIRE(c.set_member_mute("g", "bob", std::nullopt).ok());
  REQUIRE(c.set_member_mute("g", "dave", 0).ok());
  rows = c.members("g");
  REQUIRE(rows->size() == 4);
  CHECK_FALSE((*rows)[1].muted_until.has_value());
  CHECK((*rows)[2].role == Role::admin);
  CHECK((*rows)[2].muted_until == 0);
  CHECK((*rows)[3].user == "erin");
  // The receipt summary still counts them.
  CHECK(c.receipt_summary("g", 1, "alice")->members == 3);
}

TEST_CASE("the new event kinds' fields survive the cache, and a deletion clears the text") {
  Dir dir;
  auto cache = Cache::open(dir.path.string(), "alice");
  REQUIRE(cache.ok());
  auto& c = **cache;
  std::vector<Message> events;
  Message create = event("g", 1, EventKind::create, "alice");
  create.channel_kind = "private";
  create.meta.name = "G";
  create.meta.data = R"({"k":1})";
  events.push_back(create);
  Message invite = event("g", 2, EventKind::invite, "alice");
  invite.target = "bob";
  events.push_back(invite);
  Message role = event("g", 3, EventKind::role, "alice");
  role.target = "bob";
  role.role = "moderator";
  events.push_back(role);
  Message text = event("g", 4, EventKind::message, "bob");
  text.id = std::string(32, 'a');
  text.text = "regrettable";
  events.push_back(text);
  Message mute = event("g", 5, EventKind::mute, "alice");
  mute.target = "bob";
  mute.until_ms = 99999;
  events.push_back(mute);
  Message meta = event("g", 6, EventKind::meta, "alice");
  meta.meta.topic = "";
  meta.meta.description = "d";
  events.push_back(meta);
  Message deletion = event("g", 7, EventKind::deletion, "alice");
  deletion.ref = 4;
  events.push_back(deletion);
  Message gone = event("g", 8, EventKind::message, "carol");
  gone.id = std::string(32, 'b');
  gone.deleted = true;  // as history returns a message deleted since
  events.push_back(gone);
  REQUIRE(*c.store_events(events) == 8);
  REQUIRE(c.mark_deleted("g", 4).ok());
  REQUIRE(c.mark_deleted("g", 100).ok());  // not stored: nothing to do

  auto back = c.events("g", 1, 8);
  REQUIRE(back.ok());
  REQUIRE(back->size() == 8);
  const auto& b = *back;
  CHECK(b[0].channel_kind == "private");
  CHECK(b[0].meta.name == "G");
  CHECK(b[0].meta.data == R"({"k":1})");
  CHECK_FALSE(b[0].meta.topic.has_value());
  CHECK(b[1].target == "bob");
  CHECK(b[2].role == "moderator");
  CHECK(b[3].deleted);
  CHECK(b[3].text.empty());
  CHECK(b[3].id == std::string(32, 'a'));
  CHECK(b[4].until_ms == 99999);
  CHECK(b[5].meta.topic == "");  // cleared, not absent
  CHECK(b[5].meta.description == "d");
  CHECK_FALSE(b[5].meta.name.has_value());
  CHECK(b[6].ref == 4);
  CHECK_FALSE(b[6].deleted);
  CHECK(b[7].deleted);
  for (std::size_t i = 1; i < b.size(); ++i) {
    if (b[i].kind != EventKind::create && b[i].kind != EventKind::meta) {
      CHECK(b[i].meta == ChannelMeta{});
    }
  }

  auto latest = c.latest_messages("g", 0, 10);
  REQUIRE(latest.ok());
  REQUIRE(latest->size() == 2);
  CHECK((*latest)[0].seq == 4);
  CHECK((*latest)[0].deleted);
  CHECK((*latest)[0].text.empty());
}

TEST_CASE("a version 3 cache migrates to version 4 keeping its channels and events") {
  Dir dir;
  {
    auto cache = Cache::open(dir.path.string(), "alice");
    REQUIRE(cache.ok());
    REQUIRE((*cache)->upsert_channel("g", 2, true).ok());
    Message m = event("g", 1, EventKind::message, "bob");
    m.id = std::string(32, 'c');
    m.text = "from before";
    REQUIRE((*cache)->store_events({m}).ok());
    REQUIRE((*cache)->set_members("g", {"alice", "bob"}).ok());
  }
  {
    // As schema 3 left it: none of the columns of group channels.
    auto db = parley::store::Database::open((dir.path / "parley.db").string());
    REQUIRE(db.ok());
    REQUIRE(db->exec("ALTER TABLE channels DROP COLUMN kind; "
                     "ALTER TABLE channels DROP COLUMN role; "
                     "ALTER TABLE channels DROP COLUMN muted_until; "
                     "ALTER TABLE channels DROP COLUMN meta; "
                     // and of notifications (schema 5)
                     "ALTER TABLE channels DROP COLUMN unread; "
                     "ALTER TABLE channels DROP COLUMN mentions; "
                     "ALTER TABLE channels DROP COLUMN notify_level; "
                     "ALTER TABLE channels DROP COLUMN mute_until; "
                     "ALTER TABLE members DROP COLUMN role; "
                     "ALTER TABLE members DROP COLUMN muted_until; "
                     "ALTER TABLE messages DROP COLUMN deleted; "
                     "ALTER TABLE messages DROP COLUMN target; "
                     "ALTER TABLE messages DROP COLUMN role; "
                     "ALTER TABLE messages DROP COLUMN until_ms; "
                     "ALTER TABLE messages DROP COLUMN ref; "
                     "ALTER TABLE messages DROP COLUMN channel_kind; "
                     "ALTER TABLE messages DROP COLUMN meta; "
                     // and of end-to-end encryption (schema 6)
                     "DROP TABLE e2e_franking; DROP TABLE e2e_device_lists; DROP TABLE e2e_recipients; "  // schema 8
                     "DROP INDEX messages_e2e_by_id; "  // schema 7
                     "ALTER TABLE messages DROP COLUMN e2e; "
                     "ALTER TABLE messages DROP COLUMN e2e_error; "
                     "DROP TABLE e2e_sessions; DROP TABLE e2e_devices; "
                     "DROP TABLE e2e_verified; DROP TABLE e2e_outgoing; "
                     "PRAGMA user_version = 3")
                .ok());
  }
  auto cache = Cache::open(dir.path.string(), "alice");
  REQUIRE_MESSAGE(cache.ok(), cache.status().to_string());
  auto& c = **cache;
  auto back = c.events("g", 1, 1);
  REQUIRE(back.ok());
  REQUIRE(back->size() == 1);
  CHECK(back->front().text == "from before");
  CHECK_FALSE(back->front().deleted);
  auto a = c.channel_access("g");
  REQUIRE(a->has_value());
  CHECK((*a)->member);
  CHECK_FALSE((*a)->kind.has_value());  // learnt from the next welcome
  CHECK(c.members("g")->size() == 2);
  CHECK(**c.channel_meta("g") == ChannelMeta{});
}
