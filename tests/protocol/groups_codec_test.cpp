// The group channel frames (issue 6): their JSON round trips, the metadata
// rules, the permission table and the administrator claim of tokens.
#include <doctest/doctest.h>

#include <string>

#include "parley/roles.hpp"
#include "parley/types.hpp"
#include "protocol/codec.hpp"
#include "protocol/token.hpp"

using namespace parley;
using namespace parley::wire;

namespace {

template <class T>
T decode_client(const std::string& frame) {
  auto items = decode_client_frame(frame);
  REQUIRE(items.size() == 1);
  auto* msg = std::get_if<ClientMessage>(&items[0]);
  REQUIRE_MESSAGE(msg != nullptr, frame);
  auto* value = std::get_if<T>(msg);
  REQUIRE(value != nullptr);
  return *value;
}

template <class T>
T decode_server(const std::string& frame) {
  auto items = decode_server_frame(frame);
  REQUIRE(items.size() == 1);
  auto* msg = std::get_if<ServerMessage>(&items[0]);
  REQUIRE_MESSAGE(msg != nullptr, frame);
  auto* value = std::get_if<T>(msg);
  REQUIRE(value != nullptr);
  return *value;
}

std::string decode_error_code(const std::string& frame) {
  auto items = decode_client_frame(frame);
  REQUIRE(items.size() == 1);
  auto* err = std::get_if<DecodeError>(&items[0]);
  REQUIRE_MESSAGE(err != nullptr, frame);
  return err->code;
}

}  // namespace

TEST_CASE("group requests decode from the JSON of docs/protocol.md") {
  auto create = decode_client<CreateChannel>(
      R"({"type":"create","rid":2,"channel":"team","kind":"private",)"
      R"("meta":{"name":"Team","topic":"plans","data":"{\"color\":1}"}})");
  CHECK(create.kind == std::optional<std::string>("private"));
  REQUIRE(create.meta.has_value());
  CHECK(create.meta->name == std::optional<std::string>("Team"));
  CHECK(create.meta->data == std::optional<std::string>("{\"color\":1}"));
  CHECK_FALSE(create.meta->avatar.has_value());

  // Without the new fields a create is what it always was.
  auto plain = decode_client<CreateChannel>(R"({"type":"create","rid":3,"channel":"general"})");
  CHECK_FALSE(plain.kind.has_value());
  CHECK_FALSE(plain.meta.has_value());

  auto direct = decode_client<OpenDirect>(R"({"type":"direct","rid":4,"user":"bob"})");
  CHECK(direct.user == "bob");

  auto ban = decode_client<MemberAction>(
      R"({"type":"member","rid":5,"channel":"team","action":"ban","user":"mallory","seconds":60})");
  CHECK(ban.action == "ban");
  CHECK(ban.seconds == std::optional<std::uint64_t>(60));
  CHECK_FALSE(ban.role.has_value());

  auto meta = decode_client<SetMeta>(
      R"({"type":"set_meta","rid":6,"channel":"team","meta":{"topic":""}})");
  CHECK(meta.meta.topic == std::optional<std::string>(""));  // "" clears; absent keeps
  CHECK_FALSE(meta.meta.name.has_value());

  CHECK(decode_client<DeleteMessage>(R"({"type":"delete","rid":7,"channel":"c","seq":9})").seq == 9);
  auto pin = decode_client<PinMessage>(
      R"({"type":"pin","rid":8,"channel":"c","seq":9,"pinned":false})");
  CHECK_FALSE(pin.pinned);
  auto report = decode_client<Report>(
      R"({"type":"report","rid":9,"channel":"c","seq":9,"reason":"spam"})");
  CHECK(report.reason == "spam");
  CHECK(decode_client<ChannelInfoRequest>(R"({"type":"info","rid":10,"channel":"c"})").channel ==
        "c");
  auto admin = decode_client<Admin>(
      R"({"type":"admin","rid":11,"action":"system_message","channel":"c","text":"hi"})");
  CHECK(admin.action == "system_message");
  CHECK(admin.text == std::optional<std::string>("hi"));
  CHECK_FALSE(admin.user.has_value());
}

