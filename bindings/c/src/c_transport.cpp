// The app-supplied transport of the C ABI (parley.h, "App-supplied transport"):
// a sys::Transport whose I/O is done by the app's callbacks. What the app
// reports back (frames, open, closed) is queued under a mutex from any thread;
// poll(), on the client's thread, waits on a condition variable for it and
// hands it to the client's handler.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>

#include "c_internal.hpp"

namespace parley::capi {

// What the transport shares between the client's thread and the app's threads.
struct TransportShared {
  enum class Kind { frame, open, closed };
  struct Item {
    Kind kind;
    std::string data;  // the frame, or the close reason
    int code = 0;
  };

  std::mutex mu;
  std::condition_variable cv;
  std::deque<Item> queue;
  bool woken = false;
  // The generation of the current connection: each open() gets a new handle
  // carrying the next one, and reports on an older handle are dropped.
  std::uint64_t generation = 0;
  // Between connect() and the report of its end: what the app reports
  // outside a connection (late frames of a closed one) is dropped.
  bool active = false;
  bool opened = false;
};

}  // namespace parley::capi

// One connection's handle (the `transport` passed to open()). Handles live
// as long as the client, so a late report on an old one is safe (and dropped).
struct parley_transport {
  parley::capi::TransportShared* shared;
  std::uint64_t generation;
};

namespace parley::capi {
namespace {

// Marks this thread as running an app transport callback.
struct InTransportCallback {
  InTransportCallback() noexcept { ++t_transport_depth; }
  ~InTransportCallback() { --t_transport_depth; }
};

class AppTransport final : public sys::Transport {
 public:
  explicit AppTransport(const parley_transport_callbacks& callbacks)
      : callbacks_(callbacks), shared_(std::make_shared<TransportShared>()) {}

  void connect(const std::string& url, const std::string& subprotocol,
               sys::TransportHandler* handler) override {
    handler_ = handler;
    handles_.push_back(std::make_unique<parley_transport>());
    parley_transport* handle = handles_.back().get();
    {
      std::lock_guard lock(shared_->mu);
      // Reports of the previous connection still queued are not this one's.
      shared_->queue.clear();
      handle->shared = shared_.get();
      handle->generation = ++shared_->generation;
      shared_->active = true;
      shared_->opened = false;
    }
    InTransportCallback in_callback;
    callbacks_.open(handle, url.c_str(), subprotocol.c_str(), callbacks_.user_data);
  }

  void send(std::string frame) override {
    InTransportCallback in_callback;
    callbacks_.send(frame.data(), frame.size(), callbacks_.user_data);
  }

  void close(int code, const std::string& reason) override {
    {
      std::lock_guard lock(shared_->mu);
      // Frames not yet handed over are dropped. A closed report already
      // queued (the app's, just before this close) stays: it is the one
      // closed notification of this connection. Else, if the connection is
      // still active, the client asked: report the close at once, whatever
      // the app says later (its later reports are dropped, active is false).
      bool closed_queued = false;
      std::deque<TransportShared::Item> kept;
      for (auto& item : shared_->queue) {
        if (item.kind == TransportShared::Kind::closed) {
          closed_queued = true;
          kept.push_back(std::move(item));
        }
      }
      shared_->queue.swap(kept);
      if (shared_->active && !closed_queued) {
        shared_->queue.push_back({TransportShared::Kind::closed, "", -1});
      }
      shared_->active = false;
      shared_->opened = false;
    }
    shared_->cv.notify_one();
    InTransportCallback in_callback;
    callbacks_.close(code, reason.c_str(), callbacks_.user_data);
  }

  void poll(std::chrono::milliseconds max_wait) override {
    std::deque<TransportShared::Item> items;
    {
      std::unique_lock lock(shared_->mu);
      shared_->cv.wait_for(lock, max_wait,
                           [&] { return !shared_->queue.empty() || shared_->woken; });
      shared_->woken = false;
      items.swap(shared_->queue);
    }
    for (auto& item : items) {
      if (handler_ == nullptr) break;
      switch (item.kind) {
        case TransportShared::Kind::frame:
          handler_->on_frame(item.data);
          break;
        case TransportShared::Kind::open:
          handler_->on_open();
          break;
        case TransportShared::Kind::closed:
          handler_->on_closed(closed_status(item));
          break;
      }
    }
  }

