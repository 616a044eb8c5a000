#include "client/engine.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "parley/version.hpp"
#include "protocol/codec.hpp"
#include "protocol/token.hpp"
#include "transport/websocket.hpp"

namespace parley::client {

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Maps a server error code to the StatusCode apps branch on.
StatusCode status_code_for(const std::string& code) {
  using namespace wire::code;
  if (code == kChannelExists) return StatusCode::already_exists;
  if (code == kNoSuchChannel) return StatusCode::not_found;
  if (code == kNoSuchMessage) return StatusCode::not_found;
  if (code == kNotMember || code == kForbidden || code == kBanned || code == kMuted ||
      code == kBlocked) {
    return StatusCode::forbidden;
  }
  if (code == kNoSuchDevice || code == kNoKeys) return StatusCode::not_found;
  if (code == kNoSuchDoc) return StatusCode::not_found;
  if (code == kDocExists) return StatusCode::already_exists;
  if (code == kInvalidTitle || code == kInvalidUpdate || code == kDocTooLarge) {
    return StatusCode::invalid_argument;
  }
  if (code == kRateLimited) return StatusCode::rate_limited;
  if (code == kInvalidToken || code == kNotAuthenticated || code == kDeviceRemoved) {
    return StatusCode::unauthenticated;
  }
  if (code == kTokenExpired) return StatusCode::token_expired;
  if (code == kInvalidName || code == kInvalidId || code == kInvalidText || code == kInvalidLimit ||
      code == kInvalidKind || code == kInvalidSeq || code == kInvalidUser || code == kInvalidRole ||
      code == kInvalidAction || code == kInvalidMeta || code == kFiltered ||
      code == kInvalidLevel || code == kInvalidStatus || code == kTooManyUsers ||
      code == kInvalidReport || code == kTooManyDevices) {
    return StatusCode::invalid_argument;
  }
  if (code == kShuttingDown) return StatusCode::offline;
  if (code == kInternal) return StatusCode::internal;
  return StatusCode::protocol_error;
}

Status from_wire(const wire::Error& e) {
  return Status(status_code_for(e.code), e.message, e.code);
}

// Errors after which resending the same message can succeed.
bool is_transient(const std::string& code) {
  return code == wire::code::kInternal || code == wire::code::kShuttingDown;
}

}  // namespace

Engine::Engine(ClientOptions options, std::string user)
    : options_(std::move(options)),
      user_(std::move(user)),
      events_(options_.listener),
      rng_(std::random_device{}()) {
  analytics_ = options_.analytics;
  transport_ = options_.transport;
  if (!transport_) {
    transport::WebSocketOptions ws;
    ws.max_incoming_frame = options_.max_incoming_frame;
    ws.ping_after_seconds = static_cast<unsigned>(options_.heartbeat_interval.count());
    ws.hangup_after_seconds = static_cast<unsigned>(options_.dead_connection_timeout.count());
    transport_ = std::make_shared<transport::WebSocketTransport>(ws);
  }
}

Engine::~Engine() {
  stopping_ = true;
  transport_->wake();
  if (thread_.joinable()) thread_.join();
  events_.close();
}

Status Engine::start() {
  std::promise<Status> opened;
  auto result = opened.get_future();
  thread_ = std::thread([this, &opened] { thread_main(&opened); });
  Status s = result.get();
  if (!s.ok()) {
    thread_.join();
  }
  return s;
}

void Engine::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (!accepting_) return;  // `fn` is destroyed here, outside nothing but this lock
    posted_.push_back(std::move(fn));
  }
  transport_->wake();
}

