#include <doctest/doctest.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "protocol/token.hpp"

using namespace parley;
using namespace parley::token;

namespace {

constexpr std::int64_t kNow = 1764160000;

std::string b64url(const std::string& bytes) {
  std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

// A token over arbitrary claims bytes, correctly signed with `key`.
std::string sign_claims(const SigningKey& key, const std::string& claims) {
  std::string token = "pt1." + b64url(claims);
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(token.data()),
                       token.size(), key.secret);
  return token + "." + b64url(std::string(reinterpret_cast<char*>(sig), sizeof sig));
}

void check_invalid(const SigningKey& key, const std::string& token) {
  auto r = verify(key.public_key, token, kNow);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::unauthenticated);
  CHECK(r.status().reason() == "invalid_token");
  CHECK_FALSE(r.status().message().empty());
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "parley-token-XXXXXX").string();
    path = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE("token: mint and verify round trip") {
  SigningKey key = generate_key();
  std::string token = mint(key, "alice", 3600, kNow);
  CHECK(token.rfind("pt1.", 0) == 0);
  auto claims = verify(key.public_key, token, kNow);
  REQUIRE(claims.ok());
  CHECK(claims->user == "alice");
  CHECK(claims->issued_at == kNow);
  CHECK(claims->expires_at == kNow + 3600);

  auto peeked = peek(token);
  REQUIRE(peeked.ok());
  CHECK(peeked->user == "alice");
  CHECK(peeked->expires_at == kNow + 3600);
}

TEST_CASE("token: signed by another key is invalid") {
  SigningKey key = generate_key();
  SigningKey other = generate_key();
  check_invalid(key, mint(other, "alice", 3600, kNow));
  // peek cannot tell: it does not check signatures.
  CHECK(peek(mint(other, "alice", 3600, kNow)).ok());
}

TEST_CASE("token: tampered claims or signature are invalid") {
  SigningKey key = generate_key();
  std::string token = mint(key, "alice", 3600, kNow);
  std::size_t dot = token.find('.', 4);
  std::string forged_claims = b64url(R"({"sub":"mallory","iat":1764160000,"exp":1764163600})");
  check_invalid(key, "pt1." + forged_claims + token.substr(dot));

  std::string flipped = token;
  flipped[6] = flipped[6] == 'A' ? 'B' : 'A';
  check_invalid(key, flipped);

  std::string bad_sig = token;
  bad_sig.back() = bad_sig.back() == 'A' ? 'B' : 'A';
  check_invalid(key, bad_sig);

  // Extending the expiry needs a new signature.
  std::string longer = b64url(R"({"sub":"alice","iat":1764160000,"exp":9999999999})");
  check_invalid(key, "pt1." + longer + token.substr(dot));
}

TEST_CASE("token: malformed strings are invalid") {
  SigningKey key = generate_key();
  std::string good = mint(key, "alice", 3600, kNow);
  std::size_t dot = good.find('.', 4);
  for (const std::string& bad : std::vector<std::string>{
           "", "pt1.", "pt1..", "pt2." + good.substr(4), good.substr(4),
           good.substr(0, dot),                 // no signature
           good + ".extra",                     // a third part
           good + "=",                          // padding is not base64url-no-padding
           "pt1.!!!!." + good.substr(dot + 1),  // not base64
           good.substr(0, dot) + ".c2hvcnQ",    // signature too short
           std::string("pt1.\0\0.\0", 9),
           "pt1." + std::string(5000, 'A') + good.substr(dot),  // too long
       }) {
    CAPTURE(bad);
    check_invalid(key, bad);
    CHECK_FALSE(peek(bad).ok());
  }
}

TEST_CASE("token: bad claims are invalid even when signed") {
  SigningKey key = generate_key();
  for (const std::string& claims : std::vector<std::string>{
           "not json",
           "[]",
           R"("alice")",
           R"({"iat":1764160000,"exp":1764163600})",
           R"({"sub":7,"iat":1764160000,"exp":1764163600})",
           R"({"sub":"alice","exp":1764163600})",
           R"({"sub":"alice","iat":1764160000})",
           R"({"sub":"alice","iat":1764160000,"exp":"tomorrow"})",
           R"({"sub":"alice","iat":1764160000,"exp":1.5e9})",
           R"({"sub":"alice","iat":1764160000,"exp":NaN})",
           "{\"sub\":\"al\xff\xfeice\",\"iat\":1764160000,\"exp\":1764163600}",
           R"({"sub":"\ud800","iat":1764160000,"exp":1764163600})",
           R"({"sub":"alice","iat":1764160000,"exp":1764163600} trailing)",
       }) {
    CAPTURE(claims);
    check_invalid(key, sign_claims(key, claims));
  }
  // Well-formed claims signed this way do verify: the helper is sound.
  CHECK(verify(key.public_key,
               sign_claims(key, R"({"sub":"alice","iat":1764160000,"exp":1764163600})"), kNow)
            .ok());
}

