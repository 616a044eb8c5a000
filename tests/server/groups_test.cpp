// Group channels over real WebSockets on 127.0.0.1 (docs/channels.md): the
// permission matrix of every channel kind, role and action checked against
// parley::role_allows and outranks, spot checks of the table itself, bans,
// removals and mutes with and without expiry, an offline member catching up,
// direct channels, invitations of users never seen, and channel metadata.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <thread>

#include "parley/roles.hpp"
#include "server_fixture.hpp"
#include "user_session.hpp"

using namespace parley;
using namespace parley::test;
using namespace std::chrono_literals;

namespace {

constexpr Role kRoles[] = {Role::owner, Role::admin, Role::moderator, Role::member,
                           Role::read_only};

wire::ClientMessage create(const std::string& channel, ChannelKind kind,
                           std::optional<wire::Meta> meta = std::nullopt) {
  return wire::CreateChannel{0, channel, std::string(to_string(kind)), std::move(meta)};
}
wire::ClientMessage member(const std::string& channel, const std::string& action,
                           const std::string& user, std::optional<std::string> role = std::nullopt,
                           std::optional<std::uint64_t> seconds = std::nullopt) {
  return wire::MemberAction{0, channel, action, user, std::move(role), seconds};
}
wire::ClientMessage set_meta(const std::string& channel, wire::Meta meta) {
  return wire::SetMeta{0, channel, std::move(meta)};
}
wire::ClientMessage delete_message(const std::string& channel, std::uint64_t seq) {
  return wire::DeleteMessage{0, channel, seq};
}
wire::ClientMessage pin(const std::string& channel, std::uint64_t seq, bool pinned = true) {
  return wire::PinMessage{0, channel, seq, pinned};
}
wire::ClientMessage info(const std::string& channel) {
  return wire::ChannelInfoRequest{0, channel};
}
wire::ClientMessage join(const std::string& channel) { return wire::JoinChannel{0, channel}; }
wire::ClientMessage leave(const std::string& channel) { return wire::LeaveChannel{0, channel}; }
wire::ClientMessage history(const std::string& channel) {
  return wire::History{0, channel, std::nullopt, 0, 100};
}
wire::Meta topic(const std::string& text) {
  wire::Meta meta;
  meta.topic = text;
  return meta;
}

// Checks that `reply` is an ok (or ack) with a new event: seq > 0, the channel's last.
void check_event_ok(const wire::ServerMessage& reply) {
  if (const auto* ack = std::get_if<wire::Ack>(&reply)) {
    CHECK(ack->seq > 0);
    CHECK_FALSE(ack->duplicate);
    return;
  }
  const auto* ok = std::get_if<wire::Ok>(&reply);
  CHECK_MESSAGE(ok != nullptr, "expected ok, got " << wire::encode(reply));
  if (ok == nullptr) return;
  CHECK(ok->seq > 0);
  CHECK(ok->seq == ok->last_seq);
}

// Checks that `reply` is an error with `code`.
void check_refused(const wire::ServerMessage& reply, const std::string& code) {
  const auto* error = std::get_if<wire::Error>(&reply);
  CHECK_MESSAGE(error != nullptr, "expected " << code << ", got " << wire::encode(reply));
  if (error != nullptr) CHECK_MESSAGE(error->code == code, error->message);
}

// ---- the permission matrix -----------------------------------------------------

enum class Action {
  post,
  invite,
  remove,
  ban,
  unban,
  mute,
  unmute,
  edit_meta,
  delete_others,
  delete_own,
  pin,
  unpin,
  give_lower_role,  // a role below the actor's own (the target's own when none is left)
  give_own_role,    // the actor's own role
  transfer,
};

struct ActionInfo {
  Action action;
  const char* name;
  std::optional<Permission> needs;  // none: any member may
  bool on_target;                   // acts on another member, whose rank matters
};

constexpr ActionInfo kActions[] = {
    {Action::post, "post", Permission::post, false},
    {Action::invite, "invite", Permission::invite, false},
    {Action::remove, "remove", Permission::remove, true},
    {Action::ban, "ban", Permission::ban, true},
    {Action::unban, "unban", Permission::ban, false},
    {Action::mute, "mute", Permission::mute, true},
    {Action::unmute, "unmute", Permission::mute, true},
    {Action::edit_meta, "edit meta", Permission::edit_meta, false},
    {Action::delete_others, "delete another's message", Permission::delete_others, true},
    {Action::delete_own, "delete own message", std::nullopt, false},
    {Action::pin, "pin", Permission::pin, false},
    {Action::unpin, "unpin", Permission::pin, false},
    {Action::give_lower_role, "give a lower role", Permission::change_roles, true},
    {Action::give_own_role, "give own role", Permission::change_roles, true},
    {Action::transfer, "transfer ownership", Permission::change_roles, true},
};

// The highest role below `actor`'s that `target` does not hold; `target`'s
// own when there is none (a no-op).
Role lower_role(Role actor, Role target) {
  for (Role r : kRoles) {
    if (outranks(actor, r) && r != target) return r;
  }
  return target;
}

// What the server must answer, from the shared table: an error code, or ""
// for ok; `event` false for an ok that changes nothing (seq 0).
struct Outcome {
  std::string code;
  bool event = true;
};

Outcome expected(ChannelKind kind, Role actor, Role target, const ActionInfo& a) {
  const Outcome forbidden{"forbidden"};
  if (a.needs && !role_allows(kind, actor, *a.needs)) return forbidden;
  switch (a.action) {
    case Action::remove:
    case Action::ban:
    case Action::mute:
    case Action::unmute:
    case Action::delete_others:
      return outranks(actor, target) ? Outcome{} : forbidden;
    case Action::give_lower_role:
      if (!outranks(actor, target)) return forbidden;
      return Outcome{"", lower_role(actor, target) != target};
    case Action::give_own_role:
      if (actor == Role::owner) return {"invalid_role"};  // ownership moves by transfer
      return outranks(actor, target) && outranks(actor, actor) ? Outcome{} : forbidden;
    case Action::transfer:
      return actor == Role::owner ? Outcome{} : forbidden;
    default:
      return {};
  }
}

// Three users connected for the whole matrix; each case uses a new channel.
struct MatrixUsers {
  UserSession founder;
  UserSession actor;
  UserSession target;
  explicit MatrixUsers(const TestServer& server)
      : founder(server, "founder"), actor(server, "actor"), target(server, "target") {}
};

// Sets up channel `name` of `kind` with the actor in `actor_role` (and the
// target in `target_role` when the action has one), has the actor try the
// action and checks the answer against expected().
void run_case(MatrixUsers& u, const std::string& name, ChannelKind kind, Role actor_role,
              Role target_role, const ActionInfo& a) {
  const std::string context =
      fmt::format("{} channel {}: {} tries to {}{}", to_string(kind), name, to_string(actor_role),
                  a.name, a.on_target ? fmt::format(" on a {}", to_string(target_role)) : "");
  INFO(context);
  UserSession& creator = actor_role == Role::owner                   ? u.actor
                         : a.on_target && target_role == Role::owner ? u.target
                                                                     : u.founder;
  creator.ok(create(name, kind));
  // Adds `who` with `role`; with_message: has them post first (as admin,
  // who may post in every kind). Returns that message's seq.
  auto enrol = [&](UserSession& who, Role role, bool with_message) -> std::uint64_t {
    if (&who == &creator) return with_message ? creator.sent(name, "by the owner").seq : 0;
    creator.ok(member(name, "invite", who.user()));
    std::uint64_t seq = 0;
    if (with_message) {
      creator.ok(member(name, "role", who.user(), "admin"));
      seq = who.sent(name, "by " + who.user()).seq;
    }
    if (role != Role::member || with_message) {
      creator.ok(member(name, "role", who.user(), to_string(role)));
    }
    return seq;
  };
  std::uint64_t own_seq = enrol(u.actor, actor_role, a.action == Action::delete_own);
  std::uint64_t their_seq = 0;
  if (a.on_target) their_seq = enrol(u.target, target_role, a.action == Action::delete_others);
  std::uint64_t pinned_seq = 0;
  if (a.action == Action::pin || a.action == Action::unpin) {
    pinned_seq = creator.sent(name, "worth pinning").seq;
    if (a.action == Action::unpin) creator.ok(pin(name, pinned_seq));
  }
  if (a.action == Action::unban) creator.ok(member(name, "ban", "outcast"));
  if (a.action == Action::unmute && &u.target != &creator) {
    creator.ok(member(name, "mute", u.target.user()));
  }

  const std::string& target = u.target.user();
  wire::ServerMessage reply;
  switch (a.action) {
    case Action::post:
      reply = u.actor.send(name, "hello");
      break;
    case Action::invite:
      reply = u.actor.ask(member(name, "invite", "newbie"));
      break;
    case Action::remove:
      reply = u.actor.ask(member(name, "remove", target));
      break;
    case Action::ban:
      reply = u.actor.ask(member(name, "ban", target));
      break;
    case Action::unban:
      reply = u.actor.ask(member(name, "unban", "outcast"));
      break;
    case Action::mute:
      reply = u.actor.ask(member(name, "mute", target));
      break;
    case Action::unmute:
      reply = u.actor.ask(member(name, "unmute", target));
      break;
    case Action::edit_meta:
      reply = u.actor.ask(set_meta(name, topic("new topic")));
      break;
    case Action::delete_others:
      reply = u.actor.ask(delete_message(name, their_seq));
      break;
    case Action::delete_own:
      reply = u.actor.ask(delete_message(name, own_seq));
      break;
    case Action::pin:
      reply = u.actor.ask(pin(name, pinned_seq));
      break;
    case Action::unpin:
      reply = u.actor.ask(pin(name, pinned_seq, false));
      break;
    case Action::give_lower_role:
      reply =
          u.actor.ask(member(name, "role", target, to_string(lower_role(actor_role, target_role))));
      break;
    case Action::give_own_role:
      reply = u.actor.ask(member(name, "role", target, to_string(actor_role)));
      break;
    case Action::transfer:
      reply = u.actor.ask(member(name, "transfer", target));
      break;
  }

  Outcome want = expected(kind, actor_role, target_role, a);
  if (want.code.empty() && want.event) {
    check_event_ok(reply);
  } else if (want.code.empty()) {
    const auto* ok = std::get_if<wire::Ok>(&reply);
    CHECK_MESSAGE(ok != nullptr, "expected a no-op ok, got " << wire::encode(reply));
    if (ok != nullptr) CHECK(ok->seq == 0);
  } else {
    check_refused(reply, want.code);
  }
  u.founder.forget();
  u.actor.forget();
  u.target.forget();
}

}  // namespace

