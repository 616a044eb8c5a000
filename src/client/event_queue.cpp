#include "client/event_queue.hpp"

namespace parley::client {

EventQueue::EventQueue(std::function<void(const Event&)> listener)
    : listener_(std::move(listener)) {
  if (listener_) thread_ = std::thread([this] { listener_main(); });
}

EventQueue::~EventQueue() {
  close();
  if (thread_.joinable()) thread_.join();
}

void EventQueue::push(Event event) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    events_.push_back(std::move(event));
  }
  cv_.notify_one();
}

std::optional<Event> EventQueue::pop(std::chrono::milliseconds timeout) {
  if (listener_) return std::nullopt;
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty() || closed_; })) {
    return std::nullopt;
  }
  if (events_.empty()) return std::nullopt;
  Event ev = std::move(events_.front());
  events_.pop_front();
  return ev;
}

void EventQueue::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

void EventQueue::listener_main() {
  for (;;) {
    Event ev;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !events_.empty() || closed_; });
      if (events_.empty()) return;
      ev = std::move(events_.front());
      events_.pop_front();
    }
    listener_(ev);  // no lock held
  }
}

}  // namespace parley::client
