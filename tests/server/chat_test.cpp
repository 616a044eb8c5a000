// The server's chat behaviour over real WebSockets on 127.0.0.1: channels,
// sequences, fan-out, deduplication, history, persistence across restarts.
#include <doctest/doctest.h>

#include "server_fixture.hpp"

using namespace parley;
using namespace parley::test;

namespace {

std::string create(const std::string& channel, std::uint64_t rid) {
  return R"({"type":"create","rid":)" + std::to_string(rid) + R"(,"channel":")" + channel + "\"}";
}
std::string join(const std::string& channel, std::uint64_t rid) {
  return R"({"type":"join","rid":)" + std::to_string(rid) + R"(,"channel":")" + channel + "\"}";
}
std::string leave(const std::string& channel, std::uint64_t rid) {
  return R"({"type":"leave","rid":)" + std::to_string(rid) + R"(,"channel":")" + channel + "\"}";
}
std::string history(const std::string& channel, std::uint64_t rid, const std::string& extra) {
  return R"({"type":"history","rid":)" + std::to_string(rid) + R"(,"channel":")" + channel + "\"" +
         extra + "}";
}

}  // namespace

TEST_CASE("chat: create, join, send, fan-out, dedup and history over WebSockets") {
  TestServer server;
  Peer alice(server.port());
  auto welcome = alice.auth(server.token("alice"), 7);
  CHECK(welcome.rid == 7);
  CHECK(welcome.user == "alice");
  CHECK(welcome.max_frame == 65536);
  CHECK(welcome.channels.empty());
  CHECK(welcome.server_time > 0);

  alice.send(create("general", 2));
  auto created = alice.expect<wire::Ok>();
  CHECK(created.rid == 2);
  CHECK(created.channel == "general");
  CHECK(created.seq == 1);
  CHECK(created.last_seq == 1);

  Peer bob(server.port());
  bob.auth(server.token("bob"));
  bob.send(join("general", 3));
  auto joined = bob.expect<wire::Ok>();
  CHECK(joined.seq == 2);
  CHECK(joined.last_seq == 2);
  auto join_event = alice.expect<wire::ChannelEvent>();
  CHECK(join_event.channel == "general");
  CHECK(join_event.seq == 2);
  CHECK(join_event.kind == "join");
  CHECK(join_event.sender == "bob");

  // Joining again is a no-op: seq 0, no event for anyone.
  bob.send(join("general", 4));
  auto again = bob.expect<wire::Ok>();
  CHECK(again.seq == 0);
  CHECK(again.last_seq == 2);

  std::string id = client_id(1);
  alice.send(send_json(5, "general", id, "hello bob"));
  auto ack = alice.expect<wire::Ack>();
  CHECK(ack.rid == 5);
  CHECK(ack.seq == 3);
  CHECK(ack.id == id);
  CHECK_FALSE(ack.duplicate);
  auto message = bob.expect<wire::ChannelEvent>();
  CHECK(message.seq == 3);
  CHECK(message.kind == "message");
  CHECK(message.sender == "alice");
  CHECK(message.text == "hello bob");
  CHECK(message.id == id);
  CHECK(message.ts == ack.ts);

  // The originating session got the ack, not the event: its next message is
  // the reply to its next request.
  alice.channels(6);

  bob.send(send_json(7, "general", client_id(2), "hi alice \xf0\x9f\x91\x8b"));
  CHECK(bob.expect<wire::Ack>().seq == 4);
  auto reply = alice.expect<wire::ChannelEvent>();
  CHECK(reply.seq == 4);
  CHECK(reply.text == "hi alice \xf0\x9f\x91\x8b");

  // A resend of the same id returns the original ack and stores nothing.
  alice.send(send_json(8, "general", id, "hello bob (resent)"));
  auto dup = alice.expect<wire::Ack>();
  CHECK(dup.rid == 8);
  CHECK(dup.duplicate);
  CHECK(dup.seq == 3);
  CHECK(dup.ts == ack.ts);
  CHECK(dup.channel == "general");
  CHECK(bob.channels().channels.at(0).last_seq == 4);  // no event reached bob first

  alice.send(history("general", 9, R"(,"after":0,"limit":50)"));
  auto page = alice.expect<wire::HistoryPage>();
  CHECK(page.rid == 9);
  CHECK(page.last_seq == 4);
  REQUIRE(page.events.size() == 4);
  CHECK(page.events[0].kind == "create");
  CHECK(page.events[0].sender == "alice");
  CHECK(page.events[1].kind == "join");
  CHECK(page.events[2].text == "hello bob");
  CHECK(page.events[3].sender == "bob");
  for (std::size_t i = 0; i < page.events.size(); ++i) CHECK(page.events[i].seq == i + 1);

  // Newest first below `before`, returned ascending.
  alice.send(history("general", 10, R"(,"before":4,"limit":2)"));
  auto older = alice.expect<wire::HistoryPage>();
  REQUIRE(older.events.size() == 2);
  CHECK(older.events[0].seq == 2);
  CHECK(older.events[1].seq == 3);
  alice.send(history("general", 11, R"(,"after":1,"before":4,"limit":200)"));
  auto middle = alice.expect<wire::HistoryPage>();
  REQUIRE(middle.events.size() == 2);
  CHECK(middle.events[0].seq == 2);
  alice.send(history("general", 12, R"(,"limit":1)"));
  auto newest = alice.expect<wire::HistoryPage>();
  REQUIRE(newest.events.size() == 1);
  CHECK(newest.events[0].seq == 4);

  auto list = alice.channels(13);
  REQUIRE(list.channels.size() == 1);
  CHECK(list.channels[0].channel == "general");
  CHECK(list.channels[0].last_seq == 4);
}

