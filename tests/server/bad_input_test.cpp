// Bad input over a real WebSocket: every case gets its error code, the
// connection goes on (or closes with its code), the server keeps serving, and
// stored data stays intact.
#include <doctest/doctest.h>

#include "server_fixture.hpp"

using namespace parley;
using namespace parley::test;

namespace {

// A server with channel "general" (alice, bob) holding one message; `alice`
// is authenticated. check_intact() proves both the connection and the data.
struct Setup {
  TestServer server;
  Peer alice{server.port()};

  Setup() {
    alice.auth(server.token("alice"));
    alice.send(R"({"type":"create","rid":1,"channel":"general"})");
    REQUIRE(alice.expect<wire::Ok>().seq == 1);
    alice.send(send_json(2, "general", client_id(1), "precious"));
    REQUIRE(alice.expect<wire::Ack>().seq == 2);
    Peer bob(server.port());
    bob.auth(server.token("bob"));
    bob.send(R"({"type":"create","rid":1,"channel":"bobs"})");
    REQUIRE(bob.expect<wire::Ok>().seq == 1);
  }

  void check_intact(Peer& peer) {
    peer.send(R"({"type":"history","rid":500,"channel":"general","after":0,"limit":10})");
    auto page = peer.expect<wire::HistoryPage>();
    CHECK(page.rid == 500);
    REQUIRE(page.events.size() >= 2);
    CHECK(page.events[0].kind == "create");
    CHECK(page.events[1].text == "precious");
    CHECK(page.last_seq == page.events.back().seq);
  }
  void check_intact() { check_intact(alice); }
};

}  // namespace

TEST_CASE("bad input: malformed frames get their codes and the connection goes on") {
  Setup s;
  struct Case {
    const char* name;
    std::string frame;
    const char* code;
    std::optional<std::uint64_t> rid;
  };
  const Case cases[] = {
      {"not json", "{\"type\":", "bad_frame", std::nullopt},
      {"garbage", "hello", "bad_frame", std::nullopt},
      {"empty frame", "", "bad_frame", std::nullopt},
      {"trailing bytes", R"({"type":"channels","rid":3} x)", "bad_frame", std::nullopt},
      {"not an object", "42", "bad_frame", std::nullopt},
      {"empty array", "[]", "bad_frame", std::nullopt},
      {"nan", R"({"type":"history","rid":4,"channel":"general","limit":NaN})", "bad_frame",
       std::nullopt},
      {"unknown type", R"({"type":"teleport","rid":5})", "unknown_type", 5},
      {"missing type", R"({"rid":6})", "missing_field", 6},
      {"missing field", R"({"type":"create","rid":7})", "missing_field", 7},
      {"null field", R"({"type":"join","rid":8,"channel":null})", "missing_field", 8},
      {"wrong type", R"({"type":"create","rid":9,"channel":7})", "bad_field", 9},
      {"wrong type of type", R"({"type":3,"rid":10})", "bad_field", 10},
      {"negative u64", R"({"type":"history","rid":11,"channel":"general","before":-1,"limit":5})",
       "bad_field", 11},
      {"fraction", R"({"type":"history","rid":12,"channel":"general","limit":1.5})", "bad_field",
       12},
      {"invalid utf-8 bytes", "{\"type\":\"create\",\"rid\":13,\"channel\":\"a\xff\xfe\"}",
       "invalid_utf8", std::nullopt},
      {"overlong utf-8", "{\"type\":\"create\",\"rid\":14,\"channel\":\"\xc0\xaf\"}",
       "invalid_utf8", std::nullopt},
      {"lone surrogate escape", R"({"type":"create","rid":15,"channel":"\ud800"})", "invalid_utf8",
       std::nullopt},
      {"lone low surrogate escape", R"({"type":"create","rid":17,"channel":"\udc00"})",
       "invalid_utf8", std::nullopt},
      {"lone low surrogate in text",
       R"({"type":"send","rid":18,"channel":"general","id":"00000000000000000000000000000009","text":"a\udc00b"})",
       "invalid_utf8", std::nullopt},
      {"surrogate in text",
       send_json(16, "general", client_id(9), "x")
           .replace(send_json(16, "general", client_id(9), "x").find("\"x\""), 3,
                    R"("\ud800 alone")"),
       "invalid_utf8", std::nullopt},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    s.alice.send(c.frame);
    auto error = s.alice.expect_error(c.code);
    if (c.rid) CHECK(error.rid == c.rid);
    s.alice.channels();
  }
  s.check_intact();
}

