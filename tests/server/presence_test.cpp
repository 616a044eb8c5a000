// Presence through the real server over WebSockets (issue 8, docs/presence.md):
// online, away and offline across devices, the grace period, last seen,
// privacy, watches, online counts of large channels, the coalescing bound,
// and a silently dead connection found by the server's pings.
#include <doctest/doctest.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "fault_proxy.hpp"
#include "server_fixture.hpp"

using namespace parley;
using namespace parley::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Fast timings: a 300 ms grace period, idle after 600 ms (`away_after`).
TestServer::Configure fast(std::size_t max_members = 100, int dead_timeout_s = 60,
                           std::chrono::milliseconds away_after = 600ms) {
  return [=](server::ServerOptions& o) {
    o.presence_grace = 300ms;
    o.away_after = away_after;
    o.presence_max_members = max_members;
    o.dead_timeout_s = dead_timeout_s;
  };
}

// One connection of a user that asked for presence (or not) at auth.
class Device {
 public:
  Device(const TestServer& server, std::string user, bool presence = true, int port = 0)
      : user_(std::move(user)), peer_(std::make_unique<Peer>(port != 0 ? port : server.port())) {
    peer_->send(R"({"type":"auth","rid":1,"token":")" + server.token(user_) + "\"" +
                (presence ? R"(,"presence":true})" : "}"));
    welcome_ = peer_->expect<wire::Welcome>();
  }

  const std::string& user() const { return user_; }
  Peer& peer() { return *peer_; }

  // Sends `message` with a fresh rid and returns the reply, keeping what
  // arrives before it for next().
  wire::ServerMessage ask(wire::ClientMessage message) {
    const std::uint64_t rid = ++rid_;
    std::visit([&](auto& m) { m.rid = rid; }, message);
    peer_->send(wire::encode(message));
    for (;;) {
      wire::ServerMessage reply = peer_->next();
      std::optional<std::uint64_t> got = std::visit(
          [](const auto& m) -> std::optional<std::uint64_t> {
            if constexpr (std::is_same_v<std::decay_t<decltype(m)>, wire::Error>) {
              return m.rid;
            } else if constexpr (requires { m.rid; }) {
              return m.rid;
            } else {
              return std::nullopt;
            }
          },
          reply);
      if (got == rid) return reply;
      kept_.push_back(std::move(reply));
    }
  }
  template <typename T>
  T ask_for(wire::ClientMessage message) {
    std::string sent = wire::encode(message);
    wire::ServerMessage reply = ask(std::move(message));
    auto* value = std::get_if<T>(&reply);
    if (value == nullptr) FAIL(user_ << " sent " << sent << " and got " << wire::encode(reply));
    return *value;
  }
  void refused(wire::ClientMessage message, const std::string& code) {
    auto e = ask_for<wire::Error>(std::move(message));
    CHECK_MESSAGE(e.code == code, e.message);
    CHECK_FALSE(e.message.empty());
  }

  wire::ServerMessage next(std::chrono::milliseconds timeout = 10s) {
    if (!kept_.empty()) {
      wire::ServerMessage m = std::move(kept_.front());
      kept_.pop_front();
      return m;
    }
    return peer_->next(timeout);
  }
  // The next presence event about `who`, skipping everything else.
  wire::PresenceEvent presence_of(const std::string& who, std::chrono::milliseconds timeout = 10s) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      REQUIRE_MESSAGE(left.count() > 0, user_ << " got no presence of " << who);
      wire::ServerMessage m = next(left);
      if (auto* p = std::get_if<wire::PresenceEvent>(&m); p != nullptr && p->user == who) return *p;
    }
  }
  // True if no presence event about `who` arrives within `wait`.
  bool no_presence_of(const std::string& who, std::chrono::milliseconds wait) {
    auto deadline = Clock::now() + wait;
    for (;;) {
      for (auto it = kept_.begin(); it != kept_.end(); it = kept_.erase(it)) {
        if (auto* p = std::get_if<wire::PresenceEvent>(&*it); p != nullptr && p->user == who) {
          return false;
        }
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return true;
      if (peer_->quiet(left)) return true;
      kept_.push_back(peer_->next());
    }
  }
  // Every message that arrives within `wait`.
  std::vector<wire::ServerMessage> drain(std::chrono::milliseconds wait) {
    std::vector<wire::ServerMessage> out(kept_.begin(), kept_.end());
    kept_.clear();
    auto deadline = Clock::now() + wait;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0 || peer_->quiet(left)) return out;
      out.push_back(peer_->next());
    }
  }

 private:
  std::string user_;
  std::unique_ptr<Peer> peer_;
  wire::Welcome welcome_;
  std::uint64_t rid_ = 100;
  std::deque<wire::ServerMessage> kept_;
};

