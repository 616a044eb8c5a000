// End-to-end encrypted direct messages through real processes: parley-cli
// --batch against parley-server (docs/cli.md, "Direct messages"; docs/e2e.md).
// Conversations both ways, safety numbers and verification, restarts of the
// clients and of the server, the SDK's crash points, and no plaintext in any
// file the server keeps.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "harness.hpp"
#include "steps.hpp"

namespace parley_e2e {
namespace {

const Pred kReady = [](const JsonLine& l) { return l.is("state") && l.get("state") == "ready"; };

// One party of a conversation: a user, their token and data directory, and
// the parley-cli running for them (restarted at will).
struct Party {
  std::string user;
  std::string token;
  std::string data;
  std::unique_ptr<Cli> cli{};

  std::vector<std::string> args{};  // extra parley-cli flags

  void start(const std::string& url,
             const std::vector<std::pair<std::string, std::string>>& env = {}) {
    cli = std::make_unique<Cli>(url, token, data, args, env);
    REQUIRE(cli->started());
    need(*cli, kReady, user + " ready");
  }
  void stop() {
    REQUIRE(cli);
    CHECK(cli->bad_lines().empty());
    CHECK(cli->finish() == 0);
    cli.reset();
  }
};

// "/dm USER TEXT": its pending line and its result (both naming "@USER");
// returns the message id.
std::string send_dm(Cli& cli, const std::string& user, const std::string& text) {
  cli.send("/dm " + user + " " + text);
  const JsonLine pending = need(
      cli, [](const JsonLine& l) { return l.is("pending"); }, "pending of a DM");
  const std::string id = pending.get("id");
  CHECK(pending.get("channel") == "@" + user);
  const JsonLine result = need(
      cli, [&](const JsonLine& l) { return l.is_result("dm") || (l.is("error") && !l.has("id")); },
      "the result of /dm");
  INFO(result.raw);
  REQUIRE(result.is_result("dm"));
  CHECK(result.get("channel") == "@" + user);
  CHECK(result.get("user") == user);
  CHECK(result.get("id") == id);
  return id;
}

// /dm from `from` to `to` with `text`; checks the sender's lines (pending,
// result, sent, all naming "@to") and the receiver's message line ("@from",
// e2e, the text). Returns the message id.
std::string dm(Party& from, Party& to, const std::string& text) {
  Cli& cli = *from.cli;
  const std::string id = send_dm(cli, to.user, text);
  const JsonLine sent = need(
      cli, [&](const JsonLine& l) { return (l.is("sent") || l.is("error")) && l.get("id") == id; },
      "sent " + id);
  INFO(sent.raw);
  REQUIRE(sent.is("sent"));
  CHECK(sent.get("channel") == "@" + to.user);

  const JsonLine got = need(*to.cli, with_id("message", id), "the DM " + id + " at " + to.user);
  CHECK(got.get("channel") == "@" + from.user);
  CHECK(got.get("sender") == from.user);
  CHECK(got.get("e2e") == "true");
  CHECK_FALSE(got.has("e2e_error"));
  CHECK(got.get("text") == text);
  CHECK(got.num("seq") == sent.num("seq"));
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

std::size_t count_id(const std::vector<JsonLine>& lines, const std::string& id) {
  return static_cast<std::size_t>(std::count_if(
      lines.begin(), lines.end(), [&](const JsonLine& l) { return l.get("id") == id; }));
}

// The message lines /history prints before its result.
std::vector<JsonLine> history(Cli& cli, const std::string& channel, int n) {
  const JsonLine result = ok(cli, "/history " + channel + " " + std::to_string(n), "history");
  CHECK(result.get("channel") == channel);
  const std::size_t end = index_of(cli, result);
  const std::size_t count = result.num("count");
  REQUIRE(end >= count);
  std::vector<JsonLine> out(cli.lines().begin() + static_cast<std::ptrdiff_t>(end - count),
                            cli.lines().begin() + static_cast<std::ptrdiff_t>(end));
  for (const JsonLine& l : out) CHECK(l.is("message"));
  return out;
}

// "12345 67890 ..." : 60 digits in 12 groups of five.
bool is_safety_number(const std::string& s) {
  if (s.size() != 12 * 5 + 11) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool space = i % 6 == 5;
    if (space ? s[i] != ' ' : std::isdigit(static_cast<unsigned char>(s[i])) == 0) return false;
  }
  return true;
}

JsonLine safety(Cli& cli, const std::string& user) {
  ok(cli, "/safety " + user, "safety");
  const auto& all = cli.lines();
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (it->is("safety") && it->get("user") == user) return *it;
  }
  FAIL("no safety line before the result of /safety " << user << ":\n" << cli.transcript());
  return {};
}

// ---- searching the server's files for plaintext -------------------------------------

std::string base64(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto n = (std::uint32_t(std::uint8_t(in[i])) << 16) |
                   (std::uint32_t(std::uint8_t(in[i + 1])) << 8) | std::uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(n >> s) & 63];
  }
  if (i < in.size()) {
    std::uint32_t n = std::uint32_t(std::uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) n |= std::uint32_t(std::uint8_t(in[i + 1])) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string hex(const std::string& in, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : in) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// UTF-8 to code points (the texts here are valid UTF-8).
std::vector<std::uint32_t> code_points(const std::string& s) {
  std::vector<std::uint32_t> out;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    std::uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += static_cast<std::size_t>(n);
  }
  return out;
}

