// X3DH: both sides agree on SK and AD, with and without a one-time prekey;
// a bad signed-prekey signature or a low-order key is refused.
#include <doctest/doctest.h>

#include "crypto/x3dh.hpp"

using namespace parley::crypto;

namespace {

struct Bob {
  Identity identity = Identity::generate();
  SignedPrekey spk = make_signed_prekey(identity, 7);
  KeyPair opk = KeyPair::generate();

  PrekeyBundle bundle(bool with_opk) const {
    PrekeyBundle b;
    b.identity = identity.public_part();
    b.signed_prekey_id = spk.id;
    b.signed_prekey = spk.key.pub;
    b.signature = spk.signature;
    if (with_opk) {
      b.one_time_prekey_id = 42;
      b.one_time_prekey = opk.pub;
    }
    return b;
  }
};

}  // namespace

TEST_CASE("X3DH: both sides derive the same SK and AD") {
  REQUIRE(sodium_ready());
  const Identity alice = Identity::generate();
  const Bob bob;
  for (bool with_opk : {false, true}) {
    CAPTURE(with_opk);
    const auto init = x3dh_initiate(alice, bob.bundle(with_opk));
    REQUIRE(init);
    CHECK(init->signed_prekey_id == 7);
    CHECK(init->one_time_prekey_id.has_value() == with_opk);
    const auto resp = x3dh_respond(bob.identity, bob.spk.key, with_opk ? &bob.opk : nullptr,
                                   alice.public_part(), init->ephemeral_pub);
    REQUIRE(resp);
    CHECK(resp->sk == init->secret.sk);
    CHECK(resp->ad == init->secret.ad);
    CHECK(resp->sk != Key32{});
    CHECK(init->secret.ad.size() == 128);
    CHECK(init->secret.ad == x3dh_associated_data(alice.public_part(), bob.identity.public_part()));
    // Without the one-time prekey the responder gets another secret.
    const auto wrong = x3dh_respond(bob.identity, bob.spk.key, with_opk ? nullptr : &bob.opk,
                                    alice.public_part(), init->ephemeral_pub);
    REQUIRE(wrong);
    CHECK(wrong->sk != init->secret.sk);
  }
  // Two initiations use fresh ephemeral keys, hence different secrets.
  const auto a = x3dh_initiate(alice, bob.bundle(true));
  const auto b = x3dh_initiate(alice, bob.bundle(true));
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->secret.sk != b->secret.sk);
}

TEST_CASE("X3DH: a bad signed-prekey signature is refused") {
  const Identity alice = Identity::generate();
  const Bob bob;
  PrekeyBundle tampered_sig = bob.bundle(true);
  tampered_sig.signature[5] ^= 1;
  CHECK_FALSE(x3dh_initiate(alice, tampered_sig));

  PrekeyBundle swapped_key = bob.bundle(true);
  swapped_key.signed_prekey = KeyPair::generate().pub;
  CHECK_FALSE(x3dh_initiate(alice, swapped_key));

  // Signed by someone else's identity.
  const Identity mallory = Identity::generate();
  PrekeyBundle other_signer = bob.bundle(false);
  other_signer.signature = make_signed_prekey(mallory, 1).signature;
  CHECK_FALSE(x3dh_initiate(alice, other_signer));

  // Key id without key (or the reverse) is malformed.
  PrekeyBundle half = bob.bundle(false);
  half.one_time_prekey_id = 3;
  CHECK_FALSE(x3dh_initiate(alice, half));
}

TEST_CASE("X3DH: low-order keys are refused") {
  const Identity alice = Identity::generate();
  const Bob bob;
  Key32 one{};
  one[0] = 1;
  PrekeyBundle bad_opk = bob.bundle(true);
  bad_opk.one_time_prekey = one;
  CHECK_FALSE(x3dh_initiate(alice, bad_opk));

  PrekeyBundle bad_identity = bob.bundle(false);
  bad_identity.identity.dh_pub = Key32{};
  CHECK_FALSE(x3dh_initiate(alice, bad_identity));

  CHECK_FALSE(x3dh_respond(bob.identity, bob.spk.key, nullptr, alice.public_part(), Key32{}));
  IdentityPublic bad_alice = alice.public_part();
  bad_alice.dh_pub = one;
  const auto init = x3dh_initiate(alice, bob.bundle(false));
  REQUIRE(init);
  CHECK_FALSE(x3dh_respond(bob.identity, bob.spk.key, nullptr, bad_alice, init->ephemeral_pub));
}
