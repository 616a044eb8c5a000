// Parley (docs/protocol.md) as a load client speaks it: JSON text frames over
// the "parley.v1" subprotocol. Each connection authenticates with a token it
// mints for its own user with the server's signing key (as the app's backend
// would); a subscriber joins the channel, the publisher creates it and sends
// messages whose text is the payload.
//
// Replies are recognised by scanning for their "type" rather than decoding
// each frame, so that the generator's CPU goes to the connections: message
// events are found by their "text" member, whose value is a payload
// (payload.hpp, ASCII, unescaped). The server's own codec is not used here
// for that reason; bench-smoke checks the results end to end.
#include <chrono>
#include <random>

#include "dialect.hpp"
#include "protocol/token.hpp"

namespace parley::loadgen {
namespace {

constexpr std::string_view kTypeKey = "\"type\":\"";
constexpr std::string_view kTextKey = "\"text\":\"";
constexpr std::string_view kCodeKey = "\"code\":\"";

// The string value that starts at `from` in `frame` (up to the closing quote).
std::string_view value_at(std::string_view frame, std::size_t from) {
  std::size_t end = frame.find('"', from);
  if (end == std::string_view::npos) return {};
  return frame.substr(from, end - from);
}

class ParleyDialect final : public Dialect {
 public:
  explicit ParleyDialect(const token::SigningKey& key) : key_(key) {
    std::random_device rd;
    std::uint64_t run = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    run_prefix_ = hex16(run);
  }

  const char* name() const override { return "parley"; }
  const char* subprotocol() const override { return "parley.v1"; }
  bool binary() const override { return false; }

  void on_open(Loop& loop, Conn& c) override {
    std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    std::string token = token::mint(key_, c.user, 86400, now);
    std::string f = Loop::frame(token.size() + 80);
    f += R"({"type":"auth","rid":)" + std::to_string(c.next_id++) + R"(,"token":")" + token +
         R"(","client":"parley-bench"})";
    loop.send(c, std::move(f));
  }

  void subscribe(Loop& loop, Conn& c, const std::string& topic) override {
    request(loop, c, "join", topic);
  }

  void prepare_publisher(Loop& loop, Conn& c, const std::string& topic) override {
    request(loop, c, "create", topic);
  }

  // Several sends go out as one frame holding a JSON array (docs/protocol.md, "Frames").
  void publish(Loop& loop, Conn& c, const std::string& topic,
               const std::vector<std::string>& payloads) override {
    std::string f =
        Loop::frame(payloads.size() * (payloads.front().size() + topic.size() + 110) + 2);
    if (payloads.size() > 1) f += '[';
    for (std::size_t i = 0; i < payloads.size(); ++i) {
      if (i > 0) f += ',';
      append_send(f, c, topic, payloads[i]);
    }
    if (payloads.size() > 1) f += ']';
    loop.send(c, std::move(f));
  }

  void on_data(Loop& loop, Conn& c, std::string_view data, bool message_end) override {
    if (!message_end) {
      c.in.append(data);
      return;
    }
    if (c.in.empty()) {
      on_frame(loop, c, data);
    } else {
      c.in.append(data);
      on_frame(loop, c, c.in);
      c.in.clear();
    }
  }

 private:
  void append_send(std::string& f, Conn& c, const std::string& topic, std::string_view payload) {
    f += R"({"type":"send","rid":)";
    f += std::to_string(c.next_id);
    f += R"(,"channel":")";
    f += topic;
    f += R"(","id":")";
    f += run_prefix_;
    f += hex16(message_counter_++);
    f += R"(","text":")";
    f += payload;
    f += R"("})";
    ++c.next_id;
  }

  static std::string hex16(std::uint64_t v) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i, v >>= 4) out[static_cast<std::size_t>(i)] = kHex[v & 15];
    return out;
  }

  void request(Loop& loop, Conn& c, const char* type, const std::string& channel) {
    std::string f = Loop::frame(channel.size() + 60);
    f += R"({"type":")" + std::string(type) + R"(","rid":)" + std::to_string(c.next_id++) +
         R"(,"channel":")" + channel + R"("})";
    loop.send(c, std::move(f));
  }

  void on_frame(Loop& loop, Conn& c, std::string_view frame) {
    Sink& sink = loop.sink();
    // Message events: each carries its payload as "text".
    for (std::size_t pos = frame.find(kTextKey); pos != std::string_view::npos;
         pos = frame.find(kTextKey, pos)) {
      pos += kTextKey.size();
      std::string_view text = value_at(frame, pos);
      if (text.substr(0, 3) == "pb ") sink.on_payload(c, text);
      pos += text.size();
    }
    // Replies and anything else with a type; events were handled above.
    for (std::size_t pos = frame.find(kTypeKey); pos != std::string_view::npos;
         pos = frame.find(kTypeKey, pos)) {
      pos += kTypeKey.size();
      std::string_view type = value_at(frame, pos);
      if (type == "ack") {
        sink.on_accepted(c);
      } else if (type == "ok") {
        sink.on_subscribed(c);
      } else if (type == "welcome") {
        c.state = ConnState::ready;
        sink.on_ready(c);
      } else if (type == "error") {
        std::size_t code = frame.find(kCodeKey, pos);
        sink.on_error(c, code == std::string_view::npos ? std::string_view("error")
                                                        : value_at(frame, code + kCodeKey.size()));
      }
    }
  }

  token::SigningKey key_;
  std::string run_prefix_;  // the first half of every message id of this run
  std::uint64_t message_counter_ = 0;
};

}  // namespace

std::unique_ptr<Dialect> make_parley_dialect(const std::string& key_file, std::string& error) {
  auto key = token::read_key_file(key_file);
  if (!key) {
    error = key.status().message();
    return nullptr;
  }
  return std::make_unique<ParleyDialect>(*key);
}

}  // namespace parley::loadgen
