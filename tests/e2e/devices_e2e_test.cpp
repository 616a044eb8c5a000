// Several devices per user, removing a device, blocking and reports of
// direct messages, through real processes: parley-cli --batch against
// parley-server on 127.0.0.1 (docs/cli.md, "Devices, blocking and reports").
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "harness.hpp"
#include "steps.hpp"

namespace parley_e2e {
namespace {

const Pred kReady = [](const JsonLine& l) { return l.is("state") && l.get("state") == "ready"; };

// One device of a user: its own data directory and device id, and the
// parley-cli running on it.
struct Device {
  std::string user;
  std::string id;
  std::string token;
  std::string data;
  std::unique_ptr<Cli> cli{};

  std::string name() const { return user + "/" + id; }

  void start(const std::string& url) {
    cli = std::make_unique<Cli>(url, token, data, std::vector<std::string>{"--device-id", id});
    REQUIRE(cli->started());
    need(*cli, kReady, name() + " ready");
  }
  void stop() {
    REQUIRE(cli);
    CHECK(cli->bad_lines().empty());
    CHECK(cli->finish() == 0);
    cli.reset();
  }
};

Device device(const World& w, const std::string& user, const std::string& token,
              const std::string& id) {
  return Device{user, id, token, w.tmp.sub(user + "-" + id)};
}

// A DM sent with `/dm PEER TEXT` from `from`; waits until the server has it.
// Returns the message id.
std::string send_dm(Device& from, const std::string& peer, const std::string& text) {
  Cli& cli = *from.cli;
  cli.send("/dm " + peer + " " + text);
  const JsonLine pending = need(
      cli, [](const JsonLine& l) { return l.is("pending"); }, "pending of a DM");
  const std::string id = pending.get("id");
  CHECK(pending.get("channel") == "@" + peer);
  const JsonLine result = need(
      cli, [&](const JsonLine& l) { return l.is_result("dm") || (l.is("error") && !l.has("id")); },
      "the result of /dm");
  INFO(result.raw);
  REQUIRE(result.is_result("dm"));
  const JsonLine sent = need(
      cli, [&](const JsonLine& l) { return (l.is("sent") || l.is("error")) && l.get("id") == id; },
      from.name() + ": sent " + id);
  INFO(sent.raw);
  REQUIRE(sent.is("sent"));
  CHECK(sent.get("channel") == "@" + peer);
  return id;
}

// Waits for the DM `id` at `at`, which names the channel "@channel_peer".
JsonLine receive(Device& at, const std::string& id, const std::string& channel_peer,
                 const std::string& sender, const std::string& text) {
  const JsonLine got = need(*at.cli, with_id("message", id), "the DM " + id + " at " + at.name());
  CHECK(got.get("channel") == "@" + channel_peer);
  CHECK(got.get("sender") == sender);
  CHECK(got.get("e2e") == "true");
  CHECK_FALSE(got.has("e2e_error"));
  CHECK(got.get("text") == text);
  return got;
}

// `from` writes `text` to `peer`; every device in `others` (of either user,
// the sender's other devices included) receives it with its text.
std::string converse(Device& from, const std::string& peer, const std::string& text,
                     const std::vector<Device*>& others) {
  const std::string id = send_dm(from, peer, text);
  for (Device* d : others) {
    receive(*d, id, d->user == from.user ? peer : from.user, from.user, text);
  }
  return id;
}

// The message lines of `cli` for channel `channel`, in order.
std::vector<JsonLine> messages_in(const Cli& cli, const std::string& channel) {
  std::vector<JsonLine> out;
  for (const JsonLine& l : cli.lines()) {
    if (l.is("message") && l.get("channel") == channel) out.push_back(l);
  }
  return out;
}

// The message lines /history prints before its result.
std::vector<JsonLine> history(Cli& cli, const std::string& channel, int n) {
  const JsonLine result = ok(cli, "/history " + channel + " " + std::to_string(n), "history");
  const std::size_t end = index_of(cli, result);
  const std::size_t count = result.num("count");
  REQUIRE(end >= count);
  return std::vector<JsonLine>(cli.lines().begin() + static_cast<std::ptrdiff_t>(end - count),
                               cli.lines().begin() + static_cast<std::ptrdiff_t>(end));
}

// "abcd 1234 ..." : 16 groups of 4 lowercase hex digits.
bool is_fingerprint(const std::string& s) {
  if (s.size() != 16 * 4 + 15) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool space = i % 5 == 4;
    const char c = s[i];
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    if (space ? c != ' ' : !hex) return false;
  }
  return true;
}

// /devices: its device lines (before the result), by device id -> the line.
std::vector<JsonLine> devices(Cli& cli) {
  const JsonLine result = ok(cli, "/devices", "devices");
  const std::size_t end = index_of(cli, result);
  const std::size_t count = result.num("count");
  REQUIRE(end >= count);
  std::vector<JsonLine> out(cli.lines().begin() + static_cast<std::ptrdiff_t>(end - count),
                            cli.lines().begin() + static_cast<std::ptrdiff_t>(end));
  for (const JsonLine& l : out) {
    CHECK(l.is("device"));
    CHECK(is_fingerprint(l.get("fingerprint")));
  }
  return out;
}

std::set<std::string> device_ids(const std::vector<JsonLine>& lines) {
  std::set<std::string> out;
  for (const JsonLine& l : lines) out.insert(l.get("device"));
  return out;
}

// The seq of our message `id`, from its sent line (0 if none was printed).
std::uint64_t sent_seq(const Cli& cli, const std::string& id) {
  for (const JsonLine& l : cli.lines()) {
    if (l.is("sent") && l.get("id") == id) return l.num("seq");
  }
  return 0;
}

// The error line closing a command, or the result; must be an error with `code`.
void refused_with(Cli& cli, const std::string& command, const std::string& code) {
  const JsonLine line = refused(cli, command);
  INFO(command << " answered " << line.raw);
  CHECK(line.get("code") == code);
}

}  // namespace

