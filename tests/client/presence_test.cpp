// Presence through the SDK against the in-process server (loopback links):
// channel peers, watches and their snapshots, several devices of one user,
// the grace period and last seen, invisibility, hidden last seen, a resume,
// online counts, and the arguments checked before anything is sent
// (docs/presence.md, "In the SDK and the CLI").
#include <doctest/doctest.h>

#include <map>
#include <mutex>
#include <thread>

#include "parley/sys/analytics.hpp"
#include "test_support.hpp"

using namespace parley;
using namespace parley::testing;
using namespace std::chrono_literals;

namespace {

// Short timings, so that offline shows within a second of the last close.
constexpr auto kGrace = 300ms;
// Longer than a grace period plus a tick or two, with slack for slow runners.
constexpr auto kSettle = 1500ms;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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

// One device of a user: its client and the events it received but no check
// has taken yet.
struct Device {
  std::unique_ptr<Client> client;
  std::vector<Event> backlog;

  Client* operator->() { return client.get(); }

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
      auto ev = client->next_event(std::max(left, std::chrono::milliseconds(1)));
      if (!ev) continue;
      if (auto* t = std::get_if<T>(&*ev); t && (!pred || pred(*t))) return *t;
      backlog.push_back(std::move(*ev));
    }
    return std::nullopt;
  }

  // Everything that arrives within `wait`, into the backlog.
  void drain(std::chrono::milliseconds wait) {
    auto until = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < until) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (auto ev = client->next_event(std::max(left, std::chrono::milliseconds(1)))) {
        backlog.push_back(std::move(*ev));
      }
    }
  }

  // Lets what is under way arrive, and forgets what it said of `user`: a
  // snapshot may list someone who connected a moment ago as offline, and a
  // check that follows must not take that for news.
  void settle(const std::string& user, std::chrono::milliseconds wait = 300ms) {
    drain(wait);
    presences_of(user);
  }

  // The presence items for `user` in the backlog (taken out of it).
  std::vector<Presence> presences_of(const std::string& user) {
    std::vector<Presence> out;
    for (auto it = backlog.begin(); it != backlog.end();) {
      if (auto* p = std::get_if<PresenceChanged>(&*it); p && p->presence.user == user) {
        out.push_back(p->presence);
        it = backlog.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }

  Status done(RequestId id) {
    auto d =
        take<ChannelRequestDone>([id](const ChannelRequestDone& r) { return r.request == id; });
    REQUIRE(d.has_value());
    CHECK(d->channel.empty());
    return d->status;
  }
  void ok(RequestId id) {
    Status s = done(id);
    INFO(s.to_string());
    REQUIRE(s.ok());
  }
  // A channel request that must succeed; returns the channel's name.
  std::string channel_ok(RequestId id) {
    auto d =
        take<ChannelRequestDone>([id](const ChannelRequestDone& r) { return r.request == id; });
    REQUIRE(d.has_value());
    INFO(d->status.to_string());
    REQUIRE(d->status.ok());
    return d->channel;
  }

  // Waits for `user` to be shown with `status`.
  Presence becomes(const std::string& user, PresenceStatus status,
                   std::chrono::milliseconds timeout = 10s) {
    auto got = take<PresenceChanged>(
        [&](const PresenceChanged& p) {
          return p.presence.user == user && p.presence.status == status;
        },
        timeout);
    INFO("waiting for " << user << " to be " << to_string(status));
    REQUIRE(got.has_value());
    return got->presence;
  }
};

struct Setup {
  TestServer server;
  std::map<std::string, std::filesystem::path> dirs;

  explicit Setup(const std::function<void(server::ServerOptions&)>& tweak = nullptr)
      : server(false, 65536, [tweak](server::ServerOptions& o) {
          o.presence_grace = kGrace;
          if (tweak) tweak(o);
        }) {}

  Device open(const std::string& user, const std::string& device = "phone",
              std::shared_ptr<sys::AnalyticsSink> sink = nullptr) {
    const std::string key = user + "/" + device;
    if (!dirs.count(key)) dirs[key] = temp_dir(user + "-" + device);
    ClientOptions o = server.options(user, dirs[key]);
    o.device_id = device;
    o.analytics = std::move(sink);
    auto c = Client::open(o);
    REQUIRE_MESSAGE(c.ok(), c.status().to_string());
    // Up to ready, keeping what arrives on the way (the presence snapshot
    // may come before ready: ready waits for the device's keys).
    Device d{std::move(*c), {}};
    auto ready = d.take<StateChanged>(
        [](const StateChanged& st) { return st.state == LifecycleState::ready; });
    REQUIRE(ready.has_value());
    return d;
  }
};

}  // namespace

