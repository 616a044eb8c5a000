// The client cache on SQLite: two files in DATA_DIR.
//
// parley.db, the cache proper (it can be rebuilt from the server):
// - meta(key, value): 'user' (the owner, fixed at first open).
// - channels(name, member, last_seq, read_to, my_read, my_read_sent): a row
//   is created by whichever call first mentions a channel; rows created
//   implicitly (by store_events, advance_cursor, outbox_acknowledge) start
//   with member = 1, since the client only receives events and acks for
//   channels it is in.
// - messages(channel, seq, ...): every channel event, keyed by (channel, seq).
// - message_runs(channel, lo, hi): the stored seqs of each channel as maximal
//   runs of consecutive numbers, kept in the same transaction as messages.
//   It makes contiguous_down_from / contiguous_up_from one index lookup each,
//   however long the channel (a count over messages would read every row of
//   the run). Eviction (cache_budget.cpp) trims runs as it deletes.
// - receipts, members (cache_receipts.cpp).
// - Since schema 4, group channels: channels.kind, role, muted_until, meta;
//   members.role, muted_until; messages.deleted and the fields of the new
//   event kinds (cache_channels.cpp).
// - Since schema 5, notifications: channels.unread, mentions, notify_level,
//   mute_until (cache_notify.cpp).
//
// outbox.db, what must never be lost (schema of its own, kOutboxMigrations):
// - meta(key, value): 'user', 'device_id', and 'cache_corrupt' while parley.db
//   is known to be damaged.
// - outbox(ord, id, channel, text, created_ms, state, error): our messages not
//   yet acknowledged ('pending') or refused for good ('failed'); `ord` keeps
//   insertion order (AUTOINCREMENT: never reused, even after deletes).
// Until schema 3 the outbox lived in parley.db; migration 3 moves its rows.
#include "store/cache.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <system_error>
#include <utility>

#include "store/cache_rep.hpp"

namespace parley::store {
namespace {

// ---- schema ---------------------------------------------------------------

// Migration N (1-based) brings parley.db's user_version from N-1 to N. Append
// only; never edit a step that has shipped.
constexpr const char* kMigrations[] = {
    // 1: the initial schema.
    R"sql(
CREATE TABLE meta(
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE channels(
  name     TEXT PRIMARY KEY,
  member   INTEGER NOT NULL DEFAULT 1,
  last_seq INTEGER NOT NULL DEFAULT 0,
  read_to  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE messages(
  channel   TEXT NOT NULL REFERENCES channels(name) ON DELETE CASCADE,
  seq       INTEGER NOT NULL,
  kind      TEXT NOT NULL,
  sender    TEXT NOT NULL,
  client_id TEXT NOT NULL DEFAULT '',
  text      TEXT NOT NULL DEFAULT '',
  ts        INTEGER NOT NULL,
  PRIMARY KEY(channel, seq)
) WITHOUT ROWID;
-- latest_messages skips non-message events without scanning them.
CREATE INDEX messages_by_kind ON messages(channel, kind, seq);
CREATE TABLE message_runs(
  channel TEXT NOT NULL REFERENCES channels(name) ON DELETE CASCADE,
  lo      INTEGER NOT NULL,
  hi      INTEGER NOT NULL,
  PRIMARY KEY(channel, lo)
) WITHOUT ROWID;
CREATE TABLE outbox(
  ord        INTEGER PRIMARY KEY AUTOINCREMENT,
  id         TEXT NOT NULL UNIQUE,
  channel    TEXT NOT NULL,
  text       TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  state      TEXT NOT NULL DEFAULT 'pending' CHECK(state IN ('pending', 'failed')),
  error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_by_state ON outbox(state, ord);
)sql",
    // 2: receipts (issue 3): the user's own read cursor, others' cursors, members.
    R"sql(
ALTER TABLE channels ADD COLUMN my_read INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN my_read_sent INTEGER NOT NULL DEFAULT 0;
CREATE TABLE receipts(
  channel TEXT NOT NULL,
  user    TEXT NOT NULL,
  device  TEXT NOT NULL DEFAULT '',
  kind    TEXT NOT NULL CHECK(kind IN ('delivered', 'read')),
  seq     INTEGER NOT NULL,
  PRIMARY KEY(channel, user, device, kind)
) WITHOUT ROWID;
CREATE TABLE members(
  channel TEXT NOT NULL,
  user    TEXT NOT NULL,
  PRIMARY KEY(channel, user)
) WITHOUT ROWID;
)sql",
    // 3: the outbox moves to outbox.db (issue 5), so that a damaged cache can
    // be rebuilt without it. Its rows are copied (and committed) there first:
    // see move_outbox_out().
    R"sql(
DROP TABLE IF EXISTS outbox;
)sql",
    // 4: group channels (issue 6): the channel's kind, this user's role and
    // mute, the metadata (a JSON object, cache_channels.cpp); members' roles
    // and mutes; and the fields of the new event kinds, with a deleted flag.
    // NULL mutes mean not muted; '' kinds and roles mean not known yet.
    R"sql(
ALTER TABLE channels ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE channels ADD COLUMN role TEXT NOT NULL DEFAULT '';
ALTER TABLE channels ADD COLUMN muted_until INTEGER;
ALTER TABLE channels ADD COLUMN meta TEXT NOT NULL DEFAULT '{}';
ALTER TABLE members ADD COLUMN role TEXT NOT NULL DEFAULT '';
ALTER TABLE members ADD COLUMN muted_until INTEGER;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN target TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN role TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN until_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN ref INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN channel_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN meta TEXT;
)sql",
    // 5: notifications (issue 7): this user's unread and mention counts per
    // channel as the server last pushed them, and the notification level
    // ('all', 'mentions', 'none') with its mute (ms since the epoch, 0: none).
    R"sql(
ALTER TABLE channels ADD COLUMN unread INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN mentions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN notify_level TEXT NOT NULL DEFAULT 'all';
ALTER TABLE channels ADD COLUMN mute_until INTEGER NOT NULL DEFAULT 0;
)sql",
    // 6: end-to-end encrypted DMs (issue 9, cache_e2e.cpp): messages.e2e (1:
    // decrypted here, 2: could not be decrypted, e2e_error says why); the
    // Double Ratchet sessions with other devices, committed with the messages
    // they decrypt; the devices of contacts with their identities; verified
    // contacts; and the encrypted form of outbox messages, kept until acked.
    R"sql(
ALTER TABLE messages ADD COLUMN e2e INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN e2e_error TEXT NOT NULL DEFAULT '';
CREATE TABLE e2e_sessions(
  user           TEXT NOT NULL,
  device         TEXT NOT NULL,
  state          BLOB NOT NULL,
  base_key       BLOB NOT NULL,
  pending_prekey TEXT,
  updated_ms     INTEGER NOT NULL,
  PRIMARY KEY(user, device)
) WITHOUT ROWID;
CREATE TABLE e2e_devices(
  user      TEXT NOT NULL,
  device    TEXT NOT NULL,
  identity  BLOB NOT NULL,
  seen_ms   INTEGER NOT NULL,
  PRIMARY KEY(user, device)
) WITHOUT ROWID;
CREATE TABLE e2e_verified(
  user   TEXT PRIMARY KEY,
  digest TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE e2e_outgoing(
  id      TEXT PRIMARY KEY,
  payload TEXT NOT NULL
) WITHOUT ROWID;
)sql",
    // 7: the session before the current one with each device (two devices
    // that started sessions with each other at once settle on one), and the
    // ids of end-to-end messages, to refuse one the server sends again under
    // another seq.
    R"sql(
ALTER TABLE e2e_sessions ADD COLUMN previous_state BLOB;
ALTER TABLE e2e_sessions ADD COLUMN previous_base_key BLOB;
CREATE INDEX messages_e2e_by_id ON messages(channel, client_id) WHERE e2e != 0;
)sql",
    // 8: several devices (issue 10): what a recipient needs to report a
    // direct message it decrypted (message franking: the sender's device,
    // the franking key from the plaintext, the commitment and the server's
    // tag); the users whose whole device list this device has fetched
    // (after the first list, a device added to it is news); and to which
    // device identities this device sealed each of its messages (a message
    // is sent again only to one of those).
    R"sql(
