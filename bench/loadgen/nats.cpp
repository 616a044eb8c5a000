// The NATS client protocol (docs.nats.io, "Client Protocol") over the NATS
// server's WebSocket listener (binary frames, no subprotocol), the subset a
// load client needs: the server's INFO, CONNECT without echo or verbose
// replies, SUB, PUB, MSG, PING/PONG both ways, and -ERR. A PING after CONNECT
// and after each SUB makes the server's PONG stand for "accepted" and
// "subscribed": the server handles a connection's commands in order.
// Commands may straddle WebSocket frames, so received bytes are a stream.
#include <charconv>

#include "dialect.hpp"

namespace parley::loadgen {
namespace {

class NatsDialect final : public Dialect {
 public:
  const char* name() const override { return "nats"; }
  const char* subprotocol() const override { return nullptr; }
  bool binary() const override { return true; }

  void on_open(Loop& /*loop*/, Conn& /*c*/) override {}  // the server speaks first (INFO)

  void subscribe(Loop& loop, Conn& c, const std::string& topic) override {
    std::string f = Loop::frame(topic.size() + 32);
    f += "SUB " + topic + ' ' + std::to_string(c.next_id++) + "\r\nPING\r\n";
    loop.send(c, std::move(f));
  }

  void prepare_publisher(Loop& loop, Conn& c, const std::string& /*topic*/) override {
    loop.sink().on_subscribed(c);
  }

  void publish(Loop& loop, Conn& c, const std::string& topic,
               const std::vector<std::string>& payloads) override {
    std::string f = Loop::frame(payloads.size() * (payloads.front().size() + topic.size() + 20));
    for (const std::string& payload : payloads) {
      f += "PUB ";
      f += topic;
      f += ' ';
      f += std::to_string(payload.size());
      f += "\r\n";
      f += payload;
      f += "\r\n";
    }
    loop.send(c, std::move(f));
  }

  void on_data(Loop& loop, Conn& c, std::string_view data, bool /*message_end*/) override {
    c.in.append(data);
    std::size_t pos = 0;
    while (pos < c.in.size()) {
      std::size_t eol = c.in.find("\r\n", pos);
      if (eol == std::string::npos) break;
      std::string_view line(c.in.data() + pos, eol - pos);
      std::size_t next = eol + 2;
      if (line.substr(0, 4) == "MSG ") {
        // MSG <subject> <sid> [reply-to] <#bytes>: the size is the last field.
        std::size_t space = line.rfind(' ');
        std::size_t size = 0;
        std::from_chars(line.data() + space + 1, line.data() + line.size(), size);
        if (c.in.size() < next + size + 2) break;  // the payload has not all arrived
        loop.sink().on_payload(c, std::string_view(c.in.data() + next, size));
        next += size + 2;
      } else if (line == "PING") {
        std::string f = Loop::frame(8);
        f += "PONG\r\n";
        loop.send(c, std::move(f));
      } else if (line == "PONG") {
        if (c.state != ConnState::ready) {
          c.state = ConnState::ready;
          loop.sink().on_ready(c);
        } else {
          loop.sink().on_subscribed(c);
        }
      } else if (line.substr(0, 5) == "INFO ") {
        if (c.state == ConnState::open) {
          std::string f = Loop::frame(128 + c.user.size());
          f += R"(CONNECT {"verbose":false,"pedantic":false,"echo":false,"protocol":1,"name":")";
          f += c.user;
          f += "\"}\r\nPING\r\n";
          loop.send(c, std::move(f));
        }
      } else if (line.substr(0, 4) == "-ERR") {
        loop.sink().on_error(c, line);
      }
      pos = next;
    }
    c.in.erase(0, pos);
  }
};

}  // namespace

std::unique_ptr<Dialect> make_nats_dialect() { return std::make_unique<NatsDialect>(); }

}  // namespace parley::loadgen