TEST_CASE("groups: every role against every action in private, broadcast and public channels") {
  TestServer server;
  MatrixUsers users(server);
  int n = 0;
  for (ChannelKind kind :
       {ChannelKind::private_channel, ChannelKind::broadcast, ChannelKind::public_channel}) {
    for (Role actor : kRoles) {
      for (const ActionInfo& a : kActions) {
        if (!a.on_target) {
          run_case(users, fmt::format("m{}", ++n), kind, actor, Role::member, a);
          continue;
        }
        // Targets of a lower, the same and a higher rank; one owner only.
        for (Role target : kRoles) {
          if (actor == Role::owner && target == Role::owner) continue;
          run_case(users, fmt::format("m{}", ++n), kind, actor, target, a);
        }
      }
    }
  }
  MESSAGE(n << " cases of the permission matrix");
}

TEST_CASE("groups: every action in a direct channel") {
  TestServer server;
  int n = 0;
  for (const ActionInfo& a : kActions) {
    const std::string context = fmt::format("direct channel: a member tries to {}", a.name);
    INFO(context);
    ++n;
    UserSession me(server, fmt::format("me{}", n), false, "phone");
    UserSession other(server, fmt::format("other{}", n), false, "laptop");
    me.publish_keys();
    other.publish_keys();
    const std::string name = me.ok(wire::OpenDirect{0, other.user()}).channel;
    // Direct channels take end-to-end encrypted messages only.
    std::uint64_t mine = me.sent_e2e(name, other.user()).seq;
    std::uint64_t theirs = other.sent_e2e(name, me.user()).seq;
    if (a.action == Action::unpin) me.ok(pin(name, mine));
    wire::ServerMessage reply;
    switch (a.action) {
      case Action::post:
        reply = me.send_e2e(name, other.user());
        break;
      case Action::invite:
        reply = me.ask(member(name, "invite", "newbie"));
        break;
      case Action::delete_others:
        reply = me.ask(delete_message(name, theirs));
        break;
      case Action::delete_own:
        reply = me.ask(delete_message(name, mine));
        break;
      case Action::pin:
        reply = me.ask(pin(name, mine));
        break;
      case Action::unpin:
        reply = me.ask(pin(name, mine, false));
        break;
      case Action::edit_meta:
        reply = me.ask(set_meta(name, topic("ours")));
        break;
      case Action::give_lower_role:
        reply = me.ask(member(name, "role", other.user(), "read_only"));
        break;
      case Action::give_own_role:
        reply = me.ask(member(name, "role", other.user(), "member"));
        break;
      case Action::transfer:
        reply = me.ask(member(name, "transfer", other.user()));
        break;
      case Action::remove:
      case Action::ban:
      case Action::unban:
      case Action::mute:
      case Action::unmute:
        reply = me.ask(member(name, a.name, other.user()));
        break;
    }
    Outcome want = expected(ChannelKind::direct, Role::member, Role::member, a);
    if (want.code.empty()) {
      check_event_ok(reply);
    } else {
      check_refused(reply, want.code);
    }
  }
}

