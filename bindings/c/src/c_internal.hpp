// Internal to the C ABI (bindings/c): what its .cpp files share.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "parley.h"
#include "parley/client.hpp"
#include "parley/sys/analytics.hpp"
#include "parley/sys/transport.hpp"

struct parley_client {
  parley_event_callback on_event = nullptr;
  void* on_event_user_data = nullptr;
  // Set first by parley_client_free: no more events reach on_event and every
  // entry point returns PARLEY_E_CANCELLED without touching the engine.
  std::atomic<bool> closing{false};
  // Entry points in progress; parley_client_free waits for them to leave.
  std::atomic<int> busy{0};
  // on_event is held until parley_client_create has stored *out.
  std::mutex ready_mu;
  std::condition_variable ready_cv;
  bool ready = false;
  // Last, so that it is destroyed first (parley_client_free also resets it
  // explicitly): the engine thread it joins may still read the members above.
  std::unique_ptr<parley::Client> rep;
};

namespace parley::capi {

// Records the thread's last failure and returns `code`. Never throws.
int set_error(int code, std::string_view message, std::string_view reason) noexcept;
// > 0 while this thread runs an app transport callback (open, send, close).
extern thread_local int t_transport_depth;
// Records `status` (not ok) and returns its PARLEY_E_* code.
int fail(const Status& status);
int status_code(const Status& status);
// A malloc'd copy of `s` (for parley_string_free); null when out of memory.
char* dup_string(const std::string& s);

// c_json.cpp: the JSON forms (docs/c-api.md, "Events as JSON").
// A parley_event (one malloc'd block, freed with free()) for `event`.
parley_event* make_event(const Event& event);
std::string channels_json(const std::vector<ChannelInfo>& channels);
std::string outbox_json(const std::vector<OutboxEntry>& outbox);
std::string cache_usage_json(const CacheUsage& usage);
std::string meta_json(const ChannelMeta& meta);
std::string presence_json(const Presence& presence);
std::string analytics_json(const sys::AnalyticsEvent& event);
// Parses a meta object of the C API; false (and *why) when it is not one.
bool parse_meta(const char* json, ChannelMeta* out, std::string* why);

// c_transport.cpp: the app-supplied transport.
std::shared_ptr<sys::Transport> make_app_transport(const parley_transport_callbacks& callbacks);

}  // namespace parley::capi
