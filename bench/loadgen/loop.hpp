// The event loop of parley-bench: one libwebsockets context that drives many
// client WebSocket connections from one thread, the way a NATS or MQTT bench
// client does. It knows nothing of the protocol spoken inside the WebSocket:
// a Dialect (dialect.hpp) turns requests into frames and frames into calls on
// the scenario's Sink.
//
// Use from one thread at a time. The Loop owns its connections; a Conn lives
// as long as its Loop, also after its socket closed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct lws;
struct lws_context;

namespace parley::loadgen {

class Dialect;
class Loop;

enum class ConnState { connecting, open, ready, closed, failed };

// One client connection and the counters the scenarios keep for it.
struct Conn {
  std::size_t index = 0;  // position in Loop::conns()
  std::string user;       // Parley user name, MQTT client id, NATS client name
  ConnState state = ConnState::connecting;
  lws* wsi = nullptr;           // null once the socket is gone
  std::deque<std::string> out;  // frames to write, each starting with LWS_PRE spare bytes
  std::string in;               // bytes received and not yet parsed
  std::uint64_t next_id = 1;    // request ids (Parley rid, MQTT packet id, NATS sid)

  // Scenario counters.
  std::uint64_t received = 0;      // payloads delivered to this connection
  std::uint64_t next_index = 0;    // the payload index expected next (in-order check)
  std::uint64_t out_of_order = 0;  // payloads that were not the one expected
  bool subscribed = false;
};

// What a scenario hears from the loop and the dialect. Every call comes from
// inside Loop::run.
class Sink {
 public:
  virtual ~Sink() = default;
  // The server accepted the connection (Parley welcome, MQTT CONNACK, NATS PONG).
  virtual void on_ready(Conn&) {}
  // The server confirmed a subscription (Parley join/create ok, SUBACK, PONG after SUB).
  virtual void on_subscribed(Conn&) {}
  // A published payload arrived.
  virtual void on_payload(Conn&, std::string_view) {}
  // The server acknowledged a publish (Parley ack; MQTT and NATS QoS 0 have none).
  virtual void on_accepted(Conn&) {}
  // The server reported an error, or the connection failed or closed.
  virtual void on_error(Conn&, std::string_view) {}
  virtual void on_closed(Conn&) {}
  // Everything queued on the connection was written.
  virtual void on_drained(Conn&) {}
};

struct Target {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/";
};

// Parses ws://HOST:PORT/PATH. Returns false for anything else (wss is not spoken).
bool parse_ws_url(const std::string& url, Target& out);

class Loop {
 public:
  // `max_connections` sizes the descriptor table; `source_addresses` > 1 spreads
  // the connections over 127.0.0.1 .. 127.0.0.N so that more of them fit than one
  // source address has ephemeral ports.
  Loop(Dialect& dialect, Target target, std::size_t max_connections, int source_addresses,
       Sink& sink);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  bool ok() const { return context_ != nullptr; }
  Dialect& dialect() { return dialect_; }
  Sink& sink() { return sink_; }
  std::vector<std::unique_ptr<Conn>>& conns() { return conns_; }

  // Starts a new connection for `user`; progress is reported through the Sink.
  Conn& connect(std::string user);

  // A frame buffer with the spare bytes libwebsockets writes its header into.
  static std::string frame(std::size_t reserve);
  // Queues a frame made with frame() and asks for a writable callback.
  void send(Conn& c, std::string frame);

  // Services the connections until `done` returns true (checked after each
  // service pass and each tick) or `timeout_s` passed. `tick`, when set, runs
  // every `tick_us` microseconds. Returns whether `done` became true.
  bool run(const std::function<bool()>& done, double timeout_s,
           const std::function<void()>& tick = {}, long tick_us = 5000);

  // Closes every connection and services until they are gone (at most 10 s).
  void close_all();

  // For the libwebsockets callback (loop.cpp).
  int on_event(lws* wsi, int reason, void* in, std::size_t len);

 private:
  Dialect& dialect_;
  Target target_;
  Sink& sink_;
  std::vector<std::string> sources_;  // local addresses to bind, empty: any
  void arm_timer(long interval_us);   // 0 disarms

  lws_context* context_ = nullptr;
  int timer_fd_ = -1;         // a timerfd: the loop's tick
  lws* timer_wsi_ = nullptr;  // timer_fd_ as libwebsockets polls it
  std::function<void()> tick_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

// Raises this process's open-file limit to at least `needed` (the hard limit
// too, when the process may). Returns the soft limit in force afterwards.
long raise_fd_limit(long needed);

}  // namespace parley::loadgen
