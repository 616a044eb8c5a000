// The in-memory loopback transport: connects a client to a server in the same
// process without sockets, for fast tests.
//
//   auto transport = std::make_shared<LoopbackTransport>(server->loopback_acceptor());
//   options.transport = transport;
//
// A LoopbackLink is one connection. The client side is LoopbackTransport; the
// server side is whoever the acceptor hands the link to. All LoopbackLink
// members are safe to call from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "parley/sys/transport.hpp"

namespace parley::transport {

class LoopbackLink {
 public:
  // ---- for the server ------------------------------------------------------
  // Called whenever the client sent something or closed; the server then calls
  // take_from_client() on its own thread. Set before the first poll.
  void set_server_wake(std::function<void()> wake);
  // Moves the frames the client sent since the last call into `frames`, in
  // order. Returns false once the client has closed the link (after its last
  // frames were taken).
  bool take_from_client(std::vector<std::string>* frames);
  // Delivers a frame to the client (ignored after either side closed).
  void send_to_client(std::string frame);
  // Closes the link from the server with a WebSocket-style code and reason.
  void close_from_server(int code, std::string reason);

  // ---- for LoopbackTransport ----------------------------------------------
  void send_to_server(std::string frame);
  void close_from_client();
  struct ClientInbox {
    std::vector<std::string> frames;
    bool closed = false;
    int close_code = 0;
    std::string close_reason;
  };
  ClientInbox take_for_client();
  // Waits until something is there for the client, or `wake_client` was called.
  void wait_for_client(std::chrono::milliseconds max_wait);
  void wake_client();

 private:
  std::mutex mu_;
  std::condition_variable client_cv_;
  std::function<void()> server_wake_;     // guarded by mu_
  std::vector<std::string> to_server_;    // guarded by mu_
  bool client_closed_ = false;            // guarded by mu_
  std::vector<std::string> to_client_;    // guarded by mu_
  bool server_closed_ = false;            // guarded by mu_
  int close_code_ = 0;                    // guarded by mu_
  std::string close_reason_;              // guarded by mu_
  bool client_woken_ = false;             // guarded by mu_
};

// Hands a new link to the server. Called on the client's thread during connect().
using LoopbackAcceptor = std::function<void(std::shared_ptr<LoopbackLink>)>;

// The client side of the loopback. One connection at a time; reconnecting
// makes a new link.
class LoopbackTransport : public sys::Transport {
 public:
  explicit LoopbackTransport(LoopbackAcceptor acceptor);
  ~LoopbackTransport() override;

  void connect(const std::string& url, const std::string& subprotocol,
               sys::TransportHandler* handler) override;
  void send(std::string frame) override;
  void close(int code, const std::string& reason) override;
  void poll(std::chrono::milliseconds max_wait) override;
  void wake() override;

  // Test hook: drops the link as a network failure would (on_closed "offline").
  void test_drop();

 private:
  LoopbackAcceptor acceptor_;
  std::mutex mu_;  // guards link_ against wake() from other threads
  std::shared_ptr<LoopbackLink> link_;
  sys::TransportHandler* handler_ = nullptr;
  bool open_pending_ = false;
  bool close_pending_ = false;
  Status close_reason_;
  std::atomic<bool> woken_{false};
  std::condition_variable idle_cv_;
  std::mutex idle_mu_;
};

}  // namespace parley::transport
