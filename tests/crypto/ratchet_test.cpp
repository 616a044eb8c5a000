// The Double Ratchet between two parties set up by X3DH: both directions,
// reordering, duplicates, tampering, gaps, persistence, bad DH keys.
#include <doctest/doctest.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/ratchet.hpp"
#include "crypto/x3dh.hpp"

using namespace parley::crypto;

namespace {

Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }
std::string str(const Bytes& b) { return std::string(b.begin(), b.end()); }

struct Pair {
  std::optional<Ratchet> alice;
  std::optional<Ratchet> bob;

  Pair() {
    REQUIRE(sodium_ready());
    const Identity a = Identity::generate();
    const Identity b = Identity::generate();
    const SignedPrekey spk = make_signed_prekey(b, 1);
    const KeyPair opk = KeyPair::generate();
    PrekeyBundle bundle{b.public_part(), spk.id, spk.key.pub, spk.signature, 9, opk.pub};
    const auto init = x3dh_initiate(a, bundle);
    REQUIRE(init);
    const auto resp = x3dh_respond(b, spk.key, &opk, a.public_part(), init->ephemeral_pub);
    REQUIRE(resp);
    alice = Ratchet::init_initiator(init->secret.sk, spk.key.pub, init->secret.ad);
    REQUIRE(alice);
    bob = Ratchet::init_responder(resp->sk, spk.key, resp->ad);
  }
};

Bytes enc(std::optional<Ratchet>& r, std::string_view s) {
  auto m = r->encrypt(text(s));
  REQUIRE(m);
  return *m;
}

void expect(std::optional<Ratchet>& r, const Bytes& m, std::string_view s) {
  const auto p = r->decrypt(m);
  REQUIRE(p);
  CHECK(str(*p) == s);
}

}  // namespace

TEST_CASE("ratchet: conversation both ways") {
  Pair p;
  CHECK_FALSE(p.bob->encrypt(text("too early")));  // no sending chain before receiving
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 3; ++i) {
      const std::string s = "a" + std::to_string(round) + "." + std::to_string(i);
      expect(p.bob, enc(p.alice, s), s);
    }
    for (int i = 0; i < 2; ++i) {
      const std::string s = "b" + std::to_string(round) + "." + std::to_string(i);
      expect(p.alice, enc(p.bob, s), s);
    }
  }
  expect(p.bob, enc(p.alice, ""), "");  // empty plaintext
  const auto m = enc(p.alice, "x");
  CHECK(m.size() == kRatchetHeaderSize + 1 + 16);
}

TEST_CASE("ratchet: out-of-order delivery within MAX_SKIP") {
  Pair p;
  std::vector<Bytes> first;
  for (int i = 0; i < 10; ++i) first.push_back(enc(p.alice, "m" + std::to_string(i)));
  expect(p.bob, first[9], "m9");
  expect(p.bob, first[3], "m3");
  CHECK(p.bob->skipped_key_count() == 8);
  // Bob answers, Alice answers again: a DH step while old messages are pending.
  expect(p.alice, enc(p.bob, "reply"), "reply");
  const Bytes later = enc(p.alice, "later");
  std::vector<Bytes> mid;
  for (int i = 0; i < 5; ++i) mid.push_back(enc(p.alice, "n" + std::to_string(i)));
  expect(p.bob, mid[4], "n4");  // skips "later" and n0..n3 of the new chain
  expect(p.bob, first[0], "m0");
  expect(p.bob, later, "later");
  for (int i : {2, 1, 0, 3}) expect(p.bob, mid[i], "n" + std::to_string(i));
  for (int i : {8, 7, 6, 5, 4, 2, 1}) expect(p.bob, first[i], "m" + std::to_string(i));
  CHECK(p.bob->skipped_key_count() == 0);

  // Exactly MAX_SKIP skipped is accepted.
  std::vector<Bytes> burst;
  for (std::uint32_t i = 0; i <= Ratchet::kMaxSkip; ++i) burst.push_back(enc(p.alice, "b"));
  expect(p.bob, burst.back(), "b");
  CHECK(p.bob->skipped_key_count() == Ratchet::kMaxSkip);
  expect(p.bob, burst[0], "b");
}

