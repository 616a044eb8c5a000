// The wire formats of the CRDT engine (docs/collab.md#encoding): state
// vectors, updates (characters with their origins, plus deletions) and
// snapshots (the whole item sequence in document order). All are varint
// streams behind a 4-byte tag; decoding checks every length and index.
#include <algorithm>
#include <string>
#include <utility>

#include "crdt/document.hpp"
#include "crdt/utf.hpp"
#include "crdt/varint.hpp"

namespace parley::crdt {

namespace {

constexpr std::string_view kUpdateTag("PC\x01U", 4);
constexpr std::string_view kSnapshotTag("PC\x01S", 4);
constexpr std::string_view kStateVectorTag("PC\x01V", 4);
constexpr uint64_t kMaxRunLen = uint64_t{1} << 30;

bool read_tag(ByteReader& in, std::string_view tag) {
  std::string_view got;
  if (!in.bytes(tag.size(), &got)) return false;
  if (got.substr(0, 2) != tag.substr(0, 2)) return in.fail("bad tag");
  if (got[2] != tag[2]) return in.fail("format version " + std::to_string(uint8_t(got[2])));
  if (got[3] != tag[3]) return in.fail("wrong kind '" + std::string(1, got[3]) + "'");
  return true;
}

// Assigns wire indexes to agent indexes in the order first used.
class AgentTable {
 public:
  explicit AgentTable(size_t agents) : wire_(agents, UINT32_MAX) {}
  uint32_t operator()(uint32_t agent) {
    if (wire_[agent] == UINT32_MAX) {
      wire_[agent] = static_cast<uint32_t>(used_.size());
      used_.push_back(agent);
    }
    return wire_[agent];
  }
  const std::vector<uint32_t>& used() const { return used_; }

 private:
  std::vector<uint32_t> wire_;
  std::vector<uint32_t> used_;
};

}  // namespace

std::string encode_state_vector(const StateVector& sv) {
  std::string out(kStateVectorTag);
  put_varint(out, sv.size());
  for (const auto& [agent, count] : sv) {
    put_varint(out, agent);
    put_varint(out, count);
  }
  return out;
}

Result<StateVector> decode_state_vector(std::string_view bytes) {
  ByteReader in(bytes, "crdt state vector");
  StateVector sv;
  uint64_t n = 0;
  if (read_tag(in, kStateVectorTag) && in.bounded(in.remaining() / 2, "agents", &n)) {
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t agent = 0;
      uint32_t count = 0;
      if (!in.varint(&agent) || !in.u32(&count, "count")) break;
      sv[agent] = count;
    }
  }
  if (in.ok() && !in.at_end()) in.fail("trailing bytes");
  if (!in.ok()) return in.error();
  return sv;
}

// ---- updates --------------------------------------------------------------

std::vector<Document::RemoteDelete> Document::delete_set() const {
  std::vector<RemoteDelete> out;
  seq_.for_each_run([&](const ItemRun& r) {
    if (!r.deleted) return;
    for (Lv lv = r.lv, end = r.lv + r.len; lv < end;) {
      const LvSpan& s = span_of(lv);
      uint32_t take = std::min(end, s.lv + s.len) - lv;
      out.push_back(RemoteDelete{s.agent, s.seq + (lv - s.lv), take});
      lv += take;
    }
  });
  std::sort(out.begin(), out.end(), [](const RemoteDelete& a, const RemoteDelete& b) {
    return a.agent != b.agent ? a.agent < b.agent : a.seq < b.seq;
  });
  size_t kept = 0;
  for (const RemoteDelete& d : out) {
    if (kept > 0 && out[kept - 1].agent == d.agent &&
        out[kept - 1].seq + out[kept - 1].len == d.seq) {
      out[kept - 1].len += d.len;
    } else {
      out[kept++] = d;
    }
  }
  out.resize(kept);
  return out;
}

