// JSON-lines rendering of parley-cli's output (docs/cli.md, "Events").
#include <rapidjson/memorystream.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>

#include "direct.hpp"
#include "output.hpp"

namespace parley_cli {

ErrorLine error_from(const parley::Status& status, std::string id) {
  return {.code = status.reason(), .message = status.message(), .id = std::move(id)};
}

std::string to_valid_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  std::size_t pos = 0;
  while (pos < s.size()) {
    // Validate one code point; rapidjson copies its bytes to `cp` as it reads.
    rapidjson::MemoryStream in(s.data() + pos, s.size() - pos);
    rapidjson::StringBuffer cp;
    const bool ok = rapidjson::UTF8<>::Validate(in, cp);
    const std::size_t used = in.Tell();
    if (ok && pos + used <= s.size()) {
      out.append(cp.GetString(), cp.GetSize());
      pos += used;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD; resynchronize on the next byte
      pos += 1;
    }
  }
  return out;
}

namespace {

// One JSON object, written with rapidjson so that escaping is right.
class JsonLine {
 public:
  explicit JsonLine(const char* event) : writer_(buf_) {
    writer_.StartObject();
    field("event", event);
  }

  JsonLine& field(const char* key, const std::string& value) {
    writer_.Key(key);
    const std::string valid = to_valid_utf8(value);
    writer_.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
    return *this;
  }
  JsonLine& field(const char* key, const char* value) { return field(key, std::string(value)); }
  JsonLine& field(const char* key, std::uint64_t value) {
    writer_.Key(key);
    writer_.Uint64(value);
    return *this;
  }
  JsonLine& null_field(const char* key) {
    writer_.Key(key);
    writer_.Null();
    return *this;
  }
  JsonLine& field(const char* key, bool value) {
    writer_.Key(key);
    writer_.Bool(value);
    return *this;
  }
  JsonLine& field(const char* key, const std::vector<std::string>& values) {
    writer_.Key(key);
    writer_.StartArray();
    for (const std::string& v : values) {
      const std::string valid = to_valid_utf8(v);
      writer_.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
    }
    writer_.EndArray();
    return *this;
  }

