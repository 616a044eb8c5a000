// End-to-end tests: parley-server and parley-cli --batch as real processes,
// talking over WebSockets on 127.0.0.1 (docs/cli.md describes the lines).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "harness.hpp"
#include "steps.hpp"

namespace parley_e2e {
namespace {

std::vector<std::uint64_t> message_seqs(const Cli& cli, std::size_t end) {
  std::vector<std::uint64_t> seqs;
  for (std::size_t i = 0; i < end && i < cli.lines().size(); ++i) {
    if (cli.lines()[i].is("message")) seqs.push_back(cli.lines()[i].num("seq"));
  }
  return seqs;
}

bool strictly_increasing(const std::vector<std::uint64_t>& v) {
  return std::adjacent_find(v.begin(), v.end(), std::greater_equal<>()) == v.end();
}

// A port on 127.0.0.1 with nobody listening (bound, read, closed).
int unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace

TEST_CASE("two users exchange messages both ways through parley-cli") {
  World w;
  Cli alice(w.server.url(), w.alice, w.data("alice"));
  Cli bob(w.server.url(), w.bob, w.data("bob"));
  REQUIRE(alice.started());
  REQUIRE(bob.started());

  ok(alice, "/create general", "create");
  ok(bob, "/join general", "join");
  need(
      alice,
      [](const JsonLine& l) {
        return l.is("member") && l.get("user") == "bob" && l.get("action") == "join";
      },
      "bob's join");

  const std::vector<std::pair<std::string, std::string>> script = {
      {"alice", "hello bob"},          {"bob", "hi alice"},
      {"alice", "how are you?"},       {"bob", "fine, \"thanks\" \\o/ \xE2\x98\xBA"},
      {"alice", "spaced   out  text"},
  };
  for (const auto& [who, text] : script) {
    if (who == "alice") {
      exchange(alice, "alice", bob, text);
    } else {
      exchange(bob, "bob", alice, text);
    }
  }
  CHECK(strictly_increasing(message_seqs(alice, alice.lines().size())));
  CHECK(strictly_increasing(message_seqs(bob, bob.lines().size())));

  // History: the latest text messages, ascending, then the count.
  const JsonLine result = ok(bob, "/history general 10", "history");
  CHECK(result.get("channel") == "general");
  REQUIRE(result.num("count") == script.size());
  const std::size_t end = index_of(bob, result);
  REQUIRE(end >= script.size());
  std::vector<std::uint64_t> seqs;
  for (std::size_t i = 0; i < script.size(); ++i) {
    const JsonLine& m = bob.lines()[end - script.size() + i];
    CHECK(m.is("message"));
    CHECK(m.get("sender") == script[i].first);
    CHECK(m.get("text") == script[i].second);
    seqs.push_back(m.num("seq"));
  }
  CHECK(strictly_increasing(seqs));

  alice.send("/quit");
  need(
      alice, [](const JsonLine& l) { return l.is_result("quit"); }, "quit");
  CHECK(alice.finish() == 0);
  CHECK(bob.finish() == 0);
  CHECK(alice.bad_lines().empty());
  CHECK(bob.bad_lines().empty());
}

TEST_CASE("a token signed by another key is refused with invalid_token and exit 2") {
  World w;
  const std::string other_key = w.tmp.sub("other.key");
  REQUIRE(keygen(other_key) == "");
  const std::string forged = mint_token(other_key, "alice");
  REQUIRE(!forged.empty());

  Cli alice(w.server.url(), forged, w.data("alice"));
  alice.send("/create general");
  need(
      alice, [](const JsonLine& l) { return l.is_error("invalid_token"); }, "invalid_token");
  CHECK(alice.finish() == 2);
  CHECK(alice.bad_lines().empty());
}

TEST_CASE("an expired token is refused with token_expired and exit 2") {
  World w;
  const std::string token = mint_token(w.key, "alice", 1);
  REQUIRE(!token.empty());
  std::this_thread::sleep_for(2100ms);

  Cli alice(w.server.url(), token, w.data("alice"));
  alice.send("/create general");
  need(
      alice, [](const JsonLine& l) { return l.is_error("token_expired"); }, "token_expired");
  CHECK(alice.finish() == 2);
}

TEST_CASE("history after a restart comes from the cache with the server stopped") {
  World w;
  {
    Cli alice(w.server.url(), w.alice, w.data("alice"));
    Cli bob(w.server.url(), w.bob, w.data("bob"));
    ok(alice, "/create general", "create");
    ok(bob, "/join general", "join");
    for (const char* text : {"one", "two", "three"}) {
      alice.send(std::string("/send general ") + text);
      need(
          alice, [](const JsonLine& l) { return l.is("sent"); }, std::string("sent ") + text);
    }
    exchange(bob, "bob", alice, "four from bob");
    CHECK(alice.finish() == 0);
    CHECK(bob.finish() == 0);
  }
  CHECK(w.server.stop() == 0);

  const std::string nowhere = "ws://127.0.0.1:" + std::to_string(unused_port());
  Cli alice(nowhere, w.alice, w.data("alice"), {"--command-timeout", "2"});
  const JsonLine result = ok(alice, "/history general 3", "history");
  REQUIRE(result.num("count") == 3);
  const std::size_t end = index_of(alice, result);
  const std::vector<std::string> texts = {"two", "three", "four from bob"};
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const JsonLine& m = alice.lines()[end - 3 + i];
    CHECK(m.is("message"));
    CHECK(m.get("text") == texts[i]);
  }
  CHECK(alice.lines()[end - 1].get("sender") == "bob");
  CHECK(alice.finish() == 0);
}

TEST_CASE("a message sent while the server is down is delivered once by a later run") {
  World w;
  {
    Cli alice(w.server.url(), w.alice, w.data("alice"));
    Cli bob(w.server.url(), w.bob, w.data("bob"));
    ok(alice, "/create general", "create");
    ok(bob, "/join general", "join");
    CHECK(alice.finish() == 0);
    CHECK(bob.finish() == 0);
  }
  CHECK(w.server.stop() == 0);

  // Offline: accepted into the outbox at once, then the drain gives up.
  std::string id;
  {
    const std::string nowhere = "ws://127.0.0.1:" + std::to_string(unused_port());
    Cli alice(nowhere, w.alice, w.data("alice"), {"--drain-timeout", "2"});
    alice.send("/send general while you were away");
    id = need(
             alice, [](const JsonLine& l) { return l.is("pending"); }, "pending")
             .get("id");
    need(
        alice, [&](const JsonLine& l) { return l.is_result("send"); }, "the result of /send");
    CHECK(alice.finish() == 3);
    const auto& lines = alice.lines();
    auto err = std::find_if(lines.begin(), lines.end(),
                            [](const JsonLine& l) { return l.is_error("drain_timeout"); });
    REQUIRE(err != lines.end());
    CHECK(err->ids == std::vector<std::string>{id});
    CHECK(err->get("message").find(id) != std::string::npos);
    CHECK(std::none_of(lines.begin(), lines.end(), [](const JsonLine& l) { return l.is("sent"); }));
  }

  // Back online: a run with no commands delivers what the outbox holds.
  REQUIRE(w.server.start().empty());
  Cli bob(w.server.url(), w.bob, w.data("bob"));
  need(
      bob, [](const JsonLine& l) { return l.is("state") && l.get("state") == "ready"; }, "ready");
  {
    Cli alice(w.server.url(), w.alice, w.data("alice"));
    CHECK(alice.finish() == 0);
    INFO(alice.transcript());
    const auto& lines = alice.lines();
    CHECK(std::count_if(lines.begin(), lines.end(), with_id("sent", id)) == 1);
  }
  need(bob, with_id("message", id), "the message sent offline");
  ok(bob, "/sleep 300", "sleep");  // room for a duplicate to show up
  const JsonLine result = ok(bob, "/history general 20", "history");
  const auto& lines = bob.lines();
  // Once live, once in the history output; never twice in either.
  CHECK(std::count_if(lines.begin(), lines.end(), with_id("message", id)) == 2);
  CHECK(result.num("count") == 1);
  CHECK(bob.finish() == 0);
}

TEST_CASE("parley-cli is offline-tolerant: /send queues, server commands fail with offline") {
  TempDir tmp;
  const std::string key = tmp.sub("server.key");
  REQUIRE(keygen(key) == "");
  const std::string token = mint_token(key, "alice");
  REQUIRE(!token.empty());
  const std::string nowhere = "ws://127.0.0.1:" + std::to_string(unused_port());

  {
    // Nothing pending: end of input exits at once, connected or not.
    Cli alice(nowhere, token, tmp.sub("alice"));
    CHECK(alice.finish(10s) == 0);
  }
  Cli alice(nowhere, token, tmp.sub("alice"), {"--command-timeout", "1", "--drain-timeout", "1"});
  CHECK(refused(alice, "/join general").get("code") == "offline");
  alice.send("/send general later");
  const std::string id = need(
                             alice, [](const JsonLine& l) { return l.is("pending"); }, "pending")
                             .get("id");
  alice.send("/quit");
  need(
      alice, [](const JsonLine& l) { return l.is_error("drain_timeout"); }, "drain_timeout");
  CHECK(alice.finish() == 3);
  CHECK(std::none_of(alice.lines().begin(), alice.lines().end(),
                     [](const JsonLine& l) { return l.is_result("quit"); }));
}

TEST_CASE("bad commands give bad_command, the session goes on, exit 0") {
  World w;
  Cli alice(w.server.url(), w.alice, w.data("alice"));
  const std::vector<std::string> bad = {
      "hello",
      "/nope",
      "/send general",
      "/history general abc",
      "/history general 0",
      "/sleep -5",
      "/join",
      "/quit now",
      "/create a b",
      "/nope \"quoted\" \\ \xC3\xA9 \xFF\xFE bytes",
  };
  for (const std::string& line : bad) {
    const JsonLine e = refused(alice, line);
    CHECK(e.get("code") == "bad_command");
    CHECK(!e.get("message").empty());
  }
  ok(alice, "/create general", "create");
  ok(alice, "/sleep 10", "sleep");
  alice.send("/quit");
  need(
      alice, [](const JsonLine& l) { return l.is_result("quit"); }, "quit");
  CHECK(alice.finish() == 0);
  CHECK(alice.bad_lines().empty());
}

TEST_CASE("channel commands refused by the server give their codes") {
  World w;
  Cli alice(w.server.url(), w.alice, w.data("alice"));
  Cli bob(w.server.url(), w.bob, w.data("bob"));
  CHECK(refused(alice, "/join nowhere").get("code") == "no_such_channel");
  ok(alice, "/create general", "create");
  CHECK(refused(bob, "/create general").get("code") == "channel_exists");
  ok(bob, "/join general", "join");
  ok(bob, "/join general", "join");  // already a member: a no-op
  ok(bob, "/leave general", "leave");

  // A message to a channel bob has left fails for good, naming its id.
  bob.send("/send general anyone?");
  const std::string id = need(
                             bob, [](const JsonLine& l) { return l.is("pending"); }, "pending")
                             .get("id");
  const JsonLine failed = need(
      bob, [&](const JsonLine& l) { return l.is("error") && l.get("id") == id; }, "the failure");
  CHECK(failed.get("code") == "not_member");
  CHECK(alice.finish() == 0);
  CHECK(bob.finish() == 0);
}

TEST_CASE("parley-server answers /healthz and /metrics over HTTP") {
  World w;
  const std::string health = http_get(w.server.port(), "/healthz");
  INFO(health);
  CHECK(health.rfind("HTTP/1.", 0) == 0);
  CHECK(health.find(" 200") != std::string::npos);

  const std::string metrics = http_get(w.server.port(), "/metrics");
  INFO(metrics);
  CHECK(metrics.find(" 200") != std::string::npos);
  CHECK(metrics.find("parley_") != std::string::npos);
}

}  // namespace parley_e2e

