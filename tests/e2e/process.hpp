// A child process for end-to-end tests: started with posix_spawn (no shell),
// stdin and stdout on pipes, stderr shared with the test. Every wait takes a
// timeout, so a stuck child fails a test instead of hanging it.
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
class Process {
 public:
  // Starts argv[0] (a path) with `argv`, in the test's environment plus
  // `env` (NAME, value pairs that add or replace variables). nullptr and
  // `*error` set if it cannot be started.
  static std::unique_ptr<Process> spawn(const std::vector<std::string>& argv,
                                        const std::vector<std::pair<std::string, std::string>>& env,
                                        std::string* error);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }

  // Writes to the child's stdin; false if it has gone.
  bool write(std::string_view data);
  // Closes the child's stdin (end of input).
  void close_stdin();

  // The next line of stdout without its newline; nullopt when none came
  // within `timeout` or stdout reached its end (see at_eof()).
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  bool at_eof() const { return eof_ && buffer_.empty(); }

  bool signal(int sig);
  // The exit status (128 + signal number for a killed child), or nullopt if
  // the child is still running after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);

 private:
  Process() = default;

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;  // stdout read but not yet returned
  bool eof_ = false;
  std::optional<int> status_;  // set once reaped
};

}  // namespace parley_e2e
