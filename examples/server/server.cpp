// The event loop: one libwebsockets context serving WebSocket sessions, plain
// HTTP and loopback links on one thread. Request handling lives in Hub; this
// file moves bytes between the transports and the sessions.
#include "server.hpp"

#include <fmt/format.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "http.hpp"
#include "hub.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "protocol/wire.hpp"
#include "session.hpp"
#include "store.hpp"

namespace parley::server {

class WsSession;

namespace {

namespace code = wire::code;
using transport::LoopbackLink;

// What other threads hand to the loop: new loopback links, loopback sessions
// with input, and the stop request. The loopback links and the acceptor hold
// it too, so it outlives the server.
struct WakeBox {
  std::mutex mu;
  lws_context* context = nullptr;  // guarded by mu; null once the loop is gone
  bool accepting = true;           // guarded by mu
  bool stop = false;               // guarded by mu
  std::vector<std::shared_ptr<LoopbackLink>> new_links;  // guarded by mu
  std::unordered_set<std::uint64_t> woken;               // guarded by mu

  // Call with mu held.
  void wake_loop() {
    if (context != nullptr) lws_cancel_service(context);
  }
};

// libwebsockets' per-connection user data: zeroed memory it owns, so only
// plain pointers to objects the server owns.
struct ConnectionData {
  WsSession* session;
  HttpResponse* http;  // the response whose body is still to be written
};

// libwebsockets gives every connection a receive buffer of this size for its
// whole life; larger messages arrive in pieces that FrameAssembler joins. Small,
// because most connections are idle most of the time (4096 cost 3 KB more per
// connection: docs/benchmarks.md section 8).
constexpr std::size_t kRxBufferSize = 1024;
constexpr int kAuthTimeoutSeconds = 30;
constexpr lws_usec_t kShutdownGrace = 3 * LWS_US_PER_SEC;

void emit_lws_log(int level, const char* line) {
  std::string_view text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  log(level == LLL_ERR ? "error" : "warning", "libwebsockets: {}", text);
}

}  // namespace

class WsSession final : public Session {
 public:
  WsSession(std::uint64_t id, lws* wsi, std::size_t max_frame, std::size_t max_queued)
      : Session(id, max_frame, max_queued), wsi_(wsi), rx_(max_frame) {}
  std::string describe() const override { return fmt::format("ws#{}", id()); }
  lws* wsi() const { return wsi_; }
  FrameAssembler& rx() { return rx_; }
  bool auth_timeout_armed = true;

 protected:
  void request_flush() override { lws_callback_on_writable(wsi_); }

 private:
  lws* wsi_;
  FrameAssembler rx_;
};

class LoopbackSession final : public Session {
 public:
  LoopbackSession(std::uint64_t id, std::shared_ptr<LoopbackLink> link, std::size_t max_frame,
                  std::size_t max_queued, std::vector<std::uint64_t>* flush_list)
      : Session(id, max_frame, max_queued), link_(std::move(link)), flush_list_(flush_list) {}
  std::string describe() const override { return fmt::format("loopback#{}", id()); }
  LoopbackLink& link() { return *link_; }
  void flushed() { flush_pending_ = false; }

 protected:
  // Loopback output leaves at the end of the current loop callback, so that
  // everything produced meanwhile packs into few frames.
  void request_flush() override {
    if (!flush_pending_) {
      flush_pending_ = true;
      flush_list_->push_back(id());
    }
  }

 private:
  std::shared_ptr<LoopbackLink> link_;
  std::vector<std::uint64_t>* flush_list_;
  bool flush_pending_ = false;
};

class Server::Impl {
 public:
  explicit Impl(ServerOptions o) : options(std::move(o)), box(std::make_shared<WakeBox>()) {}
  ~Impl() { teardown(); }

  Status open();
  void run();
  void teardown();

  ServerOptions options;
  std::shared_ptr<WakeBox> box;
  int port = 0;
  std::atomic<bool> ran{false};
  std::mutex thread_mu;
  std::thread thread;  // guarded by thread_mu

