// Several devices, blocks, session recovery and verifiable reports through
// the real server (issue 10, docs/e2e.md "Devices", docs/security.md
// "Verifiable reports"): the device limit, the exact device set of a direct
// send (stale_devices), removing a device, blocking, retry and resend
// notices, franked reports, and notifications for direct messages.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sodium.h>

#include <filesystem>
#include <string>
#include <vector>

#include "crypto/franking.hpp"
#include "hub.hpp"
#include "store.hpp"
#include "store/sqlite.hpp"
#include "user_session.hpp"

using namespace parley;
using namespace parley::test;

namespace {

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The next e2e notice pushed to `session`, skipping other unsolicited messages.
wire::E2eNotice next_notice(UserSession& session) {
  for (;;) {
    wire::ServerMessage m = session.next();
    if (auto* notice = std::get_if<wire::E2eNotice>(&m)) return *notice;
  }
}

// The next error pushed to `session` (rid absent), skipping other unsolicited messages.
wire::Error next_error(UserSession& session) {
  for (;;) {
    wire::ServerMessage m = session.next();
    if (auto* error = std::get_if<wire::Error>(&m)) return *error;
  }
}

// Whether `session` gets no e2e notice within a short wait (other messages are dropped).
bool no_notice(UserSession& session) {
  while (!session.quiet(std::chrono::milliseconds(300))) {
    wire::ServerMessage m = session.next();
    if (std::holds_alternative<wire::E2eNotice>(m)) return false;
  }
  return true;
}

wire::GetBundle bundle(const std::string& user, bool identities_only = false,
                       std::optional<std::string> device = std::nullopt) {
  wire::GetBundle b{0, user, std::nullopt, std::move(device)};
  if (identities_only) b.identities_only = true;
  return b;
}

std::vector<std::string> devices_in(const wire::Bundles& bundles) {
  std::vector<std::string> out;
  for (const auto& d : bundles.devices) out.push_back(d.device);
  return out;
}

std::string b64(const crypto::Key32& key) { return to_base64(key.data(), key.size()); }

wire::Admin admin_reports() {
  return wire::Admin{0, "reports", std::nullopt, std::nullopt, std::nullopt, std::nullopt};
}

// A raw connection's auth as (user, device): the reply and how it closed, if it did.
wire::ServerMessage auth_reply(const TestServer& server, const std::string& user,
                               const std::string& device, int* close_code) {
  Peer p(server.port());
  p.send(R"({"type":"auth","rid":1,"token":")" + server.token(user) + R"(","device":")" + device +
         "\"}");
  wire::ServerMessage reply = p.next();
  *close_code = p.ws().wait_closed() ? p.ws().close_code() : 0;
  return reply;
}

}  // namespace

TEST_CASE("devices: at most kMaxDevicesPerUser devices publish keys") {
  TestServer server;
  std::vector<std::unique_ptr<UserSession>> devices;
  for (std::size_t i = 0; i < wire::kMaxDevicesPerUser; ++i) {
    devices.push_back(
        std::make_unique<UserSession>(server, "alice", false, fmt::format("d{}", i)));
    devices.back()->publish_keys();
  }
  UserSession ninth(server, "alice", false, "d9");
  auto e = ninth.refused(DeviceKeys().first(1), "too_many_devices");
  CHECK(has(e.message, "d9"));
  // A device with keys already publishes again (a new identity too).
  devices[0]->publish_keys(3);
  // Another user is not counted against alice.
  UserSession bob(server, "bob", false, "d9");
  bob.publish_keys();
  // Once one is removed, there is room.
  devices[0]->ok(wire::RemoveDevice{0, "d1"});
  ninth.publish_keys();
  UserSession carol(server, "carol", false, "c1");
  CHECK(carol.ask_for<wire::Bundles>(bundle("alice", true)).devices.size() ==
        wire::kMaxDevicesPerUser);
}

