// Channel kinds, roles and moderation on the client: the requests, and how
// each channel event is applied to the cache (docs/channels.md, "In the SDK").
//
// The server enforces the permission table; the cache keeps what the UI needs
// to ask can() without a round trip: the channel's kind, this user's role and
// mute, the members with their roles, the metadata. It is updated from the
// welcome (kind, role), from every event as it is delivered in seq order
// (apply_channel_event, so an offline member ends in the same state as one
// who watched live), and from channel_info replies.
//
// The server does not send an event back to the session whose request caused
// it. For create, join and leave the completion stands for it, as before; the
// events of moderation requests are fetched after their ok and delivered like
// anyone else's, so the app sees every change in the channel's sequence.
#include <fmt/format.h>

#include <algorithm>

#include "client/engine.hpp"
#include "protocol/codec.hpp"

namespace parley::client {

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status invalid(std::string message, const char* reason) {
  return Status(StatusCode::invalid_argument, std::move(message), reason);
}

std::optional<Role> role_from(const std::string& text) {
  Role role;
  if (!parse_role(text, &role)) return std::nullopt;
  return role;
}

bool has_fields(const wire::Meta& m) {
  return m.name || m.topic || m.description || m.avatar || m.data;
}

ChannelMember member_from(const store::Cache::MemberRow& row) {
  ChannelMember m;
  m.user = row.user;
  // A role this SDK does not know (or not known yet) reads as the lowest.
  m.role = row.role.value_or(Role::read_only);
  m.muted = row.muted_until.has_value();
  m.muted_until_ms = row.muted_until.value_or(0);
  return m;
}

}  // namespace

// ---- requests ------------------------------------------------------------------

void Engine::moderation_analytics(const std::string& action, const std::string& channel,
                                  const Status& status) {
  std::string kind = "unknown";
  if (auto access = cache_->channel_access(channel); access && *access && (*access)->kind) {
    kind = to_string(*(*access)->kind);
  }
  analytics("moderation_action", {{"action", action},
                                  {"channel_kind", kind},
                                  {"status", status.ok() ? "ok" : status.reason()}});
}

void Engine::refuse_request(RequestId request, const std::string& action,
                            const std::string& channel, Status status) {
  moderation_analytics(action, channel, status);
  events_.push(ChannelRequestDone{request, channel, std::move(status), 0});
}

void Engine::channel_request(RequestId req, const std::string& action, const std::string& channel,
                             wire::ClientMessage message,
                             std::function<void(const wire::Ok&)> applied) {
  auto done = [this, req, channel, action](const Status& s, std::uint64_t seq) {
    moderation_analytics(action, channel, s);
    events_.push(ChannelRequestDone{req, channel, s, seq});
  };
  auto run = std::make_shared<std::function<void()>>();
  std::weak_ptr<std::function<void()>> weak = run;
  *run = [this, message, channel, done, applied, weak]() {
    auto self = weak.lock();
    request(
        message,
        [this, channel, done, applied](const wire::ServerMessage* reply, const Status& error) {
          if (reply == nullptr) return done(error, 0);
          const auto* ok = std::get_if<wire::Ok>(reply);
          if (ok == nullptr || (!ok->channel.empty() && ok->channel != channel)) {
            return done(Status(StatusCode::protocol_error, "unexpected reply", "bad_reply"), 0);
          }
          if (applied && ok->seq != 0) applied(*ok);
          done(Status(), ok->seq);
          if (ok->seq != 0) fetch_own_event(channel, ok->seq);
        },
        [self] { (*self)(); });
  };
  when_ready([run] { (*run)(); }, [done](const Status& s) { done(s, 0); });
}

void Engine::fetch_own_event(const std::string& channel, std::uint64_t seq) {
  auto info = cache_->channel(channel);
  if (!connected_ || !info || !*info) return;
  std::uint64_t cursor = (*info)->read_to;
  if (cursor >= seq) return;
  if (cursor == 0) {
    // Nothing delivered yet (cannot happen for a channel we act in, but a
    // cursor at 0 would fetch the whole channel).
    cursor = seq - 1;
    cache_->advance_cursor(channel, cursor);
  }
  request(wire::History{0, channel, seq + 1, cursor, wire::kMaxHistoryLimit},
          [this, channel, seq](const wire::ServerMessage* reply, const Status&) {
            if (reply != nullptr) {
              if (const auto* page = std::get_if<wire::HistoryPage>(reply)) {
                store_incoming(page->events);
                deliver(channel);
              }
            }
            auto now = cache_->channel(channel);
            if (now && *now && (*now)->member && (*now)->read_to < seq) fill_gap(channel);
          });
}

