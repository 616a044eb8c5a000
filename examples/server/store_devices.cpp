// ServerStore: several devices per user, blocks, session recovery notices
// and verifiable reports (issue 10, docs/e2e.md "Devices" and docs/security.md
// "Verifiable reports").
#include <fmt/format.h>
#include <sodium.h>

#include "store.hpp"

namespace parley::server {
namespace {

Status internal(std::string_view what, const Status& status) {
  return Status(status.code(), fmt::format("{}: {}", what, status.message()), "internal");
}

constexpr std::string_view kNoticeColumns =
    "n.nid, n.user, n.device, n.kind, c.name, n.seq, n.client_id, n.from_user, n.from_device, "
    "n.ts, n.e2e, n.created";

StoredNotice read_notice(const store::Statement& stmt) {
  StoredNotice n;
  n.nid = static_cast<std::uint64_t>(stmt.column_int(0));
  n.user = stmt.column_text(1);
  n.device = stmt.column_text(2);
  n.kind = stmt.column_text(3);
  n.channel = stmt.column_text(4);
  n.seq = static_cast<std::uint64_t>(stmt.column_int(5));
  n.client_id = stmt.column_text(6);
  n.from_user = stmt.column_text(7);
  n.from_device = stmt.column_text(8);
  n.ts = stmt.column_int(9);
  if (!stmt.column_is_null(10)) n.e2e = stmt.column_text(10);
  n.created = stmt.column_int(11);
  return n;
}

}  // namespace

Result<std::vector<std::string>> ServerStore::devices(const std::string& user) {
  auto stmt = db_.prepare("SELECT device FROM device_keys WHERE user = ?1 ORDER BY device");
  if (!stmt) return internal("devices", stmt.status());
  stmt->bind(1, user);
  std::vector<std::string> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return internal("devices", row.status());
    if (!*row) break;
    out.push_back(stmt->column_text(0));
  }
  return out;
}

Result<bool> ServerStore::device_removed(const std::string& user, const std::string& device) {
  auto stmt = db_.prepare("SELECT 1 FROM removed_devices WHERE user = ?1 AND device = ?2");
  if (!stmt) return internal("removed device", stmt.status());
  stmt->bind(1, user).bind(2, device);
  auto row = stmt->step();
  if (!row) return internal("removed device", row.status());
  return *row;
}

Result<std::uint64_t> ServerStore::count_removed_devices(const std::string& user) {
  auto stmt = db_.prepare("SELECT count(*) FROM removed_devices WHERE user = ?1");
  if (!stmt) return internal("removed devices", stmt.status());
  stmt->bind(1, user);
  auto row = stmt->step();
  if (!row) return internal("removed devices", row.status());
  if (!*row) return std::uint64_t{0};
  return static_cast<std::uint64_t>(stmt->column_int(0));
}

Status ServerStore::remove_device(const std::string& user, const std::string& device,
                                  std::int64_t now_ms) {
  store::Transaction tx(db_);
  if (!tx.begin_status().ok()) return internal("remove device", tx.begin_status());
  for (const char* sql : {"DELETE FROM device_keys WHERE user = ?1 AND device = ?2",
                          "DELETE FROM one_time_prekeys WHERE user = ?1 AND device = ?2",
                          "DELETE FROM e2e_notices WHERE user = ?1 AND device = ?2",
                          "DELETE FROM e2e_retries WHERE user = ?1 AND device = ?2",
                          "INSERT OR REPLACE INTO removed_devices (user, device, removed_at) "
                          "VALUES (?1, ?2, ?3)"}) {
    Status s = run_once(sql, [&](store::Statement& q) {
      q.bind(1, user).bind(2, device);
      if (std::string_view(sql).find("?3") != std::string_view::npos) q.bind(3, now_ms);
    });
    if (!s.ok()) return internal("remove device", s);
  }
  if (Status s = tx.commit(); !s.ok()) return internal("remove device", s);
  return Status();
}

Result<std::vector<std::pair<std::string, std::string>>> ServerStore::blocks() {
  auto stmt = db_.prepare("SELECT user, blocked FROM blocks ORDER BY user, blocked");
  if (!stmt) return internal("blocks", stmt.status());
  std::vector<std::pair<std::string, std::string>> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return internal("blocks", row.status());
    if (!*row) break;
    out.emplace_back(stmt->column_text(0), stmt->column_text(1));
  }
  return out;
}

