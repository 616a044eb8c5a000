// Real editing histories (../shared/data/editing-traces): the sequential trace
// replayed as local edits, the concurrent ones with a replica per agent. Each
// is a ctest entry of its own (tests/crdt/CMakeLists.txt); the plain
// crdt_tests entry skips them.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "editing_trace.hpp"

using namespace parley::crdt;

namespace {

bool skip_traces() { return std::getenv("PARLEY_SKIP_TRACES") != nullptr; }

test::Trace load(const std::string& name) {
  test::Trace trace;
  std::string error;
  REQUIRE_MESSAGE(test::load_trace(name, &trace, &error), error);
  return trace;
}

void check_sequential(const std::string& name) {
  if (skip_traces()) return;
  test::Trace trace = load(name);
  Document doc(1);
  parley::Status st = test::replay_local(trace, doc);
  REQUIRE_MESSAGE(st.ok(), st.message());
  CHECK(doc.text() == trace.end_content);
  auto loaded = Document::load_snapshot(doc.encode_snapshot(), 2);
  REQUIRE(loaded.ok());
  CHECK(loaded->text() == trace.end_content);
  Document copy(3);
  REQUIRE(copy.apply_update(doc.encode_update({})).ok());
  CHECK(copy.text() == trace.end_content);
}

void check_concurrent(const std::string& name) {
  if (skip_traces()) return;
  test::Trace trace = load(name);
  auto replicas = test::replay_concurrent(trace);
  REQUIRE_MESSAGE(replicas.ok(), replicas.status().message());
  for (Document& doc : *replicas) {
    CHECK(doc.pending() == 0);
    CHECK(doc.text() == trace.end_content);
  }
  std::string snap = (*replicas)[0].encode_snapshot();
  auto loaded = Document::load_snapshot(snap, 99);
  REQUIRE(loaded.ok());
  CHECK(loaded->text() == trace.end_content);
}

}  // namespace

TEST_CASE("trace clownschool_flat") { check_sequential("clownschool_flat"); }
TEST_CASE("trace concurrent/clownschool") { check_concurrent("concurrent/clownschool"); }
TEST_CASE("trace concurrent/friendsforever") { check_concurrent("concurrent/friendsforever"); }

TEST_CASE("trace concurrent/clownschool catch-up from a snapshot") {
  if (skip_traces()) return;
  test::Trace trace = load("concurrent/clownschool");
  auto replicas = test::replay_concurrent(trace);
  REQUIRE(replicas.ok());
  auto loaded = Document::load_snapshot((*replicas)[0].encode_snapshot(), 99);
  REQUIRE(loaded.ok());
  // A loaded document numbers characters agent by agent, not causally: the
  // newcomer's pending queue has to sort the update out.
  Document newcomer(100);
  REQUIRE(newcomer.apply_update(loaded->encode_update({})).ok());
  CHECK(newcomer.pending() == 0);
  CHECK(newcomer.text() == trace.end_content);
}
