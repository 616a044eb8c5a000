// The end-to-end encryption messages of parley.v1 (docs/protocol.md,
// "End-to-end encryption"): keys, bundle, keys_state, bundles, send and event
// with e2e, the welcome's keys, and the payload alone as the server stores it.
#include <doctest/doctest.h>

#include <string>

#include "protocol/codec.hpp"

using namespace parley::wire;

namespace {

template <class T>
T client_one(const std::string& frame) {
  auto items = decode_client_frame(frame);
  REQUIRE(items.size() == 1);
  auto* msg = std::get_if<ClientMessage>(&items[0]);
  REQUIRE_MESSAGE(msg != nullptr, frame);
  auto* value = std::get_if<T>(msg);
  REQUIRE(value != nullptr);
  return *value;
}

DecodeError client_error(const std::string& frame) {
  auto items = decode_client_frame(frame);
  REQUIRE(items.size() == 1);
  auto* err = std::get_if<DecodeError>(&items[0]);
  REQUIRE_MESSAGE(err != nullptr, frame);
  return *err;
}

template <class T>
T server_round_trip(const T& value) {
  auto items = decode_server_frame(encode(ServerMessage(value)));
  REQUIRE(items.size() == 1);
  auto* msg = std::get_if<ServerMessage>(&items[0]);
  REQUIRE(msg != nullptr);
  auto* out = std::get_if<T>(msg);
  REQUIRE(out != nullptr);
  return *out;
}

E2e sample_e2e() {
  E2e e2e;
  e2e.device = "phone";
  Envelope first{"bob", "laptop", PrekeyHeader{"SUQ=", "RVBI", 3, 17}, "Qk9EWQ=="};
  Envelope second{"alice", "tablet", std::nullopt, "Qk9EWTI="};
  e2e.to = {first, second};
  return e2e;
}

void check_same(const E2e& a, const E2e& b) {
  CHECK(a.device == b.device);
  REQUIRE(a.to.size() == b.to.size());
  for (std::size_t i = 0; i < a.to.size(); ++i) {
    CHECK(a.to[i].user == b.to[i].user);
    CHECK(a.to[i].device == b.to[i].device);
    CHECK(a.to[i].body == b.to[i].body);
    REQUIRE(a.to[i].prekey.has_value() == b.to[i].prekey.has_value());
    if (a.to[i].prekey) {
      CHECK(a.to[i].prekey->identity == b.to[i].prekey->identity);
      CHECK(a.to[i].prekey->ephemeral == b.to[i].prekey->ephemeral);
      CHECK(a.to[i].prekey->signed_prekey == b.to[i].prekey->signed_prekey);
      CHECK(a.to[i].prekey->one_time == b.to[i].prekey->one_time);
    }
  }
}

}  // namespace

TEST_CASE("e2e codec: keys and bundle requests") {
  auto keys = client_one<PublishKeys>(
      R"({"type":"keys","rid":4,"identity":"ID==","signed_prekey":{"id":1,"key":"K1","signature":"S1"},)"
      R"("last_resort":{"id":9,"key":"K9","signature":"S9"},"one_time":[{"id":5,"key":"O5"}]})");
  CHECK(keys.rid == 4);
  CHECK(keys.identity == "ID==");
  REQUIRE(keys.signed_prekey.has_value());
  CHECK(keys.signed_prekey->id == 1);
  CHECK(keys.last_resort->signature == "S9");
  REQUIRE(keys.one_time.has_value());
  CHECK((*keys.one_time)[0].id == 5);

  auto bare = client_one<PublishKeys>(R"({"type":"keys","rid":5,"identity":"ID=="})");
  CHECK_FALSE(bare.signed_prekey.has_value());
  CHECK_FALSE(bare.one_time.has_value());
  CHECK(client_error(R"({"type":"keys","rid":6})").code == "missing_field");
  CHECK(client_error(R"({"type":"keys","rid":6,"identity":"x","signed_prekey":{"id":1,"key":"k"}})")
            .code == "missing_field");

  auto b = client_one<GetBundle>(R"({"type":"bundle","rid":7,"user":"bob"})");
  CHECK(b.user == "bob");
  CHECK_FALSE(b.identities_only.has_value());
  CHECK(client_one<GetBundle>(R"({"type":"bundle","rid":7,"user":"bob","identities_only":true})")
            .identities_only == true);
}