 private:
  static int callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len);
  int dispatch(lws* wsi, lws_callback_reasons reason, ConnectionData* data, void* in,
               std::size_t len);
  void on_established(lws* wsi, ConnectionData* data);
  void on_receive(lws* wsi, WsSession& session, const char* in, std::size_t len);
  int on_writeable(WsSession& session);
  void on_closed(ConnectionData* data);
  int serve_http(lws* wsi, ConnectionData* data, const char* path);
  int write_http(lws* wsi, ConnectionData* data);
  void service_wakeups();
  void adopt(std::shared_ptr<LoopbackLink> link);
  void poll_loopback(LoopbackSession& session);
  void flush_loopbacks();
  void begin_shutdown();
  static void on_shutdown_deadline(lws_sorted_usec_list_t* sul);
  static void on_presence_tick(lws_sorted_usec_list_t* sul);
  // (Re)arms the presence tick `delay` from now.
  void schedule_tick(std::chrono::milliseconds delay);

  std::unique_ptr<ServerStore> store_;
  Metrics metrics_;
  std::unique_ptr<Hub> hub_;
  lws_context* context_ = nullptr;
  lws_protocols protocols_[2]{};
  lws_retry_bo_t idle_policy_{};
  std::uint64_t next_session_id_ = 1;
  std::unordered_map<std::uint64_t, std::unique_ptr<Session>> sessions_;
  std::vector<std::uint64_t> flush_list_;  // loopback sessions with output
  std::string scratch_;                    // the frame being written
  bool shutting_down_ = false;
  bool loop_done_ = false;
  struct Deadline {
    lws_sorted_usec_list_t sul;  // first member: the callback casts back
    Impl* impl;
  } deadline_{}, presence_tick_{};
  std::chrono::steady_clock::time_point tick_at_{};  // when presence_tick_ is due
};

// ---- set-up and teardown ------------------------------------------------------

