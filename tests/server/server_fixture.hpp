// Shared helpers of the server tests: a temporary directory, an in-process
// server with its own signing key, and a message-level peer over RawWsClient.
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "protocol/codec.hpp"
#include "protocol/token.hpp"
#include "raw_ws_client.hpp"
#include "server.hpp"

namespace parley::test {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "parley-server-test-XXXXXX").string();
    path = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

inline std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A server on 127.0.0.1 with an ephemeral port and a fresh data directory,
// running on its own thread.
struct TestServer {
  using Configure = std::function<void(server::ServerOptions&)>;

  TempDir dir;
  token::SigningKey key = token::generate_key();
  Configure configure;  // changes the options of every start, e.g. a word filter
  std::unique_ptr<server::Server> server;

  explicit TestServer(std::size_t max_queued_bytes = 16u << 20) { start(max_queued_bytes); }
  explicit TestServer(Configure configure_options) : configure(std::move(configure_options)) {
    start();
  }
  ~TestServer() { server.reset(); }

  server::ServerOptions options(std::size_t max_queued_bytes = 16u << 20) const {
    server::ServerOptions o;
    o.data_dir = dir.path.string();
    std::copy(std::begin(key.public_key), std::end(key.public_key), o.public_key.begin());
    o.max_queued_bytes = max_queued_bytes;
    if (configure) configure(o);
    return o;
  }
  void start(std::size_t max_queued_bytes = 16u << 20) {
    auto created = server::Server::create(options(max_queued_bytes));
    REQUIRE_MESSAGE(created.ok(), created.status().to_string());
    server = std::move(*created);
    server->start();
  }
  // Stops the server and starts a new one on the same data directory.
  void restart() {
    server->stop();
    server.reset();
    start();
  }
  int port() const { return server->port(); }
  std::string token(const std::string& user, std::int64_t ttl = 3600) const {
    return token::mint(key, user, ttl, unix_now());
  }
  // A token with the server administrator claim.
  std::string admin_token(const std::string& user) const {
    return token::mint(key, user, 3600, unix_now(), /*admin=*/true);
  }
};

// One connection, read message by message (frames may pack several).
class Peer {
 public:
  explicit Peer(int port) : ws_(RawWsClient::connect(port)) { REQUIRE(ws_ != nullptr); }

  RawWsClient& ws() { return *ws_; }

  void send(const std::string& frame) {
    REQUIRE(ws_->send_text(frame));
    bytes_sent_ += frame.size();
  }
  // Payload bytes of the frames sent and received so far.
  std::size_t bytes_sent() const { return bytes_sent_; }
  std::size_t bytes_received() const { return bytes_received_; }

  // The next message; fails the test if none arrives or it does not decode.
  wire::ServerMessage next(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    while (pending_.empty()) {
      auto frame = ws_->receive(timeout);
      REQUIRE_MESSAGE(frame.has_value(), "no message from the server");
      bytes_received_ += frame->size();
      for (auto& item : wire::decode_server_frame(*frame)) {
        auto* message = std::get_if<wire::ServerMessage>(&item);
        REQUIRE_MESSAGE(message != nullptr, "undecodable frame from the server: " << *frame);
        pending_.push_back(std::move(*message));
      }
    }
    wire::ServerMessage message = std::move(pending_.front());
    pending_.pop_front();
    return message;
  }

  template <typename T>
  T expect(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    wire::ServerMessage message = next(timeout);
    auto* value = std::get_if<T>(&message);
    if (value == nullptr) {
      FAIL("expected another message type, got " << wire::encode(message));
    }
    return *value;
  }

  wire::Error expect_error(const std::string& code) {
    auto error = expect<wire::Error>();
    CHECK_MESSAGE(error.code == code, "message: " << error.message);
    CHECK_FALSE(error.message.empty());
    return error;
  }

  // True if nothing arrives within `wait`.
  bool quiet(std::chrono::milliseconds wait = std::chrono::milliseconds(200)) {
    if (!pending_.empty()) return false;
    auto frame = ws_->receive(wait);
    if (!frame) return true;
    bytes_received_ += frame->size();
    for (auto& item : wire::decode_server_frame(*frame)) {
      if (auto* message = std::get_if<wire::ServerMessage>(&item)) {
        pending_.push_back(std::move(*message));
      }
    }
    return false;
  }

  // `device`: the device id to announce, none if empty.
  wire::Welcome auth(const std::string& token, std::uint64_t rid = 1,
                     const std::string& device = "") {
    std::string extra = device.empty() ? "" : R"(,"device":")" + device + "\"";
    send(R"({"type":"auth","rid":)" + std::to_string(rid) + R"(,"token":")" + token + "\"" + extra +
         "}");
    return expect<wire::Welcome>();
  }

  // Round trip of a `channels` request: proves the connection still works.
  wire::ChannelList channels(std::uint64_t rid = 999) {
    send(R"({"type":"channels","rid":)" + std::to_string(rid) + "}");
    auto list = expect<wire::ChannelList>();
    CHECK(list.rid == rid);
    return list;
  }

 private:
  std::unique_ptr<RawWsClient> ws_;
  std::deque<wire::ServerMessage> pending_;
  std::size_t bytes_sent_ = 0;
  std::size_t bytes_received_ = 0;
};

inline std::string send_json(std::uint64_t rid, const std::string& channel, const std::string& id,
                             const std::string& text) {
  return wire::encode(wire::ClientMessage{wire::Send{rid, channel, id, text}});
}

inline std::string client_id(int n) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%032x", n);
  return buf;
}

// A plain HTTP/1.1 GET; returns the whole response, headers included.
inline std::string http_get(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  std::string response;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    response.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return response;
}

inline std::string body_of(const std::string& response) {
  auto at = response.find("\r\n\r\n");
  return at == std::string::npos ? std::string() : response.substr(at + 4);
}

// The value of one sample line of /metrics ("name{labels}"), or -1.
inline double metric(int port, const std::string& sample) {
  std::string text = body_of(http_get(port, "/metrics"));
  std::size_t at = text.find("\n" + sample + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + sample.size() + 2));
}

}  // namespace parley::test
