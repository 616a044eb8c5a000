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

RequestId Client::create_channel(const std::string& name, const ChannelOptions& options) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, name, options] { e->create_channel(id, name, options); });
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

RequestId Client::open_direct(const std::string& user) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, user] { e->open_direct(id, user); });
  return id;
}

std::optional<std::string> Client::direct_peer(const std::string& channel) {
  auto* e = &impl_->engine;
  return e->call<std::optional<std::string>>([e, &channel] { return e->direct_peer(channel); });
}

std::optional<std::string> Client::direct_channel(const std::string& user) {
  auto* e = &impl_->engine;
  return e->call<std::optional<std::string>>([e, &user] { return e->direct_channel(user); });
}

RequestId Client::load_safety_number(const std::string& user) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, user] { e->load_safety_number(id, user); });
  return id;
}

Status Client::verify_contact(const std::string& user, bool verified,
                              const std::string& shown_number) {
  auto* e = &impl_->engine;
  return e->call<Status>(
      [e, &user, verified, &shown_number] { return e->verify_contact(user, verified, shown_number); });
}

RequestId Client::list_devices() {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id] { e->list_devices(id); });
  return id;
}

RequestId Client::remove_device(const std::string& device) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, device] { e->remove_device(id, device); });
  return id;
}

RequestId Client::block_user(const std::string& user, bool blocked) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, user, blocked] { e->block_user(id, user, blocked); });
  return id;
}

RequestId Client::load_blocked_users() {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id] { e->load_blocked(id); });
  return id;
}

namespace {
RequestId member_action(client::Engine& engine, const std::string& channel, const char* action,
                        const std::string& user, std::optional<Role> role = std::nullopt,
                        std::chrono::seconds duration = {}) {
  RequestId id = engine.next_request_id();
  engine.post([e = &engine, id, channel, action = std::string(action), user, role, duration] {
    e->member_action(id, channel, action, user, role, duration);
  });
  return id;
}
}  // namespace

RequestId Client::invite(const std::string& channel, const std::string& user) {
  return member_action(impl_->engine, channel, "invite", user);
}
RequestId Client::remove_member(const std::string& channel, const std::string& user) {
  return member_action(impl_->engine, channel, "remove", user);
}
RequestId Client::ban(const std::string& channel, const std::string& user,
                      std::chrono::seconds duration) {
  return member_action(impl_->engine, channel, "ban", user, std::nullopt, duration);
}
RequestId Client::unban(const std::string& channel, const std::string& user) {
  return member_action(impl_->engine, channel, "unban", user);
}
RequestId Client::mute(const std::string& channel, const std::string& user,
                       std::chrono::seconds duration) {
  return member_action(impl_->engine, channel, "mute", user, std::nullopt, duration);
}
RequestId Client::unmute(const std::string& channel, const std::string& user) {
  return member_action(impl_->engine, channel, "unmute", user);
}
RequestId Client::set_role(const std::string& channel, const std::string& user, Role role) {
  return member_action(impl_->engine, channel, "role", user, role);
}
RequestId Client::transfer_ownership(const std::string& channel, const std::string& user) {
  return member_action(impl_->engine, channel, "transfer", user);
}

RequestId Client::set_meta(const std::string& channel, const ChannelMeta& meta) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, channel, meta] { e->set_meta(id, channel, meta); });
  return id;
}

RequestId Client::delete_message(const std::string& channel, std::uint64_t seq) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, channel, seq] { e->delete_message(id, channel, seq); });
  return id;
}

RequestId Client::pin_message(const std::string& channel, std::uint64_t seq, bool pinned) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post(
      [e = &impl_->engine, id, channel, seq, pinned] { e->pin_message(id, channel, seq, pinned); });
  return id;
}

RequestId Client::report_message(const std::string& channel, std::uint64_t seq,
                                 const std::string& reason) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, channel, seq, reason] {
    e->report_message(id, channel, seq, reason);
  });
  return id;
}

RequestId Client::load_channel_info(const std::string& channel) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, channel] { e->load_channel_info(id, channel); });
  return id;
}

bool Client::can(const std::string& channel, Permission permission) {
  auto* e = &impl_->engine;
  return e->call<bool>([e, &channel, permission] { return e->can(channel, permission); });
}

std::optional<Role> Client::role(const std::string& channel) {
  auto* e = &impl_->engine;
  return e->call<std::optional<Role>>([e, &channel] { return e->role(channel); });
}

std::optional<ChannelKind> Client::channel_kind(const std::string& channel) {
  auto* e = &impl_->engine;
  return e->call<std::optional<ChannelKind>>([e, &channel] { return e->channel_kind(channel); });
}