TEST_CASE("two devices each: every device has the whole conversation; devices come and go") {
  World w;
  Device a1 = device(w, "alice", w.alice, "alice-laptop");
  Device a2 = device(w, "alice", w.alice, "alice-phone");
  Device b1 = device(w, "bob", w.bob, "bob-laptop");
  Device b2 = device(w, "bob", w.bob, "bob-phone");
  for (Device* d : {&a1, &a2, &b1, &b2}) d->start(w.server.url());

  // A conversation from all four devices; each one sees every message it did
  // not send itself, the sender's other device included.
  struct Said {
    Device* from;
    std::string id;
    std::string text;
  };
  std::vector<Said> said;
  auto say = [&](Device& from, const std::string& text) {
    std::vector<Device*> others;
    for (Device* d : {&a1, &a2, &b1, &b2}) {
      if (d != &from) others.push_back(d);
    }
    const std::string peer = from.user == "alice" ? "bob" : "alice";
    said.push_back({&from, converse(from, peer, text, others), text});
  };
  say(a1, "first-from-alice-laptop 11");
  say(b2, "first-from-bob-phone 22");
  say(a2, "then-alice-phone 33");
  say(b1, "then-bob-laptop 44");
  say(a1, "alice-laptop-again 55");

  for (Device* d : {&a1, &a2, &b1, &b2}) {
    INFO(d->name());
    const std::string channel = d->user == "alice" ? "@bob" : "@alice";
    // Live: exactly the messages of the others, once each, in order.
    std::vector<std::string> expected;
    for (const Said& s : said) {
      if (s.from != d) expected.push_back(s.id);
    }
    std::vector<std::string> got;
    const std::vector<JsonLine> lines = messages_in(*d->cli, channel);
    for (const JsonLine& l : lines) got.push_back(l.get("id"));
    CHECK(got == expected);
    for (std::size_t i = 1; i < lines.size(); ++i) {
      CHECK(lines[i - 1].num("seq") < lines[i].num("seq"));
    }
    // History: the whole conversation with its texts, its own messages included.
    const std::vector<JsonLine> h = history(*d->cli, channel, 20);
    REQUIRE(h.size() == said.size());
    for (std::size_t i = 0; i < said.size(); ++i) {
      CHECK(h[i].get("id") == said[i].id);
      CHECK(h[i].get("text") == said[i].text);
      CHECK(h[i].get("sender") == said[i].from->user);
      CHECK_FALSE(h[i].has("e2e_error"));
    }
  }

  // /devices: both of alice's devices, the same fingerprints on each, the
  // current one marked.
  const std::vector<JsonLine> at_a1 = devices(*a1.cli);
  const std::vector<JsonLine> at_a2 = devices(*a2.cli);
  CHECK(device_ids(at_a1) == std::set<std::string>{"alice-laptop", "alice-phone"});
  REQUIRE(at_a1.size() == at_a2.size());
  for (std::size_t i = 0; i < at_a1.size(); ++i) {
    CHECK(at_a1[i].get("device") == at_a2[i].get("device"));
    CHECK(at_a1[i].get("fingerprint") == at_a2[i].get("fingerprint"));
    CHECK(at_a1[i].get("current") == (at_a1[i].get("device") == "alice-laptop" ? "true" : "false"));
    CHECK(at_a2[i].get("current") == (at_a2[i].get("device") == "alice-phone" ? "true" : "false"));
  }
  CHECK(at_a1[0].get("fingerprint") != at_a1[1].get("fingerprint"));
  CHECK(device_ids(devices(*b1.cli)) == std::set<std::string>{"bob-laptop", "bob-phone"});

  // A third device of alice's: it gets the DMs sent after it connected, from
  // bob's devices (which learn of it) and from alice's other devices.
  Device a3 = device(w, "alice", w.alice, "alice-tablet");
  a3.start(w.server.url());
  const std::string to_tablet = "hello-new-tablet 66";
  const std::string id6 = converse(b1, "alice", to_tablet, {&a1, &a2, &a3, &b2});
  const std::string from_tablet = "tablet-writes-back 77";
  converse(a3, "bob", from_tablet, {&a1, &a2, &b1, &b2});
  converse(a2, "bob", "phone-to-all-three 88", {&a1, &a3, &b1, &b2});
  CHECK(device_ids(devices(*a1.cli)) ==
        std::set<std::string>{"alice-laptop", "alice-phone", "alice-tablet"});
  CHECK(device_ids(devices(*a3.cli)) ==
        std::set<std::string>{"alice-laptop", "alice-phone", "alice-tablet"});
  // Bob's devices were told of the new device of alice's.
  const std::optional<JsonLine> news = b1.cli->expect(
      [](const JsonLine& l) {
        return l.is("identity_changed") && l.get("user") == "alice" &&
               l.get("device") == "alice-tablet";
      },
      5s);
  CHECK(news.has_value());
  if (news) {
    CHECK(news->get("new_device") == "true");
    CHECK(news->get("removed_device") == "false");
  }
  (void)id6;

  // Removing a device: alice's laptop removes her phone. The phone is cut
  // off at once (device_removed, exit 2) and gets nothing new.
  refused_with(*a1.cli, "/device-remove alice-watch", "no_such_device");
  refused_with(*a1.cli, "/device-remove", "bad_command");
  const JsonLine removed = ok(*a1.cli, "/device-remove alice-phone", "device-remove");
  CHECK(removed.get("device") == "alice-phone");
  const JsonLine cut = need(
      *a2.cli, [](const JsonLine& l) { return l.is("error"); }, "the phone cut off");
  CHECK(cut.get("code") == "device_removed");
  CHECK(a2.cli->wait_exit() == 2);
  CHECK(a2.cli->bad_lines().empty());
  const std::size_t phone_lines = a2.cli->lines().size();

  const std::string after = "after-the-phone-is-gone 99";
  const std::string id9 = converse(b2, "alice", after, {&a1, &a3, &b1});
  converse(a1, "bob", "laptop-after-removal 10", {&a3, &b1, &b2});
  CHECK(a2.cli->lines().size() == phone_lines);
  for (const JsonLine& l : a2.cli->lines()) CHECK(l.get("id") != id9);
  CHECK(device_ids(devices(*a3.cli)) == std::set<std::string>{"alice-laptop", "alice-tablet"});
  // Bob's device that sent learnt that the phone is gone.
  const std::optional<JsonLine> gone = b2.cli->expect(
      [](const JsonLine& l) {
        return l.is("identity_changed") && l.get("user") == "alice" &&
               l.get("device") == "alice-phone" && l.get("removed_device") == "true";
      },
      5s);
  CHECK(gone.has_value());
  if (gone) CHECK(gone->get("new_device") == "false");

  // The removed id is refused for good: with its old data, and as a new install.
  for (const std::string& data : {a2.data, w.tmp.sub("alice-phone-reinstalled")}) {
    INFO(data);
    Cli again(w.server.url(), w.alice, data, {"--device-id", "alice-phone"});
    REQUIRE(again.started());
    const JsonLine refused_line = need(
        again, [](const JsonLine& l) { return l.is("error"); }, "the refusal of alice-phone");
    CHECK(refused_line.get("code") == "device_removed");
    CHECK(again.wait_exit() == 2);
    for (const JsonLine& l : again.lines()) CHECK_FALSE(l.is("message"));
  }

  a2.cli.reset();
  for (Device* d : {&a1, &a3, &b1, &b2}) d->stop();
}