Status Server::Impl::open() {
  if (options.max_frame < 1024 || options.max_frame > (64u << 20)) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("max frame {} is not within 1024-{}", options.max_frame, 64u << 20));
  }
  if (options.data_dir.empty()) {
    return Status(StatusCode::invalid_argument, "the data directory is not set");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return Status(StatusCode::io_error, fmt::format("cannot create data directory \"{}\": {}",
                                                    options.data_dir, ec.message()));
  }
  const std::filesystem::path db_path = std::filesystem::path(options.data_dir) / "server.db";
  auto store = ServerStore::open(db_path.string(), options.full_sync);
  if (!store) return store.status();
  // The database holds the franking key (and everyone's messages): owner
  // only. SQLite gives its WAL and shm files the database file's mode.
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::path file = db_path;
    file += suffix;
    std::filesystem::permissions(file,
                                 std::filesystem::perms::owner_read |
                                     std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::replace, ec);
    if (ec && std::filesystem::exists(file)) {
      log("warning", "cannot make \"{}\" owner-only: {}", file.string(), ec.message());
    }
    ec.clear();
  }
  store_ = std::move(*store);
  hub_ = std::make_unique<Hub>(*store_, metrics_, options.public_key, options.max_frame);
  hub_->set_tick_hook([this] {
    // A change to publish or a new timer: tick within kPresenceTick.
    if (presence_tick_.impl == nullptr || shutting_down_) return;
    if (tick_at_ > std::chrono::steady_clock::now() + Hub::kPresenceTick) {
      schedule_tick(Hub::kPresenceTick);
    }
  });
  if (Status s = hub_->load(); !s.ok()) return s;
  WordFilter filter;
  if (!options.filter_file.empty()) {
    auto loaded = WordFilter::load(options.filter_file);
    if (!loaded) return loaded.status();
    filter = std::move(*loaded);
  }
  hub_->set_moderation(std::move(filter), RateLimiter(options.rate_per_s, options.rate_burst));
  Hub::PresenceConfig presence;
  presence.grace = options.presence_grace;
  presence.away_after = options.away_after;
  presence.max_members = options.presence_max_members;
  hub_->set_presence_config(presence);
  hub_->set_doc_unload_after(options.doc_unload_after);

  static std::once_flag log_once;
  std::call_once(log_once, [] { lws_set_log_level(LLL_ERR | LLL_WARN, emit_lws_log); });

  protocols_[0].name = wire::kSubprotocol;
  protocols_[0].callback = &Impl::callback;
  protocols_[0].per_session_data_size = sizeof(ConnectionData);
  protocols_[0].rx_buffer_size = kRxBufferSize;
  protocols_[0].user = this;
  protocols_[0].tx_packet_size = options.max_frame + LWS_PRE + 16;

  // Peers that vanish without closing are found by pings when idle: pinged
  // after half the dead timeout of silence, closed after all of it.
  if (options.dead_timeout_s < 2 || options.dead_timeout_s > 3600) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("dead timeout {} s is not within 2-3600", options.dead_timeout_s));
  }
  idle_policy_.secs_since_valid_ping = static_cast<std::uint16_t>(options.dead_timeout_s / 2);
  idle_policy_.secs_since_valid_hangup = static_cast<std::uint16_t>(options.dead_timeout_s);

  lws_context_creation_info info{};
  info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.user = this;
  info.server_string = "parley-server";
  context_ = lws_create_context(&info);
  if (context_ == nullptr) return Status(StatusCode::internal, "cannot create the event loop");

  lws_context_creation_info vinfo{};
  vinfo.vhost_name = "parley";
  vinfo.port = options.listen ? options.port : CONTEXT_PORT_NO_LISTEN;
  bool any = options.host.empty() || options.host == "*";
  vinfo.iface = options.listen && !any ? options.host.c_str() : nullptr;
  vinfo.protocols = protocols_;
  vinfo.retry_and_idle_policy = &idle_policy_;
  vinfo.server_string = "parley-server";
  lws_vhost* vhost = lws_create_vhost(context_, &vinfo);
  if (vhost == nullptr) {
    return Status(StatusCode::io_error,
                  fmt::format("cannot listen on {}:{}", options.host, options.port));
  }
  port = options.listen ? lws_get_vhost_listen_port(vhost) : 0;
  std::lock_guard lock(box->mu);
  box->context = context_;
  return Status();
}

void Server::Impl::run() {
  if (ran.exchange(true)) return;
  deadline_.impl = this;
  presence_tick_.impl = this;
  schedule_tick(Hub::kPresenceTick);
  while (!loop_done_) {
    if (lws_service(context_, 0) < 0) {
      log("error", "event loop failed; stopping");
      break;
    }
  }
  teardown();
  log("info", "server stopped");
}

void Server::Impl::teardown() {
  std::vector<std::shared_ptr<LoopbackLink>> late;
  {
    std::lock_guard lock(box->mu);
    box->context = nullptr;
    box->accepting = false;
    late.swap(box->new_links);
  }
  for (auto& link : late)
    link->close_from_server(wire::close_code::kGoingAway, code::kShuttingDown);
  if (context_ != nullptr) {
    lws_sul_cancel(&deadline_.sul);
    lws_sul_cancel(&presence_tick_.sul);
    // Closes the remaining WebSocket sessions through on_closed.
    lws_context_destroy(context_);
    context_ = nullptr;
  }
  for (auto& [id, session] : sessions_) {
    if (auto* loopback = dynamic_cast<LoopbackSession*>(session.get())) {
      loopback->link().close_from_server(wire::close_code::kGoingAway, code::kShuttingDown);
    }
    if (hub_) hub_->on_close(*session);
  }
  sessions_.clear();
  hub_.reset();
  store_.reset();  // closes the database
}

// ---- the loop's callback --------------------------------------------------------