void Engine::open_direct(RequestId req, const std::string& user) {
  auto done = [this, req](const std::string& channel, const Status& s, std::uint64_t seq) {
    events_.push(ChannelRequestDone{req, channel, s, seq});
  };
  if (std::string why = check_user_name(user); !why.empty()) {
    return done("", invalid(why, wire::code::kInvalidUser), 0);
  }
  if (user == user_) {
    return done("",
                invalid(fmt::format("user \"{}\": a direct channel needs another user", user),
                        wire::code::kInvalidUser),
                0);
  }
  auto run = std::make_shared<std::function<void()>>();
  std::weak_ptr<std::function<void()>> weak = run;
  *run = [this, user, done, weak]() {
    auto self = weak.lock();
    request(
        wire::OpenDirect{0, user},
        [this, user, done](const wire::ServerMessage* reply, const Status& error) {
          if (reply == nullptr) return done("", error, 0);
          const auto* ok = std::get_if<wire::Ok>(reply);
          if (ok == nullptr || !check_channel_name(ok->channel).empty()) {
            return done("", Status(StatusCode::protocol_error, "unexpected reply", "bad_reply"), 0);
          }
          const std::string& channel = ok->channel;
          cache_->upsert_channel(channel, ok->last_seq, true);
          auto info = cache_->channel(channel);
          if (info && *info && (*info)->read_to == 0) {
            cache_->advance_cursor(channel, ok->last_seq);  // new here: history loads on demand
          } else if (ok->seq != 0) {
            note_own_event(channel, ok->seq);
          }
          cache_->set_channel_kind(channel, ChannelKind::direct);
          cache_->set_my_role(channel, Role::member);
          cache_->set_member_role(channel, user_, Role::member);
          cache_->set_member_role(channel, user, Role::member);
          fetch_receipts(channel);
          done(channel, Status(), ok->seq);
        },
        [self] { (*self)(); });
  };
  when_ready([run] { (*run)(); }, [done](const Status& s) { done("", s, 0); });
}

void Engine::member_action(RequestId req, const std::string& channel, const std::string& action,
                           const std::string& user, std::optional<Role> role,
                           std::chrono::seconds duration) {
  if (std::string why = check_channel_name(channel); !why.empty()) {
    return refuse_request(req, action, channel, invalid(why, wire::code::kInvalidName));
  }
  if (std::string why = check_user_name(user); !why.empty()) {
    return refuse_request(req, action, channel, invalid(why, wire::code::kInvalidUser));
  }
  if (user == user_ && action != "invite") {
    // The server's rule too: leaving is leave_channel.
    return refuse_request(req, action, channel,
                          invalid(fmt::format("{} of \"{}\": not of oneself", action, user),
                                  wire::code::kInvalidUser));
  }
  if (duration.count() < 0) {
    return refuse_request(req, action, channel,
                          invalid(fmt::format("{} of \"{}\": duration {} s is negative", action,
                                              user, duration.count()),
                                  "invalid_argument"));
  }
  wire::MemberAction m;
  m.channel = channel;
  m.action = action;
  m.user = user;
  if (role) m.role = to_string(*role);
  if (duration.count() > 0) m.seconds = static_cast<std::uint64_t>(duration.count());
  auto applied = [this, channel, action, user, role](const wire::Ok&) {
    // What the request changed, so that can() and the members list are right
    // when the completion arrives; the event, delivered next, says the same.
    if (action == "invite") {
      cache_->set_member_role(channel, user, Role::member);
    } else if (action == "remove" || action == "ban") {
      cache_->remove_member(channel, user);
    } else if (action == "role" && role) {
      cache_->set_member_role(channel, user, *role);
    } else if (action == "transfer") {
      cache_->set_member_role(channel, user, Role::owner);
      cache_->set_member_role(channel, user_, Role::admin);
      cache_->set_my_role(channel, Role::admin);
    }
  };
  channel_request(req, action, channel, m, applied);
}