TEST_CASE("/block refuses DMs both ways until /unblock") {
  World w;
  Device a = device(w, "alice", w.alice, "alice-1");
  Device b = device(w, "bob", w.bob, "bob-1");
  a.start(w.server.url());
  b.start(w.server.url());
  converse(a, "bob", "before-the-block 1", {&b});
  converse(b, "alice", "reply-before-the-block 2", {&a});

  refused_with(*a.cli, "/block", "bad_command");
  refused_with(*a.cli, "/block alice", "invalid_user");
  refused_with(*a.cli, "/block bad+name", "invalid_user");
  JsonLine blocked = ok(*a.cli, "/block bob", "block");
  CHECK(blocked.get("user") == "bob");
  CHECK(blocked.get("blocked") == "bob");
  CHECK(blocked.num("count") == 1);
  blocked = ok(*a.cli, "/blocked", "blocked");
  CHECK(blocked.get("blocked") == "bob");
  CHECK(blocked.num("count") == 1);
  CHECK_FALSE(blocked.has("user"));
  blocked = ok(*b.cli, "/blocked", "blocked");
  CHECK(blocked.get("blocked") == "");
  CHECK(blocked.num("count") == 0);

  // Both directions fail with "blocked", naming who blocks.
  auto send_refused = [](Device& from, const std::string& peer, const std::string& text) {
    const JsonLine sent = ok(*from.cli, "/send @" + peer + " " + text, "send");
    const std::string id = sent.get("id");
    need(*from.cli, with_id("pending", id), "pending " + id);
    const JsonLine failed = need(
        *from.cli,
        [&](const JsonLine& l) { return (l.is("error") || l.is("sent")) && l.get("id") == id; },
        "the refusal of " + id);
    INFO(failed.raw);
    CHECK(failed.is_error("blocked"));
    return failed;
  };
  const JsonLine by_alice = send_refused(a, "bob", "while-blocked-from-alice 3");
  CHECK(by_alice.get("message").find("you have blocked") != std::string::npos);
  const JsonLine by_bob = send_refused(b, "alice", "while-blocked-from-bob 4");
  CHECK(by_bob.get("message").find("has blocked you") != std::string::npos);
  refused_with(*b.cli, "/dm alice", "blocked");

  JsonLine unblocked = ok(*a.cli, "/unblock bob", "unblock");
  CHECK(unblocked.get("user") == "bob");
  CHECK(unblocked.get("blocked") == "");
  CHECK(unblocked.num("count") == 0);
  converse(a, "bob", "after-the-unblock 5", {&b});
  converse(b, "alice", "reply-after-the-unblock 6", {&a});
  // Nothing sent while blocked ever arrived.
  for (Device* d : {&a, &b}) {
    for (const JsonLine& l : d->cli->lines()) {
      CHECK(l.get("text").find("while-blocked") == std::string::npos);
    }
  }
  a.stop();
  b.stop();
}