TEST_CASE("chat: every session of a member hears events except the one that caused them") {
  TestServer server;
  Peer alice1(server.port());
  Peer alice2(server.port());
  Peer bob(server.port());
  alice1.auth(server.token("alice"));
  alice2.auth(server.token("alice"));
  bob.auth(server.token("bob"));

  alice1.send(create("room", 1));
  CHECK(alice1.expect<wire::Ok>().seq == 1);
  auto created = alice2.expect<wire::ChannelEvent>();  // alice's other session
  CHECK(created.kind == "create");
  CHECK(bob.quiet());  // not a member

  bob.send(join("room", 2));
  CHECK(bob.expect<wire::Ok>().seq == 2);
  CHECK(alice1.expect<wire::ChannelEvent>().kind == "join");
  CHECK(alice2.expect<wire::ChannelEvent>().kind == "join");

  alice2.send(send_json(3, "room", client_id(10), "from the phone"));
  CHECK(alice2.expect<wire::Ack>().seq == 3);
  CHECK(alice1.expect<wire::ChannelEvent>().text == "from the phone");
  CHECK(bob.expect<wire::ChannelEvent>().text == "from the phone");
  CHECK(alice2.quiet());

  // Leaving: the leaver's other sessions hear it too, then nothing more.
  Peer bob2(server.port());
  CHECK(bob2.auth(server.token("bob")).channels.size() == 1);
  bob.send(leave("room", 4));
  auto left = bob.expect<wire::Ok>();
  CHECK(left.seq == 4);
  CHECK(bob2.expect<wire::ChannelEvent>().kind == "leave");
  CHECK(alice1.expect<wire::ChannelEvent>().kind == "leave");
  CHECK(alice2.expect<wire::ChannelEvent>().kind == "leave");

  alice1.send(send_json(5, "room", client_id(11), "bob is gone"));
  CHECK(alice1.expect<wire::Ack>().seq == 5);
  CHECK(alice2.expect<wire::ChannelEvent>().seq == 5);
  CHECK(bob.quiet());
  CHECK(bob2.quiet());

  bob.send(send_json(6, "room", client_id(12), "let me back"));
  auto refused = bob.expect_error("not_member");
  CHECK(refused.rid == 6);
  CHECK(refused.id == client_id(12));
  bob.send(leave("room", 7));
  bob.expect_error("not_member");
  bob.send(history("room", 8, R"(,"limit":10)"));
  bob.expect_error("not_member");
  CHECK(bob.channels().channels.empty());

  // Rejoining: the whole history is readable, including what was missed.
  bob.send(join("room", 9));
  CHECK(bob.expect<wire::Ok>().seq == 6);
  bob.send(history("room", 10, R"(,"after":0,"limit":200)"));
  auto page = bob.expect<wire::HistoryPage>();
  REQUIRE(page.events.size() == 6);
  CHECK(page.events[4].text == "bob is gone");
}

