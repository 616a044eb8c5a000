// Direct messages across several devices per user (issue 10), through the
// SDK and the real server (in-process, loopback transport): every device of
// both users gets every message, a device added later gets the next ones, a
// removed device gets nothing and cannot come back, a broken session
// recovers without losing a message, blocks, and verifiable reports.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace parley {
namespace {

using testing::TestServer;
using testing::temp_dir;
using testing::wait_for;
using testing::wait_ready;

std::unique_ptr<Client> open_client(TestServer& server, const std::string& user,
                                    const std::filesystem::path& dir, const std::string& device) {
  ClientOptions o = server.options(user, dir);
  o.device_id = device;
  auto c = Client::open(o);
  REQUIRE_MESSAGE(c.ok(), c.status().to_string());
  (*c)->connect();
  REQUIRE(wait_ready(**c));
  return std::move(*c);
}

std::string open_direct(Client& c, const std::string& user) {
  auto id = c.open_direct(user);
  auto done =
      wait_for<ChannelRequestDone>(c, [id](const ChannelRequestDone& d) { return d.request == id; });
  REQUIRE(done);
  REQUIRE_MESSAGE(done->status.ok(), done->status.to_string());
  return done->channel;
}

MessageSent send_ok(Client& c, const std::string& channel, const std::string& text) {
  auto id = c.send(channel, text);
  REQUIRE(id.ok());
  auto sent = wait_for<MessageSent>(c, [&](const MessageSent& s) { return s.id == *id; });
  REQUIRE_MESSAGE(sent, "message not acknowledged: " << text);
  return *sent;
}

Message receive(Client& c, const std::string& text,
                std::vector<IdentityChanged>* news = nullptr) {
  auto got = wait_for<MessageReceived>(
      c, [&](const MessageReceived& m) { return m.message.text == text; },
      std::chrono::seconds(10), [news](const Event& e) {
        if (auto* n = std::get_if<IdentityChanged>(&e); n && news != nullptr) news->push_back(*n);
      });
  REQUIRE_MESSAGE(got, "message not received: " << text);
  CHECK(got->message.e2e);
  CHECK(got->message.e2e_error.empty());
  return got->message;
}

// The DMs (text, sender) a device has in its cache, oldest first.
std::vector<std::string> conversation(Client& c, const std::string& channel) {
  auto req = c.load_history(channel, HistoryQuery{0, 50});
  auto page =
      wait_for<HistoryLoaded>(c, [req](const HistoryLoaded& h) { return h.request == req; });
  REQUIRE(page);
  std::vector<std::string> out;
  for (const auto& m : page->messages) {
    if (m.kind == EventKind::message) out.push_back(m.sender + ": " + m.text);
  }
  return out;
}

std::vector<DeviceInfo> devices(Client& c) {
  auto req = c.list_devices();
  auto got = wait_for<DevicesLoaded>(c, [req](const DevicesLoaded& d) { return d.request == req; });
  REQUIRE(got);
  REQUIRE_MESSAGE(got->status.ok(), got->status.to_string());
  return got->devices;
}

void exec_sql(const std::filesystem::path& db, const char* sql) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(db.string().c_str(), &h) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(h, sql, nullptr, nullptr, &err);
  std::string why = err != nullptr ? err : "";
  sqlite3_free(err);
  sqlite3_close(h);
  REQUIRE_MESSAGE(rc == SQLITE_OK, why);
}

TEST_CASE("e2e devices: two users with two devices each read the same conversation") {
  TestServer server;
  auto a1 = open_client(server, "alice", temp_dir("a1"), "a-phone");
  auto a2 = open_client(server, "alice", temp_dir("a2"), "a-laptop");
  auto b1 = open_client(server, "bob", temp_dir("b1"), "b-phone");
  auto b2 = open_client(server, "bob", temp_dir("b2"), "b-laptop");
  std::string channel = open_direct(*a1, "bob");
  // Devices that existed before the conversation are not news to anyone.
  std::vector<IdentityChanged> news;
  send_ok(*a1, channel, "hello from alice's phone");
  for (Client* c : {b1.get(), b2.get(), a2.get()}) receive(*c, "hello from alice's phone", &news);
  send_ok(*b2, channel, "bob answers from his laptop");
  for (Client* c : {a1.get(), a2.get(), b1.get()}) {
    receive(*c, "bob answers from his laptop", &news);
  }
  send_ok(*a2, channel, "alice again, from her laptop");
  for (Client* c : {a1.get(), b1.get(), b2.get()}) {
    receive(*c, "alice again, from her laptop", &news);
  }
  for (const auto& n : news) INFO("news: " << n.user << "/" << n.device);
  CHECK(news.empty());
  std::vector<std::string> expected{"alice: hello from alice's phone",
                                    "bob: bob answers from his laptop",
                                    "alice: alice again, from her laptop"};
  for (Client* c : {a1.get(), a2.get(), b1.get(), b2.get()}) {
    CHECK(conversation(*c, channel) == expected);
  }
  auto listed = devices(*a1);
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].device == "a-laptop");
  CHECK_FALSE(listed[0].current);
  CHECK(listed[1].device == "a-phone");
  CHECK(listed[1].current);
  CHECK(listed[0].fingerprint.size() == 16 * 4 + 15);
}

