// Session queues and frame packing, and WebSocket message reassembly.
#include <doctest/doctest.h>

#include "protocol/codec.hpp"
#include "session.hpp"

using namespace parley;
using namespace parley::server;

namespace {

class TestSession final : public Session {
 public:
  TestSession(std::size_t max_frame, std::size_t max_queued) : Session(1, max_frame, max_queued) {}
  std::string describe() const override { return "test#1"; }
  int flush_requests = 0;

 protected:
  void request_flush() override { ++flush_requests; }
};

Encoded item(std::size_t size, char fill = 'x') {
  // A JSON object of exactly `size` bytes: {"p":"xxx"}
  return std::make_shared<const std::string>("{\"p\":\"" + std::string(size - 8, fill) + "\"}");
}

}  // namespace

TEST_CASE("session: frames pack as many queued objects as fit, as wire::pack does") {
  TestSession s(1000, 1 << 20);
  std::vector<Encoded> items;
  for (int i = 0; i < 10; ++i) items.push_back(item(100, static_cast<char>('a' + i)));
  for (const auto& i : items) REQUIRE(s.enqueue(i));
  CHECK(s.flush_requests == 1);  // asked once, when the queue became non-empty
  CHECK(s.queued_bytes() == 1000);

  std::string frame;
  REQUIRE(s.next_frame(&frame, 0));
  // 9 objects: 9 * 100 + 8 commas + 2 brackets = 910; a tenth would not fit.
  CHECK(frame == wire::pack({items.begin(), items.begin() + 9}));
  CHECK(frame.size() == 910);
  auto decoded = wire::decode_client_frame(frame);  // any JSON array of objects
  CHECK(decoded.size() == 9);

  REQUIRE(s.next_frame(&frame, 16));
  CHECK(frame.substr(0, 16) == std::string(16, '\0'));
  CHECK(frame.substr(16) == *items[9]);  // one alone is sent as is
  CHECK_FALSE(s.next_frame(&frame, 0));
  CHECK(s.queued_bytes() == 0);
  CHECK_FALSE(s.has_output());
}

TEST_CASE("session: an object larger than a frame still goes out, alone") {
  TestSession s(1000, 1 << 20);
  auto big = item(5000);
  REQUIRE(s.enqueue(item(100)));
  REQUIRE(s.enqueue(big));
  std::string frame;
  REQUIRE(s.next_frame(&frame, 0));
  CHECK(frame.size() == 100);
  REQUIRE(s.next_frame(&frame, 0));
  CHECK(frame == *big);
}

TEST_CASE("session: a full queue closes the session as a slow consumer") {
  TestSession s(1000, 1000);
  for (int i = 0; i < 10; ++i) REQUIRE(s.enqueue(item(100)));
  CHECK_FALSE(s.closing());
  CHECK_FALSE(s.enqueue(item(100)));
  CHECK(s.closing());
  CHECK(s.close_code() == 1008);
  CHECK(s.close_reason() == "slow_consumer");
  CHECK_FALSE(s.has_output());  // dropped: the client resyncs by history
  CHECK(s.queued_bytes() == 0);
  CHECK(s.enqueue(item(100)));  // ignored once closing
  CHECK_FALSE(s.has_output());
}

TEST_CASE("session: close after the queued output keeps it") {
  TestSession s(1000, 1 << 20);
  REQUIRE(s.enqueue(item(50)));
  s.close(4001, "invalid_token");
  CHECK(s.closing());
  CHECK(s.has_output());
  s.close(1001, "shutting_down");  // the first close wins
  CHECK(s.close_code() == 4001);
}

TEST_CASE("frame assembler: chunks, fragments, limits and binary") {
  using Outcome = FrameAssembler::Outcome;
  FrameAssembler a(10);
  CHECK(a.add("{\"a\"", 4, false, false) == Outcome::partial);
  CHECK(a.add(":1}", 3, false, true) == Outcome::text);
  CHECK(a.text() == "{\"a\":1}");

  CHECK(a.add("0123456789", 10, false, true) == Outcome::text);  // exactly the limit

  CHECK(a.add("012345", 6, false, false) == Outcome::partial);
  CHECK(a.add("6789X", 5, false, false) == Outcome::partial);
  CHECK(a.add("more", 4, false, true) == Outcome::too_large);

  CHECK(a.add("ok", 2, false, true) == Outcome::text);  // the next message is fine
  CHECK(a.text() == "ok");

  CHECK(a.add("\x01\x02", 2, true, false) == Outcome::partial);
  CHECK(a.add("\x03", 1, false, true) == Outcome::binary);  // the opcode of the first chunk
  CHECK(a.add("", 0, false, true) == Outcome::text);
  CHECK(a.text().empty());
}