void Engine::set_meta(RequestId req, const std::string& channel, const ChannelMeta& meta) {
  const std::string action = "set_meta";
  if (std::string why = check_channel_name(channel); !why.empty()) {
    return refuse_request(req, action, channel, invalid(why, wire::code::kInvalidName));
  }
  wire::Meta m = wire::to_wire(meta);
  if (!has_fields(m)) {
    return refuse_request(
        req, action, channel,
        invalid(fmt::format("channel \"{}\": no metadata field to change", channel),
                wire::code::kInvalidMeta));
  }
  if (std::string why = wire::check_meta(m); !why.empty()) {
    return refuse_request(
        req, action, channel,
        invalid(fmt::format("channel \"{}\": {}", channel, why), wire::code::kInvalidMeta));
  }
  channel_request(req, action, channel, wire::SetMeta{0, channel, m},
                  [this, channel, meta](const wire::Ok&) { cache_->merge_meta(channel, meta); });
}

void Engine::delete_message(RequestId req, const std::string& channel, std::uint64_t seq) {
  const std::string action = "delete";
  if (std::string why = check_channel_name(channel); !why.empty()) {
    return refuse_request(req, action, channel, invalid(why, wire::code::kInvalidName));
  }
  if (seq == 0) {
    return refuse_request(
        req, action, channel,
        invalid("message seq 0: sequence numbers start at 1", wire::code::kInvalidSeq));
  }
  channel_request(req, action, channel, wire::DeleteMessage{0, channel, seq},
                  [this, channel, seq](const wire::Ok&) { cache_->mark_deleted(channel, seq); });
}

void Engine::pin_message(RequestId req, const std::string& channel, std::uint64_t seq,
                         bool pinned) {
  const std::string action = pinned ? "pin" : "unpin";
  if (std::string why = check_channel_name(channel); !why.empty()) {
    return refuse_request(req, action, channel, invalid(why, wire::code::kInvalidName));
  }
  if (seq == 0) {
    return refuse_request(
        req, action, channel,
        invalid("message seq 0: sequence numbers start at 1", wire::code::kInvalidSeq));
  }
  channel_request(req, action, channel, wire::PinMessage{0, channel, seq, pinned}, nullptr);
}

void Engine::report_message(RequestId req, const std::string& channel, std::uint64_t seq,
                            const std::string& reason) {
  const std::string action = "report";
  if (std::string why = check_channel_name(channel); !why.empty()) {
    return refuse_request(req, action, channel, invalid(why, wire::code::kInvalidName));
  }
  if (seq == 0) {
    return refuse_request(
        req, action, channel,
        invalid("message seq 0: sequence numbers start at 1", wire::code::kInvalidSeq));
  }
  if (reason.empty() || reason.size() > wire::kMaxReportReason || !wire::is_valid_utf8(reason)) {
    return refuse_request(
        req, action, channel,
        invalid(reason.empty() ? std::string("report reason is empty")
                : reason.size() > wire::kMaxReportReason
                    ? fmt::format("report reason is {} bytes, over the limit of {}", reason.size(),
                                  wire::kMaxReportReason)
                    : std::string("report reason is not valid utf-8"),
                wire::code::kInvalidText));
  }
  wire::Report report{0, channel, seq, reason, std::nullopt};
  if (channel[0] == '@') {
    // A direct message: the server cannot read it, so the report discloses
    // it, with what proves it is the message the server relayed.
    auto opening = franking_opening(channel, seq);
    if (!opening) return refuse_request(req, action, channel, opening.status());
    report.e2e = std::move(*opening);
  }
  channel_request(req, action, channel, std::move(report), nullptr);
}

// ---- channel info ----------------------------------------------------------------

void Engine::fetch_channel_state(const std::string& channel) {
  if (!connected_ || info_fetching_.count(channel)) return;
  info_fetching_.insert(channel);
  request(wire::ChannelInfoRequest{0, channel},
          [this, channel](const wire::ServerMessage* reply, const Status&) {
            info_fetching_.erase(channel);
            if (reply == nullptr) return;
            if (const auto* info = std::get_if<wire::ChannelInfoReply>(reply)) apply_info(*info);
          });
}

void Engine::apply_info(const wire::ChannelInfoReply& info) {
  auto access = cache_->channel_access(info.channel);
  if (!access || !*access) return;  // not a channel of ours: nothing to keep
  ChannelKind kind;
  if (parse_channel_kind(info.kind, &kind)) cache_->set_channel_kind(info.channel, kind);
  cache_->replace_meta(info.channel, wire::from_wire(info.meta));
  std::vector<store::Cache::MemberRow> rows;
  for (const auto& m : info.members) {
    rows.push_back({m.user, role_from(m.role), m.muted_until});
    if (m.user == user_) {
      cache_->set_my_role(info.channel, role_from(m.role));
      cache_->set_my_mute(info.channel, m.muted_until);
    }
  }
  cache_->replace_members(info.channel, rows);
}

