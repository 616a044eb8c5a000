// Collaborative documents in channels (docs/collab.md, "In the SDK" and
// "Offline edits"): each document this device opens is a crdt::Document kept
// in the cache (store/cache_docs.cpp), edited locally at once and synced over
// the chat connection.
//
// The flow: open_document sends doc_open with the replica's state vector;
// the server answers doc_state with what the replica lacks, which is applied
// and logged, and then every local update the server has not acknowledged
// is sent (again). Local edits are written to the durable document outbox
// before insert_text / delete_text return and are sent at once when ready;
// doc_ack removes them. A refusal for good (forbidden, muted, ...) drops the
// document's outbox and starts its replica again from the server's state.
#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <set>

#include "client/engine.hpp"
#include "crdt/utf.hpp"
#include "protocol/codec.hpp"

namespace parley::client {

using store::Cache;

namespace {

// After this many updates (or bytes) appended to a document's log since its
// snapshot, the snapshot is written again and the log emptied.
constexpr std::uint64_t kCompactEvery = 200;
constexpr std::uint64_t kCompactBytes = 256u << 10;
// Raw bytes of an update beyond the inserted text (header, agent table, the
// run and its origins), with room to spare: an insert of more UTF-8 than
// this leaves cannot fit wire::kMaxDocUpdate base64 characters.
constexpr std::size_t kUpdateOverhead = 256;
constexpr std::size_t kMaxInsertBytes = wire::kMaxDocUpdate / 4 * 3 - kUpdateOverhead;
// Deletions are sent in updates of at most this many characters each: a
// deletion's update lists id ranges (a few bytes each), at most one per
// character, so a chunk always fits.
constexpr std::size_t kDeleteChunk = 1024;
// Awareness: at most one update per 100 ms (wire::kAwarenessPerSecond), a
// refresh every 15 s while open, others' cursors expire after 30 s.
constexpr auto kAwarenessGap = std::chrono::milliseconds(1000 / wire::kAwarenessPerSecond);
constexpr auto kAwarenessRefresh = std::chrono::seconds(15);
constexpr auto kAwarenessLifetime = std::chrono::milliseconds(wire::kAwarenessLifetimeMs);

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status invalid(std::string message, const char* reason) {
  return Status(StatusCode::invalid_argument, std::move(message), reason);
}

// "" when valid, else why not (the server's rule: 1-128 bytes of UTF-8
// without control characters).
std::string check_title(const std::string& title) {
  if (title.empty()) return "document title is empty";
  if (title.size() > wire::kMaxDocTitle) {
    return fmt::format("document title is {} bytes, over the limit of {}", title.size(),
                       wire::kMaxDocTitle);
  }
  if (!wire::is_valid_utf8(title)) return "document title is not valid utf-8";
  for (unsigned char c : title) {
    if (c < 0x20 || c == 0x7f) return "document title may not contain control characters";
  }
  return {};
}

Status check_names(const std::string& channel, const std::string& title) {
  if (std::string why = check_channel_name(channel); !why.empty()) {
    return invalid(why, wire::code::kInvalidName);
  }
  if (std::string why = check_title(title); !why.empty()) {
    return invalid(why, wire::code::kInvalidTitle);
  }
  return Status();
}

std::uint64_t version_of(const crdt::Document& doc) {
  auto stats = doc.stats();
  return 2 * static_cast<std::uint64_t>(stats.total_chars) - stats.visible_chars;
}

// A random nonzero 63-bit agent id (SQLite integers are signed).
crdt::AgentId new_agent() {
  crdt::AgentId id = 0;
  while (id == 0) {
    randombytes_buf(&id, sizeof id);
    id &= 0x7fffffffffffffffULL;
  }
  return id;
}

// The members of `members` that `text` mentions as "@name", in text order,
// without `self`, at most wire::kMaxDocMentions.
std::vector<std::string> find_mentions(const std::string& text,
                                       const std::vector<std::string>& members,
                                       const std::string& self) {
  std::set<std::string> known(members.begin(), members.end());
  std::vector<std::string> out;
  auto name_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-' || c == '@';
  };
  for (std::size_t i = 0; i < text.size() && out.size() < wire::kMaxDocMentions; ++i) {
    if (text[i] != '@') continue;
    std::size_t end = i + 1;
    while (end < text.size() && name_char(text[end])) ++end;
    std::string name = text.substr(i + 1, end - i - 1);
    // "@bob." at the end of a sentence names bob.
    while (!name.empty() && name.back() == '.' && known.count(name) == 0) name.pop_back();
    if (!name.empty() && name != self && known.count(name) != 0 &&
        std::find(out.begin(), out.end(), name) == out.end()) {
      out.push_back(name);
    }
    i = end - 1;
  }
  return out;
}

// Failures after which the same update can be sent again as it is.
bool keeps_update(const Status& error) {
  return error.reason() == "connection_lost" || error.code() == StatusCode::offline ||
         error.code() == StatusCode::cancelled || error.code() == StatusCode::timeout ||
         error.reason() == wire::code::kInternal || error.reason() == wire::code::kShuttingDown ||
         error.reason() == wire::code::kRateLimited;
}

}  // namespace

