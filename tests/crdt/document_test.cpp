// crdt::Document: local edits, UTF-16 offsets, undo/redo, sync between two
// replicas, snapshots and errors.
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "crdt/document.hpp"

using parley::StatusCode;
using parley::crdt::Document;
using parley::crdt::StateVector;

namespace {

void sync(Document& a, Document& b) {
  REQUIRE(b.apply_update(a.encode_update(b.state_vector())).ok());
  REQUIRE(a.apply_update(b.encode_update(a.state_vector())).ok());
}

}  // namespace

TEST_CASE("crdt: local inserts and deletes by code point") {
  Document doc(1);
  REQUIRE(doc.insert(0, "hello").ok());
  REQUIRE(doc.insert(5, " world").ok());
  REQUIRE(doc.insert(0, ">").ok());
  CHECK(doc.text() == ">hello world");
  REQUIRE(doc.remove(0, 1).ok());
  REQUIRE(doc.remove(5, 6).ok());
  CHECK(doc.text() == "hello");
  REQUIRE(doc.insert(2, "ü€😀").ok());
  CHECK(doc.size() == 8);
  CHECK(doc.text() == "heü€😀llo");
  REQUIRE(doc.remove(3, 2).ok());
  CHECK(doc.text() == "heüllo");
}

TEST_CASE("crdt: bad positions and text are invalid_argument") {
  Document doc(1);
  REQUIRE(doc.insert(0, "abc").ok());
  CHECK(doc.insert(4, "x").code() == StatusCode::invalid_argument);
  CHECK(doc.remove(2, 2).code() == StatusCode::invalid_argument);
  CHECK(doc.remove(SIZE_MAX, 2).code() == StatusCode::invalid_argument);
  parley::Status st = doc.insert(0, "\xff");
  CHECK(st.code() == StatusCode::invalid_argument);
  CHECK(st.message() == "insert: text is not valid utf-8");
  CHECK(doc.text() == "abc");
}

TEST_CASE("crdt: utf-16 offsets") {
  Document doc(1);
  REQUIRE(doc.insert(0, "a😀b😀c").ok());
  CHECK(doc.size() == 5);
  CHECK(doc.size_utf16() == 7);
  CHECK(doc.pos_to_utf16(2) == 3);
  CHECK(doc.pos_to_utf16(5) == 7);
  CHECK(*doc.utf16_to_pos(3) == 2);
  CHECK(!doc.utf16_to_pos(2).ok());  // inside the surrogate pair
  CHECK(!doc.utf16_to_pos(8).ok());
  REQUIRE(doc.insert_utf16(3, "X").ok());
  CHECK(doc.text() == "a😀Xb😀c");
  REQUIRE(doc.remove_utf16(1, 2).ok());
  CHECK(doc.text() == "aXb😀c");
  CHECK(doc.remove_utf16(4, 1).code() == StatusCode::invalid_argument);
}

TEST_CASE("crdt: undo and redo own edits only") {
  Document a(1);
  Document b(2);
  REQUIRE(a.insert(0, "hello").ok());
  sync(a, b);
  REQUIRE(b.insert(5, "!").ok());
  REQUIRE(a.remove(0, 1).ok());
  sync(a, b);
  CHECK(a.text() == "ello!");
  REQUIRE(a.undo());  // the deletion
  CHECK(a.text() == "hello!");
  REQUIRE(a.undo());  // the insertion; b's "!" stays
  CHECK(a.text() == "!");
  CHECK(!a.undo());
  REQUIRE(a.redo());
  CHECK(a.text() == "hello!");
  REQUIRE(a.redo());
  CHECK(a.text() == "ello!");
  CHECK(!a.redo());
  sync(a, b);
  CHECK(b.text() == "ello!");

  a.begin_undo_group();
  REQUIRE(a.insert(0, "x").ok());
  REQUIRE(a.insert(1, "y").ok());
  REQUIRE(a.remove(2, 1).ok());
  a.end_undo_group();
  CHECK(a.text() == "xyllo!");
  REQUIRE(a.undo());
  CHECK(a.text() == "ello!");
}

TEST_CASE("crdt: take_update carries local edits only once") {
  Document a(1);
  Document b(2);
  REQUIRE(a.insert(0, "abc").ok());
  std::string first = a.take_update();
  REQUIRE(a.remove(1, 1).ok());
  REQUIRE(a.insert(2, "d").ok());
  std::string second = a.take_update();
  REQUIRE(b.apply_update(second).ok());  // before its dependencies: waits
  CHECK(b.pending() > 0);
  CHECK(b.text().empty());
  REQUIRE(b.apply_update(first).ok());
  REQUIRE(b.apply_update(first).ok());
  CHECK(b.pending() == 0);
  CHECK(b.text() == "acd");
  CHECK(b.state_vector() == StateVector{{1, 4}});
}