std::optional<ChannelMeta> Client::channel_meta(const std::string& channel) {
  auto* e = &impl_->engine;
  return e->call<std::optional<ChannelMeta>>([e, &channel] { return e->channel_meta(channel); });
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

RequestId Client::set_notification_level(
    const std::string& channel, NotificationLevel level,
    std::optional<std::chrono::system_clock::time_point> mute_until) {
  std::int64_t mute_ms = 0;
  if (mute_until) {
    mute_ms = std::chrono::duration_cast<std::chrono::milliseconds>(mute_until->time_since_epoch())
                  .count();
  }
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, channel, level, mute_ms] {
    e->set_notification_level(id, channel, level, mute_ms);
  });
  return id;
}

std::optional<NotificationLevel> Client::notification_level(const std::string& channel) {
  auto* e = &impl_->engine;
  auto row = e->call<std::optional<store::Cache::NotifyRow>>(
      [e, &channel] { return e->notify_state(channel); });
  if (!row) return std::nullopt;
  return row->level;
}

std::optional<std::chrono::system_clock::time_point> Client::notification_muted_until(
    const std::string& channel) {
  auto* e = &impl_->engine;
  auto row = e->call<std::optional<store::Cache::NotifyRow>>(
      [e, &channel] { return e->notify_state(channel); });
  if (!row || row->mute_until <= 0) return std::nullopt;
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(row->mute_until));
}

UnreadCount Client::unread(const std::string& channel) {
  auto* e = &impl_->engine;
  auto row = e->call<std::optional<store::Cache::NotifyRow>>(
      [e, &channel] { return e->notify_state(channel); });
  if (!row) return {};
  return UnreadCount{row->unread, row->mentions};
}

UnreadCount Client::badge() {
  auto* e = &impl_->engine;
  return e->call<UnreadCount>([e] { return e->badge(); });
}

RequestId Client::set_presence(const PresenceSettings& settings) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, settings] { e->set_presence(id, settings); });
  return id;
}

RequestId Client::watch_presence(const std::vector<std::string>& users, bool notify) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post(
      [e = &impl_->engine, id, users, notify] { e->watch_presence(id, users, notify); });
  return id;
}

RequestId Client::unwatch_presence(const std::vector<std::string>& users) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, users] { e->unwatch_presence(id, users); });
  return id;
}

RequestId Client::query_presence(const std::vector<std::string>& users) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, users] { e->query_presence(id, users); });
  return id;
}

void Client::report_activity() {
  impl_->engine.post([e = &impl_->engine] { e->report_activity(); });
}

std::optional<Presence> Client::presence(const std::string& user) {
  auto* e = &impl_->engine;
  return e->call<std::optional<Presence>>([e, &user] { return e->presence(user); });
}

std::optional<std::uint64_t> Client::online_count(const std::string& channel) {
  auto* e = &impl_->engine;
  return e->call<std::optional<std::uint64_t>>([e, &channel] { return e->online_count(channel); });
}

RequestId Client::create_document(const std::string& channel, const std::string& title) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post(
      [e = &impl_->engine, id, channel, title] { e->create_document(id, channel, title); });
  return id;
}

RequestId Client::open_document(const std::string& channel, const std::string& title) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post(
      [e = &impl_->engine, id, channel, title] { e->open_document(id, channel, title); });
  return id;
}

RequestId Client::close_document(const std::string& channel, const std::string& title) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post(
      [e = &impl_->engine, id, channel, title] { e->close_document(id, channel, title); });
  return id;
}

Status Client::insert_text(const std::string& channel, const std::string& title,
                           std::uint64_t pos, const std::string& utf8) {
  auto* e = &impl_->engine;
  return e->call<Status>(
      [e, &channel, &title, pos, &utf8] { return e->insert_text(channel, title, pos, utf8); });
}

Status Client::delete_text(const std::string& channel, const std::string& title,
                           std::uint64_t pos, std::uint64_t count) {
  auto* e = &impl_->engine;
  return e->call<Status>(
      [e, &channel, &title, pos, count] { return e->delete_text(channel, title, pos, count); });
}

Result<DocumentView> Client::document_text(const std::string& channel, const std::string& title) {
  auto* e = &impl_->engine;
  return e->call<Result<DocumentView>>(
      [e, &channel, &title] { return e->document_text(channel, title); });
}

RequestId Client::list_documents(const std::string& channel) {
  RequestId id = impl_->engine.next_request_id();
  impl_->engine.post([e = &impl_->engine, id, channel] { e->list_documents(id, channel); });
  return id;
}

Status Client::set_document_cursor(const std::string& channel, const std::string& title,
                                   std::optional<std::uint64_t> cursor,
                                   std::optional<std::uint64_t> anchor) {
  auto* e = &impl_->engine;
  return e->call<Status>([e, &channel, &title, cursor, anchor] {
    return e->set_document_cursor(channel, title, cursor, anchor);
  });
}

Result<std::uint64_t> Client::pending_document_updates() {
  auto* e = &impl_->engine;
  return e->call<Result<std::uint64_t>>([e] { return e->pending_document_updates(); });
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
