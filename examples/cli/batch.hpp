// The command runner: reads stdin's commands one at a time, runs each against a
// Client, prints every event as it comes, and on /quit or end of input drains
// the outbox. --batch runs it with JSON-lines output (docs/cli.md); interactive
// mode with readable output.
#pragma once

#include <chrono>
#include <memory>

#include "inbox.hpp"
#include "output.hpp"
#include "parley/client.hpp"

namespace parley_cli {

class DirectNames;
class Terminal;

// Exit codes (docs/cli.md, "Exit codes").
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the cache could not be opened, and the like
inline constexpr int kExitUsage = 2;    // bad flags, or the server refused the token
inline constexpr int kExitDrainTimeout = 3;

struct RunOptions {
  // How long a command that needs the server may take, waiting for a
  // connection included.
  std::chrono::milliseconds command_timeout{10000};
  // How long /quit and end of input wait for the outbox to empty.
  std::chrono::milliseconds drain_timeout{30000};
  // Interactive extras: /help, /switch, /channels, plain text sent to the
  // current channel, and what is shown of it marked read.
  bool interactive = false;
  // Interactive on a terminal: the line editor, which then feeds the inbox's
  // lines and signals typing as the user types. Otherwise null.
  Terminal* terminal = nullptr;
};

// Runs until /quit, end of input, or refused authentication; returns the
// process's exit code. `inbox` must be fed by the client's listener, and by
// start_stdin_reader() unless `options.terminal` is set; `names` turns the
// "@U" arguments of commands into direct channels. Use from one thread.
int run_commands(parley::Client& client, Inbox& inbox, Output& out, DirectNames& names,
                 const RunOptions& options);

}  // namespace parley_cli
