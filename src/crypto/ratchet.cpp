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

void put_u32(std::uint8_t* out, std::uint32_t v) {
  out[0] = static_cast<std::uint8_t>(v >> 24);
  out[1] = static_cast<std::uint8_t>(v >> 16);
  out[2] = static_cast<std::uint8_t>(v >> 8);
  out[3] = static_cast<std::uint8_t>(v);
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
    Key32 prk = hkdf_extract_zero_salt(mk);
    (void)hkdf_expand(prk, as_bytes(kMessageInfo), bytes);
    sodium_memzero(prk.data(), prk.size());
  }
  MessageKeys(const MessageKeys&) = delete;
  MessageKeys& operator=(const MessageKeys&) = delete;
  ~MessageKeys() { sodium_memzero(bytes.data(), bytes.size()); }
};

// AD || header, the AEAD's associated data, on the stack for the usual AD
// sizes (X3DH's is 128 bytes): no heap allocation per message.
class AssociatedData {
 public:
  AssociatedData(const Bytes& ad, ByteView header) : size_(ad.size() + header.size()) {
    std::uint8_t* p = inline_.data();
    if (size_ > inline_.size()) {
      heap_.resize(size_);
      p = heap_.data();
    }
    std::copy(ad.begin(), ad.end(), p);
    std::copy(header.begin(), header.end(), p + ad.size());
    data_ = p;
  }
  AssociatedData(const AssociatedData&) = delete;
  AssociatedData& operator=(const AssociatedData&) = delete;
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  std::array<std::uint8_t, 256> inline_;
  Bytes heap_;
  std::size_t size_;
  const std::uint8_t* data_ = nullptr;
};

std::optional<Bytes> open(const Key32& mk, ByteView header, ByteView ciphertext, const Bytes& ad) {
  if (ciphertext.size() < crypto_aead_xchacha20poly1305_ietf_ABYTES) return std::nullopt;
  const MessageKeys keys(mk);
  const AssociatedData aad(ad, header);
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

// Wipes the keys it is given when it goes out of scope.
template <std::size_t N>
class WipeOnExit {
 public:
  explicit WipeOnExit(std::array<Key32*, N> keys) : keys_(keys) {}
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;
  ~WipeOnExit() {
    for (Key32* k : keys_) sodium_memzero(k->data(), k->size());
  }

 private:
  std::array<Key32*, N> keys_;
};

}  // namespace

void kdf_rk(const Key32& rk, const Key32& dh_out, Key32& new_rk, Key32& chain_key) {
  std::array<std::uint8_t, 64> out{};
  (void)hkdf(rk, dh_out, as_bytes(kRootInfo), out);
  std::copy_n(out.begin(), 32, new_rk.begin());
  std::copy_n(out.begin() + 32, 32, chain_key.begin());
  sodium_memzero(out.data(), out.size());
}

void kdf_ck(const Key32& ck, Key32& message_key, Key32& next_chain_key) {
  // Both are HMACs under ck: key the state once, finish a copy for each.
  const std::uint8_t one = 0x01;
  const std::uint8_t two = 0x02;
  crypto_auth_hmacsha256_state keyed;
  crypto_auth_hmacsha256_init(&keyed, ck.data(), ck.size());
  crypto_auth_hmacsha256_state st = keyed;
  crypto_auth_hmacsha256_update(&st, &one, 1);
  crypto_auth_hmacsha256_final(&st, message_key.data());
  st = keyed;
  crypto_auth_hmacsha256_update(&st, &two, 1);
  crypto_auth_hmacsha256_final(&st, next_chain_key.data());
  sodium_memzero(&st, sizeof st);
  sodium_memzero(&keyed, sizeof keyed);
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
  WipeOnExit<2> wipe_keys({&mk, &next});
  kdf_ck(cks_, mk, next);
  // The output is the only allocation: header, then ciphertext in place.
  Bytes out(kRatchetHeaderSize + plaintext.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  std::copy(dhs_.pub.begin(), dhs_.pub.end(), out.begin());
  put_u32(out.data() + 32, pn_);
  put_u32(out.data() + 36, ns_);
  const ByteView header(out.data(), kRatchetHeaderSize);
  {
    const AssociatedData aad(ad_, header);
    const MessageKeys keys(mk);
    unsigned long long len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + kRatchetHeaderSize, &len,
                                               plaintext.data(), plaintext.size(), aad.data(),
                                               aad.size(), nullptr, keys.nonce(), keys.key());
  }
  cks_ = next;
  ++ns_;
  return out;
}