TEST_CASE("presence: two users sharing a direct channel see each other come and go") {
  Setup s;
  Device alice = s.open("alice");
  Device bob = s.open("bob");
  // Each sees its own presence first (the welcome's snapshot).
  CHECK(alice.becomes("alice", PresenceStatus::online).user == "alice");

  alice.channel_ok(alice->open_direct("bob"));
  // The newcomer's presence reaches the other member, and theirs the newcomer.
  alice.becomes("bob", PresenceStatus::online);
  bob.becomes("alice", PresenceStatus::online);
  auto cached = alice->presence("bob");
  REQUIRE(cached.has_value());
  CHECK(cached->status == PresenceStatus::online);
  CHECK_FALSE(cached->last_seen_ms.has_value());
  CHECK_FALSE(alice->presence("nobody").has_value());

  // Status text and away reach the peer.
  PresenceSettings away;
  away.status = PresenceMode::away;
  away.text = "on a train";
  bob.ok(bob->set_presence(away));
  Presence seen = alice.becomes("bob", PresenceStatus::away);
  CHECK(seen.text == std::optional<std::string>("on a train"));
  CHECK_FALSE(seen.invisible);
  // Bob's own devices see their settings.
  Presence own = bob.becomes("bob", PresenceStatus::away);
  CHECK(own.text == std::optional<std::string>("on a train"));

  // Bob leaves: offline only after the grace period, with when he was last seen.
  alice.settle("bob");
  const std::int64_t closed_at = wall_ms();
  const auto closed = std::chrono::steady_clock::now();
  bob.client.reset();
  Presence gone = alice.becomes("bob", PresenceStatus::offline, 5s);
  CHECK(std::chrono::steady_clock::now() - closed >= kGrace - 50ms);
  REQUIRE(gone.last_seen_ms.has_value());
  CHECK(*gone.last_seen_ms >= closed_at - 100);
  CHECK(*gone.last_seen_ms <= wall_ms());
  CHECK(gone.text == std::optional<std::string>("on a train"));  // the text stays
  CHECK(alice->presence("bob")->status == PresenceStatus::offline);
}

TEST_CASE("presence: a watch gets a snapshot, then changes, and a notify when they come online") {
  Setup s;
  Device alice = s.open("alice");
  const RequestId watch = alice->watch_presence({"carol", "dave"}, /*notify=*/true);
  // The snapshot comes before the completion: neither has ever connected.
  auto carol0 = alice.take<PresenceChanged>(
      [](const PresenceChanged& p) { return p.presence.user == "carol"; });
  REQUIRE(carol0.has_value());
  CHECK(carol0->presence.status == PresenceStatus::offline);
  CHECK_FALSE(carol0->presence.last_seen_ms.has_value());
  alice.ok(watch);
  CHECK(alice->presence("dave").has_value());

  Device carol = s.open("carol");
  alice.becomes("carol", PresenceStatus::online);
  auto note = alice.take<PresenceNotified>();
  REQUIRE(note.has_value());
  CHECK(note->user == "carol");

  PresenceSettings text;
  text.text = "lunch";
  text.text_until = std::chrono::system_clock::now() + std::chrono::hours(1);
  carol.ok(carol->set_presence(text));
  auto with_text = alice.take<PresenceChanged>([](const PresenceChanged& p) {
    return p.presence.user == "carol" && p.presence.text.has_value();
  });
  REQUIRE(with_text.has_value());
  CHECK(*with_text->presence.text == "lunch");
  REQUIRE(with_text->presence.text_until_ms.has_value());
  CHECK(*with_text->presence.text_until_ms > wall_ms());
  CHECK(with_text->presence.status == PresenceStatus::online);  // a text alone keeps the status

  // get_presence answers without subscribing; "" clears the text.
  PresenceSettings clear;
  clear.text = "";
  carol.ok(carol->set_presence(clear));
  REQUIRE(alice
              .take<PresenceChanged>([](const PresenceChanged& p) {
                return p.presence.user == "carol" && !p.presence.text.has_value();
              })
              .has_value());
  Device erin = s.open("erin");
  const RequestId query = erin->query_presence({"carol", "alice", "zed"});
  for (const char* user : {"carol", "alice", "zed"}) {
    auto got = erin.take<PresenceChanged>(
        [user](const PresenceChanged& p) { return p.presence.user == user; });
    REQUIRE_MESSAGE(got.has_value(), user);
    CHECK(got->presence.status ==
          (std::string(user) == "zed" ? PresenceStatus::offline : PresenceStatus::online));
  }
  erin.ok(query);
  CHECK(erin->presence("carol")->status == PresenceStatus::online);

  // Unwatched: carol's going away no longer reaches alice; erin never watched.
  alice.ok(alice->unwatch_presence({"carol"}));
  alice.drain(200ms);
  alice.presences_of("carol");
  carol.client.reset();
  alice.drain(kSettle);
  erin.drain(0ms);
  CHECK(alice.presences_of("carol").empty());
  CHECK(erin.presences_of("carol").empty());
  CHECK(alice->presence("carol")->status == PresenceStatus::online);  // as last heard
}

