#include "crypto/ratchet.hpp"

#include <sodium.h>

#include <algorithm>
#include <limits>

namespace parley::crypto {

namespace {

constexpr std::string_view kRootInfo = "Parley ratchet";
constexpr std::string_view kMessageInfo = "Parley message keys";
constexpr std::uint8_t kStateVersion = 1;

ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

void put_u32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

std::uint32_t get_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

void put_key(Bytes& out, const Key32& k) { out.insert(out.end(), k.begin(), k.end()); }

// ENCRYPT / DECRYPT (section 5.2, with XChaCha20-Poly1305 in place of
// AES-CBC + HMAC): HKDF(salt = 32 zero bytes, IKM = mk, info = "Parley
// message keys") gives 56 bytes: a 32-byte AEAD key and a 24-byte nonce.
// Each message key is used for one message only, so the derived nonce never
// repeats under a key.
struct MessageKeys {
  std::array<std::uint8_t, 56> bytes{};
  const std::uint8_t* key() const { return bytes.data(); }
  const std::uint8_t* nonce() const { return bytes.data() + 32; }
  explicit MessageKeys(const Key32& mk) {
    const Key32 salt{};
    (void)hkdf(salt, mk, as_bytes(kMessageInfo), bytes);
  }
  MessageKeys(const MessageKeys&) = delete;
  MessageKeys& operator=(const MessageKeys&) = delete;
  ~MessageKeys() { sodium_memzero(bytes.data(), bytes.size()); }
};

Bytes associated(const Bytes& ad, ByteView header) {
  Bytes out(ad);
  out.insert(out.end(), header.begin(), header.end());
  return out;
}

std::optional<Bytes> open(const Key32& mk, ByteView header, ByteView ciphertext, const Bytes& ad) {
  if (ciphertext.size() < crypto_aead_xchacha20poly1305_ietf_ABYTES) return std::nullopt;
  const MessageKeys keys(mk);
  const Bytes aad = associated(ad, header);
  Bytes plain(ciphertext.size() - crypto_aead_xchacha20poly1305_ietf_ABYTES);
  unsigned long long plain_len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain.data(), &plain_len, nullptr,
                                                 ciphertext.data(), ciphertext.size(), aad.data(),
                                                 aad.size(), keys.nonce(), keys.key()) != 0) {
    return std::nullopt;
  }
  plain.resize(static_cast<std::size_t>(plain_len));
  return plain;
}

}  // namespace

void kdf_rk(const Key32& rk, const Key32& dh_out, Key32& new_rk, Key32& chain_key) {
  std::array<std::uint8_t, 64> out{};
  (void)hkdf(rk, dh_out, as_bytes(kRootInfo), out);
  std::copy_n(out.begin(), 32, new_rk.begin());
  std::copy_n(out.begin() + 32, 32, chain_key.begin());
  sodium_memzero(out.data(), out.size());
}

void kdf_ck(const Key32& ck, Key32& message_key, Key32& next_chain_key) {
  const std::uint8_t one = 0x01;
  const std::uint8_t two = 0x02;
  message_key = hmac_sha256(ck, ByteView(&one, 1));
  next_chain_key = hmac_sha256(ck, ByteView(&two, 1));
}

Ratchet::~Ratchet() { wipe(); }

void Ratchet::wipe() {
  sodium_memzero(rk_.data(), rk_.size());
  sodium_memzero(cks_.data(), cks_.size());
  sodium_memzero(ckr_.data(), ckr_.size());
  for (auto& s : skipped_) sodium_memzero(s.mk.data(), s.mk.size());
}

std::optional<Ratchet> Ratchet::init_initiator(const Key32& sk, const Key32& remote_ratchet_pub,
                                               ByteView ad) {
  Ratchet r;
  r.dhs_ = KeyPair::generate();
  r.dhr_ = remote_ratchet_pub;
  r.has_dhr_ = true;
  Key32 dh{};
  if (!x25519(dh, r.dhs_.secret, r.dhr_)) return std::nullopt;
  kdf_rk(sk, dh, r.rk_, r.cks_);
  sodium_memzero(dh.data(), dh.size());
  r.has_cks_ = true;
  r.ad_.assign(ad.begin(), ad.end());
  return r;
}

