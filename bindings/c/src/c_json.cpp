// The JSON forms of the C ABI (docs/c-api.md, "Events as JSON"), written with
// RapidJSON. Field names are those of the C++ structs; every field is present.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "c_internal.hpp"

namespace parley::capi {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

const char* const kKindNames[] = {
    "unknown",           "state_changed",         "message_received",
    "message_pending",   "message_sent",          "message_failed",
    "channel_request_done", "history_loaded",     "typing_changed",
    "receipt_updated",   "sync_progress",         "channel_info_loaded",
    "notification_received", "unread_changed",    "notification_level_changed",
    "presence_changed",  "presence_notified",     "online_count_changed",
    "identity_changed",  "safety_number_loaded",  "session_reset",
    "message_updated",   "devices_loaded",        "blocked_users_loaded",
    "document_changed",  "document_awareness",    "documents_loaded",
    "document_failed",
};
static_assert(sizeof(kKindNames) / sizeof(kKindNames[0]) == std::variant_size_v<Event> + 1);

// The length of the valid UTF-8 sequence at s[i] (strict: no overlong
// forms, surrogates or code points above U+10FFFF), 0 when it is not one.
std::size_t utf8_seq(const unsigned char* s, std::size_t n, std::size_t i) {
  unsigned char c = s[i];
  if (c < 0x80) return 1;
  std::size_t len;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (n - i < len) return 0;
  if (s[i + 1] < lo || s[i + 1] > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
  }
  return len;
}

// `v` with every invalid UTF-8 byte replaced by U+FFFD.
std::string valid_utf8(std::string_view v) {
  const auto* s = reinterpret_cast<const unsigned char*>(v.data());
  const std::size_t n = v.size();
  std::size_t i = 0;
  while (i < n) {
    std::size_t len = utf8_seq(s, n, i);
    if (len == 0) break;
    i += len;
  }
  if (i == n) return std::string(v);
  std::string out(v.substr(0, i));
  while (i < n) {
    std::size_t len = utf8_seq(s, n, i);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(v.data() + i, len);
      i += len;
    }
  }
  return out;
}

void str(Writer& w, const char* key, const std::string& v) {
  w.Key(key);
  std::string ok = valid_utf8(v);
  w.String(ok.data(), static_cast<rapidjson::SizeType>(ok.size()));
}
void cstr(Writer& w, const char* key, const char* v) {
  str(w, key, v);
}
void u64(Writer& w, const char* key, std::uint64_t v) {
  w.Key(key);
  w.Uint64(v);
}
void i64(Writer& w, const char* key, std::int64_t v) {
  w.Key(key);
  w.Int64(v);
}
void boolean(Writer& w, const char* key, bool v) {
  w.Key(key);
  w.Bool(v);
}

void write_meta(Writer& w, const ChannelMeta& m) {
  w.StartObject();
  if (m.name) str(w, "name", *m.name);
  if (m.topic) str(w, "topic", *m.topic);
  if (m.description) str(w, "description", *m.description);
  if (m.avatar_url) str(w, "avatar_url", *m.avatar_url);
  if (m.data) str(w, "data", *m.data);
  w.EndObject();
}

void write_message(Writer& w, const Message& m) {
  w.StartObject();
  str(w, "channel", m.channel);
  u64(w, "seq", m.seq);
  cstr(w, "kind", to_string(m.kind));
  str(w, "sender", m.sender);
  str(w, "id", m.id);
  str(w, "text", m.text);
  i64(w, "ts_ms", m.ts_ms);
  cstr(w, "state", to_string(m.state));
  boolean(w, "deleted", m.deleted);
  str(w, "target", m.target);
  str(w, "role", m.role);
  i64(w, "until_ms", m.until_ms);
  u64(w, "ref", m.ref);
  str(w, "channel_kind", m.channel_kind);
  w.Key("meta");
  write_meta(w, m.meta);
  w.Key("mentions");
  w.StartArray();
  for (const Mention& mention : m.mentions) {
    w.StartObject();
    u64(w, "offset", mention.offset);
    u64(w, "length", mention.length);
    str(w, "user", mention.user);
    w.EndObject();
  }
  w.EndArray();
  boolean(w, "e2e", m.e2e);
  str(w, "e2e_error", m.e2e_error);
  w.EndObject();
}

void write_presence(Writer& w, const Presence& p) {
  w.StartObject();
  str(w, "user", p.user);
  cstr(w, "status", to_string(p.status));
  if (p.last_seen_ms) i64(w, "last_seen_ms", *p.last_seen_ms);
  if (p.text) str(w, "text", *p.text);
  if (p.text_until_ms) i64(w, "text_until_ms", *p.text_until_ms);
  boolean(w, "invisible", p.invisible);
  boolean(w, "hide_last_seen", p.hide_last_seen);
  w.EndObject();
}

