// What a line typed to parley-cli means (docs/cli.md, "Commands").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace parley_cli {

struct CreateCommand {
  std::string channel;
};
struct JoinCommand {
  std::string channel;
};
struct LeaveCommand {
  std::string channel;
};
struct SendCommand {
  std::string channel;
  std::string text;
};
struct HistoryCommand {
  std::string channel;
  std::uint32_t count = 0;
};
struct SleepCommand {
  std::uint32_t ms = 0;
};
struct QuitCommand {};
struct HelpCommand {};
// A line that is not a command; `message` says why, naming the offending part.
struct BadCommand {
  std::string message;
};

using Command = std::variant<CreateCommand, JoinCommand, LeaveCommand, SendCommand, HistoryCommand,
                             SleepCommand, QuitCommand, HelpCommand, BadCommand>;

// The largest /history count: the library's HistoryQuery limit.
inline constexpr std::uint32_t kMaxHistoryCount = 1000;
// The longest /sleep: one hour.
inline constexpr std::uint32_t kMaxSleepMs = 3'600'000;

// Parses one line (without its newline). `line` must not be blank.
Command parse_command(std::string_view line);

// True if the line holds nothing but white space.
bool is_blank(std::string_view line);

}  // namespace parley_cli
