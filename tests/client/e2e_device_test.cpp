// The client's end-to-end layer (client/e2e.hpp) over real SQLite caches,
// with the network replaced by a small key server and hand-made channel
// events, so that loss, duplication, reordering, tampering and replays can
// be arranged exactly. The same code runs through the real server in
// e2e_dm_test.cpp and through processes in tests/e2e/dm_e2e_test.cpp.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "client/e2e.hpp"
#include "crypto/franking.hpp"
#include "crypto/ratchet.hpp"
#include "store/cache.hpp"
#include "test_support.hpp"

namespace parley {
namespace {

using testing::temp_dir;

constexpr std::int64_t kNow = 1'800'000'000'000;

// One device: its cache files and its e2e layer, reopened like an app restart.
struct Device {
  Device(std::string user_name, std::string device_name)
      : user(std::move(user_name)), device(std::move(device_name)), dir(temp_dir("e2e-" + user)) {
    open();
  }
  ~Device() {
    e2e.reset();
    cache.reset();
    std::filesystem::remove_all(dir);
  }
  void open() {
    auto c = store::Cache::open(dir.string(), user);
    REQUIRE_MESSAGE(c.ok(), c.status().to_string());
    cache = std::move(*c);
    e2e = std::make_unique<client::E2eDevice>(*cache, user, device);
    REQUIRE(e2e->open().ok());
  }
  void restart() {
    e2e.reset();
    cache.reset();
    open();
  }

  std::string user, device;
  std::filesystem::path dir;
  std::unique_ptr<store::Cache> cache;
  std::unique_ptr<client::E2eDevice> e2e;
};

// What the server does with keys: holds each device's publish and hands
// each one-time prekey out once, then the last-resort prekey.
struct KeyServer {
  struct Held {
    wire::PublishKeys keys;
    std::vector<wire::OneTimeKey> one_time;
  };
  std::map<std::string, Held> held;  // by user (one device each here)
  std::map<std::string, std::string> device_of;

  void publish(Device& d) {
    std::optional<wire::KeysState> state;
    if (held.count(d.user)) {
      const Held& h = held[d.user];
      state = wire::KeysState{0, h.keys.identity, h.keys.signed_prekey->id,
                              h.keys.last_resort->id, h.one_time.size()};
    }
    auto publish = d.e2e->keys_to_publish(state, kNow);
    REQUIRE(publish.ok());
    if (!*publish) return;
    Held& h = held[d.user];
    if (!state || state->identity != (*publish)->identity) h = Held{**publish, {}};
    if ((*publish)->signed_prekey) h.keys.signed_prekey = (*publish)->signed_prekey;
    if ((*publish)->last_resort) h.keys.last_resort = (*publish)->last_resort;
    if ((*publish)->one_time) {
      for (const auto& k : *(*publish)->one_time) h.one_time.push_back(k);
    }
    device_of[d.user] = d.device;
  }
  wire::Bundles bundle(const std::string& user) {
    Held& h = held.at(user);
    wire::DeviceBundle b;
    b.device = device_of.at(user);
    b.identity = h.keys.identity;
    b.signed_prekey = h.keys.signed_prekey;
    if (!h.one_time.empty()) {
      b.one_time = h.one_time.front();
      h.one_time.erase(h.one_time.begin());
    } else {
      b.one_time = wire::OneTimeKey{h.keys.last_resort->id, h.keys.last_resort->key};
      b.last_resort = true;
    }
    return wire::Bundles{0, user, {b}};
  }
};

// A channel of two: events numbered as a server would.
struct Conversation {
  std::string channel = "@alice+bob";
  std::uint64_t next_seq = 2;

