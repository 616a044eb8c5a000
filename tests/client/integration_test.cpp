// Two clients and an in-process server over the loopback transport.
#include <doctest/doctest.h>

#include <atomic>

#include <set>
#include <vector>

#include "store/cache.hpp"
#include "test_support.hpp"

using namespace parley;
using namespace parley::testing;

namespace {

std::unique_ptr<Client> open_client(TestServer& server, const std::string& user,
                                    const std::filesystem::path& dir) {
  auto c = Client::open(server.options(user, dir));
  REQUIRE_MESSAGE(c.ok(), c.status().to_string());
  return std::move(*c);
}

MessageSent wait_sent(Client& c, const std::string& id) {
  auto sent = wait_for<MessageSent>(c, [&](const MessageSent& s) { return s.id == id; });
  REQUIRE_MESSAGE(sent.has_value(), "no MessageSent for " << id);
  return *sent;
}

Message wait_message(Client& c, const std::string& text) {
  auto got = wait_for<MessageReceived>(c, [&](const MessageReceived& m) {
    return m.message.kind == EventKind::message && m.message.text == text;
  });
  REQUIRE_MESSAGE(got.has_value(), "no message \"" << text << "\"");
  return got->message;
}

HistoryLoaded history(Client& c, const std::string& channel, std::uint32_t limit,
                      std::uint64_t before = 0) {
  RequestId id = c.load_history(channel, HistoryQuery{before, limit});
  auto h = wait_for<HistoryLoaded>(c, [id](const HistoryLoaded& x) { return x.request == id; });
  REQUIRE(h.has_value());
  return *h;
}

}  // namespace

TEST_CASE("two users chat through the server") {
  TestServer server;
  auto adir = temp_dir("alice"), bdir = temp_dir("bob");
  auto alice = open_client(server, "alice", adir);
  auto bob = open_client(server, "bob", bdir);
  REQUIRE(wait_ready(*alice));
  REQUIRE(wait_ready(*bob));

  CHECK(request_status(*alice, alice->create_channel("general")).ok());
  CHECK(request_status(*bob, bob->join_channel("general")).ok());

  auto id = alice->send("general", "hello bob");
  REQUIRE(id.ok());
  auto pending = wait_for<MessagePending>(*alice);
  REQUIRE(pending.has_value());
  CHECK(pending->id == *id);
  auto sent = wait_sent(*alice, *id);
  CHECK(sent.seq == 3);  // create, join, message

  Message m = wait_message(*bob, "hello bob");
  CHECK(m.sender == "alice");
  CHECK(m.seq == sent.seq);
  CHECK(m.id == *id);
  CHECK(m.ts_ms == sent.ts_ms);

  auto reply = bob->send("general", "hi alice");
  REQUIRE(reply.ok());
  CHECK(wait_sent(*bob, *reply).seq == 4);
  CHECK(wait_message(*alice, "hi alice").sender == "bob");

  // Ordering: a burst arrives in sequence order, without gaps.
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) ids.push_back(*alice->send("general", "n" + std::to_string(i)));
  std::uint64_t last = 4;
  for (int i = 0; i < 50; ++i) {
    auto got = wait_for<MessageReceived>(*bob);
    REQUIRE(got.has_value());
    CHECK(got->message.seq == last + 1);
    CHECK(got->message.text == "n" + std::to_string(i));
    last = got->message.seq;
  }
}

TEST_CASE("server refusals reach the app with their codes") {
  TestServer server;
  auto adir = temp_dir("alice");
  auto alice = open_client(server, "alice", adir);
  REQUIRE(wait_ready(*alice));

  CHECK(request_status(*alice, alice->create_channel("general")).ok());
  auto dup = request_status(*alice, alice->create_channel("general"));
  CHECK(dup.reason() == "channel_exists");
  CHECK(dup.code() == StatusCode::already_exists);
  CHECK(request_status(*alice, alice->join_channel("general")).ok());  // already a member: no-op
  auto missing = request_status(*alice, alice->join_channel("nowhere"));
  CHECK(missing.reason() == "no_such_channel");
  auto bad = request_status(*alice, alice->join_channel("gen eral"));
  CHECK(bad.reason() == "invalid_name");
  CHECK(bad.message().find("gen eral") != std::string::npos);

  // Sending to a channel we are not in fails for good and leaves the outbox.
  TestServer* s = &server;
  auto bob = open_client(*s, "bob", temp_dir("bob"));
  REQUIRE(wait_ready(*bob));
  auto id = bob->send("general", "let me in");
  REQUIRE(id.ok());
  auto failed = wait_for<MessageFailed>(*bob);
  REQUIRE(failed.has_value());
  CHECK(failed->id == *id);
  CHECK(failed->status.reason() == "not_member");
  CHECK(failed->status.message().find(*id) != std::string::npos);
  auto outbox = bob->outbox();
  REQUIRE(outbox.ok());
  CHECK(outbox->empty());

  // Invalid input never reaches the outbox.
  CHECK(bob->send("general", "").status().reason() == "invalid_text");
  CHECK(bob->send("general", std::string(9000, 'x')).status().reason() == "invalid_text");
  CHECK(bob->send("general", "\xff\xfe").status().reason() == "invalid_text");
  CHECK(bob->send("bad name", "x").status().reason() == "invalid_name");
}

