// The cache's collaborative documents (outbox.db schema 3; docs/collab.md,
// "Offline edits"): each document this device has opened is its CRDT
// snapshot plus the updates applied since (doc_log), and the local updates the
// server has not acknowledged yet (doc_outbox). outbox.db is synchronous FULL,
// so an edit is on disk when doc_local_update returns.
//
// Updates are appended rather than re-snapshotted per keystroke: writing a
// snapshot costs the size of the document, an update the size of the edit.
// The engine compacts (doc_compact) once the log has grown.
#include <fmt/format.h>

#include "store/cache_rep.hpp"

namespace parley::store {
namespace {

constexpr const char* kDocGet =
    "SELECT kind, agent, snapshot FROM docs WHERE channel = ?1 AND title = ?2";
constexpr const char* kDocLog =
    "SELECT data FROM doc_log WHERE channel = ?1 AND title = ?2 ORDER BY ord";
constexpr const char* kDocList =
    "SELECT d.title, d.kind, (SELECT count(*) FROM doc_outbox o "
    "WHERE o.channel = d.channel AND o.title = d.title) "
    "FROM docs d WHERE d.channel = ?1 ORDER BY d.title";
constexpr const char* kDocPut =
    "INSERT OR REPLACE INTO docs(channel, title, kind, agent, snapshot, updated_ms) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
constexpr const char* kDocLogAdd = "INSERT INTO doc_log(channel, title, data) VALUES(?1, ?2, ?3)";
constexpr const char* kDocLogClear = "DELETE FROM doc_log WHERE channel = ?1 AND title = ?2";
constexpr const char* kDocLogSize =
    "SELECT count(*), coalesce(sum(length(data)), 0) FROM doc_log "
    "WHERE channel = ?1 AND title = ?2";
constexpr const char* kDocOutboxAdd =
    "INSERT INTO doc_outbox(channel, title, data, mentions, created_ms) "
    "VALUES(?1, ?2, ?3, ?4, ?5)";
constexpr const char* kDocOutboxOf =
    "SELECT ord, channel, title, data, mentions FROM doc_outbox "
    "WHERE channel = ?1 AND title = ?2 ORDER BY ord";
constexpr const char* kDocOutboxAll =
    "SELECT ord, channel, title, data, mentions FROM doc_outbox ORDER BY ord";
constexpr const char* kDocOutboxCount =
    "SELECT count(*) FROM doc_outbox WHERE channel = ?1 AND title = ?2";
constexpr const char* kDocOutboxRemove = "DELETE FROM doc_outbox WHERE ord = ?1";
constexpr const char* kDocOutboxClear = "DELETE FROM doc_outbox WHERE channel = ?1 AND title = ?2";
constexpr const char* kDocSnapshot =
    "UPDATE docs SET snapshot = ?3, updated_ms = ?4 WHERE channel = ?1 AND title = ?2";
constexpr const char* kDocDelete = "DELETE FROM docs WHERE channel = ?1 AND title = ?2";

// User names hold no commas (protocol.md, "Names").
std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ',';
    out += n;
  }
  return out;
}

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma > start) out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

Status check_doc(const std::string& channel, const std::string& title) {
  if (channel.empty() || title.empty()) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("document \"{}\" of channel \"{}\": channel and title may not be "
                              "empty",
                              title, channel));
  }
  return Status();
}

Status clear_doc_rows(Cache::Rep& rep, const std::string& channel, const std::string& title,
                      bool outbox_too) {
  auto log = rep.ostmt(kDocLogClear);
  if (!log) return log.status();
  {
    Scoped q(**log);
    if (Status s = q->bind(1, channel).bind(2, title).run(); !s.ok()) return s;
  }
  if (!outbox_too) return Status();
  auto out = rep.ostmt(kDocOutboxClear);
  if (!out) return out.status();
  Scoped q(**out);
  return q->bind(1, channel).bind(2, title).run();
}

Status add_log_row(Cache::Rep& rep, const std::string& channel, const std::string& title,
                   const std::string& update) {
  auto st = rep.ostmt(kDocLogAdd);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, channel).bind(2, title).bind_blob(3, update.data(), update.size());
  return q->run();
}

}  // namespace

Result<std::optional<Cache::DocRow>> Cache::doc(const std::string& channel,
                                                const std::string& title) {
  DocRow row;
  {
    auto st = rep_->ostmt(kDocGet);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel).bind(2, title);
    auto found = q->step();
    if (!found) return found.status();
    if (!*found) return std::optional<DocRow>();
    row.channel = channel;
    row.title = title;
    row.kind = q->column_text(0);
    row.agent = static_cast<std::uint64_t>(q->column_int(1));
    row.snapshot = q->column_text(2);
  }
  auto st = rep_->ostmt(kDocLog);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, channel).bind(2, title);
  for (;;) {
    auto more = q->step();
    if (!more) return more.status();
    if (!*more) break;
    row.log.push_back(q->column_text(0));
  }
  return std::optional<DocRow>(std::move(row));
}

Result<std::vector<Cache::DocSummary>> Cache::docs(const std::string& channel) {
  auto st = rep_->ostmt(kDocList);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, channel);
  std::vector<DocSummary> out;
  for (;;) {
    auto more = q->step();
    if (!more) return more.status();
    if (!*more) break;
    out.push_back(DocSummary{q->column_text(0), q->column_text(1),
                             static_cast<std::uint64_t>(q->column_int(2))});
  }
  return out;
}

