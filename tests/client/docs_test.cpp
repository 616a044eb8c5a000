// Collaborative documents through the SDK (docs/collab.md, "In the SDK" and
// "Offline edits"): the cache's document tables on their own, then clients
// against the in-process server over real WebSockets on 127.0.0.1:
// concurrent edits converge, offline edits on both sides merge after
// reconnecting, unsent edits survive a new Client on the same directory, a
// read-only member's edit is refused and surfaced, cursors are relayed, and
// bad arguments are refused with reasons.
#include <doctest/doctest.h>

#include <map>
#include <mutex>
#include <thread>

#include "crdt/document.hpp"
#include "parley/sys/analytics.hpp"
#include "store/cache.hpp"
#include "test_support.hpp"

using namespace parley;
using namespace parley::testing;
using namespace std::chrono_literals;

namespace {

class DocSink : public sys::AnalyticsSink {
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

struct Docs {
  TestServer server{/*listen=*/true};
  std::map<std::string, std::filesystem::path> dirs;

  ClientOptions options(const std::string& user) {
    if (!dirs.count(user)) dirs[user] = temp_dir(user);
    ClientOptions o = server.options(user, dirs[user]);
    o.transport = nullptr;  // the default: WebSocket
    o.server_url = "ws://127.0.0.1:" + std::to_string(server.server->port()) + "/";
    return o;
  }
  std::unique_ptr<Client> open(ClientOptions o) {
    auto c = Client::open(o);
    REQUIRE_MESSAGE(c.ok(), c.status().to_string());
    REQUIRE(wait_ready(**c));
    return std::move(*c);
  }
  std::unique_ptr<Client> open(const std::string& user) { return open(options(user)); }
};

// Waits for the document's text at `client` to be `text` (through its
// DocumentChanged events), then checks the cache says the same.
void wait_text(Client& client, const std::string& channel, const std::string& title,
               const std::string& text) {
  auto seen = wait_for<DocumentChanged>(client, [&](const DocumentChanged& d) {
    return d.channel == channel && d.title == title && d.text == text;
  });
  if (!seen) {
    auto now = client.document_text(channel, title);
    FAIL("document text never became \"" << text << "\"; the cache has \""
                                         << (now ? now->text : now.status().to_string()) << "\"");
  }
  auto view = client.document_text(channel, title);
  REQUIRE(view.ok());
  CHECK(view->text == text);
}

// Waits until the cache's text of the document satisfies `pred`.
bool eventually(Client& client, const std::string& channel, const std::string& title,
                const std::function<bool(const DocumentView&)>& pred,
                std::chrono::milliseconds timeout = 10s) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    auto view = client.document_text(channel, title);
    if (view && pred(*view)) return true;
    client.next_event(20ms);  // drained as they come
  }
  return false;
}

void open_doc(Client& client, const std::string& channel, const std::string& title) {
  REQUIRE(request_status(client, client.open_document(channel, title)).ok());
}

}  // namespace