// Layout: tag, agent table (varint count, varint ids), runs (varint count;
// each: varint len << 4 | right kind << 3 | left kind << 1 | deleted, agent,
// seq, explicit origins as agent + seq), content (varint byte count, the UTF-8
// text of the visible runs), deletions (varint count; agent, seq, len).
std::string Document::encode_parts(std::vector<LvRange> ranges,
                                   const std::vector<RemoteDelete>& deletes) const {
  struct Piece {
    OptId id;
    uint32_t len;
    bool deleted;
    Lv lv;
    Lv origin_left;
    Lv origin_right;
  };
  std::sort(ranges.begin(), ranges.end(),
            [](const LvRange& a, const LvRange& b) { return a.lv < b.lv; });
  std::vector<Piece> pieces;
  for (const LvRange& range : ranges) {
    for (Lv lv = range.lv, end = range.lv + range.len; lv < end;) {
      uint32_t off = 0;
      const ItemRun& r = seq_.run_of(lv, &off);
      const LvSpan& s = span_of(lv);
      uint32_t take = std::min({end - lv, r.len - off, s.lv + s.len - lv});
      Piece p{OptId{s.agent, s.seq + (lv - s.lv)}, take, r.deleted != 0, lv,
              off == 0 ? r.origin_left : lv - 1, r.origin_right};
      Piece* last = pieces.empty() ? nullptr : &pieces.back();
      if (last != nullptr && last->id.agent == p.id.agent && last->id.seq + last->len == p.id.seq &&
          last->lv + last->len == lv && p.origin_left == lv - 1 &&
          last->origin_right == p.origin_right && last->deleted == p.deleted) {
        last->len += take;
      } else {
        pieces.push_back(p);
      }
      lv += take;
    }
  }

  AgentTable table(agents_.size());
  std::string body;
  std::string text;
  put_varint(body, pieces.size());
  for (const Piece& p : pieces) {
    OptId left = id_of(p.origin_left);
    OptId right = id_of(p.origin_right);
    uint64_t left_kind = left.none()                                               ? 0
                         : left.agent == p.id.agent && left.seq + 1 == p.id.seq ? 1
                                                                                  : 2;
    uint64_t right_kind = right.none() ? 0 : 1;
    put_varint(body, uint64_t{p.len} << 4 | right_kind << 3 | left_kind << 1 | p.deleted);
    put_varint(body, table(p.id.agent));
    put_varint(body, p.id.seq);
    if (left_kind == 2) {
      put_varint(body, table(left.agent));
      put_varint(body, left.seq);
    }
    if (right_kind == 1) {
      put_varint(body, table(right.agent));
      put_varint(body, right.seq);
    }
    for (uint32_t i = 0; !p.deleted && i < p.len; ++i) append_utf8(text, seq_.char_at(p.lv + i));
  }
  put_varint(body, text.size());
  body += text;
  put_varint(body, deletes.size());
  for (const RemoteDelete& d : deletes) {
    put_varint(body, table(d.agent));
    put_varint(body, d.seq);
    put_varint(body, d.len);
  }

  std::string out(kUpdateTag);
  put_varint(out, table.used().size());
  for (uint32_t agent : table.used()) put_varint(out, agents_[agent].id);
  return out + body;
}

std::string Document::take_update() {
  std::vector<LvRange> ranges;
  const AgentState& self = agents_[self_];
  for (const AgentSpan& s : self.spans) {
    if (s.seq + s.len <= sent_seq_) continue;
    uint32_t skip = sent_seq_ > s.seq ? sent_seq_ - s.seq : 0;
    ranges.push_back(LvRange{s.lv + skip, s.len - skip});
  }
  std::vector<RemoteDelete> deletes;
  for (const LvRange& r : unsent_deletes_) {
    for (Lv lv = r.lv, end = r.lv + r.len; lv < end;) {
      const LvSpan& s = span_of(lv);
      uint32_t take = std::min(end, s.lv + s.len) - lv;
      deletes.push_back(RemoteDelete{s.agent, s.seq + (lv - s.lv), take});
      lv += take;
    }
  }
  sent_seq_ = self.next_seq;
  unsent_deletes_.clear();
  return encode_parts(std::move(ranges), deletes);
}

