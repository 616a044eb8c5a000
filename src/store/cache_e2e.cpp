// End-to-end encryption state in the cache (docs/e2e.md, "Storage").
//
// outbox.db: e2e_identity (this device's identity, secrets included) and
// e2e_prekeys (signed, one-time and last-resort prekeys with their secrets).
// parley.db: e2e_sessions, e2e_devices, e2e_verified and e2e_outgoing; a
// session is written in the transaction that stores what it decrypted
// (store_events) or, for an encryption, with the encrypted message
// (apply_e2e), so that a crash never leaves the two apart.
#include <fmt/format.h>

#include "store/cache.hpp"
#include "store/cache_rep.hpp"

namespace parley::store {
namespace {

constexpr const char* kGetIdentity =
    "SELECT sign_pub, sign_secret, dh_pub, dh_secret, created_ms FROM e2e_identity WHERE id = 1";
constexpr const char* kSetIdentity =
    "INSERT INTO e2e_identity(id, sign_pub, sign_secret, dh_pub, dh_secret, created_ms) "
    "VALUES(1, ?1, ?2, ?3, ?4, ?5) ON CONFLICT(id) DO UPDATE SET sign_pub = excluded.sign_pub, "
    "sign_secret = excluded.sign_secret, dh_pub = excluded.dh_pub, "
    "dh_secret = excluded.dh_secret, created_ms = excluded.created_ms";
constexpr const char* kAddPrekey =
    "INSERT INTO e2e_prekeys(id, kind, pub, secret, signature, created_ms) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
constexpr const char* kGetPrekey =
    "SELECT id, kind, pub, secret, signature, created_ms FROM e2e_prekeys WHERE id = ?1";
constexpr const char* kPrekeysOfKind =
    "SELECT id, kind, pub, secret, signature, created_ms FROM e2e_prekeys WHERE kind = ?1 "
    "ORDER BY id";
constexpr const char* kDeletePrekey = "DELETE FROM e2e_prekeys WHERE id = ?1";
constexpr const char* kGetMetaO = "SELECT value FROM meta WHERE key = ?1";
constexpr const char* kSetMetaO =
    "INSERT INTO meta(key, value) VALUES(?1, ?2) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value";

constexpr const char* kGetSession =
    "SELECT user, device, state, base_key, pending_prekey, updated_ms, previous_state, "
    "previous_base_key FROM e2e_sessions WHERE user = ?1 AND device = ?2";
constexpr const char* kSessionsOf =
    "SELECT user, device, state, base_key, pending_prekey, updated_ms, previous_state, "
    "previous_base_key FROM e2e_sessions WHERE user = ?1 ORDER BY device";
constexpr const char* kPutSession =
    "INSERT INTO e2e_sessions(user, device, state, base_key, pending_prekey, updated_ms, "
    "previous_state, previous_base_key) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
    "ON CONFLICT(user, device) DO UPDATE SET "
    "state = excluded.state, base_key = excluded.base_key, "
    "pending_prekey = excluded.pending_prekey, updated_ms = excluded.updated_ms, "
    "previous_state = excluded.previous_state, previous_base_key = excluded.previous_base_key";
constexpr const char* kDropSession = "DELETE FROM e2e_sessions WHERE user = ?1 AND device = ?2";
constexpr const char* kDevicesOf =
    "SELECT user, device, identity, seen_ms FROM e2e_devices WHERE user = ?1 ORDER BY device";
constexpr const char* kPutDevice =
    "INSERT INTO e2e_devices(user, device, identity, seen_ms) VALUES(?1, ?2, ?3, ?4) "
    "ON CONFLICT(user, device) DO UPDATE SET identity = excluded.identity, "
    "seen_ms = excluded.seen_ms";
constexpr const char* kGetVerified = "SELECT digest FROM e2e_verified WHERE user = ?1";
constexpr const char* kSetVerified =
    "INSERT INTO e2e_verified(user, digest) VALUES(?1, ?2) "
    "ON CONFLICT(user) DO UPDATE SET digest = excluded.digest";
constexpr const char* kClearVerified = "DELETE FROM e2e_verified WHERE user = ?1";
constexpr const char* kGetOutgoing = "SELECT payload FROM e2e_outgoing WHERE id = ?1";
constexpr const char* kPutOutgoing =
    "INSERT INTO e2e_outgoing(id, payload) VALUES(?1, ?2) "
    "ON CONFLICT(id) DO UPDATE SET payload = excluded.payload";
constexpr const char* kDropOutgoing = "DELETE FROM e2e_outgoing WHERE id = ?1";
constexpr const char* kHasE2eMessage =
    "SELECT 1 FROM messages WHERE channel = ?1 AND client_id = ?2 AND e2e != 0 AND sender = ?3 "
    "LIMIT 1";
constexpr const char* kHasEvent = "SELECT 1 FROM messages WHERE channel = ?1 AND seq = ?2";
constexpr const char* kRestoreOwn =
    "UPDATE messages SET text = ?3, e2e = 1, e2e_error = '' "
    "WHERE channel = ?1 AND seq = ?2 AND e2e = 2";
constexpr const char* kOutboxText = "SELECT text FROM outbox WHERE id = ?1";
constexpr const char* kForgetDevice = "DELETE FROM e2e_devices WHERE user = ?1 AND device = ?2";
constexpr const char* kPutFranking =
    "INSERT INTO e2e_franking(channel, seq, device, key, commit_, tag) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(channel, seq) DO UPDATE SET "
    "device = excluded.device, key = excluded.key, commit_ = excluded.commit_, tag = excluded.tag";
constexpr const char* kPutList =
    "INSERT INTO e2e_device_lists(user, fetched_ms) VALUES(?1, ?2) "
    "ON CONFLICT(user) DO UPDATE SET fetched_ms = excluded.fetched_ms";
constexpr const char* kGetList = "SELECT 1 FROM e2e_device_lists WHERE user = ?1";
constexpr const char* kPutRecipient =
    "INSERT OR REPLACE INTO e2e_recipients(id, user, device, identity, created_ms) "
    "VALUES(?1, ?2, ?3, ?4, ?5)";
constexpr const char* kGetRecipient =
    "SELECT identity FROM e2e_recipients WHERE id = ?1 AND user = ?2 AND device = ?3";
constexpr const char* kPruneRecipients = "DELETE FROM e2e_recipients WHERE created_ms < ?1";
constexpr const char* kGetFranking =
    "SELECT device, key, commit_, tag FROM e2e_franking WHERE channel = ?1 AND seq = ?2";
constexpr const char* kSetText =
    "UPDATE messages SET text = ?3, e2e_error = ?4, e2e = CASE WHEN ?4 = '' THEN 1 ELSE 2 END "
    "WHERE channel = ?1 AND seq = ?2 AND kind = 'message' AND e2e != 0";

Statement& blob(Statement& q, int index, const std::string& bytes) {
  return q.bind_blob(index, bytes.data(), bytes.size());
}

Cache::PrekeyRow read_prekey(Statement& q) {
  Cache::PrekeyRow row;
  row.id = static_cast<std::uint32_t>(q.column_int(0));
  row.kind = q.column_text(1);
  row.pub = q.column_text(2);
  row.secret = q.column_text(3);
  row.signature = q.column_text(4);
  row.created_ms = q.column_int(5);
  return row;
}

Cache::SessionRow read_session(Statement& q) {
  Cache::SessionRow row;
  row.user = q.column_text(0);
  row.device = q.column_text(1);
  row.state = q.column_text(2);
  row.base_key = q.column_text(3);
  if (!q.column_is_null(4)) row.pending_prekey = q.column_text(4);
  row.updated_ms = q.column_int(5);
  if (!q.column_is_null(6)) row.previous_state = q.column_text(6);
  if (!q.column_is_null(7)) row.previous_base_key = q.column_text(7);
  return row;
}

}  // namespace

// ---- outbox.db: this device's keys --------------------------------------------

Result<std::optional<Cache::IdentityRow>> Cache::e2e_identity() {
  auto st = rep_->ostmt(kGetIdentity);
  if (!st) return st.status();
  Scoped q(**st);
  auto row = q->step();
  if (!row) return row.status();
  if (!*row) return std::optional<IdentityRow>();
  IdentityRow id{q->column_text(0), q->column_text(1), q->column_text(2), q->column_text(3),
                 q->column_int(4)};
  return std::optional<IdentityRow>(std::move(id));
}

Status Cache::set_e2e_identity(const IdentityRow& identity) {
  auto st = rep_->ostmt(kSetIdentity);
  if (!st) return st.status();
  Scoped q(**st);
  blob(*q, 1, identity.sign_pub);
  blob(*q, 2, identity.sign_secret);
  blob(*q, 3, identity.dh_pub);
  blob(*q, 4, identity.dh_secret);
  return q->bind(5, identity.created_ms).run();
}

Status Cache::add_prekeys(const std::vector<PrekeyRow>& prekeys) {
  if (prekeys.empty()) return Status();
  Transaction tx(rep_->odb);
  if (!tx.begin_status().ok()) return tx.begin_status();
  auto st = rep_->ostmt(kAddPrekey);
  if (!st) return st.status();
  for (const PrekeyRow& p : prekeys) {
    Scoped q(**st);
    q->bind(1, static_cast<std::int64_t>(p.id)).bind(2, p.kind);
    blob(*q, 3, p.pub);
    blob(*q, 4, p.secret);
    if (p.signature.empty()) {
      q->bind_null(5);
    } else {
      blob(*q, 5, p.signature);
    }
    if (Status s = q->bind(6, p.created_ms).run(); !s.ok()) return s;
  }
  return tx.commit();
}

Result<std::optional<Cache::PrekeyRow>> Cache::prekey(std::uint32_t id) {
  auto st = rep_->ostmt(kGetPrekey);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, static_cast<std::int64_t>(id));
  auto row = q->step();
  if (!row) return row.status();
  if (!*row) return std::optional<PrekeyRow>();
  return std::optional<PrekeyRow>(read_prekey(*q));
}

