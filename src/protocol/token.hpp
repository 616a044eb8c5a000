// Signed access tokens (docs/protocol.md, "Tokens").
//
// A token is  "pt1." base64url(claims JSON) "." base64url(Ed25519 signature)
// where the signature covers the bytes "pt1." + base64url(claims) and the
// claims are {"sub":USER,"iat":SECONDS,"exp":SECONDS}, plus "adm":true for a
// server administrator (docs/channels.md, "Administration"). The app's backend mints
// tokens with the server's signing key; the server verifies them with the
// matching public key. Clients only peek at the claims (for the user name).
#pragma once

#include <cstdint>
#include <string>

#include "parley/status.hpp"

namespace parley::token {

struct Claims {
  std::string user;
  std::int64_t issued_at = 0;   // Unix seconds
  std::int64_t expires_at = 0;  // Unix seconds
  bool admin = false;           // claim "adm": may use the admin requests
};

// An Ed25519 key pair. The key file holds "parley-ed25519-sk:" followed by the
// 64-byte libsodium secret key in base64, and a newline.
struct SigningKey {
  unsigned char secret[64];
  unsigned char public_key[32];
};

SigningKey generate_key();
// Writes the key to `path` with mode 0600; fails if the file exists.
Status write_key_file(const SigningKey& key, const std::string& path);
Result<SigningKey> read_key_file(const std::string& path);

std::string mint(const SigningKey& key, const std::string& user, std::int64_t ttl_seconds,
                 std::int64_t now_seconds, bool admin = false);

// Checks signature, structure and expiry. Errors: unauthenticated with reason
// "invalid_token" (malformed, bad signature, bad user name), token_expired
// with reason "token_expired".
Result<Claims> verify(const unsigned char public_key[32], const std::string& token,
                      std::int64_t now_seconds);

// Reads the claims without checking the signature or expiry (for clients,
// which cannot check it). Fails with invalid_token for a malformed token.
Result<Claims> peek(const std::string& token);

}  // namespace parley::token
