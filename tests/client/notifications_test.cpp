// Notifications through the SDK, against the in-process server over real
// WebSockets on 127.0.0.1: levels, mentions, the server's unread and mention
// counts on two devices of one user, and what the cache keeps of them
// (docs/notifications.md, "In the SDK and the CLI").
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "parley/sys/analytics.hpp"
#include "test_support.hpp"

using namespace parley;
using namespace parley::testing;
using namespace std::chrono_literals;

namespace {

class Sink : public sys::AnalyticsSink {
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

// A server listening on 127.0.0.1; each device of a user has its own data dir.
struct Setup {
  TestServer server{/*listen=*/true};
  std::map<std::string, std::filesystem::path> dirs;

  ClientOptions options(const std::string& user, const std::string& device) {
    const std::string key = user + "/" + device;
    if (!dirs.count(key)) dirs[key] = temp_dir(user + "-" + device);
    ClientOptions o = server.options(user, dirs[key]);
    o.transport = nullptr;  // the default: WebSocket
    o.server_url = "ws://127.0.0.1:" + std::to_string(server.server->port()) + "/";
    o.device_id = device;
    return o;
  }
  std::unique_ptr<Client> open(const std::string& user, const std::string& device = "phone",
                               std::shared_ptr<sys::AnalyticsSink> sink = nullptr) {
    ClientOptions o = options(user, device);
    o.analytics = std::move(sink);
    auto c = Client::open(o);
    REQUIRE_MESSAGE(c.ok(), c.status().to_string());
    REQUIRE(wait_ready(**c));
    return std::move(*c);
  }
};

// Events of one client, kept until asked for: the server's pushes
// (notification, unread, a message) come in an order the tests do not fix.
struct Events {
  explicit Events(Client& c) : client(c) {}
  Client& client;
  std::vector<Event> backlog;

  // The first event of type T satisfying `pred`, from the backlog or waited
  // for up to `timeout`; it leaves the backlog.
  template <class T>
  std::optional<T> take(std::function<bool(const T&)> pred = nullptr,
                        std::chrono::milliseconds timeout = 10s) {
    for (auto it = backlog.begin(); it != backlog.end(); ++it) {
      if (auto* t = std::get_if<T>(&*it); t && (!pred || pred(*t))) {
        T found = *t;
        backlog.erase(it);
        return found;
      }
    }
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      auto ev = client.next_event(std::max(left, std::chrono::milliseconds(1)));
      if (!ev) continue;
      if (auto* t = std::get_if<T>(&*ev); t && (!pred || pred(*t))) return *t;
      backlog.push_back(std::move(*ev));
    }
    return std::nullopt;
  }

  void ok(RequestId id) {
    auto done =
        take<ChannelRequestDone>([id](const ChannelRequestDone& d) { return d.request == id; });
    REQUIRE(done.has_value());
    INFO(done->status.to_string());
    REQUIRE(done->status.ok());
  }

  std::uint64_t sent(const std::string& channel, const std::string& text) {
    auto id = client.send(channel, text);
    REQUIRE(id.ok());
    auto done = take<MessageSent>([&](const MessageSent& s) { return s.id == *id; });
    REQUIRE(done.has_value());
    return done->seq;
  }

  Message received(const std::string& channel, std::uint64_t seq) {
    auto got = take<MessageReceived>([&](const MessageReceived& m) {
      return m.message.channel == channel && m.message.seq == seq;
    });
    REQUIRE(got.has_value());
    return got->message;
  }

  void unread_becomes(const std::string& channel, std::uint64_t unread, std::uint64_t mentions) {
    auto got = take<UnreadChanged>([&](const UnreadChanged& u) {
      return u.channel == channel && u.unread == unread && u.mentions == mentions;
    });
    REQUIRE_MESSAGE(got.has_value(), "no UnreadChanged to " << unread << "/" << mentions);
  }

