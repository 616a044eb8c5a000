// The client engine (src/client/) behind its transport: a scripted transport
// plays a server, handing the engine whatever frames the input holds, and
// drives the API between them, all on the engine's own thread so that a run
// is repeatable.
//
// The input is a script, one line each:
//   FRAME                      a text frame from the server
//   !create|!join|!leave C     API calls, as an app makes them
//   !send C TEXT
//   !history C BEFORE LIMIT
//   !typing C 0|1
//   !read C SEQ
//   !summary C SEQ
//   !drop                      the connection is lost
//   !reconnect | !connect | !disconnect
//   !token USER                a new token
// "$ID" in a frame stands for the id of the last message the client sent.
// The engine sends "auth" with rid 1 when the transport opens, then numbers
// its requests 2, 3, ...; seeds answer with real frames (make_seeds.cpp).
// libsodium's randomness (message and device ids) is made repeatable and
// restarts with each input.
//
// Properties: every frame the client sends decodes as the server decodes it;
// per channel, the app receives events in increasing seq order; the cache
// never holds a cursor above the channel's last seq.
#include <sodium.h>

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <map>
#include <mutex>

#include "client/engine.hpp"
#include "fuzz_support.hpp"
#include "parley/client.hpp"
#include "protocol/codec.hpp"

namespace {

using namespace parley;

// ---- repeatable randomness (splitmix64), installed before sodium_init -------

std::atomic<std::uint64_t> g_random_state{0};

std::uint64_t next_random() {
  std::uint64_t z = g_random_state.fetch_add(0x9E3779B97F4A7C15) + 0x9E3779B97F4A7C15;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
  return z ^ (z >> 31);
}

randombytes_implementation g_repeatable = {
    [] { return "parley-fuzz-repeatable"; },
    [] { return static_cast<std::uint32_t>(next_random()); },
    nullptr,  // stir
    nullptr,  // uniform: libsodium derives it from random
    [](void* buf, std::size_t size) {
      auto* out = static_cast<unsigned char*>(buf);
      for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<unsigned char>(next_random());
    },
    nullptr,  // close
};

[[maybe_unused]] const int g_installed = [] {
  randombytes_set_implementation(&g_repeatable);
  return sodium_init();
}();

std::uint64_t number(std::string_view text) {
  std::uint64_t n = 0;
  std::from_chars(text.data(), text.data() + text.size(), n);
  return n;
}

// Splits "A B REST" into A, B and REST (missing parts are empty).
std::string_view word(std::string_view* text) {
  std::size_t space = text->find(' ');
  std::string_view first = text->substr(0, space);
  *text = space == std::string_view::npos ? std::string_view() : text->substr(space + 1);
  return first;
}

class ScriptedTransport final : public sys::Transport {
 public:
  explicit ScriptedTransport(std::vector<std::string_view> script) : script_(std::move(script)) {}

  void connect(const std::string&, const std::string&, sys::TransportHandler* handler) override {
    handler_ = handler;
    open_pending_ = true;
    close_pending_ = false;
  }
  void send(std::string frame) override {
    if (debug_) std::fprintf(stderr, "  client sends %s\n", frame.c_str());
    // A frame sent while closed is dropped, as the real transports drop it.
    // (The engine does send some: requests that a lost connection fails can
    // start others, e.g. a failed catch-up page asks for the receipts.)
    if (!open_) return;
    for (const auto& item : wire::decode_client_frame(frame)) {
      if (const auto* m = std::get_if<wire::ClientMessage>(&item)) {
        if (const auto* send = std::get_if<wire::Send>(m)) last_send_id_ = send->id;
      }
    }
  }
  void close(int, const std::string&) override {
    if (open_ || open_pending_) close_pending_ = true;
    open_pending_ = false;
  }
  // One step per call, so that the engine's loop (posted work, timers,
  // receipts) runs between lines as it would between network reads.
  void poll(std::chrono::milliseconds max_wait) override {
    if (open_pending_) {
      open_pending_ = false;
      open_ = true;
      return handler_->on_open();
    }
    if (close_pending_) {
      close_pending_ = false;
      open_ = false;
      return handler_->on_closed(Status());
    }
    if (next_ < script_.size()) return step(script_[next_++]);
    if (!checked_ && handler_ != nullptr) {
      checked_ = true;
      check_cache();
    }
    std::unique_lock lock(mu_);
    done_ = true;
    done_cv_.notify_all();
    wake_cv_.wait_for(lock, std::min(max_wait, std::chrono::milliseconds(100)),
                      [&] { return woken_; });
    woken_ = false;
  }
  void wake() override {
    std::lock_guard lock(mu_);
    woken_ = true;
    wake_cv_.notify_all();
  }

  void wait_done() {
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [&] { return done_; });
  }

