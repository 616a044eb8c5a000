// Where interactive output goes. On a terminal (terminal.hpp) new lines are
// drawn above a status line and the line editor's prompt, so what the user is
// typing is never garbled; elsewhere (stdin or stdout not a terminal) lines
// simply go to stdout.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace parley_cli {

// Use from one thread at a time.
class Screen {
 public:
  virtual ~Screen() = default;

  // Prints `text` (lines separated by '\n', no trailing newline; may hold
  // ANSI SGR sequences) above the prompt. Returns a handle for replace().
  virtual std::uint64_t print(const std::string& text) = 0;
  // Rewrites what print() wrote under `handle` with `text`, if nothing was
  // printed after it and the terminal kept its width; false otherwise.
  virtual bool replace(std::uint64_t handle, const std::string& text) = 0;
  // The one dim line kept between the output and the prompt ("" for none).
  virtual void set_status(const std::string& text) = 0;
  // The prompt; SGR sequences in it are fine (they take no columns).
  virtual void set_prompt(const std::string& text) = 0;
  // True when there is a prompt and a status line (a terminal).
  virtual bool live() const = 0;
};

// Lines on stdout, flushed one by one; no prompt, no status, no rewrites.
std::unique_ptr<Screen> make_plain_screen();

// How many terminal columns `s` takes: UTF-8 decoded with the C library's
// locale, ANSI escape sequences and libedit's prompt markers (\1) skipped.
std::size_t display_width(std::string_view s);

// `s` made safe to show on a terminal: invalid UTF-8 and control characters
// (C0 but '\n', DEL, C1) become U+FFFD, tabs become spaces. Text from the
// network could otherwise move the cursor or retitle the window.
std::string printable(const std::string& s);

}  // namespace parley_cli
