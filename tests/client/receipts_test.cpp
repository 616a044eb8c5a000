// Typing indicators, receipts and analytics through the in-process server.
#include <doctest/doctest.h>

#include <mutex>

#include "parley/sys/analytics.hpp"
#include "test_support.hpp"

using namespace parley;
using namespace parley::testing;

namespace {

std::unique_ptr<Client> open_client(TestServer& server, const std::string& user,
                                    const std::filesystem::path& dir,
                                    std::shared_ptr<sys::AnalyticsSink> sink = nullptr) {
  ClientOptions o = server.options(user, dir);
  o.analytics = std::move(sink);
  auto c = Client::open(o);
  REQUIRE_MESSAGE(c.ok(), c.status().to_string());
  REQUIRE(wait_ready(**c));
  return std::move(*c);
}

struct Pair {
  TestServer server;
  std::unique_ptr<Client> alice;
  std::unique_ptr<Client> bob;
  explicit Pair(std::shared_ptr<sys::AnalyticsSink> sink = nullptr) {
    alice = open_client(server, "alice", temp_dir("alice"), sink);
    bob = open_client(server, "bob", temp_dir("bob"));
    REQUIRE(request_status(*alice, alice->create_channel("general")).ok());
    REQUIRE(request_status(*bob, bob->join_channel("general")).ok());
  }
};

class RecordingSink : public sys::AnalyticsSink {
 public:
  void record(const sys::AnalyticsEvent& e) override {
    std::lock_guard lock(mu);
    events.push_back(e);
  }
  std::vector<sys::AnalyticsEvent> named(const std::string& name) {
    std::lock_guard lock(mu);
    std::vector<sys::AnalyticsEvent> out;
    for (auto& e : events) {
      if (e.name == name) out.push_back(e);
    }
    return out;
  }
  std::mutex mu;
  std::vector<sys::AnalyticsEvent> events;
};

}  // namespace

TEST_CASE("typing is relayed, throttled, and ends with the message") {
  Pair p;
  p.alice->set_typing("general", true);
  auto on = wait_for<TypingChanged>(*p.bob);
  REQUIRE(on.has_value());
  CHECK(on->user == "alice");
  CHECK(on->channel == "general");
  CHECK(on->active);

  // Typing again within 3 s sends nothing new; the message ends it at once.
  p.alice->set_typing("general", true);
  p.alice->send("general", "done typing");
  auto off = wait_for<TypingChanged>(*p.bob);
  REQUIRE(off.has_value());
  CHECK_FALSE(off->active);
  auto msg = wait_for<MessageReceived>(*p.bob);
  REQUIRE(msg.has_value());
  CHECK_FALSE(wait_for<TypingChanged>(*p.bob, nullptr, std::chrono::milliseconds(300)).has_value());

  // The sender does not see its own typing.
  CHECK_FALSE(wait_for<TypingChanged>(*p.alice, nullptr, std::chrono::milliseconds(200)).has_value());
}

TEST_CASE("typing expires at the receiver after about 5 s without refresh") {
  Pair p;
  p.alice->set_typing("general", true);
  REQUIRE(wait_for<TypingChanged>(*p.bob).has_value());
  auto t0 = std::chrono::steady_clock::now();
  auto off = wait_for<TypingChanged>(*p.bob, nullptr, std::chrono::seconds(8));
  REQUIRE(off.has_value());
  CHECK_FALSE(off->active);
  auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(waited > std::chrono::seconds(4));  // expired, not stopped early
}

TEST_CASE("an explicit stop clears the indicator") {
  Pair p;
  p.alice->set_typing("general", true);
  REQUIRE(wait_for<TypingChanged>(*p.bob).has_value());
  p.alice->set_typing("general", false);
  auto off = wait_for<TypingChanged>(*p.bob, nullptr, std::chrono::seconds(2));
  REQUIRE(off.has_value());
  CHECK_FALSE(off->active);
}

