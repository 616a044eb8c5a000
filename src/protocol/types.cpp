// Plain value types of the public API: ids, enum names, name rules, timestamps.
#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "parley/events.hpp"
#include "parley/status.hpp"
#include "parley/sys/analytics.hpp"
#include "parley/sys/transport.hpp"
#include "parley/types.hpp"
#include "parley/version.hpp"
#include "protocol/codec.hpp"

namespace parley {

const char* version() { return PARLEY_VERSION_STRING; }

const char* to_string(StatusCode code) {
  switch (code) {
    case StatusCode::ok: return "ok";
    case StatusCode::invalid_argument: return "invalid_argument";
    case StatusCode::not_found: return "not_found";
    case StatusCode::already_exists: return "already_exists";
    case StatusCode::unauthenticated: return "unauthenticated";
    case StatusCode::token_expired: return "token_expired";
    case StatusCode::forbidden: return "forbidden";
    case StatusCode::offline: return "offline";
    case StatusCode::timeout: return "timeout";
    case StatusCode::rate_limited: return "rate_limited";
    case StatusCode::protocol_error: return "protocol_error";
    case StatusCode::corrupt: return "corrupt";
    case StatusCode::io_error: return "io_error";
    case StatusCode::cancelled: return "cancelled";
    case StatusCode::internal: return "internal";
  }
  return "internal";
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  return reason() + ": " + message_;
}

namespace {
constexpr std::pair<EventKind, const char*> kEventKinds[] = {
    {EventKind::message, "message"},
    {EventKind::create, "create"},
    {EventKind::join, "join"},
    {EventKind::leave, "leave"},
    {EventKind::invite, "invite"},
    {EventKind::remove, "remove"},
    {EventKind::ban, "ban"},
    {EventKind::unban, "unban"},
    {EventKind::mute, "mute"},
    {EventKind::unmute, "unmute"},
    {EventKind::role, "role"},
    {EventKind::meta, "meta"},
    {EventKind::deletion, "delete"},
    {EventKind::pin, "pin"},
    {EventKind::unpin, "unpin"},
    {EventKind::system, "system"},
    {EventKind::channel_deleted, "channel_deleted"},
    {EventKind::doc, "doc"},
};
}  // namespace

const char* to_string(EventKind kind) {
  for (const auto& [k, name] : kEventKinds) {
    if (k == kind) return name;
  }
  return "message";
}

bool parse_event_kind(std::string_view text, EventKind* out) {
  for (const auto& [k, name] : kEventKinds) {
    if (text == name) {
      *out = k;
      return true;
    }
  }
  return false;
}

const char* to_string(DeliveryState state) {
  switch (state) {
    case DeliveryState::pending: return "pending";
    case DeliveryState::sent: return "sent";
    case DeliveryState::failed: return "failed";
  }
  return "pending";
}

const char* to_string(ReceiptKind kind) {
  return kind == ReceiptKind::read ? "read" : "delivered";
}

std::string sys::AnalyticsEvent::label(const std::string& key) const {
  for (const auto& [k, v] : labels) {
    if (k == key) return v;
  }
  return {};
}

double sys::AnalyticsEvent::value(const std::string& key) const {
  for (const auto& [k, v] : values) {
    if (k == key) return v;
  }
  return 0;
}

// The extension interfaces' key functions: their vtables and type information
// are emitted here and exported (include/parley/export.hpp).
sys::AnalyticsSink::~AnalyticsSink() = default;
sys::TransportHandler::~TransportHandler() = default;
sys::Transport::~Transport() = default;

const char* to_string(LifecycleState state) {
  switch (state) {
    case LifecycleState::disconnected: return "disconnected";
    case LifecycleState::connecting: return "connecting";
    case LifecycleState::authenticating: return "authenticating";
    case LifecycleState::syncing: return "syncing";
    case LifecycleState::ready: return "ready";
  }
  return "disconnected";
}

MessageId MessageId::random() {
  static const int init = sodium_init();  // idempotent and thread-safe
  (void)init;
  MessageId id;
  randombytes_buf(id.bytes.data(), id.bytes.size());
  return id;
}

bool MessageId::parse(const std::string& hex, MessageId* out) {
  if (hex.size() != 32) return false;
  std::size_t len = 0;
  const char* end = nullptr;
  MessageId id;
  if (sodium_hex2bin(id.bytes.data(), id.bytes.size(), hex.data(), hex.size(), nullptr, &len,
                     &end) != 0 ||
      len != id.bytes.size() || end != hex.data() + hex.size()) {
    return false;
  }
  *out = id;
  return true;
}

std::string MessageId::hex() const {
  char buf[33];
  sodium_bin2hex(buf, sizeof buf, bytes.data(), bytes.size());
  return std::string(buf, 32);
}

std::string check_channel_name(const std::string& name) {
  if (name.empty()) return "channel name is empty";
  if (name.size() > 64) {
    // Shown cut to 16 bytes at a character boundary: the message may reach a
    // peer in an error frame, which must stay UTF-8.
    std::size_t cut = 16;
    while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
    std::string shown = name.substr(0, cut);
    if (!wire::is_valid_utf8(shown)) return "channel name is longer than 64 bytes";
    return fmt::format("channel \"{}...\": name is longer than 64 bytes", shown);
  }
  if (!wire::is_valid_utf8(name)) return "channel name is not valid utf-8";
  for (unsigned char c : name) {
    if (c == ' ') return fmt::format("channel \"{}\": name may not contain spaces", name);
    if (c < 0x20 || c == 0x7f) return "channel name may not contain control characters";
  }
  // C1 controls (U+0080-U+009F, encoded C2 80-C2 9F) and other Unicode spaces.
  for (std::size_t i = 0; i + 1 < name.size(); ++i) {
    auto a = static_cast<unsigned char>(name[i]), b = static_cast<unsigned char>(name[i + 1]);
    if (a == 0xC2 && b >= 0x80 && b <= 0xA0) {
      return fmt::format("channel \"{}\": name may not contain control characters or spaces", name);
    }
  }
  return {};
}

std::string check_user_name(const std::string& name) {
  if (name.empty()) return "user name is empty";
  if (name.size() > 64) return "user name is longer than 64 characters";
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '@' || c == '-';
    if (!ok) return fmt::format("user name may only use letters, digits and _.@- (got {:?})", name.size() < 80 ? name : name.substr(0, 80));
  }
  // After the character check: the name is plain ASCII, safe to echo (the
  // message reaches the peer in an error frame, which must be UTF-8).
  if (name[0] == '.' || name[0] == '-') {
    return fmt::format("user \"{}\": name may not start with '.' or '-'", name);
  }
  return {};
}

