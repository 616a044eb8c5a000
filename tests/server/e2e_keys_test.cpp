// End-to-end encryption through the real server (issue 9, docs/protocol.md
// "End-to-end encryption"): publishing keys and their checks, the welcome's
// keys, prekey bundles handed out once with the last-resort fallback and the
// low-water push, and e2e messages in direct channels: required there,
// refused elsewhere, checked envelope by envelope, stored and delivered
// unchanged, deleted, and kept across a restart.
#include <doctest/doctest.h>
#include <sodium.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "crypto/franking.hpp"
#include "user_session.hpp"

using namespace parley;
using namespace parley::test;

namespace {

wire::GetBundle bundle(const std::string& user, bool identities_only = false) {
  wire::GetBundle b{0, user, std::nullopt};
  if (identities_only) b.identities_only = true;
  return b;
}

// The keys_state pushed to a session (rid 0), skipping other unsolicited messages.
wire::KeysState pushed_state(UserSession& session) {
  for (;;) {
    wire::ServerMessage m = session.next();
    if (auto* state = std::get_if<wire::KeysState>(&m)) {
      CHECK(state->rid == 0);
      return *state;
    }
  }
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("e2e: keys are checked before anything is stored") {
  TestServer server;
  UserSession alice(server, "alice", false, "phone");
  DeviceKeys keys;
  bool stored = false;
  auto refused = [&](wire::PublishKeys p, const std::string& field) {
    auto e = alice.refused(p, "invalid_keys");
    CHECK_MESSAGE(has(e.message, field), e.message);
  };

  SUBCASE("identity: not base64, wrong length") {
    auto p = keys.first(1);
    p.identity = "not base64!";
    refused(p, "identity");
    p.identity = random_base64(32);
    refused(p, "identity");
    p.identity = keys.identity();
    p.identity.pop_back();  // padding missing
    refused(p, "identity");
  }
  SUBCASE("signed keys: wrong lengths, a bad signature") {
    auto p = keys.first(1);
    p.signed_prekey->key = random_base64(31);
    refused(p, "signed_prekey.key");
    p = keys.first(1);
    p.last_resort->signature = random_base64(63);
    refused(p, "last_resort.signature");
    p = keys.first(1);
    p.signed_prekey->signature = random_base64(64);
    refused(p, "signed_prekey.signature");
    // Signed by another identity.
    DeviceKeys other;
    p = keys.first(1);
    p.last_resort = other.signed_key(1000);
    refused(p, "last_resort.signature");
  }
  SUBCASE("one-time keys: wrong length, too many per request") {
    auto p = keys.first(3);
    (*p.one_time)[2].key = random_base64(33);
    refused(p, "one_time[2].key");
    p = keys.first(wire::kMaxOneTimePerRequest + 1);
    refused(p, "one_time");
  }
  SUBCASE("low-order X25519 keys are refused, wherever they are") {
    // The all-zero key, the value 1 (order 4) and a point of order 8: a
    // Diffie-Hellman with any of them gives a secret known to everyone.
    unsigned char low[3][32] = {{0}, {1}, {}};
    REQUIRE(sodium_hex2bin(low[2], 32,
                           "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", 64,
                           nullptr, nullptr, nullptr) == 0);
    for (const unsigned char* pk : low) {
      CAPTURE(to_base64(pk, 32));
      auto p = keys.first(3);
      p.signed_prekey = keys.signed_key(1, pk);
      refused(p, "field \"signed_prekey.key\" is not a usable X25519 key (low order)");
      p = keys.first(3);
      p.last_resort = keys.signed_key(1000, pk);
      refused(p, "field \"last_resort.key\" is not a usable X25519 key (low order)");
      p = keys.first(3);
      (*p.one_time)[1].key = to_base64(pk, 32);
      refused(p, "field \"one_time[1].key\" is not a usable X25519 key (low order)");
      p = keys.first(3);
      p.identity = keys.identity_with(pk);
      refused(p, "field \"identity\" (its X25519 half, bytes 32-63) is not a usable X25519 key "
                 "(low order)");
      // Also in an update of one-time keys only.
      wire::PublishKeys more{0, keys.identity(), std::nullopt, std::nullopt,
                             DeviceKeys::one_time(10, 1)};
      more.one_time->front().key = to_base64(pk, 32);
      refused(more, "one_time[0].key");
    }
    // A real key next to them still goes through.
    auto fine = keys.first(3);
    CHECK(alice.ask_for<wire::KeysState>(fine).one_time == 3);
    stored = true;
  }
  SUBCASE("a first publish needs the signed prekey and the last resort") {
    auto p = keys.first(1);
    p.signed_prekey.reset();
    refused(p, "signed_prekey");
    p = keys.first(1);
    p.last_resort.reset();
    refused(p, "last_resort");
  }
  SUBCASE("no more one-time keys stored than the bound") {
    auto state = alice.ask_for<wire::KeysState>(keys.first(wire::kMaxOneTimePerRequest));
    CHECK(state.one_time == wire::kMaxOneTimePerRequest);
    stored = true;
    wire::PublishKeys more{0, keys.identity(), std::nullopt, std::nullopt,
                           DeviceKeys::one_time(1000 + 1, wire::kMaxOneTimePerRequest)};
    CHECK(alice.ask_for<wire::KeysState>(more).one_time == wire::kMaxOneTimeStored);
    wire::PublishKeys one_more{0, keys.identity(), std::nullopt, std::nullopt,
                               DeviceKeys::one_time(5000, 1)};
    refused(one_more, "one_time");
    // Nothing of the refused request was kept.
    wire::PublishKeys none{0, keys.identity(), std::nullopt, std::nullopt, std::nullopt};
    CHECK(alice.ask_for<wire::KeysState>(none).one_time == wire::kMaxOneTimeStored);
  }
  SUBCASE("a connection without a device id publishes nothing") {
    UserSession nodevice(server, "dave");
    nodevice.refused(keys.first(1), "invalid_keys");
  }
  // What was refused left nothing behind: a fetcher finds no keys.
  if (!stored) {
    UserSession bob(server, "bob", false, "laptop");
    bob.refused(bundle("alice"), "no_keys");
  }
}

TEST_CASE("e2e: the welcome carries the device's keys once it has published") {
  TestServer server;
  DeviceKeys keys;
  {
    UserSession alice(server, "alice", false, "phone");
    CHECK_FALSE(alice.welcome().keys.has_value());
    auto state = alice.ask_for<wire::KeysState>(keys.first(5));
    CHECK(state.rid != 0);
    CHECK(state.identity == keys.identity());
    CHECK(state.signed_prekey == 1);
    CHECK(state.last_resort == 1000);
    CHECK(state.one_time == 5);
  }
  UserSession again(server, "alice", false, "phone");
  REQUIRE(again.welcome().keys.has_value());
  const wire::KeysState& k = *again.welcome().keys;
  CHECK(k.rid == 0);
  CHECK(k.identity == keys.identity());
  CHECK(k.signed_prekey == 1);
  CHECK(k.last_resort == 1000);
  CHECK(k.one_time == 5);
  UserSession laptop(server, "alice", false, "laptop");
  CHECK_FALSE(laptop.welcome().keys.has_value());
  UserSession nodevice(server, "alice");
  CHECK_FALSE(nodevice.welcome().keys.has_value());
}

TEST_CASE("e2e: each one-time prekey is handed out once, then the last resort") {
  TestServer server;
  UserSession alice(server, "alice", false, "phone");
  UserSession alice_laptop(server, "alice", false, "laptop");  // no keys: never pushed to
  DeviceKeys keys;
  auto published = keys.first(3);
  alice.ask_for<wire::KeysState>(published);
  UserSession bob(server, "bob", false, "b1");
  UserSession carol(server, "carol", false, "c1");

  std::set<std::uint32_t> handed;
  auto take = [&](UserSession& who, std::uint64_t left_after) {
    auto got = who.ask_for<wire::Bundles>(bundle("alice"));
    CHECK(got.user == "alice");
    REQUIRE(got.devices.size() == 1);
    const wire::DeviceBundle& d = got.devices[0];
    CHECK(d.device == "phone");
    CHECK(d.identity == keys.identity());
    REQUIRE(d.signed_prekey.has_value());
    CHECK(d.signed_prekey->id == 1);
    CHECK(d.signed_prekey->key == published.signed_prekey->key);
    CHECK(d.signed_prekey->signature == published.signed_prekey->signature);
    REQUIRE(d.one_time.has_value());
    CHECK_FALSE(d.last_resort.has_value());
    CHECK(handed.insert(d.one_time->id).second);  // never twice
    auto original = std::find_if(published.one_time->begin(), published.one_time->end(),
                                 [&](const wire::OneTimeKey& k) { return k.id == d.one_time->id; });
    REQUIRE(original != published.one_time->end());
    CHECK(d.one_time->key == original->key);
    // Below low water: the device hears how many it has left.
    CHECK(pushed_state(alice).one_time == left_after);
  };
  take(bob, 2);
  take(carol, 1);
  take(bob, 0);
  CHECK(handed == std::set<std::uint32_t>{1, 2, 3});

  // None left: the last resort, as often as asked.
  for (UserSession* who : {&carol, &bob}) {
    auto got = who->ask_for<wire::Bundles>(bundle("alice"));
    REQUIRE(got.devices.size() == 1);
    CHECK(got.devices[0].last_resort == true);
    REQUIRE(got.devices[0].one_time.has_value());
    CHECK(got.devices[0].one_time->id == 1000);
    CHECK(got.devices[0].one_time->key == published.last_resort->key);
    CHECK(pushed_state(alice).one_time == 0);
  }
  CHECK(alice_laptop.quiet());

  // Replenished: one-time keys again, lowest id first.
  wire::PublishKeys more{0, keys.identity(), std::nullopt, std::nullopt,
                         DeviceKeys::one_time(10, 2)};
  CHECK(alice.ask_for<wire::KeysState>(more).one_time == 2);
  auto got = bob.ask_for<wire::Bundles>(bundle("alice"));
  CHECK(got.devices[0].one_time->id == 10);
  CHECK_FALSE(got.devices[0].last_resort.has_value());

  const int port = server.port();
  CHECK(metric(port, "parley_e2e_bundles_total") == 6);
  CHECK(metric(port, "parley_e2e_one_time_taken_total") == 4);
  CHECK(metric(port, "parley_e2e_last_resort_total") == 2);
  CHECK(metric(port, "parley_e2e_keys_published_total") == 2);
}

TEST_CASE("e2e: above low water nothing is pushed") {
  TestServer server;
  UserSession alice(server, "alice", false, "phone");
  DeviceKeys keys;
  alice.ask_for<wire::KeysState>(keys.first(wire::kOneTimeLowWater + 1));
  UserSession bob(server, "bob", false, "b1");
  bob.ask_for<wire::Bundles>(bundle("alice"));  // leaves kOneTimeLowWater
  CHECK(alice.quiet());
  bob.ask_for<wire::Bundles>(bundle("alice"));  // leaves one fewer
  CHECK(pushed_state(alice).one_time == wire::kOneTimeLowWater - 1);
}

TEST_CASE("e2e: a new identity replaces the device's keys; updates keep the rest") {
  TestServer server;
  UserSession alice(server, "alice", false, "phone");
  DeviceKeys first;
  alice.ask_for<wire::KeysState>(first.first(5));

  // Same identity: a rotated signed prekey and more one-time keys; ids
  // stored already are ignored, so a retry changes nothing.
  wire::PublishKeys rotate{0, first.identity(), first.signed_key(2), std::nullopt,
                           DeviceKeys::one_time(4, 4)};  // 4 and 5 are stored already
  auto state = alice.ask_for<wire::KeysState>(rotate);
  CHECK(state.signed_prekey == 2);
  CHECK(state.last_resort == 1000);
  CHECK(state.one_time == 7);
  CHECK(alice.ask_for<wire::KeysState>(rotate).one_time == 7);

  // Another identity without its signed keys is refused.
  DeviceKeys second;
  wire::PublishKeys bare{0, second.identity(), std::nullopt, std::nullopt,
                         DeviceKeys::one_time(1, 1)};
  alice.refused(bare, "invalid_keys");

  // With them: the old one-time keys are gone.
  auto replaced = second.first(0);
  replaced.last_resort = second.signed_key(2000);
  state = alice.ask_for<wire::KeysState>(replaced);
  CHECK(state.identity == second.identity());
  CHECK(state.signed_prekey == 1);
  CHECK(state.last_resort == 2000);
  CHECK(state.one_time == 0);
  UserSession bob(server, "bob", false, "b1");
  auto got = bob.ask_for<wire::Bundles>(bundle("alice"));
  REQUIRE(got.devices.size() == 1);
  CHECK(got.devices[0].identity == second.identity());
  CHECK(got.devices[0].last_resort == true);
  CHECK(got.devices[0].one_time->id == 2000);
  // The old identity's signed keys no longer verify against the new one.
  wire::PublishKeys stale{0, second.identity(), first.signed_key(3), std::nullopt, std::nullopt};
  alice.refused(stale, "invalid_keys");
}

TEST_CASE("e2e: bundles list every device in order; identities_only takes nothing") {
  TestServer server;
  UserSession phone(server, "alice", false, "phone");
  UserSession laptop(server, "alice", false, "laptop");
  UserSession tablet(server, "alice", false, "tablet");  // never publishes
  DeviceKeys phone_keys;
  DeviceKeys laptop_keys;
  phone.ask_for<wire::KeysState>(phone_keys.first(1));
  laptop.ask_for<wire::KeysState>(laptop_keys.first(1));
  UserSession bob(server, "bob", false, "b1");

  auto ids = bob.ask_for<wire::Bundles>(bundle("alice", true));
  REQUIRE(ids.devices.size() == 2);
  CHECK(ids.devices[0].device == "laptop");
  CHECK(ids.devices[0].identity == laptop_keys.identity());
  CHECK(ids.devices[1].device == "phone");
  CHECK(ids.devices[1].identity == phone_keys.identity());
  for (const auto& d : ids.devices) {
    CHECK_FALSE(d.signed_prekey.has_value());
    CHECK_FALSE(d.one_time.has_value());
    CHECK_FALSE(d.last_resort.has_value());
  }
  CHECK(phone.quiet());

  // The one-time keys are all still there; the user's own devices included.
  auto own = phone.ask_for<wire::Bundles>(bundle("alice"));
  REQUIRE(own.devices.size() == 2);
  for (const auto& d : own.devices) {
    REQUIRE(d.one_time.has_value());
    CHECK(d.one_time->id == 1);
    CHECK_FALSE(d.last_resort.has_value());
  }

  bob.refused(bundle("carol"), "no_keys");
  bob.refused(bundle("not a name"), "invalid_user");
}

TEST_CASE("e2e: direct channels take e2e only, other channels never") {
  TestServer server;
  UserSession alice(server, "alice", false, "phone");
  UserSession bob(server, "bob", false, "laptop");
  alice.publish_keys();
  bob.publish_keys();
  const std::string dm = alice.ok(wire::OpenDirect{0, "bob"}).channel;
  alice.ok(wire::CreateChannel{0, "lobby", std::nullopt, std::nullopt});
  bob.ok(wire::JoinChannel{0, "lobby"});

  auto e = alice.refused(wire::Send{0, dm, fresh_id(), "in the clear"}, "e2e_required");
  CHECK(has(e.message, dm));
  CHECK(e.id.has_value());

  wire::Send in_lobby = alice.e2e_message("lobby", "bob");
  alice.refused(in_lobby, "invalid_e2e");
  wire::Send with_text = alice.e2e_message(dm, "bob");
  with_text.text = "and the clear text";
  alice.refused(with_text, "invalid_e2e");

  // Plain text still goes to other channels.
  CHECK(alice.sent("lobby", "hello").seq > 0);
  // A connection without a device id has no e2e to send.
  UserSession nodevice(server, "alice");
  wire::Send from_nowhere = alice.e2e_message(dm, "bob");
  nodevice.refused(from_nowhere, "invalid_e2e");
}

TEST_CASE("e2e: malformed payloads are refused envelope by envelope") {
  TestServer server;
  UserSession alice(server, "alice", false, "phone");
  UserSession bob(server, "bob", false, "laptop");
  UserSession carol(server, "carol", false, "c1");
  alice.publish_keys();
  bob.publish_keys();
  const std::string dm = alice.ok(wire::OpenDirect{0, "bob"}).channel;
  bob.event("create");
  DeviceKeys keys;

  auto base = [&]() { return alice.e2e_message(dm, "bob"); };
  auto refuse = [&](const wire::Send& s, const std::string& part) {
    auto e = alice.refused(s, "invalid_e2e");
    CHECK_MESSAGE(has(e.message, part), e.message);
  };
  std::vector<std::pair<std::string, wire::Send>> cases;
  {
    auto s = base();
    s.e2e->device = "laptop";  // another device than this connection's
    cases.push_back({"device", s});
  }
  {
    auto s = base();
    s.e2e->to.clear();
    cases.push_back({"envelopes", s});
  }
  {
    auto s = base();
    while (s.e2e->to.size() <= wire::kMaxEnvelopes) s.e2e->to.push_back(s.e2e->to[0]);
    cases.push_back({"envelopes", s});
  }
  {
    auto s = base();
    s.e2e->to[0].user = "carol";  // not a member
    cases.push_back({"member", s});
  }
  {
    auto s = base();
    s.e2e->to[0].device = "";
    cases.push_back({"device", s});
  }
  {
    auto s = base();
    s.e2e->to[0].device = std::string(65, 'd');
    cases.push_back({"device", s});
  }
  {
    auto s = base();
    s.e2e->to[0].body = "****";
    cases.push_back({"base64", s});
  }
  {
    auto s = base();
    s.e2e->to[0].body = random_base64(55);  // shorter than a ratchet header and a tag
    cases.push_back({"bytes", s});
  }
  {
    auto s = base();
    s.e2e->to[0].body = random_base64(wire::kMaxEnvelopeBody / 4 * 3 + 3);
    cases.push_back({"characters", s});
  }
  {
    auto s = base();
    s.e2e->to[0].prekey = wire::PrekeyHeader{random_base64(32), random_base64(32), 1, 7};
    cases.push_back({"prekey.identity", s});
  }
  {
    auto s = base();
    s.e2e->to[0].prekey = wire::PrekeyHeader{keys.identity(), random_base64(31), 1, std::nullopt};
    cases.push_back({"prekey.ephemeral", s});
  }
  {
    auto s = base();
    s.e2e->commit.reset();  // the franking commitment is required
    cases.push_back({"commit", s});
  }
  {
    auto s = base();
    s.e2e->commit = random_base64(31);
    cases.push_back({"commit", s});
  }
  {
    auto s = base();
    s.e2e->tag = random_base64(32);  // the server's to set
    cases.push_back({"tag", s});
  }
  for (const auto& c : cases) {
    // Not a structured binding: INFO captures it in a lambda (clang 16).
    const wire::Send& s = c.second;
    INFO(wire::encode(wire::ClientMessage{s}).substr(0, 300));
    refuse(s, c.first);
  }
  CHECK(bob.quiet());

  // Well-formed: with a prekey header, to both of bob's devices and alice's other one.
  UserSession(server, "bob", false, "tablet").publish_keys();
  UserSession(server, "alice", false, "laptop").publish_keys();
  auto s = base();
  REQUIRE(s.e2e->to.size() == 3);
  s.e2e->to[0].prekey = wire::PrekeyHeader{keys.identity(), random_base64(32), 1, 7};
  s.e2e->to[0].body = random_base64(56);
  CHECK(alice.ask_for<wire::Ack>(s).seq > 0);
  auto live = bob.event("message");
  REQUIRE(live.e2e.has_value());
  CHECK(live.e2e->to.size() == 3);
  CHECK(live.e2e->to[0].prekey->one_time == 7u);
  CHECK(live.e2e->commit == s.e2e->commit);
  CHECK(live.e2e->tag.has_value());
}

TEST_CASE("e2e: a message reaches the peer live and in history unchanged, and deletes") {
  TestServer server;
  UserSession alice(server, "alice", false, "phone");
  UserSession bob(server, "bob", false, "laptop");
  alice.publish_keys();
  bob.publish_keys();
  const std::string dm = alice.ok(wire::OpenDirect{0, "bob"}).channel;
  bob.event("create");

  // The commitment is a real one, so that bob can report the message.
  const crypto::Key32 franking_key = crypto::new_franking_key();
  crypto::Key32 commit{};
  wire::Send sent = alice.e2e_message(dm, "bob");
  REQUIRE(crypto::franking_commit(franking_key, sent.id, "alice", dm, "the plaintext", &commit));
  sent.e2e->commit = to_base64(commit.data(), commit.size());
  sent.e2e->to[0].prekey = wire::PrekeyHeader{DeviceKeys().identity(), random_base64(32), 3,
                                              std::nullopt};
  auto ack = alice.ask_for<wire::Ack>(sent);
  CHECK_FALSE(ack.duplicate);

  auto live = bob.event("message");
  // Delivered as sent, with the server's franking tag added.
  REQUIRE(live.e2e.has_value());
  REQUIRE(live.e2e->tag.has_value());
  wire::E2e tagged = *sent.e2e;
  tagged.tag = live.e2e->tag;
  const std::string payload = wire::encode_e2e(tagged);
  CHECK(live.seq == ack.seq);
  CHECK(live.sender == "alice");
  CHECK(live.id == sent.id);
  CHECK_FALSE(live.text.has_value());
  CHECK_FALSE(live.mentions.has_value());
  REQUIRE(live.e2e.has_value());
  CHECK(wire::encode_e2e(*live.e2e) == payload);
  CHECK(live.e2e->to[0].body == sent.e2e->to[0].body);

  auto page = bob.history_after(dm, 0);
  REQUIRE(page.events.size() == 2);
  REQUIRE(page.events[1].e2e.has_value());
  CHECK(wire::encode_e2e(*page.events[1].e2e) == payload);
  CHECK_FALSE(page.events[1].text.has_value());

  // A resend gets the original ack.
  auto again = alice.ask_for<wire::Ack>(sent);
  CHECK(again.duplicate);
  CHECK(again.seq == ack.seq);

  // Unread counts as for any message.
  {
    UserSession bob_again(server, "bob", false, "laptop");
    REQUIRE(bob_again.welcome().channels.size() == 1);
    CHECK(bob_again.welcome().channels[0].unread == 1u);
  }

  // A report discloses the text with its franking key; the server checks it.
  bob.refused(wire::Report{0, dm, ack.seq, "unwanted"}, "invalid_report");
  wire::FrankingOpening opening{"alice",
                                "phone",
                                sent.id,
                                live.ts,
                                "the plaintext",
                                to_base64(franking_key.data(), franking_key.size()),
                                *sent.e2e->commit,
                                *live.e2e->tag};
  wire::Report report{0, dm, ack.seq, "unwanted", opening};
  bob.ok(report);
  UserSession root(server, "root", /*admin=*/true);
  auto reports = root.ask_for<wire::AdminResult>(
      wire::Admin{0, "reports", std::nullopt, std::nullopt, std::nullopt, std::nullopt});
  REQUIRE(reports.reports.has_value());
  REQUIRE(reports.reports->size() == 1);
  CHECK((*reports.reports)[0].sender == "alice");
  CHECK((*reports.reports)[0].text == "the plaintext");

  // Deleting clears the payload.
  alice.ok(wire::DeleteMessage{0, dm, ack.seq});
  auto deletion = bob.event("delete");
  CHECK(deletion.ref == ack.seq);
  page = bob.history_after(dm, 0);
  REQUIRE(page.events.size() >= 2);
  CHECK(page.events[1].deleted == true);
  CHECK_FALSE(page.events[1].e2e.has_value());
  CHECK_FALSE(page.events[1].text.has_value());
  CHECK(metric(server.port(), "parley_e2e_messages_total") == 1);
}

TEST_CASE("e2e: keys, one-time prekeys and e2e messages survive a restart") {
  TestServer server;
  DeviceKeys keys;
  std::string dm;
  wire::Send sent;
  {
    UserSession alice(server, "alice", false, "phone");
    UserSession bob(server, "bob", false, "laptop");
    alice.ask_for<wire::KeysState>(keys.first(2));
    bob.publish_keys();
    CHECK(bob.ask_for<wire::Bundles>(bundle("alice")).devices[0].one_time->id == 1);
    dm = alice.ok(wire::OpenDirect{0, "bob"}).channel;
    sent = alice.e2e_message(dm, "bob");
    alice.ask_for<wire::Ack>(sent);
  }
  server.restart();
  UserSession alice(server, "alice", false, "phone");
  REQUIRE(alice.welcome().keys.has_value());
  CHECK(alice.welcome().keys->identity == keys.identity());
  CHECK(alice.welcome().keys->one_time == 1);
  UserSession bob(server, "bob", false, "laptop");
  auto got = bob.ask_for<wire::Bundles>(bundle("alice"));
  REQUIRE(got.devices.size() == 1);
  CHECK(got.devices[0].one_time->id == 2);
  got = bob.ask_for<wire::Bundles>(bundle("alice"));
  CHECK(got.devices[0].last_resort == true);
  auto page = bob.history_after(dm, 0);
  REQUIRE(page.events.size() == 2);
  REQUIRE(page.events[1].e2e.has_value());
  wire::E2e kept = *page.events[1].e2e;
  CHECK(kept.tag.has_value());
  kept.tag.reset();
  CHECK(wire::encode_e2e(kept) == wire::encode_e2e(*sent.e2e));
}

TEST_CASE("e2e: strings of keys and envelopes must be utf-8, as every string") {
  TestServer server;
  UserSession alice(server, "alice", false, "phone");
  UserSession bob(server, "bob", false, "laptop");
  const std::string dm = alice.ok(wire::OpenDirect{0, "bob"}).channel;
  alice.peer().send(R"({"type":"keys","rid":5001,"identity":"\udc00"})");
  CHECK(alice.peer().expect_error("invalid_utf8").rid == 5001u);
  alice.peer().send(R"({"type":"send","rid":5002,"channel":")" + dm + R"(","id":")" + fresh_id() +
                    R"(","e2e":{"device":"phone","to":[{"user":"bob","device":"\udc00","body":"AAAA"}]}})");
  CHECK(alice.peer().expect_error("invalid_utf8").rid == 5002u);
  alice.peer().send(R"({"type":"bundle","rid":5003,"user":"\udc00"})");
  CHECK(alice.peer().expect_error("invalid_utf8").rid == 5003u);
  CHECK(alice.ask_for<wire::ChannelList>(wire::ListChannels{}).channels.size() == 1);
}
