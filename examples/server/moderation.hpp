// Moderation of what users send: a server-configured word filter and a
// per-user rate limiter.
//
//   auto filter = WordFilter::load("/etc/parley/words.txt");  // "reject TERM" / "mask TERM"
//   WordFilter::Outcome out = filter->apply(text);
//   if (out.verdict == WordFilter::Verdict::rejected) { /* refuse with "filtered" */ }
//
//   RateLimiter limiter(2.0, 10);  // 2 messages a second, bursts of 10
//   if (std::int64_t wait_ms = limiter.take(user, RateLimiter::Clock::now())) { /* refuse */ }
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "parley/status.hpp"

namespace parley::server {

// A server-configured word filter. Each term either rejects a message (the
// send is refused with error "filtered") or is masked (each character of the
// match replaced by '*').
//
// A term matches case-insensitively for ASCII letters (other bytes compare
// exactly) and as whole words only: a match is neither preceded nor followed
// by a word character (ASCII letter, digit, '_', or any byte >= 0x80, so that
// UTF-8 letters count). Whitespace inside a term matches any run of
// whitespace; punctuation inside a term ("f-ing") must appear as written.
//
// Immutable once built: apply() is safe to call from any thread.
class WordFilter {
 public:
  enum class Action { reject, mask };
  enum class Verdict { pass, masked, rejected };
  struct Outcome {
    Verdict verdict = Verdict::pass;
    std::string text;  // the text to store: masked when verdict is masked, else unchanged
    std::string term;  // for rejected: the rejecting term that matches first in the text, as
                       // configured
  };

  static constexpr std::size_t kMaxTermBytes = 128;
  static constexpr std::size_t kMaxRules = 10'000;

  WordFilter() = default;  // empty: passes everything

  // File format: one rule per line, "reject TERM" or "mask TERM" (TERM is the
  // rest of the line, trimmed, and may be a phrase); blank lines and lines
  // starting with '#' are ignored. Errors (invalid_argument) name `origin`
  // and the 1-based line: unknown action, empty term, term longer than
  // kMaxTermBytes, invalid UTF-8, more than kMaxRules rules.
  static Result<WordFilter> parse(std::string_view text, const std::string& origin);
  // Reads the file at `path`, then parse(); io_error names the path.
  static Result<WordFilter> load(const std::string& path);

  // Reject wins over mask. Masking replaces each UTF-8 code point of every
  // matched span (whitespace between a phrase's words included) with one '*'.
  Outcome apply(std::string_view text) const;

  std::size_t size() const { return rule_count_; }  // number of rules
  bool empty() const { return rule_count_ == 0; }

 private:
  // What the terms with one key ask for; a key is a term in lower case with
  // each run of whitespace as one ' '.
  struct Rule {
    bool reject = false;
    bool mask = false;
    std::string reject_term;  // the first rejecting term with this key, as configured
  };

  void add(Action action, std::string_view term);
  // True if some term's key is longer than `key` and starts with it.
  bool continues(const std::string& key) const;

  std::unordered_map<std::string, Rule> rules_;  // by key
  std::vector<std::string> phrases_;             // keys of several tokens, sorted, unique
  std::size_t rule_count_ = 0;
};

// Token buckets keyed by user: `rate` tokens per second refill up to `burst`.
//
// Kept as the time each bucket will be full again (GCRA), in whole clock
// ticks, so that retry-after values are exact.
//
// Use from one thread at a time (the server's loop thread).
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  RateLimiter() = default;  // disabled: always allows
  // rate <= 0 disables. A burst below 1 counts as 1. Rates are clamped to
  // 1e-6..1e9 per second and the burst to at most 1e9.
  RateLimiter(double rate_per_s, double burst);

  bool enabled() const { return interval_ > Clock::duration::zero(); }

  // Takes one token for `key` at `now`. Returns 0 when allowed, else the
  // milliseconds until one token will be available (at least 1). A refused
  // take consumes nothing.
  std::int64_t take(const std::string& key, Clock::time_point now);

  // Drops buckets that are full again at `now` (they behave exactly like new
  // ones), so memory stays bounded by the users active within the last
  // burst/rate seconds.
  void prune(Clock::time_point now);

  std::size_t tracked() const { return full_at_.size(); }  // buckets held

 private:
  Clock::duration interval_{0};   // time to refill one token; 0 when disabled
  Clock::duration tolerance_{0};  // (burst - 1) * interval_
  // When each bucket is full again; a bucket with full_at <= now holds
  // `burst` tokens, and it holds one token or more while full_at - now <=
  // tolerance_.
  std::unordered_map<std::string, Clock::time_point> full_at_;
};

// Parses a rate limit flag: "N/S" or "N/S,burst=B" is N messages per S
// seconds (rate N/S per second) with bursts of B (default N); "0" or "off"
// disables and gives {0, 0}. N, S and B are whole numbers of at least 1
// (N and B at most 1,000,000, S at most 86,400). Returns {rate per second,
// burst}.
Result<std::pair<double, double>> parse_rate_limit(std::string_view spec);

}  // namespace parley::server
