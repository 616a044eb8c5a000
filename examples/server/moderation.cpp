#include "moderation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "protocol/codec.hpp"

namespace parley::server {
namespace {

bool is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Bytes >= 0x80 count so that UTF-8 letters (and so whole UTF-8 words) do.
bool is_word(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c >= 0x80;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && is_space(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// A token of a text: a maximal run of word characters, or one byte that is
// neither a word character nor whitespace. Offsets are into the text.
struct Token {
  std::size_t begin = 0;
  std::size_t end = 0;
  bool space_before = false;  // whitespace separates it from the previous token
};

std::vector<Token> tokenize(std::string_view text) {
  std::vector<Token> tokens;
  bool space = false;
  std::size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    if (is_space(c)) {
      space = true;
      ++i;
      continue;
    }
    Token token{i, i + 1, space};
    if (is_word(c)) {
      while (token.end < text.size() && is_word(static_cast<unsigned char>(text[token.end]))) {
        ++token.end;
      }
    }
    tokens.push_back(token);
    i = token.end;
    space = false;
  }
  return tokens;
}

// Appends token `t` of `lowered` to a key: tokens that whitespace separates
// are joined by one ' ', adjacent ones are not. The key stays unambiguous
// because word tokens are maximal runs and other tokens single bytes.
void append_token(std::string* key, std::string_view lowered, const Token& t) {
  if (!key->empty() && t.space_before) *key += ' ';
  key->append(lowered.substr(t.begin, t.end - t.begin));
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = lower(c);
  return out;
}

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// `text` with each code point inside `spans` (sorted, disjoint) replaced by
// one '*'.
std::string mask_spans(std::string_view text,
                       const std::vector<std::pair<std::size_t, std::size_t>>& spans) {
  std::string out;
  out.reserve(text.size());
  std::size_t at = 0;
  for (const auto& [begin, end] : spans) {
    out.append(text.substr(at, begin - at));
    for (std::size_t i = begin; i < end; ++i) {
      if (!is_continuation(static_cast<unsigned char>(text[i]))) out += '*';
    }
    at = end;
  }
  out.append(text.substr(at));
  return out;
}

}  // namespace

Result<WordFilter> WordFilter::parse(std::string_view text, const std::string& origin) {
  WordFilter filter;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    std::size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);

    std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    auto fail = [&](const std::string& what) {
      return Status(StatusCode::invalid_argument, fmt::format("{}:{}: {}", origin, line_no, what));
    };
    if (!wire::is_valid_utf8(line)) return fail("invalid utf-8");

    std::size_t split = 0;
    while (split < line.size() && !is_space(static_cast<unsigned char>(line[split]))) ++split;
    std::string_view verb = line.substr(0, split);
    std::string_view term = trim(line.substr(split));
    Action action;
    if (verb == "reject") {
      action = Action::reject;
    } else if (verb == "mask") {
      action = Action::mask;
    } else {
      return fail(fmt::format("unknown action \"{}\": expected \"reject\" or \"mask\"", verb));
    }
    if (term.empty()) return fail(fmt::format("\"{}\" without a term", verb));
    if (term.size() > kMaxTermBytes) {
      std::size_t shown = 16;  // on a code point boundary, so the message stays UTF-8
      while (shown > 0 && is_continuation(static_cast<unsigned char>(term[shown]))) --shown;
      return fail(fmt::format("term \"{}...\" is {} bytes, longer than {}", term.substr(0, shown),
                              term.size(), kMaxTermBytes));
    }
    if (filter.rule_count_ == kMaxRules) return fail(fmt::format("more than {} rules", kMaxRules));
    filter.add(action, term);
  }
  std::sort(filter.phrases_.begin(), filter.phrases_.end());
  filter.phrases_.erase(std::unique(filter.phrases_.begin(), filter.phrases_.end()),
                        filter.phrases_.end());
  return filter;
}

void WordFilter::add(Action action, std::string_view term) {
  std::string lowered = lowercase(term);
  std::vector<Token> tokens = tokenize(lowered);
  std::string key;
  for (const Token& t : tokens) append_token(&key, lowered, t);
  if (tokens.size() > 1) phrases_.push_back(key);

  Rule& rule = rules_[key];
  if (action == Action::reject) {
    if (!rule.reject) rule.reject_term = std::string(term);
    rule.reject = true;
  } else {
    rule.mask = true;
  }
  ++rule_count_;
}

Result<WordFilter> WordFilter::load(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) {
    return Status(StatusCode::io_error,
                  fmt::format("cannot open word filter \"{}\": {}", path, std::strerror(errno)));
  }
  std::string text;
  char buffer[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
  if (std::ferror(file.get())) {
    return Status(StatusCode::io_error,
                  fmt::format("cannot read word filter \"{}\": {}", path, std::strerror(errno)));
  }
  return parse(text, path);
}

bool WordFilter::continues(const std::string& key) const {
  // Keys that start with `key` sort right after it (or after `key` itself).
  auto it = std::lower_bound(phrases_.begin(), phrases_.end(), key);
  if (it != phrases_.end() && *it == key) ++it;
  return it != phrases_.end() && it->compare(0, key.size(), key) == 0;
}