CREATE TABLE e2e_franking(
  channel TEXT NOT NULL,
  seq     INTEGER NOT NULL,
  device  TEXT NOT NULL,
  key     BLOB NOT NULL,
  commit_ BLOB NOT NULL,
  tag     BLOB NOT NULL,
  PRIMARY KEY(channel, seq)
) WITHOUT ROWID;
CREATE TABLE e2e_device_lists(
  user       TEXT PRIMARY KEY,
  fetched_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE e2e_recipients(
  id         TEXT NOT NULL,
  user       TEXT NOT NULL,
  device     TEXT NOT NULL,
  identity   BLOB NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY(id, user, device)
) WITHOUT ROWID;
CREATE INDEX e2e_recipients_by_age ON e2e_recipients(created_ms);
)sql",
};
static_assert(std::size(kMigrations) == Cache::kSchemaVersion,
              "one migration step per schema version");

// outbox.db's own schema, keyed by its own user_version.
constexpr const char* kOutboxMigrations[] = {
    R"sql(
CREATE TABLE meta(
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE outbox(
  ord        INTEGER PRIMARY KEY AUTOINCREMENT,
  id         TEXT NOT NULL UNIQUE,
  channel    TEXT NOT NULL,
  text       TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  state      TEXT NOT NULL DEFAULT 'pending' CHECK(state IN ('pending', 'failed')),
  error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_by_state ON outbox(state, ord);
)sql",
    // 2: this device's end-to-end keys (issue 9, cache_e2e.cpp): its identity
    // and its prekeys (kind 'signed', 'one_time' or 'last_resort'), secrets
    // included. Kept here, with the outbox, because losing them loses every
    // session; sessions themselves live in parley.db with the messages.
    R"sql(
CREATE TABLE e2e_identity(
  id          INTEGER PRIMARY KEY CHECK(id = 1),
  sign_pub    BLOB NOT NULL,
  sign_secret BLOB NOT NULL,
  dh_pub      BLOB NOT NULL,
  dh_secret   BLOB NOT NULL,
  created_ms  INTEGER NOT NULL
);
CREATE TABLE e2e_prekeys(
  id         INTEGER PRIMARY KEY,
  kind       TEXT NOT NULL CHECK(kind IN ('signed', 'one_time', 'last_resort')),
  pub        BLOB NOT NULL,
  secret     BLOB NOT NULL,
  signature  BLOB,
  created_ms INTEGER NOT NULL
);
CREATE INDEX e2e_prekeys_by_kind ON e2e_prekeys(kind, id);
)sql",
    // 3: collaborative documents (issue 15, cache_docs.cpp). Here rather than
    // in parley.db because a document's replica holds this device's edits
    // until the server has them: never evicted, never lost with a rebuilt
    // parley.db. A document is its snapshot plus the updates applied since
    // (doc_log, compacted into the snapshot every so often); doc_outbox holds
    // the local updates the server has not acknowledged, oldest first.
    R"sql(
CREATE TABLE docs(
  channel    TEXT NOT NULL,
  title      TEXT NOT NULL,
  kind       TEXT NOT NULL,
  agent      INTEGER NOT NULL,
  snapshot   BLOB NOT NULL,
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY(channel, title)
);
CREATE TABLE doc_log(
  ord     INTEGER PRIMARY KEY AUTOINCREMENT,
  channel TEXT NOT NULL,
  title   TEXT NOT NULL,
  data    BLOB NOT NULL
);
CREATE INDEX doc_log_by_doc ON doc_log(channel, title, ord);
CREATE TABLE doc_outbox(
  ord        INTEGER PRIMARY KEY AUTOINCREMENT,
  channel    TEXT NOT NULL,
  title      TEXT NOT NULL,
  data       BLOB NOT NULL,
  mentions   TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL
);
CREATE INDEX doc_outbox_by_doc ON doc_outbox(channel, title, ord);
)sql",
};
static_assert(std::size(kOutboxMigrations) == Cache::kOutboxSchemaVersion,
              "one migration step per outbox schema version");

// ---- statements -------------------------------------------------------------

constexpr const char* kGetMeta = "SELECT value FROM meta WHERE key = ?1";
constexpr const char* kSetMeta =
    "INSERT INTO meta(key, value) VALUES(?1, ?2) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value";

constexpr const char* kUpsertChannel =
    "INSERT INTO channels(name, member, last_seq) VALUES(?1, ?2, ?3) "
    "ON CONFLICT(name) DO UPDATE SET member = excluded.member, "
    "last_seq = max(last_seq, excluded.last_seq)";
constexpr const char* kRaiseLastSeq =
    "INSERT INTO channels(name, member, last_seq) VALUES(?1, 1, ?2) "
    "ON CONFLICT(name) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)";
constexpr const char* kSetMember =
    "INSERT INTO channels(name, member) VALUES(?1, ?2) "
    "ON CONFLICT(name) DO UPDATE SET member = excluded.member";
constexpr const char* kAdvanceCursor =
    "INSERT INTO channels(name, member, read_to) VALUES(?1, 1, ?2) "
    "ON CONFLICT(name) DO UPDATE SET read_to = max(read_to, excluded.read_to)";
constexpr const char* kAllChannels =
    "SELECT name, member, last_seq, read_to FROM channels ORDER BY name";
constexpr const char* kOneChannel =
    "SELECT name, member, last_seq, read_to FROM channels WHERE name = ?1";

// An event's row: the columns, and one row's values as bound by bind_event.
// The meta of create and meta events is kept as a JSON object (when the flag
// before it is set): a field cleared by a meta event is "", an absent one null.
#define PARLEY_EVENT_COLUMNS                                                          \
  "messages(channel, seq, kind, sender, client_id, text, ts, deleted, target, role, " \
  "until_ms, ref, channel_kind, meta, e2e, e2e_error)"
#define PARLEY_EVENT_VALUES                                                     \
  "(?,?,?,?,?,?,?,?,?,?,?,?,?,CASE WHEN ? THEN json_object('name',?,'topic',?," \
  "'description',?,'avatar',?,'data',?) END,?,?)"
constexpr const char* kInsertEvent =
    "INSERT OR IGNORE INTO " PARLEY_EVENT_COLUMNS " VALUES" PARLEY_EVENT_VALUES;
