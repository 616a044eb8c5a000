// A fault-injecting TCP proxy on 127.0.0.1, for the fault-injection test
// (docs/reliability.md, "How it is tested").
//
//   FaultPlan plan;                        // what to inject, and the seed
//   auto proxy = FaultProxy::start(server_port, plan);
//   if (!proxy) return fail(proxy.error);
//   connect clients to ws://127.0.0.1:<proxy->port()>/
//   ...
//   proxy->stop();
//   FaultCounts counts = proxy->counts();
//
// It listens on an ephemeral loopback port and forwards each connection to
// 127.0.0.1:upstream_port, connecting anew per client connection, so the
// server behind it may be killed and restarted on the same port. One thread
// runs a poll() loop over every socket. Under a fixed seed the faults each
// connection gets are drawn from its own std::mt19937_64 (seeded from the plan's
// seed and the connection's ordinal), so the schedule is reproducible; when
// they hit the byte stream still depends on the OS's timing.
//
// Faults: cut (close both sides at a random moment, sometimes with an RST via
// SO_LINGER 0), stall (stop forwarding for a while, both directions), delay
// (hold a chunk of bytes for a few ms; order is kept) and split (write in
// odd-sized pieces). Buffers are bounded: a direction stops reading when it
// holds max_buffered bytes.
//
// Members are safe to call from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace parley_fault {

struct FaultPlan {
  std::uint64_t seed = 1;
  // Every connection is cut after a lifetime drawn uniformly from this range
  // (ms); 0 for both: never cut.
  std::uint32_t cut_min_ms = 100;
  std::uint32_t cut_max_ms = 1000;
  // Share of cuts that send an RST (SO_LINGER 0) instead of a FIN.
  double reset_share = 0.5;
  // Chance that a connection gets one stall, at a moment within its lifetime,
  // lasting stall_min_ms..stall_max_ms; the cut waits for the stall's end.
  double stall_chance = 0.2;
  std::uint32_t stall_min_ms = 100;
  std::uint32_t stall_max_ms = 2500;
  // Chance that a chunk read is held back for 1..delay_max_ms before it may
  // be written.
  double delay_chance = 0.2;
  std::uint32_t delay_max_ms = 20;
  // Chance that a write is cut to an odd size of 1..split_max_bytes.
  double split_chance = 0.3;
  std::size_t split_max_bytes = 97;
  // Per direction of a connection.
  std::size_t max_buffered = 256 * 1024;
  std::size_t max_connections = 256;
};

// What the proxy did, by kind. Plain values.
struct FaultCounts {
  std::uint64_t connections = 0;  // accepted from clients
  std::uint64_t refused = 0;      // upstream not reachable (server down): client cut
  std::uint64_t cuts = 0;         // cut with FIN
  std::uint64_t resets = 0;       // cut with RST
  std::uint64_t stalls = 0;
  std::uint64_t delays = 0;  // chunks held back
  std::uint64_t splits = 0;  // writes cut short
  std::uint64_t bytes = 0;   // forwarded, both directions

  std::string to_string() const;
};

class FaultProxy {
 public:
  // Binds 127.0.0.1:0 and starts the proxy's thread. nullptr and `*error`
  // set on failure. The caller owns the returned proxy.
  static std::unique_ptr<FaultProxy> start(int upstream_port, const FaultPlan& plan,
                                           std::string* error);
  // Stops (as stop()).
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const { return port_; }
  // Faults on (the default) or off: with faults off, connections are
  // forwarded as they are and no new fault is scheduled (cuts, stalls and
  // delays already scheduled are dropped as well).
  void set_faults(bool on);
  // Stops forwarding on every open connection, both ways, for `duration`
  // (bytes are still read, up to max_buffered): a network that went silent.
  void stall_all(std::chrono::milliseconds duration);
  // Closes every connection and ends the thread. Idempotent.
  void stop();
  FaultCounts counts() const;

  class Loop;

 private:
  FaultProxy() = default;

  int port_ = 0;
  int wake_fd_ = -1;            // eventfd that ends the poll wait
  std::unique_ptr<Loop> loop_;  // lives until the destructor; its counters stay readable
  std::mutex stop_mu_;
  std::thread thread_;  // guarded by stop_mu_ once started
};

}  // namespace parley_fault