Ratchet Ratchet::init_responder(const Key32& sk, const KeyPair& own_ratchet, ByteView ad) {
  Ratchet r;
  r.dhs_ = own_ratchet;
  r.rk_ = sk;
  r.ad_.assign(ad.begin(), ad.end());
  return r;
}

std::optional<Bytes> Ratchet::encrypt(ByteView plaintext) {
  if (!has_cks_ || ns_ == std::numeric_limits<std::uint32_t>::max()) return std::nullopt;
  Key32 mk{};
  Key32 next{};
  kdf_ck(cks_, mk, next);
  Bytes out;
  out.reserve(kRatchetHeaderSize + plaintext.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  put_key(out, dhs_.pub);
  put_u32(out, pn_);
  put_u32(out, ns_);
  const Bytes aad = associated(ad_, out);
  out.resize(kRatchetHeaderSize + plaintext.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  {
    const MessageKeys keys(mk);
    unsigned long long len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + kRatchetHeaderSize, &len,
                                               plaintext.data(), plaintext.size(), aad.data(),
                                               aad.size(), nullptr, keys.nonce(), keys.key());
  }
  sodium_memzero(mk.data(), mk.size());
  cks_ = next;
  sodium_memzero(next.data(), next.size());
  ++ns_;
  return out;
}

bool Ratchet::skip_message_keys(std::uint32_t until) {
  if (until > nr_ && until - nr_ > kMaxSkip) return false;
  if (!has_ckr_) return true;
  while (nr_ < until) {
    SkippedKey s;
    s.dh = dhr_;
    s.n = nr_;
    Key32 next{};
    kdf_ck(ckr_, s.mk, next);
    ckr_ = next;
    sodium_memzero(next.data(), next.size());
    skipped_.push_back(s);
    sodium_memzero(s.mk.data(), s.mk.size());
    if (skipped_.size() > kMaxStoredSkipped) {
      sodium_memzero(skipped_.front().mk.data(), 32);
      skipped_.pop_front();
    }
    ++nr_;
  }
  return true;
}

bool Ratchet::dh_ratchet(const Key32& remote_pub) {
  pn_ = ns_;
  ns_ = 0;
  nr_ = 0;
  dhr_ = remote_pub;
  has_dhr_ = true;
  Key32 dh{};
  if (!x25519(dh, dhs_.secret, dhr_)) return false;
  kdf_rk(rk_, dh, rk_, ckr_);
  has_ckr_ = true;
  dhs_ = KeyPair::generate();
  const bool ok = x25519(dh, dhs_.secret, dhr_);
  if (ok) {
    kdf_rk(rk_, dh, rk_, cks_);
    has_cks_ = true;
  }
  sodium_memzero(dh.data(), dh.size());
  return ok;
}

std::optional<Bytes> Ratchet::decrypt(ByteView message) {
  if (message.size() < kRatchetHeaderSize + crypto_aead_xchacha20poly1305_ietf_ABYTES)
    return std::nullopt;
  const ByteView header = message.first(kRatchetHeaderSize);
  const ByteView ciphertext = message.subspan(kRatchetHeaderSize);
  Key32 dh{};
  std::copy_n(header.begin(), 32, dh.begin());
  const std::uint32_t pn = get_u32(header.data() + 32);
  const std::uint32_t n = get_u32(header.data() + 36);

  // TrySkippedMessageKeys: a stored key is used once, then deleted.
  for (auto it = skipped_.begin(); it != skipped_.end(); ++it) {
    if (it->n != n || sodium_memcmp(it->dh.data(), dh.data(), 32) != 0) continue;
    auto plain = open(it->mk, header, ciphertext, ad_);
    if (plain) {
      sodium_memzero(it->mk.data(), 32);
      skipped_.erase(it);
    }
    return plain;
  }

  const bool same_chain = has_dhr_ && sodium_memcmp(dh.data(), dhr_.data(), 32) == 0;
  // A message of the current receiving chain that is neither next nor
  // skipped has been decrypted already (or its key was dropped): a replay.
  if (same_chain && n < nr_) return std::nullopt;

  Ratchet next(*this);  // committed only on success
  if (!same_chain) {
    if (!next.skip_message_keys(pn) || !next.dh_ratchet(dh)) return std::nullopt;
  }
  if (!next.skip_message_keys(n)) return std::nullopt;
  Key32 mk{};
  Key32 ck{};
  kdf_ck(next.ckr_, mk, ck);
  next.ckr_ = ck;
  sodium_memzero(ck.data(), ck.size());
  ++next.nr_;
  auto plain = open(mk, header, ciphertext, ad_);
  sodium_memzero(mk.data(), mk.size());
  if (!plain) return std::nullopt;
  wipe();
  *this = next;
  return plain;
}

std::string Ratchet::serialize() const {
  Bytes out;
  out.push_back(kStateVersion);
  out.push_back(
      static_cast<std::uint8_t>((has_dhr_ ? 1 : 0) | (has_cks_ ? 2 : 0) | (has_ckr_ ? 4 : 0)));
  put_key(out, dhs_.pub);
  put_key(out, dhs_.secret);
  put_key(out, dhr_);
  put_key(out, rk_);
  put_key(out, cks_);
  put_key(out, ckr_);
  put_u32(out, ns_);
  put_u32(out, nr_);
  put_u32(out, pn_);
  put_u32(out, static_cast<std::uint32_t>(ad_.size()));
  out.insert(out.end(), ad_.begin(), ad_.end());
  put_u32(out, static_cast<std::uint32_t>(skipped_.size()));
  for (const auto& s : skipped_) {
    put_key(out, s.dh);
    put_u32(out, s.n);
    put_key(out, s.mk);
  }
  std::string result(reinterpret_cast<const char*>(out.data()), out.size());
  sodium_memzero(out.data(), out.size());
  return result;
}

std::optional<Ratchet> Ratchet::deserialize(std::string_view data) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(data.data());
  std::size_t left = data.size();
  auto take = [&](std::size_t n) -> const std::uint8_t* {
    if (left < n) return nullptr;
    const std::uint8_t* at = p;
    p += n;
    left -= n;
    return at;
  };
  auto key = [&](Key32& k) {
    const std::uint8_t* at = take(32);
    if (at) std::copy_n(at, 32, k.begin());
    return at != nullptr;
  };
  auto u32 = [&](std::uint32_t& v) {
    const std::uint8_t* at = take(4);
    if (at) v = get_u32(at);
    return at != nullptr;
  };
  const std::uint8_t* head = take(2);
  if (!head || head[0] != kStateVersion || (head[1] & ~7u) != 0) return std::nullopt;
  Ratchet r;
  r.has_dhr_ = (head[1] & 1) != 0;
  r.has_cks_ = (head[1] & 2) != 0;
  r.has_ckr_ = (head[1] & 4) != 0;
  std::uint32_t ad_len = 0;
  if (!key(r.dhs_.pub) || !key(r.dhs_.secret) || !key(r.dhr_) || !key(r.rk_) || !key(r.cks_) ||
      !key(r.ckr_) || !u32(r.ns_) || !u32(r.nr_) || !u32(r.pn_) || !u32(ad_len))
    return std::nullopt;
  const std::uint8_t* ad = take(ad_len);
  if (!ad) return std::nullopt;
  r.ad_.assign(ad, ad + ad_len);
  std::uint32_t count = 0;
  if (!u32(count) || count > kMaxStoredSkipped || left != std::size_t{count} * 68)
    return std::nullopt;
  for (std::uint32_t i = 0; i < count; ++i) {
    SkippedKey s;
    (void)key(s.dh);
    (void)u32(s.n);
    (void)key(s.mk);
    r.skipped_.push_back(s);
    sodium_memzero(s.mk.data(), s.mk.size());
  }
  return r;
}

}  // namespace parley::crypto