// ---- loading ------------------------------------------------------------------

Engine::DocReplica* Engine::doc_replica(const std::string& channel, const std::string& title,
                                        Status* error) {
  DocKey key{channel, title};
  auto it = docs_.find(key);
  if (it != docs_.end() && it->second.doc) return &it->second;
  auto row = cache_->doc(channel, title);
  if (!row) {
    if (error) *error = row.status();
    return nullptr;
  }
  if (!*row) {
    if (error) {
      *error = Status(StatusCode::not_found,
                      fmt::format("document \"{}\" of channel \"{}\" is not in the cache (open "
                                  "it first)",
                                  title, channel),
                      wire::code::kNoSuchDoc);
    }
    return nullptr;
  }
  auto loaded = crdt::Document::load_snapshot((*row)->snapshot, (*row)->agent);
  if (!loaded) {
    if (error) {
      *error = Status(StatusCode::corrupt,
                      fmt::format("document \"{}\" of channel \"{}\": {}", title, channel,
                                  loaded.status().message()));
    }
    return nullptr;
  }
  std::uint64_t log_bytes = 0;
  for (const auto& u : (*row)->log) {
    loaded->apply_update(u);  // written after it applied once; cannot fail
    log_bytes += u.size();
  }
  // The log's own updates are in the outbox already: the next take_update
  // must hold only the next edit.
  loaded->take_update();
  DocReplica& d = docs_[key];
  d.channel = channel;
  d.title = title;
  d.kind = (*row)->kind;
  d.doc.emplace(std::move(*loaded));
  d.log_count = (*row)->log.size();
  d.log_bytes = log_bytes;
  return &d;
}

void Engine::emit_doc(DocReplica& d, bool local) {
  auto pending = cache_->doc_outbox_count(d.channel, d.title);
  events_.push(DocumentChanged{d.channel, d.title, d.doc->text(), version_of(*d.doc), local,
                               pending ? *pending : 0});
}

void Engine::log_doc_update(DocReplica& d, std::uint64_t bytes) {
  d.log_count += 1;
  d.log_bytes += bytes;
  if (d.log_count < kCompactEvery && d.log_bytes < kCompactBytes) return;
  // Pending operations are not part of a snapshot: keep the log while any wait.
  if (d.doc->pending() != 0) return;
  if (cache_->doc_compact(d.channel, d.title, d.doc->encode_snapshot(), wall_ms()).ok()) {
    d.log_count = 0;
    d.log_bytes = 0;
  }
}

// ---- API --------------------------------------------------------------------

