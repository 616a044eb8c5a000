// Typing signals and receipt cursors (docs/protocol.md, "Typing and receipts").
//
// Typing is relayed, never stored: each signal goes to the open sessions of
// the channel's other members, throttled per session and channel. Receipts are
// monotonic cursors kept in the store; a cursor that moved is broadcast to
// every session of every member but the one that moved it.
#include <fmt/format.h>

#include "hub.hpp"
#include "log.hpp"

namespace parley::server {
namespace {

namespace code = wire::code;

// Active signals of one session in one channel closer together than this are
// dropped: clients refresh about every 3 s, so only a misbehaving client hits
// it, and fan-out stays bounded. Stops are never dropped.
constexpr auto kTypingMinInterval = std::chrono::seconds(1);

}  // namespace

Hub::Channel* Hub::member_channel(Session& session, std::uint64_t rid, const std::string& name) {
  Channel* channel = existing_channel(session, rid, name);
  if (channel == nullptr || membership(session, rid, name, *channel) == nullptr) return nullptr;
  return channel;
}

void Hub::handle(Session& session, const wire::Typing& request) {
  Channel* channel = member_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  // Who may not post does not type either: read-only members, members of a
  // broadcast channel, muted members.
  const Member& member = channel->members.at(session.user());
  if (!allowed(session, request.rid, request.channel, *channel, member, Permission::post)) return;
  if (channel->kind == ChannelKind::direct &&
      refuse_blocked(session, request.rid, direct_peer(*channel, session.user()))) {
    return;
  }
  if (member.muted_until && (*member.muted_until == 0 || *member.muted_until > now_ms())) {
    return error(session, request.rid, code::kMuted,
                 fmt::format("\"{}\" is muted in \"{}\"", session.user(), request.channel));
  }
  ++metrics_.typing_received_total;
  if (request.active) {
    auto now = std::chrono::steady_clock::now();
    auto& relayed_at = typing_relayed_at_[&session];
    auto last = relayed_at.find(request.channel);
    if (last != relayed_at.end() && now - last->second < kTypingMinInterval) {
      ++metrics_.typing_dropped_total;
      return;
    }
    relayed_at[request.channel] = now;
  }
  // No reply: a typing signal is fire and forget unless refused.
  Encoded item = encoded(wire::TypingEvent{request.channel, session.user(), request.active});
  metrics_.typing_relayed_total += fan_out(*channel, item, &session, &session.user());
}

void Hub::handle(Session& session, const wire::Receipt& request) {
  if (std::string why = check_channel_name(request.channel); !why.empty()) {
    return error(session, request.rid, code::kInvalidName, why);
  }
  bool delivered = request.kind == "delivered";
  if (!delivered && request.kind != "read") {
    return error(
        session, request.rid, code::kInvalidKind,
        fmt::format("receipt kind \"{}\" is not \"delivered\" or \"read\"", shown(request.kind)));
  }
  Channel* channel = member_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  if (request.seq < 1 || request.seq > channel->last_seq) {
    return error(session, request.rid, code::kInvalidSeq,
                 fmt::format("receipt seq {} of \"{}\" is not within 1-{}", request.seq,
                             request.channel, channel->last_seq));
  }
  // Delivered cursors are per device; read cursors per user.
  std::string device = delivered ? session.device() : std::string();
  auto stored =
      store_.raise_receipt(request.channel, session.user(), device, request.kind, request.seq);
  if (!stored) return store_error(session, request.rid, stored.status());
  ++metrics_.receipts_received_total[request.kind];
  reply(session, wire::Ok{request.rid, request.channel, stored->seq, channel->last_seq});
  if (!stored->advanced) return;
  wire::ReceiptEvent event{request.channel, session.user(), request.kind, stored->seq,
                           std::nullopt};
  if (delivered) event.device = device;
  metrics_.receipts_broadcast_total[request.kind] += fan_out(*channel, encoded(event), &session);
  // Reading on one device clears the count on the others.
  if (!delivered) refresh_unread(session.user(), request.channel);
}

void Hub::handle(Session& session, const wire::ListReceipts& request) {
  Channel* channel = member_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  auto stored = store_.receipts(request.channel);
  if (!stored) return store_error(session, request.rid, stored.status());
  wire::ReceiptList list;
  list.rid = request.rid;
  list.channel = request.channel;
  for (const auto& [user, state] : channel->members) list.members.push_back(user);
  // Cursors of users who left stay stored for their return, but are not listed.
  for (StoredReceipt& r : *stored) {
    if (channel->members.count(r.user) == 0) continue;
    if (r.kind == "read") {
      list.read.push_back({std::move(r.user), std::nullopt, r.seq});
    } else {
      list.delivered.push_back({std::move(r.user), std::move(r.device), r.seq});
    }
  }
  reply(session, list);
}

}  // namespace parley::server
