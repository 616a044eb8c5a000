#include "store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <limits>
#include <string_view>

#include "checkpointer.hpp"

namespace parley::server {
namespace {

// Migration N takes user_version N to N + 1. Append; never edit a shipped one.
constexpr std::array<std::string_view, ServerStore::kSchemaVersion> kMigrations = {
    R"sql(
CREATE TABLE users (
  name       TEXT PRIMARY KEY,
  first_seen INTEGER NOT NULL,
  last_seen  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE channels (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  creator    TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seq   INTEGER NOT NULL
);

CREATE TABLE members (
  channel_id INTEGER NOT NULL REFERENCES channels(id),
  user       TEXT NOT NULL,
  joined_seq INTEGER NOT NULL,
  PRIMARY KEY (channel_id, user)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members(user);

CREATE TABLE events (
  channel_id INTEGER NOT NULL REFERENCES channels(id),
  seq        INTEGER NOT NULL,
  kind       TEXT NOT NULL CHECK (kind IN ('create', 'join', 'leave', 'message')),
  sender     TEXT NOT NULL,
  client_id  TEXT,
  text       TEXT,
  ts         INTEGER NOT NULL,
  PRIMARY KEY (channel_id, seq)
) WITHOUT ROWID;
-- Deduplication of sends: NULL client ids (membership events) never collide.
CREATE UNIQUE INDEX events_by_client_id ON events(sender, client_id);
)sql",
    // 2: receipt cursors (issue 3). device is '' for read cursors, which are per user.
    R"sql(
CREATE TABLE receipts (
  channel_id INTEGER NOT NULL REFERENCES channels(id),
  user       TEXT NOT NULL,
  device     TEXT NOT NULL,
  kind       TEXT NOT NULL CHECK (kind IN ('delivered', 'read')),
  seq        INTEGER NOT NULL CHECK (seq > 0),
  PRIMARY KEY (channel_id, kind, user, device)
) WITHOUT ROWID;
)sql",
    // 3: group channels (issue 6): kinds, metadata, roles, mutes, bans, pins,
    // reports, deletion, server-wide bans. The events table is rebuilt
    // because its CHECK on kind cannot be altered.
    R"sql(
CREATE TABLE events_v3 (
  channel_id   INTEGER NOT NULL REFERENCES channels(id),
  seq          INTEGER NOT NULL,
  kind         TEXT NOT NULL,
  sender       TEXT NOT NULL,
  client_id    TEXT,
  text         TEXT,
  ts           INTEGER NOT NULL,
  deleted      INTEGER NOT NULL DEFAULT 0,
  target       TEXT,
  role         TEXT,
  until        INTEGER,
  ref          INTEGER,
  channel_kind TEXT,
  m_name       TEXT,
  m_topic      TEXT,
  m_description TEXT,
  m_avatar     TEXT,
  m_data       TEXT,
  PRIMARY KEY (channel_id, seq)
) WITHOUT ROWID;
INSERT INTO events_v3 (channel_id, seq, kind, sender, client_id, text, ts)
  SELECT channel_id, seq, kind, sender, client_id, text, ts FROM events;
DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;
CREATE UNIQUE INDEX events_by_client_id ON events(sender, client_id);
UPDATE events SET channel_kind = 'public' WHERE kind = 'create';

ALTER TABLE channels ADD COLUMN kind TEXT NOT NULL DEFAULT 'public';
ALTER TABLE channels ADD COLUMN name_shown TEXT NOT NULL DEFAULT '';
ALTER TABLE channels ADD COLUMN topic TEXT NOT NULL DEFAULT '';
ALTER TABLE channels ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE channels ADD COLUMN avatar TEXT NOT NULL DEFAULT '';
ALTER TABLE channels ADD COLUMN data TEXT NOT NULL DEFAULT '';
ALTER TABLE channels ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;

ALTER TABLE members ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
ALTER TABLE members ADD COLUMN muted_until INTEGER;
UPDATE members SET role = 'owner' WHERE EXISTS (
  SELECT 1 FROM channels c WHERE c.id = members.channel_id AND c.creator = members.user);

CREATE TABLE bans (
  channel_id INTEGER NOT NULL REFERENCES channels(id),
  user       TEXT NOT NULL,
  until      INTEGER NOT NULL,
  banned_by  TEXT NOT NULL,
  ts         INTEGER NOT NULL,
  PRIMARY KEY (channel_id, user)
) WITHOUT ROWID;
CREATE TABLE pins (
  channel_id INTEGER NOT NULL REFERENCES channels(id),
  seq        INTEGER NOT NULL,
  PRIMARY KEY (channel_id, seq)
) WITHOUT ROWID;
CREATE TABLE reports (
  id         INTEGER PRIMARY KEY,
  channel_id INTEGER NOT NULL REFERENCES channels(id),
  seq        INTEGER NOT NULL,
  reporter   TEXT NOT NULL,
  reason     TEXT NOT NULL,
  ts         INTEGER NOT NULL
);
ALTER TABLE users ADD COLUMN banned_until INTEGER;
)sql",
    // 4: notifications (issue 7): levels per user and channel, and who each
    // message mentions ('@channel' once for everyone; '@here' expanded to the
    // members online when it was sent).
    R"sql(
CREATE TABLE notify_settings (
  channel_id INTEGER NOT NULL REFERENCES channels(id),
  user       TEXT NOT NULL,
  level      TEXT NOT NULL CHECK (level IN ('all', 'mentions', 'none')),
  mute_until INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (channel_id, user)
) WITHOUT ROWID;
CREATE TABLE mentions (
  channel_id INTEGER NOT NULL REFERENCES channels(id),
  user       TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  PRIMARY KEY (channel_id, user, seq)
) WITHOUT ROWID;
)sql",
    // 5: restrictions outlive the membership: a read-only or muted member who
    // leaves (or is removed or banned) gets them back on joining again.
    R"sql(
CREATE TABLE restrictions (
  channel_id  INTEGER NOT NULL REFERENCES channels(id),
  user        TEXT NOT NULL,
  role        TEXT NOT NULL,
  muted_until INTEGER,
  PRIMARY KEY (channel_id, user)
) WITHOUT ROWID;
)sql",
    // 6: presence settings and last seen (issue 8, docs/presence.md). One row
    // per user who changed a setting or was seen online.
    R"sql(
