// End to end: typing indicators and delivery and read receipts between two
// parley-cli --batch users through a real parley-server (docs/cli.md).
#include <doctest/doctest.h>

#include <algorithm>

#include "harness.hpp"
#include "steps.hpp"

namespace parley_e2e {
namespace {

Pred typing(const std::string& user, bool active) {
  return [=](const JsonLine& l) {
    return l.is("typing") && l.get("channel") == "general" && l.get("user") == user &&
           l.get("active") == (active ? "true" : "false");
  };
}

Pred receipt(const std::string& user, const std::string& kind, std::uint64_t seq) {
  return [=](const JsonLine& l) {
    return l.is("receipt") && l.get("channel") == "general" && l.get("user") == user &&
           l.get("kind") == kind && l.num("seq") == seq;
  };
}

// alice creates general, bob joins it, and alice has seen him join.
void meet(Cli& alice, Cli& bob) {
  ok(alice, "/create general", "create");
  ok(bob, "/join general", "join");
  need(
      alice,
      [](const JsonLine& l) {
        return l.is("member") && l.get("user") == "bob" && l.get("action") == "join";
      },
      "bob's join");
}

}  // namespace

TEST_CASE("two CLI users see each other's typing, which stops by itself or with a message") {
  World w;
  Cli alice(w.server.url(), w.alice, w.data("alice"));
  Cli bob(w.server.url(), w.bob, w.data("bob"));
  meet(alice, bob);

  // Nobody refreshes it: it expires at bob's after about 5 s.
  const JsonLine result = ok(alice, "/typing general", "typing");
  CHECK(result.get("channel") == "general");
  need(bob, typing("alice", true), "alice typing");
  need(bob, typing("alice", false), "alice no longer typing", 15s);

  // The other way, ended by the message.
  ok(bob, "/typing general", "typing");
  need(alice, typing("bob", true), "bob typing");
  exchange(bob, "bob", alice, "done typing");
  need(alice, typing("bob", false), "bob no longer typing", 15s);

  CHECK(refused(alice, "/typing").get("code") == "bad_command");
  CHECK(refused(alice, "/typing gen eral").get("code") == "bad_command");
  CHECK(refused(alice, "/typing " + std::string(65, 'x')).get("code") == "invalid_name");
  CHECK(alice.finish() == 0);
  CHECK(bob.finish() == 0);
  CHECK(alice.bad_lines().empty());
  CHECK(bob.bad_lines().empty());
}

TEST_CASE("the sender gets delivery and read receipts from the other CLI user") {
  World w;
  Cli alice(w.server.url(), w.alice, w.data("alice"));
  Cli bob(w.server.url(), w.bob, w.data("bob"));
  meet(alice, bob);

  const std::uint64_t seq = exchange(alice, "alice", bob, "did you get this?").num("seq");
  const JsonLine delivered = need(alice, receipt("bob", "delivered", seq), "bob's delivery");
  CHECK(!delivered.get("device").empty());

  const JsonLine result = ok(bob, "/read general", "read");
  CHECK(result.get("channel") == "general");
  const JsonLine read = need(alice, receipt("bob", "read", seq), "bob's read receipt");
  CHECK(!read.has("device"));

  // Cursors only grow: reading again changes nothing, so nothing is sent.
  ok(bob, "/read general", "read");
  ok(alice, "/sleep 500", "sleep");
  const auto& lines = alice.lines();
  CHECK(std::count_if(lines.begin(), lines.end(), receipt("bob", "read", seq)) == 1);

  CHECK(refused(bob, "/read").get("code") == "bad_command");
  CHECK(refused(bob, "/read " + std::string(65, 'x')).get("code") == "invalid_name");
  CHECK(alice.finish() == 0);
  CHECK(bob.finish() == 0);
  CHECK(alice.bad_lines().empty());
  CHECK(bob.bad_lines().empty());
}

}  // namespace parley_e2e
