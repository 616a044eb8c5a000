#include "crypto/safety.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>

namespace parley::crypto {

namespace {

constexpr int kIterations = 5200;
constexpr std::uint16_t kVersion = 0;
constexpr std::size_t kKeySize = 64;

using Encoded = std::array<std::uint8_t, kKeySize>;

// The keys as sign_pub || dh_pub, sorted by those bytes, deduplicated, joined.
Bytes encode_key_set(const std::vector<IdentityPublic>& keys) {
  std::vector<Encoded> encoded;
  encoded.reserve(keys.size());
  for (const auto& k : keys) {
    Encoded e;
    std::copy(k.sign_pub.begin(), k.sign_pub.end(), e.begin());
    std::copy(k.dh_pub.begin(), k.dh_pub.end(), e.begin() + 32);
    encoded.push_back(e);
  }
  std::sort(encoded.begin(), encoded.end());
  encoded.erase(std::unique(encoded.begin(), encoded.end()), encoded.end());
  Bytes out;
  out.reserve(encoded.size() * kKeySize);
  for (const auto& e : encoded) out.insert(out.end(), e.begin(), e.end());
  return out;
}

// One user's 30 digits.
std::string fingerprint_half(const std::string& user, const Bytes& keys) {
  std::array<std::uint8_t, crypto_hash_sha512_BYTES> hash{};
  const std::array<std::uint8_t, 2> version = {static_cast<std::uint8_t>(kVersion >> 8),
                                               static_cast<std::uint8_t>(kVersion & 0xFF)};
  crypto_hash_sha512_state st;
  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, version.data(), version.size());
  crypto_hash_sha512_update(&st, keys.data(), keys.size());
  crypto_hash_sha512_update(&st, reinterpret_cast<const unsigned char*>(user.data()), user.size());
  crypto_hash_sha512_final(&st, hash.data());
  for (int i = 0; i < kIterations; ++i) {
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, hash.data(), hash.size());
    crypto_hash_sha512_update(&st, keys.data(), keys.size());
    crypto_hash_sha512_final(&st, hash.data());
  }
  std::string digits;
  digits.reserve(30);
  for (std::size_t chunk = 0; chunk < 6; ++chunk) {
    std::uint64_t v = 0;
    for (std::size_t j = 0; j < 5; ++j) v = (v << 8) | hash[chunk * 5 + j];
    char buf[8];
    std::snprintf(buf, sizeof buf, "%05u", static_cast<unsigned>(v % 100000));
    digits += buf;
  }
  return digits;
}

}  // namespace

std::string safety_number(const std::string& user_a, const std::vector<IdentityPublic>& keys_a,
                          const std::string& user_b, const std::vector<IdentityPublic>& keys_b) {
  (void)sodium_ready();
  std::string a = fingerprint_half(user_a, encode_key_set(keys_a));
  std::string b = fingerprint_half(user_b, encode_key_set(keys_b));
  if (b < a) std::swap(a, b);
  const std::string joined = a + b;
  std::string out;
  out.reserve(60 + 11);
  for (std::size_t i = 0; i < joined.size(); i += 5) {
    if (i > 0) out += ' ';
    out.append(joined, i, 5);
  }
  return out;
}

std::string identity_set_digest(const std::vector<IdentityPublic>& keys) {
  (void)sodium_ready();
  const Bytes encoded = encode_key_set(keys);
  std::array<std::uint8_t, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), encoded.data(), encoded.size());
  std::string hex(digest.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
  hex.pop_back();  // the terminating NUL
  return hex;
}

}  // namespace parley::crypto
