// The app-supplied transport of the C ABI (parley.h, "App-supplied transport"):
// a sys::Transport whose I/O is done by the app's callbacks. What the app
// reports back (frames, open, closed) is queued under a mutex from any thread;
// poll(), on the client's thread, waits on a condition variable for it and
// hands it to the client's handler.
#include <condition_variable>
#include <deque>
#include <mutex>

#include "c_internal.hpp"

struct parley_transport {
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
  // Between connect() and the report of its end: what the app reports
  // outside a connection (late frames of a closed one) is dropped.
  bool active = false;
  bool opened = false;
};

namespace parley::capi {
namespace {

class AppTransport final : public sys::Transport {
 public:
  explicit AppTransport(const parley_transport_callbacks& callbacks)
      : callbacks_(callbacks), shared_(std::make_shared<parley_transport>()) {}

  void connect(const std::string& url, const std::string& subprotocol,
               sys::TransportHandler* handler) override {
    handler_ = handler;
    {
      std::lock_guard lock(shared_->mu);
      shared_->queue.clear();
      shared_->active = true;
      shared_->opened = false;
    }
    callbacks_.open(callbacks_.user_data, shared_.get(), url.c_str(), subprotocol.c_str());
  }

  void send(std::string frame) override {
    callbacks_.send(callbacks_.user_data, frame.data(), frame.size());
  }

  void close(int code, const std::string& reason) override {
    bool was_active;
    {
      std::lock_guard lock(shared_->mu);
      was_active = shared_->active;
      shared_->active = false;
      shared_->queue.clear();
      // The client asked: report the close at once, whatever the app says later.
      if (was_active) shared_->queue.push_back({parley_transport::Kind::closed, "", -1});
    }
    callbacks_.close(callbacks_.user_data, code, reason.c_str());
  }

  void poll(std::chrono::milliseconds max_wait) override {
    std::deque<parley_transport::Item> items;
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
        case parley_transport::Kind::frame:
          handler_->on_frame(item.data);
          break;
        case parley_transport::Kind::open:
          handler_->on_open();
          break;
        case parley_transport::Kind::closed:
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
  static Status closed_status(const parley_transport::Item& item) {
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
  std::shared_ptr<parley_transport> shared_;
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
    {
      std::lock_guard lock(t->mu);
      if (!t->active || !t->opened) return PARLEY_OK;  // not part of a connection: dropped
      t->queue.push_back({parley_transport::Kind::frame, std::string(frame, len), 0});
    }
    t->cv.notify_one();
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
    {
      std::lock_guard lock(t->mu);
      if (!t->active) return PARLEY_OK;  // no connection open: nothing to report
      if (state == PARLEY_TRANSPORT_OPEN) {
        if (t->opened) return PARLEY_OK;
        t->opened = true;
        t->queue.push_back({parley_transport::Kind::open, "", 0});
      } else {
        // Closed before it opened: the connect failed.
        int c = t->opened ? (code < 0 ? 0 : code) : -2;
        t->active = false;
        t->opened = false;
        t->queue.push_back(
            {parley_transport::Kind::closed, reason != nullptr ? reason : "", c});
      }
    }
    t->cv.notify_one();
    return PARLEY_OK;
  } catch (const std::bad_alloc&) {
    return set_error(PARLEY_E_NOMEM, "out of memory", "nomem");
  } catch (...) {
    return set_error(PARLEY_E_INTERNAL, "internal error", "internal");
  }
}

}  // extern "C"
