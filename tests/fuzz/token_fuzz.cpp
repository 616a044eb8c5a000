// Access tokens (src/protocol/token.hpp): the server verifies the token of
// every auth frame, the client peeks at the claims of the token it is given.
//
// The input is used twice: as a whole token, and as the claims JSON of a token
// this target signs with the fixed key, so that the claims parser is reached
// behind a valid signature too.
#include <string>

#include "fuzz_support.hpp"
#include "parley/types.hpp"
#include "protocol/codec.hpp"
#include "protocol/token.hpp"

namespace {

using namespace parley;

constexpr std::int64_t kNow = fuzz::kTokenIssuedAt + 60;

std::string base64url(const unsigned char* data, std::size_t size) {
  constexpr int kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_encoded_len(size, kVariant), '\0');
  sodium_bin2base64(out.data(), out.size(), data, size, kVariant);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

// A token over `claims`, signed with the fixed key, whatever the claims hold.
std::string signed_token(std::string_view claims) {
  std::string token =
      "pt1." + base64url(reinterpret_cast<const unsigned char*>(claims.data()), claims.size());
  unsigned char signature[crypto_sign_BYTES];
  crypto_sign_detached(signature, nullptr, reinterpret_cast<const unsigned char*>(token.data()),
                       token.size(), fuzz::fixed_key().secret);
  return token + "." + base64url(signature, sizeof signature);
}

void check(const std::string& token) {
  auto peeked = token::peek(token);
  auto verified = token::verify(fuzz::fixed_key().public_key, token, kNow);
  for (const Status* s : {&peeked.status(), &verified.status()}) {
    // The server sends the message to the peer in an error frame.
    FUZZ_CHECK(wire::is_valid_utf8(s->message()), "status message is not utf-8");
    if (!s->ok()) {
      FUZZ_CHECK(s->reason() == "invalid_token" || s->reason() == "token_expired",
                 "unexpected reason %s", s->reason().c_str());
    }
  }
  if (peeked) {
    FUZZ_CHECK(check_user_name(peeked->user).empty(), "peek accepted user name \"%s\"",
               peeked->user.c_str());
  }
  if (verified) {
    FUZZ_CHECK(peeked.ok(), "verify accepted what peek refused: %s",
               peeked.status().message().c_str());
    FUZZ_CHECK(peeked->user == verified->user && peeked->expires_at == verified->expires_at &&
                   peeked->issued_at == verified->issued_at,
               "peek and verify disagree on the claims");
    FUZZ_CHECK(verified->expires_at > kNow, "verify accepted an expired token");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  check(std::string(input));
  check(signed_token(input));
  return 0;
}