void Engine::thread_main(std::promise<Status>* opened) {
  store::Cache::Options cache_options;
  cache_options.budget.max_bytes = options_.cache_max_bytes;
  cache_options.budget.max_messages = options_.cache_max_messages;
  cache_options.rebuild_corrupt = options_.rebuild_corrupt_cache;
  cache_options.on_check_done = [t = transport_] { t->wake(); };
  auto cache = store::Cache::open(options_.data_dir, user_, std::move(cache_options));
  if (!cache) {
    opened->set_value(cache.status());
    return;
  }
  cache_ = std::move(*cache);
  device_id_ = options_.device_id.empty() ? cache_->device_id() : options_.device_id;
  if (Status e2e = open_e2e(); !e2e.ok()) {
    cache_.reset();
    opened->set_value(e2e);
    return;
  }
  if (const auto& rebuilt = cache_->last_rebuild()) {
    set_state(LifecycleState::disconnected,
              Status(StatusCode::corrupt, rebuilt->describe(), "cache_rebuilt"));
  }
  opened->set_value(Status());
  // Damage found after open (by the background check or a failed statement):
  // rebuild and resync, or stop and say so. See docs/cache.md.
  bool cache_failed = false;
  auto watch_cache = [this, &cache_failed] {
    Status bad = cache_->corruption();
    if (bad.ok() || cache_failed) return;
    Status reason(StatusCode::corrupt, bad.message(), "cache_corrupt");
    if (options_.rebuild_corrupt_cache) {
      cache_->rebuild(bad);
      reason = Status(StatusCode::corrupt, cache_->last_rebuild()->describe(), "cache_rebuilt");
    } else {
      cache_failed = true;
      want_connected_ = false;
      reconnect_at_.reset();
    }
    // With a rebuilt cache, the welcome of the next connection resyncs.
    if (connected_ || state_ != LifecycleState::disconnected) {
      transport_->close(1000, "cache rebuilt");
    }
    set_state(LifecycleState::disconnected, reason);
  };
  if (options_.auto_connect) connect();

  while (!stopping_) {
    std::vector<std::function<void()>> work;
    {
      std::lock_guard lock(mu_);
      work.swap(posted_);
    }
    for (auto& fn : work) fn();
    run_timers();
    flush_receipts();
    watch_cache();
    if (stopping_) break;
    {
      std::lock_guard lock(mu_);
      if (!posted_.empty()) continue;
    }
    auto wait = next_deadline() - Clock::now();
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait);
    ms = std::clamp(ms, std::chrono::milliseconds(0), std::chrono::milliseconds(3600 * 1000));
    transport_->poll(ms);
  }

  // Shutting down: run what was posted so callers blocked in call() return,
  // close the connection politely, and give the close frame a moment to leave.
  {
    std::vector<std::function<void()>> work;
    {
      std::lock_guard lock(mu_);
      work.swap(posted_);
    }
    for (auto& fn : work) fn();
  }
  want_connected_ = false;
  if (connected_) {
    transport_->close(1000, "client closed");
    auto until = Clock::now() + std::chrono::milliseconds(300);
    while (connected_ && Clock::now() < until) transport_->poll(std::chrono::milliseconds(50));
  }
  for (auto& [rid, f] : in_flight_) {
    f.reply(nullptr, Status(StatusCode::cancelled, "client closed"));
  }
  in_flight_.clear();
  cache_.reset();
  // From now on nothing runs here: what is posted later (a listener calling
  // in during destruction) is dropped, and its caller in call() returns.
  std::vector<std::function<void()>> late;
  {
    std::lock_guard lock(mu_);
    accepting_ = false;
    late.swap(posted_);
  }
}

Clock::time_point Engine::next_deadline() const {
  auto t = Clock::now() + std::chrono::hours(1);
  if (reconnect_at_) t = std::min(t, *reconnect_at_);
  if (outbox_retry_at_) t = std::min(t, *outbox_retry_at_);
  for (const auto& [rid, f] : in_flight_) t = std::min(t, f.deadline);
  for (const auto& w : waiting_) t = std::min(t, w.deadline);
  for (const auto& [key, expires] : typing_peers_) t = std::min(t, expires);
  t = std::min(t, next_doc_deadline());
  return t;
}

void Engine::run_timers() {
  auto now = Clock::now();
  expire_typing(now);
  run_doc_timers(now);
  if (outbox_retry_at_ && *outbox_retry_at_ <= now) {
    outbox_retry_at_.reset();
    if (state_ == LifecycleState::syncing || state_ == LifecycleState::ready) transmit_outbox();
  }
  if (reconnect_at_ && *reconnect_at_ <= now) {
    reconnect_at_.reset();
    if (want_connected_ && !connected_ && !auth_refused_) start_connect();
  }
  std::vector<Reply> expired;
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (it->second.deadline <= now) {
      expired.push_back(std::move(it->second.reply));
      it = in_flight_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& r : expired) r(nullptr, Status(StatusCode::timeout, "the server did not answer in time"));
  std::vector<Waiting> late;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->deadline <= now) {
      late.push_back(std::move(*it));
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& w : late) {
    w.fail(auth_refused_ ? Status(StatusCode::unauthenticated, "authentication was refused",
                                  "unauthenticated")
                         : Status(StatusCode::offline, "no connection to the server"));
  }
}