wire::SetPresence set_status(const std::string& status) {
  wire::SetPresence s;
  s.status = status;
  return s;
}

std::uint64_t metric(const TestServer& server, const std::string& name) {
  std::string body = body_of(http_get(server.port(), "/metrics"));
  std::smatch m;
  REQUIRE(std::regex_search(body, m, std::regex("\n" + name + " ([0-9]+)")));
  return std::stoull(m[1]);
}

}  // namespace

TEST_CASE("presence: direct peers see online, then offline with last seen after the grace") {
  TestServer server(fast());
  Device alice(server, "alice");
  auto ok = alice.ask_for<wire::Ok>(wire::OpenDirect{0, "bob"});
  // bob never connected: offline, no last seen.
  {
    auto list = alice.ask_for<wire::PresenceList>(wire::GetPresence{0, {"bob"}});
    REQUIRE(list.users.size() == 1);
    CHECK(list.users[0].status == "offline");
    CHECK_FALSE(list.users[0].last_seen);
  }
  auto own = alice.presence_of("alice");  // her own devices see her come online
  CHECK(own.status == "online");

  auto bob = std::make_unique<Device>(server, "bob");
  CHECK(alice.presence_of("bob").status == "online");
  // bob's snapshot after the welcome: himself, then alice, online.
  bool listed = false;
  for (auto& m : bob->drain(300ms)) {
    if (auto* list = std::get_if<wire::PresenceList>(&m); list != nullptr && list->rid == 0) {
      REQUIRE(list->users.size() == 2);
      CHECK(list->users[0].user == "bob");
      CHECK(list->users[0].status == "online");
      CHECK(list->users[1].user == "alice");
      CHECK(list->users[1].status == "online");
      listed = true;
    }
  }
  CHECK(listed);

  std::int64_t before = wall_ms();
  auto closed_at = Clock::now();
  bob.reset();
  auto offline = alice.presence_of("bob");
  auto after = Clock::now() - closed_at;
  CHECK(offline.status == "offline");
  REQUIRE(offline.last_seen);
  CHECK(*offline.last_seen >= before - 50);
  CHECK(*offline.last_seen <= wall_ms());
  CHECK(after >= 250ms);   // not before the grace period (300 ms)
  CHECK(after <= 1500ms);  // grace + one tick, with room for a loaded machine
  CHECK(ok.channel.front() == '@');
}

TEST_CASE("presence: several devices, flapping and a restart of the server") {
  // Idle only after a minute: the devices send nothing, and the silences
  // checked below must not be broken by their going away.
  TestServer server(fast(100, 60, 60s));
  Device alice(server, "alice");
  alice.ask_for<wire::Ok>(wire::OpenDirect{0, "bob"});
  auto phone = std::make_unique<Device>(server, "bob");
  auto laptop = std::make_unique<Device>(server, "bob");
  CHECK(alice.presence_of("bob").status == "online");

  SUBCASE("one of two devices leaves: still online; both: offline") {
    phone.reset();
    CHECK(alice.no_presence_of("bob", 800ms));
    laptop.reset();
    auto offline = alice.presence_of("bob");
    CHECK(offline.status == "offline");
    CHECK(offline.last_seen);
  }
  SUBCASE("a device that drops and comes back within the grace period: no offline/online pair") {
    phone.reset();
    laptop.reset();
    std::this_thread::sleep_for(100ms);
    Device back(server, "bob");
    CHECK(alice.no_presence_of("bob", 800ms));
    CHECK(metric(server, "parley_presence_sessions_ended_total") == 0);
  }
  SUBCASE("last seen is kept in the store across a restart") {
    phone.reset();
    laptop.reset();
    auto offline = alice.presence_of("bob");
    REQUIRE(offline.last_seen);
    server.restart();
    Device carol(server, "carol");
    auto list = carol.ask_for<wire::PresenceList>(wire::GetPresence{0, {"bob"}});
    REQUIRE(list.users.size() == 1);
    CHECK(list.users[0].status == "offline");
    CHECK(list.users[0].last_seen == offline.last_seen);
  }
}

