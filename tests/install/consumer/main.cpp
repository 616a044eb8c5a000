// Uses the installed public API only: opens a client with a malformed token,
// which fails before any I/O, and prints why, plus the library version. Its
// own analytics sink and transport subclass the library's interfaces, whose
// vtables and type information only the shared library defines: this links
// only if libparley.so exports them.
//
//   consumer DATA_DIR
#include <parley/parley.hpp>
#include <parley/sys/transport.hpp>

#include <cstdio>
#include <memory>

namespace {

class CountingSink : public parley::sys::AnalyticsSink {
 public:
  void record(const parley::sys::AnalyticsEvent&) override { ++events_; }
  int events_ = 0;
};

class NullTransport : public parley::sys::Transport {
 public:
  void connect(const std::string&, const std::string&, parley::sys::TransportHandler*) override {}
  void send(std::string) override {}
  void close(int, const std::string&) override {}
  void poll(std::chrono::milliseconds) override {}
  void wake() override {}
};

}  // namespace

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
  opts.analytics = std::make_shared<CountingSink>();
  opts.transport = std::make_shared<NullTransport>();
  // Type information of the app's class, checked through the library's base.
  if (dynamic_cast<NullTransport*>(opts.transport.get()) == nullptr) {
    std::fprintf(stderr, "dynamic_cast through parley::sys::Transport failed\n");
    return 1;
  }
  auto client = parley::Client::open(opts);
  if (client) {
    std::fprintf(stderr, "open succeeded with a malformed token\n");
    return 1;
  }
  std::printf("open failed: %s (%s)\n", client.status().reason().c_str(),
              client.status().message().c_str());
  return 0;
}
