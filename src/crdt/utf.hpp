// UTF-8 <-> code points for the CRDT engine, which stores text as code points
// (positions count code points; UTF-16 offsets are derived, docs/collab.md).
//
// Stateless functions: safe to call from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace parley::crdt {

// True for code points that take two UTF-16 units (a surrogate pair).
inline bool is_astral(char32_t c) { return c >= 0x10000; }

inline void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
  }
}

// Appends the code points of s to out. Returns false (out partly filled) if s
// is not well-formed UTF-8: overlong forms, surrogates and values above
// U+10FFFF are refused.
inline bool decode_utf8(std::string_view s, std::u32string& out) {
  size_t i = 0;
  while (i < s.size()) {
    auto b0 = static_cast<uint8_t>(s[i]);
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    size_t n = 0;
    char32_t c = 0;
    char32_t min = 0;
    if ((b0 & 0xe0) == 0xc0) {
      n = 1, c = b0 & 0x1f, min = 0x80;
    } else if ((b0 & 0xf0) == 0xe0) {
      n = 2, c = b0 & 0x0f, min = 0x800;
    } else if ((b0 & 0xf8) == 0xf0) {
      n = 3, c = b0 & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      auto b = static_cast<uint8_t>(s[i + k]);
      if ((b & 0xc0) != 0x80) return false;
      c = (c << 6) | (b & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
    out.push_back(c);
    i += n + 1;
  }
  return true;
}

}  // namespace parley::crdt