TEST_CASE("groups: permission spot checks that do not rely on the table") {
  // The table itself, as docs/channels.md states it.
  CHECK_FALSE(role_allows(ChannelKind::private_channel, Role::moderator, Permission::edit_meta));
  CHECK(role_allows(ChannelKind::private_channel, Role::admin, Permission::edit_meta));
  CHECK_FALSE(role_allows(ChannelKind::private_channel, Role::member, Permission::invite));
  CHECK(role_allows(ChannelKind::private_channel, Role::moderator, Permission::invite));
  CHECK_FALSE(role_allows(ChannelKind::broadcast, Role::member, Permission::post));
  CHECK_FALSE(role_allows(ChannelKind::broadcast, Role::moderator, Permission::post));
  CHECK(role_allows(ChannelKind::broadcast, Role::admin, Permission::post));
  CHECK_FALSE(role_allows(ChannelKind::public_channel, Role::read_only, Permission::post));
  CHECK(role_allows(ChannelKind::public_channel, Role::member, Permission::post));
  CHECK(role_allows(ChannelKind::direct, Role::member, Permission::post));
  CHECK(role_allows(ChannelKind::direct, Role::member, Permission::pin));
  CHECK_FALSE(role_allows(ChannelKind::direct, Role::member, Permission::invite));
  CHECK(outranks(Role::owner, Role::admin));
  CHECK_FALSE(outranks(Role::admin, Role::admin));
  CHECK_FALSE(outranks(Role::read_only, Role::member));

  // And the server.
  TestServer server;
  UserSession olga(server, "olga");  // owner
  UserSession adam(server, "adam");  // admin
  UserSession mona(server, "mona");  // moderator
  UserSession mike(server, "mike");  // member
  UserSession rita(server, "rita");  // read_only
  UserSession nina(server, "nina");  // not a member
  olga.ok(create("spot", ChannelKind::private_channel));
  olga.ok(create("news", ChannelKind::broadcast));
  for (auto [who, role] : {std::pair{&adam, "admin"}, std::pair{&mona, "moderator"},
                           std::pair{&mike, "member"}, std::pair{&rita, "read_only"}}) {
    olga.ok(member("spot", "invite", who->user()));
    olga.ok(member("spot", "role", who->user(), role));
  }
  mike.ok(join("news"));

  mona.refused(set_meta("spot", topic("mine now")), "forbidden");
  adam.ok(set_meta("spot", topic("ours")));
  mike.refused(member("spot", "invite", "zoe"), "forbidden");
  mike.refused(wire::Send{0, "news", fresh_id(), "me too"}, "forbidden");
  CHECK(olga.sent("news", "broadcast by the owner").seq > 0);
  rita.refused(wire::Send{0, "spot", fresh_id(), "can I?"}, "forbidden");
  adam.refused(member("spot", "role", "mike", "admin"), "forbidden");
  check_event_ok(olga.ask(member("spot", "role", "mike", "admin")));
  check_event_ok(olga.ask(member("spot", "role", "mike", "member")));
  olga.refused(member("spot", "role", "mike", "owner"), "invalid_role");
  olga.refused(member("spot", "role", "mike", "king"), "invalid_role");
  olga.refused(member("spot", "kick", "mike"), "invalid_action");
  for (UserSession* who : {&adam, &mona}) {
    who->refused(member("spot", "remove", "olga"), "forbidden");
    who->refused(member("spot", "ban", "olga"), "forbidden");
    who->refused(member("spot", "mute", "olga"), "forbidden");
  }
  adam.refused(member("spot", "transfer", "mike"), "forbidden");
  adam.refused(member("spot", "remove", "adam"), "invalid_user");
  adam.refused(member("spot", "remove", "bad name"), "invalid_user");

  // Messages: anyone deletes their own; others' need moderator and a higher rank.
  std::uint64_t by_mike = mike.sent("spot", "mike's").seq;
  std::uint64_t by_olga = olga.sent("spot", "olga's").seq;
  mike.refused(delete_message("spot", by_olga), "forbidden");
  mona.refused(delete_message("spot", by_olga), "forbidden");
  check_event_ok(mona.ask(delete_message("spot", by_mike)));
  mona.refused(delete_message("spot", by_mike), "no_such_message");  // deleted already
  check_event_ok(mike.ask(delete_message("spot", mike.sent("spot", "oops").seq)));
  mike.refused(pin("spot", by_olga), "forbidden");
  mona.refused(pin("spot", by_mike), "no_such_message");
  check_event_ok(mona.ask(pin("spot", by_olga)));
  CHECK(mona.ok(pin("spot", by_olga)).seq == 0);  // pinned already: no-op

  // Acting on someone who is not a member.
  adam.refused(member("spot", "remove", "ghost"), "not_member");
  adam.refused(member("spot", "mute", "ghost"), "not_member");
  adam.refused(member("spot", "role", "ghost", "member"), "not_member");
  olga.refused(member("spot", "transfer", "ghost"), "not_member");
  check_event_ok(mona.ask(member("spot", "ban", "ghost")));  // ahead of time
  auto refused_invite = adam.refused(member("spot", "invite", "ghost"), "banned");
  CHECK_FALSE(refused_invite.until.has_value());
  CHECK(adam.ok(member("spot", "unban", "nobody")).seq == 0);  // not banned: no-op

  // A user who is not a member.
  nina.refused(wire::Send{0, "spot", fresh_id(), "hi"}, "not_member");
  nina.refused(member("spot", "invite", "zoe"), "not_member");
  nina.refused(set_meta("spot", topic("x")), "not_member");
  nina.refused(pin("spot", by_olga), "not_member");
  nina.refused(delete_message("spot", by_olga), "not_member");
  nina.refused(history("spot"), "not_member");
  nina.refused(info("spot"), "not_member");
  nina.refused(join("spot"), "forbidden");  // private: invited only

  // A muted member.
  check_event_ok(mona.ask(member("spot", "mute", "mike")));
  auto muted = mike.refused(wire::Send{0, "spot", fresh_id(), "mmph"}, "muted");
  CHECK_FALSE(muted.until.has_value());  // until lifted
  CHECK(muted.id.has_value());
  check_event_ok(mona.ask(member("spot", "unmute", "mike")));
  CHECK(mona.ok(member("spot", "unmute", "mike")).seq == 0);  // not muted: no-op
  CHECK(mike.sent("spot", "free again").seq > 0);

  // Transfer: the new owner is owner, the old one admin.
  check_event_ok(olga.ask(member("spot", "transfer", "adam")));
  auto roles = adam.ask_for<wire::ChannelInfoReply>(info("spot"));
  for (const auto& m : roles.members) {
    if (m.user == "adam") CHECK(m.role == "owner");
    if (m.user == "olga") CHECK(m.role == "admin");
  }
  check_event_ok(adam.ask(member("spot", "remove", "olga")));
}