constexpr int kEventColumns = 21;  // as bound by bind_event
// Batches insert this many rows per statement (the largest that fits, then
// smaller): SQLite's work per statement is then shared by the rows, which
// makes a page of events about 1.5x as fast to insert as one row at a time.
constexpr int kRowsPerInsert[] = {64, 16, 4, 1};
// What read_events reads.
#define PARLEY_EVENT_SELECT                                                                  \
  "SELECT channel, seq, kind, sender, client_id, text, ts, deleted, target, role, until_ms, " \
  "ref, channel_kind, json_extract(meta, '$.name'), json_extract(meta, '$.topic'), "        \
  "json_extract(meta, '$.description'), json_extract(meta, '$.avatar'), "                   \
  "json_extract(meta, '$.data'), e2e, e2e_error FROM messages "
constexpr const char* kEventRange =
    PARLEY_EVENT_SELECT "WHERE channel = ?1 AND seq BETWEEN ?2 AND ?3 ORDER BY seq";
constexpr const char* kOwnMessage =
    PARLEY_EVENT_SELECT "WHERE channel = ?1 AND client_id = ?2 AND sender = ?3 AND kind = 'message' "
    "LIMIT 1";
constexpr const char* kUndecrypted =
    PARLEY_EVENT_SELECT "WHERE e2e = 2 AND e2e_error IN (SELECT value FROM json_each(?1)) "
    "ORDER BY ts LIMIT ?2";
constexpr const char* kLatestMessages =
    PARLEY_EVENT_SELECT
    "WHERE channel = ?1 AND kind = 'message' AND seq < ?2 ORDER BY seq DESC LIMIT ?3";
constexpr const char* kMaxSeq = "SELECT max(seq) FROM messages WHERE channel = ?1";
// A covering search of messages_by_kind(channel, kind, seq); LIMIT -1: no bound.
constexpr const char* kCountMessages =
    "SELECT count(*) FROM (SELECT 1 FROM messages "
    "WHERE channel = ?1 AND kind = 'message' AND seq BETWEEN ?2 AND ?3 LIMIT ?4)";

// The runs starting in ?2+1..?3.
constexpr const char* kRunsStartingIn =
    "SELECT lo, hi FROM message_runs WHERE channel = ?1 AND lo > ?2 AND lo <= ?3 ORDER BY lo";
// The run containing seq ?2, or the last one before it.
constexpr const char* kRunAtOrBefore =
    "SELECT lo, hi FROM message_runs WHERE channel = ?1 AND lo <= ?2 "
    "ORDER BY lo DESC LIMIT 1";
constexpr const char* kRunStartingAt = "SELECT hi FROM message_runs WHERE channel = ?1 AND lo = ?2";
constexpr const char* kInsertRun = "INSERT INTO message_runs(channel, lo, hi) VALUES(?1, ?2, ?3)";
constexpr const char* kSetRunHi = "UPDATE message_runs SET hi = ?3 WHERE channel = ?1 AND lo = ?2";
constexpr const char* kDeleteRun = "DELETE FROM message_runs WHERE channel = ?1 AND lo = ?2";

// On outbox.db.
constexpr const char* kOutboxAdd =
    "INSERT INTO outbox(id, channel, text, created_ms) VALUES(?1, ?2, ?3, ?4)";
constexpr const char* kOutboxByState =
    "SELECT channel, id, text, error FROM outbox WHERE state = ?1 ORDER BY ord";
constexpr const char* kOutboxPendingOne =
    "SELECT channel, text FROM outbox WHERE id = ?1 AND state = 'pending'";
constexpr const char* kOutboxDelete = "DELETE FROM outbox WHERE id = ?1 AND state = 'pending'";
constexpr const char* kOutboxFail =
    "UPDATE outbox SET state = 'failed', error = ?2 WHERE id = ?1 AND state = 'pending'";
constexpr const char* kOutboxState = "SELECT state FROM outbox WHERE id = ?1";
constexpr const char* kOutboxCopy =
    "INSERT OR IGNORE INTO outbox(ord, id, channel, text, created_ms, state, error) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)";

// ---- helpers ----------------------------------------------------------------

const char* kind_name(EventKind kind) { return to_string(kind); }

bool parse_kind(const std::string& name, EventKind* out) { return parse_event_kind(name, out); }

// A conservative guess at the bytes an event takes in parley.db: the row, its
// index entry and b-tree slack. Only decides when to measure the real size.
std::uint64_t estimate_bytes(const Message& m) {
  std::uint64_t row = m.channel.size() * 2 + m.sender.size() + m.id.size() + m.text.size() + 48;
  return row + row / 2;
}

// INSERT OR IGNORE of kRowsPerInsert[i] events. The strings live as long as
// the process, so their addresses can key Rep::statements.
const char* insert_rows_sql(std::size_t i) {
  static const auto sql = [] {
    std::array<std::string, std::size(kRowsPerInsert)> out;
    for (std::size_t k = 0; k < out.size(); ++k) {
      out[k] = "INSERT OR IGNORE INTO " PARLEY_EVENT_COLUMNS " VALUES";
      for (int r = 0; r < kRowsPerInsert[k]; ++r) {
        out[k] += r == 0 ? PARLEY_EVENT_VALUES : "," PARLEY_EVENT_VALUES;
      }
    }
    return out;
  }();
  return sql[i].c_str();
}
#undef PARLEY_EVENT_COLUMNS
#undef PARLEY_EVENT_VALUES

// Binds `m` to parameters first..first+20. `m` must outlive the statement's
// run (no copies).
void bind_event(Statement& q, int first, const Message& m) {
  q.bind_static(first, m.channel)
      .bind(first + 1, m.seq)
      .bind_static(first + 2, kind_name(m.kind))
      .bind_static(first + 3, m.sender)
      .bind_static(first + 4, m.id)
      // A doc event has no text: its column holds the document's title.
      .bind_static(first + 5, m.kind == EventKind::doc ? m.title : m.text)
      .bind(first + 6, m.ts_ms)
      .bind(first + 7, m.deleted ? 1 : 0)
      .bind_static(first + 8, m.target)
      .bind_static(first + 9, m.role)
      .bind(first + 10, m.until_ms)
      .bind(first + 11, clamp_seq(m.ref))
      .bind_static(first + 12, m.channel_kind);
  const std::optional<std::string>* meta[] = {&m.meta.name, &m.meta.topic, &m.meta.description,
                                              &m.meta.avatar_url, &m.meta.data};
  bool has_meta = false;
  for (int i = 0; i < 5; ++i) {
    if (*meta[i]) {
      has_meta = true;
      q.bind_static(first + 14 + i, **meta[i]);
    } else {
      q.bind_null(first + 14 + i);
    }
  }
  q.bind(first + 13, has_meta ? 1 : 0);
  q.bind(first + 19, !m.e2e ? 0 : m.e2e_error.empty() ? 1 : 2).bind_static(first + 20, m.e2e_error);
}

}  // namespace

Status with_path(const std::string& path, const Status& s) {
  return Status(s.code(), fmt::format("cache \"{}\": {}", path, s.message()));
}

Result<std::string> query_text(Database& db, const char* sql) {
  auto stmt = db.prepare(sql);
  if (!stmt) return stmt.status();
  auto row = stmt->step();
  if (!row) return row.status();
  return *row ? stmt->column_text(0) : std::string();
}

