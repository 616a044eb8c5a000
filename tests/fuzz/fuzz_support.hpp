// Shared by the fuzz targets and the seed generator (docs/fuzzing.md): the
// fixed signing key, splitting an input into script lines, and the checks that
// turn a broken property into a crash the fuzzer keeps.
#pragma once

#include <sodium.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/token.hpp"

// Every target defines this; libFuzzer or replay_main.cpp calls it.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

// A property the code must keep whatever the input. Failing it aborts, which
// libFuzzer reports as a crash and saves the input.
#define FUZZ_CHECK(cond, ...)                                                            \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                                 \
      std::fputc('\n', stderr);                                                          \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

namespace parley::fuzz {

// Tokens in the seeds are signed with this key, so they stay valid across runs.
// Issued at 2023-11-14, valid until 2100: far from any clock the fuzzer runs on.
inline constexpr std::int64_t kTokenIssuedAt = 1700000000;
inline constexpr std::int64_t kTokenTtl = 4102444800 - kTokenIssuedAt;

inline const token::SigningKey& fixed_key() {
  static const token::SigningKey key = [] {
    if (sodium_init() < 0) std::abort();
    token::SigningKey k;
    unsigned char seed[crypto_sign_SEEDBYTES];
    for (std::size_t i = 0; i < sizeof seed; ++i) seed[i] = static_cast<unsigned char>(0x42 + i);
    crypto_sign_seed_keypair(k.public_key, k.secret, seed);
    return k;
  }();
  return key;
}

inline std::string fixed_token(const std::string& user, bool admin = false) {
  return token::mint(fixed_key(), user, kTokenTtl, kTokenIssuedAt, admin);
}

// The lines of an input, without their '\n'. Scripted targets take one frame
// or one command per line: real frames never need a raw newline (JSON escapes
// it), so the seeds stay readable and editable.
inline std::vector<std::string_view> lines(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string_view> out;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (!rest.empty()) {
    std::size_t nl = rest.find('\n');
    out.push_back(rest.substr(0, nl));
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  return out;
}

// A directory of this process's own under TMPDIR (or /dev/shm, which is
// faster), emptied before each input by the targets that need files.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path base = std::filesystem::temp_directory_path();
    if (std::getenv("TMPDIR") == nullptr && std::filesystem::is_directory("/dev/shm")) {
      base = "/dev/shm";
    }
    auto d = base / ("parley-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return d;
  }();
  return dir;
}

}  // namespace parley::fuzz
