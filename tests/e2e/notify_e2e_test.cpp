// Notifications end to end: parley-cli --batch processes against a
// parley-server process: /notify, the notification and unread lines, mentions
// on message lines, /unread, and a read on one device of a user clearing the
// count on another (docs/cli.md, docs/notifications.md).
#include <doctest/doctest.h>

#include "harness.hpp"
#include "steps.hpp"

namespace parley_e2e {
namespace {

const Pred kReady = [](const JsonLine& l) { return l.is("state") && l.get("state") == "ready"; };

Pred unread_line(const std::string& channel, std::uint64_t unread, std::uint64_t mentions) {
  return [=](const JsonLine& l) {
    return l.is("unread") && l.get("channel") == channel && l.num("unread") == unread &&
           l.num("mentions") == mentions;
  };
}

// /send, its result and its sent line; returns the seq.
std::uint64_t send_text(Cli& cli, const std::string& channel, const std::string& text) {
  cli.send("/send " + channel + " " + text);
  const std::string id = need(
                             cli, [](const JsonLine& l) { return l.is("pending"); }, "pending")
                             .get("id");
  need(
      cli, [&](const JsonLine& l) { return l.is_result("send") && l.get("id") == id; },
      "the result of /send");
  return need(cli, with_id("sent", id), "sent " + id).num("seq");
}

Pred message_at(const std::string& channel, std::uint64_t seq) {
  return [=](const JsonLine& l) {
    return l.is("message") && l.get("channel") == channel && l.num("seq") == seq;
  };
}

}  // namespace

TEST_CASE("notifications through parley-cli: levels, mentions, unread counts, two devices") {
  World w;
  // bob on two devices: two processes, two data directories.
  Cli alice(w.server.url(), w.alice, w.data("alice"));
  Cli phone(w.server.url(), w.bob, w.data("bob-phone"));
  REQUIRE(alice.started());
  REQUIRE(phone.started());
  need(alice, kReady, "alice ready");
  need(phone, kReady, "bob's phone ready");

  // Bad arguments.
  for (const auto& [command, part] :
       {std::pair<std::string, std::string>{"/notify quiet", "usage: /notify CHANNEL"},
        {"/notify quiet loud", "level \"loud\""},
        {"/notify quiet all soon", "seconds \"soon\""},
        {"/notify quiet all 1 2", "usage: /notify CHANNEL"},
        {"/unread now", "/unread takes no arguments"}}) {
    const JsonLine e = refused(phone, command);
    INFO(command << " answered " << e.raw);
    CHECK(e.get("code") == "bad_command");
    CHECK(e.get("message").find(part) != std::string::npos);
  }

  ok(alice, "/create quiet", "create");
  ok(phone, "/join quiet", "join");
  JsonLine set = ok(phone, "/notify quiet mentions", "notify");
  CHECK(set.get("channel") == "quiet");
  CHECK(set.get("level") == "mentions");
  CHECK_FALSE(set.has("seconds"));
  JsonLine changed = need(
      phone, [](const JsonLine& l) { return l.is("notify"); }, "the notify line");
  CHECK(changed.get("channel") == "quiet");
  CHECK(changed.get("level") == "mentions");
  CHECK_FALSE(changed.has("mute_until"));

  // A plain message does not notify; a mention does.
  const std::uint64_t plain = send_text(alice, "quiet", "nothing special");
  const JsonLine plain_line = need(phone, message_at("quiet", plain), "the plain message");
  CHECK_FALSE(plain_line.has("mentions"));
  need(phone, unread_line("quiet", 1, 0), "unread 1");
  const std::uint64_t mention = send_text(alice, "quiet", "@bob and @here, look");
  const JsonLine mention_line = need(phone, message_at("quiet", mention), "the mention");
  CHECK(mention_line.get("mentions") == "bob,@here");
  const JsonLine note = need(
      phone, [](const JsonLine& l) { return l.is("notification"); }, "a notification");
  CHECK(note.get("channel") == "quiet");
  CHECK(note.get("kind") == "mention");
  CHECK(note.num("seq") == mention);
  CHECK(note.get("sender") == "alice");
  need(phone, unread_line("quiet", 2, 1), "unread 2, 1 mention");

  // A second device of bob's starts with the counts and the level.
  Cli laptop(w.server.url(), w.bob, w.data("bob-laptop"));
  REQUIRE(laptop.started());
  need(laptop, kReady, "bob's laptop ready");
  need(laptop, unread_line("quiet", 2, 1), "the laptop's counts from its welcome");
  JsonLine level = need(
      laptop, [](const JsonLine& l) { return l.is("notify"); }, "the laptop's level");
  CHECK(level.get("level") == "mentions");
  laptop.send("/unread");
  need(laptop, unread_line("quiet", 2, 1), "/unread's line");
  JsonLine total = need(
      laptop, [](const JsonLine& l) { return l.is("unread_total"); }, "/unread's total");
  CHECK(total.num("unread") == 2);
  CHECK(total.num("mentions") == 1);
  JsonLine listed = need(
      laptop, [](const JsonLine& l) { return l.is_result("unread"); }, "/unread's result");
  CHECK(listed.num("count") == 1);

  // Reading on the laptop (new here, it starts at the channel's end; history
  // loads on demand) clears the phone's count.
  ok(laptop, "/read quiet", "read");
  need(phone, unread_line("quiet", 0, 0), "the phone's count cleared");
  phone.send("/unread");
  need(phone, unread_line("quiet", 0, 0), "/unread after the read");
  total = need(
      phone, [](const JsonLine& l) { return l.is("unread_total"); }, "/unread's total");
  CHECK(total.num("unread") == 0);
  CHECK(total.num("mentions") == 0);

  // A mute set on the phone reaches the laptop.
  JsonLine muted = ok(phone, "/notify quiet all 3600", "notify");
  CHECK(muted.num("seconds") == 3600);
  JsonLine told = need(
      laptop, [](const JsonLine& l) { return l.is("notify") && l.get("level") == "all"; },
      "the laptop hears of the mute");
  CHECK(told.get("mute_until").find('T') != std::string::npos);

  CHECK(alice.finish() == 0);
  CHECK(phone.finish() == 0);
  CHECK(laptop.finish() == 0);
  CHECK(phone.bad_lines().empty());
  CHECK(laptop.bad_lines().empty());
  // The plain message never notified the phone.
  for (const JsonLine& l : phone.lines()) {
    if (l.is("notification")) CHECK(l.num("seq") != plain);
  }
}

}  // namespace parley_e2e