TEST_CASE("/report-dm reports a received DM; own, unknown and undecided ones are refused") {
  World w;
  Device a = device(w, "alice", w.alice, "alice-1");
  Device b = device(w, "bob", w.bob, "bob-1");
  a.start(w.server.url());
  b.start(w.server.url());
  const std::string own = send_dm(a, "bob", "hello-bob 1");
  const std::uint64_t own_seq = sent_seq(*a.cli, own);
  REQUIRE(own_seq > 0);
  const std::string id = send_dm(b, "alice", "buy-cheap-watches 2");
  const JsonLine got = receive(a, id, "bob", "bob", "buy-cheap-watches 2");
  const std::uint64_t seq = got.num("seq");

  const JsonLine reported =
      ok(*a.cli, "/report-dm bob " + std::to_string(seq) + " spam, twice", "report-dm");
  CHECK(reported.get("channel") == "@bob");
  CHECK(reported.get("user") == "bob");
  CHECK(reported.num("ref") == seq);

  refused_with(*a.cli, "/report-dm bob " + std::to_string(own_seq) + " mine", "invalid_report");
  refused_with(*a.cli, "/report-dm bob 999 nothing there", "no_such_message");
  refused_with(*a.cli, "/report-dm carol 1 no such channel", "no_such_message");
  refused_with(*a.cli, "/report-dm bob 0 zero", "bad_command");
  refused_with(*a.cli, "/report-dm bob 3", "bad_command");
  // /report @bob is the same report.
  const JsonLine plain = ok(*a.cli, "/report @bob " + std::to_string(seq) + " spam", "report");
  CHECK(plain.get("channel") == "@bob");
  CHECK(plain.num("ref") == seq);
  a.stop();
  b.stop();
}

}  // namespace parley_e2e