TEST_CASE("messages sent offline wait in the outbox, survive a restart, arrive once") {
  TestServer server;
  auto adir = temp_dir("alice"), bdir = temp_dir("bob");
  {
    auto alice = open_client(server, "alice", adir);
    REQUIRE(wait_ready(*alice));
    CHECK(request_status(*alice, alice->create_channel("general")).ok());
  }
  auto bob = open_client(server, "bob", bdir);
  REQUIRE(wait_ready(*bob));
  CHECK(request_status(*bob, bob->join_channel("general")).ok());

  std::vector<std::string> ids;
  {
    // No server reachable: sends are accepted into the outbox at once.
    ClientOptions offline = server.options("alice", adir);
    offline.transport = std::make_shared<transport::LoopbackTransport>(nullptr);
    auto alice = Client::open(offline);
    REQUIRE(alice.ok());
    for (int i = 0; i < 3; ++i) {
      auto id = (*alice)->send("general", "offline " + std::to_string(i));
      REQUIRE(id.ok());
      ids.push_back(*id);
    }
    auto box = (*alice)->outbox();
    REQUIRE(box.ok());
    CHECK(box->size() == 3);
  }  // the app is closed with the messages pending

  auto alice = open_client(server, "alice", adir);
  std::set<std::string> sent;
  for (int i = 0; i < 3; ++i) {
    auto s = wait_for<MessageSent>(*alice);
    REQUIRE(s.has_value());
    sent.insert(s->id);
  }
  CHECK(sent == std::set<std::string>(ids.begin(), ids.end()));
  for (int i = 0; i < 3; ++i) {
    auto got = wait_for<MessageReceived>(*bob);
    REQUIRE(got.has_value());
    CHECK(got->message.text == "offline " + std::to_string(i));  // in order
  }
  // Exactly once: nothing more arrives.
  CHECK_FALSE(wait_for<MessageReceived>(*bob, nullptr, std::chrono::milliseconds(300)).has_value());
}

TEST_CASE("a resend after a lost ack is deduplicated by the server") {
  TestServer server;
  auto adir = temp_dir("alice"), bdir = temp_dir("bob");
  std::string id;
  std::uint64_t seq = 0;
  {
    auto alice = open_client(server, "alice", adir);
    REQUIRE(wait_ready(*alice));
    CHECK(request_status(*alice, alice->create_channel("general")).ok());
    id = *alice->send("general", "only once");
    seq = wait_sent(*alice, id).seq;
  }
  {
    // As if the app died after the server stored the message but before the
    // ack arrived: the entry is still pending in the outbox.
    auto cache = store::Cache::open(adir.string(), "alice");
    REQUIRE(cache.ok());
    REQUIRE((*cache)->outbox_add("general", id, "only once", 0).ok());
  }
  auto bob = open_client(server, "bob", bdir);
  REQUIRE(wait_ready(*bob));
  CHECK(request_status(*bob, bob->join_channel("general")).ok());

  auto alice = open_client(server, "alice", adir);
  auto sent = wait_sent(*alice, id);
  CHECK(sent.seq == seq);  // the original result
  CHECK_FALSE(wait_for<MessageReceived>(*bob, nullptr, std::chrono::milliseconds(300)).has_value());
  auto h = history(*bob, "general", 10);
  CHECK(h.messages.size() == 1);
}

TEST_CASE("catch-up after being offline delivers what was missed, in order") {
  TestServer server;
  auto adir = temp_dir("alice"), bdir = temp_dir("bob");
  auto alice = open_client(server, "alice", adir);
  REQUIRE(wait_ready(*alice));
  CHECK(request_status(*alice, alice->create_channel("general")).ok());
  {
    auto bob = open_client(server, "bob", bdir);
    REQUIRE(wait_ready(*bob));
    CHECK(request_status(*bob, bob->join_channel("general")).ok());
    wait_sent(*alice, *alice->send("general", "before"));
    wait_message(*bob, "before");
  }
  for (int i = 0; i < 450; ++i) alice->send("general", "missed " + std::to_string(i));
  for (int i = 0; i < 450; ++i) REQUIRE(wait_for<MessageSent>(*alice).has_value());

  auto bob = open_client(server, "bob", bdir);
  for (int i = 0; i < 450; ++i) {
    auto got = wait_for<MessageReceived>(*bob);
    REQUIRE(got.has_value());
    CHECK(got->message.text == "missed " + std::to_string(i));
  }
  REQUIRE(wait_ready(*bob));
}