TEST_CASE("groups: a banned user reads and sends nothing more until unbanned") {
  TestServer server;
  UserSession alice(server, "alice");
  UserSession bob(server, "bob");
  UserSession carol(server, "carol");
  alice.ok(create("town", ChannelKind::public_channel));
  bob.ok(join("town"));
  carol.ok(join("town"));
  std::uint64_t before = alice.sent("town", "before the ban").seq;
  CHECK(bob.event("message").seq == before);

  auto banned = alice.ok(member("town", "ban", "bob"));
  CHECK(banned.seq > 0);
  // Bob's live session hears of his own ban, then nothing more.
  auto event = bob.event();
  CHECK(event.kind == "ban");
  CHECK(event.seq == banned.seq);
  CHECK(event.target == "bob");
  CHECK(event.sender == "alice");
  CHECK_FALSE(event.until.has_value());
  CHECK(carol.event("ban").target == "bob");
  alice.sent("town", "after the ban");
  CHECK(carol.event("message").text == "after the ban");
  CHECK(bob.quiet());

  for (const auto& request :
       {join("town"), history("town"), info("town"), wire::ClientMessage{wire::Typing{0, "town"}},
        wire::ClientMessage{wire::Receipt{0, "town", "read", before}},
        wire::ClientMessage{wire::ListReceipts{0, "town"}}}) {
    auto refusal = bob.refused(request, "banned");
    CHECK_FALSE(refusal.until.has_value());
  }
  auto refused_send = bob.refused(wire::Send{0, "town", fresh_id(), "let me in"}, "banned");
  CHECK(refused_send.id.has_value());
  CHECK(bob.ask_for<wire::ChannelList>(wire::ListChannels{}).channels.empty());
  auto listed = alice.ask_for<wire::ChannelInfoReply>(info("town"));
  REQUIRE(listed.bans.size() == 1);
  CHECK(listed.bans[0].user == "bob");
  CHECK(listed.bans[0].until == 0);
  // Members see no ban list: they may not ban.
  CHECK(carol.ask_for<wire::ChannelInfoReply>(info("town")).bans.empty());

  alice.ok(member("town", "unban", "bob"));
  CHECK(bob.quiet());  // not a member: the unban is not his to hear
  CHECK(bob.ok(join("town")).seq > 0);
  auto page = bob.history_after("town", before);
  REQUIRE(page.events.size() == 4);
  CHECK(page.events[0].kind == "ban");
  CHECK(page.events[1].text == "after the ban");
  CHECK(page.events[2].kind == "unban");
  CHECK(page.events[3].kind == "join");
}

