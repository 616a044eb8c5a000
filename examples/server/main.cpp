// parley-server: the reference server, and tools for its signing key and tokens.
//
//   parley-server keygen --out FILE
//   parley-server mint-token --key FILE --user NAME [--ttl SECONDS] [--admin]
//   parley-server --listen 127.0.0.1:PORT --data DIR --key FILE [--max-frame BYTES]
//                 [--sync normal|full] [--filter FILE] [--rate-limit N/S[,burst=B]|off]
//   parley-server admin --url ws://HOST:PORT --key FILE ACTION [ARGS]
//
// Exit codes: 0 done, 1 failure (cannot bind, open the store, read the key...),
// 2 usage error.
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <limits>
#include <string>
#include <thread>

#include "admin_cli.hpp"
#include "log.hpp"
#include "moderation.hpp"
#include "parley/types.hpp"
#include "protocol/token.hpp"
#include "protocol/wire.hpp"
#include "server.hpp"

namespace {

using parley::server::log;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
// Generous for people, a wall for floods (docs/channels.md, "Rate limit").
constexpr const char* kDefaultRateLimit = "30/10,burst=30";

bool parse_listen(const std::string& text, std::string* host, int* port) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) return false;
  std::string port_text = text.substr(colon + 1);
  if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  int value = std::stoi(port_text);
  if (value > 65535) return false;
  *host = text.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  *port = value;
  return true;
}

int keygen(const std::string& out) {
  parley::token::SigningKey key = parley::token::generate_key();
  parley::Status s = parley::token::write_key_file(key, out);
  sodium_memzero(key.secret, sizeof key.secret);
  if (!s.ok()) {
    std::fprintf(stderr, "parley-server keygen: %s\n", s.message().c_str());
    return kExitFailure;
  }
  std::fprintf(stderr, "wrote signing key to %s\n", out.c_str());
  return 0;
}

int mint_token(const std::string& key_file, const std::string& user, std::int64_t ttl,
               bool admin) {
  if (std::string why = parley::check_user_name(user); !why.empty()) {
    std::fprintf(stderr, "parley-server mint-token: %s\n", why.c_str());
    return kExitUsage;
  }
  auto key = parley::token::read_key_file(key_file);
  if (!key) {
    std::fprintf(stderr, "parley-server mint-token: %s\n", key.status().message().c_str());
    return kExitFailure;
  }
  std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  std::string token = parley::token::mint(*key, user, ttl, now, admin);
  sodium_memzero(key->secret, sizeof key->secret);
  std::printf("%s\n", token.c_str());
  std::fflush(stdout);
  return 0;
}

// The presence flags (docs/presence.md, "Server options").
struct PresenceFlags {
  double grace_s = 5;
  double away_after_s = 300;
  std::size_t max_members = 100;
  int dead_timeout_s = 60;
};

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000 + 0.5));
}

