// The wire protocols parley-bench speaks inside its WebSocket connections:
// Parley (parley_proto.cpp, docs/protocol.md), and, for the comparison peers,
// MQTT 3.1.1 (mqtt.cpp) and the NATS client protocol (nats.cpp). Each is the
// least a publish/subscribe load client needs: connect and authenticate,
// subscribe to one topic, publish a payload, and find the payloads in what the
// server sends back. Payloads are opaque ASCII (payload.hpp).
//
// Use from the Loop's thread only.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "loop.hpp"

namespace parley::loadgen {

class Dialect {
 public:
  virtual ~Dialect() = default;

  // "parley", "mqtt" or "nats".
  virtual const char* name() const = 0;
  // The WebSocket subprotocol offered, or nullptr for none.
  virtual const char* subprotocol() const = 0;
  // Whether frames to the server are binary (else text).
  virtual bool binary() const = 0;

  // The WebSocket is open: say hello (auth, CONNECT). Sink::on_ready follows.
  virtual void on_open(Loop& loop, Conn& c) = 0;
  // Subscribes `c` to `topic`; Sink::on_subscribed follows.
  virtual void subscribe(Loop& loop, Conn& c, const std::string& topic) = 0;
  // Makes `c` able to publish to `topic` (Parley: creates the channel);
  // Sink::on_subscribed follows, possibly from inside this call.
  virtual void prepare_publisher(Loop& loop, Conn& c, const std::string& topic) = 0;
  // Queues one frame that publishes each of `payloads` to `topic`, in order
  // (as a client library that buffers its writes would send them).
  virtual void publish(Loop& loop, Conn& c, const std::string& topic,
                       const std::vector<std::string>& payloads) = 0;
  // Bytes of a WebSocket message from the server; `message_end` on its last piece.
  virtual void on_data(Loop& loop, Conn& c, std::string_view data, bool message_end) = 0;
};

// Parley needs the server's signing key file to mint a token per user.
std::unique_ptr<Dialect> make_parley_dialect(const std::string& key_file, std::string& error);
std::unique_ptr<Dialect> make_mqtt_dialect();
std::unique_ptr<Dialect> make_nats_dialect();

}  // namespace parley::loadgen