TEST_CASE("groups: a removed user reads and sends nothing more") {
  TestServer server;
  UserSession alice(server, "alice");
  UserSession dave(server, "dave");
  alice.ok(create("crew", ChannelKind::private_channel));
  alice.ok(member("crew", "invite", "dave"));
  CHECK(dave.event().kind == "invite");
  auto removed = alice.ok(member("crew", "remove", "dave"));
  auto event = dave.event();
  CHECK(event.kind == "remove");
  CHECK(event.seq == removed.seq);
  CHECK(event.target == "dave");

  for (int i = 0; i < 3; ++i) alice.sent("crew", fmt::format("secret {}", i));
  alice.ok(set_meta("crew", topic("without dave")));
  alice.ok(member("crew", "invite", "erin"));
  CHECK(dave.quiet(300ms));
  dave.refused(history("crew"), "not_member");
  dave.refused(wire::Send{0, "crew", fresh_id(), "hello?"}, "not_member");
  dave.refused(info("crew"), "not_member");
  dave.refused(wire::Typing{0, "crew"}, "not_member");
  dave.refused(wire::Receipt{0, "crew", "read", removed.seq}, "not_member");
  dave.refused(join("crew"), "forbidden");
  CHECK(dave.ask_for<wire::ChannelList>(wire::ListChannels{}).channels.empty());
}

TEST_CASE("groups: mutes and bans with seconds expire") {
  TestServer server;
  UserSession alice(server, "alice");
  UserSession bob(server, "bob");
  UserSession carol(server, "carol");
  alice.ok(create("hall", ChannelKind::public_channel));
  bob.ok(join("hall"));
  carol.ok(join("hall"));

  std::int64_t now = unix_now() * 1000;
  alice.ok(member("hall", "mute", "bob", std::nullopt, 1));
  auto mute_event = bob.event("mute");
  REQUIRE(mute_event.until.has_value());
  auto muted = bob.refused(wire::Send{0, "hall", fresh_id(), "shh"}, "muted");
  REQUIRE(muted.until.has_value());
  CHECK(*muted.until == *mute_event.until);
  CHECK(*muted.until >= now + 1000);  // `now` is rounded down to whole seconds
  CHECK(*muted.until <= now + 1000 + 2000);
  auto roster = alice.ask_for<wire::ChannelInfoReply>(info("hall"));
  for (const auto& m : roster.members) {
    if (m.user == "bob") CHECK(m.muted_until == muted.until);
  }

  alice.ok(member("hall", "ban", "carol", std::nullopt, 1));
  auto ban_refusal = carol.refused(history("hall"), "banned");
  REQUIRE(ban_refusal.until.has_value());
  CHECK(*ban_refusal.until > now);
  carol.refused(join("hall"), "banned");

  std::this_thread::sleep_for(1100ms);
  CHECK(bob.sent("hall", "I'm back").seq > 0);
  CHECK(carol.ok(join("hall")).seq > 0);
  CHECK(carol.sent("hall", "me too").seq > 0);
  // Once expired, neither shows in the channel's info.
  auto after = alice.ask_for<wire::ChannelInfoReply>(info("hall"));
  CHECK(after.bans.empty());
  for (const auto& m : after.members) CHECK_FALSE(m.muted_until.has_value());
}

