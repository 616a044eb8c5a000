// The interactive terminal: libedit's line editor (emacs keys, history kept in
// a file, Ctrl-R search, Tab completion) driven one keystroke at a time from
// a poll loop, so that the session can print incoming messages while the
// user types. Output is drawn above a status line and the prompt:
//
//   09:30 bob: are you there?
//   09:31 [random] carol: lunch?
//   bob is typing…                      <- status line (dim), when there is one
//   [general]> yes, just a sec_         <- prompt and the line being edited
//
// libedit's readline emulation is not used: its callback interface drops
// Ctrl-D, and after the first line it reads the next one blocking. The
// native API (el_gets with EL_UNBUFFERED) has neither problem.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "inbox.hpp"
#include "screen.hpp"

// libedit's handles (histedit.h), kept out of this header.
struct editline;
struct history;

namespace parley_cli {

// Use from one thread (the session's), except wake(). At most one at a time:
// it owns the process's terminal, stderr and the signals it handles
// (SIGINT, SIGTSTP, SIGCONT, SIGWINCH, SIGTERM, SIGHUP).
class Terminal final : public Screen {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts the editor on stdin and stdout, which must both be terminals,
  // with history loaded from (and saved to) `history_file`. While it lives,
  // stderr is captured and shown as lines above the prompt (dim when
  // `color`). nullptr and `*why` when it cannot start.
  static std::unique_ptr<Terminal> open(const std::string& history_file, bool color,
                                        std::string* why);
  // Saves the history, erases the prompt and gives the terminal, stderr and
  // the signals back as they were.
  ~Terminal() override;
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  // Makes wait() return soon. Safe from any thread.
  void wake();

  // Handles keystrokes, signals and captured stderr until `deadline`, until
  // `inbox` holds an event, or, when `want_input`, a line or the end of
  // input. Lines the user enters go to `inbox` as they are entered; so does
  // the end of input (Ctrl-D or Ctrl-C on an empty line, SIGTERM, SIGHUP,
  // a closed terminal).
  void wait(Clock::time_point deadline, Inbox& inbox, bool want_input);

  // True once for each Ctrl-C (or SIGTERM) that came after the end of input:
  // the user does not want to wait any longer.
  bool take_interrupt();

  // Called with the line being edited whenever it changes ("" once it is
  // cleared or entered).
  void set_on_edit(std::function<void(const std::string&)> on_edit) {
    on_edit_ = std::move(on_edit);
  }
  // Tab completes command names, and channel names from this after a
  // command that takes one.
  void set_channel_names(std::function<std::vector<std::string>()> names) {
    channel_names_ = std::move(names);
  }

  // Screen
  std::uint64_t print(const std::string& text) override;
  bool replace(std::uint64_t handle, const std::string& text) override;
  void set_status(const std::string& text) override;
  void set_prompt(const std::string& text) override;
  bool live() const override { return true; }

 private:
  Terminal() = default;

  // libedit callbacks; `el`'s client data is the Terminal.
  static const char* prompt_of(editline* el);
  static unsigned char complete_key(editline* el, int ch);
  static unsigned char interrupt_key(editline* el, int ch);

  void handle_signals(Inbox& inbox);
  // Ctrl-C: drops the line being edited, or ends the input when it is empty.
  void interrupt(Inbox& inbox);
  // Ctrl-C as a key rather than SIGINT, so that it takes effect in order
  // with the keys typed around it. libedit's raw mode keeps the terminal's
  // interrupt character, so this runs after each time it enters raw mode.
  void disable_interrupt_character();
  void read_key(Inbox& inbox);
  void read_stderr();
  void end_input(Inbox& inbox);
  // The text being edited, and the part of it before the cursor.
  std::string line_text(std::string* before_cursor = nullptr) const;
  int columns() const;
  // Erases the status line and the edit area, leaving the cursor at the
  // start of the row the status line (or the prompt) was on.
  void erase_footer();
  // Draws the status line and has libedit redraw the prompt and the line.
  void draw_footer();
  // Starts a new, empty line (libedit redraws the prompt), then inserts
  // `text` into it.
  void restart_line(const std::string& text);
  // Writes `text`'s lines at the cursor; returns how many rows they took.
  int write_lines(const std::string& text);
  void emit(const std::string& bytes);
  std::string dim(const std::string& s) const { return color_ ? "\033[2m" + s + "\033[0m" : s; }
  void save_history();
  unsigned char complete();

  editline* el_ = nullptr;
  history* hist_ = nullptr;
  std::string history_file_;
  bool color_ = false;
  std::string prompt_ = "> ";         // as given (may hold SGR sequences)
  std::string marked_prompt_ = "> ";  // with \1 around each escape, for libedit
  std::size_t prompt_width_ = 2;
  std::string status_;  // as drawn; "" for none
  int wake_read_ = -1;  // the self-pipe that wake() and signals write to
  int wake_write_ = -1;
  int stderr_read_ = -1;   // what the process writes to fd 2
  int saved_stderr_ = -1;  // fd 2 as it was
  std::string stderr_partial_;
  bool input_ended_ = false;
  int interrupts_ = 0;
  bool interrupt_key_pressed_ = false;  // set by interrupt_key() within el_gets()
  std::string last_text_;               // the line as on_edit_ last saw it
  // What the last print() wrote, for replace().
  std::uint64_t last_handle_ = 0;
  int last_rows_ = 0;
  int last_columns_ = 0;
  std::uint64_t next_handle_ = 1;
  std::function<void(const std::string&)> on_edit_;
  std::function<std::vector<std::string>()> channel_names_;
};

}  // namespace parley_cli
