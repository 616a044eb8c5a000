// Presence on the client (docs/presence.md, "In the SDK and the CLI"): the
// settings request, watch, unwatch and get_presence, activity signals, and
// the server's presence, presence_list and online_count frames.
//
// The server derives presence; the client only keeps what it was told, in
// memory (presence_, online_counts_), and its own watch list (watched_). A
// subscription belongs to a connection on the server, so the watch list is
// sent again after every welcome: its replies are fresh snapshots.
#include <fmt/format.h>

#include <set>

#include "client/engine.hpp"
#include "protocol/codec.hpp"

namespace parley {

const char* to_string(PresenceStatus status) {
  switch (status) {
    case PresenceStatus::online:
      return "online";
    case PresenceStatus::away:
      return "away";
    case PresenceStatus::offline:
      return "offline";
  }
  return "offline";
}

bool parse_presence_status(std::string_view text, PresenceStatus* out) {
  for (auto status : {PresenceStatus::online, PresenceStatus::away, PresenceStatus::offline}) {
    if (text == to_string(status)) {
      *out = status;
      return true;
    }
  }
  return false;
}

const char* to_string(PresenceMode mode) {
  switch (mode) {
    case PresenceMode::online:
      return "online";
    case PresenceMode::away:
      return "away";
    case PresenceMode::invisible:
      return "invisible";
  }
  return "online";
}

bool parse_presence_mode(std::string_view text, PresenceMode* out) {
  for (auto mode : {PresenceMode::online, PresenceMode::away, PresenceMode::invisible}) {
    if (text == to_string(mode)) {
      *out = mode;
      return true;
    }
  }
  return false;
}

namespace client {

namespace {

// At most one activity signal per this long: the server's idle time is
// minutes, so a signal every few seconds would only be traffic.
constexpr auto kActivityInterval = std::chrono::seconds(10);

bool authenticated(LifecycleState s) {
  return s == LifecycleState::syncing || s == LifecycleState::ready;
}

Status invalid(std::string message, const char* reason) {
  return Status(StatusCode::invalid_argument, std::move(message), reason);
}

// 1-100 valid user names (the server checks the same).
Status check_users(const std::vector<std::string>& users) {
  if (users.empty()) return invalid("no user given", wire::code::kInvalidUser);
  if (users.size() > wire::kMaxPresenceUsers) {
    return invalid(fmt::format("{} users given, more than {} per request", users.size(),
                               wire::kMaxPresenceUsers),
                   wire::code::kTooManyUsers);
  }
  for (const std::string& user : users) {
    if (std::string why = check_user_name(user); !why.empty()) {
      return invalid(why, wire::code::kInvalidUser);
    }
  }
  return Status();
}

bool valid_mode(PresenceMode mode) {
  return mode == PresenceMode::online || mode == PresenceMode::away ||
         mode == PresenceMode::invisible;
}

}  // namespace

// ---- requests ---------------------------------------------------------------------

void Engine::presence_request(RequestId req, wire::ClientMessage message,
                              std::function<Status(const wire::ServerMessage&)> answered) {
  auto done = [this, req](const Status& s) { events_.push(ChannelRequestDone{req, "", s, 0}); };
  auto run = std::make_shared<std::function<void()>>();
  std::weak_ptr<std::function<void()>> weak = run;
  *run = [this, message, answered, done, weak]() {
    auto self = weak.lock();
    request(
        message,
        [answered, done](const wire::ServerMessage* reply, const Status& error) {
          if (reply == nullptr) return done(error);
          done(answered(*reply));
        },
        [self] { (*self)(); });
  };
  when_ready([run] { (*run)(); }, done);
}

void Engine::set_presence(RequestId req, const PresenceSettings& settings) {
  auto refuse = [this, req](Status s) {
    events_.push(ChannelRequestDone{req, "", std::move(s), 0});
  };
  wire::SetPresence message;
  if (settings.status) {
    if (!valid_mode(*settings.status)) {
      return refuse(invalid(fmt::format("presence status {} is not online, away or invisible",
                                        static_cast<int>(*settings.status)),
                            wire::code::kInvalidStatus));
    }
    message.status = to_string(*settings.status);
  }
  if (settings.text) {
    if (settings.text->size() > wire::kMaxStatusText) {
      return refuse(invalid(fmt::format("status text is {} bytes, over the limit of {}",
                                        settings.text->size(), wire::kMaxStatusText),
                            wire::code::kInvalidText));
    }
    if (!wire::is_valid_utf8(*settings.text)) {
      return refuse(invalid("status text is not valid utf-8", wire::code::kInvalidText));
    }
    message.text = *settings.text;
  }
  if (settings.text_until) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  settings.text_until->time_since_epoch())
                  .count();
    if (ms <= 0) {
      return refuse(invalid(fmt::format("status text expiry {} ms is not after 1970", ms),
                            wire::code::kInvalidText));
    }
    // Cleared text has no expiry.
    if (!settings.text || !settings.text->empty()) message.text_until = ms;
  }
  message.hide_last_seen = settings.hide_last_seen;
  // The status only: never the text.
  std::string status = settings.status ? to_string(*settings.status) : "unchanged";
  presence_request(req, message, [this, status](const wire::ServerMessage& reply) {
    if (!std::holds_alternative<wire::Ok>(reply)) {
      return Status(StatusCode::protocol_error, "unexpected reply", "bad_reply");
    }
    analytics("presence_set", {{"status", status}});
    return Status();
  });
}

