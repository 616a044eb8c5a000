// ServerStore: notification levels, mentions and unread counts (issue 7,
// docs/notifications.md); presence settings and last seen (issue 8,
// docs/presence.md).
#include <fmt/format.h>

#include "store.hpp"

namespace parley::server {
namespace {

Status internal(std::string_view what, const Status& status) {
  return Status(status.code(), fmt::format("{}: {}", what, status.message()), "internal");
}

}  // namespace

Status ServerStore::set_notify(const std::string& channel, const std::string& user,
                               const std::string& level, std::int64_t mute_until) {
  Status s = run_once(
      "INSERT INTO notify_settings (channel_id, user, level, mute_until) "
      "VALUES ((SELECT id FROM channels WHERE name = ?1), ?2, ?3, ?4) "
      "ON CONFLICT (channel_id, user) DO UPDATE SET level = excluded.level, "
      "mute_until = excluded.mute_until",
      [&](store::Statement& q) { q.bind(1, channel).bind(2, user).bind(3, level).bind(4, mute_until); });
  return s.ok() ? s : internal("notify", s);
}

Status ServerStore::save_presence(const StoredPresence& p) {
  Status s = run_once(
      "INSERT OR REPLACE INTO presence (user, status, text, text_until, hide_last_seen, "
      "last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      [&](store::Statement& q) {
        q.bind(1, p.user).bind(2, p.status).bind(3, p.text).bind(4, p.text_until);
        q.bind(5, std::int64_t{p.hide_last_seen ? 1 : 0}).bind(6, p.last_seen);
      });
  return s.ok() ? s : internal("presence", s);
}

Result<std::vector<StoredPresence>> ServerStore::presences() {
  auto stmt = db_.prepare(
      "SELECT user, status, text, text_until, hide_last_seen, last_seen FROM presence");
  if (!stmt) return internal("presence", stmt.status());
  std::vector<StoredPresence> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return internal("presence", row.status());
    if (!*row) break;
    out.push_back({stmt->column_text(0), stmt->column_text(1), stmt->column_text(2),
                   stmt->column_int(3), stmt->column_int(4) != 0, stmt->column_int(5)});
  }
  return out;
}

Result<std::vector<StoredNotify>> ServerStore::notify_settings() {
  auto stmt = db_.prepare(
      "SELECT c.name, n.user, n.level, n.mute_until FROM notify_settings n "
      "JOIN channels c ON c.id = n.channel_id ORDER BY c.name, n.user");
  if (!stmt) return internal("notify settings", stmt.status());
  std::vector<StoredNotify> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return internal("notify settings", row.status());
    if (!*row) break;
    out.push_back({stmt->column_text(0), stmt->column_text(1), stmt->column_text(2),
                   stmt->column_int(3)});
  }
  return out;
}

Status ServerStore::add_mentions(const std::string& channel, std::uint64_t seq,
                                 const std::vector<std::string>& users) {
  if (users.empty()) return Status();
  store::Transaction tx(db_);
  if (!tx.begin_status().ok()) return internal("mentions", tx.begin_status());
  auto stmt = db_.prepare(
      "INSERT OR IGNORE INTO mentions (channel_id, user, seq) "
      "VALUES ((SELECT id FROM channels WHERE name = ?1), ?2, ?3)");
  if (!stmt) return internal("mentions", stmt.status());
  for (const std::string& user : users) {
    stmt->bind(1, channel).bind(2, user).bind(3, seq);
    Status s = stmt->run();
    stmt->reset();
    if (!s.ok()) return internal("mentions", s);
  }
  Status s = tx.commit();
  return s.ok() ? s : internal("mentions", s);
}

Result<UnreadCounts> ServerStore::unread_counts(const std::string& channel,
                                                const std::string& user) {
  // The baseline: the read cursor, but never before the user joined (history
  // from before is there to read, not unread).
  auto base = db_.prepare(
      "SELECT c.id, max(coalesce((SELECT r.seq FROM receipts r WHERE r.channel_id = c.id "
      "AND r.kind = 'read' AND r.user = ?2 AND r.device = ''), 0), "
      "coalesce((SELECT m.joined_seq FROM members m WHERE m.channel_id = c.id "
      "AND m.user = ?2), c.last_seq)) FROM channels c WHERE c.name = ?1");
  if (!base) return internal("unread", base.status());
  base->bind(1, channel).bind(2, user);
  auto row = base->step();
  if (!row) return internal("unread", row.status());
  if (!*row) return UnreadCounts{};
  std::int64_t channel_id = base->column_int(0);
  std::int64_t after = base->column_int(1);
  UnreadCounts counts;
  auto unread = db_.prepare(
      "SELECT count(*) FROM events WHERE channel_id = ?1 AND seq > ?2 AND kind = 'message' "
      "AND deleted = 0 AND sender <> ?3");
  if (!unread) return internal("unread", unread.status());
  unread->bind(1, channel_id).bind(2, after).bind(3, user);
  auto r1 = unread->step();
  if (!r1) return internal("unread", r1.status());
  counts.unread = static_cast<std::uint64_t>(unread->column_int(0));
  auto mentions = db_.prepare(
      "SELECT count(DISTINCT m.seq) FROM mentions m JOIN events e "
      "ON e.channel_id = m.channel_id AND e.seq = m.seq "
      "WHERE m.channel_id = ?1 AND m.user IN (?3, '@channel') AND m.seq > ?2 "
      "AND e.deleted = 0 AND e.sender <> ?3");
  if (!mentions) return internal("unread", mentions.status());
  mentions->bind(1, channel_id).bind(2, after).bind(3, user);
  auto r2 = mentions->step();
  if (!r2) return internal("unread", r2.status());
  counts.mentions = static_cast<std::uint64_t>(mentions->column_int(0));
  return counts;
}

}  // namespace parley::server