TEST_CASE("bad input: refused requests") {
  Setup s;
  s.alice.send(R"({"type":"create","rid":20,"channel":"gen eral"})");
  auto spaced = s.alice.expect_error("invalid_name");
  CHECK(spaced.rid == 20);
  CHECK(spaced.message.find("gen eral") != std::string::npos);
  s.alice.send(R"({"type":"create","rid":21,"channel":""})");
  s.alice.expect_error("invalid_name");
  s.alice.send(R"({"type":"create","rid":22,"channel":")" + std::string(65, 'c') + "\"}");
  s.alice.expect_error("invalid_name");
  s.alice.send(R"({"type":"create","rid":23,"channel":"tab\there"})");
  s.alice.expect_error("invalid_name");
  s.alice.send(R"({"type":"join","rid":24,"channel":"bell\u0007"})");
  s.alice.expect_error("invalid_name");
  s.alice.send(R"({"type":"create","rid":25,"channel":"general"})");
  s.alice.expect_error("channel_exists");
  s.alice.send(R"({"type":"join","rid":26,"channel":"nowhere"})");
  s.alice.expect_error("no_such_channel");
  s.alice.send(R"({"type":"leave","rid":27,"channel":"nowhere"})");
  s.alice.expect_error("no_such_channel");
  s.alice.send(R"({"type":"leave","rid":28,"channel":"bobs"})");
  s.alice.expect_error("not_member");

  // Sends to channels alice is not in, and malformed sends.
  auto refused = [&](const std::string& frame, const char* code) {
    s.alice.send(frame);
    return s.alice.expect_error(code);
  };
  auto not_member = refused(send_json(30, "bobs", client_id(30), "let me in"), "not_member");
  CHECK(not_member.rid == 30);
  CHECK(not_member.id == client_id(30));
  refused(send_json(31, "nowhere", client_id(31), "hello?"), "no_such_channel");
  refused(send_json(32, "general", "ABCDEF00ABCDEF00ABCDEF00ABCDEF00", "upper case"), "invalid_id");
  refused(send_json(33, "general", "1234", "short"), "invalid_id");
  refused(send_json(34, "general", client_id(34) + "0", "long"), "invalid_id");
  refused(send_json(35, "general", std::string(31, 'a') + "g", "not hex"), "invalid_id");
  refused(send_json(36, "general", client_id(36), ""), "invalid_text");
  refused(send_json(37, "general", client_id(37), std::string(8193, 't')), "invalid_text");
  refused(send_json(38, "gen eral", client_id(38), "x"), "invalid_name");
  s.alice.send(send_json(39, "general", client_id(39), std::string(8192, 't')));
  CHECK(s.alice.expect<wire::Ack>().seq == 3);

  refused(R"({"type":"history","rid":40,"channel":"general","limit":0})", "invalid_limit");
  refused(R"({"type":"history","rid":41,"channel":"general","limit":501})", "invalid_limit");
  refused(R"({"type":"history","rid":42,"channel":"bobs","limit":10})", "not_member");
  refused(R"({"type":"history","rid":43,"channel":"nowhere","limit":10})", "no_such_channel");
  refused(R"({"type":"auth","rid":44,"token":"whatever"})", "already_authenticated");

  // Refusals stored nothing: the message above is seq 3, the next is 4.
  s.alice.send(send_json(45, "general", client_id(45), "after the refusals"));
  CHECK(s.alice.expect<wire::Ack>().seq == 4);
  s.alice.send(R"({"type":"history","rid":46,"channel":"general","after":0,"limit":10})");
  auto page = s.alice.expect<wire::HistoryPage>();
  REQUIRE(page.events.size() == 4);
  CHECK(page.events[1].text == "precious");
}

TEST_CASE("bad input: a bad item of an array does not spoil the others") {
  Setup s;
  s.alice.send(R"([{"type":"channels","rid":50},{"type":"bogus","rid":51},7,)"
               R"({"type":"create","rid":52,"channel":"second"}])");
  CHECK(s.alice.expect<wire::ChannelList>().rid == 50);
  CHECK(s.alice.expect_error("unknown_type").rid == 51);
  s.alice.expect_error("bad_frame");
  CHECK(s.alice.expect<wire::Ok>().rid == 52);
  s.check_intact();
}

