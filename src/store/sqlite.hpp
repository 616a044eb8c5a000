// A thin RAII layer over SQLite: a connection, prepared statements, and
// transactions. Used by the client cache and by the reference server's store.
//
// Use from one thread at a time (each owner keeps its connection on its own thread).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "parley/status.hpp"

namespace parley::store {

class Statement;

class Database {
 public:
  Database() = default;
  ~Database();
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Opens or creates `path` read-write. Sets a busy timeout and turns on
  // foreign keys. Journal mode and synchronous are the caller's to set.
  static Result<Database> open(const std::string& path);

  // Runs one or more statements without results.
  Status exec(std::string_view sql);
  // Prepares one statement.
  Result<Statement> prepare(std::string_view sql);

  // PRAGMA user_version.
  Result<int> user_version();
  Status set_user_version(int version);

  std::int64_t last_insert_rowid() const;
  int changes() const;
  sqlite3* handle() const { return db_; }
  // An io_error (or corrupt, for SQLITE_CORRUPT / SQLITE_NOTADB) Status with
  // SQLite's message, prefixed with `what`.
  Status error(std::string_view what, int rc) const;

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

class Statement {
 public:
  Statement() = default;
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binding is 1-based, as in SQLite. Each returns *this for chaining.
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, std::uint64_t value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, std::string_view text);  // copied (SQLITE_TRANSIENT)
  Statement& bind(int index, const std::string& text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  // Not copied (SQLITE_STATIC): `text` must stay unchanged until reset(), which
  // run() calls. Saves a copy per value on hot inserts.
  Statement& bind_static(int index, std::string_view text);
  Statement& bind_blob(int index, const void* data, std::size_t size);
  Statement& bind_null(int index);

  // Steps once: a row (true), done (false), or an error.
  Result<bool> step();
  // Steps to the end, for statements without rows.
  Status run();
  // Resets and clears bindings so the statement can run again.
  void reset();

  std::int64_t column_int(int index) const;
  std::string column_text(int index) const;
  bool column_is_null(int index) const;

 private:
  friend class Database;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  int bind_rc_ = SQLITE_OK;  // first binding error, reported by step()
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless commit() ran.
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  const Status& begin_status() const { return begin_; }
  Status commit();

 private:
  Database& db_;
  Status begin_;
  bool done_ = false;
};

}  // namespace parley::store