std::string Document::encode_update(const StateVector& since) const {
  std::vector<LvRange> ranges;
  for (const AgentState& a : agents_) {
    auto it = since.find(a.id);
    uint32_t from = it == since.end() ? 0 : it->second;
    for (const AgentSpan& s : a.spans) {
      if (s.seq + s.len <= from) continue;
      uint32_t skip = from > s.seq ? from - s.seq : 0;
      ranges.push_back(LvRange{s.lv + skip, s.len - skip});
    }
  }
  return encode_parts(std::move(ranges), delete_set());
}

Status Document::decode_update(std::string_view bytes, Update* out) {
  ByteReader in(bytes, "crdt update");
  if (!read_tag(in, kUpdateTag)) return in.error();
  uint64_t n = 0;
  std::vector<uint32_t> agents;
  if (!in.bounded(in.remaining(), "agent count", &n)) return in.error();
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t id = 0;
    if (!in.varint(&id)) return in.error();
    agents.push_back(agent_index(id));
  }
  auto read_id = [&](OptId* id) {
    uint64_t wire = 0;
    if (agents.empty()) return in.fail("agent index with an empty agent table");
    if (!in.bounded(agents.size() - 1, "agent index", &wire) || !in.u32(&id->seq, "seq")) {
      return false;
    }
    id->agent = agents[wire];
    return true;
  };

  uint64_t visible = 0;
  uint64_t total = 0;
  if (!in.bounded(in.remaining() / 3, "run count", &n)) return in.error();
  out->runs.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t header = 0;
    OptId id;
    if (!in.varint(&header) || !read_id(&id)) return in.error();
    uint64_t len = header >> 4;
    uint64_t left_kind = (header >> 1) & 3;
    RemoteRun run{id.agent, id.seq, static_cast<uint32_t>(len), (header & 1) != 0, {}, {}, {}};
    if (len == 0 || len > kMaxRunLen || id.seq + len > UINT32_MAX) {
      in.fail("run length " + std::to_string(len));
      return in.error();
    }
    if (left_kind == 3 || (left_kind == 1 && id.seq == 0)) {
      in.fail("bad left origin kind " + std::to_string(left_kind));
      return in.error();
    }
    if (left_kind == 1) run.origin_left = OptId{id.agent, id.seq - 1};
    if (left_kind == 2 && !read_id(&run.origin_left)) return in.error();
    if ((header & 8) != 0 && !read_id(&run.origin_right)) return in.error();
    total += len;
    if (total > kMaxChars) {
      in.fail("update of more than " + std::to_string(kMaxChars) + " characters");
      return in.error();
    }
    if (!run.deleted) visible += len;
    out->runs.push_back(std::move(run));
  }

  std::string_view utf8;
  std::u32string text;
  if (!in.bounded(in.remaining(), "content length", &n) || !in.bytes(n, &utf8)) return in.error();
  if (!decode_utf8(utf8, text) || text.size() != visible) {
    in.fail("content is not " + std::to_string(visible) + " utf-8 code points");
    return in.error();
  }
  size_t at = 0;
  for (RemoteRun& run : out->runs) {
    if (run.deleted) continue;
    run.text = text.substr(at, run.len);
    at += run.len;
  }

  if (!in.bounded(in.remaining() / 3, "deletion count", &n)) return in.error();
  for (uint64_t i = 0; i < n; ++i) {
    OptId id;
    uint32_t len = 0;
    if (!read_id(&id) || !in.u32(&len, "deletion length")) return in.error();
    if (len == 0 || id.seq + uint64_t{len} > UINT32_MAX) {
      in.fail("deletion length " + std::to_string(len));
      return in.error();
    }
    out->deletes.push_back(RemoteDelete{id.agent, id.seq, len});
  }
  if (!in.at_end()) in.fail("trailing bytes");
  return in.ok() ? Status() : in.error();
}

// ---- snapshots ------------------------------------------------------------