Status copy_outbox_rows(Database& odb, const std::vector<OutboxRow>& rows) {
  if (rows.empty()) return Status();
  Transaction tx(odb);
  if (!tx.begin_status().ok()) return tx.begin_status();
  auto q = odb.prepare(kOutboxCopy);
  if (!q) return q.status();
  for (const OutboxRow& r : rows) {
    std::string state = r.state == "failed" ? "failed" : "pending";
    Status s = q->bind(1, r.ord)
                   .bind(2, r.id)
                   .bind(3, r.channel)
                   .bind(4, r.text)
                   .bind(5, r.created_ms)
                   .bind(6, state)
                   .bind(7, r.error)
                   .run();
    if (!s.ok()) return s;
  }
  return tx.commit();
}

// ---- Rep ----------------------------------------------------------------------

Result<Statement*> Cache::Rep::stmt(const char* sql) {
  auto it = statements.find(sql);
  if (it == statements.end()) {
    auto prepared = db.prepare(sql);
    if (!prepared) return prepared.status();
    it = statements.emplace(sql, std::move(*prepared)).first;
  }
  return &it->second;
}

Result<Statement*> Cache::Rep::ostmt(const char* sql) {
  auto it = ostatements.find(sql);
  if (it == ostatements.end()) {
    auto prepared = odb.prepare(sql);
    if (!prepared) return prepared.status();
    it = ostatements.emplace(sql, std::move(*prepared)).first;
  }
  return &it->second;
}

Result<std::optional<std::string>> Cache::Rep::get_meta(Database& on, const std::string& key) {
  auto st = &on == &odb ? ostmt(kGetMeta) : stmt(kGetMeta);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, key);
  auto row = q->step();
  if (!row) return row.status();
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(q->column_text(0));
}

Status Cache::Rep::set_meta(Database& on, const std::string& key, const std::string& value) {
  auto st = &on == &odb ? ostmt(kSetMeta) : stmt(kSetMeta);
  if (!st) return st.status();
  Scoped q(**st);
  return q->bind(1, key).bind(2, value).run();
}

Result<std::vector<Message>> Cache::Rep::read_events(Statement& q) {
  std::vector<Message> out;
  for (;;) {
    auto row = q.step();
    if (!row) return row.status();
    if (!*row) break;
    Message m;
    m.channel = q.column_text(0);
    m.seq = static_cast<std::uint64_t>(q.column_int(1));
    std::string kind = q.column_text(2);
    if (!parse_kind(kind, &m.kind)) {
      return Status(StatusCode::corrupt,
                    fmt::format("cache \"{}\": event {} of channel \"{}\" has unknown kind \"{}\"",
                                path, m.seq, m.channel, kind));
    }
    m.sender = q.column_text(3);
    m.id = q.column_text(4);
    m.text = q.column_text(5);
    if (m.kind == EventKind::doc) m.title = std::exchange(m.text, std::string());
    m.ts_ms = q.column_int(6);
    m.state = DeliveryState::sent;
    m.deleted = q.column_int(7) != 0;
    m.target = q.column_text(8);
    m.role = q.column_text(9);
    m.until_ms = q.column_int(10);
    m.ref = static_cast<std::uint64_t>(q.column_int(11));
    m.channel_kind = q.column_text(12);
    std::optional<std::string>* meta[] = {&m.meta.name, &m.meta.topic, &m.meta.description,
                                          &m.meta.avatar_url, &m.meta.data};
    for (int i = 0; i < 5; ++i) {
      if (!q.column_is_null(13 + i)) *meta[i] = q.column_text(13 + i);
    }
    // Mentions are a function of the text (the server computes them the same
    // way), so they are not stored.
    m.e2e = q.column_int(18) != 0;
    m.e2e_error = q.column_text(19);
    if (m.kind == EventKind::message && !m.deleted && !m.e2e) m.mentions = find_mentions(m.text);
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::optional<std::pair<std::int64_t, std::int64_t>>> Cache::Rep::run_at(
    const std::string& channel, std::int64_t seq) {
  auto st = stmt(kRunAtOrBefore);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, channel).bind(2, seq);
  auto row = q->step();
  if (!row) return row.status();
  using Run = std::optional<std::pair<std::int64_t, std::int64_t>>;
  if (!*row || q->column_int(1) < seq) return Run();
  return Run(std::pair(q->column_int(0), q->column_int(1)));
}

// Records that seqs a..b, none of which was stored before, now are: joins
// them to the run ending at a-1 and to the run starting at b+1. No other run
// can touch a..b, since runs hold only stored seqs. Inside the caller's
// transaction.
Status Cache::Rep::merge_run(const std::string& channel, std::int64_t a, std::int64_t b) {
  std::optional<std::int64_t> prev_lo;  // run ending at a-1
  {
    // The last run starting at or below b: it ends below a, or the table
    // disagrees with messages (a seq in a..b was not stored, yet a run has it).
    auto st = stmt(kRunAtOrBefore);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel).bind(2, b);
    auto row = q->step();
    if (!row) return row.status();
    if (*row) {
      std::int64_t hi = q->column_int(1);
      if (hi >= a) {
        return Status(StatusCode::corrupt,
                      fmt::format("cache \"{}\": message_runs of channel \"{}\" holds {}-{}, "
                                  "but events {}-{} were not stored",
                                  path, channel, q->column_int(0), hi, a, b));
      }
      if (hi == a - 1) prev_lo = q->column_int(0);
    }
  }
  std::optional<std::int64_t> next_hi;  // hi of the run starting at b+1
  if (b < kMaxSeqValue) {
    auto st = stmt(kRunStartingAt);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel).bind(2, b + 1);
    auto row = q->step();
    if (!row) return row.status();
    if (*row) next_hi = q->column_int(0);
  }
  if (next_hi) {
    auto st = stmt(kDeleteRun);
    if (!st) return st.status();
    Scoped q(**st);
    if (Status s = q->bind(1, channel).bind(2, b + 1).run(); !s.ok()) return s;
  }
  std::int64_t hi = next_hi.value_or(b);
  if (prev_lo) {
    auto st = stmt(kSetRunHi);
    if (!st) return st.status();
    Scoped q(**st);
    return q->bind(1, channel).bind(2, *prev_lo).bind(3, hi).run();
  }
  auto st = stmt(kInsertRun);
  if (!st) return st.status();
  Scoped q(**st);
  return q->bind(1, channel).bind(2, a).bind(3, hi).run();
}

// `fresh`: seqs just stored (none stored before, no repeats), in any order.
// Merges each maximal range of consecutive ones into message_runs: a few
// statements per range, however many events it holds.
Status Cache::Rep::add_to_runs(const std::string& channel, std::vector<std::int64_t>& fresh) {
  if (!std::is_sorted(fresh.begin(), fresh.end())) std::sort(fresh.begin(), fresh.end());
  std::size_t i = 0;
  while (i < fresh.size()) {
    std::size_t j = i;
    while (j + 1 < fresh.size() && fresh[j + 1] == fresh[j] + 1) ++j;
    if (Status s = merge_run(channel, fresh[i], fresh[j]); !s.ok()) return s;
    i = j + 1;
  }
  return Status();
}

Status Cache::Rep::upsert_channel(const std::string& channel, std::uint64_t last_seq, bool member) {
  auto st = stmt(kUpsertChannel);
  if (!st) return st.status();
  Scoped q(**st);
  return q->bind(1, channel).bind(2, member ? 1 : 0).bind(3, clamp_seq(last_seq)).run();
}

Status Cache::Rep::raise_last_seq(const std::string& channel, std::int64_t seq) {
  auto st = stmt(kRaiseLastSeq);
  if (!st) return st.status();
  Scoped q(**st);
  return q->bind(1, channel).bind(2, seq).run();
}

