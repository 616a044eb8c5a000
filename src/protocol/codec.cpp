// The only translation unit that instantiates cereal for the protocol.
#include "protocol/codec.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>

#include <algorithm>
#include <cereal/types/vector.hpp>
#include <string_view>
#include <type_traits>

#include "protocol/json_archive.hpp"

namespace parley::wire {

using json::optional_field;
using cereal::make_nvp;

// ---- field lists (one per wire struct; docs/protocol.md lists the same) ----

template <class Ar>
void serialize(Ar& ar, Auth& m) {
  ar(make_nvp("rid", m.rid), make_nvp("token", m.token));
  optional_field(ar, "device", m.device);
  optional_field(ar, "client", m.client);
  optional_field(ar, "notifications", m.notifications);
  optional_field(ar, "presence", m.presence);
}
template <class Ar>
void serialize(Ar& ar, Meta& m) {
  optional_field(ar, "name", m.name);
  optional_field(ar, "topic", m.topic);
  optional_field(ar, "description", m.description);
  optional_field(ar, "avatar", m.avatar);
  optional_field(ar, "data", m.data);
}
template <class Ar>
void serialize(Ar& ar, CreateChannel& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel));
  optional_field(ar, "kind", m.kind);
  optional_field(ar, "meta", m.meta);
}
template <class Ar>
void serialize(Ar& ar, OpenDirect& m) {
  ar(make_nvp("rid", m.rid), make_nvp("user", m.user));
}
template <class Ar>
void serialize(Ar& ar, MemberAction& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("action", m.action),
     make_nvp("user", m.user));
  optional_field(ar, "role", m.role);
  optional_field(ar, "seconds", m.seconds);
}
template <class Ar>
void serialize(Ar& ar, SetMeta& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("meta", m.meta));
}
template <class Ar>
void serialize(Ar& ar, DeleteMessage& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("seq", m.seq));
}
template <class Ar>
void serialize(Ar& ar, PinMessage& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("seq", m.seq),
     make_nvp("pinned", m.pinned));
}
template <class Ar>
void serialize(Ar& ar, Report& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("seq", m.seq),
     make_nvp("reason", m.reason));
  optional_field(ar, "e2e", m.e2e);
}
template <class Ar>
void serialize(Ar& ar, ChannelInfoRequest& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel));
}
template <class Ar>
void serialize(Ar& ar, Notify& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("level", m.level));
  optional_field(ar, "mute_until", m.mute_until);
}
template <class Ar>
void serialize(Ar& ar, MentionInfo& m) {
  ar(make_nvp("offset", m.offset), make_nvp("length", m.length), make_nvp("user", m.user));
}
template <class Ar>
void serialize(Ar& ar, NotificationEvent& m) {
  ar(make_nvp("channel", m.channel), make_nvp("seq", m.seq), make_nvp("kind", m.kind),
     make_nvp("sender", m.sender));
  optional_field(ar, "title", m.title);
}
template <class Ar>
void serialize(Ar& ar, UnreadEvent& m) {
  ar(make_nvp("channel", m.channel), make_nvp("unread", m.unread),
     make_nvp("mentions", m.mentions));
}
template <class Ar>
void serialize(Ar& ar, NotifyEvent& m) {
  ar(make_nvp("channel", m.channel), make_nvp("level", m.level));
  optional_field(ar, "mute_until", m.mute_until);
}
template <class Ar>
void serialize(Ar& ar, SetPresence& m) {
  ar(make_nvp("rid", m.rid));
  optional_field(ar, "status", m.status);
  optional_field(ar, "text", m.text);
  optional_field(ar, "text_until", m.text_until);
  optional_field(ar, "hide_last_seen", m.hide_last_seen);
}
template <class Ar>
void serialize(Ar& ar, Activity& m) {
  ar(make_nvp("rid", m.rid));
}
template <class Ar>
void serialize(Ar& ar, Watch& m) {
  ar(make_nvp("rid", m.rid), make_nvp("users", m.users));
  optional_field(ar, "notify", m.notify);
}
template <class Ar>
void serialize(Ar& ar, Unwatch& m) {
  ar(make_nvp("rid", m.rid), make_nvp("users", m.users));
}
template <class Ar>
void serialize(Ar& ar, GetPresence& m) {
  ar(make_nvp("rid", m.rid), make_nvp("users", m.users));
}
template <class Ar>
void serialize(Ar& ar, PresenceEvent& m) {
  ar(make_nvp("user", m.user), make_nvp("status", m.status));
  optional_field(ar, "last_seen", m.last_seen);
  optional_field(ar, "text", m.text);
  optional_field(ar, "text_until", m.text_until);
  optional_field(ar, "invisible", m.invisible);
  optional_field(ar, "hide_last_seen", m.hide_last_seen);
  optional_field(ar, "notify", m.notify);
}
template <class Ar>
void serialize(Ar& ar, PresenceList& m) {
  ar(make_nvp("rid", m.rid));
  optional_field(ar, "channel", m.channel);
  ar(make_nvp("users", m.users));
}
template <class Ar>
void serialize(Ar& ar, OnlineCount& m) {
  ar(make_nvp("channel", m.channel), make_nvp("online", m.online),
     make_nvp("members", m.members));
}
template <class Ar>
void serialize(Ar& ar, Admin& m) {
  ar(make_nvp("rid", m.rid), make_nvp("action", m.action));
  optional_field(ar, "channel", m.channel);
  optional_field(ar, "user", m.user);
  optional_field(ar, "text", m.text);
  optional_field(ar, "seconds", m.seconds);
}
template <class Ar>
void serialize(Ar& ar, JoinChannel& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel));
}
template <class Ar>
void serialize(Ar& ar, LeaveChannel& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel));
}
template <class Ar>
void serialize(Ar& ar, SignedKey& m) {
  ar(make_nvp("id", m.id), make_nvp("key", m.key), make_nvp("signature", m.signature));
}
template <class Ar>
void serialize(Ar& ar, OneTimeKey& m) {
  ar(make_nvp("id", m.id), make_nvp("key", m.key));
}
template <class Ar>
void serialize(Ar& ar, PublishKeys& m) {
  ar(make_nvp("rid", m.rid), make_nvp("identity", m.identity));
  optional_field(ar, "signed_prekey", m.signed_prekey);
  optional_field(ar, "last_resort", m.last_resort);
  optional_field(ar, "one_time", m.one_time);
}
template <class Ar>
void serialize(Ar& ar, GetBundle& m) {
  ar(make_nvp("rid", m.rid), make_nvp("user", m.user));
  optional_field(ar, "identities_only", m.identities_only);
  optional_field(ar, "device", m.device);
}
template <class Ar>
void serialize(Ar& ar, PrekeyHeader& m) {
  ar(make_nvp("identity", m.identity), make_nvp("ephemeral", m.ephemeral),
     make_nvp("signed_prekey", m.signed_prekey));
  optional_field(ar, "one_time", m.one_time);
}
template <class Ar>
void serialize(Ar& ar, Envelope& m) {
  ar(make_nvp("user", m.user), make_nvp("device", m.device));
  optional_field(ar, "prekey", m.prekey);
  ar(make_nvp("body", m.body));
}
template <class Ar>
void serialize(Ar& ar, E2e& m) {
  ar(make_nvp("device", m.device), make_nvp("to", m.to));
  optional_field(ar, "commit", m.commit);
  optional_field(ar, "tag", m.tag);
}
template <class Ar>
void serialize(Ar& ar, RemoveDevice& m) {
  ar(make_nvp("rid", m.rid), make_nvp("device", m.device));
}
template <class Ar>
void serialize(Ar& ar, Block& m) {
  ar(make_nvp("rid", m.rid), make_nvp("user", m.user));
  optional_field(ar, "blocked", m.blocked);
}
template <class Ar>
void serialize(Ar& ar, ListBlocks& m) {
  ar(make_nvp("rid", m.rid));
}
template <class Ar>
void serialize(Ar& ar, Blocks& m) {
  ar(make_nvp("rid", m.rid), make_nvp("users", m.users));
}
template <class Ar>
void serialize(Ar& ar, E2eRetry& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("seq", m.seq));
}
template <class Ar>
void serialize(Ar& ar, E2eResend& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("seq", m.seq),
     make_nvp("envelope", m.envelope));
}
template <class Ar>
void serialize(Ar& ar, E2eAck& m) {
  ar(make_nvp("rid", m.rid), make_nvp("nid", m.nid));
}
template <class Ar>
void serialize(Ar& ar, E2eNotice& m) {
  ar(make_nvp("nid", m.nid), make_nvp("kind", m.kind), make_nvp("channel", m.channel),
     make_nvp("seq", m.seq), make_nvp("id", m.id), make_nvp("user", m.user),
     make_nvp("device", m.device), make_nvp("ts", m.ts));
  optional_field(ar, "envelope", m.envelope);
  optional_field(ar, "commit", m.commit);
  optional_field(ar, "tag", m.tag);
}
template <class Ar>
void serialize(Ar& ar, FrankingOpening& m) {
  ar(make_nvp("sender", m.sender), make_nvp("device", m.device), make_nvp("id", m.id),
     make_nvp("ts", m.ts), make_nvp("text", m.text), make_nvp("key", m.key),
     make_nvp("commit", m.commit), make_nvp("tag", m.tag));
}
template <class Ar>
void serialize(Ar& ar, KeysState& m) {
  ar(make_nvp("rid", m.rid), make_nvp("identity", m.identity),
     make_nvp("signed_prekey", m.signed_prekey), make_nvp("last_resort", m.last_resort),
     make_nvp("one_time", m.one_time));
}
template <class Ar>
void serialize(Ar& ar, DeviceBundle& m) {
  ar(make_nvp("device", m.device), make_nvp("identity", m.identity));
  optional_field(ar, "signed_prekey", m.signed_prekey);
  optional_field(ar, "one_time", m.one_time);
  optional_field(ar, "last_resort", m.last_resort);
}
template <class Ar>
void serialize(Ar& ar, Bundles& m) {
  ar(make_nvp("rid", m.rid), make_nvp("user", m.user), make_nvp("devices", m.devices));
}
// "text" is required unless "e2e" is present (then it is normally absent).
template <class Ar>
void serialize(Ar& ar, Send& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("id", m.id));
  if constexpr (std::is_same_v<Ar, json::JsonOut>) {
    if (!m.text.empty() || !m.e2e) ar(make_nvp("text", m.text));
    optional_field(ar, "e2e", m.e2e);
  } else {
    optional_field(ar, "e2e", m.e2e);
    std::optional<std::string> text;
    if (m.e2e) {
      optional_field(ar, "text", text);
    } else {
      text.emplace();
      ar(make_nvp("text", *text));
    }
    m.text = text.value_or("");
  }
}
template <class Ar>
void serialize(Ar& ar, History& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel));
  optional_field(ar, "before", m.before);
  optional_field(ar, "after", m.after);
  ar(make_nvp("limit", m.limit));
}
template <class Ar>
void serialize(Ar& ar, ListChannels& m) {
  ar(make_nvp("rid", m.rid));
}
template <class Ar>
void serialize(Ar& ar, Typing& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("active", m.active));
}
template <class Ar>
void serialize(Ar& ar, Receipt& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("kind", m.kind),
     make_nvp("seq", m.seq));
}
template <class Ar>
void serialize(Ar& ar, ListReceipts& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel));
}
template <class Ar>
void serialize(Ar& ar, TypingEvent& m) {
  ar(make_nvp("channel", m.channel), make_nvp("user", m.user), make_nvp("active", m.active));
}
template <class Ar>
void serialize(Ar& ar, ReceiptEvent& m) {
  ar(make_nvp("channel", m.channel), make_nvp("user", m.user), make_nvp("kind", m.kind),
     make_nvp("seq", m.seq));
  optional_field(ar, "device", m.device);
}
template <class Ar>
void serialize(Ar& ar, ReceiptCursor& m) {
  ar(make_nvp("user", m.user));
  optional_field(ar, "device", m.device);
  ar(make_nvp("seq", m.seq));
}
template <class Ar>
void serialize(Ar& ar, ReceiptList& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("members", m.members),
     make_nvp("read", m.read), make_nvp("delivered", m.delivered));
}
template <class Ar>
void serialize(Ar& ar, ChannelEvent& m) {
  ar(make_nvp("channel", m.channel), make_nvp("seq", m.seq), make_nvp("kind", m.kind),
     make_nvp("sender", m.sender), make_nvp("ts", m.ts));
  optional_field(ar, "id", m.id);
  optional_field(ar, "text", m.text);
  optional_field(ar, "deleted", m.deleted);
  optional_field(ar, "target", m.target);
  optional_field(ar, "role", m.role);
  optional_field(ar, "until", m.until);
  optional_field(ar, "ref", m.ref);
  optional_field(ar, "channel_kind", m.channel_kind);
  optional_field(ar, "meta", m.meta);
  optional_field(ar, "mentions", m.mentions);
  optional_field(ar, "e2e", m.e2e);
  optional_field(ar, "title", m.title);
  optional_field(ar, "doc_kind", m.doc_kind);
}
template <class Ar>
void serialize(Ar& ar, ChannelState& m) {
  ar(make_nvp("channel", m.channel), make_nvp("last_seq", m.last_seq));
  optional_field(ar, "kind", m.kind);
  optional_field(ar, "role", m.role);
  optional_field(ar, "level", m.level);
  optional_field(ar, "mute_until", m.mute_until);
  optional_field(ar, "unread", m.unread);
  optional_field(ar, "mentions", m.mentions);
}
template <class Ar>
void serialize(Ar& ar, Welcome& m) {
  ar(make_nvp("rid", m.rid), make_nvp("user", m.user), make_nvp("device", m.device),
     make_nvp("server_time", m.server_time), make_nvp("max_frame", m.max_frame),
     make_nvp("channels", m.channels));
  optional_field(ar, "keys", m.keys);
}
template <class Ar>
void serialize(Ar& ar, Ok& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("seq", m.seq),
     make_nvp("last_seq", m.last_seq));
}
template <class Ar>
void serialize(Ar& ar, Ack& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("id", m.id),
     make_nvp("seq", m.seq), make_nvp("ts", m.ts));
  // "duplicate" is written only when true and optional on input.
  std::optional<bool> dup;
  if (m.duplicate) dup = true;
  optional_field(ar, "duplicate", dup);
  m.duplicate = dup.value_or(false);
}
template <class Ar>
void serialize(Ar& ar, HistoryPage& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("last_seq", m.last_seq),
     make_nvp("events", m.events));
}
template <class Ar>
void serialize(Ar& ar, ChannelList& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channels", m.channels));
}
template <class Ar>
void serialize(Ar& ar, Error& m) {
  optional_field(ar, "rid", m.rid);
  ar(make_nvp("code", m.code), make_nvp("message", m.message));
  optional_field(ar, "id", m.id);
  optional_field(ar, "retry_after_ms", m.retry_after_ms);
  optional_field(ar, "until", m.until);
}
template <class Ar>
void serialize(Ar& ar, MemberInfo& m) {
  ar(make_nvp("user", m.user), make_nvp("role", m.role));
  optional_field(ar, "muted_until", m.muted_until);
}
template <class Ar>
void serialize(Ar& ar, BanInfo& m) {
  ar(make_nvp("user", m.user), make_nvp("until", m.until));
}
template <class Ar>
void serialize(Ar& ar, ChannelInfoReply& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("kind", m.kind),
     make_nvp("last_seq", m.last_seq), make_nvp("meta", m.meta), make_nvp("members", m.members),
     make_nvp("bans", m.bans), make_nvp("pinned", m.pinned));
}
template <class Ar>
void serialize(Ar& ar, AdminChannel& m) {
  ar(make_nvp("channel", m.channel), make_nvp("kind", m.kind), make_nvp("members", m.members),
     make_nvp("last_seq", m.last_seq));
}
template <class Ar>
void serialize(Ar& ar, AdminUser& m) {
  ar(make_nvp("user", m.user), make_nvp("first_seen", m.first_seen),
     make_nvp("last_seen", m.last_seen));
  optional_field(ar, "banned_until", m.banned_until);
}
template <class Ar>
void serialize(Ar& ar, AdminReport& m) {
  ar(make_nvp("id", m.id), make_nvp("channel", m.channel), make_nvp("seq", m.seq),
     make_nvp("reporter", m.reporter), make_nvp("reason", m.reason), make_nvp("ts", m.ts),
     make_nvp("sender", m.sender));
  optional_field(ar, "text", m.text);
  optional_field(ar, "verified", m.verified);
}
template <class Ar>
void serialize(Ar& ar, AdminResult& m) {
  ar(make_nvp("rid", m.rid), make_nvp("action", m.action));
  optional_field(ar, "channels", m.channels);
  optional_field(ar, "users", m.users);
  optional_field(ar, "reports", m.reports);
  optional_field(ar, "seq", m.seq);
}

