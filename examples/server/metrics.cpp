#include "metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <type_traits>

namespace parley::server {
namespace {

void header(std::string* out, const char* name, const char* type, const char* help) {
  fmt::format_to(std::back_inserter(*out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

template <typename T>
void scalar(std::string* out, const char* name, const char* type, const char* help, T value) {
  header(out, name, type, help);
  fmt::format_to(std::back_inserter(*out), "{} {}\n", name, value);
}

// Label values are our own codes, but escape them as the format requires.
std::string escape_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

template <typename T>
void labelled(std::string* out, const char* name, const char* help, const char* label,
              const std::map<std::string, T>& values) {
  header(out, name, std::is_signed_v<T> ? "gauge" : "counter", help);
  for (const auto& [key, value] : values) {
    fmt::format_to(std::back_inserter(*out), "{}{{{}=\"{}\"}} {}\n", name, label, escape_label(key),
                   value);
  }
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(bounds_.size(), 0) {}

void Histogram::observe(double seconds) {
  seconds = std::max(seconds, 0.0);
  auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), seconds);  // le: bound >= value
  if (bucket != bounds_.end()) ++buckets_[static_cast<std::size_t>(bucket - bounds_.begin())];
  ++count_;
  sum_ += seconds;
}

void Histogram::render(std::string* out, const char* name) const {
  auto it = std::back_inserter(*out);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += buckets_[i];
    fmt::format_to(it, "{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  fmt::format_to(it, "{}_bucket{{le=\"+Inf\"}} {}\n", name, count_);
  fmt::format_to(it, "{}_sum {:.9f}\n", name, sum_);
  fmt::format_to(it, "{}_count {}\n", name, count_);
}

Metrics::Metrics() : started(std::chrono::steady_clock::now()) {
  // Known label values start at zero so that rates work from the first scrape.
  for (const char* kind : {"create", "join", "leave", "message"}) events_stored_total[kind] = 0;
  for (const char* reason : {"invalid_token", "token_expired", "not_authenticated"}) {
    auth_failures_total[reason] = 0;
  }
  for (const char* kind : {"delivered", "read"}) {
    receipts_received_total[kind] = 0;
    receipts_broadcast_total[kind] = 0;
  }
  for (const char* kind : {"public", "private", "direct", "broadcast"}) {
    channels_by_kind[kind] = 0;
    messages_by_kind_total[kind] = 0;
  }
  for (const char* action : {"invite", "remove", "ban", "unban", "mute", "unmute", "role",
                             "transfer", "meta", "delete", "pin", "unpin", "filtered",
                             "rate_limited", "ban_user", "unban_user", "delete_channel",
                             "system_message"}) {
    moderation_actions_total[action] = 0;
  }
  for (const char* key : {"message/all", "mention/all", "mention/mentions"}) {
    notifications_total[key] = 0;
  }
  for (const char* level : {"all", "mentions", "none"}) {
    notifications_suppressed_total[level] = 0;
    notify_changes_total[level] = 0;
  }
}

std::string Metrics::render() const {
  std::string out;
  double uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  scalar(&out, "parley_connections", "gauge", "Open client sessions (WebSocket and loopback).",
         connections);
  scalar(&out, "parley_connections_total", "counter", "Client sessions opened.", connections_total);
  scalar(&out, "parley_frames_received_total", "counter", "Complete frames received from clients.",
         frames_received_total);
  scalar(&out, "parley_frames_sent_total", "counter", "Frames sent to clients.", frames_sent_total);
  scalar(&out, "parley_bytes_received_total", "counter",
         "WebSocket payload bytes received from clients.", bytes_received_total);
  scalar(&out, "parley_bytes_sent_total", "counter", "WebSocket payload bytes sent to clients.",
         bytes_sent_total);
  scalar(&out, "parley_messages_received_total", "counter",
         "Messages accepted and stored (resends not counted).", messages_received_total);
  scalar(&out, "parley_messages_delivered_total", "counter",
         "Message events queued to client sessions.", messages_delivered_total);
  scalar(&out, "parley_events_delivered_total", "counter",
         "Live channel events of every kind queued to client sessions.", events_delivered_total);
  header(&out, "parley_send_ack_seconds", "histogram",
         "Seconds from a send being decoded to its ack being queued, store write included.");
  send_ack_seconds.render(&out, "parley_send_ack_seconds");
  scalar(&out, "parley_typing_received_total", "counter",
         "Typing signals accepted from channel members.", typing_received_total);
  scalar(&out, "parley_typing_dropped_total", "counter",
         "Typing signals dropped by the per-session throttle.", typing_dropped_total);
  scalar(&out, "parley_typing_relayed_total", "counter", "Typing events queued to client sessions.",
         typing_relayed_total);
  labelled(&out, "parley_receipts_received_total", "Receipts accepted, by kind.", "kind",
           receipts_received_total);
  labelled(&out, "parley_receipts_broadcast_total",
           "Receipt events queued to client sessions, by kind.", "kind", receipts_broadcast_total);
  scalar(&out, "parley_slow_consumers_total", "counter",
         "Sessions closed because their send queue was full.", slow_consumers_total);
  scalar(&out, "parley_http_requests_total", "counter", "Plain HTTP requests served.",
         http_requests_total);
  labelled(&out, "parley_events_stored_total", "Channel events stored, by kind.", "kind",
           events_stored_total);
  labelled(&out, "parley_errors_total", "Error replies sent to clients, by code.", "code",
           errors_total);
  labelled(&out, "parley_auth_failures_total", "Refused authentications, by reason.", "reason",
           auth_failures_total);
  scalar(&out, "parley_channels", "gauge", "Channels in the store.", channels);
  labelled(&out, "parley_channels_by_kind", "Channels, by kind.", "kind", channels_by_kind);
  scalar(&out, "parley_members", "gauge", "Channel memberships.", members);
  labelled(&out, "parley_messages_by_channel_kind_total",
           "Messages accepted and stored, by the kind of their channel.", "kind",
           messages_by_kind_total);
  labelled(&out, "parley_moderation_actions_total",
           "Moderation and administration actions carried out, and sends refused or masked by "
           "the word filter or the rate limit, by action.",
           "action", moderation_actions_total);
  scalar(&out, "parley_reports_total", "counter", "Messages reported by users.", reports_total);
  header(&out, "parley_notifications_total", "counter",
         "Notification events sent to users, by kind and the user's level for the channel.");
  for (const auto& [key, value] : notifications_total) {
    std::size_t slash = key.find('/');
    fmt::format_to(std::back_inserter(out), "parley_notifications_total{{kind=\"{}\",level=\"{}\"}} {}\n",
                   escape_label(key.substr(0, slash)),
                   escape_label(slash == std::string::npos ? "" : key.substr(slash + 1)), value);
  }
  labelled(&out, "parley_notifications_suppressed_total",
           "Messages that notified nobody because of the member's level or mute, by level.",
           "level", notifications_suppressed_total);
  labelled(&out, "parley_notify_changes_total", "Notification level changes, by new level.",
           "level", notify_changes_total);
  scalar(&out, "parley_presence_online_users", "gauge", "Users with at least one connection.",
         presence_online_users);
  scalar(&out, "parley_presence_sessions_started_total", "counter",
         "Presence sessions started: a user connected while offline.",
         presence_sessions_started_total);
  scalar(&out, "parley_presence_sessions_ended_total", "counter",
         "Presence sessions ended: the grace period after a user's last connection passed.",
         presence_sessions_ended_total);
  header(&out, "parley_presence_session_seconds", "histogram",
         "Length of ended presence sessions, from the first connection to the last close.");
  presence_session_seconds.render(&out, "parley_presence_session_seconds");
  scalar(&out, "parley_presence_changes_total", "counter",
         "Changes of a user's presence published (coalesced per tick).", presence_changes_total);
  scalar(&out, "parley_presence_events_total", "counter",
         "Presence events queued to client sessions (snapshots not counted).",
         presence_events_total);
  scalar(&out, "parley_online_count_events_total", "counter",
         "online_count events queued to client sessions.", online_count_events_total);
  scalar(&out, "parley_e2e_messages_total", "counter",
         "End-to-end encrypted messages accepted and stored (resends not counted).",
         e2e_messages_total);
  scalar(&out, "parley_e2e_bundles_total", "counter", "Prekey bundle requests answered.",
         e2e_bundles_total);
  scalar(&out, "parley_e2e_one_time_taken_total", "counter",
         "One-time prekeys handed out (each once) in bundles.", e2e_one_time_taken_total);
  scalar(&out, "parley_e2e_last_resort_total", "counter",
         "Last-resort prekeys handed out because a device had no one-time prekey left.",
         e2e_last_resort_total);
  scalar(&out, "parley_e2e_keys_published_total", "counter",
         "Keys requests accepted (identities, signed, last-resort and one-time prekeys).",
         e2e_keys_published_total);
  scalar(&out, "parley_e2e_retries_total", "counter",
         "Retry notices queued: a device could not decrypt a message and asked for it again.",
         e2e_retries_total);
  scalar(&out, "parley_e2e_resends_total", "counter",
         "Resend notices queued: a sending device sent a message again to one device.",
         e2e_resends_total);
  scalar(&out, "parley_e2e_notices_acked_total", "counter",
         "Queued e2e notices deleted by their device's e2e_ack.", e2e_notices_acked_total);
  scalar(&out, "parley_stale_devices_total", "counter",
         "Direct sends refused because their envelopes did not match the members' devices.",
         stale_devices_total);
  scalar(&out, "parley_devices_removed_total", "counter",
         "Devices removed by their users (keys deleted, id refused from then on).",
         devices_removed_total);
  labelled(&out, "parley_blocks_total", "Changes of users' block lists, by action.", "action",
           blocks_total);
  scalar(&out, "parley_reports_verified_total", "counter",
         "Reports of direct messages whose franking opening verified (also in reports_total).",
         reports_verified_total);
  scalar(&out, "parley_docs", "gauge", "Collaborative documents in the store.", docs);
  scalar(&out, "parley_docs_created_total", "counter", "Documents created.", docs_created_total);
  scalar(&out, "parley_docs_loaded", "gauge", "Document replicas held in memory.", docs_loaded);
  scalar(&out, "parley_doc_memory_bytes", "gauge",
         "Memory of the document replicas held (CRDT items, text, indexes).", doc_memory_bytes);
  scalar(&out, "parley_doc_chars", "gauge", "Visible characters of the documents held.",
         doc_chars);
  scalar(&out, "parley_doc_editors", "gauge",
         "Documents open, counted once per connection that has one open (active editors).",
         doc_editors);
  scalar(&out, "parley_doc_opens_total", "counter", "doc_open requests answered.",
         doc_opens_total);
  scalar(&out, "parley_doc_updates_total", "counter", "Document updates applied and stored.",
         doc_updates_total);
  scalar(&out, "parley_doc_update_bytes_total", "counter",
         "Bytes of document updates applied and stored (decoded, not base64).",
         doc_update_bytes_total);
  scalar(&out, "parley_doc_updates_relayed_total", "counter",
         "doc_update events queued to the connections that have the document open.",
         doc_updates_relayed_total);
  scalar(&out, "parley_doc_snapshots_total", "counter",
         "Document snapshots written (updates folded into one).", doc_snapshots_total);
  scalar(&out, "parley_docs_unloaded_total", "counter",
         "Document replicas dropped from memory after nobody had them open.",
         docs_unloaded_total);
  scalar(&out, "parley_doc_awareness_total", "counter", "Cursor updates relayed.",
         doc_awareness_total);
  scalar(&out, "parley_doc_awareness_dropped_total", "counter",
         "Cursor updates refused for exceeding 10 per second per connection.",
         doc_awareness_dropped_total);
  header(&out, "parley_doc_update_ack_seconds", "histogram",
         "Seconds from a document update being decoded to its ack being queued, store write "
         "included.");
  doc_update_ack_seconds.render(&out, "parley_doc_update_ack_seconds");
  scalar(&out, "parley_uptime_seconds", "gauge", "Seconds since the server started.",
         fmt::format("{:.3f}", uptime));
  return out;
}

}  // namespace parley::server