TEST_CASE("history pages from the server, then from the cache while offline") {
  TestServer server;
  auto adir = temp_dir("alice"), bdir = temp_dir("bob");
  auto alice = open_client(server, "alice", adir);
  REQUIRE(wait_ready(*alice));
  CHECK(request_status(*alice, alice->create_channel("general")).ok());
  for (int i = 0; i < 300; ++i) alice->send("general", "m" + std::to_string(i));
  for (int i = 0; i < 300; ++i) REQUIRE(wait_for<MessageSent>(*alice).has_value());

  {
    // A new device of a new member: history comes from the server in pages.
    auto bob = open_client(server, "bob", bdir);
    REQUIRE(wait_ready(*bob));
    CHECK(request_status(*bob, bob->join_channel("general")).ok());
    auto h = history(*bob, "general", 250);
    CHECK(h.status.ok());
    CHECK(h.complete);
    REQUIRE(h.messages.size() == 250);
    CHECK(h.messages.front().text == "m50");
    CHECK(h.messages.back().text == "m299");
    for (std::size_t i = 1; i < h.messages.size(); ++i) {
      CHECK(h.messages[i].seq > h.messages[i - 1].seq);
    }
    auto older = history(*bob, "general", 100, h.messages.front().seq);
    REQUIRE(older.messages.size() == 50);  // only 50 remain before
    CHECK(older.messages.front().text == "m0");
    CHECK(older.complete);
  }
  // Offline: the cache answers.
  ClientOptions offline = server.options("bob", bdir);
  offline.transport = std::make_shared<transport::LoopbackTransport>(nullptr);
  auto bob = Client::open(offline);
  REQUIRE(bob.ok());
  auto h = history(**bob, "general", 20);
  CHECK(h.status.ok());
  REQUIRE(h.messages.size() == 20);
  CHECK(h.messages.back().text == "m299");
  CHECK(h.messages.front().text == "m280");
}

TEST_CASE("requests that need the server fail with offline after the timeout") {
  TestServer server;
  ClientOptions o = server.options("alice", temp_dir("alice"));
  o.transport = std::make_shared<transport::LoopbackTransport>(nullptr);
  o.request_timeout = std::chrono::milliseconds(300);
  auto alice = Client::open(o);
  REQUIRE(alice.ok());
  auto s = request_status(**alice, (*alice)->create_channel("general"));
  CHECK(s.code() == StatusCode::offline);
  CHECK(s.reason() == "offline");
}

TEST_CASE("a refused token stops the client with its reason") {
  TestServer server;
  ClientOptions o = server.options("alice", temp_dir("alice"));
  auto other = token::generate_key();
  o.token = token::mint(other, "alice", 3600, now_seconds());
  auto alice = Client::open(o);
  REQUIRE(alice.ok());
  auto st = wait_for<StateChanged>(**alice, [](const StateChanged& s) {
    return s.state == LifecycleState::disconnected && !s.reason.ok();
  });
  REQUIRE(st.has_value());
  CHECK(st->reason.reason() == "invalid_token");

  ClientOptions e = server.options("bob", temp_dir("bob"));
  e.token = token::mint(server.key, "bob", 1, now_seconds() - 10);
  auto bob = Client::open(e);
  REQUIRE(bob.ok());
  auto st2 = wait_for<StateChanged>(**bob, [](const StateChanged& s) {
    return s.state == LifecycleState::disconnected && !s.reason.ok();
  });
  REQUIRE(st2.has_value());
  CHECK(st2->reason.reason() == "token_expired");
  CHECK(st2->reason.code() == StatusCode::token_expired);
}

TEST_CASE("a listener receives events on the client's own thread") {
  TestServer server;
  ClientOptions o = server.options("alice", temp_dir("alice"));
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Event> seen;
  std::thread::id listener_thread;
  o.listener = [&](const Event& ev) {
    std::lock_guard lock(mu);
    listener_thread = std::this_thread::get_id();
    seen.push_back(ev);
    cv.notify_all();
  };
  auto alice = Client::open(o);
  REQUIRE(alice.ok());
  std::unique_lock lock(mu);
  bool ready = cv.wait_for(lock, std::chrono::seconds(10), [&] {
    for (auto& e : seen) {
      if (auto* s = std::get_if<StateChanged>(&e); s && s->state == LifecycleState::ready) return true;
    }
    return false;
  });
  CHECK(ready);
  bool other_thread = listener_thread != std::this_thread::get_id();
  CHECK(other_thread);
  CHECK_FALSE((*alice)->next_event(std::chrono::milliseconds(10)).has_value());
}

