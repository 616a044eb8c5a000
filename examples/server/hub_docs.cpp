// Collaborative documents in channels (docs/collab.md, "On the server").
//
// A document belongs to a channel and is named by its title there. Members
// read it; members who may post write it. The server keeps a replica of each
// document somebody has open (crdt::Document, never edited locally): a
// doc_open is answered from it with what the client lacks, and each
// doc_update is applied to it (which validates the update), stored, then
// acknowledged and relayed to the other connections that have the document
// open. Stored content is the latest snapshot plus the updates after it; a
// snapshot is written every kSnapshotEvery updates and when the replica is
// unloaded, 30 s (doc_unload_after_) after its last connection closed it.
#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>

#include "hub.hpp"
#include "log.hpp"

namespace parley::server {
namespace {

namespace code = wire::code;

// The server's own agent id in every replica. It never edits, so no update
// carries it; clients draw theirs from 1 .. 2^63 - 1.
constexpr crdt::AgentId kServerAgent = ~crdt::AgentId{0};
constexpr std::uint64_t kSnapshotEvery = 200;               // updates
constexpr std::size_t kSnapshotBytes = 256 * 1024;          // or this many bytes of them

std::string to_base64(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

std::optional<std::string> from_base64(std::string_view text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  std::size_t size = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &size, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    return std::nullopt;
  }
  out.resize(size);
  return out;
}

// Why `title` cannot name a document, or empty.
std::string check_title(const std::string& title) {
  if (title.empty() || title.size() > wire::kMaxDocTitle) {
    return fmt::format("a document title has 1-{} bytes, not {}", wire::kMaxDocTitle,
                       title.size());
  }
  for (char c : title) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return "a document title has no control characters";
  }
  return {};
}

// Why `color` is not "#rrggbb", or empty.
std::string check_color(const std::string& color) {
  bool ok = color.size() == 7 && color[0] == '#' &&
            std::all_of(color.begin() + 1, color.end(),
                        [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
  return ok ? std::string() : "field \"color\" must be \"#rrggbb\"";
}

// Characters ever inserted plus characters deleted: equal on replicas that
// hold the same state (docs/collab.md, "Versions").
std::uint64_t version_of(const crdt::Document& doc) {
  crdt::Document::Stats s = doc.stats();
  return 2 * static_cast<std::uint64_t>(s.total_chars) - s.visible_chars;
}

}  // namespace

Status Hub::load_docs() {
  auto rows = store_.docs();
  if (!rows) return rows.status();
  docs_.clear();
  for (StoredDoc& row : *rows) {
    DocKey key{row.channel, row.title};
    docs_[key].row = std::move(row);
  }
  metrics_.docs = static_cast<std::int64_t>(docs_.size());
  return Status();
}

Hub::DocEntry* Hub::existing_doc(Session& session, std::uint64_t rid, const std::string& channel,
                                 const std::string& title) {
  if (std::string why = check_title(title); !why.empty()) {
    error(session, rid, code::kInvalidTitle, why);
    return nullptr;
  }
  auto it = docs_.find(DocKey{channel, title});
  if (it == docs_.end()) {
    error(session, rid, code::kNoSuchDoc,
          fmt::format("\"{}\" has no document \"{}\"", channel, shown(title)));
    return nullptr;
  }
  return &it->second;
}

Status Hub::load_replica(DocEntry& entry) {
  if (entry.doc) return Status();
  auto content = store_.doc_content(entry.row.id);
  if (!content) return content.status();
  std::unique_ptr<crdt::Document> doc;
  if (content->snapshot.empty()) {
    doc = std::make_unique<crdt::Document>(kServerAgent);
  } else {
    auto loaded = crdt::Document::load_snapshot(content->snapshot, kServerAgent);
    if (!loaded) {
      return Status(StatusCode::corrupt,
                    fmt::format("snapshot of document {}: {}", entry.row.id,
                                loaded.status().message()),
                    "internal");
    }
    doc = std::make_unique<crdt::Document>(std::move(*loaded));
  }
  entry.last_n = content->snapshot_n;
  std::size_t bytes = 0;
  for (const auto& [n, data] : content->updates) {
    if (Status s = doc->apply_update(data); !s.ok()) {
      // Every stored update was applied once before it was stored.
      return Status(StatusCode::corrupt,
                    fmt::format("update {} of document {}: {}", n, entry.row.id, s.message()),
                    "internal");
    }
    entry.last_n = n;
    bytes += data.size();
  }
  entry.unsnapshotted = content->updates.size();
  entry.unsnapshotted_bytes = bytes;
  entry.doc = std::move(doc);
  entry.memory = entry.doc->stats().memory_bytes;
  metrics_.docs_loaded += 1;
  metrics_.doc_memory_bytes += static_cast<std::int64_t>(entry.memory);
  metrics_.doc_chars += static_cast<std::int64_t>(entry.doc->size());
  return Status();
}

void Hub::drop_replica(DocEntry& entry) {
  if (!entry.doc) return;
  metrics_.docs_loaded -= 1;
  metrics_.doc_memory_bytes -= static_cast<std::int64_t>(entry.memory);
  metrics_.doc_chars -= static_cast<std::int64_t>(entry.doc->size());
  entry.doc.reset();
  entry.memory = 0;
}

void Hub::snapshot_doc(DocEntry& entry) {
  // Updates still waiting for what they depend on are not in a snapshot:
  // keep them as updates until they can be applied.
  if (!entry.doc || entry.unsnapshotted == 0 || entry.doc->pending() != 0) return;
  std::string snapshot = entry.doc->encode_snapshot();
  if (Status s = store_.compact_doc(entry.row.id, snapshot, entry.last_n); !s.ok()) {
    log("warning", "snapshot of document \"{}\" in \"{}\": {}", entry.row.title,
        entry.row.channel, s.message());
    return;
  }
  ++metrics_.doc_snapshots_total;
  entry.unsnapshotted = 0;
  entry.unsnapshotted_bytes = 0;
}

std::uint64_t Hub::doc_fan_out(const DocKey& key, DocEntry& entry, const Encoded& item,
                               const Session* origin) {
  auto channel = channels_.find(key.first);
  std::uint64_t queued = 0;
  for (std::size_t i = 0; i < entry.sessions.size();) {
    Session* s = entry.sessions[i];
    // A member who left (or was removed) since opening gets nothing more.
    if (channel == channels_.end() || channel->second.members.count(s->user()) == 0) {
      leave_doc(*s, key, entry);
      continue;
    }
    ++i;
    if (s == origin || s->closing()) continue;
    enqueue(*s, item);
    ++queued;
  }
  return queued;
}

void Hub::leave_doc(const Session& session, const DocKey& key, DocEntry& entry) {
  auto it = std::find(entry.sessions.begin(), entry.sessions.end(), &session);
  if (it == entry.sessions.end()) return;
  entry.sessions.erase(it);
  metrics_.doc_editors -= 1;
  auto mine = docs_of_session_.find(&session);
  if (mine != docs_of_session_.end()) {
    mine->second.erase(key);
    if (mine->second.empty()) docs_of_session_.erase(mine);
  }
  if (entry.awareness.erase(&session) != 0) {
    wire::DocAwarenessEvent gone{key.first, key.second, session.user(), session.device()};
    gone.gone = true;
    doc_fan_out(key, entry, encoded(gone), &session);
  }
  if (entry.sessions.empty()) {
    entry.idle_since = std::chrono::steady_clock::now();
    idle_docs_.emplace(entry.idle_since + doc_unload_after_, key);
    want_tick();  // the loop's timer may be armed for later than the unload
  }
}

void Hub::docs_closed(const Session& session) {
  awareness_budget_.erase(&session);
  auto mine = docs_of_session_.find(&session);
  if (mine == docs_of_session_.end()) return;
  std::set<DocKey> keys = mine->second;  // leave_doc edits the set
  for (const DocKey& key : keys) {
    auto it = docs_.find(key);
    if (it != docs_.end()) leave_doc(session, key, it->second);
  }
  docs_of_session_.erase(&session);
}

Hub::SteadyTime Hub::next_doc_unload() const {
  return idle_docs_.empty() ? SteadyTime::max() : idle_docs_.begin()->first;
}

void Hub::unload_idle_docs(SteadyTime now) {
  while (!idle_docs_.empty() && idle_docs_.begin()->first <= now) {
    DocKey key = idle_docs_.begin()->second;
    SteadyTime due = idle_docs_.begin()->first;
    idle_docs_.erase(idle_docs_.begin());
    auto it = docs_.find(key);
    if (it == docs_.end()) continue;
    DocEntry& entry = it->second;
    // Opened again since, or closed again later (a later entry is queued).
    if (!entry.sessions.empty() || entry.idle_since + doc_unload_after_ != due) continue;
    if (!entry.doc) continue;
    snapshot_doc(entry);
    drop_replica(entry);
    entry.awareness.clear();
    ++metrics_.docs_unloaded_total;
  }
}

// ---- requests -------------------------------------------------------------------

void Hub::handle(Session& session, const wire::DocCreate& request) {
  Channel* channel = member_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  if (std::string why = check_title(request.title); !why.empty()) {
    return error(session, request.rid, code::kInvalidTitle, why);
  }
  std::string kind = request.kind.value_or("text");
  if (kind != "text") {
    return error(session, request.rid, code::kInvalidKind,
                 fmt::format("document kind \"{}\" is not \"text\"", shown(kind)));
  }
  if (channel->kind == ChannelKind::direct) {
    return error(session, request.rid, code::kForbidden,
                 "documents are not end-to-end encrypted, so direct channels have none");
  }
  const Member& member = channel->members.at(session.user());
  if (!allowed(session, request.rid, request.channel, *channel, member, Permission::post)) return;
  if (member.muted_until && (*member.muted_until == 0 || *member.muted_until > now_ms())) {
    return error(session, request.rid, code::kMuted,
                 fmt::format("\"{}\" is muted in \"{}\"", session.user(), request.channel));
  }
  DocKey key{request.channel, request.title};
  if (docs_.count(key) != 0) {
    return error(session, request.rid, code::kDocExists,
                 fmt::format("\"{}\" has a document \"{}\" already", request.channel,
                             shown(request.title)));
  }
  StoredEvent event;
  event.channel = request.channel;
  event.kind = EventKind::doc;
  event.sender = session.user();
  event.text = request.title;
  event.channel_kind = kind;
  event.ts = now_ms();
  std::int64_t id = 0;
  std::int64_t ts = event.ts;
  auto effects = [&](std::int64_t channel_id, std::uint64_t seq) {
    return store_.put_doc(channel_id, seq, request.title, kind, session.user(), ts, &id);
  };
  std::uint64_t seq = 0;
  auto apply = [&] { seq = channels_[request.channel].last_seq; };
  if (!commit_event(session, request.rid, std::move(event), effects, apply)) return;
  DocEntry& entry = docs_[key];
  entry.row = StoredDoc{id, request.channel, request.title, kind, session.user(), ts, seq, 0, 0};
  ++metrics_.docs_created_total;
  metrics_.docs = static_cast<std::int64_t>(docs_.size());

  // Members who want every message of the channel are told of the new document.
  const Channel& ch = channels_[request.channel];
  std::int64_t now = now_ms();
  for (const auto& [user, state] : ch.members) {
    if (user == session.user()) continue;
    NotifySetting setting = notify_setting(user, request.channel);
    bool muted = setting.mute_until != 0 && setting.mute_until > now;
    if (setting.level != "all" || muted) {
      ++metrics_.notifications_suppressed_total[setting.level];
      continue;
    }
    ++metrics_.notifications_total["doc/" + setting.level];
    wire::NotificationEvent note{request.channel, seq, "doc", session.user()};
    note.title = request.title;
    to_user(user, encoded(note));
  }
}

void Hub::handle(Session& session, const wire::DocOpen& request) {
  Channel* channel = member_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  DocEntry* entry = existing_doc(session, request.rid, request.channel, request.title);
  if (entry == nullptr) return;
  crdt::StateVector client_sv;
  if (!request.sv.empty()) {
    auto bytes = from_base64(request.sv);
    std::optional<crdt::StateVector> sv;
    if (bytes) {
      if (auto decoded = crdt::decode_state_vector(*bytes)) sv = std::move(*decoded);
    }
    if (!sv) {
      return error(session, request.rid, code::kInvalidUpdate,
                   "field \"sv\" is not the base64 of a state vector");
    }
    client_sv = std::move(*sv);
  }
  DocKey key{request.channel, request.title};
  auto& mine = docs_of_session_[&session];
  if (mine.count(key) == 0 && mine.size() >= wire::kMaxDocsOpen) {
    return error(session, request.rid, code::kTooManyDocs,
                 fmt::format("a connection has at most {} documents open", wire::kMaxDocsOpen));
  }
  if (Status s = load_replica(*entry); !s.ok()) {
    log("error", "document \"{}\" of \"{}\": {}", request.title, request.channel, s.message());
    if (mine.empty()) docs_of_session_.erase(&session);
    return store_error(session, request.rid, s);
  }
  ++metrics_.doc_opens_total;
  wire::DocState state;
  state.rid = request.rid;
  state.channel = request.channel;
  state.title = request.title;
  state.kind = entry->row.kind;
  state.update = to_base64(entry->doc->encode_update(client_sv));
  state.sv = to_base64(crdt::encode_state_vector(entry->doc->state_vector()));
  state.version = version_of(*entry->doc);
  reply(session, state);
  if (mine.insert(key).second) {
    entry->sessions.push_back(&session);
    metrics_.doc_editors += 1;
  }
  // The cursors shown now, fresh ones only.
  auto now = std::chrono::steady_clock::now();
  for (const auto& [other, aw] : entry->awareness) {
    if (other == &session) continue;
    if (now - aw.at < std::chrono::milliseconds(wire::kAwarenessLifetimeMs)) {
      reply(session, aw.event);
    }
  }
}

void Hub::handle(Session& session, const wire::DocClose& request) {
  Channel* channel = member_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  DocEntry* entry = existing_doc(session, request.rid, request.channel, request.title);
  if (entry == nullptr) return;
  leave_doc(session, DocKey{request.channel, request.title}, *entry);
  reply(session, wire::Ok{request.rid, request.channel, 0, channel->last_seq});
}

void Hub::handle(Session& session, const wire::DocUpdate& request) {
  auto started = std::chrono::steady_clock::now();
  Channel* channel = member_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  DocEntry* entry = existing_doc(session, request.rid, request.channel, request.title);
  if (entry == nullptr) return;
  const Member& member = channel->members.at(session.user());
  if (!allowed(session, request.rid, request.channel, *channel, member, Permission::post)) return;
  if (member.muted_until && (*member.muted_until == 0 || *member.muted_until > now_ms())) {
    return error(session, request.rid, code::kMuted,
                 fmt::format("\"{}\" is muted in \"{}\"", session.user(), request.channel));
  }
  if (request.update.size() > wire::kMaxDocUpdate) {
    return error(session, request.rid, code::kInvalidUpdate,
                 fmt::format("an update has at most {} base64 characters, not {}",
                             wire::kMaxDocUpdate, request.update.size()));
  }
  auto bytes = from_base64(request.update);
  if (!bytes || bytes->empty()) {
    return error(session, request.rid, code::kInvalidUpdate,
                 "field \"update\" is not base64 of an update");
  }
  std::set<std::string> mentioned;
  if (request.mentions) {
    if (request.mentions->size() > wire::kMaxDocMentions) {
      return error(session, request.rid, code::kBadField,
                   fmt::format("an update mentions at most {} users", wire::kMaxDocMentions));
    }
    for (const std::string& user : *request.mentions) {
      if (user != session.user() && channel->members.count(user) != 0) mentioned.insert(user);
    }
  }
  if (Status s = load_replica(*entry); !s.ok()) {
    log("error", "document \"{}\" of \"{}\": {}", request.title, request.channel, s.message());
    return store_error(session, request.rid, s);
  }
  crdt::Document& doc = *entry->doc;
  // Each inserted character takes at least one byte of the update, so this
  // bounds the replica's growth before anything is applied.
  if (doc.stats().total_chars + bytes->size() > wire::kMaxDocChars) {
    return error(session, request.rid, code::kDocTooLarge,
                 fmt::format("document \"{}\" would exceed {} characters ever inserted",
                             shown(request.title), wire::kMaxDocChars));
  }
  std::size_t chars_before = doc.size();
  if (Status s = doc.apply_update(*bytes); !s.ok()) {
    return error(session, request.rid, code::kInvalidUpdate,
                 fmt::format("the update does not decode: {}", s.message()));
  }
  std::uint64_t version = version_of(doc);
  auto n = store_.append_doc_update(entry->row.id, *bytes, session.user(), now_ms(), doc.size(),
                                    version);
  if (!n) {
    // The replica has the update but the store does not: reload it from the
    // store at the next use, so that both agree again.
    log("error", "update of document \"{}\" in \"{}\": {}", request.title, request.channel,
        n.status().message());
    drop_replica(*entry);
    return store_error(session, request.rid, n.status());
  }
  entry->last_n = *n;
  entry->unsnapshotted += 1;
  entry->unsnapshotted_bytes += bytes->size();
  entry->row.size = doc.size();
  entry->row.version = version;
  metrics_.doc_chars += static_cast<std::int64_t>(doc.size()) -
                        static_cast<std::int64_t>(chars_before);
  std::size_t memory = doc.stats().memory_bytes;
  metrics_.doc_memory_bytes += static_cast<std::int64_t>(memory) -
                               static_cast<std::int64_t>(entry->memory);
  entry->memory = memory;
  ++metrics_.doc_updates_total;
  metrics_.doc_update_bytes_total += bytes->size();

  reply(session, wire::DocAck{request.rid, request.channel, request.title, version});
  metrics_.doc_update_ack_seconds.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  DocKey key{request.channel, request.title};
  Encoded item = encoded(wire::DocUpdateEvent{request.channel, request.title, request.update,
                                              session.user(), session.device(), version});
  metrics_.doc_updates_relayed_total += doc_fan_out(key, *entry, item, &session);
  if (entry->unsnapshotted >= kSnapshotEvery || entry->unsnapshotted_bytes >= kSnapshotBytes) {
    snapshot_doc(*entry);
  }

  // Mentions notify unless the member's level is none.
  for (const std::string& user : mentioned) {
    NotifySetting setting = notify_setting(user, request.channel);
    if (setting.level == "none") {
      ++metrics_.notifications_suppressed_total[setting.level];
      continue;
    }
    ++metrics_.notifications_total["doc_mention/" + setting.level];
    wire::NotificationEvent note{request.channel, entry->row.seq, "doc_mention", session.user()};
    note.title = request.title;
    to_user(user, encoded(note));
  }
}

void Hub::handle(Session& session, const wire::DocAwareness& request) {
  Channel* channel = member_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  DocEntry* entry = existing_doc(session, request.rid, request.channel, request.title);
  if (entry == nullptr) return;
  DocKey key{request.channel, request.title};
  auto mine = docs_of_session_.find(&session);
  if (mine == docs_of_session_.end() || mine->second.count(key) == 0) {
    return error(session, request.rid, code::kDocNotOpen,
                 fmt::format("document \"{}\" is not open on this connection",
                             shown(request.title)));
  }
  if (request.name && request.name->size() > wire::kMaxAwarenessName) {
    return error(session, request.rid, code::kBadField,
                 fmt::format("field \"name\" has at most {} bytes", wire::kMaxAwarenessName));
  }
  if (request.color) {
    if (std::string why = check_color(*request.color); !why.empty()) {
      return error(session, request.rid, code::kBadField, why);
    }
  }
  auto now = std::chrono::steady_clock::now();
  AwarenessBudget& budget = awareness_budget_[&session];
  if (now - budget.window >= std::chrono::seconds(1)) {
    budget.window = now;
    budget.count = 0;
  }
  if (++budget.count > wire::kAwarenessPerSecond) {
    ++metrics_.doc_awareness_dropped_total;
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        budget.window + std::chrono::seconds(1) - now);
    wire::Error refusal{request.rid, code::kRateLimited,
                        fmt::format("at most {} cursor updates per second",
                                    wire::kAwarenessPerSecond),
                        std::nullopt, static_cast<std::uint64_t>(std::max<std::int64_t>(
                                          wait.count(), 1)),
                        std::nullopt};
    ++metrics_.errors_total[code::kRateLimited];
    return reply(session, refusal);
  }
  wire::DocAwarenessEvent event{request.channel, request.title, session.user(), session.device()};
  event.cursor = request.cursor;
  event.anchor = request.anchor;
  event.name = request.name;
  event.color = request.color;
  entry->awareness[&session] = DocAwarenessState{event, now};
  metrics_.doc_awareness_total += doc_fan_out(key, *entry, encoded(event), &session) > 0 ? 1 : 0;
}

void Hub::handle(Session& session, const wire::DocList& request) {
  Channel* channel = member_channel(session, request.rid, request.channel);
  if (channel == nullptr) return;
  wire::DocListReply out;
  out.rid = request.rid;
  out.channel = request.channel;
  for (auto it = docs_.lower_bound(DocKey{request.channel, ""});
       it != docs_.end() && it->first.first == request.channel; ++it) {
    const StoredDoc& row = it->second.row;
    out.docs.push_back(wire::DocInfo{row.title, row.kind, row.creator, row.created, row.seq,
                                     row.size, row.version});
  }
  reply(session, out);
}

}  // namespace parley::server
