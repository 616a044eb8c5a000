// The cache's view of notifications (schema 5): unread and mention counts and
// the notification level per channel, the migration that adds them, and the
// mentions of messages read back from the cache.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>

#include "store/cache.hpp"
#include "store/sqlite.hpp"

namespace fs = std::filesystem;
using parley::EventKind;
using parley::Message;
using parley::NotificationLevel;
using parley::store::Cache;

namespace {
struct Dir {
  Dir() {
    std::string tmpl = (fs::temp_directory_path() / "parley-notify-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~Dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};

Message text_message(const std::string& channel, std::uint64_t seq, const std::string& text) {
  Message m;
  m.channel = channel;
  m.seq = seq;
  m.kind = EventKind::message;
  m.sender = "bob";
  m.id = std::string(31, 'a') + static_cast<char>('0' + seq % 10);
  m.text = text;
  m.ts_ms = 1000 + static_cast<std::int64_t>(seq);
  return m;
}
}  // namespace

TEST_CASE("counts and level of a channel: defaults, changes, and whether they changed") {
  Dir dir;
  auto cache = Cache::open(dir.path.string(), "alice");
  REQUIRE(cache.ok());
  auto& c = **cache;
  CHECK_FALSE(c.notify_state("g")->has_value());
  // Only existing rows change.
  CHECK_FALSE(*c.set_unread("g", 3, 1));
  CHECK_FALSE(c.notify_state("g")->has_value());

  REQUIRE(c.upsert_channel("g", 5, true).ok());
  auto row = c.notify_state("g");
  REQUIRE(row->has_value());
  CHECK((*row)->unread == 0);
  CHECK((*row)->mentions == 0);
  CHECK((*row)->level == NotificationLevel::all);
  CHECK((*row)->mute_until == 0);

  CHECK(*c.set_unread("g", 3, 1));
  CHECK_FALSE(*c.set_unread("g", 3, 1));  // the same: no change
  CHECK(*c.set_unread("g", 3, 2));
  CHECK(*c.set_notify_level("g", NotificationLevel::mentions, 0));
  CHECK_FALSE(*c.set_notify_level("g", NotificationLevel::mentions, 0));
  CHECK(*c.set_notify_level("g", NotificationLevel::mentions, 1'900'000'000'000));
  row = c.notify_state("g");
  CHECK((*row)->unread == 3);
  CHECK((*row)->mentions == 2);
  CHECK((*row)->level == NotificationLevel::mentions);
  CHECK((*row)->mute_until == 1'900'000'000'000);

  REQUIRE(c.upsert_channel("h", 1, true).ok());
  REQUIRE(c.set_member("h", false).ok());
  auto all = c.notify_states();
  REQUIRE(all.ok());
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].channel == "g");
  CHECK((*all)[0].member);
  CHECK((*all)[1].channel == "h");
  CHECK_FALSE((*all)[1].member);
}

TEST_CASE("counts and level survive closing the cache") {
  Dir dir;
  {
    auto cache = Cache::open(dir.path.string(), "alice");
    REQUIRE(cache.ok());
    REQUIRE((*cache)->upsert_channel("g", 9, true).ok());
    REQUIRE((*cache)->set_unread("g", 7, 2).ok());
    REQUIRE((*cache)->set_notify_level("g", NotificationLevel::none, 0).ok());
  }
  auto cache = Cache::open(dir.path.string(), "alice");
  REQUIRE(cache.ok());
  auto row = (*cache)->notify_state("g");
  REQUIRE(row->has_value());
  CHECK((*row)->unread == 7);
  CHECK((*row)->mentions == 2);
  CHECK((*row)->level == NotificationLevel::none);
}

TEST_CASE("a version 4 cache migrates to version 5 keeping its channels, with zero counts") {
  Dir dir;
  {
    auto cache = Cache::open(dir.path.string(), "alice");
    REQUIRE(cache.ok());
    REQUIRE((*cache)->upsert_channel("g", 2, true).ok());
    REQUIRE((*cache)->advance_cursor("g", 2).ok());
    REQUIRE((*cache)->store_events({text_message("g", 1, "hi @alice")}).ok());
  }
  {
    // As schema 4 left it: none of the notification columns.
    auto db = parley::store::Database::open((dir.path / "parley.db").string());
    REQUIRE(db.ok());
    REQUIRE(db->exec("ALTER TABLE channels DROP COLUMN unread; "
                     "ALTER TABLE channels DROP COLUMN mentions; "
                     "ALTER TABLE channels DROP COLUMN notify_level; "
                     "ALTER TABLE channels DROP COLUMN mute_until; "
                     // and of end-to-end encryption (schema 6)
                     "DROP TABLE e2e_franking; DROP TABLE e2e_device_lists; DROP TABLE e2e_recipients; "  // schema 8
                     "DROP INDEX messages_e2e_by_id; "  // schema 7
                     "ALTER TABLE messages DROP COLUMN e2e; "
                     "ALTER TABLE messages DROP COLUMN e2e_error; "
                     "DROP TABLE e2e_sessions; DROP TABLE e2e_devices; "
                     "DROP TABLE e2e_verified; DROP TABLE e2e_outgoing; "
                     "PRAGMA user_version = 4")
                .ok());
  }
  auto cache = Cache::open(dir.path.string(), "alice");
  REQUIRE_MESSAGE(cache.ok(), cache.status().to_string());
  auto& c = **cache;
  {
    auto db = parley::store::Database::open((dir.path / "parley.db").string());
    REQUIRE(db.ok());
    CHECK(*db->user_version() == Cache::kSchemaVersion);
  }
  auto info = c.channel("g");
  REQUIRE(info->has_value());
  CHECK((*info)->read_to == 2);
  auto row = c.notify_state("g");
  REQUIRE(row->has_value());
  CHECK((*row)->unread == 0);
  CHECK((*row)->level == NotificationLevel::all);
  CHECK(*c.set_unread("g", 1, 1));
  auto back = c.events("g", 1, 1);
  REQUIRE(back.ok());
  REQUIRE(back->size() == 1);
  CHECK(back->front().text == "hi @alice");
}

TEST_CASE("messages read back from the cache carry their mentions; deleted ones none") {
  Dir dir;
  auto cache = Cache::open(dir.path.string(), "alice");
  REQUIRE(cache.ok());
  auto& c = **cache;
  REQUIRE(c.upsert_channel("g", 3, true).ok());
  Message system = text_message("g", 3, "@alice maintenance");
  system.kind = EventKind::system;
  system.id.clear();
  REQUIRE(c.store_events({text_message("g", 1, "hey @alice and @here."),
                          text_message("g", 2, "@bob gone soon"), system})
              .ok());
  REQUIRE(c.mark_deleted("g", 2).ok());
  auto events = c.events("g", 1, 3);
  REQUIRE(events.ok());
  REQUIRE(events->size() == 3);
  const Message& first = (*events)[0];
  REQUIRE(first.mentions.size() == 2);
  CHECK(first.mentions[0] == parley::Mention{4, 6, "alice"});
  CHECK(first.mentions[1] == parley::Mention{15, 5, "@here"});
  CHECK((*events)[1].deleted);
  CHECK((*events)[1].mentions.empty());
  CHECK((*events)[2].mentions.empty());  // only text messages have mentions
  auto latest = c.latest_messages("g", 0, 10);
  REQUIRE(latest.ok());
  REQUIRE(latest->size() == 2);
  CHECK(latest->front().mentions == first.mentions);
}
