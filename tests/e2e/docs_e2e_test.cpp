// Collaborative documents end to end (issue 15): parley-cli --batch processes
// editing one document through a parley-server process, and the "doc" lines
// they print (docs/cli.md, "Documents"): concurrent edits converge, edits made
// while the server is down converge once it is back, and a read-only member's
// edit is refused.
#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "harness.hpp"
#include "steps.hpp"

namespace parley_e2e {
namespace {

const std::string kTitle = "notes";

// A "doc" line of document kTitle in general.
Pred doc_line() {
  return [](const JsonLine& l) {
    return l.is("doc") && l.get("channel") == "general" && l.get("title") == kTitle;
  };
}

// A "doc" line at `version` (characters ever inserted plus characters deleted).
Pred doc_at(std::uint64_t version) {
  return [version](const JsonLine& l) { return doc_line()(l) && l.num("version") == version; };
}

// The first doc line at `version` the CLI prints (its text, after that many changes).
JsonLine wait_version(Cli& cli, const std::string& who, std::uint64_t version) {
  return need(cli, doc_at(version), who + "'s document at version " + std::to_string(version));
}

// /doc-open or /doc-show: the doc line it prints with the current text.
// Doc lines already read are set aside first (they are older: the CLI prints
// a document's changes in order).
JsonLine show(Cli& cli, const std::string& command) {
  while (cli.expect(doc_line(), 0ms)) {
  }
  cli.send(command + " general " + kTitle);
  const JsonLine line = need(
      cli, [](const JsonLine& l) { return doc_line()(l) || (l.is("error") && !l.has("id")); },
      "the answer to " + command);
  INFO(command << " answered " << line.raw);
  REQUIRE(line.is("doc"));
  return line;
}

// A local insertion while the document is open: the CLI prints the doc line
// with it applied (the version grows by the characters inserted).
JsonLine insert(Cli& cli, std::size_t pos, const std::string& text, std::uint64_t version_after) {
  cli.send("/doc-insert general " + kTitle + " " + std::to_string(pos) + " " + text);
  return need(
      cli,
      [&](const JsonLine& l) {
        return doc_at(version_after)(l) && l.get("text").find(text) != std::string::npos;
      },
      "the local insertion of \"" + text + "\"");
}

// parley-server on a given port of 127.0.0.1 with World's data and key (a
// restart where the clients expect it; Server::start takes any free port).
// Stopped with SIGTERM by stop_server; the Process kills it otherwise.
std::unique_ptr<Process> serve_on(World& w, int port) {
  std::string error;
  auto p =
      Process::spawn({PARLEY_SERVER_BIN, "--listen", "127.0.0.1:" + std::to_string(port), "--data",
                      w.tmp.sub("server-data"), "--key", w.key, "--rate-limit", "off"},
                     {}, &error);
  INFO(error);
  REQUIRE(p != nullptr);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::optional<std::string> line = p->read_line(1s);
    if (line && line->find("listening on 127.0.0.1:" + std::to_string(port)) != std::string::npos)
      return p;
    REQUIRE_FALSE(p->at_eof());
  }
  FAIL("parley-server did not listen on port " << port << " within 20 s");
  return nullptr;
}

int stop_server(Process& p) {
  p.signal(SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  std::optional<int> status;
  while (!(status = p.wait(0ms)) && std::chrono::steady_clock::now() < deadline) {
    p.read_line(50ms);
  }
  return status.value_or(-1);
}

// alice creates general and the document, bob joins; both open the document.
void open_shared(Cli& alice, Cli& bob) {
  ok(alice, "/create general", "create");
  ok(bob, "/join general", "join");
  ok(alice, "/doc-create general " + kTitle, "doc-create");
  const JsonLine a = show(alice, "/doc-open");
  CHECK(a.get("text") == "");
  CHECK(a.num("version") == 0);
  const JsonLine b = show(bob, "/doc-open");
  CHECK(b.get("text") == "");
  CHECK(b.num("version") == 0);
}

}  // namespace

TEST_CASE("two users insert into one document at once and converge") {
  World w;
  Cli alice(w.server.url(), w.alice, w.data("alice"));
  Cli bob(w.server.url(), w.bob, w.data("bob"));
  REQUIRE(alice.started());
  REQUIRE(bob.started());
  open_shared(alice, bob);

  // Interleaved insertions at overlapping positions, sent without waiting for
  // the other side: each one's later insertions race with the other's.
  const std::vector<std::string> from_alice = {"aaa", "AL", "alpha", "a4"};
  const std::vector<std::string> from_bob = {"bbb", "BO", "bravo", "b4"};
  const std::vector<std::size_t> positions = {0, 1, 2, 1};
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < from_alice.size(); ++i) {
    alice.send("/doc-insert general " + kTitle + " " + std::to_string(positions[i]) + " " +
               from_alice[i]);
    bob.send("/doc-insert general " + kTitle + " " + std::to_string(positions[i]) + " " +
             from_bob[i]);
    total += from_alice[i].size() + from_bob[i].size();
  }

  // Both end at the version that holds every insertion, with the same text:
  // exactly the characters inserted (insertions inside earlier ones split them).
  const JsonLine a = wait_version(alice, "alice", total);
  const JsonLine b = wait_version(bob, "bob", total);
  INFO("alice: " << a.raw << "\nbob: " << b.raw);
  CHECK(a.get("text") == b.get("text"));
  std::string typed;
  for (std::size_t i = 0; i < from_alice.size(); ++i) typed += from_alice[i] + from_bob[i];
  std::string got = a.get("text");
  std::sort(typed.begin(), typed.end());
  std::sort(got.begin(), got.end());
  CHECK(got == typed);