Result<std::vector<Cache::PrekeyRow>> Cache::prekeys(const std::string& kind) {
  auto st = rep_->ostmt(kPrekeysOfKind);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, kind);
  std::vector<PrekeyRow> out;
  for (;;) {
    auto row = q->step();
    if (!row) return row.status();
    if (!*row) break;
    out.push_back(read_prekey(*q));
  }
  return out;
}

Status Cache::delete_prekeys(const std::vector<std::uint32_t>& ids) {
  if (ids.empty()) return Status();
  Transaction tx(rep_->odb);
  if (!tx.begin_status().ok()) return tx.begin_status();
  auto st = rep_->ostmt(kDeletePrekey);
  if (!st) return st.status();
  for (std::uint32_t id : ids) {
    Scoped q(**st);
    if (Status s = q->bind(1, static_cast<std::int64_t>(id)).run(); !s.ok()) return s;
  }
  return tx.commit();
}

Result<std::uint32_t> Cache::last_prekey_id() {
  auto st = rep_->ostmt(kGetMetaO);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, "e2e_last_prekey_id");
  auto row = q->step();
  if (!row) return row.status();
  if (!*row) return std::uint32_t{0};
  return static_cast<std::uint32_t>(std::strtoul(q->column_text(0).c_str(), nullptr, 10));
}