void Engine::create_document(RequestId req, const std::string& channel, const std::string& title) {
  auto done = [this, req, channel](const Status& s, std::uint64_t seq) {
    events_.push(ChannelRequestDone{req, channel, s, seq});
  };
  if (Status s = check_names(channel, title); !s.ok()) return done(s, 0);
  auto run = [this, channel, title, done] {
    request(wire::DocCreate{0, channel, title, std::nullopt},
            [this, channel, done](const wire::ServerMessage* reply, const Status& error) {
              if (reply == nullptr) return done(error, 0);
              const auto* ok = std::get_if<wire::Ok>(reply);
              if (ok == nullptr) {
                return done(Status(StatusCode::protocol_error, "unexpected reply", "bad_reply"),
                            0);
              }
              if (ok->seq != 0) note_own_event(channel, ok->seq);
              done(Status(), ok->seq);
            });
  };
  when_ready(run, [done](const Status& s) { done(s, 0); });
}

void Engine::open_document(RequestId req, const std::string& channel, const std::string& title) {
  if (Status s = check_names(channel, title); !s.ok()) {
    events_.push(ChannelRequestDone{req, channel, s, 0});
    return;
  }
  DocKey key{channel, title};
  Status error;
  DocReplica* d = doc_replica(channel, title, &error);
  if (d == nullptr) {
    if (error.code() != StatusCode::not_found) {
      events_.push(ChannelRequestDone{req, channel, error, 0});
      return;
    }
    d = &docs_[key];  // not in the cache yet: the first doc_state makes it
    d->channel = channel;
    d->title = title;
  }
  d->want_open = true;
  if (d->open) {
    emit_doc(*d, false);
    events_.push(ChannelRequestDone{req, channel, Status(), 0});
    return;
  }
  d->open_requests.push_back(req);
  if (d->opening) return;
  when_ready([this, key] { send_doc_open(key); },
             [this, key](const Status& s) { finish_doc_open(key, s); });
}

void Engine::close_document(RequestId req, const std::string& channel, const std::string& title) {
  if (Status s = check_names(channel, title); !s.ok()) {
    events_.push(ChannelRequestDone{req, channel, s, 0});
    return;
  }
  DocKey key{channel, title};
  auto it = docs_.find(key);
  bool was_open = it != docs_.end() && it->second.open;
  if (it != docs_.end()) {
    it->second.want_open = false;
    it->second.open = false;
    it->second.cursor_set = false;
  }
  drop_doc_peers(&key);
  if (!was_open || state_ != LifecycleState::ready) {
    events_.push(ChannelRequestDone{req, channel, Status(), 0});
    return;
  }
  request(wire::DocClose{0, channel, title},
          [this, req, channel](const wire::ServerMessage* reply, const Status& error) {
            // Closed here whatever the answer: a lost connection closes it too.
            Status s = reply != nullptr || error.reason() == "connection_lost" ? Status() : error;
            events_.push(ChannelRequestDone{req, channel, s, 0});
          });
}

Status Engine::insert_text(const std::string& channel, const std::string& title, std::uint64_t pos,
                           const std::string& utf8) {
  if (Status s = check_names(channel, title); !s.ok()) return s;
  if (utf8.empty()) return invalid("inserted text is empty", wire::code::kInvalidText);
  if (!wire::is_valid_utf8(utf8)) {
    return invalid("inserted text is not valid utf-8", wire::code::kInvalidUtf8);
  }
  if (utf8.size() > kMaxInsertBytes) {
    return invalid(fmt::format("inserted text is {} bytes, over the limit of {} per edit (its "
                               "update must fit {} base64 characters)",
                               utf8.size(), kMaxInsertBytes, wire::kMaxDocUpdate),
                   "too_large");
  }
  Status error;
  DocReplica* d = doc_replica(channel, title, &error);
  if (d == nullptr) return error;
  auto started = Clock::now();
  crdt::Document& doc = *d->doc;
  if (pos > doc.size()) {
    return invalid(fmt::format("document \"{}\": position {} is past the end ({} characters)",
                               title, pos, doc.size()),
                   "invalid_position");
  }
  std::u32string chars;
  crdt::decode_utf8(utf8, chars);
  if (doc.stats().total_chars + chars.size() > wire::kMaxDocChars) {
    return invalid(fmt::format("document \"{}\" would exceed {} characters ever inserted", title,
                               wire::kMaxDocChars),
                   wire::code::kDocTooLarge);
  }
  if (Status s = doc.insert(pos, utf8); !s.ok()) {
    return invalid(fmt::format("document \"{}\": {}", title, s.message()), "invalid_position");
  }
  std::vector<std::string> mentions;
  if (utf8.find('@') != std::string::npos) {
    if (auto members = cache_->members(channel)) {
      std::vector<std::string> names;
      for (const auto& m : *members) names.push_back(m.user);
      mentions = find_mentions(utf8, names, user_);
    }
  }
  return commit_local_edit(*d, {doc.take_update()}, mentions, "insert", chars.size(), started);
}

