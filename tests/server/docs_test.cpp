// Collaborative documents through the real server over WebSockets (issue 15,
// docs/collab.md "On the server"): creation as a channel event, open with
// state vectors, updates applied, stored, acknowledged and relayed, roles,
// bad input, durability across restarts and snapshots, cursors, mentions.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>
#include <thread>

#include "crdt/document.hpp"
#include "user_session.hpp"

using namespace parley;
using namespace parley::test;

namespace {

std::string b64(std::string_view bytes) {
  return to_base64(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

std::string unb64(const std::string& text) {
  std::string out(text.size(), '\0');
  std::size_t size = 0;
  REQUIRE(sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                            text.size(), nullptr, &size, nullptr,
                            sodium_base64_VARIANT_ORIGINAL) == 0);
  out.resize(size);
  return out;
}

std::uint64_t version_of(const crdt::Document& doc) {
  auto s = doc.stats();
  return 2 * s.total_chars - s.visible_chars;
}

// A user's connection with its own replica of one document.
struct Editor {
  UserSession session;
  crdt::Document doc;
  std::string channel;
  std::string title;

  Editor(const TestServer& server, const std::string& user, crdt::AgentId agent,
         std::string channel_name, std::string doc_title)
      : session(server, user, false, user + "-device"),
        doc(agent),
        channel(std::move(channel_name)),
        title(std::move(doc_title)) {}

  wire::DocState open() {
    auto state = session.ask_for<wire::DocState>(
        wire::DocOpen{0, channel, title, b64(crdt::encode_state_vector(doc.state_vector()))});
    REQUIRE(doc.apply_update(unb64(state.update)).ok());
    return state;
  }
  wire::DocUpdate update_of(const std::string& bytes) {
    return wire::DocUpdate{0, channel, title, b64(bytes)};
  }
  wire::DocAck insert(std::size_t pos, const std::string& text) {
    REQUIRE(doc.insert(pos, text).ok());
    return session.ask_for<wire::DocAck>(update_of(doc.take_update()));
  }
  wire::DocAck remove(std::size_t pos, std::size_t count) {
    REQUIRE(doc.remove(pos, count).ok());
    return session.ask_for<wire::DocAck>(update_of(doc.take_update()));
  }
  // Applies the next doc_update event pushed to this connection.
  wire::DocUpdateEvent receive() {
    for (;;) {
      wire::ServerMessage m = session.next();
      if (auto* u = std::get_if<wire::DocUpdateEvent>(&m)) {
        REQUIRE(doc.apply_update(unb64(u->update)).ok());
        return *u;
      }
    }
  }
};

// The next cursor pushed to `session`, skipping other unsolicited messages.
wire::DocAwarenessEvent next_awareness(UserSession& session) {
  for (;;) {
    wire::ServerMessage m = session.next();
    if (auto* a = std::get_if<wire::DocAwarenessEvent>(&m)) return *a;
  }
}

void setup_channel(UserSession& owner, const std::vector<UserSession*>& others,
                   const std::string& channel = "team") {
  owner.ok(wire::CreateChannel{0, channel});
  for (UserSession* s : others) s->ok(wire::JoinChannel{0, channel});
}

}  // namespace

TEST_CASE("docs: create, list, open, edit concurrently, converge") {
  TestServer server;
  Editor alice(server, "alice", 11, "team", "notes");
  Editor bob(server, "bob", 22, "team", "notes");
  setup_channel(alice.session, {&bob.session});

  auto created = alice.session.ok(wire::DocCreate{0, "team", "notes", std::nullopt});
  CHECK(created.seq > 0);
  // The creation is an event of the channel's sequence, for every member.
  wire::ChannelEvent event = bob.session.event("doc");
  CHECK(event.seq == created.seq);
  CHECK(event.title == std::optional<std::string>("notes"));
  CHECK(event.doc_kind == std::optional<std::string>("text"));
  CHECK(event.sender == "alice");
  auto history = bob.session.history_after("team", 0);
  CHECK(history.events.back().kind == "doc");
  CHECK(history.events.back().title == std::optional<std::string>("notes"));

  alice.session.refused(wire::DocCreate{0, "team", "notes", std::nullopt}, "doc_exists");

  auto opened_a = alice.open();
  auto opened_b = bob.open();
  CHECK(opened_a.kind == "text");
  CHECK(opened_a.version == 0);

  auto ack = alice.insert(0, "hello");
  CHECK(ack.version == version_of(alice.doc));
  auto relayed = bob.receive();
  CHECK(relayed.user == "alice");
  CHECK(relayed.device == "alice-device");
  CHECK(bob.doc.text() == "hello");

  // Concurrent edits at the same place: both apply the other's and converge.
  REQUIRE(alice.doc.insert(5, " world").ok());
  REQUIRE(bob.doc.insert(5, " there").ok());
  auto ua = alice.update_of(alice.doc.take_update());
  auto ub = bob.update_of(bob.doc.take_update());
  alice.session.ask_for<wire::DocAck>(ua);
  bob.session.ask_for<wire::DocAck>(ub);
  alice.receive();
  bob.receive();
  CHECK(alice.doc.text() == bob.doc.text());
  CHECK(alice.doc.text().size() == 17);
  auto del = bob.remove(0, 1);
  alice.receive();
  CHECK(alice.doc.text() == bob.doc.text());
  CHECK(del.version == version_of(alice.doc));

  // A fresh replica gets the whole text on open.
  Editor carol(server, "carol", 33, "team", "notes");
  carol.session.ok(wire::JoinChannel{0, "team"});
  auto state = carol.open();
  CHECK(carol.doc.text() == alice.doc.text());
  CHECK(state.version == version_of(alice.doc));

  auto list = carol.session.ask_for<wire::DocListReply>(wire::DocList{0, "team"});
  REQUIRE(list.docs.size() == 1);
  CHECK(list.docs[0].title == "notes");
  CHECK(list.docs[0].creator == "alice");
  CHECK(list.docs[0].seq == created.seq);
  CHECK(list.docs[0].size == alice.doc.size());
  CHECK(list.docs[0].version == version_of(alice.doc));

  // After doc_close nothing more arrives.
  bob.session.ok(wire::DocClose{0, "team", "notes"});
  bob.session.forget();
  alice.insert(0, "x");
  carol.receive();
  CHECK(bob.session.quiet());
}

TEST_CASE("docs: who may read and write, and bad input") {
  TestServer server;
  Editor alice(server, "alice", 11, "team", "plan");
  Editor bob(server, "bob", 22, "team", "plan");
  Editor mallory(server, "mallory", 66, "team", "plan");
  setup_channel(alice.session, {&bob.session});
  alice.session.ok(wire::DocCreate{0, "team", "plan", std::string("text")});
  alice.open();
  alice.insert(0, "draft");

  SUBCASE("a read-only member reads but cannot write") {
    alice.session.ok(wire::MemberAction{0, "team", "role", "bob", std::string("read_only")});
    bob.open();
    CHECK(bob.doc.text() == "draft");
    REQUIRE(bob.doc.insert(0, "evil ").ok());
    bob.session.refused(bob.update_of(bob.doc.take_update()), "forbidden");
    bob.session.refused(wire::DocCreate{0, "team", "other", std::nullopt}, "forbidden");
    // Nothing reached alice or the server's replica.
    Editor check(server, "alice", 12, "team", "plan");
    check.open();
    CHECK(check.doc.text() == "draft");
  }
  SUBCASE("a muted member cannot write") {
    alice.session.ok(wire::MemberAction{0, "team", "mute", "bob", std::nullopt, std::nullopt});
    bob.open();
    REQUIRE(bob.doc.insert(0, "x").ok());
    bob.session.refused(bob.update_of(bob.doc.take_update()), "muted");
  }
  SUBCASE("non-members get nothing") {
    mallory.session.refused(wire::DocOpen{0, "team", "plan", ""}, "not_member");
    mallory.session.refused(wire::DocList{0, "team"}, "not_member");
    REQUIRE(mallory.doc.insert(0, "x").ok());
    mallory.session.refused(mallory.update_of(mallory.doc.take_update()), "not_member");
  }
  SUBCASE("malformed requests") {
    UserSession& a = alice.session;
    a.refused(wire::DocOpen{0, "team", "nope", ""}, "no_such_doc");
    a.refused(wire::DocCreate{0, "team", "", std::nullopt}, "invalid_title");
    a.refused(wire::DocCreate{0, "team", std::string(129, 't'), std::nullopt}, "invalid_title");
    a.refused(wire::DocCreate{0, "team", "tab\there", std::nullopt}, "invalid_title");
    a.refused(wire::DocCreate{0, "team", "x", std::string("sheet")}, "invalid_kind");
    a.refused(wire::DocCreate{0, "nowhere", "x", std::nullopt}, "no_such_channel");
    a.refused(wire::DocOpen{0, "team", "plan", "%%%"}, "invalid_update");
    a.refused(wire::DocOpen{0, "team", "plan", b64("\xff\xff\xff")}, "invalid_update");
    a.refused(wire::DocUpdate{0, "team", "plan", "not base64!"}, "invalid_update");
    a.refused(wire::DocUpdate{0, "team", "plan", b64("garbage bytes")}, "invalid_update");
    a.refused(wire::DocUpdate{0, "team", "plan", std::string(wire::kMaxDocUpdate + 4, 'A')},
              "invalid_update");
    wire::DocUpdate many{0, "team", "plan", b64(alice.doc.encode_update({}))};
    many.mentions = std::vector<std::string>(11, "bob");
    a.refused(many, "bad_field");
    a.refused(wire::DocAwareness{0, "team", "other", 1}, "no_such_doc");
    // The document is unharmed.
    Editor check(server, "alice", 13, "team", "plan");
    check.open();
    CHECK(check.doc.text() == "draft");
  }
  SUBCASE("no documents in direct channels") {
    auto ok = alice.session.ok(wire::OpenDirect{0, "bob"});
    alice.session.refused(wire::DocCreate{0, ok.channel, "secret", std::nullopt}, "forbidden");
  }
}

TEST_CASE("docs: durable across restarts, with snapshots") {
  TestServer server;
  std::string expected;
  {
    Editor alice(server, "alice", 11, "team", "log");
    setup_channel(alice.session, {});
    alice.session.ok(wire::DocCreate{0, "team", "log", std::nullopt});
    alice.open();
    // More updates than one snapshot holds: some end in the snapshot, the
    // rest stay as updates after it.
    for (int i = 0; i < 230; ++i) {
      if (i % 7 == 6) {
        alice.remove(0, 1);
      } else {
        alice.insert(alice.doc.size() / 2, fmt::format("{}", i % 10));
      }
    }
    expected = alice.doc.text();
  }
  server.restart();
  Editor again(server, "alice", 12, "team", "log");
  auto state = again.open();
  CHECK(again.doc.text() == expected);
  CHECK(state.version == version_of(again.doc));
  // An old replica that reopens gets only what it lacks, and can go on editing.
  auto list = again.session.ask_for<wire::DocListReply>(wire::DocList{0, "team"});
  REQUIRE(list.docs.size() == 1);
  CHECK(list.docs[0].size == again.doc.size());
  again.insert(0, "!");
  server.restart();
  Editor third(server, "alice", 13, "team", "log");
  third.open();
  CHECK(third.doc.text() == "!" + expected);
}

TEST_CASE("docs: cursors are relayed, rate-limited and dropped when their connection goes") {
  TestServer server;
  Editor alice(server, "alice", 11, "team", "notes");
  Editor bob(server, "bob", 22, "team", "notes");
  setup_channel(alice.session, {&bob.session});
  alice.session.ok(wire::DocCreate{0, "team", "notes", std::nullopt});
  bob.session.event("doc");

  // Only with the document open.
  alice.session.refused(wire::DocAwareness{0, "team", "notes", 0}, "doc_not_open");
  alice.open();
  bob.open();
  wire::DocAwareness cursor{0, "team", "notes", 3, 1, std::string("Alice"),
                            std::string("#ff8800")};
  alice.session.peer().send(wire::encode(wire::ClientMessage{cursor}));
  auto seen = next_awareness(bob.session);
  CHECK(seen.user == "alice");
  CHECK(seen.device == "alice-device");
  CHECK(seen.cursor == std::optional<std::uint64_t>(3));
  CHECK(seen.anchor == std::optional<std::uint64_t>(1));
  CHECK(seen.name == std::optional<std::string>("Alice"));
  CHECK(seen.color == std::optional<std::string>("#ff8800"));
  CHECK_FALSE(seen.gone.has_value());

  // A connection that opens later is shown the cursors there are.
  auto carol = std::make_unique<Editor>(server, "carol", 33, "team", "notes");
  carol->session.ok(wire::JoinChannel{0, "team"});
  carol->open();
  auto shown = next_awareness(carol->session);
  CHECK(shown.user == "alice");

  wire::DocAwareness bad = cursor;
  bad.color = "orange";
  alice.session.refused(bad, "bad_field");
  bad = cursor;
  bad.name = std::string(65, 'n');
  alice.session.refused(bad, "bad_field");

  // More than 10 a second: refused with rate_limited and a wait.
  // (Accepted cursors get no reply: send a burst, then find the refusal.)
  for (int i = 0; i < 15; ++i) {
    cursor.rid = 500 + static_cast<std::uint64_t>(i);
    alice.session.peer().send(wire::encode(wire::ClientMessage{cursor}));
  }
  for (;;) {
    wire::ServerMessage m = alice.session.next();
    if (auto* e = std::get_if<wire::Error>(&m)) {
      CHECK(e->code == "rate_limited");
      CHECK(e->rid.value_or(0) >= 509);  // 10 a second, counting the first
      CHECK(e->retry_after_ms.value_or(0) > 0);
      break;
    }
  }

  // carol shows her cursor, then disconnects: the others drop it.
  bob.session.forget();
  carol->session.peer().send(wire::encode(wire::ClientMessage{
      wire::DocAwareness{0, "team", "notes", 0, std::nullopt, std::nullopt, std::nullopt}}));
  for (;;) {
    auto event = next_awareness(bob.session);
    if (event.user == "carol") break;
  }
  carol.reset();
  for (;;) {
    auto event = next_awareness(bob.session);
    if (event.gone.value_or(false)) {
      CHECK(event.user == "carol");
      break;
    }
  }
}

TEST_CASE("docs: creation and mentions notify members by their level") {
  TestServer server;
  UserSession alice(server, "alice");
  Peer bob(server.port());
  bob.send(R"({"type":"auth","rid":1,"token":")" + server.token("bob") +
           R"(","notifications":true})");
  bob.expect<wire::Welcome>();
  alice.ok(wire::CreateChannel{0, "team"});
  bob.send(R"({"type":"join","rid":2,"channel":"team"})");
  bob.expect<wire::Ok>();
  auto next_notification = [&] {
    for (;;) {
      wire::ServerMessage m = bob.next();
      if (auto* n = std::get_if<wire::NotificationEvent>(&m)) return *n;
    }
  };
  auto created = alice.ok(wire::DocCreate{0, "team", "spec", std::nullopt});
  auto note = next_notification();
  CHECK(note.kind == "doc");
  CHECK(note.seq == created.seq);
  CHECK(note.sender == "alice");
  CHECK(note.title == std::optional<std::string>("spec"));

  crdt::Document doc(11);
  REQUIRE(doc.insert(0, "ask @bob").ok());
  wire::DocUpdate update{0, "team", "spec", b64(doc.take_update())};
  update.mentions = std::vector<std::string>{"bob", "alice", "nobody"};
  alice.ask_for<wire::DocAck>(update);
  note = next_notification();
  CHECK(note.kind == "doc_mention");
  CHECK(note.seq == created.seq);
  CHECK(note.title == std::optional<std::string>("spec"));
}

