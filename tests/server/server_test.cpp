// The server as a whole: loopback links, HTTP /healthz and /metrics, slow
// consumers, start/stop.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <map>
#include <set>
#include <sstream>

#include "metrics.hpp"
#include "server_fixture.hpp"
#include "transport/loopback.hpp"

using namespace parley;
using namespace parley::test;

namespace {

// The client end of a loopback link, read message by message.
class LoopbackPeer {
 public:
  explicit LoopbackPeer(const transport::LoopbackAcceptor& accept)
      : link_(std::make_shared<transport::LoopbackLink>()) {
    accept(link_);
  }
  ~LoopbackPeer() { link_->close_from_client(); }

  transport::LoopbackLink& link() { return *link_; }
  void send(const std::string& frame) { link_->send_to_server(frame); }

  wire::ServerMessage next() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (pending_.empty()) {
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "no message over loopback");
      link_->wait_for_client(std::chrono::milliseconds(100));
      auto inbox = link_->take_for_client();
      for (const auto& frame : inbox.frames) {
        for (auto& item : wire::decode_server_frame(frame)) {
          auto* message = std::get_if<wire::ServerMessage>(&item);
          REQUIRE(message != nullptr);
          pending_.push_back(std::move(*message));
        }
      }
      if (inbox.closed) {
        closed_ = true;
        close_code_ = inbox.close_code;
        close_reason_ = inbox.close_reason;
        REQUIRE_MESSAGE(!pending_.empty(), "loopback closed: " << inbox.close_reason);
      }
    }
    auto message = std::move(pending_.front());
    pending_.pop_front();
    return message;
  }
  template <typename T>
  T expect() {
    auto message = next();
    auto* value = std::get_if<T>(&message);
    if (value == nullptr) FAIL("unexpected message " << wire::encode(message));
    return *value;
  }
  bool wait_closed() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!closed_ && std::chrono::steady_clock::now() < deadline) {
      link_->wait_for_client(std::chrono::milliseconds(100));
      auto inbox = link_->take_for_client();
      if (inbox.closed) {
        closed_ = true;
        close_code_ = inbox.close_code;
        close_reason_ = inbox.close_reason;
      }
    }
    return closed_;
  }
  int close_code() const { return close_code_; }
  const std::string& close_reason() const { return close_reason_; }

 private:
  std::shared_ptr<transport::LoopbackLink> link_;
  std::deque<wire::ServerMessage> pending_;
  bool closed_ = false;
  int close_code_ = 0;
  std::string close_reason_;
};

std::string auth_json(const std::string& token) {
  return R"({"type":"auth","rid":1,"token":")" + token + "\"}";
}

}  // namespace

TEST_CASE("server: loopback links and WebSockets share channels and fan-out") {
  TestServer server;
  auto accept = server.server->loopback_acceptor();
  LoopbackPeer bob(accept);
  bob.send(auth_json(server.token("bob")));
  CHECK(bob.expect<wire::Welcome>().user == "bob");

  Peer alice(server.port());
  alice.auth(server.token("alice"));
  alice.send(R"({"type":"create","rid":2,"channel":"mixed"})");
  alice.expect<wire::Ok>();
  bob.send(R"({"type":"join","rid":3,"channel":"mixed"})");
  CHECK(bob.expect<wire::Ok>().seq == 2);
  CHECK(alice.expect<wire::ChannelEvent>().sender == "bob");

  bob.send(send_json(4, "mixed", client_id(1), "over loopback"));
  CHECK(bob.expect<wire::Ack>().seq == 3);
  CHECK(alice.expect<wire::ChannelEvent>().text == "over loopback");
  alice.send(send_json(5, "mixed", client_id(2), "over a socket"));
  CHECK(alice.expect<wire::Ack>().seq == 4);
  CHECK(bob.expect<wire::ChannelEvent>().text == "over a socket");

  // Bad input over loopback gets the same answers.
  bob.send("{broken");
  CHECK(bob.expect<wire::Error>().code == "bad_frame");
  bob.send(std::string(70000, ' '));
  CHECK(bob.expect<wire::Error>().code == "frame_too_large");
  bob.send(R"({"type":"channels","rid":6})");
  CHECK(bob.expect<wire::ChannelList>().channels.size() == 1);
}