WordFilter::Outcome WordFilter::apply(std::string_view text) const {
  Outcome outcome;
  outcome.text = std::string(text);
  if (rules_.empty()) return outcome;

  const std::string lowered = lowercase(text);
  const std::vector<Token> tokens = tokenize(lowered);
  std::vector<std::pair<std::size_t, std::size_t>> spans;  // to mask, sorted, merged
  std::string key;
  for (std::size_t first = 0; first < tokens.size(); ++first) {
    // A token that is not a word may sit right next to a word character.
    std::size_t begin = tokens[first].begin;
    if (begin > 0 && is_word(static_cast<unsigned char>(lowered[begin - 1]))) continue;
    key.clear();
    for (std::size_t last = first; last < tokens.size(); ++last) {
      append_token(&key, lowered, tokens[last]);
      auto found = rules_.find(key);
      std::size_t end = tokens[last].end;
      if (found != rules_.end() &&
          (end == lowered.size() || !is_word(static_cast<unsigned char>(lowered[end])))) {
        const Rule& rule = found->second;
        if (rule.reject) {
          outcome.verdict = Verdict::rejected;
          outcome.term = rule.reject_term;
          return outcome;
        }
        if (!spans.empty() && begin <= spans.back().second) {
          spans.back().second = std::max(spans.back().second, end);
        } else {
          spans.emplace_back(begin, end);
        }
      }
      if (phrases_.empty() || !continues(key)) break;
    }
  }
  if (!spans.empty()) {
    outcome.verdict = Verdict::masked;
    outcome.text = mask_spans(text, spans);
  }
  return outcome;
}

RateLimiter::RateLimiter(double rate_per_s, double burst) {
  if (!(rate_per_s > 0)) return;  // also NaN
  rate_per_s = std::clamp(rate_per_s, 1e-6, 1e9);
  burst = std::isnan(burst) ? 1.0 : std::clamp(burst, 1.0, 1e9);
  using Seconds = std::chrono::duration<double>;
  interval_ =
      std::max(Clock::duration(1), std::chrono::round<Clock::duration>(Seconds(1.0 / rate_per_s)));
  // At most about 31 years: far below overflow, far above any sane setting.
  double tolerance = std::min((burst - 1.0) * Seconds(interval_).count(), 1e9);
  tolerance_ = std::chrono::round<Clock::duration>(Seconds(tolerance));
}

std::int64_t RateLimiter::take(const std::string& key, Clock::time_point now) {
  if (!enabled()) return 0;
  auto it = full_at_.find(key);
  Clock::time_point full_at = it == full_at_.end() ? now : std::max(it->second, now);
  if (full_at - now > tolerance_) {
    auto wait = full_at - tolerance_ - now;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
    return std::max<std::int64_t>(ms, 1);
  }
  full_at += interval_;
  if (it == full_at_.end()) {
    full_at_.emplace(key, full_at);
  } else {
    it->second = full_at;
  }
  return 0;
}

void RateLimiter::prune(Clock::time_point now) {
  std::erase_if(full_at_, [now](const auto& entry) { return entry.second <= now; });
}

Result<std::pair<double, double>> parse_rate_limit(std::string_view spec) {
  auto fail = [&](const std::string& what) {
    return Status(StatusCode::invalid_argument, fmt::format("rate limit \"{}\": {}", spec, what));
  };
  if (spec == "0" || spec == "off") return std::pair<double, double>(0, 0);

  // A whole number within 1..max, named `what` in errors.
  auto number = [&](std::string_view field, const char* what,
                    std::uint64_t max) -> Result<std::uint64_t> {
    std::uint64_t value = 0;
    auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
    if (field.empty() || ec != std::errc() || ptr != field.data() + field.size()) {
      return fail(fmt::format("{} \"{}\" is not a whole number", what, field));
    }
    if (value < 1 || value > max) {
      return fail(fmt::format("{} {} is not within 1..{}", what, value, max));
    }
    return value;
  };

  std::string_view rest = spec;
  std::string_view burst_field;
  bool has_burst = false;
  if (std::size_t comma = rest.find(','); comma != std::string_view::npos) {
    std::string_view option = rest.substr(comma + 1);
    rest = rest.substr(0, comma);
    constexpr std::string_view kBurst = "burst=";
    if (option.substr(0, kBurst.size()) != kBurst) {
      return fail(fmt::format("unknown option \"{}\": expected burst=B", option));
    }
    burst_field = option.substr(kBurst.size());
    has_burst = true;
  }
  std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return fail("expected N/S or N/S,burst=B (N messages per S seconds), \"0\" or \"off\"");
  }
  auto count = number(rest.substr(0, slash), "message count", 1'000'000);
  if (!count) return count.status();
  auto seconds = number(rest.substr(slash + 1), "seconds", 86'400);
  if (!seconds) return seconds.status();
  std::uint64_t burst = *count;
  if (has_burst) {
    auto b = number(burst_field, "burst", 1'000'000);
    if (!b) return b.status();
    burst = *b;
  }
  return std::pair<double, double>(static_cast<double>(*count) / static_cast<double>(*seconds),
                                   static_cast<double>(burst));
}

}  // namespace parley::server