TEST_CASE("crdt: concurrent insertions at one place do not interleave") {
  Document a(1);
  Document b(2);
  REQUIRE(a.insert(0, "[]").ok());
  sync(a, b);
  for (char c : std::string("hello")) REQUIRE(a.insert(a.size() - 1, std::string(1, c)).ok());
  for (char c : std::string("world")) REQUIRE(b.insert(b.size() - 1, std::string(1, c)).ok());
  sync(a, b);
  CHECK(a.text() == b.text());
  CHECK((a.text() == "[helloworld]" || a.text() == "[worldhello]"));
}

TEST_CASE("crdt: snapshot round trip and continued editing") {
  Document a(1);
  Document b(2);
  REQUIRE(a.insert(0, "hello world").ok());
  sync(a, b);
  REQUIRE(b.remove(0, 6).ok());
  REQUIRE(a.insert(5, ",").ok());
  sync(a, b);
  std::string snap = a.encode_snapshot();
  auto loaded = Document::load_snapshot(snap, 1);
  REQUIRE(loaded.ok());
  CHECK(loaded->text() == a.text());
  CHECK(loaded->state_vector() == a.state_vector());
  CHECK(loaded->encode_snapshot() == snap);
  REQUIRE(loaded->insert(0, "> ").ok());
  REQUIRE(b.apply_update(loaded->take_update()).ok());
  CHECK(b.text() == loaded->text());
}

TEST_CASE("crdt: malformed input is corrupt, not a crash") {
  Document a(1);
  REQUIRE(a.insert(0, "abc").ok());
  std::string update = a.take_update();
  Document b(2);
  parley::Status st = b.apply_update(update.substr(0, update.size() - 1));
  CHECK(st.code() == StatusCode::corrupt);
  CHECK(b.apply_update("nonsense").code() == StatusCode::corrupt);
  CHECK(!Document::load_snapshot(update, 3).ok());
  CHECK(!parley::crdt::decode_state_vector("PC\x01V\x05").ok());
  // A run claiming 2^40 characters.
  std::string huge("PC\x01U\x01\x01\x01\x80\x80\x80\x80\x80\x80\x01\x00\x00\x00\x00", 17);
  st = b.apply_update(huge);
  CHECK(st.code() == StatusCode::corrupt);
  CHECK(b.text().empty());
}

TEST_CASE("crdt: tombstone budget and rebase") {
  Document a(1);
  for (int i = 0; i < 100; ++i) {
    REQUIRE(a.insert(0, "0123456789").ok());
    REQUIRE(a.remove(0, 10).ok());
  }
  REQUIRE(a.insert(0, "kept").ok());
  CHECK(a.over_budget(parley::crdt::TombstoneBudget{1u << 30, 8.0}));
  Document r1 = a.rebased(1);
  Document r2 = a.rebased(2);
  CHECK(!r1.over_budget(parley::crdt::TombstoneBudget{1u << 30, 8.0}));
  CHECK(r1.text() == "kept");
  REQUIRE(r1.insert(4, "!").ok());
  REQUIRE(r2.apply_update(r1.take_update()).ok());
  CHECK(r2.text() == "kept!");
}

TEST_CASE("crdt: documents on different threads share nothing") {
  // One document per thread, as the threading contract allows; run under TSan.
  // Results are checked on the main thread (doctest's REQUIRE throws).
  constexpr int kThreads = 4;
  std::vector<std::string> updates(kThreads);
  std::vector<int> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &updates, &failures] {
      auto i = static_cast<size_t>(t);
      Document doc(static_cast<parley::crdt::AgentId>(t + 1));
      for (int k = 0; k < 500; ++k) {
        failures[i] += doc.insert(doc.size() / 2, "ab").ok() ? 0 : 1;
        if (k % 3 == 0) failures[i] += doc.remove(doc.size() / 3, 1).ok() ? 0 : 1;
        if (k % 50 == 0) doc.undo();
      }
      auto copy = Document::load_snapshot(doc.encode_snapshot(), 100 + i);
      failures[i] += copy.ok() && copy->text() == doc.text() ? 0 : 1;
      updates[i] = doc.take_update();
    });
  }
  for (std::thread& th : threads) th.join();
  Document a(50);
  Document b(51);
  for (int t = 0; t < kThreads; ++t) {
    CHECK(failures[static_cast<size_t>(t)] == 0);
    REQUIRE(a.apply_update(updates[static_cast<size_t>(t)]).ok());
  }
  for (int t = kThreads; t-- > 0;) REQUIRE(b.apply_update(updates[static_cast<size_t>(t)]).ok());
  CHECK(a.text() == b.text());
  CHECK(a.size() > 0);
}