TEST_CASE("ratchet: duplicates and replays are refused") {
  Pair p;
  const Bytes m0 = enc(p.alice, "zero");
  const Bytes m1 = enc(p.alice, "one");
  const Bytes m2 = enc(p.alice, "two");
  expect(p.bob, m0, "zero");
  CHECK_FALSE(p.bob->decrypt(m0));  // replay of the last one, current chain
  expect(p.bob, m2, "two");
  CHECK_FALSE(p.bob->decrypt(m2));
  expect(p.bob, m1, "one");         // from the skipped keys
  CHECK_FALSE(p.bob->decrypt(m1));  // skipped key used once
  // After a DH step, replays of an older chain are refused as well.
  expect(p.alice, enc(p.bob, "r"), "r");
  const Bytes m3 = enc(p.alice, "three");
  expect(p.bob, m3, "three");
  CHECK_FALSE(p.bob->decrypt(m0));
  CHECK_FALSE(p.bob->decrypt(m3));
  expect(p.bob, enc(p.alice, "four"), "four");
}

TEST_CASE("ratchet: tampered ciphertext is refused and the state is unchanged") {
  Pair p;
  const Bytes m0 = enc(p.alice, "hello");
  const Bytes m1 = enc(p.alice, "world");
  const std::string before = p.bob->serialize();
  for (std::size_t at :
       {std::size_t{0}, std::size_t{33}, std::size_t{39}, std::size_t{40}, m0.size() - 1}) {
    CAPTURE(at);
    Bytes t = m0;
    t[at] ^= 0x01;
    CHECK_FALSE(p.bob->decrypt(t));
    CHECK(p.bob->serialize() == before);
  }
  Bytes truncated(m0.begin(), m0.begin() + 50);
  CHECK_FALSE(p.bob->decrypt(truncated));
  CHECK_FALSE(p.bob->decrypt(Bytes{}));
  CHECK(p.bob->serialize() == before);
  // Tampered message for a skipped key: refused, key kept.
  expect(p.bob, m1, "world");
  Bytes t = m0;
  t.back() ^= 0x80;
  CHECK_FALSE(p.bob->decrypt(t));
  CHECK(p.bob->skipped_key_count() == 1);
  expect(p.bob, m0, "hello");
  expect(p.bob, enc(p.alice, "more"), "more");
}

TEST_CASE("ratchet: a gap beyond MAX_SKIP is refused cleanly") {
  Pair p;
  expect(p.bob, enc(p.alice, "start"), "start");
  for (std::uint32_t i = 0; i < Ratchet::kMaxSkip + 1; ++i) (void)enc(p.alice, "lost");
  const Bytes far = enc(p.alice, "far");
  const std::string before = p.bob->serialize();
  CHECK_FALSE(p.bob->decrypt(far));
  CHECK(p.bob->serialize() == before);
  CHECK(p.bob->skipped_key_count() == 0);

  // Same across a DH step: PN too large.
  Pair q;
  expect(q.bob, enc(q.alice, "s"), "s");
  expect(q.alice, enc(q.bob, "t"), "t");
  // Bob's chain "t" goes on for MAX_SKIP + 1 messages Alice never gets.
  for (std::uint32_t i = 0; i < Ratchet::kMaxSkip + 1; ++i) (void)enc(q.bob, "lost");
  expect(q.bob, enc(q.alice, "u"), "u");  // Bob steps: his next chain has PN = MAX_SKIP + 2
  const std::string before_q = q.alice->serialize();
  // Alice would have to skip MAX_SKIP + 1 keys of the old chain first.
  const Bytes b_next = enc(q.bob, "v");
  CHECK_FALSE(q.alice->decrypt(b_next));
  CHECK(q.alice->serialize() == before_q);
}