Status ServerStore::set_block(const std::string& user, const std::string& other, bool blocked,
                              std::int64_t now_ms) {
  Status s = run_once(blocked ? "INSERT OR IGNORE INTO blocks (user, blocked, ts) VALUES (?1, ?2, ?3)"
                              : "DELETE FROM blocks WHERE user = ?1 AND blocked = ?2",
                      [&](store::Statement& q) {
                        q.bind(1, user).bind(2, other);
                        if (blocked) q.bind(3, now_ms);
                      });
  if (!s.ok()) return internal("block", s);
  return Status();
}

Result<std::uint64_t> ServerStore::add_notice(const StoredNotice& n) {
  Status s = run_once(
      "INSERT INTO e2e_notices (user, device, kind, channel_id, seq, client_id, from_user, "
      "from_device, ts, e2e, created) VALUES (?1, ?2, ?3, (SELECT id FROM channels WHERE name = "
      "?4), ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
      [&](store::Statement& q) {
        q.bind(1, n.user).bind(2, n.device).bind(3, n.kind).bind(4, n.channel).bind(5, n.seq);
        q.bind(6, n.client_id).bind(7, n.from_user).bind(8, n.from_device).bind(9, n.ts);
        if (n.e2e.empty()) {
          q.bind_null(10);
        } else {
          q.bind(10, n.e2e);
        }
        q.bind(11, n.created);
      });
  if (!s.ok()) return internal("notice", s);
  return static_cast<std::uint64_t>(db_.last_insert_rowid());
}

Result<std::uint64_t> ServerStore::count_notices(const std::string& user,
                                                 const std::string& device) {
  auto stmt = db_.prepare("SELECT count(*) FROM e2e_notices WHERE user = ?1 AND device = ?2");
  if (!stmt) return internal("notices", stmt.status());
  stmt->bind(1, user).bind(2, device);
  auto row = stmt->step();
  if (!row) return internal("notices", row.status());
  return static_cast<std::uint64_t>(stmt->column_int(0));
}

Result<std::vector<StoredNotice>> ServerStore::notices(const std::string& user,
                                                       const std::string& device,
                                                       std::uint32_t limit) {
  auto stmt = db_.prepare(
      fmt::format("SELECT {} FROM e2e_notices n JOIN channels c ON c.id = n.channel_id "
                  "WHERE n.user = ?1 AND n.device = ?2 ORDER BY n.nid LIMIT ?3",
                  kNoticeColumns));
  if (!stmt) return internal("notices", stmt.status());
  stmt->bind(1, user).bind(2, device).bind(3, static_cast<std::int64_t>(limit));
  std::vector<StoredNotice> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return internal("notices", row.status());
    if (!*row) break;
    out.push_back(read_notice(*stmt));
  }
  return out;
}

Result<bool> ServerStore::delete_notice(const std::string& user, const std::string& device,
                                        std::uint64_t nid) {
  Status s = run_once("DELETE FROM e2e_notices WHERE nid = ?1 AND user = ?2 AND device = ?3",
                      [&](store::Statement& q) { q.bind(1, nid).bind(2, user).bind(3, device); });
  if (!s.ok()) return internal("notice", s);
  return db_.changes() > 0;
}

Status ServerStore::drop_old_notices(std::int64_t before_ms) {
  for (const char* sql : {"DELETE FROM e2e_notices WHERE created < ?1",
                          "DELETE FROM e2e_retries WHERE created < ?1"}) {
    Status s = run_once(sql, [&](store::Statement& q) { q.bind(1, before_ms); });
    if (!s.ok()) return internal("old notices", s);
  }
  return Status();
}

Result<std::optional<RetryState>> ServerStore::retry_state(const std::string& channel,
                                                           std::uint64_t seq,
                                                           const std::string& user,
                                                           const std::string& device) {
  auto stmt = db_.prepare(
      "SELECT resent, rounds FROM e2e_retries WHERE channel_id = (SELECT id FROM channels WHERE "
      "name = ?1) AND seq = ?2 AND user = ?3 AND device = ?4");
  if (!stmt) return internal("retry", stmt.status());
  stmt->bind(1, channel).bind(2, seq).bind(3, user).bind(4, device);
  auto row = stmt->step();
  if (!row) return internal("retry", row.status());
  if (!*row) return std::optional<RetryState>();
  RetryState state;
  state.resent = stmt->column_int(0) != 0;
  state.rounds = static_cast<std::uint32_t>(stmt->column_int(1));
  return std::optional<RetryState>(state);
}