CREATE TABLE presence (
  user           TEXT PRIMARY KEY,
  status         TEXT NOT NULL CHECK (status IN ('online', 'away', 'invisible')),
  text           TEXT NOT NULL,
  text_until     INTEGER NOT NULL,
  hide_last_seen INTEGER NOT NULL,
  last_seen      INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
    // 7: end-to-end encrypted direct messages (issue 9, docs/server.md "End-to-end
    // encryption"). Keys are kept as the base64 the device sent. A message's
    // e2e column holds the JSON of its payload (text is NULL then).
    R"sql(
CREATE TABLE device_keys (
  user     TEXT NOT NULL,
  device   TEXT NOT NULL,
  identity TEXT NOT NULL,
  spk_id   INTEGER NOT NULL,
  spk_key  TEXT NOT NULL,
  spk_sig  TEXT NOT NULL,
  lr_id    INTEGER NOT NULL,
  lr_key   TEXT NOT NULL,
  lr_sig   TEXT NOT NULL,
  updated  INTEGER NOT NULL,
  PRIMARY KEY (user, device)
) WITHOUT ROWID;
CREATE TABLE one_time_prekeys (
  user   TEXT NOT NULL,
  device TEXT NOT NULL,
  id     INTEGER NOT NULL,
  key    TEXT NOT NULL,
  PRIMARY KEY (user, device, id)
) WITHOUT ROWID;
ALTER TABLE events ADD COLUMN e2e TEXT;
)sql",
    // 8: several devices, blocks, session recovery and verifiable reports
    // (issue 10, docs/e2e.md "Devices"). A removed device id is refused for
    // good. Notices wait per target device until acknowledged; nid never
    // repeats (AUTOINCREMENT). The franking key is hex in server_secrets.
    R"sql(
