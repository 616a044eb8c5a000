#include "screen.hpp"

#include <cstdio>
#include <cwchar>

#include "output.hpp"

namespace parley_cli {
namespace {

class PlainScreen final : public Screen {
 public:
  std::uint64_t print(const std::string& text) override {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    return 0;
  }
  bool replace(std::uint64_t /*handle*/, const std::string& /*text*/) override { return false; }
  void set_status(const std::string& /*text*/) override {}
  void set_prompt(const std::string& /*text*/) override {}
  bool live() const override { return false; }
};

// Length of the escape sequence at s[i] (s[i] == ESC): CSI (ESC [ ... final),
// or ESC and one character.
std::size_t escape_length(std::string_view s, std::size_t i) {
  if (i + 1 >= s.size()) return 1;
  if (s[i + 1] != '[') return 2;
  std::size_t j = i + 2;
  while (j < s.size() && !(s[j] >= 0x40 && s[j] <= 0x7e)) ++j;
  return j < s.size() ? j - i + 1 : s.size() - i;
}

}  // namespace

std::unique_ptr<Screen> make_plain_screen() { return std::make_unique<PlainScreen>(); }

std::size_t display_width(std::string_view s) {
  std::size_t width = 0;
  std::mbstate_t state{};
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] == '\033') {
      i += escape_length(s, i);
      continue;
    }
    if (s[i] == '\1') {
      ++i;
      continue;
    }
    wchar_t wc = 0;
    std::size_t n = std::mbrtowc(&wc, s.data() + i, s.size() - i, &state);
    if (n == static_cast<std::size_t>(-1) || n == static_cast<std::size_t>(-2)) {
      state = std::mbstate_t{};
      ++width;  // shown as one replacement character, if at all
      ++i;
      continue;
    }
    if (n == 0) n = 1;
    const int w = ::wcwidth(wc);
    if (w > 0) width += static_cast<std::size_t>(w);
    i += n;
  }
  return width;
}

std::string printable(const std::string& s) {
  const std::string valid = to_valid_utf8(s);
  std::string out;
  out.reserve(valid.size());
  for (std::size_t i = 0; i < valid.size(); ++i) {
    const auto c = static_cast<unsigned char>(valid[i]);
    if (c == '\t') {
      out += ' ';
    } else if ((c < 0x20 && c != '\n') || c == 0x7f) {
      out += "\xEF\xBF\xBD";
    } else if (c == 0xc2 && i + 1 < valid.size() &&
               static_cast<unsigned char>(valid[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(valid[i + 1]) <= 0x9f) {
      out += "\xEF\xBF\xBD";  // a C1 control (U+0080-U+009F)
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace parley_cli