  void wake() override {
    {
      std::lock_guard lock(shared_->mu);
      shared_->woken = true;
    }
    shared_->cv.notify_one();
  }

 private:
  // The same statuses as the built-in WebSocket transport reports.
  static Status closed_status(const TransportShared::Item& item) {
    if (item.code == -1) return Status(StatusCode::ok, "closed");
    if (item.code == -2) {
      return Status(StatusCode::offline,
                    "cannot connect" + (item.data.empty() ? "" : ": " + item.data),
                    "connect_failed");
    }
    if (item.code == 1000) return Status(StatusCode::ok, "closed by server", item.data);
    if (item.code != 0 && item.code != 1006) {
      std::string r = item.data.empty() ? "connection_lost" : item.data;
      return Status(StatusCode::offline,
                    "server closed the connection (" + std::to_string(item.code) + " " + r + ")",
                    r);
    }
    return Status(StatusCode::offline,
                  item.data.empty() ? std::string("connection lost") : item.data,
                  "connection_lost");
  }

  parley_transport_callbacks callbacks_;
  std::shared_ptr<TransportShared> shared_;
  // Every handle given to open(), kept until the client is freed (16 bytes
  // a connection) so that the app may still report on an old one.
  std::vector<std::unique_ptr<parley_transport>> handles_;
  sys::TransportHandler* handler_ = nullptr;
};

}  // namespace

std::shared_ptr<sys::Transport> make_app_transport(const parley_transport_callbacks& callbacks) {
  return std::make_shared<AppTransport>(callbacks);
}

}  // namespace parley::capi

extern "C" {

int parley_transport_deliver_frame(parley_transport* t, const char* frame, size_t len) {
  using namespace parley::capi;
  if (t == nullptr) return set_error(PARLEY_E_INVALID_ARGUMENT, "transport is NULL", "invalid_argument");
  if (frame == nullptr && len > 0) {
    return set_error(PARLEY_E_INVALID_ARGUMENT, "frame is NULL", "invalid_argument");
  }
  try {
    TransportShared& sh = *t->shared;
    {
      std::lock_guard lock(sh.mu);
      // Not part of the current connection: dropped.
      if (t->generation != sh.generation || !sh.active || !sh.opened) return PARLEY_OK;
      sh.queue.push_back({TransportShared::Kind::frame, std::string(frame, len), 0});
    }
    sh.cv.notify_one();
    return PARLEY_OK;
  } catch (const std::bad_alloc&) {
    return set_error(PARLEY_E_NOMEM, "out of memory", "nomem");
  } catch (...) {
    return set_error(PARLEY_E_INTERNAL, "internal error", "internal");
  }
}

int parley_transport_set_state(parley_transport* t, int state, int code, const char* reason) {
  using namespace parley::capi;
  if (t == nullptr) return set_error(PARLEY_E_INVALID_ARGUMENT, "transport is NULL", "invalid_argument");
  if (state != PARLEY_TRANSPORT_OPEN && state != PARLEY_TRANSPORT_CLOSED) {
    return set_error(PARLEY_E_INVALID_ARGUMENT, "state must be PARLEY_TRANSPORT_OPEN or _CLOSED",
                     "invalid_argument");
  }
  try {
    TransportShared& sh = *t->shared;
    {
      std::lock_guard lock(sh.mu);
      // An older connection's report, or no connection open: nothing to report.
      if (t->generation != sh.generation || !sh.active) return PARLEY_OK;
      if (state == PARLEY_TRANSPORT_OPEN) {
        if (sh.opened) return PARLEY_OK;
        sh.opened = true;
        sh.queue.push_back({TransportShared::Kind::open, "", 0});
      } else {
        // Closed before it opened: the connect failed.
        int c = sh.opened ? (code < 0 ? 0 : code) : -2;
        sh.active = false;
        sh.opened = false;
        sh.queue.push_back({TransportShared::Kind::closed, reason != nullptr ? reason : "", c});
      }
    }
    sh.cv.notify_one();
    return PARLEY_OK;
  } catch (const std::bad_alloc&) {
    return set_error(PARLEY_E_NOMEM, "out of memory", "nomem");
  } catch (...) {
    return set_error(PARLEY_E_INTERNAL, "internal error", "internal");
  }
}

}  // extern "C"