std::vector<std::uint16_t> utf16_units(const std::string& s) {
  std::vector<std::uint16_t> out;
  for (std::uint32_t cp : code_points(s)) {
    if (cp < 0x10000) {
      out.push_back(static_cast<std::uint16_t>(cp));
    } else {
      cp -= 0x10000;
      out.push_back(static_cast<std::uint16_t>(0xD800 + (cp >> 10)));
      out.push_back(static_cast<std::uint16_t>(0xDC00 + (cp & 0x3FF)));
    }
  }
  return out;
}

std::string utf16(const std::string& s, bool big_endian) {
  std::string out;
  for (std::uint16_t u : utf16_units(s)) {
    const char hi = static_cast<char>(u >> 8);
    const char lo = static_cast<char>(u & 0xFF);
    out += big_endian ? hi : lo;
    out += big_endian ? lo : hi;
  }
  return out;
}

// JSON string escaping: the minimal form (UTF-8 kept) and the ASCII-only
// form (\uXXXX for everything beyond ASCII), each with "\/" and "/" alike.
std::vector<std::string> json_escaped(const std::string& s) {
  std::string minimal;
  std::string ascii;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      minimal += '\\';
      minimal += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      minimal += buf;
    } else {
      minimal += static_cast<char>(c);
    }
  }
  for (std::uint16_t u : utf16_units(s)) {
    if (u == '"' || u == '\\') {
      ascii += '\\';
      ascii += static_cast<char>(u);
    } else if (u < 0x20 || u >= 0x80) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      ascii += buf;
    } else {
      ascii += static_cast<char>(u);
    }
  }
  std::vector<std::string> out = {minimal, ascii};
  for (const std::string& form : std::vector<std::string>(out)) {
    std::string slashed;
    for (char c : form) {
      if (c == '/') slashed += '\\';
      slashed += c;
    }
    out.push_back(slashed);
  }
  return out;
}

// Every form of `text` searched for, with a name for failure messages.
std::vector<std::pair<std::string, std::string>> encodings(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> forms = {
      {"raw", text},
      {"hex", hex(text, false)},
      {"HEX", hex(text, true)},
      {"utf-16le", utf16(text, false)},
      {"utf-16be", utf16(text, true)},
  };
  for (const std::string& j : json_escaped(text)) forms.emplace_back("json", j);
  // Base64 at the three alignments: the characters that depend on the text's
  // bytes alone (not on what precedes it, nor on how it ends).
  for (std::size_t shift = 0; shift < 3; ++shift) {
    const std::string encoded = base64(std::string(shift, '\x00') + text);
    const std::size_t begin = shift == 0 ? 0 : 4;
    const std::size_t end = (shift + text.size()) % 3 == 0 ? encoded.size() : encoded.size() - 4;
    REQUIRE(end > begin + 12);
    const std::string inner = encoded.substr(begin, end - begin);
    forms.emplace_back("base64+" + std::to_string(shift), inner);
    std::string url = inner;
    std::replace(url.begin(), url.end(), '+', '-');
    std::replace(url.begin(), url.end(), '/', '_');
    if (url != inner) forms.emplace_back("base64url+" + std::to_string(shift), url);
  }
  return forms;
}

// Every file under `dir` (the SQLite database, its -wal and -shm, keys, ...).
std::vector<std::pair<std::string, std::string>> read_all_files(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    files.emplace_back(entry.path().string(), std::string(std::istreambuf_iterator<char>(in),
                                                          std::istreambuf_iterator<char>()));
  }
  return files;
}

