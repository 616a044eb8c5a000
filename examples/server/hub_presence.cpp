// Presence (docs/presence.md): online, away and offline derived from a user's
// connections and activity, last seen, custom status text, privacy, and the
// bounded fan-out of changes.
//
// Changes are never sent as they happen: presence_changed() queues the user
// and tick() publishes each queued user once, comparing what others would see
// now with what they were last told. Channels of at least max_members get an
// online count instead of per-member events.
#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>

#include "hub.hpp"
#include "log.hpp"
#include "parley/types.hpp"

namespace parley::server {
namespace {

namespace code = wire::code;

constexpr const char* kOnline = "online";
constexpr const char* kAway = "away";
constexpr const char* kOffline = "offline";
constexpr const char* kInvisible = "invisible";
// Idleness is checked this often, not every tick.

bool same(const wire::PresenceEvent& a, const wire::PresenceEvent& b) {
  return a.user == b.user && a.status == b.status && a.last_seen == b.last_seen &&
         a.text == b.text && a.text_until == b.text_until && a.invisible == b.invisible &&
         a.hide_last_seen == b.hide_last_seen;
}

}  // namespace

// ---- state ----------------------------------------------------------------------

Hub::PresenceState& Hub::presence_of(const std::string& user) {
  auto [it, added] = presence_.try_emplace(user);
  if (added) {
    it->second.stored.user = user;
    it->second.shown = {user, kOffline};
    it->second.own = {user, kOffline};
  }
  return it->second;
}

void Hub::presence_changed(const std::string& user) {
  PresenceState& state = presence_of(user);
  if (state.queued) return;
  state.queued = true;
  presence_changed_.push_back(user);
  want_tick();
}

void Hub::schedule_away_check(const std::string& user, PresenceState& state) {
  if (state.own.status != kOnline || state.away_check_at != SteadyTime{}) return;
  auto sessions = sessions_of_user_.find(user);
  if (sessions == sessions_of_user_.end()) return;
  SteadyTime latest{};
  for (Session* s : sessions->second) {
    auto it = session_presence_.find(s);
    if (it != session_presence_.end()) latest = std::max(latest, it->second.last_active);
  }
  if (latest == SteadyTime{}) return;
  state.away_check_at = latest + presence_config_.away_after;
  away_checks_.insert({state.away_check_at, user});
}

std::chrono::milliseconds Hub::next_tick_delay() const {
  using std::chrono::milliseconds;
  if (!presence_changed_.empty()) return kPresenceTick;
  auto now = std::chrono::steady_clock::now();
  SteadyTime due = now + kMaxTickWait;
  for (const auto& [user, since] : closing_users_) {
    due = std::min(due, since + presence_config_.grace);
  }
  if (!away_checks_.empty()) due = std::min(due, away_checks_.begin()->first);
  if (!counts_changed_.empty()) due = std::min(due, next_count_at_);
  if (!idle_docs_.empty()) due = std::min(due, next_doc_unload());
  if (!expiring_text_.empty()) {
    std::int64_t wall = expiring_text_.begin()->first - now_ms();
    due = std::min(due, now + milliseconds(std::max<std::int64_t>(wall, 0)));
  }
  auto wait = std::chrono::duration_cast<milliseconds>(due - now);
  return std::clamp(wait, milliseconds(kPresenceTick), milliseconds(kMaxTickWait));
}

wire::PresenceEvent Hub::presence_view(const std::string& user, const PresenceState& state,
                                       bool own) const {
  const StoredPresence& p = state.stored;
  auto sessions = sessions_of_user_.find(user);
  bool connected = sessions != sessions_of_user_.end() && !sessions->second.empty();
  if (!connected && closing_users_.count(user) != 0) {
    // Within the grace period: nothing changes until it ends, except that a
    // user who went invisible (set_presence just before the connection
    // closed, before the change was published) is never shown online.
    if (own) return state.own;
    if (p.status != kInvisible || state.shown.status == kOffline) return state.shown;
    wire::PresenceEvent hidden{user, kOffline};
    if (!p.hide_last_seen && p.last_seen != 0) hidden.last_seen = p.last_seen;
    return hidden;
  }
  wire::PresenceEvent out{user, kOffline};
  if (connected) {
    if (p.status == kAway) {
      out.status = kAway;
    } else {
      auto now = std::chrono::steady_clock::now();
      bool active = std::any_of(sessions->second.begin(), sessions->second.end(), [&](Session* s) {
        auto it = session_presence_.find(s);
        return it != session_presence_.end() &&
               now - it->second.last_active < presence_config_.away_after;
      });
      out.status = active ? kOnline : kAway;
    }
    if (!own && p.status == kInvisible) out.status = kOffline;
  }
  bool show_last_seen = own || (!p.hide_last_seen && out.status == kOffline);
  if (show_last_seen && p.last_seen != 0) out.last_seen = p.last_seen;
  if (!p.text.empty() && (p.text_until == 0 || p.text_until > now_ms())) {
    out.text = p.text;
    if (p.text_until != 0) out.text_until = p.text_until;
  }
  if (own) {
    if (p.status == kInvisible) out.invisible = true;
    if (p.hide_last_seen) out.hide_last_seen = true;
  }
  return out;
}

wire::PresenceEvent Hub::presence_for(const Session& session, const std::string& user) {
  auto it = presence_.find(user);
  if (it == presence_.end()) return {user, kOffline};
  return user == session.user() ? it->second.own : it->second.shown;
}

Status Hub::save_presence(const PresenceState& state) {
  Status s = store_.save_presence(state.stored);
  if (!s.ok()) log("error", "cannot store presence of \"{}\": {}", state.stored.user, s.message());
  return s;
}

// ---- publishing -----------------------------------------------------------------

bool Hub::publish_presence(const std::string& user) {
  PresenceState& state = presence_of(user);
  state.queued = false;
  bool sent = false;
  wire::PresenceEvent shown = presence_view(user, state, false);
  wire::PresenceEvent own = presence_view(user, state, true);

  if (!same(shown, state.shown)) {
    sent = true;
    ++metrics_.presence_changes_total;
    bool was_visible = state.shown.status != kOffline;
    bool visible = shown.status != kOffline;
    state.shown = shown;
    Encoded item = encoded(shown);
    Encoded notify_item;
    std::unordered_set<const Session*> told;
    auto tell = [&](Session* s, const Encoded& what) {
      if (s->closing() || !told.insert(s).second) return;
      ++metrics_.presence_events_total;
      enqueue(*s, what);
    };
    // Watchers first, so that one also sharing a channel still gets its notify.
    if (auto w = watchers_.find(user); w != watchers_.end()) {
      for (auto& [session, notify] : w->second) {
        if (notify && !was_visible && visible) {
          if (!notify_item) {
            wire::PresenceEvent flagged = shown;
            flagged.notify = true;
            notify_item = encoded(flagged);
          }
          tell(session, notify_item);
        } else {
          tell(session, item);
        }
      }
    }
    if (auto mine = channels_of_user_.find(user); mine != channels_of_user_.end()) {
      for (const std::string& name : mine->second) {
        auto c = channels_.find(name);
        if (c == channels_.end()) continue;
        Channel& channel = c->second;
        if (was_visible != visible) {
          channel.online += visible ? 1 : std::uint64_t(-1);
          if (!small_channel(channel)) counts_changed_.insert(name);
        }
        if (!small_channel(channel)) continue;
        for (const auto& [member, ignored] : channel.members) {
          if (member == user) continue;
          auto sessions = sessions_of_user_.find(member);
          if (sessions == sessions_of_user_.end()) continue;
          for (Session* s : sessions->second) {
            if (s->presence()) tell(s, item);
          }
        }
      }
    }
  }
  if (!same(own, state.own)) {
    state.own = own;
    if (auto sessions = sessions_of_user_.find(user); sessions != sessions_of_user_.end()) {
      Encoded item = encoded(own);
      for (Session* s : sessions->second) {
        if (s->closing() || !s->presence()) continue;
        ++metrics_.presence_events_total;
        enqueue(*s, item);
      }
    }
  }
  schedule_away_check(user, state);
  return sent;
}

void Hub::send_online_count(const std::string& channel_name, const Channel& channel) {
  std::pair<std::uint64_t, std::uint64_t> now{channel.online, channel.members.size()};
  auto& sent = counts_sent_[channel_name];
  if (sent == now) return;
  sent = now;
  Encoded item = encoded(wire::OnlineCount{channel_name, now.first, now.second});
  for (const auto& [member, ignored] : channel.members) {
    auto sessions = sessions_of_user_.find(member);
    if (sessions == sessions_of_user_.end()) continue;
    for (Session* s : sessions->second) {
      if (s->closing() || !s->presence()) continue;
      ++metrics_.online_count_events_total;
      enqueue(*s, item);
    }
  }
}

void Hub::tick() {
  auto now = std::chrono::steady_clock::now();
  unload_idle_docs(now);
  // Grace periods that ended: the user is offline now.
  for (auto it = closing_users_.begin(); it != closing_users_.end();) {
    if (now - it->second < presence_config_.grace) {
      ++it;
      continue;
    }
    std::string user = it->first;
    it = closing_users_.erase(it);
    PresenceState& state = presence_of(user);
    ++metrics_.presence_sessions_ended_total;
    metrics_.presence_session_seconds.observe(
        std::chrono::duration<double>(now - presence_config_.grace - state.session_start).count());
    presence_changed(user);
  }
  // Online users whose away check is due: published again, which shows them
  // away if they were idle all along, and schedules the next check otherwise.
  while (!away_checks_.empty() && away_checks_.begin()->first <= now) {
    std::string user = away_checks_.begin()->second;
    away_checks_.erase(away_checks_.begin());
    auto it = presence_.find(user);
    if (it == presence_.end()) continue;
    it->second.away_check_at = SteadyTime{};
    presence_changed(user);
  }
  std::int64_t wall = now_ms();
  while (!expiring_text_.empty() && expiring_text_.begin()->first <= wall) {
    std::string user = expiring_text_.begin()->second;
    expiring_text_.erase(expiring_text_.begin());
    PresenceState& state = presence_of(user);
    if (state.stored.text_until == 0 || state.stored.text_until > wall) continue;
    state.stored.text.clear();
    state.stored.text_until = 0;
    save_presence(state);
    presence_changed(user);
  }
  std::vector<std::string> changed;
  changed.swap(presence_changed_);
  for (const std::string& user : changed) publish_presence(user);
  if (now >= next_count_at_ && !counts_changed_.empty()) {
    next_count_at_ = now + presence_config_.count_interval;
    std::set<std::string> names;
    names.swap(counts_changed_);
    for (const std::string& name : names) {
      auto c = channels_.find(name);
      if (c != channels_.end() && !c->second.deleted && !small_channel(c->second)) {
        send_online_count(name, c->second);
      }
    }
  }
}

// ---- connections ------------------------------------------------------------------

void Hub::presence_opened(Session& session) {
  const std::string& user = session.user();
  session_presence_[&session].last_active = std::chrono::steady_clock::now();
  PresenceState& state = presence_of(user);
  if (sessions_of_user_[user].size() == 1) {
    ++metrics_.presence_online_users;
    // Back within the grace period: the same presence session goes on.
    if (closing_users_.erase(user) == 0) {
      ++metrics_.presence_sessions_started_total;
      state.session_start = std::chrono::steady_clock::now();
    }
  }
  presence_changed(user);
}

void Hub::presence_welcome(Session& session) {
  if (!session.presence()) return;
  const std::string& user = session.user();
  wire::PresenceList peers;
  // First the user's own presence as it is now (published to the other
  // devices at the next tick), then the peers' as last published.
  peers.users.push_back(presence_view(user, presence_of(user), true));
  std::unordered_set<std::string> listed{user};
  auto mine = channels_of_user_.find(user);
  if (mine == channels_of_user_.end()) return reply(session, peers);
  for (const std::string& name : mine->second) {
    auto c = channels_.find(name);
    if (c == channels_.end() || c->second.deleted) continue;
    const Channel& channel = c->second;
    if (!small_channel(channel)) {
      ++metrics_.online_count_events_total;
      reply(session, wire::OnlineCount{name, channel.online, channel.members.size()});
      continue;
    }
    for (const auto& [member, ignored] : channel.members) {
      if (listed.insert(member).second) peers.users.push_back(presence_for(session, member));
    }
  }
  reply(session, peers);
}

void Hub::presence_closed(Session& session) {
  auto mine = session_presence_.find(&session);
  if (mine != session_presence_.end()) {
    for (const auto& [user, notify] : mine->second.watching) {
      auto w = watchers_.find(user);
      if (w == watchers_.end()) continue;
      w->second.erase(&session);
      if (w->second.empty()) watchers_.erase(w);
    }
    session_presence_.erase(mine);
  }
  if (!session.authenticated()) return;
  const std::string& user = session.user();
  if (sessions_of_user_.count(user) != 0) {  // another connection is open
    presence_changed(user);
    return;
  }
  --metrics_.presence_online_users;
  closing_users_[user] = std::chrono::steady_clock::now();
  want_tick();
  PresenceState& state = presence_of(user);
  if (state.stored.status != kInvisible) {
    // Written now rather than when the grace period ends, so that a stop of
    // the server keeps it too.
    state.stored.last_seen = now_ms();
    save_presence(state);
  }
}

void Hub::note_activity(Session& session) {
  auto it = session_presence_.find(&session);
  if (it == session_presence_.end()) return;
  it->second.last_active = std::chrono::steady_clock::now();
  auto state = presence_.find(session.user());
  if (state != presence_.end() && state->second.own.status == kAway &&
      state->second.stored.status == kOnline) {
    presence_changed(session.user());
  }
}

void Hub::presence_membership(const std::string& channel_name, Channel& channel,
                              const std::string& user, bool added) {
  auto state = presence_.find(user);
  bool visible = state != presence_.end() && state->second.shown.status != kOffline;
  if (visible) channel.online += added ? 1 : std::uint64_t(-1);
  if (!small_channel(channel)) {
    counts_changed_.insert(channel_name);
    want_tick();
    return;
  }
  if (!added) return;
  // The newcomer learns the members' presence and they learn the newcomer's.
  auto sessions = sessions_of_user_.find(user);
  if (sessions != sessions_of_user_.end()) {
    for (Session* s : sessions->second) {
      if (s->closing() || !s->presence()) continue;
      wire::PresenceList list;
      list.channel = channel_name;
      for (const auto& [member, ignored] : channel.members) {
        if (member != user) list.users.push_back(presence_for(*s, member));
      }
      if (!list.users.empty()) reply(*s, list);
    }
  }
  if (state == presence_.end()) return;
  // A change waiting for the tick goes out now, to this channel too (the
  // newcomer is a member already): one event per member, not two.
  if (state->second.queued && publish_presence(user)) return;
  Encoded item = encoded(state->second.shown);
  for (const auto& [member, ignored] : channel.members) {
    if (member == user) continue;
    auto theirs = sessions_of_user_.find(member);
    if (theirs == sessions_of_user_.end()) continue;
    for (Session* s : theirs->second) {
      if (s->closing() || !s->presence()) continue;
      ++metrics_.presence_events_total;
      enqueue(*s, item);
    }
  }
}

// ---- requests ---------------------------------------------------------------------

bool Hub::validate_users(Session& session, std::uint64_t rid,
                         const std::vector<std::string>& users) {
  if (users.empty() || users.size() > wire::kMaxPresenceUsers) {
    error(session, rid, users.empty() ? code::kInvalidUser : code::kTooManyUsers,
          fmt::format("\"users\" must list 1-{} users, not {}", wire::kMaxPresenceUsers,
                      users.size()));
    return false;
  }
  for (const std::string& user : users) {
    if (std::string why = check_user_name(user); !why.empty()) {
      error(session, rid, code::kInvalidUser, why);
      return false;
    }
  }
  return true;
}

void Hub::handle(Session& session, const wire::SetPresence& request) {
  if (request.status && *request.status != kOnline && *request.status != kAway &&
      *request.status != kInvisible) {
    return error(session, request.rid, code::kInvalidStatus,
                 fmt::format("status \"{}\" is not online, away or invisible",
                             shown(*request.status)));
  }
  if (request.text && request.text->size() > wire::kMaxStatusText) {
    return error(session, request.rid, code::kInvalidText,
                 fmt::format("status text has {} bytes, more than {}", request.text->size(),
                             wire::kMaxStatusText));
  }
  if (request.text_until && *request.text_until < 0) {
    return error(session, request.rid, code::kBadField,
                 "field \"text_until\" must not be negative");
  }
  const std::string& user = session.user();
  PresenceState& state = presence_of(user);
  StoredPresence before = state.stored;
  StoredPresence& p = state.stored;
  if (request.status) p.status = *request.status;
  if (request.text) {
    p.text = *request.text;
    // New text without an expiry does not expire; cleared text has none.
    p.text_until = p.text.empty() ? 0 : request.text_until.value_or(0);
  } else if (request.text_until && !p.text.empty()) {
    p.text_until = *request.text_until;
  }
  if (request.hide_last_seen) p.hide_last_seen = *request.hide_last_seen;
  if (p.status == kInvisible && before.status != kInvisible) {
    // Others see the user go offline now: this is when they were last seen.
    p.last_seen = now_ms();
  }
  if (Status s = save_presence(state); !s.ok()) {
    state.stored = before;
    return error(session, request.rid, code::kInternal, "the server could not store this");
  }
  if (p.text_until != 0) {
    expiring_text_.insert({p.text_until, user});
    want_tick();
  }
  note_activity(session);  // setting one's status is activity too
  if (p.status == kInvisible && before.status != kInvisible) {
    // Hidden at once, not at the next tick: until then a watcher's snapshot
    // (or the frozen view of a closing connection) would still show online.
    publish_presence(user);
  } else {
    presence_changed(user);
  }
  reply(session, wire::Ok{request.rid, "", 0, 0});
}

void Hub::handle(Session& session, const wire::Activity&) { note_activity(session); }

void Hub::handle(Session& session, const wire::Watch& request) {
  if (!validate_users(session, request.rid, request.users)) return;
  SessionPresence& mine = session_presence_[&session];
  std::size_t added = 0;
  std::unordered_set<std::string> distinct;
  for (const std::string& user : request.users) {
    if (mine.watching.count(user) == 0 && distinct.insert(user).second) ++added;
  }
  if (mine.watching.size() + added > wire::kMaxWatchedUsers) {
    return error(session, request.rid, code::kTooManyUsers,
                 fmt::format("a connection watches at most {} users ({} now, {} more asked)",
                             wire::kMaxWatchedUsers, mine.watching.size(), added));
  }
  bool notify = request.notify.value_or(false);
  wire::PresenceList list{request.rid, std::nullopt, {}};
  for (const std::string& user : request.users) {
    mine.watching[user] = notify;
    watchers_[user][&session] = notify;
    list.users.push_back(presence_for(session, user));
  }
  reply(session, list);
}

void Hub::handle(Session& session, const wire::Unwatch& request) {
  if (!validate_users(session, request.rid, request.users)) return;
  SessionPresence& mine = session_presence_[&session];
  for (const std::string& user : request.users) {
    if (mine.watching.erase(user) == 0) continue;
    auto w = watchers_.find(user);
    if (w == watchers_.end()) continue;
    w->second.erase(&session);
    if (w->second.empty()) watchers_.erase(w);
  }
  reply(session, wire::Ok{request.rid, "", 0, 0});
}

void Hub::handle(Session& session, const wire::GetPresence& request) {
  if (!validate_users(session, request.rid, request.users)) return;
  wire::PresenceList list{request.rid, std::nullopt, {}};
  for (const std::string& user : request.users) list.users.push_back(presence_for(session, user));
  reply(session, list);
}

}  // namespace parley::server
