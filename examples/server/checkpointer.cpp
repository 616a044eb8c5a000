// The store's background checkpoint (checkpointer.hpp).
#include "checkpointer.hpp"

#include <fmt/format.h>

#include <chrono>

namespace parley::server {

Result<std::unique_ptr<Checkpointer>> Checkpointer::start(const std::string& path,
                                                          sqlite3* writer, int threshold_pages) {
  sqlite3* own = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &own, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    Status s(StatusCode::io_error, fmt::format("checkpointer: cannot open \"{}\": {}", path,
                                               own ? sqlite3_errmsg(own) : sqlite3_errstr(rc)));
    sqlite3_close(own);
    return s;
  }
  return std::unique_ptr<Checkpointer>(new Checkpointer(own, writer, threshold_pages));
}

Checkpointer::Checkpointer(sqlite3* own, sqlite3* writer, int threshold_pages)
    : own_(own), writer_(writer), threshold_pages_(threshold_pages) {
  sqlite3_wal_hook(writer_, &Checkpointer::on_commit, this);
  thread_ = std::thread([this] { run(); });
}

Checkpointer::~Checkpointer() {
  // Back to SQLite's own checkpoint (the writer's close makes the last one).
  sqlite3_wal_autocheckpoint(writer_, threshold_pages_);
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
  sqlite3_close(own_);
}

std::uint64_t Checkpointer::runs() const {
  std::lock_guard lock(mu_);
  return runs_;
}

int Checkpointer::wal_pages() const {
  std::lock_guard lock(mu_);
  return wal_pages_;
}

int Checkpointer::on_commit(void* self, sqlite3*, const char*, int pages) {
  auto* c = static_cast<Checkpointer*>(self);
  bool due;
  {
    std::lock_guard lock(c->mu_);
    due = pages >= c->threshold_pages_ && c->wal_pages_ < c->threshold_pages_;
    c->wal_pages_ = pages;
  }
  if (due) c->cv_.notify_one();
  return SQLITE_OK;
}

void Checkpointer::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    // Woken at the threshold; otherwise a look every second, so that a quiet
    // server's WAL does not wait for the next burst.
    cv_.wait_for(lock, std::chrono::seconds(1),
                 [this] { return stop_ || wal_pages_ >= threshold_pages_; });
    if (stop_) break;
    if (wal_pages_ == 0) continue;
    lock.unlock();
    int log_pages = 0;
    int done_pages = 0;
    int rc = sqlite3_wal_checkpoint_v2(own_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages,
                                       &done_pages);
    lock.lock();
    ++runs_;
    if (rc == SQLITE_OK && done_pages == log_pages) {
      // All of it copied: the writer starts the WAL over at its next commit.
      wal_pages_ = 0;
    } else {
      // The writer held the end of the log (or SQLITE_BUSY): try again soon,
      // not at once.
      cv_.wait_for(lock, std::chrono::milliseconds(20), [this] { return stop_; });
    }
  }
}

}  // namespace parley::server
