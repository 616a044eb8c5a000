// Presence end to end: parley-cli --batch processes against a parley-server
// process run with a short grace period: /watch with notify, /status with
// text, a disconnect shown as offline with last seen, /presence, /unwatch,
// invisible, and the bad-command messages (docs/cli.md, docs/presence.md).
#include <doctest/doctest.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <tuple>

#include "harness.hpp"
#include "steps.hpp"

namespace parley_e2e {
namespace {

const Pred kReady = [](const JsonLine& l) { return l.is("state") && l.get("state") == "ready"; };

Pred presence_of(const std::string& user, const std::string& status) {
  return [=](const JsonLine& l) {
    return l.is("presence") && l.get("user") == user && l.get("status") == status;
  };
}

// "2026-03-01T09:30:12.345Z".
bool is_iso8601(const std::string& s) {
  if (s.size() != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || s[19] != '.' || s[23] != 'Z') {
    return false;
  }
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22}) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return buf;
}

}  // namespace

TEST_CASE("presence through parley-cli: watch, status text, offline with last seen, /presence") {
  World w({"--presence-grace", "0.5"});
  Cli alice(w.server.url(), w.alice, w.data("alice"));
  REQUIRE(alice.started());
  need(alice, kReady, "alice ready");

  // Bad arguments, refused by the CLI or the SDK before anything is sent.
  for (const auto& [command, code, part] :
       {std::tuple<std::string, std::string, std::string>{"/presence", "bad_command",
                                                          "usage: /presence USER..."},
        {"/watch", "bad_command", "usage: /watch USER [notify]"},
        {"/watch bob loudly", "bad_command", "usage: /watch USER [notify]"},
        {"/unwatch bob carol", "bad_command", "usage: /unwatch USER"},
        {"/status", "bad_command", "usage: /status"},
        {"/status busy", "bad_command", "status \"busy\": expected online, away, invisible"},
        {"/status hide-last-seen maybe", "bad_command", "usage: /status hide-last-seen on|off"},
        {"/presence bad!name", "invalid_user", "bad!name"},
        {"/status away " + std::string(257, 'x'), "invalid_text", "257 bytes"}}) {
    const JsonLine e = refused(alice, command);
    INFO(command << " answered " << e.raw);
    CHECK(e.get("code") == code);
    CHECK(e.get("message").find(part) != std::string::npos);
  }

  // bob has never connected: the snapshot says offline, never seen.
  alice.send("/watch bob notify");
  const JsonLine snapshot = need(alice, presence_of("bob", "offline"), "bob's snapshot");
  CHECK(snapshot.is_null("last_seen"));
  CHECK(snapshot.is_null("text"));
  const JsonLine watched = need(
      alice, [](const JsonLine& l) { return l.is_result("watch"); }, "the result of /watch");
  CHECK(watched.get("user") == "bob");
  CHECK(watched.get("notify") == "true");
  CHECK(index_of(alice, snapshot) < index_of(alice, watched));

  // bob connects: online, and the notification alice asked for.
  auto bob = std::make_unique<Cli>(w.server.url(), w.bob, w.data("bob"));
  REQUIRE(bob->started());
  need(*bob, kReady, "bob ready");
  const JsonLine online = need(alice, presence_of("bob", "online"), "bob online");
  CHECK(online.is_null("last_seen"));
  const JsonLine note = need(
      alice, [](const JsonLine& l) { return l.is("presence_notification"); }, "the notification");
  CHECK(note.get("user") == "bob");
  CHECK(note.fields.size() == 2);  // event and user

  // Custom status text with away.
  JsonLine set = ok(*bob, "/status away on a train", "status");
  CHECK(set.get("status") == "away");
  CHECK(set.get("text") == "on a train");
  const JsonLine away = need(alice, presence_of("bob", "away"), "bob away");
  CHECK(away.get("text") == "on a train");
  CHECK(away.is_null("last_seen"));
  // Bob's own line shows his presence too.
  need(*bob, presence_of("bob", "away"), "bob's own presence");

  // bob quits: offline after the grace period, with when he was last seen.
  const std::string before = utc_now();
  REQUIRE(bob->finish() == 0);
  bob.reset();
  const JsonLine offline = need(alice, presence_of("bob", "offline"), "bob offline", 10s);
  INFO(offline.raw);
  CHECK(is_iso8601(offline.get("last_seen")));
  CHECK(offline.get("last_seen").substr(0, 19) >= before);
  CHECK(offline.get("text") == "on a train");
  CHECK(offline.fields.size() == 5);  // event, user, status, last_seen, text

  // /presence: one line per user asked, in order, then the result.
  alice.send("/presence bob carol");
  const JsonLine bob_now = need(alice, presence_of("bob", "offline"), "/presence bob");
  CHECK(bob_now.get("last_seen") == offline.get("last_seen"));
  const JsonLine carol_now = need(alice, presence_of("carol", "offline"), "/presence carol");
  CHECK(carol_now.is_null("last_seen"));
  CHECK(carol_now.is_null("text"));
  const JsonLine listed = need(
      alice, [](const JsonLine& l) { return l.is_result("presence"); }, "the result of /presence");
  CHECK(listed.num("count") == 2);
  CHECK(index_of(alice, carol_now) < index_of(alice, listed));

  // Unwatched: bob's next visit is not reported to alice.
  JsonLine unwatched = ok(alice, "/unwatch bob", "unwatch");
  CHECK(unwatched.get("user") == "bob");
  {
    Cli again(w.server.url(), w.bob, w.data("bob"));
    REQUIRE(again.started());
    need(again, kReady, "bob ready again");
    ok(again, "/sleep 700", "sleep");
    REQUIRE(again.finish() == 0);
  }

  // Invisible: alice's own line says so; /status hide-last-seen answers.
  alice.send("/status invisible");
  need(
      alice, [](const JsonLine& l) { return l.is_result("status"); }, "/status invisible");
  const JsonLine self = need(
      alice,
      [](const JsonLine& l) {
        return l.is("presence") && l.get("user") == "alice" && l.has("invisible");
      },
      "alice's own presence, invisible");
  CHECK(self.get("invisible") == "true");
  CHECK(self.get("status") == "online");  // her own devices see the truth
  JsonLine hidden = ok(alice, "/status hide-last-seen on", "status");
  CHECK(hidden.get("hide_last_seen") == "true");
  CHECK_FALSE(hidden.has("status"));

  ok(alice, "/sleep 700", "sleep");
  REQUIRE(alice.finish() == 0);
  CHECK(alice.bad_lines().empty());
  const auto& lines = alice.lines();
  for (std::size_t i = index_of(alice, unwatched) + 1; i < lines.size(); ++i) {
    CHECK_MESSAGE(!(lines[i].is("presence") && lines[i].get("user") == "bob"),
                  "bob's presence after /unwatch: " << lines[i].raw);
  }
}

}  // namespace parley_e2e
