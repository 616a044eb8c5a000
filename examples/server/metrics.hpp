// Counters, gauges and a histogram of the reference server, rendered for
// /metrics in the Prometheus text format (docs/server.md, "Metrics").
//
// Use from one thread at a time (the server's loop thread).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace parley::server {

// A Prometheus histogram with fixed buckets, in seconds.
class Histogram {
 public:
  // Upper bounds of the buckets, ascending; +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);

  void observe(double seconds);
  std::uint64_t count() const { return count_; }
  // Appends the _bucket, _sum and _count samples of `name` (no HELP or TYPE).
  void render(std::string* out, const char* name) const;

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> buckets_;  // not cumulative
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

// Request latencies: 100 µs to 1 s.
class LatencyHistogram : public Histogram {
 public:
  static constexpr std::array<double, 13> kBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
  LatencyHistogram() : Histogram({kBounds.begin(), kBounds.end()}) {}
};

// Presence sessions: 1 s to a day.
class SessionHistogram : public Histogram {
 public:
  static constexpr std::array<double, 9> kBounds = {1, 10, 60, 300, 900, 3600, 14400, 43200, 86400};
  SessionHistogram() : Histogram({kBounds.begin(), kBounds.end()}) {}
};

struct Metrics {
  Metrics();

  std::int64_t connections = 0;             // open sessions, WebSocket and loopback
  std::uint64_t connections_total = 0;      // sessions ever opened
  std::uint64_t frames_received_total = 0;  // complete frames from clients
  std::uint64_t frames_sent_total = 0;      // frames written to clients
  std::uint64_t bytes_received_total = 0;   // WebSocket payload bytes (loopback: frame bytes)
  std::uint64_t bytes_sent_total = 0;
  std::uint64_t events_delivered_total = 0;    // live channel events queued to sessions
  std::uint64_t messages_received_total = 0;   // sends stored (not resends)
  std::uint64_t messages_delivered_total = 0;  // message events queued to sessions
  std::uint64_t typing_received_total = 0;     // typing signals accepted from members
  std::uint64_t typing_dropped_total = 0;      // of those, dropped by the throttle
  std::uint64_t typing_relayed_total = 0;      // typing events queued to sessions
  std::uint64_t slow_consumers_total = 0;      // sessions closed for a full queue
  std::uint64_t http_requests_total = 0;
  std::int64_t channels = 0;
  std::map<std::string, std::int64_t> channels_by_kind;           // gauge, by channel kind
  std::int64_t members = 0;                                       // gauge: memberships
  std::map<std::string, std::uint64_t> messages_by_kind_total;    // sends stored, by channel kind
  std::map<std::string, std::uint64_t> moderation_actions_total;  // by action
  std::uint64_t reports_total = 0;
  std::map<std::string, std::uint64_t> notifications_total;             // by "kind/level"
  std::map<std::string, std::uint64_t> notifications_suppressed_total;  // by level
  std::map<std::string, std::uint64_t> notify_changes_total;            // by new level
  std::map<std::string, std::uint64_t> events_stored_total;       // by kind
  std::map<std::string, std::uint64_t> errors_total;              // by error code
  std::map<std::string, std::uint64_t> auth_failures_total;       // by reason
  std::map<std::string, std::uint64_t> receipts_received_total;   // accepted, by kind
  std::map<std::string, std::uint64_t> receipts_broadcast_total;  // events queued, by kind
  LatencyHistogram send_ack_seconds;                              // send decoded to ack queued
  // Presence (docs/presence.md).
  std::int64_t presence_online_users = 0;             // users with a connection
  std::uint64_t presence_sessions_started_total = 0;  // a user's first connection
  std::uint64_t presence_sessions_ended_total = 0;    // grace over after their last
  SessionHistogram presence_session_seconds;          // length of ended sessions
  std::uint64_t presence_changes_total = 0;           // published changes of a user's presence
  std::uint64_t presence_events_total = 0;            // presence events queued to sessions
  std::uint64_t online_count_events_total = 0;        // online_count events queued
  // End-to-end encryption (docs/server.md).
  std::uint64_t e2e_messages_total = 0;        // e2e sends stored
  std::uint64_t e2e_bundles_total = 0;         // bundle requests answered
  std::uint64_t e2e_one_time_taken_total = 0;  // one-time prekeys handed out
  std::uint64_t e2e_last_resort_total = 0;     // last-resort prekeys handed out instead
  std::uint64_t e2e_keys_published_total = 0;  // keys requests accepted
  // Several devices, blocks, recovery, franked reports (issue 10).
  std::uint64_t e2e_retries_total = 0;        // retry notices queued
  std::uint64_t e2e_resends_total = 0;        // resend notices queued
  std::uint64_t e2e_notices_acked_total = 0;  // e2e_ack requests that deleted a notice
  std::uint64_t stale_devices_total = 0;      // sends refused with stale_devices
  std::uint64_t devices_removed_total = 0;    // remove_device requests carried out
  std::map<std::string, std::uint64_t> blocks_total;  // block list changes, by "block"/"unblock"
  std::uint64_t reports_verified_total = 0;   // franked reports that verified
  // Collaborative documents (docs/collab.md, "On the server").
  std::int64_t docs = 0;                       // documents in the store
  std::uint64_t docs_created_total = 0;
  std::int64_t docs_loaded = 0;                // replicas in memory
  std::int64_t doc_memory_bytes = 0;           // their CRDT state (Document::stats)
  std::int64_t doc_chars = 0;                  // their visible characters
  std::int64_t doc_editors = 0;                // (connection, document) pairs open
  std::uint64_t doc_opens_total = 0;
  std::uint64_t doc_updates_total = 0;         // updates applied and stored
  std::uint64_t doc_update_bytes_total = 0;    // their size (decoded)
  std::uint64_t doc_updates_relayed_total = 0; // doc_update events queued to sessions
  std::uint64_t doc_snapshots_total = 0;       // compactions written
  std::uint64_t docs_unloaded_total = 0;       // replicas dropped after idling
  std::uint64_t doc_awareness_total = 0;       // cursor updates relayed (per update)
  std::uint64_t doc_awareness_dropped_total = 0;  // over the per-connection rate
  LatencyHistogram doc_update_ack_seconds;     // update decoded to ack queued
  std::chrono::steady_clock::time_point started;

  // The Prometheus text exposition (version 0.0.4).
  std::string render() const;
};

}  // namespace parley::server
