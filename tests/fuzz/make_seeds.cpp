// Writes the seed corpus of every fuzz target (tests/fuzz/corpus/TARGET/)
// from real frames: each message kind encoded by wire::encode, scripted
// conversations for the hub and the client engine, tokens signed with the
// fixed key, and a real cache file. Run it again after a protocol change:
//
//   build/bin/fuzz_make_seeds tests/fuzz/corpus
//
// It replaces the files it writes and leaves others alone.
#include <sodium.h>
#include <sqlite3.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_support.hpp"
#include "parley/types.hpp"
#include "protocol/codec.hpp"
#include "store/cache.hpp"

namespace {

using namespace parley;
namespace fs = std::filesystem;

fs::path g_root;

void write(const std::string& target, const std::string& name, const std::string& data) {
  fs::path dir = g_root / target;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) {
    std::fprintf(stderr, "make_seeds: cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
}

std::string enc(const wire::ClientMessage& m) { return wire::encode(m); }
std::string enc(const wire::ServerMessage& m) { return wire::encode(m); }

std::string script(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

constexpr std::int64_t kTs = 1700000000000;
const std::string kId1 = "0123456789abcdef0123456789abcdef";
const std::string kId2 = "fedcba9876543210fedcba9876543210";

// A message id made from a number: 32 lowercase hex digits.
std::string fmt_id(std::uint64_t n) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%032llx", static_cast<unsigned long long>(n));
  return buf;
}

wire::ChannelEvent event(const std::string& channel, std::uint64_t seq, const std::string& kind,
                         const std::string& sender, const std::string& text = {},
                         const std::string& id = {}) {
  wire::ChannelEvent e{channel, seq, kind, sender, kTs + static_cast<std::int64_t>(seq), {}, {}};
  if (kind == "message") {
    e.id = id.empty() ? fmt_id(seq) : id;
    e.text = text;
  }
  return e;
}

std::string base64(const unsigned char* data, std::size_t size) {
  std::string out(sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, size, sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);
  return out;
}

// Real keys of one device, the same at every run (made from `tag`): a
// publish the server accepts.
wire::PublishKeys device_keys(unsigned char tag, std::size_t one_time) {
  if (sodium_init() < 0) std::exit(1);
  unsigned char seed[crypto_sign_SEEDBYTES];
  std::memset(seed, tag, sizeof seed);
  unsigned char sign_pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sign_sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(sign_pk, sign_sk, seed);
  auto x25519 = [&](unsigned char n) {
    unsigned char sk[32];
    unsigned char pk[32];
    std::memset(sk, static_cast<unsigned char>(tag ^ n), sizeof sk);
    crypto_scalarmult_base(pk, sk);
    return std::string(reinterpret_cast<char*>(pk), sizeof pk);
  };
  auto signed_key = [&](std::uint32_t id, unsigned char n) {
    std::string pk = x25519(n);
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(pk.data()), pk.size(),
                         sign_sk);
    return wire::SignedKey{id, base64(reinterpret_cast<const unsigned char*>(pk.data()), pk.size()),
                           base64(sig, sizeof sig)};
  };
  unsigned char identity[64];
  std::memcpy(identity, sign_pk, 32);
  std::string dh = x25519(0);
  std::memcpy(identity + 32, dh.data(), 32);
  wire::PublishKeys keys{1, base64(identity, sizeof identity), signed_key(1, 1),
                         signed_key(1000, 2), std::nullopt};
  if (one_time > 0) {
    keys.one_time.emplace();
    for (std::size_t i = 0; i < one_time; ++i) {
      std::string pk = x25519(static_cast<unsigned char>(10 + i));
      keys.one_time->push_back({static_cast<std::uint32_t>(i + 1),
                                base64(reinterpret_cast<const unsigned char*>(pk.data()), 32)});
    }
  }
  return keys;
}

// An e2e payload from `device` to `to`'s `to_device`; body: `size` bytes.
wire::E2e e2e_payload(const std::string& device, const std::string& to,
                      const std::string& to_device, std::size_t size, bool prekey) {
  std::string body(size, '\x5a');
  wire::Envelope envelope{to, to_device, std::nullopt,
                          base64(reinterpret_cast<const unsigned char*>(body.data()), body.size())};
  if (prekey) {
    wire::PublishKeys keys = device_keys(7, 0);
    envelope.prekey = wire::PrekeyHeader{keys.identity, keys.signed_prekey->key, 1, 1};
  }
  return wire::E2e{device, {envelope}};
}

wire::Send e2e_send(std::uint64_t rid, const std::string& channel, const std::string& id,
                    wire::E2e e2e) {
  wire::Send send{rid, channel, id, ""};
  send.e2e = std::move(e2e);
  return send;
}

// ---- frames -------------------------------------------------------------------

std::vector<std::pair<std::string, wire::ClientMessage>> client_messages() {
  return {
      {"auth", wire::Auth{1, fuzz::fixed_token("alice"), "phone", "parley-cpp/0.1.0"}},
      {"auth_minimal", wire::Auth{1, fuzz::fixed_token("bob"), std::nullopt, std::nullopt}},
      {"create", wire::CreateChannel{2, "general"}},
      {"join", wire::JoinChannel{3, "général"}},
      {"leave", wire::LeaveChannel{4, "general"}},
      {"send", wire::Send{5, "general", kId1, "hello \"world\" \u00e9 \t ✓"}},
      {"history_before", wire::History{6, "general", 100, std::nullopt, 50}},
      {"history_after", wire::History{7, "general", std::nullopt, 3, 500}},
      {"history_range", wire::History{8, "general", 10, 2, 5}},
      {"channels", wire::ListChannels{9}},
      {"typing", wire::Typing{10, "general", true}},
      {"typing_stop", wire::Typing{11, "general", false}},
      {"receipt_read", wire::Receipt{12, "general", "read", 7}},
      {"receipt_delivered", wire::Receipt{13, "general", "delivered", 8}},
      {"receipts", wire::ListReceipts{14, "general"}},
      {"create_private",
       wire::CreateChannel{15, "team", std::string("private"),
                           wire::Meta{std::string("Team"), std::string("plans"), std::nullopt,
                                      std::string("https://example.com/t.png"),
                                      std::string("{\"color\":\"blue\"}")}}},
      {"direct", wire::OpenDirect{16, "bob"}},
      {"member_ban", wire::MemberAction{17, "team", "ban", "mallory", std::nullopt, 60}},
      {"member_role", wire::MemberAction{18, "team", "role", "bob", std::string("moderator"), {}}},
      {"set_meta", wire::SetMeta{19, "team", wire::Meta{{}, std::string(""), {}, {}, {}}}},
      {"delete", wire::DeleteMessage{20, "team", 4}},
      {"pin", wire::PinMessage{21, "team", 4, true}},
      {"report", wire::Report{22, "team", 4, "spam"}},
      {"info", wire::ChannelInfoRequest{23, "team"}},
      {"admin", wire::Admin{24, "ban_user", std::nullopt, std::string("mallory"), std::nullopt, 3600}},
      {"set_presence", wire::SetPresence{25, std::string("away"), std::string("lunch"),
                                         kTs + 60000, true}},
      {"activity", wire::Activity{26}},
      {"watch", wire::Watch{27, {"bob", "carol"}, true}},
      {"unwatch", wire::Unwatch{28, {"bob"}}},
      {"get_presence", wire::GetPresence{29, {"bob"}}},
      {"keys", device_keys(1, 3)},
      {"keys_more", wire::PublishKeys{31, device_keys(1, 0).identity, std::nullopt, std::nullopt,
                                      device_keys(1, 2).one_time}},
      {"bundle", wire::GetBundle{32, "bob", std::nullopt}},
      {"bundle_identities", wire::GetBundle{33, "bob", true}},
      {"send_e2e", e2e_send(34, "@alice+bob", kId2, e2e_payload("phone", "bob", "laptop", 72, true))},
  };
}

std::vector<std::pair<std::string, wire::ServerMessage>> server_messages() {
  wire::ReceiptList receipts{5, "general", {"alice", "bob"}, {}, {}};
  receipts.read.push_back({"alice", std::nullopt, 4});
  receipts.delivered.push_back({"bob", std::string("phone"), 5});
  wire::ChannelEvent role_event = event("team", 8, "role", "alice");
  role_event.target = "bob";
  role_event.role = "admin";
  wire::ChannelEvent meta_event = event("team", 9, "meta", "alice");
  meta_event.meta = wire::Meta{std::nullopt, std::string("new topic"), {}, {}, {}};
  wire::ChannelEvent deleted_message = event("team", 3, "message", "bob");
  deleted_message.text.reset();
  deleted_message.deleted = true;
  wire::ChannelInfoReply info;
  info.rid = 8;
  info.channel = "team";
  info.kind = "private";
  info.last_seq = 9;
  info.members = {{"alice", "owner", std::nullopt}, {"bob", "member", kTs + 60000}};
  info.bans = {{"mallory", 0}};
  info.pinned = {4};
  wire::AdminResult admin_result;
  admin_result.rid = 9;
  admin_result.action = "channels";
  admin_result.channels = std::vector<wire::AdminChannel>{{"team", "private", 2, 9}};
  wire::Error limited{10, "rate_limited", "slow down", kId1};
  limited.retry_after_ms = 900;
  wire::Welcome welcome_keys{1, "alice", "phone", kTs, 65536, {{"@alice+bob", 3}}};
  welcome_keys.keys = wire::KeysState{0, device_keys(1, 0).identity, 1, 1000, 42};
  wire::ChannelEvent e2e_event = event("@alice+bob", 3, "message", "alice", {}, kId2);
  e2e_event.text.reset();
  e2e_event.e2e = e2e_payload("phone", "bob", "laptop", 72, true);
  wire::PublishKeys bob_keys = device_keys(2, 1);
  wire::Bundles bundles{6, "bob", {}};
  bundles.devices.push_back(wire::DeviceBundle{"laptop", bob_keys.identity, bob_keys.signed_prekey,
                                               (*bob_keys.one_time)[0], std::nullopt});
  bundles.devices.push_back(wire::DeviceBundle{
      "phone", bob_keys.identity, bob_keys.signed_prekey,
      wire::OneTimeKey{bob_keys.last_resort->id, bob_keys.last_resort->key}, true});
  wire::Bundles identities{7, "bob", {wire::DeviceBundle{"laptop", bob_keys.identity}}};
  return {
      {"welcome_keys", welcome_keys},
      {"keys_state", wire::KeysState{30, device_keys(1, 0).identity, 1, 1000, 3}},
      {"bundles", bundles},
      {"bundles_identities", identities},
      {"event_e2e", e2e_event},
      {"welcome", wire::Welcome{1, "alice", "phone", kTs, 65536, {{"general", 5}, {"random", 0}}}},
      {"welcome_empty", wire::Welcome{1, "alice", "phone", kTs, 65536, {}}},
      {"ok", wire::Ok{2, "general", 1, 1}},
      {"ack", wire::Ack{3, "general", kId1, 6, kTs + 6, false}},
      {"ack_duplicate", wire::Ack{3, "general", kId1, 6, kTs + 6, true}},
      {"history", wire::HistoryPage{4,
                                    "general",
                                    5,
                                    {event("general", 1, "create", "alice"),
                                     event("general", 2, "join", "bob"),
                                     event("general", 3, "message", "bob", "hi"),
                                     event("general", 4, "message", "alice", "hey ✓"),
                                     event("general", 5, "leave", "bob")}}},
      {"channel_list", wire::ChannelList{5, {{"general", 5}, {"random", 2}}}},
      {"error", wire::Error{6, "no_such_channel", "channel \"x\" does not exist", std::nullopt}},
      {"error_send", wire::Error{7, "invalid_text", "message has no text", kId2}},
      {"error_norid", wire::Error{std::nullopt, "bad_frame", "malformed json at offset 0", {}}},
      {"event", event("general", 6, "message", "bob", "live message", kId2)},
      {"event_join", event("general", 7, "join", "carol")},
      {"typing_event", wire::TypingEvent{"general", "bob", true}},
      {"receipt_event", wire::ReceiptEvent{"general", "bob", "read", 6, std::nullopt}},
      {"receipt_event_delivered",
       wire::ReceiptEvent{"general", "bob", "delivered", 6, std::string("laptop")}},
      {"receipt_list", receipts},
      {"event_role", role_event},
      {"event_meta", meta_event},
      {"event_deleted", deleted_message},
      {"channel_info", info},
      {"admin_result", admin_result},
      {"error_rate_limited", limited},
      {"presence", wire::PresenceEvent{"bob", "offline", kTs, std::string("lunch"), kTs + 60000,
                                       std::nullopt, std::nullopt, true}},
      {"presence_list",
       wire::PresenceList{0, std::string("team"),
                          {wire::PresenceEvent{"alice", "online"},
                           wire::PresenceEvent{"bob", "away", {}, {}, {}, true, true, {}}}}},
      {"online_count", wire::OnlineCount{"crowd", 120, 450}},
  };
}

void codec_seeds() {
  std::vector<std::shared_ptr<const std::string>> all;
  for (const auto& [name, m] : client_messages()) {
    write("client_frame", name + ".json", enc(m));
    all.push_back(std::make_shared<const std::string>(enc(m)));
  }
  write("client_frame", "packed.json", wire::pack(all));
  // Refusals the decoder must name.
  write("client_frame", "bad_surrogate.json",
        R"({"type":"send","rid":1,"channel":"\udc00","id":"x","text":"t"})");
  write("client_frame", "bad_type.json", R"([{"type":"nope","rid":1},{"rid":2},7,{"type":1}])");
  write("client_frame", "bad_field.json", R"({"type":"history","rid":1,"channel":"g","limit":-1})");

  all.clear();
  for (const auto& [name, m] : server_messages()) {
    write("server_frame", name + ".json", enc(m));
    all.push_back(std::make_shared<const std::string>(enc(m)));
  }
  write("server_frame", "packed.json", wire::pack(all));
}

// ---- the server's hub ---------------------------------------------------------

void hub_seeds() {
  using C = wire::ClientMessage;
  write("hub", "chat.txt",
        script({
            "0!auth alice",
            "1!auth bob",
            "0" + enc(C{wire::CreateChannel{2, "general"}}),
            "1" + enc(C{wire::JoinChannel{2, "general"}}),
            "0" + enc(C{wire::Send{3, "general", kId1, "hello bob"}}),
            "1" + enc(C{wire::Typing{3, "general", true}}),
            "1" + enc(C{wire::Send{4, "general", kId2, "hi alice ✓"}}),
            "0" + enc(C{wire::Send{4, "general", kId1, "hello bob"}}),  // a resend
            "1" + enc(C{wire::Receipt{5, "general", "delivered", 3}}),
            "1" + enc(C{wire::Receipt{6, "general", "read", 4}}),
            "0" + enc(C{wire::ListReceipts{5, "general"}}),
            "1" + enc(C{wire::History{7, "general", std::nullopt, std::nullopt, 50}}),
            "1" + enc(C{wire::History{8, "general", 4, 1, 2}}),
            "0" + enc(C{wire::ListChannels{6}}),
            "2!auth alice",
            "2" + enc(C{wire::History{2, "general", std::nullopt, 2, 500}}),
            "1" + enc(C{wire::LeaveChannel{9, "general"}}),
            "0" + enc(C{wire::Send{7, "general", fmt_id(7), "bob left"}}),
            "1!close",
            "1!auth bob",
            "1" + enc(C{wire::JoinChannel{2, "general"}}),
        }));
  // The token inside the frame, as a real client sends it.
  write("hub", "raw_auth.txt",
        script({
            enc(C{wire::Auth{1, fuzz::fixed_token("alice"), "phone", "parley-cpp/0.1.0"}}),
            enc(C{wire::CreateChannel{2, "general"}}),
            "[" + enc(C{wire::Send{3, "general", kId1, "one"}}) + "," +
                enc(C{wire::Send{4, "general", kId2, "two"}}) + "," +
                enc(C{wire::Typing{5, "general", false}}) + "]",
            enc(C{wire::Auth{6, fuzz::fixed_token("alice"), std::nullopt, std::nullopt}}),
        }));
  write("hub", "groups.txt",
        script({
            "0!auth alice",
            "1!auth bob",
            "0" + enc(C{wire::CreateChannel{2, "team", std::string("private"),
                                            wire::Meta{std::string("Team"), {}, {}, {}, {}}}}),
            "0" + enc(C{wire::MemberAction{3, "team", "invite", "bob", {}, {}}}),
            "0" + enc(C{wire::MemberAction{4, "team", "role", "bob", std::string("moderator"), {}}}),
            "1" + enc(C{wire::Send{2, "team", kId1, "darn it, two  words"}}),
            "1" + enc(C{wire::Send{3, "team", kId2, "badword"}}),
            "0" + enc(C{wire::SetMeta{5, "team", wire::Meta{{}, std::string("plans"), {}, {}, {}}}}),
            "0" + enc(C{wire::PinMessage{6, "team", 4, true}}),
            "1" + enc(C{wire::Report{4, "team", 4, "rude"}}),
            "0" + enc(C{wire::MemberAction{7, "team", "mute", "bob", {}, 1}}),
            "1" + enc(C{wire::Send{5, "team", fmt_id(5), "muted?"}}),
            "0" + enc(C{wire::MemberAction{8, "team", "unmute", "bob", {}, {}}}),
            "0" + enc(C{wire::DeleteMessage{9, "team", 4}}),
            "1" + enc(C{wire::ChannelInfoRequest{6, "team"}}),
            "1" + enc(C{wire::OpenDirect{7, "alice"}}),
            "0" + enc(C{wire::OpenDirect{10, "bob"}}),
            "0" + enc(C{wire::MemberAction{11, "team", "ban", "bob", {}, 60}}),
            "1" + enc(C{wire::History{8, "team", std::nullopt, std::nullopt, 50}}),
            "0" + enc(C{wire::MemberAction{12, "team", "unban", "bob", {}, {}}}),
            "0" + enc(C{wire::MemberAction{13, "team", "invite", "bob", {}, {}}}),
            "0" + enc(C{wire::MemberAction{14, "team", "transfer", "bob", {}, {}}}),
            "2!admin root",
            "2" + enc(C{wire::Admin{2, "channels", {}, {}, {}, {}}}),
            "2" + enc(C{wire::Admin{3, "reports", {}, {}, {}, {}}}),
            "2" + enc(C{wire::Admin{4, "system_message", std::string("team"), {},
                                    std::string("maintenance"), {}}}),
            "2" + enc(C{wire::Admin{5, "ban_user", {}, std::string("alice"), {}, {}}}),
            "2" + enc(C{wire::Admin{6, "delete_channel", std::string("team"), {}, {}, {}}}),
            "1" + enc(C{wire::Send{9, "team", fmt_id(9), "gone?"}}),
            "2" + enc(C{wire::Admin{7, "unban_user", {}, std::string("alice"), {}, {}}}),
            "0!auth alice",
        }));
  write("hub", "presence.txt",
        script({
            "0!auth alice",
            "1!auth bob",
            "0" + enc(C{wire::OpenDirect{2, "bob"}}),
            "!tick",
            "2!auth carol",
            "2" + enc(C{wire::Watch{2, {"bob", "dave"}, true}}),
            "1" + enc(C{wire::SetPresence{2, std::string("invisible"), std::string("away"),
                                          std::int64_t{1}, true}}),
            "!tick",
            "1" + enc(C{wire::SetPresence{3, std::string("online"), {}, {}, false}}),
            "1" + enc(C{wire::Activity{4}}),
            "0" + enc(C{wire::CreateChannel{3, "crowd"}}),
            "1" + enc(C{wire::JoinChannel{5, "crowd"}}),
            "2" + enc(C{wire::JoinChannel{3, "crowd"}}),
            "!tick",
            "2" + enc(C{wire::GetPresence{4, {"alice", "bob", "carol"}}}),
            "2" + enc(C{wire::Unwatch{5, {"bob"}}}),
            "1!close",
            "!tick",
            "1!auth bob",
            "1" + enc(C{wire::SetPresence{1, std::string("busy"), {}, {}, {}}}),
            "1" + enc(C{wire::Watch{2, {}, {}}}),
            "!tick",
        }));
  // Connections 0 and 1 authenticate as devices "device-0" and "device-1".
  wire::PublishKeys alice_keys = device_keys(1, 2);
  wire::PublishKeys bob_keys = device_keys(2, 1);
  wire::PublishKeys forged = device_keys(3, 0);
  forged.last_resort->signature = alice_keys.last_resort->signature;
  write("hub", "e2e.txt",
        script({
            "0!auth alice",
            "1!auth bob",
            "0" + enc(C{alice_keys}),
            "1" + enc(C{bob_keys}),
            "1" + enc(C{wire::GetBundle{2, "alice", std::nullopt}}),
            "1" + enc(C{wire::GetBundle{3, "alice", true}}),
            "1" + enc(C{wire::GetBundle{4, "alice", std::nullopt}}),
            "1" + enc(C{wire::GetBundle{5, "alice", std::nullopt}}),  // the last resort
            "0" + enc(C{wire::OpenDirect{2, "bob"}}),
            "0" + enc(C{e2e_send(3, "@alice+bob", kId1,
                                 e2e_payload("device-0", "bob", "device-1", 80, true))}),
            "1" + enc(C{e2e_send(6, "@alice+bob", kId2,
                                 e2e_payload("device-1", "alice", "device-0", 56, false))}),
            "0" + enc(C{wire::Send{4, "@alice+bob", fmt_id(4), "in the clear"}}),
            "0" + enc(C{e2e_send(5, "@alice+bob", fmt_id(5),
                                 e2e_payload("device-0", "carol", "x", 56, false))}),
            "0" + enc(C{e2e_send(6, "@alice+bob", fmt_id(6),
                                 e2e_payload("device-0", "bob", "device-1", 20, false))}),
            "1" + enc(C{wire::History{7, "@alice+bob", std::nullopt, std::nullopt, 50}}),
            "0" + enc(C{wire::DeleteMessage{7, "@alice+bob", 2}}),
            "0" + enc(C{forged}),
            "0" + enc(C{wire::PublishKeys{8, alice_keys.identity, std::nullopt, std::nullopt,
                                          device_keys(1, 3).one_time}}),
            "1" + enc(C{wire::GetBundle{8, "carol", std::nullopt}}),
            "0!close",
            "0!auth alice",
        }));
  write("hub", "refusals.txt",
        script({
            "0" + enc(C{wire::CreateChannel{1, "general"}}),  // before auth: closed
            "1" + enc(C{wire::Auth{1, "pt1.e30.AAAA", std::nullopt, std::nullopt}}),
            "2!auth carol",
            "2" + enc(C{wire::CreateChannel{2, "has space"}}),
            "2" + enc(C{wire::JoinChannel{3, "nowhere"}}),
            "2" + enc(C{wire::Send{4, "general", "not-an-id", "x"}}),
            "2" + enc(C{wire::Send{5, "nowhere", kId1, ""}}),
            "2" + enc(C{wire::History{6, "nowhere", std::nullopt, std::nullopt, 0}}),
            "2" + enc(C{wire::Receipt{7, "nowhere", "seen", 1}}),
            "2" + std::string(R"({"type":"send","rid":8,"channel":"\udc00","id":"x","text":"t"})"),
            "2{\"type\":\"later\",\"rid\":9}",
            "2not json",
            "2!binary",
            "2" + enc(C{wire::CreateChannel{10, "general"}}),
            "2" + enc(C{wire::Receipt{11, "general", "read", 99}}),
            "2" + enc(C{wire::LeaveChannel{12, "general"}}),
            "2" + enc(C{wire::LeaveChannel{13, "general"}}),
        }));
}

// ---- the client engine ------------------------------------------------------------

void engine_seeds() {
  using S = wire::ServerMessage;
  // rid 1 is auth; after welcome the engine asks for the newest page of a
  // channel new to it (rid 2), then the channel's receipts (rid 3).
  write("client_engine", "sync_and_chat.txt",
        script({
            enc(S{wire::Welcome{1, "alice", "fuzz-device", kTs, 65536, {{"general", 5}}}}),
            enc(S{wire::HistoryPage{
                2,
                "general",
                5,
                {event("general", 1, "create", "bob"), event("general", 2, "join", "alice"),
                 event("general", 3, "message", "bob", "hi"),
                 event("general", 4, "message", "alice", "hey", kId1),
                 event("general", 5, "message", "bob", "how are you")}}}),
            enc(S{wire::ReceiptList{3,
                                    "general",
                                    {"alice", "bob"},
                                    {{"bob", std::nullopt, 4}},
                                    {{"bob", std::string("phone"), 5}}}}),
            enc(S{event("general", 6, "message", "bob", "live", kId2)}),
            enc(S{wire::Ok{4, "general", 6, 6}}),  // the delivered receipt
            enc(S{wire::TypingEvent{"general", "bob", true}}),
            enc(S{wire::ReceiptEvent{"general", "bob", "read", 6, std::nullopt}}),
            "!send general hello from alice",
            enc(S{wire::Ack{5, "general", "$ID", 7, kTs + 7, false}}),  // $ID: the id sent
            "!read general 6",
            enc(S{wire::Ok{6, "general", 7, 7}}),
            enc(S{wire::Ok{7, "general", 6, 6}}),
            "!typing general 1",
            "!summary general 6",
            "!history general 0 20",
            "!create random",
            enc(S{wire::Ok{9, "random", 1, 1}}),
            enc(S{wire::ReceiptList{10, "random", {"alice"}, {}, {}}}),
            "!join general",
            enc(S{wire::Ok{11, "general", 0, 7}}),
            "!leave random",
            enc(S{wire::Ok{12, "random", 2, 2}}),
            "!typing general 0",
        }));
  // Catching up after a reconnect: the cursor is behind, pages of 3, and a
  // live event arrives above a gap.
  write("client_engine", "catch_up.txt",
        script({
            enc(S{wire::Welcome{1, "alice", "fuzz-device", kTs, 65536, {{"general", 2}}}}),
            enc(S{wire::HistoryPage{
                2,
                "general",
                2,
                {event("general", 1, "create", "bob"), event("general", 2, "join", "alice")}}}),
            enc(S{wire::ReceiptList{3, "general", {"alice", "bob"}, {}, {}}}),
            "!drop",
            "!reconnect",
            enc(S{wire::Welcome{4, "alice", "fuzz-device", kTs, 65536, {{"general", 9}}}}),
            enc(S{wire::HistoryPage{5,
                                    "general",
                                    9,
                                    {event("general", 3, "message", "bob", "a"),
                                     event("general", 4, "message", "bob", "b"),
                                     event("general", 5, "message", "bob", "c")}}}),
            enc(S{wire::HistoryPage{6,
                                    "general",
                                    9,
                                    {event("general", 6, "message", "bob", "d"),
                                     event("general", 7, "message", "bob", "e"),
                                     event("general", 8, "message", "bob", "f")}}}),
            enc(S{wire::Ok{7, "general", 5, 9}}),
            enc(S{event("general", 10, "message", "bob", "ahead")}),
            enc(S{wire::HistoryPage{8, "general", 10, {event("general", 9, "leave", "carol")}}}),
            enc(S{wire::Ok{9, "general", 8, 10}}),
            "!history general 5 2",
        }));
  // A send lost with the connection goes again after reconnecting; the
  // server answers the resend as a duplicate.
  write("client_engine", "resend.txt",
        script({
            enc(S{wire::Welcome{1, "alice", "fuzz-device", kTs, 65536, {}}}),
            "!send general sent before the drop",
            "!drop",
            "!reconnect",
            enc(S{wire::Welcome{3, "alice", "fuzz-device", kTs, 65536, {{"general", 1}}}}),
            enc(S{wire::Ack{5, "general", "$ID", 1, kTs + 1, true}}),
            enc(S{wire::HistoryPage{
                4,
                "general",
                1,
                {event("general", 1, "message", "alice", "sent before the drop", "$ID")}}}),
            enc(S{wire::Ok{6, "general", 1, 1}}),
            enc(S{wire::ReceiptList{7, "general", {"alice"}, {}, {}}}),
        }));
  // A direct conversation: the history of a direct channel new to the device
  // (rid 2) holds e2e messages addressed to it (a prekey message naming
  // prekeys it does not have, a follow-up without a session, one for another
  // device, a malformed body); then the engine's keys (rid 3) are refused,
  // and a send to the channel asks for bundles (rid 4, answered with a bad
  // signature) before failing.
  wire::ChannelEvent first = event("@alice+bob", 2, "message", "bob", {}, kId1);
  first.text.reset();
  first.e2e = e2e_payload("phone", "alice", "fuzz-device", 120, true);
  wire::ChannelEvent second = event("@alice+bob", 3, "message", "bob");
  second.text.reset();
  second.e2e = e2e_payload("phone", "alice", "fuzz-device", 56, false);
  wire::ChannelEvent other = event("@alice+bob", 4, "message", "bob");
  other.text.reset();
  other.e2e = e2e_payload("phone", "alice", "laptop", 72, false);
  wire::ChannelEvent broken = event("@alice+bob", 5, "message", "bob");
  broken.text.reset();
  broken.e2e = e2e_payload("phone", "alice", "fuzz-device", 8, false);
  wire::PublishKeys bob_keys = device_keys(9, 1);
  wire::DeviceBundle bundle{"phone", bob_keys.identity, bob_keys.signed_prekey,
                            bob_keys.one_time ? std::optional<wire::OneTimeKey>(bob_keys.one_time->front())
                                              : std::nullopt,
                            std::nullopt};
  bundle.signed_prekey->signature = bob_keys.last_resort->signature;  // not the key's
  wire::ChannelState direct{"@alice+bob", 5};
  direct.kind = "direct";
  write("client_engine", "direct_e2e.txt",
        script({
            enc(S{wire::Welcome{1, "alice", "fuzz-device", kTs, 65536, {direct}}}),
            enc(S{wire::HistoryPage{2,
                                    "@alice+bob",
                                    5,
                                    {event("@alice+bob", 1, "create", "bob"), first, second, other,
                                     broken}}}),
            enc(S{wire::Error{3, "unknown_type", "no such message type", {}}}),
            "!send @alice+bob hello bob",
            enc(S{wire::Bundles{4, "bob", {bundle}}}),
            enc(S{wire::KeysState{0, bob_keys.identity, 1, 2, 3}}),
        }));
  write("client_engine", "refused.txt",
        script({
            enc(S{wire::Error{1, "invalid_token", "token signature does not match", {}}}),
            "!token alice",
            enc(S{wire::Welcome{2, "alice", "fuzz-device", kTs, 100, {}}}),
            "!send general this message is longer than the server's frame limit of 100 bytes",
            "!create general",
            enc(S{wire::Error{3, "channel_exists", "channel \"general\" already exists", {}}}),
            "!join general",
            enc(S{wire::Error{4, "internal", "the server could not store or read this", {}}}),
            "!disconnect",
            "!connect",
        }));
}

// ---- tokens and names ---------------------------------------------------------------

void token_seeds() {
  write("token", "valid.txt", fuzz::fixed_token("alice"));
  write("token", "expired.txt", token::mint(fuzz::fixed_key(), "bob", 10, fuzz::kTokenIssuedAt));
  write("token", "bad_user.txt", fuzz::fixed_token("no spaces allowed"));
  write("token", "claims.json", R"({"sub":"alice","iat":1700000000,"exp":4102444800})");
  write("token", "claims_bad.json", R"({"sub":"alice","iat":1.5,"exp":"never"})");
}

void names_seeds() {
  write("names", "channel.txt", "general");
  write("names", "channel_utf8.txt", "général-✓-𝄞");
  write("names", "user.txt", "alice.b@example-1");
  write("names", "id.txt", kId1);
  write("names", "id_upper.txt", "0123456789ABCDEF0123456789ABCDEF");
  write("names", "long.txt", std::string(80, 'x'));
  write("names", "c1_control.txt",
        "a\xc2\x85"
        "b");
  write("names", "bad_utf8.txt", "\xc0\xaf\xe0\x80\xaf\xed\xa0\x80\xf4\x90\x80\x80");
  std::string ts(8, '\0');
  std::int64_t t = kTs;
  std::memcpy(ts.data(), &t, sizeof t);
  write("names", "timestamp.bin", ts);
}

// ---- a cache file -----------------------------------------------------------------

void cache_seeds() {
  fs::path dir = fuzz::scratch_dir() / "seed-cache";
  fs::remove_all(dir);
  {
    auto cache = store::Cache::open(dir.string(), "alice");
    if (!cache) {
      std::fprintf(stderr, "make_seeds: cache: %s\n", cache.status().to_string().c_str());
      std::exit(1);
    }
    store::Cache& c = **cache;
    c.upsert_channel("general", 5, true);
    c.upsert_channel("random", 1, false);
    std::vector<Message> events;
    for (std::uint64_t seq = 1; seq <= 5; ++seq) {
      Message m;
      m.channel = "general";
      m.seq = seq;
      m.kind = seq == 1 ? EventKind::create : EventKind::message;
      m.sender = seq % 2 ? "bob" : "alice";
      m.id = seq == 1 ? "" : fmt_id(seq);
      m.text = seq == 1 ? "" : "message " + std::to_string(seq);
      m.ts_ms = kTs + static_cast<std::int64_t>(seq);
      m.state = DeliveryState::sent;
      events.push_back(m);
    }
    (void)c.store_events(events);
    (void)c.advance_cursor("general", 4);
    (void)c.outbox_add("general", kId1, "pending message", kTs);
    (void)c.outbox_add("general", kId2, "refused message", kTs);
    (void)c.outbox_fail(kId2, "invalid_text");
    (void)c.set_members("general", {"alice", "bob"});
    (void)c.raise_receipt("general", "bob", "phone", ReceiptKind::delivered, 5);
    (void)c.raise_receipt("general", "bob", "", ReceiptKind::read, 4);
    (void)c.raise_my_read("general", 4);
  }
  // Small pages keep the seed small: rewrite the file with 512-byte pages.
  std::string path = (dir / "parley.db").string();
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK ||
      sqlite3_exec(db, "PRAGMA journal_mode = DELETE; PRAGMA page_size = 512; VACUUM;", nullptr,
                   nullptr, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "make_seeds: vacuum: %s\n", sqlite3_errmsg(db));
    std::exit(1);
  }
  sqlite3_close(db);
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write("cache_file", "cache.db", bytes);
  // The same file cut short, as a crash in the middle of a copy leaves it.
  write("cache_file", "truncated.db", bytes.substr(0, bytes.size() / 2));
  write("cache_file", "not_a_database.db", "this is not a database\n");
  fs::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  codec_seeds();
  hub_seeds();
  engine_seeds();
  token_seeds();
  names_seeds();
  cache_seeds();
  std::printf("make_seeds: wrote the corpus under %s\n", g_root.c_str());
  return 0;
}