Status Cache::set_last_prekey_id(std::uint32_t id) {
  auto st = rep_->ostmt(kSetMetaO);
  if (!st) return st.status();
  Scoped q(**st);
  return q->bind(1, "e2e_last_prekey_id").bind(2, std::to_string(id)).run();
}

Result<std::optional<std::string>> Cache::outbox_text(const std::string& id) {
  auto st = rep_->ostmt(kOutboxText);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, id);
  auto row = q->step();
  if (!row) return row.status();
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(q->column_text(0));
}

// ---- parley.db: sessions, contacts, outgoing ---------------------------------------

Result<std::optional<Cache::SessionRow>> Cache::e2e_session(const std::string& user,
                                                            const std::string& device) {
  return rep_->note([&]() -> Result<std::optional<SessionRow>> {
    auto st = rep_->stmt(kGetSession);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, user).bind(2, device);
    auto row = q->step();
    if (!row) return row.status();
    if (!*row) return std::optional<SessionRow>();
    return std::optional<SessionRow>(read_session(*q));
  }());
}

Result<std::vector<Cache::SessionRow>> Cache::e2e_sessions_of(const std::string& user) {
  return rep_->note([&]() -> Result<std::vector<SessionRow>> {
    auto st = rep_->stmt(kSessionsOf);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, user);
    std::vector<SessionRow> out;
    for (;;) {
      auto row = q->step();
      if (!row) return row.status();
      if (!*row) break;
      out.push_back(read_session(*q));
    }
    return out;
  }());
}

