// The reference server, in-process: the same server parley-server runs, for
// tests and for apps that embed one.
//
//   ServerOptions options;
//   options.data_dir = dir;
//   options.public_key = key.public_key;  // from token::read_key_file
//   auto server = Server::create(options);
//   if (!server) return server.status();
//   (*server)->start();                    // serves 127.0.0.1:(*server)->port()
//   ...
//   (*server)->stop();
//
// One single-threaded libwebsockets event loop serves WebSocket clients,
// plain HTTP (/healthz, /metrics) and in-memory loopback links alike.
// Members are safe to call from any thread unless noted.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "parley/status.hpp"
#include "transport/loopback.hpp"

namespace parley::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                                // 0: an ephemeral port, see Server::port()
  bool listen = true;                          // false: loopback links only, no socket
  std::string data_dir;                        // holds server.db; created if missing
  std::array<unsigned char, 32> public_key{};  // verifies the clients' tokens
  std::size_t max_frame = 65536;               // largest frame accepted and sent, in bytes
  bool full_sync = false;                      // SQLite synchronous=FULL instead of NORMAL
  std::size_t max_queued_bytes = 16u << 20;    // per session; beyond: close 1008 slow_consumer
  std::string filter_file;                     // word filter rules (docs/channels.md); "": none
  double rate_per_s = 0;                       // sends per second per user; 0: no limit
  double rate_burst = 0;                       // the bucket's size
  // Presence (docs/presence.md).
  std::chrono::milliseconds presence_grace{5000};  // before a disconnect shows as offline
  std::chrono::milliseconds away_after{300000};    // idle time before a user is away
  std::size_t presence_max_members = 100;          // smaller channels get per-member presence
  int dead_timeout_s = 60;                         // close a connection silent this long (2-3600)
  // Collaborative documents (docs/collab.md): a replica nobody has open is
  // unloaded (after a snapshot) this long after its last connection closed it.
  std::chrono::milliseconds doc_unload_after{30000};
};

class Server {
 public:
  // Opens the store and binds the port. The server does not serve until
  // run() or start().
  static Result<std::unique_ptr<Server>> create(ServerOptions options);
  // Stops (as stop()) and waits for the loop thread if start() ran it.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (0 when not listening).
  int port() const;

  // Runs the event loop on the calling thread until stop(); then closes every
  // session and the store. Call at most once, and not together with start().
  void run();
  // Runs the event loop on an internal thread.
  void start();
  // Shuts down gracefully: every session is closed with 1001 "shutting_down"
  // after its queued replies, new links are refused, the loop ends. Returns
  // once the loop has ended when start() ran it, else at once.
  void stop();

  // Hands LoopbackLinks to this server. The acceptor may outlive the server:
  // links offered afterwards are closed with 1001 "shutting_down".
  transport::LoopbackAcceptor loopback_acceptor();

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::server