  wire::ChannelEvent seal(Device& from, const std::string& to, const std::string& text,
                          const wire::Bundles* bundles = nullptr) {
    std::string id = MessageId::random().hex();
    std::vector<wire::Bundles> given;
    if (bundles != nullptr) given.push_back(*bundles);
    auto sealed = from.e2e->seal({to}, channel, id, text, given, kNow);
    REQUIRE_MESSAGE(sealed.ok(), sealed.status().to_string());
    REQUIRE(from.cache->apply_e2e(sealed->write).ok());
    wire::ChannelEvent e;
    e.channel = channel;
    e.seq = next_seq++;
    e.kind = "message";
    e.sender = from.user;
    e.ts = kNow;
    e.id = id;
    e.e2e = sealed->payload;
    return e;
  }
};

// Decrypts and stores like the engine: one transaction for the batch.
std::vector<Message> receive(Device& d, const std::vector<wire::ChannelEvent>& events,
                             bool commit = true) {
  client::E2eDevice::Batch batch(*d.e2e);
  std::vector<Message> out;
  for (const auto& e : events) {
    Message m;
    m.channel = e.channel;
    m.seq = e.seq;
    m.sender = e.sender;
    m.id = e.id.value_or("");
    m.ts_ms = e.ts;
    batch.decrypt(e, m);
    out.push_back(m);
  }
  if (commit) {
    auto write = batch.write();
    auto stored = d.cache->store_events(out, std::nullopt, &write);
    REQUIRE_MESSAGE(stored.ok(), stored.status().to_string());
    batch.committed();
  }
  return out;
}

std::string one_text(Device& d, const wire::ChannelEvent& e) {
  auto got = receive(d, {e});
  REQUIRE(got.size() == 1);
  INFO("e2e_error: " << got[0].e2e_error);
  CHECK(got[0].e2e);
  return got[0].text;
}

struct Pair {
  Device alice{"alice", "a1"};
  Device bob{"bob", "b1"};
  KeyServer server;
  Conversation chat;
  Pair() {
    server.publish(alice);
    server.publish(bob);
  }
  // The first message starts the session from bob's bundle.
  void start() {
    wire::Bundles b = server.bundle("bob");
    CHECK(one_text(bob, chat.seal(alice, "bob", "hello bob", &b)) == "hello bob");
  }
};

TEST_CASE("e2e device: keys are made once, published in full, then topped up") {
  Device d("dora", "d1");
  auto first = d.e2e->keys_to_publish(std::nullopt, kNow);
  REQUIRE(first.ok());
  REQUIRE(*first);
  const wire::PublishKeys& p = **first;
  CHECK(p.signed_prekey.has_value());
  CHECK(p.last_resort.has_value());
  REQUIRE(p.one_time.has_value());
  CHECK(p.one_time->size() == client::kOneTimeTarget);
  wire::KeysState full{0, p.identity, p.signed_prekey->id, p.last_resort->id, 100};
  auto again = d.e2e->keys_to_publish(full, kNow);
  REQUIRE(again.ok());
  CHECK_FALSE(again->has_value());  // the server is up to date
  wire::KeysState low = full;
  low.one_time = 5;
  auto top_up = d.e2e->keys_to_publish(low, kNow);
  REQUIRE(top_up.ok());
  REQUIRE(*top_up);
  CHECK_FALSE((*top_up)->signed_prekey.has_value());
  REQUIRE((*top_up)->one_time.has_value());
  CHECK((*top_up)->one_time->size() == 95);
  // A week later the signed prekey rotates; the identity stays.
  auto rotated = d.e2e->keys_to_publish(full, kNow + client::kSignedPrekeyRotationMs);
  REQUIRE(rotated.ok());
  REQUIRE(*rotated);
  REQUIRE((*rotated)->signed_prekey.has_value());
  CHECK((*rotated)->signed_prekey->id != p.signed_prekey->id);
  CHECK((*rotated)->identity == p.identity);
  // The identity survives a restart.
  std::string identity = d.e2e->identity_bytes();
  d.restart();
  CHECK(d.e2e->identity_bytes() == identity);
}

TEST_CASE("e2e device: a conversation both ways survives loss, duplication and reordering") {
  Pair p;
  p.start();
  // Alice sends ten; bob gets 3, 1, 2, loses 4, then 10..5 backwards, and
  // a duplicate of 2 delivered again under a new seq (a replay) is refused.
  std::vector<wire::ChannelEvent> sent;
  for (int i = 1; i <= 10; ++i) sent.push_back(p.chat.seal(p.alice, "bob", fmt::format("m{}", i)));
  CHECK(one_text(p.bob, sent[2]) == "m3");
  CHECK(one_text(p.bob, sent[0]) == "m1");
  CHECK(one_text(p.bob, sent[1]) == "m2");
  for (int i = 9; i >= 4; --i) CHECK(one_text(p.bob, sent[i]) == fmt::format("m{}", i + 1));
  wire::ChannelEvent replay = sent[1];
  replay.seq = p.chat.next_seq++;
  auto refused = receive(p.bob, {replay});
  CHECK(refused[0].e2e_error == "bad_message");
  CHECK(refused[0].text.empty());
  // Bob answers (a DH ratchet step), alice reads, and so on a few times.
  for (int round = 0; round < 5; ++round) {
    CHECK(one_text(p.alice, p.chat.seal(p.bob, "alice", fmt::format("b{}", round))) ==
          fmt::format("b{}", round));
    CHECK(one_text(p.bob, p.chat.seal(p.alice, "bob", fmt::format("a{}", round))) ==
          fmt::format("a{}", round));
  }
  // The lost message, late: its key was kept (skipped), so it still opens once.
  CHECK(one_text(p.bob, sent[3]) == "m4");
  wire::ChannelEvent late_again = sent[3];
  late_again.seq = p.chat.next_seq++;
  CHECK(receive(p.bob, {late_again})[0].e2e_error == "bad_message");
}

TEST_CASE("e2e device: a gap beyond MAX_SKIP is refused cleanly and changes nothing") {
  Pair p;
  p.start();
  std::vector<wire::ChannelEvent> sent;
  const std::uint32_t n = crypto::Ratchet::kMaxSkip + 2;
  for (std::uint32_t i = 0; i < n; ++i) sent.push_back(p.chat.seal(p.alice, "bob", "x"));
  auto far = receive(p.bob, {sent.back()});
  CHECK(far[0].e2e_error == "bad_message");
  // The session is as it was: the next message in order still opens.
  CHECK(one_text(p.bob, sent[0]) == "x");
}

TEST_CASE("e2e device: tampered ciphertext, a swapped message id and a wrong recipient are refused") {
  Pair p;
  p.start();
  wire::ChannelEvent good = p.chat.seal(p.alice, "bob", "intact");
  for (std::size_t at : {std::size_t{0}, std::size_t{20}, std::size_t{45}, std::size_t{60}}) {
    wire::ChannelEvent bad = good;
    auto body = client::from_base64(bad.e2e->to[0].body);
    REQUIRE(body);
    REQUIRE(at < body->size());
    (*body)[at] = static_cast<char>((*body)[at] ^ 0x01);
    bad.e2e->to[0].body = client::to_base64(*body);
    bad.seq = p.chat.next_seq++;
    INFO("flipped byte " << at);
    CHECK(receive(p.bob, {bad})[0].e2e_error == "bad_message");
  }
  wire::ChannelEvent not_base64 = good;
  not_base64.e2e->to[0].body = "%%%";
  not_base64.seq = p.chat.next_seq++;
  CHECK(receive(p.bob, {not_base64})[0].e2e_error == "bad_message");
  // The server relabels the ciphertext as another message: the id inside differs.
  wire::ChannelEvent relabelled = good;
  relabelled.id = MessageId::random().hex();
  relabelled.seq = p.chat.next_seq++;
  CHECK(receive(p.bob, {relabelled})[0].e2e_error == "bad_message");
  wire::ChannelEvent elsewhere = good;
  elsewhere.e2e->to[0].device = "b2";
  elsewhere.seq = p.chat.next_seq++;
  CHECK(receive(p.bob, {elsewhere})[0].e2e_error == "not_for_this_device");
  // None of that moved the session: the real message opens.
  CHECK(one_text(p.bob, good) == "intact");
}

TEST_CASE("e2e device: the server cannot move a message to another channel or sender") {
  Pair p;
  p.start();
  wire::ChannelEvent good = p.chat.seal(p.alice, "bob", "where it belongs");
  wire::ChannelEvent moved = good;
  moved.channel = "@bob+mallory";
  CHECK(receive(p.bob, {moved})[0].e2e_error == "bad_message");
  // Claimed to come from carol, from alice's device and session: no session
  // is found for carol (or, with a prekey header, the name inside differs).
  wire::ChannelEvent renamed = good;
  renamed.sender = "carol";
  renamed.seq = p.chat.next_seq++;
  CHECK_FALSE(receive(p.bob, {renamed})[0].e2e_error.empty());
  wire::ChannelEvent first_renamed = p.chat.seal(p.alice, "bob", "x");
  CHECK(one_text(p.bob, good) == "where it belongs");
  CHECK(one_text(p.bob, first_renamed) == "x");
}

TEST_CASE("e2e device: two devices that start sessions with each other at once settle on one") {
  Pair p;
  wire::Bundles for_alice = p.server.bundle("bob");
  wire::Bundles for_bob = p.server.bundle("alice");
  // Both write first, before either has read the other.
  wire::ChannelEvent from_alice = p.chat.seal(p.alice, "bob", "hi bob", &for_alice);
  wire::ChannelEvent from_bob = p.chat.seal(p.bob, "alice", "hi alice", &for_bob);
  CHECK(one_text(p.bob, from_alice) == "hi bob");
  CHECK(one_text(p.alice, from_bob) == "hi alice");
  // Each now answers on the session the other started; both keep working.
  for (int round = 0; round < 3; ++round) {
    CHECK(one_text(p.bob, p.chat.seal(p.alice, "bob", fmt::format("a{}", round))) ==
          fmt::format("a{}", round));
    CHECK(one_text(p.alice, p.chat.seal(p.bob, "alice", fmt::format("b{}", round))) ==
          fmt::format("b{}", round));
  }
  p.alice.restart();
  p.bob.restart();
  CHECK(one_text(p.bob, p.chat.seal(p.alice, "bob", "after restart")) == "after restart");
  CHECK(one_text(p.alice, p.chat.seal(p.bob, "alice", "me too")) == "me too");
}

TEST_CASE("e2e device: both parties restart mid-conversation and carry on") {
  Pair p;
  p.start();
  CHECK(one_text(p.alice, p.chat.seal(p.bob, "alice", "before")) == "before");
  wire::ChannelEvent in_flight = p.chat.seal(p.alice, "bob", "in flight");
  p.alice.restart();
  p.bob.restart();
  CHECK(one_text(p.bob, in_flight) == "in flight");
  CHECK(one_text(p.alice, p.chat.seal(p.bob, "alice", "after")) == "after");
  CHECK(one_text(p.bob, p.chat.seal(p.alice, "bob", "and again")) == "and again");
}

TEST_CASE("e2e device: a crash before the commit loses nothing: the message decrypts again") {
  Pair p;
  p.start();
  wire::ChannelEvent e = p.chat.seal(p.alice, "bob", "survives");
  auto first = receive(p.bob, {e}, /*commit=*/false);  // decrypted, then the process dies
  CHECK(first[0].text == "survives");
  p.bob.restart();
  CHECK(one_text(p.bob, e) == "survives");
  CHECK(one_text(p.bob, p.chat.seal(p.alice, "bob", "next")) == "next");
}

TEST_CASE("e2e device: prekeys exhausted: the last-resort prekey starts every later session") {
  Device bob("bob", "b1");
  KeyServer server;
  server.publish(bob);
  // Others drain the one-time prekeys without ever writing.
  for (std::size_t i = 0; i < client::kOneTimeTarget; ++i) {
    CHECK_FALSE(server.bundle("bob").devices[0].last_resort.has_value());
  }
  Device alice("alice", "a1");
  Device carol("carol", "c1");
  server.publish(alice);
  server.publish(carol);
  wire::Bundles for_alice = server.bundle("bob");
  wire::Bundles for_carol = server.bundle("bob");
  REQUIRE(for_alice.devices[0].last_resort == std::optional<bool>(true));
  REQUIRE(for_carol.devices[0].last_resort == std::optional<bool>(true));
  Conversation with_alice;
  Conversation with_carol;
  with_carol.channel = "@bob+carol";
  CHECK(one_text(bob, with_alice.seal(alice, "bob", "via last resort", &for_alice)) ==
        "via last resort");
  CHECK(one_text(bob, with_carol.seal(carol, "bob", "me too", &for_carol)) == "me too");
  // The last-resort prekey stays; bob's answers work both ways.
  CHECK(bob.cache->prekeys("last_resort")->size() == 1);
  CHECK(one_text(alice, with_alice.seal(bob, "alice", "hi alice")) == "hi alice");
  CHECK(one_text(carol, with_carol.seal(bob, "carol", "hi carol")) == "hi carol");
}

TEST_CASE("e2e device: a one-time prekey serves one session only") {
  Pair p;
  wire::Bundles b = p.server.bundle("bob");
  wire::ChannelEvent first = p.chat.seal(p.alice, "bob", "first", &b);
  CHECK(one_text(p.bob, first) == "first");
  auto used = b.devices[0].one_time->id;
  CHECK_FALSE(p.bob.cache->prekey(used)->has_value());  // deleted after use
  // The same initial message replayed: it matches the session it started
  // (same ephemeral key) and the ratchet refuses the replay.
  wire::ChannelEvent replay = first;
  replay.seq = p.chat.next_seq++;
  CHECK(receive(p.bob, {replay})[0].e2e_error == "bad_message");
  // Another initiator given the same (stolen) bundle cannot use the key.
  Device mallory("mallory", "m1");
  p.server.publish(mallory);
  Conversation other;
  other.channel = "@bob+mallory";
  wire::ChannelEvent forged = other.seal(mallory, "bob", "reuse", &b);
  CHECK(receive(p.bob, {forged})[0].e2e_error == "unknown_prekey");
}

TEST_CASE("e2e device: safety numbers agree, verification holds until an identity changes") {
  Pair p;
  p.start();
  CHECK(one_text(p.alice, p.chat.seal(p.bob, "alice", "hi")) == "hi");
  auto from_alice = p.alice.e2e->safety("bob");
  auto from_bob = p.bob.e2e->safety("alice");
  REQUIRE(from_alice.ok());
  REQUIRE(from_bob.ok());
  CHECK(from_alice->number == from_bob->number);
  CHECK(from_alice->number.size() == 60 + 11);
  CHECK_FALSE(from_alice->verified);
  CHECK(p.alice.e2e->verify("bob", true).ok());
  CHECK(p.alice.e2e->safety("bob")->verified);
  CHECK(p.alice.e2e->verify("nobody", true).reason() == "no_keys");

  // Bob reinstalls: same device id, new identity. Alice learns it from his
  // new bundle: the identity changed, she had verified him, and now has not.
  std::filesystem::remove_all(p.bob.dir);
  p.bob.restart();
  p.server.held.erase("bob");
  p.server.publish(p.bob);
  wire::Bundles fresh = p.server.bundle("bob");
  auto news = p.alice.e2e->learn_identities(fresh, kNow);
  REQUIRE(news.ok());
  REQUIRE(news->size() == 1);
  CHECK((*news)[0].changed);
  CHECK((*news)[0].was_verified);
  auto after = p.alice.e2e->safety("bob");
  CHECK(after->number != from_alice->number);
  CHECK_FALSE(after->verified);
}

}  // namespace
TEST_CASE("e2e device: the franking commitment must match; the recipient keeps what a report needs") {
  Pair p;
  p.start();
  wire::ChannelEvent good = p.chat.seal(p.alice, "bob", "committed");
  REQUIRE(good.e2e->commit);
  // The sender (or the server) swaps the commitment: the message could not
  // be reported, so it is refused, and the session is as it was.
  wire::ChannelEvent other = p.chat.seal(p.alice, "bob", "another");
  wire::ChannelEvent swapped = good;
  swapped.e2e->commit = other.e2e->commit;
  swapped.seq = p.chat.next_seq++;
  CHECK(receive(p.bob, {swapped})[0].e2e_error == "bad_message");
  wire::ChannelEvent missing = good;
  missing.e2e->commit.reset();
  missing.seq = p.chat.next_seq++;
  CHECK(receive(p.bob, {missing})[0].e2e_error == "bad_message");
  good.e2e->tag = client::to_base64(std::string(32, 't'));
  CHECK(one_text(p.bob, good) == "committed");
  auto row = p.bob.cache->e2e_franking(good.channel, good.seq);
  REQUIRE(row.ok());
  REQUIRE(row->has_value());
  CHECK((*row)->device == "a1");
  CHECK((*row)->tag == std::string(32, 't'));
  crypto::Key32 key{};
  crypto::Key32 commit{};
  REQUIRE((*row)->key.size() == 32);
  std::copy((*row)->key.begin(), (*row)->key.end(), key.begin());
  REQUIRE(crypto::franking_commit(key, *good.id, "alice", good.channel, "committed", &commit));
  CHECK(client::to_base64(std::string(commit.begin(), commit.end())) == *good.e2e->commit);
  // The sender finds the same franking key again for the same message (a
  // resend carries the original's commitment).
  CHECK(one_text(p.bob, other) == "another");
}

TEST_CASE("e2e device: a message is sent again only to an identity it was sealed for") {
  Pair p;
  p.start();
  wire::ChannelEvent sent = p.chat.seal(p.alice, "bob", "to resend");
  wire::Bundles fresh = p.server.bundle("bob");
  auto resealed =
      p.alice.e2e->reseal("bob", "b1", sent.channel, *sent.id, "to resend", fresh, kNow);
  REQUIRE_MESSAGE(resealed.ok(), resealed.status().to_string());
  REQUIRE(resealed->payload.to.size() == 1);
  CHECK(resealed->payload.to[0].prekey.has_value());  // a new session
  CHECK(resealed->payload.commit == sent.e2e->commit);  // the same franking key
  REQUIRE(p.alice.cache->apply_e2e(resealed->write).ok());

  // Bob opens it as the original message.
  wire::E2eNotice notice;
  notice.nid = 1;
  notice.kind = "resend";
  notice.channel = sent.channel;
  notice.seq = sent.seq;
  notice.id = *sent.id;
  notice.user = "alice";
  notice.device = "a1";
  notice.ts = kNow;
  notice.envelope = resealed->payload.to[0];
  notice.commit = sent.e2e->commit;
  {
    client::E2eDevice::Batch batch(*p.bob.e2e);
    std::string text;
    CHECK(batch.decrypt_resend(notice, sent.channel, &text) == "");
    CHECK(text == "to resend");
  }

  // A device id the message never went to: refused.
  wire::Bundles other = p.server.bundle("bob");
  other.devices[0].device = "b2";
  auto refused = p.alice.e2e->reseal("bob", "b2", sent.channel, *sent.id, "x", other, kNow);
  CHECK(refused.status().reason() == "not_a_recipient");
  // The same device id with a new identity (a reinstall, or a server's key):
  // never given an old message.
  std::filesystem::remove_all(p.bob.dir);
  p.bob.restart();
  p.server.held.erase("bob");
  p.server.publish(p.bob);
  wire::Bundles reinstalled = p.server.bundle("bob");
  refused = p.alice.e2e->reseal("bob", "b1", sent.channel, *sent.id, "x", reinstalled, kNow);
  CHECK(refused.status().reason() == "not_a_recipient");
}

TEST_CASE("e2e device: a resend from an unknown device or identity is refused") {
  Pair p;
  p.start();
  CHECK(one_text(p.alice, p.chat.seal(p.bob, "alice", "bob knows a1 now")) == "bob knows a1 now");
  // Someone else's keys under alice's name and device id (what a server
  // could publish), sealing a "resend" of an id of its choice for bob.
  Device impostor{"alice", "a1"};
  wire::Bundles bob_keys = p.server.bundle("bob");
  std::string id = MessageId::random().hex();
  auto forged = impostor.e2e->seal({"bob"}, p.chat.channel, id, "forged words", {bob_keys}, kNow);
  REQUIRE(forged.ok());
  wire::E2eNotice notice;
  notice.nid = 2;
  notice.kind = "resend";
  notice.channel = p.chat.channel;
  notice.seq = 40;
  notice.id = id;
  notice.user = "alice";
  notice.device = "a1";
  notice.envelope = forged->payload.to[0];
  notice.commit = forged->payload.commit;
  client::E2eDevice::Batch batch(*p.bob.e2e);
  std::string text;
  CHECK(batch.decrypt_resend(notice, p.chat.channel, &text) == "unknown_device");
  CHECK(text.empty());
  CHECK(batch.write().sessions.empty());
  notice.device = "a9";  // a device bob never heard of
  CHECK(batch.decrypt_resend(notice, p.chat.channel, &text) == "unknown_device");
}

}  // namespace parley