namespace parley_e2e {

TEST_CASE("catching up after being offline prints sync progress, then every message in order") {
  World w;
  {
    Cli alice(w.server.url(), w.alice, w.data("alice"));
    Cli bob(w.server.url(), w.bob, w.data("bob"));
    ok(alice, "/create general", "create");
    ok(bob, "/join general", "join");
    CHECK(bob.finish() == 0);  // bob goes offline
    const int missed = 1100;
    for (int i = 0; i < missed; ++i) alice.send("/send general m" + std::to_string(i));
    alice.send("/quit");
    CHECK(alice.finish(120s) == 0);  // the outbox drained: all stored
  }
  Cli bob(w.server.url(), w.bob, w.data("bob"), {"--reconnect-max-ms", "1000"});
  const JsonLine last = need(
      bob, [](const JsonLine& l) { return l.is("sync") && l.num("fetched") == 1100; },
      "the last sync line", 60s);
  CHECK(last.num("total") == 1100);
  bob.send("/quit");
  CHECK(bob.finish() == 0);
  std::vector<std::uint64_t> fetched;
  int texts = 0;
  for (const JsonLine& l : bob.lines()) {
    if (l.is("sync")) fetched.push_back(l.num("fetched"));
    if (l.is("message")) {
      CHECK(l.get("text") == "m" + std::to_string(texts));
      ++texts;
    }
  }
  CHECK(texts == 1100);
  REQUIRE(fetched.size() >= 3);  // pages of at most 500
  CHECK(strictly_increasing(fetched));
}

}  // namespace parley_e2e