// Layout: tag, agents (varint count; each: id, characters), pieces in
// document order (varint count; each: varint len << 6 | right kind << 4 |
// left kind << 2 | follows << 1 | deleted, then agent and seq unless the
// piece follows the previous one in its agent's sequence, then explicit
// origins as agent + seq), content (varint byte count, UTF-8 of the text).
// Left kinds: 0 the agent's previous character, 1 the last character of the
// previous piece, 2 none, 3 explicit. Right kinds: 0 the first character of
// the next piece, 1 none, 2 explicit, 3 that of the previous piece.
std::string Document::encode_snapshot() const {
  struct Piece {
    OptId id;
    uint32_t len;
    bool deleted;
    Lv lv;
    Lv origin_left;
    Lv origin_right;
  };
  std::vector<Piece> pieces;
  pieces.reserve(seq_.run_count());
  seq_.for_each_run([&](const ItemRun& r) {
    for (Lv lv = r.lv, end = r.lv + r.len; lv < end;) {
      const LvSpan& s = span_of(lv);
      uint32_t take = std::min(end, s.lv + s.len) - lv;
      pieces.push_back(Piece{OptId{s.agent, s.seq + (lv - s.lv)}, take, r.deleted != 0, lv,
                             lv == r.lv ? r.origin_left : lv - 1, r.origin_right});
      lv += take;
    }
  });

  std::string out(kSnapshotTag);
  put_varint(out, agents_.size());
  for (const AgentState& a : agents_) {
    put_varint(out, a.id);
    put_varint(out, a.next_seq);
  }
  put_varint(out, pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i) {
    const Piece& p = pieces[i];
    const Piece* prev = i > 0 ? &pieces[i - 1] : nullptr;
    const Piece* next = i + 1 < pieces.size() ? &pieces[i + 1] : nullptr;
    bool follows = prev != nullptr && prev->id.agent == p.id.agent &&
                   prev->id.seq + prev->len == p.id.seq;
    OptId left = id_of(p.origin_left);
    uint64_t left_kind = p.origin_left == kNoLv                                   ? 2
                         : prev != nullptr && p.origin_left == prev->lv + prev->len - 1 ? 1
                         : left.agent == p.id.agent && left.seq + 1 == p.id.seq   ? 0
                                                                                   : 3;
    uint64_t right_kind = p.origin_right == kNoLv                                   ? 1
                          : next != nullptr && p.origin_right == next->lv            ? 0
                          : prev != nullptr && p.origin_right == prev->origin_right ? 3
                                                                                     : 2;
    put_varint(out, uint64_t{p.len} << 6 | right_kind << 4 | left_kind << 2 |
                        uint64_t{follows} << 1 | p.deleted);
    if (!follows) {
      put_varint(out, p.id.agent);
      put_varint(out, p.id.seq);
    }
    if (left_kind == 3) {
      put_varint(out, left.agent);
      put_varint(out, left.seq);
    }
    if (right_kind == 2) {
      OptId right = id_of(p.origin_right);
      put_varint(out, right.agent);
      put_varint(out, right.seq);
    }
  }
  std::string text = seq_.text();
  put_varint(out, text.size());
  return out + text;
}

