// The messages of several devices, recovery, blocks and verifiable reports
// (docs/protocol.md, "Devices, recovery, blocks and reports").
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
  REQUIRE_MESSAGE(value != nullptr, frame);
  return *value;
}

template <class T>
T client_round_trip(const T& value) {
  return client_one<T>(encode(ClientMessage(value)));
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

std::string client_error_code(const std::string& frame) {
  auto items = decode_client_frame(frame);
  REQUIRE(items.size() == 1);
  auto* err = std::get_if<DecodeError>(&items[0]);
  REQUIRE_MESSAGE(err != nullptr, frame);
  return err->code;
}

}  // namespace

TEST_CASE("devices codec: remove_device, block, blocks, bundle with a device") {
  auto remove = client_one<RemoveDevice>(R"({"type":"remove_device","rid":4,"device":"old"})");
  CHECK(remove.rid == 4);
  CHECK(remove.device == "old");
  auto block = client_one<Block>(R"({"type":"block","rid":5,"user":"bob"})");
  CHECK(block.user == "bob");
  CHECK_FALSE(block.blocked.has_value());
  CHECK(client_round_trip(Block{6, "bob", false}).blocked == std::optional<bool>(false));
  CHECK(client_one<ListBlocks>(R"({"type":"blocks","rid":7})").rid == 7);
  auto list = server_round_trip(Blocks{7, {"bob", "carol"}});
  CHECK(list.users == std::vector<std::string>{"bob", "carol"});
  auto bundle = client_one<GetBundle>(R"({"type":"bundle","rid":8,"user":"bob","device":"phone"})");
  CHECK(bundle.device == std::optional<std::string>("phone"));
  CHECK(client_error_code(R"({"type":"remove_device","rid":9})") == "missing_field");
  CHECK(client_error_code(R"({"type":"block","rid":9,"user":7})") == "bad_field");
}

TEST_CASE("devices codec: e2e commit and tag, retry, resend, ack, notice") {
  Send send{1, "@alice+bob", std::string(32, 'a'), "", E2e{"phone", {}, "Q09NTUlU", std::nullopt}};
  send.e2e->to.push_back(Envelope{"bob", "laptop", std::nullopt, "Qk9EWQ=="});
  auto back = client_round_trip(send);
  REQUIRE(back.e2e);
  CHECK(back.e2e->commit == std::optional<std::string>("Q09NTUlU"));
  CHECK_FALSE(back.e2e->tag.has_value());

  auto retry = client_one<E2eRetry>(R"({"type":"e2e_retry","rid":2,"channel":"@a+b","seq":9})");
  CHECK(retry.channel == "@a+b");
  CHECK(retry.seq == 9);
  auto resend = client_round_trip(
      E2eResend{3, "@a+b", 9, Envelope{"bob", "laptop", PrekeyHeader{"SUQ=", "RVBI", 3, 17}, "Qk9EWQ=="}});
  CHECK(resend.envelope.device == "laptop");
  REQUIRE(resend.envelope.prekey);
  CHECK(resend.envelope.prekey->one_time == std::optional<std::uint32_t>(17));
  CHECK(client_one<E2eAck>(R"({"type":"e2e_ack","rid":4,"nid":12})").nid == 12);
  CHECK(client_error_code(R"({"type":"e2e_resend","rid":3,"channel":"@a+b","seq":9})") ==
        "missing_field");

  E2eNotice notice;
  notice.nid = 12;
  notice.kind = "resend";
  notice.channel = "@a+b";
  notice.seq = 9;
  notice.id = std::string(32, 'b');
  notice.user = "alice";
  notice.device = "phone";
  notice.ts = 1700000000000;
  notice.envelope = Envelope{"bob", "laptop", std::nullopt, "Qk9EWQ=="};
  notice.commit = "Q09NTUlU";
  notice.tag = "VEFH";
  auto n = server_round_trip(notice);
  CHECK(n.nid == 12);
  CHECK(n.kind == "resend");
  CHECK(n.ts == 1700000000000);
  REQUIRE(n.envelope);
  CHECK(n.envelope->body == "Qk9EWQ==");
  CHECK(n.tag == std::optional<std::string>("VEFH"));
  notice.kind = "retry";
  notice.envelope.reset();
  notice.commit.reset();
  notice.tag.reset();
  auto r = server_round_trip(notice);
  CHECK(r.kind == "retry");
  CHECK_FALSE(r.envelope.has_value());
}

TEST_CASE("devices codec: a report with a franking opening") {
  auto report = client_one<Report>(
      R"({"type":"report","rid":1,"channel":"@a+b","seq":3,"reason":"abuse","e2e":{"sender":"alice",)"
      R"("device":"phone","id":"0123456789abcdef0123456789abcdef","ts":17,"text":"hi","key":"S0VZ",)"
      R"("commit":"Q09NTUlU","tag":"VEFH"}})");
  REQUIRE(report.e2e);
  CHECK(report.e2e->sender == "alice");
  CHECK(report.e2e->ts == 17);
  CHECK(report.e2e->text == "hi");
  auto plain = client_one<Report>(R"({"type":"report","rid":1,"channel":"x","seq":3,"reason":"r"})");
  CHECK_FALSE(plain.e2e.has_value());
  CHECK(client_error_code(
            R"({"type":"report","rid":1,"channel":"@a+b","seq":3,"reason":"r","e2e":{"sender":"a"}})") ==
        "missing_field");
}