Status Engine::delete_text(const std::string& channel, const std::string& title, std::uint64_t pos,
                           std::uint64_t count) {
  if (Status s = check_names(channel, title); !s.ok()) return s;
  Status error;
  DocReplica* d = doc_replica(channel, title, &error);
  if (d == nullptr) return error;
  auto started = Clock::now();
  crdt::Document& doc = *d->doc;
  if (count == 0) return invalid("nothing to delete (count 0)", "invalid_count");
  if (pos > doc.size() || count > doc.size() - pos) {
    return invalid(fmt::format("document \"{}\": range {}..{} is past the end ({} characters)",
                               title, pos, pos + count, doc.size()),
                   "invalid_position");
  }
  std::vector<std::string> updates;
  for (std::uint64_t left = count; left > 0;) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, kDeleteChunk));
    if (Status s = doc.remove(pos, n); !s.ok()) {
      return invalid(fmt::format("document \"{}\": {}", title, s.message()), "invalid_position");
    }
    updates.push_back(doc.take_update());
    left -= n;
  }
  return commit_local_edit(*d, updates, {}, "delete", count, started);
}

Status Engine::commit_local_edit(DocReplica& d, const std::vector<std::string>& updates,
                                 const std::vector<std::string>& mentions, const char* op,
                                 std::uint64_t chars, Clock::time_point started) {
  std::vector<Cache::DocOutboxRow> rows;
  std::uint64_t bytes = 0;
  for (const auto& u : updates) {
    // One transaction per update; a deletion in chunks is rare and each
    // chunk is a whole edit of its own.
    auto ord = cache_->doc_local_update(d.channel, d.title, u, mentions, wall_ms());
    if (!ord) {
      // Not durable: forget the in-memory replica, whose edit the cache
      // lacks; the next use loads it again from the cache.
      docs_[DocKey{d.channel, d.title}].doc.reset();
      return Status(ord.status().code(),
                    fmt::format("document \"{}\": the edit could not be stored: {}", d.title,
                                ord.status().message()),
                    ord.status().reason());
    }
    rows.push_back(Cache::DocOutboxRow{*ord, d.channel, d.title, u, mentions});
    bytes += u.size();
    log_doc_update(d, u.size());
  }
  emit_doc(d, true);
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  analytics("doc_edit", {{"channel", d.channel}, {"op", op}},
            {{"chars", static_cast<double>(chars)},
             {"update_bytes", static_cast<double>(bytes)},
             {"doc_chars", static_cast<double>(d.doc->size())},
             {"duration_ms", ms}});
  if (state_ == LifecycleState::ready) {
    for (const auto& row : rows) send_doc_update(d, row);
  }
  return Status();
}

Result<DocumentView> Engine::document_text(const std::string& channel, const std::string& title) {
  if (Status s = check_names(channel, title); !s.ok()) return s;
  Status error;
  DocReplica* d = doc_replica(channel, title, &error);
  if (d == nullptr) return error;
  auto pending = cache_->doc_outbox_count(channel, title);
  if (!pending) return pending.status();
  return DocumentView{d->doc->text(), version_of(*d->doc), *pending};
}

Result<std::uint64_t> Engine::pending_document_updates() {
  auto rows = cache_->doc_outbox();
  if (!rows) return rows.status();
  return static_cast<std::uint64_t>(rows->size());
}

