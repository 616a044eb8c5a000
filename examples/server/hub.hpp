// The server's request handling: authenticates sessions, runs their requests
// against the store, and fans new channel events out to the live sessions of
// every member. Knows nothing of the transport: both the WebSocket and the
// loopback backend hand it whole frames and drain what it queues on sessions.
//
// Use from one thread at a time (the server's loop thread).
#pragma once

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "metrics.hpp"
#include "protocol/wire.hpp"
#include "session.hpp"
#include "store.hpp"

namespace parley::server {

class Hub {
 public:
  Hub(ServerStore& store, Metrics& metrics, const std::array<unsigned char, 32>& public_key,
      std::size_t max_frame);

  // Builds the in-memory index (channels, members) from the store.
  Status load();

  void on_open(Session& session);
  // One complete text frame from the client.
  void on_frame(Session& session, std::string_view frame);
  // A frame that could not be taken: binary, or larger than max_frame.
  void on_bad_frame(Session& session, const char* code, std::string message);
  // The session is gone; it is not touched after this returns.
  void on_close(Session& session);

 private:
  struct Channel {
    std::uint64_t last_seq = 0;
    std::set<std::string> members;
  };

  void handle(Session& session, const wire::ClientMessage& message);
  void handle_auth(Session& session, const wire::Auth& auth);
  void handle(Session& session, const wire::CreateChannel& request);
  void handle(Session& session, const wire::JoinChannel& request);
  void handle(Session& session, const wire::LeaveChannel& request);
  void handle(Session& session, const wire::Send& request);
  void handle(Session& session, const wire::History& request);
  void handle(Session& session, const wire::ListChannels& request);

  // Queues a reply on `session`.
  void reply(Session& session, const wire::ServerMessage& message);
  void error(Session& session, std::optional<std::uint64_t> rid, const char* code,
             std::string message, std::optional<std::string> id = std::nullopt);
  // Refusal from the store: its reason becomes the error code.
  void store_error(Session& session, std::uint64_t rid, const Status& status,
                   std::optional<std::string> id = std::nullopt);
  void enqueue(Session& session, Encoded item);
  // Records a stored event and sends it to every session of every member
  // except `origin`, which gets a reply instead.
  void publish(const StoredEvent& event, const Session* origin);
  std::vector<wire::ChannelState> memberships(const std::string& user) const;

  ServerStore& store_;
  Metrics& metrics_;
  std::array<unsigned char, 32> public_key_;
  std::size_t max_frame_;
  std::unordered_map<std::string, Channel> channels_;
  std::unordered_map<std::string, std::set<std::string>> channels_of_user_;
  std::unordered_map<std::string, std::vector<Session*>> sessions_of_user_;
};

wire::ChannelEvent to_wire(const StoredEvent& event);

}  // namespace parley::server
