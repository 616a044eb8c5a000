// Carries events from the client's thread to the app: a queue drained by
// next_event(), or a thread of its own that calls the app's listener.
//
// Safe to call from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "parley/events.hpp"

namespace parley::client {

class EventQueue {
 public:
  // With a listener, a thread owned by the queue calls it for every event in order.
  explicit EventQueue(std::function<void(const Event&)> listener);
  ~EventQueue();  // stops the listener thread; undelivered events are dropped

  void push(Event event);
  // nullopt after `timeout`, or at once when a listener is set.
  std::optional<Event> pop(std::chrono::milliseconds timeout);
  // Ends the listener thread once the events queued so far are delivered.
  void close();

 private:
  void listener_main();

  std::function<void(const Event&)> listener_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;  // guarded by mu_
  bool closed_ = false;       // guarded by mu_
  std::thread thread_;
};

}  // namespace parley::client
