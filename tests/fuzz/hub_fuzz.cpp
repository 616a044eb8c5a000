// The reference server's request handling (examples/server/hub.hpp) behind its
// transports: frames from up to three sessions go into one Hub over an
// in-memory store, as the WebSocket and loopback backends hand them over.
//
// The input is a script, one line each:
//   [0-2]FRAME      a text frame from session 0, 1 or 2 (no digit: session 0)
//   [0-2]!auth USER an auth frame with a valid token for USER
//   [0-2]!admin USER the same with an administrator's token
//   [0-2]!binary    a binary frame (refused by the server)
//   [0-2]!close     the connection drops; the next line for it opens a new one
//   !tick           presence's timers run (grace period 0: offline at once)
// After each line every session's queue is drained as the server would, and
// every frame it sends must decode as a client would decode it.
#include <array>
#include <memory>
#include <string>

#include "fuzz_support.hpp"
#include "hub.hpp"
#include "metrics.hpp"
#include "protocol/codec.hpp"
#include "session.hpp"
#include "store.hpp"

namespace {

using namespace parley;
using namespace parley::server;

// Small bounds, so that packing, frame limits and slow consumers are reached.
constexpr std::size_t kMaxFrame = 4096;
constexpr std::size_t kMaxQueuedBytes = 64 * 1024;

class FuzzSession final : public Session {
 public:
  explicit FuzzSession(std::uint64_t id) : Session(id, kMaxFrame, kMaxQueuedBytes) {}
  std::string describe() const override { return "fuzz#" + std::to_string(id()); }

 protected:
  void request_flush() override {}
};

void check_frame(const std::string& frame) {
  FUZZ_CHECK(!frame.empty(), "empty frame");
  FUZZ_CHECK(frame.size() <= kMaxFrame || frame[0] == '{',
             "a packed frame of %zu bytes is over the limit", frame.size());
  for (const auto& item : wire::decode_server_frame(frame)) {
    const auto* error = std::get_if<wire::DecodeError>(&item);
    FUZZ_CHECK(error == nullptr, "the server sent what a client cannot decode (%s): %.300s",
               error->message.c_str(), frame.c_str());
  }
}

struct Run {
  std::unique_ptr<ServerStore> store;
  Metrics metrics;
  std::unique_ptr<Hub> hub;
  std::array<std::unique_ptr<FuzzSession>, 3> sessions;
  std::uint64_t next_id = 1;

  FuzzSession& session(std::size_t i) {
    if (!sessions[i]) {
      sessions[i] = std::make_unique<FuzzSession>(next_id++);
      hub->on_open(*sessions[i]);
    }
    return *sessions[i];
  }

  void drop(std::size_t i) {
    if (!sessions[i]) return;
    hub->on_close(*sessions[i]);
    sessions[i].reset();
  }

  // What the server's flush does after each pass of its loop.
  void drain() {
    for (std::size_t i = 0; i < sessions.size(); ++i) {
      if (!sessions[i]) continue;
      std::string frame;
      while (sessions[i]->next_frame(&frame, 0)) check_frame(frame);
      if (sessions[i]->closing()) drop(i);
    }
  }

  void line(std::string_view text) {
    std::size_t i = 0;
    if (!text.empty() && text[0] >= '0' && text[0] <= '2') {
      i = static_cast<std::size_t>(text[0] - '0');
      text.remove_prefix(1);
    }
    if (text == "!close") return drop(i);
    if (text == "!tick") return hub->tick();
    FuzzSession& s = session(i);
    if (text == "!binary") {
      hub->on_bad_frame(s, wire::code::kBinaryFrame, "binary frames are not accepted");
    } else if (text.substr(0, 6) == "!auth " || text.substr(0, 7) == "!admin ") {
      bool admin = text[1] == 'a' && text[2] == 'd';
      wire::Auth auth;
      auth.rid = 1;
      auth.token = fuzz::fixed_token(std::string(text.substr(admin ? 7 : 6)), admin);
      auth.device = "device-" + std::to_string(i);
      auth.presence = true;
      hub->on_frame(s, wire::encode(wire::ClientMessage(auth)));
    } else if (text.size() > kMaxFrame) {
      hub->on_bad_frame(s, wire::code::kFrameTooLarge, "frame is too large");
    } else {
      hub->on_frame(s, text);
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Run run;
  auto store = ServerStore::open(":memory:");
  FUZZ_CHECK(store.ok(), "in-memory store: %s", store.status().message().c_str());
  run.store = std::move(*store);
  std::array<unsigned char, 32> public_key;
  std::copy(std::begin(fuzz::fixed_key().public_key), std::end(fuzz::fixed_key().public_key),
            public_key.begin());
  run.hub = std::make_unique<Hub>(*run.store, run.metrics, public_key, kMaxFrame);
  FUZZ_CHECK(run.hub->load().ok(), "hub load");
  // A word filter and a rate limit, so that sends go through both.
  static const WordFilter filter = [] {
    auto parsed = WordFilter::parse("reject badword\nmask darn\nmask two words\n", "fuzz");
    FUZZ_CHECK(parsed.ok(), "word filter");
    return *parsed;
  }();
  run.hub->set_moderation(filter, RateLimiter(5, 20));
  Hub::PresenceConfig presence;
  presence.grace = std::chrono::milliseconds(0);
  presence.max_members = 3;  // so that scripts reach large channels too
  run.hub->set_presence_config(presence);

  for (std::string_view text : fuzz::lines(data, size)) {
    run.line(text);
    run.drain();
  }
  for (std::size_t i = 0; i < run.sessions.size(); ++i) run.drop(i);
  std::string metrics = run.metrics.render();
  FUZZ_CHECK(!metrics.empty(), "no metrics");
  return 0;
}