TEST_CASE("chat: events arrive gap-free in seq order, packed several per frame") {
  TestServer server;
  Peer alice(server.port());
  Peer bob(server.port());
  alice.auth(server.token("alice"));
  bob.auth(server.token("bob"));
  alice.send(create("busy", 1));
  alice.expect<wire::Ok>();
  bob.send(join("busy", 2));
  bob.expect<wire::Ok>();
  alice.expect<wire::ChannelEvent>();

  // 200 sends in frames of 20 (the array form).
  constexpr int kCount = 200;
  for (int batch = 0; batch < kCount / 20; ++batch) {
    std::string frame = "[";
    for (int i = 0; i < 20; ++i) {
      int n = batch * 20 + i;
      if (i > 0) frame += ",";
      frame += send_json(100 + n, "busy", client_id(1000 + n), "message " + std::to_string(n));
    }
    alice.send(frame + "]");
  }
  for (int n = 0; n < kCount; ++n) {
    auto ack = alice.expect<wire::Ack>();
    CHECK(ack.rid == static_cast<std::uint64_t>(100 + n));
    CHECK(ack.seq == static_cast<std::uint64_t>(3 + n));
  }
  for (int n = 0; n < kCount; ++n) {
    auto event = bob.expect<wire::ChannelEvent>();
    REQUIRE(event.seq == static_cast<std::uint64_t>(3 + n));
    CHECK(event.text == "message " + std::to_string(n));
  }
}

TEST_CASE("chat: history pages stay within the page byte budget") {
  TestServer server;
  Peer alice(server.port());
  alice.auth(server.token("alice"));
  alice.send(create("big", 1));
  alice.expect<wire::Ok>();
  std::string text(8000, 'x');
  const int count = 300;  // about 2.4 MB: more than one page of kMaxHistoryPageBytes
  for (int n = 0; n < count; ++n) {
    alice.send(send_json(10 + n, "big", client_id(n), text));
    alice.expect<wire::Ack>();
  }
  const std::uint64_t last = count + 1;
  alice.send(history("big", 100, R"(,"after":0,"limit":500)"));
  auto first = alice.expect<wire::HistoryPage>();
  CHECK(first.last_seq == last);
  CHECK(first.events.size() >= 2);
  CHECK(first.events.size() < last);
  CHECK(wire::encode(wire::ServerMessage{first}).size() <= wire::kMaxHistoryPageBytes + 8200);
  CHECK(first.events.front().seq == 1);
  // Paging by seq reaches the end without gaps.
  std::uint64_t cursor = first.events.back().seq;
  while (cursor < last) {
    alice.send(history("big", 101, R"(,"after":)" + std::to_string(cursor) + R"(,"limit":500)"));
    auto page = alice.expect<wire::HistoryPage>();
    REQUIRE_FALSE(page.events.empty());
    CHECK(page.events.front().seq == cursor + 1);
    cursor = page.events.back().seq;
  }
  // Backwards from the end: the newest are kept.
  alice.send(history("big", 102, R"(,"limit":500)"));
  auto newest = alice.expect<wire::HistoryPage>();
  REQUIRE_FALSE(newest.events.empty());
  CHECK(newest.events.back().seq == last);
  CHECK(newest.events.size() < last);
}

TEST_CASE("chat: channels, members and messages survive a restart") {
  TestServer server;
  {
    Peer alice(server.port());
    alice.auth(server.token("alice"));
    alice.send(create("durable", 1));
    alice.expect<wire::Ok>();
    alice.send(send_json(2, "durable", client_id(77), "still here?"));
    CHECK(alice.expect<wire::Ack>().seq == 2);
  }
  server.restart();
  Peer alice(server.port());
  auto welcome = alice.auth(server.token("alice"));
  REQUIRE(welcome.channels.size() == 1);
  CHECK(welcome.channels[0].channel == "durable");
  CHECK(welcome.channels[0].last_seq == 2);
  // Dedup is durable too.
  alice.send(send_json(3, "durable", client_id(77), "still here?"));
  auto dup = alice.expect<wire::Ack>();
  CHECK(dup.duplicate);
  CHECK(dup.seq == 2);
  // The sequence goes on without a gap.
  alice.send(send_json(4, "durable", client_id(78), "yes"));
  CHECK(alice.expect<wire::Ack>().seq == 3);
  alice.send(create("durable", 5));
  alice.expect_error("channel_exists");
}

TEST_CASE("chat: shutdown closes every connection with 1001 shutting_down") {
  TestServer server;
  Peer alice(server.port());
  alice.auth(server.token("alice"));
  Peer anonymous(server.port());  // not authenticated yet
  server.server->stop();
  REQUIRE(alice.ws().wait_closed());
  CHECK(alice.ws().close_code() == 1001);
  CHECK(alice.ws().close_reason() == "shutting_down");
  REQUIRE(anonymous.ws().wait_closed());
  CHECK(anonymous.ws().close_code() == 1001);
  CHECK(RawWsClient::connect(server.port(), "parley.v1", std::chrono::seconds(2)) == nullptr);
}