TEST_CASE("devices: a direct send has one envelope per device of both members but its own") {
  TestServer server;
  UserSession alice(server, "alice", false, "phone");
  UserSession alice_laptop(server, "alice", false, "laptop");
  UserSession bob(server, "bob", false, "phone");
  alice.publish_keys();
  alice_laptop.publish_keys();
  bob.publish_keys();
  const std::string dm = alice.ok(wire::OpenDirect{0, "bob"}).channel;
  bob.event("create");

  wire::Send exact = alice.e2e_message(dm, "bob");
  REQUIRE(exact.e2e->to.size() == 2);  // alice/laptop and bob/phone
  auto refused = [&](wire::Send s, const std::vector<std::string>& parts) {
    s.id = fresh_id();
    auto e = alice.refused(s, "stale_devices");
    CHECK(e.id == s.id);
    for (const auto& part : parts) CHECK_MESSAGE(has(e.message, part), e.message);
  };
  auto without = [&](const std::string& user) {
    wire::Send s = exact;
    std::erase_if(s.e2e->to, [&](const wire::Envelope& env) { return env.user == user; });
    return s;
  };
  // Missing: the peer's device, the sender's own other device.
  refused(without("bob"), {"missing bob/phone"});
  refused(without("alice"), {"missing alice/laptop"});
  // Extra: a device without keys, the sending device itself; twice the same.
  {
    wire::Send s = exact;
    s.e2e->to.push_back(fake_e2e("phone", "alice", "old").to[0]);
    refused(s, {"not a device: alice/old"});
    s = exact;
    s.e2e->to.push_back(fake_e2e("phone", "alice", "phone").to[0]);
    refused(s, {"alice/phone"});
    s = exact;
    s.e2e->to.push_back(s.e2e->to[0]);
    refused(s, {"twice"});
    s = without("bob");
    s.e2e->to.push_back(fake_e2e("phone", "alice", "old").to[0]);
    refused(s, {"missing bob/phone", "not a device: alice/old"});
  }
  CHECK(bob.quiet());
  CHECK(metric(server.port(), "parley_stale_devices_total") == 6);

  // Exact: stored, and the sender's other device gets it like the peer.
  auto ack = alice.ask_for<wire::Ack>(exact);
  auto to_bob = bob.event("message");
  CHECK(to_bob.seq == ack.seq);
  auto to_laptop = alice_laptop.event("message");
  CHECK(to_laptop.seq == ack.seq);
  REQUIRE(to_laptop.e2e.has_value());
  CHECK(to_laptop.e2e->to.size() == 2);

  // Bob adds a device: the old set is stale now, a refreshed one goes through.
  UserSession bob_tablet(server, "bob", false, "tablet");
  bob_tablet.publish_keys();
  wire::Send old_set = exact;
  refused(old_set, {"missing bob/tablet"});
  // A retried send of the stored message still gets its ack.
  auto again = alice.ask_for<wire::Ack>(exact);
  CHECK(again.duplicate);
  CHECK(again.seq == ack.seq);
  wire::Send refreshed = alice.e2e_message(dm, "bob");
  CHECK(refreshed.e2e->to.size() == 3);
  CHECK(alice.ask_for<wire::Ack>(refreshed).seq == ack.seq + 1);
  // Bob's other device sends too: to alice's two devices and bob's phone.
  wire::Send from_tablet = bob_tablet.e2e_message(dm, "alice");
  CHECK(from_tablet.e2e->to.size() == 3);
  bob_tablet.ask_for<wire::Ack>(from_tablet);
}