  // Writes the line to stdout and flushes it.
  void emit() {
    writer_.EndObject();
    std::fwrite(buf_.GetString(), 1, buf_.GetSize(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

 private:
  rapidjson::StringBuffer buf_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

// The fields of a metadata change that are set; "" means cleared.
void meta_fields(JsonLine& line, const parley::ChannelMeta& meta) {
  if (meta.name) line.field("name", *meta.name);
  if (meta.topic) line.field("topic", *meta.topic);
  if (meta.description) line.field("description", *meta.description);
  if (meta.avatar_url) line.field("avatar", *meta.avatar_url);
  if (meta.data) line.field("data", *meta.data);
}

// "alice,@here": who the message mentions, in order (user names cannot hold
// commas), so that the line stays flat.
std::string mention_list(const std::vector<parley::Mention>& mentions) {
  std::string out;
  for (const parley::Mention& m : mentions) {
    if (!out.empty()) out += ',';
    out += m.user;
  }
  return out;
}

// "bob,carol": a list of user names as one string (names cannot hold commas),
// so that the line stays flat.
std::string user_list(const std::vector<std::string>& users) {
  std::string out;
  for (const std::string& u : users) {
    if (!out.empty()) out += ',';
    out += u;
  }
  return out;
}

class JsonOutput final : public Output {
 public:
  explicit JsonOutput(DirectNames* names) : names_(names) {}

  void message(const parley::Message& m) override {
    using K = parley::EventKind;
    const std::string ts = parley::format_timestamp(m.ts_ms);
    switch (m.kind) {
      case K::message:
        message_line("message", m);
        return;
      case K::create:
      case K::join:
      case K::leave: {
        JsonLine line("member");
        line.field("channel", ch(m.channel))
            .field("seq", m.seq)
            .field("user", m.sender)
            .field("action", parley::to_string(m.kind));
        if (m.kind == K::create && !m.channel_kind.empty()) line.field("kind", m.channel_kind);
        line.field("ts", ts).emit();
        return;
      }
      case K::invite:
      case K::remove:
      case K::ban:
      case K::unban:
      case K::mute:
      case K::unmute:
      case K::role: {
        // Done to `user` by `by`.
        JsonLine line("member");
        line.field("channel", ch(m.channel))
            .field("seq", m.seq)
            .field("user", m.target)
            .field("action", parley::to_string(m.kind))
            .field("by", m.sender);
        if (m.kind == K::role) line.field("role", m.role);
        if ((m.kind == K::ban || m.kind == K::mute) && m.until_ms > 0) {
          line.field("until", parley::format_timestamp(m.until_ms));
        }
        line.field("ts", ts).emit();
        return;
      }
      case K::meta: {
        JsonLine line("meta");
        line.field("channel", ch(m.channel)).field("seq", m.seq).field("user", m.sender);
        meta_fields(line, m.meta);
        line.field("ts", ts).emit();
        return;
      }
      case K::deletion:
      case K::pin:
      case K::unpin: {
        JsonLine line(m.kind == K::deletion ? "delete" : "pin");
        line.field("channel", ch(m.channel))
            .field("seq", m.seq)
            .field("user", m.sender)
            .field("ref", m.ref);
        if (m.kind != K::deletion) line.field("pinned", m.kind == K::pin);
        line.field("ts", ts).emit();
        return;
      }
      case K::system:
        JsonLine("system")
            .field("channel", ch(m.channel))
            .field("seq", m.seq)
            .field("user", m.sender)
            .field("text", m.text)
            .field("ts", ts)
            .emit();
        return;
      case K::doc:
        // {"event":"doc_created","channel":C,"seq":N,"user":U,"title":T,"ts":...}
        JsonLine("doc_created")
            .field("channel", ch(m.channel))
            .field("seq", m.seq)
            .field("user", m.sender)
            .field("title", m.title)
            .field("ts", ts)
            .emit();
        return;
      case K::channel_deleted:
        JsonLine("channel_deleted")
            .field("channel", ch(m.channel))
            .field("seq", m.seq)
            .field("user", m.sender)
            .field("ts", ts)
            .emit();
        return;
    }
  }

  // {"event":"message_updated",...}: the fields of a message line.
  void message_updated(const parley::Message& m) override { message_line("message_updated", m); }

  // {"event":"device","device":D,"fingerprint":"abcd 1234 …","current":bool}
  void device(const parley::DeviceInfo& d) override {
    JsonLine("device")
        .field("device", d.device)
        .field("fingerprint", d.fingerprint)
        .field("current", d.current)
        .emit();
  }

  // {"event":"session_reset","user":U,"device":D,"channel":C,"seq":N,"reason":R,
  //  "by_this_device":bool}
  void session_reset(const parley::SessionReset& e) override {
    JsonLine("session_reset")
        .field("user", e.user)
        .field("device", e.device)
        .field("channel", ch(e.channel))
        .field("seq", e.seq)
        .field("reason", e.reason)
        .field("by_this_device", e.by_this_device)
        .emit();
  }

  void channel_info(const parley::ChannelInfoLoaded& e) override {
    for (const parley::ChannelMember& m : e.members) {
      JsonLine line("channel_member");
      line.field("channel", ch(e.channel))
          .field("user", m.user)
          .field("role", parley::to_string(m.role));
      if (m.muted) {
        line.field("muted", true);
        if (m.muted_until_ms > 0) line.field("until", parley::format_timestamp(m.muted_until_ms));
      }
      line.emit();
    }
    for (const parley::ChannelBan& b : e.bans) {
      JsonLine line("channel_ban");
      line.field("channel", ch(e.channel)).field("user", b.user);
      if (b.until_ms > 0) line.field("until", parley::format_timestamp(b.until_ms));
      line.emit();
    }
  }

  void pending(const std::string& channel, const std::string& id,
               const std::string& /*text*/) override {
    JsonLine("pending").field("channel", ch(channel)).field("id", id).emit();
  }

  void sent(const std::string& channel, const std::string& id, std::uint64_t seq,
            const std::string& /*text*/) override {
    JsonLine("sent").field("channel", ch(channel)).field("id", id).field("seq", seq).emit();
  }

  void state(parley::LifecycleState state, const parley::Status& /*reason*/) override {
    JsonLine("state").field("state", parley::to_string(state)).emit();
  }

  // Catching up after being offline: {"event":"sync","channel":C,"fetched":N,"total":M|null}.
  void sync_progress(const parley::SyncProgress& e) override {
    JsonLine line("sync");
    line.field("channel", ch(e.channel)).field("fetched", e.fetched);
    if (e.total != 0) {
      line.field("total", e.total);
    } else {
      line.null_field("total");
    }
    line.emit();
  }

  void typing(const parley::TypingChanged& e) override {
    JsonLine("typing")
        .field("channel", ch(e.channel))
        .field("user", e.user)
        .field("active", e.active)
        .emit();
  }

  // The schema has no device; "device" is added for delivered
  // receipts when the server named one, since each device has its own cursor.
  void receipt(const parley::ReceiptUpdated& e) override {
    JsonLine line("receipt");
    line.field("channel", ch(e.channel))
        .field("user", e.user)
        .field("kind", parley::to_string(e.kind))
        .field("seq", e.seq);
    if (e.kind == parley::ReceiptKind::delivered && !e.device.empty()) {
      line.field("device", e.device);
    }
    line.emit();
  }

  void notification(const parley::NotificationReceived& e) override {
    JsonLine line("notification");
    line.field("channel", ch(e.channel))
        .field("kind", e.kind)
        .field("seq", e.seq)
        .field("sender", e.sender);
    if (!e.title.empty()) line.field("title", e.title);  // doc, doc_mention
    line.emit();
  }

  void unread(const std::string& channel, const parley::UnreadCount& count,
              bool /*listed*/) override {
    JsonLine("unread")
        .field("channel", ch(channel))
        .field("unread", count.unread)
        .field("mentions", count.mentions)
        .emit();
  }

  void unread_total(const parley::UnreadCount& total) override {
    JsonLine("unread_total").field("unread", total.unread).field("mentions", total.mentions).emit();
  }

  void notify_level(const parley::NotificationLevelChanged& e) override {
    JsonLine line("notify");
    line.field("channel", ch(e.channel)).field("level", parley::to_string(e.level));
    if (e.mute_until_ms > 0) line.field("mute_until", parley::format_timestamp(e.mute_until_ms));
    line.emit();
  }

  // {"event":"presence","user":U,"status":S,"last_seen":ISO-8601|null,"text":T|null};
  // this user's own line also has "invisible" and "hide_last_seen" when set.
  void presence(const parley::Presence& p, bool /*listed*/) override {
    JsonLine line("presence");
    line.field("user", p.user).field("status", parley::to_string(p.status));
    if (p.last_seen_ms) {
      line.field("last_seen", parley::format_timestamp(*p.last_seen_ms));
    } else {
      line.null_field("last_seen");
    }
    if (p.text) {
      line.field("text", *p.text);
    } else {
      line.null_field("text");
    }
    if (p.invisible) line.field("invisible", true);
    if (p.hide_last_seen) line.field("hide_last_seen", true);
    line.emit();
  }

  void presence_notified(const std::string& user) override {
    JsonLine("presence_notification").field("user", user).emit();
  }

  void online_count(const parley::OnlineCountChanged& e) override {
    JsonLine("online_count")
        .field("channel", ch(e.channel))
        .field("online", e.online)
        .field("members", e.members)
        .emit();
  }

  // {"event":"identity_changed","user":U,"device":D,"was_verified":bool,"new_device":bool,
  //  "removed_device":bool}
  void identity_changed(const parley::IdentityChanged& e) override {
    JsonLine("identity_changed")
        .field("user", e.user)
        .field("device", e.device)
        .field("was_verified", e.was_verified)
        .field("new_device", e.new_device)
        .field("removed_device", e.removed_device)
        .emit();
  }

  // {"event":"safety","user":U,"number":"12345 67890 …","verified":bool}
  void safety(const parley::SafetyNumberLoaded& e) override {
    JsonLine("safety")
        .field("user", e.user)
        .field("number", e.number)
        .field("verified", e.verified)
        .emit();
  }

  // {"event":"doc","channel":C,"title":T,"text":FULLTEXT,"version":V}
  void document(const std::string& channel, const std::string& title, const std::string& text,
                std::uint64_t version) override {
    JsonLine("doc")
        .field("channel", ch(channel))
        .field("title", title)
        .field("text", text)
        .field("version", version)
        .emit();
  }

  // {"event":"doc_cursor","channel":C,"title":T,"user":U,"device":D,"cursor":N,
  //  "anchor":N,"name":S,"color":S} or with "gone":true
  void document_cursor(const parley::DocumentAwareness& e) override {
    JsonLine line("doc_cursor");
    line.field("channel", ch(e.channel)).field("title", e.title).field("user", e.user);
    line.field("device", e.device);
    if (e.gone) {
      line.field("gone", true);
    } else {
      if (e.cursor) line.field("cursor", *e.cursor);
      if (e.anchor) line.field("anchor", *e.anchor);
      if (!e.name.empty()) line.field("name", e.name);
      if (!e.color.empty()) line.field("color", e.color);
    }
    line.emit();
  }

  void diagnostic(const std::string& text) override {
    std::fprintf(stderr, "parley-cli: %s\n", text.c_str());
  }

  void error(const ErrorLine& e) override {
    JsonLine line("error");
    line.field("code", e.code).field("message", e.message);
    if (!e.id.empty()) line.field("id", e.id);
    if (!e.ids.empty()) line.field("ids", e.ids);
    line.emit();
  }

  void result(const CommandResult& r) override {
    JsonLine line("result");
    line.field("command", r.command);
    if (!r.channel.empty()) line.field("channel", ch(r.channel));
    if (!r.title.empty()) line.field("title", r.title);
    if (!r.id.empty()) line.field("id", r.id);
    if (!r.kind.empty()) line.field("kind", r.kind);
    if (!r.user.empty()) line.field("user", r.user);
    if (!r.device.empty()) line.field("device", r.device);
    if (!r.role.empty()) line.field("role", r.role);
    if (r.seconds) line.field("seconds", *r.seconds);
    if (r.ref) line.field("ref", *r.ref);
    if (r.seq) line.field("seq", *r.seq);
    if (!r.topic.empty()) line.field("topic", r.topic);
    if (!r.level.empty()) line.field("level", r.level);
    if (!r.status.empty()) line.field("status", r.status);
    if (!r.text.empty()) line.field("text", r.text);
    if (r.notify) line.field("notify", *r.notify);
    if (r.hide_last_seen) line.field("hide_last_seen", *r.hide_last_seen);
    if (r.verified) line.field("verified", *r.verified);
    if (r.blocked) line.field("blocked", user_list(*r.blocked));
    if (r.count) line.field("count", *r.count);
    line.emit();
  }

  void help() override { JsonLine("result").field("command", "help").emit(); }

 private:
  // A text message: {"event":EVENT,"channel":C,"seq":N,"sender":U,"text":T,"id":ID,"ts":TS,...}.
  void message_line(const char* event, const parley::Message& m) const {
    JsonLine line(event);
    line.field("channel", ch(m.channel)).field("seq", m.seq).field("sender", m.sender);
    // A message this device could not decrypt has no text, only the reason.
    if (m.e2e_error.empty()) line.field("text", m.text);
    line.field("id", m.id).field("ts", parley::format_timestamp(m.ts_ms));
    if (m.deleted) line.field("deleted", true);
    if (!m.mentions.empty()) line.field("mentions", mention_list(m.mentions));
    if (m.e2e) line.field("e2e", true);
    if (!m.e2e_error.empty()) line.field("e2e_error", m.e2e_error);
    line.emit();
  }

  // "@U" for a direct channel (docs/cli.md, "Direct messages").
  std::string ch(const std::string& channel) const {
    return names_ != nullptr ? names_->shown(channel) : channel;
  }

  DirectNames* names_;
};

}  // namespace

std::unique_ptr<Output> make_json_output(DirectNames* names) {
  return std::make_unique<JsonOutput>(names);
}

}  // namespace parley_cli
