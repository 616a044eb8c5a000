// The store's checkpoints off the event loop (checkpointer.hpp).
#include "checkpointer.hpp"

#include <fmt/format.h>

#include <chrono>

namespace parley::server {

namespace {

// SQLite's own default, given back to the writer when the thread stops.
constexpr int kAutoCheckpointPages = 1000;

}  // namespace

Result<std::unique_ptr<Checkpointer>> Checkpointer::start(const std::string& path,
                                                          sqlite3* writer, bool full_sync,
                                                          Limits limits) {
  sqlite3* own = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &own, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc == SQLITE_OK) {
    // A checkpoint syncs the log and the database as its connection's
    // synchronous says: the same as the writer's.
    const char* sync = full_sync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL";
    rc = sqlite3_exec(own, sync, nullptr, nullptr, nullptr);
  }
  if (rc != SQLITE_OK) {
    Status s(StatusCode::io_error,
             fmt::format("checkpoints of \"{}\": {}", path,
                         own != nullptr ? sqlite3_errmsg(own) : sqlite3_errstr(rc)));
    sqlite3_close(own);
    return s;
  }
  return std::unique_ptr<Checkpointer>(new Checkpointer(own, writer, limits));
}

Checkpointer::Checkpointer(sqlite3* own, sqlite3* writer, Limits limits)
    : own_(own), writer_(writer), limits_(limits) {
  thread_ = std::thread([this] { run(); });
  // Replaces the writer's automatic checkpoint (itself a commit hook).
  sqlite3_wal_hook(writer_, &Checkpointer::on_commit, this);
}

Checkpointer::~Checkpointer() {
  sqlite3_wal_autocheckpoint(writer_, kAutoCheckpointPages);
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
  sqlite3_close(own_);
}

int Checkpointer::on_commit(void* self, sqlite3* db, const char* schema, int pages) {
  auto* c = static_cast<Checkpointer*>(self);
  c->wal_pages_.store(pages);
  if (pages >= c->limits_.max_pages) {
    // The log has not started over for a long time: copy the rest here, with
    // the writer (this thread) paused, so that the next commit restarts it.
    // If the thread is in a checkpoint, it stands aside after it, and the
    // next commit tries again.
    c->loop_waiting_.store(true);
    std::unique_lock lock(c->checkpoint_mu_, std::try_to_lock);
    if (!lock.owns_lock()) return SQLITE_OK;
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    c->loop_waiting_.store(false);
    ++c->loop_runs_;
    return SQLITE_OK;
  }
  if (pages >= c->limits_.wake_pages) {
    std::lock_guard lock(c->mu_);
    if (!c->wanted_) {
      c->wanted_ = true;
      c->cv_.notify_one();
    }
  }
  return SQLITE_OK;
}

void Checkpointer::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || wanted_; });
    if (stop_) return;
    wanted_ = false;
    // While the loop waits for its turn, leave it the next checkpoint; not
    // for long, since it tries again only at its next commit.
    if (loop_waiting_.load()) {
      cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stop_; });
      if (stop_) return;
    }
    lock.unlock();
    {
      std::lock_guard checkpoint(checkpoint_mu_);
      // PASSIVE: copies what no reader still needs, waits for no one. An error
      // (SQLITE_BUSY, I/O) leaves the log as it is; the next commit asks again.
      sqlite3_wal_checkpoint_v2(own_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    }
    ++thread_runs_;
    lock.lock();
  }
}

}  // namespace parley::server
