// Shared set-up for client tests: a server in-process, tokens, temp dirs,
// and waiting for events with a bound.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "parley/client.hpp"
#include "protocol/token.hpp"
#include "server.hpp"
#include "transport/loopback.hpp"

namespace parley::testing {

inline std::filesystem::path temp_dir(const std::string& tag) {
  static int counter = 0;
  auto dir = std::filesystem::temp_directory_path() /
             ("parley-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A server running on its own thread, plus what clients need to reach it.
struct TestServer {
  // `tweak` may change the server's options (rate limit, word filter, ...).
  explicit TestServer(bool listen = false, std::size_t max_frame = 65536,
                      const std::function<void(server::ServerOptions&)>& tweak = nullptr) {
    dir = temp_dir("server");
    key = token::generate_key();
    server::ServerOptions opts;
    opts.max_frame = max_frame;
    opts.listen = listen;
    opts.port = 0;
    opts.data_dir = dir.string();
    std::copy(std::begin(key.public_key), std::end(key.public_key), opts.public_key.begin());
    if (tweak) tweak(opts);
    auto s = server::Server::create(opts);
    REQUIRE_MESSAGE(s.ok(), s.status().to_string());
    server = std::move(*s);
    server->start();
  }
  ~TestServer() {
    server->stop();
    server.reset();
    std::filesystem::remove_all(dir);
  }
  std::string token(const std::string& user, std::int64_t ttl = 3600) const {
    return token::mint(key, user, ttl, now_seconds());
  }
  ClientOptions options(const std::string& user, const std::filesystem::path& data) {
    ClientOptions o;
    o.token = token(user);
    o.data_dir = data.string();
    o.server_url = "loopback://";
    o.transport = std::make_shared<transport::LoopbackTransport>(server->loopback_acceptor());
    o.reconnect_base = std::chrono::milliseconds(20);
    o.reconnect_max = std::chrono::milliseconds(200);
    o.request_timeout = std::chrono::milliseconds(3000);
    return o;
  }

  std::filesystem::path dir;
  token::SigningKey key;
  std::unique_ptr<server::Server> server;
};

// Waits up to `timeout` for an event of type T satisfying `pred`; other events
// are passed to `seen` (if given) and skipped.
template <class T>
std::optional<T> wait_for(Client& client, std::function<bool(const T&)> pred = nullptr,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10),
                          std::function<void(const Event&)> seen = nullptr) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    auto ev = client.next_event(std::max(left, std::chrono::milliseconds(1)));
    if (!ev) continue;
    if (auto* t = std::get_if<T>(&*ev)) {
      if (!pred || pred(*t)) return *t;
    }
    if (seen) seen(*ev);
  }
  return std::nullopt;
}

inline bool wait_ready(Client& client, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  if (client.state() == LifecycleState::ready) return true;
  return wait_for<StateChanged>(client,
                                [](const StateChanged& s) { return s.state == LifecycleState::ready; },
                                timeout)
      .has_value();
}

inline Status request_status(Client& client, RequestId id) {
  auto done = wait_for<ChannelRequestDone>(
      client, [id](const ChannelRequestDone& d) { return d.request == id; });
  REQUIRE(done.has_value());
  return done->status;
}

}  // namespace parley::testing
