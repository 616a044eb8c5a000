// What parley-cli prints, as one interface with two renderings: JSON lines
// for --batch (output.cpp, schema in docs/cli.md) and readable lines for a
// terminal (interactive.cpp). Use from one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parley/events.hpp"
#include "parley/types.hpp"

namespace parley_cli {

// The closing line of a command that succeeded. (Members have "{}" so that
// designated initializers may leave them out without a warning.)
struct CommandResult {
  std::string command{};                 // "create", "join", "history", ...
  std::string channel{};                 // empty: the command has none
  std::string id{};                      // /send: the message id
  std::optional<std::uint64_t> count{};  // /history: how many messages were printed
};

// An error line. `code` is a Status::reason() or one of the CLI's own codes
// (bad_command, offline, timeout, drain_timeout).
struct ErrorLine {
  std::string code{};
  std::string message{};
  std::string id{};                // set when the error concerns one message
  std::vector<std::string> ids{};  // drain_timeout: the ids still in the outbox
};

// The error line for a failed Status: its reason() is the code.
ErrorLine error_from(const parley::Status& status, std::string id = {});

class Output {
 public:
  virtual ~Output() = default;

  // A channel event: a text message, or a membership change (create, join, leave).
  virtual void message(const parley::Message& m) = 0;
  // Our message is in the outbox, then stored by the server. `text` is its
  // text when this run sent it, else empty (an earlier run's message).
  virtual void pending(const std::string& channel, const std::string& id,
                       const std::string& text) = 0;
  virtual void sent(const std::string& channel, const std::string& id, std::uint64_t seq,
                    const std::string& text) = 0;
  virtual void state(parley::LifecycleState state, const parley::Status& reason) = 0;
  virtual void error(const ErrorLine& e) = 0;
  virtual void result(const CommandResult& r) = 0;
  // The list of commands (/help; interactive only).
  virtual void help() = 0;
};

// JSON lines on stdout, flushed after each line.
std::unique_ptr<Output> make_json_output();
// Readable lines on stdout for a person at a terminal signed in as `user`.
std::unique_ptr<Output> make_human_output(std::string user);

// `s` with every byte sequence that is not UTF-8 replaced by U+FFFD, so that
// what reaches the JSON writer is always valid.
std::string to_valid_utf8(const std::string& s);

}  // namespace parley_cli
