#include "crypto/hkdf.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>

namespace parley::crypto {

namespace {

// libsodium declares its pointer arguments non-null even for zero lengths;
// an empty span's data() may be null.
const std::uint8_t* nonnull(ByteView v) {
  static const std::uint8_t empty = 0;
  return v.empty() ? &empty : v.data();
}

}  // namespace

bool sodium_ready() {
  static const int rc = sodium_init();  // idempotent and thread-safe
  return rc >= 0;
}

Key32 hmac_sha256(ByteView key, ByteView data) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, nonnull(key), key.size());
  crypto_auth_hmacsha256_update(&st, nonnull(data), data.size());
  Key32 out;
  crypto_auth_hmacsha256_final(&st, out.data());
  sodium_memzero(&st, sizeof st);
  return out;
}

Key32 hkdf_extract(ByteView salt, ByteView ikm) { return hmac_sha256(salt, ikm); }

Key32 hkdf_extract_zero_salt(ByteView ikm) {
  // HMAC keyed with the constant salt: its two key blocks are hashed once
  // per process, not once per call.
  static const crypto_auth_hmacsha256_state keyed = [] {
    crypto_auth_hmacsha256_state st;
    const Key32 zero{};
    crypto_auth_hmacsha256_init(&st, zero.data(), zero.size());
    return st;
  }();
  crypto_auth_hmacsha256_state st = keyed;
  crypto_auth_hmacsha256_update(&st, nonnull(ikm), ikm.size());
  Key32 out;
  crypto_auth_hmacsha256_final(&st, out.data());
  sodium_memzero(&st, sizeof st);
  return out;
}

bool hkdf_expand(const Key32& prk, ByteView info, std::span<std::uint8_t> out) {
  constexpr std::size_t hash_len = crypto_auth_hmacsha256_BYTES;
  if (out.size() > 255 * hash_len) return false;
  // Keyed with PRK once; each block starts from a copy of that state.
  crypto_auth_hmacsha256_state keyed;
  crypto_auth_hmacsha256_init(&keyed, prk.data(), prk.size());
  std::array<std::uint8_t, hash_len> t{};
  std::size_t t_len = 0;  // T(0) is empty
  std::size_t done = 0;
  for (std::uint8_t i = 1; done < out.size(); ++i) {
    // T(i) = HMAC-Hash(PRK, T(i-1) | info | i)
    crypto_auth_hmacsha256_state st = keyed;
    crypto_auth_hmacsha256_update(&st, t.data(), t_len);
    crypto_auth_hmacsha256_update(&st, nonnull(info), info.size());
    crypto_auth_hmacsha256_update(&st, &i, 1);
    crypto_auth_hmacsha256_final(&st, t.data());
    sodium_memzero(&st, sizeof st);
    t_len = hash_len;
    const std::size_t n = std::min(hash_len, out.size() - done);
    std::copy_n(t.begin(), n, out.begin() + static_cast<std::ptrdiff_t>(done));
    done += n;
  }
  sodium_memzero(&keyed, sizeof keyed);
  sodium_memzero(t.data(), t.size());
  return true;
}

bool hkdf(ByteView salt, ByteView ikm, ByteView info, std::span<std::uint8_t> out) {
  Key32 prk = hkdf_extract(salt, ikm);
  const bool ok = hkdf_expand(prk, info, out);
  sodium_memzero(prk.data(), prk.size());
  return ok;
}

}  // namespace parley::crypto