// Inserts one event unless (channel, seq) is stored; true if it was new.
// The channel row must exist (foreign key), and the caller records a new
// event in message_runs (add_to_runs). Inside the caller's transaction.
Result<bool> Cache::Rep::insert_event(const Message& m) {
  auto st = stmt(kInsertEvent);
  if (!st) return st.status();
  {
    Scoped q(**st);
    bind_event(*q, 1, m);
    if (Status s = q->run(); !s.ok()) return s;
  }
  return db.changes() > 0;
}

Result<std::vector<std::pair<std::int64_t, std::int64_t>>> Cache::Rep::runs_within(
    const std::string& channel, std::int64_t lo, std::int64_t hi) {
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  auto first = run_at(channel, lo);
  if (!first) return first.status();
  if (*first) out.push_back(**first);
  auto st = stmt(kRunsStartingIn);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, channel).bind(2, lo).bind(3, hi);
  for (;;) {
    auto row = q->step();
    if (!row) return row.status();
    if (!*row) break;
    out.emplace_back(q->column_int(0), q->column_int(1));
  }
  return out;
}

Result<int> Cache::Rep::store_channel_events(const std::string& channel,
                                             std::vector<const Message*>& events) {
  auto by_seq = [](const Message* a, const Message* b) { return a->seq < b->seq; };
  // Stable: of repeated seqs the first in the batch stays first, and is kept.
  if (!std::is_sorted(events.begin(), events.end(), by_seq)) {
    std::stable_sort(events.begin(), events.end(), by_seq);
  }
  const auto lo = static_cast<std::int64_t>(events.front()->seq);
  const auto hi = static_cast<std::int64_t>(events.back()->seq);
  // First: the channel row the events refer to.
  if (Status s = raise_last_seq(channel, hi); !s.ok()) return s;

  // Which events are new, from message_runs (which holds exactly the stored
  // seqs), rather than from each insert's result: so the rows can go in
  // several per statement.
  auto stored = runs_within(channel, lo, hi);
  if (!stored) return stored.status();
  std::vector<const Message*> fresh;
  fresh.reserve(events.size());
  std::size_t r = 0;
  std::uint64_t last = 0;  // seq 0 never comes
  for (const Message* m : events) {
    if (m->seq == last) continue;  // a repeat within the batch
    last = m->seq;
    const auto seq = static_cast<std::int64_t>(m->seq);
    while (r < stored->size() && (*stored)[r].second < seq) ++r;
    if (r < stored->size() && (*stored)[r].first <= seq) continue;  // stored already
    fresh.push_back(m);
  }

  std::size_t i = 0;
  while (i < fresh.size()) {
    std::size_t k = 0;
    while (static_cast<std::size_t>(kRowsPerInsert[k]) > fresh.size() - i) ++k;
    const int rows = kRowsPerInsert[k];
    auto st = stmt(insert_rows_sql(k));
    if (!st) return st.status();
    Scoped q(**st);
    for (int row = 0; row < rows; ++row) bind_event(*q, row * kEventColumns + 1, *fresh[i + row]);
    if (Status s = q->run(); !s.ok()) return s;
    if (db.changes() != rows) {
      return Status(StatusCode::corrupt,
                    fmt::format("cache \"{}\": message_runs of channel \"{}\" misses events "
                                "stored in {}-{}",
                                path, channel, fresh[i]->seq, fresh[i + rows - 1]->seq));
    }
    i += static_cast<std::size_t>(rows);
  }

  std::vector<std::int64_t> seqs;
  seqs.reserve(fresh.size());
  for (const Message* m : fresh) seqs.push_back(static_cast<std::int64_t>(m->seq));
  if (Status s = add_to_runs(channel, seqs); !s.ok()) return s;
  return static_cast<int>(fresh.size());
}

Result<std::vector<OutboxEntry>> Cache::Rep::outbox_in_state(const char* state, DeliveryState as) {
  auto st = ostmt(kOutboxByState);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, state);
  std::vector<OutboxEntry> out;
  for (;;) {
    auto row = q->step();
    if (!row) return row.status();
    if (!*row) break;
    OutboxEntry e;
    e.channel = q->column_text(0);
    e.id = q->column_text(1);
    e.text = q->column_text(2);
    e.error = q->column_text(3);
    e.state = as;
    out.push_back(std::move(e));
  }
  return out;
}

Cache::Cache(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
Cache::~Cache() = default;

// ---- open -----------------------------------------------------------------------

namespace {

// Runs `steps` from the file's user_version up. A version-0 file with tables
// is some other program's database and is left alone. `before_step(v)` runs
// ahead of step v's transaction.
Status migrate(Database& db, const std::string& path, const char* const* steps, int count,
               const std::function<Status(int)>& before_step = nullptr) {
  auto version = db.user_version();
  if (!version) return with_path(path, version.status());
  if (*version > count) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("cache \"{}\" has schema version {}, newer than this library's {}",
                              path, *version, count));
  }
  if (*version < 0) {
    return Status(StatusCode::corrupt,
                  fmt::format("cache \"{}\" has schema version {}, which no parley cache has",
                              path, *version));
  }
  if (*version == 0) {
    auto tables = query_text(db, "SELECT count(*) FROM sqlite_schema");
    if (!tables) return with_path(path, tables.status());
    if (*tables != "0") {
      return Status(StatusCode::invalid_argument,
                    fmt::format("cache \"{}\" is not a parley cache: it has tables but no "
                                "schema version",
                                path));
    }
  }
  // One transaction per step: a crash between steps leaves a consistent file
  // at the last completed version, and the next open resumes from there.
  for (int v = *version + 1; v <= count; ++v) {
    if (before_step) {
      if (Status s = before_step(v); !s.ok()) {
        return Status(s.code(), fmt::format("cache \"{}\": migration to schema version {}: {}",
                                            path, v, s.message()));
      }
    }
    Transaction tx(db);
    if (!tx.begin_status().ok()) return with_path(path, tx.begin_status());
    if (Status s = db.exec(steps[v - 1]); !s.ok()) {
      return Status(s.code(), fmt::format("cache \"{}\": migration to schema version {}: {}", path,
                                          v, s.message()));
    }
    if (Status s = db.set_user_version(v); !s.ok()) return with_path(path, s);
    if (Status s = tx.commit(); !s.ok()) return with_path(path, s);
  }
  return Status();
}

// Migration 3, first half: copies the outbox rows and the device id from
// parley.db into outbox.db and commits them there. Only then does the step
// drop the table, so a crash in between just copies again (INSERT OR IGNORE).
Status move_outbox_out(Cache::Rep& rep) {
  std::vector<OutboxRow> rows;
  auto has = query_text(rep.db, "SELECT count(*) FROM sqlite_schema WHERE name = 'outbox'");
  if (!has) return has.status();
  if (*has != "0") {
    auto q = rep.db.prepare(
        "SELECT ord, id, channel, text, created_ms, state, error FROM outbox ORDER BY ord");
    if (!q) return q.status();
    for (;;) {
      auto row = q->step();
      if (!row) return row.status();
      if (!*row) break;
      rows.push_back(OutboxRow{q->column_int(0), q->column_text(1), q->column_text(2),
                               q->column_text(3), q->column_text(5), q->column_text(6),
                               q->column_int(4)});
    }
  }
  if (Status s = copy_outbox_rows(rep.odb, rows); !s.ok()) return s;
  auto device = query_text(rep.db, "SELECT value FROM meta WHERE key = 'device_id'");
  if (!device) return device.status();
  if (!device->empty()) {
    auto have = rep.get_meta(rep.odb, "device_id");
    if (!have) return have.status();
    if (!*have) return rep.set_meta(rep.odb, "device_id", *device);
  }
  return Status();
}

