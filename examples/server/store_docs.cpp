// ServerStore: collaborative documents (docs/collab.md, "On the server").
//
// A document is a row of docs (title, kind, the doc event that created it,
// the replica's size and version) plus its content: the latest snapshot and
// the updates stored after it, numbered 1, 2, ... per document. compact_doc
// folds updates into a new snapshot.
#include <fmt/format.h>

#include "store.hpp"

namespace parley::server {
namespace {

Status internal(std::string_view what, const Status& status) {
  return Status(status.code(), fmt::format("{}: {}", what, status.message()), "internal");
}

}  // namespace

Status ServerStore::put_doc(std::int64_t channel_id, std::uint64_t seq, const std::string& title,
                            const std::string& kind, const std::string& creator, std::int64_t ts,
                            std::int64_t* id) {
  auto taken = db_.prepare("SELECT 1 FROM docs WHERE channel_id = ?1 AND title = ?2");
  if (!taken) return internal("doc title", taken.status());
  taken->bind(1, channel_id).bind(2, title);
  auto row = taken->step();
  if (!row) return internal("doc title", row.status());
  if (*row) {
    return Status(StatusCode::invalid_argument,
                  fmt::format("a document \"{}\" exists already in this channel", title),
                  "doc_exists");
  }
  auto stmt = db_.prepare(
      "INSERT INTO docs (channel_id, title, kind, creator, created, seq) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!stmt) return internal("new doc", stmt.status());
  stmt->bind(1, channel_id).bind(2, title).bind(3, kind).bind(4, creator).bind(5, ts).bind(6, seq);
  if (Status s = stmt->run(); !s.ok()) return internal("new doc", s);
  *id = db_.last_insert_rowid();
  return Status();
}

Result<std::vector<StoredDoc>> ServerStore::docs() {
  auto stmt = db_.prepare(
      "SELECT d.id, c.name, d.title, d.kind, d.creator, d.created, d.seq, d.size, d.version "
      "FROM docs d JOIN channels c ON c.id = d.channel_id ORDER BY c.name, d.title");
  if (!stmt) return internal("docs", stmt.status());
  std::vector<StoredDoc> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return internal("docs", row.status());
    if (!*row) break;
    StoredDoc d;
    d.id = stmt->column_int(0);
    d.channel = stmt->column_text(1);
    d.title = stmt->column_text(2);
    d.kind = stmt->column_text(3);
    d.creator = stmt->column_text(4);
    d.created = stmt->column_int(5);
    d.seq = static_cast<std::uint64_t>(stmt->column_int(6));
    d.size = static_cast<std::uint64_t>(stmt->column_int(7));
    d.version = static_cast<std::uint64_t>(stmt->column_int(8));
    out.push_back(std::move(d));
  }
  return out;
}

Result<StoredDocContent> ServerStore::doc_content(std::int64_t doc_id) {
  StoredDocContent out;
  auto head = db_.prepare("SELECT snapshot, snapshot_n FROM docs WHERE id = ?1");
  if (!head) return internal("doc snapshot", head.status());
  head->bind(1, doc_id);
  auto row = head->step();
  if (!row) return internal("doc snapshot", row.status());
  if (!*row) {
    return Status(StatusCode::not_found, fmt::format("document {} does not exist", doc_id),
                  "no_such_doc");
  }
  if (!head->column_is_null(0)) out.snapshot = head->column_text(0);  // the blob's bytes
  out.snapshot_n = static_cast<std::uint64_t>(head->column_int(1));
  auto stmt = db_.prepare("SELECT n, data FROM doc_updates WHERE doc_id = ?1 AND n > ?2 ORDER BY n");
  if (!stmt) return internal("doc updates", stmt.status());
  stmt->bind(1, doc_id).bind(2, out.snapshot_n);
  for (;;) {
    auto more = stmt->step();
    if (!more) return internal("doc updates", more.status());
    if (!*more) break;
    out.updates.emplace_back(static_cast<std::uint64_t>(stmt->column_int(0)),
                             stmt->column_text(1));
  }
  return out;
}

Result<std::uint64_t> ServerStore::append_doc_update(std::int64_t doc_id, std::string_view data,
                                                     const std::string& user, std::int64_t ts,
                                                     std::uint64_t size, std::uint64_t version) {
  store::Transaction tx(db_);
  if (!tx.begin_status().ok()) return internal("doc update", tx.begin_status());
  auto bump = db_.prepare(
      "UPDATE docs SET last_n = last_n + 1, size = ?2, version = ?3 WHERE id = ?1 "
      "RETURNING last_n");
  if (!bump) return internal("doc update", bump.status());
  bump->bind(1, doc_id).bind(2, size).bind(3, version);
  auto row = bump->step();
  if (!row) return internal("doc update", row.status());
  if (!*row) {
    return Status(StatusCode::not_found, fmt::format("document {} does not exist", doc_id),
                  "no_such_doc");
  }
  auto n = static_cast<std::uint64_t>(bump->column_int(0));
  bump->reset();
  auto insert = db_.prepare(
      "INSERT INTO doc_updates (doc_id, n, data, user, ts) VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!insert) return internal("doc update", insert.status());
  insert->bind(1, doc_id).bind(2, n).bind_blob(3, data.data(), data.size()).bind(4, user).bind(5, ts);
  if (Status s = insert->run(); !s.ok()) return internal("doc update", s);
  if (Status s = tx.commit(); !s.ok()) return internal("doc update", s);
  return n;
}

Status ServerStore::compact_doc(std::int64_t doc_id, std::string_view snapshot,
                                std::uint64_t upto_n) {
  store::Transaction tx(db_);
  if (!tx.begin_status().ok()) return internal("doc snapshot", tx.begin_status());
  auto put = db_.prepare("UPDATE docs SET snapshot = ?2, snapshot_n = ?3 WHERE id = ?1");
  if (!put) return internal("doc snapshot", put.status());
  put->bind(1, doc_id).bind_blob(2, snapshot.data(), snapshot.size()).bind(3, upto_n);
  if (Status s = put->run(); !s.ok()) return internal("doc snapshot", s);
  auto drop = db_.prepare("DELETE FROM doc_updates WHERE doc_id = ?1 AND n <= ?2");
  if (!drop) return internal("doc snapshot", drop.status());
  drop->bind(1, doc_id).bind(2, upto_n);
  if (Status s = drop->run(); !s.ok()) return internal("doc snapshot", s);
  return tx.commit();
}

}  // namespace parley::server
