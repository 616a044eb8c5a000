// MQTT 3.1.1 (OASIS standard, 2014) over WebSocket (its section 6: binary
// frames, subprotocol "mqtt"), the subset a QoS 0 load client needs:
// CONNECT with a clean session and no keep-alive, CONNACK, SUBSCRIBE at QoS 0,
// SUBACK, PUBLISH at QoS 0 both ways, and PINGRESP ignored. Control packets
// may straddle WebSocket frames, so received bytes are parsed as a stream.
#include <cstdint>

#include "dialect.hpp"

namespace parley::loadgen {
namespace {

enum PacketType : unsigned {
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kSubscribe = 8,
  kSuback = 9,
  kPingresp = 13,
};

// Fixed header: type and flags, then the "remaining length" in base 128 (section 2.2.3).
void put_header(std::string& f, unsigned type_and_flags, std::size_t remaining) {
  f += static_cast<char>(type_and_flags);
  do {
    auto digit = static_cast<unsigned char>(remaining % 128);
    remaining /= 128;
    if (remaining > 0) digit |= 0x80;
    f += static_cast<char>(digit);
  } while (remaining > 0);
}

// A UTF-8 string field: two bytes of length, then the bytes (section 1.5.3).
void put_string(std::string& f, std::string_view s) {
  f += static_cast<char>((s.size() >> 8) & 0xff);
  f += static_cast<char>(s.size() & 0xff);
  f += s;
}

class MqttDialect final : public Dialect {
 public:
  const char* name() const override { return "mqtt"; }
  const char* subprotocol() const override { return "mqtt"; }
  bool binary() const override { return true; }

  void on_open(Loop& loop, Conn& c) override {
    // Variable header (section 3.1.2): "MQTT", level 4, flags 0x02 (clean
    // session), keep-alive 0 (off); payload: the client identifier.
    std::size_t remaining = 10 + 2 + c.user.size();
    std::string f = Loop::frame(remaining + 5);
    put_header(f, kConnect << 4, remaining);
    put_string(f, "MQTT");
    f += static_cast<char>(4);
    f += static_cast<char>(0x02);
    f += std::string(2, '\0');
    put_string(f, c.user);
    loop.send(c, std::move(f));
  }

  void subscribe(Loop& loop, Conn& c, const std::string& topic) override {
    // Flags 0b0010 are required (section 3.8.1); packet id, then filter + QoS 0.
    std::size_t remaining = 2 + 2 + topic.size() + 1;
    std::string f = Loop::frame(remaining + 5);
    put_header(f, (kSubscribe << 4) | 0x02, remaining);
    std::uint64_t id = c.next_id++ % 65535 + 1;
    f += static_cast<char>((id >> 8) & 0xff);
    f += static_cast<char>(id & 0xff);
    put_string(f, topic);
    f += '\0';
    loop.send(c, std::move(f));
  }

  void prepare_publisher(Loop& loop, Conn& c, const std::string& /*topic*/) override {
    loop.sink().on_subscribed(c);  // anyone connected may publish
  }

  void publish(Loop& loop, Conn& c, const std::string& topic,
               const std::vector<std::string>& payloads) override {
    std::string f = Loop::frame(payloads.size() * (payloads.front().size() + topic.size() + 7));
    for (const std::string& payload : payloads) {
      // QoS 0: no packet identifier (section 3.3.2.2).
      put_header(f, kPublish << 4, 2 + topic.size() + payload.size());
      put_string(f, topic);
      f += payload;
    }
    loop.send(c, std::move(f));
  }

  void on_data(Loop& loop, Conn& c, std::string_view data, bool /*message_end*/) override {
    c.in.append(data);
    std::size_t pos = 0;
    while (true) {
      // Fixed header: one byte, then 1-4 bytes of remaining length.
      if (c.in.size() - pos < 2) break;
      std::size_t remaining = 0;
      std::size_t header = 1;
      bool complete = false;
      for (unsigned shift = 0; header < 5 && pos + header < c.in.size(); shift += 7) {
        auto byte = static_cast<unsigned char>(c.in[pos + header]);
        remaining |= static_cast<std::size_t>(byte & 0x7f) << shift;
        ++header;
        if ((byte & 0x80) == 0) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (header >= 5) {
          loop.sink().on_error(c, "malformed remaining length");
          c.in.clear();
          return;
        }
        break;
      }
      if (c.in.size() - pos - header < remaining) break;
      std::string_view body(c.in.data() + pos + header, remaining);
      on_packet(loop, c, static_cast<unsigned char>(c.in[pos]), body);
      pos += header + remaining;
    }
    c.in.erase(0, pos);
  }

 private:
  static void on_packet(Loop& loop, Conn& c, unsigned char first, std::string_view body) {
    Sink& sink = loop.sink();
    switch (first >> 4) {
      case kConnack:
        if (body.size() >= 2 && body[1] == 0) {
          c.state = ConnState::ready;
          sink.on_ready(c);
        } else {
          sink.on_error(c, "connection refused (CONNACK)");
        }
        return;
      case kSuback:
        if (body.size() >= 3 && static_cast<unsigned char>(body[2]) == 0x80) {
          sink.on_error(c, "subscription refused (SUBACK)");
        } else {
          sink.on_subscribed(c);
        }
        return;
      case kPublish: {
        if (body.size() < 2) return;
        std::size_t topic_len =
            (static_cast<unsigned char>(body[0]) << 8) | static_cast<unsigned char>(body[1]);
        std::size_t skip = 2 + topic_len + (((first >> 1) & 3) != 0 ? 2 : 0);
        if (skip <= body.size()) sink.on_payload(c, body.substr(skip));
        return;
      }
      case kPingresp:
      default:
        return;
    }
  }
};

}  // namespace

std::unique_ptr<Dialect> make_mqtt_dialect() { return std::make_unique<MqttDialect>(); }

}  // namespace parley::loadgen
