// Message franking (docs/security.md, "Verifiable reports"): a commitment to
// a direct message's plaintext that the sender puts beside the ciphertext,
// and the server's tag binding that commitment to who sent it where and
// when. A recipient who reports the message discloses the plaintext and the
// franking key; the server recomputes both and so knows the report is true,
// while it cannot read messages nobody reports.
//
// The construction is the one Facebook published for Messenger Secret
// Conversations (technical whitepaper, 2016) and Grubbs, Lu and Ristenpart
// analysed ("Message Franking via Committing Authenticated Encryption",
// CRYPTO 2017): the commitment is HMAC-SHA-256 under a 32-byte franking key
// carried inside the encrypted plaintext; the tag is HMAC-SHA-256 under a key
// only the server holds. docs/security.md states the properties and limits.
//
// Internal to libparley; the reference server uses it to check reports.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/hkdf.hpp"

namespace parley::crypto {

// A fresh franking key (randombytes_buf).
Key32 new_franking_key();

// The commitment to a message: HMAC-SHA-256(key, "parley-frank-v1" 0x00 ||
// id (16 bytes) || len(sender) (1 byte) || sender || len(channel) (1 byte) ||
// channel || text). `id_hex` is the message id (32 lowercase hex digits);
// false when it is not one, or a name is longer than 255 bytes.
bool franking_commit(const Key32& key, std::string_view id_hex, std::string_view sender,
                     std::string_view channel, std::string_view text, Key32* out);

// What the server's tag binds, besides the commitment.
struct FrankingContext {
  std::string_view channel;
  std::string_view id;      // the message id (hex)
  std::string_view sender;  // user
  std::string_view device;  // the sender's device
  std::int64_t ts = 0;      // server time of the message (ms)
};

// The server's tag: HMAC-SHA-256(server_key, "parley-frank-tag-v1" 0x00 ||
// for each of channel, id, sender, device: len (2 bytes, big-endian) || bytes
// || ts (8 bytes, big-endian, two's complement) || commitment).
Key32 franking_tag(const Key32& server_key, const FrankingContext& context, const Key32& commit);

// Constant-time equality of two 32-byte values (sodium_memcmp).
bool equal32(const Key32& a, const Key32& b);

}  // namespace parley::crypto
