#include "transport/websocket.hpp"

#include <libwebsockets.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include <fmt/format.h>

namespace parley::transport {

struct WebSocketTransport::Timer {
  lws_sorted_usec_list_t sul;  // first member: on_timer casts back to Timer
  lws_context* context = nullptr;
};

namespace {

int callback(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in,
             std::size_t len) {
  (void)user;
  auto* self = static_cast<WebSocketTransport*>(lws_get_opaque_user_data(wsi));
  if (self == nullptr) return lws_callback_http_dummy(wsi, reason, user, in, len);
  return self->on_lws_event(wsi, static_cast<int>(reason), in, len);
}

// The timer only has to end the service wait. If it fires while lws is
// already computing its next wait, lws would then sleep until its own next
// timer (up to 30 s); cancelling the service makes the wait end at once.
void on_timer(lws_sorted_usec_list_t* sul) {
  auto* timer = reinterpret_cast<WebSocketTransport::Timer*>(sul);
  if (timer->context != nullptr) lws_cancel_service(timer->context);
}

struct LogInit {
  LogInit() { lws_set_log_level(LLL_ERR, nullptr); }
};

}  // namespace

WebSocketTransport::WebSocketTransport(WebSocketOptions options)
    : options_(options), timer_(std::make_unique<Timer>()) {
  std::memset(&timer_->sul, 0, sizeof timer_->sul);
}

WebSocketTransport::~WebSocketTransport() {
  if (context_ != nullptr) {
    wake_context_ = nullptr;
    lws_sul_cancel(&timer_->sul);
    if (wsi_ != nullptr) lws_set_opaque_user_data(wsi_, nullptr);
    lws_context_destroy(context_);
  }
}

bool WebSocketTransport::ensure_context() {
  if (context_ != nullptr) return true;
  static LogInit log_init;
  static const lws_protocols protocols[] = {
      {"parley-client", callback, 0, 0, 0, nullptr, 0},
      {nullptr, nullptr, 0, 0, 0, nullptr, 0},
  };
  lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  info.gid = -1;
  info.uid = -1;
  info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  context_ = lws_create_context(&info);
  wake_context_ = context_;
  timer_->context = context_;
  return context_ != nullptr;
}

void WebSocketTransport::connect(const std::string& url, const std::string& subprotocol,
                                 sys::TransportHandler* handler) {
  handler_ = handler;
  subprotocol_ = subprotocol;
  open_ = false;
  closing_ = false;
  outgoing_.clear();
  incoming_.clear();
  incoming_overflow_ = false;
  peer_close_code_ = 0;
  peer_close_reason_.clear();
  if (!ensure_context()) {
    pending_failure_ = true;
    pending_failure_status_ = Status(StatusCode::internal, "cannot create libwebsockets context");
    return;
  }
  std::vector<char> buf(url.begin(), url.end());
  buf.push_back('\0');
  const char* scheme = nullptr;
  const char* address = nullptr;
  const char* path = nullptr;
  int port = 0;
  if (lws_parse_uri(buf.data(), &scheme, &address, &port, &path) != 0 ||
      (std::strcmp(scheme, "ws") != 0 && std::strcmp(scheme, "wss") != 0)) {
    pending_failure_ = true;
    pending_failure_status_ =
        Status(StatusCode::invalid_argument,
               fmt::format("server url \"{}\": expected ws://host:port/ or wss://host:port/", url),
               "invalid_url");
    return;
  }
  bool tls = std::strcmp(scheme, "wss") == 0;
  if (port == 0 || (port == 80 && url.find(":80") == std::string::npos && tls)) port = tls ? 443 : 80;
  host_ = address;
  path_ = std::string("/") + path;

  lws_client_connect_info info;
  std::memset(&info, 0, sizeof info);
  info.context = context_;
  info.address = host_.c_str();
  info.port = port;
  info.path = path_.c_str();
  info.host = host_.c_str();
  info.origin = host_.c_str();
  info.protocol = subprotocol_.c_str();
  info.ssl_connection = tls ? LCCSCF_USE_SSL : 0;
  info.opaque_user_data = this;
  info.pwsi = &wsi_;
  connect_started_ = std::chrono::steady_clock::now();
  if (lws_client_connect_via_info(&info) == nullptr) {
    // The error callback may already have run and reported; if not, report here.
    if (!pending_failure_) {
      pending_failure_ = true;
      pending_failure_status_ =
          Status(StatusCode::offline, fmt::format("cannot connect to {}", url), "connect_failed");
    }
    wsi_ = nullptr;
  }
}

void WebSocketTransport::send(std::string frame) {
  if (wsi_ == nullptr || closing_) return;
  outgoing_.push_back(std::move(frame));
  if (open_) lws_callback_on_writable(wsi_);
}

void WebSocketTransport::close(int code, const std::string& reason) {
  if (wsi_ == nullptr) return;
  closing_ = true;
  close_code_ = code;
  close_reason_ = reason.substr(0, 120);
  lws_callback_on_writable(wsi_);
}

void WebSocketTransport::poll(std::chrono::milliseconds max_wait) {
  if (pending_failure_) {
    pending_failure_ = false;
    if (handler_ != nullptr) handler_->on_closed(pending_failure_status_);
    return;
  }
  if (context_ == nullptr) {
    // Return at once after creating the context: a wake() that came before it
    // existed was lost, so let the caller look at its queue again.
    if (!ensure_context()) std::this_thread::sleep_for(std::min(max_wait, std::chrono::milliseconds(1000)));
    return;
  }
  max_wait = std::min(max_wait, heartbeat());
  // A zero delay would not be scheduled at all (and lws would sleep until its
  // own next timer), so wait at least 1 ms.
  lws_usec_t wait_us = std::max<lws_usec_t>(static_cast<lws_usec_t>(max_wait.count()) * LWS_US_PER_MS, 1000);
  lws_sul_schedule(context_, 0, &timer_->sul, on_timer, wait_us);
  lws_service(context_, 0);
  lws_sul_cancel(&timer_->sul);
  if (pending_failure_) {
    pending_failure_ = false;
    if (handler_ != nullptr) handler_->on_closed(pending_failure_status_);
  }
}

std::chrono::milliseconds WebSocketTransport::heartbeat() {
  using namespace std::chrono;
  constexpr milliseconds kIdle(3600 * 1000);
  if (wsi_ == nullptr || closing_) return kIdle;
  auto now = steady_clock::now();
  if (!open_) {
    // Connecting: libwebsockets has its own timeouts, but bound the attempt
    // here too, so that no path through lws can leave the client connecting
    // forever.
    auto limit = seconds(options_.hangup_after_seconds);
    if (now - connect_started_ >= limit) {
      lws_set_opaque_user_data(wsi_, nullptr);
      lws_set_timeout(wsi_, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
      finish(Status(StatusCode::offline,
                    fmt::format("cannot connect: no answer in {} s", options_.hangup_after_seconds),
                    "connect_failed"));
      return milliseconds(0);
    }
    return duration_cast<milliseconds>(limit - (now - connect_started_)) + milliseconds(1);
  }
  auto silent = now - last_rx_;
  auto ping_after = seconds(options_.ping_after_seconds);
  auto hangup_after = seconds(options_.hangup_after_seconds);
  if (silent >= hangup_after) {
    // Nothing heard, not even a pong: the peer or the path is dead. Drop the
    // connection now rather than wait for TCP or a close handshake.
    lws_set_opaque_user_data(wsi_, nullptr);
    lws_set_timeout(wsi_, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    finish(Status(StatusCode::offline,
                  fmt::format("no answer from the server for {} s", options_.hangup_after_seconds),
                  "heartbeat_timeout"));
    return milliseconds(0);
  }
  if (silent >= ping_after && !ping_outstanding_) {
    ping_outstanding_ = true;
    ping_due_ = true;
    lws_callback_on_writable(wsi_);
  }
  auto next = silent < ping_after ? ping_after - silent : hangup_after - silent;
  return duration_cast<milliseconds>(next) + milliseconds(1);
}

void WebSocketTransport::wake() {
  lws_context* ctx = wake_context_.load();
  if (ctx != nullptr) lws_cancel_service(ctx);
}

void WebSocketTransport::finish(const Status& reason) {
  wsi_ = nullptr;
  open_ = false;
  closing_ = false;
  outgoing_.clear();
  // Reported from poll() after lws_service returns, never from inside lws.
  pending_failure_ = true;
  pending_failure_status_ = reason;
}

int WebSocketTransport::on_lws_event(struct lws* wsi, int reason_int, void* in, std::size_t len) {
  auto reason = static_cast<lws_callback_reasons>(reason_int);
  switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
      std::string why = in != nullptr ? std::string(static_cast<const char*>(in), len) : "";
      if (why.empty() && in != nullptr) why = static_cast<const char*>(in);
      lws_set_opaque_user_data(wsi, nullptr);
      finish(Status(StatusCode::offline,
                    fmt::format("cannot connect: {}", why.empty() ? "connection failed" : why),
                    "connect_failed"));
      return 0;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      open_ = true;
      last_rx_ = std::chrono::steady_clock::now();
      ping_outstanding_ = false;
      if (handler_ != nullptr) handler_->on_open();
      if (!outgoing_.empty() || closing_) lws_callback_on_writable(wsi);
      return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
      last_rx_ = std::chrono::steady_clock::now();
      ping_outstanding_ = false;
      return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
      last_rx_ = std::chrono::steady_clock::now();
      ping_outstanding_ = false;
      if (lws_is_first_fragment(wsi)) {
        incoming_.clear();
        incoming_overflow_ = false;
      }
      if (lws_frame_is_binary(wsi)) {
        // parley.v1 is text only; a binary frame from the server is a protocol violation.
        closing_ = true;
        close_code_ = 1003;
        close_reason_ = "binary_frame";
        lws_callback_on_writable(wsi);
        return 0;
      }
      if (!incoming_overflow_) {
        if (incoming_.size() + len > options_.max_incoming_frame) {
          incoming_overflow_ = true;
          incoming_.clear();
          closing_ = true;
          close_code_ = 1009;
          close_reason_ = "frame_too_large";
          lws_callback_on_writable(wsi);
        } else {
          incoming_.append(static_cast<const char*>(in), len);
        }
      }
      if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0 &&
          !incoming_overflow_) {
        std::string frame;
        frame.swap(incoming_);
        if (handler_ != nullptr) handler_->on_frame(frame);
      }
      return 0;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
      if (closing_) {
        lws_close_reason(wsi, static_cast<lws_close_status>(close_code_),
                         reinterpret_cast<unsigned char*>(close_reason_.data()),
                         close_reason_.size());
        return -1;
      }
      if (ping_due_) {
        ping_due_ = false;
        unsigned char ping[LWS_PRE + 1];
        if (lws_write(wsi, ping + LWS_PRE, 0, LWS_WRITE_PING) < 0) return -1;
        if (!outgoing_.empty()) lws_callback_on_writable(wsi);
        return 0;
      }
      if (outgoing_.empty()) return 0;
      std::string& frame = outgoing_.front();
      std::vector<unsigned char> buf(LWS_PRE + frame.size());
      std::memcpy(buf.data() + LWS_PRE, frame.data(), frame.size());
      int n = lws_write(wsi, buf.data() + LWS_PRE, frame.size(), LWS_WRITE_TEXT);
      if (n < static_cast<int>(frame.size())) return -1;
      outgoing_.pop_front();
      if (!outgoing_.empty()) lws_callback_on_writable(wsi);
      return 0;
    }
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
      if (len >= 2) {
        const auto* p = static_cast<const unsigned char*>(in);
        peer_close_code_ = (p[0] << 8) | p[1];
        peer_close_reason_.assign(reinterpret_cast<const char*>(p + 2), len - 2);
      }
      return 0;
    }
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
      // libwebsockets 4.1 closes a client whose handshake request could not be
      // written ("cws") with only these two callbacks, never CONNECTION_ERROR
      // nor CLIENT_CLOSED. Those clear the opaque pointer, so after them
      // nothing arrives here: this is a connect that failed silently.
      lws_set_opaque_user_data(wsi, nullptr);
      if (wsi == wsi_) {
        finish(Status(StatusCode::offline, "cannot connect: connection closed during the handshake",
                      "connect_failed"));
      }
      return 0;
    case LWS_CALLBACK_CLIENT_CLOSED: {
      lws_set_opaque_user_data(wsi, nullptr);
      Status why;
      if (closing_) {
        why = Status(StatusCode::ok, "closed");
      } else if (peer_close_code_ == 1000) {
        why = Status(StatusCode::ok, "closed by server", peer_close_reason_);
      } else if (peer_close_code_ != 0) {
        std::string r = peer_close_reason_.empty() ? "connection_lost" : peer_close_reason_;
        why = Status(StatusCode::offline,
                     fmt::format("server closed the connection ({} {})", peer_close_code_, r), r);
      } else {
        why = Status(StatusCode::offline, "connection lost", "connection_lost");
      }
      finish(why);
      return 0;
    }
    default:
      return 0;
  }
}

}  // namespace parley::transport
