// The public Client: a thin, thread-safe front for the engine's thread.
#include "parley/client.hpp"

#include <fmt/format.h>

#include "client/engine.hpp"
#include "protocol/token.hpp"

namespace parley {

class Client::Impl {
 public:
  Impl(ClientOptions options, std::string user)
      : engine(std::move(options), std::move(user)) {}
  client::Engine engine;
};

Result<std::unique_ptr<Client>> Client::open(ClientOptions options) {
  if (options.data_dir.empty()) {
    return Status(StatusCode::invalid_argument, "data directory is empty");
  }
  if (!options.transport) {
    // The WebSocket transport needs ws://HOST[:PORT][/PATH] or wss://...
    const std::string& url = options.server_url;
    auto scheme_end = url.find("://");
    std::string scheme = scheme_end == std::string::npos ? "" : url.substr(0, scheme_end);
    std::string rest = scheme_end == std::string::npos ? "" : url.substr(scheme_end + 3);
    if ((scheme != "ws" && scheme != "wss") || rest.empty() || rest[0] == '/' || rest[0] == ':') {
      return Status(StatusCode::invalid_argument,
                    fmt::format("server url \"{}\": expected ws://host:port/ or wss://host:port/", url),
                    "invalid_url");
    }
  }
  if (options.sync_page_size == 0 || options.sync_page_size > 500) {
    return Status(StatusCode::invalid_argument, "sync_page_size must be 1-500");
  }
  if (options.heartbeat_interval.count() <= 0 ||
      options.dead_connection_timeout <= options.heartbeat_interval) {
    return Status(StatusCode::invalid_argument,
                  "heartbeat_interval must be positive and below dead_connection_timeout");
  }
  if (options.request_timeout.count() <= 0 || options.reconnect_base.count() <= 0 ||
      options.reconnect_max < options.reconnect_base) {
    return Status(StatusCode::invalid_argument, "timeouts must be positive and reconnect_max >= reconnect_base");
  }
  constexpr std::uint64_t kMinCacheBytes = 1u << 20;
  if (options.cache_max_bytes != 0 && options.cache_max_bytes < kMinCacheBytes) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("cache_max_bytes {}: must be 0 (no limit) or at least {}",
                              options.cache_max_bytes, kMinCacheBytes));
  }
  if (!options.device_id.empty() && (options.device_id.size() > 64)) {
    return Status(StatusCode::invalid_argument, "device id is longer than 64 characters");
  }
  auto claims = token::peek(options.token);
  if (!claims) return claims.status();
  auto impl = std::make_unique<Impl>(std::move(options), claims->user);
  if (Status s = impl->engine.start(); !s.ok()) return s;
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

void Client::connect() {
  impl_->engine.post([e = &impl_->engine] { e->connect(); });
}

void Client::disconnect() {
  impl_->engine.post([e = &impl_->engine] { e->disconnect(); });
}

void Client::reconnect_now() {
  impl_->engine.post([e = &impl_->engine] { e->reconnect_now(); });
}

void Client::set_token(std::string token) {
  impl_->engine.post([e = &impl_->engine, t = std::move(token)]() mutable { e->set_token(std::move(t)); });
}

LifecycleState Client::state() const { return impl_->engine.state(); }
const std::string& Client::user() const { return impl_->engine.user(); }

RequestId Client::create_channel(const std::string& name) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, name] { e->create_channel(id, name); });
  return id;
}

RequestId Client::join_channel(const std::string& name) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, name] { e->join_channel(id, name); });
  return id;
}

RequestId Client::leave_channel(const std::string& name) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, name] { e->leave_channel(id, name); });
  return id;
}

Result<std::string> Client::send(const std::string& channel, const std::string& text) {
  auto* e = &impl_->engine;
  return e->call<Result<std::string>>([e, &channel, &text] { return e->send(channel, text); });
}

RequestId Client::load_history(const std::string& channel, HistoryQuery query) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, channel, query] { e->load_history(id, channel, query); });
  return id;
}

void Client::set_typing(const std::string& channel, bool typing) {
  impl_->engine.post([e = &impl_->engine, channel, typing] { e->set_typing(channel, typing); });
}

Status Client::mark_read(const std::string& channel, std::uint64_t seq) {
  auto* e = &impl_->engine;
  return e->call<Status>([e, &channel, seq] { return e->mark_read(channel, seq); });
}

Result<ReceiptSummary> Client::receipt_summary(const std::string& channel, std::uint64_t seq) {
  auto* e = &impl_->engine;
  return e->call<Result<ReceiptSummary>>([e, &channel, seq] { return e->receipt_summary(channel, seq); });
}

Result<std::vector<ChannelInfo>> Client::channels() {
  auto* e = &impl_->engine;
  return e->call<Result<std::vector<ChannelInfo>>>([e] { return e->cache().channels(); });
}

Result<CacheUsage> Client::cache_usage() {
  auto* e = &impl_->engine;
  return e->call<Result<CacheUsage>>([e]() -> Result<CacheUsage> {
    auto u = e->cache().usage();
    if (!u) return u.status();
    return CacheUsage{u->file_bytes, u->wal_bytes, u->events, u->evicted};
  });
}

Result<std::vector<OutboxEntry>> Client::outbox() {
  auto* e = &impl_->engine;
  return e->call<Result<std::vector<OutboxEntry>>>([e] { return e->cache().outbox_pending(); });
}

std::optional<Event> Client::next_event(std::chrono::milliseconds timeout) {
  return impl_->engine.events().pop(timeout);
}

}  // namespace parley
