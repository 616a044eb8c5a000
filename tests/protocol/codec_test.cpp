#include <doctest/doctest.h>

#include <string>

#include "protocol/codec.hpp"

using namespace parley::wire;

namespace {

template <class T>
T decode_one_client(const std::string& frame) {
  auto items = decode_client_frame(frame);
  REQUIRE(items.size() == 1);
  auto* msg = std::get_if<ClientMessage>(&items[0]);
  REQUIRE(msg != nullptr);
  auto* value = std::get_if<T>(msg);
  REQUIRE(value != nullptr);
  return *value;
}

DecodeError client_error(const std::string& frame) {
  auto items = decode_client_frame(frame);
  REQUIRE(items.size() == 1);
  auto* err = std::get_if<DecodeError>(&items[0]);
  REQUIRE(err != nullptr);
  return *err;
}

template <class T>
T round_trip_server(const T& value) {
  std::string json = encode(ServerMessage(value));
  auto items = decode_server_frame(json);
  REQUIRE(items.size() == 1);
  auto* msg = std::get_if<ServerMessage>(&items[0]);
  REQUIRE(msg != nullptr);
  auto* out = std::get_if<T>(msg);
  REQUIRE(out != nullptr);
  return *out;
}

}  // namespace

TEST_CASE("client messages round trip through JSON") {
  Send send{7, "general", "0123456789abcdef0123456789abcdef", "hello \"world\"\n\xc3\xa9"};
  std::string json = encode(ClientMessage(send));
  CHECK(json.find("\"type\":\"send\"") != std::string::npos);
  auto back = decode_one_client<Send>(json);
  CHECK(back.rid == 7);
  CHECK(back.channel == "general");
  CHECK(back.id == send.id);
  CHECK(back.text == send.text);

  History h{9, "general", 40, std::nullopt, 20};
  std::string hj = encode(ClientMessage(h));
  CHECK(hj.find("after") == std::string::npos);  // absent optional fields are left out
  CHECK(hj.find("null") == std::string::npos);
  auto hb = decode_one_client<History>(hj);
  CHECK(hb.before == std::optional<std::uint64_t>(40));
  CHECK_FALSE(hb.after.has_value());
  CHECK(hb.limit == 20);

  Auth a{1, "tok", "dev1", std::nullopt};
  auto ab = decode_one_client<Auth>(encode(ClientMessage(a)));
  CHECK(ab.device == std::optional<std::string>("dev1"));
  CHECK_FALSE(ab.client.has_value());
}

TEST_CASE("server messages round trip through JSON") {
  Welcome w{1, "alice", "d1", 1700000000000, 65536, {{"general", 5}, {"random", 0}}};
  auto wb = round_trip_server(w);
  CHECK(wb.user == "alice");
  REQUIRE(wb.channels.size() == 2);
  CHECK(wb.channels[0].channel == "general");
  CHECK(wb.channels[0].last_seq == 5);

  ChannelEvent ev{"general", 3, "message", "bob", 1700000000123, std::string(32, 'a'), "hi"};
  HistoryPage page{4, "general", 9, {ev, ChannelEvent{"general", 4, "join", "carol", 5, {}, {}}}};
  auto pb = round_trip_server(page);
  REQUIRE(pb.events.size() == 2);
  CHECK(pb.events[0].text == std::optional<std::string>("hi"));
  CHECK_FALSE(pb.events[1].text.has_value());
  CHECK(pb.events[1].kind == "join");

  Ack ack{2, "general", std::string(32, 'b'), 10, 99, false};
  std::string aj = encode(ServerMessage(ack));
  CHECK(aj.find("duplicate") == std::string::npos);
  ack.duplicate = true;
  CHECK(round_trip_server(ack).duplicate);

  Error e{std::nullopt, "bad_frame", "malformed", std::nullopt};
  auto eb = round_trip_server(e);
  CHECK_FALSE(eb.rid.has_value());
  CHECK(eb.code == "bad_frame");

  auto empty = round_trip_server(ChannelList{3, {}});
  CHECK(empty.channels.empty());
}

TEST_CASE("array frames carry several messages, each decoded on its own") {
  auto items = decode_client_frame(
      R"([{"type":"join","rid":1,"channel":"a"},{"type":"nope","rid":2},{"type":"leave","rid":3,"channel":"b"}])");
  REQUIRE(items.size() == 3);
  CHECK(std::holds_alternative<ClientMessage>(items[0]));
  auto* err = std::get_if<DecodeError>(&items[1]);
  REQUIRE(err != nullptr);
  CHECK(err->code == "unknown_type");
  CHECK(err->rid == std::optional<std::uint64_t>(2));
  CHECK(std::holds_alternative<ClientMessage>(items[2]));
}

TEST_CASE("pack makes one object or an array") {
  auto a = std::make_shared<const std::string>(encode(ServerMessage(Ok{1, "a", 0, 1})));
  auto b = std::make_shared<const std::string>(encode(ServerMessage(Ok{2, "b", 0, 1})));
  CHECK(pack({a}) == *a);
  std::string both = pack({a, b});
  auto items = decode_server_frame(both);
  REQUIRE(items.size() == 2);
  CHECK(std::get<Ok>(std::get<ServerMessage>(items[1])).rid == 2);
}

TEST_CASE("bad input gets a distinct error code") {
  CHECK(client_error("{not json").code == "bad_frame");
  CHECK(client_error("").code == "bad_frame");
  CHECK(client_error("42").code == "bad_frame");
  CHECK(client_error("[]").code == "bad_frame");
  CHECK(client_error(R"({"rid":1,"channel":"a"})").code == "missing_field");
  CHECK(client_error(R"({"type":5})").code == "bad_field");
  CHECK(client_error(R"({"type":"launch","rid":1})").code == "unknown_type");
  auto missing = client_error(R"({"type":"join","rid":1})");
  CHECK(missing.code == "missing_field");
  CHECK(missing.message.find("channel") != std::string::npos);
  CHECK(missing.rid == std::optional<std::uint64_t>(1));
  auto wrong = client_error(R"({"type":"join","rid":1,"channel":12})");
  CHECK(wrong.code == "bad_field");
  CHECK(wrong.message.find("channel") != std::string::npos);
  CHECK(client_error(R"({"type":"join","rid":-1,"channel":"a"})").code == "bad_field");
  CHECK(client_error(R"({"type":"join","rid":1.5,"channel":"a"})").code == "bad_field");
  CHECK(client_error(R"({"type":"history","rid":1,"channel":"a","limit":NaN})").code == "bad_frame");
  CHECK(client_error(R"({"type":"history","rid":1,"channel":"a","limit":Infinity})").code == "bad_frame");
  CHECK(client_error(R"({"type":"history","rid":1,"channel":"a","limit":99999999999})").code == "bad_field");
  CHECK(client_error("{\"type\":\"join\",\"rid\":1,\"channel\":\"\xff\xfe\"}").code == "invalid_utf8");
  CHECK(client_error("{\"type\":\"join\",\"rid\":1,\"channel\":\"\xc0\xaf\"}").code == "invalid_utf8");
  CHECK(client_error(R"({"type":"join","rid":1,"channel":"\ud800"})").code == "invalid_utf8");
  CHECK(client_error(R"({"type":"join","rid":1,"channel":"\udc00"})").code == "invalid_utf8");
  auto pair = decode_one_client<JoinChannel>(R"({"type":"join","rid":1,"channel":"ok\ud83d\ude00"})");
  CHECK(pair.channel == "ok\xf0\x9f\x98\x80");  // a surrogate pair is fine
  CHECK(client_error(R"({"type":"join","rid":1,"channel":"a"} trailing)").code == "bad_frame");
}

TEST_CASE("deep nesting cannot exhaust the stack") {
  std::string deep(200000, '[');
  CHECK(client_error(deep).code == "bad_frame");
  std::string nested = std::string(100000, '[') + std::string(100000, ']');
  auto items = decode_client_frame(nested);
  REQUIRE(items.size() == 1);
  CHECK(std::get<DecodeError>(items[0]).code == "bad_frame");
}

TEST_CASE("unknown fields are ignored, null reads as absent for optional fields") {
  auto h = decode_one_client<History>(
      R"({"type":"history","rid":1,"channel":"a","limit":5,"before":null,"future":{"x":[1,2]}})");
  CHECK_FALSE(h.before.has_value());
  CHECK(client_error(R"({"type":"join","rid":1,"channel":null})").code == "missing_field");
}

TEST_CASE("strings keep embedded NUL bytes") {
  Send send{1, "c", std::string(32, '0'), std::string("a\0b", 3)};
  auto back = decode_one_client<Send>(encode(ClientMessage(send)));
  CHECK(back.text.size() == 3);
  CHECK(back.text == send.text);
}

TEST_CASE("utf-8 validation") {
  CHECK(is_valid_utf8("plain"));
  CHECK(is_valid_utf8("\xe2\x82\xac \xf0\x9f\x98\x80"));
  CHECK(is_valid_utf8(std::string("a\0b", 3)));
  CHECK_FALSE(is_valid_utf8("\xff"));
  CHECK_FALSE(is_valid_utf8("\xed\xa0\x80"));  // an encoded surrogate
  CHECK_FALSE(is_valid_utf8("\xc0\x80"));      // overlong
  CHECK_FALSE(is_valid_utf8("\xe2\x82"));      // truncated
}
