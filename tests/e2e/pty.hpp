// A child process on a pseudo-terminal, for testing parley-cli's interactive
// mode as a person would see it. What the child writes is kept raw and as
// text with the escape sequences, carriage returns, backspaces and bells
// taken out, which is what the tests match against. Every wait is bounded.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley_e2e {

// Use from one thread at a time. The destructor kills (SIGKILL) and reaps a
// child that is still running.
class PtyProcess {
 public:
  // Starts argv[0] (a path) on a new pseudo-terminal of `columns` x `rows`,
  // in the test's environment with `set` added or replaced and `unset`
  // removed. nullptr and `*error` if it cannot be started.
  static std::unique_ptr<PtyProcess> spawn(
      const std::vector<std::string>& argv,
      const std::vector<std::pair<std::string, std::string>>& set,
      const std::vector<std::string>& unset, int columns, int rows, std::string* error);
  ~PtyProcess();
  PtyProcess(const PtyProcess&) = delete;
  PtyProcess& operator=(const PtyProcess&) = delete;

  // Types `keys` (bytes as a terminal sends them: "\r" for Enter, "\x03"
  // for Ctrl-C, ...). False if the child has gone.
  bool type(std::string_view keys);

  // Waits until `text` shows in the output after the end of the last
  // match; true if it did within `timeout`.
  bool expect(const std::string& text, std::chrono::milliseconds timeout);

  // The exit status (128 + signal number for a killed child), reading
  // output meanwhile; nullopt if it is still running after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);

  // Everything so far, as written and as text.
  const std::string& raw() const { return raw_; }
  const std::string& text() const { return text_; }

 private:
  PtyProcess() = default;
  // Reads what is there, waiting at most `timeout`: how many bytes came
  // (0 if none in time), -1 at the end of output.
  long read_some(std::chrono::milliseconds timeout);
  void strip_new_output();

  pid_t pid_ = -1;
  int master_ = -1;
  bool eof_ = false;
  std::optional<int> status_;
  std::string raw_;
  std::size_t stripped_ = 0;  // raw_[0, stripped_) is in text_
  std::string text_;
  std::size_t matched_ = 0;  // expect() searches text_ from here
};

}  // namespace parley_e2e