// ---- collaborative documents ---------------------------------------------------

template <class Ar>
void serialize(Ar& ar, DocCreate& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("title", m.title));
  optional_field(ar, "kind", m.kind);
}
template <class Ar>
void serialize(Ar& ar, DocOpen& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("title", m.title),
     make_nvp("sv", m.sv));
}
template <class Ar>
void serialize(Ar& ar, DocClose& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("title", m.title));
}
template <class Ar>
void serialize(Ar& ar, DocUpdate& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("title", m.title),
     make_nvp("update", m.update));
  optional_field(ar, "mentions", m.mentions);
}
template <class Ar>
void serialize(Ar& ar, DocAwareness& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("title", m.title));
  optional_field(ar, "cursor", m.cursor);
  optional_field(ar, "anchor", m.anchor);
  optional_field(ar, "name", m.name);
  optional_field(ar, "color", m.color);
}
template <class Ar>
void serialize(Ar& ar, DocList& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel));
}
template <class Ar>
void serialize(Ar& ar, DocState& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("title", m.title),
     make_nvp("kind", m.kind), make_nvp("update", m.update), make_nvp("sv", m.sv),
     make_nvp("version", m.version));
}
template <class Ar>
void serialize(Ar& ar, DocAck& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("title", m.title),
     make_nvp("version", m.version));
}
template <class Ar>
void serialize(Ar& ar, DocUpdateEvent& m) {
  ar(make_nvp("channel", m.channel), make_nvp("title", m.title), make_nvp("update", m.update),
     make_nvp("user", m.user), make_nvp("device", m.device), make_nvp("version", m.version));
}
template <class Ar>
void serialize(Ar& ar, DocAwarenessEvent& m) {
  ar(make_nvp("channel", m.channel), make_nvp("title", m.title), make_nvp("user", m.user),
     make_nvp("device", m.device));
  optional_field(ar, "cursor", m.cursor);
  optional_field(ar, "anchor", m.anchor);
  optional_field(ar, "name", m.name);
  optional_field(ar, "color", m.color);
  optional_field(ar, "gone", m.gone);
}
template <class Ar>
void serialize(Ar& ar, DocInfo& m) {
  ar(make_nvp("title", m.title), make_nvp("kind", m.kind), make_nvp("creator", m.creator),
     make_nvp("created", m.created), make_nvp("seq", m.seq), make_nvp("size", m.size),
     make_nvp("version", m.version));
}
template <class Ar>
void serialize(Ar& ar, DocListReply& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("docs", m.docs));
}

