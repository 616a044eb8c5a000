// Hub: group channels (docs/channels.md). Direct channels, membership
// changes made by one member to another (invite, remove, ban, mute, roles,
// ownership), metadata, deletion, pins, reports, channel info, and the checks
// every request of a channel goes through: the channel exists, the user is a
// member and not banned, the role allows the action and outranks the member
// acted on, and a send passes the mute, the rate limit and the word filter.
#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <limits>

#include "hub.hpp"
#include "log.hpp"
#include "protocol/codec.hpp"

namespace parley::server {
namespace {

namespace code = wire::code;

// Ban and mute durations beyond this are "until lifted" in all but name;
// capping keeps now + seconds far from overflow.
constexpr std::uint64_t kMaxSeconds = 100ull * 365 * 24 * 3600;
// The rate limiter forgets full buckets once it holds this many.
constexpr std::size_t kPruneAbove = 10000;

std::int64_t expiry(std::int64_t now, const std::optional<std::uint64_t>& seconds) {
  if (!seconds || *seconds == 0) return 0;
  return now + static_cast<std::int64_t>(std::min(*seconds, kMaxSeconds)) * 1000;
}

bool active(std::int64_t until, std::int64_t now) { return until == 0 || until > now; }

wire::Error refusal(std::uint64_t rid, const char* error_code, std::string message,
                    const std::optional<std::string>& id = std::nullopt) {
  return wire::Error{rid, error_code, std::move(message), id, std::nullopt, std::nullopt};
}

}  // namespace

std::string direct_channel_name(const std::string& a, const std::string& b) {
  const std::string& low = std::min(a, b);
  const std::string& high = std::max(a, b);
  std::string readable = "@" + low + "+" + high;
  if (readable.size() <= 64) return readable;
  std::string both = low + '\n' + high;
  unsigned char hash[16];
  crypto_generichash(hash, sizeof hash, reinterpret_cast<const unsigned char*>(both.data()),
                     both.size(), nullptr, 0);
  char hex[sizeof hash * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
  return std::string("@") + hex;
}

// ---- checks ----------------------------------------------------------------

Hub::Channel* Hub::existing_channel(Session& session, std::uint64_t rid, const std::string& name,
                                    const std::optional<std::string>& id) {
  if (std::string why = check_channel_name(name); !why.empty()) {
    error(session, rid, code::kInvalidName, why, id);
    return nullptr;
  }
  auto it = channels_.find(name);
  if (it == channels_.end() || it->second.deleted) {
    error(session, rid, code::kNoSuchChannel, fmt::format("channel \"{}\" does not exist", name),
          id);
    return nullptr;
  }
  return &it->second;
}

std::optional<std::int64_t> Hub::active_ban(const Channel& channel, const std::string& user) const {
  auto it = channel.bans.find(user);
  if (it == channel.bans.end() || !active(it->second, now_ms())) return std::nullopt;
  return it->second;
}

Hub::Member* Hub::membership(Session& session, std::uint64_t rid, const std::string& name,
                             Channel& channel, const std::optional<std::string>& id) {
  auto it = channel.members.find(session.user());
  if (it != channel.members.end()) return &it->second;
  if (auto until = active_ban(channel, session.user())) {
    wire::Error e = refusal(rid, code::kBanned,
                            fmt::format("\"{}\" is banned from \"{}\"", session.user(), name), id);
    if (*until != 0) e.until = *until;
    ++metrics_.errors_total[code::kBanned];
    reply(session, e);
    return nullptr;
  }
  error(session, rid, code::kNotMember,
        fmt::format("\"{}\" is not a member of \"{}\"", session.user(), name), id);
  return nullptr;
}

bool Hub::allowed(Session& session, std::uint64_t rid, const std::string& name,
                  const Channel& channel, const Member& member, Permission permission,
                  const std::optional<std::string>& id) {
  if (role_allows(channel.kind, member.role, permission)) return true;
  error(session, rid, code::kForbidden,
        fmt::format("role {} may not {} in {} channel \"{}\"", to_string(member.role),
                    to_string(permission), to_string(channel.kind), name),
        id);
  return false;
}

std::optional<std::string> Hub::screen_send(Session& session, const wire::Send& request,
                                            const Channel& channel, const Member& member) {
  (void)channel;
  std::int64_t now = now_ms();
  if (member.muted_until && active(*member.muted_until, now)) {
    wire::Error e = refusal(request.rid, code::kMuted,
                            fmt::format("\"{}\" is muted in \"{}\"", session.user(), request.channel),
                            request.id);
    if (*member.muted_until != 0) e.until = *member.muted_until;
    ++metrics_.errors_total[code::kMuted];
    reply(session, e);
    return std::nullopt;
  }
  if (limiter_.enabled()) {
    auto clock = RateLimiter::Clock::now();
    if (limiter_.tracked() > kPruneAbove) limiter_.prune(clock);
    if (std::int64_t wait = limiter_.take(session.user(), clock); wait > 0) {
      wire::Error e = refusal(
          request.rid, code::kRateLimited,
          fmt::format("\"{}\" is sending too fast: try again in {} ms", session.user(), wait),
          request.id);
      e.retry_after_ms = static_cast<std::uint64_t>(wait);
      ++metrics_.errors_total[code::kRateLimited];
      ++metrics_.moderation_actions_total["rate_limited"];
      reply(session, e);
      return std::nullopt;
    }
  }
  // The server cannot read e2e payloads: no filter (and no mentions) for them.
  if (filter_.empty() || request.e2e) return request.text;
  WordFilter::Outcome outcome = filter_.apply(request.text);
  switch (outcome.verdict) {
    case WordFilter::Verdict::pass:
      return request.text;
    case WordFilter::Verdict::masked:
      ++metrics_.moderation_actions_total["filtered"];
      return std::move(outcome.text);
    case WordFilter::Verdict::rejected:
      ++metrics_.moderation_actions_total["filtered"];
      // The term is not echoed: the sender knows what they wrote.
      error(session, request.rid, code::kFiltered,
            fmt::format("message \"{}\" contains a term this server does not accept", request.id),
            request.id);
      return std::nullopt;
  }
  return std::nullopt;
}

// ---- restrictions that outlive a membership ----------------------------------

std::optional<Hub::Member> Hub::lasting_restriction(const Member& member) const {
  bool read_only = member.role == Role::read_only;
  bool muted = member.muted_until && active(*member.muted_until, now_ms());
  if (!read_only && !muted) return std::nullopt;
  return Member{read_only ? Role::read_only : Role::member,
                muted ? member.muted_until : std::nullopt};
}

Status Hub::keep_restriction(std::int64_t channel_id, const std::string& channel,
                             const std::string& user, const std::optional<Member>& kept) {
  if (!kept) return Status();
  return store_.put_restriction(channel_id, StoredMembership{channel, user, kept->role,
                                                             kept->muted_until});
}

bool Hub::start_membership(Session& session, std::uint64_t rid, Channel& channel,
                           StoredEvent event) {
  const std::string name = event.channel;
  const std::string user = event.kind == EventKind::invite ? event.target : event.sender;
  Member returning{Role::member, std::nullopt};
  auto was = channel.restricted.find(user);
  if (was != channel.restricted.end()) returning = lasting_restriction(was->second).value_or(returning);
  bool invite = event.kind == EventKind::invite;
  auto stored = store_.append_event(std::move(event), [&](std::int64_t id, std::uint64_t seq) {
    if (invite) {
      if (Status s = store_.drop_ban(id, user); !s.ok()) return s;
    }
    if (Status s = store_.put_member(id, user, returning.role, seq); !s.ok()) return s;
    if (returning.muted_until) {
      if (Status s = store_.put_mute(id, user, returning.muted_until); !s.ok()) return s;
    }
    return store_.drop_restriction(id, user);
  });
  if (!stored) {
    store_error(session, rid, stored.status());
    return false;
  }
  channel.last_seq = stored->seq;
  if (invite) channel.bans.erase(user);
  channel.restricted.erase(user);
  add_member(name, channel, user, returning.role);
  channel.members[user].muted_until = returning.muted_until;
  reply(session, wire::Ok{rid, name, stored->seq, stored->seq});
  // Joining first, so that the new member's sessions hear of it too.
  publish(*stored, &session);
  after_membership(*stored);
  return true;
}

// ---- index upkeep -------------------------------------------------------------

void Hub::add_member(const std::string& channel_name, Channel& channel, const std::string& user,
                     Role role) {
  auto [it, added] = channel.members.try_emplace(user, Member{role, std::nullopt});
  if (!added) {
    it->second.role = role;
    return;
  }
  channels_of_user_[user].insert(channel_name);
  ++metrics_.members;
  presence_membership(channel_name, channel, user, true);
}

void Hub::drop_member(const std::string& channel_name, Channel& channel, const std::string& user) {
  if (channel.members.erase(user) == 0) return;
  presence_membership(channel_name, channel, user, false);
  auto counts = unread_.find(user);
  if (counts != unread_.end()) counts->second.erase(channel_name);
  --metrics_.members;
  auto mine = channels_of_user_.find(user);
  if (mine != channels_of_user_.end()) {
    mine->second.erase(channel_name);
    if (mine->second.empty()) channels_of_user_.erase(mine);
  }
}

void Hub::count_channels() {
  std::int64_t total = 0;
  for (auto& [kind, count] : metrics_.channels_by_kind) count = 0;
  for (const auto& [name, channel] : channels_) {
    if (channel.deleted) continue;
    ++total;
    ++metrics_.channels_by_kind[to_string(channel.kind)];
  }
  metrics_.channels = total;
}

bool Hub::commit_event(Session& session, std::uint64_t rid, StoredEvent event,
                       const ServerStore::Effects& effects, const std::function<void()>& apply,
                       bool remove_target) {
  std::string name = event.channel;
  auto stored = store_.append_event(std::move(event), effects);
  if (!stored) {
    store_error(session, rid, stored.status());
    return false;
  }
  Channel& channel = channels_[name];
  channel.last_seq = stored->seq;
  if (apply) apply();
  reply(session, wire::Ok{rid, name, stored->seq, stored->seq});
  publish(*stored, &session);
  after_membership(*stored);
  if (remove_target) drop_member(name, channel, stored->target);
  return true;
}

// ---- requests -------------------------------------------------------------------

void Hub::handle(Session& session, const wire::OpenDirect& request) {
  if (std::string why = check_user_name(request.user); !why.empty()) {
    return error(session, request.rid, code::kInvalidUser, why);
  }
  if (request.user == session.user()) {
    return error(session, request.rid, code::kInvalidUser,
                 fmt::format("\"{}\" cannot open a direct channel with themself", request.user));
  }
  if (refuse_blocked(session, request.rid, request.user)) return;
  std::string name = direct_channel_name(session.user(), request.user);
  auto it = channels_.find(name);
  if (it != channels_.end()) {
    Channel& channel = it->second;
    if (channel.deleted) {
      return error(session, request.rid, code::kNoSuchChannel,
                   fmt::format("direct channel \"{}\" was deleted by an administrator", name));
    }
    if (channel.members.count(session.user()) != 0) {
      return reply(session, wire::Ok{request.rid, name, 0, channel.last_seq});
    }
    // One of the pair left: coming back is a join.
    StoredEvent event;
    event.channel = name;
    event.kind = EventKind::join;
    event.sender = session.user();
    event.ts = now_ms();
    start_membership(session, request.rid, channel, std::move(event));
    return;
  }
  auto event = store_.create_direct(name, session.user(), request.user, now_ms());
  if (!event) return store_error(session, request.rid, event.status());
  Channel& channel = channels_[name];
  channel.kind = ChannelKind::direct;
  channel.meta = ChannelMeta{"", "", "", "", ""};
  channel.last_seq = event->seq;
  channel.pair = {session.user(), request.user};
  add_member(name, channel, session.user(), Role::member);
  add_member(name, channel, request.user, Role::member);
  count_channels();
  reply(session, wire::Ok{request.rid, name, event->seq, event->seq});
  publish(*event, &session);
}

void Hub::handle(Session& session, const wire::MemberAction& request) {
  Channel* channel = existing_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  Member* actor = membership(session, request.rid, request.channel, *channel);
  if (actor == nullptr) return;
  if (std::string why = check_user_name(request.user); !why.empty()) {
    return error(session, request.rid, code::kInvalidUser, why);
  }
  member_action(session, request, *channel, *actor);
}

void Hub::member_action(Session& session, const wire::MemberAction& request, Channel& channel,
                        Member& actor) {
  const std::string& name = request.channel;
  const std::string& target = request.user;
  const std::string& action = request.action;
  const std::uint64_t rid = request.rid;
  std::int64_t now = now_ms();
  auto found = channel.members.find(target);
  Member* member = found != channel.members.end() ? &found->second : nullptr;

  Permission needed;
  if (action == "invite") {
    needed = Permission::invite;
  } else if (action == "remove") {
    needed = Permission::remove;
  } else if (action == "ban" || action == "unban") {
    needed = Permission::ban;
  } else if (action == "mute" || action == "unmute") {
    needed = Permission::mute;
  } else if (action == "role" || action == "transfer") {
    needed = Permission::change_roles;
  } else {
    return error(session, rid, code::kInvalidAction,
                 fmt::format("member action \"{}\" is not invite, remove, ban, unban, mute, "
                             "unmute, role or transfer",
                             shown(action)));
  }
  if (!allowed(session, rid, name, channel, actor, needed)) return;
  if (target == session.user() && action != "invite") {
    return error(session, rid, code::kInvalidUser,
                 fmt::format("\"{}\" cannot {} themself{}", target, action,
                             action == "remove" ? " (leave instead)" : ""));
  }
  // Acting on a member needs a higher rank than theirs.
  auto outranked = [&]() {
    if (member == nullptr || outranks(actor.role, member->role)) return false;
    error(session, rid, code::kForbidden,
          fmt::format("role {} may not {} \"{}\", whose role is {}", to_string(actor.role), action,
                      target, to_string(member->role)));
    return true;
  };
  auto not_member = [&]() {
    error(session, rid, code::kNotMember,
          fmt::format("\"{}\" is not a member of \"{}\"", target, name));
  };
  auto no_op = [&]() { reply(session, wire::Ok{rid, name, 0, channel.last_seq}); };

  StoredEvent event;
  event.channel = name;
  event.sender = session.user();
  event.target = target;
  event.ts = now;

  if (action == "invite") {
    if (member != nullptr) return no_op();
    if (auto until = active_ban(channel, target)) {
      wire::Error e = refusal(rid, code::kBanned,
                              fmt::format("\"{}\" is banned from \"{}\"", target, name));
      if (*until != 0) e.until = *until;
      ++metrics_.errors_total[code::kBanned];
      return reply(session, e);
    }
    event.kind = EventKind::invite;
    if (start_membership(session, rid, channel, event)) {
      ++metrics_.moderation_actions_total["invite"];
    }
    return;
  }

  if (action == "remove") {
    if (member == nullptr) return not_member();
    if (outranked()) return;
    event.kind = EventKind::remove;
    ++metrics_.moderation_actions_total["remove"];
    std::optional<Member> kept = lasting_restriction(*member);
    commit_event(
        session, rid, event,
        [&](std::int64_t id, std::uint64_t) {
          if (Status s = store_.drop_member(id, target); !s.ok()) return s;
          return keep_restriction(id, name, target, kept);
        },
        [&] {
          if (kept) channel.restricted[target] = *kept;
        },
        /*remove_target=*/true);
    return;
  }

  if (action == "ban") {
    if (outranked()) return;
    event.kind = EventKind::ban;
    event.until = expiry(now, request.seconds);
    bool was_member = member != nullptr;
    ++metrics_.moderation_actions_total["ban"];
    std::int64_t until = event.until;
    std::optional<Member> kept = member ? lasting_restriction(*member) : std::nullopt;
    commit_event(
        session, rid, event,
        [&](std::int64_t id, std::uint64_t) {
          if (Status s = store_.put_ban(id, target, until, session.user(), now); !s.ok()) return s;
          if (Status s = store_.drop_member(id, target); !s.ok()) return s;
          return keep_restriction(id, name, target, kept);
        },
        [&] {
          channel.bans[target] = until;
          if (kept) channel.restricted[target] = *kept;
        },
        /*remove_target=*/was_member);
    return;
  }

  if (action == "unban") {
    if (channel.bans.count(target) == 0) return no_op();
    event.kind = EventKind::unban;
    ++metrics_.moderation_actions_total["unban"];
    commit_event(
        session, rid, event,
        [&](std::int64_t id, std::uint64_t) { return store_.drop_ban(id, target); },
        [&] { channel.bans.erase(target); });
    return;
  }

  if (action == "mute" || action == "unmute") {
    if (member == nullptr) return not_member();
    if (outranked()) return;
    bool mute = action == "mute";
    if (!mute && !(member->muted_until && active(*member->muted_until, now))) return no_op();
    event.kind = mute ? EventKind::mute : EventKind::unmute;
    std::optional<std::int64_t> until;
    if (mute) until = event.until = expiry(now, request.seconds);
    ++metrics_.moderation_actions_total[action];
    commit_event(
        session, rid, event,
        [&](std::int64_t id, std::uint64_t) { return store_.put_mute(id, target, until); },
        [&] { member->muted_until = until; });
    return;
  }

  // role and transfer
  if (member == nullptr) return not_member();
  if (action == "transfer") {
    if (actor.role != Role::owner) {
      return error(session, rid, code::kForbidden,
                   fmt::format("only the owner of \"{}\" may transfer its ownership", name));
    }
    // Nobody outranks an owner, so a mute could never be lifted afterwards.
    if (member->muted_until && active(*member->muted_until, now)) {
      return error(session, rid, code::kForbidden,
                   fmt::format("\"{}\" is muted in \"{}\": unmute them before handing over "
                               "ownership",
                               target, name));
    }
    event.kind = EventKind::role;
    event.role = to_string(Role::owner);
    ++metrics_.moderation_actions_total["transfer"];
    // One event: the target becomes owner and the sender, the old owner, admin.
    commit_event(
        session, rid, event,
        [&](std::int64_t id, std::uint64_t seq) {
          if (Status s = store_.put_member(id, target, Role::owner, seq); !s.ok()) return s;
          return store_.put_member(id, session.user(), Role::admin, seq);
        },
        [&] {
          member->role = Role::owner;
          actor.role = Role::admin;
        });
    return;
  }
  Role role;
  if (!request.role || !parse_role(*request.role, &role)) {
    return error(session, rid, code::kInvalidRole,
                 fmt::format("role \"{}\" is not admin, moderator, member or read_only",
                             shown(request.role.value_or(""))));
  }
  if (role == Role::owner) {
    return error(session, rid, code::kInvalidRole,
                 "ownership changes hands with the \"transfer\" action, not a role change");
  }
  if (outranked()) return;
  if (!outranks(actor.role, role)) {
    return error(session, rid, code::kForbidden,
                 fmt::format("role {} may only give roles below its own, not {}",
                             to_string(actor.role), to_string(role)));
  }
  if (member->role == role) return no_op();
  event.kind = EventKind::role;
  event.role = to_string(role);
  ++metrics_.moderation_actions_total["role"];
  commit_event(
      session, rid, event,
      [&](std::int64_t id, std::uint64_t seq) { return store_.put_member(id, target, role, seq); },
      [&] { member->role = role; });
}

void Hub::handle(Session& session, const wire::SetMeta& request) {
  Channel* channel = existing_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  Member* member = membership(session, request.rid, request.channel, *channel);
  if (member == nullptr) return;
  if (!allowed(session, request.rid, request.channel, *channel, *member, Permission::edit_meta)) {
    return;
  }
  const wire::Meta& m = request.meta;
  if (!m.name && !m.topic && !m.description && !m.avatar && !m.data) {
    return error(session, request.rid, code::kInvalidMeta, "set_meta names no field to change");
  }
  if (std::string why = wire::check_meta(m); !why.empty()) {
    return error(session, request.rid, code::kInvalidMeta, why);
  }
  StoredEvent event;
  event.channel = request.channel;
  event.kind = EventKind::meta;
  event.sender = session.user();
  event.ts = now_ms();
  event.meta = wire::from_wire(m);
  ChannelMeta changes = event.meta;
  ++metrics_.moderation_actions_total["meta"];
  commit_event(
      session, request.rid, event,
      [&](std::int64_t id, std::uint64_t) { return store_.put_meta(id, changes); },
      [&] {
        for (auto [field, value] : {std::pair{&channel->meta.name, &changes.name},
                                    std::pair{&channel->meta.topic, &changes.topic},
                                    std::pair{&channel->meta.description, &changes.description},
                                    std::pair{&channel->meta.avatar_url, &changes.avatar_url},
                                    std::pair{&channel->meta.data, &changes.data}}) {
          if (*value) *field = **value;
        }
      });
}

void Hub::handle(Session& session, const wire::DeleteMessage& request) {
  Channel* channel = existing_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  Member* member = membership(session, request.rid, request.channel, *channel);
  if (member == nullptr) return;
  auto original = store_.event_at(request.channel, request.seq);
  if (!original) return store_error(session, request.rid, original.status());
  if (!*original || (*original)->kind != EventKind::message || (*original)->deleted) {
    return error(session, request.rid, code::kNoSuchMessage,
                 fmt::format("\"{}\" has no message at seq {}{}", request.channel, request.seq,
                             *original && (*original)->deleted ? " (deleted already)" : ""));
  }
  const std::string& author = (*original)->sender;
  if (author != session.user()) {
    if (!allowed(session, request.rid, request.channel, *channel, *member,
                 Permission::delete_others)) {
      return;
    }
    auto theirs = channel->members.find(author);
    if (theirs != channel->members.end() && !outranks(member->role, theirs->second.role)) {
      return error(session, request.rid, code::kForbidden,
                   fmt::format("role {} may not delete a message of \"{}\", whose role is {}",
                               to_string(member->role), author,
                               to_string(theirs->second.role)));
    }
  }
  StoredEvent event;
  event.channel = request.channel;
  event.kind = EventKind::deletion;
  event.sender = session.user();
  event.ts = now_ms();
  event.ref = request.seq;
  event.target = author;
  ++metrics_.moderation_actions_total["delete"];
  if (commit_event(
          session, request.rid, event,
          [&](std::int64_t id, std::uint64_t) { return store_.clear_message(id, request.seq); },
          [&] { channel->pinned.erase(request.seq); })) {
    refresh_unread_all(request.channel, *channel);  // a deleted message is no longer unread
  }
}

void Hub::handle(Session& session, const wire::PinMessage& request) {
  Channel* channel = existing_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  Member* member = membership(session, request.rid, request.channel, *channel);
  if (member == nullptr) return;
  if (!allowed(session, request.rid, request.channel, *channel, *member, Permission::pin)) return;
  if (channel->pinned.count(request.seq) != 0 ? request.pinned : !request.pinned) {
    return reply(session, wire::Ok{request.rid, request.channel, 0, channel->last_seq});
  }
  if (request.pinned) {
    auto original = store_.event_at(request.channel, request.seq);
    if (!original) return store_error(session, request.rid, original.status());
    if (!*original || (*original)->kind != EventKind::message || (*original)->deleted) {
      return error(session, request.rid, code::kNoSuchMessage,
                   fmt::format("\"{}\" has no message at seq {}", request.channel, request.seq));
    }
  }
  StoredEvent event;
  event.channel = request.channel;
  event.kind = request.pinned ? EventKind::pin : EventKind::unpin;
  event.sender = session.user();
  event.ts = now_ms();
  event.ref = request.seq;
  ++metrics_.moderation_actions_total[request.pinned ? "pin" : "unpin"];
  commit_event(
      session, request.rid, event,
      [&](std::int64_t id, std::uint64_t) { return store_.put_pin(id, request.seq, request.pinned); },
      [&] {
        if (request.pinned) {
          channel->pinned.insert(request.seq);
        } else {
          channel->pinned.erase(request.seq);
        }
      });
}

void Hub::handle(Session& session, const wire::Report& request) {
  Channel* channel = existing_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  // Direct messages are reported with what the reporter decrypted, franked.
  if (channel->kind == ChannelKind::direct) return report_direct(session, request, *channel);
  if (membership(session, request.rid, request.channel, *channel) == nullptr) return;
  if (request.reason.empty() || request.reason.size() > wire::kMaxReportReason) {
    return error(session, request.rid, code::kInvalidText,
                 fmt::format("a report's reason must be 1-{} bytes, not {}",
                             wire::kMaxReportReason, request.reason.size()));
  }
  auto original = store_.event_at(request.channel, request.seq);
  if (!original) return store_error(session, request.rid, original.status());
  if (!*original || (*original)->kind != EventKind::message) {
    return error(session, request.rid, code::kNoSuchMessage,
                 fmt::format("\"{}\" has no message at seq {}", request.channel, request.seq));
  }
  auto id = store_.add_report(request.channel, request.seq, session.user(), request.reason,
                              now_ms());
  if (!id) return store_error(session, request.rid, id.status());
  ++metrics_.reports_total;
  log("info", "report {}: \"{}\" reported seq {} of \"{}\"", *id, session.user(), request.seq,
      request.channel);
  reply(session, wire::Ok{request.rid, request.channel, 0, channel->last_seq});
}

void Hub::handle(Session& session, const wire::ChannelInfoRequest& request) {
  Channel* channel = existing_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  // Anyone may look at a public or broadcast channel before joining it.
  auto mine = channel->members.find(session.user());
  bool open = channel->kind == ChannelKind::public_channel ||
              channel->kind == ChannelKind::broadcast;
  if (mine == channel->members.end() &&
      (!open || active_ban(*channel, session.user()).has_value())) {
    membership(session, request.rid, request.channel, *channel);  // replies the refusal
    return;
  }
  wire::ChannelInfoReply info;
  info.rid = request.rid;
  info.channel = request.channel;
  info.kind = to_string(channel->kind);
  info.last_seq = channel->last_seq;
  info.meta = wire::to_wire(channel->meta);
  std::int64_t now = now_ms();
  for (const auto& [user, state] : channel->members) {
    wire::MemberInfo m{user, to_string(state.role), std::nullopt};
    if (state.muted_until && active(*state.muted_until, now)) m.muted_until = *state.muted_until;
    info.members.push_back(std::move(m));
  }
  if (mine != channel->members.end() &&
      role_allows(channel->kind, mine->second.role, Permission::ban)) {
    for (const auto& [user, until] : channel->bans) {
      if (active(until, now)) info.bans.push_back({user, until});
    }
  }
  info.pinned.assign(channel->pinned.begin(), channel->pinned.end());
  reply(session, info);
}

}  // namespace parley::server
