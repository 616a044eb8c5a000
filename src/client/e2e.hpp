// End-to-end encryption of direct messages on one device (docs/e2e.md): the
// device's keys, X3DH and Double Ratchet sessions with other devices, the
// wire form of encrypted messages, safety numbers. Owns no network: the
// engine (engine_e2e.cpp) fetches bundles, publishes keys and sends; this
// class turns plaintext into wire::E2e payloads and back, and says what the
// cache must store for it.
//
// Runs on the engine's thread, like the cache it uses.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "crypto/ratchet.hpp"
#include "crypto/x3dh.hpp"
#include "parley/status.hpp"
#include "parley/types.hpp"
#include "protocol/wire.hpp"
#include "store/cache.hpp"

namespace parley::client {

// Parameters (docs/e2e.md and docs/security.md state them).
inline constexpr std::size_t kOneTimeTarget = 100;          // one-time prekeys kept on the server
inline constexpr std::int64_t kSignedPrekeyRotationMs = 7LL * 24 * 3600 * 1000;
inline constexpr std::int64_t kOldSignedPrekeyKeepMs = 30LL * 24 * 3600 * 1000;
inline constexpr std::size_t kMaxLocalOneTime = 400;        // unused one-time secrets kept
inline constexpr std::size_t kPlaintextBlock = 64;          // padding block of plaintexts

// base64 (libsodium, original alphabet with padding).
std::string to_base64(std::string_view bytes);
std::optional<std::string> from_base64(std::string_view text);

class E2eDevice {
 public:
  E2eDevice(store::Cache& cache, std::string user, std::string device);

  // Loads this device's identity, creating it (and its first signed and
  // last-resort prekeys) on first use.
  Status open();
  const crypto::Identity& identity() const { return identity_; }
  // 64 bytes: Ed25519 public key || X25519 public key.
  std::string identity_bytes() const;

  // What to publish so that the server holds this device's identity, its
  // current signed and last-resort prekeys and about kOneTimeTarget one-time
  // prekeys, given what the server says it holds (nullopt: nothing). Rotates
  // the signed prekey when due. Nothing when the server is up to date.
  Result<std::optional<wire::PublishKeys>> keys_to_publish(
      const std::optional<wire::KeysState>& server, std::int64_t now_ms);

  // A contact's device changed identity, or was seen for the first time.
  struct IdentityNews {
    std::string user;
    std::string device;
    bool changed = false;        // the contact's known identity set changed (false: first seen)
    bool was_verified = false;   // the user was verified before the change
    bool new_device = false;     // a device not known before
    bool removed = false;        // a device no longer listed
  };

  // ---- receiving ----
  // Decrypts the e2e events of a batch in order; sessions advance in memory
  // only. The caller stores `messages` with write() in one transaction, then
  // calls committed().
  class Batch {
   public:
    explicit Batch(E2eDevice& device) : device_(device) {}
    // Fills m.text / m.e2e / m.e2e_error from the event's payload.
    void decrypt(const wire::ChannelEvent& event, Message& m);
    // The sessions and devices to store with the messages.
    store::Cache::E2eWrite write() const;
    // A message sent again for this device (e2e_notice kind "resend"):
    // decrypted as the event it stands for; on success `text` is set.
    // Returns the e2e_error ("" on success).
    std::string decrypt_resend(const wire::E2eNotice& notice, const std::string& channel,
                               std::string* text);
    // Devices named as recipients of decrypted messages that this device
    // does not know: (user, device). Their identities are worth a check.
    const std::set<std::pair<std::string, std::string>>& unknown_recipients() const {
      return unknown_recipients_;
    }
    // After the commit: deletes used one-time prekeys, returns identity news.
    std::vector<IdentityNews> committed();
    bool empty() const { return sessions_.empty() && devices_.empty(); }

   private:
    struct Working {
      crypto::Ratchet ratchet;
      std::string base_key;
      std::optional<std::string> pending_prekey;
      std::optional<crypto::Ratchet> previous;  // the session this one replaced
      std::string previous_base;
    };
    void note_identity(const std::pair<std::string, std::string>& key, const std::string& identity);
    std::optional<std::string> open_envelope(const wire::ChannelEvent& event,
                                             const wire::Envelope& envelope, std::string* error);
    bool open_checked(const wire::ChannelEvent& event, const wire::Envelope& envelope,
                      Message& m);
    E2eDevice& device_;
    std::map<std::pair<std::string, std::string>, Working> sessions_;
    std::vector<store::Cache::FrankingRow> franking_;
    std::set<std::pair<std::string, std::string>> unknown_recipients_;
    std::map<std::string, std::set<std::string>> known_devices_;
    std::map<std::string, bool> lists_known_;
    std::map<std::pair<std::string, std::string>, std::string> devices_;  // identity
    std::vector<std::uint32_t> used_one_time_;
    std::vector<IdentityNews> news_;
  };