// Both files are in WAL mode: readers don't block the writer, and a commit is
// one append. (If the file system cannot do WAL, SQLite keeps the rollback
// journal, slower but just as safe, so the answer is not checked.)
//
// `synchronous` says what a commit survives:
// - FULL (outbox.db): the WAL is fsynced at every commit. A send() that
//   returned is on stable storage and survives power loss.
// - NORMAL (parley.db): the WAL is fsynced only at checkpoints (before the
//   database file is written). A commit survives a killed process, since it
//   is in the OS's hands, but an OS crash or power loss may roll back the
//   last commits. The file stays consistent: as of an earlier commit, never
//   half of one. Since the cursor (channels.read_to) and last_seq roll back
//   together with the events they cover, the client fetches those events
//   from the server again (and delivers the ones past the cursor again). The
//   one thing of ours the server may not have yet, a read cursor not yet
//   acknowledged (my_read > my_read_sent), can go back too. This saves an
//   fsync per page of history and per live event.
Status set_common_pragmas(Database& db, const std::string& path, const char* synchronous) {
  if (auto mode = query_text(db, "PRAGMA journal_mode = WAL"); !mode) {
    return with_path(path, mode.status());
  }
  if (Status s = db.exec(fmt::format("PRAGMA synchronous = {}", synchronous)); !s.ok()) {
    return with_path(path, s);
  }
  return Status();
}

Status open_outbox_file(Cache::Rep& rep) {
  const std::string& path = rep.outbox_path;
  auto db = Database::open(path);
  if (!db) return db.status();
  rep.odb = std::move(*db);
  // Small (pending messages and a few keys): the full check costs little.
  if (Status s = full_check(rep.odb, path); !s.ok()) return s;
  if (Status s = set_common_pragmas(rep.odb, path, "FULL"); !s.ok()) return s;
  if (Status s = migrate(rep.odb, path, kOutboxMigrations, Cache::kOutboxSchemaVersion); !s.ok()) {
    return s;
  }
  auto owner = rep.get_meta(rep.odb, "user");
  if (!owner) return with_path(path, owner.status());
  if (!*owner) {
    if (Status s = rep.set_meta(rep.odb, "user", rep.user); !s.ok()) return with_path(path, s);
  } else if (**owner != rep.user) {
    return Status(
        StatusCode::invalid_argument,
        fmt::format("cache \"{}\" belongs to user \"{}\", not \"{}\"", path, **owner, rep.user));
  }
  return Status();
}

std::string new_device_id() {
  unsigned char bytes[16];
  randombytes_buf(bytes, sizeof bytes);
  char hex[sizeof bytes * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
  return std::string(hex);
}

// parley.db's owner (set on a new file) and the device id (outbox.db's, or
// one made now).
Status claim(Cache::Rep& rep) {
  const std::string& path = rep.path;
  {
    Transaction tx(rep.db);
    if (!tx.begin_status().ok()) return with_path(path, tx.begin_status());
    auto owner = rep.get_meta(rep.db, "user");
    if (!owner) return with_path(path, owner.status());
    if (!*owner) {
      if (Status s = rep.set_meta(rep.db, "user", rep.user); !s.ok()) return with_path(path, s);
    } else if (**owner != rep.user) {
      return Status(
          StatusCode::invalid_argument,
          fmt::format("cache \"{}\" belongs to user \"{}\", not \"{}\"", path, **owner, rep.user));
    }
    if (Status s = tx.commit(); !s.ok()) return with_path(path, s);
  }
  auto device = rep.get_meta(rep.odb, "device_id");
  if (!device) return with_path(rep.outbox_path, device.status());
  if (*device) {
    rep.device_id = **device;
  } else {
    std::string id = new_device_id();
    if (Status s = rep.set_meta(rep.odb, "device_id", id); !s.ok()) {
      return with_path(rep.outbox_path, s);
    }
    rep.device_id = id;
  }
  return Status();
}

}  // namespace

Status Cache::Rep::open_cache_file() {
  statements.clear();
  auto opened = Database::open(path);
  if (!opened) return opened.status();  // names the path already
  db = std::move(*opened);
  // Nothing here deletes or rewrites a file that fails a check: a corrupt
  // cache stays where it is until rebuild() moves it aside.
  if (Status s = check_on_open(*this); !s.ok()) return s;
  // Takes effect only on a new, empty file (before WAL mode writes its first
  // page and before the first table): lets the cache give evicted pages back
  // to the file system (PRAGMA incremental_vacuum) when it is kept to a budget.
  // Asked only of an empty file: on an existing one SQLite rewrites page 1
  // even when nothing changes, which would cost every open a commit.
  auto pages = query_text(db, "PRAGMA page_count");
  if (!pages) return with_path(path, pages.status());
  if (*pages == "0") {
    if (Status s = db.exec("PRAGMA auto_vacuum = INCREMENTAL"); !s.ok()) return with_path(path, s);
  }
  if (Status s = set_common_pragmas(db, path, "NORMAL"); !s.ok()) return s;
  // Zero deleted content inside pages that are written anyway, but don't
  // write freed pages just to zero them (Debian builds SQLite with
  // secure_delete on, which would make every eviction write what it frees).
  if (Status s = db.exec("PRAGMA secure_delete = FAST"); !s.ok()) return with_path(path, s);
  configure_wal();
  return migrate(db, path, kMigrations, Cache::kSchemaVersion,
                 [this](int v) { return v == 3 ? move_outbox_out(*this) : Status(); });
}

Result<std::unique_ptr<Cache>> Cache::open(const std::string& data_dir, const std::string& user,
                                           Options options) {
  if (data_dir.empty()) {
    return Status(StatusCode::invalid_argument, "cache: data directory may not be empty");
  }
  if (user.empty()) return Status(StatusCode::invalid_argument, "cache: user may not be empty");
  static const int sodium_rc = sodium_init();  // thread-safe, once per process
  if (sodium_rc < 0) return Status(StatusCode::internal, "cache: libsodium failed to initialize");

  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return Status(
        StatusCode::io_error,
        fmt::format("cache: cannot create data directory \"{}\": {}", data_dir, ec.message()));
  }
  auto rep = std::make_unique<Rep>();
  rep->dir = data_dir;
  rep->path = (std::filesystem::path(data_dir) / "parley.db").string();
  rep->outbox_path = (std::filesystem::path(data_dir) / "outbox.db").string();
  rep->user = user;
  rep->budget = options.budget;
  rep->options = std::move(options);

  if (Status s = open_outbox_file(*rep); !s.ok()) return s;
  Status cache_ok = rep->open_cache_file();
  if (cache_ok.ok()) {
    // Damage found by an earlier run (its background check or a failed
    // statement), which this open's quicker checks may not see.
    auto marker = rep->get_meta(rep->odb, "cache_corrupt");
    if (!marker) return with_path(rep->outbox_path, marker.status());
    if (*marker) cache_ok = Status(StatusCode::corrupt, **marker);
  }
  if (!cache_ok.ok()) {
    if (cache_ok.code() != StatusCode::corrupt || !rep->options.rebuild_corrupt) return cache_ok;
    rep->rebuild(cache_ok);  // on failure the cache runs in memory: see last_rebuild()
  }
  if (Status s = claim(*rep); !s.ok()) return s;
  rep->reset_budget_state();
  rep->start_background_check();
  return std::unique_ptr<Cache>(new Cache(std::move(rep)));
}