TEST_CASE("server: loopback-only server, auth refusal and shutdown over loopback") {
  TestServer keys;  // only for its key and directory layout
  TempDir dir;
  server::ServerOptions options = keys.options();
  options.data_dir = dir.path.string();
  options.listen = false;
  auto created = server::Server::create(options);
  REQUIRE(created.ok());
  auto& srv = *created;
  CHECK(srv->port() == 0);
  auto accept = srv->loopback_acceptor();
  accept(std::make_shared<transport::LoopbackLink>());  // accepted before the loop runs
  srv->start();

  LoopbackPeer forged(accept);
  forged.send(auth_json(token::mint(token::generate_key(), "alice", 60, unix_now())));
  CHECK(forged.expect<wire::Error>().code == "invalid_token");
  REQUIRE(forged.wait_closed());
  CHECK(forged.close_code() == 4001);

  LoopbackPeer alice(accept);
  alice.send(auth_json(keys.token("alice")));
  alice.expect<wire::Welcome>();
  srv->stop();
  REQUIRE(alice.wait_closed());
  CHECK(alice.close_code() == 1001);
  CHECK(alice.close_reason() == "shutting_down");

  // The acceptor outlives the server's loop: late links are turned away.
  LoopbackPeer late(accept);
  REQUIRE(late.wait_closed());
  CHECK(late.close_code() == 1001);
  srv.reset();
  LoopbackPeer later(accept);
  REQUIRE(later.wait_closed());
}

