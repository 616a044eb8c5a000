// The cache's view of notifications (schema 5): this user's unread and
// mention counts per channel and the notification level with its mute
// (channels.unread, mentions, notify_level, mute_until).
// docs/notifications.md, "In the SDK and the CLI".
//
// The counts are the server's: they are stored as pushed (welcome, channels,
// unread events) and never computed here. Levels are stored by their wire
// names; a name this SDK does not know reads as all.
#include <algorithm>

#include "store/cache_rep.hpp"

namespace parley::store {
namespace {

constexpr const char* kNotifyColumns =
    "SELECT name, member, unread, mentions, notify_level, mute_until FROM channels";
constexpr const char* kSetUnread =
    "UPDATE channels SET unread = ?2, mentions = ?3 "
    "WHERE name = ?1 AND (unread != ?2 OR mentions != ?3)";
constexpr const char* kSetNotifyLevel =
    "UPDATE channels SET notify_level = ?2, mute_until = ?3 "
    "WHERE name = ?1 AND (notify_level != ?2 OR mute_until != ?3)";

Cache::NotifyRow read_row(Statement& q) {
  Cache::NotifyRow r;
  r.channel = q.column_text(0);
  r.member = q.column_int(1) != 0;
  r.unread = static_cast<std::uint64_t>(std::max<std::int64_t>(0, q.column_int(2)));
  r.mentions = static_cast<std::uint64_t>(std::max<std::int64_t>(0, q.column_int(3)));
  if (!parse_notification_level(q.column_text(4), &r.level)) r.level = NotificationLevel::all;
  r.mute_until = q.column_int(5);
  return r;
}

}  // namespace

Result<std::optional<Cache::NotifyRow>> Cache::notify_state(const std::string& channel) {
  static const std::string sql = std::string(kNotifyColumns) + " WHERE name = ?1";
  return rep_->note([&]() -> Result<std::optional<NotifyRow>> {
    auto st = rep_->stmt(sql.c_str());
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel);
    auto row = q->step();
    if (!row) return row.status();
    if (!*row) return std::optional<NotifyRow>();
    return std::optional<NotifyRow>(read_row(*q));
  }());
}

Result<std::vector<Cache::NotifyRow>> Cache::notify_states() {
  static const std::string sql = std::string(kNotifyColumns) + " ORDER BY name";
  return rep_->note([&]() -> Result<std::vector<NotifyRow>> {
    auto st = rep_->stmt(sql.c_str());
    if (!st) return st.status();
    Scoped q(**st);
    std::vector<NotifyRow> out;
    for (;;) {
      auto row = q->step();
      if (!row) return row.status();
      if (!*row) break;
      out.push_back(read_row(*q));
    }
    return out;
  }());
}

Result<bool> Cache::set_unread(const std::string& channel, std::uint64_t unread,
                               std::uint64_t mentions) {
  return rep_->note([&]() -> Result<bool> {
    auto st = rep_->stmt(kSetUnread);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel).bind(2, clamp_seq(unread)).bind(3, clamp_seq(mentions));
    if (Status s = q->run(); !s.ok()) return s;
    return rep_->db.changes() > 0;
  }());
}

Result<bool> Cache::set_notify_level(const std::string& channel, NotificationLevel level,
                                     std::int64_t mute_until) {
  return rep_->note([&]() -> Result<bool> {
    auto st = rep_->stmt(kSetNotifyLevel);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel).bind(2, to_string(level)).bind(3, std::max<std::int64_t>(0, mute_until));
    if (Status s = q->run(); !s.ok()) return s;
    return rep_->db.changes() > 0;
  }());
}

}  // namespace parley::store