TEST_CASE("presence: watch gives a snapshot, then changes, with an opt-in notification") {
  TestServer server(fast());
  // carol shares no channel with bob and did not ask for presence at auth:
  // she still gets what she watches, and nothing else.
  Device carol(server, "carol", /*presence=*/false);
  wire::Watch watch{0, {"bob", "dave"}, true};
  auto snapshot = carol.ask_for<wire::PresenceList>(watch);
  REQUIRE(snapshot.users.size() == 2);
  CHECK(snapshot.users[0].user == "bob");
  CHECK(snapshot.users[0].status == "offline");
  CHECK(snapshot.users[1].user == "dave");

  auto bob = std::make_unique<Device>(server, "bob");
  auto online = carol.presence_of("bob");
  CHECK(online.status == "online");
  CHECK(online.notify == true);
  // A status text change is a change too, without notify.
  wire::SetPresence text;
  text.text = "at lunch";
  bob->ask_for<wire::Ok>(text);
  auto changed = carol.presence_of("bob");
  CHECK(changed.text == "at lunch");
  CHECK_FALSE(changed.notify);

  carol.ask_for<wire::Ok>(wire::Unwatch{0, {"bob"}});
  bob.reset();
  CHECK(carol.no_presence_of("bob", 800ms));

  // A watch ends with the connection that made it.
  {
    Device watcher(server, "erin", false);
    watcher.ask_for<wire::PresenceList>(wire::Watch{0, {"dave"}, std::nullopt});
  }
  Device dave(server, "dave");
  std::this_thread::sleep_for(300ms);
  CHECK(server.server != nullptr);  // the server did not trip over the closed watcher
  Device again(server, "erin", false);
  auto list = again.ask_for<wire::PresenceList>(wire::GetPresence{0, {"dave"}});
  CHECK(list.users.at(0).status == "online");
}

TEST_CASE("presence: invisible users never show online; hidden last seen is absent") {
  TestServer server(fast());
  Device alice(server, "alice");
  alice.ask_for<wire::Ok>(wire::OpenDirect{0, "bob"});
  Device carol(server, "carol", false);
  carol.ask_for<wire::PresenceList>(wire::Watch{0, {"bob"}, true});

  SUBCASE("turning invisible while connected looks like leaving") {
    auto bob = std::make_unique<Device>(server, "bob");
    auto laptop = std::make_unique<Device>(server, "bob");
    CHECK(alice.presence_of("bob").status == "online");
    CHECK(carol.presence_of("bob").status == "online");
    std::int64_t before = wall_ms();
    bob->ask_for<wire::Ok>(set_status("invisible"));
    auto gone = alice.presence_of("bob");
    CHECK(gone.status == "offline");
    REQUIRE(gone.last_seen);
    CHECK(*gone.last_seen >= before - 50);
    CHECK_FALSE(gone.invisible);
    CHECK(carol.presence_of("bob").status == "offline");
    // His other device sees the truth.
    auto own = laptop->presence_of("bob");
    while (!own.invisible) own = laptop->presence_of("bob");
    CHECK(own.status == "online");
    CHECK(own.invisible == true);
    // Reconnecting while invisible shows nothing to anyone, not even for a tick.
    bob.reset();
    laptop.reset();
    Device back(server, "bob");
    CHECK(alice.no_presence_of("bob", 800ms));
    CHECK(carol.no_presence_of("bob", 10ms));
    auto list = carol.ask_for<wire::PresenceList>(wire::GetPresence{0, {"bob"}});
    CHECK(list.users.at(0).status == "offline");
    CHECK(list.users.at(0).last_seen == gone.last_seen);  // frozen while invisible
    // Back to visible: online, and the watcher is notified.
    back.ask_for<wire::Ok>(set_status("online"));
    CHECK(alice.presence_of("bob").status == "online");
    CHECK(carol.presence_of("bob").notify == true);
  }
  SUBCASE("hide last seen") {
    {
      Device bob(server, "bob");
      wire::SetPresence hide;
      hide.hide_last_seen = true;
      bob.ask_for<wire::Ok>(hide);
      CHECK(alice.presence_of("bob").status == "online");
    }
    auto offline = alice.presence_of("bob");
    CHECK(offline.status == "offline");
    CHECK_FALSE(offline.last_seen);
    CHECK_FALSE(offline.hide_last_seen);
    auto list = carol.ask_for<wire::PresenceList>(wire::GetPresence{0, {"bob"}});
    CHECK_FALSE(list.users.at(0).last_seen);
    // bob himself still sees it.
    Device bob(server, "bob");
    auto own = bob.ask_for<wire::PresenceList>(wire::GetPresence{0, {"bob"}});
    CHECK(own.users.at(0).last_seen);
    CHECK(own.users.at(0).hide_last_seen == true);
  }
}