// A retry (resent false) counts one more round and restarts the row's
// lifetime; a resend only marks it answered.
Status ServerStore::put_retry(const std::string& channel, std::uint64_t seq,
                              const std::string& user, const std::string& device, bool resent,
                              std::int64_t now_ms) {
  Status s = run_once(
      "INSERT INTO e2e_retries (channel_id, seq, user, device, resent, created, rounds) "
      "VALUES ((SELECT id FROM channels WHERE name = ?1), ?2, ?3, ?4, ?5, ?6, "
      "CASE WHEN ?5 THEN 0 ELSE 1 END) "
      "ON CONFLICT (channel_id, seq, user, device) DO UPDATE SET resent = excluded.resent, "
      "created = CASE WHEN excluded.resent THEN created ELSE excluded.created END, "
      "rounds = rounds + CASE WHEN excluded.resent THEN 0 ELSE 1 END",
      [&](store::Statement& q) {
        q.bind(1, channel).bind(2, seq).bind(3, user).bind(4, device);
        q.bind(5, resent ? 1 : 0).bind(6, now_ms);
      });
  if (!s.ok()) return internal("retry", s);
  return Status();
}

Result<std::array<std::uint8_t, 32>> ServerStore::franking_key() {
  std::array<std::uint8_t, 32> key{};
  if (sodium_init() < 0) {
    return Status(StatusCode::internal, "franking key: libsodium did not initialise", "internal");
  }
  randombytes_buf(key.data(), key.size());
  char hex[2 * 32 + 1];
  sodium_bin2hex(hex, sizeof hex, key.data(), key.size());
  // A key stored already wins: it is created once per data directory.
  Status s = run_once(
      "INSERT OR IGNORE INTO server_secrets (name, value) VALUES ('franking_key', ?1)",
      [&](store::Statement& q) { q.bind(1, std::string_view(hex, 2 * 32)); });
  sodium_memzero(hex, sizeof hex);
  if (!s.ok()) return internal("franking key", s);
  auto stmt = db_.prepare("SELECT value FROM server_secrets WHERE name = 'franking_key'");
  if (!stmt) return internal("franking key", stmt.status());
  auto row = stmt->step();
  if (!row) return internal("franking key", row.status());
  std::string stored = *row ? stmt->column_text(0) : std::string();
  std::size_t size = 0;
  if (stored.size() != 64 || sodium_hex2bin(key.data(), key.size(), stored.data(), stored.size(),
                                            nullptr, &size, nullptr) != 0 ||
      size != key.size()) {
    return Status(StatusCode::corrupt, "franking key: the stored value is not 32 bytes of hex",
                  "internal");
  }
  return key;
}

Result<std::uint64_t> ServerStore::add_verified_report(const std::string& channel,
                                                       std::uint64_t seq,
                                                       const std::string& reporter,
                                                       const std::string& reason, std::int64_t ts,
                                                       const std::string& sender,
                                                       const std::string& text) {
  Status s = run_once(
      "INSERT INTO reports (channel_id, seq, reporter, reason, ts, verified, sender, text) "
      "VALUES ((SELECT id FROM channels WHERE name = ?1), ?2, ?3, ?4, ?5, 1, ?6, ?7)",
      [&](store::Statement& q) {
        q.bind(1, channel).bind(2, seq).bind(3, reporter).bind(4, reason).bind(5, ts);
        q.bind(6, sender).bind(7, text);
      });
  if (!s.ok()) return internal("report", s);
  return static_cast<std::uint64_t>(db_.last_insert_rowid());
}

Result<std::vector<StoredDirectPair>> ServerStore::direct_pairs() {
  auto stmt = db_.prepare(
      "SELECT c.name, e.sender, e.target FROM channels c JOIN events e ON e.channel_id = c.id "
      "AND e.seq = 1 WHERE c.kind = 'direct' AND e.kind = 'create'");
  if (!stmt) return internal("direct channels", stmt.status());
  std::vector<StoredDirectPair> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return internal("direct channels", row.status());
    if (!*row) break;
    out.push_back({stmt->column_text(0), stmt->column_text(1),
                   stmt->column_is_null(2) ? std::string() : stmt->column_text(2)});
  }
  return out;
}

}  // namespace parley::server