TEST_CASE("groups: an offline member catches up on every change in order") {
  TestServer server;
  UserSession alice(server, "alice");
  UserSession carol(server, "carol");
  std::uint64_t seen = 0;
  std::uint64_t doomed = 0;
  std::uint64_t keeper = 0;
  alice.ok(create("team", ChannelKind::private_channel));
  alice.ok(member("team", "invite", "bob"));
  alice.ok(member("team", "invite", "carol"));
  {
    UserSession bob(server, "bob");
    doomed = carol.sent("team", "to be deleted").seq;
    keeper = alice.sent("team", "to be pinned").seq;
    CHECK(bob.event("message").seq == doomed);
    seen = bob.event("message").seq;
    CHECK(seen == keeper);
  }  // bob disconnects

  alice.ok(member("team", "invite", "dave"));
  alice.ok(member("team", "role", "carol", "moderator"));
  wire::Meta change;
  change.topic = "launch";
  change.data = R"({"color":"blue"})";
  alice.ok(set_meta("team", change));
  alice.ok(delete_message("team", doomed));
  alice.ok(pin("team", keeper));
  alice.ok(member("team", "mute", "dave", std::nullopt, 3600));

  UserSession bob(server, "bob");
  REQUIRE(bob.welcome().channels.size() == 1);
  CHECK(bob.welcome().channels[0].channel == "team");
  CHECK(bob.welcome().channels[0].kind == "private");
  CHECK(bob.welcome().channels[0].role == "member");
  CHECK(bob.welcome().channels[0].last_seq == seen + 6);

  auto page = bob.history_after("team", seen);
  REQUIRE(page.events.size() == 6);
  for (std::size_t i = 0; i < page.events.size(); ++i) CHECK(page.events[i].seq == seen + 1 + i);
  const auto& e = page.events;
  CHECK(e[0].kind == "invite");
  CHECK(e[0].sender == "alice");
  CHECK(e[0].target == "dave");
  CHECK(e[1].kind == "role");
  CHECK(e[1].target == "carol");
  CHECK(e[1].role == "moderator");
  CHECK(e[2].kind == "meta");
  REQUIRE(e[2].meta.has_value());
  CHECK(e[2].meta->topic == "launch");
  CHECK(e[2].meta->data == R"({"color":"blue"})");
  CHECK_FALSE(e[2].meta->name.has_value());
  CHECK_FALSE(e[2].meta->description.has_value());
  CHECK_FALSE(e[2].meta->avatar.has_value());
  CHECK(e[3].kind == "delete");
  CHECK(e[3].sender == "alice");
  CHECK(e[3].ref == doomed);
  CHECK(e[3].target == "carol");  // the author
  CHECK(e[4].kind == "pin");
  CHECK(e[4].ref == keeper);
  CHECK(e[5].kind == "mute");
  CHECK(e[5].target == "dave");
  CHECK(e[5].until.has_value());

  // The deleted message itself: still in the sequence, without its text.
  auto all = bob.history_after("team", 0);
  REQUIRE(all.events.size() >= doomed);
  const auto& gone = all.events[doomed - 1];
  CHECK(gone.seq == doomed);
  CHECK(gone.kind == "message");
  CHECK(gone.deleted == true);
  CHECK_FALSE(gone.text.has_value());
  CHECK(all.events[keeper - 1].text == "to be pinned");
  auto now = bob.ask_for<wire::ChannelInfoReply>(info("team"));
  CHECK(now.pinned == std::vector<std::uint64_t>{keeper});
}

TEST_CASE("groups: direct channels belong to their two users") {
  TestServer server;
  UserSession alice(server, "alice", false, "phone");
  UserSession bob(server, "bob", false, "laptop");
  UserSession carol(server, "carol", false, "tablet");
  alice.publish_keys();
  bob.publish_keys();
  auto opened = alice.ok(wire::OpenDirect{0, "bob"});
  CHECK(opened.channel == "@alice+bob");
  CHECK(opened.seq == 1);
  auto created = bob.event();
  CHECK(created.kind == "create");
  CHECK(created.channel == "@alice+bob");
  CHECK(created.channel_kind == "direct");
  CHECK(created.target == "bob");
  auto again = bob.ok(wire::OpenDirect{0, "alice"});
  CHECK(again.channel == opened.channel);
  CHECK(again.seq == 0);  // already a member
  CHECK(bob.sent_e2e(opened.channel, "alice").seq == 2);

  carol.refused(join(opened.channel), "forbidden");
  carol.refused(history(opened.channel), "not_member");
  alice.refused(member(opened.channel, "invite", "carol"), "forbidden");
  carol.refused(wire::CreateChannel{0, "@mine", std::nullopt, std::nullopt}, "invalid_name");
  carol.refused(wire::CreateChannel{0, "@alice+bob", std::nullopt, std::nullopt}, "invalid_name");
  carol.refused(wire::CreateChannel{0, "dm", std::string("direct"), std::nullopt}, "invalid_kind");
  alice.refused(wire::OpenDirect{0, "alice"}, "invalid_user");
  alice.refused(wire::OpenDirect{0, "not a name"}, "invalid_user");

  // Who left comes back through `direct`, and reads what they missed.
  CHECK(bob.ok(leave(opened.channel)).seq == 3);
  CHECK(alice.event("leave").sender == "bob");
  // Bob is no member now: alice's message goes to her own other device only.
  UserSession(server, "alice", false, "laptop").publish_keys();
  wire::Send missed = alice.e2e_message(opened.channel);
  REQUIRE(missed.e2e->to.size() == 1);
  alice.ask_for<wire::Ack>(missed);
  CHECK(bob.quiet());
  auto back = bob.ok(wire::OpenDirect{0, "alice"});
  CHECK(back.channel == opened.channel);
  CHECK(back.seq == 5);
  CHECK(alice.event("join").sender == "bob");
  auto page = bob.history_after(opened.channel, 3);
  REQUIRE(page.events.size() == 2);
  CHECK_FALSE(page.events[0].text.has_value());
  REQUIRE(page.events[0].e2e.has_value());
  wire::E2e kept = *page.events[0].e2e;
  kept.tag.reset();  // the server's franking tag
  CHECK(wire::encode_e2e(kept) == wire::encode_e2e(*missed.e2e));
  auto listed = bob.ask_for<wire::ChannelList>(wire::ListChannels{});
  REQUIRE(listed.channels.size() == 1);
  CHECK(listed.channels[0].kind == "direct");

  // Long names are hashed: still one channel for the pair, either way round.
  const std::string long_a(40, 'a');
  const std::string long_b(40, 'b');
  UserSession la(server, long_a);
  UserSession lb(server, long_b);
  auto hashed = la.ok(wire::OpenDirect{0, long_b});
  CHECK(hashed.channel.size() == 33);
  CHECK(hashed.channel[0] == '@');
  CHECK(lb.ok(wire::OpenDirect{0, long_a}).channel == hashed.channel);
}