// Where `text` appears in `files`, in any of its encodings ("" when nowhere).
std::string find_text(const std::vector<std::pair<std::string, std::string>>& files,
                      const std::string& text) {
  std::string found;
  for (const auto& [encoding, needle] : encodings(text)) {
    for (const auto& [path, bytes] : files) {
      if (bytes.find(needle) != std::string::npos) {
        found += encoding + " in " + path + "; ";
      }
    }
  }
  return found;
}

}  // namespace

TEST_CASE(
    "encrypted DMs through parley-cli: both ways, safety numbers, restarts, nothing at rest") {
  World w;
  Party alice{"alice", w.alice, w.data("alice")};
  Party bob{"bob", w.bob, w.data("bob")};
  alice.start(w.server.url());
  bob.start(w.server.url());

  // A conversation both ways, in order, each side naming the other "@peer".
  std::vector<std::string> secrets;
  auto say = [&](Party& from, Party& to, const std::string& text) {
    secrets.push_back(text);
    return dm(from, to, text);
  };
  say(alice, bob, "orange-submarine-42 surfaces at dawn");
  say(bob, alice, "violet-lighthouse-17 blinks twice");
  say(alice, bob, "quantum-marmalade-93 \"quoted\" / slashed \xE2\x98\xBA");
  say(alice, bob, "crimson-tortoise-58 waits by the gate");
  say(bob, alice, "emerald-accordion-66 plays at nine");
  say(bob, alice, "saffron-glacier-21 melts slowly");
  for (Party* p : {&alice, &bob}) {
    const std::string peer = p == &alice ? "@bob" : "@alice";
    std::vector<JsonLine> got = messages_in(*p->cli, peer);
    REQUIRE(got.size() == 3);
    for (std::size_t i = 1; i < got.size(); ++i) CHECK(got[i - 1].num("seq") < got[i].num("seq"));
  }
  CHECK(messages_in(*bob.cli, "@alice")[0].get("text") == secrets[0]);
  CHECK(messages_in(*bob.cli, "@alice")[1].get("text") == secrets[2]);
  CHECK(messages_in(*bob.cli, "@alice")[2].get("text") == secrets[3]);
  CHECK(messages_in(*alice.cli, "@bob")[2].get("text") == secrets[5]);

  // History by "@peer": both sides' messages, in order, with their texts.
  std::vector<JsonLine> h = history(*bob.cli, "@alice", 10);
  REQUIRE(h.size() == 6);
  const std::vector<std::size_t> order = {0, 1, 2, 3, 4, 5};
  for (std::size_t i : order) {
    CHECK(h[i].get("text") == secrets[i]);
    CHECK(h[i].get("channel") == "@alice");
    CHECK(h[i].get("e2e") == "true");
  }

  // Safety numbers: the same on both sides; verification shows.
  const JsonLine at_alice = safety(*alice.cli, "bob");
  const JsonLine at_bob = safety(*bob.cli, "alice");
  CHECK(is_safety_number(at_alice.get("number")));
  CHECK(at_alice.get("number") == at_bob.get("number"));
  CHECK(at_alice.get("verified") == "false");
  const JsonLine verified = ok(*alice.cli, "/verify bob", "verify");
  CHECK(verified.get("user") == "bob");
  CHECK(verified.get("verified") == "true");
  CHECK(safety(*alice.cli, "bob").get("verified") == "true");
  CHECK(safety(*bob.cli, "alice").get("verified") == "false");  // bob did not verify alice
  CHECK(ok(*bob.cli, "/verify alice", "verify").get("verified") == "true");
  CHECK(ok(*bob.cli, "/verify alice off", "verify").get("verified") == "false");
  CHECK(safety(*bob.cli, "alice").get("verified") == "false");
  CHECK(refused(*alice.cli, "/verify").get("code") == "bad_command");
  CHECK(refused(*alice.cli, "/safety").get("code") == "bad_command");

  // Commands take "@peer" for the direct channel.
  CHECK(ok(*alice.cli, "/send @bob saffron-kettle-08 boils over", "send").get("channel") == "@bob");
  secrets.push_back("saffron-kettle-08 boils over");
  const JsonLine kettle = need(
      *bob.cli,
      [](const JsonLine& l) {
        return l.is("message") && l.get("text") == "saffron-kettle-08 boils over";
      },
      "the /send @bob message");
  CHECK(kettle.get("channel") == "@alice");
  CHECK(kettle.get("e2e") == "true");
  CHECK(ok(*bob.cli, "/read @alice", "read").get("channel") == "@alice");
  CHECK(ok(*bob.cli, "/typing @alice", "typing").get("channel") == "@alice");

  // Both restart mid-conversation, the server too: the sessions survive.
  alice.stop();
  bob.stop();
  CHECK(w.server.stop() == 0);
  const std::string restarted = w.server.start();
  INFO(restarted);
  REQUIRE(restarted.empty());
  alice.start(w.server.url());
  bob.start(w.server.url());
  say(bob, alice, "indigo-pretzel-35 after the restart");
  say(alice, bob, "amber-walrus-74 also after it");
  say(bob, alice, "cobalt-dandelion-12 once more");
  // The verification was kept: the identities did not change.
  CHECK(safety(*alice.cli, "bob").get("number") == at_alice.get("number"));
  CHECK(safety(*alice.cli, "bob").get("verified") == "true");
  for (const JsonLine& l : alice.cli->lines()) CHECK_FALSE(l.is("identity_changed"));

  // Only the clients restart this time.
  alice.stop();
  bob.stop();
  alice.start(w.server.url());
  bob.start(w.server.url());
  say(alice, bob, "magenta-zeppelin-60 one more restart");
  say(bob, alice, "turquoise-kazoo-29 and back");

  // No plaintext of a DM anywhere in the server's files, in any encoding;
  // the same search finds a message of a normal channel (the control).
  const std::string control = "scarlet-harmonica-47 in the open";
  ok(*alice.cli, "/create plaza", "create");
  const std::string control_id = [&] {
    alice.cli->send("/send plaza " + control);
    return need(
               *alice.cli, [](const JsonLine& l) { return l.is("pending"); }, "pending")
        .get("id");
  }();
  need(*alice.cli, with_id("sent", control_id), "the control message sent");
  alice.stop();
  bob.stop();
  for (int pass = 0; pass < 2; ++pass) {  // with the server running (WAL), then stopped
    const auto files = read_all_files(w.tmp.sub("server-data"));
    REQUIRE(!files.empty());
    for (const std::string& secret : secrets) {
      INFO("pass " << pass << ", secret: " << secret);
      CHECK(find_text(files, secret) == "");
    }
    INFO("pass " << pass);
    CHECK(find_text(files, control) != "");
    if (pass == 0) CHECK(w.server.stop() == 0);
  }
}

