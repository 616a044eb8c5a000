// Typing signals and receipt cursors over real WebSockets on 127.0.0.1:
// who hears what, throttling, monotonic cursors per device and per user,
// persistence across restarts, refusals.
#include <doctest/doctest.h>

#include "server_fixture.hpp"

using namespace parley;
using namespace parley::test;

namespace {

std::string request(const wire::ClientMessage& message) { return wire::encode(message); }

std::string create(const std::string& channel, std::uint64_t rid) {
  return request(wire::CreateChannel{rid, channel});
}
std::string join(const std::string& channel, std::uint64_t rid) {
  return request(wire::JoinChannel{rid, channel});
}
std::string leave(const std::string& channel, std::uint64_t rid) {
  return request(wire::LeaveChannel{rid, channel});
}
std::string typing(const std::string& channel, bool active, std::uint64_t rid = 0) {
  return request(wire::Typing{rid, channel, active});
}
std::string receipt(const std::string& channel, const std::string& kind, std::uint64_t seq,
                    std::uint64_t rid) {
  return request(wire::Receipt{rid, channel, kind, seq});
}
std::string receipts(const std::string& channel, std::uint64_t rid) {
  return request(wire::ListReceipts{rid, channel});
}

void expect_typing(Peer& peer, const std::string& channel, const std::string& user, bool active) {
  auto event = peer.expect<wire::TypingEvent>();
  CHECK(event.channel == channel);
  CHECK(event.user == user);
  CHECK(event.active == active);
}

wire::ReceiptEvent expect_receipt(Peer& peer, const std::string& user, const std::string& kind,
                                  std::uint64_t seq) {
  auto event = peer.expect<wire::ReceiptEvent>();
  CHECK(event.user == user);
  CHECK(event.kind == kind);
  CHECK(event.seq == seq);
  return event;
}

wire::Ok expect_ok(Peer& peer, std::uint64_t rid, std::uint64_t seq, std::uint64_t last_seq) {
  auto ok = peer.expect<wire::Ok>();
  CHECK(ok.rid == rid);
  CHECK(ok.seq == seq);
  CHECK(ok.last_seq == last_seq);
  return ok;
}

// "user:seq" or "user/device:seq" per cursor, in the order listed.
std::vector<std::string> cursors(const std::vector<wire::ReceiptCursor>& list) {
  std::vector<std::string> out;
  for (const auto& c : list) {
    out.push_back(c.user + (c.device ? "/" + *c.device : "") + ":" + std::to_string(c.seq));
  }
  return out;
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("typing: relayed to the other members' sessions only, throttled, never stored") {
  TestServer server;
  Peer alice1(server.port());
  Peer alice2(server.port());
  Peer bob1(server.port());
  Peer bob2(server.port());
  Peer carol(server.port());
  alice1.auth(server.token("alice"), 1, "alice-phone");
  alice2.auth(server.token("alice"), 1, "alice-laptop");
  bob1.auth(server.token("bob"), 1, "bob-phone");
  bob2.auth(server.token("bob"), 1, "bob-laptop");
  carol.auth(server.token("carol"));

  alice1.send(create("t", 2));
  alice1.expect<wire::Ok>();
  alice2.expect<wire::ChannelEvent>();
  bob1.send(join("t", 3));
  bob1.expect<wire::Ok>();
  bob2.expect<wire::ChannelEvent>();
  alice1.expect<wire::ChannelEvent>();
  alice2.expect<wire::ChannelEvent>();

  SUBCASE("to every session of every other member, nothing back to the sender") {
    alice1.send(typing("t", true, 4));
    expect_typing(bob1, "t", "alice", true);
    expect_typing(bob2, "t", "alice", true);
    alice1.send(typing("t", false, 5));
    expect_typing(bob1, "t", "alice", false);
    expect_typing(bob2, "t", "alice", false);
    // No ok for a typing signal, and the sender's own devices hear nothing.
    CHECK(alice1.quiet());
    CHECK(alice2.quiet());
    CHECK(carol.quiet());  // not a member
    // bob's phone types: alice's devices hear it, bob's laptop does not.
    bob1.send(typing("t", true));
    expect_typing(alice1, "t", "bob", true);
    expect_typing(alice2, "t", "bob", true);
    CHECK(bob2.quiet());
    CHECK(bob1.quiet());
  }

  SUBCASE("active signals closer than the throttle are dropped, stops never") {
    bob1.send("[" + typing("t", true) + "," + typing("t", true) + "," + typing("t", false) + "," +
              typing("t", false) + "]");
    expect_typing(alice1, "t", "bob", true);
    expect_typing(alice1, "t", "bob", false);
    expect_typing(alice1, "t", "bob", false);
    CHECK(alice1.quiet());
    // The throttle is per session: bob's other device is not held back.
    bob2.send(typing("t", true));
    expect_typing(alice1, "t", "bob", true);
  }

  SUBCASE("refusals") {
    carol.send(typing("t", true, 6));
    auto refused = carol.expect_error("not_member");
    CHECK(refused.rid == 6);
    CHECK(refused.message.find("\"t\"") != std::string::npos);
    carol.send(typing("nowhere", true, 7));
    CHECK(carol.expect_error("no_such_channel").rid == 7);
    carol.send(typing("bad name", false, 8));
    CHECK(carol.expect_error("invalid_name").rid == 8);
    carol.send(R"({"type":"typing","rid":9,"channel":"t"})");
    CHECK(carol.expect_error("missing_field").rid == 9);
    carol.send(R"({"type":"typing","rid":10,"channel":"t","active":"yes"})");
    CHECK(carol.expect_error("bad_field").rid == 10);
    CHECK(alice1.quiet());
    CHECK(bob1.quiet());
    carol.channels();  // the connection goes on
  }

  SUBCASE("a member who left hears no more, and may not signal") {
    bob2.send(leave("t", 11));
    bob2.expect<wire::Ok>();
    bob1.expect<wire::ChannelEvent>();
    alice1.expect<wire::ChannelEvent>();
    alice2.expect<wire::ChannelEvent>();
    alice1.send(typing("t", true));
    CHECK(alice2.quiet());
    CHECK(bob1.quiet());
    CHECK(bob2.quiet());
    bob1.send(typing("t", true, 12));
    bob1.expect_error("not_member");
  }

  SUBCASE("never stored: nothing of it after a restart") {
    alice1.send(typing("t", true));
    bob1.send(typing("t", true));
    expect_typing(alice1, "t", "bob", true);
    expect_typing(bob1, "t", "alice", true);
    server.restart();
    Peer alice(server.port());
    auto welcome = alice.auth(server.token("alice"));
    REQUIRE(welcome.channels.size() == 1);
    CHECK(welcome.channels[0].last_seq == 2);
    alice.send(R"({"type":"history","rid":2,"channel":"t","after":0,"limit":200})");
    auto page = alice.expect<wire::HistoryPage>();
    REQUIRE(page.events.size() == 2);
    CHECK(page.events[0].kind == "create");
    CHECK(page.events[1].kind == "join");
    CHECK(alice.quiet());  // no typing replayed
  }
}

TEST_CASE("receipts: monotonic cursors, delivered per device, read per user") {
  TestServer server;
  Peer phone(server.port());
  Peer laptop(server.port());
  Peer bob(server.port());
  phone.auth(server.token("alice"), 1, "phone");
  laptop.auth(server.token("alice"), 1, "laptop");
  bob.auth(server.token("bob"), 1, "bob-desk");

  phone.send(create("r", 2));
  phone.expect<wire::Ok>();
  laptop.expect<wire::ChannelEvent>();
  bob.send(join("r", 3));
  bob.expect<wire::Ok>();
  phone.expect<wire::ChannelEvent>();
  laptop.expect<wire::ChannelEvent>();
  for (int n = 0; n < 5; ++n) {  // seq 3..7
    phone.send(send_json(10 + n, "r", client_id(n), "message " + std::to_string(n)));
    phone.expect<wire::Ack>();
    laptop.expect<wire::ChannelEvent>();
    bob.expect<wire::ChannelEvent>();
  }

  // Read, per user: the other sessions (the user's other device too) hear it;
  // the session that moved the cursor gets ok with the stored cursor.
  phone.send(receipt("r", "read", 5, 20));
  auto ok = expect_ok(phone, 20, 5, 7);
  CHECK(ok.channel == "r");
  auto read = expect_receipt(laptop, "alice", "read", 5);
  CHECK(read.channel == "r");
  CHECK_FALSE(read.device.has_value());
  CHECK_FALSE(expect_receipt(bob, "alice", "read", 5).device.has_value());
  CHECK(phone.quiet());

  // Lower: the stored cursor stays and nobody hears of it.
  phone.send(receipt("r", "read", 3, 21));
  expect_ok(phone, 21, 5, 7);
  // The same cursor from the user's other device: already there.
  laptop.send(receipt("r", "read", 5, 22));
  expect_ok(laptop, 22, 5, 7);
  CHECK(laptop.quiet());
  CHECK(bob.quiet());
  CHECK(phone.quiet());

  laptop.send(receipt("r", "read", 6, 23));
  expect_ok(laptop, 23, 6, 7);
  expect_receipt(phone, "alice", "read", 6);
  expect_receipt(bob, "alice", "read", 6);

  // Delivered, per device: each device keeps its own cursor.
  phone.send(receipt("r", "delivered", 7, 24));
  expect_ok(phone, 24, 7, 7);
  CHECK(expect_receipt(laptop, "alice", "delivered", 7).device == "phone");
  CHECK(expect_receipt(bob, "alice", "delivered", 7).device == "phone");
  laptop.send(receipt("r", "delivered", 4, 25));
  expect_ok(laptop, 25, 4, 7);
  CHECK(expect_receipt(phone, "alice", "delivered", 4).device == "laptop");
  CHECK(expect_receipt(bob, "alice", "delivered", 4).device == "laptop");
  laptop.send(receipt("r", "delivered", 3, 26));
  expect_ok(laptop, 26, 4, 7);
  CHECK(phone.quiet());
  CHECK(bob.quiet());

  bob.send(receipt("r", "read", 7, 27));
  expect_ok(bob, 27, 7, 7);
  expect_receipt(phone, "bob", "read", 7);
  expect_receipt(laptop, "bob", "read", 7);
  bob.send(receipt("r", "delivered", 7, 28));
  expect_ok(bob, 28, 7, 7);
  CHECK(expect_receipt(phone, "bob", "delivered", 7).device == "bob-desk");
  expect_receipt(laptop, "bob", "delivered", 7);

  auto check_list = [](const wire::ReceiptList& list, std::uint64_t rid) {
    CHECK(list.rid == rid);
    CHECK(list.channel == "r");
    CHECK(list.members == Strings{"alice", "bob"});
    CHECK(cursors(list.read) == Strings{"alice:6", "bob:7"});
    CHECK(cursors(list.delivered) == Strings{"alice/laptop:4", "alice/phone:7", "bob/bob-desk:7"});
  };
  bob.send(receipts("r", 29));
  check_list(bob.expect<wire::ReceiptList>(), 29);

  SUBCASE("the cursors survive a restart") {
    server.restart();
    Peer later(server.port());
    later.auth(server.token("bob"), 1, "bob-tablet");
    later.send(receipts("r", 30));
    check_list(later.expect<wire::ReceiptList>(), 30);
    // Still monotonic after the restart; a new device starts its own cursor.
    later.send(receipt("r", "read", 2, 31));
    expect_ok(later, 31, 7, 7);
    later.send(receipt("r", "delivered", 2, 32));
    expect_ok(later, 32, 2, 7);
  }

  SUBCASE("leaving keeps the rows; the list shows current members only") {
    bob.send(leave("r", 40));
    expect_ok(bob, 40, 8, 8);
    phone.expect<wire::ChannelEvent>();
    laptop.expect<wire::ChannelEvent>();
    phone.send(receipts("r", 41));
    auto list = phone.expect<wire::ReceiptList>();
    CHECK(list.members == Strings{"alice"});
    CHECK(cursors(list.read) == Strings{"alice:6"});
    CHECK(cursors(list.delivered) == Strings{"alice/laptop:4", "alice/phone:7"});
    bob.send(receipts("r", 42));
    CHECK(bob.expect_error("not_member").rid == 42);
    bob.send(receipt("r", "read", 8, 43));
    CHECK(bob.expect_error("not_member").rid == 43);
    bob.send(join("r", 44));
    bob.expect<wire::Ok>();
    phone.expect<wire::ChannelEvent>();
    laptop.expect<wire::ChannelEvent>();
    phone.send(receipts("r", 45));
    CHECK(cursors(phone.expect<wire::ReceiptList>().read) == Strings{"alice:6", "bob:7"});
  }
}

TEST_CASE("receipts: a session without a device id, and a fresh channel") {
  TestServer server;
  Peer alice(server.port());
  alice.auth(server.token("alice"));  // no device: the device id is ""
  alice.send(create("solo", 1));
  alice.expect<wire::Ok>();
  alice.send(receipts("solo", 2));
  auto empty = alice.expect<wire::ReceiptList>();
  CHECK(empty.members == Strings{"alice"});
  CHECK(empty.read.empty());
  CHECK(empty.delivered.empty());
  alice.send(receipt("solo", "delivered", 1, 3));
  expect_ok(alice, 3, 1, 1);
  alice.send(receipts("solo", 4));
  CHECK(cursors(alice.expect<wire::ReceiptList>().delivered) == Strings{"alice/:1"});
}

TEST_CASE("receipts: refusals") {
  TestServer server;
  Peer alice(server.port());
  Peer carol(server.port());
  alice.auth(server.token("alice"), 1, "phone");
  carol.auth(server.token("carol"), 1, "desk");
  alice.send(create("r", 2));
  alice.expect<wire::Ok>();
  alice.send(send_json(3, "r", client_id(1), "one"));
  alice.expect<wire::Ack>();  // last_seq 2

  alice.send(receipt("r", "seen", 1, 10));
  auto kind = alice.expect_error("invalid_kind");
  CHECK(kind.rid == 10);
  CHECK(kind.message.find("\"seen\"") != std::string::npos);
  alice.send(receipt("r", "", 1, 11));
  alice.expect_error("invalid_kind");
  alice.send(receipt("r", "read", 0, 12));
  auto zero = alice.expect_error("invalid_seq");
  CHECK(zero.rid == 12);
  CHECK(zero.message.find("0") != std::string::npos);
  alice.send(receipt("r", "delivered", 3, 13));
  auto beyond = alice.expect_error("invalid_seq");
  CHECK(beyond.message.find("3") != std::string::npos);
  alice.send(receipt("r", "read", UINT64_MAX, 14));
  alice.expect_error("invalid_seq");
  alice.send(R"({"type":"receipt","rid":15,"channel":"r","kind":"read","seq":-1})");
  CHECK(alice.expect_error("bad_field").rid == 15);
  alice.send(R"({"type":"receipt","rid":16,"channel":"r","kind":"read"})");
  CHECK(alice.expect_error("missing_field").rid == 16);
  alice.send(R"({"type":"receipt","rid":17,"channel":"r","kind":"\ud800","seq":1})");
  alice.expect_error("invalid_utf8");
  alice.send(receipt("nowhere", "read", 1, 18));
  alice.expect_error("no_such_channel");
  alice.send(receipt("bad name", "read", 1, 19));
  alice.expect_error("invalid_name");
  alice.send(receipts("nowhere", 20));
  alice.expect_error("no_such_channel");

  carol.send(receipt("r", "read", 1, 21));
  CHECK(carol.expect_error("not_member").rid == 21);
  // A non-member learns nothing of the channel's sequence from the refusal.
  carol.send(receipt("r", "read", 99, 22));
  carol.expect_error("not_member");
  carol.send(receipts("r", 23));
  CHECK(carol.expect_error("not_member").rid == 23);

  // Nothing was stored by any of them.
  alice.send(receipts("r", 24));
  auto list = alice.expect<wire::ReceiptList>();
  CHECK(list.read.empty());
  CHECK(list.delivered.empty());
  CHECK(carol.quiet());
}