void Engine::set_state(LifecycleState state, Status reason) {
  LifecycleState previous = state_.load();
  if (previous == state && reason.ok()) return;
  auto now = Clock::now();
  double stayed = std::chrono::duration<double, std::milli>(now - state_since_).count();
  state_since_ = now;
  state_ = state;
  std::vector<std::pair<std::string, std::string>> labels{{"state", to_string(state)},
                                                          {"previous", to_string(previous)}};
  if (!reason.ok()) labels.emplace_back("reason", reason.reason());
  analytics("connection_state", std::move(labels), {{"duration_ms", stayed}});
  events_.push(StateChanged{state, std::move(reason)});
}

void Engine::analytics(std::string name, std::vector<std::pair<std::string, std::string>> labels,
                       std::vector<std::pair<std::string, double>> values) {
  if (!analytics_) return;
  sys::AnalyticsEvent ev;
  ev.name = std::move(name);
  ev.ts_ms = now_ms();
  // Direct messages are counted and timed, never named: no channel (it
  // names both users), message id, user or text reaches analytics
  // (docs/analytics.md, "Direct messages").
  bool direct = std::any_of(labels.begin(), labels.end(), [](const auto& l) {
    return l.first == "channel" && !l.second.empty() && l.second[0] == '@';
  });
  if (direct) {
    std::erase_if(labels, [](const auto& l) { return l.first != "reason" && l.first != "kind"; });
    labels.emplace_back("direct", "true");
  }
  ev.labels = std::move(labels);
  ev.values = std::move(values);
  analytics_->record(ev);
}

// ---- connection --------------------------------------------------------------

void Engine::connect() {
  want_connected_ = true;
  if (connected_ || state_ != LifecycleState::disconnected) return;
  if (auth_refused_) return;
  reconnect_at_.reset();
  start_connect();
}

void Engine::reconnect_now() {
  want_connected_ = true;
  attempt_ = 0;
  if (connected_ || state_ != LifecycleState::disconnected || auth_refused_) return;
  reconnect_at_.reset();
  start_connect();
}

void Engine::disconnect() {
  want_connected_ = false;
  reconnect_at_.reset();
  if (connected_ || state_ != LifecycleState::disconnected) {
    transport_->close(1000, "client disconnect");
  }
}

void Engine::set_token(std::string token) {
  auto claims = token::peek(token);
  if (!claims || claims->user != user_) return;  // checked by Client::set_token
  options_.token = std::move(token);
  auth_refused_ = false;
  attempt_ = 0;
  if (connected_) {
    transport_->close(1000, "new token");  // on_closed reconnects with the new token
  } else if (want_connected_) {
    reconnect_at_.reset();
    start_connect();
  }
}

void Engine::start_connect() {
  set_state(LifecycleState::connecting);
  transport_->connect(options_.server_url, wire::kSubprotocol, this);
}

void Engine::schedule_reconnect() {
  if (!want_connected_ || auth_refused_ || stopping_) return;
  // Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^attempt)].
  auto base = options_.reconnect_base.count();
  auto cap = options_.reconnect_max.count();
  long long ceiling = base;
  for (int i = 0; i < attempt_ && ceiling < cap; ++i) ceiling *= 2;
  ceiling = std::min<long long>(ceiling, cap);
  std::uniform_int_distribution<long long> dist(0, std::max<long long>(ceiling, 1));
  ++attempt_;
  reconnect_at_ = Clock::now() + std::chrono::milliseconds(dist(rng_));
}

void Engine::on_open() {
  connected_ = true;
  set_state(LifecycleState::authenticating);
  wire::Auth auth;
  auth.rid = next_rid_++;
  auth.token = options_.token;
  auth.device = device_id_;
  auth.client = std::string("parley-cpp/") + version();
  auth.notifications = options_.notifications;
  auth.presence = options_.presence;
  auth_rid_ = auth.rid;
  transport_->send(wire::encode(wire::ClientMessage(auth)));
  in_flight_[auth.rid] = InFlight{
      [this](const wire::ServerMessage* reply, const Status& error) {
        if (reply != nullptr) {
          if (auto* w = std::get_if<wire::Welcome>(reply)) return handle_welcome(*w);
        }
        if (error.code() == StatusCode::unauthenticated ||
            error.code() == StatusCode::token_expired) {
          auth_refused_ = true;
          transport_->close(1000, "authentication refused");
          set_state(LifecycleState::disconnected, error);
          for (auto& w : waiting_) w.fail(error);
          waiting_.clear();
          return;
        }
        if (!error.ok()) transport_->close(1000, "authentication failed");
      },
      Clock::now() + options_.request_timeout, nullptr};
}

