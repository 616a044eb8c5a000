#include "command.hpp"

#include <charconv>

namespace parley_cli {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Splits off the first word of `rest`, leaving in `rest` what follows it
// without leading white space.
std::string_view next_word(std::string_view& rest) {
  std::size_t end = 0;
  while (end < rest.size() && !is_space(rest[end])) ++end;
  std::string_view word = rest.substr(0, end);
  rest = trim(rest.substr(end));
  return word;
}

bool parse_uint(std::string_view s, std::uint32_t max, std::uint32_t* out) {
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v > max) return false;
  *out = static_cast<std::uint32_t>(v);
  return true;
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Reads exactly `n` words from `rest`; false if there are more or fewer.
bool take_words(std::string_view rest, std::size_t n, std::vector<std::string_view>* out) {
  while (!rest.empty()) out->push_back(next_word(rest));
  return out->size() == n;
}

}  // namespace

bool is_blank(std::string_view line) { return trim(line).empty(); }

const std::vector<std::string_view>& command_names() {
  static const std::vector<std::string_view> names = {
      "/channel", "/channels", "/create", "/help",  "/history", "/join",  "/leave",
      "/quit",    "/read",     "/send",   "/sleep", "/switch",  "/typing"};
  return names;
}

bool takes_channel(std::string_view name) {
  return name == "/create" || name == "/join" || name == "/leave" || name == "/send" ||
         name == "/history" || name == "/typing" || name == "/read" || name == "/switch" ||
         name == "/channel";
}

Command parse_command(std::string_view line) {
  std::string_view rest = trim(line);
  if (rest.empty() || rest.front() != '/') {
    return BadCommand{"not a command (commands start with /): " + quoted(rest)};
  }
  const std::string_view name = next_word(rest);

  if (name == "/send") {
    const std::string_view channel = next_word(rest);
    if (channel.empty() || rest.empty()) return BadCommand{"usage: /send CHANNEL TEXT..."};
    return SendCommand{std::string(channel), std::string(rest)};
  }

  std::vector<std::string_view> args;
  if (name == "/create" || name == "/join" || name == "/leave" || name == "/typing" ||
      name == "/read" || name == "/switch" || name == "/channel") {
    if (!take_words(rest, 1, &args)) {
      return BadCommand{"usage: " + std::string(name) + " CHANNEL"};
    }
    std::string channel(args[0]);
    if (name == "/create") return CreateCommand{std::move(channel)};
    if (name == "/join") return JoinCommand{std::move(channel)};
    if (name == "/leave") return LeaveCommand{std::move(channel)};
    if (name == "/typing") return TypingCommand{std::move(channel)};
    if (name == "/read") return ReadCommand{std::move(channel)};
    return SwitchCommand{std::move(channel)};
  }
  if (name == "/history") {
    HistoryCommand cmd;
    if (!take_words(rest, 2, &args)) return BadCommand{"usage: /history CHANNEL COUNT"};
    if (!parse_uint(args[1], kMaxHistoryCount, &cmd.count) || cmd.count == 0) {
      return BadCommand{"count " + quoted(args[1]) + ": expected a number from 1 to " +
                        std::to_string(kMaxHistoryCount)};
    }
    cmd.channel = std::string(args[0]);
    return cmd;
  }
  if (name == "/sleep") {
    SleepCommand cmd;
    if (!take_words(rest, 1, &args)) return BadCommand{"usage: /sleep MILLISECONDS"};
    if (!parse_uint(args[0], kMaxSleepMs, &cmd.ms)) {
      return BadCommand{"milliseconds " + quoted(args[0]) + ": expected a number from 0 to " +
                        std::to_string(kMaxSleepMs)};
    }
    return cmd;
  }
  if (name == "/quit" || name == "/help" || name == "/channels") {
    if (!rest.empty()) return BadCommand{std::string(name) + " takes no arguments"};
    if (name == "/quit") return QuitCommand{};
    if (name == "/channels") return ChannelsCommand{};
    return HelpCommand{};
  }
  return BadCommand{"unknown command " + quoted(name)};
}

}  // namespace parley_cli
