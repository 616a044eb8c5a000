#include "batch.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "command.hpp"
#include "direct.hpp"
#include "terminal.hpp"

namespace parley_cli {
namespace {

using Clock = std::chrono::steady_clock;

// The library fails a request itself after the command timeout (it is its
// request_timeout); the CLI gives up on its own only this much later, as a
// safety net.
constexpr auto kGrace = std::chrono::seconds(2);
// While draining, how often the outbox is read back from the cache.
constexpr auto kOutboxPoll = std::chrono::milliseconds(250);
// The longest the loop sleeps without looking around.
constexpr auto kMaxIdle = std::chrono::seconds(1);

// Refusals after which the client does not reconnect: a bad token, or this
// device was removed (by this user, on any of their devices).
bool is_auth_refusal(const parley::Status& s) {
  const std::string reason = s.reason();
  return reason == "invalid_token" || reason == "token_expired" || reason == "device_removed";
}

std::string seconds(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

std::string join(const std::set<std::string>& ids, const char* sep) {
  std::string out;
  for (const std::string& id : ids) {
    if (!out.empty()) out += sep;
    out += id;
  }
  return out;
}

class CommandRunner {
 public:
  CommandRunner(parley::Client& client, Inbox& inbox, Output& out, DirectNames& names,
                const RunOptions& options)
      : client_(client), inbox_(inbox), out_(out), names_(names), options_(options) {}

  int run();

 private:
  // The command being run; the next one starts when it completes or expires.
  struct InFlight {
    std::string command{};          // "create", "send", "sleep", ...
    std::string channel{};          // empty for /sleep
    parley::RequestId request = 0;  // the library request it waits for; 0: none
    std::string message_id{};       // /send: waits for this message's pending event
    Clock::time_point deadline{};
    std::uint32_t count = 0;  // /history: how many text messages to print
    // What the result line repeats of the command (docs/cli.md).
    std::string kind{};                      // /create
    std::string user{};                      // /dm, member commands, /block, /report-dm
    std::string device{};                    // /device-remove
    std::string role{};                      // /role
    std::optional<std::uint64_t> seconds{};  // /ban, /mute, /notify
    std::string level{};                     // /notify
    std::optional<std::uint64_t> ref{};      // message commands
    std::string text{};                      // /dm: what to send once the channel is open
    bool with_seq = false;                   // moderation: the result has the event's seq
    std::optional<std::uint64_t> asked{};    // /presence: how many users were asked
    std::string status{};                    // /status
    std::string status_text{};               // /status
    std::optional<bool> notify{};            // /watch
    std::optional<bool> hide_last_seen{};    // /status hide-last-seen
    std::string title{};                     // document commands
    bool doc_edit = false;                   // /doc-insert, /doc-delete: waits for its doc line
  };

  void handle(const parley::StateChanged& e);
  void handle(const parley::MessageReceived& e);
  void handle(const parley::MessagePending& e);
  void handle(const parley::MessageSent& e);
  void handle(const parley::MessageFailed& e);
  void handle(const parley::ChannelRequestDone& e);
  void handle(const parley::HistoryLoaded& e);
  void handle(const parley::TypingChanged& e) { out_.typing(e); }
  void handle(const parley::ReceiptUpdated& e) { out_.receipt(e); }
  void handle(const parley::SyncProgress& e) { out_.sync_progress(e); }
  void handle(const parley::ChannelInfoLoaded& e);
  void handle(const parley::NotificationReceived& e) { out_.notification(e); }
  void handle(const parley::UnreadChanged& e) {
    out_.unread(e.channel, parley::UnreadCount{e.unread, e.mentions}, false);
  }
  void handle(const parley::NotificationLevelChanged& e) { out_.notify_level(e); }
  void handle(const parley::PresenceChanged& e) {
    out_.presence(e.presence,
                  current_ && (current_->command == "presence" || current_->command == "watch"));
  }
  void handle(const parley::PresenceNotified& e) { out_.presence_notified(e.user); }
  void handle(const parley::OnlineCountChanged& e) { out_.online_count(e); }
  void handle(const parley::IdentityChanged& e) { out_.identity_changed(e); }
  void handle(const parley::SafetyNumberLoaded& e);
  void handle(const parley::SessionReset& e) { out_.session_reset(e); }
  void handle(const parley::MessageUpdated& e);
  void handle(const parley::DevicesLoaded& e);
  void handle(const parley::BlockedUsersLoaded& e);
  void handle(const parley::DocumentChanged& e) {
    out_.document(e.channel, e.title, e.text, e.version);
    if (e.local && current_ && current_->doc_edit && current_->channel == e.channel &&
        current_->title == e.title) {
      out_.result({.command = current_->command, .channel = e.channel, .title = e.title});
      current_.reset();
    }
  }
  void handle(const parley::DocumentAwareness& e) { out_.document_cursor(e); }
  void handle(const parley::DocumentsLoaded& e) { open_requests_.erase(e.request); }
  void handle(const parley::DocumentFailed& e) { out_.error(error_from(e.status)); }
  void run_doc_command(const DocCommand& c);
  void doc_opened(const InFlight& done, const parley::Status& status);
  void run_report_direct(const ReportDirectCommand& c);
  void show_unread();
  void run_status_command(const StatusCommand& c);

  void start(const std::string& line);
  void run_command(Command command);
  bool resolve_direct(Command& command);
  void start_request(std::string command, std::string channel, parley::RequestId request);
  void run_member_command(const MemberCommand& c);
  void expire_current();
  bool current_is(parley::RequestId request) const {
    return current_ && current_->request != 0 && current_->request == request;
  }

  std::string text_of(const std::string& id) const {
    auto it = texts_.find(id);
    return it == texts_.end() ? std::string() : it->second;
  }

  // Interactive: where plain text goes.
  void set_current(const std::string& channel);
  void show_channels(bool only_if_any);
  std::vector<std::string> member_channels();
  // The line being edited changed (interactive, on a terminal).
  void on_edit(const std::string& text);
  void stop_typing();
  void wait(Clock::time_point deadline, bool want_input);

  void begin_drain(bool quit);
  bool drained() const {
    return open_requests_.empty() && pending_ids_.empty() && doc_pending_ == 0;
  }
  void poll_outbox();
  void report_drain_timeout(bool interrupted = false);

  parley::Client& client_;
  Inbox& inbox_;
  Output& out_;
  DirectNames& names_;
  const RunOptions options_;

  parley::LifecycleState state_ = parley::LifecycleState::disconnected;
  // Our messages in the outbox, not yet acknowledged (including earlier runs').
  std::set<std::string> pending_ids_;
  // Texts of the messages this run sent, until they are sent or failed.
  std::map<std::string, std::string> texts_;
  // Pending ids the outbox no longer listed at the last poll.
  std::set<std::string> unlisted_ids_;
  // Document edits not acknowledged by the server, as last read from the cache.
  std::uint64_t doc_pending_ = 0;
  // Requests whose completion has not arrived and that are not reported failed.
  std::set<parley::RequestId> open_requests_;
  std::optional<InFlight> current_;
  // A command naming "@U" whose direct channel is being looked up (the
  // current request is then open_direct); it runs once the channel is known.
  std::optional<Command> deferred_;
  // Interactive: where plain text goes.
  std::string current_channel_;
  // Interactive: the channel we told that we are typing in ("" for none).
  std::string typing_in_;
  // Interactive: a message of the current channel was shown; mark it read.
  bool read_due_ = false;

  bool draining_ = false;
  bool quit_command_ = false;  // draining because of /quit (not end of input)
  Clock::time_point drain_deadline_;
  Clock::time_point next_outbox_poll_;
  std::optional<int> exit_code_;
};

int CommandRunner::run() {
  if (auto outbox = client_.outbox()) {
    for (const parley::OutboxEntry& e : *outbox) {
      if (e.state == parley::DeliveryState::pending) pending_ids_.insert(e.id);
    }
    if (!pending_ids_.empty()) {
      out_.diagnostic(std::to_string(pending_ids_.size()) +
                      " message(s) left in the outbox by an earlier run");
    }
  } else {
    out_.diagnostic("cannot read the outbox: " + outbox.status().to_string());
  }
  if (auto docs = client_.pending_document_updates(); docs && *docs > 0) {
    doc_pending_ = *docs;
    out_.diagnostic(std::to_string(*docs) + " document edit(s) left unsent by an earlier run");
  }
  if (options_.interactive) {
    const std::vector<std::string> channels = member_channels();
    if (!channels.empty()) set_current(channels.front());
    show_channels(true);
  }
  if (options_.terminal != nullptr) {
    options_.terminal->set_on_edit([this](const std::string& text) { on_edit(text); });
    options_.terminal->set_channel_names([this] {
      std::vector<std::string> names = member_channels();
      for (std::string& name : names) name = names_.shown(name);  // "@U" for direct channels
      return names;
    });
  }

  for (;;) {
    while (auto event = inbox_.take_event()) {
      std::visit([this](const auto& e) { handle(e); }, *event);
      if (exit_code_) return *exit_code_;
    }
    if (read_due_) {
      read_due_ = false;
      if (!current_channel_.empty()) client_.mark_read(current_channel_);
    }
    if (draining_ && options_.terminal != nullptr && options_.terminal->take_interrupt()) {
      if (drained()) return kExitOk;
      report_drain_timeout(true);
      return kExitDrainTimeout;
    }
    const Clock::time_point now = Clock::now();
    if (current_ && now >= current_->deadline) expire_current();

    if (!current_ && !draining_) {
      if (auto line = inbox_.take_line()) {
        if (!is_blank(*line)) start(*line);
        continue;  // print what the command caused before reading on
      }
      if (inbox_.input_ended()) begin_drain(false);
    }

    Clock::time_point wake = now + kMaxIdle;
    if (current_) wake = std::min(wake, current_->deadline);
    if (draining_ && !current_) {
      if (now >= next_outbox_poll_) poll_outbox();
      if (drained()) {
        if (quit_command_) out_.result({.command = "quit"});
        return kExitOk;
      }
      if (now >= drain_deadline_) {
        report_drain_timeout();
        return kExitDrainTimeout;
      }
      wake = std::min({wake, drain_deadline_, next_outbox_poll_});
    }
    wait(wake, !current_ && !draining_);
  }
}

void CommandRunner::wait(Clock::time_point deadline, bool want_input) {
  if (options_.terminal != nullptr) {
    options_.terminal->wait(deadline, inbox_, want_input);
  } else {
    inbox_.wait(deadline, want_input);
  }
}

// ---- events -------------------------------------------------------------------

void CommandRunner::handle(const parley::StateChanged& e) {
  state_ = e.state;
  out_.state(e.state, e.reason);
  if (e.state == parley::LifecycleState::disconnected && !e.reason.ok() && !options_.interactive) {
    out_.diagnostic("disconnected: " + e.reason.to_string());  // interactive: state() says it
  }
  if (e.state == parley::LifecycleState::disconnected && is_auth_refusal(e.reason)) {
    out_.error(error_from(e.reason));
    exit_code_ = kExitUsage;
  }
}

void CommandRunner::handle(const parley::MessageReceived& e) {
  out_.message(e.message);
  if (options_.interactive && e.message.channel == current_channel_) read_due_ = true;
}

void CommandRunner::handle(const parley::MessagePending& e) {
  pending_ids_.insert(e.id);
  out_.pending(e.channel, e.id, text_of(e.id));
  if (current_ && !current_->message_id.empty() && current_->message_id == e.id) {
    // /send, or /dm with text.
    out_.result(
        {.command = current_->command, .channel = e.channel, .id = e.id, .user = current_->user});
    current_.reset();
  }
}

void CommandRunner::handle(const parley::MessageSent& e) {
  pending_ids_.erase(e.id);
  unlisted_ids_.erase(e.id);
  out_.sent(e.channel, e.id, e.seq, text_of(e.id));
  texts_.erase(e.id);
}

void CommandRunner::handle(const parley::MessageFailed& e) {
  pending_ids_.erase(e.id);
  unlisted_ids_.erase(e.id);
  texts_.erase(e.id);
  out_.error(error_from(e.status, e.id));
}

void CommandRunner::handle(const parley::ChannelRequestDone& e) {
  open_requests_.erase(e.request);
  if (!current_is(e.request)) {
    out_.diagnostic(
        "late answer for " +
        (e.channel.empty() ? std::string("a presence request") : "channel " + e.channel) + ": " +
        (e.status.ok() ? "ok" : e.status.to_string()));
    return;
  }
  InFlight done = std::move(*current_);
  current_.reset();
  const std::string& command = done.command;
  if (command == "open_direct") {
    std::optional<Command> deferred = std::move(deferred_);
    deferred_.reset();
    if (!e.status.ok()) {
      out_.error(error_from(e.status));
      return;
    }
    names_.learn(e.channel, done.user);
    if (deferred) run_command(std::move(*deferred));  // "@U" resolves now
    return;
  }
  if (command == "doc-open") return doc_opened(done, e.status);
  if (!e.status.ok()) {
    out_.error(error_from(e.status));
    return;
  }
  if (command == "dm") names_.learn(e.channel, done.user);
  if (command == "dm" && !done.text.empty()) {
    // The channel is open: send the text, and finish when it is in the outbox.
    set_current(e.channel);
    parley::Result<std::string> id = client_.send(e.channel, done.text);
    if (!id) {
      out_.error(error_from(id.status()));
      return;
    }
    pending_ids_.insert(*id);
    texts_[*id] = done.text;
    current_ = InFlight{.command = "dm",
                        .channel = e.channel,
                        .message_id = *id,
                        .deadline = Clock::now() + options_.command_timeout,
                        .user = done.user};
    return;
  }
  out_.result({.command = command,
               .channel = e.channel,
               .count = done.asked,
               .kind = done.kind,
               .user = done.user,
               .device = done.device,
               .role = done.role,
               .seconds = done.seconds,
               .ref = done.ref,
               .seq = done.with_seq ? std::optional<std::uint64_t>(e.seq) : std::nullopt,
               .title = done.title,
               .level = done.level,
               .status = done.status,
               .text = done.status_text,
               .notify = done.notify,
               .hide_last_seen = done.hide_last_seen});
  if (command == "create" || command == "join" || command == "dm") {
    set_current(e.channel);
  } else if (command == "leave" && current_channel_ == e.channel) {
    const std::vector<std::string> left = member_channels();
    set_current(left.empty() ? "" : left.front());
  }
}

void CommandRunner::handle(const parley::ChannelInfoLoaded& e) {
  open_requests_.erase(e.request);
  if (!current_is(e.request)) {
    out_.diagnostic("late channel info for " + e.channel + " ignored");
    return;
  }
  current_.reset();
  if (!e.status.ok()) {
    out_.error(error_from(e.status));
    return;
  }
  if (!e.complete) {
    out_.diagnostic("members of " + e.channel +
                    ": server not reachable; showing what the cache has");
  }
  out_.channel_info(e);
  out_.result({.command = "members",
               .channel = e.channel,
               .count = static_cast<std::uint64_t>(e.members.size()),
               .kind = parley::to_string(e.kind),
               .topic = e.meta.topic.value_or("")});
}

void CommandRunner::handle(const parley::SafetyNumberLoaded& e) {
  open_requests_.erase(e.request);
  if (!current_is(e.request)) {
    out_.diagnostic("late safety number for " + e.user + " ignored");
    return;
  }
  current_.reset();
  if (!e.status.ok()) {
    out_.error(error_from(e.status));
    return;
  }
  out_.safety(e);
  out_.result({.command = "safety", .user = e.user});
}

void CommandRunner::handle(const parley::MessageUpdated& e) {
  out_.message_updated(e.message);
  if (options_.interactive && e.message.channel == current_channel_) read_due_ = true;
}

void CommandRunner::handle(const parley::DevicesLoaded& e) {
  open_requests_.erase(e.request);
  if (!current_is(e.request)) {
    out_.diagnostic("late list of devices ignored");
    return;
  }
  current_.reset();
  if (!e.status.ok()) {
    out_.error(error_from(e.status));
    return;
  }
  for (const parley::DeviceInfo& d : e.devices) out_.device(d);
  out_.result({.command = "devices", .count = static_cast<std::uint64_t>(e.devices.size())});
}

void CommandRunner::handle(const parley::BlockedUsersLoaded& e) {
  open_requests_.erase(e.request);
  if (!current_is(e.request)) {
    out_.diagnostic("late list of blocked users ignored");
    return;
  }
  InFlight done = std::move(*current_);
  current_.reset();
  if (!e.status.ok()) {
    out_.error(error_from(e.status));
    return;
  }
  out_.result({.command = done.command,
               .count = static_cast<std::uint64_t>(e.users.size()),
               .user = done.user,
               .blocked = e.users});
}

void CommandRunner::handle(const parley::HistoryLoaded& e) {
  open_requests_.erase(e.request);
  if (!current_is(e.request)) {
    out_.diagnostic("late history for channel " + e.channel + " ignored");
    return;
  }
  const std::size_t wanted = current_->count;
  current_.reset();
  if (!e.status.ok()) {
    out_.error(error_from(e.status));
    return;
  }
  if (!e.complete) {
    out_.diagnostic("history of " + e.channel +
                    ": server not reachable; showing what the cache has");
  }
  // Only text messages, and no more than asked for (the latest ones).
  std::vector<const parley::Message*> texts;
  for (const parley::Message& m : e.messages) {
    if (m.kind == parley::EventKind::message) texts.push_back(&m);
  }
  const std::size_t skip = texts.size() > wanted ? texts.size() - wanted : 0;
  for (std::size_t i = skip; i < texts.size(); ++i) out_.message(*texts[i]);
  if (options_.interactive && e.channel == current_channel_ && texts.size() > skip) {
    read_due_ = true;
  }
  out_.result({.command = "history",
               .channel = e.channel,
               .count = static_cast<std::uint64_t>(texts.size() - skip)});
}

// ---- commands -----------------------------------------------------------------

void CommandRunner::start(const std::string& line) {
  // A person at the keyboard is active (the SDK sends one signal per 10 s at most).
  if (options_.interactive) client_.report_activity();
  std::size_t first = line.find_first_not_of(" \t");
  if (options_.interactive && first != std::string::npos && line[first] != '/') {
    if (current_channel_.empty()) {
      out_.error({.code = "bad_command",
                  .message = "create or join a channel first, or use /send CHANNEL TEXT"});
      return;
    }
    std::string text = line.substr(first);
    while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.pop_back();
    if (typing_in_ == current_channel_) typing_in_.clear();  // sending stops typing there
    stop_typing();
    run_command(SendCommand{current_channel_, std::move(text)});
    return;
  }
  stop_typing();
  run_command(parse_command(line));
}

// A command's channel argument "@U" names the direct channel with user U
// (docs/cli.md, "Direct messages"). False when that channel is not known yet:
// open_direct looks it up, and the command runs when it answers.
bool CommandRunner::resolve_direct(Command& command) {
  std::string* channel = std::visit(
      [](auto& c) -> std::string* {
        using C = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<C, CreateCommand>) {
          return nullptr;  // "@..." is refused as a name to create
        } else if constexpr (requires { c.channel; }) {
          return &c.channel;
        } else {
          return nullptr;
        }
      },
      command);
  if (channel == nullptr) return true;
  if (std::optional<std::string> name = names_.resolve(*channel)) {
    *channel = *name;
    return true;
  }
  const std::string user = channel->substr(1);
  start_request("open_direct", *channel, client_.open_direct(user));
  current_->user = user;
  deferred_ = std::move(command);
  return false;
}

void CommandRunner::run_command(Command command) {
  if (!resolve_direct(command)) return;
  std::visit(
      [this](const auto& c) {
        using C = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<C, CreateCommand>) {
          parley::ChannelOptions options;
          parley::parse_channel_kind(c.kind, &options.kind);
          start_request("create", c.channel, client_.create_channel(c.channel, options));
          current_->kind = c.kind;
        } else if constexpr (std::is_same_v<C, DirectCommand>) {
          start_request("dm", "", client_.open_direct(c.user));
          current_->user = c.user;
          current_->text = c.text;
        } else if constexpr (std::is_same_v<C, MemberCommand>) {
          run_member_command(c);
        } else if constexpr (std::is_same_v<C, TopicCommand>) {
          parley::ChannelMeta meta;
          meta.topic = c.text;
          start_request("topic", c.channel, client_.set_meta(c.channel, meta));
          current_->with_seq = true;
        } else if constexpr (std::is_same_v<C, MessageCommand>) {
          parley::RequestId request =
              c.command == "delete"  ? client_.delete_message(c.channel, c.seq)
              : c.command == "pin"   ? client_.pin_message(c.channel, c.seq, true)
              : c.command == "unpin" ? client_.pin_message(c.channel, c.seq, false)
                                     : client_.report_message(c.channel, c.seq, c.reason);
          start_request(c.command, c.channel, request);
          current_->ref = c.seq;
          current_->with_seq = c.command != "report";
        } else if constexpr (std::is_same_v<C, NotifyCommand>) {
          parley::NotificationLevel level = parley::NotificationLevel::all;
          parley::parse_notification_level(c.level, &level);  // checked by parse_command
          std::optional<std::chrono::system_clock::time_point> until;
          if (c.mute_seconds && *c.mute_seconds > 0) {
            until = std::chrono::system_clock::now() +
                    std::chrono::seconds(static_cast<std::int64_t>(*c.mute_seconds));
          }
          start_request("notify", c.channel,
                        client_.set_notification_level(c.channel, level, until));
          current_->level = c.level;
          current_->seconds = c.mute_seconds;
        } else if constexpr (std::is_same_v<C, UnreadCommand>) {
          show_unread();
        } else if constexpr (std::is_same_v<C, PresenceCommand>) {
          start_request("presence", "", client_.query_presence(c.users));
          current_->asked = c.users.size();
        } else if constexpr (std::is_same_v<C, WatchCommand>) {
          if (c.watch) {
            start_request("watch", "", client_.watch_presence({c.user}, c.notify));
            if (c.notify) current_->notify = true;
          } else {
            start_request("unwatch", "", client_.unwatch_presence({c.user}));
          }
          current_->user = c.user;
        } else if constexpr (std::is_same_v<C, StatusCommand>) {
          run_status_command(c);
        } else if constexpr (std::is_same_v<C, SafetyCommand>) {
          start_request("safety", "", client_.load_safety_number(c.user));
          current_->user = c.user;
        } else if constexpr (std::is_same_v<C, VerifyCommand>) {
          const parley::Status status = client_.verify_contact(c.user, c.verified);
          if (!status.ok()) {
            out_.error(error_from(status));
            return;
          }
          out_.result({.command = "verify", .user = c.user, .verified = c.verified});
        } else if constexpr (std::is_same_v<C, DevicesCommand>) {
          start_request("devices", "", client_.list_devices());
        } else if constexpr (std::is_same_v<C, DeviceRemoveCommand>) {
          start_request("device-remove", "", client_.remove_device(c.device));
          current_->device = c.device;
        } else if constexpr (std::is_same_v<C, BlockCommand>) {
          if (c.user.empty()) {
            start_request("blocked", "", client_.load_blocked_users());
          } else {
            start_request(c.blocked ? "block" : "unblock", "",
                          client_.block_user(c.user, c.blocked));
            current_->user = c.user;
          }
        } else if constexpr (std::is_same_v<C, ReportDirectCommand>) {
          run_report_direct(c);
        } else if constexpr (std::is_same_v<C, DocCommand>) {
          run_doc_command(c);
        } else if constexpr (std::is_same_v<C, MembersCommand>) {
          start_request("members", c.channel, client_.load_channel_info(c.channel));
        } else if constexpr (std::is_same_v<C, JoinCommand>) {
          start_request("join", c.channel, client_.join_channel(c.channel));
        } else if constexpr (std::is_same_v<C, LeaveCommand>) {
          start_request("leave", c.channel, client_.leave_channel(c.channel));
        } else if constexpr (std::is_same_v<C, HistoryCommand>) {
          parley::HistoryQuery query;
          query.before = 0;
          query.limit = c.count;
          start_request("history", c.channel, client_.load_history(c.channel, query));
          current_->count = c.count;
        } else if constexpr (std::is_same_v<C, SendCommand>) {
          parley::Result<std::string> id = client_.send(c.channel, c.text);
          if (!id) {
            out_.error(error_from(id.status()));
            return;
          }
          pending_ids_.insert(*id);
          texts_[*id] = c.text;
          current_ = InFlight{.command = "send",
                              .channel = c.channel,
                              .message_id = *id,
                              .deadline = Clock::now() + options_.command_timeout};
        } else if constexpr (std::is_same_v<C, TypingCommand>) {
          // Ephemeral: nothing is sent while offline, and no answer comes back.
          const std::string why = parley::check_channel_name(c.channel);
          if (!why.empty()) {
            out_.error({.code = "invalid_name", .message = why});
            return;
          }
          client_.set_typing(c.channel, true);
          out_.result({.command = "typing", .channel = c.channel});
        } else if constexpr (std::is_same_v<C, ReadCommand>) {
          const parley::Status status = client_.mark_read(c.channel);
          if (!status.ok()) {
            out_.error(error_from(status));
            return;
          }
          out_.result({.command = "read", .channel = c.channel});
        } else if constexpr (std::is_same_v<C, SwitchCommand>) {
          if (!options_.interactive) {
            out_.error({.code = "bad_command", .message = "/switch is for interactive mode"});
            return;
          }
          const std::vector<std::string> channels = member_channels();
          if (std::find(channels.begin(), channels.end(), c.channel) == channels.end()) {
            out_.error(
                {.code = "not_member",
                 .message = "you are not in channel " + quoted(c.channel) + "; /join it first"});
            return;
          }
          set_current(c.channel);
          out_.result({.command = "switch", .channel = c.channel});
        } else if constexpr (std::is_same_v<C, ChannelsCommand>) {
          if (!options_.interactive) {
            out_.error({.code = "bad_command", .message = "/channels is for interactive mode"});
            return;
          }
          show_channels(false);
        } else if constexpr (std::is_same_v<C, SleepCommand>) {
          current_ = InFlight{.command = "sleep",
                              .deadline = Clock::now() + std::chrono::milliseconds(c.ms)};
        } else if constexpr (std::is_same_v<C, QuitCommand>) {
          begin_drain(true);
        } else if constexpr (std::is_same_v<C, HelpCommand>) {
          if (options_.interactive) {
            out_.help();
          } else {
            out_.error({.code = "bad_command", .message = "/help is for interactive mode"});
          }
        } else {
          static_assert(std::is_same_v<C, BadCommand>);
          out_.error({.code = "bad_command", .message = c.message});
        }
      },
      command);
}

// /unread: one line per channel this user is in, the totals, then the result.
void CommandRunner::show_unread() {
  auto channels = client_.channels();
  if (!channels) {
    out_.error(error_from(channels.status()));
    return;
  }
  std::uint64_t count = 0;
  for (const parley::ChannelInfo& c : *channels) {
    if (!c.member) continue;
    out_.unread(c.name, client_.unread(c.name), true);
    ++count;
  }
  out_.unread_total(client_.badge());
  out_.result({.command = "unread", .count = count});
}

void CommandRunner::run_status_command(const StatusCommand& c) {
  parley::PresenceSettings settings;
  if (c.hide_last_seen) {
    settings.hide_last_seen = *c.hide_last_seen;
  } else {
    parley::PresenceMode mode = parley::PresenceMode::online;
    parley::parse_presence_mode(c.mode, &mode);  // checked by parse_command
    settings.status = mode;
    settings.text = c.text;  // like /topic: no text clears it
  }
  start_request("status", "", client_.set_presence(settings));
  current_->status = c.mode;
  current_->status_text = c.text;
  current_->hide_last_seen = c.hide_last_seen;
}

// /report-dm U SEQ REASON: the direct channel with U as "@U" names it. Only a
// channel this client knows: a message to report is in its cache, so there
// is nothing to open on the server.
void CommandRunner::run_report_direct(const ReportDirectCommand& c) {
  const std::string why = parley::check_user_name(c.user);
  if (!why.empty()) {
    out_.error({.code = "invalid_user", .message = why});
    return;
  }
  const std::optional<std::string> channel = client_.direct_channel(c.user);
  if (!channel) {
    out_.error({.code = "no_such_message",
                .message = "no direct channel with " + quoted(c.user) + " on this device"});
    return;
  }
  names_.learn(*channel, c.user);
  start_request("report-dm", *channel, client_.report_message(*channel, c.seq, c.reason));
  current_->user = c.user;
  current_->ref = c.seq;
}

// The document commands (docs/cli.md, "Documents"). The edits and /doc-show
// answer from the cache at once; /doc-create and /doc-open wait for the server.
void CommandRunner::run_doc_command(const DocCommand& c) {
  const CommandResult done{.command = c.command, .channel = c.channel, .title = c.title};
  if (c.command == "doc-create" || c.command == "doc-open" || c.command == "doc-close") {
    parley::RequestId request = 0;
    if (c.command == "doc-create") {
      request = client_.create_document(c.channel, c.title);
    } else if (c.command == "doc-open") {
      request = client_.open_document(c.channel, c.title);
    } else {
      request = client_.close_document(c.channel, c.title);
    }
    start_request(c.command, c.channel, request);
    current_->title = c.title;
    current_->with_seq = c.command == "doc-create";
    return;
  }
  if (c.command == "doc-show") {
    parley::Result<parley::DocumentView> view = client_.document_text(c.channel, c.title);
    if (!view) {
      out_.error(error_from(view.status()));
      return;
    }
    out_.document(c.channel, c.title, view->text, view->version);
    out_.result(done);
    return;
  }
  const parley::Status status = c.command == "doc-insert"
                                    ? client_.insert_text(c.channel, c.title, c.pos, c.text)
                                    : client_.delete_text(c.channel, c.title, c.pos, c.count);
  if (!status.ok()) {
    out_.error(error_from(status));
    return;
  }
  // The edit's doc line (a DocumentChanged, already queued) comes first.
  current_ = InFlight{.command = c.command,
                      .channel = c.channel,
                      .deadline = Clock::now() + options_.command_timeout,
                      .title = c.title,
                      .doc_edit = true};
}

// /doc-open answered. Offline, a document this device has in its cache is
// shown from there (the SDK opens it once connected), as /history does.
void CommandRunner::doc_opened(const InFlight& done, const parley::Status& status) {
  const CommandResult result{.command = "doc-open", .channel = done.channel, .title = done.title};
  if (status.ok()) {
    out_.result(result);  // its doc line came before, as a DocumentChanged
    return;
  }
  const bool offline = status.code() == parley::StatusCode::offline ||
                       status.code() == parley::StatusCode::timeout;
  parley::Result<parley::DocumentView> view = client_.document_text(done.channel, done.title);
  if (!offline || !view) {
    out_.error(error_from(status));
    return;
  }
  out_.diagnostic("document " + done.title + " of " + done.channel +
                  ": server not reachable; showing what the cache has");
  out_.document(done.channel, done.title, view->text, view->version);
  out_.result(result);
}

void CommandRunner::run_member_command(const MemberCommand& c) {
  const std::chrono::seconds duration(static_cast<std::int64_t>(c.seconds.value_or(0)));
  parley::RequestId request = 0;
  if (c.command == "invite") {
    request = client_.invite(c.channel, c.user);
  } else if (c.command == "kick") {
    request = client_.remove_member(c.channel, c.user);
  } else if (c.command == "ban") {
    request = client_.ban(c.channel, c.user, duration);
  } else if (c.command == "unban") {
    request = client_.unban(c.channel, c.user);
  } else if (c.command == "mute") {
    request = client_.mute(c.channel, c.user, duration);
  } else if (c.command == "unmute") {
    request = client_.unmute(c.channel, c.user);
  } else if (c.command == "role") {
    parley::Role role = parley::Role::member;
    parley::parse_role(c.role, &role);  // checked by parse_command
    request = client_.set_role(c.channel, c.user, role);
  } else {
    request = client_.transfer_ownership(c.channel, c.user);
  }
  start_request(c.command, c.channel, request);
  current_->user = c.user;
  current_->role = c.role;
  current_->seconds = c.seconds;
  current_->with_seq = true;
}

void CommandRunner::start_request(std::string command, std::string channel,
                                  parley::RequestId request) {
  open_requests_.insert(request);
  current_ = InFlight{.command = std::move(command),
                      .channel = std::move(channel),
                      .request = request,
                      .deadline = Clock::now() + options_.command_timeout + kGrace};
}

void CommandRunner::expire_current() {
  InFlight c = std::move(*current_);
  current_.reset();
  // Reported here as failed, so no longer outstanding for the drain; a late
  // answer only gets a diagnostic.
  open_requests_.erase(c.request);
  if (c.command == "open_direct") deferred_.reset();  // the command it was for fails with it
  if (c.command == "sleep") {
    out_.result({.command = "sleep"});
    return;
  }
  const std::string what = c.channel.empty() ? c.command : c.command + " " + quoted(c.channel);
  const std::string limit = seconds(options_.command_timeout);
  if (c.command == "send") {
    out_.error({.code = "timeout",
                .message = what + ": not in the outbox after " + limit,
                .id = c.message_id});
  } else if (state_ != parley::LifecycleState::ready) {
    out_.error({.code = "offline", .message = what + ": server not reachable within " + limit});
  } else {
    out_.error(
        {.code = "timeout", .message = what + ": no answer from the server within " + limit});
  }
}

// ---- interactive ----------------------------------------------------------------

void CommandRunner::set_current(const std::string& channel) {
  if (channel == current_channel_) return;
  stop_typing();
  current_channel_ = channel;
  out_.current_channel(channel);
  // What is on the screen of the current channel counts as read.
  if (options_.interactive && !channel.empty()) client_.mark_read(channel);
}

std::vector<std::string> CommandRunner::member_channels() {
  std::vector<std::string> names;
  if (auto channels = client_.channels()) {
    for (const parley::ChannelInfo& c : *channels) {
      if (c.member) names.push_back(c.name);
    }
  }
  return names;
}

void CommandRunner::show_channels(bool only_if_any) {
  std::vector<std::string> names = member_channels();
  if (only_if_any && names.empty()) return;
  out_.result({.command = "channels", .names = std::move(names)});
}

void CommandRunner::on_edit(const std::string& text) {
  client_.report_activity();
  const std::size_t first = text.find_first_not_of(" \t");
  const bool typing = first != std::string::npos && text[first] != '/';
  if (!typing || current_channel_.empty()) {
    stop_typing();
    return;
  }
  if (typing_in_ != current_channel_) stop_typing();
  client_.set_typing(current_channel_, true);  // the SDK sends one signal per 3 s at most
  typing_in_ = current_channel_;
}

void CommandRunner::stop_typing() {
  if (typing_in_.empty()) return;
  client_.set_typing(typing_in_, false);
  typing_in_.clear();
}

// ---- draining -----------------------------------------------------------------

void CommandRunner::begin_drain(bool quit) {
  draining_ = true;
  quit_command_ = quit;
  const Clock::time_point now = Clock::now();
  drain_deadline_ = now + options_.drain_timeout;
  next_outbox_poll_ = now;
}

// The events say when a message leaves the outbox; reading the outbox back is
// a safety net for entries of earlier runs. An id counts as gone only after
// two polls in a row miss it, so its "sent" event, if any, is printed first.
void CommandRunner::poll_outbox() {
  next_outbox_poll_ = Clock::now() + kOutboxPoll;
  if (auto docs = client_.pending_document_updates()) doc_pending_ = *docs;
  if (pending_ids_.empty()) return;
  auto outbox = client_.outbox();
  if (!outbox) return;
  std::set<std::string> listed;
  for (const parley::OutboxEntry& e : *outbox) {
    if (e.state == parley::DeliveryState::pending) listed.insert(e.id);
  }
  for (auto it = pending_ids_.begin(); it != pending_ids_.end();) {
    if (listed.count(*it) != 0) {
      unlisted_ids_.erase(*it);
      ++it;
    } else if (unlisted_ids_.count(*it) != 0) {
      unlisted_ids_.erase(*it);
      it = pending_ids_.erase(it);
    } else {
      unlisted_ids_.insert(*it);
      ++it;
    }
  }
}

void CommandRunner::report_drain_timeout(bool interrupted) {
  ErrorLine e;
  e.code = "drain_timeout";
  const std::string gave_up =
      interrupted ? "interrupted" : "gave up after " + seconds(options_.drain_timeout);
  if (!pending_ids_.empty()) {
    e.message = gave_up +
                (state_ == parley::LifecycleState::ready ? "" : " (server not reachable)") +
                "; still in the outbox: " + join(pending_ids_, " ");
    e.ids.assign(pending_ids_.begin(), pending_ids_.end());
  } else if (doc_pending_ > 0) {
    e.message = gave_up +
                (state_ == parley::LifecycleState::ready ? "" : " (server not reachable)") +
                "; document edits not yet acknowledged: " + std::to_string(doc_pending_);
  } else {
    e.message =
        gave_up + "; " + std::to_string(open_requests_.size()) + " request(s) still unanswered";
  }
  out_.error(e);
}

}  // namespace

int run_commands(parley::Client& client, Inbox& inbox, Output& out, DirectNames& names,
                 const RunOptions& options) {
  const int rc = CommandRunner(client, inbox, out, names, options).run();
  if (options.terminal != nullptr) {  // they point into the runner, which is gone
    options.terminal->set_on_edit(nullptr);
    options.terminal->set_channel_names(nullptr);
  }
  return rc;
}

}  // namespace parley_cli
