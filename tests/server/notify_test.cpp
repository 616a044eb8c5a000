// Notifications through the real server over WebSockets (issue 7,
// docs/notifications.md): a property test of the unread and mention counts
// and the notification events against a simple model, on several devices.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "parley/types.hpp"
#include "server_fixture.hpp"

using namespace parley;
using namespace parley::test;

namespace {

// One connection of a user, and what the server has told it.
struct Device {
  std::string user;
  bool notifications = true;
  std::unique_ptr<Peer> peer;
  wire::UnreadEvent counts;  // the latest pushed (or from the welcome)
  std::map<std::string, int> notified;  // notification kind -> how many
  std::string level = "all";
};

struct ModelMessage {
  std::uint64_t seq = 0;
  std::string sender;
  std::set<std::string> mentioned;  // users, with @channel and @here expanded
  bool deleted = false;
};

struct Model {
  std::map<std::string, std::uint64_t> read;    // user -> read cursor
  std::map<std::string, std::uint64_t> joined;  // user -> seq of their join
  std::map<std::string, std::string> level;
  std::map<std::string, bool> muted;
  std::vector<ModelMessage> messages;
  std::map<std::string, std::map<std::string, int>> notified;  // user -> kind -> count

  wire::UnreadEvent counts(const std::string& user) const {
    wire::UnreadEvent c{"room", 0, 0};
    std::uint64_t after = std::max(read.at(user), joined.at(user));
    for (const auto& m : messages) {
      if (m.seq <= after || m.deleted || m.sender == user) continue;
      ++c.unread;
      if (m.mentioned.count(user)) ++c.mentions;
    }
    return c;
  }
};

std::string json_string(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

TEST_CASE("notifications: counts and notification events follow a model on every device") {
  TestServer server;
  const std::vector<std::string> users = {"alice", "bob", "carol"};
  std::vector<Device> devices;
  // alice on two devices, bob on one, carol on one that did not ask for notifications.
  for (auto [user, notifications] : std::vector<std::pair<std::string, bool>>{
           {"alice", true}, {"alice", true}, {"bob", true}, {"carol", false}}) {
    Device d;
    d.user = user;
    d.notifications = notifications;
    d.peer = std::make_unique<Peer>(server.port());
    d.peer->send(R"({"type":"auth","rid":1,"token":")" + server.token(user) + R"(","device":"d)" +
                 std::to_string(devices.size()) + "\"" +
                 (notifications ? R"(,"notifications":true})" : "}"));
    d.peer->expect<wire::Welcome>();
    devices.push_back(std::move(d));
  }
  Model model;
  std::uint64_t rid = 100;
  std::uint64_t last_seq = 0;

  // Reads every device's frames up to the reply of a `channels` request, so
  // that everything the server pushed before it has arrived; checks the
  // counts the reply carries against the model.
  auto settle = [&](const char* step) {
    for (Device& d : devices) {
      std::uint64_t mine = ++rid;
      d.peer->send(R"({"type":"channels","rid":)" + std::to_string(mine) + "}");
      for (;;) {
        wire::ServerMessage m = d.peer->next();
        if (auto* u = std::get_if<wire::UnreadEvent>(&m)) {
          CHECK_MESSAGE(d.notifications, "unread event to a device that did not ask: " << step);
          d.counts = *u;
        } else if (auto* n = std::get_if<wire::NotificationEvent>(&m)) {
          CHECK_MESSAGE(d.notifications, "notification to a device that did not ask: " << step);
          ++d.notified[n->kind];
        } else if (auto* list = std::get_if<wire::ChannelList>(&m)) {
          if (list->rid != mine) continue;
          REQUIRE(list->channels.size() == 1);
          wire::UnreadEvent want = model.counts(d.user);
          const auto& state = list->channels[0];
          CHECK_MESSAGE(state.unread.value_or(0) == want.unread, step << ": " << d.user);
          CHECK_MESSAGE(state.mentions.value_or(0) == want.mentions, step << ": " << d.user);
          break;
        }
      }
      if (d.notifications) {
        wire::UnreadEvent want = model.counts(d.user);
        CHECK_MESSAGE(d.counts.unread == want.unread,
                      step << ": pushed unread of " << d.user << " " << d.counts.unread
                           << ", model " << want.unread);
        CHECK_MESSAGE(d.counts.mentions == want.mentions,
                      step << ": pushed mentions of " << d.user << " " << d.counts.mentions
                           << ", model " << want.mentions);
        CHECK_MESSAGE(d.notified == model.notified[d.user], step << ": notifications of "
                                                                 << d.user);
      }
    }
  };

  // The channel: alice creates it, bob and carol join.
  devices[0].peer->send(R"({"type":"create","rid":2,"channel":"room"})");
  last_seq = devices[0].peer->expect<wire::Ok>().seq;
  model.joined["alice"] = last_seq;
  for (std::size_t i : {2u, 3u}) {
    devices[i].peer->send(R"({"type":"join","rid":2,"channel":"room"})");
    last_seq = devices[i].peer->expect<wire::Ok>().seq;
    model.joined[devices[i].user] = last_seq;
  }
  for (const auto& u : users) {
    model.read[u] = 0;
    model.level[u] = "all";
    model.muted[u] = false;
  }
  settle("joined");

  std::mt19937 rng(20261126);
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  int sent = 0;
  for (int step = 0; step < 160; ++step) {
    std::size_t who = pick(devices.size());
    Device& d = devices[who];
    std::string label = "step " + std::to_string(step);
    int op = static_cast<int>(pick(10));
    if (op < 5) {
      // A message, sometimes with mentions.
      static const std::vector<std::string> texts = {
          "hello", "@bob look", "ping @alice and @carol", "@channel meeting", "@here anyone?",
          "mail a@bob.com is no mention", "@dave is not here", "@alice."};
      std::string text = texts[pick(texts.size())];
      ++sent;
      d.peer->send(send_json(++rid, "room", client_id(sent), text));
      auto ack = d.peer->expect<wire::Ack>();
      last_seq = ack.seq;
      ModelMessage m{ack.seq, d.user, {}, false};
      for (const Mention& mention : find_mentions(text)) {
        if (mention.user == "@channel" || mention.user == "@here") {
          m.mentioned.insert(users.begin(), users.end());  // all three are online
        } else if (model.joined.count(mention.user)) {
          m.mentioned.insert(mention.user);
        }
      }
      for (const auto& u : users) {
        if (u == d.user) continue;
        bool mention = m.mentioned.count(u) != 0;
        if (model.level[u] == "none") continue;
        if (mention) {
          ++model.notified[u]["mention"];
        } else if (model.level[u] == "all" && !model.muted[u]) {
          ++model.notified[u]["message"];
        }
      }
      model.messages.push_back(std::move(m));
      label += ": " + d.user + " sends \"" + text + "\"";
    } else if (op < 7) {
      // A read receipt from this device, somewhere up to the end.
      std::uint64_t seq = 1 + pick(last_seq);
      d.peer->send(R"({"type":"receipt","rid":)" + std::to_string(++rid) +
                   R"(,"channel":"room","kind":"read","seq":)" + std::to_string(seq) + "}");
      d.peer->expect<wire::Ok>();
      model.read[d.user] = std::max(model.read[d.user], seq);
      label += ": " + d.user + " reads to " + std::to_string(seq);
    } else if (op < 8) {
      // The device's user deletes one of their messages.
      std::vector<ModelMessage*> own;
      for (auto& m : model.messages) {
        if (m.sender == d.user && !m.deleted) own.push_back(&m);
      }
      if (own.empty()) continue;
      ModelMessage* m = own[pick(own.size())];
      d.peer->send(R"({"type":"delete","rid":)" + std::to_string(++rid) +
                   R"(,"channel":"room","seq":)" + std::to_string(m->seq) + "}");
      last_seq = d.peer->expect<wire::Ok>().seq;
      m->deleted = true;
      label += ": " + d.user + " deletes " + std::to_string(m->seq);
    } else {
      // A level change, muted or not.
      static const std::vector<std::string> levels = {"all", "mentions", "none"};
      std::string level = levels[pick(levels.size())];
      bool mute = pick(3) == 0;
      std::string frame = R"({"type":"notify","rid":)" + std::to_string(++rid) +
                          R"(,"channel":"room","level":)" + json_string(level);
      if (mute) frame += R"(,"mute_until":)" + std::to_string((unix_now() + 3600) * 1000);
      d.peer->send(frame + "}");
      d.peer->expect<wire::Ok>();
      model.level[d.user] = level;
      model.muted[d.user] = mute;
      label += ": " + d.user + " sets " + level + (mute ? " muted" : "");
    }
    settle(label.c_str());
  }
  CHECK(sent > 40);  // the walk did what it is for
  CHECK(model.notified["bob"]["mention"] > 0);
}

TEST_CASE("notifications: the level and counts reach the user's other devices and the welcome") {
  TestServer server;
  Peer phone(server.port());
  Peer laptop(server.port());
  Peer bob(server.port());
  auto auth = [&](Peer& p, const std::string& user, const std::string& device) {
    p.send(R"({"type":"auth","rid":1,"token":")" + server.token(user) + R"(","device":")" +
           device + R"(","notifications":true})");
    return p.expect<wire::Welcome>();
  };
  auth(phone, "alice", "phone");
  auth(laptop, "alice", "laptop");
  auth(bob, "bob", "b");
  bob.send(R"({"type":"create","rid":2,"channel":"c"})");
  bob.expect<wire::Ok>();
  bob.send(R"({"type":"member","rid":3,"channel":"c","action":"invite","user":"alice"})");
  bob.expect<wire::Ok>();
  // The invited user hears of it as an event and a notification on both devices.
  for (Peer* p : {&phone, &laptop}) {
    CHECK(p->expect<wire::ChannelEvent>().kind == "invite");
    auto n = p->expect<wire::NotificationEvent>();
    CHECK(n.kind == "invite");
    CHECK(n.sender == "bob");
  }

  phone.send(R"({"type":"notify","rid":4,"channel":"c","level":"mentions"})");
  phone.expect<wire::Ok>();
  auto synced = laptop.expect<wire::NotifyEvent>();
  CHECK(synced.level == "mentions");
  CHECK(phone.quiet());

  bob.send(send_json(5, "c", client_id(1), "plain"));
  bob.expect<wire::Ack>();
  bob.send(send_json(6, "c", client_id(2), "hey @alice"));
  bob.expect<wire::Ack>();
  for (Peer* p : {&phone, &laptop}) {
    auto plain = p->expect<wire::ChannelEvent>();
    CHECK_FALSE(plain.mentions.has_value());
    CHECK(p->expect<wire::UnreadEvent>().unread == 1);  // no notification at level mentions
    auto mention = p->expect<wire::ChannelEvent>();
    REQUIRE(mention.mentions.has_value());
    CHECK(mention.mentions->at(0).user == "alice");
    CHECK(mention.mentions->at(0).offset == 4);
    CHECK(mention.mentions->at(0).length == 6);
    auto counts = p->expect<wire::UnreadEvent>();
    CHECK(counts.unread == 2);
    CHECK(counts.mentions == 1);
    CHECK(p->expect<wire::NotificationEvent>().kind == "mention");
  }
  // Reading on the phone clears the laptop's count.
  phone.send(R"({"type":"receipt","rid":7,"channel":"c","kind":"read","seq":4})");
  phone.expect<wire::Ok>();
  CHECK(phone.expect<wire::UnreadEvent>().unread == 0);
  bool cleared = false;
  for (int i = 0; i < 3 && !cleared; ++i) {
    auto m = laptop.next();
    if (auto* u = std::get_if<wire::UnreadEvent>(&m)) cleared = u->unread == 0 && u->mentions == 0;
  }
  CHECK(cleared);

  // A new connection's welcome carries the level and the counts.
  bob.send(send_json(8, "c", client_id(3), "again"));
  CHECK(bob.expect<wire::ReceiptEvent>().user == "alice");  // alice's read, before the ack
  bob.expect<wire::Ack>();
  Peer tablet(server.port());
  auto welcome = auth(tablet, "alice", "tablet");
  REQUIRE(welcome.channels.size() == 1);
  CHECK(welcome.channels[0].level == std::optional<std::string>("mentions"));
  CHECK(welcome.channels[0].unread == std::optional<std::uint64_t>(1));
  CHECK(welcome.channels[0].mentions == std::optional<std::uint64_t>(0));

  // Bad levels are refused by name.
  tablet.send(R"({"type":"notify","rid":9,"channel":"c","level":"loud"})");
  CHECK(tablet.expect_error("invalid_level").rid == std::optional<std::uint64_t>(9));
  tablet.send(R"({"type":"notify","rid":10,"channel":"nowhere","level":"all"})");
  tablet.expect_error("no_such_channel");
}