TEST_CASE("e2e devices: a device added later gets the next DMs and changes the safety number") {
  TestServer server;
  auto alice = open_client(server, "alice", temp_dir("alice"), "a-phone");
  auto b1 = open_client(server, "bob", temp_dir("b1"), "b-phone");
  std::string channel = open_direct(*alice, "bob");
  send_ok(*alice, channel, "before the tablet");
  receive(*b1, "before the tablet");
  auto number = [&](Client& c, const std::string& user) {
    auto id = c.load_safety_number(user);
    auto got = wait_for<SafetyNumberLoaded>(
        c, [id](const SafetyNumberLoaded& s) { return s.request == id; });
    REQUIRE(got);
    REQUIRE(got->status.ok());
    return got->number;
  };
  std::string before = number(*alice, "bob");
  CHECK(before == number(*b1, "alice"));

  auto b3 = open_client(server, "bob", temp_dir("b3"), "b-tablet");
  // Alice's device list is stale: the server refuses the message until she
  // seals it for the tablet too; she hears of the new device.
  std::optional<IdentityChanged> news;
  auto id = alice->send(channel, "after the tablet");
  REQUIRE(id.ok());
  REQUIRE(wait_for<MessageSent>(
      *alice, [&](const MessageSent& s) { return s.id == *id; }, std::chrono::seconds(10),
      [&](const Event& e) {
        if (auto* c = std::get_if<IdentityChanged>(&e); c && c->user == "bob") news = *c;
      }));
  REQUIRE(news);
  CHECK(news->device == "b-tablet");
  CHECK(news->new_device);
  receive(*b3, "after the tablet");
  receive(*b1, "after the tablet");
  std::string after = number(*alice, "bob");
  CHECK(after != before);
  CHECK(after == number(*b1, "alice"));
  CHECK(after == number(*b3, "alice"));
}

TEST_CASE("e2e devices: a removed device gets nothing new and cannot connect again") {
  TestServer server;
  auto alice = open_client(server, "alice", temp_dir("alice"), "a-phone");
  auto b1 = open_client(server, "bob", temp_dir("b1"), "b-phone");
  auto b2_dir = temp_dir("b2");
  auto b2 = open_client(server, "bob", b2_dir, "b-old");
  std::string channel = open_direct(*alice, "bob");
  send_ok(*alice, channel, "to both phones");
  receive(*b1, "to both phones");
  receive(*b2, "to both phones");

  auto req = b1->remove_device("b-old");
  CHECK(testing::request_status(*b1, req).ok());
  auto gone = wait_for<StateChanged>(
      *b2, [](const StateChanged& s) { return s.state == LifecycleState::disconnected; });
  REQUIRE(gone);
  CHECK(gone->reason.reason() == "device_removed");
  // Removing it again, or a device that never was: no_such_device.
  req = b1->remove_device("b-old");
  CHECK(testing::request_status(*b1, req).reason() == "no_such_device");

  std::optional<IdentityChanged> news;
  auto id = alice->send(channel, "only to the phone");
  REQUIRE(id.ok());
  REQUIRE(wait_for<MessageSent>(
      *alice, [&](const MessageSent& s) { return s.id == *id; }, std::chrono::seconds(10),
      [&](const Event& e) {
        if (auto* c = std::get_if<IdentityChanged>(&e); c && c->removed_device) news = *c;
      }));
  receive(*b1, "only to the phone");
  REQUIRE(news);
  CHECK(news->device == "b-old");
  CHECK(devices(*b1).size() == 1);

  // The old device tries again: refused for good.
  b2.reset();
  ClientOptions o = server.options("bob", b2_dir);
  o.device_id = "b-old";
  auto again = Client::open(o);
  REQUIRE(again.ok());
  (*again)->connect();
  auto refused = wait_for<StateChanged>(**again, [](const StateChanged& s) {
    return s.state == LifecycleState::disconnected && !s.reason.ok();
  });
  REQUIRE(refused);
  CHECK(refused->reason.reason() == "device_removed");
}