TEST_CASE("delivered and read receipts reach the sender and are monotonic") {
  Pair p;
  auto id = p.alice->send("general", "receipt me");
  REQUIRE(id.ok());
  auto sent = wait_for<MessageSent>(*p.alice);
  REQUIRE(sent.has_value());
  REQUIRE(wait_for<MessageReceived>(*p.bob).has_value());

  auto delivered = wait_for<ReceiptUpdated>(*p.alice, [&](const ReceiptUpdated& r) {
    return r.kind == ReceiptKind::delivered && r.user == "bob" && r.seq >= sent->seq;
  });
  REQUIRE(delivered.has_value());
  CHECK_FALSE(delivered->device.empty());

  auto summary = p.alice->receipt_summary("general", sent->seq);
  REQUIRE(summary.ok());
  CHECK(summary->members == 1);  // bob (the sender is not counted)
  CHECK(summary->delivered == 1);
  CHECK(summary->read == 0);

  REQUIRE(p.bob->mark_read("general").ok());
  auto read = wait_for<ReceiptUpdated>(*p.alice, [&](const ReceiptUpdated& r) {
    return r.kind == ReceiptKind::read && r.user == "bob";
  });
  REQUIRE(read.has_value());
  CHECK(read->seq == sent->seq);
  summary = p.alice->receipt_summary("general", sent->seq);
  REQUIRE(summary.ok());
  CHECK(summary->read == 1);

  // A lower read cursor never overwrites a higher one.
  REQUIRE(p.bob->mark_read("general", 1).ok());
  CHECK_FALSE(wait_for<ReceiptUpdated>(*p.alice, [](const ReceiptUpdated& r) {
                return r.kind == ReceiptKind::read;
              }, std::chrono::milliseconds(400)).has_value());
  summary = p.alice->receipt_summary("general", sent->seq);
  CHECK(summary->read == 1);
}

TEST_CASE("a member who was offline gets the latest cursors when catching up") {
  TestServer server;
  auto adir = temp_dir("alice");
  std::uint64_t seq = 0;
  {
    auto alice = open_client(server, "alice", adir);
    REQUIRE(request_status(*alice, alice->create_channel("general")).ok());
    auto bob = open_client(server, "bob", temp_dir("bob"));
    REQUIRE(request_status(*bob, bob->join_channel("general")).ok());
    alice->send("general", "read me later");
    auto sent = wait_for<MessageSent>(*alice);
    REQUIRE(sent.has_value());
    seq = sent->seq;
    alice.reset();  // alice goes offline
    REQUIRE(wait_for<MessageReceived>(*bob).has_value());
    REQUIRE(bob->mark_read("general").ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  auto alice = open_client(server, "alice", adir);
  auto read = wait_for<ReceiptUpdated>(*alice, [](const ReceiptUpdated& r) {
    return r.kind == ReceiptKind::read && r.user == "bob";
  });
  REQUIRE(read.has_value());
  CHECK(read->seq == seq);
  auto summary = alice->receipt_summary("general", seq);
  REQUIRE(summary.ok());
  CHECK(summary->read == 1);
  CHECK(summary->delivered == 1);
}

TEST_CASE("read on one device is known to the user's other device") {
  TestServer server;
  auto alice = open_client(server, "alice", temp_dir("alice"));
  REQUIRE(request_status(*alice, alice->create_channel("general")).ok());
  auto bob1 = open_client(server, "bob", temp_dir("bob1"));
  auto bob2 = open_client(server, "bob", temp_dir("bob2"));
  REQUIRE(request_status(*bob1, bob1->join_channel("general")).ok());
  alice->send("general", "hi both");
  REQUIRE(wait_for<MessageReceived>(*bob1).has_value());
  REQUIRE(bob1->mark_read("general").ok());
  auto seen = wait_for<ReceiptUpdated>(*bob2, [](const ReceiptUpdated& r) {
    return r.kind == ReceiptKind::read && r.user == "bob";
  });
  CHECK(seen.has_value());
}

TEST_CASE("analytics events describe what happened and never carry text") {
  auto sink = std::make_shared<RecordingSink>();
  Pair p(sink);
  const std::string secret = "the-secret-text-7f3a";
  p.alice->set_typing("general", true);
  auto id = p.alice->send("general", secret);
  REQUIRE(id.ok());
  REQUIRE(wait_for<MessageSent>(*p.alice).has_value());
  p.bob->send("general", secret + "-reply");
  REQUIRE(wait_for<MessageReceived>(*p.alice).has_value());
  REQUIRE(p.alice->mark_read("general").ok());

  auto acked = sink->named("message_acknowledged");
  REQUIRE(acked.size() == 1);
  CHECK(acked[0].label("id") == *id);
  CHECK(acked[0].value("rtt_ms") >= 0);
  CHECK(sink->named("message_sent").size() == 1);
  CHECK(sink->named("message_sent")[0].value("bytes") == doctest::Approx(secret.size()));
  CHECK(sink->named("message_delivered").size() == 1);
  CHECK(sink->named("message_read").size() == 1);
  CHECK(sink->named("typing_started").size() == 1);
  auto states = sink->named("connection_state");
  REQUIRE(states.size() >= 4);  // connecting, authenticating, syncing, ready
  CHECK(states.back().label("state") == "ready");

  std::lock_guard lock(sink->mu);
  for (const auto& e : sink->events) {
    for (const auto& [k, v] : e.labels) {
      CHECK_MESSAGE(v.find("secret") == std::string::npos, e.name << " label " << k);
    }
  }
}