TEST_CASE("token: expired") {
  SigningKey key = generate_key();
  std::string token = mint(key, "alice", 60, kNow);
  CHECK(verify(key.public_key, token, kNow + 59).ok());
  for (std::int64_t now : {kNow + 60, kNow + 61, kNow + 86400 * 365}) {
    auto r = verify(key.public_key, token, now);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::token_expired);
    CHECK(r.status().reason() == "token_expired");
    CHECK(r.status().message().find("alice") != std::string::npos);
  }
  // An expired forgery is invalid, not expired: the signature is checked first.
  SigningKey other = generate_key();
  check_invalid(key, mint(other, "alice", 60, kNow - 3600));
}

TEST_CASE("token: user names must pass the name rules") {
  SigningKey key = generate_key();
  for (const std::string& user : std::vector<std::string>{
           "", "bad name", ".dot", "-dash", std::string(65, 'a'), "caf\xc3\xa9", "quote\"d",
           std::string("nul\0byte", 8), "new\nline"}) {
    CAPTURE(user);
    check_invalid(key, mint(key, user, 3600, kNow));
  }
  for (const std::string& user : std::vector<std::string>{
           "a", "alice", "bob.smith", "carol@example.com", "dave_2", "e-f", std::string(64, 'z')}) {
    CAPTURE(user);
    auto r = verify(key.public_key, mint(key, user, 3600, kNow), kNow);
    REQUIRE(r.ok());
    CHECK(r->user == user);
  }
}

TEST_CASE("token: key file round trip, mode 0600, never overwritten") {
  TempDir dir;
  std::string path = (dir.path / "server.key").string();
  SigningKey key = generate_key();
  REQUIRE(write_key_file(key, path).ok());

  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  auto read = read_key_file(path);
  REQUIRE(read.ok());
  CHECK(std::memcmp(read->secret, key.secret, sizeof key.secret) == 0);
  CHECK(std::memcmp(read->public_key, key.public_key, sizeof key.public_key) == 0);
  // A token minted with the key read back verifies with the original.
  CHECK(verify(key.public_key, mint(*read, "alice", 60, kNow), kNow).ok());

  SigningKey other = generate_key();
  Status again = write_key_file(other, path);
  CHECK(again.code() == StatusCode::already_exists);
  CHECK(again.message().find(path) != std::string::npos);
  auto still = read_key_file(path);
  REQUIRE(still.ok());
  CHECK(std::memcmp(still->secret, key.secret, sizeof key.secret) == 0);
}

TEST_CASE("token: unreadable and corrupt key files are refused") {
  TempDir dir;
  auto missing = read_key_file((dir.path / "missing.key").string());
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == StatusCode::io_error);

  auto write = [&](const std::string& name, const std::string& text) {
    std::string path = (dir.path / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  };
  SigningKey key = generate_key();
  std::string good_path = (dir.path / "good.key").string();
  REQUIRE(write_key_file(key, good_path).ok());
  std::string good;
  std::getline(std::ifstream(good_path), good);

  for (const std::string& text : std::vector<std::string>{
           "", "garbage\n", good.substr(0, good.size() - 4) + "\n",  // truncated
           "parley-x25519-sk:" + good.substr(good.find(':') + 1),    // wrong prefix
           std::string(4096, 'A'),                                   // too large
       }) {
    auto r = read_key_file(write("bad.key", text));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::corrupt);
    std::filesystem::remove(dir.path / "bad.key");
  }

  // A secret whose embedded public half does not match its seed.
  std::vector<unsigned char> secret(key.secret, key.secret + 64);
  secret[40] ^= 1;
  std::string b64(sodium_base64_encoded_len(64, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(b64.data(), b64.size(), secret.data(), secret.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  b64.resize(std::strlen(b64.c_str()));
  auto mismatched = read_key_file(write("mismatch.key", "parley-ed25519-sk:" + b64 + "\n"));
  REQUIRE_FALSE(mismatched.ok());
  CHECK(mismatched.status().code() == StatusCode::corrupt);
}