void Engine::watch_presence(RequestId req, const std::vector<std::string>& users, bool notify) {
  if (Status s = check_users(users); !s.ok()) {
    return events_.push(ChannelRequestDone{req, "", s, 0});
  }
  std::set<std::string> added;
  for (const std::string& user : users) {
    if (!watched_.count(user)) added.insert(user);
  }
  if (watched_.size() + added.size() > wire::kMaxWatchedUsers) {
    return events_.push(ChannelRequestDone{
        req, "",
        invalid(fmt::format("a client watches at most {} users ({} now, {} more asked)",
                            wire::kMaxWatchedUsers, watched_.size(), added.size()),
                wire::code::kTooManyUsers),
        0});
  }
  std::map<std::string, std::uint64_t> calls;
  for (const std::string& user : users) calls[user] = watch_call_[user] = ++watch_calls_;
  wire::Watch message{0, users, notify ? std::optional<bool>(true) : std::nullopt};
  presence_request(req, message, [this, calls, notify](const wire::ServerMessage& reply) {
    const auto* list = std::get_if<wire::PresenceList>(&reply);
    if (list == nullptr) return Status(StatusCode::protocol_error, "unexpected reply", "bad_reply");
    for (const auto& [user, call] : calls) {
      if (watch_call_[user] == call) watched_[user] = notify;  // not undone by a later call
    }
    for (const auto& item : list->users) handle_presence(item);
    return Status();
  });
}

void Engine::unwatch_presence(RequestId req, const std::vector<std::string>& users) {
  if (Status s = check_users(users); !s.ok()) {
    return events_.push(ChannelRequestDone{req, "", s, 0});
  }
  // Forgotten at once: the next connection does not watch them again, even
  // if this request never reaches the server.
  for (const std::string& user : users) {
    watch_call_[user] = ++watch_calls_;
    watched_.erase(user);
  }
  presence_request(req, wire::Unwatch{0, users}, [](const wire::ServerMessage& reply) {
    if (!std::holds_alternative<wire::Ok>(reply)) {
      return Status(StatusCode::protocol_error, "unexpected reply", "bad_reply");
    }
    return Status();
  });
}

void Engine::query_presence(RequestId req, const std::vector<std::string>& users) {
  if (Status s = check_users(users); !s.ok()) {
    return events_.push(ChannelRequestDone{req, "", s, 0});
  }
  presence_request(req, wire::GetPresence{0, users}, [this](const wire::ServerMessage& reply) {
    const auto* list = std::get_if<wire::PresenceList>(&reply);
    if (list == nullptr) return Status(StatusCode::protocol_error, "unexpected reply", "bad_reply");
    for (const auto& item : list->users) handle_presence(item);
    return Status();
  });
}

void Engine::report_activity() {
  if (!authenticated(state_)) return;  // the next connection's auth counts as activity
  auto now = Clock::now();
  if (activity_sent_ && now - *activity_sent_ < kActivityInterval) return;
  activity_sent_ = now;
  // Fire and forget: no reply on success; a refusal has no one waiting.
  transport_->send(wire::encode(wire::ClientMessage(wire::Activity{next_rid_++})));
}

std::optional<Presence> Engine::presence(const std::string& user) const {
  auto it = presence_.find(user);
  if (it == presence_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::uint64_t> Engine::online_count(const std::string& channel) const {
  auto it = online_counts_.find(channel);
  if (it == online_counts_.end()) return std::nullopt;
  return it->second;
}

// ---- from the server --------------------------------------------------------------

void Engine::handle_presence(const wire::PresenceEvent& event) {
  if (!check_user_name(event.user).empty()) return;
  Presence p;
  if (!parse_presence_status(event.status, &p.status)) return;  // a newer status: ignore
  p.user = event.user;
  if (event.last_seen && *event.last_seen > 0) p.last_seen_ms = event.last_seen;
  if (event.text && !event.text->empty()) p.text = event.text;
  if (p.text && event.text_until && *event.text_until > 0) p.text_until_ms = event.text_until;
  p.invisible = event.invisible.value_or(false);
  p.hide_last_seen = event.hide_last_seen.value_or(false);
  presence_[p.user] = p;
  bool notify = event.notify.value_or(false);
  events_.push(PresenceChanged{std::move(p)});
  if (notify) events_.push(PresenceNotified{event.user});
}

void Engine::handle_presence_list(const wire::PresenceList& list) {
  for (const auto& item : list.users) handle_presence(item);
}

void Engine::handle_online_count(const wire::OnlineCount& count) {
  if (!check_channel_name(count.channel).empty()) return;
  online_counts_[count.channel] = count.online;
  events_.push(OnlineCountChanged{count.channel, count.online, count.members});
}

// Subscriptions end with the connection: watch the same users again, in
// requests of at most 100 that share a notify flag. Their replies are the
// fresh snapshots; a failure is left to the next connection.
void Engine::rewatch_presence() {
  for (bool notify : {false, true}) {
    std::vector<std::string> batch;
    auto flush = [this, &batch, notify] {
      if (batch.empty()) return;
      wire::Watch message{0, std::move(batch), notify ? std::optional<bool>(true) : std::nullopt};
      batch.clear();
      request(message, [this](const wire::ServerMessage* reply, const Status&) {
        if (reply == nullptr) return;
        if (const auto* list = std::get_if<wire::PresenceList>(reply)) handle_presence_list(*list);
      });
    };
    for (const auto& [user, wants_notify] : watched_) {
      if (wants_notify != notify) continue;
      batch.push_back(user);
      if (batch.size() == wire::kMaxPresenceUsers) flush();
    }
    flush();
  }
}

void Engine::presence_session_ended() {
  if (session_since_ && session_ready_) {
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - *session_since_).count();
    analytics("presence_session", {}, {{"duration_ms", ms}});
  }
  session_since_.reset();
  session_ready_ = false;
}

}  // namespace client
}  // namespace parley
