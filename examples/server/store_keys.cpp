// ServerStore: end-to-end encryption keys (issue 9, docs/server.md "End-to-end
// encryption"): each device's identity, signed and last-resort prekeys, and
// its one-time prekeys, each handed out once.
#include <fmt/format.h>

#include "store.hpp"

namespace parley::server {
namespace {

Status internal(std::string_view what, const Status& status) {
  return Status(status.code(), fmt::format("{}: {}", what, status.message()), "internal");
}

Status invalid_keys(std::string message) {
  return Status(StatusCode::invalid_argument, std::move(message), "invalid_keys");
}

}  // namespace

Result<std::optional<StoredDeviceKeys>> ServerStore::device_keys(const std::string& user,
                                                                 const std::string& device) {
  auto stmt = db_.prepare(
      "SELECT identity, spk_id, spk_key, spk_sig, lr_id, lr_key, lr_sig, updated, "
      "(SELECT count(*) FROM one_time_prekeys o WHERE o.user = k.user AND o.device = k.device) "
      "FROM device_keys k WHERE user = ?1 AND device = ?2");
  if (!stmt) return internal("device keys", stmt.status());
  stmt->bind(1, user).bind(2, device);
  auto row = stmt->step();
  if (!row) return internal("device keys", row.status());
  if (!*row) return std::optional<StoredDeviceKeys>();
  StoredDeviceKeys keys;
  keys.identity = stmt->column_text(0);
  keys.signed_prekey = {static_cast<std::uint32_t>(stmt->column_int(1)), stmt->column_text(2),
                        stmt->column_text(3)};
  keys.last_resort = {static_cast<std::uint32_t>(stmt->column_int(4)), stmt->column_text(5),
                      stmt->column_text(6)};
  keys.updated = stmt->column_int(7);
  keys.one_time_left = static_cast<std::uint64_t>(stmt->column_int(8));
  return std::optional<StoredDeviceKeys>(std::move(keys));
}

Result<StoredDeviceKeys> ServerStore::publish_keys(const std::string& user,
                                                   const std::string& device,
                                                   const KeysUpdate& update, std::int64_t now_ms,
                                                   std::size_t max_one_time) {
  store::Transaction tx(db_);
  if (!tx.begin_status().ok()) return internal("keys", tx.begin_status());
  auto current = device_keys(user, device);
  if (!current) return current.status();
  bool replace = !*current || (*current)->identity != update.identity;
  if (replace) {
    if (!update.signed_prekey || !update.last_resort) {
      return invalid_keys(fmt::format(
          "device \"{}\" has {} identity stored: \"signed_prekey\" and \"last_resort\" are "
          "required",
          device, *current ? "another" : "no"));
    }
    const StoredSignedKey& spk = *update.signed_prekey;
    const StoredSignedKey& lr = *update.last_resort;
    Status s = run_once(
        "INSERT OR REPLACE INTO device_keys (user, device, identity, spk_id, spk_key, spk_sig, "
        "lr_id, lr_key, lr_sig, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        [&](store::Statement& q) {
          q.bind(1, user).bind(2, device).bind(3, update.identity);
          q.bind(4, std::int64_t{spk.id}).bind(5, spk.key).bind(6, spk.signature);
          q.bind(7, std::int64_t{lr.id}).bind(8, lr.key).bind(9, lr.signature).bind(10, now_ms);
        });
    if (!s.ok()) return internal("keys", s);
    s = run_once("DELETE FROM one_time_prekeys WHERE user = ?1 AND device = ?2",
                 [&](store::Statement& q) { q.bind(1, user).bind(2, device); });
    if (!s.ok()) return internal("keys", s);
  } else {
    for (auto part : {std::pair{&update.signed_prekey, "spk"},
                      std::pair{&update.last_resort, "lr"}}) {
      // Not a structured binding: lambdas cannot capture those before C++20
      // compilers that implement P1091 (clang 16).
      const auto* key = part.first;
      const char* prefix = part.second;
      if (!*key) continue;
      Status s = run_once(
          fmt::format("UPDATE device_keys SET {0}_id = ?3, {0}_key = ?4, {0}_sig = ?5, "
                      "updated = ?6 WHERE user = ?1 AND device = ?2",
                      prefix),
          [&](store::Statement& q) {
            q.bind(1, user).bind(2, device).bind(3, std::int64_t{(*key)->id});
            q.bind(4, (*key)->key).bind(5, (*key)->signature).bind(6, now_ms);
          });
      if (!s.ok()) return internal("keys", s);
    }
  }
  if (!update.one_time.empty()) {
    auto insert = db_.prepare(
        "INSERT OR IGNORE INTO one_time_prekeys (user, device, id, key) VALUES (?1, ?2, ?3, ?4)");
    if (!insert) return internal("keys", insert.status());
    for (const StoredOneTimeKey& k : update.one_time) {
      insert->bind(1, user).bind(2, device).bind(3, std::int64_t{k.id}).bind(4, k.key);
      Status s = insert->run();
      insert->reset();
      if (!s.ok()) return internal("keys", s);
    }
  }
  auto stored = device_keys(user, device);
  if (!stored) return stored.status();
  if (!*stored) return Status(StatusCode::internal, "keys: row vanished", "internal");
  if ((*stored)->one_time_left > max_one_time) {
    return invalid_keys(fmt::format(
        "field \"one_time\": device \"{}\" would hold {} one-time prekeys, more than {}", device,
        (*stored)->one_time_left, max_one_time));
  }
  if (Status s = tx.commit(); !s.ok()) return internal("keys", s);
  return std::move(**stored);
}

