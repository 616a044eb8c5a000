// Group channels end to end: parley-cli --batch processes against a
// parley-server process, the group commands and the JSON lines they and
// their events print (docs/cli.md, "Group channels").
#include <doctest/doctest.h>

#include <algorithm>
#include <map>

#include "harness.hpp"
#include "steps.hpp"

namespace parley_e2e {
namespace {

Pred member_line(const std::string& action, const std::string& user) {
  return [=](const JsonLine& l) {
    return l.is("member") && l.get("action") == action && l.get("user") == user;
  };
}

// A command that must fail with bad_command, naming `part` in its message.
void bad(Cli& cli, const std::string& command, const std::string& part) {
  const JsonLine e = refused(cli, command);
  INFO(command << " answered " << e.raw);
  CHECK(e.get("code") == "bad_command");
  CHECK(e.get("message").find(part) != std::string::npos);
}

// /send: its pending line and its result; returns the message id.
std::string send_text(Cli& cli, const std::string& channel, const std::string& text) {
  cli.send("/send " + channel + " " + text);
  const std::string id = need(
                             cli, [](const JsonLine& l) { return l.is("pending"); }, "pending")
                             .get("id");
  need(
      cli, [&](const JsonLine& l) { return l.is_result("send") && l.get("id") == id; },
      "the result of /send");
  return id;
}

}  // namespace

TEST_CASE("group commands through parley-cli: kinds, invitations, roles, moderation") {
  World w;
  const std::string carol_token = mint_token(w.key, "carol");
  REQUIRE(!carol_token.empty());
  Cli alice(w.server.url(), w.alice, w.data("alice"));
  Cli bob(w.server.url(), w.bob, w.data("bob"));
  Cli carol(w.server.url(), carol_token, w.data("carol"));
  REQUIRE(alice.started());
  REQUIRE(bob.started());
  REQUIRE(carol.started());
  const Pred ready = [](const JsonLine& l) { return l.is("state") && l.get("state") == "ready"; };
  need(bob, ready, "bob ready");
  need(carol, ready, "carol ready");

  // Bad arguments: a clear error naming what was wrong; nothing is sent.
  bad(alice, "/create club secret", "kind \"secret\"");
  bad(alice, "/invite club", "usage: /invite CHANNEL USER");
  bad(alice, "/ban club bob soon", "seconds \"soon\"");
  bad(alice, "/role club bob king", "role \"king\"");
  bad(alice, "/delete club zero", "seq \"zero\"");
  bad(alice, "/report club 3", "usage: /report CHANNEL SEQ REASON");
  CHECK(refused(alice, "/invite club bad*user").get("code") == "invalid_user");
  CHECK(refused(alice, "/create @mine").get("code") == "invalid_name");

  // A private channel; bob is invited and hears of it.
  JsonLine created = ok(alice, "/create club private", "create");
  CHECK(created.get("channel") == "club");
  CHECK(created.get("kind") == "private");
  CHECK(refused(bob, "/join club").get("code") == "forbidden");
  JsonLine invited = ok(alice, "/invite club bob", "invite");
  CHECK(invited.get("channel") == "club");
  CHECK(invited.get("user") == "bob");
  const std::uint64_t invite_seq = invited.num("seq");
  CHECK(invite_seq > 1);
  JsonLine echo = need(alice, member_line("invite", "bob"), "alice's own invite event");
  CHECK(echo.get("by") == "alice");
  CHECK(echo.num("seq") == invite_seq);
  JsonLine told = need(bob, member_line("invite", "bob"), "bob's invitation");
  CHECK(told.get("channel") == "club");
  CHECK(told.get("by") == "alice");
  CHECK(told.num("seq") == invite_seq);

  // Topic: an event with the changed field.
  JsonLine topic = ok(alice, "/topic club plans for friday", "topic");
  CHECK(topic.num("seq") == invite_seq + 1);
  JsonLine meta = need(
      bob, [](const JsonLine& l) { return l.is("meta"); }, "the topic change");
  CHECK(meta.get("channel") == "club");
  CHECK(meta.get("user") == "alice");
  CHECK(meta.get("topic") == "plans for friday");
  CHECK_FALSE(meta.has("name"));

  // A role.
  JsonLine role = ok(alice, "/role club bob moderator", "role");
  CHECK(role.get("role") == "moderator");
  JsonLine promoted = need(bob, member_line("role", "bob"), "bob's new role");
  CHECK(promoted.get("role") == "moderator");

  // Delete: the text goes, from the server and from bob's history.
  const std::string regret_id = send_text(bob, "club", "something to regret");
  const JsonLine sent = need(bob, with_id("sent", regret_id), "sent");
  const std::uint64_t regret = sent.num("seq");
  need(alice, with_id("message", regret_id), "bob's message at alice");
  JsonLine deleted = ok(alice, "/delete club " + std::to_string(regret), "delete");
  CHECK(deleted.num("ref") == regret);
  CHECK(deleted.num("seq") > regret);
  JsonLine deletion = need(
      bob, [](const JsonLine& l) { return l.is("delete"); }, "the deletion");
  CHECK(deletion.num("ref") == regret);
  CHECK(deletion.get("user") == "alice");
  JsonLine history = ok(bob, "/history club 5", "history");
  CHECK(history.num("count") == 1);
  const JsonLine& shown = bob.lines()[index_of(bob, history) - 1];
  CHECK(shown.is("message"));
  CHECK(shown.num("seq") == regret);
  CHECK(shown.get("text") == "");
  CHECK(shown.get("deleted") == "true");

  // Pin and report.
  const std::string keep_id = send_text(bob, "club", "pin me");
  const JsonLine keep = need(bob, with_id("sent", keep_id), "sent");
  JsonLine pinned = ok(alice, "/pin club " + std::to_string(keep.num("seq")), "pin");
  CHECK(pinned.num("ref") == keep.num("seq"));
  JsonLine pin = need(
      bob, [](const JsonLine& l) { return l.is("pin"); }, "the pin");
  CHECK(pin.get("pinned") == "true");
  JsonLine report =
      ok(bob, "/report club " + std::to_string(keep.num("seq")) + " just testing", "report");
  CHECK(report.num("ref") == keep.num("seq"));

  // Mute: bob's message is refused with muted, for good.
  JsonLine muted = ok(alice, "/mute club bob 60", "mute");
  CHECK(muted.num("seconds") == 60);
  JsonLine mute = need(bob, member_line("mute", "bob"), "bob's mute");
  CHECK(mute.has("until"));
  const std::string muted_id = send_text(bob, "club", "am I muted");
  JsonLine refusal = need(bob, with_id("error", muted_id), "the refusal");
  CHECK(refusal.get("code") == "muted");
  ok(alice, "/unmute club bob", "unmute");
  need(bob, member_line("unmute", "bob"), "bob's unmute");

  // Members and their roles.
  JsonLine members = ok(alice, "/members club", "members");
  CHECK(members.num("count") == 2);
  CHECK(members.get("kind") == "private");
  CHECK(members.get("topic") == "plans for friday");
  const auto& lines = alice.lines();
  const std::size_t end = index_of(alice, members);
  std::map<std::string, std::string> roles;
  for (std::size_t i = 0; i < end; ++i) {
    if (lines[i].is("channel_member") && lines[i].get("channel") == "club") {
      roles[lines[i].get("user")] = lines[i].get("role");
    }
  }
  CHECK(roles["alice"] == "owner");
  CHECK(roles["bob"] == "moderator");

  // A direct channel: each side names it "@" and the other user.
  alice.send("/dm carol hello carol");
  const JsonLine dm_pending = need(
      alice, [](const JsonLine& l) { return l.is("pending"); }, "the direct message pending");
  CHECK(dm_pending.get("channel") == "@carol");
  JsonLine dm = need(
      alice, [](const JsonLine& l) { return l.is_result("dm"); }, "/dm's result");
  CHECK(dm.get("channel") == "@carol");
  CHECK(dm.get("user") == "carol");
  CHECK(dm.get("id") == dm_pending.get("id"));
  CHECK(need(alice, with_id("sent", dm_pending.get("id")), "the direct message sent")
            .get("channel") == "@carol");
  JsonLine live = need(carol, with_id("message", dm_pending.get("id")), "the direct message");
  CHECK(live.get("channel") == "@alice");
  CHECK(live.get("e2e") == "true");
  JsonLine back = ok(carol, "/dm alice", "dm");
  CHECK(back.get("channel") == "@alice");
  JsonLine carol_history = ok(carol, "/history @alice 5", "history");
  CHECK(carol_history.get("channel") == "@alice");
  CHECK(carol_history.num("count") == 1);
  const JsonLine& hello = carol.lines()[index_of(carol, carol_history) - 1];
  CHECK(hello.get("text") == "hello carol");
  CHECK(hello.get("sender") == "alice");
  CHECK(carol.finish() == 0);
  CHECK(carol.bad_lines().empty());

  // Kick, then ban from a public channel: bob is told and his sends fail.
  ok(alice, "/kick club bob", "kick");
  need(bob, member_line("remove", "bob"), "bob's removal");
  const std::string kicked_id = send_text(bob, "club", "let me back");
  CHECK(need(bob, with_id("error", kicked_id), "the refusal").get("code") == "not_member");
  ok(alice, "/create square", "create");
  ok(bob, "/join square", "join");
  JsonLine ban = ok(alice, "/ban square bob", "ban");
  CHECK_FALSE(ban.has("seconds"));
  JsonLine banned = need(bob, member_line("ban", "bob"), "bob's ban");
  CHECK(banned.get("channel") == "square");
  CHECK_FALSE(banned.has("until"));
  CHECK(refused(bob, "/join square").get("code") == "banned");

  CHECK(alice.finish() == 0);
  CHECK(bob.finish() == 0);
  CHECK(alice.bad_lines().empty());
  CHECK(bob.bad_lines().empty());
}

}  // namespace parley_e2e