TEST_CASE("devices: remove_device deletes keys, closes the device and refuses it for good") {
  TestServer server;
  UserSession phone(server, "alice", false, "phone");
  auto laptop = std::make_unique<UserSession>(server, "alice", false, "laptop");
  UserSession bob(server, "bob", false, "b1");
  phone.publish_keys(5);
  laptop->publish_keys(5);
  bob.publish_keys();
  CHECK(devices_in(bob.ask_for<wire::Bundles>(bundle("alice", true))) ==
        std::vector<std::string>{"laptop", "phone"});
  // One device only.
  auto one = bob.ask_for<wire::Bundles>(bundle("alice", false, std::string("phone")));
  REQUIRE(one.devices.size() == 1);
  CHECK(one.devices[0].device == "phone");
  CHECK(one.devices[0].one_time.has_value());
  bob.refused(bundle("alice", false, std::string("tablet")), "no_such_device");

  // Only the user's own devices with keys.
  phone.refused(wire::RemoveDevice{0, "tablet"}, "no_such_device");
  phone.refused(wire::RemoveDevice{0, "b1"}, "no_such_device");  // bob's
  bob.refused(wire::RemoveDevice{0, "laptop"}, "no_such_device");

  phone.ok(wire::RemoveDevice{0, "laptop"});
  auto cut = next_error(*laptop);
  CHECK(cut.code == "device_removed");
  REQUIRE(laptop->peer().ws().wait_closed());
  CHECK(laptop->peer().ws().close_code() == 4005);
  laptop.reset();

  CHECK(devices_in(bob.ask_for<wire::Bundles>(bundle("alice", true))) ==
        std::vector<std::string>{"phone"});
  bob.refused(bundle("alice", false, std::string("laptop")), "no_such_device");
  phone.refused(wire::RemoveDevice{0, "laptop"}, "no_such_device");  // gone already
  int close_code = 0;
  auto refusal = auth_reply(server, "alice", "laptop", &close_code);
  REQUIRE(std::holds_alternative<wire::Error>(refusal));
  CHECK(std::get<wire::Error>(refusal).code == "device_removed");
  CHECK(close_code == 4005);
  // Direct sends no longer address it.
  const std::string dm = phone.ok(wire::OpenDirect{0, "bob"}).channel;
  wire::Send s = phone.e2e_message(dm, "bob");
  CHECK(s.e2e->to.size() == 1);
  s.e2e->to.push_back(fake_e2e("phone", "alice", "laptop").to[0]);
  phone.refused(s, "stale_devices");

  // Removing one's own device: ok, then the connection is closed.
  CHECK(phone.ok(wire::RemoveDevice{0, "phone"}).rid != 0);
  CHECK(next_error(phone).code == "device_removed");
  REQUIRE(phone.peer().ws().wait_closed());
  CHECK(phone.peer().ws().close_code() == 4005);
  bob.refused(bundle("alice"), "no_keys");
  CHECK(metric(server.port(), "parley_devices_removed_total") == 2);

  // For good: after a restart too, and another id of the same user still works.
  server.restart();
  refusal = auth_reply(server, "alice", "phone", &close_code);
  REQUIRE(std::holds_alternative<wire::Error>(refusal));
  CHECK(std::get<wire::Error>(refusal).code == "device_removed");
  CHECK(close_code == 4005);
  UserSession fresh(server, "alice", false, "phone-2");
  fresh.publish_keys();
}

TEST_CASE("block: no direct messages either way until unblocked") {
  TestServer server;
  UserSession alice(server, "alice", false, "a1");
  UserSession bob(server, "bob", false, "b1");
  alice.publish_keys();
  bob.publish_keys();
  const std::string dm = alice.ok(wire::OpenDirect{0, "bob"}).channel;
  alice.ok(wire::CreateChannel{0, "lobby", std::nullopt, std::nullopt});
  bob.ok(wire::JoinChannel{0, "lobby"});
  const std::uint64_t before = alice.sent_e2e(dm, "bob").seq;
  bob.ok(wire::E2eRetry{0, dm, before});  // recorded before the block
  wire::Send from_alice = alice.e2e_message(dm, "bob");
  wire::Send from_bob = bob.e2e_message(dm, "alice");

  auto blocks = alice.ask_for<wire::Blocks>(wire::Block{0, "bob", std::nullopt});
  CHECK(blocks.users == std::vector<std::string>{"bob"});
  CHECK(alice.ask_for<wire::Blocks>(wire::Block{0, "aaron", true}).users ==
        std::vector<std::string>{"aaron", "bob"});
  CHECK(alice.ask_for<wire::Blocks>(wire::ListBlocks{}).users ==
        std::vector<std::string>{"aaron", "bob"});
  CHECK(bob.ask_for<wire::Blocks>(wire::ListBlocks{}).users.empty());

  // Both directions, each told who blocks.
  auto mine = alice.refused(from_alice, "blocked");
  CHECK(mine.message == "you have blocked \"bob\"");
  CHECK(mine.id == from_alice.id);
  auto theirs = bob.refused(from_bob, "blocked");
  CHECK(theirs.message == "\"alice\" has blocked you");
  alice.refused(wire::OpenDirect{0, "bob"}, "blocked");
  bob.refused(wire::OpenDirect{0, "alice"}, "blocked");
  alice.refused(bundle("bob"), "blocked");
  bob.refused(bundle("alice"), "blocked");
  bob.refused(bundle("alice", true), "blocked");
  alice.refused(wire::Typing{0, dm, true}, "blocked");
  bob.refused(wire::Typing{0, dm, true}, "blocked");
  bob.refused(wire::E2eRetry{0, dm, before}, "blocked");
  wire::Envelope to_bob = fake_e2e("a1", "bob", "b1").to[0];
  alice.refused(wire::E2eResend{0, dm, before, to_bob}, "blocked");
  CHECK(no_notice(bob));
  // Shared channels are unchanged; so is one's own bundle.
  CHECK(bob.sent("lobby", "still here").seq > 0);
  CHECK(alice.ask_for<wire::Bundles>(bundle("alice", true)).devices.size() == 1);

  alice.refused(wire::Block{0, "alice", std::nullopt}, "invalid_user");
  alice.refused(wire::Block{0, "not a name", std::nullopt}, "invalid_user");

  // Kept across a restart.
  server.restart();
  UserSession alice2(server, "alice", false, "a1");
  UserSession bob2(server, "bob", false, "b1");
  CHECK(alice2.ask_for<wire::Blocks>(wire::ListBlocks{}).users ==
        std::vector<std::string>{"aaron", "bob"});
  bob2.refused(from_bob, "blocked");

  // Unblocked: everything works again.
  CHECK(alice2.ask_for<wire::Blocks>(wire::Block{0, "bob", false}).users ==
        std::vector<std::string>{"aaron"});
  CHECK(alice2.ask_for<wire::Blocks>(wire::Block{0, "bob", false}).users ==
        std::vector<std::string>{"aaron"});  // a repeat changes nothing
  alice2.ask_for<wire::Ack>(from_alice);
  bob2.ask_for<wire::Ack>(from_bob);
  alice2.ok(wire::OpenDirect{0, "bob"});
  bob2.ask_for<wire::Bundles>(bundle("alice"));
  alice2.ok(wire::E2eResend{0, dm, before, to_bob});
  CHECK(metric(server.port(), "parley_blocks_total{action=\"unblock\"}") == 1);
}