// ---- type names --------------------------------------------------------------

namespace {

template <class T> constexpr const char* kName = nullptr;
template <> constexpr const char* kName<Auth> = "auth";
template <> constexpr const char* kName<CreateChannel> = "create";
template <> constexpr const char* kName<JoinChannel> = "join";
template <> constexpr const char* kName<LeaveChannel> = "leave";
template <> constexpr const char* kName<Send> = "send";
template <> constexpr const char* kName<History> = "history";
template <> constexpr const char* kName<ListChannels> = "channels";
template <> constexpr const char* kName<Welcome> = "welcome";
template <> constexpr const char* kName<Ok> = "ok";
template <> constexpr const char* kName<Ack> = "ack";
template <> constexpr const char* kName<HistoryPage> = "history";
template <> constexpr const char* kName<ChannelList> = "channels";
template <> constexpr const char* kName<Error> = "error";
template <> constexpr const char* kName<ChannelEvent> = "event";
template <> constexpr const char* kName<Typing> = "typing";
template <> constexpr const char* kName<Receipt> = "receipt";
template <> constexpr const char* kName<ListReceipts> = "receipts";
template <> constexpr const char* kName<TypingEvent> = "typing";
template <> constexpr const char* kName<ReceiptEvent> = "receipt";
template <> constexpr const char* kName<ReceiptList> = "receipts";
template <> constexpr const char* kName<OpenDirect> = "direct";
template <> constexpr const char* kName<MemberAction> = "member";
template <> constexpr const char* kName<SetMeta> = "set_meta";
template <> constexpr const char* kName<DeleteMessage> = "delete";
template <> constexpr const char* kName<PinMessage> = "pin";
template <> constexpr const char* kName<Report> = "report";
template <> constexpr const char* kName<ChannelInfoRequest> = "info";
template <> constexpr const char* kName<Admin> = "admin";
template <> constexpr const char* kName<ChannelInfoReply> = "channel_info";
template <> constexpr const char* kName<AdminResult> = "admin_result";
template <> constexpr const char* kName<Notify> = "notify";
template <> constexpr const char* kName<NotificationEvent> = "notification";
template <> constexpr const char* kName<UnreadEvent> = "unread";
template <> constexpr const char* kName<NotifyEvent> = "notify";
template <> constexpr const char* kName<SetPresence> = "set_presence";
template <> constexpr const char* kName<Activity> = "activity";
template <> constexpr const char* kName<Watch> = "watch";
template <> constexpr const char* kName<Unwatch> = "unwatch";
template <> constexpr const char* kName<GetPresence> = "get_presence";
template <> constexpr const char* kName<PresenceEvent> = "presence";
template <> constexpr const char* kName<PresenceList> = "presence_list";
template <> constexpr const char* kName<OnlineCount> = "online_count";
template <> constexpr const char* kName<PublishKeys> = "keys";
template <> constexpr const char* kName<GetBundle> = "bundle";
template <> constexpr const char* kName<KeysState> = "keys_state";
template <> constexpr const char* kName<Bundles> = "bundles";
template <> constexpr const char* kName<RemoveDevice> = "remove_device";
template <> constexpr const char* kName<Block> = "block";
template <> constexpr const char* kName<ListBlocks> = "blocks";
template <> constexpr const char* kName<Blocks> = "blocks";
template <> constexpr const char* kName<E2eRetry> = "e2e_retry";
template <> constexpr const char* kName<E2eResend> = "e2e_resend";
template <> constexpr const char* kName<E2eAck> = "e2e_ack";
template <> constexpr const char* kName<E2eNotice> = "e2e_notice";
template <> constexpr const char* kName<DocCreate> = "doc_create";
template <> constexpr const char* kName<DocOpen> = "doc_open";
template <> constexpr const char* kName<DocClose> = "doc_close";
template <> constexpr const char* kName<DocUpdate> = "doc_update";
template <> constexpr const char* kName<DocAwareness> = "doc_awareness";
template <> constexpr const char* kName<DocList> = "doc_list";
template <> constexpr const char* kName<DocState> = "doc_state";
template <> constexpr const char* kName<DocAck> = "doc_ack";
template <> constexpr const char* kName<DocUpdateEvent> = "doc_update";
template <> constexpr const char* kName<DocAwarenessEvent> = "doc_awareness";
template <> constexpr const char* kName<DocListReply> = "doc_list";

template <class Variant>
std::string encode_variant(const Variant& message) {
  rapidjson::StringBuffer buffer;
  json::JsonOut::Writer writer(buffer);
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        json::JsonOut ar(writer);
        writer.StartObject();
        writer.Key("type");
        writer.String(kName<T>);
        serialize(ar, const_cast<T&>(m));  // serialize() only reads when saving
        writer.EndObject();
      },
      message);
  return std::string(buffer.GetString(), buffer.GetSize());
}