void Engine::on_closed(const Status& reason) {
  bool was_connected = connected_;
  connected_ = false;
  syncing_ = false;
  filling_.clear();
  fill_base_.clear();
  outbox_in_flight_.clear();
  delivered_sent_.clear();
  typing_sent_.clear();
  presence_session_ended();
  docs_connection_lost();
  // Requests on the lost connection: run again after reconnecting, or fail.
  auto flights = std::move(in_flight_);
  in_flight_.clear();
  for (auto& [rid, f] : flights) {
    if (f.resend) {
      waiting_.push_back(Waiting{f.resend, [reply = f.reply](const Status& s) { reply(nullptr, s); },
                                 f.deadline, false});
    } else if (rid != auth_rid_) {
      f.reply(nullptr, Status(StatusCode::offline, "connection lost", "connection_lost"));
    }
  }
  // Work that can be answered offline (history from the cache) does not wait
  // for the next connection attempt.
  std::vector<Waiting> offline_now;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->answer_offline) {
      offline_now.push_back(std::move(*it));
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& w : offline_now) w.fail(Status(StatusCode::offline, "no connection to the server"));
  if (auth_refused_) return;  // already reported as the state change
  Status why = reason;
  if (why.ok() && want_connected_ && !was_connected) {
    why = Status(StatusCode::offline, "connection closed");
  }
  set_state(LifecycleState::disconnected, why.ok() ? Status() : why);
  if (want_connected_) {
    if (was_connected && reason.reason() != "connection_lost") attempt_ = std::min(attempt_, 1);
    schedule_reconnect();
  }
}

void Engine::on_frame(std::string_view frame) {
  for (auto& item : wire::decode_server_frame(frame)) {
    if (std::holds_alternative<wire::DecodeError>(item)) {
      // Something this client cannot understand (a newer server's message, or
      // garbage): skip it. A request it answered times out and is retried.
      ++undecodable_frames_;
      continue;
    }
    auto& message = std::get<wire::ServerMessage>(item);
    if (auto* ev = std::get_if<wire::ChannelEvent>(&message)) {
      handle_event(*ev);
      continue;
    }
    if (auto* t = std::get_if<wire::TypingEvent>(&message)) {
      handle_typing(*t);
      continue;
    }
    if (auto* r = std::get_if<wire::ReceiptEvent>(&message)) {
      handle_receipt(*r);
      continue;
    }
    if (auto* n = std::get_if<wire::NotificationEvent>(&message)) {
      handle_notification(*n);
      continue;
    }
    if (auto* u = std::get_if<wire::UnreadEvent>(&message)) {
      handle_unread(*u);
      continue;
    }
    if (auto* n = std::get_if<wire::NotifyEvent>(&message)) {
      handle_notify(*n);
      continue;
    }
    if (auto* p = std::get_if<wire::PresenceEvent>(&message)) {
      handle_presence(*p);
      continue;
    }
    if (auto* k = std::get_if<wire::KeysState>(&message); k && k->rid == 0) {
      handle_keys_state(*k);
      continue;
    }
    if (auto* c = std::get_if<wire::OnlineCount>(&message)) {
      handle_online_count(*c);
      continue;
    }
    if (auto* l = std::get_if<wire::PresenceList>(&message); l && l->rid == 0) {
      handle_presence_list(*l);  // a snapshot the server sent by itself
      continue;
    }
    if (auto* n = std::get_if<wire::E2eNotice>(&message)) {
      handle_notice(*n);
      continue;
    }
    if (auto* u = std::get_if<wire::DocUpdateEvent>(&message)) {
      handle_doc_update(*u);
      continue;
    }
    if (auto* a = std::get_if<wire::DocAwarenessEvent>(&message)) {
      handle_doc_awareness(*a);
      continue;
    }
    if (auto* e = std::get_if<wire::Error>(&message);
        e && e->rid == 0 && e->code == wire::code::kDeviceRemoved) {
      // This device was removed by its user (from another device): no
      // reconnecting with this device id.
      Status why = from_wire(*e);
      auth_refused_ = true;
      transport_->close(1000, "device removed");
      set_state(LifecycleState::disconnected, why);
      for (auto& w : waiting_) w.fail(why);
      waiting_.clear();
      continue;
    }
    std::optional<std::uint64_t> rid;
    std::visit(
        [&](const auto& m) {
          if constexpr (requires { m.rid; }) rid = m.rid;
        },
        message);
    if (!rid) continue;  // an error not tied to a request: nothing waits for it
    auto it = in_flight_.find(*rid);
    if (it == in_flight_.end()) continue;  // late answer to a request that timed out
    Reply reply = std::move(it->second.reply);
    in_flight_.erase(it);
    if (auto* e = std::get_if<wire::Error>(&message)) {
      if (e->retry_after_ms) retry_after_ms_ = *e->retry_after_ms;
      reply(nullptr, from_wire(*e));
    } else {
      reply(&message, Status());
    }
  }
}

