// Uses the installed public API only: opens a client with a malformed token,
// which fails before any I/O, and prints why, plus the library version.
//
//   consumer DATA_DIR
#include <parley/parley.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer DATA_DIR\n");
    return 2;
  }
  std::printf("version %s protocol %s\n", parley::version(), parley::kProtocolName);

  parley::ClientOptions opts;
  opts.server_url = "ws://127.0.0.1:1";
  opts.token = "not-a-token";
  opts.data_dir = argv[1];
  opts.auto_connect = false;
  auto client = parley::Client::open(opts);
  if (client) {
    std::fprintf(stderr, "open succeeded with a malformed token\n");
    return 1;
  }
  std::printf("open failed: %s (%s)\n", client.status().reason().c_str(),
              client.status().message().c_str());
  return 0;
}