TEST_CASE("groups: a user invited before ever connecting finds the channel in the welcome") {
  TestServer server;
  UserSession alice(server, "alice");
  alice.ok(create("secret", ChannelKind::private_channel));
  alice.ok(create("stage", ChannelKind::broadcast));
  CHECK(alice.ok(member("secret", "invite", "zed")).seq == 2);
  CHECK(alice.ok(member("stage", "invite", "zed")).seq == 2);
  alice.ok(member("stage", "role", "zed", "read_only"));

  UserSession zed(server, "zed");
  auto channels = zed.welcome().channels;
  REQUIRE(channels.size() == 2);
  std::sort(channels.begin(), channels.end(),
            [](const auto& a, const auto& b) { return a.channel < b.channel; });
  CHECK(channels[0].channel == "secret");
  CHECK(channels[0].kind == "private");
  CHECK(channels[0].role == "member");
  CHECK(channels[0].last_seq == 2);
  CHECK(channels[1].channel == "stage");
  CHECK(channels[1].kind == "broadcast");
  CHECK(channels[1].role == "read_only");
  CHECK(channels[1].last_seq == 3);
  auto page = zed.history_after("secret", 0);
  REQUIRE(page.events.size() == 2);
  CHECK(page.events[1].kind == "invite");
  CHECK(page.events[1].target == "zed");
}

TEST_CASE("groups: channel metadata limits, partial changes and the merged view") {
  TestServer server;
  UserSession alice(server, "alice");
  UserSession bob(server, "bob");
  wire::Meta initial;
  initial.name = "Design";
  initial.topic = "v1";
  initial.description = "where things get drawn";
  initial.avatar = "https://example.com/a.png";
  alice.ok(create("design", ChannelKind::public_channel, initial));
  bob.ok(join("design"));
  auto created = alice.history_after("design", 0).events.at(0);
  REQUIRE(created.meta.has_value());
  CHECK(created.meta->name == "Design");
  CHECK(created.meta->avatar == "https://example.com/a.png");

  auto bad = [&](wire::Meta meta) {
    alice.refused(set_meta("design", std::move(meta)), "invalid_meta");
  };
  bad(topic(std::string(wire::kMaxMetaTopic + 1, 't')));
  wire::Meta m;
  m.name = std::string(wire::kMaxMetaName + 1, 'n');
  bad(m);
  m = {};
  m.description = std::string(wire::kMaxMetaDescription + 1, 'd');
  bad(m);
  for (const char* data : {"[1,2]", "\"text\"", "42", "{broken", "{\"a\":1} trailing"}) {
    m = {};
    m.data = data;
    bad(m);
  }
  m = {};
  m.data = "{\"k\":\"" + std::string(wire::kMaxMetaData, 'x') + "\"}";
  bad(m);
  for (const char* avatar : {"ftp://example.com/a.png", "javascript:alert(1)", "example.com/a.png",
                             "https://example.com/a b.png", "data:image/png;base64,AAAA"}) {
    m = {};
    m.avatar = avatar;
    bad(m);
  }
  bad(wire::Meta{});  // nothing to change
  alice.refused(create("design2", ChannelKind::public_channel, topic(std::string(600, 't'))),
                "invalid_meta");
  CHECK(bob.quiet());  // no refused change made an event

  // Exactly at the limits is fine.
  CHECK(alice.ok(set_meta("design", topic(std::string(wire::kMaxMetaTopic, 't')))).seq > 0);
  CHECK(bob.event("meta").meta->topic == std::string(wire::kMaxMetaTopic, 't'));

  m = {};
  m.topic = "v2";
  m.data = R"({"theme":{"dark":true}})";
  auto changed = alice.ok(set_meta("design", m));
  auto event = bob.event("meta");
  CHECK(event.seq == changed.seq);
  REQUIRE(event.meta.has_value());
  CHECK(event.meta->topic == "v2");
  CHECK(event.meta->data == R"({"theme":{"dark":true}})");
  CHECK_FALSE(event.meta->name.has_value());
  CHECK_FALSE(event.meta->description.has_value());
  CHECK_FALSE(event.meta->avatar.has_value());

  m = {};
  m.avatar = "";  // cleared
  m.name = "Design Team";
  alice.ok(set_meta("design", m));
  auto cleared = bob.event("meta");
  CHECK(cleared.meta->avatar == "");
  CHECK_FALSE(cleared.meta->topic.has_value());

  auto merged = bob.ask_for<wire::ChannelInfoReply>(info("design"));
  CHECK(merged.kind == "public");
  CHECK(merged.meta.name == "Design Team");
  CHECK(merged.meta.topic == "v2");
  CHECK(merged.meta.description == "where things get drawn");
  CHECK(merged.meta.avatar == "");
  CHECK(merged.meta.data == R"({"theme":{"dark":true}})");
  CHECK(merged.last_seq == changed.seq + 1);
  REQUIRE(merged.members.size() == 2);

  // The merged view survives a restart.
  server.restart();
  UserSession carol(server, "carol");
  auto reloaded = carol.ask_for<wire::ChannelInfoReply>(info("design"));  // public: no join needed
  CHECK(reloaded.meta.name == "Design Team");
  CHECK(reloaded.meta.topic == "v2");
  CHECK(reloaded.meta.description == "where things get drawn");
  CHECK(reloaded.meta.data == R"({"theme":{"dark":true}})");
}