 private:
  client::Engine& engine() { return *dynamic_cast<client::Engine*>(handler_); }

  // "$ID" in a server frame stands for the id of the last message the client
  // sent, so that seeds can acknowledge it.
  std::string with_send_id(std::string_view line) const {
    std::string out(line);
    for (std::size_t at = out.find("$ID"); at != std::string::npos; at = out.find("$ID", at)) {
      out.replace(at, 3, last_send_id_);
      at += last_send_id_.size();
    }
    return out;
  }

  void step(std::string_view line) {
    if (debug_) std::fprintf(stderr, "script: %.*s\n", static_cast<int>(line.size()), line.data());
    if (handler_ == nullptr) return;  // not connected yet: nothing to drive
    if (line.empty() || line[0] != '!') {
      if (open_) handler_->on_frame(with_send_id(line));
      return;
    }
    std::string_view rest = line.substr(1);
    std::string_view command = word(&rest);
    client::Engine& e = engine();
    if (command == "drop") {
      if (open_) {
        open_ = false;
        handler_->on_closed(Status(StatusCode::offline, "connection lost", "connection_lost"));
      }
      return;
    }
    if (command == "reconnect") return e.reconnect_now();
    if (command == "connect") return e.connect();
    if (command == "disconnect") return e.disconnect();
    if (command == "token") return e.set_token(fuzz::fixed_token(std::string(rest)));
    std::string channel(word(&rest));
    if (command == "create") return e.create_channel(e.next_request_id(), channel);
    if (command == "join") return e.join_channel(e.next_request_id(), channel);
    if (command == "leave") return e.leave_channel(e.next_request_id(), channel);
    if (command == "send") return (void)e.send(channel, std::string(rest));
    if (command == "typing") return e.set_typing(channel, rest == "1");
    if (command == "read") return (void)e.mark_read(channel, number(rest));
    if (command == "summary") return (void)e.receipt_summary(channel, number(rest));
    if (command == "history") {
      HistoryQuery query;
      query.before = number(word(&rest));
      query.limit = static_cast<std::uint32_t>(number(rest));
      return e.load_history(e.next_request_id(), channel, query);
    }
  }

  void check_cache() {
    auto channels = engine().cache().channels();
    if (!channels) return;
    for (const ChannelInfo& c : *channels) {
      FUZZ_CHECK(c.read_to <= c.last_seq, "channel \"%s\": cursor %llu above last seq %llu",
                 c.name.c_str(), static_cast<unsigned long long>(c.read_to),
                 static_cast<unsigned long long>(c.last_seq));
    }
  }

  // PARLEY_FUZZ_DEBUG=1 prints the script as it runs and what the client sends.
  const bool debug_ = std::getenv("PARLEY_FUZZ_DEBUG") != nullptr;
  std::vector<std::string_view> script_;
  std::size_t next_ = 0;
  sys::TransportHandler* handler_ = nullptr;
  bool open_pending_ = false;
  bool close_pending_ = false;
  bool open_ = false;
  bool checked_ = false;
  std::string last_send_id_;  // of the last "send" the client sent

  std::mutex mu_;
  std::condition_variable done_cv_;
  std::condition_variable wake_cv_;
  bool done_ = false;   // guarded by mu_
  bool woken_ = false;  // guarded by mu_
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  g_random_state = 0;
  auto transport = std::make_shared<ScriptedTransport>(fuzz::lines(data, size));
  auto dir = fuzz::scratch_dir() / "client";
  std::filesystem::remove_all(dir);

  ClientOptions options;
  options.token = fuzz::fixed_token("alice");
  options.data_dir = dir.string();
  options.device_id = "fuzz-device";
  options.server_url = "fuzz://";
  options.transport = transport;
  // Nothing times out or reconnects by itself during a run: only the script acts.
  options.request_timeout = std::chrono::hours(1);
  options.reconnect_base = std::chrono::hours(1);
  options.reconnect_max = std::chrono::hours(1);
  options.sync_page_size = 3;  // several catch-up pages from a few events
  {
    auto client = Client::open(options);
    FUZZ_CHECK(client.ok(), "open: %s", client.status().to_string().c_str());
    transport->wait_done();
    std::map<std::string, std::uint64_t> delivered;  // channel -> last seq the app got
    while (auto event = (*client)->next_event(std::chrono::milliseconds(0))) {
      if (const auto* m = std::get_if<MessageReceived>(&*event)) {
        auto [it, first] = delivered.emplace(m->message.channel, m->message.seq);
        FUZZ_CHECK(first || m->message.seq > it->second,
                   "channel \"%s\": event %llu delivered after %llu", m->message.channel.c_str(),
                   static_cast<unsigned long long>(m->message.seq),
                   static_cast<unsigned long long>(it->second));
        it->second = m->message.seq;
      }
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}