  // ---- sending ----
  // Whether this device has a session with some device of `peer`.
  Result<bool> has_sessions(const std::string& peer);
  // Devices of `user` (this user: the other devices) known without a session.
  Result<std::vector<std::string>> devices_without_session(const std::string& user);
  // Encrypts `text` (message `id` of direct `channel`) for every device of
  // each of `users` (the peer, and this user: its other devices) this device
  // has a session with, starting sessions from `bundles` first (X3DH) for
  // devices that have none. The result's write holds the advanced sessions
  // and the payload (with its franking commitment), to be committed before
  // sending.
  struct Sealed {
    wire::E2e payload;
    store::Cache::E2eWrite write;
    std::vector<IdentityNews> news;
  };
  Result<Sealed> seal(const std::vector<std::string>& users, const std::string& channel,
                      const std::string& id, const std::string& text,
                      const std::vector<wire::Bundles>& bundles, std::int64_t now_ms);
  // The same message for one device only, in a new session from `bundle`
  // (which must list that device with prekeys): what an e2e_resend carries.
  // The device's identity must be the one known before (identity_changed
  // otherwise): a message is never sent again to a key it was not sent to.
  Result<Sealed> reseal(const std::string& user, const std::string& device,
                        const std::string& channel, const std::string& id,
                        const std::string& text, const wire::Bundles& bundle,
                        std::int64_t now_ms);
  // Ends the session with (user, device): the next message starts another.
  Status drop_session(const std::string& user, const std::string& device);

  // ---- identities ----
  // Records the identities a bundles reply (identities_only or not) gives
  // for `peer`; returns what changed (already committed). complete: the
  // reply lists all of the user's devices (a device not in it was removed);
  // false for a reply about one device.
  Result<std::vector<IdentityNews>> learn_identities(const wire::Bundles& bundles,
                                                     std::int64_t now_ms, bool complete = true);
  struct Safety {
    std::string number;  // 60 digits in 12 groups of five
    bool verified = false;
    std::string digest;  // of the peer's identity set, as verified
  };
  // From the identities the cache knows; not_found when none.
  Result<Safety> safety(const std::string& peer);
  Status verify(const std::string& peer, bool verified);

 private:
  friend class Batch;
  std::optional<crypto::KeyPair> prekey_pair(std::uint32_t id, std::string* kind);
  // The franking key of this device's message `id`: a PRF of a secret of
  // this device, so that the same key is found again for a resend.
  crypto::Key32 franking_key(const std::string& id) const;
  struct Target;
  Result<Sealed> seal_targets(std::vector<Target>& targets, const std::string& channel,
                              const std::string& id, const std::string& text, std::int64_t now_ms);
  Result<std::uint32_t> allocate_ids(std::uint32_t n);
  Result<std::string> identity_digest(const std::string& peer);

  store::Cache& cache_;
  std::string user_;
  std::string device_;
  crypto::Identity identity_;
};

// The plaintext inside a ratchet message: version 2, the message id (16
// bytes), the sender's user name and the channel's name (each one length
// byte, then the bytes), the franking key (32 bytes), the UTF-8 text; padded
// (ISO/IEC 7816-4, sodium_pad) to a multiple of kPlaintextBlock bytes. The
// receiver checks id, sender and channel against the event, so the server
// can neither relabel a ciphertext as another message, nor move it to
// another channel, nor name another sender; and the franking key against
// the commitment the event carries.
std::optional<std::string> pack_plaintext(const std::string& id_hex, const std::string& sender,
                                          const std::string& channel,
                                          const crypto::Key32& franking_key,
                                          const std::string& text);
struct Unpacked {
  std::string text;
  crypto::Key32 franking_key{};
};
// The text and franking key, if `padded` is well formed and names this
// message, sender and channel.
std::optional<Unpacked> unpack_plaintext(std::string_view padded, const std::string& id_hex,
                                         const std::string& sender, const std::string& channel);

// A test hook (docs/e2e.md, "Crash safety"): when the environment variable
// PARLEY_TEST_CRASH_AT equals `point`, the process exits at once with status
// 86, as if killed. Read once per process.
void crash_point(const char* point);

}  // namespace parley::client
