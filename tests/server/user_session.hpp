// One authenticated connection of a user for the group channel tests: each
// request gets a fresh rid and waits for the reply carrying it, while channel
// events and other unsolicited messages that arrive first are set aside, in
// order, for event() and next().
//
//   UserSession alice(server, "alice");
//   auto ok = alice.ok(wire::CreateChannel{0, "team", std::string("private")});
//   auto error = bob.refused(wire::JoinChannel{0, "team"}, "forbidden");
//
// Use from one thread at a time.
#pragma once

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "server_fixture.hpp"

namespace parley::test {

// The rid of a reply, or nullopt for events and unsolicited errors.
inline std::optional<std::uint64_t> reply_rid(const wire::ServerMessage& message) {
  return std::visit(
      [](const auto& m) -> std::optional<std::uint64_t> {
        if constexpr (std::is_same_v<std::decay_t<decltype(m)>, wire::Error>) {
          return m.rid;
        } else if constexpr (requires { m.rid; }) {
          return m.rid;
        } else {
          return std::nullopt;
        }
      },
      message);
}

// A message id never used before in this process: the server deduplicates
// on (sender, id), and one user may connect several times in a test.
inline std::string fresh_id() {
  static std::atomic<int> next{1};
  return client_id(next++);
}

// Standard base64 with padding, as keys and e2e bodies travel.
inline std::string to_base64(const unsigned char* data, std::size_t size) {
  std::string out(sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, size, sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

// `size` random bytes in base64.
inline std::string random_base64(std::size_t size) {
  REQUIRE(sodium_init() >= 0);
  std::vector<unsigned char> bytes(size);
  randombytes_buf(bytes.data(), bytes.size());
  return to_base64(bytes.data(), bytes.size());
}

// A well-formed e2e payload from `device`: one envelope to `to`'s device
// `to_device` whose body is random bytes, and a random commitment. The
// server cannot tell it from a real one.
inline wire::E2e fake_e2e(const std::string& device, const std::string& to,
                          const std::string& to_device = "their-device") {
  return wire::E2e{device,
                   {wire::Envelope{to, to_device, std::nullopt, random_base64(80)}},
                   random_base64(32),
                   std::nullopt};
}

// One device's real keys: an Ed25519 signing pair and an X25519 pair (the
// identity), and signed prekeys made on demand.
class DeviceKeys {
 public:
  DeviceKeys() {
    REQUIRE(sodium_init() >= 0);
    crypto_sign_keypair(sign_pk_, sign_sk_);
    crypto_box_keypair(dh_pk_, dh_sk_);
  }

  std::string identity() const {
    unsigned char both[64];
    std::copy(sign_pk_, sign_pk_ + 32, both);
    std::copy(dh_pk_, dh_pk_ + 32, both + 32);
    return to_base64(both, sizeof both);
  }

  // The identity with `dh` (32 bytes) as its X25519 half.
  std::string identity_with(const unsigned char* dh) const {
    unsigned char both[64];
    std::copy(sign_pk_, sign_pk_ + 32, both);
    std::copy(dh, dh + 32, both + 32);
    return to_base64(both, sizeof both);
  }

  // A fresh X25519 key signed by the identity.
  wire::SignedKey signed_key(std::uint32_t id) const {
    unsigned char sk[32];
    unsigned char pk[32];
    randombytes_buf(sk, sizeof sk);
    crypto_scalarmult_base(pk, sk);
    return signed_key(id, pk);
  }

  // The public key `pk` (32 bytes) signed by the identity.
  wire::SignedKey signed_key(std::uint32_t id, const unsigned char* pk) const {
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, nullptr, pk, 32, sign_sk_);
    return {id, to_base64(pk, 32), to_base64(sig, sizeof sig)};
  }

  static std::vector<wire::OneTimeKey> one_time(std::uint32_t first, std::size_t count) {
    std::vector<wire::OneTimeKey> out;
    for (std::size_t i = 0; i < count; ++i) {
      out.push_back({first + static_cast<std::uint32_t>(i), random_base64(32)});
    }
    return out;
  }

  // A first publish: identity, signed prekey 1, last resort 1000 and
  // `count` one-time prekeys from id 1.
  wire::PublishKeys first(std::size_t count) const {
    wire::PublishKeys p;
    p.identity = identity();
    p.signed_prekey = signed_key(1);
    p.last_resort = signed_key(1000);
    if (count > 0) p.one_time = one_time(1, count);
    return p;
  }

 private:
  unsigned char sign_pk_[crypto_sign_PUBLICKEYBYTES];
  unsigned char sign_sk_[crypto_sign_SECRETKEYBYTES];
  unsigned char dh_pk_[32];
  unsigned char dh_sk_[32];
};

class UserSession {
 public:
  // `device`: the device id announced at auth, none if empty (e2e needs one).
  UserSession(const TestServer& server, std::string user, bool admin = false,
              const std::string& device = "")
      : user_(std::move(user)), peer_(std::make_unique<Peer>(server.port())) {
    welcome_ = peer_->auth(admin ? server.admin_token(user_) : server.token(user_), 1, device);
  }

  const std::string& user() const { return user_; }
  const wire::Welcome& welcome() const { return welcome_; }
  Peer& peer() { return *peer_; }

  // Sends `message` with a fresh rid and returns the reply to it.
  wire::ServerMessage ask(wire::ClientMessage message) {
    const std::uint64_t rid = ++last_rid_;
    std::visit([&](auto& m) { m.rid = rid; }, message);
    peer_->send(wire::encode(message));
    for (;;) {
      wire::ServerMessage reply = peer_->next();
      if (reply_rid(reply) == rid) return reply;
      set_aside_.push_back(std::move(reply));
    }
  }

  // ask(), where the reply must be a T.
  template <typename T>
  T ask_for(wire::ClientMessage message) {
    const std::string sent = wire::encode(message);
    wire::ServerMessage reply = ask(std::move(message));
    auto* value = std::get_if<T>(&reply);
    if (value == nullptr) FAIL(user_ << " sent " << sent << " and got " << wire::encode(reply));
    return *value;
  }
  wire::Ok ok(wire::ClientMessage message) { return ask_for<wire::Ok>(std::move(message)); }
  // ask(), where the reply must be an error with `code`.
  wire::Error refused(wire::ClientMessage message, const std::string& code) {
    auto error = ask_for<wire::Error>(std::move(message));
    CHECK_MESSAGE(error.code == code, user_ << ": " << error.message);
    CHECK_FALSE(error.message.empty());
    return error;
  }

  // A send of `text` with a fresh id (the reply is an ack or an error).
  wire::ServerMessage send(const std::string& channel, const std::string& text) {
    return ask(wire::Send{0, channel, fresh_id(), text});
  }
  wire::Ack sent(const std::string& channel, const std::string& text) {
    return ask_for<wire::Ack>(wire::Send{0, channel, fresh_id(), text});
  }
  // Publishes keys for this session's device (a first publish of fresh keys).
  wire::KeysState publish_keys(std::size_t one_time = 0) {
    return ask_for<wire::KeysState>(DeviceKeys().first(one_time));
  }
  // The devices of `user` with keys as the server lists them (none when it
  // refuses, e.g. no keys or blocked).
  std::vector<std::string> devices_of(const std::string& user) {
    wire::GetBundle request{0, user, true, std::nullopt};
    wire::ServerMessage reply = ask(request);
    std::vector<std::string> out;
    if (auto* bundles = std::get_if<wire::Bundles>(&reply)) {
      for (const wire::DeviceBundle& d : bundles->devices) out.push_back(d.device);
    }
    return out;
  }
  // A send of a fake e2e payload from this session's device to every device
  // with keys of this user and of `to` but the sending one, with a random
  // commitment, as direct channels take.
  wire::ServerMessage send_e2e(const std::string& channel, const std::string& to = "") {
    return ask(e2e_message(channel, to));
  }
  wire::Ack sent_e2e(const std::string& channel, const std::string& to = "") {
    return ask_for<wire::Ack>(e2e_message(channel, to));
  }
  wire::Send e2e_message(const std::string& channel, const std::string& to = "") {
    wire::Send send{0, channel, fresh_id(), ""};
    send.e2e = fake_e2e(welcome_.device, user_, "unused");
    send.e2e->to.clear();
    std::vector<std::string> users{user_};
    if (!to.empty() && to != user_) users.push_back(to);
    for (const std::string& user : users) {
      for (const std::string& device : devices_of(user)) {
        if (user == user_ && device == welcome_.device) continue;
        send.e2e->to.push_back(fake_e2e(welcome_.device, user, device).to[0]);
      }
    }
    return send;
  }
  wire::HistoryPage history_after(const std::string& channel, std::uint64_t after) {
    return ask_for<wire::HistoryPage>(
        wire::History{0, channel, std::nullopt, after, wire::kMaxHistoryLimit});
  }

  // The next message that is not a reply: set aside earlier, or arriving now.
  wire::ServerMessage next(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    if (!set_aside_.empty()) {
      wire::ServerMessage message = std::move(set_aside_.front());
      set_aside_.pop_front();
      return message;
    }
    return peer_->next(timeout);
  }
  template <typename T>
  T expect() {
    wire::ServerMessage message = next();
    auto* value = std::get_if<T>(&message);
    if (value == nullptr) FAIL(user_ << " expected another type than " << wire::encode(message));
    return *value;
  }
  wire::ChannelEvent event() { return expect<wire::ChannelEvent>(); }
  // The next event of `kind`, skipping others.
  wire::ChannelEvent event(const std::string& kind) {
    for (;;) {
      wire::ChannelEvent e = event();
      if (e.kind == kind) return e;
    }
  }
  // True if nothing was set aside and nothing arrives within `wait`.
  bool quiet(std::chrono::milliseconds wait = std::chrono::milliseconds(200)) {
    return set_aside_.empty() && peer_->quiet(wait);
  }
  // Drops what was set aside.
  void forget() { set_aside_.clear(); }

 private:
  std::string user_;
  std::unique_ptr<Peer> peer_;
  wire::Welcome welcome_;
  std::uint64_t last_rid_ = 100;
  std::deque<wire::ServerMessage> set_aside_;
};

}  // namespace parley::test
