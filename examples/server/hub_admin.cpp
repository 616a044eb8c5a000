// Hub: administration (docs/channels.md, "Administration"). Requests of type
// "admin" from a session whose token carries the "adm" claim: list channels,
// users and reports, ban a user from the whole server, delete a channel, post
// a system message. `parley-server admin ...` sends the same requests.
#include <fmt/format.h>

#include "hub.hpp"
#include "log.hpp"

namespace parley::server {
namespace {

namespace code = wire::code;

constexpr std::uint32_t kMaxReportsListed = 500;
constexpr std::uint64_t kMaxSeconds = 100ull * 365 * 24 * 3600;

}  // namespace

std::optional<std::int64_t> Hub::server_ban(const std::string& user) const {
  auto it = banned_users_.find(user);
  if (it == banned_users_.end()) return std::nullopt;
  if (it->second != 0 && it->second <= now_ms()) return std::nullopt;
  return it->second;
}

void Hub::disconnect_user(const std::string& user, std::int64_t until) {
  auto it = sessions_of_user_.find(user);
  if (it == sessions_of_user_.end()) return;
  for (Session* s : it->second) {
    if (s->closing()) continue;
    wire::Error e{std::nullopt, code::kBanned,
                  fmt::format("\"{}\" was banned from this server by an administrator", user),
                  std::nullopt, std::nullopt, std::nullopt};
    if (until != 0) e.until = until;
    reply(*s, e);
    s->close(wire::close_code::kBanned, code::kBanned);
  }
}

void Hub::handle(Session& session, const wire::Admin& request) {
  const std::uint64_t rid = request.rid;
  if (!session.admin()) {
    return error(session, rid, code::kForbidden,
                 fmt::format("\"{}\" is not a server administrator (the token has no \"adm\" "
                             "claim)",
                             session.user()));
  }
  const std::string& action = request.action;
  wire::AdminResult result;
  result.rid = rid;
  result.action = action;
  auto need = [&](const std::optional<std::string>& field, const char* name) {
    if (field && !field->empty()) return true;
    error(session, rid, code::kMissingField,
          fmt::format("admin action \"{}\" needs field \"{}\"", action, name));
    return false;
  };

  if (action == "channels") {
    result.channels.emplace();
    for (const auto& [name, channel] : channels_) {
      if (channel.deleted) continue;
      result.channels->push_back(
          {name, to_string(channel.kind), channel.members.size(), channel.last_seq});
    }
    return reply(session, result);
  }
  if (action == "users") {
    auto users = store_.users();
    if (!users) return store_error(session, rid, users.status());
    result.users.emplace();
    for (const StoredUser& u : *users) {
      wire::AdminUser out{u.name, u.first_seen, u.last_seen, std::nullopt};
      if (server_ban(u.name)) out.banned_until = u.banned_until;
      result.users->push_back(std::move(out));
    }
    return reply(session, result);
  }
  if (action == "reports") {
    auto reports = store_.reports(kMaxReportsListed);
    if (!reports) return store_error(session, rid, reports.status());
    result.reports.emplace();
    for (StoredReport& r : *reports) {
      result.reports->push_back({r.id, std::move(r.channel), r.seq, std::move(r.reporter),
                                 std::move(r.reason), r.ts, std::move(r.sender),
                                 std::move(r.text),
                                 r.verified ? std::optional<bool>(true) : std::nullopt});
    }
    return reply(session, result);
  }
  if (action == "ban_user" || action == "unban_user") {
    if (!need(request.user, "user")) return;
    const std::string& user = *request.user;
    if (std::string why = check_user_name(user); !why.empty()) {
      return error(session, rid, code::kInvalidUser, why);
    }
    bool ban = action == "ban_user";
    std::int64_t now = now_ms();
    std::optional<std::int64_t> until;
    if (ban) {
      std::uint64_t seconds = std::min(request.seconds.value_or(0), kMaxSeconds);
      until = seconds == 0 ? 0 : now + static_cast<std::int64_t>(seconds) * 1000;
    }
    if (Status s = store_.set_user_ban(user, until, now); !s.ok()) {
      return store_error(session, rid, s);
    }
    ++metrics_.moderation_actions_total[action];
    log("info", "administrator \"{}\": {} \"{}\"", session.user(), action, user);
    if (ban) {
      banned_users_[user] = *until;
      reply(session, result);
      return disconnect_user(user, *until);
    }
    banned_users_.erase(user);
    return reply(session, result);
  }
  if (action == "delete_channel" || action == "system_message") {
    if (!need(request.channel, "channel")) return;
    Channel* channel = existing_channel(session, rid, *request.channel);
    if (channel == nullptr) return;
    const std::string name = *request.channel;
    StoredEvent event;
    event.channel = name;
    event.sender = session.user();
    event.ts = now_ms();
    ServerStore::Effects effects;
    if (action == "system_message") {
      if (!need(request.text, "text")) return;
      if (request.text->size() > wire::kMaxTextBytes) {
        return error(session, rid, code::kInvalidText,
                     fmt::format("system message has {} bytes of text, more than {}",
                                 request.text->size(), wire::kMaxTextBytes));
      }
      event.kind = EventKind::system;
      event.text = *request.text;
    } else {
      event.kind = EventKind::channel_deleted;
      effects = [&](std::int64_t id, std::uint64_t) { return store_.close_channel(id); };
    }
    auto stored = store_.append_event(event, effects);
    if (!stored) return store_error(session, rid, stored.status());
    channel->last_seq = stored->seq;
    ++metrics_.moderation_actions_total[action];
    log("info", "administrator \"{}\": {} in \"{}\"", session.user(), action, name);
    result.seq = stored->seq;
    reply(session, result);
    publish(*stored, &session);
    if (event.kind == EventKind::channel_deleted) {
      std::vector<std::string> members;
      for (const auto& [user, state] : channel->members) members.push_back(user);
      for (const std::string& user : members) drop_member(name, *channel, user);
      channel->deleted = true;
      channel->bans.clear();
      channel->pinned.clear();
      count_channels();
    }
    return;
  }
  error(session, rid, code::kInvalidAction,
        fmt::format("admin action \"{}\" is not channels, users, reports, ban_user, unban_user, "
                    "delete_channel or system_message",
                    shown(action)));
}

}  // namespace parley::server