// Decodes one object of a frame as whichever alternative of Variant its
// "type" names.
template <class Variant, std::size_t I = 0>
bool decode_as(std::string_view type, json::JsonIn& ar, Variant* out) {
  if constexpr (I < std::variant_size_v<Variant>) {
    using T = std::variant_alternative_t<I, Variant>;
    if (type == kName<T>) {
      T value{};
      serialize(ar, value);
      *out = std::move(value);
      return true;
    }
    return decode_as<Variant, I + 1>(type, ar, out);
  } else {
    return false;
  }
}

template <class Variant>
Decoded<Variant> decode_item(const rapidjson::Value& item) {
  DecodeError error;
  if (!item.IsObject()) {
    error.code = code::kBadFrame;
    error.message = "a frame must hold JSON objects";
    return error;
  }
  auto rid = item.FindMember("rid");
  if (rid != item.MemberEnd() && rid->value.IsUint64()) error.rid = rid->value.GetUint64();
  auto type = item.FindMember("type");
  if (type == item.MemberEnd()) {
    error.code = code::kMissingField;
    error.message = "field \"type\" is missing";
    return error;
  }
  if (!type->value.IsString()) {
    error.code = code::kBadField;
    error.message = "field \"type\" must be a string";
    return error;
  }
  std::string_view name(type->value.GetString(), type->value.GetStringLength());
  try {
    json::JsonIn ar(item, &is_valid_utf8);
    Variant out;
    if (decode_as(name, ar, &out)) return out;
  } catch (const json::FieldError& e) {
    error.code = e.code;
    error.message = e.message;
    return error;
  } catch (const std::exception& e) {  // allocation failure and the like
    error.code = code::kBadFrame;
    error.message = e.what();
    return error;
  }
  error.code = code::kUnknownType;
  std::string shown(name.substr(0, 64));
  if (!is_valid_utf8(shown)) shown = "?";
  error.message = "unknown frame type \"" + shown + "\"";
  return error;
}