TEST_CASE("presence: away when idle or set, back on activity; status text expires") {
  TestServer server(fast());
  Device alice(server, "alice");
  alice.ask_for<wire::Ok>(wire::OpenDirect{0, "bob"});
  Device bob(server, "bob");
  CHECK(alice.presence_of("bob").status == "online");
  // Idle for the away time (600 ms): away, within about a second more.
  auto idle = alice.presence_of("bob", 5s);
  CHECK(idle.status == "away");
  bob.peer().send(R"({"type":"activity","rid":7})");
  CHECK(alice.presence_of("bob").status == "online");
  bob.ask_for<wire::Ok>(set_status("away"));
  CHECK(alice.presence_of("bob").status == "away");
  bob.ask_for<wire::Ok>(set_status("online"));
  CHECK(alice.presence_of("bob").status == "online");

  wire::SetPresence text;
  text.text = "in a meeting";
  text.text_until = wall_ms() + 700;
  bob.ask_for<wire::Ok>(text);
  auto with_text = alice.presence_of("bob");
  CHECK(with_text.text == "in a meeting");
  CHECK(with_text.text_until == text.text_until);
  // Expired: the server clears it and says so. (An idle change may come first.)
  for (;;) {
    auto p = alice.presence_of("bob", 5s);
    if (!p.text) break;
  }
  auto list = alice.ask_for<wire::PresenceList>(wire::GetPresence{0, {"bob"}});
  CHECK_FALSE(list.users.at(0).text);
}

TEST_CASE("presence: refusals name what was wrong") {
  TestServer server(fast());
  Device alice(server, "alice");
  alice.refused(set_status("busy"), "invalid_status");
  wire::SetPresence long_text;
  long_text.text = std::string(257, 'x');
  alice.refused(long_text, "invalid_text");
  wire::SetPresence bad_until;
  bad_until.text = "x";
  bad_until.text_until = -1;
  alice.refused(bad_until, "bad_field");
  alice.refused(wire::Watch{0, {}, std::nullopt}, "invalid_user");
  alice.refused(wire::Watch{0, {"no spaces"}, std::nullopt}, "invalid_user");
  std::vector<std::string> many;
  for (int i = 0; i < 101; ++i) many.push_back("u" + std::to_string(i));
  alice.refused(wire::GetPresence{0, many}, "too_many_users");
  // Up to 1,000 watched users per connection.
  for (int batch = 0; batch < 10; ++batch) {
    std::vector<std::string> users;
    for (int i = 0; i < 100; ++i) users.push_back("w" + std::to_string(batch * 100 + i));
    alice.ask_for<wire::PresenceList>(wire::Watch{0, users, std::nullopt});
  }
  alice.refused(wire::Watch{0, {"one_more"}, std::nullopt}, "too_many_users");
  alice.ask_for<wire::PresenceList>(wire::Watch{0, {"w5"}, true});  // already watched: fine
  alice.peer().send(R"({"type":"set_presence","rid":9,"status":7})");
  auto e = alice.ask_for<wire::Error>(wire::SetPresence{0, std::string("sleeping")});
  CHECK(e.code == "invalid_status");
  alice.peer().channels();  // still usable
}

