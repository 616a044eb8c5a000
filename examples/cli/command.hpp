// What a line typed to parley-cli means (docs/cli.md, "Commands").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

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
// Signals that the user is typing in `channel` (Client::set_typing).
struct TypingCommand {
  std::string channel;
};
// Marks everything received in `channel` as read (Client::mark_read).
struct ReadCommand {
  std::string channel;
};
// Interactive: makes `channel` the one plain text goes to (/switch, /channel).
struct SwitchCommand {
  std::string channel;
};
// Interactive: lists the channels the cache knows this user is in.
struct ChannelsCommand {};
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
                             TypingCommand, ReadCommand, SwitchCommand, ChannelsCommand,
                             SleepCommand, QuitCommand, HelpCommand, BadCommand>;

// The largest /history count: the library's HistoryQuery limit.
inline constexpr std::uint32_t kMaxHistoryCount = 1000;
// The longest /sleep: one hour.
inline constexpr std::uint32_t kMaxSleepMs = 3'600'000;

// Parses one line (without its newline). `line` must not be blank.
Command parse_command(std::string_view line);

// True if the line holds nothing but white space.
bool is_blank(std::string_view line);

// Every command's name ("/create", ...), for completion.
const std::vector<std::string_view>& command_names();
// True for the commands whose first argument is a channel.
bool takes_channel(std::string_view name);

}  // namespace parley_cli