int serve(const std::string& listen, const std::string& data_dir, const std::string& key_file,
          std::size_t max_frame, const std::string& sync, const std::string& filter_file,
          const std::string& rate_limit, const PresenceFlags& presence) {
  parley::server::ServerOptions options;
  options.presence_grace = to_ms(presence.grace_s);
  options.away_after = to_ms(presence.away_after_s);
  options.presence_max_members = presence.max_members;
  options.dead_timeout_s = presence.dead_timeout_s;
  if (!parse_listen(listen, &options.host, &options.port)) {
    std::fprintf(stderr, "parley-server: --listen \"%s\" is not HOST:PORT\n", listen.c_str());
    return kExitUsage;
  }
  auto key = parley::token::read_key_file(key_file);
  if (!key) {
    std::fprintf(stderr, "parley-server: %s\n", key.status().message().c_str());
    return kExitFailure;
  }
  std::copy(std::begin(key->public_key), std::end(key->public_key), options.public_key.begin());
  sodium_memzero(key->secret, sizeof key->secret);
  options.data_dir = data_dir;
  options.max_frame = max_frame;
  options.full_sync = sync == "full";
  options.filter_file = filter_file;
  auto rate = parley::server::parse_rate_limit(rate_limit);
  if (!rate) {
    std::fprintf(stderr, "parley-server: --rate-limit: %s\n", rate.status().message().c_str());
    return kExitUsage;
  }
  options.rate_per_s = rate->first;
  options.rate_burst = rate->second;

  // SIGINT and SIGTERM are taken by a thread of their own (sigwait), so no
  // code runs in a signal handler. Block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = parley::server::Server::create(options);
  if (!server) {
    std::fprintf(stderr, "parley-server: %s\n", server.status().message().c_str());
    return kExitFailure;
  }
  std::printf("listening on %s:%d\n", options.host.c_str(), (*server)->port());
  std::fflush(stdout);
  log("info", "serving {}:{} with data in \"{}\", max frame {} bytes", options.host,
      (*server)->port(), data_dir, max_frame);

  std::atomic<bool> loop_ended{false};
  std::thread signal_thread([&] {
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (loop_ended.load()) return;
      log("info", "received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
      (*server)->stop();
      return;
    }
  });
  (*server)->run();
  // Release the signal thread if no signal ended the loop: the signal stays
  // blocked and pending if that thread has already returned.
  loop_ended.store(true);
  kill(getpid(), SIGTERM);
  signal_thread.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"parley-server: the Parley reference server (docs/server.md)", "parley-server"};
  app.require_subcommand(0, 1);

  std::string listen;
  std::string data_dir;
  std::string key_file;
  std::size_t max_frame = parley::wire::kDefaultMaxFrame;
  app.add_option("--listen", listen, "HOST:PORT to serve on (port 0: any free port)");
  app.add_option("--data", data_dir, "directory of the server's SQLite store");
  app.add_option("--key", key_file, "signing key file (from keygen)");
  app.add_option("--max-frame", max_frame, "largest frame accepted, in bytes")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{64} << 20));
  std::string sync = "normal";
  app.add_option("--sync", sync,
                 "when an ack is durable: normal (survives a server crash) or full (fsync per "
                 "commit: survives power loss)")
      ->check(CLI::IsMember({"normal", "full"}));
  std::string filter_file;
  app.add_option("--filter", filter_file,
                 "word filter rules: lines \"reject TERM\" or \"mask TERM\" (docs/channels.md)");
  std::string rate_limit = kDefaultRateLimit;
  app.add_option("--rate-limit", rate_limit,
                 "sends per user: N/S (N per S seconds), N/S,burst=B, or off (default " +
                     std::string(kDefaultRateLimit) + ")");

  PresenceFlags presence;
  app.add_option("--presence-grace", presence.grace_s,
                 "seconds before a disconnected user shows as offline (default 5)")
      ->check(CLI::Range(0.0, 60.0));
  app.add_option("--away-after", presence.away_after_s,
                 "seconds without activity before a connected user is away (default 300)")
      ->check(CLI::Range(1.0, 86400.0));
  app.add_option("--presence-max-members", presence.max_members,
                 "channels with fewer members get per-member presence events (default 100)")
      ->check(CLI::Range(std::size_t{2}, std::size_t{100000}));
  app.add_option("--dead-timeout", presence.dead_timeout_s,
                 "seconds of silence before a connection is closed as dead; pinged at half "
                 "(default 60)")
      ->check(CLI::Range(2, 3600));

  CLI::App* keygen_cmd = app.add_subcommand("keygen", "write a new signing key");
  std::string out;
  keygen_cmd->add_option("--out", out, "key file to create (never overwritten)")->required();

  CLI::App* mint_cmd = app.add_subcommand("mint-token", "print a token for a user");
  std::string mint_key;
  std::string user;
  std::int64_t ttl = 86400;
  mint_cmd->add_option("--key", mint_key, "signing key file")->required();
  mint_cmd->add_option("--user", user, "user name")->required();
  mint_cmd->add_option("--ttl", ttl, "seconds until the token expires (default 86400)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{10} * 365 * 86400));
  bool admin = false;
  mint_cmd->add_flag("--admin", admin, "a server administrator's token (claim \"adm\")");

  CLI::App* admin_cmd = app.add_subcommand(
      "admin", "run an administration request against a running server; prints one JSON line");
  admin_cmd->require_subcommand(1);
  parley::server::AdminCommand command;
  admin_cmd->add_option("--url", command.url, "the server, ws://HOST:PORT")->required();
  admin_cmd->add_option("--key", command.key_file,
                        "the server's signing key (mints a 5-minute admin token)")
      ->required();
  admin_cmd->add_option("--as", command.as_user, "administrator user name (default admin)");
  admin_cmd->add_option("--timeout", command.timeout_seconds, "seconds to wait (default 10)")
      ->check(CLI::Range(1, 600));
  admin_cmd->add_subcommand("channels", "list every channel");
  admin_cmd->add_subcommand("users", "list every user, with server bans");
  admin_cmd->add_subcommand("reports", "list the newest 500 reports");
  CLI::App* ban_cmd = admin_cmd->add_subcommand("ban-user", "ban a user from the server");
  ban_cmd->add_option("user", command.user, "user name")->required();
  ban_cmd->add_option("--seconds", command.seconds, "ban length (default: until lifted)");
  CLI::App* unban_cmd = admin_cmd->add_subcommand("unban-user", "lift a server ban");
  unban_cmd->add_option("user", command.user, "user name")->required();
  CLI::App* delete_cmd = admin_cmd->add_subcommand("delete-channel", "delete a channel");
  delete_cmd->add_option("channel", command.channel, "channel name")->required();
  CLI::App* system_cmd =
      admin_cmd->add_subcommand("system-message", "post a system message to a channel");
  system_cmd->add_option("channel", command.channel, "channel name")->required();
  system_cmd->add_option("text", command.text, "message text")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }

  if (keygen_cmd->parsed()) return keygen(out);
  if (mint_cmd->parsed()) return mint_token(mint_key, user, ttl, admin);
  if (admin_cmd->parsed()) {
    for (CLI::App* sub : admin_cmd->get_subcommands()) {
      std::string name = sub->get_name();
      for (char& c : name) c = c == '-' ? '_' : c;
      command.action = name;
    }
    return parley::server::run_admin(command);
  }
  if (listen.empty() || data_dir.empty() || key_file.empty()) {
    std::fprintf(stderr, "parley-server: --listen, --data and --key are required\n%s",
                 app.help().c_str());
    return kExitUsage;
  }
  return serve(listen, data_dir, key_file, max_frame, sync, filter_file, rate_limit, presence);
}
