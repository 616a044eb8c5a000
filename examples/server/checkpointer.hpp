// Moves the store's write-ahead log into the database file on a thread of its
// own. SQLite's automatic checkpoint runs inside the commit that crosses its
// threshold, on the committing thread: for the server that is the event loop,
// and the checkpoint's fsyncs stalled every connection (the tail of the
// latency benchmark, docs/benchmarks.md). With the Checkpointer the loop only
// appends to the WAL; this thread, on its own connection, copies it back
// (PASSIVE: never waiting for the writer) once it holds `threshold_pages`
// pages, and at least every second while it holds any.
//
// Durability is unchanged: an acknowledgement waits for its commit to be in
// the WAL (synchronous = NORMAL) or on disk (FULL), never for a checkpoint.
#pragma once

#include <sqlite3.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "parley/status.hpp"

namespace parley::server {

class Checkpointer {
 public:
  // Opens a second connection to `path` and takes over `writer`'s WAL hook
  // (which turns its automatic checkpoint off). `writer` must outlive the
  // Checkpointer.
  static Result<std::unique_ptr<Checkpointer>> start(const std::string& path, sqlite3* writer,
                                                     int threshold_pages = 1000);
  // Gives `writer` its automatic checkpoint back and stops the thread.
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Checkpoints run so far, and the WAL's size in pages as of the writer's
  // last commit (0 once all of it was copied back); for tests and metrics.
  std::uint64_t runs() const;
  int wal_pages() const;

 private:
  Checkpointer(sqlite3* own, sqlite3* writer, int threshold_pages);
  // The writer's WAL hook: called after each commit with the WAL's size.
  static int on_commit(void* self, sqlite3* db, const char* name, int pages);
  void run();

  sqlite3* own_;
  sqlite3* writer_;
  int threshold_pages_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int wal_pages_ = 0;  // as of the writer's last commit
  bool stop_ = false;
  std::uint64_t runs_ = 0;
  std::thread thread_;
};

}  // namespace parley::server