int Server::Impl::callback(lws* wsi, lws_callback_reasons reason, void* user, void* in,
                           std::size_t len) {
  const lws_protocols* protocol = wsi != nullptr ? lws_get_protocol(wsi) : nullptr;
  auto* impl = protocol != nullptr ? static_cast<Impl*>(protocol->user) : nullptr;
  if (impl == nullptr || impl->context_ == nullptr) {
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
  int rc = impl->dispatch(wsi, reason, static_cast<ConnectionData*>(user), in, len);
  impl->flush_loopbacks();
  if (impl->shutting_down_ && impl->sessions_.empty()) impl->loop_done_ = true;
  return rc;
}

int Server::Impl::dispatch(lws* wsi, lws_callback_reasons reason, ConnectionData* data, void* in,
                           std::size_t len) {
  switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
      if (data == nullptr) return -1;
      on_established(wsi, data);
      return 0;
    case LWS_CALLBACK_RECEIVE:
      if (data == nullptr || data->session == nullptr) return -1;
      on_receive(wsi, *data->session, static_cast<const char*>(in), len);
      return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
      if (data == nullptr || data->session == nullptr) return -1;
      return on_writeable(*data->session);
    case LWS_CALLBACK_CLOSED:
      on_closed(data);
      return 0;
    case LWS_CALLBACK_HTTP:
      return serve_http(wsi, data, static_cast<const char*>(in));
    case LWS_CALLBACK_HTTP_WRITEABLE:
      return write_http(wsi, data);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
      if (data != nullptr) {
        delete data->http;
        data->http = nullptr;
      }
      return lws_callback_http_dummy(wsi, reason, data, in, len);
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
      service_wakeups();
      return 0;
    default:
      return lws_callback_http_dummy(wsi, reason, data, in, len);
  }
}

// ---- WebSocket sessions ---------------------------------------------------------

void Server::Impl::on_established(lws* wsi, ConnectionData* data) {
  int fd = lws_get_socket_fd(wsi);
  int one = 1;
  if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto session = std::make_unique<WsSession>(next_session_id_++, wsi, options.max_frame,
                                             options.max_queued_bytes);
  WsSession& s = *session;
  data->session = &s;
  sessions_.emplace(s.id(), std::move(session));
  hub_->on_open(s);
  if (shutting_down_) {
    s.close(wire::close_code::kGoingAway, code::kShuttingDown);
    return;
  }
  lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, kAuthTimeoutSeconds);
}

void Server::Impl::on_receive(lws* wsi, WsSession& s, const char* in, std::size_t len) {
  metrics_.bytes_received_total += len;  // every payload byte, kept or not
  switch (s.rx().add(in, len, lws_frame_is_binary(wsi) != 0, lws_is_final_fragment(wsi) != 0)) {
    case FrameAssembler::Outcome::partial:
      return;
    case FrameAssembler::Outcome::text:
      hub_->on_frame(s, s.rx().text());
      break;
    case FrameAssembler::Outcome::binary:
      hub_->on_bad_frame(s, code::kBinaryFrame,
                         "binary frames are not part of parley.v1: send JSON text frames");
      break;
    case FrameAssembler::Outcome::too_large:
      hub_->on_bad_frame(s, code::kFrameTooLarge,
                         fmt::format("frame is larger than {} bytes", options.max_frame));
      break;
  }
  if (s.auth_timeout_armed && s.authenticated()) {
    s.auth_timeout_armed = false;
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
  }
}

int Server::Impl::on_writeable(WsSession& s) {
  if (s.next_frame(&scratch_, LWS_PRE)) {
    std::size_t size = scratch_.size() - LWS_PRE;
    auto* payload = reinterpret_cast<unsigned char*>(scratch_.data()) + LWS_PRE;
    if (lws_write(s.wsi(), payload, size, LWS_WRITE_TEXT) < 0) return -1;
    ++metrics_.frames_sent_total;
    metrics_.bytes_sent_total += size;
    // One write per callback: ask again for the rest (or for the close).
    if (s.has_output() || s.closing()) lws_callback_on_writable(s.wsi());
    return 0;
  }
  if (s.closing()) {
    const std::string& reason = s.close_reason();
    lws_close_reason(s.wsi(), static_cast<lws_close_status>(s.close_code()),
                     reinterpret_cast<unsigned char*>(const_cast<char*>(reason.data())),
                     reason.size());
    return -1;
  }
  return 0;
}