TEST_CASE("ratchet: the skipped-key store is capped, oldest dropped") {
  Pair p;
  std::vector<Bytes> kept;
  // Three chains of MAX_SKIP skipped messages each: 3000 > cap.
  Bytes first_skipped;
  for (int chain = 0; chain < 3; ++chain) {
    for (std::uint32_t i = 0; i < Ratchet::kMaxSkip; ++i) {
      Bytes m = enc(p.alice, "s");
      if (chain == 0 && i == 0) first_skipped = m;
      if (chain == 2 && i == Ratchet::kMaxSkip - 1) kept.push_back(m);
    }
    expect(p.bob, enc(p.alice, "tail"), "tail");
    expect(p.alice, enc(p.bob, "step"), "step");
  }
  CHECK(p.bob->skipped_key_count() == Ratchet::kMaxStoredSkipped);
  CHECK_FALSE(p.bob->decrypt(first_skipped));  // dropped
  expect(p.bob, kept[0], "s");                 // recent one kept
}

TEST_CASE("ratchet: serialize and deserialize mid-conversation") {
  Pair p;
  expect(p.bob, enc(p.alice, "1"), "1");
  const Bytes pending = enc(p.alice, "pending");
  expect(p.bob, enc(p.alice, "2"), "2");
  expect(p.alice, enc(p.bob, "3"), "3");

  auto alice2 = Ratchet::deserialize(p.alice->serialize());
  auto bob2 = Ratchet::deserialize(p.bob->serialize());
  REQUIRE(alice2);
  REQUIRE(bob2);
  CHECK(alice2->serialize() == p.alice->serialize());
  p.alice = std::move(alice2);
  p.bob = std::move(bob2);
  CHECK(p.bob->skipped_key_count() == 1);
  expect(p.bob, pending, "pending");
  for (int i = 0; i < 3; ++i) {
    expect(p.bob, enc(p.alice, "a"), "a");
    expect(p.alice, enc(p.bob, "b"), "b");
  }

  // Malformed states are refused.
  const std::string good = p.bob->serialize();
  CHECK_FALSE(Ratchet::deserialize(""));
  CHECK_FALSE(Ratchet::deserialize(good.substr(0, good.size() - 1)));
  CHECK_FALSE(Ratchet::deserialize(good + "x"));
  std::string bad_version = good;
  bad_version[0] = 2;
  CHECK_FALSE(Ratchet::deserialize(bad_version));
  CHECK(Ratchet::deserialize(good));
}

TEST_CASE("ratchet: a small-order DH public key in a header is refused") {
  Pair p;
  expect(p.bob, enc(p.alice, "ok"), "ok");
  const Bytes m = enc(p.alice, "next");
  const std::string before = p.bob->serialize();
  for (const char* pt : {"zero", "one", "order8"}) {
    CAPTURE(pt);
    Bytes t = m;
    std::fill(t.begin(), t.begin() + 32, 0);
    if (std::string_view(pt) == "one") t[0] = 1;
    if (std::string_view(pt) == "order8") {
      const std::uint8_t o8[32] = {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
                                   0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
                                   0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00};
      std::copy(std::begin(o8), std::end(o8), t.begin());
    }
    CHECK_FALSE(p.bob->decrypt(t));
    CHECK(p.bob->serialize() == before);
  }
  expect(p.bob, m, "next");
  // And as the responder's ratchet key at initialisation.
  CHECK_FALSE(Ratchet::init_initiator(Key32{}, Key32{}, {}));
}

