#include "inbox.hpp"

#include <unistd.h>

#include <cerrno>
#include <thread>
#include <utility>

namespace parley_cli {

void Inbox::push_event(parley::Event event) {
  {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(event));
    if (notify_) notify_();
  }
  cv_.notify_one();
}

void Inbox::push_line(std::string line) {
  {
    std::lock_guard lock(mu_);
    lines_.push_back(std::move(line));
    if (notify_) notify_();
  }
  cv_.notify_one();
}

void Inbox::push_end_of_input() {
  {
    std::lock_guard lock(mu_);
    end_of_input_ = true;
    if (notify_) notify_();
  }
  cv_.notify_one();
}

void Inbox::set_notify(std::function<void()> notify) {
  std::lock_guard lock(mu_);
  notify_ = std::move(notify);
}

bool Inbox::has_event() {
  std::lock_guard lock(mu_);
  return !events_.empty();
}

bool Inbox::has_input() {
  std::lock_guard lock(mu_);
  return !lines_.empty() || end_of_input_;
}

void Inbox::wait(Clock::time_point deadline, bool want_input) {
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, deadline, [&] {
    return !events_.empty() || (want_input && (!lines_.empty() || end_of_input_));
  });
}

std::optional<parley::Event> Inbox::take_event() {
  std::lock_guard lock(mu_);
  if (events_.empty()) return std::nullopt;
  parley::Event event = std::move(events_.front());
  events_.pop_front();
  return event;
}

std::optional<std::string> Inbox::take_line() {
  std::lock_guard lock(mu_);
  if (lines_.empty()) return std::nullopt;
  std::string line = std::move(lines_.front());
  lines_.pop_front();
  return line;
}

bool Inbox::input_ended() {
  std::lock_guard lock(mu_);
  return lines_.empty() && end_of_input_;
}

void start_stdin_reader(std::shared_ptr<Inbox> inbox) {
  std::thread([inbox = std::move(inbox)] {
    std::string pending;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      pending.append(buf, static_cast<std::size_t>(n));
      std::size_t start = 0;
      for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
        inbox->push_line(pending.substr(start, nl - start));
      }
      pending.erase(0, start);
    }
    if (!pending.empty()) inbox->push_line(std::move(pending));
    inbox->push_end_of_input();
  }).detach();
}

}  // namespace parley_cli