TEST_CASE("e2e devices: a broken session recovers and no message is lost") {
  TestServer server;
  auto alice = open_client(server, "alice", temp_dir("alice"), "a-phone");
  auto bob_dir = temp_dir("bob");
  auto bob = open_client(server, "bob", bob_dir, "b-phone");
  std::string channel = open_direct(*alice, "bob");
  send_ok(*alice, channel, "one");
  receive(*bob, "one");
  send_ok(*bob, channel, "two");
  receive(*alice, "two");
  // Bob's sessions are lost (a restored backup, a damaged file): his
  // identity and prekeys stay.
  bob.reset();
  exec_sql(bob_dir / "parley.db", "DELETE FROM e2e_sessions");

  auto sent = send_ok(*alice, channel, "three, in the broken session");
  bob = open_client(server, "bob", bob_dir, "b-phone");
  // Bob cannot decrypt it, asks alice's device to send it again, and gets it.
  std::optional<SessionReset> bob_reset;
  auto updated = wait_for<MessageUpdated>(
      *bob, [&](const MessageUpdated& u) { return u.message.seq == sent.seq; },
      std::chrono::seconds(10), [&](const Event& e) {
        if (auto* r = std::get_if<SessionReset>(&e)) bob_reset = *r;
      });
  REQUIRE(updated);
  CHECK(updated->message.text == "three, in the broken session");
  CHECK(updated->message.e2e_error.empty());
  REQUIRE(bob_reset);
  CHECK(bob_reset->by_this_device);
  CHECK(bob_reset->user == "alice");
  CHECK(bob_reset->reason == "no_session");
  auto alice_reset = wait_for<SessionReset>(*alice);
  REQUIRE(alice_reset);
  CHECK_FALSE(alice_reset->by_this_device);
  CHECK(alice_reset->user == "bob");
  CHECK(alice_reset->device == "b-phone");
  CHECK(alice_reset->seq == sent.seq);

  // The conversation goes on in the new session, both ways.
  send_ok(*alice, channel, "four");
  receive(*bob, "four");
  send_ok(*bob, channel, "five");
  receive(*alice, "five");
  std::vector<std::string> expected{"alice: one", "bob: two", "alice: three, in the broken session",
                                    "alice: four", "bob: five"};
  CHECK(conversation(*bob, channel) == expected);
}

TEST_CASE("e2e devices: a block refuses direct messages both ways until lifted") {
  TestServer server;
  auto alice = open_client(server, "alice", temp_dir("alice"), "a-phone");
  auto bob = open_client(server, "bob", temp_dir("bob"), "b-phone");
  std::string channel = open_direct(*alice, "bob");
  send_ok(*alice, channel, "before the block");
  receive(*bob, "before the block");

  auto req = alice->block_user("bob");
  auto blocked = wait_for<BlockedUsersLoaded>(
      *alice, [req](const BlockedUsersLoaded& b) { return b.request == req; });
  REQUIRE(blocked);
  REQUIRE(blocked->status.ok());
  CHECK(blocked->users == std::vector<std::string>{"bob"});
  auto refused = [&](Client& c, const std::string& text) {
    auto id = c.send(channel, text);
    REQUIRE(id.ok());
    auto failed = wait_for<MessageFailed>(c, [&](const MessageFailed& f) { return f.id == *id; });
    REQUIRE_MESSAGE(failed, "not refused: " << text);
    CHECK(failed->status.reason() == "blocked");
  };
  refused(*bob, "bob to alice while blocked");
  refused(*alice, "alice to bob while blocked");

  req = alice->block_user("bob", false);
  auto lifted = wait_for<BlockedUsersLoaded>(
      *alice, [req](const BlockedUsersLoaded& b) { return b.request == req; });
  REQUIRE(lifted);
  CHECK(lifted->users.empty());
  send_ok(*bob, channel, "after the block");
  receive(*alice, "after the block");
}

TEST_CASE("e2e devices: a DM report discloses one message and the server verifies it") {
  TestServer server;
  auto alice = open_client(server, "alice", temp_dir("alice"), "a-phone");
  auto bob = open_client(server, "bob", temp_dir("bob"), "b-phone");
  std::string channel = open_direct(*alice, "bob");
  auto sent = send_ok(*alice, channel, "an abusive message");
  receive(*bob, "an abusive message");
  auto own = send_ok(*bob, channel, "bob's own words");

  auto req = bob->report_message(channel, sent.seq, "abuse");
  CHECK(testing::request_status(*bob, req).ok());
  // One's own message, or one not in the cache, cannot be reported.
  req = bob->report_message(channel, own.seq, "abuse");
  CHECK(testing::request_status(*bob, req).reason() == "invalid_report");
  req = bob->report_message(channel, 999, "abuse");
  CHECK(testing::request_status(*bob, req).reason() == "no_such_message");
}

}  // namespace
}  // namespace parley