TEST_CASE("presence: large channels get an online count; a burst of connects stays bounded") {
  constexpr std::size_t kMaxMembers = 10;
  constexpr int kUsers = 150;
  TestServer server(fast(kMaxMembers));
  Device owner(server, "owner");
  owner.ask_for<wire::Ok>(wire::CreateChannel{0, "big"});
  auto start = Clock::now();
  std::vector<std::unique_ptr<Device>> crowd;
  for (int i = 0; i < kUsers; ++i) {
    crowd.push_back(std::make_unique<Device>(server, "u" + std::to_string(i)));
    crowd.back()->ask_for<wire::Ok>(wire::JoinChannel{0, "big"});
  }
  auto burst = Clock::now() - start;
  // Settle: the last count goes out within a count interval (1 s).
  std::this_thread::sleep_for(1500ms);
  std::uint64_t per_member = 0;
  std::uint64_t counts = 0;
  wire::OnlineCount last;
  for (auto& m : owner.drain(200ms)) {
    if (std::holds_alternative<wire::PresenceEvent>(m)) ++per_member;
    if (auto* c = std::get_if<wire::OnlineCount>(&m)) {
      ++counts;
      last = *c;
    }
  }
  MESSAGE(kUsers << " connects in " << std::chrono::duration<double>(burst).count() << " s: owner got "
                 << per_member << " presence events and " << counts << " online counts");
  // Per-member events only while the channel was small (and the owner's own).
  CHECK(per_member <= kMaxMembers + 1);
  // At most one count per second, plus the first.
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  CHECK(counts <= static_cast<std::uint64_t>(seconds) + 2);
  CHECK(last.channel == "big");
  CHECK(last.online == kUsers + 1);
  CHECK(last.members == kUsers + 1);
  // The whole server: each connect cost at most max_members presence events
  // (its own connection plus the peers of a small channel), not one per member.
  std::uint64_t events = metric(server, "parley_presence_events_total");
  MESSAGE("presence events in all: " << events);
  CHECK(events <= (kUsers + 1) * kMaxMembers);
  CHECK(metric(server, "parley_presence_online_users") == kUsers + 1);

  // A newcomer's welcome carries the count; invisible members are not counted.
  crowd[0]->ask_for<wire::Ok>(set_status("invisible"));
  crowd.pop_back();  // one disconnects
  std::this_thread::sleep_for(1500ms);
  Device late(server, "owner");
  for (;;) {
    wire::ServerMessage m = late.next();
    if (auto* c = std::get_if<wire::OnlineCount>(&m)) {
      CHECK(c->online == kUsers - 1);
      CHECK(c->members == kUsers + 1);
      break;
    }
  }
}

TEST_CASE("presence: a silently dead connection is closed by the server's pings, then offline") {
  TestServer server(fast(100, /*dead_timeout_s=*/2));
  parley_fault::FaultPlan plan;
  plan.cut_min_ms = 0;
  plan.cut_max_ms = 0;
  plan.stall_chance = 0;
  plan.delay_chance = 0;
  plan.split_chance = 0;
  std::string why;
  auto proxy = parley_fault::FaultProxy::start(server.port(), plan, &why);
  REQUIRE_MESSAGE(proxy != nullptr, why);
  Device alice(server, "alice");
  alice.ask_for<wire::Ok>(wire::OpenDirect{0, "bob"});
  Device bob(server, "bob", true, proxy->port());
  CHECK(alice.presence_of("bob").status == "online");
  auto stalled_at = Clock::now();
  proxy->stall_all(60s);  // bob's network goes silent; nothing is closed
  auto offline = alice.presence_of("bob", 15s);
  while (offline.status == "away") offline = alice.presence_of("bob", 15s);  // idle first
  auto after = Clock::now() - stalled_at;
  CHECK(offline.status == "offline");
  MESSAGE("offline " << std::chrono::duration<double>(after).count() << " s after the stall");
  // Closed after 2 s of silence (pinged at 1 s), offline 0.3 s later.
  CHECK(after >= 1500ms);
  CHECK(after <= 6s);
  proxy->stop();
}

TEST_CASE("presence: /metrics counts sessions, changes and events") {
  TestServer server(fast());
  Device alice(server, "alice");
  alice.ask_for<wire::Ok>(wire::OpenDirect{0, "bob"});
  { Device bob(server, "bob"); alice.presence_of("bob"); }
  alice.presence_of("bob");  // offline
  std::string body = body_of(http_get(server.port(), "/metrics"));
  CHECK(body.find("parley_presence_online_users 1\n") != std::string::npos);
  CHECK(body.find("parley_presence_sessions_started_total 2\n") != std::string::npos);
  CHECK(body.find("parley_presence_sessions_ended_total 1\n") != std::string::npos);
  CHECK(body.find("parley_presence_session_seconds_count 1\n") != std::string::npos);
  CHECK(metric(server, "parley_presence_changes_total") >= 3);
  CHECK(metric(server, "parley_presence_events_total") >= 3);
}