TEST_CASE("a DM to a user without keys fails with no_keys; carol is found by \"@carol\"") {
  World w;
  Party alice{"alice", w.alice, w.data("alice")};
  alice.start(w.server.url());

  // dave never connected: no device, no keys.
  const std::string id = send_dm(*alice.cli, "dave", "are you there");
  const JsonLine failed = need(
      *alice.cli,
      [&](const JsonLine& l) { return (l.is("error") || l.is("sent")) && l.get("id") == id; },
      "the refusal of the DM");
  INFO(failed.raw);
  CHECK(failed.is_error("no_keys"));
  CHECK(refused(*alice.cli, "/safety dave").get("code") == "no_keys");
  CHECK(refused(*alice.cli, "/verify dave").get("code") == "no_keys");
  CHECK(refused(*alice.cli, "/safety alice").get("code") == "invalid_user");

  // "@U" for a direct channel this client has not opened yet: found by open_direct.
  const std::string carol_token = mint_token(w.key, "carol");
  REQUIRE(!carol_token.empty());
  Party carol{"carol", carol_token, w.data("carol")};
  carol.start(w.server.url());
  const JsonLine sent = ok(*carol.cli, "/send @alice hello-from-carol-31", "send");
  CHECK(sent.get("channel") == "@alice");
  const JsonLine got = need(
      *alice.cli,
      [](const JsonLine& l) { return l.is("message") && l.get("text") == "hello-from-carol-31"; },
      "carol's DM");
  CHECK(got.get("channel") == "@carol");
  CHECK(got.get("e2e") == "true");
  alice.stop();
  carol.stop();
}