TEST_CASE("recovery: retry and resend notices, live and after a welcome, until acked") {
  TestServer server;
  auto alice = std::make_unique<UserSession>(server, "alice", false, "phone");
  UserSession bob_phone(server, "bob", false, "phone");
  auto bob_laptop = std::make_unique<UserSession>(server, "bob", false, "laptop");
  UserSession carol(server, "carol", false, "c1");
  alice->publish_keys();
  bob_phone.publish_keys();
  bob_laptop->publish_keys();
  const std::string dm = alice->ok(wire::OpenDirect{0, "bob"}).channel;
  wire::Send sent = alice->e2e_message(dm, "bob");
  auto ack = alice->ask_for<wire::Ack>(sent);
  auto delivered = bob_laptop->event("message");
  REQUIRE(delivered.e2e.has_value());
  REQUIRE(delivered.e2e->tag.has_value());

  // The laptop cannot decrypt: the sending device hears of it.
  bob_laptop->ok(wire::E2eRetry{0, dm, ack.seq});
  auto retry = next_notice(*alice);
  CHECK(retry.kind == "retry");
  CHECK(retry.channel == dm);
  CHECK(retry.seq == ack.seq);
  CHECK(retry.id == sent.id);
  CHECK(retry.user == "bob");
  CHECK(retry.device == "laptop");
  CHECK(retry.ts == ack.ts);
  CHECK_FALSE(retry.envelope.has_value());
  // A repeat is fine, and makes no second notice; another device's does.
  bob_laptop->ok(wire::E2eRetry{0, dm, ack.seq});
  CHECK(no_notice(*alice));
  bob_phone.ok(wire::E2eRetry{0, dm, ack.seq});
  auto second = next_notice(*alice);
  CHECK(second.device == "phone");
  CHECK(second.nid > retry.nid);

  // Refusals.
  carol.refused(wire::E2eRetry{0, dm, ack.seq}, "not_member");
  bob_phone.refused(wire::E2eRetry{0, dm, 1}, "no_such_message");  // the create event
  bob_phone.refused(wire::E2eRetry{0, dm, 99}, "no_such_message");
  {
    UserSession bob_tablet(server, "bob", false, "tablet");  // not a recipient
    bob_tablet.publish_keys();
    auto e = bob_tablet.refused(wire::E2eRetry{0, dm, ack.seq}, "invalid_e2e");
    CHECK(has(e.message, "not addressed to this device"));
  }

  // Queued for the device: after each welcome until acked, oldest first.
  alice.reset();
  alice = std::make_unique<UserSession>(server, "alice", false, "phone");
  auto first_again = next_notice(*alice);
  CHECK(first_again.nid == retry.nid);
  CHECK(next_notice(*alice).nid == second.nid);
  alice->ok(wire::E2eAck{0, retry.nid});
  alice->ok(wire::E2eAck{0, retry.nid});      // idempotent
  bob_phone.ok(wire::E2eAck{0, second.nid});  // not bob's: nothing happens
  alice.reset();
  alice = std::make_unique<UserSession>(server, "alice", false, "phone");
  CHECK(next_notice(*alice).nid == second.nid);
  CHECK(no_notice(*alice));

  // The resend: to the device that asked, with the original's commit and tag.
  wire::Envelope again{"bob", "laptop", std::nullopt, random_base64(90)};
  alice->ok(wire::E2eResend{0, dm, ack.seq, again});
  auto resend = next_notice(*bob_laptop);
  CHECK(resend.kind == "resend");
  CHECK(resend.seq == ack.seq);
  CHECK(resend.id == sent.id);
  CHECK(resend.user == "alice");
  CHECK(resend.device == "phone");
  CHECK(resend.ts == ack.ts);
  REQUIRE(resend.envelope.has_value());
  CHECK(resend.envelope->body == again.body);
  CHECK(resend.commit == sent.e2e->commit);
  CHECK(resend.tag == delivered.e2e->tag);
  CHECK(no_notice(bob_phone));

  // Refused: to a device that did not ask, malformed, from another device or user.
  auto e = alice->refused(wire::E2eResend{0, dm, ack.seq, {"bob", "tablet", std::nullopt,
                                                          random_base64(90)}},
                          "invalid_e2e");
  CHECK(has(e.message, "did not ask"));
  alice->refused(wire::E2eResend{0, dm, ack.seq, {"bob", "phone", std::nullopt, "****"}},
                 "invalid_e2e");
  {
    UserSession alice_laptop(server, "alice", false, "laptop");
    alice_laptop.publish_keys();
    alice_laptop.refused(wire::E2eResend{0, dm, ack.seq, again}, "forbidden");
  }
  bob_phone.refused(wire::E2eResend{0, dm, ack.seq, {"bob", "laptop", std::nullopt,
                                                     random_base64(90)}},
                    "forbidden");
  carol.refused(wire::E2eResend{0, dm, ack.seq, again}, "not_member");

  // Acked: not delivered again.
  bob_laptop->ok(wire::E2eAck{0, resend.nid});
  bob_laptop.reset();
  bob_laptop = std::make_unique<UserSession>(server, "bob", false, "laptop");
  CHECK(no_notice(*bob_laptop));
  // Once answered, a new retry makes a new notice.
  bob_laptop->ok(wire::E2eRetry{0, dm, ack.seq});
  CHECK(next_notice(*alice).device == "laptop");

  CHECK(metric(server.port(), "parley_e2e_retries_total") == 3);
  CHECK(metric(server.port(), "parley_e2e_resends_total") == 1);

  // The sending device gone: nothing to ask.
  alice->ok(wire::RemoveDevice{0, "phone"});
  bob_phone.refused(wire::E2eRetry{0, dm, ack.seq}, "no_such_device");
}