std::uint64_t Engine::request(wire::ClientMessage message, Reply reply,
                              std::function<void()> resend) {
  std::uint64_t rid = next_rid_++;
  std::visit([&](auto& m) { m.rid = rid; }, message);
  transport_->send(wire::encode(message));
  in_flight_[rid] = InFlight{std::move(reply), Clock::now() + options_.request_timeout,
                             std::move(resend)};
  return rid;
}

void Engine::when_ready(std::function<void()> run, std::function<void(const Status&)> fail,
                        bool answer_offline) {
  if (state_ == LifecycleState::ready) return run();
  if (auth_refused_) {
    return fail(Status(StatusCode::unauthenticated, "authentication was refused", "unauthenticated"));
  }
  if (answer_offline && (!want_connected_ || state_ == LifecycleState::disconnected)) {
    return fail(Status(StatusCode::offline, "no connection to the server"));
  }
  waiting_.push_back(Waiting{std::move(run), std::move(fail),
                             Clock::now() + options_.request_timeout, answer_offline});
}

void Engine::handle_welcome(const wire::Welcome& welcome) {
  attempt_ = 0;
  server_max_frame_ = welcome.max_frame;
  set_state(LifecycleState::syncing);
  peers_checked_.clear();
  apply_channel_states(welcome.channels);
  apply_notify_states(welcome.channels);
  // This device's keys are on the server before ready (docs/e2e.md): the
  // gate is set before the sync can finish.
  keys_before_ready_ = true;
  begin_sync(welcome.channels);
  keys_before_ready_ = false;
  publish_keys(welcome.keys, /*before_ready=*/true);
  if (!keys_before_ready_) finish_sync_step();  // nothing to publish
  session_since_ = Clock::now();
  rewatch_presence();
  transmit_outbox();
  reopen_documents();
  if (auto reads = cache_->unsent_reads()) {
    for (const auto& r : *reads) {
      read_sent_[r.channel] = r.seq;
      send_read(r.channel, r.seq);
    }
  }
}

void Engine::finish_sync_step() {
  if (!syncing_ || !sync_waiting_.empty() || keys_before_ready_) return;
  syncing_ = false;
  session_ready_ = true;
  set_state(LifecycleState::ready);
  auto ready = std::move(waiting_);
  waiting_.clear();
  for (auto& w : ready) w.run();
  ask_retries();  // direct messages that could not be decrypted before
}

// ---- membership ----------------------------------------------------------------

void Engine::membership_request(RequestId req, wire::ClientMessage message,
                                const std::string& channel,
                                std::function<void(const wire::Ok&)> joined) {
  auto done = [this, req, channel](const Status& s) {
    events_.push(ChannelRequestDone{req, channel, s});
  };
  std::string why = check_channel_name(channel);
  if (!why.empty()) return done(Status(StatusCode::invalid_argument, why, wire::code::kInvalidName));
  bool leaving = std::holds_alternative<wire::LeaveChannel>(message);
  auto run = std::make_shared<std::function<void()>>();
  std::weak_ptr<std::function<void()>> weak = run;
  *run = [this, message, channel, done, leaving, joined, weak]() {
    auto self = weak.lock();
    request(
        message,
        [this, channel, done, leaving, joined](const wire::ServerMessage* reply,
                                               const Status& error) {
          if (reply == nullptr) return done(error);
          const auto* ok = std::get_if<wire::Ok>(reply);
          if (ok == nullptr) {
            return done(Status(StatusCode::protocol_error, "unexpected reply", "bad_reply"));
          }
          cache_->upsert_channel(channel, ok->last_seq, !leaving);
          auto info = cache_->channel(channel);
          if (!leaving && info && *info && (*info)->read_to == 0) {
            // New to this device: nothing before the join is news (history
            // loads on demand), and the join itself is ours.
            cache_->advance_cursor(channel, ok->last_seq);
          } else if (ok->seq != 0) {
            note_own_event(channel, ok->seq);
          }
          if (leaving) {
            cache_->remove_member(channel, user_);
            cache_->set_my_role(channel, std::nullopt);
            cache_->set_my_mute(channel, std::nullopt);
          } else {
            cache_->add_member(channel, user_);
            if (joined) joined(*ok);
            fetch_receipts(channel);  // the members and their cursors
          }
          done(Status());
        },
        [self] { (*self)(); });
  };
  when_ready([run] { (*run)(); }, done);
}

