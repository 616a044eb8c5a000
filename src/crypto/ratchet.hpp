// The Double Ratchet (Signal's Double Ratchet specification, sections 2.2-2.4,
// 3.1-3.5 and the recommended cryptographic algorithms of section 5.2), with
// unencrypted headers, on libsodium. docs/security.md states the parameters.
//
// Wire form of a message: header || ciphertext, the header being
//   DHs public key (32) || PN (u32, big-endian) || N (u32, big-endian)
// and the ciphertext XChaCha20-Poly1305-IETF (plaintext + 16-byte tag) under
// associated data AD || header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/hkdf.hpp"
#include "crypto/x3dh.hpp"

namespace parley::crypto {

// KDF_RK (section 5.2): HKDF-SHA-256 with salt = rk, IKM = dh_out,
// info = "Parley ratchet", 64 bytes split into the new root key and chain key.
void kdf_rk(const Key32& rk, const Key32& dh_out, Key32& new_rk, Key32& chain_key);

// KDF_CK (section 5.2): message key = HMAC-SHA-256(ck, 0x01),
// next chain key = HMAC-SHA-256(ck, 0x02).
void kdf_ck(const Key32& ck, Key32& message_key, Key32& next_chain_key);

inline constexpr std::size_t kRatchetHeaderSize = 40;

class Ratchet {
 public:
  // Skipped message keys derived for one chain at most.
  static constexpr std::uint32_t kMaxSkip = 1000;
  // Skipped message keys kept in all; the oldest are dropped beyond it.
  static constexpr std::size_t kMaxStoredSkipped = 2000;

  // RatchetInitAlice: the initiator, with SK from X3DH and the responder's
  // ratchet public key (its signed prekey). Nothing if the DH is refused.
  static std::optional<Ratchet> init_initiator(const Key32& sk, const Key32& remote_ratchet_pub,
                                               ByteView ad);
  // RatchetInitBob: the responder, with its signed prekey pair.
  static Ratchet init_responder(const Key32& sk, const KeyPair& own_ratchet, ByteView ad);

  // Nothing if there is no sending chain yet (a responder sends only after
  // it has received) or the counter would overflow. Allocates only the output.
  std::optional<Bytes> encrypt(ByteView plaintext);

  // Nothing on any failure (bad format, refused DH, gap beyond kMaxSkip,
  // authentication failure, replay, a message under the responder's signed
  // prekey before any reply); the state is then unchanged. New keys and
  // skipped entries are staged and committed after authentication: the state
  // (its skipped-key store in particular) is never copied.
  std::optional<Bytes> decrypt(ByteView message);

  // Versioned binary form of the whole state, secrets included: store it
  // encrypted or in a protected place.
  std::string serialize() const;
  static std::optional<Ratchet> deserialize(std::string_view data);

  std::size_t skipped_key_count() const { return skipped_.size(); }

  Ratchet(const Ratchet&) = default;
  Ratchet& operator=(const Ratchet&) = default;
  ~Ratchet();

 private:
  Ratchet() = default;

  struct SkippedKey {
    Key32 dh{};
    std::uint32_t n = 0;
    Key32 mk{};
  };

  // KDF_CK steps of chain key `ck` for messages from..until-1, their keys
  // appended to `out` under ratchet key `dh`.
  static void derive_skipped(Key32& ck, const Key32& dh, std::uint32_t from, std::uint32_t until,
                             std::vector<SkippedKey>& out);
  void wipe();

  KeyPair dhs_;
  Key32 dhr_{};
  bool has_dhr_ = false;
  Key32 rk_{};
  Key32 cks_{};
  bool has_cks_ = false;
  Key32 ckr_{};
  bool has_ckr_ = false;
  std::uint32_t ns_ = 0;
  std::uint32_t nr_ = 0;
  std::uint32_t pn_ = 0;
  Bytes ad_;
  std::deque<SkippedKey> skipped_;  // oldest first
};

}  // namespace parley::crypto
