/* For the what-if run of parley-bench-cold-sync only (LD_PRELOAD into the
 * bench's sync client): fsync and fdatasync return at once, so SQLite's
 * commits never wait for the disk. It shows how much of a sync is spent
 * waiting for fsync: an upper bound of what the cache would gain from
 * PRAGMA synchronous = NORMAL. Never for real use: it voids durability. */
int fsync(int fd);
int fdatasync(int fd);

int fsync(int fd) {
  (void)fd;
  return 0;
}

int fdatasync(int fd) {
  (void)fd;
  return 0;
}