void Engine::load_channel_info(RequestId req, const std::string& channel) {
  // Offline: what the cache knows, marked incomplete.
  auto from_cache = [this, req, channel](const Status& why) {
    ChannelInfoLoaded out;
    out.request = req;
    out.channel = channel;
    out.complete = false;
    auto access = cache_->channel_access(channel);
    auto info = cache_->channel(channel);
    if (!access || !*access || !info || !*info) {
      out.status = why.ok() ? Status(StatusCode::offline, "no connection to the server") : why;
      events_.push(std::move(out));
      return;
    }
    out.kind = (*access)->kind.value_or(ChannelKind::public_channel);
    out.last_seq = (*info)->last_seq;
    if (auto meta = cache_->channel_meta(channel); meta && *meta) out.meta = **meta;
    if (auto rows = cache_->members(channel)) {
      for (const auto& row : *rows) out.members.push_back(member_from(row));
    }
    events_.push(std::move(out));
  };
  if (std::string why = check_channel_name(channel); !why.empty()) {
    ChannelInfoLoaded out;
    out.request = req;
    out.channel = channel;
    out.status = invalid(why, wire::code::kInvalidName);
    out.complete = false;
    events_.push(std::move(out));
    return;
  }
  auto ask = [this, req, channel, from_cache] {
    request(
        wire::ChannelInfoRequest{0, channel},
        [this, req, channel, from_cache](const wire::ServerMessage* reply, const Status& error) {
          if (reply == nullptr) {
            if (error.code() == StatusCode::offline || error.code() == StatusCode::timeout) {
              return from_cache(error);
            }
            ChannelInfoLoaded out;
            out.request = req;
            out.channel = channel;
            out.status = error;
            out.complete = false;
            events_.push(std::move(out));
            return;
          }
          const auto* info = std::get_if<wire::ChannelInfoReply>(reply);
          if (info == nullptr || info->channel != channel) {
            ChannelInfoLoaded out;
            out.request = req;
            out.channel = channel;
            out.status = Status(StatusCode::protocol_error, "unexpected reply", "bad_reply");
            out.complete = false;
            events_.push(std::move(out));
            return;
          }
          apply_info(*info);
          ChannelInfoLoaded out;
          out.request = req;
          out.channel = channel;
          if (!parse_channel_kind(info->kind, &out.kind)) out.kind = ChannelKind::public_channel;
          out.last_seq = info->last_seq;
          out.meta = wire::from_wire(info->meta);
          for (const auto& m : info->members) {
            out.members.push_back(member_from({m.user, role_from(m.role), m.muted_until}));
          }
          for (const auto& b : info->bans) out.bans.push_back(ChannelBan{b.user, b.until});
          out.pinned = info->pinned;
          std::sort(out.pinned.begin(), out.pinned.end());
          events_.push(std::move(out));
        });
  };
  when_ready(ask, from_cache, /*answer_offline=*/true);
}

// ---- the cache's view ------------------------------------------------------------

bool Engine::can(const std::string& channel, Permission permission) {
  auto access = cache_->channel_access(channel);
  if (!access || !*access) return false;
  const store::Cache::ChannelAccess& a = **access;
  if (!a.member || !a.role) return false;
  if (permission == Permission::post && a.muted_until &&
      (*a.muted_until == 0 || *a.muted_until > now_ms())) {
    return false;
  }
  return role_allows(a.kind.value_or(ChannelKind::public_channel), *a.role, permission);
}

std::optional<Role> Engine::role(const std::string& channel) {
  auto access = cache_->channel_access(channel);
  if (!access || !*access || !(*access)->member) return std::nullopt;
  return (*access)->role;
}

std::optional<ChannelKind> Engine::channel_kind(const std::string& channel) {
  auto access = cache_->channel_access(channel);
  if (!access || !*access) return std::nullopt;
  return (*access)->kind;
}

std::optional<ChannelMeta> Engine::channel_meta(const std::string& channel) {
  auto meta = cache_->channel_meta(channel);
  if (!meta) return std::nullopt;
  return *meta;
}

