// Steps the end-to-end tests share: a server with two users, and waiting
// for parley-cli --batch lines with doctest checks.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <string>

#include "harness.hpp"

namespace parley_e2e {

using Pred = std::function<bool(const JsonLine&)>;

// A server with a fresh key and data directory, and tokens for alice and bob.
struct World {
  TempDir tmp;
  std::string key = tmp.sub("server.key");
  Server server{tmp.sub("server-data"), key};
  std::string alice;
  std::string bob;

  // `server_args`: extra parley-server flags.
  explicit World(const std::vector<std::string>& server_args = {}) {
    REQUIRE(!tmp.path().empty());
    REQUIRE(keygen(key) == "");
    alice = mint_token(key, "alice");
    bob = mint_token(key, "bob");
    REQUIRE(!alice.empty());
    REQUIRE(!bob.empty());
    const std::string error = server.start(server_args);
    INFO(error);
    REQUIRE(error.empty());
  }

  std::string data(const std::string& user) const { return tmp.sub(user + "-data"); }
};

// The next line matching `pred`; fails the test with the output so far if none comes.
inline JsonLine need(Cli& cli, const Pred& pred, const std::string& what,
                     std::chrono::milliseconds timeout = 20s) {
  std::optional<JsonLine> line = cli.expect(pred, timeout);
  INFO("waiting for " << what << "; output so far:\n" << cli.transcript());
  REQUIRE(line.has_value());
  return *line;
}

// Runs a command that must succeed; returns its result line.
inline JsonLine ok(Cli& cli, const std::string& command, const std::string& result) {
  cli.send(command);
  JsonLine line = need(
      cli,
      [&](const JsonLine& l) { return l.is_result(result) || (l.is("error") && !l.has("id")); },
      "the answer to " + command);
  INFO(command << " answered " << line.raw);
  REQUIRE(line.is_result(result));
  return line;
}

// Runs a command that must fail; returns its error line.
inline JsonLine refused(Cli& cli, const std::string& command) {
  cli.send(command);
  JsonLine line = need(
      cli, [&](const JsonLine& l) { return l.is("result") || (l.is("error") && !l.has("id")); },
      "the answer to " + command);
  INFO(command << " answered " << line.raw);
  REQUIRE(line.is("error"));
  return line;
}

inline Pred with_id(const std::string& event, const std::string& id) {
  return [=](const JsonLine& l) { return l.is(event) && l.get("id") == id; };
}

// Index of the first line equal to `line` in `cli`'s output.
inline std::size_t index_of(const Cli& cli, const JsonLine& line) {
  const auto& all = cli.lines();
  return static_cast<std::size_t>(
      std::find_if(all.begin(), all.end(), [&](const JsonLine& l) { return l.raw == line.raw; }) -
      all.begin());
}

// Sends `text` from one CLI and checks what both sides print about it;
// returns the sender's `sent` line.
inline JsonLine exchange(Cli& from, const std::string& sender, Cli& to, const std::string& text) {
  from.send("/send general " + text);
  const JsonLine pending = need(
      from, [](const JsonLine& l) { return l.is("pending"); }, "pending");
  const std::string id = pending.get("id");
  CHECK(pending.get("channel") == "general");
  CHECK(id.size() == 32);
  need(
      from, [&](const JsonLine& l) { return l.is_result("send") && l.get("id") == id; },
      "the result of /send");
  const JsonLine sent = need(from, with_id("sent", id), "sent " + id);
  CHECK(sent.get("channel") == "general");
  CHECK(sent.num("seq") > 0);
  CHECK(index_of(from, pending) < index_of(from, sent));

  const JsonLine got = need(to, with_id("message", id), "the message " + id);
  CHECK(got.get("channel") == "general");
  CHECK(got.get("sender") == sender);
  CHECK(got.get("text") == text);
  CHECK(got.num("seq") == sent.num("seq"));
  CHECK(got.get("ts").find('T') != std::string::npos);
  return sent;
}

}  // namespace parley_e2e
