// The small validators every request and every server event goes through:
// wire::is_valid_utf8 (checked against a plain decoder written from RFC 3629),
// check_channel_name, check_user_name, MessageId::parse and format_timestamp.
#include <cstring>
#include <string>

#include "fuzz_support.hpp"
#include "parley/types.hpp"
#include "protocol/codec.hpp"

namespace {

using namespace parley;

// RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
bool reference_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated
    for (std::size_t k = 1; k <= n; ++k) {
      auto t = static_cast<unsigned char>(s[i + k]);
      if ((t & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (t & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

bool is_lower_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string lowered(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);

  bool valid = wire::is_valid_utf8(text);
  FUZZ_CHECK(valid == reference_utf8(text), "is_valid_utf8 says %d, RFC 3629 says %d", valid,
             !valid);

  // The server sends these messages to the peer in error frames: they must
  // be UTF-8 whenever the name was.
  std::string why = check_channel_name(text);
  if (valid) FUZZ_CHECK(wire::is_valid_utf8(why), "channel name error is not utf-8");
  if (why.empty()) {
    FUZZ_CHECK(valid && !text.empty() && text.size() <= 64, "accepted a bad channel name");
    FUZZ_CHECK(text.find(' ') == std::string::npos, "accepted a channel name with a space");
  }
  why = check_user_name(text);
  FUZZ_CHECK(wire::is_valid_utf8(why), "user name error is not utf-8");
  if (why.empty()) {
    FUZZ_CHECK(!text.empty() && text.size() <= 64 && text[0] != '.' && text[0] != '-',
               "accepted a bad user name");
  }

  MessageId id;
  if (MessageId::parse(text, &id)) {
    FUZZ_CHECK(id.hex() == lowered(text), "message id does not round-trip");
    FUZZ_CHECK(is_lower_hex(id.hex()), "message id hex is not lowercase hex");
  }

  // Server timestamps reach format_timestamp unchecked (parley-cli prints them).
  if (size >= sizeof(std::int64_t)) {
    std::int64_t ts;
    std::memcpy(&ts, data, sizeof ts);
    std::string shown = format_timestamp(ts);
    FUZZ_CHECK(!shown.empty() && wire::is_valid_utf8(shown), "bad timestamp text");
  }
  return 0;
}