Result<std::unique_ptr<Cache>> Cache::open(const std::string& data_dir, const std::string& user) {
  return open(data_dir, user, Options());
}

const std::string& Cache::path() const { return rep_->path; }

// ---- meta -------------------------------------------------------------------

std::string Cache::device_id() const { return rep_->device_id; }

Status Cache::set_device_id(const std::string& id) {
  bool printable = std::all_of(id.begin(), id.end(), [](char c) {
    return static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
  });
  if (!printable) {
    // Not echoed: the message must stay one line.
    return Status(StatusCode::invalid_argument,
                  "device id: may not contain spaces or control characters");
  }
  if (id.empty() || id.size() > 128) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("device id \"{}\": must be 1-128 characters", id));
  }
  if (Status s = rep_->set_meta(rep_->odb, "device_id", id); !s.ok()) return s;
  rep_->device_id = id;
  return Status();
}

// ---- channels and cursors ---------------------------------------------------

Status Cache::upsert_channel(const std::string& channel, std::uint64_t last_seq, bool member) {
  return rep_->note(rep_->upsert_channel(channel, last_seq, member));
}

Status Cache::set_member(const std::string& channel, bool member) {
  return rep_->note([&]() -> Status {
    auto st = rep_->stmt(kSetMember);
    if (!st) return st.status();
    Scoped q(**st);
    return q->bind(1, channel).bind(2, member ? 1 : 0).run();
  }());
}

namespace {
ChannelInfo read_channel(Statement& q) {
  ChannelInfo c;
  c.name = q.column_text(0);
  c.member = q.column_int(1) != 0;
  c.last_seq = static_cast<std::uint64_t>(q.column_int(2));
  c.read_to = static_cast<std::uint64_t>(q.column_int(3));
  return c;
}
}  // namespace

Result<std::vector<ChannelInfo>> Cache::channels() {
  return rep_->note([&]() -> Result<std::vector<ChannelInfo>> {
    auto st = rep_->stmt(kAllChannels);
    if (!st) return st.status();
    Scoped q(**st);
    std::vector<ChannelInfo> out;
    for (;;) {
      auto row = q->step();
      if (!row) return row.status();
      if (!*row) break;
      out.push_back(read_channel(*q));
    }
    return out;
  }());
}

Result<std::optional<ChannelInfo>> Cache::channel(const std::string& channel) {
  return rep_->note([&]() -> Result<std::optional<ChannelInfo>> {
    auto st = rep_->stmt(kOneChannel);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel);
    auto row = q->step();
    if (!row) return row.status();
    if (!*row) return std::optional<ChannelInfo>();
    return std::optional<ChannelInfo>(read_channel(*q));
  }());
}

Status Cache::advance_cursor(const std::string& channel, std::uint64_t seq) {
  return rep_->note([&]() -> Status {
    auto st = rep_->stmt(kAdvanceCursor);
    if (!st) return st.status();
    Scoped q(**st);
    return q->bind(1, channel).bind(2, clamp_seq(seq)).run();
  }());
}

// ---- messages -----------------------------------------------------------------

Result<int> Cache::store_events(const std::vector<Message>& events,
                                const std::optional<ChannelTop>& top, const E2eWrite* e2e) {
  // Checked before anything is written, so a bad batch stores nothing.
  std::map<std::string, std::vector<const Message*>> by_channel;  // in batch order
  std::vector<const Message*>* of_last = nullptr;  // the list of the last event's channel
  const std::string* last_channel = nullptr;
  std::uint64_t bytes = 0;
  for (const Message& m : events) {
    if (m.channel.empty()) {
      return Status(StatusCode::invalid_argument,
                    fmt::format("event {}: channel may not be empty", m.seq));
    }
    if (m.seq == 0 || m.seq > static_cast<std::uint64_t>(kMaxSeqValue)) {
      return Status(StatusCode::invalid_argument,
                    fmt::format("event of channel \"{}\": seq {} out of range", m.channel, m.seq));
    }
    if (last_channel == nullptr || *last_channel != m.channel) {
      of_last = &by_channel[m.channel];
      last_channel = &m.channel;
    }
    of_last->push_back(&m);
    bytes += estimate_bytes(m);
  }
  if (top && top->channel.empty()) {
    return Status(StatusCode::invalid_argument, "channel top: channel may not be empty");
  }
  if (events.empty() && !top && (e2e == nullptr || e2e->empty())) return 0;

  // Room first, so that the file does not outgrow the budget even briefly.
  // A failure to evict is not the caller's: the events are stored anyway.
  if (!events.empty()) rep_->before_store(bytes, events.size());
  // Sessions advanced by these events are committed durably (synchronous
  // FULL): a commit lost to a power cut would roll a session back after the
  // one-time prekey it used was deleted (docs/e2e.md, "Crash safety").
  DurableCommit durable(*rep_, e2e != nullptr && !e2e->empty());
  auto added = rep_->note([&]() -> Result<int> {
    Transaction tx(rep_->db);
    if (!tx.begin_status().ok()) return tx.begin_status();
    if (top) {
      if (Status s = rep_->upsert_channel(top->channel, top->last_seq, true); !s.ok()) return s;
    }
    int n = 0;
    for (auto& [channel, list] : by_channel) {
      auto stored = rep_->store_channel_events(channel, list);
      if (!stored) return stored.status();
      n += *stored;
    }
    if (e2e != nullptr) {
      if (Status s = rep_->write_e2e(*e2e); !s.ok()) return s;
    }
    if (Status s = tx.commit(); !s.ok()) return s;
    return n;
  }());
  if (added && !events.empty()) rep_->after_store(bytes, *added);
  return added;
}

Result<std::vector<Message>> Cache::events(const std::string& channel, std::uint64_t from,
                                           std::uint64_t to) {
  if (from > to) return std::vector<Message>();
  return rep_->note([&]() -> Result<std::vector<Message>> {
    auto st = rep_->stmt(kEventRange);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel).bind(2, clamp_seq(from)).bind(3, clamp_seq(to));
    return rep_->read_events(*q);
  }());
}

Result<std::optional<Message>> Cache::message_at(const std::string& channel, std::uint64_t seq) {
  auto found = events(channel, seq, seq);
  if (!found) return found.status();
  if (found->empty() || found->front().kind != EventKind::message) return std::optional<Message>();
  return std::optional<Message>(std::move(found->front()));
}

Result<std::optional<Message>> Cache::own_message(const std::string& channel,
                                                  const std::string& id) {
  return rep_->note([&]() -> Result<std::optional<Message>> {
    auto st = rep_->stmt(kOwnMessage);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel).bind(2, id).bind(3, rep_->user);
    auto out = rep_->read_events(*q);
    if (!out) return out.status();
    if (out->empty()) return std::optional<Message>();
    return std::optional<Message>(std::move(out->front()));
  }());
}