TEST_CASE("a listener that calls the client while it is destroyed does not hang it") {
  TestServer server;
  ClientOptions o = server.options("alice", temp_dir("alice"));
  std::atomic<Client*> self{nullptr};
  std::atomic<int> calls_after_close{0};
  std::atomic<bool> closing{false};
  o.listener = [&](const Event&) {
    Client* c = self.load();
    if (c == nullptr) return;
    // Calls that wait for the engine's answer, as an app marking a channel
    // read from its listener would.
    Status s = c->mark_read("general");
    (void)c->channels();
    if (closing.load()) {
      ++calls_after_close;
      if (!s.ok()) CHECK(s.code() != StatusCode::internal);
    }
  };
  auto alice = Client::open(o);
  REQUIRE(alice.ok());
  self = alice->get();
  REQUIRE(testing::wait_for<StateChanged>(**alice, nullptr, std::chrono::milliseconds(50)) ==
          std::nullopt);  // events go to the listener
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  closing = true;
  auto started = std::chrono::steady_clock::now();
  alice->reset();  // the disconnect it causes reaches the listener, which calls in
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
  CHECK(calls_after_close.load() > 0);  // the listener did call in during destruction
  self = nullptr;
}

TEST_CASE("client options are checked") {
  ClientOptions o;
  CHECK(Client::open(o).status().code() == StatusCode::invalid_argument);
  o.data_dir = temp_dir("x").string();
  o.server_url = "ws://127.0.0.1:1";
  o.token = "garbage";
  CHECK(Client::open(o).status().reason() == "invalid_token");
  TestServer server;
  o.token = server.token("alice");
  for (const char* bad : {"http://x", "notaurl", "ws://", "ws:///path", ""}) {
    o.server_url = bad;
    auto r = Client::open(o);
    CHECK_MESSAGE(r.status().reason() == "invalid_url", bad);
  }
}

TEST_CASE("a message too large for the server's frame limit fails instead of looping") {
  TestServer server(false, 1024);
  auto alice = open_client(server, "alice", temp_dir("alice"));
  REQUIRE(wait_ready(*alice));
  REQUIRE(request_status(*alice, alice->create_channel("c1")).ok());
  auto big = alice->send("c1", std::string(2000, 'z'));
  auto small = alice->send("c1", "small");
  REQUIRE(big.ok());
  REQUIRE(small.ok());
  auto failed = wait_for<MessageFailed>(*alice);
  REQUIRE(failed.has_value());
  CHECK(failed->id == *big);
  CHECK(failed->status.reason() == "frame_too_large");
  CHECK(wait_sent(*alice, *small).seq == 2);
}

TEST_CASE("history issued while connecting waits for the server instead of an empty cache") {
  TestServer server;
  {
    auto alice = open_client(server, "alice", temp_dir("alice"));
    REQUIRE(wait_ready(*alice));
    REQUIRE(request_status(*alice, alice->create_channel("general")).ok());
    for (int i = 0; i < 3; ++i) alice->send("general", "h" + std::to_string(i));
    for (int i = 0; i < 3; ++i) REQUIRE(wait_for<MessageSent>(*alice).has_value());
  }
  auto bob = open_client(server, "bob", temp_dir("bob"));
  // At once, before the client is ready: bob is not a member, so the server
  // must be asked (and refuses), rather than the empty cache answering.
  auto h = history(*bob, "general", 3);
  CHECK(h.status.reason() == "not_member");
  REQUIRE(request_status(*bob, bob->join_channel("general")).ok());
  auto again = history(*bob, "general", 3);
  CHECK(again.messages.size() == 3);
}

TEST_CASE("history of large messages pages until the limit is met") {
  TestServer server;
  auto alice = open_client(server, "alice", temp_dir("alice"));
  REQUIRE(wait_ready(*alice));
  REQUIRE(request_status(*alice, alice->create_channel("big")).ok());
  const int n = 300;
  for (int i = 0; i < n; ++i) alice->send("big", std::to_string(i) + std::string(8000, 'x'));
  for (int i = 0; i < n; ++i) REQUIRE(wait_for<MessageSent>(*alice).has_value());
  auto bob = open_client(server, "bob", temp_dir("bob"));
  REQUIRE(wait_ready(*bob));
  REQUIRE(request_status(*bob, bob->join_channel("big")).ok());
  auto h = history(*bob, "big", n);
  CHECK(h.complete);
  CHECK(h.messages.size() == static_cast<std::size_t>(n));
}
