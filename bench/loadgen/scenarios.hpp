// The three scenarios of parley-bench (bench/README.md, docs/benchmarks.md):
// fan-out throughput, end-to-end latency, and idle connection capacity. Each
// is bounded in count and time, prints a table and one JSON line, and returns
// 0 when it ran to the end with every check passed.
#pragma once

#include <string>

#include "dialect.hpp"
#include "loop.hpp"

namespace parley::loadgen {

struct Options {
  std::string label;       // the target's name in the output ("parley", "nats", "mosquitto")
  Target target;           // where the server listens
  long server_pid = 0;     // the server's process, for its CPU and RSS (0: not measured)
  int sources = 0;         // local addresses 127.0.0.1..N (0: as many as the count needs)
  double timeout_s = 120;  // the longest any one phase may take

  // Fan-out: one publisher, `subscribers` in one topic, `messages` of `size`
  // bytes, at most `window` messages per subscriber published and not yet
  // delivered, and at most `batch` messages per frame the publisher writes.
  int subscribers = 100;
  long messages = 20000;
  long size = 200;
  long window = 1000;
  long batch = 0;  // 0: as many as fit in 16 KiB

  // Latency: `latency_subscribers`, `rate` messages per second for `seconds`.
  int latency_subscribers = 10;
  long rate = 1000;
  double seconds = 10;

  // Capacity: `connections` idle connections, at most `connect_window` at once
  // in the handshake, then `idle_seconds` of watching the server idle.
  long connections = 10000;
  long connect_window = 256;
  double idle_seconds = 5;

  // Docs: `doc_clients` edit one document, each one edit every
  // `edit_interval_ms` for `seconds` (docs.cpp).
  int doc_clients = 50;
  long edit_interval_ms = 100;
};

int run_fanout(Dialect& dialect, const Options& options);
int run_latency(Dialect& dialect, const Options& options);
int run_capacity(Dialect& dialect, const Options& options);
// Needs the Parley dialect (it authenticates the connections).
int run_docs(Dialect& parley, const Options& options);

}  // namespace parley::loadgen
