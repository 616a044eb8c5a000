// WAL checkpoints for the server's store, off the event loop.
//
// SQLite's automatic checkpoint runs inside the commit that crosses its
// threshold, on the thread that commits: for parley-server the event loop,
// which then waits for the copy and its fsyncs (milliseconds to tens of
// milliseconds) before it answers anyone. Checkpointer turns it off on the
// loop's connection and runs PASSIVE checkpoints on a thread of its own, with
// a connection of its own; a PASSIVE checkpoint never blocks the writer.
//
// The log starts over only when a writer begins a transaction while all of it
// has been copied back, which a writer that never pauses for a whole
// checkpoint does not allow. So the log is bounded on the loop: once it holds
// `max_pages`, the loop copies the rest itself (the thread asked to stand
// aside first), which stalls it once per `max_pages` of log instead of once
// per SQLite's 1,000. Commits and their durability are unchanged: a checkpoint
// only copies what is already committed (docs/reliability.md).
//
//   auto checkpointer = Checkpointer::start(path, db.handle(), full_sync);
//
// Thread-safety: start() and the destructor on the thread that owns `writer`;
// the rest is internal. The caller keeps `writer` open until the
// Checkpointer is destroyed.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "parley/status.hpp"

namespace parley::server {

class Checkpointer {
 public:
  // Each start of the log over costs the writer one fsync (of the log's new header), so the
  // thread lets the log grow to wake_pages first: at 4 pages a message, one fsync on the loop
  // per 1,000 messages or so, against 3 per 250 with SQLite's automatic checkpoint.
  struct Limits {
    int wake_pages = 4096;   // the thread checkpoints once the log holds this many pages (16 MiB)
    int max_pages = 16384;   // the loop copies the rest itself past this (64 MiB)
  };

  // Opens a second connection to `path` (an existing WAL database) and starts
  // the thread; installs the commit hook on `writer` in place of its
  // automatic checkpoint. full_sync: the same PRAGMA synchronous as `writer`.
  static Result<std::unique_ptr<Checkpointer>> start(const std::string& path, sqlite3* writer,
                                                     bool full_sync, Limits limits);
  static Result<std::unique_ptr<Checkpointer>> start(const std::string& path, sqlite3* writer,
                                                     bool full_sync) {
    return start(path, writer, full_sync, Limits{});
  }

  // Stops the thread (after the checkpoint it may be running), closes its
  // connection and gives `writer` its automatic checkpoint back.
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // For tests and metrics: checkpoints run by the thread, by the loop (each a
  // stall of the loop), and the log's size in pages at the last commit.
  std::uint64_t thread_runs() const { return thread_runs_.load(); }
  std::uint64_t loop_runs() const { return loop_runs_.load(); }
  int wal_pages() const { return wal_pages_.load(); }

 private:
  Checkpointer(sqlite3* own, sqlite3* writer, Limits limits);
  // sqlite3_wal_hook: runs on the writer's thread after each commit.
  static int on_commit(void* self, sqlite3* db, const char* schema, int pages);
  void run();

  sqlite3* own_ = nullptr;     // used by the thread only
  sqlite3* writer_ = nullptr;  // the loop's connection
  const Limits limits_;
  std::atomic<int> wal_pages_{0};
  std::atomic<bool> loop_waiting_{false};  // the loop wants the next checkpoint
  std::atomic<std::uint64_t> thread_runs_{0};
  std::atomic<std::uint64_t> loop_runs_{0};
  std::mutex checkpoint_mu_;  // held by whoever runs a checkpoint
  std::mutex mu_;
  std::condition_variable cv_;
  bool wanted_ = false;  // guarded by mu_
  bool stop_ = false;    // guarded by mu_
  std::thread thread_;
};

}  // namespace parley::server
