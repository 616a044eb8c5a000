#include "admin_cli.hpp"

#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <optional>

#include "parley/types.hpp"
#include "protocol/codec.hpp"
#include "protocol/token.hpp"
#include "transport/websocket.hpp"

namespace parley::server {
namespace {

constexpr std::int64_t kTokenSeconds = 300;

// Sends auth and the admin request once open; keeps the first answer to it.
class AdminSession : public sys::TransportHandler {
 public:
  AdminSession(sys::Transport& transport, std::string token, wire::Admin request)
      : transport_(transport), token_(std::move(token)), request_(std::move(request)) {}

  void on_open() override {
    transport_.send(wire::encode(wire::ClientMessage{
        wire::Auth{1, token_, std::string("admin-cli"), std::string("parley-server admin")}}));
    transport_.send(wire::encode(wire::ClientMessage{request_}));
  }
  void on_frame(std::string_view frame) override {
    for (auto& item : wire::decode_server_frame(frame)) {
      if (auto* bad = std::get_if<wire::DecodeError>(&item)) {
        finish(1, std::string("{\"error\":\"bad_frame\",\"message\":\"the server sent a frame "
                              "that does not decode\"}"));
        (void)bad;
        return;
      }
      const auto& message = std::get<wire::ServerMessage>(item);
      if (const auto* result = std::get_if<wire::AdminResult>(&message)) {
        if (result->rid == request_.rid) return finish(0, wire::encode(message));
      } else if (const auto* error = std::get_if<wire::Error>(&message)) {
        // Auth refusals have rid 1, the request's own rid 2.
        if (!error->rid || *error->rid == 1 || *error->rid == request_.rid) {
          return finish(1, wire::encode(message));
        }
      }
    }
  }
  void on_closed(const Status& reason) override {
    if (!done_) {
      std::fprintf(stderr, "parley-server admin: connection closed: %s\n",
                   reason.message().c_str());
      finish(1, {});
    }
  }

  bool done() const { return done_; }
  int exit_code() const { return exit_code_; }
  const std::string& output() const { return output_; }

 private:
  void finish(int code, std::string output) {
    if (done_) return;
    done_ = true;
    exit_code_ = code;
    output_ = std::move(output);
  }

  sys::Transport& transport_;
  std::string token_;
  wire::Admin request_;
  bool done_ = false;
  int exit_code_ = 1;
  std::string output_;
};

}  // namespace

int run_admin(const AdminCommand& command) {
  auto key = token::read_key_file(command.key_file);
  if (!key) {
    std::fprintf(stderr, "parley-server admin: %s\n", key.status().message().c_str());
    return 1;
  }
  std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  std::string token = token::mint(*key, command.as_user, kTokenSeconds, now, /*admin=*/true);
  sodium_memzero(key->secret, sizeof key->secret);

  wire::Admin request;
  request.rid = 2;
  request.action = command.action;
  if (!command.channel.empty()) request.channel = command.channel;
  if (!command.user.empty()) request.user = command.user;
  if (!command.text.empty()) request.text = command.text;
  if (command.seconds != 0) request.seconds = command.seconds;

  transport::WebSocketTransport transport;
  AdminSession session(transport, std::move(token), std::move(request));
  transport.connect(command.url, wire::kSubprotocol, &session);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(command.timeout_seconds);
  while (!session.done() && std::chrono::steady_clock::now() < deadline) {
    transport.poll(std::chrono::milliseconds(100));
  }
  if (!session.done()) {
    std::fprintf(stderr, "parley-server admin: no answer from %s within %d s\n",
                 command.url.c_str(), command.timeout_seconds);
    return 1;
  }
  if (!session.output().empty()) std::printf("%s\n", session.output().c_str());
  std::fflush(stdout);
  transport.close(1000, "done");
  for (int i = 0; i < 5; ++i) transport.poll(std::chrono::milliseconds(20));
  return session.exit_code();
}

}  // namespace parley::server