TEST_CASE("presence: one of two devices disconnecting keeps the user online; both, offline") {
  // A grace period long enough to open a client again within it.
  Setup s([](server::ServerOptions& o) { o.presence_grace = 1500ms; });
  Device alice = s.open("alice");
  Device phone = s.open("bob", "phone");
  Device laptop = s.open("bob", "laptop");
  alice.ok(alice->watch_presence({"bob"}));
  alice.becomes("bob", PresenceStatus::online);
  alice.settle("bob");
  CHECK(alice->presence("bob")->status == PresenceStatus::online);

  laptop.client.reset();
  alice.drain(2500ms);
  for (const Presence& p : alice.presences_of("bob")) {
    CHECK_MESSAGE(p.status != PresenceStatus::offline, "bob shown offline with a device left");
  }
  CHECK(alice->presence("bob")->status == PresenceStatus::online);

  const std::int64_t closed_at = wall_ms();
  const auto closed = std::chrono::steady_clock::now();
  phone.client.reset();
  Presence gone = alice.becomes("bob", PresenceStatus::offline, 5s);
  CHECK(std::chrono::steady_clock::now() - closed >= 1400ms);
  REQUIRE(gone.last_seen_ms.has_value());
  CHECK(*gone.last_seen_ms >= closed_at - 100);
  CHECK(*gone.last_seen_ms <= wall_ms());

  // A device back within the grace period shows no offline/online pair.
  Device again = s.open("bob", "phone");
  alice.becomes("bob", PresenceStatus::online);
  alice.settle("bob");
  again.client.reset();
  Device back = s.open("bob", "phone");
  alice.drain(2500ms);
  for (const Presence& p : alice.presences_of("bob")) {
    CHECK_MESSAGE(p.status != PresenceStatus::offline, "a quick reconnect showed as offline");
  }
  CHECK(alice->presence("bob")->status == PresenceStatus::online);
}

TEST_CASE("presence: an invisible user is never seen online, and sees the truth themselves") {
  Setup s;
  {
    Device dave = s.open("dave");
    PresenceSettings invisible;
    invisible.status = PresenceMode::invisible;
    dave.ok(dave->set_presence(invisible));
  }
  Device alice = s.open("alice");
  alice.ok(alice->watch_presence({"dave"}));
  const std::string direct = alice.channel_ok(alice->open_direct("dave"));  // a channel peer too

  Device dave = s.open("dave");
  Presence own = dave.becomes("dave", PresenceStatus::online);
  CHECK(own.invisible);
  REQUIRE(dave->send(direct, "hello").ok());  // activity, and still invisible
  REQUIRE(dave.take<MessageSent>().has_value());
  alice.drain(kSettle);
  dave.client.reset();
  alice.drain(kSettle);
  std::vector<Presence> seen = alice.presences_of("dave");
  CHECK_FALSE(seen.empty());
  for (const Presence& p : seen) {
    CHECK_MESSAGE(p.status == PresenceStatus::offline, "dave leaked as " << to_string(p.status));
    CHECK_FALSE(p.invisible);  // others are not told why
  }
  CHECK(alice->presence("dave")->status == PresenceStatus::offline);
}

TEST_CASE("presence: hide_last_seen gives others no last seen, the user's own devices still") {
  Setup s;
  Device alice = s.open("alice");
  {
    Device erin = s.open("erin");
    PresenceSettings hide;
    hide.hide_last_seen = true;
    erin.ok(erin->set_presence(hide));
    alice.ok(alice->watch_presence({"erin"}));
  }
  Presence gone = alice.becomes("erin", PresenceStatus::offline, 5s);
  CHECK_FALSE(gone.last_seen_ms.has_value());
  CHECK_FALSE(gone.hide_last_seen);

  // Erin's other device asks about erin: the last seen and the setting are there.
  Device tablet = s.open("erin", "tablet");
  const RequestId q = tablet->query_presence({"erin", "alice"});
  auto mine = tablet.take<PresenceChanged>([](const PresenceChanged& p) {
    return p.presence.user == "erin" && p.presence.hide_last_seen;
  });
  REQUIRE(mine.has_value());
  CHECK(mine->presence.last_seen_ms.has_value());
  tablet.ok(q);

  // Shown again once she lets others see it.
  PresenceSettings show;
  show.hide_last_seen = false;
  tablet.ok(tablet->set_presence(show));
  tablet.client.reset();
  auto back = alice.take<PresenceChanged>(
      [](const PresenceChanged& p) {
        return p.presence.user == "erin" && p.presence.status == PresenceStatus::offline &&
               p.presence.last_seen_ms.has_value();
      },
      5s);
  CHECK(back.has_value());
}