TEST_CASE("bad input: oversized, fragmented and binary frames") {
  Setup s;
  // One frame above the limit, with a valid JSON shape: refused, dropped.
  std::string big = send_json(60, "general", client_id(60), std::string(70000, 'b'));
  s.alice.send(big);
  auto too_large = s.alice.expect_error("frame_too_large");
  CHECK_FALSE(too_large.rid.has_value());
  s.alice.channels();

  // Far above the limit: the server does not buffer it.
  s.alice.send(std::string(1 << 20, '['));
  s.alice.expect_error("frame_too_large");
  s.alice.channels();

  // Too large only in total, across continuation frames: one error.
  s.alice.ws().send_fragments({std::string(40000, ' '), std::string(40000, ' '), "{}"});
  s.alice.expect_error("frame_too_large");
  s.alice.channels();

  // A valid message in fragments is reassembled.
  std::string frame = send_json(61, "general", client_id(61), "in three parts");
  REQUIRE(
      s.alice.ws().send_fragments({frame.substr(0, 10), frame.substr(10, 20), frame.substr(30)}));
  CHECK(s.alice.expect<wire::Ack>().seq == 3);

  // Exactly at the limit is accepted (padded with JSON whitespace).
  std::string at_limit = R"({"type":"channels","rid":62})";
  at_limit += std::string(65536 - at_limit.size(), ' ');
  s.alice.send(at_limit);
  CHECK(s.alice.expect<wire::ChannelList>().rid == 62);
  s.alice.send(at_limit + " ");
  s.alice.expect_error("frame_too_large");

  REQUIRE(s.alice.ws().send_binary(R"({"type":"channels","rid":63})"));
  s.alice.expect_error("binary_frame");
  REQUIRE(s.alice.ws().send_binary(std::string("\x00\x01\x02\xff", 4)));
  s.alice.expect_error("binary_frame");
  s.alice.channels();
  s.check_intact();
}

TEST_CASE("bad input: before authentication") {
  Setup s;
  SUBCASE("first frame not auth") {
    Peer p(s.server.port());
    p.send(R"({"type":"channels","rid":70})");
    auto error = p.expect_error("not_authenticated");
    CHECK(error.rid == 70);
    REQUIRE(p.ws().wait_closed());
    CHECK(p.ws().close_code() == 4003);
    CHECK(p.ws().close_reason() == "not_authenticated");
  }
  SUBCASE("malformed first frame") {
    Peer p(s.server.port());
    p.send("not json");
    p.expect_error("bad_frame");
    REQUIRE(p.ws().wait_closed());
    CHECK(p.ws().close_code() == 4003);
  }
  SUBCASE("auth without token") {
    Peer p(s.server.port());
    p.send(R"({"type":"auth","rid":71})");
    CHECK(p.expect_error("missing_field").rid == 71);
    REQUIRE(p.ws().wait_closed());
    CHECK(p.ws().close_code() == 4003);
  }
  SUBCASE("device id out of bounds") {
    Peer p(s.server.port());
    p.send(R"({"type":"auth","rid":78,"device":")" + std::string(65, 'd') + R"(","token":")" +
           s.server.token("alice") + "\"}");
    CHECK(p.expect_error("bad_field").rid == 78);
    REQUIRE(p.ws().wait_closed());
    CHECK(p.ws().close_code() == 4003);
  }
  SUBCASE("binary first frame") {
    Peer p(s.server.port());
    REQUIRE(p.ws().send_binary("x"));
    p.expect_error("binary_frame");
    REQUIRE(p.ws().wait_closed());
    CHECK(p.ws().close_code() == 4003);
  }
  SUBCASE("forged token") {
    token::SigningKey other = token::generate_key();
    Peer p(s.server.port());
    p.send(R"({"type":"auth","rid":72,"token":")" + token::mint(other, "alice", 3600, unix_now()) +
           "\"}");
    auto error = p.expect_error("invalid_token");
    CHECK(error.rid == 72);
    REQUIRE(p.ws().wait_closed());
    CHECK(p.ws().close_code() == 4001);
    CHECK(p.ws().close_reason() == "invalid_token");
  }
  SUBCASE("malformed token") {
    Peer p(s.server.port());
    p.send(R"({"type":"auth","rid":73,"token":"pt1.garbage"})");
    p.expect_error("invalid_token");
    REQUIRE(p.ws().wait_closed());
    CHECK(p.ws().close_code() == 4001);
  }
  SUBCASE("expired token") {
    Peer p(s.server.port());
    std::string expired = token::mint(s.server.key, "alice", 60, unix_now() - 3600);
    p.send(R"({"type":"auth","rid":74,"token":")" + expired + "\"}");
    auto error = p.expect_error("token_expired");
    CHECK(error.rid == 74);
    REQUIRE(p.ws().wait_closed());
    CHECK(p.ws().close_code() == 4002);
    CHECK(p.ws().close_reason() == "token_expired");
  }
  SUBCASE("requests packed after a refused auth are not run") {
    Peer p(s.server.port());
    p.send(R"([{"type":"auth","rid":75,"token":"pt1.x.y"},)"
           R"({"type":"create","rid":76,"channel":"sneaky"}])");
    p.expect_error("invalid_token");
    REQUIRE(p.ws().wait_closed());
    s.alice.send(R"({"type":"join","rid":77,"channel":"sneaky"})");
    s.alice.expect_error("no_such_channel");
  }
  // Whatever happened, the server goes on serving, data intact.
  s.check_intact();
  Peer fresh(s.server.port());
  CHECK(fresh.auth(s.server.token("alice")).channels.size() == 1);
  s.check_intact(fresh);
}
