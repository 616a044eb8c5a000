// Hub: end-to-end encryption (issue 9, docs/protocol.md "End-to-end
// encryption"). The server keeps each device's public keys, hands out prekey
// bundles (each one-time prekey once), and checks the shape of e2e payloads
// it cannot read: sizes, base64, and that every envelope goes to a member.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sodium.h>

#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "hub.hpp"
#include "log.hpp"

namespace parley::server {
namespace {

namespace code = wire::code;

constexpr std::size_t kIdentityBytes = 64;  // Ed25519 public key || X25519 public key
constexpr std::size_t kKeyBytes = 32;
constexpr std::size_t kSignatureBytes = 64;
constexpr std::size_t kMinBodyBytes = 40 + 16;  // ratchet header + AEAD tag
constexpr std::size_t kMaxDevice = 64;          // as at auth

bool sodium_ready() {
  static const int rc = sodium_init();  // idempotent and thread-safe
  return rc >= 0;
}

// The bytes of `text`, standard base64 with padding, if it is that and
// decodes to at most `max_bytes`.
std::optional<std::vector<unsigned char>> from_base64(const std::string& text,
                                                      std::size_t max_bytes) {
  if (text.size() > (max_bytes + 2) / 3 * 4) return std::nullopt;
  std::vector<unsigned char> bin(text.size() / 4 * 3 + 3);
  std::size_t size = 0;
  if (sodium_base642bin(bin.data(), bin.size(), text.data(), text.size(), nullptr, &size,
                        nullptr, sodium_base64_VARIANT_ORIGINAL) != 0) {
    return std::nullopt;
  }
  bin.resize(size);
  return bin;
}

// Why `text` is not base64 of exactly `bytes` bytes, or empty.
std::string check_exact(const std::string& field, const std::string& text, std::size_t bytes,
                        std::vector<unsigned char>* out = nullptr) {
  auto bin = from_base64(text, bytes);
  if (!bin || bin->size() != bytes) {
    return fmt::format("field \"{}\" must be base64 (standard, padded) of {} bytes", field, bytes);
  }
  if (out != nullptr) *out = std::move(*bin);
  return {};
}

// Why the X25519 public key `key` (32 bytes) at `field` is no good, or
// empty: libsodium's crypto_scalarmult fails (-1) for a low-order point (the
// all-zero key among them), with which an X3DH or ratchet agreement would
// give a secret known to anyone. `what` names the part, e.g. "its X25519 half".
std::string check_x25519(const std::string& field, const unsigned char* key,
                         const std::string& what = {}) {
  static const unsigned char kProbe[crypto_scalarmult_SCALARBYTES] = {
      0x5a, 0x17, 0x33, 0xc1, 0x09, 0x8e, 0x42, 0x7d, 0x61, 0xd4, 0x2b, 0x95, 0x3e, 0xa8, 0x70, 0x1f,
      0xc6, 0x58, 0x0b, 0xe3, 0x94, 0x27, 0x7a, 0x4d, 0x12, 0xb9, 0x6f, 0x80, 0x35, 0xda, 0x46, 0x2c};
  unsigned char shared[crypto_scalarmult_BYTES];
  const int rc = crypto_scalarmult(shared, kProbe, key);
  sodium_memzero(shared, sizeof shared);
  if (rc != 0) {
    return fmt::format("field \"{}\"{} is not a usable X25519 key (low order)", field,
                       what.empty() ? "" : " (" + what + ")");
  }
  return {};
}

// Why the signed key `key` at `field` is not valid under `identity`, or empty.
std::string check_signed(const std::string& field, const wire::SignedKey& key,
                         const std::vector<unsigned char>& identity) {
  std::vector<unsigned char> public_key;
  std::vector<unsigned char> signature;
  if (std::string why = check_exact(field + ".key", key.key, kKeyBytes, &public_key);
      !why.empty()) {
    return why;
  }
  if (std::string why = check_exact(field + ".signature", key.signature, kSignatureBytes,
                                    &signature);
      !why.empty()) {
    return why;
  }
  if (crypto_sign_verify_detached(signature.data(), public_key.data(), public_key.size(),
                                  identity.data()) != 0) {
    return fmt::format("field \"{}.signature\" is not the identity's signature of the key", field);
  }
  return check_x25519(field + ".key", public_key.data());
}

StoredSignedKey to_stored(const wire::SignedKey& key) {
  return {key.id, key.key, key.signature};
}

wire::SignedKey to_wire_key(const StoredSignedKey& key) {
  return {key.id, key.key, key.signature};
}

wire::KeysState to_wire_state(std::uint64_t rid, const StoredDeviceKeys& keys) {
  return {rid, keys.identity, keys.signed_prekey.id, keys.last_resort.id, keys.one_time_left};
}

}  // namespace

std::optional<wire::KeysState> Hub::keys_state(const std::string& user, const std::string& device) {
  if (device.empty()) return std::nullopt;
  auto keys = store_.device_keys(user, device);
  if (!keys) {
    log("warning", "keys of \"{}\" device \"{}\": {}", user, device, keys.status().message());
    return std::nullopt;
  }
  if (!*keys) return std::nullopt;
  return to_wire_state(0, **keys);
}

void Hub::handle(Session& session, const wire::PublishKeys& request) {
  if (!sodium_ready()) {
    return error(session, request.rid, code::kInternal, "the server cannot check keys now");
  }
  if (session.device().empty()) {
    return error(session, request.rid, code::kInvalidKeys,
                 "keys belong to a device: authenticate with a \"device\" id first");
  }
  std::vector<unsigned char> identity;
  if (std::string why = check_exact("identity", request.identity, kIdentityBytes, &identity);
      !why.empty()) {
    return error(session, request.rid, code::kInvalidKeys, why);
  }
  if (std::string why = check_x25519("identity", identity.data() + kKeyBytes,
                                     "its X25519 half, bytes 32-63");
      !why.empty()) {
    return error(session, request.rid, code::kInvalidKeys, why);
  }
  const std::set<std::string>* devices = devices_of(session.user());
  if (devices == nullptr) {
    return error(session, request.rid, code::kInternal, "the server could not read devices");
  }
  if (devices->count(session.device()) == 0 && devices->size() >= wire::kMaxDevicesPerUser) {
    return error(session, request.rid, code::kTooManyDevices,
                 fmt::format("\"{}\" has {} devices with keys, the most there may be: remove "
                             "one before adding \"{}\"",
                             session.user(), devices->size(), session.device()));
  }
  KeysUpdate update;
  update.identity = request.identity;
  if (request.signed_prekey) {
    if (std::string why = check_signed("signed_prekey", *request.signed_prekey, identity);
        !why.empty()) {
      return error(session, request.rid, code::kInvalidKeys, why);
    }
    update.signed_prekey = to_stored(*request.signed_prekey);
  }
  if (request.last_resort) {
    if (std::string why = check_signed("last_resort", *request.last_resort, identity);
        !why.empty()) {
      return error(session, request.rid, code::kInvalidKeys, why);
    }
    update.last_resort = to_stored(*request.last_resort);
  }
  if (request.one_time) {
    if (request.one_time->size() > wire::kMaxOneTimePerRequest) {
      return error(session, request.rid, code::kInvalidKeys,
                   fmt::format("field \"one_time\" has {} keys, more than {} per request",
                               request.one_time->size(), wire::kMaxOneTimePerRequest));
    }
    for (std::size_t i = 0; i < request.one_time->size(); ++i) {
      const wire::OneTimeKey& k = (*request.one_time)[i];
      const std::string field = fmt::format("one_time[{}].key", i);
      std::vector<unsigned char> public_key;
      if (std::string why = check_exact(field, k.key, kKeyBytes, &public_key); !why.empty()) {
        return error(session, request.rid, code::kInvalidKeys, why);
      }
      if (std::string why = check_x25519(field, public_key.data()); !why.empty()) {
        return error(session, request.rid, code::kInvalidKeys, why);
      }
      update.one_time.push_back({k.id, k.key});
    }
  }
  auto stored = store_.publish_keys(session.user(), session.device(), update, now_ms(),
                                    wire::kMaxOneTimeStored);
  if (!stored) {
    if (stored.status().reason() == code::kInvalidKeys) {
      return error(session, request.rid, code::kInvalidKeys, stored.status().message());
    }
    return store_error(session, request.rid, stored.status());
  }
  devices_[session.user()].insert(session.device());
  ++metrics_.e2e_keys_published_total;
  reply(session, to_wire_state(request.rid, *stored));
}

void Hub::handle(Session& session, const wire::GetBundle& request) {
  if (std::string why = check_user_name(request.user); !why.empty()) {
    return error(session, request.rid, code::kInvalidUser, why);
  }
  if (request.user != session.user() && refuse_blocked(session, request.rid, request.user)) return;
  bool take = !request.identities_only.value_or(false);
  const std::string device = request.device.value_or("");
  if (request.device && device.empty()) {
    return error(session, request.rid, code::kNoSuchDevice,
                 fmt::format("\"{}\" has no device \"\"", request.user));
  }
  auto taken = store_.take_bundles(request.user, take, device);
  if (!taken) return store_error(session, request.rid, taken.status());
  if (taken->empty() && request.device) {
    return error(session, request.rid, code::kNoSuchDevice,
                 fmt::format("\"{}\" has no device \"{}\" with published keys", request.user,
                             shown(device)));
  }
  if (taken->empty()) {
    return error(session, request.rid, code::kNoKeys,
                 fmt::format("\"{}\" has no device with published keys", request.user));
  }
  ++metrics_.e2e_bundles_total;
  wire::Bundles bundles;
  bundles.rid = request.rid;
  bundles.user = request.user;
  for (const TakenBundle& b : *taken) {
    wire::DeviceBundle out;
    out.device = b.device;
    out.identity = b.identity;
    if (take) {
      out.signed_prekey = to_wire_key(b.signed_prekey);
      if (b.one_time) out.one_time = wire::OneTimeKey{b.one_time->id, b.one_time->key};
      if (b.last_resort) {
        out.last_resort = true;
        ++metrics_.e2e_last_resort_total;
      } else {
        ++metrics_.e2e_one_time_taken_total;
      }
    }
    bundles.devices.push_back(std::move(out));
  }
  reply(session, bundles);
  if (!take) return;
  // Devices running low hear of it, so that they publish more.
  auto sessions = sessions_of_user_.find(request.user);
  if (sessions == sessions_of_user_.end()) return;
  for (const TakenBundle& b : *taken) {
    if (b.one_time_left >= wire::kOneTimeLowWater) continue;
    std::optional<wire::KeysState> state;
    for (Session* s : sessions->second) {
      if (s->closing() || s->device() != b.device) continue;
      if (!state) state = keys_state(request.user, b.device);
      if (!state) break;
      reply(*s, *state);
    }
  }
}

std::string Hub::check_e2e(const Session& session, const wire::E2e& e2e,
                           const Channel& channel) const {
  if (session.device().empty()) {
    return "e2e needs a device: authenticate with a \"device\" id first";
  }
  if (e2e.device != session.device()) {
    return fmt::format("e2e device \"{}\" is not this connection's device \"{}\"",
                       shown(e2e.device), session.device());
  }
  if (e2e.to.empty() || e2e.to.size() > wire::kMaxEnvelopes) {
    return fmt::format("e2e has {} envelopes, not 1-{}", e2e.to.size(), wire::kMaxEnvelopes);
  }
  if (e2e.tag) return "tag is set by the server";
  if (!e2e.commit) return "commit is required (the franking commitment)";
  if (std::string why = check_exact("commit", *e2e.commit, kKeyBytes); !why.empty()) return why;
  for (std::size_t i = 0; i < e2e.to.size(); ++i) {
    const wire::Envelope& envelope = e2e.to[i];
    if (channel.members.count(envelope.user) == 0) {
      return fmt::format("envelope {}: \"{}\" is not a member of the channel", i,
                         shown(envelope.user));
    }
    if (std::string why = check_envelope(i, envelope); !why.empty()) return why;
  }
  return {};
}

std::string Hub::check_envelope(std::size_t i, const wire::Envelope& envelope) const {
  if (envelope.device.empty() || envelope.device.size() > kMaxDevice) {
    return fmt::format("envelope {}: device must be 1-{} bytes, not {}", i, kMaxDevice,
                       envelope.device.size());
  }
  if (envelope.body.size() > wire::kMaxEnvelopeBody) {
    return fmt::format("envelope {}: body has {} base64 characters, more than {}", i,
                       envelope.body.size(), wire::kMaxEnvelopeBody);
  }
  auto body = from_base64(envelope.body, wire::kMaxEnvelopeBody);
  if (!body) return fmt::format("envelope {}: body is not base64 (standard, padded)", i);
  if (body->size() < kMinBodyBytes) {
    return fmt::format("envelope {}: body has {} bytes, fewer than {}", i, body->size(),
                       kMinBodyBytes);
  }
  if (envelope.prekey) {
    if (std::string why = check_exact("prekey.identity", envelope.prekey->identity,
                                      kIdentityBytes);
        !why.empty()) {
      return fmt::format("envelope {}: {}", i, why);
    }
    if (std::string why = check_exact("prekey.ephemeral", envelope.prekey->ephemeral, kKeyBytes);
        !why.empty()) {
      return fmt::format("envelope {}: {}", i, why);
    }
  }
  return {};
}

std::string Hub::check_devices(const Session& session, const wire::E2e& e2e,
                               const Channel& channel, bool* failed) {
  std::set<std::pair<std::string, std::string>> expected;
  for (const auto& member : channel.members) {
    const std::set<std::string>* devices = devices_of(member.first);
    if (devices == nullptr) {
      *failed = true;
      return {};
    }
    for (const std::string& device : *devices) {
      if (member.first == session.user() && device == session.device()) continue;
      expected.insert({member.first, device});
    }
  }
  std::set<std::pair<std::string, std::string>> given;
  std::vector<std::string> twice;
  std::vector<std::string> extra;
  for (const wire::Envelope& envelope : e2e.to) {
    std::string named = fmt::format("{}/{}", envelope.user, shown(envelope.device));
    if (!given.insert({envelope.user, envelope.device}).second) {
      twice.push_back(named);
    } else if (expected.count({envelope.user, envelope.device}) == 0) {
      extra.push_back(named);
    }
  }
  std::vector<std::string> missing;
  for (const auto& device : expected) {
    if (given.count(device) == 0) missing.push_back(fmt::format("{}/{}", device.first, device.second));
  }
  if (missing.empty() && extra.empty() && twice.empty()) return {};
  std::string why = "envelopes do not match the members' devices:";
  const char* separator = " ";
  auto part = [&](const char* label, const std::vector<std::string>& names) {
    if (names.empty()) return;
    why += fmt::format("{}{} {}", separator, label, fmt::join(names, ", "));
    separator = "; ";
  };
  part("missing", missing);
  part("not a device:", extra);
  part("twice:", twice);
  return why;
}

}  // namespace parley::server