void Ratchet::derive_skipped(Key32& ck, const Key32& dh, std::uint32_t from, std::uint32_t until,
                             std::vector<SkippedKey>& out) {
  for (std::uint32_t n = from; n < until; ++n) {
    SkippedKey& s = out.emplace_back();
    s.dh = dh;
    s.n = n;
    Key32 next{};
    kdf_ck(ck, s.mk, next);
    ck = next;
    sodium_memzero(next.data(), next.size());
  }
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
  if (same_chain) {
    // An initiator that has not received yet holds the responder's signed
    // prekey as DHr but no receiving chain: a message "of that chain" would
    // be keyed from an all-zero chain key, so anyone could forge it.
    if (!has_ckr_) return std::nullopt;
    // A message of the current receiving chain that is neither next nor
    // skipped has been decrypted already (or its key was dropped): a replay.
    if (n < nr_) return std::nullopt;
  }

  // Everything below is staged in locals and committed to *this only once
  // the message has authenticated, so a failure leaves the state unchanged
  // without copying it (the skipped keys in particular).
  Key32 rk = rk_;
  Key32 ckr = ckr_;
  Key32 cks{};
  Key32 mk{};
  Key32 dh_out{};
  WipeOnExit<5> wipe_keys({&rk, &ckr, &cks, &mk, &dh_out});
  KeyPair dhs;  // the new sending pair of a DH step; wiped on destruction
  std::uint32_t nr = nr_;
  std::vector<SkippedKey> skipped;  // new entries, oldest first; empty on the common path
  struct WipeSkipped {
    std::vector<SkippedKey>& v;
    ~WipeSkipped() {
      for (auto& s : v) sodium_memzero(s.mk.data(), s.mk.size());
    }
  } wipe_skipped{skipped};

  if (!same_chain) {
    // Skip what is left of the current receiving chain, then DHRatchet.
    if (pn > nr && pn - nr > kMaxSkip) return std::nullopt;
    if (has_ckr_) derive_skipped(ckr, dhr_, nr, pn, skipped);
    if (!x25519(dh_out, dhs_.secret, dh)) return std::nullopt;
    kdf_rk(rk, dh_out, rk, ckr);
    dhs = KeyPair::generate();
    if (!x25519(dh_out, dhs.secret, dh)) return std::nullopt;
    kdf_rk(rk, dh_out, rk, cks);
    nr = 0;
  }
  if (n > nr && n - nr > kMaxSkip) return std::nullopt;
  derive_skipped(ckr, dh, nr, n, skipped);
  Key32 next_ckr{};
  kdf_ck(ckr, mk, next_ckr);
  ckr = next_ckr;
  sodium_memzero(next_ckr.data(), next_ckr.size());
  auto plain = open(mk, header, ciphertext, ad_);
  if (!plain) return std::nullopt;

  // Commit.
  if (!same_chain) {
    pn_ = ns_;
    ns_ = 0;
    dhr_ = dh;
    has_dhr_ = true;
    dhs_ = dhs;
    cks_ = cks;
    has_cks_ = true;
  }
  rk_ = rk;
  ckr_ = ckr;
  has_ckr_ = true;
  nr_ = n + 1;
  for (const auto& s : skipped) skipped_.push_back(s);
  while (skipped_.size() > kMaxStoredSkipped) {
    sodium_memzero(skipped_.front().mk.data(), 32);
    skipped_.pop_front();
  }
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