TEST_CASE("group requests with missing or mistyped fields are refused by name") {
  CHECK(decode_error_code(R"({"type":"member","rid":1,"channel":"c","user":"bob"})") ==
        code::kMissingField);
  CHECK(decode_error_code(
            R"({"type":"member","rid":1,"channel":"c","action":"ban","user":"b","seconds":-1})") ==
        code::kBadField);
  CHECK(decode_error_code(R"({"type":"set_meta","rid":1,"channel":"c","meta":"topic"})") ==
        code::kBadField);
  CHECK(decode_error_code(R"({"type":"pin","rid":1,"channel":"c","seq":1})") ==
        code::kMissingField);
  CHECK(decode_error_code(R"({"type":"direct","rid":1,"user":7})") == code::kBadField);
}

TEST_CASE("group events and replies round trip, leaving absent fields out") {
  ChannelEvent role{"team", 7, "role", "alice", 100};
  role.target = "bob";
  role.role = "admin";
  std::string json = encode(ServerMessage(role));
  CHECK(json.find("until") == std::string::npos);
  CHECK(json.find("meta") == std::string::npos);
  auto back = decode_server<ChannelEvent>(json);
  CHECK(back.target == std::optional<std::string>("bob"));
  CHECK(back.role == std::optional<std::string>("admin"));

  ChannelEvent deleted{"team", 3, "message", "bob", 50};
  deleted.id = std::string(32, 'a');
  deleted.deleted = true;
  auto db = decode_server<ChannelEvent>(encode(ServerMessage(deleted)));
  CHECK(db.deleted == std::optional<bool>(true));
  CHECK_FALSE(db.text.has_value());

  ChannelEvent meta{"team", 8, "meta", "alice", 101};
  meta.meta = Meta{std::nullopt, std::string("new topic"), std::nullopt, std::nullopt,
                   std::nullopt};
  auto mb = decode_server<ChannelEvent>(encode(ServerMessage(meta)));
  REQUIRE(mb.meta.has_value());
  CHECK(mb.meta->topic == std::optional<std::string>("new topic"));
  CHECK_FALSE(mb.meta->name.has_value());

  Error limited{12, code::kRateLimited, "slow down", std::string(32, 'c')};
  limited.retry_after_ms = 250;
  auto lb = decode_server<Error>(encode(ServerMessage(limited)));
  CHECK(lb.retry_after_ms == std::optional<std::uint64_t>(250));
  CHECK_FALSE(lb.until.has_value());

  ChannelInfoReply info;
  info.rid = 13;
  info.channel = "team";
  info.kind = "private";
  info.last_seq = 9;
  info.meta.name = "Team";
  info.members = {{"alice", "owner", std::nullopt}, {"bob", "member", std::int64_t{5000}}};
  info.bans = {{"mallory", 0}};
  info.pinned = {3, 5};
  auto ib = decode_server<ChannelInfoReply>(encode(ServerMessage(info)));
  REQUIRE(ib.members.size() == 2);
  CHECK(ib.members[1].muted_until == std::optional<std::int64_t>(5000));
  CHECK(ib.bans.at(0).user == "mallory");
  CHECK(ib.pinned == std::vector<std::uint64_t>{3, 5});
  CHECK(ib.meta.name == std::optional<std::string>("Team"));

  AdminResult result;
  result.rid = 14;
  result.action = "channels";
  result.channels = std::vector<AdminChannel>{{"team", "private", 2, 9}};
  std::string rj = encode(ServerMessage(result));
  CHECK(rj.find("users") == std::string::npos);
  auto rb = decode_server<AdminResult>(rj);
  REQUIRE(rb.channels.has_value());
  CHECK(rb.channels->at(0).members == 2);

  Welcome w{1, "bob", "d", 1, 65536, {ChannelState{"team", 9, "private", "member"}}};
  auto wb = decode_server<Welcome>(encode(ServerMessage(w)));
  CHECK(wb.channels.at(0).kind == std::optional<std::string>("private"));
  CHECK(wb.channels.at(0).role == std::optional<std::string>("member"));
}

