#include <doctest/doctest.h>

#include "parley/types.hpp"
#include "parley/status.hpp"

using namespace parley;

TEST_CASE("channel names") {
  CHECK(check_channel_name("general").empty());
  CHECK(check_channel_name("caf\xc3\xa9-talk_2").empty());
  CHECK(check_channel_name(std::string(64, 'x')).empty());
  CHECK_FALSE(check_channel_name("").empty());
  CHECK_FALSE(check_channel_name(std::string(65, 'x')).empty());
  auto spaced = check_channel_name("gen eral");
  CHECK(spaced == "channel \"gen eral\": name may not contain spaces");
  CHECK_FALSE(check_channel_name("tab\there").empty());
  CHECK_FALSE(check_channel_name("nul\x01").empty());
  CHECK_FALSE(check_channel_name("\xc2\x85next-line").empty());
  CHECK_FALSE(check_channel_name("nbsp\xc2\xa0").empty());
  CHECK_FALSE(check_channel_name("\xff").empty());
}

TEST_CASE("user names") {
  CHECK(check_user_name("alice").empty());
  CHECK(check_user_name("bob.smith@example-1").empty());
  CHECK_FALSE(check_user_name("").empty());
  CHECK_FALSE(check_user_name("..").empty());
  CHECK_FALSE(check_user_name("-x").empty());
  CHECK_FALSE(check_user_name("a/b").empty());
  CHECK_FALSE(check_user_name("a b").empty());
  CHECK_FALSE(check_user_name(std::string(65, 'a')).empty());
}

TEST_CASE("message ids") {
  MessageId a = MessageId::random();
  MessageId b = MessageId::random();
  CHECK_FALSE(a == b);
  std::string hex = a.hex();
  CHECK(hex.size() == 32);
  MessageId parsed;
  CHECK(MessageId::parse(hex, &parsed));
  CHECK(parsed == a);
  CHECK_FALSE(MessageId::parse("xyz", &parsed));
  CHECK_FALSE(MessageId::parse(std::string(32, 'g'), &parsed));
  CHECK_FALSE(MessageId::parse(std::string(31, 'a'), &parsed));
}

TEST_CASE("timestamps are ISO-8601 UTC with milliseconds") {
  CHECK(format_timestamp(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_timestamp(1700000000123) == "2023-11-14T22:13:20.123Z");
}

TEST_CASE("status") {
  Status ok;
  CHECK(ok.ok());
  Status s(StatusCode::already_exists, "channel \"general\" exists", "channel_exists");
  CHECK_FALSE(s.ok());
  CHECK(s.reason() == "channel_exists");
  CHECK(s.to_string() == "channel_exists: channel \"general\" exists");
  CHECK(Status(StatusCode::offline, "x").reason() == "offline");
  Result<int> r = 5;
  CHECK(r.ok());
  CHECK(*r == 5);
  Result<int> e = Status(StatusCode::timeout, "late");
  CHECK_FALSE(e.ok());
  CHECK(e.status().code() == StatusCode::timeout);
}