  // Whether any notification arrived in `wait` (from the backlog too).
  bool notified(std::chrono::milliseconds wait = 300ms) {
    return take<NotificationReceived>(nullptr, wait).has_value();
  }
};

}  // namespace

TEST_CASE("in a channel set to mentions, a mention notifies and a plain message does not") {
  Setup s;
  auto sink = std::make_shared<Sink>();
  auto alice_client = s.open("alice");
  auto bob_client = s.open("bob", "phone", sink);
  Events alice(*alice_client), bob(*bob_client);
  alice.ok(alice_client->create_channel("quiet-room"));
  bob.ok(bob_client->join_channel("quiet-room"));
  CHECK(bob_client->notification_level("quiet-room") == NotificationLevel::all);
  CHECK_FALSE(bob_client->notification_level("nowhere").has_value());

  bob.ok(bob_client->set_notification_level("quiet-room", NotificationLevel::mentions));
  auto changed = bob.take<NotificationLevelChanged>();
  REQUIRE(changed.has_value());
  CHECK(changed->channel == "quiet-room");
  CHECK(changed->level == NotificationLevel::mentions);
  CHECK(changed->mute_until_ms == 0);
  CHECK(bob_client->notification_level("quiet-room") == NotificationLevel::mentions);

  std::uint64_t plain = alice.sent("quiet-room", "secret-plain text for everyone");
  std::uint64_t mention = alice.sent("quiet-room", "hey @bob, secret-mention");
  CHECK(bob.received("quiet-room", plain).mentions.empty());
  Message m = bob.received("quiet-room", mention);
  REQUIRE(m.mentions.size() == 1);
  CHECK(m.mentions[0] == Mention{4, 4, "bob"});
  bob.unread_becomes("quiet-room", 2, 1);
  CHECK(bob_client->unread("quiet-room") == UnreadCount{2, 1});
  CHECK(bob_client->badge() == UnreadCount{2, 1});
  // The only notification is the mention's: the plain message had none.
  auto note = bob.take<NotificationReceived>();
  REQUIRE(note.has_value());
  CHECK(note->channel == "quiet-room");
  CHECK(note->seq == mention);
  CHECK(note->kind == "mention");
  CHECK(note->sender == "alice");
  CHECK_FALSE(bob.notified());
  // Nobody is notified of their own messages.
  CHECK_FALSE(alice.notified());

  // Analytics: the level and the kind, nothing else.
  auto levels = sink->named("notification_level_set");
  REQUIRE(levels.size() == 1);
  CHECK(levels[0].label("level") == "mentions");
  CHECK(levels[0].labels.size() == 1);
  auto notes = sink->named("notification_received");
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].label("kind") == "mention");
  CHECK(notes[0].labels.size() == 1);
  std::lock_guard lock(sink->mu);
  for (const auto& e : sink->events) {
    for (const auto& [k, v] : e.labels) {
      CHECK(v.find("secret") == std::string::npos);
      if (e.name.rfind("notification", 0) == 0) {
        CHECK(v != "quiet-room");
        CHECK(v != "alice");
      }
    }
  }
}