template <class Variant>
std::vector<Decoded<Variant>> decode_frame(std::string_view frame) {
  std::vector<Decoded<Variant>> out;
  rapidjson::Document doc;
  // Iterative: deep nesting cannot exhaust the stack. No kParseNanAndInfFlag:
  // NaN and Infinity are refused. Strings must be valid UTF-8.
  constexpr unsigned kFlags = rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag;
  doc.Parse<kFlags>(frame.data(), frame.size());
  if (doc.HasParseError()) {
    DecodeError error;
    auto code = doc.GetParseError();
    if (code == rapidjson::kParseErrorStringInvalidEncoding ||
        code == rapidjson::kParseErrorStringUnicodeSurrogateInvalid) {
      error.code = code::kInvalidUtf8;
      error.message = "invalid utf-8 at offset " + std::to_string(doc.GetErrorOffset());
    } else {
      error.code = code::kBadFrame;
      error.message = std::string("malformed json at offset ") +
                      std::to_string(doc.GetErrorOffset()) + ": " +
                      rapidjson::GetParseError_En(code);
    }
    out.push_back(std::move(error));
    return out;
  }
  if (doc.IsArray()) {
    if (doc.Empty()) {
      out.push_back(DecodeError{code::kBadFrame, "empty array frame", std::nullopt});
    }
    for (const auto& item : doc.GetArray()) out.push_back(decode_item<Variant>(item));
  } else {
    out.push_back(decode_item<Variant>(doc));
  }
  return out;
}

}  // namespace