namespace {
bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '.' || c == '@' || c == '-';
}
constexpr std::size_t kMaxMentions = 50;
}  // namespace

std::vector<Mention> find_mentions(std::string_view text) {
  std::vector<Mention> out;
  std::size_t i = 0;
  while (i < text.size() && out.size() < kMaxMentions) {
    std::size_t at = text.find('@', i);
    if (at == std::string_view::npos) break;
    i = at + 1;
    if (at > 0 && is_name_char(text[at - 1])) continue;  // inside a word: a@b.com
    std::size_t end = i;
    while (end < text.size() && is_name_char(text[end]) && end - i < 64) ++end;
    while (end > i && text[end - 1] == '.') --end;  // "@bob." ends a sentence
    std::string name(text.substr(i, end - i));
    if (name.empty()) continue;
    // A name that runs on past 64 characters is no mention at all.
    if (end < text.size() && is_name_char(text[end]) && text[end] != '.') {
      i = end;
      continue;
    }
    if (name == "channel" || name == "here") {
      out.push_back({at, end - at, "@" + name});
    } else if (check_user_name(name).empty()) {
      out.push_back({at, end - at, std::move(name)});
    }
    i = end;
  }
  return out;
}

std::string format_timestamp(std::int64_t ts_ms) {
  using namespace std::chrono;
  // Timestamps come from peers: clamp to the years 0000-9999 that the format
  // can show. The calendar arithmetic below stays in milliseconds (fmt's
  // time_point formatter goes through nanoseconds, which overflow past 2262).
  constexpr std::int64_t kMinMs = -62167219200000;  // 0000-01-01T00:00:00.000Z
  constexpr std::int64_t kMaxMs = 253402300799999;  // 9999-12-31T23:59:59.999Z
  sys_time<milliseconds> tp{milliseconds(std::clamp(ts_ms, kMinMs, kMaxMs))};
  auto day = floor<days>(tp);
  year_month_day date{day};
  hh_mm_ss<milliseconds> time{tp - day};
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}Z", int(date.year()),
                     unsigned(date.month()), unsigned(date.day()), time.hours().count(),
                     time.minutes().count(), time.seconds().count(), time.subseconds().count());
}

}  // namespace parley