TEST_CASE("reports: a direct message is reported with its franking opening") {
  TestServer server;
  UserSession alice(server, "alice", false, "phone");
  UserSession bob(server, "bob", false, "b1");
  UserSession carol(server, "carol", false, "c1");
  alice.publish_keys();
  bob.publish_keys();
  const std::string dm = alice.ok(wire::OpenDirect{0, "bob"}).channel;

  const std::string text = "buy cheap pills at example.com";
  const crypto::Key32 key = crypto::new_franking_key();
  crypto::Key32 commit{};
  wire::Send sent = alice.e2e_message(dm, "bob");
  REQUIRE(crypto::franking_commit(key, sent.id, "alice", dm, text, &commit));
  sent.e2e->commit = b64(commit);
  auto ack = alice.ask_for<wire::Ack>(sent);
  auto event = bob.event("message");
  REQUIRE(event.e2e.has_value());
  REQUIRE(event.e2e->tag.has_value());
  CHECK(event.ts == ack.ts);

  const wire::FrankingOpening truth{"alice", "phone", sent.id, event.ts, text, b64(key),
                                    b64(commit), *event.e2e->tag};
  auto report = [&](wire::FrankingOpening opening, std::uint64_t seq = 0) {
    return wire::Report{0, dm, seq == 0 ? ack.seq : seq, "spam", std::move(opening)};
  };
  auto invalid = [&](UserSession& who, wire::Report r, const std::string& part) {
    auto e = who.refused(r, "invalid_report");
    CHECK_MESSAGE(has(e.message, part), e.message);
  };

  {
    auto o = truth;
    o.text = "something alice never wrote";
    invalid(bob, report(o), "commitment");
  }
  {
    auto o = truth;
    o.tag = random_base64(32);
    invalid(bob, report(o), "delivered");
  }
  {
    auto o = truth;
    o.ts += 1;  // the tag binds the server time
    invalid(bob, report(o), "delivered");
  }
  {
    auto o = truth;
    o.device = "laptop";
    invalid(bob, report(o), "delivered");
  }
  {
    auto o = truth;
    o.key = random_base64(31);
    invalid(bob, report(o), "e2e.key");
  }
  invalid(bob, report(truth, 1), "seq 1");  // another event than the one disclosed
  // A seq not used yet: refused, or a message landing there later would be blamed.
  invalid(bob, report(truth, ack.seq + 1), fmt::format("no message at seq {}", ack.seq + 1));
  invalid(bob, report(truth, ack.seq + 1000), "no message at seq");
  invalid(bob, wire::Report{0, dm, ack.seq, "spam", std::nullopt}, "e2e");
  // Only the recipient reports, and never their own message.
  auto outsider = carol.refused(report(truth), "not_member");
  CHECK(has(outsider.message, "non-recipient"));
  invalid(alice, report(truth), "own");
  {
    // Alice's own message passed off as bob's.
    auto o = truth;
    o.sender = "bob";
    invalid(alice, report(o), "commitment");
  }

  // The true one is accepted and listed with the disclosed text.
  bob.ok(report(truth));
  UserSession root(server, "root", /*admin=*/true);
  auto listed = root.ask_for<wire::AdminResult>(admin_reports());
  REQUIRE(listed.reports.has_value());
  REQUIRE(listed.reports->size() == 1);
  const wire::AdminReport& r = (*listed.reports)[0];
  CHECK(r.channel == dm);
  CHECK(r.seq == ack.seq);
  CHECK(r.reporter == "bob");
  CHECK(r.sender == "alice");
  CHECK(r.reason == "spam");
  CHECK(r.text == text);
  CHECK(r.verified == std::optional<bool>(true));

  // The server's franking key outlives a restart; deletion does not erase the report.
  alice.ok(wire::DeleteMessage{0, dm, ack.seq});
  server.restart();
  UserSession bob2(server, "bob", false, "b1");
  bob2.ok(report(truth));
  UserSession root2(server, "root", /*admin=*/true);
  listed = root2.ask_for<wire::AdminResult>(admin_reports());
  REQUIRE(listed.reports->size() == 2);
  CHECK((*listed.reports)[0].text == text);
  CHECK((*listed.reports)[1].text == text);
  CHECK(metric(server.port(), "parley_reports_verified_total") == 1);  // since the restart
  // The database holding the franking key is the owner's only.
  using std::filesystem::perms;
  auto mode = std::filesystem::status(server.dir.path / "server.db").permissions();
  CHECK((mode & (perms::group_all | perms::others_all)) == perms::none);
}