Result<Document> Document::load_snapshot(std::string_view bytes, AgentId agent) {
  ByteReader in(bytes, "crdt snapshot");
  Document doc(agent);
  uint64_t n = 0;
  if (!read_tag(in, kSnapshotTag) ||
      !in.bounded(in.remaining() / 2, "agent count", &n)) {
    return in.error();
  }
  std::vector<uint32_t> local(n);  // wire agent -> agent index
  std::vector<Lv> base(n);
  uint64_t total = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t id = 0;
    uint32_t count = 0;
    if (!in.varint(&id) || !in.u32(&count, "character count")) return in.error();
    local[i] = doc.agent_index(id);
    if (doc.agents_[local[i]].next_seq != 0) {
      in.fail("agent " + std::to_string(id) + " listed twice");
      return in.error();
    }
    base[i] = static_cast<Lv>(total);
    total += count;
    if (total > kMaxChars) {
      in.fail("snapshot of more than " + std::to_string(kMaxChars) + " characters");
      return in.error();
    }
    if (count > 0) doc.add_chars(local[i], base[i], count);
  }
  auto read_lv = [&](Lv* lv) {
    uint64_t wire = 0;
    uint32_t seq = 0;
    if (n == 0 || !in.bounded(n - 1, "agent index", &wire) || !in.u32(&seq, "seq")) return false;
    if (seq >= doc.agents_[local[wire]].next_seq) return in.fail("seq " + std::to_string(seq));
    *lv = base[wire] + seq;
    return true;
  };

  // A piece's right origin "the next piece" is known once that piece is read.
  constexpr Lv kNextPiece = kNoLv - 1;
  auto bad = [&in](std::string what) {
    in.fail(std::move(what));
    return in.error();
  };
  uint64_t pieces = 0;
  if (!in.bounded(in.remaining(), "piece count", &pieces)) return in.error();
  std::vector<ItemRun> runs;
  runs.reserve(pieces);
  uint64_t visible = 0;
  uint64_t wire = 0;  // the agent of the previous piece
  for (uint64_t i = 0; i < pieces; ++i) {
    uint64_t header = 0;
    if (!in.varint(&header)) return in.error();
    uint64_t len = header >> 6;
    uint64_t left_kind = (header >> 2) & 3;
    uint64_t right_kind = (header >> 4) & 3;
    ItemRun* prev = runs.empty() ? nullptr : &runs.back();
    uint64_t lv = 0;
    if ((header & 2) != 0) {  // follows the previous piece
      if (prev == nullptr) return bad("first piece follows another");
      lv = uint64_t{prev->lv} + prev->len;
    } else {
      uint32_t seq = 0;
      if (n == 0 || !in.bounded(n - 1, "agent index", &wire) || !in.u32(&seq, "seq")) {
        return in.error();
      }
      lv = uint64_t{base[wire]} + seq;
    }
    uint64_t agent_end = uint64_t{base[wire]} + doc.agents_[local[wire]].next_seq;
    if (len == 0 || len > kMaxRunLen || lv + len > agent_end) {
      return bad("piece length " + std::to_string(len));
    }
    if (prev != nullptr && prev->origin_right == kNextPiece) prev->origin_right = Lv(lv);
    ItemRun r{Lv(lv), static_cast<uint32_t>(len), (header & 1) != 0u, kNoLv, kNoLv};
    if (left_kind == 0) {
      if (lv == base[wire]) return bad("left origin before the agent's first character");
      r.origin_left = r.lv - 1;
    } else if (left_kind == 1) {
      if (prev == nullptr) return bad("left origin in a missing previous piece");
      r.origin_left = prev->lv + prev->len - 1;
    } else if (left_kind == 3 && !read_lv(&r.origin_left)) {
      return in.error();
    }
    if (right_kind == 0) {
      r.origin_right = kNextPiece;
    } else if (right_kind == 2 && !read_lv(&r.origin_right)) {
      return in.error();
    } else if (right_kind == 3) {
      if (prev == nullptr || prev->origin_right == r.lv) return bad("right origin");
      r.origin_right = prev->origin_right;
    }
    if (!r.deleted) visible += len;
    runs.push_back(r);
  }
  if (!runs.empty() && runs.back().origin_right == kNextPiece) {
    return Status(StatusCode::corrupt, "crdt snapshot: last piece has a next piece");
  }

  std::string_view utf8;
  std::u32string text;
  if (!in.bounded(in.remaining(), "content length", &n) || !in.bytes(n, &utf8)) return in.error();
  if (!decode_utf8(utf8, text) || text.size() != visible) {
    in.fail("content is not " + std::to_string(visible) + " utf-8 code points");
    return in.error();
  }
  if (!in.at_end()) {
    in.fail("trailing bytes");
    return in.error();
  }
  doc.seq_.begin_load(static_cast<Lv>(total));
  size_t at = 0;
  for (const ItemRun& r : runs) {
    std::u32string_view piece;
    if (!r.deleted) {
      piece = std::u32string_view(text).substr(at, r.len);
      at += r.len;
    }
    if (!doc.seq_.load_run(r, piece)) {
      return Status(StatusCode::corrupt, "crdt snapshot: piece at " + std::to_string(r.lv) +
                                             " overlaps another");
    }
  }
  if (!doc.seq_.finish_load()) {
    return Status(StatusCode::corrupt, "crdt snapshot: characters missing from the sequence");
  }
  doc.sent_seq_ = doc.agents_[doc.self_].next_seq;
  return doc;
}

}  // namespace parley::crdt