TEST_CASE("ratchet: a failed decrypt that would have skipped keys leaves the state as it was") {
  Pair p;
  // Pending skipped keys from an earlier chain, so the store is not empty.
  std::vector<Bytes> old;
  for (int i = 0; i < 4; ++i) old.push_back(enc(p.alice, "o" + std::to_string(i)));
  expect(p.bob, old[3], "o3");
  REQUIRE(p.bob->skipped_key_count() == 3);

  // Same chain, a gap of five: tampered, then valid.
  std::vector<Bytes> gap;
  for (int i = 0; i < 6; ++i) gap.push_back(enc(p.alice, "g" + std::to_string(i)));
  std::string before = p.bob->serialize();
  Bytes bad = gap[5];
  bad.back() ^= 0x01;
  CHECK_FALSE(p.bob->decrypt(bad));
  CHECK(p.bob->serialize() == before);
  CHECK(p.bob->skipped_key_count() == 3);

  // A DH step that would skip the rest of the current chain and part of the
  // new one: tampered (ciphertext, then PN), then valid.
  expect(p.alice, enc(p.bob, "turn"), "turn");
  std::vector<Bytes> next;
  for (int i = 0; i < 3; ++i) next.push_back(enc(p.alice, "n" + std::to_string(i)));
  before = p.bob->serialize();
  bad = next[2];
  bad[kRatchetHeaderSize] ^= 0x01;
  CHECK_FALSE(p.bob->decrypt(bad));
  CHECK(p.bob->serialize() == before);
  bad = next[2];
  bad[35] ^= 0x01;  // PN, bound by the AD
  CHECK_FALSE(p.bob->decrypt(bad));
  CHECK(p.bob->serialize() == before);

  expect(p.bob, next[2], "n2");
  CHECK(p.bob->skipped_key_count() == 3 + 6 + 2);
  for (int i : {0, 1}) expect(p.bob, next[i], "n" + std::to_string(i));
  for (int i = 0; i < 6; ++i) expect(p.bob, gap[i], "g" + std::to_string(i));
  for (int i = 0; i < 3; ++i) expect(p.bob, old[i], "o" + std::to_string(i));
  CHECK(p.bob->skipped_key_count() == 0);
}

TEST_CASE("ratchet: before any reply, a message claiming the responder's prekey is refused") {
  // The initiator holds the responder's signed prekey as DHr but has no
  // receiving chain yet. A message under that key would be keyed from an
  // all-zero chain key, which anyone can compute: forge one and check it is
  // refused.
  REQUIRE(sodium_ready());
  const Identity a = Identity::generate();
  const Identity b = Identity::generate();
  const SignedPrekey spk = make_signed_prekey(b, 1);
  PrekeyBundle bundle{b.public_part(), spk.id, spk.key.pub, spk.signature, {}, {}};
  const auto init = x3dh_initiate(a, bundle);
  REQUIRE(init);
  auto alice = Ratchet::init_initiator(init->secret.sk, spk.key.pub, init->secret.ad);
  REQUIRE(alice);

  const Bytes plain = text("forged");
  Bytes header(spk.key.pub.begin(), spk.key.pub.end());
  header.resize(kRatchetHeaderSize, 0);  // PN = 0, N = 0
  Key32 mk{};
  Key32 ck{};
  kdf_ck(Key32{}, mk, ck);
  std::array<std::uint8_t, 56> keys{};
  const std::string_view info = "Parley message keys";
  REQUIRE(hkdf(Key32{}, mk,
               ByteView(reinterpret_cast<const std::uint8_t*>(info.data()), info.size()), keys));
  Bytes aad = init->secret.ad;  // public: both identities' keys
  aad.insert(aad.end(), header.begin(), header.end());
  Bytes forged = header;
  forged.resize(kRatchetHeaderSize + plain.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(forged.data() + kRatchetHeaderSize, &len, plain.data(),
                                             plain.size(), aad.data(), aad.size(), nullptr,
                                             keys.data() + 32, keys.data());
  const std::string before = alice->serialize();
  CHECK_FALSE(alice->decrypt(forged));
  CHECK(alice->serialize() == before);
}
