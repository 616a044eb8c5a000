// Typing indicators and receipt cursors.
//
// Typing is ephemeral: the sender signals at most once per kTypingInterval
// while typing and once when it stops; a receiver shows a peer as typing until
// the peer stops, sends a message, or kTypingExpiry passes without a refresh.
//
// Receipts are monotonic cursors. Delivered: this device has received a channel
// up to seq (sent automatically as the delivery cursor moves, coalesced to one
// frame per channel per loop pass). Read: this user has read up to seq (sent
// when the app calls mark_read, kept in the cache until the server stored it).
#include <fmt/format.h>

#include "client/engine.hpp"
#include "protocol/codec.hpp"

namespace parley::client {

namespace {
constexpr auto kTypingInterval = std::chrono::seconds(3);
constexpr auto kTypingExpiry = std::chrono::seconds(5);

bool authenticated(LifecycleState s) {
  return s == LifecycleState::syncing || s == LifecycleState::ready;
}
}  // namespace

// ---- typing ----------------------------------------------------------------------

void Engine::set_typing(const std::string& channel, bool typing) {
  if (!check_channel_name(channel).empty()) return;
  auto now = Clock::now();
  auto it = typing_sent_.find(channel);
  if (typing) {
    if (it != typing_sent_.end() && now - it->second < kTypingInterval) return;  // throttled
    bool started = it == typing_sent_.end();
    if (!authenticated(state_)) return;  // ephemeral: nothing to send offline
    typing_sent_[channel] = now;
    // Fire and forget: no reply on success; a refusal has no one waiting.
    wire::Typing t{next_rid_++, channel, true};
    transport_->send(wire::encode(wire::ClientMessage(t)));
    if (started) analytics("typing_started", {{"channel", channel}});
  } else {
    if (it == typing_sent_.end()) return;
    typing_sent_.erase(it);
    if (!authenticated(state_)) return;
    wire::Typing t{next_rid_++, channel, false};
    transport_->send(wire::encode(wire::ClientMessage(t)));
  }
}

void Engine::handle_typing(const wire::TypingEvent& event) {
  if (event.user == user_) return;  // our own other device
  auto key = std::make_pair(event.channel, event.user);
  auto it = typing_peers_.find(key);
  if (event.active) {
    bool was = it != typing_peers_.end();
    typing_peers_[key] = Clock::now() + kTypingExpiry;
    if (!was) events_.push(TypingChanged{event.channel, event.user, true});
  } else if (it != typing_peers_.end()) {
    typing_peers_.erase(it);
    events_.push(TypingChanged{event.channel, event.user, false});
  }
}

void Engine::typing_stopped_by_message(const Message& message) {
  auto it = typing_peers_.find(std::make_pair(message.channel, message.sender));
  if (it == typing_peers_.end()) return;
  typing_peers_.erase(it);
  events_.push(TypingChanged{message.channel, message.sender, false});
}

void Engine::expire_typing(Clock::time_point now) {
  for (auto it = typing_peers_.begin(); it != typing_peers_.end();) {
    if (it->second <= now) {
      events_.push(TypingChanged{it->first.first, it->first.second, false});
      it = typing_peers_.erase(it);
    } else {
      ++it;
    }
  }
}

// ---- receipts --------------------------------------------------------------------

void Engine::queue_delivered(const std::string& channel, std::uint64_t seq) {
  auto& pending = delivered_pending_[channel];
  pending = std::max(pending, seq);
}

void Engine::flush_receipts() {
  if (delivered_pending_.empty() || !authenticated(state_)) return;
  auto pending = std::move(delivered_pending_);
  delivered_pending_.clear();
  for (const auto& [channel, seq] : pending) {
    auto& sent = delivered_sent_[channel];
    if (seq <= sent) continue;
    sent = seq;
    request(wire::Receipt{0, channel, "delivered", seq},
            [](const wire::ServerMessage*, const Status&) {
              // Monotonic on the server; a lost one is superseded by the next.
            });
  }
}

Status Engine::mark_read(const std::string& channel, std::uint64_t seq) {
  std::string why = check_channel_name(channel);
  if (!why.empty()) return Status(StatusCode::invalid_argument, why, wire::code::kInvalidName);
  auto info = cache_->channel(channel);
  if (!info) return info.status();
  std::uint64_t received = (info && *info) ? (*info)->read_to : 0;
  if (seq == 0 || seq > received) seq = received;  // never past what this device has
  if (seq == 0) return Status();                    // nothing received yet
  auto stored = cache_->raise_my_read(channel, seq);
  if (!stored) return stored.status();
  auto& sent = read_sent_[channel];
  if (*stored <= sent) return Status();  // nothing new to tell
  analytics("message_read", {{"channel", channel}}, {{"seq", static_cast<double>(*stored)}});
  if (authenticated(state_)) {
    sent = *stored;
    send_read(channel, *stored);
  }
  return Status();
}

void Engine::send_read(const std::string& channel, std::uint64_t seq) {
  request(wire::Receipt{0, channel, "read", seq},
          [this, channel](const wire::ServerMessage* reply, const Status& error) {
            if (reply != nullptr) {
              if (const auto* ok = std::get_if<wire::Ok>(reply)) {
                cache_->set_my_read_sent(channel, ok->seq);
              }
            } else if (error.code() == StatusCode::forbidden ||
                       error.code() == StatusCode::not_found ||
                       error.code() == StatusCode::invalid_argument) {
              // Refused for good (no longer a member, ...): stop resending it.
              if (auto mine = cache_->raise_my_read(channel, 0)) {
                cache_->set_my_read_sent(channel, *mine);
              }
            }
          });
}

void Engine::handle_receipt(const wire::ReceiptEvent& event) {
  ReceiptKind kind;
  if (event.kind == "read") {
    kind = ReceiptKind::read;
  } else if (event.kind == "delivered") {
    kind = ReceiptKind::delivered;
  } else {
    return;  // a kind from a newer server: ignore
  }
  std::string device = event.device.value_or("");
  if (event.user == user_ && kind == ReceiptKind::read) {
    cache_->raise_my_read(event.channel, event.seq);  // read on another device
    cache_->set_my_read_sent(event.channel, event.seq);
    auto& sent = read_sent_[event.channel];
    sent = std::max(sent, event.seq);
  }
  auto grew = cache_->raise_receipt(event.channel, event.user, device, kind, event.seq);
  if (grew && *grew) {
    events_.push(ReceiptUpdated{event.channel, event.user, device, kind, event.seq});
  }
}

void Engine::fetch_receipts(const std::string& channel) {
  request(wire::ListReceipts{0, channel},
          [this, channel](const wire::ServerMessage* reply, const Status&) {
            if (reply == nullptr) return;
            const auto* list = std::get_if<wire::ReceiptList>(reply);
            if (list == nullptr) return;
            cache_->set_members(channel, list->members);
            for (const auto& r : list->read) {
              handle_receipt(wire::ReceiptEvent{channel, r.user, "read", r.seq, std::nullopt});
            }
            for (const auto& d : list->delivered) {
              handle_receipt(wire::ReceiptEvent{channel, d.user, "delivered", d.seq, d.device});
            }
          });
}

void Engine::track_membership(const Message& event) {
  // Members, roles and everything else an event changes (engine_channels.cpp).
  apply_channel_event(event);
}

Result<ReceiptSummary> Engine::receipt_summary(const std::string& channel, std::uint64_t seq) {
  std::string why = check_channel_name(channel);
  if (!why.empty()) return Status(StatusCode::invalid_argument, why, wire::code::kInvalidName);
  std::string sender;
  if (auto events = cache_->events(channel, seq, seq); events && !events->empty()) {
    sender = events->front().sender;
  }
  return cache_->receipt_summary(channel, seq, sender);
}

}  // namespace parley::client
