// parley/client.hpp - the chat client.
//
//   parley::ClientOptions opts;
//   opts.server_url = "ws://127.0.0.1:7700";
//   opts.token = token;
//   opts.data_dir = "./alice";
//   auto client = parley::Client::open(opts);
//   if (!client) return fail(client.status());
//   (*client)->join_channel("general");
//   (*client)->send("general", "hello");
//   while (auto ev = (*client)->next_event(std::chrono::seconds(5))) handle(*ev);
//
// Safe to call from any thread. Calls return at once (send() after writing the
// outbox); results and updates arrive as events (events.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parley/events.hpp"
#include "parley/options.hpp"
#include "parley/status.hpp"
#include "parley/types.hpp"

namespace parley {

// Which part of a channel's history to load.
struct HistoryQuery {
  // Only messages with seq < before; 0 means from the newest.
  std::uint64_t before = 0;
  // At most this many text messages (1-1000). Events of other kinds in the
  // range come along and do not count.
  std::uint32_t limit = 50;
};

// How much the cache holds (Client::cache_usage).
struct CacheUsage {
  std::uint64_t file_bytes = 0;  // DATA_DIR/parley.db
  std::uint64_t wal_bytes = 0;   // DATA_DIR/parley.db-wal
  std::uint64_t events = 0;      // channel events stored
  std::uint64_t evicted = 0;     // events evicted since open (to stay within budget)
};

class Client {
 public:
  // Opens (or creates) the cache in options.data_dir and starts the client's
  // thread. Fails with invalid_argument for bad options, corrupt or io_error
  // for a cache that cannot be used (unless options.rebuild_corrupt_cache:
  // then a corrupt cache is rebuilt). The caller owns the returned client.
  static Result<std::unique_ptr<Client>> open(ClientOptions options);

  // Closes the connection and stops the thread. Outbox entries stay in the
  // cache and are sent by the next client opened on the same directory.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts connecting, then keeps the connection up (reconnecting with backoff).
  void connect();
  // Closes the connection and stops reconnecting.
  void disconnect();
  // Tells the client the network just came back (or the app returned to the
  // foreground): skip the rest of the backoff wait and connect now.
  void reconnect_now();
  // Replaces the token (for example after token_expired) and reconnects.
  void set_token(std::string token);

  LifecycleState state() const;
  // The user named by the token.
  const std::string& user() const;

  // Channel membership. Completion: ChannelRequestDone with the same id.
  RequestId create_channel(const std::string& name);
  RequestId join_channel(const std::string& name);
  RequestId leave_channel(const std::string& name);

  // Writes a text message to the durable outbox and returns its id; works
  // offline. Then MessagePending, later MessageSent or MessageFailed.
  // Fails with invalid_argument for a bad channel name or text (empty, invalid
  // UTF-8, over 8192 bytes).
  Result<std::string> send(const std::string& channel, const std::string& text);

  // Loads history from the cache, asking the server for what the cache lacks.
  // Completion: HistoryLoaded with the same id.
  RequestId load_history(const std::string& channel, HistoryQuery query = {});

  // Typing indicator. Call with true as the user types (the SDK sends at most
  // one signal per 3 s) and false when the text is cleared; sending a message
  // in the channel also stops it. Ephemeral: nothing is sent while offline.
  void set_typing(const std::string& channel, bool typing);

  // Marks the channel read up to `seq` (0: everything received so far). The
  // read cursor is monotonic, kept in the cache and sent to the server when
  // connected. Fails with invalid_argument for a bad channel name.
  Status mark_read(const std::string& channel, std::uint64_t seq = 0);

  // Delivered to / read by how many members, for message `seq` of `channel`,
  // from the receipt cursors in the cache.
  Result<ReceiptSummary> receipt_summary(const std::string& channel, std::uint64_t seq);

  // What the cache knows, without the server.
  Result<std::vector<ChannelInfo>> channels();
  Result<std::vector<OutboxEntry>> outbox();
  // The cache's size against its budget (ClientOptions::cache_max_bytes).
  Result<CacheUsage> cache_usage();

  // The next event, waiting at most `timeout`; nullopt on timeout or when a
  // listener is set.
  std::optional<Event> next_event(std::chrono::milliseconds timeout);

  class Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley
