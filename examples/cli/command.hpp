// What a line typed to parley-cli means (docs/cli.md, "Commands").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace parley_cli {

struct CreateCommand {
  std::string channel;
  std::string kind = "public";  // public, private or broadcast
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
// Opens the direct channel with `user`, and sends `text` there if not empty.
struct DirectCommand {
  std::string user;
  std::string text;
};
// A change to a member: /invite, /kick, /ban, /unban, /mute, /unmute, /role,
// /transfer. `command` is the name without the slash.
struct MemberCommand {
  std::string command;
  std::string channel;
  std::string user;
  std::string role{};                      // /role: a role's wire name
  std::optional<std::uint64_t> seconds{};  // /ban, /mute: how long (0: until lifted)
};
// /topic: sets (or, without text, clears) the channel's topic.
struct TopicCommand {
  std::string channel;
  std::string text;
};
// Something done to one message: /delete, /pin, /unpin, /report (with `reason`).
struct MessageCommand {
  std::string command;
  std::string channel;
  std::uint64_t seq = 0;
  std::string reason{};
};
// Lists the channel's members with their roles (and bans, to those who may ban).
struct MembersCommand {
  std::string channel;
};
// Sets this user's notification level of `channel` (Client::set_notification_level):
// "all", "mentions" or "none", and mutes plain messages for `mute_seconds` when given.
struct NotifyCommand {
  std::string channel;
  std::string level;
  std::optional<std::uint64_t> mute_seconds{};
};
// Lists the unread and mention counts of the channels this user is in, then the totals.
struct UnreadCommand {};
// The presence of `users` now (Client::query_presence): one presence line each.
struct PresenceCommand {
  std::vector<std::string> users;
};
// /watch, /unwatch: subscribes to (or drops) `user`'s presence
// (Client::watch_presence, unwatch_presence); `notify`: also be told when
// they come online.
struct WatchCommand {
  std::string user;
  bool watch = true;
  bool notify = false;
};
// /status: this user's presence setting (Client::set_presence). Either `mode`
// ("online", "away" or "invisible") with `text` (empty: clears the custom
// text), or `hide_last_seen` alone.
struct StatusCommand {
  std::string mode{};
  std::string text{};
  std::optional<bool> hide_last_seen{};
};
// /safety: the safety number of this user and `user` (Client::load_safety_number).
struct SafetyCommand {
  std::string user;
};
// /verify: marks `user` verified, or not (Client::verify_contact).
struct VerifyCommand {
  std::string user;
  bool verified = true;
};
// /devices: this user's devices (Client::list_devices), one line each.
struct DevicesCommand {};
// /device-remove: removes one of this user's devices (Client::remove_device).
struct DeviceRemoveCommand {
  std::string device;
};
// /block, /unblock: blocks `user` or lifts the block (Client::block_user);
// /blocked (`user` empty): lists the users blocked (Client::load_blocked_users).
struct BlockCommand {
  std::string user{};
  bool blocked = true;
};
// /report-dm: reports message `seq` of the direct channel with `user`
// (Client::report_message, which discloses it to the server with its
// franking opening).
struct ReportDirectCommand {
  std::string user;
  std::uint64_t seq = 0;
  std::string reason;
};
// A collaborative document command (docs/cli.md, "Documents"): `command` is
// "doc-create", "doc-open", "doc-close", "doc-show", "doc-insert" (at `pos`,
// `text`) or "doc-delete" (`count` characters at `pos`).
struct DocCommand {
  std::string command;
  std::string channel;
  std::string title;
  std::uint64_t pos = 0;
  std::uint64_t count = 0;
  std::string text{};
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

using Command =
    std::variant<CreateCommand, JoinCommand, LeaveCommand, SendCommand, HistoryCommand,
                 TypingCommand, ReadCommand, DirectCommand, MemberCommand, TopicCommand,
                 MessageCommand, MembersCommand, NotifyCommand, UnreadCommand, PresenceCommand,
                 WatchCommand, StatusCommand, SafetyCommand, VerifyCommand, DevicesCommand,
                 DeviceRemoveCommand, BlockCommand, ReportDirectCommand, DocCommand, SwitchCommand,
                 ChannelsCommand, SleepCommand, QuitCommand, HelpCommand, BadCommand>;

// The largest /history count: the library's HistoryQuery limit.
inline constexpr std::uint32_t kMaxHistoryCount = 1000;
// The longest /sleep: one hour.
inline constexpr std::uint32_t kMaxSleepMs = 3'600'000;
// The longest /ban or /mute: about 100 years (0 means until lifted).
inline constexpr std::uint64_t kMaxSeconds = 3'153'600'000;

// Parses one line (without its newline). `line` must not be blank.
Command parse_command(std::string_view line);

// True if the line holds nothing but white space.
bool is_blank(std::string_view line);

// Every command's name ("/create", ...), for completion.
const std::vector<std::string_view>& command_names();
// True for the commands whose first argument is a channel.
bool takes_channel(std::string_view name);

}  // namespace parley_cli
