// Hub: several devices per user, blocks, session recovery and verifiable
// reports (issue 10, docs/e2e.md "Devices", docs/security.md "Verifiable
// reports"). A user's devices are those with published keys; a removed one
// is refused from then on. Retry and resend notices wait per device until
// acknowledged. Reports of direct messages carry a franking opening that the
// server checks against the commitment and its own tag.
#include <fmt/format.h>
#include <sodium.h>

#include <optional>
#include <set>
#include <string>

#include "crypto/franking.hpp"
#include "hub.hpp"
#include "log.hpp"
#include "protocol/codec.hpp"

namespace parley::server {
namespace {

namespace code = wire::code;

// `text` as 32 bytes, if it is standard padded base64 of exactly that.
std::optional<crypto::Key32> key_from_base64(const std::string& text) {
  if (text.size() != 44) return std::nullopt;
  crypto::Key32 out{};
  unsigned char bin[33];
  std::size_t size = 0;
  if (sodium_base642bin(bin, sizeof bin, text.data(), text.size(), nullptr, &size, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      size != out.size()) {
    return std::nullopt;
  }
  std::copy(bin, bin + out.size(), out.begin());
  return out;
}

std::string to_base64(const crypto::Key32& key) {
  char out[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(out, sizeof out, key.data(), key.size(), sodium_base64_VARIANT_ORIGINAL);
  return out;
}

wire::E2eNotice to_wire(const StoredNotice& n) {
  wire::E2eNotice out;
  out.nid = n.nid;
  out.kind = n.kind;
  out.channel = n.channel;
  out.seq = n.seq;
  out.id = n.client_id;
  out.user = n.from_user;
  out.device = n.from_device;
  out.ts = n.ts;
  if (!n.e2e.empty()) {
    auto e2e = wire::decode_e2e(n.e2e);
    if (e2e && e2e->to.size() == 1) {
      out.envelope = std::move(e2e->to[0]);
      out.commit = std::move(e2e->commit);
      out.tag = std::move(e2e->tag);
    } else {
      log("error", "notice {}: stored e2e payload does not decode", n.nid);
    }
  }
  return out;
}

}  // namespace

const std::set<std::string>* Hub::devices_of(const std::string& user) {
  auto it = devices_.find(user);
  if (it != devices_.end()) return &it->second;
  auto listed = store_.devices(user);
  if (!listed) {
    log("error", "devices of \"{}\": {}", user, listed.status().message());
    return nullptr;
  }
  std::set<std::string>& devices = devices_[user];
  devices.insert(listed->begin(), listed->end());
  return &devices;
}

std::string Hub::block_between(const std::string& a, const std::string& b) const {
  if (a == b) return {};
  auto mine = blocks_.find(a);
  if (mine != blocks_.end() && mine->second.count(b) != 0) {
    return fmt::format("you have blocked \"{}\"", b);
  }
  auto theirs = blocks_.find(b);
  if (theirs != blocks_.end() && theirs->second.count(a) != 0) {
    return fmt::format("\"{}\" has blocked you", b);
  }
  return {};
}

bool Hub::refuse_blocked(Session& session, std::uint64_t rid, const std::string& other,
                         const std::optional<std::string>& id) {
  if (other.empty()) return false;
  std::string why = block_between(session.user(), other);
  if (why.empty()) return false;
  error(session, rid, code::kBlocked, std::move(why), id);
  return true;
}

std::string Hub::direct_peer(const Channel& channel, const std::string& user) const {
  if (channel.pair[0] == user) return channel.pair[1];
  if (channel.pair[1] == user) return channel.pair[0];
  for (const auto& member : channel.members) {
    if (member.first != user) return member.first;
  }
  return {};
}

void Hub::add_franking_tag(wire::E2e* e2e, const std::string& channel, const std::string& id,
                           const std::string& sender, std::int64_t ts) const {
  auto commit = key_from_base64(e2e->commit.value_or(""));
  if (!commit) return;  // check_e2e refused it before
  crypto::FrankingContext context{channel, id, sender, e2e->device, ts};
  e2e->tag = to_base64(crypto::franking_tag(franking_key_, context, *commit));
}

void Hub::close_device(const std::string& user, const std::string& device) {
  auto it = sessions_of_user_.find(user);
  if (it == sessions_of_user_.end()) return;
  for (Session* s : it->second) {
    if (s->closing() || s->device() != device) continue;
    error(*s, std::nullopt, code::kDeviceRemoved,
          fmt::format("device \"{}\" of \"{}\" was removed", shown(device), user));
    s->close(wire::close_code::kDeviceRemoved, code::kDeviceRemoved);
  }
}

void Hub::handle(Session& session, const wire::RemoveDevice& request) {
  const std::set<std::string>* devices = devices_of(session.user());
  if (devices == nullptr) {
    return error(session, request.rid, code::kInternal, "the server could not read devices");
  }
  if (devices->count(request.device) == 0) {
    return error(session, request.rid, code::kNoSuchDevice,
                 fmt::format("\"{}\" has no device \"{}\" with keys", session.user(),
                             shown(request.device)));
  }
  // Removed ids are kept for good, one row each: at most kMaxRemovedDevices.
  auto removed = store_.count_removed_devices(session.user());
  if (!removed) return store_error(session, request.rid, removed.status());
  if (*removed >= kMaxRemovedDevices) {
    return error(session, request.rid, code::kTooManyDevices,
                 fmt::format("\"{}\" has removed {} devices, the most there may be: device "
                             "\"{}\" stays",
                             session.user(), *removed, shown(request.device)));
  }
  if (Status s = store_.remove_device(session.user(), request.device, now_ms()); !s.ok()) {
    return store_error(session, request.rid, s);
  }
  devices_[session.user()].erase(request.device);
  ++metrics_.devices_removed_total;
  log("info", "\"{}\" removed device \"{}\"", session.user(), request.device);
  reply(session, wire::Ok{request.rid, "", 0, 0});
  close_device(session.user(), request.device);  // this connection too, when it is that device
}

void Hub::handle(Session& session, const wire::Block& request) {
  if (std::string why = check_user_name(request.user); !why.empty()) {
    return error(session, request.rid, code::kInvalidUser, why);
  }
  if (request.user == session.user()) {
    return error(session, request.rid, code::kInvalidUser,
                 fmt::format("\"{}\" cannot block themself", request.user));
  }
  const bool blocked = request.blocked.value_or(true);
  std::set<std::string>& mine = blocks_[session.user()];
  if (blocked && mine.count(request.user) == 0 && mine.size() >= wire::kMaxBlockedUsers) {
    return error(session, request.rid, code::kTooManyUsers,
                 fmt::format("\"{}\" blocks {} users, the most there may be", session.user(),
                             mine.size()));
  }
  if (Status s = store_.set_block(session.user(), request.user, blocked, now_ms()); !s.ok()) {
    return store_error(session, request.rid, s);
  }
  bool changed = blocked ? mine.insert(request.user).second : mine.erase(request.user) != 0;
  if (changed) ++metrics_.blocks_total[blocked ? "block" : "unblock"];
  reply(session, wire::Blocks{request.rid, {mine.begin(), mine.end()}});
}

void Hub::handle(Session& session, const wire::ListBlocks& request) {
  wire::Blocks out{request.rid, {}};
  auto mine = blocks_.find(session.user());
  if (mine != blocks_.end()) out.users.assign(mine->second.begin(), mine->second.end());
  reply(session, out);
}

bool Hub::queue_notice(Session& session, std::uint64_t rid, StoredNotice notice) {
  const std::int64_t now = now_ms();
  if (Status s = store_.drop_old_notices(now - kNoticeLifetimeMs); !s.ok()) {
    log("warning", "dropping old notices: {}", s.message());
  }
  auto queued = store_.count_notices(notice.user, notice.device);
  if (!queued) {
    store_error(session, rid, queued.status());
    return false;
  }
  if (*queued >= wire::kMaxNoticesPerDevice) {
    error(session, rid, code::kRateLimited,
          fmt::format("device \"{}\" of \"{}\" has {} notices waiting, the most there may be",
                      shown(notice.device), notice.user, *queued));
    return false;
  }
  notice.created = now;
  auto nid = store_.add_notice(notice);
  if (!nid) {
    store_error(session, rid, nid.status());
    return false;
  }
  notice.nid = *nid;
  auto sessions = sessions_of_user_.find(notice.user);
  if (sessions == sessions_of_user_.end()) return true;
  Encoded item = encoded(to_wire(notice));
  for (Session* s : sessions->second) {
    if (!s->closing() && s->device() == notice.device) enqueue(*s, item);
  }
  return true;
}

void Hub::notices_welcome(Session& session) {
  if (session.device().empty()) return;
  auto queued = store_.notices(session.user(), session.device(), kNoticesPerWelcome);
  if (!queued) {
    log("warning", "notices of \"{}\" device \"{}\": {}", session.user(), session.device(),
        queued.status().message());
    return;
  }
  for (const StoredNotice& n : *queued) reply(session, to_wire(n));
}

void Hub::handle(Session& session, const wire::E2eRetry& request) {
  Channel* channel = member_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  if (channel->kind == ChannelKind::direct &&
      refuse_blocked(session, request.rid, direct_peer(*channel, session.user()))) {
    return;
  }
  auto event = store_.event_at(request.channel, request.seq);
  if (!event) return store_error(session, request.rid, event.status());
  if (!*event || (*event)->kind != EventKind::message || (*event)->e2e.empty()) {
    return error(session, request.rid, code::kNoSuchMessage,
                 fmt::format("\"{}\" has no e2e message at seq {}", request.channel, request.seq));
  }
  const StoredEvent& message = **event;
  auto e2e = wire::decode_e2e(message.e2e);
  if (!e2e) {
    return error(session, request.rid, code::kInternal, "the server could not read this message");
  }
  bool addressed = false;
  for (const wire::Envelope& envelope : e2e->to) {
    if (envelope.user == session.user() && envelope.device == session.device()) addressed = true;
  }
  if (session.device().empty() || !addressed) {
    return error(session, request.rid, code::kInvalidE2e,
                 fmt::format("the message at seq {} of \"{}\" is not addressed to this device",
                             request.seq, request.channel));
  }
  const std::set<std::string>* devices = devices_of(message.sender);
  if (devices == nullptr) {
    return error(session, request.rid, code::kInternal, "the server could not read devices");
  }
  if (devices->count(e2e->device) == 0) {
    return error(session, request.rid, code::kNoSuchDevice,
                 fmt::format("device \"{}\" of \"{}\" that sent seq {} no longer exists",
                             shown(e2e->device), message.sender, request.seq));
  }
  auto asked = store_.retry_state(request.channel, request.seq, session.user(), session.device());
  if (!asked) return store_error(session, request.rid, asked.status());
  // Asked already and not answered yet: one notice is enough.
  if (*asked && !(*asked)->resent) {
    return reply(session, wire::Ok{request.rid, request.channel, 0, channel->last_seq});
  }
  // Answered, and asked kMaxRetryRounds times already: refused (rate_limited,
  // see kMaxRetryRounds) so that retry -> resend cannot loop for ever.
  if (*asked && (*asked)->rounds >= kMaxRetryRounds) {
    return error(session, request.rid, code::kRateLimited,
                 fmt::format("device \"{}\" of \"{}\" asked for seq {} of \"{}\" {} times, the "
                             "most there may be",
                             shown(session.device()), session.user(), request.seq,
                             request.channel, (*asked)->rounds));
  }
  StoredNotice notice;
  notice.user = message.sender;
  notice.device = e2e->device;
  notice.kind = "retry";
  notice.channel = request.channel;
  notice.seq = request.seq;
  notice.client_id = message.client_id;
  notice.from_user = session.user();
  notice.from_device = session.device();
  notice.ts = message.ts;
  if (!queue_notice(session, request.rid, std::move(notice))) return;
  if (Status s = store_.put_retry(request.channel, request.seq, session.user(), session.device(),
                                  false, now_ms());
      !s.ok()) {
    return store_error(session, request.rid, s);
  }
  ++metrics_.e2e_retries_total;
  reply(session, wire::Ok{request.rid, request.channel, 0, channel->last_seq});
}

void Hub::handle(Session& session, const wire::E2eResend& request) {
  Channel* channel = member_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  auto event = store_.event_at(request.channel, request.seq);
  if (!event) return store_error(session, request.rid, event.status());
  if (!*event || (*event)->kind != EventKind::message || (*event)->e2e.empty()) {
    return error(session, request.rid, code::kNoSuchMessage,
                 fmt::format("\"{}\" has no e2e message at seq {}", request.channel, request.seq));
  }
  const StoredEvent& message = **event;
  auto e2e = wire::decode_e2e(message.e2e);
  if (!e2e) {
    return error(session, request.rid, code::kInternal, "the server could not read this message");
  }
  if (message.sender != session.user() || e2e->device != session.device()) {
    return error(session, request.rid, code::kForbidden,
                 fmt::format("the message at seq {} of \"{}\" was sent by another device: only "
                             "it resends",
                             request.seq, request.channel));
  }
  const wire::Envelope& envelope = request.envelope;
  if (refuse_blocked(session, request.rid, envelope.user)) return;
  auto asked = store_.retry_state(request.channel, request.seq, envelope.user, envelope.device);
  if (!asked) return store_error(session, request.rid, asked.status());
  if (!*asked) {
    return error(session, request.rid, code::kInvalidE2e,
                 fmt::format("device \"{}\" of \"{}\" did not ask for seq {} again",
                             shown(envelope.device), shown(envelope.user), request.seq));
  }
  // One resend per retry: only while the retry waits (not resent yet).
  if ((*asked)->resent) {
    return error(session, request.rid, code::kInvalidE2e,
                 fmt::format("device \"{}\" of \"{}\" was sent seq {} again already: it has "
                             "not asked since",
                             shown(envelope.device), shown(envelope.user), request.seq));
  }
  if (std::string why = check_envelope(0, envelope); !why.empty()) {
    return error(session, request.rid, code::kInvalidE2e, why);
  }
  StoredNotice notice;
  notice.user = envelope.user;
  notice.device = envelope.device;
  notice.kind = "resend";
  notice.channel = request.channel;
  notice.seq = request.seq;
  notice.client_id = message.client_id;
  notice.from_user = session.user();
  notice.from_device = session.device();
  notice.ts = message.ts;
  notice.e2e = wire::encode_e2e(wire::E2e{session.device(), {envelope}, e2e->commit, e2e->tag});
  if (!queue_notice(session, request.rid, std::move(notice))) return;
  if (Status s = store_.put_retry(request.channel, request.seq, envelope.user, envelope.device,
                                  true, now_ms());
      !s.ok()) {
    return store_error(session, request.rid, s);
  }
  ++metrics_.e2e_resends_total;
  reply(session, wire::Ok{request.rid, request.channel, 0, channel->last_seq});
}

void Hub::handle(Session& session, const wire::E2eAck& request) {
  if (!session.device().empty()) {
    auto deleted = store_.delete_notice(session.user(), session.device(), request.nid);
    if (!deleted) return store_error(session, request.rid, deleted.status());
    if (*deleted) ++metrics_.e2e_notices_acked_total;
  }
  reply(session, wire::Ok{request.rid, "", 0, 0});
}

void Hub::report_direct(Session& session, const wire::Report& request, const Channel& channel) {
  auto refuse = [&](std::string why) {
    error(session, request.rid, code::kInvalidReport, std::move(why));
  };
  if (channel.members.count(session.user()) == 0) {
    return error(session, request.rid, code::kNotMember,
                 fmt::format("a report from a non-recipient: \"{}\" is not a member of \"{}\"",
                             session.user(), request.channel));
  }
  if (!request.e2e) {
    return refuse(fmt::format("a report in direct channel \"{}\" needs the message's franking "
                              "opening (e2e)",
                              request.channel));
  }
  if (request.reason.empty() || request.reason.size() > wire::kMaxReportReason) {
    return error(session, request.rid, code::kInvalidText,
                 fmt::format("a report's reason must be 1-{} bytes, not {}",
                             wire::kMaxReportReason, request.reason.size()));
  }
  const wire::FrankingOpening& opening = *request.e2e;
  if (opening.sender == session.user()) {
    return refuse(fmt::format("\"{}\" reports their own message", session.user()));
  }
  if (opening.sender != direct_peer(channel, session.user())) {
    return refuse(fmt::format("sender \"{}\" is not the other member of \"{}\"",
                              shown(opening.sender), request.channel));
  }
  std::optional<crypto::Key32> parts[3];
  const char* names[3] = {"key", "commit", "tag"};
  const std::string* values[3] = {&opening.key, &opening.commit, &opening.tag};
  for (int i = 0; i < 3; ++i) {
    parts[i] = key_from_base64(*values[i]);
    if (!parts[i]) {
      return refuse(fmt::format("field \"e2e.{}\" must be base64 (standard, padded) of 32 bytes",
                                names[i]));
    }
  }
  if (!wire::is_valid_utf8(opening.text)) return refuse("the disclosed text is not valid utf-8");
  crypto::Key32 commit{};
  if (!crypto::franking_commit(*parts[0], opening.id, opening.sender, request.channel,
                               opening.text, &commit)) {
    return refuse(fmt::format("message id \"{}\" is not 32 lowercase hex digits",
                              shown(opening.id)));
  }
  if (!crypto::equal32(commit, *parts[1])) {
    return refuse("the disclosed text does not match the message's commitment");
  }
  crypto::FrankingContext context{request.channel, opening.id, opening.sender, opening.device,
                                  opening.ts};
  if (!crypto::equal32(crypto::franking_tag(franking_key_, context, commit), *parts[2])) {
    return refuse("the report does not match a message this server delivered");
  }
  auto original = store_.event_at(request.channel, request.seq);
  if (!original) return store_error(session, request.rid, original.status());
  // The event at seq must be that very message (deleted or not): a report
  // naming a seq not used yet would blame whatever message lands there later.
  if (!*original) {
    return refuse(fmt::format("\"{}\" has no message at seq {}: the report names no message "
                              "this server delivered",
                              request.channel, request.seq));
  }
  if ((*original)->kind != EventKind::message || (*original)->client_id != opening.id ||
      (*original)->sender != opening.sender) {
    return refuse(fmt::format("the message at seq {} of \"{}\" is not the one disclosed",
                              request.seq, request.channel));
  }
  auto id = store_.add_verified_report(request.channel, request.seq, session.user(),
                                       request.reason, now_ms(), opening.sender, opening.text);
  if (!id) return store_error(session, request.rid, id.status());
  ++metrics_.reports_total;
  ++metrics_.reports_verified_total;
  log("info", "report {}: \"{}\" reported seq {} of \"{}\" (verified)", *id, session.user(),
      request.seq, request.channel);
  reply(session, wire::Ok{request.rid, request.channel, 0, channel.last_seq});
}

}  // namespace parley::server
