// Message franking (docs/security.md, "Verifiable reports").
#include <doctest/doctest.h>

#include <string>

#include "crypto/franking.hpp"

namespace parley::crypto {
namespace {

const std::string kId = "0123456789abcdef0123456789abcdef";

TEST_CASE("franking: the commitment binds key, id, sender, channel and text") {
  Key32 key = new_franking_key();
  Key32 c{};
  REQUIRE(franking_commit(key, kId, "alice", "@alice+bob", "hello", &c));
  Key32 again{};
  REQUIRE(franking_commit(key, kId, "alice", "@alice+bob", "hello", &again));
  CHECK(equal32(c, again));
  Key32 other{};
  REQUIRE(franking_commit(key, kId, "alice", "@alice+bob", "hellO", &other));
  CHECK_FALSE(equal32(c, other));
  REQUIRE(franking_commit(key, "1123456789abcdef0123456789abcdef", "alice", "@alice+bob", "hello",
                          &other));
  CHECK_FALSE(equal32(c, other));
  REQUIRE(franking_commit(key, kId, "alicE", "@alice+bob", "hello", &other));
  CHECK_FALSE(equal32(c, other));
  REQUIRE(franking_commit(key, kId, "alice", "@alice+bib", "hello", &other));
  CHECK_FALSE(equal32(c, other));
  // Length prefixes: moving a byte from the sender to the channel changes it.
  REQUIRE(franking_commit(key, kId, "alic", "e@alice+bob", "hello", &other));
  CHECK_FALSE(equal32(c, other));
  REQUIRE(franking_commit(new_franking_key(), kId, "alice", "@alice+bob", "hello", &other));
  CHECK_FALSE(equal32(c, other));
  CHECK_FALSE(franking_commit(key, "not an id", "alice", "@alice+bob", "hello", &other));
  CHECK_FALSE(franking_commit(key, "0123456789ABCDEF0123456789abcdef", "alice", "@a", "x", &other));
  CHECK_FALSE(franking_commit(key, kId, std::string(256, 'a'), "@a", "x", &other));
}

TEST_CASE("franking: the server's tag binds the context") {
  Key32 server = new_franking_key();
  Key32 commit = new_franking_key();
  FrankingContext ctx{"@alice+bob", kId, "alice", "phone", 1700000000123};
  Key32 tag = franking_tag(server, ctx, commit);
  CHECK(equal32(tag, franking_tag(server, ctx, commit)));
  FrankingContext moved = ctx;
  moved.ts += 1;
  CHECK_FALSE(equal32(tag, franking_tag(server, moved, commit)));
  moved = ctx;
  moved.device = "laptop";
  CHECK_FALSE(equal32(tag, franking_tag(server, moved, commit)));
  moved = ctx;
  moved.sender = "bob";
  CHECK_FALSE(equal32(tag, franking_tag(server, moved, commit)));
  CHECK_FALSE(equal32(tag, franking_tag(new_franking_key(), ctx, commit)));
  CHECK_FALSE(equal32(tag, franking_tag(server, ctx, new_franking_key())));
}

// A fixed answer, so that another implementation can check itself against
// this one (the inputs are spelled out in docs/security.md).
TEST_CASE("franking: known answers") {
  Key32 key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
  Key32 c{};
  REQUIRE(franking_commit(key, kId, "alice", "@alice+bob", "hello", &c));
  Key32 tag = franking_tag(key, FrankingContext{"@alice+bob", kId, "alice", "phone", 1}, c);
  // Recomputed here from the definitions with HMAC-SHA-256 directly.
  std::string label = std::string("parley-frank-v1") + '\0';
  Bytes data(label.begin(), label.end());
  const std::uint8_t id[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                               0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
  data.insert(data.end(), id, id + 16);
  data.push_back(5);
  for (char ch : std::string("alice")) data.push_back(static_cast<std::uint8_t>(ch));
  data.push_back(10);
  for (char ch : std::string("@alice+bob")) data.push_back(static_cast<std::uint8_t>(ch));
  for (char ch : std::string("hello")) data.push_back(static_cast<std::uint8_t>(ch));
  CHECK(equal32(c, hmac_sha256(key, data)));
  std::string tag_label = std::string("parley-frank-tag-v1") + '\0';
  Bytes t(tag_label.begin(), tag_label.end());
  for (std::string part : {std::string("@alice+bob"), kId, std::string("alice"), std::string("phone")}) {
    t.push_back(0);
    t.push_back(static_cast<std::uint8_t>(part.size()));
    t.insert(t.end(), part.begin(), part.end());
  }
  for (int i = 0; i < 7; ++i) t.push_back(0);
  t.push_back(1);
  t.insert(t.end(), c.begin(), c.end());
  CHECK(equal32(tag, hmac_sha256(key, t)));
}

}  // namespace
}  // namespace parley::crypto