void Engine::create_channel(RequestId request, const std::string& name,
                            const ChannelOptions& options) {
  auto fail = [&](Status s) { events_.push(ChannelRequestDone{request, name, std::move(s)}); };
  if (!name.empty() && name.front() == '@') {
    return fail(Status(StatusCode::invalid_argument,
                       fmt::format("channel \"{}\": names starting with '@' are reserved for "
                                   "direct channels",
                                   name),
                       wire::code::kInvalidName));
  }
  if (options.kind == ChannelKind::direct) {
    return fail(Status(StatusCode::invalid_argument,
                       fmt::format("channel \"{}\": a direct channel is opened with open_direct",
                                   name),
                       wire::code::kInvalidKind));
  }
  wire::Meta meta = wire::to_wire(options.meta);
  if (std::string why = wire::check_meta(meta); !why.empty()) {
    return fail(Status(StatusCode::invalid_argument, fmt::format("channel \"{}\": {}", name, why),
                       wire::code::kInvalidMeta));
  }
  bool has_meta = meta.name || meta.topic || meta.description || meta.avatar || meta.data;
  wire::CreateChannel create{0, name, std::string(to_string(options.kind)),
                             has_meta ? std::optional<wire::Meta>(meta) : std::nullopt};
  membership_request(request, create, name, [this, name, options](const wire::Ok&) {
    cache_->set_channel_kind(name, options.kind);
    cache_->set_my_role(name, Role::owner);
    cache_->set_member_role(name, user_, Role::owner);
    cache_->replace_meta(name, options.meta);
  });
}
void Engine::join_channel(RequestId request, const std::string& name) {
  membership_request(request, wire::JoinChannel{0, name}, name, [this, name](const wire::Ok& ok) {
    if (ok.seq != 0) {
      cache_->set_my_role(name, Role::member);
      cache_->set_member_role(name, user_, Role::member);
    }
    fetch_channel_state(name);  // kind, metadata, members and roles
  });
}
void Engine::leave_channel(RequestId request, const std::string& name) {
  membership_request(request, wire::LeaveChannel{0, name}, name);
}

// ---- outbox --------------------------------------------------------------------

Result<std::string> Engine::send(const std::string& channel, const std::string& text) {
  std::string why = check_channel_name(channel);
  if (!why.empty()) return Status(StatusCode::invalid_argument, why, wire::code::kInvalidName);
  if (text.empty()) return Status(StatusCode::invalid_argument, "message text is empty", wire::code::kInvalidText);
  if (text.size() > wire::kMaxTextBytes) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("message text is {} bytes, over the limit of {}", text.size(),
                              wire::kMaxTextBytes),
                  wire::code::kInvalidText);
  }
  if (!wire::is_valid_utf8(text)) {
    return Status(StatusCode::invalid_argument, "message text is not valid utf-8", wire::code::kInvalidText);
  }
  std::string id = MessageId::random().hex();
  if (Status s = cache_->outbox_add(channel, id, text, now_ms()); !s.ok()) return s;
  events_.push(MessagePending{channel, id});
  analytics("message_sent", {{"channel", channel}, {"id", id}},
            {{"bytes", static_cast<double>(text.size())}});
  if (typing_sent_.count(channel)) set_typing(channel, false);  // sending ends typing
  if (state_ == LifecycleState::syncing || state_ == LifecycleState::ready) {
    transmit(OutboxEntry{channel, id, text, DeliveryState::pending, {}});
  }
  return id;
}