Status Cache::doc_put(const DocRow& row, std::int64_t now_ms) {
  if (Status s = check_doc(row.channel, row.title); !s.ok()) return s;
  if (row.agent == 0 || row.agent > static_cast<std::uint64_t>(kMaxSeqValue)) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("document \"{}\": agent id {} out of range", row.title, row.agent));
  }
  Transaction tx(rep_->odb);
  if (!tx.begin_status().ok()) return tx.begin_status();
  if (Status s = clear_doc_rows(*rep_, row.channel, row.title, true); !s.ok()) return s;
  {
    auto st = rep_->ostmt(kDocPut);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, row.channel).bind(2, row.title).bind(3, row.kind).bind(4, row.agent);
    q->bind_blob(5, row.snapshot.data(), row.snapshot.size()).bind(6, now_ms);
    if (Status s = q->run(); !s.ok()) return s;
  }
  for (const auto& u : row.log) {
    if (Status s = add_log_row(*rep_, row.channel, row.title, u); !s.ok()) return s;
  }
  return tx.commit();
}

Result<std::int64_t> Cache::doc_local_update(const std::string& channel, const std::string& title,
                                             const std::string& update,
                                             const std::vector<std::string>& mentions,
                                             std::int64_t now_ms) {
  if (Status s = check_doc(channel, title); !s.ok()) return s;
  Transaction tx(rep_->odb);
  if (!tx.begin_status().ok()) return tx.begin_status();
  if (Status s = add_log_row(*rep_, channel, title, update); !s.ok()) return s;
  auto st = rep_->ostmt(kDocOutboxAdd);
  if (!st) return st.status();
  {
    Scoped q(**st);
    q->bind(1, channel).bind(2, title).bind_blob(3, update.data(), update.size());
    q->bind(4, join_names(mentions)).bind(5, now_ms);
    if (Status s = q->run(); !s.ok()) return s;
  }
  std::int64_t ord = rep_->odb.last_insert_rowid();
  if (Status s = tx.commit(); !s.ok()) return s;
  return ord;
}

Status Cache::doc_remote_updates(const std::string& channel, const std::string& title,
                                 const std::vector<std::string>& updates) {
  if (updates.empty()) return Status();
  Transaction tx(rep_->odb);
  if (!tx.begin_status().ok()) return tx.begin_status();
  for (const auto& u : updates) {
    if (Status s = add_log_row(*rep_, channel, title, u); !s.ok()) return s;
  }
  return tx.commit();
}

Result<std::pair<std::uint64_t, std::uint64_t>> Cache::doc_log_size(const std::string& channel,
                                                                    const std::string& title) {
  auto st = rep_->ostmt(kDocLogSize);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, channel).bind(2, title);
  auto row = q->step();
  if (!row) return row.status();
  if (!*row) return std::pair<std::uint64_t, std::uint64_t>{0, 0};
  return std::pair<std::uint64_t, std::uint64_t>{static_cast<std::uint64_t>(q->column_int(0)),
                                                 static_cast<std::uint64_t>(q->column_int(1))};
}

Status Cache::doc_compact(const std::string& channel, const std::string& title,
                          const std::string& snapshot, std::int64_t now_ms) {
  Transaction tx(rep_->odb);
  if (!tx.begin_status().ok()) return tx.begin_status();
  {
    auto st = rep_->ostmt(kDocSnapshot);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel).bind(2, title).bind_blob(3, snapshot.data(), snapshot.size());
    if (Status s = q->bind(4, now_ms).run(); !s.ok()) return s;
    if (rep_->odb.changes() == 0) {
      return Status(StatusCode::not_found,
                    fmt::format("document \"{}\" of channel \"{}\" is not in the cache", title,
                                channel),
                    "no_such_doc");
    }
  }
  if (Status s = clear_doc_rows(*rep_, channel, title, false); !s.ok()) return s;
  return tx.commit();
}

Result<std::vector<Cache::DocOutboxRow>> Cache::doc_outbox(const std::string& channel,
                                                           const std::string& title) {
  bool all = channel.empty() && title.empty();
  auto st = rep_->ostmt(all ? kDocOutboxAll : kDocOutboxOf);
  if (!st) return st.status();
  Scoped q(**st);
  if (!all) q->bind(1, channel).bind(2, title);
  std::vector<DocOutboxRow> out;
  for (;;) {
    auto more = q->step();
    if (!more) return more.status();
    if (!*more) break;
    out.push_back(DocOutboxRow{q->column_int(0), q->column_text(1), q->column_text(2),
                               q->column_text(3), split_names(q->column_text(4))});
  }
  return out;
}

Result<std::uint64_t> Cache::doc_outbox_count(const std::string& channel,
                                              const std::string& title) {
  auto st = rep_->ostmt(kDocOutboxCount);
  if (!st) return st.status();
  Scoped q(**st);
  q->bind(1, channel).bind(2, title);
  auto row = q->step();
  if (!row) return row.status();
  return *row ? static_cast<std::uint64_t>(q->column_int(0)) : 0;
}

Status Cache::doc_outbox_remove(std::int64_t ord) {
  auto st = rep_->ostmt(kDocOutboxRemove);
  if (!st) return st.status();
  Scoped q(**st);
  return q->bind(1, ord).run();
}

Status Cache::doc_forget(const std::string& channel, const std::string& title) {
  Transaction tx(rep_->odb);
  if (!tx.begin_status().ok()) return tx.begin_status();
  if (Status s = clear_doc_rows(*rep_, channel, title, true); !s.ok()) return s;
  auto st = rep_->ostmt(kDocDelete);
  if (!st) return st.status();
  {
    Scoped q(**st);
    if (Status s = q->bind(1, channel).bind(2, title).run(); !s.ok()) return s;
  }
  return tx.commit();
}

}  // namespace parley::store
