// End-to-end encrypted direct messages in the engine (docs/e2e.md): keys
// published before ready, e2e events decrypted in the transaction that
// stores them, outbox messages to direct channels sealed before sending,
// safety numbers.
#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>

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
// Decryption failures a new session repairs (docs/e2e.md, "Recovery").
const std::vector<std::string>& recoverable_errors() {
  static const std::vector<std::string> errors{"no_session", "bad_message", "unknown_prekey"};
  return errors;
}
constexpr std::size_t kRetriesPerScan = 50;
// How long a message may be asked for again (the server keeps notices as long).
constexpr std::int64_t kResendWindowMs = 30LL * 24 * 3600 * 1000;
// stale_devices answers in a row before a message fails (docs/e2e.md).
constexpr int kMaxStaleTries = 6;
// Resends of one message to one device per run.
constexpr int kMaxResends = 3;
}  // namespace

Status Engine::open_e2e() {
  e2e_ = std::make_unique<E2eDevice>(*cache_, user_, device_id_);
  // Who each message was sealed for is kept as long as a resend may be asked.
  cache_->e2e_prune_recipients(wall_ms() - kResendWindowMs);
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
  push_news(batch->committed());
  if (connected_) {
    // A recipient device not known here: a device added to the contact or
    // to this user. Its identity is looked up (IdentityChanged then).
    std::set<std::string> users;
    for (const auto& [user, device] : batch->unknown_recipients()) users.insert(user);
    for (const auto& user : users) {
      auto checked = peers_checked_.find(user);
      if (checked != peers_checked_.end() && Clock::now() - checked->second < std::chrono::seconds(5)) {
        continue;
      }
      peers_checked_[user] = Clock::now();
      refresh_identities(user, [](const Status&) {});
    }
    bool recoverable = std::any_of(messages.begin(), messages.end(), [](const Message& m) {
      return std::find(recoverable_errors().begin(), recoverable_errors().end(), m.e2e_error) !=
             recoverable_errors().end();
    });
    if (recoverable) ask_retries();
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
  auto fresh = [this](const std::string& user) {
    auto checked = peers_checked_.find(user);
    return checked != peers_checked_.end() && Clock::now() - checked->second < kPeerDevicesRecheck;
  };
  auto has = e2e_->has_sessions(*peer);
  auto missing_peer = e2e_->devices_without_session(*peer);
  auto missing_own = e2e_->devices_without_session(user_);
  if (has && *has && missing_peer && missing_peer->empty() && missing_own &&
      missing_own->empty() && fresh(*peer) && fresh(user_)) {
    seal_and_send(entry, *peer, {});
    return;
  }
  // Before the first message to a peer on each connection, and again when
  // the last check is older than kPeerDevicesRecheck: the current devices of
  // the peer and of this user (a new install, a removed phone, a changed
  // key). Messages that come meanwhile wait, so that one round of bundle
  // requests serves them all (each would take one-time prekeys otherwise).
  bundle_waiting_[*peer].push_back(entry);
  check_devices(*peer);
}

void Engine::push_news(const std::vector<E2eDevice::IdentityNews>& news) {
  for (const auto& n : news) {
    if (n.changed) {
      events_.push(IdentityChanged{n.user, n.device, n.was_verified, n.new_device, n.removed});
    }
  }
}

void Engine::refresh_identities(const std::string& user, std::function<void(const Status&)> done) {
  request(wire::GetBundle{0, user, true, std::nullopt},
          [this, user, done](const wire::ServerMessage* reply, const Status& error) {
            const auto* ids = reply != nullptr ? std::get_if<wire::Bundles>(reply) : nullptr;
            if (ids != nullptr && ids->user != user) ids = nullptr;  // not what was asked
            if (ids == nullptr) {
              return done(error.ok() ? Status(StatusCode::protocol_error, "unexpected reply",
                                              "bad_reply")
                                     : error);
            }
            if (auto news = e2e_->learn_identities(*ids, wall_ms())) push_news(*news);
            peers_checked_[user] = Clock::now();
            done(Status());
          });
}

void Engine::check_devices(const std::string& peer) {
  refresh_identities(peer, [this, peer](const Status& error) {
    if (!error.ok()) return release_waiting(peer, {}, error);
    refresh_identities(user_, [this, peer](const Status& own_error) {
      // This user's own list may be refused only by a broken server; the
      // peer's devices are what matters then.
      (void)own_error;
      // A bundle for each device known without a session, and only for
      // those: each takes one of that device's one-time prekeys.
      std::vector<std::pair<std::string, std::string>> wanted;
      for (const auto& u : {peer, user_}) {
        auto missing = e2e_->devices_without_session(u);
        if (!missing) continue;
        for (const auto& d : *missing) wanted.emplace_back(u, d);
      }
      if (wanted.empty()) return release_waiting(peer, {}, Status());
      auto got = std::make_shared<std::vector<wire::Bundles>>();
      auto left = std::make_shared<std::size_t>(wanted.size());
      auto failed = std::make_shared<Status>();
      for (const auto& w : wanted) {
        const std::string u = w.first;
        request(wire::GetBundle{0, u, std::nullopt, w.second},
                [this, peer, u, got, left, failed](const wire::ServerMessage* reply,
                                                   const Status& why) {
                  const auto* b = reply != nullptr ? std::get_if<wire::Bundles>(reply) : nullptr;
                  if (b != nullptr && b->user == u) {
                    got->push_back(*b);
                  } else if (why.reason() == wire::code::kBlocked ||
                             why.reason() == "connection_lost" ||
                             why.code() == StatusCode::offline) {
                    *failed = why;
                  }
                  // Otherwise (the device was removed meanwhile, ...) the
                  // others are sealed for; the server says if one is missing.
                  if (--*left > 0) return;
                  release_waiting(peer, *got, *failed);
                });
      }
    });
  });
}

void Engine::release_waiting(const std::string& peer, const std::vector<wire::Bundles>& bundles,
                             const Status& error) {
  auto node = bundle_waiting_.extract(peer);
  if (node.empty()) return;
  std::vector<OutboxEntry> entries = std::move(node.mapped());
  if (!error.ok()) {
    if (error.reason() == wire::code::kNoKeys || error.reason() == wire::code::kInvalidUser ||
        error.reason() == wire::code::kBlocked) {
      for (const auto& e : entries) {
        fail_entry(e, error.reason() == wire::code::kBlocked
                          ? Status(StatusCode::forbidden,
                                   fmt::format("message {}: {}", e.id, error.message()),
                                   wire::code::kBlocked)
                          : Status(StatusCode::not_found,
                                   fmt::format("message {}: \"{}\" has no device that can "
                                               "receive encrypted messages",
                                               e.id, peer),
                                   wire::code::kNoKeys));
      }
    }
    // Otherwise (offline, timeout, rate limited) they stay in the outbox and
    // are tried again shortly (or after the next connection).
    if (connected_) outbox_retry_at_ = Clock::now() + std::chrono::seconds(1);
    return;
  }
  bool first = true;
  for (const auto& e : entries) {
    // The bundles serve until a seal used them.
    if (seal_and_send(e, peer, first ? bundles : std::vector<wire::Bundles>{})) first = false;
  }
}

bool Engine::seal_and_send(const OutboxEntry& entry, const std::string& peer,
                           const std::vector<wire::Bundles>& bundles) {
  auto sealed = e2e_->seal({peer, user_}, entry.channel, entry.id, entry.text, bundles, wall_ms());
  if (!sealed) {
    if (sealed.status().reason() == wire::code::kNoKeys) {
      fail_entry(entry, sealed.status());
    } else {
      outbox_retry_at_ = Clock::now() + std::chrono::seconds(1);
    }
    return false;
  }
  push_news(sealed->news);
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

void Engine::devices_stale(const OutboxEntry& entry) {
  auto peer = direct_peer(entry.channel);
  if (peer) peers_checked_.erase(*peer);
  peers_checked_.erase(user_);
  // The sealed form is dropped: sealed again for the devices listed now.
  // The message keys it used are never used again (the sessions advanced).
  cache_->e2e_drop_outgoing(entry.id);
  int tries = ++stale_tries_[entry.id];
  if (tries > kMaxStaleTries) {
    // A device that cannot be sealed for (its keys do not verify), or a
    // server whose lists keep changing: the message fails rather than loop.
    stale_tries_.erase(entry.id);
    return fail_entry(entry, Status(StatusCode::protocol_error,
                                    fmt::format("message {}: the server kept refusing the "
                                                "recipient devices ({} times)",
                                                entry.id, kMaxStaleTries),
                                    wire::code::kStaleDevices));
  }
  if (tries % 3 != 0) return transmit_e2e(entry);
  // Three in a row: again a little later rather than in a tight loop.
  outbox_retry_at_ = Clock::now() + std::chrono::seconds(2);
}

// ---- recovery ------------------------------------------------------------------------

void Engine::ask_retries() {
  if (!connected_) return;
  auto failed = cache_->e2e_undecrypted(recoverable_errors(), kRetriesPerScan);
  if (!failed) return;
  for (const auto& m : *failed) {
    auto key = std::make_pair(m.channel, m.seq);
    if (!retries_asked_.insert(key).second) continue;
    std::string reason = m.e2e_error;
    request(wire::E2eRetry{0, m.channel, m.seq},
            [this, m, reason](const wire::ServerMessage* reply, const Status& error) {
              if (reply == nullptr) {
                analytics("e2e_retry_failed", {{"channel", m.channel}, {"reason", error.reason()}});
                // rate_limited is for good: the message was asked for three
                // times already (or the sender's queue is full).
                if (error.reason() == "connection_lost" || error.code() == StatusCode::offline ||
                    error.code() == StatusCode::timeout || error.code() == StatusCode::internal) {
                  // Asked again on the next connection.
                  retries_asked_.erase({m.channel, m.seq});
                  return;
                }
                // Refused for good (the sending device is gone, blocked,
                // not addressed to this device): not asked again.
                store::Cache::E2eWrite write;
                write.texts.push_back({m.channel, m.seq, "", "unrecoverable"});
                cache_->apply_e2e(write);
                return;
              }
              store::Cache::E2eWrite write;
              write.texts.push_back({m.channel, m.seq, "", "waiting"});
              cache_->apply_e2e(write);
              analytics("e2e_retry_requested", {{"channel", m.channel}, {"reason", reason}});
              // The sender's device answers in a new session.
              SessionReset reset;
              reset.user = m.sender;
              reset.channel = m.channel;
              reset.seq = m.seq;
              reset.reason = reason;
              reset.by_this_device = true;
              events_.push(std::move(reset));
            });
  }
}

void Engine::ack_notice(std::uint64_t nid) {
  request(wire::E2eAck{0, nid}, [this, nid](const wire::ServerMessage*, const Status&) {
    notices_handling_.erase(nid);
  });
}

void Engine::handle_notice(const wire::E2eNotice& notice) {
  if (!notices_handling_.insert(notice.nid).second) return;  // in progress already
  if (notice.kind == "retry") return answer_retry(notice);
  if (notice.kind == "resend") return apply_resend(notice);
  ack_notice(notice.nid);  // a kind this client does not know: nothing to do with it
}

void Engine::answer_retry(const wire::E2eNotice& notice) {
  // Only this device's own messages, to a member of the channel.
  auto peer = direct_peer(notice.channel);
  auto own = cache_->own_message(notice.channel, notice.id);
  bool ours = own && *own && !(*own)->text.empty() && !(*own)->deleted;
  bool member = peer && (notice.user == *peer || notice.user == user_);
  if (!ours || !member || (notice.user == user_ && notice.device == device_id_)) {
    analytics("e2e_retry_refused", {{"channel", notice.channel}});
    return ack_notice(notice.nid);
  }
  Message m = **own;
  if (++resends_[{notice.id, notice.user + '/' + notice.device}] > kMaxResends) {
    analytics("e2e_retry_refused", {{"channel", notice.channel}, {"reason", "too_many"}});
    return ack_notice(notice.nid);
  }
  request(
      wire::GetBundle{0, notice.user, std::nullopt, notice.device},
      [this, notice, m](const wire::ServerMessage* reply, const Status& error) {
        const auto* bundle = reply != nullptr ? std::get_if<wire::Bundles>(reply) : nullptr;
        if (bundle == nullptr || bundle->user != notice.user) {
          if (error.reason() == wire::code::kNoSuchDevice || error.reason() == wire::code::kNoKeys ||
              error.reason() == wire::code::kBlocked) {
            return ack_notice(notice.nid);  // nobody left to send it to
          }
          notices_handling_.erase(notice.nid);  // comes again with the next welcome
          return;
        }
        auto sealed = e2e_->reseal(notice.user, notice.device, notice.channel, notice.id, m.text,
                                   *bundle, wall_ms());
        if (!sealed) {
          analytics("e2e_retry_refused",
                    {{"channel", notice.channel}, {"reason", sealed.status().reason()}});
          return ack_notice(notice.nid);
        }
        if (Status s = cache_->apply_e2e(sealed->write); !s.ok()) {
          notices_handling_.erase(notice.nid);
          return;
        }
        SessionReset reset;
        reset.user = notice.user;
        reset.device = notice.device;
        reset.channel = notice.channel;
        reset.seq = notice.seq;
        reset.reason = "retry_requested";
        events_.push(std::move(reset));
        wire::E2eResend resend{0, notice.channel, notice.seq, sealed->payload.to.front()};
        request(resend, [this, notice](const wire::ServerMessage* answer, const Status& why) {
          if (answer == nullptr && (why.reason() == "connection_lost" ||
                                    why.code() == StatusCode::offline ||
                                    why.code() == StatusCode::timeout ||
                                    why.code() == StatusCode::rate_limited)) {
            notices_handling_.erase(notice.nid);  // the notice comes again
            return;
          }
          analytics(answer != nullptr ? "e2e_resent" : "e2e_resend_failed",
                    {{"channel", notice.channel}, {"reason", why.reason()}});
          ack_notice(notice.nid);
        });
      });
}

void Engine::apply_resend(const wire::E2eNotice& notice) {
  auto stored = cache_->message_at(notice.channel, notice.seq);
  if (!stored) {
    notices_handling_.erase(notice.nid);  // the cache failed: the notice comes again
    return;
  }
  // Only a message this device could not decrypt (and asked for), from
  // that sender's device, with that id and commitment, takes the text.
  const auto& errors = recoverable_errors();
  bool asked = (*stored) && ((*stored)->e2e_error == "waiting" ||
                             std::find(errors.begin(), errors.end(), (*stored)->e2e_error) !=
                                 errors.end());
  auto original = cache_->e2e_franking(notice.channel, notice.seq);
  auto commit = notice.commit ? from_base64(*notice.commit) : std::nullopt;
  bool same = original && *original && (*original)->device == notice.device && commit &&
              !(*original)->commit.empty() && (*original)->commit == *commit;
  if (!*stored || !(*stored)->e2e || !asked || (*stored)->sender != notice.user ||
      (*stored)->id != notice.id || !same) {
    analytics("e2e_resend_refused", {{"channel", notice.channel}});
    return ack_notice(notice.nid);
  }
  E2eDevice::Batch batch(*e2e_);
  std::string text;
  std::string error = batch.decrypt_resend(notice, notice.channel, &text);
  if (!error.empty()) {
    analytics("e2e_decrypt_failed", {{"channel", notice.channel}, {"reason", error}});
    return ack_notice(notice.nid);
  }
  store::Cache::E2eWrite write = batch.write();
  write.texts.push_back({notice.channel, notice.seq, text, ""});
  if (Status s = cache_->apply_e2e(write); !s.ok()) {
    notices_handling_.erase(notice.nid);
    return;
  }
  push_news(batch.committed());
  Message m = **stored;
  m.text = std::move(text);
  m.e2e_error.clear();
  analytics("e2e_recovered", {{"channel", notice.channel}});
  events_.push(MessageUpdated{std::move(m)});
  ack_notice(notice.nid);
}

void Engine::fail_entry(const OutboxEntry& entry, const Status& why) {
  stale_tries_.erase(entry.id);
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
                          push_news(*news);
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

// ---- devices, blocks, reports ----------------------------------------------------------

namespace parley::client {

namespace {
std::string fingerprint(const std::string& identity_b64) {
  auto raw = from_base64(identity_b64);
  if (!raw) return {};
  unsigned char hash[32];
  crypto_generichash(hash, sizeof hash, reinterpret_cast<const unsigned char*>(raw->data()),
                     raw->size(), nullptr, 0);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
  std::string out;
  for (int i = 0; i < 64; i += 4) {
    if (i > 0) out += ' ';
    out.append(hex + i, 4);
  }
  return out;
}
}  // namespace

void Engine::list_devices(RequestId req) {
  auto fail = [this, req](const Status& s) { events_.push(DevicesLoaded{req, {}, s}); };
  when_ready(
      [this, req, fail] {
        request(wire::GetBundle{0, user_, true, std::nullopt},
                [this, req, fail](const wire::ServerMessage* reply, const Status& error) {
                  const auto* ids = reply != nullptr ? std::get_if<wire::Bundles>(reply) : nullptr;
                  if (ids == nullptr || ids->user != user_) {
                    return fail(error.ok() ? Status(StatusCode::protocol_error,
                                                    "unexpected reply", "bad_reply")
                                           : error);
                  }
                  if (auto news = e2e_->learn_identities(*ids, wall_ms())) push_news(*news);
                  peers_checked_[user_] = Clock::now();
                  DevicesLoaded done;
                  done.request = req;
                  for (const auto& d : ids->devices) {
                    done.devices.push_back(
                        DeviceInfo{d.device, fingerprint(d.identity), d.device == device_id_});
                  }
                  events_.push(std::move(done));
                });
      },
      fail, /*answer_offline=*/true);
}

void Engine::remove_device(RequestId req, const std::string& device) {
  auto done = [this, req](const Status& s) { events_.push(ChannelRequestDone{req, "", s, 0}); };
  if (device.empty() || device.size() > 64) {
    return done(Status(StatusCode::invalid_argument,
                       fmt::format("a device id is 1-64 bytes, not {}", device.size()),
                       wire::code::kNoSuchDevice));
  }
  when_ready(
      [this, device, done] {
        request(wire::RemoveDevice{0, device},
                [this, device, done](const wire::ServerMessage* reply, const Status& error) {
                  if (reply == nullptr) return done(error);
                  analytics("device_removed", {});
                  // Forgotten here too: no message is sealed for it again.
                  store::Cache::E2eWrite write;
                  write.forgotten.emplace_back(user_, device);
                  write.dropped.emplace_back(user_, device);
                  cache_->apply_e2e(write);
                  done(Status());
                });
      },
      done, /*answer_offline=*/true);
}

void Engine::block_user(RequestId req, const std::string& user, bool blocked) {
  auto fail = [this, req](const Status& s) { events_.push(BlockedUsersLoaded{req, {}, s}); };
  if (std::string why = check_user_name(user); !why.empty() || user == user_) {
    return fail(Status(StatusCode::invalid_argument,
                       why.empty() ? fmt::format("user \"{}\": that is you", user) : why,
                       wire::code::kInvalidUser));
  }
  when_ready(
      [this, req, user, blocked, fail] {
        request(wire::Block{0, user, blocked},
                [this, req, blocked, fail](const wire::ServerMessage* reply, const Status& error) {
                  const auto* list = reply != nullptr ? std::get_if<wire::Blocks>(reply) : nullptr;
                  if (list == nullptr) {
                    return fail(error.ok() ? Status(StatusCode::protocol_error,
                                                    "unexpected reply", "bad_reply")
                                           : error);
                  }
                  analytics(blocked ? "user_blocked" : "user_unblocked", {});
                  events_.push(BlockedUsersLoaded{req, list->users, Status()});
                });
      },
      fail, /*answer_offline=*/true);
}

void Engine::load_blocked(RequestId req) {
  auto fail = [this, req](const Status& s) { events_.push(BlockedUsersLoaded{req, {}, s}); };
  when_ready(
      [this, req, fail] {
        request(wire::ListBlocks{0},
                [this, req, fail](const wire::ServerMessage* reply, const Status& error) {
                  const auto* list = reply != nullptr ? std::get_if<wire::Blocks>(reply) : nullptr;
                  if (list == nullptr) {
                    return fail(error.ok() ? Status(StatusCode::protocol_error,
                                                    "unexpected reply", "bad_reply")
                                           : error);
                  }
                  events_.push(BlockedUsersLoaded{req, list->users, Status()});
                });
      },
      fail, /*answer_offline=*/true);
}

Result<wire::FrankingOpening> Engine::franking_opening(const std::string& channel,
                                                       std::uint64_t seq) {
  auto m = cache_->message_at(channel, seq);
  if (!m) return m.status();
  if (!*m) {
    return Status(StatusCode::not_found,
                  fmt::format("\"{}\" has no message at seq {} in this device's cache", channel, seq),
                  wire::code::kNoSuchMessage);
  }
  if ((*m)->sender == user_) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("seq {} of \"{}\" is your own message", seq, channel),
                  wire::code::kInvalidReport);
  }
  auto f = cache_->e2e_franking(channel, seq);
  if (!f) return f.status();
  if (!*f || (*f)->key.empty() || (*m)->text.empty() || !(*m)->e2e_error.empty()) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("seq {} of \"{}\" was not decrypted on this device: nothing to "
                              "disclose",
                              seq, channel),
                  wire::code::kInvalidReport);
  }
  if ((*f)->tag.empty()) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("seq {} of \"{}\" came without the server's franking tag", seq,
                              channel),
                  wire::code::kInvalidReport);
  }
  wire::FrankingOpening o;
  o.sender = (*m)->sender;
  o.device = (*f)->device;
  o.id = (*m)->id;
  o.ts = (*m)->ts_ms;
  o.text = (*m)->text;
  o.key = to_base64((*f)->key);
  o.commit = to_base64((*f)->commit);
  o.tag = to_base64((*f)->tag);
  return o;
}

}  // namespace parley::client