TEST_CASE("groups: roles, bans, mutes, pins and deletions survive a restart") {
  TestServer server;
  std::uint64_t pinned = 0;
  std::uint64_t deleted = 0;
  {
    UserSession alice(server, "alice");
    alice.ok(create("keep", ChannelKind::private_channel));
    for (const char* who : {"bob", "carol", "dave"}) alice.ok(member("keep", "invite", who));
    alice.ok(member("keep", "role", "bob", "admin"));
    alice.ok(member("keep", "role", "carol", "read_only"));
    alice.ok(member("keep", "mute", "dave"));
    alice.ok(member("keep", "ban", "eve"));
    pinned = alice.sent("keep", "pin me").seq;
    deleted = alice.sent("keep", "delete me").seq;
    alice.ok(pin("keep", pinned));
    alice.ok(delete_message("keep", deleted));
    alice.ok(set_meta("keep", topic("kept")));
    alice.ok(member("keep", "transfer", "bob"));
  }
  server.restart();

  UserSession bob(server, "bob");
  CHECK(bob.welcome().channels.at(0).role == "owner");
  auto kept = bob.ask_for<wire::ChannelInfoReply>(info("keep"));
  CHECK(kept.kind == "private");
  CHECK(kept.meta.topic == "kept");
  CHECK(kept.pinned == std::vector<std::uint64_t>{pinned});
  std::map<std::string, std::string> roles;
  for (const auto& m : kept.members) {
    roles[m.user] = m.role;
    CHECK(m.muted_until.has_value() == (m.user == "dave"));
    if (m.user == "dave") CHECK(m.muted_until == 0);
  }
  CHECK(roles ==
        std::map<std::string, std::string>{
            {"alice", "admin"}, {"bob", "owner"}, {"carol", "read_only"}, {"dave", "member"}});
  REQUIRE(kept.bans.size() == 1);
  CHECK(kept.bans[0].user == "eve");
  CHECK(kept.bans[0].until == 0);

  UserSession carol(server, "carol");
  UserSession dave(server, "dave");
  UserSession eve(server, "eve");
  carol.refused(wire::Send{0, "keep", fresh_id(), "hi"}, "forbidden");
  dave.refused(wire::Send{0, "keep", fresh_id(), "hi"}, "muted");
  eve.refused(history("keep"), "banned");
  bob.refused(member("keep", "invite", "eve"), "banned");
  auto page = carol.history_after("keep", deleted - 1);
  REQUIRE_FALSE(page.events.empty());
  CHECK(page.events[0].deleted == true);
  CHECK_FALSE(page.events[0].text.has_value());
  UserSession alice(server, "alice");
  alice.refused(member("keep", "transfer", "carol"), "forbidden");  // admin now
}

// Leaving does not shed a restriction: a mute or the read-only role comes
// back with the member, whether they left, were removed or were banned (and
// unbanned), and whether they come back by joining or by invitation.
TEST_CASE("groups: a mute and a read-only role survive leaving and joining again") {
  TestServer server;
  UserSession alice(server, "alice");
  UserSession bob(server, "bob");
  UserSession carol(server, "carol");
  alice.ok(create("open", ChannelKind::public_channel));
  bob.ok(join("open"));
  carol.ok(join("open"));
  alice.ok(member("open", "mute", "bob"));
  alice.ok(member("open", "role", "carol", "read_only"));
  for (UserSession* who : {&bob, &carol}) {
    who->ok(leave("open"));
    who->ok(join("open"));
  }
  check_refused(bob.send("open", "still muted?"), "muted");
  check_refused(carol.send("open", "still read-only?"), "forbidden");

  // Removed, then invited back; banned, unbanned, then joining again.
  alice.ok(member("open", "remove", "bob"));
  alice.ok(member("open", "invite", "bob"));
  check_refused(bob.send("open", "muted after an invitation?"), "muted");
  alice.ok(member("open", "ban", "carol"));
  alice.ok(member("open", "unban", "carol"));
  carol.ok(join("open"));
  check_refused(carol.send("open", "read-only after a ban?"), "forbidden");

  // Lifting them works as before, and a restriction-free member leaves nothing behind.
  alice.ok(member("open", "unmute", "bob"));
  alice.ok(member("open", "role", "carol", "member"));
  bob.ok(leave("open"));
  bob.ok(join("open"));
  carol.ok(leave("open"));
  carol.ok(join("open"));
  bob.sent("open", "free again");
  carol.sent("open", "free again");

  // And it holds across a restart (the store keeps it).
  alice.ok(member("open", "mute", "bob"));
  bob.ok(leave("open"));
  server.restart();
  UserSession back(server, "bob");
  back.ok(join("open"));
  check_refused(back.send("open", "muted after a restart?"), "muted");
}

TEST_CASE("groups: a muted member cannot be made owner") {
  TestServer server;
  UserSession alice(server, "alice");
  UserSession bob(server, "bob");
  alice.ok(create("t", ChannelKind::private_channel));
  alice.ok(member("t", "invite", "bob"));
  alice.ok(member("t", "mute", "bob"));
  alice.refused(member("t", "transfer", "bob"), "forbidden");
  alice.ok(member("t", "unmute", "bob"));
  alice.ok(member("t", "transfer", "bob"));
}