namespace parley_e2e {

TEST_CASE("a DM this device cannot decrypt is sent again: session_reset, then message_updated") {
  World w;
  Device a = device(w, "alice", w.alice, "alice-1");
  Device b = device(w, "bob", w.bob, "bob-1");
  a.start(w.server.url());
  b.start(w.server.url());
  converse(a, "bob", "first-contact 1", {&b});
  converse(b, "alice", "first-reply 2", {&a});

  // Bob's cache goes back in time (a restored backup): his sessions with
  // alice are older than hers, so her next DM does not decrypt there.
  b.stop();
  const std::string backup = w.tmp.sub("bob-backup");
  std::filesystem::copy(b.data, backup, std::filesystem::copy_options::recursive);
  b.start(w.server.url());
  converse(a, "bob", "while-the-backup-ages 3", {&b});
  converse(b, "alice", "ratchet-turns 4", {&a});
  converse(a, "bob", "and-turns-again 5", {&b});
  b.stop();
  std::filesystem::remove_all(b.data);
  std::filesystem::copy(backup, b.data, std::filesystem::copy_options::recursive);
  b.start(w.server.url());

  // Catching up, bob cannot decrypt "and-turns-again 5": he asks alice's
  // device to send it again, which does so in a new session.
  const JsonLine reset = need(
      *b.cli, [](const JsonLine& l) { return l.is("session_reset"); }, "bob's session_reset");
  CHECK(reset.get("user") == "alice");
  CHECK(reset.get("channel") == "@alice");
  CHECK(reset.get("by_this_device") == "true");
  const std::string reason = reset.get("reason");
  CHECK((reason == "bad_message" || reason == "no_session" || reason == "unknown_prekey"));
  const JsonLine updated = need(
      *b.cli, [](const JsonLine& l) { return l.is("message_updated"); }, "bob's message_updated");
  CHECK(updated.get("channel") == "@alice");
  CHECK(updated.get("sender") == "alice");
  CHECK(updated.get("e2e") == "true");
  CHECK_FALSE(updated.has("e2e_error"));
  CHECK(updated.num("seq") == reset.num("seq"));
  CHECK(updated.get("text") == "and-turns-again 5");
  // The message line printed before it had no text, only the reason.
  bool shown_undecrypted = false;
  for (const JsonLine& l : b.cli->lines()) {
    if (l.is("message") && l.get("id") == updated.get("id")) {
      shown_undecrypted = true;
      CHECK(l.get("e2e_error") == reason);
      CHECK_FALSE(l.has("text"));
      CHECK(l.num("seq") == updated.num("seq"));
    }
  }
  CHECK(shown_undecrypted);
  const JsonLine answered = need(
      *a.cli, [](const JsonLine& l) { return l.is("session_reset"); }, "alice's session_reset");
  CHECK(answered.get("user") == "bob");
  CHECK(answered.get("device") == "bob-1");
  CHECK(answered.get("channel") == "@bob");
  CHECK(answered.num("seq") == reset.num("seq"));
  CHECK(answered.get("reason") == "retry_requested");
  CHECK(answered.get("by_this_device") == "false");

  // The conversation goes on in the new session, and history has the text.
  converse(a, "bob", "after-the-restore 6", {&b});
  converse(b, "alice", "all-good-again 7", {&a});
  bool in_history = false;
  for (const JsonLine& l : history(*b.cli, "@alice", 20)) {
    if (l.get("id") == updated.get("id")) {
      in_history = true;
      CHECK(l.get("text") == "and-turns-again 5");
      CHECK_FALSE(l.has("e2e_error"));
    }
  }
  CHECK(in_history);
  a.stop();
  b.stop();
}

}  // namespace parley_e2e
