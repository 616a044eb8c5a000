// Hub: notifications (docs/notifications.md). Each user's level per channel,
// the mentions of each message, the unread and mention counts the server
// keeps per user and channel and pushes to every connection of the user, and
// the `notification` events that tell a user what deserves their attention.
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "hub.hpp"
#include "log.hpp"

namespace parley::server {
namespace {

namespace code = wire::code;

bool valid_level(const std::string& level) {
  return level == "all" || level == "mentions" || level == "none";
}

}  // namespace

Hub::NotifySetting Hub::notify_setting(const std::string& user, const std::string& channel) const {
  auto u = notify_.find(user);
  if (u == notify_.end()) return {};
  auto c = u->second.find(channel);
  return c == u->second.end() ? NotifySetting{} : c->second;
}

void Hub::to_user(const std::string& user, const Encoded& item, const Session* except) {
  auto sessions = sessions_of_user_.find(user);
  if (sessions == sessions_of_user_.end()) return;
  for (Session* s : sessions->second) {
    if (s == except || s->closing() || !s->notifications()) continue;
    enqueue(*s, item);
  }
}

void Hub::handle(Session& session, const wire::Notify& request) {
  Channel* channel = existing_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  if (membership(session, request.rid, request.channel, *channel) == nullptr) return;
  if (!valid_level(request.level)) {
    return error(session, request.rid, code::kInvalidLevel,
                 fmt::format("notification level \"{}\" is not all, mentions or none",
                             shown(request.level)));
  }
  std::int64_t mute_until = std::max<std::int64_t>(request.mute_until.value_or(0), 0);
  if (Status s = store_.set_notify(request.channel, session.user(), request.level, mute_until);
      !s.ok()) {
    return store_error(session, request.rid, s);
  }
  NotifySetting setting{request.level, mute_until};
  if (setting.level == "all" && setting.mute_until == 0) {
    auto u = notify_.find(session.user());
    if (u != notify_.end()) u->second.erase(request.channel);
  } else {
    notify_[session.user()][request.channel] = setting;
  }
  ++metrics_.notify_changes_total[request.level];
  reply(session, wire::Ok{request.rid, request.channel, 0, channel->last_seq});
  wire::NotifyEvent changed{request.channel, request.level, std::nullopt};
  if (mute_until != 0) changed.mute_until = mute_until;
  to_user(session.user(), encoded(changed), &session);
}

void Hub::fill_counts(const std::string& user, wire::ChannelState* state) {
  NotifySetting setting = notify_setting(user, state->channel);
  if (setting.level != "all") state->level = setting.level;
  if (setting.mute_until != 0) state->mute_until = setting.mute_until;
  auto counts = store_.unread_counts(state->channel, user);
  if (!counts) {
    log("warning", "unread counts of \"{}\" in \"{}\": {}", user, state->channel,
        counts.status().message());
    return;
  }
  unread_[user][state->channel] = *counts;
  state->unread = counts->unread;
  state->mentions = counts->mentions;
}

bool Hub::wants_notifications(const std::string& user) const {
  auto sessions = sessions_of_user_.find(user);
  if (sessions == sessions_of_user_.end()) return false;
  return std::any_of(sessions->second.begin(), sessions->second.end(),
                     [](const Session* s) { return s->notifications() && !s->closing(); });
}

void Hub::refresh_unread(const std::string& user, const std::string& channel) {
  if (!wants_notifications(user)) {
    auto u = unread_.find(user);
    if (u != unread_.end()) u->second.erase(channel);
    return;
  }
  auto counts = store_.unread_counts(channel, user);
  if (!counts) {
    log("warning", "unread counts of \"{}\" in \"{}\": {}", user, channel,
        counts.status().message());
    return;
  }
  UnreadCounts& known = unread_[user][channel];
  if (known == *counts) return;
  known = *counts;
  to_user(user, encoded(wire::UnreadEvent{channel, counts->unread, counts->mentions}));
}

void Hub::refresh_unread_all(const std::string& channel_name, const Channel& channel) {
  for (const auto& [member, state] : channel.members) refresh_unread(member, channel_name);
}

void Hub::after_message(const StoredEvent& event, const Channel& channel) {
  // Who is mentioned: named members, every member for @channel, the members
  // online now for @here.
  std::set<std::string> mentioned;
  std::vector<std::string> stored;
  bool everyone = false;
  for (const Mention& m : find_mentions(event.text)) {
    if (m.user == "@channel") {
      everyone = true;
    } else if (m.user == "@here") {
      for (const auto& [member, state] : channel.members) {
        if (sessions_of_user_.count(member) != 0 && mentioned.insert(member).second) {
          stored.push_back(member);
        }
      }
    } else if (channel.members.count(m.user) != 0 && mentioned.insert(m.user).second) {
      stored.push_back(m.user);
    }
  }
  if (everyone) stored.push_back("@channel");
  if (!stored.empty()) {
    if (Status s = store_.add_mentions(event.channel, event.seq, stored); !s.ok()) {
      log("warning", "mentions of seq {} in \"{}\": {}", event.seq, event.channel, s.message());
    }
  }

  std::int64_t now = now_ms();
  for (const auto& [member, state] : channel.members) {
    if (member == event.sender) continue;
    bool mention = everyone || mentioned.count(member) != 0;
    if (!wants_notifications(member)) {
      // Recomputed from the store at the next welcome.
      auto u = unread_.find(member);
      if (u != unread_.end()) u->second.erase(event.channel);
      continue;
    }
    auto u = unread_.find(member);
    auto c = u != unread_.end() ? u->second.find(event.channel) : decltype(u->second.end()){};
    if (u != unread_.end() && c != u->second.end()) {
      c->second.unread += 1;
      if (mention) c->second.mentions += 1;
      to_user(member,
              encoded(wire::UnreadEvent{event.channel, c->second.unread, c->second.mentions}));
    } else {
      refresh_unread(member, event.channel);
    }
    NotifySetting setting = notify_setting(member, event.channel);
    const bool muted = setting.mute_until != 0 && setting.mute_until > now;
    const char* kind = nullptr;
    if (setting.level == "none") {
      kind = nullptr;
    } else if (channel.kind == ChannelKind::direct) {
      // A direct message is addressed to the member: "mentions" counts it as
      // one; a mute silences it (the payload carries no text either way).
      if (!muted) kind = setting.level == "mentions" ? "mention" : "message";
    } else if (mention) {
      kind = "mention";  // reaches a member even while plain messages are muted
    } else if (setting.level == "all" && !muted) {
      kind = "message";
    }
    if (kind == nullptr) {
      ++metrics_.notifications_suppressed_total[setting.level];
      continue;
    }
    ++metrics_.notifications_total[std::string(kind) + "/" + setting.level];
    to_user(member, encoded(wire::NotificationEvent{event.channel, event.seq, kind, event.sender}));
  }
}

void Hub::after_membership(const StoredEvent& event) {
  if (event.target.empty() || event.target == event.sender) return;
  const char* kind = nullptr;
  switch (event.kind) {
    case EventKind::invite: kind = "invite"; break;
    case EventKind::remove: kind = "remove"; break;
    case EventKind::ban: kind = "ban"; break;
    case EventKind::role: kind = "role"; break;
    default: return;
  }
  NotifySetting setting = notify_setting(event.target, event.channel);
  // Being removed or banned is told whatever the level: the channel is gone for them.
  if (setting.level == "none" && event.kind != EventKind::remove && event.kind != EventKind::ban) {
    ++metrics_.notifications_suppressed_total[setting.level];
    return;
  }
  ++metrics_.notifications_total[std::string(kind) + "/" + setting.level];
  to_user(event.target, encoded(wire::NotificationEvent{event.channel, event.seq, kind, event.sender}));
}

}  // namespace parley::server
