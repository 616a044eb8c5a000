// The payload every scenario publishes, the same bytes over all three
// protocols: "pb INDEX SENT_NS " padded with 'x' to the requested size, where
// INDEX counts the publisher's messages from 0 (for the in-order check) and
// SENT_NS is the publisher's steady clock when it queued the message (for the
// end-to-end latency; publisher and subscribers are the same process). Plain
// ASCII, so it needs no escaping in Parley's JSON.
#pragma once

#include <charconv>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley::loadgen {

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline std::string make_payload(std::uint64_t index, std::int64_t sent_ns, std::size_t size) {
  std::string out = "pb " + std::to_string(index) + ' ' + std::to_string(sent_ns) + ' ';
  if (out.size() < size) out.append(size - out.size(), 'x');
  return out;
}

struct PayloadStamp {
  std::uint64_t index = 0;
  std::int64_t sent_ns = 0;
};

// Reads INDEX and SENT_NS back; false if `p` is not such a payload.
inline bool parse_payload(std::string_view p, PayloadStamp& out) {
  if (p.size() < 3 || p.substr(0, 3) != "pb ") return false;
  const char* first = p.data() + 3;
  const char* last = p.data() + p.size();
  auto r = std::from_chars(first, last, out.index);
  if (r.ec != std::errc() || r.ptr == last || *r.ptr != ' ') return false;
  auto r2 = std::from_chars(r.ptr + 1, last, out.sent_ns);
  return r2.ec == std::errc();
}

}  // namespace parley::loadgen