TEST_CASE("two devices of one user: reads and levels cross over, counts survive a restart") {
  Setup s;
  auto alice_client = s.open("alice");
  auto a_client = s.open("bob", "device-a");
  Events alice(*alice_client), a(*a_client);
  alice.ok(alice_client->create_channel("team"));
  a.ok(a_client->join_channel("team"));
  auto b_client = s.open("bob", "device-b");  // its welcome lists team
  Events b(*b_client);

  std::uint64_t first = alice.sent("team", "morning all");
  std::uint64_t second = alice.sent("team", "@bob can you look at this?");
  b.unread_becomes("team", 2, 1);
  CHECK(b_client->unread("team") == UnreadCount{2, 1});
  CHECK(b_client->badge() == UnreadCount{2, 1});
  b.received("team", second);

  // Device A reads: B's count clears, pushed by the server.
  a.received("team", first);
  a.received("team", second);
  REQUIRE(a_client->mark_read("team").ok());
  b.unread_becomes("team", 0, 0);
  CHECK(b_client->unread("team") == UnreadCount{});
  a.unread_becomes("team", 0, 0);
  CHECK(a_client->unread("team") == UnreadCount{});

  // A level set on A reaches B.
  auto until = std::chrono::system_clock::now() + 1h;
  a.ok(a_client->set_notification_level("team", NotificationLevel::none, until));
  auto changed = b.take<NotificationLevelChanged>(
      [](const NotificationLevelChanged& c) { return c.channel == "team"; });
  REQUIRE(changed.has_value());
  CHECK(changed->level == NotificationLevel::none);
  auto until_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(until.time_since_epoch()).count();
  CHECK(changed->mute_until_ms == until_ms);
  CHECK(b_client->notification_level("team") == NotificationLevel::none);
  REQUIRE(b_client->notification_muted_until("team").has_value());

  // At level none, unread messages leave the badge; mentions stay in it.
  while (b.notified(0ms)) {
  }  // the earlier mention's
  std::uint64_t third = alice.sent("team", "ping @bob");
  b.received("team", third);
  b.unread_becomes("team", 1, 1);
  CHECK(b_client->badge() == UnreadCount{0, 1});
  CHECK_FALSE(b.notified());

  // Restart B without connecting: the counts, the level and the mentions
  // come from the cache.
  b_client.reset();
  ClientOptions o = s.options("bob", "device-b");
  o.auto_connect = false;
  auto again = Client::open(o);
  REQUIRE_MESSAGE(again.ok(), again.status().to_string());
  Client& b2 = **again;
  CHECK(b2.unread("team") == UnreadCount{1, 1});
  CHECK(b2.notification_level("team") == NotificationLevel::none);
  CHECK(b2.badge() == UnreadCount{0, 1});
  RequestId id = b2.load_history("team");
  auto history =
      wait_for<HistoryLoaded>(b2, [id](const HistoryLoaded& h) { return h.request == id; });
  REQUIRE(history.has_value());
  REQUIRE(history->status.ok());
  std::map<std::uint64_t, Message> by_seq;
  for (const auto& msg : history->messages) by_seq[msg.seq] = msg;
  REQUIRE(by_seq.count(first));
  REQUIRE(by_seq.count(second));
  REQUIRE(by_seq.count(third));
  CHECK(by_seq[first].mentions.empty());
  REQUIRE(by_seq[second].mentions.size() == 1);
  CHECK(by_seq[second].mentions[0] == Mention{0, 4, "bob"});
  REQUIRE(by_seq[third].mentions.size() == 1);
  CHECK(by_seq[third].mentions[0] == Mention{5, 4, "bob"});
}

TEST_CASE("a client that does not opt in gets counts from its welcome only") {
  Setup s;
  auto alice_client = s.open("alice");
  Events alice(*alice_client);
  ClientOptions o = s.options("bot", "server");
  o.notifications = false;
  auto opened = Client::open(o);
  REQUIRE(opened.ok());
  Client& bot_client = **opened;
  REQUIRE(wait_ready(bot_client));
  Events bot(bot_client);
  alice.ok(alice_client->create_channel("ops"));
  bot.ok(bot_client.join_channel("ops"));
  std::uint64_t seq = alice.sent("ops", "@bot deploy please");
  bot.received("ops", seq);
  CHECK_FALSE(bot.notified());
  CHECK(bot_client.unread("ops") == UnreadCount{});
  // A new connection's welcome brings the counts.
  bot_client.disconnect();
  REQUIRE(bot.take<StateChanged>(
                 [](const StateChanged& c) { return c.state == LifecycleState::disconnected; })
              .has_value());
  bot_client.connect();
  bot.unread_becomes("ops", 1, 1);
  CHECK(bot_client.unread("ops") == UnreadCount{1, 1});
}
