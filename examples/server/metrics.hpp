// Counters and gauges of the reference server, rendered for /metrics in the
// Prometheus text format (docs/server.md, "Metrics").
//
// Use from one thread at a time (the server's loop thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace parley::server {

struct Metrics {
  Metrics();

  std::int64_t connections = 0;             // open sessions, WebSocket and loopback
  std::uint64_t connections_total = 0;      // sessions ever opened
  std::uint64_t frames_received_total = 0;  // complete frames from clients
  std::uint64_t frames_sent_total = 0;      // frames written to clients
  std::uint64_t bytes_received_total = 0;
  std::uint64_t bytes_sent_total = 0;
  std::uint64_t events_delivered_total = 0;  // live events queued to sessions
  std::uint64_t slow_consumers_total = 0;    // sessions closed for a full queue
  std::uint64_t http_requests_total = 0;
  std::int64_t channels = 0;
  std::map<std::string, std::uint64_t> events_stored_total;  // by kind
  std::map<std::string, std::uint64_t> errors_total;         // by error code
  std::map<std::string, std::uint64_t> auth_failures_total;  // by reason
  std::chrono::steady_clock::time_point started;

  // The Prometheus text exposition (version 0.0.4).
  std::string render() const;
};

}  // namespace parley::server
