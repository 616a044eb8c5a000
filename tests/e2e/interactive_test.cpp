// End to end: parley-cli's interactive mode on a pseudo-terminal, as a
// person would use it, against a real parley-server, with a --batch CLI as
// the other user. The screen is matched with escape sequences taken out.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

#include "harness.hpp"
#include "pty.hpp"
#include "steps.hpp"

#ifndef PARLEY_CLI_BIN
#error "PARLEY_CLI_BIN must name the parley-cli binary"
#endif

namespace parley_e2e {
namespace {

// parley-cli without --batch on a 100x30 terminal that takes colours.
std::unique_ptr<PtyProcess> interactive(const World& w, const std::string& token,
                                        const std::string& user) {
  std::string error;
  auto p = PtyProcess::spawn({PARLEY_CLI_BIN, "--server", w.server.url(), "--data", w.data(user)},
                             {{"PARLEY_TOKEN", token},
                              {"TERM", "xterm"},
                              {"LANG", "C.UTF-8"},
                              {"EDITRC", w.tmp.sub("no-editrc")}},
                             {"NO_COLOR", "LC_ALL", "LC_CTYPE"}, 100, 30, &error);
  INFO(error);
  REQUIRE(p != nullptr);
  return p;
}

// Waits for `text` on the screen; fails the test with the screen if it does not show.
void see(PtyProcess& screen, const std::string& text, std::chrono::milliseconds timeout = 20s) {
  const bool shown = screen.expect(text, timeout);
  INFO("waiting for \"" << text << "\" on the screen:\n" << screen.text());
  REQUIRE(shown);
}

Pred message_from(const std::string& sender, const std::string& text) {
  return [=](const JsonLine& l) {
    return l.is("message") && l.get("sender") == sender && l.get("text") == text;
  };
}

Pred typing(const std::string& user, bool active) {
  return [=](const JsonLine& l) {
    return l.is("typing") && l.get("user") == user &&
           l.get("active") == (active ? "true" : "false");
  };
}

}  // namespace

TEST_CASE("interactive parley-cli on a terminal: prompt, send, receive, typing, receipts, help") {
  World w;
  Cli bob(w.server.url(), w.bob, w.data("bob"));
  ok(bob, "/create general", "create");

  auto alice = interactive(w, w.alice, "alice");
  see(*alice, "signed in as alice");
  see(*alice, "(no channel)> ");
  see(*alice, "-- connected");

  alice->type("/join general\r");
  see(*alice, "joined general");
  see(*alice, "[general]> ");

  // Typing shows at bob's as alice types, and a line entered is sent.
  alice->type("hello from the terminal");
  need(bob, typing("alice", true), "alice typing");
  alice->type("\r");
  const JsonLine got = need(bob, message_from("alice", "hello from the terminal"), "the message");
  see(*alice, "alice: hello from the terminal");

  // bob's typing, then his message, show on alice's screen.
  ok(bob, "/typing general", "typing");
  see(*alice, "bob is typing");
  ok(bob, "/send general hi alice, from a script", "send");
  see(*alice, "bob: hi alice, from a script");

  // A message arriving while alice types does not garble her line.
  alice->type("half a li");
  ok(bob, "/send general interrupting", "send");
  see(*alice, "bob: interrupting");
  alice->type("ne\r");
  need(bob, message_from("alice", "half a line"), "the line typed around a message");

  // bob reads it all: alice sees that her last message was read.
  ok(bob, "/read general", "read");
  see(*alice, "read by bob");

  // Ctrl-C drops the line being typed; nothing of it is sent.
  alice->type("never sent");
  alice->type("\x03");
  alice->type("after ctrl-c\r");
  need(bob, message_from("alice", "after ctrl-c"), "the line after Ctrl-C");

  alice->type("/help\r");
  for (const char* command :
       {"/send CHANNEL TEXT", "/switch CHANNEL", "/create CHANNEL", "/join CHANNEL",
        "/leave CHANNEL", "/safety USER", "/verify USER [off]", "/history CHANNEL N",
        "/typing CHANNEL", "/read CHANNEL", "/help", "/quit"}) {
    see(*alice, command);
  }
  alice->type("/frobnicate\r");
  see(*alice, "error: unknown command \"/frobnicate\"");
  alice->type("/switch nowhere\r");
  see(*alice, "error: you are not in channel \"nowhere\"");

  // Messages of another channel carry its name.
  ok(bob, "/create random", "create");
  alice->type("/join random\r");
  see(*alice, "[random]> ");
  alice->type("/switch general\r");
  see(*alice, "[general]> ");
  ok(bob, "/send random over here", "send");
  see(*alice, "[random] bob: over here");

  // A direct message shows in "@bob" with a lock; /safety and /verify work.
  ok(bob, "/dm alice psst, encrypted", "dm");
  see(*alice, "[@bob] bob: \xF0\x9F\x94\x92 psst, encrypted");
  alice->type("/safety bob\r");
  see(*alice, "safety number with bob (not verified):");
  alice->type("/verify bob\r");
  see(*alice, "bob is verified");

  alice->type("/quit\r");
  see(*alice, "bye");
  const std::optional<int> status = alice->wait(20s);
  INFO(alice->text());
  REQUIRE(status.has_value());
  CHECK(*status == 0);
  CHECK(alice->raw().find("\033[") != std::string::npos);  // colours and cursor moves

  // The history is kept in the data directory for the next run.
  std::ifstream history(w.data("alice") + "/cli_history");
  const std::string saved((std::istreambuf_iterator<char>(history)), {});
  CHECK(saved.find("join") != std::string::npos);
  CHECK(got.get("channel") == "general");
  CHECK(bob.finish() == 0);
}

TEST_CASE("interactive parley-cli quits with Ctrl-D and keeps its history") {
  World w;
  {
    auto alice = interactive(w, w.alice, "alice");
    see(*alice, "-- connected");
    alice->type("/create general\r");
    see(*alice, "[general]> ");
    alice->type("\x04");
    const std::optional<int> status = alice->wait(20s);
    INFO(alice->text());
    REQUIRE(status.has_value());
    CHECK(*status == 0);
  }
  // The next run starts in the channel it is in, and Up brings back the
  // last line entered.
  auto alice = interactive(w, w.alice, "alice");
  see(*alice, "[general]> ");
  alice->type("\033[A");
  see(*alice, "/create general");
  alice->type("\x15/quit\r");
  const std::optional<int> status = alice->wait(20s);
  INFO(alice->text());
  REQUIRE(status.has_value());
  CHECK(*status == 0);
}

}  // namespace parley_e2e