TEST_CASE("docs: replicas are counted, unloaded when idle and loaded again intact") {
  TestServer server([](server::ServerOptions& o) {
    o.doc_unload_after = std::chrono::milliseconds(300);
  });
  std::string text;
  {
    Editor alice(server, "alice", 11, "team", "a");
    setup_channel(alice.session, {});
    alice.session.ok(wire::DocCreate{0, "team", "a", std::nullopt});
    alice.session.ok(wire::DocCreate{0, "team", "b", std::nullopt});
    alice.open();
    for (int i = 0; i < 20; ++i) alice.insert(alice.doc.size(), "word ");
    text = alice.doc.text();
    CHECK(metric(server.port(), "parley_docs") == 2);
    CHECK(metric(server.port(), "parley_docs_loaded") == 1);
    CHECK(metric(server.port(), "parley_doc_editors") == 1);
    CHECK(metric(server.port(), "parley_doc_chars") == 100);
    CHECK(metric(server.port(), "parley_doc_memory_bytes") > 0);
    CHECK(metric(server.port(), "parley_doc_updates_total") == 20);
    alice.session.ok(wire::DocClose{0, "team", "a"});
    CHECK(metric(server.port(), "parley_doc_editors") == 0);
  }
  // Nobody has it open: unloaded (snapshot first) once the delay passed.
  bool unloaded = false;
  for (int i = 0; i < 50 && !unloaded; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    unloaded = metric(server.port(), "parley_docs_loaded") == 0;
  }
  CHECK(unloaded);
  CHECK(metric(server.port(), "parley_docs_unloaded_total") == 1);
  CHECK(metric(server.port(), "parley_doc_memory_bytes") == 0);
  CHECK(metric(server.port(), "parley_doc_chars") == 0);
  CHECK(metric(server.port(), "parley_doc_snapshots_total") == 1);
  Editor bob(server, "alice", 12, "team", "a");
  auto state = bob.open();
  CHECK(bob.doc.text() == text);
  CHECK(state.version == version_of(bob.doc));
  CHECK(metric(server.port(), "parley_docs_loaded") == 1);
}