Result<std::vector<Cache::DeviceRow>> Cache::e2e_devices(const std::string& user) {
  return rep_->note([&]() -> Result<std::vector<DeviceRow>> {
    auto st = rep_->stmt(kDevicesOf);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, user);
    std::vector<DeviceRow> out;
    for (;;) {
      auto row = q->step();
      if (!row) return row.status();
      if (!*row) break;
      out.push_back(DeviceRow{q->column_text(0), q->column_text(1), q->column_text(2),
                              q->column_int(3)});
    }
    return out;
  }());
}

Result<std::string> Cache::e2e_verified(const std::string& user) {
  return rep_->note([&]() -> Result<std::string> {
    auto st = rep_->stmt(kGetVerified);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, user);
    auto row = q->step();
    if (!row) return row.status();
    return *row ? q->column_text(0) : std::string();
  }());
}

Status Cache::set_e2e_verified(const std::string& user, const std::string& digest) {
  return rep_->note([&]() -> Status {
    auto st = rep_->stmt(digest.empty() ? kClearVerified : kSetVerified);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, user);
    if (!digest.empty()) q->bind(2, digest);
    return q->run();
  }());
}

Result<std::optional<std::string>> Cache::e2e_outgoing(const std::string& id) {
  return rep_->note([&]() -> Result<std::optional<std::string>> {
    auto st = rep_->stmt(kGetOutgoing);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, id);
    auto row = q->step();
    if (!row) return row.status();
    if (!*row) return std::optional<std::string>();
    return std::optional<std::string>(q->column_text(0));
  }());
}

Status Cache::e2e_drop_outgoing(const std::string& id) {
  return rep_->note(rep_->drop_outgoing(id));
}

DurableCommit::DurableCommit(Cache::Rep& rep, bool on) : rep_(rep), on_(on) {
  if (on_) on_ = rep_.db.exec("PRAGMA synchronous = FULL").ok();
}
DurableCommit::~DurableCommit() {
  if (on_) rep_.db.exec("PRAGMA synchronous = NORMAL");
}

Status Cache::apply_e2e(const E2eWrite& write) {
  if (write.empty()) return Status();
  // Durable before the message leaves: a session rolled back by a power cut
  // would use a message key again (docs/e2e.md, "Crash safety").
  DurableCommit durable(*rep_, true);
  return rep_->note([&]() -> Status {
    Transaction tx(rep_->db);
    if (!tx.begin_status().ok()) return tx.begin_status();
    if (Status s = rep_->write_e2e(write); !s.ok()) return s;
    return tx.commit();
  }());
}

Result<std::optional<Cache::FrankingRow>> Cache::e2e_franking(const std::string& channel,
                                                              std::uint64_t seq) {
  return rep_->note([&]() -> Result<std::optional<FrankingRow>> {
    auto st = rep_->stmt(kGetFranking);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel).bind(2, clamp_seq(seq));
    auto row = q->step();
    if (!row) return row.status();
    if (!*row) return std::optional<FrankingRow>();
    return std::optional<FrankingRow>(FrankingRow{channel, seq, q->column_text(0),
                                                  q->column_text(1), q->column_text(2),
                                                  q->column_text(3)});
  }());
}

Result<std::optional<std::string>> Cache::e2e_recipient(const std::string& id,
                                                        const std::string& user,
                                                        const std::string& device) {
  return rep_->note([&]() -> Result<std::optional<std::string>> {
    auto st = rep_->stmt(kGetRecipient);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, id).bind(2, user).bind(3, device);
    auto row = q->step();
    if (!row) return row.status();
    if (!*row) return std::optional<std::string>();
    return std::optional<std::string>(q->column_text(0));
  }());
}

Status Cache::e2e_prune_recipients(std::int64_t before_ms) {
  return rep_->note([&]() -> Status {
    auto st = rep_->stmt(kPruneRecipients);
    if (!st) return st.status();
    Scoped q(**st);
    return q->bind(1, before_ms).run();
  }());
}

Result<bool> Cache::e2e_list_known(const std::string& user) {
  return rep_->note([&]() -> Result<bool> {
    auto st = rep_->stmt(kGetList);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, user);
    auto row = q->step();
    if (!row) return row.status();
    return *row;
  }());
}

