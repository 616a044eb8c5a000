// Signed access tokens: Ed25519 (libsodium) over base64url(claims JSON).
#include "protocol/token.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "parley/types.hpp"

namespace parley::token {
namespace {

constexpr std::string_view kPrefix = "pt1.";
constexpr std::string_view kKeyFilePrefix = "parley-ed25519-sk:";
// Far above any real token; bounds the work done on hostile input.
constexpr std::size_t kMaxTokenBytes = 4096;
constexpr std::size_t kMaxKeyFileBytes = 1024;
constexpr int kUrlSafe = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
constexpr int kStandard = sodium_base64_VARIANT_ORIGINAL;

void init_sodium() {
  // Idempotent and thread-safe; fails only if the system has no randomness.
  [[maybe_unused]] static const int rc = sodium_init();
  assert(rc >= 0);
}

std::string to_base64(const unsigned char* data, std::size_t size, int variant) {
  std::string out(sodium_base64_encoded_len(size, variant), '\0');
  sodium_bin2base64(out.data(), out.size(), data, size, variant);
  out.resize(std::strlen(out.c_str()));
  return out;
}

// Decodes all of `text`; false if any character is not part of the encoding.
bool from_base64(std::string_view text, int variant, std::vector<unsigned char>* out) {
  out->assign(text.size() / 4 * 3 + 3, 0);
  std::size_t size = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out->data(), out->size(), text.data(), text.size(), nullptr, &size, &end,
                        variant) != 0 ||
      end != text.data() + text.size()) {
    return false;
  }
  out->resize(size);
  return true;
}

Status invalid(std::string message) {
  return Status(StatusCode::unauthenticated, std::move(message), "invalid_token");
}

std::string claims_json(const std::string& user, std::int64_t iat, std::int64_t exp, bool admin) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("sub");
  writer.String(user.data(), static_cast<rapidjson::SizeType>(user.size()));
  writer.Key("iat");
  writer.Int64(iat);
  writer.Key("exp");
  writer.Int64(exp);
  if (admin) {
    writer.Key("adm");
    writer.Bool(true);
  }
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

struct Parts {
  std::string_view signed_part;  // "pt1." + base64url(claims)
  std::vector<unsigned char> claims;
  std::vector<unsigned char> signature;
};

// Splits and decodes a token without judging its content.
Result<Parts> split(const std::string& token) {
  if (token.size() > kMaxTokenBytes) {
    return invalid(
        fmt::format("token of {} bytes is longer than {}", token.size(), kMaxTokenBytes));
  }
  if (token.compare(0, kPrefix.size(), kPrefix) != 0) {
    return invalid("token does not start with \"pt1.\"");
  }
  std::string_view rest = std::string_view(token).substr(kPrefix.size());
  std::size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return invalid("token has no signature part");
  Parts parts;
  parts.signed_part = std::string_view(token).substr(0, kPrefix.size() + dot);
  if (dot == 0 || !from_base64(rest.substr(0, dot), kUrlSafe, &parts.claims)) {
    return invalid("token claims are not base64url");
  }
  if (!from_base64(rest.substr(dot + 1), kUrlSafe, &parts.signature)) {
    return invalid("token signature is not base64url");
  }
  if (parts.signature.size() != crypto_sign_BYTES) {
    return invalid(fmt::format("token signature has {} bytes, not {}", parts.signature.size(),
                               crypto_sign_BYTES));
  }
  return parts;
}

Result<Claims> parse_claims(const std::vector<unsigned char>& json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(reinterpret_cast<const char*>(json.data()),
                                                   json.size());
  if (doc.HasParseError()) return invalid("token claims are not valid json");
  if (!doc.IsObject()) return invalid("token claims are not a json object");
  auto sub = doc.FindMember("sub");
  auto iat = doc.FindMember("iat");
  auto exp = doc.FindMember("exp");
  if (sub == doc.MemberEnd() || !sub->value.IsString()) {
    return invalid("token claim \"sub\" is missing or not a string");
  }
  if (iat == doc.MemberEnd() || !iat->value.IsInt64()) {
    return invalid("token claim \"iat\" is missing or not an integer");
  }
  if (exp == doc.MemberEnd() || !exp->value.IsInt64()) {
    return invalid("token claim \"exp\" is missing or not an integer");
  }
  Claims claims;
  claims.user.assign(sub->value.GetString(), sub->value.GetStringLength());
  claims.issued_at = iat->value.GetInt64();
  claims.expires_at = exp->value.GetInt64();
  auto adm = doc.FindMember("adm");
  if (adm != doc.MemberEnd()) {
    if (!adm->value.IsBool()) return invalid("token claim \"adm\" is not a boolean");
    claims.admin = adm->value.GetBool();
  }
  if (std::string why = check_user_name(claims.user); !why.empty()) {
    return invalid(fmt::format("token user: {}", why));
  }
  return claims;
}

}  // namespace