void Engine::transmit_outbox() {
  auto pending = cache_->outbox_pending();
  if (!pending) return;
  for (const auto& entry : *pending) transmit(entry);
}

void Engine::transmit(const OutboxEntry& entry) {
  if (!entry.channel.empty() && entry.channel[0] == '@') return transmit_e2e(entry);
  if (outbox_in_flight_.count(entry.id)) return;
  send_entry(entry, wire::Send{0, entry.channel, entry.id, entry.text, std::nullopt}, false);
}

void Engine::send_entry(const OutboxEntry& entry, const wire::Send& send, bool e2e) {
  if (outbox_in_flight_.count(entry.id)) return;
  if (server_max_frame_ != 0) {
    wire::Send sized = send;
    sized.rid = next_rid_;
    std::size_t size = wire::encode(wire::ClientMessage(sized)).size();
    if (size > server_max_frame_) {
      // The server would drop the frame without being able to answer it.
      Status why(StatusCode::invalid_argument,
                 fmt::format("message {}: {} bytes encoded, over the server's frame limit of {}",
                             entry.id, size, server_max_frame_),
                 wire::code::kFrameTooLarge);
      cache_->outbox_fail(entry.id, why.reason());
      analytics("message_failed", {{"channel", entry.channel}, {"id", entry.id},
                                   {"reason", why.reason()}});
      events_.push(MessageFailed{entry.channel, entry.id, why});
      return;
    }
  }
  outbox_in_flight_.insert(entry.id);
  auto started = send_started_.emplace(entry.id, Clock::now()).first->second;
  request(
      send,
      [this, entry, started, e2e](const wire::ServerMessage* reply, const Status& error) {
        outbox_in_flight_.erase(entry.id);
        if (reply == nullptr) {
          if (error.code() == StatusCode::timeout && connected_) {
            // Still connected but no answer: try again; the server deduplicates.
            return transmit(entry);
          }
          if (is_transient(error.reason())) {
            // The server could not store it just now: try again shortly.
            outbox_retry_at_ = Clock::now() + std::chrono::seconds(1);
            return;
          }
          if (error.reason() == wire::code::kRateLimited) {
            // Slowed down: the message stays in the outbox until the server's
            // retry-after has passed (at least 50 ms, at most a minute).
            auto wait = std::chrono::milliseconds(
                std::clamp<std::uint64_t>(retry_after_ms_, 50, 60000));
            auto at = Clock::now() + wait;
            if (!outbox_retry_at_ || *outbox_retry_at_ < at) outbox_retry_at_ = at;
            return;
          }
          if (e2e && error.reason() == wire::code::kStaleDevices) {
            // A device was added or removed on either side: look again and
            // seal anew (docs/e2e.md, "Devices").
            return devices_stale(entry);
          }
          if (error.reason() == "connection_lost" || error.code() == StatusCode::offline ||
              error.code() == StatusCode::cancelled || error.code() == StatusCode::timeout) {
            return;  // stays in the outbox; sent again after reconnecting
          }
          cache_->outbox_fail(entry.id, error.reason());
          send_started_.erase(entry.id);
          analytics("message_failed", {{"channel", entry.channel}, {"id", entry.id},
                                       {"reason", error.reason()}});
          events_.push(MessageFailed{entry.channel, entry.id,
                                     Status(error.code(),
                                            fmt::format("message {}: {}", entry.id, error.message()),
                                            error.reason())});
          return;
        }
        const auto* ack = std::get_if<wire::Ack>(reply);
        // An ack must be for what was sent: a server that names another
        // channel or id is broken, and trusting it would move the wrong
        // cursor. The message stays in the outbox and is sent again later.
        if (ack == nullptr || ack->channel != entry.channel || ack->id != entry.id || ack->seq == 0) {
          return;
        }
        stale_tries_.erase(entry.id);
        auto stored = cache_->outbox_acknowledge(entry.id, ack->seq, ack->ts, user_, e2e);
        if (!stored || !*stored) return;  // acknowledged before (a duplicate answer)
        note_own_event(ack->channel, ack->seq);
        double rtt = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
        send_started_.erase(entry.id);
        analytics("message_acknowledged", {{"channel", ack->channel}, {"id", ack->id}},
                  {{"rtt_ms", rtt}, {"seq", static_cast<double>(ack->seq)}});
        events_.push(MessageSent{ack->channel, ack->id, ack->seq, ack->ts});
      },
      nullptr);
}

}  // namespace parley::client