TEST_CASE("server: /healthz, /metrics and 404 on the WebSocket port") {
  TestServer server;
  std::string health = http_get(server.port(), "/healthz");
  CHECK(health.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(body_of(health) == "ok");
  CHECK(http_get(server.port(), "/nope").rfind("HTTP/1.1 404", 0) == 0);

  Peer alice(server.port());
  alice.auth(server.token("alice"));
  alice.send(R"({"type":"create","rid":2,"channel":"m"})");
  alice.expect<wire::Ok>();
  alice.send(send_json(3, "m", client_id(1), "counted"));
  alice.expect<wire::Ack>();
  alice.send(R"({"type":"create","rid":4,"channel":"bad name"})");
  alice.expect_error("invalid_name");
  {
    Peer forged(server.port());
    forged.send(auth_json(token::mint(token::generate_key(), "eve", 60, unix_now())));
    forged.expect_error("invalid_token");
  }

  std::string metrics = http_get(server.port(), "/metrics");
  CHECK(metrics.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(metrics.find("text/plain; version=0.0.4") != std::string::npos);
  std::string text = body_of(metrics);
  for (const char* name :
       {"parley_connections", "parley_connections_total", "parley_frames_received_total",
        "parley_frames_sent_total", "parley_events_stored_total", "parley_errors_total",
        "parley_auth_failures_total", "parley_channels", "parley_uptime_seconds"}) {
    CAPTURE(name);
    CHECK(text.find(std::string("# HELP ") + name + " ") != std::string::npos);
    CHECK(text.find(std::string("# TYPE ") + name + " ") != std::string::npos);
  }
  CHECK(metric(server.port(), "parley_connections") >= 1);
  CHECK(metric(server.port(), "parley_connections_total") >= 2);
  CHECK(metric(server.port(), "parley_channels") == 1);
  CHECK(metric(server.port(), "parley_events_stored_total{kind=\"message\"}") == 1);
  CHECK(metric(server.port(), "parley_events_stored_total{kind=\"create\"}") == 1);
  CHECK(metric(server.port(), "parley_errors_total{code=\"invalid_name\"}") == 1);
  CHECK(metric(server.port(), "parley_auth_failures_total{reason=\"invalid_token\"}") == 1);
  CHECK(metric(server.port(), "parley_frames_received_total") >= 4);
  CHECK(metric(server.port(), "parley_uptime_seconds") >= 0);
}

TEST_CASE("server: a client that does not read is closed as a slow consumer") {
  TestServer server(256 * 1024);
  Peer fast(server.port());
  fast.auth(server.token("fast"));
  fast.send(R"({"type":"create","rid":1,"channel":"firehose"})");
  fast.expect<wire::Ok>();
  Peer slow(server.port());
  slow.auth(server.token("slow"));
  slow.send(R"({"type":"join","rid":2,"channel":"firehose"})");
  slow.expect<wire::Ok>();
  fast.expect<wire::ChannelEvent>();

  // `slow` reads nothing from here on; the socket buffers fill, then its queue.
  std::string text(8000, 'f');
  int n = 0;
  bool closed = false;
  for (int round = 0; round < 100 && !closed; ++round) {
    std::string frame = "[";
    for (int i = 0; i < 7; ++i, ++n) {
      if (i > 0) frame += ",";
      frame += send_json(10 + n, "firehose", client_id(n), text);
    }
    fast.send(frame + "]");
    for (int i = 0; i < 7; ++i) fast.expect<wire::Ack>();
    if (round % 10 == 9) closed = metric(server.port(), "parley_slow_consumers_total") == 1;
  }
  CHECK(closed);
  // The fast client is unaffected; the slow one finds its connection closed.
  fast.send(send_json(5, "firehose", client_id(n + 1), "still fine"));
  CHECK(fast.expect<wire::Ack>().seq > 2);
  CHECK(slow.ws().wait_closed(std::chrono::seconds(30)));
}

TEST_CASE("server: create fails cleanly on a bad data directory or a taken port") {
  TestServer running;
  server::ServerOptions options = running.options();
  options.port = running.port();
  TempDir other;
  options.data_dir = other.path.string();
  auto taken = server::Server::create(options);
  REQUIRE_FALSE(taken.ok());
  CHECK(taken.status().message().find(std::to_string(running.port())) != std::string::npos);

  options.port = 0;
  options.data_dir = "/proc/parley-cannot-be-here";
  CHECK_FALSE(server::Server::create(options).ok());
  options.data_dir = other.path.string();
  options.max_frame = 10;
  CHECK(server::Server::create(options).status().code() == StatusCode::invalid_argument);
}

TEST_CASE("server: /metrics counts bytes, messages, send-to-ack latency, typing and receipts") {
  TestServer server;
  Peer alice(server.port());
  Peer bob(server.port());
  alice.auth(server.token("alice"), 1, "a1");
  bob.auth(server.token("bob"), 1, "b1");
  alice.send(R"({"type":"create","rid":2,"channel":"m"})");
  alice.expect<wire::Ok>();
  bob.send(R"({"type":"join","rid":3,"channel":"m"})");
  bob.expect<wire::Ok>();
  alice.expect<wire::ChannelEvent>();

  // Four sends (two in one frame), and a resend that stores nothing.
  alice.send(send_json(4, "m", client_id(1), "one"));
  alice.send("[" + send_json(5, "m", client_id(2), "two") + "," +
             send_json(6, "m", client_id(3), "three") + "]");
  for (int n = 0; n < 3; ++n) alice.expect<wire::Ack>();
  for (int n = 0; n < 3; ++n) bob.expect<wire::ChannelEvent>();
  bob.send(send_json(7, "m", client_id(4), "four"));
  bob.expect<wire::Ack>();
  alice.expect<wire::ChannelEvent>();  // seq 6
  alice.send(send_json(8, "m", client_id(1), "one"));
  CHECK(alice.expect<wire::Ack>().duplicate);

  // Typing: two signals received, one dropped by the throttle, one relayed.
  alice.send("[" + wire::encode(wire::ClientMessage{wire::Typing{9, "m", true}}) + "," +
             wire::encode(wire::ClientMessage{wire::Typing{10, "m", true}}) + "]");
  CHECK(bob.expect<wire::TypingEvent>().active);
  // Receipts: read 6 moves (broadcast to alice), read 3 does not, delivered 6 moves.
  bob.send(wire::encode(wire::ClientMessage{wire::Receipt{11, "m", "read", 6}}));
  bob.expect<wire::Ok>();
  alice.expect<wire::ReceiptEvent>();
  bob.send(wire::encode(wire::ClientMessage{wire::Receipt{12, "m", "read", 3}}));
  CHECK(bob.expect<wire::Ok>().seq == 6);
  bob.send(wire::encode(wire::ClientMessage{wire::Receipt{13, "m", "delivered", 6}}));
  bob.expect<wire::Ok>();
  alice.expect<wire::ReceiptEvent>();
  bob.send(wire::encode(wire::ClientMessage{wire::Receipt{14, "m", "seen", 6}}));
  bob.expect_error("invalid_kind");
  CHECK(alice.quiet());
  CHECK(bob.quiet());

  std::string text = body_of(http_get(server.port(), "/metrics"));
  CAPTURE(text);
  auto value = [&](const std::string& sample) {
    std::size_t at = text.find("\n" + sample + " ");
    REQUIRE_MESSAGE(at != std::string::npos, sample);
    return std::stod(text.substr(at + sample.size() + 2));
  };
  CHECK(value("parley_messages_received_total") == 4);
  CHECK(value("parley_messages_delivered_total") == 4);
  CHECK(value("parley_events_delivered_total") == 5);  // the 4 messages and bob's join
  CHECK(value("parley_send_ack_seconds_count") == 5);  // every ack, the resend's too
  CHECK(value("parley_send_ack_seconds_bucket{le=\"+Inf\"}") == 5);
  CHECK(value("parley_send_ack_seconds_bucket{le=\"1\"}") <= 5);
  CHECK(value("parley_send_ack_seconds_sum") > 0);
  CHECK(value("parley_typing_received_total") == 2);
  CHECK(value("parley_typing_dropped_total") == 1);
  CHECK(value("parley_typing_relayed_total") == 1);
  CHECK(value("parley_receipts_received_total{kind=\"read\"}") == 2);
  CHECK(value("parley_receipts_received_total{kind=\"delivered\"}") == 1);
  CHECK(value("parley_receipts_broadcast_total{kind=\"read\"}") == 1);
  CHECK(value("parley_receipts_broadcast_total{kind=\"delivered\"}") == 1);
  CHECK(value("parley_errors_total{code=\"invalid_kind\"}") == 1);
  CHECK(value("parley_connections") == 2);
  CHECK(value("parley_connections_total") == 2);
  CHECK(value("parley_bytes_received_total") == alice.bytes_sent() + bob.bytes_sent());
  CHECK(value("parley_bytes_sent_total") == alice.bytes_received() + bob.bytes_received());
  CHECK(value("parley_frames_received_total") == 13);

  // Buckets are cumulative and end at the count.
  double previous = 0;
  for (double bound : server::LatencyHistogram::kBounds) {
    double bucket = value(fmt::format("parley_send_ack_seconds_bucket{{le=\"{}\"}}", bound));
    CHECK(bucket >= previous);
    previous = bucket;
  }
  // One HELP and one TYPE per family, and every sample belongs to a family
  // declared above it.
  std::set<std::string> helped;
  std::map<std::string, std::string> typed;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    CAPTURE(line);
    if (line.rfind("# HELP ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      CHECK(helped.insert(name).second);
    } else if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream fields(line.substr(7));
      std::string name, type;
      fields >> name >> type;
      CHECK(typed.emplace(name, type).second);
      CHECK((type == "counter" || type == "gauge" || type == "histogram"));
    } else {
      std::string name = line.substr(0, line.find_first_of("{ "));
      std::string family = name;
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        std::string s(suffix);
        if (family.size() > s.size() && family.ends_with(s) &&
            typed.count(family.substr(0, family.size() - s.size())) != 0) {
          family = family.substr(0, family.size() - s.size());
        }
      }
      CHECK(typed.count(family) == 1);
      if (typed[family] == "counter") CHECK(name.ends_with("_total"));
    }
  }
  CHECK(typed["parley_send_ack_seconds"] == "histogram");
  CHECK(helped.size() == typed.size());
}