std::vector<Decoded<ClientMessage>> decode_client_frame(std::string_view frame) {
  return decode_frame<ClientMessage>(frame);
}

std::vector<Decoded<ServerMessage>> decode_server_frame(std::string_view frame) {
  return decode_frame<ServerMessage>(frame);
}

std::string encode(const ClientMessage& message) { return encode_variant(message); }
std::string encode(const ServerMessage& message) { return encode_variant(message); }

std::string encode_e2e(const E2e& e2e) {
  rapidjson::StringBuffer buffer;
  json::JsonOut::Writer writer(buffer);
  json::JsonOut ar(writer);
  writer.StartObject();
  serialize(ar, const_cast<E2e&>(e2e));  // serialize() only reads when saving
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::optional<E2e> decode_e2e(std::string_view text) {
  rapidjson::Document doc;
  constexpr unsigned kFlags = rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag;
  doc.Parse<kFlags>(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
  try {
    json::JsonIn ar(doc, &is_valid_utf8);
    E2e out;
    serialize(ar, out);
    return out;
  } catch (const json::FieldError&) {
    return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string pack(const std::vector<std::shared_ptr<const std::string>>& items) {
  if (items.size() == 1) return *items.front();
  std::size_t size = 2 + items.size();
  for (const auto& item : items) size += item->size();
  std::string frame;
  frame.reserve(size);
  frame.push_back('[');
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i != 0) frame.push_back(',');
    frame.append(*items[i]);
  }
  frame.push_back(']');
  return frame;
}

const char* type_name(const ClientMessage& message) {
  return std::visit([](const auto& m) { return kName<std::decay_t<decltype(m)>>; }, message);
}

const char* type_name(const ServerMessage& message) {
  return std::visit([](const auto& m) { return kName<std::decay_t<decltype(m)>>; }, message);
}

namespace {
struct NullOutput {
  void Put(char) {}
};
}  // namespace

bool is_valid_utf8(std::string_view text) {
  rapidjson::MemoryStream in(text.data(), text.size());
  NullOutput sink;
  while (in.Tell() < text.size()) {
    if (!rapidjson::UTF8<>::Validate(in, sink)) return false;
  }
  return true;
}

ChannelMeta from_wire(const Meta& meta) {
  return ChannelMeta{meta.name, meta.topic, meta.description, meta.avatar, meta.data};
}

Meta to_wire(const ChannelMeta& meta) {
  return Meta{meta.name, meta.topic, meta.description, meta.avatar_url, meta.data};
}

std::string check_meta(const Meta& meta) {
  struct Field {
    const char* name;
    const std::optional<std::string>& value;
    std::size_t limit;
  };
  const Field fields[] = {{"name", meta.name, kMaxMetaName},
                          {"topic", meta.topic, kMaxMetaTopic},
                          {"description", meta.description, kMaxMetaDescription},
                          {"avatar", meta.avatar, kMaxMetaAvatar},
                          {"data", meta.data, kMaxMetaData}};
  for (const Field& f : fields) {
    if (!f.value) continue;
    if (f.value->size() > f.limit) {
      return std::string("meta field \"") + f.name + "\" has " + std::to_string(f.value->size()) +
             " bytes, more than " + std::to_string(f.limit);
    }
    if (!is_valid_utf8(*f.value)) {
      return std::string("meta field \"") + f.name + "\" is not valid utf-8";
    }
  }
  if (meta.avatar && !meta.avatar->empty()) {
    const std::string& url = *meta.avatar;
    bool scheme = url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0;
    bool clean = std::none_of(url.begin(), url.end(), [](char c) {
      auto u = static_cast<unsigned char>(c);
      return u <= 0x20 || u == 0x7f;
    });
    if (!scheme || !clean) {
      return "meta field \"avatar\" must be an http:// or https:// URL without spaces";
    }
  }
  if (meta.data && !meta.data->empty()) {
    rapidjson::Document doc;
    constexpr unsigned kFlags =
        rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag;
    doc.Parse<kFlags>(meta.data->data(), meta.data->size());
    if (doc.HasParseError() || !doc.IsObject()) {
      return "meta field \"data\" must be the text of a JSON object";
    }
  }
  return {};
}

}  // namespace parley::wire
