// The store's checkpoints off the writing thread (examples/server/checkpointer.hpp): the log is
// copied back and starts over, it stays bounded under a writer that never pauses, and every
// committed row is still there afterwards.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "checkpointer.hpp"
#include "server_fixture.hpp"
#include "store/sqlite.hpp"

using namespace parley;
using namespace parley::server;
using parley::test::TempDir;

namespace {

store::Database open_wal(const std::string& path) {
  auto db = store::Database::open(path);
  REQUIRE_MESSAGE(db.ok(), db.status().to_string());
  REQUIRE(db->exec("PRAGMA journal_mode = WAL").ok());
  REQUIRE(db->exec("CREATE TABLE IF NOT EXISTS t (x BLOB)").ok());
  return std::move(*db);
}

std::int64_t rows(store::Database& db) {
  auto count = db.prepare("SELECT count(*) FROM t");
  REQUIRE(count.ok());
  auto row = count->step();
  REQUIRE((row.ok() && *row));
  return count->column_int(0);
}

}  // namespace

TEST_CASE("checkpointer: the thread copies the log back and the writer starts it over") {
  TempDir dir;
  std::string path = (dir.path / "wal.db").string();
  store::Database db = open_wal(path);
  auto checkpointer = Checkpointer::start(path, db.handle(), false, {8, 1 << 20});
  REQUIRE_MESSAGE(checkpointer.ok(), checkpointer.status().to_string());
  for (int i = 0; i < 100; ++i) REQUIRE(db.exec("INSERT INTO t VALUES (zeroblob(3000))").ok());
  // A pause now and then lets a checkpoint finish with nothing newer in the log; the next
  // commit then writes at its start again. Bounded: about 3 s at most.
  bool restarted = false;
  for (int i = 0; i < 300 && !restarted; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(db.exec("INSERT INTO t VALUES (zeroblob(10))").ok());
    restarted = (*checkpointer)->wal_pages() < 8;
  }
  CHECK((*checkpointer)->thread_runs() > 0);
  CHECK((*checkpointer)->loop_runs() == 0);
  CHECK(restarted);
  checkpointer->reset();
  CHECK(rows(db) >= 101);
}

TEST_CASE("checkpointer: past max_pages the writer copies the rest itself, so the log stays "
          "bounded") {
  TempDir dir;
  std::string path = (dir.path / "wal.db").string();
  store::Database db = open_wal(path);
  // The thread is never woken (wake above max): only the bound keeps the log small.
  auto checkpointer = Checkpointer::start(path, db.handle(), false, {1 << 20, 64});
  REQUIRE_MESSAGE(checkpointer.ok(), checkpointer.status().to_string());
  int most = 0;
  for (int i = 0; i < 500; ++i) {
    REQUIRE(db.exec("INSERT INTO t VALUES (zeroblob(3000))").ok());
    most = std::max(most, (*checkpointer)->wal_pages());
  }
  CHECK((*checkpointer)->loop_runs() > 0);
  CHECK((*checkpointer)->thread_runs() == 0);
  CHECK(most <= 64 + 4);  // a commit or so past the bound, not 500 commits of log
  checkpointer->reset();
  CHECK(rows(db) == 500);
}

TEST_CASE("checkpointer: a database it cannot open is an io_error naming the path") {
  TempDir dir;
  store::Database db = open_wal((dir.path / "a.db").string());
  auto checkpointer = Checkpointer::start((dir.path / "missing" / "b.db").string(), db.handle(),
                                          false);
  REQUIRE_FALSE(checkpointer.ok());
  CHECK(checkpointer.status().code() == StatusCode::io_error);
  CHECK(checkpointer.status().message().find("missing") != std::string::npos);
}
