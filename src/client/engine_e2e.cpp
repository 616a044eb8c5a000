// End-to-end encrypted direct messages in the engine (docs/e2e.md): keys
// published before ready, e2e events decrypted in the transaction that
// stores them, outbox messages to direct channels sealed before sending,
// safety numbers.
#include <fmt/format.h>

#include "client/e2e.hpp"
#include "client/engine.hpp"
#include "protocol/codec.hpp"

namespace parley::client {

namespace {
std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
bool is_direct_name(const std::string& channel) { return !channel.empty() && channel[0] == '@'; }
// How long a check of a peer's devices holds (docs/e2e.md).
constexpr auto kPeerDevicesRecheck = std::chrono::seconds(60);
}  // namespace

Status Engine::open_e2e() {
  e2e_ = std::make_unique<E2eDevice>(*cache_, user_, device_id_);
  return e2e_->open();
}

// ---- keys --------------------------------------------------------------------------

void Engine::publish_keys(const std::optional<wire::KeysState>& server, bool before_ready) {
  if (keys_publishing_) return;
  auto publish = e2e_->keys_to_publish(server, wall_ms());
  if (!publish || !*publish) return;
  keys_publishing_ = true;
  if (before_ready) keys_before_ready_ = true;
  std::size_t one_time = (*publish)->one_time ? (*publish)->one_time->size() : 0;
  request(std::move(**publish),
          [this, one_time](const wire::ServerMessage* reply, const Status& error) {
            keys_publishing_ = false;
            bool gate = keys_before_ready_;
            keys_before_ready_ = false;
            if (reply != nullptr && std::holds_alternative<wire::KeysState>(*reply)) {
              analytics("e2e_keys_published", {}, {{"one_time", static_cast<double>(one_time)}});
            } else {
              // A server without end-to-end support, or a refusal: the client
              // works on, and direct messages fail with no_keys at the peer.
              analytics("e2e_keys_failed", {{"reason", error.reason()}});
            }
            if (gate) finish_sync_step();
          });
}

void Engine::handle_keys_state(const wire::KeysState& state) {
  // Pushed when bundles taken leave few one-time prekeys: top them up.
  publish_keys(state, /*before_ready=*/false);
}

// ---- receiving -----------------------------------------------------------------------

Result<int> Engine::store_incoming(const std::vector<wire::ChannelEvent>& events,
                                   const std::optional<store::Cache::ChannelTop>& top) {
  std::vector<Message> messages;
  messages.reserve(events.size());
  std::optional<E2eDevice::Batch> batch;
  for (const auto& e : events) {
    Message m = to_message(e);
    if (e.e2e && m.kind == EventKind::message && !m.deleted) {
      // Decrypted once: a second decryption would fail as a replay, and the
      // stored copy stands anyway.
      auto stored = cache_->has_event(m.channel, m.seq);
      if (stored && *stored) continue;
      // The same message again under another seq: a replay by the server.
      // Its seq is stored (the sequence has no holes), its text is not.
      auto seen = cache_->has_e2e_message(m.channel, m.sender, m.id);
      if (seen && *seen) {
        m.e2e = true;
        m.text.clear();
        m.e2e_error = "replayed";
        messages.push_back(std::move(m));
        continue;
      }
      if (!batch) batch.emplace(*e2e_);
      batch->decrypt(e, m);
      if (!m.e2e_error.empty()) {
        analytics("e2e_decrypt_failed", {{"channel", m.channel}, {"reason", m.e2e_error}});
      }
    } else if (m.kind == EventKind::message && is_direct_name(m.channel)) {
      // A deleted direct message has no text either way; one that comes
      // without e2e was not encrypted by its sender's device (a forgery, or
      // a broken server): never shown as if it were.
      m.e2e = true;
      if (!m.deleted) {
        m.text.clear();
        m.mentions.clear();
        m.e2e_error = "bad_message";
      }
    }
    messages.push_back(std::move(m));
  }
  if (!batch) return cache_->store_events(messages, top);
  store::Cache::E2eWrite write = batch->write();
  crash_point("e2e_decrypted");
  auto stored = cache_->store_events(messages, top, &write);
  // On failure nothing was committed: the events come again (gap fill) and
  // decrypt again from the same state.
  if (!stored) return stored;
  crash_point("e2e_committed");
  for (auto& news : batch->committed()) {
    if (news.changed) events_.push(IdentityChanged{news.user, news.device, news.was_verified, news.new_device});
  }
  return stored;
}

// ---- sending ---------------------------------------------------------------------------

std::optional<std::string> Engine::direct_peer(const std::string& channel) {
  if (!is_direct_name(channel)) return std::nullopt;
  auto plus = channel.find('+');
  if (plus != std::string::npos) {
    // "@low+high": user names cannot hold '+'.
    std::string low = channel.substr(1, plus - 1);
    std::string high = channel.substr(plus + 1);
    if (low == user_) return high;
    if (high == user_) return low;
    return std::nullopt;
  }
  auto members = cache_->members(channel);
  if (!members) return std::nullopt;
  for (const auto& m : *members) {
    if (m.user != user_) return m.user;
  }
  return std::nullopt;
}

std::optional<std::string> Engine::direct_channel(const std::string& user) {
  auto all = cache_->channels();
  if (!all) return std::nullopt;
  for (const auto& c : *all) {
    if (is_direct_name(c.name) && direct_peer(c.name) == user) return c.name;
  }
  return std::nullopt;
}

void Engine::transmit_e2e(const OutboxEntry& entry) {
  if (outbox_in_flight_.count(entry.id)) return;
  // Sealed before (then lost with a connection): the same ciphertext again,
  // so that the server's deduplication and the peer's ratchet both hold.
  if (auto sealed = cache_->e2e_outgoing(entry.id); sealed && *sealed) {
    for (auto& item : wire::decode_client_frame(**sealed)) {
      if (auto* m = std::get_if<wire::ClientMessage>(&item)) {
        if (auto* send = std::get_if<wire::Send>(m)) return send_entry(entry, *send, true);
      }
    }
  }
  auto peer = direct_peer(entry.channel);
  if (!peer) {
    // The members of a direct channel named by a hash are not known yet.
    fetch_channel_state(entry.channel);
    outbox_retry_at_ = Clock::now() + std::chrono::seconds(1);
    return;
  }
  auto waiting = bundle_waiting_.find(*peer);
  if (waiting != bundle_waiting_.end()) {
    for (const auto& e : waiting->second) {
      if (e.id == entry.id) return;
    }
    waiting->second.push_back(entry);
    return;
  }
  auto has = e2e_->has_sessions(*peer);
  bool sessions = has && *has;
  auto checked = peers_checked_.find(*peer);
  if (sessions && checked != peers_checked_.end() &&
      Clock::now() - checked->second < kPeerDevicesRecheck) {
    seal_and_send(entry, *peer, nullptr);
    return;
  }
  // Before the first message to a peer on each connection, and again when
  // the last check is older than kPeerDevicesRecheck: the peer's current
  // devices (a new install, a changed key). Messages that come
  // meanwhile wait, so that one bundle request serves them all (each would
  // take a one-time prekey and start a session of its own otherwise).
  bundle_waiting_[*peer].push_back(entry);
  if (sessions) {
    check_peer_devices(*peer);
  } else {
    fetch_bundles(*peer);
  }
}

void Engine::release_waiting(const std::string& peer, const wire::Bundles* bundles,
                             const Status& error) {
  auto node = bundle_waiting_.extract(peer);
  if (node.empty()) return;
  std::vector<OutboxEntry> entries = std::move(node.mapped());
  if (!error.ok()) {
    if (error.reason() == wire::code::kNoKeys || error.reason() == wire::code::kInvalidUser) {
      for (const auto& e : entries) {
        fail_entry(e, Status(StatusCode::not_found,
                             fmt::format("message {}: \"{}\" has no device that can receive "
                                         "encrypted messages",
                                         e.id, peer),
                             wire::code::kNoKeys));
      }
    }
    // Otherwise (offline, timeout, rate limited) they stay in the outbox and
    // are tried again shortly (or after the next connection).
    if (connected_) outbox_retry_at_ = Clock::now() + std::chrono::seconds(1);
    return;
  }
  peers_checked_[peer] = Clock::now();
  for (const auto& e : entries) {
    // The bundles serve until a seal used them.
    if (seal_and_send(e, peer, bundles)) bundles = nullptr;
  }
}

void Engine::check_peer_devices(const std::string& peer) {
  request(wire::GetBundle{0, peer, true},
          [this, peer](const wire::ServerMessage* reply, const Status& error) {
            const auto* ids = reply != nullptr ? std::get_if<wire::Bundles>(reply) : nullptr;
            if (ids != nullptr && ids->user != peer) ids = nullptr;  // not what was asked
            if (ids == nullptr) return release_waiting(peer, nullptr, error);
            bool missing = false;
            if (auto news = e2e_->learn_identities(*ids, wall_ms())) {
              for (const auto& n : *news) {
                if (n.changed) {
                  events_.push(IdentityChanged{n.user, n.device, n.was_verified, n.new_device});
                }
              }
            }
            for (const auto& d : ids->devices) {
              if (peer == user_ && d.device == device_id_) continue;
              auto session = cache_->e2e_session(peer, d.device);
              if (session && !*session) missing = true;
            }
            if (!missing) return release_waiting(peer, nullptr, Status());
            fetch_bundles(peer);  // a device without a session: X3DH with it
          });
}

void Engine::fetch_bundles(const std::string& peer) {
  request(wire::GetBundle{0, peer, std::nullopt},
          [this, peer](const wire::ServerMessage* reply, const Status& error) {
            const auto* bundles = reply != nullptr ? std::get_if<wire::Bundles>(reply) : nullptr;
            if (bundles != nullptr && bundles->user != peer) bundles = nullptr;  // not the peer's
            release_waiting(peer, bundles, bundles != nullptr ? Status() : error);
          });
}

bool Engine::seal_and_send(const OutboxEntry& entry, const std::string& peer,
                           const wire::Bundles* bundles) {
  auto sealed = e2e_->seal(peer, entry.channel, entry.id, entry.text, bundles, wall_ms());
  if (!sealed) {
    if (sealed.status().reason() == wire::code::kNoKeys) {
      fail_entry(entry, sealed.status());
    } else {
      outbox_retry_at_ = Clock::now() + std::chrono::seconds(1);
    }
    return false;
  }
  for (const auto& news : sealed->news) {
    if (news.changed) events_.push(IdentityChanged{news.user, news.device, news.was_verified, news.new_device});
  }
  wire::Send send{0, entry.channel, entry.id, "", std::move(sealed->payload)};
  sealed->write.outgoing.emplace_back(entry.id, wire::encode(wire::ClientMessage(send)));
  // The advanced sessions and the ciphertext in one commit, before anything
  // leaves: a message key is never used for two messages.
  if (Status s = cache_->apply_e2e(sealed->write); !s.ok()) {
    outbox_retry_at_ = Clock::now() + std::chrono::seconds(1);  // sealed again then
    return false;
  }
  send_entry(entry, send, true);
  return true;
}

void Engine::fail_entry(const OutboxEntry& entry, const Status& why) {
  cache_->outbox_fail(entry.id, why.reason());
  send_started_.erase(entry.id);
  analytics("message_failed",
            {{"channel", entry.channel}, {"id", entry.id}, {"reason", why.reason()}});
  events_.push(MessageFailed{entry.channel, entry.id, why});
}

// ---- safety numbers ---------------------------------------------------------------------

void Engine::load_safety_number(RequestId req, const std::string& user) {
  auto answer = [this, req, user](Status status) {
    SafetyNumberLoaded done;
    done.request = req;
    done.user = user;
    if (status.ok()) {
      auto safety = e2e_->safety(user);
      if (safety) {
        done.number = safety->number;
        done.verified = safety->verified;
      } else {
        status = safety.status();
      }
    }
    done.status = std::move(status);
    events_.push(std::move(done));
  };
  if (std::string why = check_user_name(user); !why.empty() || user == user_) {
    return answer(Status(StatusCode::invalid_argument,
                         why.empty() ? fmt::format("user \"{}\": that is you", user) : why,
                         wire::code::kInvalidUser));
  }
  if (state_ != LifecycleState::ready) return answer(Status());
  // The number covers both users' devices as the server lists them: this
  // user's own first, then the contact's. On an error (offline, timeout)
  // the answer comes from what the cache knows.
  request(wire::GetBundle{0, user_, true},
          [this, user, answer](const wire::ServerMessage* own, const Status&) {
            const auto* mine = own != nullptr ? std::get_if<wire::Bundles>(own) : nullptr;
            if (mine != nullptr && mine->user == user_) e2e_->learn_identities(*mine, wall_ms());
            request(wire::GetBundle{0, user, true},
                    [this, user, answer](const wire::ServerMessage* reply, const Status&) {
                      const auto* bundles =
                          reply != nullptr ? std::get_if<wire::Bundles>(reply) : nullptr;
                      if (bundles != nullptr && bundles->user == user) {
                        if (auto news = e2e_->learn_identities(*bundles, wall_ms())) {
                          for (const auto& n : *news) {
                            if (n.changed) {
                              events_.push(IdentityChanged{n.user, n.device, n.was_verified,
                                                           n.new_device});
                            }
                          }
                        }
                      }
                      answer(Status());
                    });
          });
}

Status Engine::verify_contact(const std::string& user, bool verified,
                              const std::string& shown_number) {
  if (std::string why = check_user_name(user); !why.empty()) {
    return Status(StatusCode::invalid_argument, why, wire::code::kInvalidUser);
  }
  if (verified && !shown_number.empty()) {
    // What the users compared must be what is verified.
    auto now = e2e_->safety(user);
    if (!now) return now.status();
    if (now->number != shown_number) {
      return Status(StatusCode::invalid_argument,
                    fmt::format("the safety number with \"{}\" changed since it was shown", user),
                    "safety_changed");
    }
  }
  return e2e_->verify(user, verified);
}

}  // namespace parley::client
