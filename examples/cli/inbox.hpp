// Where parley-cli's two inputs meet: the client's events (pushed by its
// listener thread) and the lines of stdin (pushed by a reader thread, or on
// a terminal by the line editor on the session's thread). The session's
// single thread takes both from here, so all printing and all session state
// stay on one thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "parley/events.hpp"

namespace parley_cli {

// Safe to call from any thread.
class Inbox {
 public:
  using Clock = std::chrono::steady_clock;

  void push_event(parley::Event event);
  void push_line(std::string line);
  // Stdin reached its end (or failed); no more lines follow.
  void push_end_of_input();

  // Waits until an event is queued, or a line (or the end of input) when
  // `want_input`, or until `deadline`.
  void wait(Clock::time_point deadline, bool want_input);
  // Called on the pushing thread after each push, so that a waiter other
  // than wait() can wake: the terminal's poll loop. It runs under the
  // inbox's lock, so it must not call the inbox.
  void set_notify(std::function<void()> notify);
  bool has_event();
  // A line or the end of input is waiting.
  bool has_input();

  std::optional<parley::Event> take_event();
  // The next line; nullopt when none is queued (see input_ended()).
  std::optional<std::string> take_line();
  // True once every line has been taken and stdin has ended.
  bool input_ended();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<parley::Event> events_;  // guarded by mu_
  std::deque<std::string> lines_;     // guarded by mu_
  bool end_of_input_ = false;         // guarded by mu_
  std::function<void()> notify_;      // guarded by mu_
};

// Starts a detached thread that reads stdin line by line into `inbox`. It
// reads with read(2), not stdio, so that the process can exit while the
// thread is blocked.
void start_stdin_reader(std::shared_ptr<Inbox> inbox);

}  // namespace parley_cli