TEST_CASE("notifications: a direct message notifies the peer by their level") {
  TestServer server;
  UserSession alice(server, "alice", false, "a1");
  UserSession bob(server, "bob", false, "b1");
  alice.publish_keys();
  bob.publish_keys();
  const std::string dm = alice.ok(wire::OpenDirect{0, "bob"}).channel;
  // Bob's connection that asked for notifications (its device has no keys).
  Peer watcher(server.port());
  watcher.send(R"({"type":"auth","rid":1,"token":")" + server.token("bob") +
               R"(","device":"n1","notifications":true})");
  watcher.expect<wire::Welcome>();

  auto notified = [&]() {
    std::vector<wire::NotificationEvent> out;
    while (!watcher.quiet(std::chrono::milliseconds(300))) {
      wire::ServerMessage m = watcher.next();
      if (auto* n = std::get_if<wire::NotificationEvent>(&m)) out.push_back(*n);
    }
    return out;
  };
  auto level = [&](const std::string& value, std::optional<std::int64_t> mute_until) {
    bob.ok(wire::Notify{0, dm, value, mute_until});
    notified();  // the notify event
  };
  const std::int64_t in_an_hour = unix_now() * 1000 + 3600 * 1000;

  std::uint64_t seq = alice.sent_e2e(dm, "bob").seq;
  auto got = notified();
  REQUIRE(got.size() == 1);
  CHECK(got[0].kind == "message");
  CHECK(got[0].seq == seq);
  CHECK(got[0].sender == "alice");

  level("mentions", std::nullopt);  // every direct message counts as a mention
  alice.sent_e2e(dm, "bob");
  got = notified();
  REQUIRE(got.size() == 1);
  CHECK(got[0].kind == "mention");

  level("none", std::nullopt);
  alice.sent_e2e(dm, "bob");
  CHECK(notified().empty());

  level("all", in_an_hour);  // muted
  alice.sent_e2e(dm, "bob");
  CHECK(notified().empty());
  level("mentions", in_an_hour);
  alice.sent_e2e(dm, "bob");
  CHECK(notified().empty());

  level("all", std::nullopt);
  alice.sent_e2e(dm, "bob");
  got = notified();
  REQUIRE(got.size() == 1);
  CHECK(got[0].kind == "message");
}