void Engine::list_documents(RequestId req, const std::string& channel) {
  auto from_cache = [this, req, channel](const Status& why) {
    DocumentsLoaded out{req, channel, Status(), {}, false};
    auto docs = cache_->docs(channel);
    if (!docs) {
      out.status = docs.status();
    } else if (docs->empty() && !why.ok()) {
      out.status = why;
    }
    if (docs) {
      for (const auto& row : *docs) {
        DocumentInfo info;
        info.title = row.title;
        info.kind = row.kind;
        if (DocReplica* d = doc_replica(channel, row.title, nullptr)) {
          info.size = d->doc->size();
          info.version = version_of(*d->doc);
        }
        out.docs.push_back(std::move(info));
      }
    }
    events_.push(std::move(out));
  };
  if (std::string why = check_channel_name(channel); !why.empty()) {
    events_.push(DocumentsLoaded{req, channel, invalid(why, wire::code::kInvalidName), {}, false});
    return;
  }
  auto ask = [this, req, channel, from_cache] {
    request(wire::DocList{0, channel},
            [this, req, channel, from_cache](const wire::ServerMessage* reply,
                                             const Status& error) {
              if (reply == nullptr) {
                if (error.code() == StatusCode::offline || error.code() == StatusCode::timeout) {
                  return from_cache(error);
                }
                events_.push(DocumentsLoaded{req, channel, error, {}, false});
                return;
              }
              const auto* list = std::get_if<wire::DocListReply>(reply);
              if (list == nullptr) {
                Status bad(StatusCode::protocol_error, "unexpected reply", "bad_reply");
                events_.push(DocumentsLoaded{req, channel, bad, {}, false});
                return;
              }
              DocumentsLoaded out{req, channel, Status(), {}, true};
              for (const auto& d : list->docs) {
                out.docs.push_back(DocumentInfo{d.title, d.kind, d.creator, d.created, d.seq,
                                                d.size, d.version});
              }
              events_.push(std::move(out));
            });
  };
  when_ready(ask, from_cache, /*answer_offline=*/true);
}

Status Engine::set_document_cursor(const std::string& channel, const std::string& title,
                                   std::optional<std::uint64_t> cursor,
                                   std::optional<std::uint64_t> anchor) {
  if (Status s = check_names(channel, title); !s.ok()) return s;
  auto it = docs_.find(DocKey{channel, title});
  if (it == docs_.end() || !it->second.want_open) {
    return Status(StatusCode::not_found,
                  fmt::format("document \"{}\" of channel \"{}\" is not open", title, channel),
                  wire::code::kDocNotOpen);
  }
  DocReplica& d = it->second;
  d.cursor = cursor;
  d.anchor = anchor;
  d.cursor_set = true;
  d.cursor_dirty = true;
  flush_awareness(d, Clock::now());
  return Status();
}

// ---- the connection -----------------------------------------------------------

void Engine::send_doc_open(const DocKey& key) {
  auto it = docs_.find(key);
  if (it == docs_.end() || !it->second.want_open) return;
  DocReplica& d = it->second;
  if (d.open || d.opening) return;
  d.opening = true;
  std::string sv;
  if (d.doc) sv = to_base64(crdt::encode_state_vector(d.doc->state_vector()));
  auto started = Clock::now();
  std::uint64_t generation = d.generation;
  request(wire::DocOpen{0, key.first, key.second, sv},
          [this, key, started, generation](const wire::ServerMessage* reply, const Status& error) {
            auto found = docs_.find(key);
            if (found == docs_.end() || found->second.generation != generation) return;
            found->second.opening = false;
            const auto* state = reply ? std::get_if<wire::DocState>(reply) : nullptr;
            if (state == nullptr) {
              Status why = reply ? Status(StatusCode::protocol_error, "unexpected reply",
                                          "bad_reply")
                                 : error;
              analytics("doc_sync", {{"channel", key.first}, {"result", why.reason()}});
              return finish_doc_open(key, why);
            }
            apply_doc_state(key, *state, started);
          });
}