void write_strings(Writer& w, const char* key, const std::vector<std::string>& v) {
  w.Key(key);
  w.StartArray();
  for (const auto& s : v) {
    std::string ok = valid_utf8(s);
    w.String(ok.data(), static_cast<rapidjson::SizeType>(ok.size()));
  }
  w.EndArray();
}

// The top-level fields of a parley_event besides its JSON.
struct Head {
  int status = PARLEY_OK;
  std::uint64_t request = 0;
  std::string reason = "ok";
  std::string message;
  std::string channel;
};

void write_status(Writer& w, Head& head, const Status& s) {
  head.status = status_code(s);
  head.reason = s.reason();
  head.message = s.message();
  w.Key("status");
  w.Int(head.status);
  str(w, "reason", head.reason);
  str(w, "message", head.message);
}

void write_request(Writer& w, Head& head, RequestId id) {
  head.request = id;
  u64(w, "request", id);
}

void write_channel(Writer& w, Head& head, const std::string& channel) {
  head.channel = channel;
  str(w, "channel", channel);
}

// The fields of each event after "v" and "type".
struct Fields {
  Writer& w;
  Head& h;

  void operator()(const StateChanged& e) {
    cstr(w, "state", to_string(e.state));
    write_status(w, h, e.reason);
  }
  void operator()(const MessageReceived& e) {
    h.channel = e.message.channel;
    w.Key("message");
    write_message(w, e.message);
  }
  void operator()(const MessageUpdated& e) {
    h.channel = e.message.channel;
    w.Key("message");
    write_message(w, e.message);
  }
  void operator()(const MessagePending& e) {
    write_channel(w, h, e.channel);
    str(w, "id", e.id);
  }
  void operator()(const MessageSent& e) {
    write_channel(w, h, e.channel);
    str(w, "id", e.id);
    u64(w, "seq", e.seq);
    i64(w, "ts_ms", e.ts_ms);
  }
  void operator()(const MessageFailed& e) {
    write_channel(w, h, e.channel);
    str(w, "id", e.id);
    write_status(w, h, e.status);
  }
  void operator()(const ChannelRequestDone& e) {
    write_request(w, h, e.request);
    write_channel(w, h, e.channel);
    write_status(w, h, e.status);
    u64(w, "seq", e.seq);
  }
  void operator()(const HistoryLoaded& e) {
    write_request(w, h, e.request);
    write_channel(w, h, e.channel);
    write_status(w, h, e.status);
    boolean(w, "complete", e.complete);
    w.Key("messages");
    w.StartArray();
    for (const Message& m : e.messages) write_message(w, m);
    w.EndArray();
  }
  void operator()(const TypingChanged& e) {
    write_channel(w, h, e.channel);
    str(w, "user", e.user);
    boolean(w, "active", e.active);
  }
  void operator()(const ReceiptUpdated& e) {
    write_channel(w, h, e.channel);
    str(w, "user", e.user);
    str(w, "device", e.device);
    cstr(w, "kind", to_string(e.kind));
    u64(w, "seq", e.seq);
  }
  void operator()(const SyncProgress& e) {
    write_channel(w, h, e.channel);
    u64(w, "fetched", e.fetched);
    u64(w, "total", e.total);
  }
  void operator()(const ChannelInfoLoaded& e) {
    write_request(w, h, e.request);
    write_channel(w, h, e.channel);
    write_status(w, h, e.status);
    cstr(w, "kind", to_string(e.kind));
    u64(w, "last_seq", e.last_seq);
    w.Key("meta");
    write_meta(w, e.meta);
    w.Key("members");
    w.StartArray();
    for (const ChannelMember& m : e.members) {
      w.StartObject();
      str(w, "user", m.user);
      cstr(w, "role", to_string(m.role));
      boolean(w, "muted", m.muted);
      i64(w, "muted_until_ms", m.muted_until_ms);
      w.EndObject();
    }
    w.EndArray();
    w.Key("bans");
    w.StartArray();
    for (const ChannelBan& b : e.bans) {
      w.StartObject();
      str(w, "user", b.user);
      i64(w, "until_ms", b.until_ms);
      w.EndObject();
    }
    w.EndArray();
    w.Key("pinned");
    w.StartArray();
    for (std::uint64_t seq : e.pinned) w.Uint64(seq);
    w.EndArray();
    boolean(w, "complete", e.complete);
  }
  void operator()(const NotificationReceived& e) {
    write_channel(w, h, e.channel);
    u64(w, "seq", e.seq);
    str(w, "kind", e.kind);
    str(w, "sender", e.sender);
    str(w, "title", e.title);
  }
  void operator()(const UnreadChanged& e) {
    write_channel(w, h, e.channel);
    u64(w, "unread", e.unread);
    u64(w, "mentions", e.mentions);
  }
  void operator()(const NotificationLevelChanged& e) {
    write_channel(w, h, e.channel);
    cstr(w, "level", to_string(e.level));
    i64(w, "mute_until_ms", e.mute_until_ms);
  }
  void operator()(const PresenceChanged& e) {
    w.Key("presence");
    write_presence(w, e.presence);
  }
  void operator()(const PresenceNotified& e) { str(w, "user", e.user); }
  void operator()(const OnlineCountChanged& e) {
    write_channel(w, h, e.channel);
    u64(w, "online", e.online);
    u64(w, "members", e.members);
  }
  void operator()(const IdentityChanged& e) {
    str(w, "user", e.user);
    str(w, "device", e.device);
    boolean(w, "was_verified", e.was_verified);
    boolean(w, "new_device", e.new_device);
    boolean(w, "removed_device", e.removed_device);
  }
  void operator()(const SafetyNumberLoaded& e) {
    write_request(w, h, e.request);
    write_status(w, h, e.status);
    str(w, "user", e.user);
    str(w, "number", e.number);
    boolean(w, "verified", e.verified);
  }
  void operator()(const SessionReset& e) {
    str(w, "user", e.user);
    str(w, "device", e.device);
    write_channel(w, h, e.channel);
    u64(w, "seq", e.seq);
    str(w, "session_reason", e.reason);
    boolean(w, "by_this_device", e.by_this_device);
  }
  void operator()(const DevicesLoaded& e) {
    write_request(w, h, e.request);
    write_status(w, h, e.status);
    w.Key("devices");
    w.StartArray();
    for (const DeviceInfo& d : e.devices) {
      w.StartObject();
      str(w, "device", d.device);
      str(w, "fingerprint", d.fingerprint);
      boolean(w, "current", d.current);
      w.EndObject();
    }
    w.EndArray();
  }
  void operator()(const BlockedUsersLoaded& e) {
    write_request(w, h, e.request);
    write_status(w, h, e.status);
    write_strings(w, "users", e.users);
  }
  // Collaborative documents (docs/collab.md): PARLEY_EVENT_DOCUMENT_* 24-27.
  void operator()(const DocumentChanged& e) {
    write_channel(w, h, e.channel);
    str(w, "title", e.title);
    str(w, "text", e.text);
    u64(w, "version", e.version);
    boolean(w, "local", e.local);
    u64(w, "pending", e.pending);
  }
  void operator()(const DocumentAwareness& e) {
    write_channel(w, h, e.channel);
    str(w, "title", e.title);
    str(w, "user", e.user);
    str(w, "device", e.device);
    w.Key("cursor");
    e.cursor ? w.Uint64(*e.cursor) : w.Null();
    w.Key("anchor");
    e.anchor ? w.Uint64(*e.anchor) : w.Null();
    str(w, "name", e.name);
    str(w, "color", e.color);
    boolean(w, "gone", e.gone);
  }
  void operator()(const DocumentsLoaded& e) {
    write_request(w, h, e.request);
    write_channel(w, h, e.channel);
    write_status(w, h, e.status);
    boolean(w, "complete", e.complete);
    w.Key("docs");
    w.StartArray();
    for (const DocumentInfo& d : e.docs) {
      w.StartObject();
      str(w, "title", d.title);
      str(w, "kind", d.kind);
      str(w, "creator", d.creator);
      i64(w, "created_ms", d.created_ms);
      u64(w, "seq", d.seq);
      u64(w, "size", d.size);
      u64(w, "version", d.version);
      w.EndObject();
    }
    w.EndArray();
  }
  void operator()(const DocumentFailed& e) {
    write_channel(w, h, e.channel);
    write_status(w, h, e.status);
    str(w, "title", e.title);
    u64(w, "dropped", e.dropped);
  }
};