// ---- applying events ---------------------------------------------------------------

void Engine::apply_channel_states(const std::vector<wire::ChannelState>& channels) {
  for (const auto& c : channels) {
    auto before = cache_->channel_access(c.channel);
    bool known = before && *before && (*before)->kind.has_value();
    cache_->upsert_channel(c.channel, c.last_seq, true);
    ChannelKind kind;
    if (c.kind && parse_channel_kind(*c.kind, &kind)) cache_->set_channel_kind(c.channel, kind);
    if (c.role) {
      if (auto role = role_from(*c.role)) {
        cache_->set_my_role(c.channel, role);
        cache_->set_member_role(c.channel, user_, *role);
      }
    }
    // New to this device (or to this SDK version): its metadata and members.
    if (!known) fetch_channel_state(c.channel);
  }
}

void Engine::apply_channel_event(const Message& m) {
  const std::string& ch = m.channel;
  const bool by_me = m.sender == user_;
  const bool to_me = m.target == user_;
  auto no_longer_member = [&] {
    cache_->set_member(ch, false);
    cache_->set_my_role(ch, std::nullopt);
    cache_->set_my_mute(ch, std::nullopt);
  };
  switch (m.kind) {
    case EventKind::create: {
      ChannelKind kind = ChannelKind::public_channel;
      bool known = parse_channel_kind(m.channel_kind, &kind);
      if (known) cache_->set_channel_kind(ch, kind);
      cache_->replace_meta(ch, m.meta);
      if (known && kind == ChannelKind::direct) {
        // Both users are members, the other one named by target.
        cache_->set_member_role(ch, m.sender, Role::member);
        if (!m.target.empty()) cache_->set_member_role(ch, m.target, Role::member);
        if (by_me || to_me) cache_->set_my_role(ch, Role::member);
      } else {
        cache_->set_member_role(ch, m.sender, Role::owner);
        if (by_me) cache_->set_my_role(ch, Role::owner);
      }
      break;
    }
    case EventKind::join:
      cache_->set_member_role(ch, m.sender, Role::member);
      if (by_me) {  // from another device of ours
        cache_->set_member(ch, true);
        cache_->set_my_role(ch, Role::member);
      }
      break;
    case EventKind::leave:
      cache_->remove_member(ch, m.sender);
      if (by_me) no_longer_member();
      break;
    case EventKind::invite:
      cache_->set_member_role(ch, m.target, Role::member);
      if (to_me) {
        // A new membership: the channel appears, as it would in a welcome.
        cache_->set_member(ch, true);
        cache_->set_my_role(ch, Role::member);
        fetch_channel_state(ch);
        fetch_receipts(ch);
      }
      break;
    case EventKind::remove:
    case EventKind::ban:
      cache_->remove_member(ch, m.target);
      if (to_me) no_longer_member();
      break;
    case EventKind::mute:
      cache_->set_member_mute(ch, m.target, m.until_ms);
      if (to_me) cache_->set_my_mute(ch, m.until_ms);
      break;
    case EventKind::unmute:
      cache_->set_member_mute(ch, m.target, std::nullopt);
      if (to_me) cache_->set_my_mute(ch, std::nullopt);
      break;
    case EventKind::role:
      if (auto role = role_from(m.role)) {
        cache_->set_member_role(ch, m.target, *role);
        if (to_me) cache_->set_my_role(ch, role);
        if (*role == Role::owner && m.sender != m.target) {
          // A transfer: only the owner may make one, and is an admin now.
          cache_->set_member_role(ch, m.sender, Role::admin);
          if (by_me) cache_->set_my_role(ch, Role::admin);
        }
      }
      break;
    case EventKind::meta:
      cache_->merge_meta(ch, m.meta);
      break;
    case EventKind::deletion:
      if (m.ref != 0) cache_->mark_deleted(ch, m.ref);
      break;
    case EventKind::channel_deleted:
      no_longer_member();
      return;
    case EventKind::message:
    case EventKind::unban:
    case EventKind::pin:
    case EventKind::unpin:
    case EventKind::system:
    case EventKind::doc:
      break;
  }
  // An event of a channel this device knows little about (joined or invited
  // from elsewhere): learn its kind, metadata and members.
  auto access = cache_->channel_access(ch);
  if (access && *access && (*access)->member && !(*access)->kind) fetch_channel_state(ch);
}

}  // namespace parley::client