TEST_CASE("documents: the cache keeps the replica, its log and the outbox") {
  auto dir = temp_dir("doc-cache");
  std::string update;
  {
    auto cache = store::Cache::open(dir.string(), "alice");
    REQUIRE(cache.ok());
    store::Cache& c = **cache;
    CHECK(!*c.doc("general", "notes"));
    crdt::Document doc(7);
    doc.insert(0, "hello");
    doc.take_update();
    REQUIRE(c.doc_put({"general", "notes", "text", 7, doc.encode_snapshot(), {}}, 1).ok());
    doc.insert(5, " world");
    update = doc.take_update();
    auto ord = c.doc_local_update("general", "notes", update, {"bob"}, 2);
    REQUIRE(ord.ok());
    crdt::Document other(9);
    other.apply_update(doc.encode_update({}));
    other.insert(0, ">");
    REQUIRE(c.doc_remote_updates("general", "notes", {other.take_update()}).ok());
    auto rows = c.doc_outbox();
    REQUIRE(rows.ok());
    REQUIRE(rows->size() == 1);
    CHECK((*rows)[0].update == update);
    CHECK((*rows)[0].mentions == std::vector<std::string>{"bob"});
    CHECK(*c.doc_outbox_count("general", "notes") == 1);
    CHECK(c.doc_log_size("general", "notes")->first == 2);
    auto list = c.docs("general");
    REQUIRE(list.ok());
    REQUIRE(list->size() == 1);
    CHECK((*list)[0].pending == 1);
  }
  // Reopened: the snapshot plus the log in order gives the text.
  auto cache = store::Cache::open(dir.string(), "alice");
  REQUIRE(cache.ok());
  store::Cache& c = **cache;
  auto row = c.doc("general", "notes");
  REQUIRE(row.ok());
  REQUIRE(*row);
  CHECK((*row)->agent == 7);
  auto doc = crdt::Document::load_snapshot((*row)->snapshot, 7);
  REQUIRE(doc.ok());
  for (const auto& u : (*row)->log) REQUIRE(doc->apply_update(u).ok());
  CHECK(doc->text() == ">hello world");
  // Compaction folds the log into the snapshot; the outbox stays.
  REQUIRE(c.doc_compact("general", "notes", doc->encode_snapshot(), 3).ok());
  CHECK(c.doc_log_size("general", "notes")->first == 0);
  CHECK(*c.doc_outbox_count("general", "notes") == 1);
  REQUIRE(c.doc_outbox_remove(c.doc_outbox()->front().ord).ok());
  CHECK(*c.doc_outbox_count("general", "notes") == 0);
  REQUIRE(c.doc_forget("general", "notes").ok());
  CHECK(!*c.doc("general", "notes"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("documents: two clients edit one document concurrently and converge") {
  Docs t;
  auto sink = std::make_shared<DocSink>();
  ClientOptions ao = t.options("alice");
  ao.analytics = sink;
  auto alice = t.open(ao);
  auto bob = t.open("bob");
  REQUIRE(request_status(*alice, alice->create_channel("team")).ok());
  REQUIRE(request_status(*bob, bob->join_channel("team")).ok());
  auto created = alice->create_document("team", "plan");
  auto done = wait_for<ChannelRequestDone>(
      *alice, [created](const ChannelRequestDone& d) { return d.request == created; });
  REQUIRE(done);
  REQUIRE(done->status.ok());
  CHECK(done->seq > 0);
  // Creating it again: doc_exists.
  Status again = request_status(*alice, alice->create_document("team", "plan"));
  CHECK(again.code() == StatusCode::already_exists);
  CHECK(again.reason() == "doc_exists");

  open_doc(*alice, "team", "plan");
  open_doc(*bob, "team", "plan");
  REQUIRE(alice->insert_text("team", "plan", 0, "hello").ok());
  wait_text(*bob, "team", "plan", "hello");
  // Both type at once, at both ends.
  for (int i = 0; i < 20; ++i) {
    REQUIRE(alice->insert_text("team", "plan", 0, "a").ok());
    auto b = bob->document_text("team", "plan");
    REQUIRE(b.ok());
    REQUIRE(bob->insert_text("team", "plan", b->text.size(), "b").ok());
  }
  REQUIRE(bob->delete_text("team", "plan", 0, 1).ok());
  auto converged = [&] {
    auto a = alice->document_text("team", "plan");
    auto b = bob->document_text("team", "plan");
    return a && b && a->text == b->text && a->pending_updates == 0 && b->pending_updates == 0 &&
           a->version == b->version;
  };
  auto until = std::chrono::steady_clock::now() + 10s;
  while (!converged() && std::chrono::steady_clock::now() < until) {
    alice->next_event(10ms);
    bob->next_event(10ms);
  }
  REQUIRE(converged());
  auto text = alice->document_text("team", "plan")->text;
  CHECK(text.size() == 5 + 40 - 1);
  CHECK(std::count(text.begin(), text.end(), 'b') == 20);
  CHECK(text.find("hello") != std::string::npos);

  // The list: one document, with its size and version.
  auto listed = alice->list_documents("team");
  auto list = wait_for<DocumentsLoaded>(
      *alice, [listed](const DocumentsLoaded& l) { return l.request == listed; });
  REQUIRE(list);
  REQUIRE(list->status.ok());
  REQUIRE(list->docs.size() == 1);
  CHECK(list->docs[0].title == "plan");
  CHECK(list->docs[0].creator == "alice");
  CHECK(list->docs[0].size == text.size());
  // Analytics counts and times, never content or titles.
  auto edits = sink->named("doc_edit");
  REQUIRE(!edits.empty());
  CHECK(edits[0].label("op") == "insert");
  CHECK(edits[0].value("chars") == 5);
  for (const auto& e : sink->events) {
    for (const auto& [k, v] : e.labels) {
      CHECK(v != "plan");
      CHECK(v.find("hello") == std::string::npos);
    }
  }
  CHECK(!sink->named("doc_sync").empty());
}

TEST_CASE("documents: offline edits on both sides merge after reconnecting") {
  Docs t;
  auto alice = t.open("alice");
  auto bob = t.open("bob");
  REQUIRE(request_status(*alice, alice->create_channel("team")).ok());
  REQUIRE(request_status(*bob, bob->join_channel("team")).ok());
  REQUIRE(request_status(*alice, alice->create_document("team", "plan")).ok());
  open_doc(*alice, "team", "plan");
  open_doc(*bob, "team", "plan");
  REQUIRE(alice->insert_text("team", "plan", 0, "middle").ok());
  wait_text(*bob, "team", "plan", "middle");

  alice->disconnect();
  bob->disconnect();
  REQUIRE(wait_for<StateChanged>(*alice, [](const StateChanged& s) {
    return s.state == LifecycleState::disconnected;
  }));
  REQUIRE(wait_for<StateChanged>(*bob, [](const StateChanged& s) {
    return s.state == LifecycleState::disconnected;
  }));
  REQUIRE(alice->insert_text("team", "plan", 0, "start ").ok());
  REQUIRE(bob->insert_text("team", "plan", 6, " end").ok());
  CHECK(alice->document_text("team", "plan")->text == "start middle");
  CHECK(alice->document_text("team", "plan")->pending_updates == 1);
  CHECK(*alice->pending_document_updates() == 1);
  // Open on both sides again by themselves once connected.
  alice->connect();
  bob->connect();
  auto merged = [](const DocumentView& v) {
    return v.text == "start middle end" && v.pending_updates == 0;
  };
  CHECK(eventually(*alice, "team", "plan", merged));
  CHECK(eventually(*bob, "team", "plan", merged));
  CHECK(*alice->pending_document_updates() == 0);
  // And stays live after the reconnect: a new edit reaches the other side.
  REQUIRE(bob->insert_text("team", "plan", 0, "[").ok());
  wait_text(*alice, "team", "plan", "[start middle end");
}

TEST_CASE("documents: a new client on the same directory sends the edits left unsent") {
  Docs t;
  auto bob = t.open("bob");
  {
    auto alice = t.open("alice");
    REQUIRE(request_status(*alice, alice->create_channel("team")).ok());
    REQUIRE(request_status(*bob, bob->join_channel("team")).ok());
    REQUIRE(request_status(*alice, alice->create_document("team", "plan")).ok());
    open_doc(*alice, "team", "plan");
    REQUIRE(alice->insert_text("team", "plan", 0, "online ").ok());
    REQUIRE(eventually(*alice, "team", "plan",
                       [](const DocumentView& v) { return v.pending_updates == 0; }));
    alice->disconnect();
    REQUIRE(wait_for<StateChanged>(*alice, [](const StateChanged& s) {
      return s.state == LifecycleState::disconnected;
    }));
    REQUIRE(alice->insert_text("team", "plan", 7, "offline").ok());
    CHECK(*alice->pending_document_updates() == 1);
  }
  // A new process: the replica and its unsent edit come back from the cache.
  ClientOptions o = t.options("alice");
  o.auto_connect = false;
  auto alice = Client::open(o);
  REQUIRE(alice.ok());
  auto view = (*alice)->document_text("team", "plan");
  REQUIRE(view.ok());
  CHECK(view->text == "online offline");
  CHECK(view->pending_updates == 1);
  // Editing offline goes on where it was.
  REQUIRE((*alice)->insert_text("team", "plan", 14, "!").ok());
  (*alice)->connect();
  CHECK(eventually(**alice, "team", "plan",
                   [](const DocumentView& v) { return v.pending_updates == 0; }));
  open_doc(*bob, "team", "plan");
  CHECK(bob->document_text("team", "plan")->text == "online offline!");
}

TEST_CASE("documents: a read-only member's edit is refused, surfaced, and the text resyncs") {
  Docs t;
  auto alice = t.open("alice");
  auto bob = t.open("bob");
  REQUIRE(request_status(*alice, alice->create_channel("team")).ok());
  REQUIRE(request_status(*bob, bob->join_channel("team")).ok());
  REQUIRE(request_status(*alice, alice->set_role("team", "bob", Role::read_only)).ok());
  REQUIRE(request_status(*alice, alice->create_document("team", "plan")).ok());
  open_doc(*alice, "team", "plan");
  REQUIRE(alice->insert_text("team", "plan", 0, "by alice").ok());
  REQUIRE(eventually(*alice, "team", "plan",
                     [](const DocumentView& v) { return v.pending_updates == 0; }));
  open_doc(*bob, "team", "plan");
  CHECK(bob->document_text("team", "plan")->text == "by alice");
  // The edit applies locally at once, then the server refuses it.
  REQUIRE(bob->insert_text("team", "plan", 0, "not ").ok());
  CHECK(bob->document_text("team", "plan")->text == "not by alice");
  auto failed = wait_for<DocumentFailed>(*bob);
  REQUIRE(failed);
  CHECK(failed->status.reason() == "forbidden");
  CHECK(failed->status.code() == StatusCode::forbidden);
  CHECK(failed->dropped == 1);
  // The replica starts again from the server's state.
  wait_text(*bob, "team", "plan", "by alice");
  CHECK(bob->document_text("team", "plan")->pending_updates == 0);
  CHECK(*bob->pending_document_updates() == 0);
  // Alice never saw it.
  alice->next_event(200ms);
  CHECK(alice->document_text("team", "plan")->text == "by alice");
}

TEST_CASE("documents: cursors are relayed, throttled, and dropped when their owner leaves") {
  Docs t;
  ClientOptions bo = t.options("bob");
  bo.document_name = "Bob B.";
  bo.document_color = "#3366ff";
  auto alice = t.open("alice");
  auto bob = t.open(bo);
  REQUIRE(request_status(*alice, alice->create_channel("team")).ok());
  REQUIRE(request_status(*bob, bob->join_channel("team")).ok());
  REQUIRE(request_status(*alice, alice->create_document("team", "plan")).ok());
  CHECK(bob->set_document_cursor("team", "plan", 0).reason() == "doc_not_open");
  open_doc(*alice, "team", "plan");
  open_doc(*bob, "team", "plan");
  REQUIRE(alice->insert_text("team", "plan", 0, "some text").ok());
  wait_text(*bob, "team", "plan", "some text");
  // Many moves at once: the latest arrives (at most 10 per second are sent).
  for (std::uint64_t i = 0; i < 30; ++i) {
    REQUIRE(bob->set_document_cursor("team", "plan", i % 9, 2).ok());
  }
  REQUIRE(bob->set_document_cursor("team", "plan", 4, 2).ok());
  auto seen = wait_for<DocumentAwareness>(*alice, [](const DocumentAwareness& a) {
    return a.user == "bob" && a.cursor == std::optional<std::uint64_t>(4);
  });
  REQUIRE(seen);
  CHECK(seen->anchor == std::optional<std::uint64_t>(2));
  CHECK(seen->name == "Bob B.");
  CHECK(seen->color == "#3366ff");
  CHECK(!seen->gone);
  REQUIRE(request_status(*bob, bob->close_document("team", "plan")).ok());
  auto gone = wait_for<DocumentAwareness>(
      *alice, [](const DocumentAwareness& a) { return a.user == "bob" && a.gone; });
  CHECK(gone);
}

TEST_CASE("documents: bad arguments are refused with reasons") {
  Docs t;
  auto alice = t.open("alice");
  REQUIRE(request_status(*alice, alice->create_channel("team")).ok());
  Status missing = alice->insert_text("team", "nothing", 0, "x");
  CHECK(missing.code() == StatusCode::not_found);
  CHECK(missing.reason() == "no_such_doc");
  CHECK(alice->document_text("team", "nothing").status().reason() == "no_such_doc");
  Status no_doc = request_status(*alice, alice->open_document("team", "nothing"));
  CHECK(no_doc.code() == StatusCode::not_found);
  CHECK(no_doc.reason() == "no_such_doc");
  CHECK(request_status(*alice, alice->create_document("team", "")).reason() == "invalid_title");
  CHECK(request_status(*alice, alice->create_document("team", "a\nb")).reason() ==
        "invalid_title");
  CHECK(request_status(*alice, alice->create_document("no space", "t")).reason() ==
        "invalid_name");

  REQUIRE(request_status(*alice, alice->create_document("team", "plan")).ok());
  open_doc(*alice, "team", "plan");
  REQUIRE(alice->insert_text("team", "plan", 0, "héllo").ok());
  CHECK(alice->insert_text("team", "plan", 6, "x").reason() == "invalid_position");
  CHECK(alice->insert_text("team", "plan", 5, "\xff").reason() == "invalid_utf8");
  CHECK(alice->insert_text("team", "plan", 0, "").reason() == "invalid_text");
  CHECK(alice->insert_text("team", "plan", 0, std::string(40000, 'x')).reason() == "too_large");
  CHECK(alice->delete_text("team", "plan", 3, 3).reason() == "invalid_position");
  CHECK(alice->delete_text("team", "plan", 0, 0).reason() == "invalid_count");
  // Positions count code points: "é" is one.
  REQUIRE(alice->delete_text("team", "plan", 1, 1).ok());
  CHECK(alice->document_text("team", "plan")->text == "hllo");
  // version: characters ever inserted plus characters deleted.
  CHECK(alice->document_text("team", "plan")->version == 6);
}