TEST_CASE("presence: after a lost connection the watch list is sent again: a fresh snapshot") {
  Setup s;
  Device alice = s.open("alice");
  Device bob = s.open("bob");
  alice.ok(alice->watch_presence({"bob"}, /*notify=*/true));
  alice.drain(200ms);
  alice.presences_of("bob");

  // While alice is away, bob goes away: with no channel in common, only the
  // watch sent again on her new connection can tell her.
  alice->disconnect();
  REQUIRE(alice
              .take<StateChanged>(
                  [](const StateChanged& st) { return st.state == LifecycleState::disconnected; })
              .has_value());
  PresenceSettings away;
  away.status = PresenceMode::away;
  bob.ok(bob->set_presence(away));
  std::this_thread::sleep_for(300ms);  // published by now, to no one
  alice.drain(0ms);
  alice.presences_of("bob");
  alice->connect();
  Presence fresh = alice.becomes("bob", PresenceStatus::away);
  CHECK(fresh.user == "bob");
  CHECK(alice->presence("bob")->status == PresenceStatus::away);

  // The subscription is back with its notify flag.
  bob.client.reset();
  alice.becomes("bob", PresenceStatus::offline, 5s);
  Device bob2 = s.open("bob");
  alice.becomes("bob", PresenceStatus::away);
  auto note = alice.take<PresenceNotified>();
  REQUIRE(note.has_value());
  CHECK(note->user == "bob");
}

TEST_CASE("presence: idle users turn away; report_activity brings them back, throttled") {
  Setup s([](server::ServerOptions& o) { o.away_after = 500ms; });
  Device alice = s.open("alice");
  Device bob = s.open("bob");
  alice.ok(alice->watch_presence({"bob"}));
  alice.becomes("bob", PresenceStatus::away, 5s);
  alice.presences_of("bob");  // what came before (the snapshot, online)
  bob->report_activity();
  alice.becomes("bob", PresenceStatus::online, 5s);
  alice.becomes("bob", PresenceStatus::away, 5s);
  alice.presences_of("bob");
  // Within 10 s of the last signal the SDK sends none: bob stays away.
  bob->report_activity();
  alice.drain(kSettle);
  for (const Presence& p : alice.presences_of("bob")) CHECK(p.status == PresenceStatus::away);
  // A message counts as activity by itself.
  const std::string direct = alice.channel_ok(alice->open_direct("bob"));
  REQUIRE(bob->send(direct, "back").ok());
  alice.becomes("bob", PresenceStatus::online, 5s);
}

TEST_CASE("presence: large channels give an online count instead of per-member presence") {
  Setup s([](server::ServerOptions& o) { o.presence_max_members = 2; });
  Device alice = s.open("alice");
  alice.channel_ok(alice->create_channel("hall"));
  Device bob = s.open("bob");
  bob.channel_ok(bob->join_channel("hall"));
  auto count = alice.take<OnlineCountChanged>([](const OnlineCountChanged& c) {
    return c.channel == "hall" && c.online == 2 && c.members == 2;
  });
  REQUIRE(count.has_value());
  CHECK(alice->online_count("hall") == std::optional<std::uint64_t>(2));
  CHECK_FALSE(alice->online_count("elsewhere").has_value());
  bob.client.reset();
  REQUIRE(alice
              .take<OnlineCountChanged>(
                  [](const OnlineCountChanged& c) { return c.channel == "hall" && c.online == 1; })
              .has_value());
  alice.drain(0ms);
  CHECK(alice.presences_of("bob").empty());  // no per-member events in a large channel
  CHECK(alice->online_count("hall") == std::optional<std::uint64_t>(1));
}

