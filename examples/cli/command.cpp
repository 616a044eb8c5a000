#include "command.hpp"

#include <charconv>
#include <cstdint>

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

bool parse_u64(std::string_view s, std::uint64_t max, std::uint64_t* out) {
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v > max) return false;
  *out = v;
  return true;
}

bool parse_uint(std::string_view s, std::uint32_t max, std::uint32_t* out) {
  std::uint64_t v = 0;
  if (!parse_u64(s, max, &v)) return false;
  *out = static_cast<std::uint32_t>(v);
  return true;
}

bool is_role(std::string_view s) {
  return s == "owner" || s == "admin" || s == "moderator" || s == "member" || s == "read_only";
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
      "/ban",           "/block",   "/blocked", "/channel",   "/channels", "/create", "/delete",
      "/device-remove", "/devices", "/dm",      "/doc-close", "/doc-create", "/doc-delete",
      "/doc-insert",    "/doc-open", "/doc-show", "/help",      "/history",  "/invite", "/join",
      "/kick",          "/leave",   "/members", "/mute",      "/notify",   "/pin",    "/presence",
      "/quit",          "/read",    "/report",  "/report-dm", "/role",     "/safety", "/send",
      "/sleep",         "/status",  "/switch",  "/topic",     "/transfer", "/typing", "/unban",
      "/unblock",       "/unmute",  "/unpin",   "/unread",    "/unwatch",  "/verify", "/watch"};
  return names;
}