Result<std::vector<Message>> Cache::e2e_undecrypted(const std::vector<std::string>& errors,
                                                    std::size_t limit) {
  std::string list = "[";
  for (const auto& e : errors) {
    if (list.size() > 1) list += ',';
    list += '"' + e + '"';  // error codes: [a-z_] only
  }
  list += ']';
  return rep_->note([&]() -> Result<std::vector<Message>> {
    auto st = rep_->stmt(kUndecrypted);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, list).bind(2, static_cast<std::int64_t>(limit));
    return rep_->read_events(*q);
  }());
}

Result<std::vector<Message>> Cache::latest_messages(const std::string& channel,
                                                    std::uint64_t before, std::uint32_t limit) {
  if (limit == 0) return std::vector<Message>();
  return rep_->note([&]() -> Result<std::vector<Message>> {
    auto st = rep_->stmt(kLatestMessages);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel)
        .bind(2, before == 0 ? kMaxSeqValue : clamp_seq(before))
        .bind(3, static_cast<std::int64_t>(limit));
    auto out = rep_->read_events(*q);
    if (!out) return out;
    std::reverse(out->begin(), out->end());
    return out;
  }());
}

Result<std::uint64_t> Cache::count_messages(const std::string& channel, std::uint64_t from,
                                            std::uint64_t to, std::uint64_t at_most) {
  if (from > to) return std::uint64_t{0};
  return rep_->note([&]() -> Result<std::uint64_t> {
    auto st = rep_->stmt(kCountMessages);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel)
        .bind(2, clamp_seq(from))
        .bind(3, clamp_seq(to))
        .bind(4, at_most == 0 ? std::int64_t{-1} : clamp_seq(at_most));
    auto row = q->step();
    if (!row) return row.status();
    return static_cast<std::uint64_t>(*row ? q->column_int(0) : 0);
  }());
}

Result<std::uint64_t> Cache::contiguous_down_from(const std::string& channel, std::uint64_t to) {
  if (to == 0 || to > static_cast<std::uint64_t>(kMaxSeqValue)) return to + 1;
  auto run = rep_->note(rep_->run_at(channel, static_cast<std::int64_t>(to)));
  if (!run) return run.status();
  if (!*run) return to + 1;
  return static_cast<std::uint64_t>((*run)->first);
}

Result<std::uint64_t> Cache::contiguous_up_from(const std::string& channel, std::uint64_t from) {
  // Seq 0 never exists: from 0 means from 1 (and "none" is then 0).
  if (from == 0) from = 1;
  if (from > static_cast<std::uint64_t>(kMaxSeqValue)) return from - 1;
  auto run = rep_->note(rep_->run_at(channel, static_cast<std::int64_t>(from)));
  if (!run) return run.status();
  if (!*run) return from - 1;
  return static_cast<std::uint64_t>((*run)->second);
}

Result<std::uint64_t> Cache::max_seq(const std::string& channel) {
  return rep_->note([&]() -> Result<std::uint64_t> {
    auto st = rep_->stmt(kMaxSeq);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel);
    auto row = q->step();
    if (!row) return row.status();
    return static_cast<std::uint64_t>(*row ? q->column_int(0) : 0);  // NULL reads as 0
  }());
}

// ---- outbox (outbox.db) ---------------------------------------------------------

Status Cache::outbox_add(const std::string& channel, const std::string& id, const std::string& text,
                         std::int64_t created_ms) {
  if (channel.empty()) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("outbox message \"{}\": channel may not be empty", id));
  }
  if (id.empty()) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("outbox message for channel \"{}\": id may not be empty", channel));
  }
  auto st = rep_->ostmt(kOutboxAdd);
  if (!st) return st.status();
  Scoped q(**st);
  // Autocommit: with synchronous = FULL the row is on disk when this returns.
  Status s = q->bind(1, id).bind(2, channel).bind(3, text).bind(4, created_ms).run();
  if (!s.ok() && sqlite3_extended_errcode(rep_->odb.handle()) == SQLITE_CONSTRAINT_UNIQUE) {
    return Status(StatusCode::already_exists,
                  fmt::format("outbox message \"{}\" already exists", id));
  }
  return s;
}

Result<std::vector<OutboxEntry>> Cache::outbox_pending() {
  return rep_->outbox_in_state("pending", DeliveryState::pending);
}

Result<bool> Cache::outbox_acknowledge(const std::string& id, std::uint64_t seq, std::int64_t ts_ms,
                                       const std::string& sender, bool e2e) {
  if (seq == 0 || seq > static_cast<std::uint64_t>(kMaxSeqValue)) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("outbox message \"{}\": seq {} out of range", id, seq));
  }
  Message m;
  {
    auto st = rep_->ostmt(kOutboxPendingOne);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, id);
    auto row = q->step();
    if (!row) return row.status();
    if (!*row) return false;
    m.channel = q->column_text(0);
    m.text = q->column_text(1);
  }
  m.seq = seq;
  m.kind = EventKind::message;
  m.sender = sender;
  m.id = id;
  m.ts_ms = ts_ms;
  m.e2e = e2e;
  // The message into the cache first, then out of the outbox: a crash in
  // between resends it, and the server deduplicates.
  auto fresh = rep_->note([&]() -> Result<bool> {
    Transaction tx(rep_->db);
    if (!tx.begin_status().ok()) return tx.begin_status();
    if (Status s = rep_->raise_last_seq(m.channel, static_cast<std::int64_t>(seq)); !s.ok()) {
      return s;
    }
    // If the event at seq arrived first (live, or in a history page), the
    // stored copy from the server stands.
    auto inserted = rep_->insert_event(m);
    if (!inserted) return inserted.status();
    if (*inserted) {
      auto at = static_cast<std::int64_t>(seq);
      if (Status s = rep_->merge_run(m.channel, at, at); !s.ok()) return s;
    } else if (e2e) {
      // The server's copy came first: it holds no envelope for this device,
      // so the text is ours to give it.
      if (Status s = rep_->restore_own_e2e(m); !s.ok()) return s;
    }
    if (e2e) {
      if (Status s = rep_->drop_outgoing(id); !s.ok()) return s;
    }
    if (Status s = tx.commit(); !s.ok()) return s;
    return *inserted;
  }());
  // A cache that cannot take the message does not keep it in the outbox: the
  // server has it, and history brings it back.
  if (fresh && *fresh) rep_->after_store(estimate_bytes(m), 1);
  auto st = rep_->ostmt(kOutboxDelete);
  if (!st) return st.status();
  Scoped q(**st);
  if (Status s = q->bind(1, id).run(); !s.ok()) return s;
  return rep_->odb.changes() > 0;
}

Status Cache::outbox_fail(const std::string& id, const std::string& error) {
  auto st = rep_->ostmt(kOutboxFail);
  if (!st) return st.status();
  {
    Scoped q(**st);
    if (Status s = q->bind(1, id).bind(2, error).run(); !s.ok()) return s;
  }
  if (rep_->odb.changes() > 0) return Status();
  // Failing an entry that already failed is a no-op; an unknown or already
  // acknowledged id is the caller's to hear about.
  auto state_st = rep_->ostmt(kOutboxState);
  if (!state_st) return state_st.status();
  Scoped q(**state_st);
  q->bind(1, id);
  auto row = q->step();
  if (!row) return row.status();
  if (*row) return Status();
  return Status(StatusCode::not_found, fmt::format("outbox message \"{}\" not found", id));
}

Result<std::vector<OutboxEntry>> Cache::outbox_failed() {
  return rep_->outbox_in_state("failed", DeliveryState::failed);
}

}  // namespace parley::store
