// `parley-server admin ...`: runs one administration request against a
// running server over WebSocket and prints the server's answer as one JSON
// line (docs/channels.md, "Administration").
#pragma once

#include <cstdint>
#include <string>

namespace parley::server {

struct AdminCommand {
  std::string url;       // ws://HOST:PORT
  std::string key_file;  // the server's signing key: mints a short-lived admin token
  std::string as_user = "admin";
  std::string action;    // the wire action: channels, users, reports, ban_user, ...
  std::string channel;
  std::string user;
  std::string text;
  std::uint64_t seconds = 0;
  int timeout_seconds = 10;
};

// Prints the admin_result (exit 0) or the error (exit 1) as a JSON line on
// stdout; connection failures go to stderr (exit 1).
int run_admin(const AdminCommand& command);

}  // namespace parley::server
