/* For the what-if run of parley-bench-cold-sync only (LD_PRELOAD into the
 * bench's sync client): fsync and fdatasync return at once, so SQLite's
 * commits never wait for the disk. It shows how much of a sync is still
 * spent waiting for fsync (parley.db's checkpoints; it commits with
 * synchronous = NORMAL). Never for real use: it voids durability. */
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