TEST_CASE("recovery: at most kMaxNoticesPerDevice notices wait for one device") {
  TestServer server;
  std::vector<std::unique_ptr<UserSession>> bob;
  for (std::size_t i = 0; i < wire::kMaxDevicesPerUser; ++i) {
    bob.push_back(std::make_unique<UserSession>(server, "bob", false, fmt::format("b{}", i)));
    bob.back()->publish_keys();
  }
  const std::size_t per_device = wire::kMaxNoticesPerDevice / wire::kMaxDevicesPerUser;
  REQUIRE(per_device * wire::kMaxDevicesPerUser == wire::kMaxNoticesPerDevice);
  std::string dm;
  std::vector<std::uint64_t> seqs;
  {
    UserSession alice(server, "alice", false, "phone");
    alice.publish_keys();
    dm = alice.ok(wire::OpenDirect{0, "bob"}).channel;
    for (std::size_t i = 0; i <= per_device; ++i) seqs.push_back(alice.sent_e2e(dm, "bob").seq);
  }
  for (std::size_t i = 0; i < per_device; ++i) {
    for (auto& device : bob) device->ok(wire::E2eRetry{0, dm, seqs[i]});
  }
  auto e = bob[0]->refused(wire::E2eRetry{0, dm, seqs[per_device]}, "rate_limited");
  CHECK(has(e.message, "phone"));
  // A welcome brings the oldest kNoticesPerWelcome; acking makes room.
  UserSession alice(server, "alice", false, "phone");
  std::uint64_t last_nid = 0;
  std::uint64_t first_nid = 0;
  for (std::uint32_t i = 0; i < server::kNoticesPerWelcome; ++i) {
    auto notice = next_notice(alice);
    CHECK(notice.nid > last_nid);
    if (i == 0) first_nid = notice.nid;
    last_nid = notice.nid;
  }
  CHECK(no_notice(alice));
  alice.ok(wire::E2eAck{0, first_nid});
  bob[0]->ok(wire::E2eRetry{0, dm, seqs[per_device]});
  CHECK(next_notice(alice).seq == seqs[per_device]);
}

TEST_CASE("recovery: one resend per retry, and at most kMaxRetryRounds retries per device") {
  TestServer server;
  UserSession alice(server, "alice", false, "phone");
  UserSession bob(server, "bob", false, "laptop");
  alice.publish_keys();
  bob.publish_keys();
  const std::string dm = alice.ok(wire::OpenDirect{0, "bob"}).channel;
  const std::uint64_t seq = alice.sent_e2e(dm, "bob").seq;
  wire::Envelope again{"bob", "laptop", std::nullopt, random_base64(90)};

  for (std::uint32_t round = 1; round <= server::kMaxRetryRounds; ++round) {
    CAPTURE(round);
    bob.ok(wire::E2eRetry{0, dm, seq});
    CHECK(next_notice(alice).kind == "retry");
    alice.ok(wire::E2eResend{0, dm, seq, again});
    CHECK(next_notice(bob).kind == "resend");
    // The retry is answered: a second resend for it is refused, and sends nothing.
    auto e = alice.refused(wire::E2eResend{0, dm, seq, again}, "invalid_e2e");
    CHECK_MESSAGE(has(e.message, "again already"), e.message);
    CHECK(no_notice(bob));
  }
  // The next retry is one round too many: refused, no notice, no resend possible.
  auto e = bob.refused(wire::E2eRetry{0, dm, seq}, "rate_limited");
  CHECK_MESSAGE(has(e.message, fmt::format("{} times", server::kMaxRetryRounds)), e.message);
  CHECK(no_notice(alice));
  alice.refused(wire::E2eResend{0, dm, seq, again}, "invalid_e2e");
  CHECK(metric(server.port(), "parley_e2e_retries_total") == server::kMaxRetryRounds);
  CHECK(metric(server.port(), "parley_e2e_resends_total") == server::kMaxRetryRounds);
  // The count is per message and device: another message still has its rounds.
  const std::uint64_t next = alice.sent_e2e(dm, "bob").seq;
  bob.ok(wire::E2eRetry{0, dm, next});
  CHECK(next_notice(alice).seq == next);
  // And it outlives a restart (it is in the store).
  server.restart();
  UserSession bob2(server, "bob", false, "laptop");
  bob2.refused(wire::E2eRetry{0, dm, seq}, "rate_limited");
}