bool takes_channel(std::string_view name) {
  return name == "/create" || name == "/join" || name == "/leave" || name == "/send" ||
         name == "/history" || name == "/typing" || name == "/read" || name == "/switch" ||
         name == "/channel" || name == "/invite" || name == "/kick" || name == "/ban" ||
         name == "/unban" || name == "/mute" || name == "/unmute" || name == "/role" ||
         name == "/transfer" || name == "/topic" || name == "/delete" || name == "/pin" ||
         name == "/unpin" || name == "/report" || name == "/members" || name == "/notify" ||
         name.substr(0, 5) == "/doc-";
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

  if (name == "/doc-insert") {
    // TEXT is everything after the one space that follows POS, kept exactly:
    // spaces at either end are part of what is inserted (a trailing \r is not).
    std::string_view raw = line;
    while (!raw.empty() && (raw.back() == '\r' || raw.back() == '\n')) raw.remove_suffix(1);
    while (!raw.empty() && is_space(raw.front())) raw.remove_prefix(1);
    std::string_view words[4];
    for (auto& w : words) {
      while (!raw.empty() && is_space(raw.front())) raw.remove_prefix(1);
      std::size_t end = 0;
      while (end < raw.size() && !is_space(raw[end])) ++end;
      w = raw.substr(0, end);
      raw.remove_prefix(end);
    }
    if (!raw.empty()) raw.remove_prefix(1);  // the separator after POS
    if (words[1].empty() || words[2].empty() || words[3].empty() || raw.empty()) {
      return BadCommand{"usage: /doc-insert CHANNEL TITLE POS TEXT..."};
    }
    DocCommand cmd{"doc-insert", std::string(words[1]), std::string(words[2]), 0, 0,
                   std::string(raw)};
    if (!parse_u64(words[3], UINT64_MAX, &cmd.pos)) {
      return BadCommand{"position " + quoted(words[3]) +
                        ": expected a character position (0 or more)"};
    }
    return cmd;
  }
  if (name == "/doc-delete") {
    std::vector<std::string_view> words;
    if (!take_words(rest, 4, &words)) {
      return BadCommand{"usage: /doc-delete CHANNEL TITLE POS LENGTH"};
    }
    DocCommand cmd{"doc-delete", std::string(words[0]), std::string(words[1])};
    if (!parse_u64(words[2], UINT64_MAX, &cmd.pos)) {
      return BadCommand{"position " + quoted(words[2]) +
                        ": expected a character position (0 or more)"};
    }
    if (!parse_u64(words[3], UINT64_MAX, &cmd.count) || cmd.count == 0) {
      return BadCommand{"length " + quoted(words[3]) +
                        ": expected a number of characters (1 or more)"};
    }
    return cmd;
  }
  if (name == "/doc-create" || name == "/doc-open" || name == "/doc-close" ||
      name == "/doc-show") {
    std::vector<std::string_view> words;
    if (!take_words(rest, 2, &words)) {
      return BadCommand{"usage: " + std::string(name) + " CHANNEL TITLE"};
    }
    return DocCommand{std::string(name.substr(1)), std::string(words[0]), std::string(words[1])};
  }

  if (name == "/dm") {
    const std::string_view user = next_word(rest);
    if (user.empty()) return BadCommand{"usage: /dm USER [TEXT...]"};
    return DirectCommand{std::string(user), std::string(rest)};
  }
  if (name == "/topic") {
    const std::string_view channel = next_word(rest);
    if (channel.empty()) return BadCommand{"usage: /topic CHANNEL [TEXT...] (no text clears it)"};
    return TopicCommand{std::string(channel), std::string(rest)};
  }
  if (name == "/report") {
    const std::string_view channel = next_word(rest);
    const std::string_view seq = next_word(rest);
    if (channel.empty() || seq.empty() || rest.empty()) {
      return BadCommand{"usage: /report CHANNEL SEQ REASON..."};
    }
    MessageCommand cmd{"report", std::string(channel), 0, std::string(rest)};
    if (!parse_u64(seq, UINT64_MAX, &cmd.seq) || cmd.seq == 0) {
      return BadCommand{"seq " + quoted(seq) +
                        ": expected a message's sequence number (1 or more)"};
    }
    return cmd;
  }

  if (name == "/report-dm") {
    const std::string_view user = next_word(rest);
    const std::string_view seq = next_word(rest);
    if (user.empty() || seq.empty() || rest.empty()) {
      return BadCommand{"usage: /report-dm USER SEQ REASON..."};
    }
    ReportDirectCommand cmd{std::string(user), 0, std::string(rest)};
    if (!parse_u64(seq, UINT64_MAX, &cmd.seq) || cmd.seq == 0) {
      return BadCommand{"seq " + quoted(seq) +
                        ": expected a message's sequence number (1 or more)"};
    }
    return cmd;
  }

  if (name == "/status") {
    const std::string_view mode = next_word(rest);
    if (mode.empty()) {
      return BadCommand{
          "usage: /status online|away|invisible [TEXT...] or /status hide-last-seen on|off"};
    }
    if (mode == "online" || mode == "away" || mode == "invisible") {
      return StatusCommand{std::string(mode), std::string(rest)};
    }
    if (mode == "hide-last-seen") {
      if (rest != "on" && rest != "off") return BadCommand{"usage: /status hide-last-seen on|off"};
      return StatusCommand{"", "", rest == "on"};
    }
    return BadCommand{"status " + quoted(mode) +
                      ": expected online, away, invisible or hide-last-seen"};
  }

  std::vector<std::string_view> args;
  if (name == "/presence") {
    PresenceCommand cmd;
    while (!rest.empty()) cmd.users.emplace_back(next_word(rest));
    if (cmd.users.empty()) return BadCommand{"usage: /presence USER..."};
    return cmd;
  }
  if (name == "/watch") {
    if (!take_words(rest, 1, &args) && !(args.size() == 2 && args[1] == "notify")) {
      return BadCommand{"usage: /watch USER [notify]"};
    }
    return WatchCommand{std::string(args[0]), true, args.size() == 2};
  }
  if (name == "/safety") {
    if (!take_words(rest, 1, &args)) return BadCommand{"usage: /safety USER"};
    return SafetyCommand{std::string(args[0])};
  }
  if (name == "/verify") {
    if (!take_words(rest, 1, &args) &&
        !(args.size() == 2 && (args[1] == "off" || args[1] == "on"))) {
      return BadCommand{"usage: /verify USER [off]"};
    }
    return VerifyCommand{std::string(args[0]), args.size() == 1 || args[1] == "on"};
  }
  if (name == "/device-remove") {
    if (!take_words(rest, 1, &args)) return BadCommand{"usage: /device-remove DEVICE"};
    return DeviceRemoveCommand{std::string(args[0])};
  }
  if (name == "/block" || name == "/unblock") {
    if (!take_words(rest, 1, &args)) return BadCommand{"usage: " + std::string(name) + " USER"};
    return BlockCommand{std::string(args[0]), name == "/block"};
  }
  if (name == "/unwatch") {
    if (!take_words(rest, 1, &args)) return BadCommand{"usage: /unwatch USER"};
    return WatchCommand{std::string(args[0]), false, false};
  }
  if (name == "/create") {
    if (!take_words(rest, 1, &args) && args.size() != 2) {
      return BadCommand{"usage: /create CHANNEL [public|private|broadcast]"};
    }
    CreateCommand cmd{std::string(args[0])};
    if (args.size() == 2) {
      if (args[1] != "public" && args[1] != "private" && args[1] != "broadcast") {
        return BadCommand{"kind " + quoted(args[1]) + ": expected public, private or broadcast"};
      }
      cmd.kind = std::string(args[1]);
    }
    return cmd;
  }
  if (name == "/invite" || name == "/kick" || name == "/unban" || name == "/unmute" ||
      name == "/transfer" || name == "/ban" || name == "/mute" || name == "/role") {
    const bool timed = name == "/ban" || name == "/mute";
    const bool with_role = name == "/role";
    const bool fits = take_words(rest, with_role ? 3 : 2, &args) || (timed && args.size() == 3);
    if (!fits) {
      return BadCommand{"usage: " + std::string(name) + " CHANNEL USER" +
                        (timed       ? " [SECONDS]"
                         : with_role ? " ROLE"
                                     : "")};
    }
    MemberCommand cmd{std::string(name.substr(1)), std::string(args[0]), std::string(args[1])};
    if (with_role) {
      if (!is_role(args[2])) {
        return BadCommand{"role " + quoted(args[2]) +
                          ": expected owner, admin, moderator, member or read_only"};
      }
      cmd.role = std::string(args[2]);
    } else if (timed && args.size() == 3) {
      std::uint64_t secs = 0;
      if (!parse_u64(args[2], kMaxSeconds, &secs)) {
        return BadCommand{"seconds " + quoted(args[2]) +
                          ": expected a number from 0 (until lifted) to " +
                          std::to_string(kMaxSeconds)};
      }
      cmd.seconds = secs;
    }
    return cmd;
  }
  if (name == "/delete" || name == "/pin" || name == "/unpin") {
    if (!take_words(rest, 2, &args))
      return BadCommand{"usage: " + std::string(name) + " CHANNEL SEQ"};
    MessageCommand cmd{std::string(name.substr(1)), std::string(args[0]), 0, ""};
    if (!parse_u64(args[1], UINT64_MAX, &cmd.seq) || cmd.seq == 0) {
      return BadCommand{"seq " + quoted(args[1]) +
                        ": expected a message's sequence number (1 or more)"};
    }
    return cmd;
  }
  if (name == "/join" || name == "/leave" || name == "/typing" || name == "/read" ||
      name == "/switch" || name == "/channel" || name == "/members") {
    if (!take_words(rest, 1, &args)) {
      return BadCommand{"usage: " + std::string(name) + " CHANNEL"};
    }
    std::string channel(args[0]);
    if (name == "/members") return MembersCommand{std::move(channel)};
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
  if (name == "/notify") {
    if (!take_words(rest, 2, &args) && args.size() != 3) {
      return BadCommand{"usage: /notify CHANNEL all|mentions|none [MUTE_SECONDS]"};
    }
    if (args[1] != "all" && args[1] != "mentions" && args[1] != "none") {
      return BadCommand{"level " + quoted(args[1]) + ": expected all, mentions or none"};
    }
    NotifyCommand cmd{std::string(args[0]), std::string(args[1])};
    if (args.size() == 3) {
      std::uint64_t secs = 0;
      if (!parse_u64(args[2], kMaxSeconds, &secs)) {
        return BadCommand{"seconds " + quoted(args[2]) +
                          ": expected a number from 0 (not muted) to " +
                          std::to_string(kMaxSeconds)};
      }
      cmd.mute_seconds = secs;
    }
    return cmd;
  }
  if (name == "/quit" || name == "/help" || name == "/channels" || name == "/unread" ||
      name == "/devices" || name == "/blocked") {
    if (!rest.empty()) return BadCommand{std::string(name) + " takes no arguments"};
    if (name == "/quit") return QuitCommand{};
    if (name == "/devices") return DevicesCommand{};
    if (name == "/blocked") return BlockCommand{"", true};
    if (name == "/channels") return ChannelsCommand{};
    if (name == "/unread") return UnreadCommand{};
    return HelpCommand{};
  }
  return BadCommand{"unknown command " + quoted(name)};
}

}  // namespace parley_cli
