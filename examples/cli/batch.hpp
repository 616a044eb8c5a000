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
  // Interactive extras: /help, and plain text sent to the last channel
  // created or joined.
  bool interactive = false;
};

// Runs until /quit, end of input, or refused authentication; returns the
// process's exit code. `inbox` must be fed by the client's listener and by
// start_stdin_reader(). Use from one thread.
int run_commands(parley::Client& client, Inbox& inbox, Output& out, const RunOptions& options);

}  // namespace parley_cli
