#include "crypto/x3dh.hpp"

#include <sodium.h>

#include <algorithm>
#include <string_view>

namespace parley::crypto {

namespace {

constexpr std::string_view kX3dhInfo = "Parley X3DH";

ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// F || DH1 || ... || DHn through HKDF into SK; wipes the input.
bool derive_sk(Bytes& ikm, Key32& sk) {
  const Key32 salt{};
  const bool ok = hkdf(salt, ikm, as_bytes(kX3dhInfo), sk);
  sodium_memzero(ikm.data(), ikm.size());
  return ok;
}

void append(Bytes& out, const Key32& k) { out.insert(out.end(), k.begin(), k.end()); }

}  // namespace

bool x25519(Key32& out, const Key32& secret, const Key32& peer_public) {
  if (!sodium_ready() || crypto_scalarmult(out.data(), secret.data(), peer_public.data()) != 0) {
    sodium_memzero(out.data(), out.size());
    return false;
  }
  return true;
}

KeyPair KeyPair::generate() {
  (void)sodium_ready();
  KeyPair kp;
  crypto_box_keypair(kp.pub.data(), kp.secret.data());
  return kp;
}

KeyPair::~KeyPair() { sodium_memzero(secret.data(), secret.size()); }

Identity Identity::generate() {
  (void)sodium_ready();
  Identity id;
  crypto_sign_keypair(id.sign_pub.data(), id.sign_secret.data());
  id.dh = KeyPair::generate();
  return id;
}

IdentityPublic Identity::public_part() const { return {sign_pub, dh.pub}; }

Identity::~Identity() { sodium_memzero(sign_secret.data(), sign_secret.size()); }

X3dhSecret::~X3dhSecret() { sodium_memzero(sk.data(), sk.size()); }

SignedPrekey make_signed_prekey(const Identity& identity, std::uint32_t id) {
  SignedPrekey spk;
  spk.id = id;
  spk.key = KeyPair::generate();
  crypto_sign_detached(spk.signature.data(), nullptr, spk.key.pub.data(), spk.key.pub.size(),
                       identity.sign_secret.data());
  return spk;
}

bool verify_signed_prekey(const IdentityPublic& identity, const Key32& prekey_pub,
                          const Signature& signature) {
  return sodium_ready() &&
         crypto_sign_verify_detached(signature.data(), prekey_pub.data(), prekey_pub.size(),
                                     identity.sign_pub.data()) == 0;
}

Bytes x3dh_associated_data(const IdentityPublic& initiator, const IdentityPublic& responder) {
  Bytes ad;
  ad.reserve(128);
  append(ad, initiator.dh_pub);
  ad.insert(ad.end(), initiator.sign_pub.begin(), initiator.sign_pub.end());
  append(ad, responder.dh_pub);
  ad.insert(ad.end(), responder.sign_pub.begin(), responder.sign_pub.end());
  return ad;
}

std::optional<X3dhInitiation> x3dh_initiate(const Identity& initiator, const PrekeyBundle& bundle) {
  if (!verify_signed_prekey(bundle.identity, bundle.signed_prekey, bundle.signature))
    return std::nullopt;
  if (bundle.one_time_prekey.has_value() != bundle.one_time_prekey_id.has_value())
    return std::nullopt;
  const KeyPair ek = KeyPair::generate();
  Bytes ikm(32, 0xFF);
  ikm.reserve(32 * 5);
  Key32 dh{};
  auto step = [&](const Key32& secret, const Key32& pub) {
    if (!x25519(dh, secret, pub)) return false;
    append(ikm, dh);
    return true;
  };
  bool ok = step(initiator.dh.secret, bundle.signed_prekey) &&
            step(ek.secret, bundle.identity.dh_pub) && step(ek.secret, bundle.signed_prekey);
  if (ok && bundle.one_time_prekey) ok = step(ek.secret, *bundle.one_time_prekey);
  sodium_memzero(dh.data(), dh.size());
  X3dhInitiation out;
  if (!ok || !derive_sk(ikm, out.secret.sk)) {
    sodium_memzero(ikm.data(), ikm.size());
    return std::nullopt;
  }
  out.secret.ad = x3dh_associated_data(initiator.public_part(), bundle.identity);
  out.ephemeral_pub = ek.pub;
  out.signed_prekey_id = bundle.signed_prekey_id;
  out.one_time_prekey_id = bundle.one_time_prekey_id;
  return out;
}

std::optional<X3dhSecret> x3dh_respond(const Identity& responder, const KeyPair& signed_prekey,
                                       const KeyPair* one_time_prekey,
                                       const IdentityPublic& initiator,
                                       const Key32& ephemeral_pub) {
  Bytes ikm(32, 0xFF);
  ikm.reserve(32 * 5);
  Key32 dh{};
  auto step = [&](const Key32& secret, const Key32& pub) {
    if (!x25519(dh, secret, pub)) return false;
    append(ikm, dh);
    return true;
  };
  bool ok = step(signed_prekey.secret, initiator.dh_pub) &&
            step(responder.dh.secret, ephemeral_pub) && step(signed_prekey.secret, ephemeral_pub);
  if (ok && one_time_prekey) ok = step(one_time_prekey->secret, ephemeral_pub);
  sodium_memzero(dh.data(), dh.size());
  X3dhSecret out;
  if (!ok || !derive_sk(ikm, out.sk)) {
    sodium_memzero(ikm.data(), ikm.size());
    return std::nullopt;
  }
  out.ad = x3dh_associated_data(initiator, responder.public_part());
  return out;
}

}  // namespace parley::crypto