void Engine::apply_doc_state(const DocKey& key, const wire::DocState& state,
                             Clock::time_point started) {
  DocReplica& d = docs_[key];
  auto bytes = from_base64(state.update);
  if (!bytes) {
    return finish_doc_open(key, Status(StatusCode::protocol_error,
                                       "doc_state: update is not base64", "bad_reply"));
  }
  if (!d.doc) {
    // First open on this device (or after a refusal): a replica of our own.
    crdt::Document fresh(new_agent());
    if (Status s = fresh.apply_update(*bytes); !s.ok()) {
      return finish_doc_open(key, Status(StatusCode::protocol_error,
                                         "doc_state: " + s.message(), "bad_reply"));
    }
    Cache::DocRow row{key.first, key.second, state.kind.empty() ? "text" : state.kind,
                      fresh.agent(), fresh.encode_snapshot(), {}};
    if (Status s = cache_->doc_put(row, wall_ms()); !s.ok()) return finish_doc_open(key, s);
    d.kind = row.kind;
    d.doc.emplace(std::move(fresh));
    d.log_count = 0;
    d.log_bytes = 0;
  } else {
    if (Status s = d.doc->apply_update(*bytes); !s.ok()) {
      return finish_doc_open(key, Status(StatusCode::protocol_error,
                                         "doc_state: " + s.message(), "bad_reply"));
    }
    // What the server sent may repeat the delete set only: log it all the
    // same (cheap, and compaction folds it in).
    if (cache_->doc_remote_updates(key.first, key.second, {*bytes}).ok()) {
      log_doc_update(d, bytes->size());
    }
  }
  d.open = true;
  d.in_flight.clear();
  std::uint64_t sent = send_doc_outbox(d);
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  analytics("doc_sync", {{"channel", key.first}, {"result", "ok"}},
            {{"received_bytes", static_cast<double>(bytes->size())},
             {"sent_updates", static_cast<double>(sent)},
             {"doc_chars", static_cast<double>(d.doc->size())},
             {"duration_ms", ms}});
  emit_doc(d, false);
  if (d.cursor_set) {
    d.cursor_dirty = true;
    flush_awareness(d, Clock::now());
  }
  finish_doc_open(key, Status());
}

void Engine::finish_doc_open(const DocKey& key, const Status& status) {
  auto it = docs_.find(key);
  if (it == docs_.end()) return;
  DocReplica& d = it->second;
  auto requests = std::move(d.open_requests);
  d.open_requests.clear();
  bool lost = status.code() == StatusCode::offline || status.code() == StatusCode::timeout ||
              status.code() == StatusCode::cancelled || status.reason() == "connection_lost";
  if (!status.ok() && !lost) {
    // Refused (no_such_doc, not_member, ...): not open, and not reopened.
    d.want_open = false;
    if (!d.doc) docs_.erase(it);
  }
  for (RequestId req : requests) events_.push(ChannelRequestDone{req, key.first, status, 0});
}

std::uint64_t Engine::send_doc_outbox(DocReplica& d) {
  auto rows = cache_->doc_outbox(d.channel, d.title);
  if (!rows) return 0;
  std::uint64_t sent = 0;
  for (const auto& row : *rows) sent += send_doc_update(d, row) ? 1 : 0;
  return sent;
}