void Server::Impl::on_closed(ConnectionData* data) {
  if (data == nullptr || data->session == nullptr) return;
  WsSession* s = data->session;
  data->session = nullptr;
  hub_->on_close(*s);
  sessions_.erase(s->id());
}

// ---- HTTP -------------------------------------------------------------------------

int Server::Impl::serve_http(lws* wsi, ConnectionData* data, const char* path) {
  if (data == nullptr) return -1;
  ++metrics_.http_requests_total;
  auto response = std::make_unique<HttpResponse>(route_http(path != nullptr ? path : "", metrics_));
  unsigned char headers[LWS_PRE + 512];
  unsigned char* start = headers + LWS_PRE;
  unsigned char* p = start;
  unsigned char* end = headers + sizeof headers - 1;
  if (lws_add_http_common_headers(wsi, static_cast<unsigned>(response->status),
                                  response->content_type.c_str(), response->body.size(), &p, end) ||
      lws_finalize_write_http_header(wsi, start, &p, end)) {
    return 1;
  }
  delete data->http;
  data->http = response.release();
  lws_callback_on_writable(wsi);
  return 0;
}

int Server::Impl::write_http(lws* wsi, ConnectionData* data) {
  if (data == nullptr || data->http == nullptr) return 0;
  std::unique_ptr<HttpResponse> response(data->http);
  data->http = nullptr;
  std::string buffer(LWS_PRE, '\0');
  buffer += response->body;
  if (lws_write(wsi, reinterpret_cast<unsigned char*>(buffer.data()) + LWS_PRE,
                response->body.size(), LWS_WRITE_HTTP_FINAL) < 0) {
    return -1;
  }
  return lws_http_transaction_completed(wsi) ? -1 : 0;
}

// ---- loopback links and wake-ups ------------------------------------------------

void Server::Impl::service_wakeups() {
  std::vector<std::shared_ptr<LoopbackLink>> links;
  std::vector<std::uint64_t> woken;
  bool stop = false;
  {
    std::lock_guard lock(box->mu);
    links.swap(box->new_links);
    woken.assign(box->woken.begin(), box->woken.end());
    box->woken.clear();
    stop = box->stop;
  }
  for (auto& link : links) adopt(std::move(link));
  for (std::uint64_t id : woken) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) continue;
    if (auto* loopback = dynamic_cast<LoopbackSession*>(it->second.get())) poll_loopback(*loopback);
  }
  if (stop) begin_shutdown();
}

void Server::Impl::adopt(std::shared_ptr<LoopbackLink> link) {
  std::uint64_t id = next_session_id_++;
  auto session = std::make_unique<LoopbackSession>(id, link, options.max_frame,
                                                   options.max_queued_bytes, &flush_list_);
  LoopbackSession& s = *session;
  sessions_.emplace(id, std::move(session));
  link->set_server_wake([box = box, id] {
    std::lock_guard lock(box->mu);
    if (box->context == nullptr) return;
    box->woken.insert(id);
    box->wake_loop();
  });
  hub_->on_open(s);
  if (shutting_down_) {
    s.close(wire::close_code::kGoingAway, code::kShuttingDown);
    return;
  }
  poll_loopback(s);
}

void Server::Impl::poll_loopback(LoopbackSession& s) {
  std::vector<std::string> frames;
  bool open = s.link().take_from_client(&frames);
  for (const std::string& frame : frames) {
    metrics_.bytes_received_total += frame.size();
    if (frame.size() > options.max_frame) {
      hub_->on_bad_frame(s, code::kFrameTooLarge,
                         fmt::format("frame is larger than {} bytes", options.max_frame));
    } else {
      hub_->on_frame(s, frame);
    }
  }
  if (!open) {
    hub_->on_close(s);
    sessions_.erase(s.id());  // a pending flush finds it gone
  }
}

