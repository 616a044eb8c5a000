// parley/sys/analytics.hpp - the extension point for product analytics.
//
//   class MySink : public parley::sys::AnalyticsSink {
//     void record(const parley::sys::AnalyticsEvent& e) override { queue_for_upload(e); }
//   };
//   options.analytics = std::make_shared<MySink>();
//
// Events describe what happened (a message was sent, acknowledged after so many
// ms, delivered, read; typing started; the connection changed state and how long
// it stayed in the previous one; presence was set; a connection's session ended
// after so long) and never carry message text, status text or other content:
// labels hold channel names, ids, states and reason codes only.
//
// Thread contract: record() is called on the client's internal thread, one event
// at a time. It must return quickly and must not call the Client.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "parley/export.hpp"

namespace parley::sys {

struct PARLEY_EXPORT AnalyticsEvent {
  // "message_sent", "message_acknowledged", "message_failed", "message_delivered",
  // "message_read", "typing_started", "connection_state", "moderation_action",
  // "notification_level_set", "notification_received", "presence_set",
  // "presence_session" (docs/analytics.md).
  std::string name;
  std::int64_t ts_ms = 0;  // wall clock, ms since the Unix epoch
  // e.g. {"channel","general"}, {"id","5d41..."}, {"state","ready"}, {"reason","connection_lost"}
  std::vector<std::pair<std::string, std::string>> labels;
  // e.g. {"rtt_ms", 12.5}, {"bytes", 42}, {"seq", 17}, {"duration_ms", 1500}
  std::vector<std::pair<std::string, double>> values;

  // The label or value of that name; empty / 0 when absent.
  std::string label(const std::string& key) const;
  double value(const std::string& key) const;
};

class PARLEY_EXPORT AnalyticsSink {
 public:
  // Defined in the library, so that its vtable and type information live
  // there, once, for every app that subclasses it.
  virtual ~AnalyticsSink();
  virtual void record(const AnalyticsEvent& event) = 0;
};

}  // namespace parley::sys