bool Engine::send_doc_update(DocReplica& d, const Cache::DocOutboxRow& row) {
  if (d.in_flight.count(row.ord) != 0) return false;
  d.in_flight.insert(row.ord);
  wire::DocUpdate update{0, row.channel, row.title, to_base64(row.update), std::nullopt};
  if (!row.mentions.empty()) update.mentions = row.mentions;
  DocKey key{row.channel, row.title};
  std::uint64_t generation = d.generation;
  std::int64_t ord = row.ord;
  auto started = Clock::now();
  request(update, [this, key, generation, ord, started](const wire::ServerMessage* reply,
                                                       const Status& error) {
    auto found = docs_.find(key);
    if (found == docs_.end() || found->second.generation != generation) return;
    DocReplica& doc = found->second;
    doc.in_flight.erase(ord);
    if (reply != nullptr && std::holds_alternative<wire::DocAck>(*reply)) {
      cache_->doc_outbox_remove(ord);
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
      analytics("doc_update_acknowledged", {{"channel", key.first}}, {{"rtt_ms", ms}});
      return;
    }
    Status why = reply ? Status(StatusCode::protocol_error, "unexpected reply", "bad_reply")
                       : error;
    if (keeps_update(why) || why.reason() == "bad_reply") {
      if (why.code() == StatusCode::timeout && connected_) {
        // Still connected: send again (applying an update twice is harmless).
        if (doc.doc) send_doc_outbox(doc);
        return;
      }
      if (why.reason() != "connection_lost" && why.code() != StatusCode::offline &&
          why.code() != StatusCode::cancelled) {
        // The server could not take it just now, or asked us to slow down.
        auto wait = why.reason() == wire::code::kRateLimited
                        ? std::chrono::milliseconds(
                              std::clamp<std::uint64_t>(retry_after_ms_, 50, 60000))
                        : std::chrono::milliseconds(1000);
        auto at = Clock::now() + wait;
        if (!doc_retry_at_ || *doc_retry_at_ < at) doc_retry_at_ = at;
      }
      return;  // stays in the outbox; sent again at the next open or retry
    }
    if (why.reason() == wire::code::kDocNotOpen) {
      // A server that takes updates only of open documents: open it, and the
      // doc_state sends what is pending.
      doc.want_open = true;
      doc.open = false;
      if (state_ == LifecycleState::ready) send_doc_open(key);
      return;
    }
    refuse_doc_edits(key, why);
  });
  return true;
}

void Engine::refuse_doc_edits(const DocKey& key, const Status& why) {
  auto it = docs_.find(key);
  if (it == docs_.end()) return;
  DocReplica& d = it->second;
  auto pending = cache_->doc_outbox_count(key.first, key.second);
  std::uint64_t dropped = pending ? *pending : 0;
  // The replica holds edits the server will never have: forget it and start
  // again from the server's state. Replies to what is still in flight belong
  // to the old generation and are ignored.
  cache_->doc_forget(key.first, key.second);
  d.doc.reset();
  d.in_flight.clear();
  d.generation += 1;
  d.log_count = 0;
  d.log_bytes = 0;
  bool reopen = d.open || d.want_open;
  d.open = false;
  d.opening = false;
  analytics("doc_edit_refused", {{"channel", key.first}, {"reason", why.reason()}},
            {{"dropped", static_cast<double>(dropped)}});
  events_.push(DocumentFailed{
      key.first, key.second,
      Status(why.code(), fmt::format("document \"{}\": {}", key.second, why.message()),
             why.reason()),
      dropped});
  if (reopen) {
    d.want_open = true;
    if (state_ == LifecycleState::ready) send_doc_open(key);
  } else {
    docs_.erase(it);
  }
}

void Engine::reopen_documents() {
  // Documents open when the connection dropped are opened again; edits to
  // documents not open are sent without opening them.
  when_ready(
      [this] {
        for (auto& [key, d] : docs_) {
          if (d.want_open) send_doc_open(key);
        }
        auto rows = cache_->doc_outbox();
        if (!rows) return;
        for (const auto& row : *rows) {
          DocKey key{row.channel, row.title};
          auto it = docs_.find(key);
          if (it != docs_.end() && it->second.want_open) continue;  // after its doc_state
          DocReplica* d = doc_replica(row.channel, row.title, nullptr);
          if (d != nullptr) send_doc_update(*d, row);
        }
      },
      [](const Status&) {});
}

void Engine::docs_connection_lost() {
  for (auto& [key, d] : docs_) {
    d.open = false;
    d.opening = false;
    d.in_flight.clear();
    d.cursor_sent.reset();
  }
  drop_doc_peers(nullptr);
}

void Engine::handle_doc_update(const wire::DocUpdateEvent& event) {
  DocKey key{event.channel, event.title};
  auto it = docs_.find(key);
  if (it == docs_.end() || !it->second.doc || !it->second.open) return;
  DocReplica& d = it->second;
  auto bytes = from_base64(event.update);
  if (!bytes) return;
  std::size_t before = d.doc->size();
  if (Status s = d.doc->apply_update(*bytes); !s.ok()) return;  // corrupt: nothing applied
  if (cache_->doc_remote_updates(event.channel, event.title, {*bytes}).ok()) {
    log_doc_update(d, bytes->size());
  }
  analytics("doc_update_received", {{"channel", event.channel}},
            {{"update_bytes", static_cast<double>(bytes->size())},
             {"chars_delta", static_cast<double>(d.doc->size()) - static_cast<double>(before)}});
  emit_doc(d, false);
}

