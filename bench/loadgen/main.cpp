// parley-bench: a load generator for Parley and, to compare, for NATS and
// MQTT brokers, all driven by the same client code (bench/README.md).
//
//   parley-bench SCENARIO --url ws://127.0.0.1:PORT/ [options]
//
// SCENARIO: fanout, latency, capacity, or all (the three in turn); docs
// (Parley only: collaborative editing of one document, issue 15).
// Options (defaults in brackets):
//   --proto parley|nats|mqtt  the protocol the server speaks [parley]
//   --key FILE                Parley: the server's signing key, to mint tokens
//   --label NAME              the target's name in the output [the protocol]
//   --server-pid PID          the server's process, for its CPU and RSS figures
//   --sources N               local addresses 127.0.0.1..N [1 per 25,000 connections]
//   --timeout S               the longest one phase may take [120]
//   fanout:   --subscribers 100 --messages 20000 --size 200 --window 1000
//             --batch N (messages per frame; default: as many as fit in 16 KiB)
//   latency:  --latency-subscribers 10 --rate 1000 --seconds 10 (--size too)
//   capacity: --connections 10000 --connect-window 256 --idle-seconds 5
//   docs:     --clients 50 --edit-ms 100 --seconds 10
//
// Everything it opens is a client connection to --url; it never listens.
// Exit status: 0 when every scenario run completed with its checks passed,
// 1 when one did not, 2 on a usage error.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "../bench_util.hpp"
#include "dialect.hpp"
#include "scenarios.hpp"

namespace {

int usage(const char* why) {
  std::fprintf(stderr,
               "parley-bench: %s\n"
               "usage: parley-bench fanout|latency|capacity|all|docs --url ws://127.0.0.1:PORT/ "
               "[--proto parley|nats|mqtt] [--key FILE] [--server-pid PID] [options]\n"
               "(options: see the top of bench/loadgen/main.cpp or bench/README.md)\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace parley::loadgen;
  if (argc < 2 || argv[1][0] == '-') return usage("no scenario given");
  std::string scenario = argv[1];
  if (scenario != "fanout" && scenario != "latency" && scenario != "capacity" &&
      scenario != "all" && scenario != "docs") {
    return usage(("unknown scenario \"" + scenario + "\"").c_str());
  }
  parley::bench::Args args(argc, argv);
  Options o;
  std::string url = args.str("url");
  if (url.empty()) return usage("--url is required");
  if (!parse_ws_url(url, o.target))
    return usage(("--url \"" + url + "\": not ws://HOST:PORT/").c_str());
  std::string proto = args.str("proto", "parley");
  o.label = args.str("label", proto);
  o.server_pid = args.num("server-pid", 0);
  o.sources = static_cast<int>(args.num("sources", 0));
  o.timeout_s = static_cast<double>(args.num("timeout", 120));
  o.subscribers = static_cast<int>(args.num("subscribers", o.subscribers));
  o.messages = args.num("messages", o.messages);
  o.size = args.num("size", o.size);
  o.window = args.num("window", o.window);
  o.batch = args.num("batch", 0);
  if (o.batch <= 0) o.batch = std::max(1L, 16384 / (o.size + 160));
  o.latency_subscribers = static_cast<int>(args.num("latency-subscribers", 10));
  o.rate = args.num("rate", o.rate);
  o.seconds = static_cast<double>(args.num("seconds", 10));
  o.connections = args.num("connections", o.connections);
  o.connect_window = args.num("connect-window", o.connect_window);
  o.idle_seconds = static_cast<double>(args.num("idle-seconds", 5));
  o.doc_clients = static_cast<int>(args.num("clients", o.doc_clients));
  o.edit_interval_ms = args.num("edit-ms", o.edit_interval_ms);
  if (o.subscribers < 1 || o.messages < 1 || o.size < 32 || o.size > 8192 || o.window < 1 ||
      o.latency_subscribers < 1 || o.rate < 1 || o.seconds <= 0 || o.connections < 1 ||
      o.connect_window < 1 || o.idle_seconds < 0 || o.timeout_s <= 0 || o.doc_clients < 2 ||
      o.doc_clients > 1000 || o.edit_interval_ms < 1) {
    return usage(
        "a count is out of range (--size: 32 to 8192 bytes, --clients: 2 to 1000, "
        "the rest positive)");
  }

  std::unique_ptr<Dialect> dialect;
  if (proto == "parley") {
    std::string key = args.str("key");
    if (key.empty()) return usage("--proto parley needs --key (the server's signing key file)");
    std::string error;
    dialect = make_parley_dialect(key, error);
    if (!dialect) {
      std::fprintf(stderr, "parley-bench: --key %s: %s\n", key.c_str(), error.c_str());
      return 2;
    }
  } else if (scenario == "docs") {
    return usage("the docs scenario speaks --proto parley only");
  } else if (proto == "mqtt") {
    dialect = make_mqtt_dialect();
  } else if (proto == "nats") {
    dialect = make_nats_dialect();
  } else {
    return usage(("unknown --proto \"" + proto + "\"").c_str());
  }

  int status = 0;
  if (scenario == "fanout" || scenario == "all") status |= run_fanout(*dialect, o);
  if (scenario == "latency" || scenario == "all") status |= run_latency(*dialect, o);
  if (scenario == "capacity" || scenario == "all") status |= run_capacity(*dialect, o);
  if (scenario == "docs") status |= run_docs(*dialect, o);
  return status;
}
