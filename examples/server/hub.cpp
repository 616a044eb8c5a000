#include "hub.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <type_traits>
#include <vector>

#include "log.hpp"
#include "parley/types.hpp"
#include "protocol/codec.hpp"
#include "protocol/token.hpp"

namespace parley::server {
namespace {

namespace code = wire::code;

// WebSocket close code 1011 (RFC 6455, "internal error"): the server failed,
// not the client; not a 4xxx refusal, so clients reconnect.
constexpr int kCloseInternalError = 1011;

bool is_client_id(const std::string& id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// The strings of a request. The codec validates UTF-8, but JSON escapes can
// still spell a lone surrogate; nothing that is not UTF-8 is stored or echoed.
std::vector<const std::string*> strings_of(const wire::ClientMessage& message) {
  auto add = [](std::vector<const std::string*>& out, const std::optional<std::string>& value) {
    if (value) out.push_back(&*value);
  };
  auto add_meta = [&](std::vector<const std::string*>& out, const wire::Meta& meta) {
    for (const auto* field : {&meta.name, &meta.topic, &meta.description, &meta.avatar, &meta.data}) {
      add(out, *field);
    }
  };
  return std::visit(
      [&](const auto& m) -> std::vector<const std::string*> {
        using T = std::decay_t<decltype(m)>;
        std::vector<const std::string*> out;
        if constexpr (std::is_same_v<T, wire::Auth>) {
          out.push_back(&m.token);
          add(out, m.device);
          add(out, m.client);
        } else if constexpr (std::is_same_v<T, wire::Send>) {
          out = {&m.channel, &m.id, &m.text};
          if (m.e2e) {
            out.push_back(&m.e2e->device);
            add(out, m.e2e->commit);
            add(out, m.e2e->tag);
            for (const wire::Envelope& e : m.e2e->to) {
              out.insert(out.end(), {&e.user, &e.device, &e.body});
              if (e.prekey) out.insert(out.end(), {&e.prekey->identity, &e.prekey->ephemeral});
            }
          }
        } else if constexpr (std::is_same_v<T, wire::PublishKeys>) {
          out = {&m.identity};
          for (const auto* signed_key : {&m.signed_prekey, &m.last_resort}) {
            if (*signed_key) out.insert(out.end(), {&(*signed_key)->key, &(*signed_key)->signature});
          }
          if (m.one_time) {
            for (const wire::OneTimeKey& k : *m.one_time) out.push_back(&k.key);
          }
        } else if constexpr (std::is_same_v<T, wire::GetBundle>) {
          out = {&m.user};
          add(out, m.device);
        } else if constexpr (std::is_same_v<T, wire::RemoveDevice>) {
          out = {&m.device};
        } else if constexpr (std::is_same_v<T, wire::Block>) {
          out = {&m.user};
        } else if constexpr (std::is_same_v<T, wire::ListBlocks> ||
                             std::is_same_v<T, wire::E2eAck>) {
        } else if constexpr (std::is_same_v<T, wire::E2eResend>) {
          const wire::Envelope& e = m.envelope;
          out = {&m.channel, &e.user, &e.device, &e.body};
          if (e.prekey) out.insert(out.end(), {&e.prekey->identity, &e.prekey->ephemeral});
        } else if constexpr (std::is_same_v<T, wire::Receipt>) {
          out = {&m.channel, &m.kind};
        } else if constexpr (std::is_same_v<T, wire::ListChannels>) {
        } else if constexpr (std::is_same_v<T, wire::OpenDirect>) {
          out = {&m.user};
        } else if constexpr (std::is_same_v<T, wire::CreateChannel>) {
          out = {&m.channel};
          add(out, m.kind);
          if (m.meta) add_meta(out, *m.meta);
        } else if constexpr (std::is_same_v<T, wire::MemberAction>) {
          out = {&m.channel, &m.action, &m.user};
          add(out, m.role);
        } else if constexpr (std::is_same_v<T, wire::SetMeta>) {
          out = {&m.channel};
          add_meta(out, m.meta);
        } else if constexpr (std::is_same_v<T, wire::Notify>) {
          out = {&m.channel, &m.level};
        } else if constexpr (std::is_same_v<T, wire::SetPresence>) {
          add(out, m.status);
          add(out, m.text);
        } else if constexpr (std::is_same_v<T, wire::Activity>) {
        } else if constexpr (requires { m.users; }) {  // watch, unwatch, get_presence
          for (const auto& user : m.users) out.push_back(&user);
        } else if constexpr (std::is_same_v<T, wire::Report>) {
          out = {&m.channel, &m.reason};
          if (m.e2e) {  // its text is checked by the report (invalid_report)
            const wire::FrankingOpening& o = *m.e2e;
            out.insert(out.end(), {&o.sender, &o.device, &o.id, &o.key, &o.commit, &o.tag});
          }
        } else if constexpr (std::is_same_v<T, wire::DocCreate>) {
          out = {&m.channel, &m.title};
          add(out, m.kind);
        } else if constexpr (std::is_same_v<T, wire::DocOpen>) {
          out = {&m.channel, &m.title, &m.sv};
        } else if constexpr (std::is_same_v<T, wire::DocUpdate>) {
          out = {&m.channel, &m.title, &m.update};
          if (m.mentions) {
            for (const auto& user : *m.mentions) out.push_back(&user);
          }
        } else if constexpr (std::is_same_v<T, wire::DocAwareness>) {
          out = {&m.channel, &m.title};
          add(out, m.name);
          add(out, m.color);
        } else if constexpr (std::is_same_v<T, wire::DocClose>) {
          out = {&m.channel, &m.title};
        } else if constexpr (std::is_same_v<T, wire::Admin>) {
          out = {&m.action};
          add(out, m.channel);
          add(out, m.user);
          add(out, m.text);
        } else {
          out = {&m.channel};
        }
        return out;
      },
      message);
}

std::uint64_t rid_of(const wire::ClientMessage& message) {
  return std::visit([](const auto& m) { return m.rid; }, message);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

std::string shown(const std::string& value) {
  if (value.size() <= 64) return value;
  std::size_t cut = 64;
  while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;  // utf-8
  return value.substr(0, cut) + "...";
}

Encoded encoded(const wire::ServerMessage& message) {
  return std::make_shared<const std::string>(wire::encode(message));
}

wire::ChannelEvent to_wire(const StoredEvent& event) {
  wire::ChannelEvent out;
  out.channel = event.channel;
  out.seq = event.seq;
  out.kind = to_string(event.kind);
  out.sender = event.sender;
  out.ts = event.ts;
  if (event.kind == EventKind::message) {
    out.id = event.client_id;
    if (event.deleted) {
      out.deleted = true;
    } else if (!event.e2e.empty()) {
      out.e2e = wire::decode_e2e(event.e2e);
      if (!out.e2e) log("error", "event {} of \"{}\": stored e2e payload does not decode", event.seq, event.channel);
    } else {
      out.text = event.text;
    }
  } else if (event.kind == EventKind::system) {
    out.text = event.text;
  } else if (event.kind == EventKind::doc) {
    out.title = event.text;
    out.doc_kind = event.channel_kind;
  }
  if (!event.target.empty()) out.target = event.target;
  if (!event.role.empty()) out.role = event.role;
  if (event.kind == EventKind::ban || event.kind == EventKind::mute) {
    if (event.until != 0) out.until = event.until;
  }
  if (event.ref != 0) out.ref = event.ref;
  if (!event.channel_kind.empty() && event.kind != EventKind::doc) {
    out.channel_kind = event.channel_kind;
  }
  if (event.kind == EventKind::message && !event.deleted) {
    // A function of the text: found again here rather than stored.
    std::vector<Mention> found = find_mentions(event.text);
    if (!found.empty()) {
      out.mentions.emplace();
      for (Mention& m : found) out.mentions->push_back({m.offset, m.length, std::move(m.user)});
    }
  }
  if (event.kind == EventKind::create || event.kind == EventKind::meta) {
    wire::Meta meta = wire::to_wire(event.meta);
    if (meta.name || meta.topic || meta.description || meta.avatar || meta.data) out.meta = meta;
  }
  return out;
}

Hub::Hub(ServerStore& store, Metrics& metrics, const std::array<unsigned char, 32>& public_key,
         std::size_t max_frame)
    : store_(store), metrics_(metrics), public_key_(public_key), max_frame_(max_frame) {}

Status Hub::load() {
  auto channels = store_.channels();
  if (!channels) return channels.status();
  auto memberships = store_.memberships();
  if (!memberships) return memberships.status();
  auto bans = store_.bans();
  if (!bans) return bans.status();
  auto pins = store_.pins();
  if (!pins) return pins.status();
  auto users = store_.users();
  if (!users) return users.status();
  channels_.clear();
  channels_of_user_.clear();
  banned_users_.clear();
  for (const StoredChannel& c : *channels) {
    Channel& channel = channels_[c.name];
    channel.last_seq = c.last_seq;
    channel.kind = c.kind;
    channel.meta = c.meta;
    channel.deleted = c.deleted;
  }
  metrics_.members = 0;
  for (const StoredMembership& m : *memberships) {
    channels_[m.channel].members[m.user] = Member{m.role, m.muted_until};
    channels_of_user_[m.user].insert(m.channel);
    ++metrics_.members;
  }
  for (const StoredBan& b : *bans) channels_[b.channel].bans[b.user] = b.until;
  auto restrictions = store_.restrictions();
  if (!restrictions) return restrictions.status();
  for (const StoredMembership& r : *restrictions) {
    channels_[r.channel].restricted[r.user] = Member{r.role, r.muted_until};
  }
  for (const StoredPin& p : *pins) channels_[p.channel].pinned.insert(p.seq);
  for (const StoredUser& u : *users) {
    if (u.banned_until) banned_users_[u.name] = *u.banned_until;
  }
  auto settings = store_.notify_settings();
  if (!settings) return settings.status();
  notify_.clear();
  unread_.clear();
  for (const StoredNotify& n : *settings) {
    if (n.level != "all" || n.mute_until != 0) {
      notify_[n.user][n.channel] = NotifySetting{n.level, n.mute_until};
    }
  }
  auto presences = store_.presences();
  if (!presences) return presences.status();
  presence_.clear();
  for (StoredPresence& p : *presences) {
    std::string user = p.user;
    PresenceState& state = presence_of(user);
    state.stored = std::move(p);
    state.shown = presence_view(user, state, false);
    state.own = presence_view(user, state, true);
    if (state.stored.text_until != 0) {
      expiring_text_.insert({state.stored.text_until, user});
      want_tick();
    }
  }
  auto pairs = store_.direct_pairs();
  if (!pairs) return pairs.status();
  for (const StoredDirectPair& p : *pairs) {
    auto c = channels_.find(p.channel);
    if (c != channels_.end()) c->second.pair = {p.creator, p.other};
  }
  auto blocks = store_.blocks();
  if (!blocks) return blocks.status();
  blocks_.clear();
  for (const auto& block : *blocks) blocks_[block.first].insert(block.second);
  devices_.clear();
  auto key = store_.franking_key();
  if (!key) return key.status();
  franking_key_ = *key;
  if (Status s = store_.drop_old_notices(now_ms() - kNoticeLifetimeMs); !s.ok()) return s;
  if (Status s = load_docs(); !s.ok()) return s;
  count_channels();
  return Status();
}

void Hub::set_moderation(WordFilter filter, RateLimiter limiter) {
  filter_ = std::move(filter);
  limiter_ = std::move(limiter);
}

void Hub::on_open(Session&) {
  ++metrics_.connections;
  ++metrics_.connections_total;
}

void Hub::on_close(Session& session) {
  --metrics_.connections;
  typing_relayed_at_.erase(&session);
  if (!session.authenticated()) return presence_closed(session);
  docs_closed(session);
  auto it = sessions_of_user_.find(session.user());
  if (it != sessions_of_user_.end()) {
    std::erase(it->second, &session);
    if (it->second.empty()) {
      sessions_of_user_.erase(it);
      unread_.erase(session.user());  // recomputed at the next welcome
    }
  }
  presence_closed(session);
  if (Status s = store_.touch_user(session.user(), now_ms()); !s.ok()) {
    log("warning", "cannot record last seen of \"{}\": {}", session.user(), s.message());
  }
}

void Hub::on_bad_frame(Session& session, const char* error_code, std::string message) {
  ++metrics_.frames_received_total;
  if (session.closing()) return;
  error(session, std::nullopt, error_code, std::move(message));
  if (!session.authenticated()) {
    ++metrics_.auth_failures_total[code::kNotAuthenticated];
    session.close(wire::close_code::kNotAuthenticated, code::kNotAuthenticated);
  }
}

void Hub::on_frame(Session& session, std::string_view frame) {
  ++metrics_.frames_received_total;
  if (session.closing()) return;
  auto items = wire::decode_client_frame(frame);
  frame_decoded_at_ = std::chrono::steady_clock::now();
  for (auto& item : items) {
    if (session.closing()) break;
    if (auto* bad = std::get_if<wire::DecodeError>(&item)) {
      error(session, bad->rid, bad->code.c_str(), std::move(bad->message));
      if (!session.authenticated()) {
        ++metrics_.auth_failures_total[code::kNotAuthenticated];
        session.close(wire::close_code::kNotAuthenticated, code::kNotAuthenticated);
      }
      continue;
    }
    handle(session, std::get<wire::ClientMessage>(item));
  }
}

void Hub::handle(Session& session, const wire::ClientMessage& message) {
  for (const std::string* text : strings_of(message)) {
    if (!wire::is_valid_utf8(*text)) {
      error(session, rid_of(message), code::kInvalidUtf8,
            fmt::format("a string of \"{}\" is not valid utf-8", wire::type_name(message)));
      if (!session.authenticated()) {
        ++metrics_.auth_failures_total[code::kNotAuthenticated];
        session.close(wire::close_code::kNotAuthenticated, code::kNotAuthenticated);
      }
      return;
    }
  }
  if (const auto* auth = std::get_if<wire::Auth>(&message)) {
    if (session.authenticated()) {
      error(session, auth->rid, code::kAlreadyAuthenticated,
            fmt::format("session is already authenticated as \"{}\"", session.user()));
    } else {
      handle_auth(session, *auth);
    }
    return;
  }
  if (!session.authenticated()) {
    ++metrics_.auth_failures_total[code::kNotAuthenticated];
    error(session, rid_of(message), code::kNotAuthenticated,
          fmt::format("the first frame must be \"auth\", not \"{}\"", wire::type_name(message)));
    session.close(wire::close_code::kNotAuthenticated, code::kNotAuthenticated);
    return;
  }
  std::visit(
      [&](const auto& request) {
        using T = std::decay_t<decltype(request)>;
        if constexpr (std::is_same_v<T, wire::Send>) {
          note_activity(session);
        } else if constexpr (std::is_same_v<T, wire::Typing>) {
          if (request.active) note_activity(session);
        }
        if constexpr (!std::is_same_v<T, wire::Auth>) handle(session, request);
      },
      message);
}

void Hub::handle_auth(Session& session, const wire::Auth& auth) {
  if (auth.device && (auth.device->empty() || auth.device->size() > 64)) {
    ++metrics_.auth_failures_total[code::kNotAuthenticated];
    error(session, auth.rid, code::kBadField,
          fmt::format("field \"device\" must be 1-64 bytes, not {}", auth.device->size()));
    session.close(wire::close_code::kNotAuthenticated, code::kNotAuthenticated);
    return;
  }
  std::int64_t now = now_ms();
  auto claims = token::verify(public_key_.data(), auth.token, now / 1000);
  if (!claims) {
    std::string reason = claims.status().reason();
    bool expired = reason == code::kTokenExpired;
    if (!expired) reason = code::kInvalidToken;
    ++metrics_.auth_failures_total[reason];
    error(session, auth.rid, reason.c_str(), claims.status().message());
    session.close(expired ? wire::close_code::kTokenExpired : wire::close_code::kInvalidToken,
                  reason);
    return;
  }
  if (auto until = server_ban(claims->user)) {
    ++metrics_.auth_failures_total[code::kBanned];
    wire::Error refusal{auth.rid, code::kBanned,
                        fmt::format("\"{}\" is banned from this server", claims->user),
                        std::nullopt, std::nullopt, std::nullopt};
    if (*until != 0) refusal.until = *until;
    ++metrics_.errors_total[code::kBanned];
    reply(session, refusal);
    session.close(wire::close_code::kBanned, code::kBanned);
    return;
  }
  if (auth.device) {
    auto removed = store_.device_removed(claims->user, *auth.device);
    if (!removed) {
      // Not known: an internal error, never device_removed (which the client
      // takes as final). 1011 (RFC 6455 "internal error") is no 4xxx refusal,
      // so the client connects again later.
      log("error", "removed devices of \"{}\": {}", claims->user, removed.status().message());
      ++metrics_.auth_failures_total[code::kInternal];
      error(session, auth.rid, code::kInternal, "the server could not check this device now");
      session.close(kCloseInternalError, code::kInternal);
      return;
    }
    if (*removed) {
      ++metrics_.auth_failures_total[code::kDeviceRemoved];
      error(session, auth.rid, code::kDeviceRemoved,
            fmt::format("device \"{}\" of \"{}\" was removed: a new install takes a new id",
                        shown(*auth.device), claims->user));
      session.close(wire::close_code::kDeviceRemoved, code::kDeviceRemoved);
      return;
    }
  }
  session.set_identity(claims->user, auth.device.value_or(""));
  session.set_admin(claims->admin);
  session.set_notifications(auth.notifications.value_or(false));
  session.set_presence(auth.presence.value_or(false));
  sessions_of_user_[session.user()].push_back(&session);
  presence_opened(session);
  if (Status s = store_.touch_user(session.user(), now); !s.ok()) {
    log("warning", "cannot record user \"{}\": {}", session.user(), s.message());
  }
  wire::Welcome welcome;
  welcome.rid = auth.rid;
  welcome.user = session.user();
  welcome.device = session.device();
  welcome.server_time = now;
  welcome.max_frame = max_frame_;
  welcome.channels = memberships(session.user());
  welcome.keys = keys_state(session.user(), session.device());
  reply(session, welcome);
  notices_welcome(session);
  presence_welcome(session);
}

void Hub::handle(Session& session, const wire::CreateChannel& request) {
  if (std::string why = check_channel_name(request.channel); !why.empty()) {
    return error(session, request.rid, code::kInvalidName, why);
  }
  if (request.channel.front() == '@') {
    return error(session, request.rid, code::kInvalidName,
                 fmt::format("channel \"{}\": names starting with '@' are direct channels "
                             "(open them with \"direct\")",
                             request.channel));
  }
  ChannelKind kind = ChannelKind::public_channel;
  if (request.kind && (!parse_channel_kind(*request.kind, &kind) || kind == ChannelKind::direct)) {
    return error(session, request.rid, code::kInvalidKind,
                 fmt::format("channel kind \"{}\" is not public, private or broadcast",
                             shown(*request.kind)));
  }
  ChannelMeta meta;
  if (request.meta) {
    if (std::string why = wire::check_meta(*request.meta); !why.empty()) {
      return error(session, request.rid, code::kInvalidMeta, why);
    }
    meta = wire::from_wire(*request.meta);
  }
  if (channels_.count(request.channel) != 0) {
    return error(session, request.rid, code::kChannelExists,
                 fmt::format("channel \"{}\" already exists", request.channel));
  }
  auto event = store_.create_channel(request.channel, session.user(), now_ms(), kind, meta);
  if (!event) return store_error(session, request.rid, event.status());
  Channel& channel = channels_[request.channel];
  channel.last_seq = event->seq;
  channel.kind = kind;
  channel.meta = ChannelMeta{meta.name.value_or(""), meta.topic.value_or(""),
                             meta.description.value_or(""), meta.avatar_url.value_or(""),
                             meta.data.value_or("")};
  add_member(request.channel, channel, session.user(), Role::owner);
  count_channels();
  reply(session, wire::Ok{request.rid, request.channel, event->seq, event->seq});
  publish(*event, &session);
}

void Hub::handle(Session& session, const wire::JoinChannel& request) {
  Channel* found = existing_channel(session, request.rid, request.channel);
  if (found == nullptr) return;
  Channel& channel = *found;
  if (channel.members.count(session.user()) != 0) {
    return reply(session, wire::Ok{request.rid, request.channel, 0, channel.last_seq});
  }
  if (auto until = active_ban(channel, session.user())) {
    wire::Error refusal{request.rid, code::kBanned,
                        fmt::format("\"{}\" is banned from \"{}\"", session.user(),
                                    request.channel),
                        std::nullopt, std::nullopt, std::nullopt};
    if (*until != 0) refusal.until = *until;
    ++metrics_.errors_total[code::kBanned];
    return reply(session, refusal);
  }
  if (channel.kind == ChannelKind::private_channel || channel.kind == ChannelKind::direct) {
    return error(session, request.rid, code::kForbidden,
                 fmt::format("channel \"{}\" is {}: members are invited", request.channel,
                             to_string(channel.kind)));
  }
  StoredEvent event;
  event.channel = request.channel;
  event.kind = EventKind::join;
  event.sender = session.user();
  event.ts = now_ms();
  start_membership(session, request.rid, channel, std::move(event));
}

void Hub::handle(Session& session, const wire::LeaveChannel& request) {
  Channel* found = existing_channel(session, request.rid, request.channel);
  if (found == nullptr) return;
  Channel& channel = *found;
  if (channel.members.count(session.user()) == 0) {
    return error(session, request.rid, code::kNotMember,
                 fmt::format("\"{}\" is not a member of \"{}\"", session.user(), request.channel));
  }
  std::optional<Member> kept = lasting_restriction(channel.members.at(session.user()));
  StoredEvent leave;
  leave.channel = request.channel;
  leave.kind = EventKind::leave;
  leave.sender = session.user();
  leave.ts = now_ms();
  auto event = store_.append_event(leave, [&](std::int64_t id, std::uint64_t) {
    if (Status s = store_.drop_member(id, session.user()); !s.ok()) return s;
    return keep_restriction(id, request.channel, session.user(), kept);
  });
  if (!event) return store_error(session, request.rid, event.status());
  channel.last_seq = event->seq;
  if (kept) channel.restricted[session.user()] = *kept;
  reply(session, wire::Ok{request.rid, request.channel, event->seq, event->seq});
  // The leaver's other sessions hear of it too: publish before removing.
  publish(*event, &session);
  drop_member(request.channel, channel, session.user());
}

void Hub::handle(Session& session, const wire::Send& request) {
  if (!is_client_id(request.id)) {
    return error(session, request.rid, code::kInvalidId,
                 fmt::format("message id \"{}\" is not 32 lowercase hex digits", shown(request.id)),
                 shown(request.id));
  }
  // A resend gets the original result, wherever the client stands now.
  auto original = store_.find_message(session.user(), request.id);
  if (!original) return store_error(session, request.rid, original.status(), request.id);
  if (*original) {
    const StoredEvent& e = **original;
    reply(session, wire::Ack{request.rid, e.channel, request.id, e.seq, e.ts, true});
    metrics_.send_ack_seconds.observe(seconds_since(frame_decoded_at_));
    return;
  }
  // Direct channels carry e2e and no text (docs/protocol.md, "End-to-end encryption").
  if (request.e2e && !request.text.empty()) {
    return error(session, request.rid, code::kInvalidE2e,
                 fmt::format("message \"{}\" has both e2e and text", request.id), request.id);
  }
  if (!request.e2e && (request.text.empty() || request.text.size() > wire::kMaxTextBytes)) {
    return error(session, request.rid, code::kInvalidText,
                 request.text.empty()
                     ? fmt::format("message \"{}\" has no text", request.id)
                     : fmt::format("message \"{}\" has {} bytes of text, more than {}", request.id,
                                   request.text.size(), wire::kMaxTextBytes),
                 request.id);
  }
  Channel* found = existing_channel(session, request.rid, request.channel, request.id);
  if (found == nullptr) return;
  Channel& channel = *found;
  Member* member = membership(session, request.rid, request.channel, channel, request.id);
  if (member == nullptr) return;
  if (!allowed(session, request.rid, request.channel, channel, *member, Permission::post,
               request.id)) {
    return;
  }
  bool direct = channel.kind == ChannelKind::direct;
  if (direct && !request.e2e) {
    return error(session, request.rid, code::kE2eRequired,
                 fmt::format("direct channel \"{}\" takes end-to-end encrypted messages only "
                             "(e2e, no text)",
                             request.channel),
                 request.id);
  }
  std::string e2e;
  if (request.e2e) {
    if (!direct) {
      return error(session, request.rid, code::kInvalidE2e,
                   fmt::format("channel \"{}\" is {}: e2e is for direct channels only",
                               request.channel, to_string(channel.kind)),
                   request.id);
    }
    if (std::string why = check_e2e(session, *request.e2e, channel); !why.empty()) {
      return error(session, request.rid, code::kInvalidE2e,
                   fmt::format("message \"{}\": {}", request.id, why), request.id);
    }
    if (refuse_blocked(session, request.rid, direct_peer(channel, session.user()), request.id)) {
      return;
    }
    bool failed = false;
    std::string stale = check_devices(session, *request.e2e, channel, &failed);
    if (failed) {
      return error(session, request.rid, code::kInternal, "the server could not read devices",
                   request.id);
    }
    if (!stale.empty()) {
      ++metrics_.stale_devices_total;
      return error(session, request.rid, code::kStaleDevices,
                   fmt::format("message \"{}\": {}", request.id, stale), request.id);
    }
  }
  auto text = screen_send(session, request, channel, *member);
  if (!text) return;
  const std::int64_t ts = now_ms();
  if (request.e2e) {
    // The tag binds the commitment to the time exactly as stored and delivered.
    wire::E2e tagged = *request.e2e;
    add_franking_tag(&tagged, request.channel, request.id, session.user(), ts);
    e2e = wire::encode_e2e(tagged);
  }
  auto event =
      store_.append_message(request.channel, session.user(), request.id, *text, ts, e2e);
  if (!event) return store_error(session, request.rid, event.status(), request.id);
  channel.last_seq = event->seq;
  ++metrics_.messages_received_total;
  ++metrics_.messages_by_kind_total[to_string(channel.kind)];
  if (!e2e.empty()) ++metrics_.e2e_messages_total;
  reply(session, wire::Ack{request.rid, request.channel, request.id, event->seq, event->ts, false});
  metrics_.send_ack_seconds.observe(seconds_since(frame_decoded_at_));
  publish(*event, &session);
  after_message(*event, channel);
}

void Hub::handle(Session& session, const wire::History& request) {
  Channel* found = existing_channel(session, request.rid, request.channel);
  if (found == nullptr) return;
  if (membership(session, request.rid, request.channel, *found) == nullptr) return;
  if (request.limit < 1 || request.limit > wire::kMaxHistoryLimit) {
    return error(
        session, request.rid, code::kInvalidLimit,
        fmt::format("history limit {} is not within 1-{}", request.limit, wire::kMaxHistoryLimit));
  }
  auto events = store_.history(request.channel, request.after, request.before, request.limit);
  if (!events) return store_error(session, request.rid, events.status());

  wire::HistoryPage page;
  page.rid = request.rid;
  page.channel = request.channel;
  page.last_seq = found->last_seq;
  page.events.reserve(events->size());
  for (const StoredEvent& e : *events) page.events.push_back(to_wire(e));
  // Keep the page within about half a frame: the end nearest the cursor the
  // client paged from stays, and the client asks again for the rest.
  std::size_t budget = wire::kMaxHistoryPageBytes;
  std::size_t used = 0;
  std::size_t keep = 0;
  bool ascending = request.after.has_value();
  for (std::size_t i = 0; i < page.events.size(); ++i) {
    const auto& e = page.events[ascending ? i : page.events.size() - 1 - i];
    used += wire::encode(wire::ServerMessage{e}).size() + 1;
    if (keep > 0 && used > budget) break;
    ++keep;
  }
  if (keep < page.events.size()) {
    if (ascending) {
      page.events.resize(keep);
    } else {
      page.events.erase(page.events.begin(), page.events.begin() + static_cast<std::ptrdiff_t>(
                                                                       page.events.size() - keep));
    }
  }
  reply(session, page);
}

void Hub::handle(Session& session, const wire::ListChannels& request) {
  reply(session, wire::ChannelList{request.rid, memberships(session.user())});
}

std::vector<wire::ChannelState> Hub::memberships(const std::string& user) {
  std::vector<wire::ChannelState> out;
  auto it = channels_of_user_.find(user);
  if (it == channels_of_user_.end()) return out;
  for (const std::string& name : it->second) {
    auto channel = channels_.find(name);
    if (channel == channels_.end()) continue;
    wire::ChannelState state{name, channel->second.last_seq, to_string(channel->second.kind),
                             std::nullopt};
    auto member = channel->second.members.find(user);
    if (member != channel->second.members.end()) state.role = to_string(member->second.role);
    fill_counts(user, &state);
    out.push_back(std::move(state));
  }
  return out;
}

void Hub::reply(Session& session, const wire::ServerMessage& message) {
  enqueue(session, encoded(message));
}

void Hub::error(Session& session, std::optional<std::uint64_t> rid, const char* error_code,
                std::string message, std::optional<std::string> id) {
  ++metrics_.errors_total[error_code];
  wire::Error e;
  e.rid = rid;
  e.code = error_code;
  e.message = std::move(message);
  e.id = std::move(id);
  reply(session, e);
}

void Hub::store_error(Session& session, std::uint64_t rid, const Status& status,
                      std::optional<std::string> id) {
  std::string reason = status.reason();
  for (const char* known : {code::kChannelExists, code::kNoSuchChannel, code::kNotMember,
                            code::kInvalidKind, code::kInvalidSeq, code::kForbidden}) {
    if (reason == known) return error(session, rid, known, status.message(), std::move(id));
  }
  log("error", "store failure for \"{}\": {}", session.user(), status.message());
  error(session, rid, code::kInternal, "the server could not store or read this", std::move(id));
}

void Hub::enqueue(Session& session, Encoded item) {
  if (!session.enqueue(std::move(item))) {
    ++metrics_.slow_consumers_total;
    log("warning", "{} of \"{}\": send queue full, closing as slow consumer", session.describe(),
        session.user());
  }
}

void Hub::publish(const StoredEvent& event, const Session* origin) {
  ++metrics_.events_stored_total[to_string(event.kind)];
  auto channel = channels_.find(event.channel);
  if (channel == channels_.end()) return;
  std::uint64_t queued = fan_out(channel->second, encoded(to_wire(event)), origin);
  metrics_.events_delivered_total += queued;
  if (event.kind == EventKind::message) metrics_.messages_delivered_total += queued;
}

std::uint64_t Hub::fan_out(const Channel& channel, const Encoded& item, const Session* origin,
                           const std::string* skip_user) {
  std::uint64_t queued = 0;
  for (const auto& [member, state] : channel.members) {
    if (skip_user != nullptr && member == *skip_user) continue;
    auto sessions = sessions_of_user_.find(member);
    if (sessions == sessions_of_user_.end()) continue;
    // enqueue may close a slow session but never removes it from the list.
    for (Session* s : sessions->second) {
      if (s == origin || s->closing()) continue;
      ++queued;
      enqueue(*s, item);
    }
  }
  return queued;
}

}  // namespace parley::server
