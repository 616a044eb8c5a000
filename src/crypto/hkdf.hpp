// HKDF-SHA-256 (RFC 5869) and HMAC-SHA-256, on libsodium's
// crypto_auth_hmacsha256 (libsodium 1.0.18 has no HKDF API).
// Internal to libparley: the end-to-end encryption core (docs/security.md).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace parley::crypto {

using Key32 = std::array<std::uint8_t, 32>;
using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

// Calls sodium_init() once per process; false if libsodium cannot be used.
bool sodium_ready();

// HMAC-SHA-256 with a key of any length.
Key32 hmac_sha256(ByteView key, ByteView data);

// RFC 5869 section 2.2: PRK = HMAC-Hash(salt, IKM). An empty salt is
// HashLen zero bytes, which HMAC's key padding makes equivalent.
Key32 hkdf_extract(ByteView salt, ByteView ikm);

// hkdf_extract with salt = 32 zero bytes (HashLen zeros), faster: the HMAC
// key schedule of the constant salt is computed once per process.
Key32 hkdf_extract_zero_salt(ByteView ikm);

// RFC 5869 section 2.3: fills `out` (at most 255 * 32 bytes; false beyond).
bool hkdf_expand(const Key32& prk, ByteView info, std::span<std::uint8_t> out);

// Extract then expand.
bool hkdf(ByteView salt, ByteView ikm, ByteView info, std::span<std::uint8_t> out);

}  // namespace parley::crypto
