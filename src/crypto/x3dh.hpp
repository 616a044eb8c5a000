// X25519 and X3DH (Signal's X3DH specification, sections 2.2 and 3.3) on
// libsodium. libsodium has no XEdDSA, so an identity is two key pairs: an
// Ed25519 signing key (signs the signed prekey) and an X25519 agreement key
// (used in the DH computations). docs/security.md states the parameters.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "crypto/hkdf.hpp"

namespace parley::crypto {

using Signature = std::array<std::uint8_t, 64>;

// X25519(sk, pk). False, with `out` zeroed, when libsodium refuses: an
// all-zero result, which small-order (low-order) points produce.
[[nodiscard]] bool x25519(Key32& out, const Key32& secret, const Key32& peer_public);

// An X25519 key pair. The secret is wiped on destruction.
struct KeyPair {
  Key32 pub{};
  Key32 secret{};
  static KeyPair generate();
  KeyPair() = default;
  KeyPair(const KeyPair&) = default;
  KeyPair& operator=(const KeyPair&) = default;
  ~KeyPair();
};

struct IdentityPublic {
  std::array<std::uint8_t, 32> sign_pub{};  // Ed25519
  Key32 dh_pub{};                           // X25519
  bool operator==(const IdentityPublic&) const = default;
};

// A device identity. Secrets are wiped on destruction.
struct Identity {
  std::array<std::uint8_t, 32> sign_pub{};
  std::array<std::uint8_t, 64> sign_secret{};
  KeyPair dh;
  static Identity generate();
  IdentityPublic public_part() const;
  Identity() = default;
  Identity(const Identity&) = default;
  Identity& operator=(const Identity&) = default;
  ~Identity();
};

// A signed prekey: an X25519 key pair whose public key is signed (Ed25519,
// detached) by the identity's signing key.
struct SignedPrekey {
  std::uint32_t id = 0;
  KeyPair key;
  Signature signature{};
};
SignedPrekey make_signed_prekey(const Identity& identity, std::uint32_t id);
[[nodiscard]] bool verify_signed_prekey(const IdentityPublic& identity, const Key32& prekey_pub,
                                        const Signature& signature);

// What the server hands the initiator (X3DH section 3.2).
struct PrekeyBundle {
  IdentityPublic identity;
  std::uint32_t signed_prekey_id = 0;
  Key32 signed_prekey{};
  Signature signature{};
  std::optional<std::uint32_t> one_time_prekey_id;
  std::optional<Key32> one_time_prekey;
};

// Associated data: AD = Encode(IK_A) || Encode(IK_B), with Encode(IK) the
// X25519 public key followed by the Ed25519 public key (128 bytes in all).
Bytes x3dh_associated_data(const IdentityPublic& initiator, const IdentityPublic& responder);

// The shared secret and associated data both sides end with. SK is wiped on
// destruction.
struct X3dhSecret {
  Key32 sk{};
  Bytes ad;
  X3dhSecret() = default;
  X3dhSecret(const X3dhSecret&) = default;
  X3dhSecret& operator=(const X3dhSecret&) = default;
  ~X3dhSecret();
};

// The initiator's result: the secret, plus what its initial message must
// carry to the responder (X3DH section 3.3).
struct X3dhInitiation {
  X3dhSecret secret;
  Key32 ephemeral_pub{};
  std::uint32_t signed_prekey_id = 0;
  std::optional<std::uint32_t> one_time_prekey_id;
};

// Alice's side: verifies the bundle's signature, then
// DH1 = DH(IK_A, SPK_B), DH2 = DH(EK_A, IK_B), DH3 = DH(EK_A, SPK_B),
// DH4 = DH(EK_A, OPK_B) when the bundle has a one-time prekey,
// SK = HKDF(salt = 32 zero bytes, F || DH1 || DH2 || DH3 [|| DH4],
//           info = "Parley X3DH"), F = 32 bytes 0xFF.
// Nothing on a bad signature or a refused DH.
std::optional<X3dhInitiation> x3dh_initiate(const Identity& initiator, const PrekeyBundle& bundle);

// Bob's side, given the keys the initial message names (the caller looks
// them up and deletes the one-time prekey afterwards).
std::optional<X3dhSecret> x3dh_respond(const Identity& responder, const KeyPair& signed_prekey,
                                       const KeyPair* one_time_prekey,
                                       const IdentityPublic& initiator, const Key32& ephemeral_pub);

}  // namespace parley::crypto