Result<bool> Cache::has_event(const std::string& channel, std::uint64_t seq) {
  return rep_->note([&]() -> Result<bool> {
    auto st = rep_->stmt(kHasEvent);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel).bind(2, clamp_seq(seq));
    auto row = q->step();
    if (!row) return row.status();
    return *row;
  }());
}

Result<bool> Cache::has_e2e_message(const std::string& channel, const std::string& sender,
                                    const std::string& id) {
  return rep_->note([&]() -> Result<bool> {
    auto st = rep_->stmt(kHasE2eMessage);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel).bind(2, id).bind(3, sender);
    auto row = q->step();
    if (!row) return row.status();
    return *row;
  }());
}

Status Cache::Rep::write_e2e(const E2eWrite& write) {
  for (const SessionRow& s : write.sessions) {
    auto st = stmt(kPutSession);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, s.user).bind(2, s.device);
    blob(*q, 3, s.state);
    blob(*q, 4, s.base_key);
    if (s.pending_prekey) {
      q->bind(5, *s.pending_prekey);
    } else {
      q->bind_null(5);
    }
    q->bind(6, s.updated_ms);
    if (s.previous_state && s.previous_base_key) {
      blob(*q, 7, *s.previous_state);
      blob(*q, 8, *s.previous_base_key);
    } else {
      q->bind_null(7).bind_null(8);
    }
    if (Status r = q->run(); !r.ok()) return r;
  }
  for (const auto& [user, device] : write.dropped) {
    auto st = stmt(kDropSession);
    if (!st) return st.status();
    Scoped q(**st);
    if (Status r = q->bind(1, user).bind(2, device).run(); !r.ok()) return r;
  }
  for (const DeviceRow& d : write.devices) {
    auto st = stmt(kPutDevice);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, d.user).bind(2, d.device);
    blob(*q, 3, d.identity);
    if (Status r = q->bind(4, d.seen_ms).run(); !r.ok()) return r;
  }
  for (const auto& [user, device] : write.forgotten) {
    auto st = stmt(kForgetDevice);
    if (!st) return st.status();
    Scoped q(**st);
    if (Status r = q->bind(1, user).bind(2, device).run(); !r.ok()) return r;
  }
  for (const FrankingRow& f : write.franking) {
    auto st = stmt(kPutFranking);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, f.channel).bind(2, clamp_seq(f.seq)).bind(3, f.device);
    blob(*q, 4, f.key);
    blob(*q, 5, f.commit);
    blob(*q, 6, f.tag);
    if (Status r = q->run(); !r.ok()) return r;
  }
  for (const auto& [user, ms] : write.lists) {
    auto st = stmt(kPutList);
    if (!st) return st.status();
    Scoped q(**st);
    if (Status r = q->bind(1, user).bind(2, ms).run(); !r.ok()) return r;
  }
  for (const RecipientRow& r : write.recipients) {
    auto st = stmt(kPutRecipient);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, r.id).bind(2, r.user).bind(3, r.device);
    blob(*q, 4, r.identity);
    if (Status e = q->bind(5, r.created_ms).run(); !e.ok()) return e;
  }
  for (const TextUpdate& t : write.texts) {
    auto st = stmt(kSetText);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, t.channel).bind(2, clamp_seq(t.seq)).bind(3, t.text).bind(4, t.error);
    if (Status r = q->run(); !r.ok()) return r;
  }
  for (const auto& [id, payload] : write.outgoing) {
    auto st = stmt(kPutOutgoing);
    if (!st) return st.status();
    Scoped q(**st);
    if (Status r = q->bind(1, id).bind(2, payload).run(); !r.ok()) return r;
  }
  return Status();
}

Status Cache::Rep::drop_outgoing(const std::string& id) {
  auto st = stmt(kDropOutgoing);
  if (!st) return st.status();
  Scoped q(**st);
  return q->bind(1, id).run();
}

Status Cache::Rep::restore_own_e2e(const Message& m) {
  auto st = stmt(kRestoreOwn);
  if (!st) return st.status();
  Scoped q(**st);
  return q->bind(1, m.channel).bind(2, clamp_seq(m.seq)).bind(3, m.text).run();
}

}  // namespace parley::store