TEST_CASE("check_meta enforces the limits of docs/channels.md") {
  CHECK(check_meta(Meta{}).empty());
  CHECK(check_meta(Meta{std::string(128, 'n'), std::string(512, 't'), std::string(2048, 'd'),
                        std::string("https://example.com/a.png"), std::string("{}")})
            .empty());
  CHECK_FALSE(check_meta(Meta{std::string(129, 'n'), {}, {}, {}, {}}).empty());
  CHECK_FALSE(check_meta(Meta{{}, std::string(513, 't'), {}, {}, {}}).empty());
  CHECK_FALSE(check_meta(Meta{{}, {}, std::string(2049, 'd'), {}, {}}).empty());
  CHECK_FALSE(check_meta(Meta{{}, {}, {}, std::string("ftp://x/y"), {}}).empty());
  CHECK_FALSE(check_meta(Meta{{}, {}, {}, std::string("https://x/a b"), {}}).empty());
  CHECK(check_meta(Meta{{}, {}, {}, std::string(""), {}}).empty());  // clearing
  CHECK_FALSE(check_meta(Meta{{}, {}, {}, {}, std::string("[1,2]")}).empty());
  CHECK_FALSE(check_meta(Meta{{}, {}, {}, {}, std::string("{\"a\":")}).empty());
  CHECK_FALSE(check_meta(Meta{{}, {}, {}, {}, std::string(4097, ' ')}).empty());
  CHECK_FALSE(check_meta(Meta{std::string("\xff"), {}, {}, {}, {}}).empty());
  std::string why = check_meta(Meta{{}, std::string(600, 't'), {}, {}, {}});
  CHECK(why.find("topic") != std::string::npos);
}

TEST_CASE("the permission table") {
  using enum Permission;
  const ChannelKind kinds[] = {ChannelKind::public_channel, ChannelKind::private_channel,
                               ChannelKind::broadcast};
  for (ChannelKind kind : kinds) {
    CAPTURE(to_string(kind));
    for (Permission p : {post, invite, remove, ban, mute, edit_meta, delete_others, pin,
                         change_roles}) {
      CHECK(role_allows(kind, Role::owner, p));
      CHECK(role_allows(kind, Role::admin, p));
      CHECK_FALSE(role_allows(kind, Role::read_only, p));
    }
    CHECK_FALSE(role_allows(kind, Role::moderator, edit_meta));
    CHECK_FALSE(role_allows(kind, Role::moderator, change_roles));
    CHECK(role_allows(kind, Role::moderator, ban));
    CHECK(role_allows(kind, Role::moderator, delete_others));
    CHECK_FALSE(role_allows(kind, Role::member, invite));
    CHECK_FALSE(role_allows(kind, Role::member, pin));
  }
  CHECK(role_allows(ChannelKind::public_channel, Role::member, post));
  CHECK(role_allows(ChannelKind::private_channel, Role::moderator, post));
  CHECK_FALSE(role_allows(ChannelKind::broadcast, Role::member, post));
  CHECK_FALSE(role_allows(ChannelKind::broadcast, Role::moderator, post));
  CHECK(role_allows(ChannelKind::direct, Role::member, post));
  CHECK(role_allows(ChannelKind::direct, Role::member, pin));
  CHECK_FALSE(role_allows(ChannelKind::direct, Role::member, invite));
  CHECK_FALSE(role_allows(ChannelKind::direct, Role::owner, edit_meta));

  CHECK(outranks(Role::owner, Role::admin));
  CHECK(outranks(Role::moderator, Role::member));
  CHECK_FALSE(outranks(Role::admin, Role::admin));
  CHECK_FALSE(outranks(Role::read_only, Role::member));

  for (const char* name : {"owner", "admin", "moderator", "member", "read_only"}) {
    Role role;
    REQUIRE(parse_role(name, &role));
    CHECK(std::string(to_string(role)) == name);
  }
  Role role;
  CHECK_FALSE(parse_role("Owner", &role));
  ChannelKind kind;
  CHECK(parse_channel_kind("broadcast", &kind));
  CHECK(kind == ChannelKind::broadcast);
  CHECK_FALSE(parse_channel_kind("secret", &kind));
  Permission permission;
  CHECK(parse_permission("delete_others", &permission));
  CHECK(permission == delete_others);

  EventKind event;
  CHECK(parse_event_kind("delete", &event));
  CHECK(event == EventKind::deletion);
  CHECK(std::string(to_string(EventKind::channel_deleted)) == "channel_deleted");
  CHECK_FALSE(parse_event_kind("deletion", &event));
}

TEST_CASE("token: the administrator claim") {
  token::SigningKey key = token::generate_key();
  std::string plain = token::mint(key, "alice", 60, 1000);
  std::string admin = token::mint(key, "root", 60, 1000, /*admin=*/true);
  auto p = token::verify(key.public_key, plain, 1001);
  auto a = token::verify(key.public_key, admin, 1001);
  REQUIRE(p.ok());
  REQUIRE(a.ok());
  CHECK_FALSE(p->admin);
  CHECK(a->admin);
  CHECK(plain.size() < admin.size());  // the claim is left out of ordinary tokens
}