TEST_CASE("e2e codec: send with e2e has no text; without e2e text is required") {
  Send send{3, "@alice+bob", std::string(32, 'a'), ""};
  send.e2e = sample_e2e();
  std::string json = encode(ClientMessage(send));
  CHECK(json.find("\"text\"") == std::string::npos);
  auto back = client_one<Send>(json);
  CHECK(back.text.empty());
  REQUIRE(back.e2e.has_value());
  check_same(*back.e2e, *send.e2e);

  // Text alongside e2e decodes (the server refuses it with invalid_e2e).
  send.text = "oops";
  CHECK(client_one<Send>(encode(ClientMessage(send))).text == "oops");
  CHECK(client_error(R"({"type":"send","rid":1,"channel":"c","id":"x"})").code == "missing_field");
  CHECK(client_error(R"({"type":"send","rid":1,"channel":"c","id":"x","e2e":{"device":"d"}})")
            .code == "missing_field");
}

TEST_CASE("e2e codec: events, welcome keys, keys_state and bundles") {
  ChannelEvent event;
  event.channel = "@alice+bob";
  event.seq = 4;
  event.kind = "message";
  event.sender = "alice";
  event.ts = 1000;
  event.id = std::string(32, 'b');
  event.e2e = sample_e2e();
  auto e = server_round_trip(event);
  CHECK_FALSE(e.text.has_value());
  REQUIRE(e.e2e.has_value());
  check_same(*e.e2e, *event.e2e);

  Welcome welcome;
  welcome.rid = 1;
  welcome.user = "alice";
  welcome.device = "phone";
  CHECK_FALSE(server_round_trip(welcome).keys.has_value());
  welcome.keys = KeysState{0, "ID==", 2, 9, 40};
  auto w = server_round_trip(welcome);
  REQUIRE(w.keys.has_value());
  CHECK(w.keys->identity == "ID==");
  CHECK(w.keys->signed_prekey == 2);
  CHECK(w.keys->last_resort == 9);
  CHECK(w.keys->one_time == 40);

  auto state = server_round_trip(KeysState{8, "ID==", 1, 2, 3});
  CHECK(state.rid == 8);

  Bundles bundles{9, "bob", {}};
  bundles.devices.push_back(DeviceBundle{"laptop", "ID1", SignedKey{1, "K", "S"},
                                         OneTimeKey{5, "O"}, std::nullopt});
  bundles.devices.push_back(DeviceBundle{"phone", "ID2", SignedKey{1, "K", "S"},
                                         OneTimeKey{900, "L"}, true});
  bundles.devices.push_back(DeviceBundle{"tablet", "ID3", std::nullopt, std::nullopt, std::nullopt});
  auto got = server_round_trip(bundles);
  REQUIRE(got.devices.size() == 3);
  CHECK(got.devices[0].one_time->id == 5);
  CHECK_FALSE(got.devices[0].last_resort.has_value());
  CHECK(got.devices[1].last_resort == true);
  CHECK_FALSE(got.devices[2].signed_prekey.has_value());
}

TEST_CASE("e2e codec: the payload alone, as the server stores it") {
  E2e e2e = sample_e2e();
  std::string text = encode_e2e(e2e);
  CHECK(text.front() == '{');
  CHECK(text.find("\"type\"") == std::string::npos);
  auto back = decode_e2e(text);
  REQUIRE(back.has_value());
  check_same(*back, e2e);
  CHECK(encode_e2e(*back) == text);

  CHECK_FALSE(decode_e2e("").has_value());
  CHECK_FALSE(decode_e2e("not json").has_value());
  CHECK_FALSE(decode_e2e("[]").has_value());
  CHECK_FALSE(decode_e2e(R"({"device":"d"})").has_value());
  CHECK_FALSE(decode_e2e(R"({"device":"d","to":[{"user":"u","device":"d"}]})").has_value());
  CHECK(decode_e2e(R"({"device":"d","to":[]})").has_value());
}