template <typename F>
std::string to_json(F&& body) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  body(w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

parley_event* make_event(const Event& event) {
  Head head;
  rapidjson::StringBuffer buf;
  Writer w(buf);
  int kind = static_cast<int>(event.index()) + 1;
  w.StartObject();
  w.Key("v");
  w.Int(1);
  cstr(w, "type", kKindNames[kind]);
  std::visit(Fields{w, head}, event);
  w.EndObject();

  // The head's strings are plain C strings: valid UTF-8 as well.
  head.reason = valid_utf8(head.reason);
  head.message = valid_utf8(head.message);
  head.channel = valid_utf8(head.channel);

  // One block: the struct, then its strings.
  const std::size_t json_len = buf.GetSize();
  const std::size_t total = sizeof(parley_event) + head.reason.size() + 1 + head.message.size() +
                            1 + head.channel.size() + 1 + json_len + 1;
  auto* block = static_cast<char*>(std::malloc(total));
  if (block == nullptr) return nullptr;
  auto* ev = new (block) parley_event{};
  char* p = block + sizeof(parley_event);
  auto put = [&p](const char* s, std::size_t n) {
    std::memcpy(p, s, n);
    p[n] = '\0';
    const char* start = p;
    p += n + 1;
    return start;
  };
  ev->kind = kind;
  ev->status = head.status;
  ev->request = head.request;
  ev->reason = put(head.reason.data(), head.reason.size());
  ev->message = put(head.message.data(), head.message.size());
  ev->channel = put(head.channel.data(), head.channel.size());
  ev->json = put(buf.GetString(), json_len);
  ev->json_len = json_len;
  return ev;
}

std::string channels_json(const std::vector<ChannelInfo>& channels) {
  return to_json([&](Writer& w) {
    w.StartArray();
    for (const ChannelInfo& c : channels) {
      w.StartObject();
      str(w, "name", c.name);
      u64(w, "last_seq", c.last_seq);
      u64(w, "read_to", c.read_to);
      boolean(w, "member", c.member);
      w.EndObject();
    }
    w.EndArray();
  });
}

std::string outbox_json(const std::vector<OutboxEntry>& outbox) {
  return to_json([&](Writer& w) {
    w.StartArray();
    for (const OutboxEntry& e : outbox) {
      w.StartObject();
      str(w, "channel", e.channel);
      str(w, "id", e.id);
      str(w, "text", e.text);
      cstr(w, "state", to_string(e.state));
      str(w, "error", e.error);
      w.EndObject();
    }
    w.EndArray();
  });
}

std::string cache_usage_json(const CacheUsage& u) {
  return to_json([&](Writer& w) {
    w.StartObject();
    u64(w, "file_bytes", u.file_bytes);
    u64(w, "wal_bytes", u.wal_bytes);
    u64(w, "events", u.events);
    u64(w, "evicted", u.evicted);
    w.EndObject();
  });
}

std::string meta_json(const ChannelMeta& meta) {
  return to_json([&](Writer& w) { write_meta(w, meta); });
}

std::string analytics_json(const sys::AnalyticsEvent& event) {
  return to_json([&](Writer& w) {
    w.StartObject();
    w.Key("v");
    w.Int(1);
    str(w, "name", event.name);
    i64(w, "ts_ms", event.ts_ms);
    w.Key("labels");
    w.StartObject();
    for (const auto& [key, value] : event.labels) str(w, valid_utf8(key).c_str(), value);
    w.EndObject();
    w.Key("values");
    w.StartObject();
    for (const auto& [key, value] : event.values) {
      std::string k = valid_utf8(key);
      w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
      // Whole numbers as integers ("bytes":42, not 42.0), where a double
      // holds them exactly; JSON has no NaN or infinity.
      constexpr double kExact = 9007199254740992.0;  // 2^53
      if (!std::isfinite(value)) {
        w.Null();
      } else if (std::trunc(value) == value && std::fabs(value) < kExact) {
        w.Int64(static_cast<std::int64_t>(value));
      } else {
        w.Double(value);
      }
    }
    w.EndObject();
    w.EndObject();
  });
}

std::string presence_json(const Presence& presence) {
  return to_json([&](Writer& w) { write_presence(w, presence); });
}

bool parse_meta(const char* json, ChannelMeta* out, std::string* why) {
  rapidjson::Document doc;
  doc.Parse(json);
  if (doc.HasParseError() || !doc.IsObject()) {
    *why = "meta must be a JSON object";
    return false;
  }
  const rapidjson::Value& object = doc;
  for (auto it = object.MemberBegin(); it != object.MemberEnd(); ++it) {
    std::string key(it->name.GetString(), it->name.GetStringLength());
    std::optional<std::string>* field = nullptr;
    if (key == "name") field = &out->name;
    else if (key == "topic") field = &out->topic;
    else if (key == "description") field = &out->description;
    else if (key == "avatar_url") field = &out->avatar_url;
    else if (key == "data") field = &out->data;
    if (field == nullptr) {
      *why = "unknown meta field \"" + key + "\"";
      return false;
    }
    if (it->value.IsString()) {
      *field = std::string(it->value.GetString(), it->value.GetStringLength());
    } else if (key == "data" && it->value.IsObject()) {
      rapidjson::StringBuffer buf;
      Writer w(buf);
      it->value.Accept(w);
      *field = std::string(buf.GetString(), buf.GetSize());
    } else {
      *why = "meta field \"" + key + "\" must be a string";
      return false;
    }
  }
  return true;
}

}  // namespace parley::capi

extern "C" const char* parley_event_kind_name(int kind) {
  if (kind < 1 || kind > static_cast<int>(std::variant_size_v<parley::Event>)) return "unknown";
  return parley::capi::kKindNames[kind];
}