Result<std::vector<TakenBundle>> ServerStore::take_bundles(const std::string& user, bool take,
                                                           const std::string& device) {
  store::Transaction tx(db_);
  if (!tx.begin_status().ok()) return internal("bundle", tx.begin_status());
  auto devices = db_.prepare(
      "SELECT device, identity, spk_id, spk_key, spk_sig, lr_id, lr_key FROM device_keys "
      "WHERE user = ?1 AND (?2 = '' OR device = ?2) ORDER BY device");
  if (!devices) return internal("bundle", devices.status());
  devices->bind(1, user).bind(2, device);
  std::vector<TakenBundle> out;
  std::vector<StoredOneTimeKey> last_resorts;
  for (;;) {
    auto row = devices->step();
    if (!row) return internal("bundle", row.status());
    if (!*row) break;
    TakenBundle b;
    b.device = devices->column_text(0);
    b.identity = devices->column_text(1);
    b.signed_prekey = {static_cast<std::uint32_t>(devices->column_int(2)),
                       devices->column_text(3), devices->column_text(4)};
    last_resorts.push_back(
        {static_cast<std::uint32_t>(devices->column_int(5)), devices->column_text(6)});
    out.push_back(std::move(b));
  }
  devices->reset();
  if (!take) {
    for (TakenBundle& b : out) b.signed_prekey = {};
    return out;  // nothing changed: the transaction rolls back
  }
  auto lowest = db_.prepare(
      "SELECT id, key FROM one_time_prekeys WHERE user = ?1 AND device = ?2 ORDER BY id LIMIT 1");
  if (!lowest) return internal("bundle", lowest.status());
  auto remove = db_.prepare("DELETE FROM one_time_prekeys WHERE user = ?1 AND device = ?2 AND id = ?3");
  if (!remove) return internal("bundle", remove.status());
  auto left = db_.prepare("SELECT count(*) FROM one_time_prekeys WHERE user = ?1 AND device = ?2");
  if (!left) return internal("bundle", left.status());
  for (std::size_t i = 0; i < out.size(); ++i) {
    TakenBundle& b = out[i];
    lowest->bind(1, user).bind(2, b.device);
    auto row = lowest->step();
    if (!row) return internal("bundle", row.status());
    if (*row) {
      b.one_time = StoredOneTimeKey{static_cast<std::uint32_t>(lowest->column_int(0)),
                                    lowest->column_text(1)};
    }
    lowest->reset();
    if (b.one_time) {
      remove->bind(1, user).bind(2, b.device).bind(3, std::int64_t{b.one_time->id});
      Status s = remove->run();
      remove->reset();
      if (!s.ok()) return internal("bundle", s);
    } else {
      b.one_time = last_resorts[i];
      b.last_resort = true;
    }
    left->bind(1, user).bind(2, b.device);
    auto counted = left->step();
    if (!counted) return internal("bundle", counted.status());
    b.one_time_left = static_cast<std::uint64_t>(left->column_int(0));
    left->reset();
  }
  if (Status s = tx.commit(); !s.ok()) return internal("bundle", s);
  return out;
}

}  // namespace parley::server