void Server::Impl::flush_loopbacks() {
  while (!flush_list_.empty()) {
    std::vector<std::uint64_t> ids;
    ids.swap(flush_list_);
    for (std::uint64_t id : ids) {
      auto it = sessions_.find(id);
      if (it == sessions_.end()) continue;
      auto& s = static_cast<LoopbackSession&>(*it->second);
      s.flushed();
      std::string frame;
      while (s.next_frame(&frame, 0)) {
        ++metrics_.frames_sent_total;
        metrics_.bytes_sent_total += frame.size();
        s.link().send_to_client(std::move(frame));
        frame = std::string();
      }
      if (s.closing()) {
        s.link().close_from_server(s.close_code(), s.close_reason());
        hub_->on_close(s);
        sessions_.erase(it);
      }
    }
  }
}

// ---- shutdown -------------------------------------------------------------------

void Server::Impl::begin_shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  {
    std::lock_guard lock(box->mu);
    box->accepting = false;
  }
  log("info", "shutting down: closing {} sessions", sessions_.size());
  for (auto& [id, session] : sessions_) {
    session->close(wire::close_code::kGoingAway, code::kShuttingDown);
  }
  // Sessions that cannot take their close in time are dropped.
  lws_sul_schedule(context_, 0, &deadline_.sul, &Impl::on_shutdown_deadline, kShutdownGrace);
}

void Server::Impl::on_shutdown_deadline(lws_sorted_usec_list_t* sul) {
  Impl* impl = reinterpret_cast<Deadline*>(sul)->impl;
  if (!impl->sessions_.empty()) {
    log("warning", "shutdown: dropping {} sessions that did not close in time",
        impl->sessions_.size());
  }
  impl->loop_done_ = true;
  lws_cancel_service(impl->context_);  // end this pass's wait at once
}

void Server::Impl::on_presence_tick(lws_sorted_usec_list_t* sul) {
  Impl* impl = reinterpret_cast<Deadline*>(sul)->impl;
  if (impl->shutting_down_) return;
  impl->hub_->tick();
  impl->flush_loopbacks();
  impl->schedule_tick(impl->hub_->next_tick_delay());
}

void Server::Impl::schedule_tick(std::chrono::milliseconds delay) {
  tick_at_ = std::chrono::steady_clock::now() + delay;
  lws_sul_schedule(context_, 0, &presence_tick_.sul, &Impl::on_presence_tick,
                   std::chrono::duration_cast<std::chrono::microseconds>(delay).count());
}

// ---- Server ---------------------------------------------------------------------

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Server>> Server::create(ServerOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  if (Status s = impl->open(); !s.ok()) return s;
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::~Server() {
  stop();
  // If the loop never ran, ~Impl closes what open() opened.
}

int Server::port() const { return impl_->port; }

void Server::run() { impl_->run(); }

void Server::start() {
  std::lock_guard lock(impl_->thread_mu);
  if (impl_->thread.joinable() || impl_->ran.load()) return;
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

void Server::stop() {
  {
    std::lock_guard lock(impl_->box->mu);
    impl_->box->stop = true;
    impl_->box->wake_loop();
  }
  std::lock_guard lock(impl_->thread_mu);
  if (impl_->thread.joinable() && impl_->thread.get_id() != std::this_thread::get_id()) {
    impl_->thread.join();
  }
}

transport::LoopbackAcceptor Server::loopback_acceptor() {
  return [box = impl_->box](std::shared_ptr<LoopbackLink> link) {
    {
      std::lock_guard lock(box->mu);
      if (box->context != nullptr && box->accepting) {
        box->new_links.push_back(std::move(link));
        box->wake_loop();
        return;
      }
    }
    link->close_from_server(wire::close_code::kGoingAway, code::kShuttingDown);
  };
}

}  // namespace parley::server
