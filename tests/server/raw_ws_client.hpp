// A deliberately low-level WebSocket client for tests, on libwebsockets: it
// sends any bytes as text or binary frames (whole or fragmented) and collects
// the server's messages and its close frame. Nothing is validated, so tests can
// send what a broken or hostile client would.
//
//   auto ws = RawWsClient::connect(port);
//   ws->send_text("{\"type\":\"channels\",\"rid\":1}");
//   std::optional<std::string> frame = ws->receive();
//
// Single-threaded: the calling thread drives the client's own event loop
// inside connect(), send_*(), receive() and wait_closed(). Use from one thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace parley::test {

class RawWsClient {
 public:
  // Connects to ws://127.0.0.1:port/ offering `subprotocol` (none if empty).
  // Null if the handshake does not complete within `timeout`.
  static std::unique_ptr<RawWsClient> connect(
      int port, const std::string& subprotocol = "parley.v1",
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~RawWsClient();
  RawWsClient(const RawWsClient&) = delete;
  RawWsClient& operator=(const RawWsClient&) = delete;

  // Each returns once the frame(s) left (false if the connection closed first).
  bool send_text(const std::string& bytes);
  bool send_binary(const std::string& bytes);
  // One text message split into frames of these parts.
  bool send_fragments(const std::vector<std::string>& parts);

  // The next complete message (text) from the server, waiting up to `timeout`.
  std::optional<std::string> receive(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Runs the loop until the server closed the connection or `timeout` passed.
  bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  bool closed() const;
  int close_code() const;  // 0 when the peer sent none
  const std::string& close_reason() const;

 private:
  struct State;
  explicit RawWsClient(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace parley::test
