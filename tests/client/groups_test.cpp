// Group channels through the SDK, against the in-process server over real
// WebSockets on 127.0.0.1: kinds and metadata, invitations, roles and can(),
// removal, bans, mutes, deletions, direct channels, and an offline member
// catching up on all of it (docs/channels.md, "In the SDK").
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "parley/sys/analytics.hpp"
#include "test_support.hpp"

using namespace parley;
using namespace parley::testing;
using namespace std::chrono_literals;

namespace {

class ModerationSink : public sys::AnalyticsSink {
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

// A server listening on 127.0.0.1 and clients on the WebSocket transport.
struct Group {
  TestServer server{/*listen=*/true};
  std::map<std::string, std::filesystem::path> dirs;

  ClientOptions options(const std::string& user) {
    if (!dirs.count(user)) dirs[user] = temp_dir(user);
    ClientOptions o = server.options(user, dirs[user]);
    o.transport = nullptr;  // the default: WebSocket
    o.server_url = "ws://127.0.0.1:" + std::to_string(server.server->port()) + "/";
    return o;
  }
  std::unique_ptr<Client> open(const std::string& user,
                               std::shared_ptr<sys::AnalyticsSink> sink = nullptr) {
    ClientOptions o = options(user);
    o.analytics = std::move(sink);
    auto c = Client::open(o);
    REQUIRE_MESSAGE(c.ok(), c.status().to_string());
    REQUIRE(wait_ready(**c));
    return std::move(*c);
  }
};

ChannelRequestDone done_of(Client& client, RequestId id) {
  auto done = wait_for<ChannelRequestDone>(
      client, [id](const ChannelRequestDone& d) { return d.request == id; });
  REQUIRE(done.has_value());
  return *done;
}

// The request must succeed; returns the seq of the event it appended.
std::uint64_t ok(Client& client, RequestId id) {
  ChannelRequestDone d = done_of(client, id);
  INFO(d.status.to_string());
  REQUIRE(d.status.ok());
  return d.seq;
}

Message received(Client& client, std::function<bool(const Message&)> pred) {
  auto got =
      wait_for<MessageReceived>(client, [&](const MessageReceived& m) { return pred(m.message); });
  REQUIRE(got.has_value());
  return got->message;
}

Message event_of(Client& client, const std::string& channel, EventKind kind) {
  return received(client, [&](const Message& m) { return m.channel == channel && m.kind == kind; });
}

ChannelInfoLoaded info_of(Client& client, const std::string& channel) {
  RequestId id = client.load_channel_info(channel);
  auto info = wait_for<ChannelInfoLoaded>(
      client, [id](const ChannelInfoLoaded& i) { return i.request == id; });
  REQUIRE(info.has_value());
  return *info;
}

const ChannelMember* member_in(const ChannelInfoLoaded& info, const std::string& user) {
  auto it = std::find_if(info.members.begin(), info.members.end(),
                         [&](const ChannelMember& m) { return m.user == user; });
  return it == info.members.end() ? nullptr : &*it;
}

std::optional<ChannelInfo> cached_channel(Client& client, const std::string& name) {
  auto channels = client.channels();
  REQUIRE(channels.ok());
  for (const auto& c : *channels) {
    if (c.name == name) return c;
  }
  return std::nullopt;
}

MessageFailed failed_send(Client& client, const std::string& channel, const std::string& text) {
  auto id = client.send(channel, text);
  REQUIRE(id.ok());
  auto failed =
      wait_for<MessageFailed>(client, [&](const MessageFailed& f) { return f.id == *id; });
  REQUIRE(failed.has_value());
  return *failed;
}

std::uint64_t sent(Client& client, const std::string& channel, const std::string& text) {
  auto id = client.send(channel, text);
  REQUIRE(id.ok());
  auto s = wait_for<MessageSent>(client, [&](const MessageSent& m) { return m.id == *id; });
  REQUIRE(s.has_value());
  return s->seq;
}

}  // namespace

TEST_CASE("a channel created with a kind and metadata: the creator owns it") {
  Group g;
  auto alice = g.open("alice");
  ChannelOptions options;
  options.kind = ChannelKind::private_channel;
  options.meta.name = "The Team";
  options.meta.topic = "launch on friday";
  options.meta.data = R"({"color":"blue"})";
  ok(*alice, alice->create_channel("team", options));

  CHECK(alice->role("team") == Role::owner);
  CHECK(alice->channel_kind("team") == ChannelKind::private_channel);
  CHECK(alice->can("team", Permission::ban));
  CHECK(alice->can("team", Permission::change_roles));
  auto meta = alice->channel_meta("team");
  REQUIRE(meta.has_value());
  CHECK(meta->name == "The Team");
  CHECK(meta->topic == "launch on friday");
  CHECK(meta->data == R"({"color":"blue"})");
  CHECK_FALSE(meta->description.has_value());

  ChannelInfoLoaded info = info_of(*alice, "team");
  REQUIRE(info.status.ok());
  CHECK(info.complete);
  CHECK(info.kind == ChannelKind::private_channel);
  CHECK(info.meta.topic == "launch on friday");
  CHECK(info.meta.name == "The Team");
  REQUIRE(info.members.size() == 1);
  CHECK(info.members[0].user == "alice");
  CHECK(info.members[0].role == Role::owner);

  // Not anyone's to join: private.
  auto bob = g.open("bob");
  CHECK(done_of(*bob, bob->join_channel("team")).status.reason() == "forbidden");
  CHECK_FALSE(bob->can("team", Permission::post));
  CHECK_FALSE(bob->role("team").has_value());
}

TEST_CASE("arguments are checked before anything is sent") {
  Group g;
  auto alice = g.open("alice");
  auto reason = [&](RequestId id) { return done_of(*alice, id).status.reason(); };
  CHECK(reason(alice->create_channel("@reserved")) == "invalid_name");
  ChannelOptions direct;
  direct.kind = ChannelKind::direct;
  CHECK(reason(alice->create_channel("dm", direct)) == "invalid_kind");
  ChannelOptions big;
  big.meta.topic = std::string(600, 'x');
  CHECK(reason(alice->create_channel("big", big)) == "invalid_meta");
  ChannelOptions avatar;
  avatar.meta.avatar_url = "ftp://example.com/a.png";
  CHECK(reason(alice->create_channel("pic", avatar)) == "invalid_meta");
  CHECK(reason(alice->invite("general", "bad user")) == "invalid_user");
  CHECK(reason(alice->ban("gen eral", "bob")) == "invalid_name");
  CHECK(reason(alice->mute("general", "bob", -5s)) == "invalid_argument");
  CHECK(reason(alice->ban("general", "alice")) == "invalid_user");
  CHECK(reason(alice->open_direct("-bob")) == "invalid_user");
  CHECK(reason(alice->delete_message("general", 0)) == "invalid_seq");
  CHECK(reason(alice->pin_message("general", 0)) == "invalid_seq");
  CHECK(reason(alice->report_message("general", 3, "")) == "invalid_text");
  CHECK(reason(alice->set_meta("general", ChannelMeta{})) == "invalid_meta");
  ChannelMeta bad_data;
  bad_data.data = "[1,2]";
  CHECK(reason(alice->set_meta("general", bad_data)) == "invalid_meta");
  ChannelInfoLoaded info = info_of(*alice, "no room");
  CHECK(info.status.reason() == "invalid_name");
}

TEST_CASE("a user invited before ever connecting finds the channel on first connect") {
  Group g;
  auto sink = std::make_shared<ModerationSink>();
  auto alice = g.open("alice", sink);
  ChannelOptions options;
  options.kind = ChannelKind::private_channel;
  ok(*alice, alice->create_channel("club", options));
  std::uint64_t seq = ok(*alice, alice->invite("club", "carol"));
  CHECK(seq > 1);
  // Our own action comes back as an event too, after its completion.
  Message invite = event_of(*alice, "club", EventKind::invite);
  CHECK(invite.seq == seq);
  CHECK(invite.sender == "alice");
  CHECK(invite.target == "carol");

  auto carol = g.open("carol");
  auto club = cached_channel(*carol, "club");
  REQUIRE(club.has_value());
  CHECK(club->member);
  CHECK(club->last_seq >= seq);
  CHECK(carol->role("club") == Role::member);
  CHECK(carol->channel_kind("club") == ChannelKind::private_channel);
  CHECK(carol->can("club", Permission::post));
  CHECK_FALSE(carol->can("club", Permission::invite));
  sent(*carol, "club", "thanks for having me");
  Message hello = event_of(*alice, "club", EventKind::message);
  CHECK(hello.sender == "carol");

  // One analytics event per moderation request: no user names.
  auto moderation = sink->named("moderation_action");
  REQUIRE(moderation.size() == 1);
  CHECK(moderation[0].label("action") == "invite");
  CHECK(moderation[0].label("channel_kind") == "private");
  CHECK(moderation[0].label("status") == "ok");
  for (const auto& [key, value] : moderation[0].labels)
    CHECK(value.find("carol") == std::string::npos);
}

TEST_CASE("an online user invited to a channel sees it appear") {
  Group g;
  auto alice = g.open("alice");
  auto bob = g.open("bob");
  ChannelOptions options;
  options.kind = ChannelKind::private_channel;
  options.meta.topic = "secret plans";
  ok(*alice, alice->create_channel("inner", options));
  ok(*alice, alice->invite("inner", "bob"));
  Message invite = event_of(*bob, "inner", EventKind::invite);
  CHECK(invite.target == "bob");
  auto inner = cached_channel(*bob, "inner");
  REQUIRE(inner.has_value());
  CHECK(inner->member);
  CHECK(bob->role("inner") == Role::member);
  // Kind and metadata arrive with the channel's info, asked for by the SDK.
  for (int i = 0; i < 100 && !bob->channel_kind("inner"); ++i) std::this_thread::sleep_for(20ms);
  CHECK(bob->channel_kind("inner") == ChannelKind::private_channel);
  auto meta = bob->channel_meta("inner");
  REQUIRE(meta.has_value());
  CHECK(meta->topic == "secret plans");
  std::uint64_t seq = sent(*alice, "inner", "welcome bob");
  Message m = event_of(*bob, "inner", EventKind::message);
  CHECK(m.seq == seq);
}

TEST_CASE("a role change shows in can() for the member concerned") {
  Group g;
  auto alice = g.open("alice");
  auto bob = g.open("bob");
  ok(*alice, alice->create_channel("ops"));
  ok(*bob, bob->join_channel("ops"));
  CHECK(bob->role("ops") == Role::member);
  CHECK(bob->can("ops", Permission::post));
  CHECK_FALSE(bob->can("ops", Permission::ban));

  ok(*alice, alice->set_role("ops", "bob", Role::moderator));
  Message role = event_of(*bob, "ops", EventKind::role);
  CHECK(role.target == "bob");
  CHECK(role.role == "moderator");
  CHECK(bob->role("ops") == Role::moderator);
  CHECK(bob->can("ops", Permission::ban));
  CHECK(bob->can("ops", Permission::delete_others));
  CHECK_FALSE(bob->can("ops", Permission::edit_meta));
  CHECK_FALSE(bob->can("ops", Permission::change_roles));

  // A moderator may not change roles: refused by the server, not by the SDK.
  auto refused = done_of(*bob, bob->set_role("ops", "alice", Role::member));
  CHECK(refused.status.reason() == "forbidden");
  CHECK(refused.status.code() == StatusCode::forbidden);

  // Ownership moves in one role event; the old owner is an admin.
  ok(*alice, alice->transfer_ownership("ops", "bob"));
  CHECK(alice->role("ops") == Role::admin);
  Message transfer = event_of(*bob, "ops", EventKind::role);
  CHECK(transfer.role == "owner");
  CHECK(transfer.target == "bob");
  CHECK(transfer.sender == "alice");
  CHECK(bob->role("ops") == Role::owner);
  ChannelInfoLoaded info = info_of(*bob, "ops");
  REQUIRE(member_in(info, "alice") != nullptr);
  CHECK(member_in(info, "alice")->role == Role::admin);
  CHECK(bob->can("ops", Permission::change_roles));
  CHECK(alice->can("ops", Permission::ban));
}

TEST_CASE("a removed, then banned member is told, and can no longer send") {
  Group g;
  auto alice = g.open("alice");
  auto bob = g.open("bob");
  ok(*alice, alice->create_channel("room"));
  ok(*bob, bob->join_channel("room"));

  ok(*alice, alice->remove_member("room", "bob"));
  Message removed = event_of(*bob, "room", EventKind::remove);
  CHECK(removed.target == "bob");
  auto room = cached_channel(*bob, "room");
  REQUIRE(room.has_value());
  CHECK_FALSE(room->member);
  CHECK_FALSE(bob->role("room").has_value());
  CHECK_FALSE(bob->can("room", Permission::post));
  CHECK(failed_send(*bob, "room", "still here?").status.reason() == "not_member");

  // A public channel: bob may come back, until banned.
  ok(*bob, bob->join_channel("room"));
  CHECK(cached_channel(*bob, "room")->member);
  ok(*alice, alice->ban("room", "bob"));
  Message banned = event_of(*bob, "room", EventKind::ban);
  CHECK(banned.target == "bob");
  CHECK(banned.until_ms == 0);
  CHECK_FALSE(cached_channel(*bob, "room")->member);
  MessageFailed f = failed_send(*bob, "room", "let me in");
  CHECK(f.status.reason() == "banned");
  CHECK(f.status.code() == StatusCode::forbidden);
  CHECK(done_of(*bob, bob->join_channel("room")).status.reason() == "banned");
  // History is refused too, whatever the cache holds.
  RequestId h = bob->load_history("room", {0, 10});
  auto page = wait_for<HistoryLoaded>(*bob, [h](const HistoryLoaded& x) { return x.request == h; });
  REQUIRE(page.has_value());
  if (!page->status.ok()) CHECK(page->status.code() == StatusCode::forbidden);

  ok(*alice, alice->unban("room", "bob"));
  ok(*bob, bob->join_channel("room"));
  sent(*bob, "room", "back again");
}

TEST_CASE("a muted member's messages are refused with muted until the mute ends") {
  Group g;
  auto alice = g.open("alice");
  auto bob = g.open("bob");
  ok(*alice, alice->create_channel("talk"));
  ok(*bob, bob->join_channel("talk"));

  ok(*alice, alice->mute("talk", "bob"));
  Message mute = event_of(*bob, "talk", EventKind::mute);
  CHECK(mute.target == "bob");
  CHECK_FALSE(bob->can("talk", Permission::post));
  CHECK(bob->role("talk") == Role::member);  // still a member
  MessageFailed f = failed_send(*bob, "talk", "can you hear me");
  CHECK(f.status.reason() == "muted");

  ok(*alice, alice->unmute("talk", "bob"));
  event_of(*bob, "talk", EventKind::unmute);
  CHECK(bob->can("talk", Permission::post));
  sent(*bob, "talk", "now you can");

  // A mute with an expiry: can() follows the clock.
  ok(*alice, alice->mute("talk", "bob", 1s));
  Message timed = event_of(*bob, "talk", EventKind::mute);
  CHECK(timed.until_ms > 0);
  CHECK_FALSE(bob->can("talk", Permission::post));
  std::this_thread::sleep_for(1500ms);
  CHECK(bob->can("talk", Permission::post));
  sent(*bob, "talk", "the mute ran out");
}

TEST_CASE("a deletion clears the text in the other member's cache") {
  Group g;
  auto alice = g.open("alice");
  auto bob = g.open("bob");
  ok(*alice, alice->create_channel("news"));
  ok(*bob, bob->join_channel("news"));
  std::uint64_t seq = sent(*alice, "news", "oops, a password");
  sent(*alice, "news", "a keeper");
  Message m = event_of(*bob, "news", EventKind::message);
  CHECK(m.seq == seq);
  CHECK(m.text == "oops, a password");

  std::uint64_t deletion = ok(*alice, alice->delete_message("news", seq));
  CHECK(deletion > seq);
  Message d = event_of(*bob, "news", EventKind::deletion);
  CHECK(d.seq == deletion);
  CHECK(d.ref == seq);
  CHECK(d.sender == "alice");

  // From the cache alone: bob goes offline first.
  bob->disconnect();
  wait_for<StateChanged>(
      *bob, [](const StateChanged& s) { return s.state == LifecycleState::disconnected; });
  for (Client* c : {bob.get(), alice.get()}) {
    RequestId h = c->load_history("news", {0, 10});
    auto page = wait_for<HistoryLoaded>(*c, [h](const HistoryLoaded& x) { return x.request == h; });
    REQUIRE(page.has_value());
    REQUIRE(page->status.ok());
    auto it = std::find_if(page->messages.begin(), page->messages.end(),
                           [&](const Message& x) { return x.seq == seq; });
    REQUIRE(it != page->messages.end());
    CHECK(it->deleted);
    CHECK(it->text.empty());
    CHECK(std::any_of(page->messages.begin(), page->messages.end(),
                      [](const Message& x) { return x.text == "a keeper"; }));
  }

  // Only the author or a moderator may delete.
  bob->connect();
  REQUIRE(wait_ready(*bob));
  std::uint64_t mine = sent(*bob, "news", "bob's own");
  std::uint64_t keeper = seq + 1;
  CHECK(done_of(*bob, bob->delete_message("news", keeper)).status.reason() == "forbidden");
  ok(*bob, bob->delete_message("news", mine));
  CHECK(done_of(*bob, bob->delete_message("news", 9999)).status.reason() == "no_such_message");
}

TEST_CASE("a metadata change arrives as an event and in the channel's info") {
  Group g;
  auto alice = g.open("alice");
  auto bob = g.open("bob");
  ChannelOptions options;
  options.meta.name = "Lobby";
  ok(*alice, alice->create_channel("lobby", options));
  ok(*bob, bob->join_channel("lobby"));
  for (int i = 0; i < 100 && !bob->channel_meta("lobby")->name; ++i)
    std::this_thread::sleep_for(20ms);
  CHECK(bob->channel_meta("lobby")->name == "Lobby");

  ChannelMeta change;
  change.topic = "new topic";
  change.name = "";  // cleared
  std::uint64_t seq = ok(*alice, alice->set_meta("lobby", change));
  Message meta = event_of(*bob, "lobby", EventKind::meta);
  CHECK(meta.seq == seq);
  CHECK(meta.meta.topic == "new topic");
  CHECK(meta.meta.name == "");
  CHECK_FALSE(meta.meta.description.has_value());
  auto cached = bob->channel_meta("lobby");
  REQUIRE(cached.has_value());
  CHECK(cached->topic == "new topic");
  CHECK_FALSE(cached->name.has_value());

  ChannelInfoLoaded info = info_of(*bob, "lobby");
  REQUIRE(info.status.ok());
  CHECK(info.meta.topic == "new topic");
  CHECK(info.kind == ChannelKind::public_channel);
  CHECK(member_in(info, "alice") != nullptr);
  CHECK(member_in(info, "alice")->role == Role::owner);
  CHECK(member_in(info, "bob")->role == Role::member);
  CHECK(info.bans.empty());

  // A member may not edit the metadata.
  ChannelMeta mine;
  mine.topic = "bob was here";
  CHECK(done_of(*bob, bob->set_meta("lobby", mine)).status.reason() == "forbidden");

  // Pins: the pinned seqs are in the info.
  std::uint64_t msg = sent(*alice, "lobby", "read the rules");
  ok(*alice, alice->pin_message("lobby", msg));
  Message pin = event_of(*bob, "lobby", EventKind::pin);
  CHECK(pin.ref == msg);
  CHECK(info_of(*bob, "lobby").pinned == std::vector<std::uint64_t>{msg});
  ok(*alice, alice->pin_message("lobby", msg, false));
  CHECK(event_of(*bob, "lobby", EventKind::unpin).ref == msg);

  // Reports are for the administrators: no event.
  CHECK(ok(*bob, bob->report_message("lobby", msg, "spam")) == 0);
}

TEST_CASE("a direct channel is found again by the pair") {
  Group g;
  auto alice = g.open("alice");
  auto bob = g.open("bob");
  ChannelRequestDone first = done_of(*alice, alice->open_direct("bob"));
  REQUIRE(first.status.ok());
  const std::string name = first.channel;
  REQUIRE(!name.empty());
  CHECK(name.front() == '@');
  CHECK(alice->channel_kind(name) == ChannelKind::direct);
  CHECK(alice->can(name, Permission::post));
  CHECK_FALSE(alice->can(name, Permission::invite));

  // Bob hears of it from its first event, before asking for it himself.
  std::uint64_t seq = sent(*alice, name, "hi bob, just us");
  Message m = received(*bob, [&](const Message& x) { return x.kind == EventKind::message; });
  CHECK(m.channel == name);
  CHECK(m.seq == seq);
  for (int i = 0; i < 100 && !bob->channel_kind(name); ++i) std::this_thread::sleep_for(20ms);
  CHECK(bob->channel_kind(name) == ChannelKind::direct);
  CHECK(bob->role(name) == Role::member);
  CHECK(bob->can(name, Permission::post));
  CHECK(done_of(*bob, bob->open_direct("bob")).status.reason() == "invalid_user");

  ChannelRequestDone back = done_of(*bob, bob->open_direct("alice"));
  REQUIRE(back.status.ok());
  CHECK(back.channel == name);
  CHECK(bob->channel_kind(name) == ChannelKind::direct);
  ChannelRequestDone again = done_of(*alice, alice->open_direct("bob"));
  REQUIRE(again.status.ok());
  CHECK(again.channel == name);

  // Nobody manages a direct channel's members.
  CHECK(done_of(*alice, alice->invite(name, "carol")).status.reason() == "forbidden");
}

TEST_CASE("an offline member catches up on membership, role and metadata changes in order") {
  Group g;
  auto alice = g.open("alice");
  ok(*alice, alice->create_channel("hq"));
  std::vector<std::uint64_t> seqs;
  {
    auto bob = g.open("bob");
    ok(*bob, bob->join_channel("hq"));
    // The SDK asks for the channel's info after a join; let it land.
    for (int i = 0; i < 100 && !bob->channel_kind("hq"); ++i) std::this_thread::sleep_for(20ms);
    REQUIRE(bob->channel_kind("hq") == ChannelKind::public_channel);
  }
  // Bob is away while all this happens.
  seqs.push_back(ok(*alice, alice->invite("hq", "carol")));
  seqs.push_back(ok(*alice, alice->set_role("hq", "bob", Role::admin)));
  ChannelMeta t1;
  t1.topic = "first topic";
  seqs.push_back(ok(*alice, alice->set_meta("hq", t1)));
  seqs.push_back(ok(*alice, alice->set_role("hq", "carol", Role::moderator)));
  ChannelMeta t2;
  t2.topic = "second topic";
  t2.description = "where it happens";
  seqs.push_back(ok(*alice, alice->set_meta("hq", t2)));
  seqs.push_back(ok(*alice, alice->mute("hq", "carol", 3600s)));
  for (std::size_t i = 1; i < seqs.size(); ++i) CHECK(seqs[i] == seqs[i - 1] + 1);

  // Caught up while syncing, before ready: watch every event from the start.
  auto opened = Client::open(g.options("bob"));
  REQUIRE(opened.ok());
  std::unique_ptr<Client> bob = std::move(*opened);
  std::vector<Message> caught;
  while (caught.size() < seqs.size()) {
    auto m = wait_for<MessageReceived>(
        *bob, [](const MessageReceived& x) { return x.message.channel == "hq"; });
    REQUIRE(m.has_value());
    caught.push_back(m->message);
  }
  for (std::size_t i = 0; i < seqs.size(); ++i) CHECK(caught[i].seq == seqs[i]);
  CHECK(caught[0].kind == EventKind::invite);
  CHECK(caught[0].target == "carol");
  CHECK(caught[1].kind == EventKind::role);
  CHECK(caught[1].role == "admin");
  CHECK(caught[2].kind == EventKind::meta);
  CHECK(caught[2].meta.topic == "first topic");
  CHECK(caught[3].kind == EventKind::role);
  CHECK(caught[3].target == "carol");
  CHECK(caught[4].kind == EventKind::meta);
  CHECK(caught[5].kind == EventKind::mute);
  CHECK(caught[5].until_ms > 0);
  REQUIRE(wait_ready(*bob));

  CHECK(bob->role("hq") == Role::admin);
  CHECK(bob->can("hq", Permission::edit_meta));
  auto meta = bob->channel_meta("hq");
  REQUIRE(meta.has_value());
  CHECK(meta->topic == "second topic");
  CHECK(meta->description == "where it happens");

  // What the cache knows of the members, asked without the server.
  bob->disconnect();
  wait_for<StateChanged>(
      *bob, [](const StateChanged& s) { return s.state == LifecycleState::disconnected; });
  ChannelInfoLoaded cached = info_of(*bob, "hq");
  REQUIRE(cached.status.ok());
  CHECK_FALSE(cached.complete);
  CHECK(cached.meta.topic == "second topic");
  REQUIRE(member_in(cached, "carol") != nullptr);
  CHECK(member_in(cached, "carol")->role == Role::moderator);
  CHECK(member_in(cached, "carol")->muted);
  CHECK(member_in(cached, "carol")->muted_until_ms > 0);
  REQUIRE(member_in(cached, "bob") != nullptr);
  CHECK(member_in(cached, "bob")->role == Role::admin);
  REQUIRE(member_in(cached, "alice") != nullptr);
  CHECK(member_in(cached, "alice")->role == Role::owner);
}

TEST_CASE("a rate-limited message stays in the outbox and is sent once the limit allows") {
  TestServer server(/*listen=*/false, 65536, [](server::ServerOptions& o) {
    o.rate_per_s = 10;  // one every 100 ms after a burst of 2
    o.rate_burst = 2;
  });
  auto opened = Client::open(server.options("alice", temp_dir("alice")));
  REQUIRE(opened.ok());
  auto& alice = **opened;
  REQUIRE(wait_ready(alice));
  ok(alice, alice.create_channel("fast"));
  std::set<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    auto id = alice.send("fast", "quick " + std::to_string(i));
    REQUIRE(id.ok());
    ids.insert(*id);
  }
  std::set<std::uint64_t> seqs;
  auto until = std::chrono::steady_clock::now() + 20s;
  while (!ids.empty() && std::chrono::steady_clock::now() < until) {
    auto ev = alice.next_event(200ms);
    if (!ev) continue;
    if (auto* f = std::get_if<MessageFailed>(&*ev))
      FAIL("refused for good: " << f->status.to_string());
    if (auto* s = std::get_if<MessageSent>(&*ev)) {
      ids.erase(s->id);
      seqs.insert(s->seq);
    }
  }
  CHECK(ids.empty());
  CHECK(seqs.size() == 8);
  CHECK(alice.outbox()->empty());
}