// ---- awareness ------------------------------------------------------------------

void Engine::flush_awareness(DocReplica& d, Clock::time_point now) {
  if (!d.cursor_set || !d.open || state_ != LifecycleState::ready) return;
  bool refresh = d.cursor_sent && now - *d.cursor_sent >= kAwarenessRefresh;
  if (!d.cursor_dirty && !refresh) return;
  if (d.cursor_sent && now - *d.cursor_sent < kAwarenessGap) return;  // the timer sends it
  wire::DocAwareness aw{0, d.channel, d.title, d.cursor, d.anchor, std::nullopt, std::nullopt};
  aw.name = options_.document_name.empty() ? user_ : options_.document_name;
  if (!options_.document_color.empty()) aw.color = options_.document_color;
  d.cursor_sent = now;
  d.cursor_dirty = false;
  // No reply unless refused (rate_limited, doc_not_open): nothing to do then
  // but wait for the next change or refresh.
  request(aw, [](const wire::ServerMessage*, const Status&) {});
}

void Engine::handle_doc_awareness(const wire::DocAwarenessEvent& event) {
  DocKey key{event.channel, event.title};
  PeerKey peer{event.channel, event.title, event.user, event.device};
  DocumentAwareness out{event.channel, event.title, event.user, event.device, event.cursor,
                        event.anchor, event.name.value_or(""), event.color.value_or(""), false};
  if (event.gone.value_or(false)) {
    if (doc_peers_.erase(peer) == 0) return;
    out.gone = true;
    events_.push(std::move(out));
    return;
  }
  auto it = docs_.find(key);
  if (it == docs_.end() || !it->second.open) return;
  doc_peers_[peer] = DocPeer{Clock::now() + kAwarenessLifetime, out};
  events_.push(std::move(out));
}

void Engine::drop_doc_peers(const DocKey* key) {
  for (auto it = doc_peers_.begin(); it != doc_peers_.end();) {
    if (key != nullptr &&
        (std::get<0>(it->first) != key->first || std::get<1>(it->first) != key->second)) {
      ++it;
      continue;
    }
    DocumentAwareness gone = it->second.last;
    gone.gone = true;
    gone.cursor.reset();
    gone.anchor.reset();
    events_.push(std::move(gone));
    it = doc_peers_.erase(it);
  }
}

void Engine::run_doc_timers(Clock::time_point now) {
  for (auto it = doc_peers_.begin(); it != doc_peers_.end();) {
    if (it->second.expires > now) {
      ++it;
      continue;
    }
    DocumentAwareness gone = it->second.last;
    gone.gone = true;
    gone.cursor.reset();
    gone.anchor.reset();
    events_.push(std::move(gone));
    it = doc_peers_.erase(it);
  }
  if (doc_retry_at_ && *doc_retry_at_ <= now) {
    doc_retry_at_.reset();
    if (state_ == LifecycleState::ready) {
      for (auto& [key, d] : docs_) {
        if (d.doc) send_doc_outbox(d);
      }
    }
  }
  for (auto& [key, d] : docs_) flush_awareness(d, now);
}

Clock::time_point Engine::next_doc_deadline() const {
  auto t = Clock::now() + std::chrono::hours(1);
  for (const auto& [key, peer] : doc_peers_) t = std::min(t, peer.expires);
  if (doc_retry_at_) t = std::min(t, *doc_retry_at_);
  for (const auto& [key, d] : docs_) {
    if (!d.cursor_set || !d.open || !d.cursor_sent) continue;
    t = std::min(t, *d.cursor_sent + (d.cursor_dirty ? std::chrono::milliseconds(kAwarenessGap)
                                                     : std::chrono::milliseconds(
                                                           kAwarenessRefresh)));
  }
  return t;
}

}  // namespace parley::client