  // A deletion travels too, and /doc-show agrees on both sides.
  const std::string before = a.get("text");
  alice.send("/doc-delete general " + kTitle + " 0 3");
  const JsonLine deleted = wait_version(alice, "alice", total + 3);
  CHECK(deleted.get("text") == before.substr(3));
  CHECK(wait_version(bob, "bob", total + 3).get("text") == before.substr(3));
  const JsonLine shown_a = show(alice, "/doc-show");
  const JsonLine shown_b = show(bob, "/doc-show");
  CHECK(shown_a.get("text") == before.substr(3));
  CHECK(shown_b.get("text") == shown_a.get("text"));
  CHECK(shown_b.num("version") == shown_a.num("version"));

  CHECK(alice.finish() == 0);
  CHECK(bob.finish() == 0);
  CHECK(alice.bad_lines().empty());
  CHECK(bob.bad_lines().empty());
}

TEST_CASE("edits made while the server is down converge after it returns") {
  World w;
  const std::vector<std::string> fast = {"--reconnect-max-ms", "500"};
  Cli alice(w.server.url(), w.alice, w.data("alice"), fast);
  Cli bob(w.server.url(), w.bob, w.data("bob"), fast);
  REQUIRE(alice.started());
  REQUIRE(bob.started());
  open_shared(alice, bob);
  insert(alice, 0, "base", 4);
  CHECK(wait_version(bob, "bob", 4).get("text") == "base");

  // The server goes; both edit the cached document, each seeing only their own change.
  const int port = w.server.port();
  REQUIRE(w.server.stop() == 0);
  CHECK(insert(alice, 0, "ALICE", 9).get("text") == "ALICEbase");
  CHECK(insert(bob, 4, "BOB", 7).get("text") == "baseBOB");

  // Back on the same port and data: both catch up on the other's edit.
  std::unique_ptr<Process> server = serve_on(w, port);
  const JsonLine a = wait_version(alice, "alice", 12);
  const JsonLine b = wait_version(bob, "bob", 12);
  CHECK(a.get("text") == "ALICEbaseBOB");
  CHECK(b.get("text") == "ALICEbaseBOB");

  // A newcomer's open gives the server's copy, the same text.
  const std::string carol_token = mint_token(w.key, "carol");
  REQUIRE(!carol_token.empty());
  Cli carol("ws://127.0.0.1:" + std::to_string(port), carol_token, w.data("carol"));
  ok(carol, "/join general", "join");
  const JsonLine c = show(carol, "/doc-open");
  CHECK(c.get("text") == "ALICEbaseBOB");
  CHECK(c.num("version") == 12);

  CHECK(alice.finish() == 0);
  CHECK(bob.finish() == 0);
  CHECK(carol.finish() == 0);
  CHECK(alice.bad_lines().empty());
  CHECK(bob.bad_lines().empty());
  CHECK(stop_server(*server) == 0);
}

TEST_CASE("a read-only member's edit is refused and the others' text stays") {
  World w;
  const std::string carol_token = mint_token(w.key, "carol");
  REQUIRE(!carol_token.empty());
  Cli alice(w.server.url(), w.alice, w.data("alice"));
  Cli bob(w.server.url(), w.bob, w.data("bob"));
  Cli carol(w.server.url(), carol_token, w.data("carol"));
  REQUIRE(alice.started());
  REQUIRE(bob.started());
  REQUIRE(carol.started());
  open_shared(alice, bob);
  ok(carol, "/join general", "join");
  ok(alice, "/role general carol read_only", "role");
  need(
      carol,
      [](const JsonLine& l) {
        return l.is("member") && l.get("action") == "role" && l.get("user") == "carol";
      },
      "carol's new role");
  insert(alice, 0, "hello", 5);
  CHECK(wait_version(bob, "bob", 5).get("text") == "hello");
  CHECK(show(carol, "/doc-open").get("text") == "hello");

  carol.send("/doc-insert general " + kTitle + " 5 -sneaky");
  const JsonLine refusal = need(
      carol, [](const JsonLine& l) { return l.is("error"); }, "the refusal of carol's edit");
  INFO(refusal.raw);
  CHECK(refusal.get("code") == "forbidden");

  // The others never see it: bob's next edit is the only change they get.
  insert(bob, 5, " world", 11);
  const JsonLine a = wait_version(alice, "alice", 11);
  CHECK(a.get("text") == "hello world");
  const JsonLine shown_a = show(alice, "/doc-show");
  const JsonLine shown_b = show(bob, "/doc-show");
  CHECK(shown_a.get("text") == "hello world");
  CHECK(shown_a.num("version") == 11);
  CHECK(shown_b.get("text") == "hello world");
  CHECK(shown_b.num("version") == 11);
  for (const Cli* cli : {&alice, &bob}) {
    for (const JsonLine& l : cli->lines()) {
      CHECK(l.get("text").find("sneaky") == std::string::npos);
    }
  }

  CHECK(alice.finish() == 0);
  CHECK(bob.finish() == 0);
  carol.finish();
  CHECK(alice.bad_lines().empty());
  CHECK(bob.bad_lines().empty());
  CHECK(carol.bad_lines().empty());
}

}  // namespace parley_e2e