CREATE TABLE removed_devices (
  user       TEXT NOT NULL,
  device     TEXT NOT NULL,
  removed_at INTEGER NOT NULL,
  PRIMARY KEY (user, device)
) WITHOUT ROWID;
CREATE TABLE blocks (
  user    TEXT NOT NULL,
  blocked TEXT NOT NULL,
  ts      INTEGER NOT NULL,
  PRIMARY KEY (user, blocked)
) WITHOUT ROWID;
CREATE TABLE e2e_notices (
  nid         INTEGER PRIMARY KEY AUTOINCREMENT,
  user        TEXT NOT NULL,
  device      TEXT NOT NULL,
  kind        TEXT NOT NULL CHECK (kind IN ('retry', 'resend')),
  channel_id  INTEGER NOT NULL REFERENCES channels(id),
  seq         INTEGER NOT NULL,
  client_id   TEXT NOT NULL,
  from_user   TEXT NOT NULL,
  from_device TEXT NOT NULL,
  ts          INTEGER NOT NULL,
  e2e         TEXT,
  created     INTEGER NOT NULL
);
CREATE INDEX e2e_notices_by_device ON e2e_notices(user, device, nid);
CREATE INDEX e2e_notices_by_created ON e2e_notices(created);
CREATE TABLE e2e_retries (
  channel_id INTEGER NOT NULL REFERENCES channels(id),
  seq        INTEGER NOT NULL,
  user       TEXT NOT NULL,
  device     TEXT NOT NULL,
  resent     INTEGER NOT NULL DEFAULT 0,
  created    INTEGER NOT NULL,
  PRIMARY KEY (channel_id, seq, user, device)
) WITHOUT ROWID;
CREATE INDEX e2e_retries_by_created ON e2e_retries(created);
CREATE TABLE server_secrets (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
ALTER TABLE reports ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE reports ADD COLUMN sender TEXT;
ALTER TABLE reports ADD COLUMN text TEXT;
)sql",
    // 9: review fixes of issue 10. Each retry row counts the retries of its
    // device for its message (kMaxRetryRounds); a row already there stands
    // for at least one.
    R"sql(
ALTER TABLE e2e_retries ADD COLUMN rounds INTEGER NOT NULL DEFAULT 1;
)sql",
    // 10: collaborative documents (docs/collab.md, "On the server"). A
    // document is its latest snapshot plus the updates stored after it.
    R"sql(
CREATE TABLE docs (
  id         INTEGER PRIMARY KEY,
  channel_id INTEGER NOT NULL REFERENCES channels (id),
  title      TEXT NOT NULL,
  kind       TEXT NOT NULL,
  creator    TEXT NOT NULL,
  created    INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  snapshot   BLOB,
  snapshot_n INTEGER NOT NULL DEFAULT 0,
  last_n     INTEGER NOT NULL DEFAULT 0,
  size       INTEGER NOT NULL DEFAULT 0,
  version    INTEGER NOT NULL DEFAULT 0,
  UNIQUE (channel_id, title)
);
CREATE TABLE doc_updates (
  doc_id INTEGER NOT NULL REFERENCES docs (id),
  n      INTEGER NOT NULL,
  data   BLOB NOT NULL,
  user   TEXT NOT NULL,
  ts     INTEGER NOT NULL,
  PRIMARY KEY (doc_id, n)
) WITHOUT ROWID;
)sql",
};

constexpr std::int64_t kMaxSeq = std::numeric_limits<std::int64_t>::max();

std::int64_t clamp_seq(std::uint64_t seq) {
  return static_cast<std::int64_t>(std::min<std::uint64_t>(seq, kMaxSeq));
}

std::optional<EventKind> parse_kind(std::string_view kind) {
  EventKind k;
  if (!parse_event_kind(kind, &k)) return std::nullopt;
  return k;
}

// The columns history reads, from seq on (read_event_columns's order).
constexpr std::string_view kEventColumns =
    "seq, kind, sender, client_id, text, ts, deleted, target, role, until, ref, channel_kind, "
    "m_name, m_topic, m_description, m_avatar, m_data, e2e";

std::optional<std::string> optional_text(const store::Statement& stmt, int column) {
  if (stmt.column_is_null(column)) return std::nullopt;
  return stmt.column_text(column);
}

// Resets a statement when leaving scope, so it can run again.
class ResetOnExit {
 public:
  explicit ResetOnExit(store::Statement& stmt) : stmt_(stmt) {}
  ~ResetOnExit() { stmt_.reset(); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  store::Statement& stmt_;
};

Status refused(StatusCode code, std::string message, const char* reason) {
  return Status(code, std::move(message), reason);
}

// next_seq's refusal passes through; anything else is an internal failure.
Status seq_failure(const Status& status) {
  if (status.reason() == "no_such_channel") return status;
  return Status(status.code(), fmt::format("next seq: {}", status.message()), "internal");
}

}  // namespace

ServerStore::~ServerStore() = default;

