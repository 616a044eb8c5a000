// The server's moderation: the word filter's file format, whole-word and
// phrase matching, masking, and the per-user rate limiter on synthetic time.
#include <doctest/doctest.h>

#include <fstream>

#include "moderation.hpp"
#include "protocol/codec.hpp"
#include "server_fixture.hpp"

using namespace parley;
using namespace parley::server;
using parley::test::TempDir;
using Verdict = WordFilter::Verdict;

namespace {

WordFilter filter_of(std::string_view rules) {
  auto filter = WordFilter::parse(rules, "words.txt");
  REQUIRE_MESSAGE(filter.ok(), filter.status().to_string());
  return std::move(*filter);
}

// The error message of parsing `rules`, which must fail.
std::string parse_error(std::string_view rules) {
  auto filter = WordFilter::parse(rules, "words.txt");
  REQUIRE_FALSE(filter.ok());
  CHECK(filter.status().code() == StatusCode::invalid_argument);
  return filter.status().message();
}

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

Verdict verdict(const WordFilter& filter, std::string_view text) {
  return filter.apply(text).verdict;
}

std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

using Clock = RateLimiter::Clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

}  // namespace

TEST_CASE("word filter: parse errors name the origin and the 1-based line") {
  CHECK(parse_error("reject a\nblock b\n") ==
        "words.txt:2: unknown action \"block\": expected \"reject\" or \"mask\"");
  CHECK(contains(parse_error("# c\n\nReject a\n"), "words.txt:3: unknown action \"Reject\""));
  CHECK(contains(parse_error("mask a\nreject\n"), "words.txt:2: \"reject\" without a term"));
  CHECK(contains(parse_error("mask   \t \n"), "words.txt:1: \"mask\" without a term"));
  CHECK(contains(parse_error("mask a\n\nreject " + std::string(129, 'x') + "\n"),
                 "words.txt:3: term \"xxxxxxxxxxxxxxxx...\" is 129 bytes, longer than 128"));
  std::string long_utf8 = std::string(15, 'x');
  for (int i = 0; i < 60; ++i) long_utf8 += "é";
  CHECK(parse_error("mask " + long_utf8) ==  // cut on a code point boundary
        "words.txt:1: term \"xxxxxxxxxxxxxxx...\" is 135 bytes, longer than 128");
  CHECK(contains(parse_error("mask ok\nmask bad\xff\n"), "words.txt:2: invalid utf-8"));
  CHECK(contains(parse_error("mask \xc3\n"), "words.txt:1: invalid utf-8"));

  // 128 bytes is fine, trailing whitespace not counted.
  CHECK(filter_of("reject " + std::string(128, 'x') + "   \n").size() == 1);

  std::string rules = "# many\n";
  for (int i = 0; i < 10'000; ++i) rules += "mask w" + std::to_string(i) + "\n";
  CHECK(filter_of(rules).size() == 10'000);
  rules += "\nreject one-too-many\n";
  CHECK(parse_error(rules) == "words.txt:10003: more than 10000 rules");
}

TEST_CASE("word filter: comments, blank lines, CRLF and surrounding whitespace are ignored") {
  WordFilter filter = filter_of(
      "# a comment\n"
      "\n"
      "   \t\n"
      "  # an indented comment\r\n"
      "reject   spam  \r\n"
      "\tmask\theck\n"
      "mask #tag");  // no final newline; '#' inside a rule is part of the term
  CHECK(filter.size() == 3);
  CHECK_FALSE(filter.empty());
  CHECK(verdict(filter, "buy spam now") == Verdict::rejected);
  CHECK(filter.apply("oh heck").text == "oh ****");
  CHECK(filter.apply("see #tag").text == "see ****");
  CHECK(verdict(filter, "a comment") == Verdict::pass);

  WordFilter empty = filter_of("# nothing\n\n");
  CHECK(empty.empty());
  CHECK(empty.size() == 0);
  auto out = empty.apply("anything at all");
  CHECK(out.verdict == Verdict::pass);
  CHECK(out.text == "anything at all");

  WordFilter none;
  CHECK(none.empty());
  CHECK(none.apply("x").text == "x");
}

TEST_CASE("word filter: ASCII letters match case-insensitively") {
  WordFilter filter = filter_of("reject BadWord\nmask CAFé\n");
  for (const char* text : {"badword", "BADWORD", "a bAdWoRd!", "BadWord"}) {
    CAPTURE(text);
    auto out = filter.apply(text);
    CHECK(out.verdict == Verdict::rejected);
    CHECK(out.term == "BadWord");  // as configured
    CHECK(out.text == text);       // unchanged
  }
  CHECK(filter.apply("un café").text == "un ****");
  CHECK(filter.apply("un CAFé").text == "un ****");
  // Bytes >= 0x80 compare exactly: "É" is not "é".
  CHECK(verdict(filter, "un CAFÉ") == Verdict::pass);
}

TEST_CASE("word filter: terms match whole words only") {
  WordFilter filter = filter_of("reject ass\n");
  for (const char* text :
       {"class", "assistant", "bass", "ass_hat", "ass1", "2ass", "classy ass_"}) {
    CAPTURE(text);
    CHECK(verdict(filter, text) == Verdict::pass);
  }
  for (const char* text : {"ass", "ass!", "(ass)", "an ass.", "ASS-hat", "x,ass,y", "\tass\n"}) {
    CAPTURE(text);
    CHECK(verdict(filter, text) == Verdict::rejected);
  }
}

TEST_CASE("word filter: UTF-8 letters count as word characters") {
  WordFilter filter = filter_of("reject ass\nmask née\n");
  CHECK(verdict(filter, "éass") == Verdict::pass);
  CHECK(verdict(filter, "assé") == Verdict::pass);
  CHECK(verdict(filter, "日本ass") == Verdict::pass);
  CHECK(verdict(filter, "é ass") == Verdict::rejected);
  CHECK(verdict(filter, "ass\xc2\xa0") == Verdict::pass);  // U+00A0 is a byte >= 0x80
  CHECK(verdict(filter, "renée") == Verdict::pass);
  CHECK(filter.apply("née,").text == "***,");
}

TEST_CASE("word filter: phrases match their words across runs of whitespace") {
  WordFilter filter = filter_of("mask bad   word\nreject go\taway now\n");
  CHECK(filter.apply("a bad word").text == "a ********");
  // Every code point of the span is masked, the whitespace between included.
  CHECK(filter.apply("a BAD \n\t word!").text == "a ***********!");
  CHECK(filter.apply("bad\r\nword").text == "*********");
  CHECK(verdict(filter, "badword") == Verdict::pass);
  CHECK(verdict(filter, "bad-word") == Verdict::pass);
  CHECK(verdict(filter, "bad words") == Verdict::pass);
  CHECK(verdict(filter, "bad") == Verdict::pass);
  CHECK(verdict(filter, "word bad") == Verdict::pass);
  CHECK(verdict(filter, "please go  away\n\nnow.") == Verdict::rejected);
  CHECK(verdict(filter, "go away") == Verdict::pass);
  CHECK(verdict(filter, "go away nowhere") == Verdict::pass);
}

TEST_CASE("word filter: punctuation inside a term must appear as written") {
  WordFilter filter = filter_of("mask f-ing\nmask c++\n");
  CHECK(filter.apply("the f-ing thing").text == "the ***** thing");
  CHECK(filter.apply("the F-ING thing").text == "the ***** thing");
  CHECK(verdict(filter, "f - ing") == Verdict::pass);
  CHECK(verdict(filter, "f-ingers") == Verdict::pass);
  CHECK(filter.apply("I like c++.").text == "I like ***.");
  CHECK(verdict(filter, "c+") == Verdict::pass);
  CHECK(verdict(filter, "c++x") == Verdict::pass);  // followed by a word character
}

TEST_CASE("word filter: masking keeps one '*' per code point and valid UTF-8") {
  WordFilter filter = filter_of("mask crème brûlée\nmask 日本\nmask x\n");
  std::string text = "one crème   brûlée, 日本 and x x";
  auto out = filter.apply(text);
  CHECK(out.verdict == Verdict::masked);
  CHECK(out.term.empty());
  CHECK(out.text == "one **************, ** and * *");
  CHECK(wire::is_valid_utf8(out.text));
  CHECK(code_points(out.text) == code_points(text));
  CHECK(code_points("crème   brûlée") == 14);
}

TEST_CASE("word filter: reject wins over mask") {
  WordFilter filter = filter_of("mask foo\nreject bar\nmask bar\nmask dup\nreject DUP\n");
  auto out = filter.apply("foo bar");
  CHECK(out.verdict == Verdict::rejected);
  CHECK(out.term == "bar");
  CHECK(out.text == "foo bar");
  // The same term configured both ways.
  CHECK(filter.apply("dup").term == "DUP");
  CHECK(filter.apply("bar").verdict == Verdict::rejected);
  CHECK(filter.apply("foo").text == "***");

  // The rejecting term that matches first in the text.
  WordFilter two = filter_of("reject b\nreject a\n");
  CHECK(two.apply("x a b").term == "a");
  CHECK(two.apply("x b a").term == "b");

  // A rejecting phrase over masked words, and the other way round.
  WordFilter phrases = filter_of("mask bad\nreject bad idea\nreject worse\nmask worse idea\n");
  CHECK(phrases.apply("a bad idea").term == "bad idea");
  CHECK(phrases.apply("a bad thing").text == "a *** thing");
  CHECK(phrases.apply("a worse idea").term == "worse");
}

TEST_CASE("word filter: overlapping masked spans") {
  WordFilter filter = filter_of("mask foo bar\nmask bar baz\nmask baz\n");
  CHECK(filter.apply("a foo bar baz b").text == "a *********** b");
  CHECK(filter.apply("bar foo").text == "bar foo");
}

TEST_CASE("word filter: 10,000 terms against 8 KiB of text") {
  std::string rules;
  for (int i = 0; i < 9'000; ++i) rules += "mask word" + std::to_string(i) + "\n";
  for (int i = 0; i < 999; ++i) {
    rules += "mask phrase" + std::to_string(i) + " of several words " + std::to_string(i) + "\n";
  }
  rules += "reject forbidden\n";
  WordFilter filter = filter_of(rules);
  CHECK(filter.size() == 10'000);

  std::string text;
  for (int i = 0; text.size() < 8 * 1024; ++i) {
    text += (i % 7 == 0) ? "word" + std::to_string(i) + " " : "plain words,  ";
    if (i % 50 == 0) text += "phrase3 of several words 3 ";
  }
  text.resize(8 * 1024);
  auto out = filter.apply(text);
  CHECK(out.verdict == Verdict::masked);
  CHECK(out.text.size() == text.size());  // ASCII: one '*' per byte
  // "word0 phrase3 of several words 3 plain words,  "
  CHECK(out.text.rfind("***** ************************** plain words,  ", 0) == 0);
  CHECK_FALSE(contains(out.text, "word7"));
  CHECK_FALSE(contains(out.text, "phrase3"));
  CHECK(contains(out.text, "plain words,  "));

  CHECK(filter.apply(text + " forbidden").verdict == Verdict::rejected);
}

TEST_CASE("word filter: load reads a file and names it in errors") {
  TempDir dir;
  std::string path = (dir.path / "words.txt").string();
  {
    std::ofstream out(path);
    out << "# site rules\nreject spam\nmask heck\n";
  }
  auto filter = WordFilter::load(path);
  REQUIRE_MESSAGE(filter.ok(), filter.status().to_string());
  CHECK(filter->size() == 2);
  CHECK(filter->apply("heck").text == "****");

  {
    std::ofstream out(path);
    out << "reject spam\nnope x\n";
  }
  auto bad = WordFilter::load(path);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::invalid_argument);
  CHECK(contains(bad.status().message(), path + ":2: unknown action \"nope\""));

  std::string missing = (dir.path / "missing.txt").string();
  auto none = WordFilter::load(missing);
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().code() == StatusCode::io_error);
  CHECK(contains(none.status().message(), "\"" + missing + "\""));
}

TEST_CASE("rate limiter: a burst, then refusals with the time until the next token") {
  RateLimiter limiter(1.0, 3);  // one a second, bursts of three
  REQUIRE(limiter.enabled());
  Clock::time_point t0{seconds(1000)};
  CHECK(limiter.take("alice", t0) == 0);
  CHECK(limiter.take("alice", t0) == 0);
  CHECK(limiter.take("alice", t0) == 0);
  CHECK(limiter.take("alice", t0) == 1000);
  CHECK(limiter.take("alice", t0 + milliseconds(1)) == 999);
  CHECK(limiter.take("alice", t0 + milliseconds(999)) == 1);
  CHECK(limiter.take("alice", t0 + std::chrono::microseconds(999'999)) == 1);  // at least 1
  // Refill: one token after a second, three after three seconds, never more.
  CHECK(limiter.take("alice", t0 + milliseconds(1000)) == 0);
  CHECK(limiter.take("alice", t0 + milliseconds(1000)) == 1000);
  Clock::time_point t1 = t0 + seconds(60);
  CHECK(limiter.take("alice", t1) == 0);
  CHECK(limiter.take("alice", t1) == 0);
  CHECK(limiter.take("alice", t1) == 0);
  CHECK(limiter.take("alice", t1) == 1000);
}

TEST_CASE("rate limiter: fractional rates refill exactly") {
  auto spec = parse_rate_limit("5/15,burst=2");  // one every 3 s
  REQUIRE(spec.ok());
  RateLimiter limiter(spec->first, spec->second);
  Clock::time_point t0{seconds(5)};
  CHECK(limiter.take("bob", t0) == 0);
  CHECK(limiter.take("bob", t0) == 0);
  CHECK(limiter.take("bob", t0) == 3000);
  CHECK(limiter.take("bob", t0 + milliseconds(2999)) == 1);
  CHECK(limiter.take("bob", t0 + milliseconds(3000)) == 0);
  CHECK(limiter.take("bob", t0 + milliseconds(3000)) == 3000);
  CHECK(limiter.take("bob", t0 + milliseconds(4500)) == 1500);
}

TEST_CASE("rate limiter: a refused take consumes nothing") {
  RateLimiter limiter(2.0, 1);  // one every 500 ms
  Clock::time_point t0{seconds(1)};
  CHECK(limiter.take("alice", t0) == 0);
  for (int i = 1; i < 500; i += 7) {
    CHECK(limiter.take("alice", t0 + milliseconds(i)) == 500 - i);  // hammering does not delay
  }
  CHECK(limiter.take("alice", t0 + milliseconds(500)) == 0);
}

TEST_CASE("rate limiter: each key has its own bucket") {
  RateLimiter limiter(1.0, 2);
  Clock::time_point t0{seconds(1)};
  CHECK(limiter.take("alice", t0) == 0);
  CHECK(limiter.take("alice", t0) == 0);
  CHECK(limiter.take("alice", t0) == 1000);
  CHECK(limiter.take("bob", t0) == 0);
  CHECK(limiter.take("bob", t0) == 0);
  CHECK(limiter.take("bob", t0) == 1000);
  CHECK(limiter.take("carol", t0) == 0);
  CHECK(limiter.tracked() == 3);
}

TEST_CASE("rate limiter: prune drops only buckets that are full again") {
  RateLimiter limiter(1.0, 3);
  Clock::time_point t0{seconds(100)};
  CHECK(limiter.take("alice", t0) == 0);                // full again at t0 + 1 s
  for (int i = 0; i < 3; ++i) limiter.take("bob", t0);  // full again at t0 + 3 s
  CHECK(limiter.tracked() == 2);

  limiter.prune(t0 + milliseconds(999));
  CHECK(limiter.tracked() == 2);
  limiter.prune(t0 + seconds(1));
  CHECK(limiter.tracked() == 1);
  // Bob is not full yet: his bucket is kept and still has only two tokens.
  limiter.prune(t0 + seconds(2));
  CHECK(limiter.tracked() == 1);
  CHECK(limiter.take("bob", t0 + seconds(2)) == 0);
  CHECK(limiter.take("bob", t0 + seconds(2)) == 0);
  CHECK(limiter.take("bob", t0 + seconds(2)) == 1000);
  limiter.prune(t0 + seconds(60));
  CHECK(limiter.tracked() == 0);
  // A pruned key starts again with a full burst.
  Clock::time_point t1 = t0 + seconds(61);
  CHECK(limiter.take("bob", t1) == 0);
  CHECK(limiter.take("bob", t1) == 0);
  CHECK(limiter.take("bob", t1) == 0);
  CHECK(limiter.take("bob", t1) == 1000);
}

TEST_CASE("rate limiter: disabled limiters always allow and track nothing") {
  for (RateLimiter limiter : {RateLimiter(), RateLimiter(0, 10), RateLimiter(-1, 10)}) {
    CHECK_FALSE(limiter.enabled());
    for (int i = 0; i < 1000; ++i) CHECK(limiter.take("alice", Clock::time_point{}) == 0);
    CHECK(limiter.tracked() == 0);
  }
  RateLimiter zero_burst(1.0, 0);  // counts as a burst of one
  CHECK(zero_burst.take("alice", Clock::time_point{}) == 0);
  CHECK(zero_burst.take("alice", Clock::time_point{}) == 1000);
}

TEST_CASE("parse_rate_limit: good specs") {
  using Limit = std::pair<double, double>;
  auto check = [](std::string_view spec, Limit expected) {
    CAPTURE(spec);
    auto parsed = parse_rate_limit(spec);
    REQUIRE_MESSAGE(parsed.ok(), parsed.status().to_string());
    CHECK(parsed->first == doctest::Approx(expected.first));
    CHECK(parsed->second == expected.second);
  };
  check("0", {0, 0});
  check("off", {0, 0});
  check("20/10", {2.0, 20});
  check("1/1", {1.0, 1});
  check("5/60,burst=2", {5.0 / 60, 2});
  check("1/3,burst=10", {1.0 / 3, 10});
}

TEST_CASE("parse_rate_limit: bad specs say what is wrong") {
  auto error = [](std::string_view spec) {
    CAPTURE(spec);
    auto parsed = parse_rate_limit(spec);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == StatusCode::invalid_argument);
    return parsed.status().message();
  };
  CHECK(contains(error(""), "expected N/S"));
  CHECK(contains(error("20"), "rate limit \"20\": expected N/S"));
  CHECK(contains(error("on"), "expected N/S"));
  CHECK(contains(error("x/10"), "message count \"x\" is not a whole number"));
  CHECK(contains(error("/10"), "message count \"\" is not a whole number"));
  CHECK(contains(error("20/"), "seconds \"\" is not a whole number"));
  CHECK(contains(error("20/1.5"), "seconds \"1.5\" is not a whole number"));
  CHECK(contains(error("-1/10"), "message count \"-1\" is not a whole number"));
  CHECK(contains(error("0/10"), "message count 0 is not within 1..1000000"));
  CHECK(contains(error("20/0"), "seconds 0 is not within 1..86400"));
  CHECK(contains(error("20/100000"), "seconds 100000 is not within 1..86400"));
  CHECK(contains(error("99999999999999999999/1"), "is not a whole number"));
  CHECK(contains(error("20/10,burst=0"), "burst 0 is not within 1..1000000"));
  CHECK(contains(error("20/10,burst="), "burst \"\" is not a whole number"));
  CHECK(contains(error("20/10,burst=5x"), "burst \"5x\" is not a whole number"));
  CHECK(contains(error("20/10,rate=5"), "unknown option \"rate=5\": expected burst=B"));
  CHECK(contains(error("20/10/5"), "seconds \"10/5\" is not a whole number"));
  CHECK(contains(error(" 20/10"), "message count \" 20\" is not a whole number"));
}
