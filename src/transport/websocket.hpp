// The default transport: a libwebsockets WebSocket client (ws:// and wss://).
//
// Use from one thread at a time (the client's), except wake().
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <string>

#include "parley/sys/transport.hpp"

struct lws;
struct lws_context;

namespace parley::transport {

struct WebSocketOptions {
  std::size_t max_incoming_frame = 4u << 20;
  // Ping after this many idle seconds; hang up after this many without traffic.
  unsigned ping_after_seconds = 20;
  unsigned hangup_after_seconds = 45;
};

class WebSocketTransport : public sys::Transport {
 public:
  explicit WebSocketTransport(WebSocketOptions options = {});
  ~WebSocketTransport() override;

  void connect(const std::string& url, const std::string& subprotocol,
               sys::TransportHandler* handler) override;
  void send(std::string frame) override;
  void close(int code, const std::string& reason) override;
  void poll(std::chrono::milliseconds max_wait) override;
  void wake() override;

  struct Timer;  // an lws timer that ends poll()'s wait
  // Called by the libwebsockets protocol callback (websocket.cpp).
  int on_lws_event(struct lws* wsi, int reason, void* in, std::size_t len);

 private:
  bool ensure_context();
  void finish(const Status& reason);

  WebSocketOptions options_;
  lws_context* context_ = nullptr;
  std::atomic<lws_context*> wake_context_{nullptr};  // for wake() from other threads
  std::unique_ptr<Timer> timer_;
  std::string subprotocol_;
  sys::TransportHandler* handler_ = nullptr;
  lws* wsi_ = nullptr;
  bool open_ = false;
  std::deque<std::string> outgoing_;
  std::string incoming_;
  bool incoming_overflow_ = false;
  bool closing_ = false;
  int close_code_ = 1000;
  std::string close_reason_;
  int peer_close_code_ = 0;
  std::string peer_close_reason_;
  std::string host_;  // kept alive for the connect info
  std::string path_;
  // Heartbeat: ping after ping_after_seconds without hearing anything, drop
  // the connection after hangup_after_seconds. Returns how long poll() may wait.
  std::chrono::milliseconds heartbeat();
  std::chrono::steady_clock::time_point last_rx_;
  std::chrono::steady_clock::time_point connect_started_;
  bool ping_outstanding_ = false;
  bool ping_due_ = false;
  bool pending_failure_ = false;
  Status pending_failure_status_;
};

}  // namespace parley::transport