Result<std::unique_ptr<ServerStore>> ServerStore::open(const std::string& path, bool full_sync) {
  auto db = store::Database::open(path);
  if (!db) return db.status();
  std::unique_ptr<ServerStore> store(new ServerStore());
  store->db_ = std::move(*db);
  // journal_mode is the first statement that reads the file, so it is where a
  // file that is not a database shows.
  if (Status s = store->db_.exec("PRAGMA journal_mode = WAL"); !s.ok()) {
    return Status(s.code(), fmt::format("database \"{}\": {}", path, s.message()));
  }
  if (Status s = store->db_.exec(full_sync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
      !s.ok()) {
    return s;
  }
  if (Status s = store->migrate(); !s.ok()) {
    return Status(s.code(), fmt::format("database \"{}\": {}", path, s.message()));
  }
  if (Status s = store->prepare_statements(); !s.ok()) return s;
  if (!path.empty() && path != ":memory:") {
    auto checkpointer = Checkpointer::start(path, store->db_.handle(), full_sync);
    if (!checkpointer) return checkpointer.status();
    store->checkpointer_ = std::move(*checkpointer);
  }
  return store;
}

Status ServerStore::migrate() {
  auto version = db_.user_version();
  if (!version) return version.status();
  if (*version < 0) {
    return Status(StatusCode::corrupt,
                  fmt::format("schema version {} is not one this server ever wrote", *version));
  }
  if (*version > kSchemaVersion) {
    return Status(
        StatusCode::io_error,
        fmt::format("schema version {} is newer than this server's {}", *version, kSchemaVersion));
  }
  for (int v = *version; v < kSchemaVersion; ++v) {
    store::Transaction tx(db_);
    if (!tx.begin_status().ok()) return tx.begin_status();
    if (Status s = db_.exec(kMigrations[static_cast<std::size_t>(v)]); !s.ok()) {
      return Status(s.code(), fmt::format("migration to version {}: {}", v + 1, s.message()));
    }
    if (Status s = db_.set_user_version(v + 1); !s.ok()) return s;
    if (Status s = tx.commit(); !s.ok()) return s;
  }
  return Status();
}

Status ServerStore::prepare_statements() {
  struct Entry {
    store::Statement* stmt;
    std::string sql;
  };
  const Entry entries[] = {
      {&touch_user_,
       "INSERT INTO users (name, first_seen, last_seen) VALUES (?1, ?2, ?2) "
       "ON CONFLICT (name) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)"},
      {&insert_channel_,
       "INSERT INTO channels (name, creator, created_at, last_seq) VALUES (?1, ?2, ?3, 0)"},
      {&next_seq_,
       "UPDATE channels SET last_seq = last_seq + 1 WHERE name = ?1 RETURNING id, last_seq"},
      {&insert_event_,
       "INSERT INTO events (channel_id, seq, kind, sender, client_id, text, ts, target, role, "
       "until, ref, channel_kind, m_name, m_topic, m_description, m_avatar, m_data, e2e) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
       "?18)"},
      {&insert_member_,
       "INSERT INTO members (channel_id, user, joined_seq, role) VALUES (?1, ?2, ?3, ?4)"},
      {&delete_member_, "DELETE FROM members WHERE channel_id = ?1 AND user = ?2"},
      {&is_member_, "SELECT 1 FROM members WHERE channel_id = ?1 AND user = ?2"},
      {&find_message_,
       "SELECT c.name, e.seq, e.kind, e.sender, e.client_id, e.text, e.ts "
       "FROM events e JOIN channels c ON c.id = e.channel_id "
       "WHERE e.sender = ?1 AND e.client_id = ?2"},
      {&history_asc_,
       fmt::format("SELECT {} FROM events "
                   "WHERE channel_id = (SELECT id FROM channels WHERE name = ?1) "
                   "AND seq > ?2 AND seq < ?3 ORDER BY seq ASC LIMIT ?4",
                   kEventColumns)},
      {&history_desc_,
       fmt::format("SELECT {} FROM events "
                   "WHERE channel_id = (SELECT id FROM channels WHERE name = ?1) "
                   "AND seq > ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4",
                   kEventColumns)},
      {&channels_,
       "SELECT name, last_seq, kind, name_shown, topic, description, avatar, data, deleted "
       "FROM channels ORDER BY name"},
      {&memberships_,
       "SELECT c.name, m.user, m.role, m.muted_until FROM members m "
       "JOIN channels c ON c.id = m.channel_id ORDER BY c.name, m.user"},
      {&channel_state_, "SELECT id, last_seq FROM channels WHERE name = ?1"},
      // Monotonic: the update runs only for a higher seq, so changes() tells
      // whether the cursor moved.
      {&raise_receipt_,
       "INSERT INTO receipts (channel_id, user, device, kind, seq) VALUES (?1, ?2, ?3, ?4, ?5) "
       "ON CONFLICT (channel_id, kind, user, device) DO UPDATE SET seq = excluded.seq "
       "WHERE excluded.seq > receipts.seq"},
      {&receipt_,
       "SELECT seq FROM receipts "
       "WHERE channel_id = ?1 AND kind = ?2 AND user = ?3 AND device = ?4"},
      {&receipts_,
       "SELECT r.user, r.device, r.kind, r.seq FROM receipts r "
       "WHERE r.channel_id = (SELECT id FROM channels WHERE name = ?1) "
       "ORDER BY r.kind, r.user, r.device"},
  };
  for (const Entry& e : entries) {
    auto stmt = db_.prepare(e.sql);
    if (!stmt) return stmt.status();
    *e.stmt = std::move(*stmt);
  }
  return Status();
}

Status ServerStore::failure(std::string_view what, const Status& status) {
  return Status(status.code(), fmt::format("{}: {}", what, status.message()), "internal");
}

Status ServerStore::touch_user(const std::string& user, std::int64_t now_ms) {
  ResetOnExit reset(touch_user_);
  return touch_user_.bind(1, user).bind(2, now_ms).run();
}

Result<std::pair<std::int64_t, std::uint64_t>> ServerStore::next_seq(const std::string& channel) {
  ResetOnExit reset(next_seq_);
  auto row = next_seq_.bind(1, channel).step();
  if (!row) return row.status();
  if (!*row) {
    return refused(StatusCode::not_found, fmt::format("channel \"{}\" does not exist", channel),
                   "no_such_channel");
  }
  return std::pair{next_seq_.column_int(0), static_cast<std::uint64_t>(next_seq_.column_int(1))};
}

Status ServerStore::insert_event(std::int64_t channel_id, const StoredEvent& event) {
  ResetOnExit reset(insert_event_);
  insert_event_.bind(1, channel_id)
      .bind(2, event.seq)
      .bind(3, to_string(event.kind))
      .bind(4, event.sender)
      .bind(7, event.ts);
  // Unbound parameters are NULL.
  if (event.kind == EventKind::message) {
    insert_event_.bind(5, event.client_id);
    if (event.e2e.empty()) {
      insert_event_.bind(6, event.text);
    } else {
      insert_event_.bind(18, event.e2e);  // text stays NULL: the server never has it
    }
  } else if (event.kind == EventKind::system || event.kind == EventKind::doc) {
    insert_event_.bind(6, event.text);  // doc: the document's title
  }
  if (!event.target.empty()) insert_event_.bind(8, event.target);
  if (!event.role.empty()) insert_event_.bind(9, event.role);
  if (event.kind == EventKind::ban || event.kind == EventKind::mute) insert_event_.bind(10, event.until);
  if (event.ref != 0) insert_event_.bind(11, event.ref);
  if (!event.channel_kind.empty()) insert_event_.bind(12, event.channel_kind);
  const std::optional<std::string>* meta[] = {&event.meta.name, &event.meta.topic,
                                              &event.meta.description, &event.meta.avatar_url,
                                              &event.meta.data};
  for (int i = 0; i < 5; ++i) {
    if (*meta[i]) insert_event_.bind(13 + i, **meta[i]);
  }
  Status s = insert_event_.run();
  if (!s.ok() && sqlite3_extended_errcode(db_.handle()) == SQLITE_CONSTRAINT_UNIQUE) {
    return refused(
        StatusCode::already_exists,
        fmt::format("message \"{}\" of \"{}\" is already stored", event.client_id, event.sender),
        "duplicate");
  }
  return s;
}

Result<bool> ServerStore::is_member(std::int64_t channel_id, const std::string& user) {
  ResetOnExit reset(is_member_);
  return is_member_.bind(1, channel_id).bind(2, user).step();
}

Result<StoredEvent> ServerStore::create_channel(const std::string& channel,
                                                const std::string& creator, std::int64_t ts,
                                                ChannelKind kind, const ChannelMeta& meta) {
  store::Transaction tx(db_);
  if (!tx.begin_status().ok()) return failure("create channel", tx.begin_status());
  {
    ResetOnExit reset(insert_channel_);
    Status s = insert_channel_.bind(1, channel).bind(2, creator).bind(3, ts).run();
    if (!s.ok()) {
      if (sqlite3_extended_errcode(db_.handle()) == SQLITE_CONSTRAINT_UNIQUE) {
        return refused(StatusCode::already_exists,
                       fmt::format("channel \"{}\" already exists", channel), "channel_exists");
      }
      return failure("create channel", s);
    }
  }
  auto seq = next_seq(channel);
  if (!seq) return failure("create channel", seq.status());
  StoredEvent event;
  event.channel = channel;
  event.seq = seq->second;
  event.kind = EventKind::create;
  event.sender = creator;
  event.ts = ts;
  event.channel_kind = to_string(kind);
  event.meta = meta;
  if (Status s = run_once("UPDATE channels SET kind = ?2 WHERE id = ?1",
                          [&](store::Statement& q) { q.bind(1, seq->first).bind(2, to_string(kind)); });
      !s.ok()) {
    return failure("create channel", s);
  }
  if (Status s = put_meta(seq->first, meta); !s.ok()) return failure("create channel", s);
  if (Status s = insert_event(seq->first, event); !s.ok()) return failure("create channel", s);
  {
    ResetOnExit reset(insert_member_);
    Status s = insert_member_.bind(1, seq->first)
                   .bind(2, creator)
                   .bind(3, event.seq)
                   .bind(4, to_string(Role::owner))
                   .run();
    if (!s.ok()) return failure("create channel", s);
  }
  if (Status s = tx.commit(); !s.ok()) return failure("create channel", s);
  return event;
}

Result<StoredEvent> ServerStore::join(const std::string& channel, const std::string& user,
                                      std::int64_t ts) {
  store::Transaction tx(db_);
  if (!tx.begin_status().ok()) return failure("join", tx.begin_status());
  auto seq = next_seq(channel);
  if (!seq) return seq_failure(seq.status());
  StoredEvent event;
  event.channel = channel;
  event.seq = seq->second;
  event.kind = EventKind::join;
  event.sender = user;
  event.ts = ts;
  {
    ResetOnExit reset(insert_member_);
    Status s = insert_member_.bind(1, seq->first)
                   .bind(2, user)
                   .bind(3, event.seq)
                   .bind(4, to_string(Role::member))
                   .run();
    if (!s.ok()) {
      if ((sqlite3_extended_errcode(db_.handle()) & 0xff) == SQLITE_CONSTRAINT) {
        return refused(StatusCode::already_exists,
                       fmt::format("\"{}\" is already a member of \"{}\"", user, channel),
                       "already_member");
      }
      return failure("join", s);
    }
  }
  if (Status s = insert_event(seq->first, event); !s.ok()) return failure("join", s);
  if (Status s = tx.commit(); !s.ok()) return failure("join", s);
  return event;
}

Result<StoredEvent> ServerStore::leave(const std::string& channel, const std::string& user,
                                       std::int64_t ts) {
  store::Transaction tx(db_);
  if (!tx.begin_status().ok()) return failure("leave", tx.begin_status());
  auto seq = next_seq(channel);
  if (!seq) return seq_failure(seq.status());
  {
    ResetOnExit reset(delete_member_);
    Status s = delete_member_.bind(1, seq->first).bind(2, user).run();
    if (!s.ok()) return failure("leave", s);
    if (db_.changes() == 0) {
      return refused(StatusCode::forbidden,
                     fmt::format("\"{}\" is not a member of \"{}\"", user, channel), "not_member");
    }
  }
  StoredEvent event;
  event.channel = channel;
  event.seq = seq->second;
  event.kind = EventKind::leave;
  event.sender = user;
  event.ts = ts;
  if (Status s = insert_event(seq->first, event); !s.ok()) return failure("leave", s);
  if (Status s = tx.commit(); !s.ok()) return failure("leave", s);
  return event;
}

Result<StoredEvent> ServerStore::append_message(const std::string& channel,
                                                const std::string& sender,
                                                const std::string& client_id,
                                                const std::string& text, std::int64_t ts,
                                                const std::string& e2e) {
  store::Transaction tx(db_);
  if (!tx.begin_status().ok()) return failure("send", tx.begin_status());
  auto seq = next_seq(channel);
  if (!seq) return seq_failure(seq.status());
  auto member = is_member(seq->first, sender);
  if (!member) return failure("send", member.status());
  if (!*member) {
    return refused(StatusCode::forbidden,
                   fmt::format("\"{}\" is not a member of \"{}\"", sender, channel), "not_member");
  }
  StoredEvent event;
  event.channel = channel;
  event.seq = seq->second;
  event.kind = EventKind::message;
  event.sender = sender;
  event.client_id = client_id;
  event.text = text;
  event.e2e = e2e;
  event.ts = ts;
  if (Status s = insert_event(seq->first, event); !s.ok()) {
    return s.reason() == "duplicate" ? s : failure("send", s);
  }
  if (Status s = tx.commit(); !s.ok()) return failure("send", s);
  return event;
}

Result<std::optional<StoredEvent>> ServerStore::find_message(const std::string& sender,
                                                             const std::string& client_id) {
  ResetOnExit reset(find_message_);
  auto row = find_message_.bind(1, sender).bind(2, client_id).step();
  if (!row) return failure("find message", row.status());
  if (!*row) return std::optional<StoredEvent>();
  StoredEvent event;
  event.channel = find_message_.column_text(0);
  event.seq = static_cast<std::uint64_t>(find_message_.column_int(1));
  event.kind = parse_kind(find_message_.column_text(2)).value_or(EventKind::message);
  event.sender = find_message_.column_text(3);
  event.client_id = find_message_.column_text(4);
  event.text = find_message_.column_text(5);
  event.ts = find_message_.column_int(6);
  return std::optional<StoredEvent>(std::move(event));
}

Result<StoredEvent> ServerStore::read_event(const store::Statement& stmt,
                                            const std::string& channel) {
  StoredEvent event;
  event.channel = channel;
  event.seq = static_cast<std::uint64_t>(stmt.column_int(0));
  auto kind = parse_kind(stmt.column_text(1));
  if (!kind) {
    return Status(StatusCode::corrupt, fmt::format("event {} of \"{}\" has unknown kind \"{}\"",
                                                   event.seq, channel, stmt.column_text(1)));
  }
  event.kind = *kind;
  event.sender = stmt.column_text(2);
  event.client_id = stmt.column_text(3);
  event.text = stmt.column_text(4);
  event.ts = stmt.column_int(5);
  event.deleted = stmt.column_int(6) != 0;
  event.target = stmt.column_text(7);
  event.role = stmt.column_text(8);
  event.until = stmt.column_int(9);
  event.ref = static_cast<std::uint64_t>(stmt.column_int(10));
  event.channel_kind = stmt.column_text(11);
  event.meta.name = optional_text(stmt, 12);
  event.meta.topic = optional_text(stmt, 13);
  event.meta.description = optional_text(stmt, 14);
  event.meta.avatar_url = optional_text(stmt, 15);
  event.meta.data = optional_text(stmt, 16);
  event.e2e = stmt.column_text(17);
  return event;
}

Result<std::vector<StoredEvent>> ServerStore::history(const std::string& channel,
                                                      std::optional<std::uint64_t> after,
                                                      std::optional<std::uint64_t> before,
                                                      std::uint32_t limit) {
  store::Statement& stmt = after ? history_asc_ : history_desc_;
  ResetOnExit reset(stmt);
  stmt.bind(1, channel)
      .bind(2, clamp_seq(after.value_or(0)))
      .bind(3, clamp_seq(before.value_or(static_cast<std::uint64_t>(kMaxSeq))))
      .bind(4, static_cast<std::int64_t>(limit));
  std::vector<StoredEvent> events;
  for (;;) {
    auto row = stmt.step();
    if (!row) return failure("history", row.status());
    if (!*row) break;
    auto event = read_event(stmt, channel);
    if (!event) return event.status();
    events.push_back(std::move(*event));
  }
  if (!after) std::reverse(events.begin(), events.end());
  return events;
}

Result<ReceiptAdvance> ServerStore::raise_receipt(const std::string& channel,
                                                  const std::string& user,
                                                  const std::string& device,
                                                  const std::string& kind, std::uint64_t seq) {
  if (kind != "delivered" && kind != "read") {
    return refused(StatusCode::invalid_argument,
                   fmt::format("receipt kind \"{}\" is not \"delivered\" or \"read\"", kind),
                   "invalid_kind");
  }
  store::Transaction tx(db_);
  if (!tx.begin_status().ok()) return failure("receipt", tx.begin_status());
  std::int64_t channel_id = 0;
  std::uint64_t last_seq = 0;
  {
    ResetOnExit reset(channel_state_);
    auto row = channel_state_.bind(1, channel).step();
    if (!row) return failure("receipt", row.status());
    if (!*row) {
      return refused(StatusCode::not_found, fmt::format("channel \"{}\" does not exist", channel),
                     "no_such_channel");
    }
    channel_id = channel_state_.column_int(0);
    last_seq = static_cast<std::uint64_t>(channel_state_.column_int(1));
  }
  auto member = is_member(channel_id, user);
  if (!member) return failure("receipt", member.status());
  if (!*member) {
    return refused(StatusCode::forbidden,
                   fmt::format("\"{}\" is not a member of \"{}\"", user, channel), "not_member");
  }
  if (seq < 1 || seq > last_seq) {
    return refused(
        StatusCode::invalid_argument,
        fmt::format("receipt seq {} of \"{}\" is not within 1-{}", seq, channel, last_seq),
        "invalid_seq");
  }
  ReceiptAdvance out{seq, false};
  {
    ResetOnExit reset(raise_receipt_);
    Status s = raise_receipt_.bind(1, channel_id)
                   .bind(2, user)
                   .bind(3, device)
                   .bind(4, kind)
                   .bind(5, seq)
                   .run();
    if (!s.ok()) return failure("receipt", s);
    out.advanced = db_.changes() > 0;
  }
  if (!out.advanced) {
    ResetOnExit reset(receipt_);
    auto row = receipt_.bind(1, channel_id).bind(2, kind).bind(3, user).bind(4, device).step();
    if (!row) return failure("receipt", row.status());
    if (*row) out.seq = static_cast<std::uint64_t>(receipt_.column_int(0));
  }
  if (Status s = tx.commit(); !s.ok()) return failure("receipt", s);
  return out;
}

Result<std::vector<StoredReceipt>> ServerStore::receipts(const std::string& channel) {
  ResetOnExit reset(receipts_);
  receipts_.bind(1, channel);
  std::vector<StoredReceipt> out;
  for (;;) {
    auto row = receipts_.step();
    if (!row) return failure("receipts", row.status());
    if (!*row) break;
    out.push_back({receipts_.column_text(0), receipts_.column_text(1), receipts_.column_text(2),
                   static_cast<std::uint64_t>(receipts_.column_int(3))});
  }
  return out;
}

Result<std::vector<StoredChannel>> ServerStore::channels() {
  ResetOnExit reset(channels_);
  std::vector<StoredChannel> out;
  for (;;) {
    auto row = channels_.step();
    if (!row) return row.status();
    if (!*row) break;
    StoredChannel c;
    c.name = channels_.column_text(0);
    c.last_seq = static_cast<std::uint64_t>(channels_.column_int(1));
    if (!parse_channel_kind(channels_.column_text(2), &c.kind)) {
      return Status(StatusCode::corrupt, fmt::format("channel \"{}\" has unknown kind \"{}\"",
                                                     c.name, channels_.column_text(2)));
    }
    c.meta = ChannelMeta{channels_.column_text(3), channels_.column_text(4),
                         channels_.column_text(5), channels_.column_text(6),
                         channels_.column_text(7)};
    c.deleted = channels_.column_int(8) != 0;
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::vector<StoredMembership>> ServerStore::memberships() {
  ResetOnExit reset(memberships_);
  std::vector<StoredMembership> out;
  for (;;) {
    auto row = memberships_.step();
    if (!row) return row.status();
    if (!*row) break;
    StoredMembership m;
    m.channel = memberships_.column_text(0);
    m.user = memberships_.column_text(1);
    if (!parse_role(memberships_.column_text(2), &m.role)) {
      return Status(StatusCode::corrupt,
                    fmt::format("member \"{}\" of \"{}\" has unknown role \"{}\"", m.user,
                                m.channel, memberships_.column_text(2)));
    }
    if (!memberships_.column_is_null(3)) m.muted_until = memberships_.column_int(3);
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace parley::server
