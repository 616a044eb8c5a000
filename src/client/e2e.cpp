#include "client/e2e.hpp"

#include <fmt/format.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>

#include "crypto/franking.hpp"
#include "crypto/safety.hpp"
#include "protocol/codec.hpp"

namespace parley::client {
namespace {

using crypto::Key32;

std::string bytes_of(const std::uint8_t* p, std::size_t n) {
  return std::string(reinterpret_cast<const char*>(p), n);
}
template <std::size_t N>
std::string bytes_of(const std::array<std::uint8_t, N>& a) {
  return bytes_of(a.data(), N);
}
template <std::size_t N>
bool to_array(std::string_view s, std::array<std::uint8_t, N>& out) {
  if (s.size() != N) return false;
  std::memcpy(out.data(), s.data(), N);
  return true;
}
crypto::ByteView view(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::optional<crypto::IdentityPublic> parse_identity(std::string_view raw) {
  if (raw.size() != 64) return std::nullopt;
  crypto::IdentityPublic id;
  to_array(raw.substr(0, 32), id.sign_pub);
  to_array(raw.substr(32, 32), id.dh_pub);
  return id;
}
std::string identity_raw(const crypto::IdentityPublic& id) {
  return bytes_of(id.sign_pub) + bytes_of(id.dh_pub);
}

// The prekey header repeated on every message until the peer answers,
// stored as "identity ephemeral signed_prekey [one_time]" (base64, numbers).
std::string encode_header(const wire::PrekeyHeader& h) {
  std::string s = h.identity + ' ' + h.ephemeral + ' ' + std::to_string(h.signed_prekey);
  if (h.one_time) s += ' ' + std::to_string(*h.one_time);
  return s;
}
std::optional<wire::PrekeyHeader> decode_header(const std::string& s) {
  std::istringstream in(s);
  wire::PrekeyHeader h;
  std::uint64_t spk = 0;
  if (!(in >> h.identity >> h.ephemeral >> spk)) return std::nullopt;
  h.signed_prekey = static_cast<std::uint32_t>(spk);
  std::uint64_t opk = 0;
  if (in >> opk) h.one_time = static_cast<std::uint32_t>(opk);
  return h;
}

Result<std::vector<crypto::IdentityPublic>> identities_of(store::Cache& cache,
                                                          const std::string& user) {
  auto devices = cache.e2e_devices(user);
  if (!devices) return devices.status();
  std::vector<crypto::IdentityPublic> keys;
  for (const auto& d : *devices) {
    if (auto id = parse_identity(d.identity)) keys.push_back(*id);
  }
  return keys;
}

}  // namespace

std::string to_base64(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::optional<std::string> from_base64(std::string_view text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

std::optional<std::string> pack_plaintext(const std::string& id_hex, const std::string& sender,
                                          const std::string& channel,
                                          const crypto::Key32& franking_key,
                                          const std::string& text) {
  MessageId id;
  if (!MessageId::parse(id_hex, &id) || sender.size() > 255 || channel.size() > 255) {
    return std::nullopt;
  }
  std::string plain;
  plain.reserve(3 + 16 + sender.size() + channel.size() + 32 + text.size() + kPlaintextBlock);
  plain.push_back('\x02');
  plain.append(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
  plain.push_back(static_cast<char>(sender.size()));
  plain.append(sender);
  plain.push_back(static_cast<char>(channel.size()));
  plain.append(channel);
  plain.append(reinterpret_cast<const char*>(franking_key.data()), franking_key.size());
  plain.append(text);
  std::size_t unpadded = plain.size();
  plain.resize(unpadded + kPlaintextBlock);
  std::size_t padded = 0;
  if (sodium_pad(&padded, reinterpret_cast<unsigned char*>(plain.data()), unpadded,
                 kPlaintextBlock, plain.size()) != 0) {
    return std::nullopt;
  }
  plain.resize(padded);
  return plain;
}

std::optional<Unpacked> unpack_plaintext(std::string_view padded, const std::string& id_hex,
                                         const std::string& sender, const std::string& channel) {
  std::size_t len = 0;
  if (padded.empty() || padded.size() % kPlaintextBlock != 0 ||
      sodium_unpad(&len, reinterpret_cast<const unsigned char*>(padded.data()), padded.size(),
                   kPlaintextBlock) != 0) {
    return std::nullopt;
  }
  std::string_view p = padded.substr(0, len);
  if (p.size() < 17 || p[0] != '\x02') return std::nullopt;
  MessageId id;
  if (!MessageId::parse(id_hex, &id)) return std::nullopt;
  if (sodium_memcmp(p.data() + 1, id.bytes.data(), 16) != 0) return std::nullopt;
  p.remove_prefix(17);
  for (const std::string* expected : {&sender, &channel}) {
    if (p.empty()) return std::nullopt;
    auto n = static_cast<unsigned char>(p[0]);
    if (p.size() < 1u + n || p.substr(1, n) != *expected) return std::nullopt;
    p.remove_prefix(1u + n);
  }
  if (p.size() < 32) return std::nullopt;
  Unpacked out;
  std::memcpy(out.franking_key.data(), p.data(), 32);
  p.remove_prefix(32);
  out.text = std::string(p);
  return out;
}

void crash_point(const char* point) {
  static const char* configured = std::getenv("PARLEY_TEST_CRASH_AT");
  if (configured != nullptr && std::strcmp(configured, point) == 0) _exit(86);
}

// ---- the device ---------------------------------------------------------------

E2eDevice::E2eDevice(store::Cache& cache, std::string user, std::string device)
    : cache_(cache), user_(std::move(user)), device_(std::move(device)) {}

std::string E2eDevice::identity_bytes() const { return identity_raw(identity_.public_part()); }

Status E2eDevice::open() {
  if (!crypto::sodium_ready()) return Status(StatusCode::internal, "libsodium cannot be used");
  auto stored = cache_.e2e_identity();
  if (!stored) return stored.status();
  if (*stored) {
    const auto& row = **stored;
    if (!to_array(row.sign_pub, identity_.sign_pub) ||
        !to_array(row.sign_secret, identity_.sign_secret) ||
        !to_array(row.dh_pub, identity_.dh.pub) || !to_array(row.dh_secret, identity_.dh.secret)) {
      return Status(StatusCode::corrupt, "outbox.db: the device's identity keys are damaged");
    }
    return Status();
  }
  identity_ = crypto::Identity::generate();
  store::Cache::IdentityRow row{bytes_of(identity_.sign_pub), bytes_of(identity_.sign_secret),
                                bytes_of(identity_.dh.pub), bytes_of(identity_.dh.secret), 0};
  return cache_.set_e2e_identity(row);
}

Result<std::uint32_t> E2eDevice::allocate_ids(std::uint32_t n) {
  auto last = cache_.last_prekey_id();
  if (!last) return last.status();
  if (*last > UINT32_MAX - n - 1) {
    return Status(StatusCode::internal, "prekey ids are exhausted");
  }
  if (Status s = cache_.set_last_prekey_id(*last + n); !s.ok()) return s;
  return *last + 1;
}

Result<std::optional<wire::PublishKeys>> E2eDevice::keys_to_publish(
    const std::optional<wire::KeysState>& server, std::int64_t now_ms) {
  auto make_signed = [&](const char* kind) -> Result<store::Cache::PrekeyRow> {
    auto id = allocate_ids(1);
    if (!id) return id.status();
    crypto::SignedPrekey spk = crypto::make_signed_prekey(identity_, *id);
    store::Cache::PrekeyRow row{*id, kind, bytes_of(spk.key.pub), bytes_of(spk.key.secret),
                                bytes_of(spk.signature), now_ms};
    if (Status s = cache_.add_prekeys({row}); !s.ok()) return s;
    return row;
  };
  // The current signed prekey, rotated when due; old ones kept a while for
  // messages still in flight.
  auto signed_keys = cache_.prekeys("signed");
  if (!signed_keys) return signed_keys.status();
  std::optional<store::Cache::PrekeyRow> spk;
  if (!signed_keys->empty()) spk = signed_keys->back();
  if (!spk || now_ms - spk->created_ms >= kSignedPrekeyRotationMs) {
    auto made = make_signed("signed");
    if (!made) return made.status();
    spk = *made;
  }
  // A replaced signed prekey is kept for kOldSignedPrekeyKeepMs after its
  // successor was made (not after its own making: a device away for weeks
  // still opens the sessions others started meanwhile).
  std::vector<std::uint32_t> stale;
  for (std::size_t i = 0; i < signed_keys->size(); ++i) {
    const auto& k = (*signed_keys)[i];
    if (k.id == spk->id) continue;
    std::int64_t replaced_at =
        i + 1 < signed_keys->size() ? (*signed_keys)[i + 1].created_ms : spk->created_ms;
    if (now_ms - replaced_at > kOldSignedPrekeyKeepMs) stale.push_back(k.id);
  }
  if (Status s = cache_.delete_prekeys(stale); !s.ok()) return s;
  auto last_resort = cache_.prekeys("last_resort");
  if (!last_resort) return last_resort.status();
  std::optional<store::Cache::PrekeyRow> lr;
  if (!last_resort->empty()) {
    lr = last_resort->back();
  } else {
    auto made = make_signed("last_resort");
    if (!made) return made.status();
    lr = *made;
  }

  std::string identity = to_base64(identity_bytes());
  bool fresh = !server || server->identity != identity;
  wire::PublishKeys out;
  out.identity = identity;
  bool needed = fresh;
  if (fresh || server->signed_prekey != spk->id) {
    out.signed_prekey = wire::SignedKey{spk->id, to_base64(spk->pub), to_base64(spk->signature)};
    needed = true;
  }
  if (fresh || server->last_resort != lr->id) {
    out.last_resort = wire::SignedKey{lr->id, to_base64(lr->pub), to_base64(lr->signature)};
    needed = true;
  }
  std::uint64_t held = fresh ? 0 : server->one_time;
  if (held < wire::kOneTimeLowWater || fresh) {
    auto n = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(kOneTimeTarget - std::min<std::uint64_t>(held, kOneTimeTarget),
                                wire::kMaxOneTimePerRequest));
    if (n > 0) {
      auto first = allocate_ids(n);
      if (!first) return first.status();
      std::vector<store::Cache::PrekeyRow> rows;
      out.one_time.emplace();
      for (std::uint32_t i = 0; i < n; ++i) {
        crypto::KeyPair kp = crypto::KeyPair::generate();
        rows.push_back({*first + i, "one_time", bytes_of(kp.pub), bytes_of(kp.secret), "", now_ms});
        out.one_time->push_back(wire::OneTimeKey{*first + i, to_base64(bytes_of(kp.pub))});
      }
      if (Status s = cache_.add_prekeys(rows); !s.ok()) return s;
      needed = true;
      // Secrets of one-time prekeys the server no longer holds (handed out
      // and never used, or lost with a server's data) are dropped oldest
      // first beyond a bound.
      auto all = cache_.prekeys("one_time");
      if (all && all->size() > kMaxLocalOneTime) {
        std::vector<std::uint32_t> drop;
        for (std::size_t i = 0; i + kMaxLocalOneTime < all->size(); ++i) drop.push_back((*all)[i].id);
        cache_.delete_prekeys(drop);
      }
    }
  }
  if (!needed) return std::optional<wire::PublishKeys>();
  return std::optional<wire::PublishKeys>(std::move(out));
}

std::optional<crypto::KeyPair> E2eDevice::prekey_pair(std::uint32_t id, std::string* kind) {
  auto row = cache_.prekey(id);
  if (!row || !*row) return std::nullopt;
  crypto::KeyPair kp;
  if (!to_array((*row)->pub, kp.pub) || !to_array((*row)->secret, kp.secret)) return std::nullopt;
  if (kind != nullptr) *kind = (*row)->kind;
  return kp;
}

// ---- receiving ------------------------------------------------------------------

std::optional<std::string> E2eDevice::Batch::open_envelope(const wire::ChannelEvent& event,
                                                           const wire::Envelope& envelope,
                                                           std::string* error) {
  const std::string& sender_device = event.e2e->device;
  auto key = std::make_pair(event.sender, sender_device);
  auto body = from_base64(envelope.body);
  if (!body) {
    *error = "bad_message";
    return std::nullopt;
  }
  auto as_string = [](const crypto::Bytes& b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  };
  auto it = sessions_.find(key);
  if (it == sessions_.end()) {
    auto row = device_.cache_.e2e_session(event.sender, sender_device);
    if (row && *row) {
      if (auto r = crypto::Ratchet::deserialize((*row)->state)) {
        Working w{std::move(*r), (*row)->base_key, (*row)->pending_prekey, std::nullopt, {}};
        if ((*row)->previous_state && (*row)->previous_base_key) {
          w.previous = crypto::Ratchet::deserialize(*(*row)->previous_state);
          if (w.previous) w.previous_base = *(*row)->previous_base_key;
        }
        it = sessions_.emplace(key, std::move(w)).first;
      }
    }
  }
  // The previous session becomes current (the peer answered on it).
  auto promote = [](Working& w) {
    std::swap(w.ratchet, *w.previous);
    std::swap(w.base_key, w.previous_base);
    w.pending_prekey.reset();
  };
  std::optional<crypto::IdentityPublic> sender_identity;
  if (envelope.prekey) {
    const wire::PrekeyHeader& h = *envelope.prekey;
    auto identity_raw_bytes = from_base64(h.identity);
    auto ephemeral = from_base64(h.ephemeral);
    if (!identity_raw_bytes || !ephemeral || ephemeral->size() != 32) {
      *error = "bad_message";
      return std::nullopt;
    }
    sender_identity = parse_identity(*identity_raw_bytes);
    if (!sender_identity) {
      *error = "bad_message";
      return std::nullopt;
    }
    bool current = it != sessions_.end() && it->second.base_key == *ephemeral;
    bool previous = it != sessions_.end() && it->second.previous &&
                    it->second.previous_base == *ephemeral;
    if (!current && previous) {
      // A session this device replaced: try it without changing anything yet.
      crypto::Ratchet trial = *it->second.previous;
      auto plain = trial.decrypt(view(*body));
      if (!plain) {
        *error = "bad_message";
        return std::nullopt;
      }
      *it->second.previous = std::move(trial);
      promote(it->second);
      note_identity(key, identity_raw(*sender_identity));
      return as_string(*plain);
    }
    if (!current) {
      // A new session (X3DH section 3.3, Bob's side).
      std::string kind;
      auto spk = device_.prekey_pair(h.signed_prekey, &kind);
      if (!spk || (kind != "signed")) {
        *error = "unknown_prekey";
        return std::nullopt;
      }
      std::optional<crypto::KeyPair> opk;
      std::string opk_kind;
      if (h.one_time) {
        opk = device_.prekey_pair(*h.one_time, &opk_kind);
        if (!opk || (opk_kind != "one_time" && opk_kind != "last_resort")) {
          *error = "unknown_prekey";
          return std::nullopt;
        }
      }
      Key32 ek{};
      to_array(*ephemeral, ek);
      auto secret = crypto::x3dh_respond(device_.identity_, *spk, opk ? &*opk : nullptr,
                                         *sender_identity, ek);
      if (!secret) {
        *error = "bad_message";
        return std::nullopt;
      }
      crypto::Ratchet fresh = crypto::Ratchet::init_responder(secret->sk, *spk, secret->ad);
      auto plain = fresh.decrypt(view(*body));
      if (!plain) {
        *error = "bad_message";
        return std::nullopt;
      }
      // The session it replaces stays as the previous one: when both
      // devices started a session at once, each ends up answering on the
      // one the other will try.
      Working w{std::move(fresh), *ephemeral, std::nullopt, std::nullopt, {}};
      if (it != sessions_.end()) {
        w.previous = std::move(it->second.ratchet);
        w.previous_base = it->second.base_key;
      }
      sessions_.insert_or_assign(key, std::move(w));
      if (h.one_time && opk_kind == "one_time") used_one_time_.push_back(*h.one_time);
      note_identity(key, identity_raw(*sender_identity));
      return as_string(*plain);
    }
  }
  if (it == sessions_.end()) {
    *error = "no_session";
    return std::nullopt;
  }
  auto plain = it->second.ratchet.decrypt(view(*body));
  if (!plain && !envelope.prekey && it->second.previous) {
    crypto::Ratchet trial = *it->second.previous;
    plain = trial.decrypt(view(*body));
    if (plain) {
      *it->second.previous = std::move(trial);
      promote(it->second);
    }
  } else if (plain) {
    // They have answered: our own messages need not repeat the prekey header.
    it->second.pending_prekey.reset();
  }
  if (!plain) {
    *error = "bad_message";
    return std::nullopt;
  }
  if (sender_identity) note_identity(key, identity_raw(*sender_identity));
  return as_string(*plain);
}

void E2eDevice::Batch::decrypt(const wire::ChannelEvent& event, Message& m) {
  m.e2e = true;
  m.text.clear();
  if (!event.e2e) return;
  if (event.sender == device_.user_ && event.e2e->device == device_.device_) {
    // Our own message: this device keeps the text it sent.
    auto text = device_.cache_.outbox_text(m.id);
    if (text && *text) {
      m.text = **text;
    } else {
      m.e2e_error = "sent_from_here";
    }
    return;
  }
  const wire::Envelope* mine = nullptr;
  for (const auto& env : event.e2e->to) {
    if (env.user == device_.user_ && env.device == device_.device_) {
      mine = &env;
      continue;
    }
    // A recipient this device has never heard of: a device added to the
    // contact (or to this user) that the caller will look up.
    auto known = known_devices_.find(env.user);
    if (known == known_devices_.end()) {
      std::set<std::string> devices;
      if (auto rows = device_.cache_.e2e_devices(env.user)) {
        for (const auto& d : *rows) devices.insert(d.device);
      }
      known = known_devices_.emplace(env.user, std::move(devices)).first;
    }
    if (!known->second.count(env.device)) unknown_recipients_.emplace(env.user, env.device);
  }
  if (mine == nullptr) {
    m.e2e_error = "not_for_this_device";
    return;
  }
  // The sender's list of devices not fetched yet: fetched now, so that a
  // device added to it later is news.
  auto list = lists_known_.find(event.sender);
  if (list == lists_known_.end()) {
    auto known = device_.cache_.e2e_list_known(event.sender);
    list = lists_known_.emplace(event.sender, known && *known).first;
  }
  if (!list->second) unknown_recipients_.emplace(event.sender, event.e2e->device);
  if (!open_checked(event, *mine, m)) {
    // What a resend must match: the sending device and the commitment.
    auto commit = event.e2e->commit ? from_base64(*event.e2e->commit) : std::nullopt;
    franking_.push_back(store::Cache::FrankingRow{event.channel, event.seq, event.e2e->device, "",
                                                  commit ? *commit : std::string(), ""});
  }
}

bool E2eDevice::Batch::open_checked(const wire::ChannelEvent& event,
                                    const wire::Envelope& envelope, Message& m) {
  // What this message may change, so that an authentic ciphertext carried
  // under the wrong message id (relabelled by the server) changes nothing.
  auto key = std::make_pair(event.sender, event.e2e->device);
  auto session_before = sessions_.find(key) != sessions_.end()
                            ? std::optional<Working>(sessions_.at(key))
                            : std::nullopt;
  auto device_before = devices_.find(key) != devices_.end()
                           ? std::optional<std::string>(devices_.at(key))
                           : std::nullopt;
  std::size_t used_before = used_one_time_.size();
  std::size_t news_before = news_.size();
  std::string error;
  auto padded = open_envelope(event, envelope, &error);
  if (!padded) {
    m.e2e_error = error;
    return false;
  }
  auto unpacked = unpack_plaintext(*padded, m.id, event.sender, event.channel);
  sodium_memzero(padded->data(), padded->size());
  // The franking commitment must be the one of this text and key, or the
  // message could not be reported (docs/security.md, "Verifiable reports").
  bool committed = false;
  std::optional<std::string> commit;
  if (unpacked && event.e2e->commit) commit = from_base64(*event.e2e->commit);
  if (commit && commit->size() == 32) {
    crypto::Key32 expected{};
    crypto::Key32 claimed{};
    to_array(*commit, claimed);
    committed = crypto::franking_commit(unpacked->franking_key, m.id, event.sender, event.channel,
                                        unpacked->text, &expected) &&
                crypto::equal32(expected, claimed);
  }
  if (!unpacked || !committed || !wire::is_valid_utf8(unpacked->text)) {
    if (session_before) {
      sessions_.insert_or_assign(key, std::move(*session_before));
    } else {
      sessions_.erase(key);
    }
    if (device_before) {
      devices_[key] = *device_before;
    } else {
      devices_.erase(key);
    }
    used_one_time_.resize(used_before);
    news_.resize(news_before);
    if (unpacked) sodium_memzero(unpacked->franking_key.data(), 32);
    m.e2e_error = "bad_message";
    return false;
  }
  {
    // What a report of this message needs (this user's own are not
    // reported, but a resend is checked against the row).
    std::optional<std::string> tag;
    if (event.e2e->tag) tag = from_base64(*event.e2e->tag);
    franking_.push_back(store::Cache::FrankingRow{
        event.channel, event.seq, event.e2e->device, bytes_of(unpacked->franking_key), *commit,
        tag && tag->size() == 32 ? *tag : std::string()});
  }
  sodium_memzero(unpacked->franking_key.data(), 32);
  m.text = std::move(unpacked->text);
  m.e2e_error.clear();
  return true;
}

std::string E2eDevice::Batch::decrypt_resend(const wire::E2eNotice& notice,
                                             const std::string& channel, std::string* text) {
  if (!notice.envelope || notice.envelope->user != device_.user_ ||
      notice.envelope->device != device_.device_) {
    return "not_for_this_device";
  }
  wire::ChannelEvent event;
  event.channel = channel;
  event.seq = notice.seq;
  event.kind = "message";
  event.sender = notice.user;
  event.ts = notice.ts;
  event.id = notice.id;
  event.e2e = wire::E2e{notice.device, {*notice.envelope}, notice.commit, notice.tag};
  // A resend comes only from a device whose identity this device knows:
  // recovery never introduces a device (that is what IdentityChanged is for).
  auto key = std::make_pair(notice.user, notice.device);
  std::string known;
  if (auto rows = device_.cache_.e2e_devices(notice.user)) {
    for (const auto& d : *rows) {
      if (d.device == notice.device) known = d.identity;
    }
  }
  if (known.empty()) return "unknown_device";
  auto noted_before = devices_.find(key) != devices_.end()
                          ? std::optional<std::string>(devices_.at(key))
                          : std::nullopt;
  auto session_before = sessions_.find(key) != sessions_.end()
                            ? std::optional<Working>(sessions_.at(key))
                            : std::nullopt;
  std::size_t used_before = used_one_time_.size();
  std::size_t franking_before = franking_.size();
  Message m;
  m.channel = channel;
  m.seq = notice.seq;
  m.id = notice.id;
  m.sender = notice.user;
  if (!open_checked(event, *notice.envelope, m)) return m.e2e_error;
  auto noted = devices_.find(key);
  if (noted != devices_.end() && noted->second != known) {
    // Another identity under a known device id: refused, nothing kept.
    if (session_before) {
      sessions_.insert_or_assign(key, std::move(*session_before));
    } else {
      sessions_.erase(key);
    }
    if (noted_before) {
      devices_[key] = *noted_before;
    } else {
      devices_.erase(key);
    }
    used_one_time_.resize(used_before);
    franking_.resize(franking_before);
    news_.clear();
    return "unknown_device";
  }
  *text = std::move(m.text);
  return {};
}

void E2eDevice::Batch::note_identity(const std::pair<std::string, std::string>& key,
                                     const std::string& identity) {
  auto seen = devices_.find(key);
  if (seen != devices_.end() && seen->second == identity) return;
  auto known = device_.cache_.e2e_devices(key.first);
  const store::Cache::DeviceRow* before = nullptr;
  if (known) {
    for (const auto& d : *known) {
      if (d.device == key.second) before = &d;
    }
  }
  devices_[key] = identity;
  if (before != nullptr && before->identity == identity) return;
  bool was_verified = false;
  bool known_before = known && !known->empty();
  if (known_before) {
    auto verified = device_.cache_.e2e_verified(key.first);
    auto digest = device_.identity_digest(key.first);
    was_verified = verified && digest && !verified->empty() && *verified == *digest;
  }
  // News: a known device with another identity, or a device beside known
  // ones.
  bool changed = before != nullptr || known_before;
  news_.push_back(IdentityNews{key.first, key.second, changed, was_verified, before == nullptr});
}

store::Cache::E2eWrite E2eDevice::Batch::write() const {
  store::Cache::E2eWrite w;
  for (const auto& [key, s] : sessions_) {
    store::Cache::SessionRow row{key.first, key.second, s.ratchet.serialize(), s.base_key,
                                 s.pending_prekey, 0, std::nullopt, std::nullopt};
    if (s.previous) {
      row.previous_state = s.previous->serialize();
      row.previous_base_key = s.previous_base;
    }
    w.sessions.push_back(std::move(row));
  }
  for (const auto& [key, identity] : devices_) {
    w.devices.push_back(store::Cache::DeviceRow{key.first, key.second, identity, 0});
  }
  w.franking = franking_;
  return w;
}

std::vector<E2eDevice::IdentityNews> E2eDevice::Batch::committed() {
  device_.cache_.delete_prekeys(used_one_time_);
  used_one_time_.clear();
  return std::move(news_);
}

// ---- sending --------------------------------------------------------------------

Result<bool> E2eDevice::has_sessions(const std::string& peer) {
  auto rows = cache_.e2e_sessions_of(peer);
  if (!rows) return rows.status();
  return !rows->empty();
}

Result<std::vector<std::string>> E2eDevice::devices_without_session(const std::string& user) {
  auto devices = cache_.e2e_devices(user);
  if (!devices) return devices.status();
  std::vector<std::string> out;
  for (const auto& d : *devices) {
    if (user == user_ && d.device == device_) continue;
    auto session = cache_.e2e_session(user, d.device);
    if (!session) return session.status();
    if (!*session) out.push_back(d.device);
  }
  return out;
}

Status E2eDevice::drop_session(const std::string& user, const std::string& device) {
  store::Cache::E2eWrite write;
  write.dropped.emplace_back(user, device);
  return cache_.apply_e2e(write);
}

crypto::Key32 E2eDevice::franking_key(const std::string& id) const {
  static constexpr char kLabel[] = "parley-franking-key-v1";
  crypto::Key32 root = crypto::hmac_sha256(
      identity_.dh.secret, crypto::ByteView(reinterpret_cast<const std::uint8_t*>(kLabel),
                                            sizeof kLabel - 1));
  crypto::Key32 key = crypto::hmac_sha256(root, view(id));
  sodium_memzero(root.data(), root.size());
  return key;
}

struct E2eDevice::Target {
  std::string user;
  std::string device;
  crypto::Ratchet ratchet;
  std::string base_key;
  std::optional<std::string> pending;
  std::optional<std::string> previous_state{};  // kept as it was
  std::optional<std::string> previous_base{};
  std::string identity{};                       // raw, as recorded for a resend
};

namespace {
// A session started (X3DH, Alice's side) from one device's bundle; nullopt
// when the bundle is malformed or does not verify.
struct Started {
  crypto::Ratchet ratchet;
  std::string base_key;
  std::string header;
  std::string identity;  // the bundle's, raw
};
std::optional<Started> start_session(const crypto::Identity& self, const std::string& self_raw,
                                     const wire::DeviceBundle& b) {
  if (!b.signed_prekey) return std::nullopt;
  auto raw = from_base64(b.identity);
  auto identity = raw ? parse_identity(*raw) : std::nullopt;
  auto spk_raw = from_base64(b.signed_prekey->key);
  auto sig_raw = from_base64(b.signed_prekey->signature);
  crypto::PrekeyBundle bundle;
  if (!identity || !spk_raw || !sig_raw || !to_array(*spk_raw, bundle.signed_prekey) ||
      !to_array(*sig_raw, bundle.signature)) {
    return std::nullopt;
  }
  bundle.identity = *identity;
  bundle.signed_prekey_id = b.signed_prekey->id;
  if (b.one_time) {
    auto otk = from_base64(b.one_time->key);
    Key32 k{};
    if (otk && to_array(*otk, k)) {
      bundle.one_time_prekey_id = b.one_time->id;
      bundle.one_time_prekey = k;
    }
  }
  auto init = crypto::x3dh_initiate(self, bundle);
  if (!init) return std::nullopt;  // bad signature or refused DH
  auto ratchet =
      crypto::Ratchet::init_initiator(init->secret.sk, bundle.signed_prekey, init->secret.ad);
  if (!ratchet) return std::nullopt;
  wire::PrekeyHeader h{to_base64(self_raw), to_base64(bytes_of(init->ephemeral_pub)),
                       init->signed_prekey_id, init->one_time_prekey_id};
  return Started{std::move(*ratchet), bytes_of(init->ephemeral_pub), encode_header(h), *raw};
}
}  // namespace

Result<E2eDevice::Sealed> E2eDevice::seal(const std::vector<std::string>& users,
                                          const std::string& channel, const std::string& id,
                                          const std::string& text,
                                          const std::vector<wire::Bundles>& bundles,
                                          std::int64_t now_ms) {
  std::vector<IdentityNews> news;
  for (const auto& b : bundles) {
    if (std::find(users.begin(), users.end(), b.user) == users.end()) continue;  // not asked
    // First: a changed identity ends its session before the sessions load.
    // A bundle may list one device only: nothing is forgotten from it.
    auto known = learn_identities(b, now_ms, /*complete=*/false);
    if (!known) return known.status();
    news.insert(news.end(), known->begin(), known->end());
  }
  std::vector<Target> targets;
  for (const auto& user : users) {
    auto rows = cache_.e2e_sessions_of(user);
    if (!rows) return rows.status();
    auto listed = cache_.e2e_devices(user);
    if (!listed) return listed.status();
    std::set<std::string> current;
    std::map<std::string, std::string> identity_of;
    for (const auto& d : *listed) {
      current.insert(d.device);
      identity_of[d.device] = d.identity;
    }
    std::set<std::string> have;
    for (const auto& row : *rows) {
      if (user == user_ && row.device == device_) continue;
      // A session with a device the user no longer lists is not used.
      if (!current.empty() && !current.count(row.device)) continue;
      auto r = crypto::Ratchet::deserialize(row.state);
      if (!r) continue;  // a damaged session is replaced from a bundle
      have.insert(row.device);
      targets.push_back(Target{user, row.device, std::move(*r), row.base_key, row.pending_prekey,
                               row.previous_state, row.previous_base_key,
                               identity_of[row.device]});
    }
    for (const auto& b : bundles) {
      if (b.user != user) continue;
      for (const auto& d : b.devices) {
        if (have.count(d.device) || (user == user_ && d.device == device_)) continue;
        auto started = start_session(identity_, identity_bytes(), d);
        if (!started) continue;  // a device whose bundle is malformed gets nothing
        have.insert(d.device);
        targets.push_back(Target{user, d.device, std::move(started->ratchet),
                                 std::move(started->base_key), std::move(started->header),
                                 std::nullopt, std::nullopt, std::move(started->identity)});
      }
    }
  }
  if (std::none_of(targets.begin(), targets.end(),
                   [&](const Target& t) { return t.user != user_; })) {
    return Status(StatusCode::not_found,
                  fmt::format("no device of \"{}\" can receive encrypted messages",
                              users.empty() ? std::string() : users.front()),
                  wire::code::kNoKeys);
  }
  auto sealed = seal_targets(targets, channel, id, text, now_ms);
  if (sealed) sealed->news = std::move(news);
  return sealed;
}

Result<E2eDevice::Sealed> E2eDevice::reseal(const std::string& user, const std::string& device,
                                            const std::string& channel, const std::string& id,
                                            const std::string& text, const wire::Bundles& bundle,
                                            std::int64_t now_ms) {
  const wire::DeviceBundle* b = nullptr;
  for (const auto& d : bundle.devices) {
    if (bundle.user == user && d.device == device) b = &d;
  }
  if (b == nullptr) {
    return Status(StatusCode::not_found,
                  fmt::format("device \"{}\" of \"{}\" has no keys", device, user),
                  wire::code::kNoSuchDevice);
  }
  // Only to a device identity this device sealed the message for: never
  // to a device added since, nor to a device id that has another identity.
  auto sealed_for = cache_.e2e_recipient(id, user, device);
  if (!sealed_for) return sealed_for.status();
  auto raw = from_base64(b->identity);
  if (!*sealed_for || !raw || **sealed_for != *raw) {
    return Status(StatusCode::forbidden,
                  fmt::format("message {} was not sent to this identity of device \"{}\" of \"{}\": "
                              "it is not sent to it again",
                              id, device, user),
                  "not_a_recipient");
  }
  auto started = start_session(identity_, identity_bytes(), *b);
  if (!started) {
    return Status(StatusCode::not_found,
                  fmt::format("the keys of device \"{}\" of \"{}\" do not verify", device, user),
                  wire::code::kNoKeys);
  }
  std::vector<Target> targets;
  targets.push_back(Target{user, device, std::move(started->ratchet), std::move(started->base_key),
                           std::move(started->header)});
  // The old session stays as the previous one: messages in flight on it
  // still open if the peer answers there.
  if (auto old = cache_.e2e_session(user, device); old && *old) {
    targets.back().previous_state = (*old)->state;
    targets.back().previous_base = (*old)->base_key;
  }
  return seal_targets(targets, channel, id, text, now_ms);
}

Result<E2eDevice::Sealed> E2eDevice::seal_targets(std::vector<Target>& targets,
                                                  const std::string& channel,
                                                  const std::string& id, const std::string& text,
                                                  std::int64_t now_ms) {
  Sealed out;
  out.payload.device = device_;
  crypto::Key32 fkey = franking_key(id);
  crypto::Key32 commit{};
  if (!crypto::franking_commit(fkey, id, user_, channel, text, &commit)) {
    return Status(StatusCode::invalid_argument, "bad message id", "invalid_id");
  }
  out.payload.commit = to_base64(bytes_of(commit));
  auto plain = pack_plaintext(id, user_, channel, fkey, text);
  sodium_memzero(fkey.data(), fkey.size());
  if (!plain) return Status(StatusCode::invalid_argument, "bad message id", "invalid_id");
  for (auto& t : targets) {
    auto sealed = t.ratchet.encrypt(view(*plain));
    if (!sealed) {
      sodium_memzero(plain->data(), plain->size());
      return Status(StatusCode::internal,
                    fmt::format("session with {}/{} cannot send", t.user, t.device));
    }
    wire::Envelope env;
    env.user = t.user;
    env.device = t.device;
    if (t.pending) env.prekey = decode_header(*t.pending);
    env.body = to_base64(std::string_view(reinterpret_cast<const char*>(sealed->data()),
                                          sealed->size()));
    out.payload.to.push_back(std::move(env));
    out.write.sessions.push_back(store::Cache::SessionRow{t.user, t.device, t.ratchet.serialize(),
                                                          t.base_key, t.pending, now_ms,
                                                          t.previous_state, t.previous_base});
    if (!t.identity.empty()) {
      out.write.recipients.push_back({id, t.user, t.device, t.identity, now_ms});
    }
  }
  sodium_memzero(plain->data(), plain->size());
  return out;
}

// ---- identities -------------------------------------------------------------------

Result<std::vector<E2eDevice::IdentityNews>> E2eDevice::learn_identities(
    const wire::Bundles& bundles, std::int64_t now_ms, bool complete) {
  std::vector<IdentityNews> news;
  auto known = cache_.e2e_devices(bundles.user);
  if (!known) return known.status();
  auto verified = cache_.e2e_verified(bundles.user);
  auto digest_before = identity_digest(bundles.user);
  bool was_verified = verified && digest_before && !verified->empty() && *verified == *digest_before;
  // The first whole list of a user is not news (only a changed identity in
  // it is): devices seen before in messages may have existed all along.
  auto list_known = cache_.e2e_list_known(bundles.user);
  if (!list_known) return list_known.status();
  bool first = complete && !*list_known;
  store::Cache::E2eWrite write;
  if (complete) write.lists.emplace_back(bundles.user, now_ms);
  for (const auto& b : bundles.devices) {
    if (bundles.user == user_ && b.device == device_) continue;
    auto raw = from_base64(b.identity);
    if (!raw || !parse_identity(*raw)) continue;
    const store::Cache::DeviceRow* before = nullptr;
    for (const auto& k : *known) {
      if (k.device == b.device) before = &k;
    }
    if (before != nullptr && before->identity == *raw) continue;
    write.devices.push_back(store::Cache::DeviceRow{bundles.user, b.device, *raw, now_ms});
    // A session with the old identity is over: the next message starts one
    // with the new identity's bundle.
    if (before != nullptr) write.dropped.emplace_back(bundles.user, b.device);
    // News when the contact's set of identities changes (a changed key, or a
    // device added to those known); the first devices seen are not.
    bool changed = before != nullptr || (!first && !known->empty());
    news.push_back(IdentityNews{bundles.user, b.device, changed, was_verified, before == nullptr});
  }
  // A device the server no longer lists was removed by its user: no
  // message goes to it any more (docs/e2e.md, "Devices").
  for (const auto& k : *known) {
    bool listed = std::any_of(bundles.devices.begin(), bundles.devices.end(),
                              [&](const wire::DeviceBundle& b) { return b.device == k.device; });
    if (!complete || listed || (bundles.user == user_ && k.device == device_)) continue;
    write.forgotten.emplace_back(bundles.user, k.device);
    write.dropped.emplace_back(bundles.user, k.device);
    news.push_back(IdentityNews{bundles.user, k.device, !first, was_verified, false, true});
  }
  if (Status s = cache_.apply_e2e(write); !s.ok()) return s;
  return news;
}

Result<std::string> E2eDevice::identity_digest(const std::string& peer) {
  auto keys = identities_of(cache_, peer);
  if (!keys) return keys.status();
  if (keys->empty()) return std::string();
  return crypto::identity_set_digest(*keys);
}

Result<E2eDevice::Safety> E2eDevice::safety(const std::string& peer) {
  auto keys = identities_of(cache_, peer);
  if (!keys) return keys.status();
  if (keys->empty()) {
    return Status(StatusCode::not_found,
                  fmt::format("no identity of \"{}\" is known yet", peer), wire::code::kNoKeys);
  }
  // This user's side: this device and the user's other devices as last
  // listed by the server (the contact hashes the same list).
  auto own = identities_of(cache_, user_);
  if (!own) return own.status();
  own->push_back(identity_.public_part());
  Safety out;
  out.number = crypto::safety_number(user_, *own, peer, *keys);
  out.digest = crypto::identity_set_digest(*keys);
  auto verified = cache_.e2e_verified(peer);
  if (!verified) return verified.status();
  out.verified = !verified->empty() && *verified == out.digest;
  return out;
}

Status E2eDevice::verify(const std::string& peer, bool verified) {
  if (!verified) return cache_.set_e2e_verified(peer, "");
  auto digest = identity_digest(peer);
  if (!digest) return digest.status();
  if (digest->empty()) {
    return Status(StatusCode::not_found,
                  fmt::format("no identity of \"{}\" is known yet", peer), wire::code::kNoKeys);
  }
  return cache_.set_e2e_verified(peer, *digest);
}

}  // namespace parley::client