TEST_CASE("a crash right after decrypting, or right after committing, loses and repeats nothing") {
  World w;
  Party alice{"alice", w.alice, w.data("alice")};
  Party bob{"bob", w.bob, w.data("bob")};
  alice.start(w.server.url());
  bob.start(w.server.url());  // publishes bob's keys
  bob.stop();

  // Crash after decrypting the first message (X3DH), before storing it.
  bob.start(w.server.url(), {{"PARLEY_TEST_CRASH_AT", "e2e_decrypted"}});
  const std::string first = send_dm(*alice.cli, "bob", "lavender-anchor-55 first contact");
  need(*alice.cli, with_id("sent", first), "the first DM sent");
  CHECK(bob.cli->wait_exit() == 86);
  CHECK(messages_in(*bob.cli, "@alice").empty());
  bob.cli.reset();
  bob.start(w.server.url());
  const JsonLine again = need(*bob.cli, with_id("message", first), "the first DM after the crash");
  CHECK(again.get("text") == "lavender-anchor-55 first contact");
  CHECK(again.get("channel") == "@alice");
  CHECK(again.get("e2e") == "true");
  dm(bob, alice, "walnut-comet-19 got it");
  dm(alice, bob, "silver-parsnip-88 good");
  bob.cli->send("/sleep 300");
  need(
      *bob.cli, [](const JsonLine& l) { return l.is_result("sleep"); }, "sleep");
  CHECK(count_id(messages_in(*bob.cli, "@alice"), first) == 1);
  std::vector<JsonLine> h = history(*bob.cli, "@alice", 20);
  CHECK(count_id(h, first) == 1);
  bob.stop();

  // Crash after committing: stored once, shown at most once live, once in history.
  bob.start(w.server.url(), {{"PARLEY_TEST_CRASH_AT", "e2e_committed"}});
  const std::string second = send_dm(*alice.cli, "bob", "tangerine-harp-77 mid conversation");
  need(*alice.cli, with_id("sent", second), "the second DM sent");
  CHECK(bob.cli->wait_exit() == 86);
  const std::size_t before_crash = count_id(messages_in(*bob.cli, "@alice"), second);
  bob.cli.reset();
  bob.start(w.server.url());
  dm(alice, bob, "plum-satellite-04 after the second crash");
  dm(bob, alice, "ginger-volcano-36 still here");
  bob.cli->send("/sleep 300");
  need(
      *bob.cli, [](const JsonLine& l) { return l.is_result("sleep"); }, "sleep");
  CHECK(before_crash + count_id(messages_in(*bob.cli, "@alice"), second) <= 1);
  h = history(*bob.cli, "@alice", 20);
  CHECK(count_id(h, second) == 1);
  CHECK(count_id(h, first) == 1);
  for (const JsonLine& l : h) {
    if (l.get("id") == second) CHECK(l.get("text") == "tangerine-harp-77 mid conversation");
  }
  // Alice's side is whole too.
  std::vector<JsonLine> ha = history(*alice.cli, "@bob", 20);
  CHECK(ha.size() == 6);
  for (const JsonLine& l : ha) CHECK_FALSE(l.has("e2e_error"));
  alice.stop();
  bob.stop();
}

TEST_CASE("a contact's new identity key gives identity_changed and ends the verification") {
  World w;
  Party alice{"alice", w.alice, w.data("alice")};
  Party bob{"bob", w.bob, w.data("bob"), nullptr, {"--device-id", "bob-phone"}};
  alice.start(w.server.url());
  bob.start(w.server.url());
  dm(alice, bob, "mustard-origami-13 before");
  dm(bob, alice, "pewter-flamingo-90 before too");
  ok(*alice.cli, "/verify bob", "verify");
  const JsonLine before = safety(*alice.cli, "bob");
  CHECK(before.get("verified") == "true");

  // Bob reinstalls: the same device id, a new identity key.
  bob.stop();
  std::filesystem::remove_all(bob.data);
  bob.start(w.server.url());
  const JsonLine after = safety(*alice.cli, "bob");
  const JsonLine changed = need(
      *alice.cli, [](const JsonLine& l) { return l.is("identity_changed"); }, "identity_changed");
  CHECK(changed.get("user") == "bob");
  CHECK(changed.get("device") == "bob-phone");
  CHECK(changed.get("was_verified") == "true");
  CHECK(index_of(*alice.cli, changed) < index_of(*alice.cli, after));
  CHECK(is_safety_number(after.get("number")));
  CHECK(after.get("number") != before.get("number"));
  CHECK(after.get("verified") == "false");
  CHECK(safety(*bob.cli, "alice").get("number") == after.get("number"));

  // The conversation goes on with the new key, and can be verified again.
  dm(alice, bob, "copper-lantern-71 after");
  dm(bob, alice, "hazel-trombone-26 after too");
  ok(*alice.cli, "/verify bob", "verify");
  CHECK(safety(*alice.cli, "bob").get("verified") == "true");
  alice.stop();
  bob.stop();
}

}  // namespace parley_e2e
