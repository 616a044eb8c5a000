// End-to-end encrypted direct messages through the SDK and the real server
// (in-process, loopback transport): keys published before ready, a
// conversation both ways, restarts, history, safety numbers, an identity
// change, and a peer without keys. The server's store never holds the text.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <cctype>
#include <memory>
#include <string>

#include "test_support.hpp"

namespace parley {
namespace {

using testing::TestServer;
using testing::temp_dir;
using testing::wait_for;
using testing::wait_ready;

std::unique_ptr<Client> open_client(TestServer& server, const std::string& user,
                                    const std::filesystem::path& dir,
                                    const std::string& device = "") {
  ClientOptions o = server.options(user, dir);
  if (!device.empty()) o.device_id = device;
  auto c = Client::open(o);
  REQUIRE_MESSAGE(c.ok(), c.status().to_string());
  (*c)->connect();
  REQUIRE(wait_ready(**c));
  return std::move(*c);
}

std::string open_direct(Client& c, const std::string& user) {
  auto id = c.open_direct(user);
  auto done = wait_for<ChannelRequestDone>(c, [id](const ChannelRequestDone& d) { return d.request == id; });
  REQUIRE(done);
  REQUIRE_MESSAGE(done->status.ok(), done->status.to_string());
  return done->channel;
}

void send_ok(Client& c, const std::string& channel, const std::string& text) {
  auto id = c.send(channel, text);
  REQUIRE(id.ok());
  auto sent = wait_for<MessageSent>(c, [&](const MessageSent& s) { return s.id == *id; });
  REQUIRE_MESSAGE(sent, "message not acknowledged: " << text);
}

Message receive(Client& c, const std::string& text) {
  auto got = wait_for<MessageReceived>(
      c, [&](const MessageReceived& m) { return m.message.text == text; });
  REQUIRE_MESSAGE(got, "message not received: " << text);
  return got->message;
}

std::string read_all(const std::filesystem::path& dir) {
  std::string all;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return all;
}

// A new server process on the same data directory and key (the old one stopped).
void start_again(TestServer& server) {
  server::ServerOptions o;
  o.listen = false;
  o.data_dir = server.dir.string();
  std::copy(std::begin(server.key.public_key), std::end(server.key.public_key),
            o.public_key.begin());
  auto restarted = server::Server::create(o);
  REQUIRE(restarted.ok());
  server.server = std::move(*restarted);
  server.server->start();
}

std::string safety(Client& c, const std::string& user, bool* verified = nullptr) {
  auto id = c.load_safety_number(user);
  auto got = wait_for<SafetyNumberLoaded>(c, [id](const SafetyNumberLoaded& s) { return s.request == id; });
  REQUIRE(got);
  REQUIRE_MESSAGE(got->status.ok(), got->status.to_string());
  if (verified != nullptr) *verified = got->verified;
  return got->number;
}

TEST_CASE("e2e dm: keys are on the server before ready, and a DM to an offline user arrives later") {
  TestServer server;
  auto bob_dir = temp_dir("bob");
  {
    auto bob = open_client(server, "bob", bob_dir);  // ready: his keys are published
  }  // and gone again before anyone wrote to him
  auto alice = open_client(server, "alice", temp_dir("alice"));
  std::string channel = open_direct(*alice, "bob");
  send_ok(*alice, channel, "waiting for you");
  auto bob = open_client(server, "bob", bob_dir);
  // A channel new to this device starts at its end (docs/sync.md): the DM is
  // in its history, decrypted when the first page was stored.
  auto req = bob->load_history(channel, HistoryQuery{0, 10});
  auto page = wait_for<HistoryLoaded>(*bob, [req](const HistoryLoaded& h) { return h.request == req; });
  REQUIRE(page);
  REQUIRE(page->messages.size() == 1);
  Message m = page->messages[0];
  CHECK(m.text == "waiting for you");
  CHECK(m.e2e);
  CHECK(m.e2e_error.empty());
  CHECK(m.sender == "alice");
  CHECK(bob->direct_peer(m.channel) == std::optional<std::string>("alice"));
  CHECK(alice->direct_channel("bob") == std::optional<std::string>(channel));
}

TEST_CASE("e2e dm: a conversation both ways, across restarts of both, never readable on the server") {
  TestServer server;
  auto alice_dir = temp_dir("alice");
  auto bob_dir = temp_dir("bob");
  auto alice = open_client(server, "alice", alice_dir);
  auto bob = open_client(server, "bob", bob_dir);
  std::string channel = open_direct(*alice, "bob");
  std::vector<std::string> texts;
  for (int round = 0; round < 3; ++round) {
    std::string a = fmt::format("alice-says-tangerine-{}", round);
    std::string b = fmt::format("bob-says-periwinkle-{}", round);
    texts.push_back(a);
    texts.push_back(b);
    send_ok(*alice, channel, a);
    CHECK(receive(*bob, a).e2e);
    send_ok(*bob, channel, b);
    CHECK(receive(*alice, b).e2e);
  }
  // Two in a row from alice (no DH step), then restarts of both.
  send_ok(*alice, channel, "one-of-two-marigold");
  send_ok(*alice, channel, "two-of-two-marigold");
  texts.push_back("one-of-two-marigold");
  texts.push_back("two-of-two-marigold");
  receive(*bob, "two-of-two-marigold");
  alice.reset();
  bob.reset();
  server.server->stop();
  start_again(server);
  alice = open_client(server, "alice", alice_dir);
  bob = open_client(server, "bob", bob_dir);
  send_ok(*bob, channel, "after-restart-lavender");
  CHECK(receive(*alice, "after-restart-lavender").e2e);
  send_ok(*alice, channel, "still-here-saffron");
  CHECK(receive(*bob, "still-here-saffron").e2e);
  texts.push_back("after-restart-lavender");
  texts.push_back("still-here-saffron");

  // History from the cache and the server: every text once, readable.
  auto req = bob->load_history(channel, HistoryQuery{0, 100});
  auto page = wait_for<HistoryLoaded>(*bob, [req](const HistoryLoaded& h) { return h.request == req; });
  REQUIRE(page);
  std::map<std::string, int> seen;
  for (const auto& m : page->messages) {
    if (m.kind != EventKind::message) continue;
    CHECK(m.e2e);
    CHECK(m.e2e_error.empty());
    ++seen[m.text];
  }
  for (const auto& t : texts) CHECK_MESSAGE(seen[t] == 1, t);

  // The server's files hold none of it.
  alice.reset();
  bob.reset();
  server.server->stop();
  std::string at_rest = read_all(server.dir);
  CHECK(at_rest.find("alice") != std::string::npos);  // the search reads the files
  for (const auto& t : texts) CHECK_MESSAGE(at_rest.find(t) == std::string::npos, t);
  start_again(server);  // the TestServer stops it at the end
}

TEST_CASE("e2e dm: safety numbers agree; verification ends when the contact's identity changes") {
  TestServer server;
  auto alice = open_client(server, "alice", temp_dir("alice"));
  auto bob = open_client(server, "bob", temp_dir("bob"), "bobs-phone");
  std::string channel = open_direct(*alice, "bob");
  send_ok(*alice, channel, "hello");
  receive(*bob, "hello");
  bool verified = true;
  std::string from_alice = safety(*alice, "bob", &verified);
  CHECK_FALSE(verified);
  std::string from_bob = safety(*bob, "alice");
  CHECK(from_alice == from_bob);
  REQUIRE(from_alice.size() == 71);
  for (std::size_t i = 0; i < from_alice.size(); ++i) {
    if (i % 6 == 5) {
      CHECK(from_alice[i] == ' ');
    } else {
      CHECK(std::isdigit(static_cast<unsigned char>(from_alice[i])));
    }
  }
  CHECK(alice->verify_contact("bob").ok());
  safety(*alice, "bob", &verified);
  CHECK(verified);
  CHECK(alice->verify_contact("carol").reason() == "no_keys");

  // Bob reinstalls the app on the same phone: a new identity.
  bob.reset();
  auto bob_again = open_client(server, "bob", temp_dir("bob2"), "bobs-phone");
  auto id = alice->load_safety_number("bob");
  std::optional<IdentityChanged> changed;
  auto loaded = wait_for<SafetyNumberLoaded>(
      *alice, [id](const SafetyNumberLoaded& s) { return s.request == id; },
      std::chrono::seconds(10), [&](const Event& e) {
        if (auto* c = std::get_if<IdentityChanged>(&e)) changed = *c;
      });
  REQUIRE(loaded);
  REQUIRE(changed);
  CHECK(changed->user == "bob");
  CHECK(changed->device == "bobs-phone");
  CHECK(changed->was_verified);
  CHECK(loaded->number != from_alice);
  CHECK_FALSE(loaded->verified);
  // The session with the old identity is over: the next DM starts a new one.
  send_ok(*alice, channel, "to the new install");
  Message m = receive(*bob_again, "to the new install");
  CHECK(m.e2e);
  send_ok(*bob_again, channel, "got it");
  CHECK(receive(*alice, "got it").e2e);
}

TEST_CASE("e2e dm: a contact's new install under a new device id gets the next DMs, and is news") {
  TestServer server;
  auto alice = open_client(server, "alice", temp_dir("alice"));
  auto bob = open_client(server, "bob", temp_dir("bob"));
  std::string channel = open_direct(*alice, "bob");
  send_ok(*alice, channel, "to the old phone");
  receive(*bob, "to the old phone");
  CHECK(alice->verify_contact("bob").ok());
  bob.reset();
  // A new phone: new data, new device id, new identity.
  auto phone = open_client(server, "bob", temp_dir("bob-new"));
  // Alice's app comes back to the foreground: a new connection checks bob's
  // devices before the next DM (within one connection, a minute later).
  alice->disconnect();
  REQUIRE(wait_for<StateChanged>(*alice, [](const StateChanged& s) {
    return s.state == LifecycleState::disconnected;
  }));
  alice->connect();
  REQUIRE(wait_ready(*alice));
  std::optional<IdentityChanged> news;
  auto id = alice->send(channel, "to every phone");
  REQUIRE(id.ok());
  auto sent = wait_for<MessageSent>(
      *alice, [&](const MessageSent& s) { return s.id == *id; }, std::chrono::seconds(10),
      [&](const Event& e) {
        if (auto* c = std::get_if<IdentityChanged>(&e)) news = *c;
      });
  REQUIRE(sent);
  REQUIRE(news);
  CHECK(news->user == "bob");
  CHECK(news->new_device);
  CHECK(news->was_verified);
  Message m = receive(*phone, "to every phone");
  CHECK(m.e2e);
  bool verified = true;
  safety(*alice, "bob", &verified);
  CHECK_FALSE(verified);
}

TEST_CASE("e2e dm: a DM to a user without keys fails with no_keys") {
  TestServer server;
  auto alice = open_client(server, "alice", temp_dir("alice"));
  std::string channel = open_direct(*alice, "nokeys");
  auto id = alice->send(channel, "anyone there?");
  REQUIRE(id.ok());
  auto failed = wait_for<MessageFailed>(*alice, [&](const MessageFailed& f) { return f.id == *id; });
  REQUIRE(failed);
  CHECK(failed->status.reason() == "no_keys");
}

}  // namespace
}  // namespace parley
