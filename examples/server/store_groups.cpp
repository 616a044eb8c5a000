// ServerStore: group channels (issue 6): the changes that membership,
// moderation and administration events make, and the lists admins read.
// Each change runs inside the transaction of the event that causes it
// (append_event), so the event and its effect are stored together.
#include <fmt/format.h>

#include "store.hpp"

namespace parley::server {
namespace {

constexpr std::string_view kEventColumns =
    "seq, kind, sender, client_id, text, ts, deleted, target, role, until, ref, channel_kind, "
    "m_name, m_topic, m_description, m_avatar, m_data, e2e";

Status internal(std::string_view what, const Status& status) {
  return Status(status.code(), fmt::format("{}: {}", what, status.message()), "internal");
}

// Binds `value` at `index`, or NULL when absent.
void bind_optional(store::Statement& q, int index, const std::optional<std::string>& value) {
  if (value) {
    q.bind(index, *value);
  } else {
    q.bind_null(index);
  }
}

}  // namespace

Status ServerStore::run_once(std::string_view sql,
                             const std::function<void(store::Statement&)>& bind) {
  auto stmt = db_.prepare(sql);
  if (!stmt) return stmt.status();
  bind(*stmt);
  return stmt->run();
}

Result<StoredEvent> ServerStore::append_event(StoredEvent event, const Effects& effects) {
  store::Transaction tx(db_);
  if (!tx.begin_status().ok()) return internal("append event", tx.begin_status());
  auto seq = next_seq(event.channel);
  if (!seq) {
    if (seq.status().reason() == "no_such_channel") return seq.status();
    return internal("append event", seq.status());
  }
  event.seq = seq->second;
  if (Status s = insert_event(seq->first, event); !s.ok()) {
    return s.reason() == "duplicate" ? s : internal("append event", s);
  }
  if (effects) {
    if (Status s = effects(seq->first, event.seq); !s.ok()) {
      return s.reason().empty() ? internal("append event", s) : s;
    }
  }
  if (Status s = tx.commit(); !s.ok()) return internal("append event", s);
  return event;
}

Result<StoredEvent> ServerStore::create_direct(const std::string& channel,
                                               const std::string& creator,
                                               const std::string& other, std::int64_t ts) {
  store::Transaction tx(db_);
  if (!tx.begin_status().ok()) return internal("create direct channel", tx.begin_status());
  Status s = run_once(
      "INSERT INTO channels (name, creator, created_at, last_seq, kind) "
      "VALUES (?1, ?2, ?3, 0, 'direct')",
      [&](store::Statement& q) { q.bind(1, channel).bind(2, creator).bind(3, ts); });
  if (!s.ok()) {
    if (sqlite3_extended_errcode(db_.handle()) == SQLITE_CONSTRAINT_UNIQUE) {
      return Status(StatusCode::already_exists,
                    fmt::format("channel \"{}\" already exists", channel), "channel_exists");
    }
    return internal("create direct channel", s);
  }
  auto seq = next_seq(channel);
  if (!seq) return internal("create direct channel", seq.status());
  StoredEvent event;
  event.channel = channel;
  event.seq = seq->second;
  event.kind = EventKind::create;
  event.sender = creator;
  event.ts = ts;
  event.channel_kind = to_string(ChannelKind::direct);
  event.target = other;
  if (Status e = insert_event(seq->first, event); !e.ok()) return internal("create direct", e);
  for (const std::string* user : {&creator, &other}) {
    if (Status e = put_member(seq->first, *user, Role::member, event.seq); !e.ok()) {
      return internal("create direct channel", e);
    }
  }
  if (Status e = tx.commit(); !e.ok()) return internal("create direct channel", e);
  return event;
}

Status ServerStore::put_member(std::int64_t channel_id, const std::string& user, Role role,
                               std::uint64_t joined_seq) {
  return run_once(
      "INSERT INTO members (channel_id, user, joined_seq, role) VALUES (?1, ?2, ?3, ?4) "
      "ON CONFLICT (channel_id, user) DO UPDATE SET role = excluded.role",
      [&](store::Statement& q) {
        q.bind(1, channel_id).bind(2, user).bind(3, joined_seq).bind(4, to_string(role));
      });
}

Status ServerStore::drop_member(std::int64_t channel_id, const std::string& user) {
  return run_once("DELETE FROM members WHERE channel_id = ?1 AND user = ?2",
                  [&](store::Statement& q) { q.bind(1, channel_id).bind(2, user); });
}

Status ServerStore::put_mute(std::int64_t channel_id, const std::string& user,
                             std::optional<std::int64_t> until) {
  return run_once("UPDATE members SET muted_until = ?3 WHERE channel_id = ?1 AND user = ?2",
                  [&](store::Statement& q) {
                    q.bind(1, channel_id).bind(2, user);
                    if (until) {
                      q.bind(3, *until);
                    } else {
                      q.bind_null(3);
                    }
                  });
}

Status ServerStore::put_ban(std::int64_t channel_id, const std::string& user, std::int64_t until,
                            const std::string& by, std::int64_t ts) {
  return run_once(
      "INSERT INTO bans (channel_id, user, until, banned_by, ts) VALUES (?1, ?2, ?3, ?4, ?5) "
      "ON CONFLICT (channel_id, user) DO UPDATE SET until = excluded.until, "
      "banned_by = excluded.banned_by, ts = excluded.ts",
      [&](store::Statement& q) {
        q.bind(1, channel_id).bind(2, user).bind(3, until).bind(4, by).bind(5, ts);
      });
}

Status ServerStore::drop_ban(std::int64_t channel_id, const std::string& user) {
  return run_once("DELETE FROM bans WHERE channel_id = ?1 AND user = ?2",
                  [&](store::Statement& q) { q.bind(1, channel_id).bind(2, user); });
}

Status ServerStore::put_meta(std::int64_t channel_id, const ChannelMeta& changes) {
  return run_once(
      "UPDATE channels SET name_shown = coalesce(?2, name_shown), topic = coalesce(?3, topic), "
      "description = coalesce(?4, description), avatar = coalesce(?5, avatar), "
      "data = coalesce(?6, data) WHERE id = ?1",
      [&](store::Statement& q) {
        q.bind(1, channel_id);
        bind_optional(q, 2, changes.name);
        bind_optional(q, 3, changes.topic);
        bind_optional(q, 4, changes.description);
        bind_optional(q, 5, changes.avatar_url);
        bind_optional(q, 6, changes.data);
      });
}

Status ServerStore::clear_message(std::int64_t channel_id, std::uint64_t seq) {
  Status s = run_once(
      "UPDATE events SET text = NULL, e2e = NULL, deleted = 1 WHERE channel_id = ?1 AND seq = ?2",
      [&](store::Statement& q) { q.bind(1, channel_id).bind(2, seq); });
  if (!s.ok()) return s;
  return put_pin(channel_id, seq, false);
}

Status ServerStore::put_pin(std::int64_t channel_id, std::uint64_t seq, bool pinned) {
  return run_once(pinned ? "INSERT OR IGNORE INTO pins (channel_id, seq) VALUES (?1, ?2)"
                         : "DELETE FROM pins WHERE channel_id = ?1 AND seq = ?2",
                  [&](store::Statement& q) { q.bind(1, channel_id).bind(2, seq); });
}

Status ServerStore::close_channel(std::int64_t channel_id) {
  for (const char* sql : {"UPDATE channels SET deleted = 1 WHERE id = ?1",
                          "DELETE FROM members WHERE channel_id = ?1",
                          "DELETE FROM pins WHERE channel_id = ?1"}) {
    if (Status s = run_once(sql, [&](store::Statement& q) { q.bind(1, channel_id); }); !s.ok()) {
      return s;
    }
  }
  return Status();
}

Status ServerStore::put_restriction(std::int64_t channel_id, const StoredMembership& restriction) {
  return run_once(
      "INSERT INTO restrictions (channel_id, user, role, muted_until) VALUES (?1, ?2, ?3, ?4) "
      "ON CONFLICT (channel_id, user) DO UPDATE SET role = excluded.role, "
      "muted_until = excluded.muted_until",
      [&](store::Statement& q) {
        q.bind(1, channel_id).bind(2, restriction.user).bind(3, to_string(restriction.role));
        if (restriction.muted_until) {
          q.bind(4, *restriction.muted_until);
        } else {
          q.bind_null(4);
        }
      });
}

Status ServerStore::drop_restriction(std::int64_t channel_id, const std::string& user) {
  return run_once("DELETE FROM restrictions WHERE channel_id = ?1 AND user = ?2",
                  [&](store::Statement& q) { q.bind(1, channel_id).bind(2, user); });
}

Result<std::vector<StoredMembership>> ServerStore::restrictions() {
  auto stmt = db_.prepare(
      "SELECT c.name, r.user, r.role, r.muted_until FROM restrictions r "
      "JOIN channels c ON c.id = r.channel_id ORDER BY c.name, r.user");
  if (!stmt) return internal("restrictions", stmt.status());
  std::vector<StoredMembership> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return internal("restrictions", row.status());
    if (!*row) break;
    StoredMembership m;
    m.channel = stmt->column_text(0);
    m.user = stmt->column_text(1);
    if (!parse_role(stmt->column_text(2), &m.role)) m.role = Role::read_only;
    if (!stmt->column_is_null(3)) m.muted_until = stmt->column_int(3);
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::optional<StoredEvent>> ServerStore::event_at(const std::string& channel,
                                                         std::uint64_t seq) {
  auto stmt = db_.prepare(fmt::format(
      "SELECT {} FROM events WHERE channel_id = (SELECT id FROM channels WHERE name = ?1) "
      "AND seq = ?2",
      kEventColumns));
  if (!stmt) return internal("read event", stmt.status());
  stmt->bind(1, channel).bind(2, seq);
  auto row = stmt->step();
  if (!row) return internal("read event", row.status());
  if (!*row) return std::optional<StoredEvent>();
  auto event = read_event(*stmt, channel);
  if (!event) return event.status();
  return std::optional<StoredEvent>(std::move(*event));
}

Result<std::uint64_t> ServerStore::add_report(const std::string& channel, std::uint64_t seq,
                                              const std::string& reporter,
                                              const std::string& reason, std::int64_t ts) {
  Status s = run_once(
      "INSERT INTO reports (channel_id, seq, reporter, reason, ts) "
      "VALUES ((SELECT id FROM channels WHERE name = ?1), ?2, ?3, ?4, ?5)",
      [&](store::Statement& q) {
        q.bind(1, channel).bind(2, seq).bind(3, reporter).bind(4, reason).bind(5, ts);
      });
  if (!s.ok()) return internal("report", s);
  return static_cast<std::uint64_t>(db_.last_insert_rowid());
}

Result<std::vector<StoredReport>> ServerStore::reports(std::uint32_t limit) {
  auto stmt = db_.prepare(
      "SELECT r.id, c.name, r.seq, r.reporter, r.reason, r.ts, coalesce(r.sender, e.sender), "
      "CASE WHEN r.verified THEN r.text ELSE e.text END, r.verified "
      "FROM reports r JOIN channels c ON c.id = r.channel_id "
      "LEFT JOIN events e ON e.channel_id = r.channel_id AND e.seq = r.seq "
      "ORDER BY r.id DESC LIMIT ?1");
  if (!stmt) return internal("reports", stmt.status());
  stmt->bind(1, static_cast<std::int64_t>(limit));
  std::vector<StoredReport> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return internal("reports", row.status());
    if (!*row) break;
    StoredReport r;
    r.id = static_cast<std::uint64_t>(stmt->column_int(0));
    r.channel = stmt->column_text(1);
    r.seq = static_cast<std::uint64_t>(stmt->column_int(2));
    r.reporter = stmt->column_text(3);
    r.reason = stmt->column_text(4);
    r.ts = stmt->column_int(5);
    r.sender = stmt->column_text(6);
    if (!stmt->column_is_null(7)) r.text = stmt->column_text(7);
    r.verified = stmt->column_int(8) != 0;
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<StoredUser>> ServerStore::users() {
  auto stmt =
      db_.prepare("SELECT name, first_seen, last_seen, banned_until FROM users ORDER BY name");
  if (!stmt) return internal("users", stmt.status());
  std::vector<StoredUser> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return internal("users", row.status());
    if (!*row) break;
    StoredUser u;
    u.name = stmt->column_text(0);
    u.first_seen = stmt->column_int(1);
    u.last_seen = stmt->column_int(2);
    if (!stmt->column_is_null(3)) u.banned_until = stmt->column_int(3);
    out.push_back(std::move(u));
  }
  return out;
}

Status ServerStore::set_user_ban(const std::string& user, std::optional<std::int64_t> until,
                                 std::int64_t now_ms) {
  // A user never seen is recorded, so that the ban holds at their first connection.
  return run_once(
      "INSERT INTO users (name, first_seen, last_seen, banned_until) VALUES (?1, ?2, ?2, ?3) "
      "ON CONFLICT (name) DO UPDATE SET banned_until = excluded.banned_until",
      [&](store::Statement& q) {
        q.bind(1, user).bind(2, now_ms);
        if (until) {
          q.bind(3, *until);
        } else {
          q.bind_null(3);
        }
      });
}

Result<std::vector<StoredBan>> ServerStore::bans() {
  auto stmt = db_.prepare(
      "SELECT c.name, b.user, b.until FROM bans b JOIN channels c ON c.id = b.channel_id "
      "ORDER BY c.name, b.user");
  if (!stmt) return internal("bans", stmt.status());
  std::vector<StoredBan> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return internal("bans", row.status());
    if (!*row) break;
    out.push_back({stmt->column_text(0), stmt->column_text(1), stmt->column_int(2)});
  }
  return out;
}

Result<std::vector<StoredPin>> ServerStore::pins() {
  auto stmt = db_.prepare(
      "SELECT c.name, p.seq FROM pins p JOIN channels c ON c.id = p.channel_id "
      "ORDER BY c.name, p.seq");
  if (!stmt) return internal("pins", stmt.status());
  std::vector<StoredPin> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return internal("pins", row.status());
    if (!*row) break;
    out.push_back({stmt->column_text(0), static_cast<std::uint64_t>(stmt->column_int(1))});
  }
  return out;
}

}  // namespace parley::server
