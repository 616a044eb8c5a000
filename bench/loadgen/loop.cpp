// The libwebsockets side of parley-bench: one client context, one callback
// for every connection, a queue of frames per connection written one per
// writable callback, and a periodic timer so that scenarios can pace
// publishers and check their progress without threads.
#include "loop.hpp"

#include <libwebsockets.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "dialect.hpp"

namespace parley::loadgen {

namespace {

int callback(lws* wsi, lws_callback_reasons reason, void* /*user*/, void* in, std::size_t len) {
  lws_context* context = lws_get_context(wsi);
  auto* loop = context != nullptr ? static_cast<Loop*>(lws_context_user(context)) : nullptr;
  if (loop == nullptr) return 0;
  return loop->on_event(wsi, static_cast<int>(reason), in, len);
}

const lws_protocols kProtocols[] = {
    // rx_buffer_size: the largest piece of a message handed to one callback.
    {"parley-bench", callback, 0, 65536, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

}  // namespace

bool parse_ws_url(const std::string& url, Target& out) {
  constexpr std::string_view kScheme = "ws://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) return false;
  std::string rest = url.substr(kScheme.size());
  std::size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  out.path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::size_t colon = hostport.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  out.host = hostport.substr(0, colon);
  out.port = std::atoi(hostport.c_str() + colon + 1);
  return out.port > 0 && out.port < 65536;
}

long raise_fd_limit(long needed) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_max != RLIM_INFINITY && static_cast<long>(lim.rlim_max) < needed) {
    rlimit more = lim;
    more.rlim_max = static_cast<rlim_t>(needed);
    more.rlim_cur = static_cast<rlim_t>(needed);
    if (setrlimit(RLIMIT_NOFILE, &more) == 0) return needed;  // allowed: root
  }
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  getrlimit(RLIMIT_NOFILE, &lim);
  return static_cast<long>(lim.rlim_cur);
}

Loop::Loop(Dialect& dialect, Target target, std::size_t max_connections, int source_addresses,
           Sink& sink)
    : dialect_(dialect), target_(std::move(target)), sink_(sink) {
  if (source_addresses > 1) {
    for (int i = 1; i <= source_addresses; ++i) sources_.push_back("127.0.0." + std::to_string(i));
  }
  lws_set_log_level(LLL_ERR, nullptr);
  lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = kProtocols;
  info.gid = -1;
  info.uid = -1;
  info.user = this;
  info.fd_limit_per_thread = static_cast<unsigned int>(max_connections + 64);
  info.timeout_secs = 60;
  info.connect_timeout_secs = 30;
  context_ = lws_create_context(&info);
  conns_.reserve(max_connections);
  if (context_ == nullptr) return;
  // The tick is a timerfd that libwebsockets polls with the sockets: its
  // own timers (lws_sul) wake the loop up to a millisecond early and make it
  // spin until they are due, which would bill a paced publisher a busy core.
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  lws_sock_file_fd_type fd;
  fd.filefd = timer_fd_;
  lws_vhost* vhost = lws_get_vhost_by_name(context_, "default");
  timer_wsi_ = timer_fd_ < 0 || vhost == nullptr
                   ? nullptr
                   : lws_adopt_descriptor_vhost(vhost, LWS_ADOPT_RAW_FILE_DESC, fd,
                                                kProtocols[0].name, nullptr);
  if (timer_wsi_ == nullptr) {
    std::fprintf(stderr, "parley-bench: cannot add a timer to the libwebsockets loop\n");
    if (timer_fd_ >= 0) close(timer_fd_);
    lws_context_destroy(context_);
    context_ = nullptr;
  }
}

Loop::~Loop() {
  // Closes the timerfd too, with the wsi that adopted it.
  if (context_ != nullptr) lws_context_destroy(context_);
}

Conn& Loop::connect(std::string user) {
  conns_.push_back(std::make_unique<Conn>());
  Conn& c = *conns_.back();
  c.index = conns_.size() - 1;
  c.user = std::move(user);
  lws_client_connect_info info;
  std::memset(&info, 0, sizeof info);
  info.context = context_;
  info.address = target_.host.c_str();
  info.port = target_.port;
  info.path = target_.path.c_str();
  info.host = target_.host.c_str();
  info.origin = target_.host.c_str();
  info.protocol = dialect_.subprotocol();
  info.local_protocol_name = kProtocols[0].name;
  info.opaque_user_data = &c;
  if (!sources_.empty()) info.iface = sources_[c.index % sources_.size()].c_str();
  info.pwsi = &c.wsi;
  if (lws_client_connect_via_info(&info) == nullptr && c.state == ConnState::connecting) {
    c.wsi = nullptr;
    c.state = ConnState::failed;
    sink_.on_error(c, "cannot start the connection");
  }
  return c;
}

std::string Loop::frame(std::size_t reserve) {
  std::string f(LWS_PRE, '\0');
  f.reserve(LWS_PRE + reserve);
  return f;
}

void Loop::send(Conn& c, std::string frame) {
  c.out.push_back(std::move(frame));
  if (c.out.size() == 1 && c.wsi != nullptr && c.state != ConnState::connecting) {
    lws_callback_on_writable(c.wsi);
  }
}

void Loop::arm_timer(long interval_us) {
  itimerspec spec{};
  spec.it_interval.tv_sec = interval_us / 1000000;
  spec.it_interval.tv_nsec = (interval_us % 1000000) * 1000;
  spec.it_value = spec.it_interval;
  timerfd_settime(timer_fd_, 0, &spec, nullptr);
}

bool Loop::run(const std::function<bool()>& done, double timeout_s,
               const std::function<void()>& tick, long tick_us) {
  if (context_ == nullptr) return false;
  tick_ = tick;
  // The timer also bounds how long one lws_service call may wait.
  arm_timer(tick_us);
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::microseconds(static_cast<long long>(timeout_s * 1e6));
  bool finished = done();
  while (!finished && std::chrono::steady_clock::now() < deadline) {
    if (lws_service(context_, 0) < 0) break;
    finished = done();
  }
  arm_timer(0);
  tick_ = nullptr;
  return finished;
}

void Loop::close_all() {
  if (context_ == nullptr) return;
  for (auto& c : conns_) {
    if (c->wsi != nullptr) {
      c->out.clear();
      lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
    }
  }
  std::size_t first_open = 0;  // every connection before it is gone
  run(
      [this, &first_open] {
        while (first_open < conns_.size() && conns_[first_open]->wsi == nullptr) ++first_open;
        return first_open == conns_.size();
      },
      10, {}, 20000);
}

int Loop::on_event(lws* wsi, int reason_int, void* in, std::size_t len) {
  auto reason = static_cast<lws_callback_reasons>(reason_int);
  if (wsi == timer_wsi_) {
    if (reason == LWS_CALLBACK_RAW_RX_FILE) {
      std::uint64_t expirations = 0;
      if (read(timer_fd_, &expirations, sizeof expirations) > 0 && tick_) tick_();
    } else if (reason == LWS_CALLBACK_RAW_CLOSE_FILE) {
      timer_wsi_ = nullptr;
    }
    return 0;
  }
  auto* c = static_cast<Conn*>(lws_get_opaque_user_data(wsi));
  if (c == nullptr) return 0;
  switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
      lws_set_opaque_user_data(wsi, nullptr);
      c->wsi = nullptr;
      c->state = ConnState::failed;
      std::string why = in != nullptr ? std::string(static_cast<const char*>(in), len) : "";
      if (why.empty() && in != nullptr) why = static_cast<const char*>(in);
      sink_.on_error(*c, why.empty() ? "connection failed" : why);
      return 0;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      c->state = ConnState::open;
      dialect_.on_open(*this, *c);
      if (!c->out.empty()) lws_callback_on_writable(wsi);
      return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
      dialect_.on_data(*this, *c, std::string_view(static_cast<const char*>(in), len),
                       lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0);
      return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
      if (c->out.empty()) return 0;
      std::string& f = c->out.front();
      std::size_t n = f.size() - LWS_PRE;
      auto* p = reinterpret_cast<unsigned char*>(f.data()) + LWS_PRE;
      int written = lws_write(wsi, p, n, dialect_.binary() ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
      if (written < static_cast<int>(n)) return -1;
      c->out.pop_front();
      if (!c->out.empty()) {
        lws_callback_on_writable(wsi);
      } else {
        sink_.on_drained(*c);
      }
      return 0;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
      lws_set_opaque_user_data(wsi, nullptr);
      c->wsi = nullptr;
      if (c->state == ConnState::connecting) {
        c->state = ConnState::failed;
        sink_.on_error(*c, "closed during the handshake");
      } else {
        c->state = ConnState::closed;
        sink_.on_closed(*c);
      }
      return 0;
    default:
      return 0;
  }
}

}  // namespace parley::loadgen
