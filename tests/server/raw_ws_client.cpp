#include "raw_ws_client.hpp"

#include <libwebsockets.h>

#include <algorithm>
#include <deque>

namespace parley::test {

struct RawWsClient::State {
  struct Outgoing {
    std::string bytes;
    lws_write_protocol flags;
  };
  struct Timer {
    lws_sorted_usec_list_t sul;  // first member: on_timer casts back
    State* state;
  };

  lws_context* context = nullptr;
  lws* wsi = nullptr;
  lws_protocols protocols[2]{};
  bool established = false;
  bool closed = false;
  int close_code = 0;
  std::string close_reason;
  std::deque<Outgoing> outgoing;
  std::string partial;
  std::deque<std::string> inbox;
  Timer timer{};

  static int callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len);
  // Only ends the service wait. lws may be past its sul pass when the timer
  // fires and would then sleep until its own next timer: cancel that wait.
  static void on_timer(lws_sorted_usec_list_t* sul) {
    State* state = reinterpret_cast<Timer*>(sul)->state;
    if (state->context != nullptr) lws_cancel_service(state->context);
  }

  // Services the loop until done() or the deadline.
  template <typename Done>
  bool pump(Done done, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    timer.state = this;
    while (!done()) {
      auto left = std::chrono::duration_cast<std::chrono::microseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      // The timer bounds the wait of lws_service, which returns after each pass.
      // lws waits in whole milliseconds and would sleep through a shorter timer.
      lws_sul_cancel(&timer.sul);
      lws_sul_schedule(context, 0, &timer.sul, &State::on_timer,
                       std::max<lws_usec_t>(left.count(), 1000));
      lws_service(context, 0);
    }
    lws_sul_cancel(&timer.sul);
    return done();
  }

  bool send_all(std::vector<Outgoing> frames) {
    if (closed || wsi == nullptr) return false;
    for (auto& f : frames) outgoing.push_back(std::move(f));
    lws_callback_on_writable(wsi);
    return pump([&] { return outgoing.empty() || closed; }, std::chrono::seconds(10)) &&
           outgoing.empty();
  }
};

int RawWsClient::State::callback(lws* wsi, lws_callback_reasons reason, void*, void* in,
                                 std::size_t len) {
  auto* s = wsi != nullptr ? static_cast<State*>(lws_context_user(lws_get_context(wsi))) : nullptr;
  if (s == nullptr) return 0;
  switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      s->established = true;
      break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_CLOSED:
      s->closed = true;
      s->wsi = nullptr;
      break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
      s->partial.append(static_cast<const char*>(in), len);
      if (lws_is_final_fragment(wsi)) {
        s->inbox.push_back(std::move(s->partial));
        s->partial.clear();
      }
      break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
      if (len >= 2) {
        const auto* p = static_cast<const unsigned char*>(in);
        s->close_code = (p[0] << 8) | p[1];
        s->close_reason.assign(static_cast<const char*>(in) + 2, len - 2);
      }
      break;
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
      if (s->outgoing.empty()) break;
      Outgoing frame = std::move(s->outgoing.front());
      s->outgoing.pop_front();
      std::string buffer(LWS_PRE, '\0');
      buffer += frame.bytes;
      if (lws_write(wsi, reinterpret_cast<unsigned char*>(buffer.data()) + LWS_PRE,
                    frame.bytes.size(), frame.flags) < 0) {
        return -1;
      }
      if (!s->outgoing.empty()) lws_callback_on_writable(wsi);
      break;
    }
    default:
      break;
  }
  return 0;
}

RawWsClient::RawWsClient(std::unique_ptr<State> state) : s_(std::move(state)) {}

RawWsClient::~RawWsClient() {
  if (s_->context != nullptr) {
    lws_sul_cancel(&s_->timer.sul);
    lws_context_destroy(s_->context);
  }
}

std::unique_ptr<RawWsClient> RawWsClient::connect(int port, const std::string& subprotocol,
                                                  std::chrono::milliseconds timeout) {
  auto state = std::make_unique<State>();
  State* s = state.get();
  s->protocols[0].name = "raw-client";
  s->protocols[0].callback = &State::callback;
  s->protocols[0].rx_buffer_size = 4096;

  lws_context_creation_info info{};
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = s->protocols;
  info.user = s;
  s->context = lws_create_context(&info);
  std::unique_ptr<RawWsClient> client(new RawWsClient(std::move(state)));
  if (s->context == nullptr) return nullptr;

  lws_client_connect_info ci{};
  ci.context = s->context;
  ci.address = "127.0.0.1";
  ci.port = port;
  ci.path = "/";
  ci.host = "127.0.0.1";
  ci.origin = "127.0.0.1";
  ci.protocol = subprotocol.empty() ? nullptr : subprotocol.c_str();
  ci.local_protocol_name = "raw-client";
  ci.pwsi = &s->wsi;
  if (lws_client_connect_via_info(&ci) == nullptr) return nullptr;
  if (!s->pump([&] { return s->established || s->closed; }, timeout) || !s->established) {
    return nullptr;
  }
  return client;
}

bool RawWsClient::send_text(const std::string& bytes) {
  return s_->send_all({{bytes, LWS_WRITE_TEXT}});
}

bool RawWsClient::send_binary(const std::string& bytes) {
  return s_->send_all({{bytes, LWS_WRITE_BINARY}});
}

bool RawWsClient::send_fragments(const std::vector<std::string>& parts) {
  std::vector<State::Outgoing> frames;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    int flags = i == 0 ? LWS_WRITE_TEXT : LWS_WRITE_CONTINUATION;
    if (i + 1 < parts.size()) flags |= LWS_WRITE_NO_FIN;
    frames.push_back({parts[i], static_cast<lws_write_protocol>(flags)});
  }
  return s_->send_all(std::move(frames));
}

std::optional<std::string> RawWsClient::receive(std::chrono::milliseconds timeout) {
  s_->pump([&] { return !s_->inbox.empty() || s_->closed; }, timeout);
  if (s_->inbox.empty()) return std::nullopt;
  std::string frame = std::move(s_->inbox.front());
  s_->inbox.pop_front();
  return frame;
}

bool RawWsClient::wait_closed(std::chrono::milliseconds timeout) {
  return s_->pump([&] { return s_->closed; }, timeout);
}

bool RawWsClient::closed() const { return s_->closed; }
int RawWsClient::close_code() const { return s_->close_code; }
const std::string& RawWsClient::close_reason() const { return s_->close_reason; }

}  // namespace parley::test