TEST_CASE("presence: arguments are checked before anything is sent") {
  Setup s;
  Device alice = s.open("alice");
  auto reason = [&](RequestId id) { return alice.done(id).reason(); };
  CHECK(reason(alice->watch_presence({})) == "invalid_user");
  CHECK(reason(alice->watch_presence({"bad name"})) == "invalid_user");
  CHECK(reason(alice->query_presence({"ok", ".dot"})) == "invalid_user");
  CHECK(reason(alice->unwatch_presence({""})) == "invalid_user");
  std::vector<std::string> many;
  for (int i = 0; i < 101; ++i) many.push_back("user" + std::to_string(i));
  CHECK(reason(alice->watch_presence(many)) == "too_many_users");
  CHECK(reason(alice->query_presence(many)) == "too_many_users");
  many.pop_back();
  alice.ok(alice->query_presence(many));  // 100 is fine

  PresenceSettings text;
  text.text = std::string(257, 'x');
  CHECK(reason(alice->set_presence(text)) == "invalid_text");
  text.text = std::string(256, 'x');
  alice.ok(alice->set_presence(text));
  text.text = std::string("\xff\xfe");
  CHECK(reason(alice->set_presence(text)) == "invalid_text");
  PresenceSettings odd;
  odd.status = static_cast<PresenceMode>(7);
  CHECK(reason(alice->set_presence(odd)) == "invalid_status");
  PresenceSettings before_1970;
  before_1970.text = "old";
  before_1970.text_until = std::chrono::system_clock::time_point(std::chrono::seconds(-5));
  CHECK(reason(alice->set_presence(before_1970)) == "invalid_text");
  CHECK(alice.done(alice->watch_presence({"bad name"})).code() == StatusCode::invalid_argument);

  // The thousand-user bound of the watch list.
  for (int batch = 0; batch < 10; ++batch) {
    std::vector<std::string> users;
    for (int i = 0; i < 100; ++i) users.push_back("w" + std::to_string(batch * 100 + i));
    alice.ok(alice->watch_presence(users));
  }
  CHECK(reason(alice->watch_presence({"one-more"})) == "too_many_users");
  alice.ok(alice->watch_presence({"w5"}, true));  // already watched: no more room needed
  alice.ok(alice->unwatch_presence({"w5"}));
  alice.ok(alice->watch_presence({"one-more"}));

  PresenceMode mode;
  CHECK(parse_presence_mode("invisible", &mode));
  CHECK(mode == PresenceMode::invisible);
  CHECK_FALSE(parse_presence_mode("offline", &mode));
  PresenceStatus status;
  CHECK(parse_presence_status("away", &status));
  CHECK(status == PresenceStatus::away);
  CHECK_FALSE(parse_presence_status("invisible", &status));
}

TEST_CASE("presence: requests made offline fail with offline after the request timeout") {
  Setup s;
  ClientOptions o = s.server.options("alice", temp_dir("alice-offline"));
  o.auto_connect = false;
  o.request_timeout = 300ms;
  auto c = Client::open(o);
  REQUIRE(c.ok());
  Client& alice = **c;
  PresenceSettings away;
  away.status = PresenceMode::away;
  const RequestId set = alice.set_presence(away);
  const RequestId watch = alice.watch_presence({"bob"});
  alice.report_activity();  // nothing to send: no effect, no event
  for (RequestId id : {set, watch}) {
    auto done = wait_for<ChannelRequestDone>(
        alice, [id](const ChannelRequestDone& d) { return d.request == id; }, 5s);
    REQUIRE(done.has_value());
    CHECK(done->status.code() == StatusCode::offline);
  }
  CHECK_FALSE(alice.presence("bob").has_value());
}

TEST_CASE("presence: analytics name the status set and the session's length, never the text") {
  Setup s;
  auto sink = std::make_shared<Sink>();
  {
    Device alice = s.open("alice", "phone", sink);
    PresenceSettings away;
    away.status = PresenceMode::away;
    away.text = "secret-marker-7731";
    alice.ok(alice->set_presence(away));
    PresenceSettings hide;
    hide.hide_last_seen = true;
    alice.ok(alice->set_presence(hide));
    std::this_thread::sleep_for(100ms);
  }
  auto set = sink->named("presence_set");
  REQUIRE(set.size() == 2);
  CHECK(set[0].label("status") == "away");
  CHECK(set[1].label("status") == "unchanged");
  auto sessions = sink->named("presence_session");
  REQUIRE(sessions.size() == 1);
  CHECK(sessions[0].value("duration_ms") >= 100);
  std::lock_guard lock(sink->mu);
  for (const auto& e : sink->events) {
    for (const auto& [k, v] : e.labels) CHECK(v.find("secret-marker") == std::string::npos);
  }
}
