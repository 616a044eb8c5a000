// parley/options.hpp - how a Client is set up.
//
//   parley::ClientOptions opts;
//   opts.server_url = "ws://127.0.0.1:7700";
//   opts.token = token_from_your_backend;
//   opts.data_dir = "/var/lib/myapp/parley";
//
// A plain value: copy it freely.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "parley/events.hpp"

namespace parley {
namespace sys {
class Transport;
class AnalyticsSink;
}

struct ClientOptions {
  // ws://host:port[/path] or wss://host:port[/path].
  std::string server_url;
  // A token minted by the app's backend (see docs/protocol.md, "Tokens").
  std::string token;
  // Directory of this account's and device's cache; created if missing. It
  // holds DATA_DIR/parley.db (the cache, refetchable from the server) and
  // DATA_DIR/outbox.db (unsent messages and the device id, never evicted).
  // One Client per directory at a time. See docs/cache.md.
  std::string data_dir;
  // The cache's budget: parley.db plus its WAL, in bytes (0: no limit; else
  // at least 1 MiB), and in stored channel events (0: no limit). Past either,
  // the oldest history is evicted (the newest 200 delivered events of each
  // channel, and anything not yet delivered, stay) and is fetched again from
  // the server when load_history reaches it.
  std::uint64_t cache_max_bytes = 256u << 20;
  std::uint64_t cache_max_messages = 0;
  // A corrupt parley.db (found at open, by the check that then runs in the
  // background, or by any later read) is moved aside as
  // parley.db.corrupt-<UTC time> and rebuilt from the server, keeping the
  // outbox and the channel cursors it can still read; the app gets a
  // StateChanged with reason "cache_rebuilt". When false, Client::open fails
  // with code corrupt instead, and damage found later disconnects the client
  // with reason "cache_corrupt" until it is opened again with this set.
  bool rebuild_corrupt_cache = false;
  // Stable id of this device (1-64 characters); empty: generated once and kept
  // in the cache.
  std::string device_id;
  // How frames travel; null means the built-in libwebsockets WebSocket.
  std::shared_ptr<sys::Transport> transport;
  // Start connecting when the client opens (otherwise call connect()).
  bool auto_connect = true;
  // A request that needs the server fails with "offline" if no connection is
  // ready within this time, and with "timeout" if the server does not answer in it.
  std::chrono::milliseconds request_timeout{10000};
  // Reconnection: exponential backoff with full jitter between these bounds.
  std::chrono::milliseconds reconnect_base{500};
  std::chrono::milliseconds reconnect_max{30000};
  // Heartbeats (WebSocket ping/pong): a ping after this long without traffic,
  // and the connection is declared dead (and reconnected) after
  // dead_connection_timeout without any answer. Whole seconds.
  std::chrono::seconds heartbeat_interval{20};
  std::chrono::seconds dead_connection_timeout{45};
  // Events per history page when catching up after being offline.
  std::uint32_t sync_page_size = 500;
  // Largest frame accepted from the server.
  std::size_t max_incoming_frame = 4u << 20;
  // Ask the server for notification traffic (auth "notifications"):
  // NotificationReceived, UnreadChanged as counts change, and
  // NotificationLevelChanged from the user's other devices. Off (bots, load
  // generators): counts are refreshed only by each connection's welcome.
  bool notifications = true;
  // Ask the server for presence traffic (auth "presence"): the presence of
  // the members of this user's small channels and this user's own, the
  // snapshots after each welcome, and online counts of large channels. Off
  // (bots, load generators): presence only of the users watched with
  // Client::watch_presence. docs/presence.md.
  bool presence = true;
  // How this user appears to the others in a collaborative document
  // (Client::set_document_cursor): a display name (up to 64 bytes; empty:
  // the user name) and a colour "#rrggbb" (empty: none, the app picks).
  std::string document_name;
  std::string document_color;
  // Optional analytics sink (sys/analytics.hpp): structured events about
  // sending, delivery, reading, typing, presence and the connection, never
  // content.
  std::shared_ptr<sys::AnalyticsSink> analytics;
  // Optional listener. When set, every event goes to it instead of next_event(),
  // called on a thread the client owns (never the caller's, never while the
  // client holds a lock), one event at a time in order. Calling the Client from
  // inside it is allowed, except destroying it.
  std::function<void(const Event&)> listener;
};

}  // namespace parley