TEST_CASE("devices: at most kMaxRemovedDevices device ids are removed per user") {
  TestServer server;
  {
    UserSession phone(server, "alice", false, "phone");
    phone.publish_keys();
  }
  // kMaxRemovedDevices - 1 removals straight into the store (publishing that
  // many devices would be slow), the server stopped meanwhile.
  server.server->stop();
  server.server.reset();
  {
    auto store = server::ServerStore::open((server.dir.path / "server.db").string());
    REQUIRE(store.ok());
    for (std::uint64_t i = 0; i + 1 < server::kMaxRemovedDevices; ++i) {
      REQUIRE((*store)->remove_device("alice", fmt::format("old-{}", i), 1).ok());
    }
    CHECK(*(*store)->count_removed_devices("alice") == server::kMaxRemovedDevices - 1);
    CHECK(*(*store)->count_removed_devices("bob") == 0);
  }
  server.start();
  UserSession phone(server, "alice", false, "phone");
  auto laptop = std::make_unique<UserSession>(server, "alice", false, "laptop");
  auto tablet = std::make_unique<UserSession>(server, "alice", false, "tablet");
  laptop->publish_keys();
  tablet->publish_keys();
  // The last one allowed.
  phone.ok(wire::RemoveDevice{0, "laptop"});
  CHECK(next_error(*laptop).code == "device_removed");
  // Beyond: refused, and the device stays.
  auto e = phone.refused(wire::RemoveDevice{0, "tablet"}, "too_many_devices");
  CHECK_MESSAGE(has(e.message, fmt::format("has removed {} devices", server::kMaxRemovedDevices)),
                e.message);
  CHECK_MESSAGE(has(e.message, "\"tablet\" stays"), e.message);
  tablet->publish_keys();  // still a device with keys
  UserSession bob(server, "bob", false, "b1");
  CHECK(devices_in(bob.ask_for<wire::Bundles>(bundle("alice", true))) ==
        std::vector<std::string>{"phone", "tablet"});
  // Another user is not counted against alice.
  UserSession bob_old(server, "bob", false, "b2");
  bob_old.publish_keys();
  bob.ok(wire::RemoveDevice{0, "b2"});
}

TEST_CASE("devices: when the store cannot say whether a device was removed, auth is an internal "
          "error") {
  TestServer server;
  {
    UserSession phone(server, "alice", false, "phone");
    phone.publish_keys();
  }
  auto db = store::Database::open((server.dir.path / "server.db").string());
  REQUIRE(db.ok());
  // The table out of the way: the server's lookup fails.
  REQUIRE(db->exec("ALTER TABLE removed_devices RENAME TO removed_devices_away").ok());
  int close_code = 0;
  auto reply = auth_reply(server, "alice", "phone", &close_code);
  REQUIRE(std::holds_alternative<wire::Error>(reply));
  CHECK(std::get<wire::Error>(reply).code == "internal");  // never device_removed
  CHECK(close_code == 1011);                             // not a 4xxx refusal: retry later
  CHECK(metric(server.port(), "parley_auth_failures_total{reason=\"internal\"}") == 1);
  CHECK(metric(server.port(), "parley_auth_failures_total{reason=\"device_removed\"}") <= 0);
  // Back: the same device is welcome again.
  REQUIRE(db->exec("ALTER TABLE removed_devices_away RENAME TO removed_devices").ok());
  UserSession phone(server, "alice", false, "phone");  // welcomed
  CHECK(phone.ask_for<wire::KeysState>(DeviceKeys().first(1)).one_time == 1);
}
