// parley-cli: chat with a Parley server from a terminal, or drive it from a
// script with --batch (one command per stdin line, one JSON object per stdout
// line). docs/cli.md describes flags, commands, events and exit codes.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "batch.hpp"
#include "direct.hpp"
#include "inbox.hpp"
#include "output.hpp"
#include "parley/parley.hpp"
#include "screen.hpp"
#include "terminal.hpp"

namespace {

using parley_cli::kExitFailure;
using parley_cli::kExitUsage;

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0));
}

// Usage errors and a refused token exit 2; a cache that cannot be opened 1.
int exit_code_for(const parley::Status& s) {
  switch (s.code()) {
    case parley::StatusCode::invalid_argument:
    case parley::StatusCode::unauthenticated:
    case parley::StatusCode::token_expired:
      return kExitUsage;
    default:
      return kExitFailure;
  }
}

// ANSI colours: on a terminal, unless NO_COLOR is set (no-color.org) or the
// terminal says it cannot.
bool want_color() {
  const char* no_color = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  return ::isatty(STDOUT_FILENO) != 0 && (no_color == nullptr || *no_color == '\0') &&
         !(term != nullptr && std::string(term) == "dumb");
}

}  // namespace

int main(int argc, char** argv) {
  // A reader that went away must not kill us mid-line; writes just fail.
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"Chat with a Parley server. Commands come from stdin; see docs/cli.md.",
               "parley-cli"};
  std::string server;
  std::string token;
  std::string data_dir;
  bool batch = false;
  double drain_timeout = 30;
  double command_timeout = 10;
  app.add_option("--server", server, "server URL, ws://HOST:PORT or wss://HOST:PORT")->required();
  app.add_option("--token", token, "access token (better: the PARLEY_TOKEN environment variable)")
      ->envname("PARLEY_TOKEN");
  app.add_option("--data", data_dir, "directory of this user's cache (created if missing)")
      ->required();
  app.add_flag("--batch", batch, "for scripts: JSON lines out, exact behaviour (docs/cli.md)");
  app.add_option("--drain-timeout", drain_timeout,
                 "seconds /quit and end of input wait for the outbox to empty")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--command-timeout", command_timeout,
                 "seconds a command waits for the server, connecting included")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bool rebuild_corrupt_cache = false;
  app.add_flag("--rebuild-corrupt-cache", rebuild_corrupt_cache,
               "if the cache is corrupt, move it aside and rebuild it from the server (the "
               "outbox is kept)");
  std::string device_id;
  app.add_option("--device-id", device_id,
                 "this device's id, 1-64 characters (default: one generated and kept in --data)")
      ->check(CLI::Validator(
          [](const std::string& v) {
            return v.empty() || v.size() > 64 ? std::string("1-64 characters") : std::string();
          },
          "ID"));
  long reconnect_max_ms = 30000;
  app.add_option("--reconnect-max-ms", reconnect_max_ms,
                 "longest wait between reconnection attempts, in ms (backoff with jitter)")
      ->check(CLI::Range(500L, 3600L * 1000))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  if (token.empty()) {
    std::fprintf(stderr, "parley-cli: no token: pass --token or set PARLEY_TOKEN\n");
    return kExitUsage;
  }

  auto inbox = std::make_shared<parley_cli::Inbox>();

  parley::ClientOptions options;
  options.server_url = server;
  options.token = token;
  options.data_dir = data_dir;
  options.request_timeout = to_ms(command_timeout);
  options.reconnect_max = std::chrono::milliseconds(reconnect_max_ms);
  options.rebuild_corrupt_cache = rebuild_corrupt_cache;
  options.device_id = device_id;
  options.listener = [inbox](const parley::Event& event) { inbox->push_event(event); };
  parley::Result<std::unique_ptr<parley::Client>> client = parley::Client::open(options);
  if (!client) {
    const parley::Status& s = client.status();
    if (batch) parley_cli::make_json_output()->error(parley_cli::error_from(s));
    std::fprintf(stderr, "parley-cli: %s\n", s.to_string().c_str());
    return exit_code_for(s);
  }

  parley_cli::RunOptions run;
  run.command_timeout = to_ms(command_timeout);
  run.drain_timeout = to_ms(drain_timeout);
  run.interactive = !batch;

  // Interactive on a terminal: the line editor reads stdin. Anywhere else a
  // thread reads it line by line.
  std::unique_ptr<parley_cli::Terminal> terminal;
  std::unique_ptr<parley_cli::Screen> plain;
  const bool color = run.interactive && want_color();
  if (run.interactive) {
    std::string why;
    terminal = parley_cli::Terminal::open(
        (std::filesystem::path(data_dir) / "cli_history").string(), color, &why);
  }
  if (terminal) {
    inbox->set_notify([t = terminal.get()] { t->wake(); });
    run.terminal = terminal.get();
  } else {
    parley_cli::start_stdin_reader(inbox);
  }
  parley_cli::DirectNames names(**client);
  std::unique_ptr<parley_cli::Output> out;
  if (batch) {
    out = parley_cli::make_json_output(&names);
  } else {
    if (!terminal) plain = parley_cli::make_plain_screen();
    parley_cli::Screen& screen = terminal ? *terminal : *plain;
    out = parley_cli::make_human_output(**client, screen, names, color);
    screen.print(std::string("parley-cli ") + parley::version() + ": signed in as " +
                 parley_cli::printable((*client)->user()) + "; /help lists the commands");
  }

  const int rc = parley_cli::run_commands(**client, *inbox, *out, names, run);
  out.reset();
  client->reset();   // closes the connection; no more events, so no more wake-ups
  terminal.reset();  // the terminal as it was; what went to stderr meanwhile follows
  return rc;
}