SigningKey generate_key() {
  init_sodium();
  SigningKey key;
  crypto_sign_keypair(key.public_key, key.secret);
  return key;
}

Status write_key_file(const SigningKey& key, const std::string& path) {
  init_sodium();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    if (err == EEXIST) {
      return Status(StatusCode::already_exists,
                    fmt::format("key file \"{}\" exists; refusing to overwrite it", path));
    }
    return Status(StatusCode::io_error,
                  fmt::format("cannot create key file \"{}\": {}", path, std::strerror(err)));
  }
  std::string text(kKeyFilePrefix);
  text += to_base64(key.secret, sizeof key.secret, kStandard);
  text += '\n';
  Status status;
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      status = Status(StatusCode::io_error,
                      fmt::format("cannot write key file \"{}\": {}", path, std::strerror(errno)));
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (status.ok() && ::fsync(fd) != 0) {
    status = Status(StatusCode::io_error,
                    fmt::format("cannot sync key file \"{}\": {}", path, std::strerror(errno)));
  }
  ::close(fd);
  sodium_memzero(text.data(), text.size());
  if (!status.ok()) ::unlink(path.c_str());
  return status;
}

Result<SigningKey> read_key_file(const std::string& path) {
  init_sodium();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status(StatusCode::io_error,
                  fmt::format("cannot open key file \"{}\": {}", path, std::strerror(errno)));
  }
  std::string text(kMaxKeyFileBytes + 1, '\0');
  std::size_t size = 0;
  while (size < text.size()) {
    ssize_t n = ::read(fd, text.data() + size, text.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      sodium_memzero(text.data(), text.size());
      return Status(StatusCode::io_error,
                    fmt::format("cannot read key file \"{}\": {}", path, std::strerror(err)));
    }
    if (n == 0) break;
    size += static_cast<std::size_t>(n);
  }
  ::close(fd);

  SigningKey key;
  std::vector<unsigned char> secret;
  std::string_view view(text.data(), size);
  while (!view.empty() && (view.back() == '\n' || view.back() == '\r' || view.back() == ' ')) {
    view.remove_suffix(1);
  }
  bool ok = size <= kMaxKeyFileBytes && view.substr(0, kKeyFilePrefix.size()) == kKeyFilePrefix &&
            from_base64(view.substr(kKeyFilePrefix.size()), kStandard, &secret) &&
            secret.size() == sizeof key.secret;
  if (ok) {
    // The secret key is seed || public key: check that they belong together.
    unsigned char derived_secret[crypto_sign_SECRETKEYBYTES];
    crypto_sign_seed_keypair(key.public_key, derived_secret, secret.data());
    ok = sodium_memcmp(derived_secret, secret.data(), sizeof derived_secret) == 0;
    std::memcpy(key.secret, derived_secret, sizeof key.secret);
    sodium_memzero(derived_secret, sizeof derived_secret);
  }
  sodium_memzero(secret.data(), secret.size());
  sodium_memzero(text.data(), text.size());
  if (!ok) {
    sodium_memzero(key.secret, sizeof key.secret);
    return Status(StatusCode::corrupt,
                  fmt::format("key file \"{}\" does not hold a parley ed25519 key", path));
  }
  return key;
}

std::string mint(const SigningKey& key, const std::string& user, std::int64_t ttl_seconds,
                 std::int64_t now_seconds, bool admin) {
  init_sodium();
  std::string claims = claims_json(user, now_seconds, now_seconds + ttl_seconds, admin);
  std::string token(kPrefix);
  token +=
      to_base64(reinterpret_cast<const unsigned char*>(claims.data()), claims.size(), kUrlSafe);
  unsigned char signature[crypto_sign_BYTES];
  crypto_sign_detached(signature, nullptr, reinterpret_cast<const unsigned char*>(token.data()),
                       token.size(), key.secret);
  token += '.';
  token += to_base64(signature, sizeof signature, kUrlSafe);
  return token;
}

Result<Claims> verify(const unsigned char public_key[32], const std::string& token,
                      std::int64_t now_seconds) {
  init_sodium();
  auto parts = split(token);
  if (!parts) return parts.status();
  if (crypto_sign_verify_detached(parts->signature.data(),
                                  reinterpret_cast<const unsigned char*>(parts->signed_part.data()),
                                  parts->signed_part.size(), public_key) != 0) {
    return invalid("token signature does not match the server's key");
  }
  auto claims = parse_claims(parts->claims);
  if (!claims) return claims.status();
  if (now_seconds >= claims->expires_at) {
    return Status(
        StatusCode::token_expired,
        fmt::format("token of \"{}\" expired at unix time {}", claims->user, claims->expires_at),
        "token_expired");
  }
  return claims;
}

Result<Claims> peek(const std::string& token) {
  auto parts = split(token);
  if (!parts) return parts.status();
  return parse_claims(parts->claims);
}

}  // namespace parley::token
