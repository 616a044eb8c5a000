// The wire formats of the CRDT engine (docs/collab.md#encoding): state
// vectors, updates (characters with their origins, plus deletions) and
// snapshots (the whole item sequence in document order). All are varint
// streams behind a 4-byte tag; decoding checks every length and index.
#include <algorithm>
#include <cassert>
#include <string>
#include <unordered_map>
#include <utility>

#include "crdt/document.hpp"
#include "crdt/lz.hpp"
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
      Piece p{OptId{s.agent, s.seq + (lv - s.lv)}, take,          r.deleted != 0, lv,
              off == 0 ? r.origin_left : lv - 1,   r.origin_right};
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
    uint64_t left_kind = left.none()                                            ? 0
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
  auto unsent = std::partition_point(self.spans.begin(), self.spans.end(), [&](const AgentSpan& s) {
    return s.seq + s.len <= sent_seq_;
  });
  for (auto it = unsent; it != self.spans.end(); ++it) {
    uint32_t skip = sent_seq_ > it->seq ? sent_seq_ - it->seq : 0;
    ranges.push_back(LvRange{it->lv + skip, it->len - skip});
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
// document order (varint count; each: varint len << 6 | right kind << 3 |
// left kind << 1 | deleted, then the fields the kinds ask for), content
// (varint byte count of the visible text in UTF-8, varint packed size, then
// the text compressed by lz_compress, or stored as is when packed size is 0).
//
// Left kinds: 0 continues the piece d back (varint d): the id follows that
// piece's and the left origin is the character before; 1 the last character
// of the previous piece; 2 none; 3 a character d pieces back (varint d,
// varint offset). Kinds 1-3 then give the id: for the previous piece's agent
// one varint, zigzag(seq - end of the previous piece) << 1; for another,
// varint agent << 1 | 1 and varint seq.
// Right kinds: 0 the first character of the next piece; 1 none; 2 a character
// d pieces ahead (varint d, varint offset); 3 the right origin of the piece
// continued (left kind 0) or else of the previous piece; 4 an id (agent, seq).
//
// Pieces split where the text was edited between characters typed in one go,
// so the origins of most pieces point at neighbours: a few bytes a piece.
namespace {

enum : uint64_t { kLeftContinues, kLeftPrevious, kLeftNone, kLeftBack };
enum : uint64_t { kRightNext, kRightNone, kRightAhead, kRightSame, kRightId };

}  // namespace

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
  // Which piece holds an lv, and which piece ends where an id starts.
  std::vector<std::pair<Lv, uint32_t>> by_lv;
  std::unordered_map<uint64_t, uint32_t> by_end;
  by_lv.reserve(pieces.size());
  by_end.reserve(pieces.size());
  for (uint32_t i = 0; i < pieces.size(); ++i) {
    const Piece& p = pieces[i];
    by_lv.emplace_back(p.lv, i);
    by_end.emplace(uint64_t{p.id.agent} << 32 | (p.id.seq + p.len), i);
  }
  std::sort(by_lv.begin(), by_lv.end());
  auto piece_of = [&](Lv lv) {
    auto it = std::upper_bound(by_lv.begin(), by_lv.end(), std::pair<Lv, uint32_t>(lv, UINT32_MAX));
    return (--it)->second;
  };

  std::string out(kSnapshotTag);
  put_varint(out, agents_.size());
  for (const AgentState& a : agents_) {
    put_varint(out, a.id);
    put_varint(out, a.next_seq);
  }
  put_varint(out, pieces.size());
  for (uint32_t i = 0; i < pieces.size(); ++i) {
    const Piece& p = pieces[i];
    const Piece* prev = i > 0 ? &pieces[i - 1] : nullptr;
    uint64_t left_kind = kLeftBack;
    uint32_t head = UINT32_MAX;  // the piece continued
    uint32_t left_piece = 0;
    if (p.origin_left == kNoLv) {
      left_kind = kLeftNone;
    } else {
      OptId left = id_of(p.origin_left);
      auto it = by_end.find(uint64_t{p.id.agent} << 32 | p.id.seq);
      if (left.agent == p.id.agent && left.seq + 1 == p.id.seq && it != by_end.end() &&
          it->second < i) {
        left_kind = kLeftContinues;
        head = it->second;
      } else if (prev != nullptr && p.origin_left == prev->lv + prev->len - 1) {
        left_kind = kLeftPrevious;
      } else {
        // A left origin precedes its character in the document (characters
        // are placed after it), so it is in an earlier piece.
        left_piece = piece_of(p.origin_left);
        assert(left_piece < i);
      }
    }
    const Piece* same = head != UINT32_MAX ? &pieces[head] : prev;
    uint64_t right_kind = kRightId;
    uint32_t right_piece = 0;
    if (p.origin_right == kNoLv) {
      right_kind = kRightNone;
    } else if (i + 1 < pieces.size() && p.origin_right == pieces[i + 1].lv) {
      right_kind = kRightNext;
    } else if (same != nullptr && p.origin_right == same->origin_right) {
      right_kind = kRightSame;
    } else if ((right_piece = piece_of(p.origin_right)) > i) {
      right_kind = kRightAhead;
    }
    put_varint(out, uint64_t{p.len} << 6 | right_kind << 3 | left_kind << 1 | p.deleted);
    if (left_kind == kLeftContinues) {
      put_varint(out, i - head);
    } else {
      if (left_kind == kLeftBack) {
        put_varint(out, i - left_piece);
        put_varint(out, p.origin_left - pieces[left_piece].lv);
      }
      if (prev != nullptr && prev->id.agent == p.id.agent) {
        int64_t delta = int64_t{p.id.seq} - prev->id.seq - prev->len;
        put_varint(out, ((static_cast<uint64_t>(delta) << 1) ^ static_cast<uint64_t>(delta >> 63))
                            << 1);
      } else {
        put_varint(out, uint64_t{p.id.agent} << 1 | 1);
        put_varint(out, p.id.seq);
      }
    }
    if (right_kind == kRightAhead) {
      put_varint(out, right_piece - i);
      put_varint(out, p.origin_right - pieces[right_piece].lv);
    } else if (right_kind == kRightId) {
      OptId right = id_of(p.origin_right);
      put_varint(out, right.agent);
      put_varint(out, right.seq);
    }
  }
  // The text, LZ-compressed when that is smaller (packed size 0: stored).
  std::string text = seq_.text();
  std::string packed = lz_compress(text);
  put_varint(out, text.size());
  if (packed.size() < text.size()) {
    put_varint(out, packed.size());
    return out + packed;
  }
  put_varint(out, 0);
  return out + text;
}

Result<Document> Document::load_snapshot(std::string_view bytes, AgentId agent) {
  ByteReader in(bytes, "crdt snapshot");
  auto bad = [&in](std::string what) {
    in.fail(std::move(what));
    return in.error();
  };
  Document doc(agent);
  uint64_t n = 0;
  if (!read_tag(in, kSnapshotTag) || !in.bounded(in.remaining() / 2, "agent count", &n)) {
    return in.error();
  }
  std::vector<uint32_t> local(n);  // wire agent -> agent index
  std::vector<uint32_t> count(n);
  std::vector<Lv> base(n);  // wire agent's characters are lvs base .. base + count - 1
  uint64_t total = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t id = 0;
    if (!in.varint(&id) || !in.u32(&count[i], "character count")) return in.error();
    local[i] = doc.agent_index(id);
    if (doc.agents_[local[i]].next_seq != 0) return bad("agent " + std::to_string(id) + " twice");
    base[i] = static_cast<Lv>(total);
    total += count[i];
    if (total > kMaxChars) return bad("more than " + std::to_string(kMaxChars) + " characters");
    if (count[i] > 0) doc.add_chars(local[i], base[i], count[i]);
  }

  // Origins that name later pieces are resolved once every piece is read.
  struct Later {
    uint32_t piece;   // whose right origin
    uint32_t target;  // kRightAhead: the piece named; kRightSame: the piece copied
    uint32_t offset;
    bool same;
  };
  std::vector<Later> later;
  struct Decoded {
    uint32_t wire;
    uint32_t seq;
  };
  uint64_t pieces = 0;
  if (!in.bounded(in.remaining(), "piece count", &pieces)) return in.error();
  std::vector<ItemRun> runs;
  std::vector<Decoded> ids;
  runs.reserve(pieces);
  ids.reserve(pieces);
  uint64_t visible = 0;
  for (uint32_t i = 0; i < pieces; ++i) {
    uint64_t header = 0;
    if (!in.varint(&header)) return in.error();
    uint64_t len = header >> 6;
    uint64_t right_kind = (header >> 3) & 7;
    uint64_t left_kind = (header >> 1) & 3;
    uint64_t d = 0;
    uint64_t offset = 0;
    Decoded id{0, 0};
    ItemRun r{0, 0, (header & 1) != 0u, kNoLv, kNoLv};
    uint32_t same = i - 1;  // the piece whose right origin kRightSame copies
    if (left_kind == kLeftContinues) {
      if (!in.bounded(i, "piece distance", &d)) return in.error();
      if (d == 0) return bad("piece continues itself");
      same = i - static_cast<uint32_t>(d);
      id = Decoded{ids[same].wire, ids[same].seq + runs[same].len};
    } else {
      if (left_kind == kLeftPrevious && i == 0) return bad("first piece after a previous one");
      if (left_kind == kLeftBack) {
        if (!in.bounded(i, "piece distance", &d) || !in.varint(&offset)) return in.error();
        if (d == 0 || offset >= runs[i - d].len) return bad("left origin out of its piece");
        r.origin_left = runs[i - d].lv + static_cast<Lv>(offset);
      }
      uint64_t v = 0;
      if (!in.varint(&v)) return in.error();
      if ((v & 1) != 0) {  // another agent than the previous piece's: index, seq
        if ((v >> 1) >= n) return bad("agent index " + std::to_string(v >> 1));
        id.wire = static_cast<uint32_t>(v >> 1);
        if (!in.u32(&id.seq, "seq")) return in.error();
      } else {  // the previous piece's agent: zigzag seq delta from its end
        if (i == 0) return bad("first piece names no agent");
        v >>= 1;
        int64_t delta = static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
        int64_t seq = delta + int64_t{ids[i - 1].seq} + runs[i - 1].len;
        if (seq < 0 || seq > UINT32_MAX) return bad("seq " + std::to_string(seq));
        id = Decoded{ids[i - 1].wire, static_cast<uint32_t>(seq)};
      }
    }
    if (len == 0 || len > kMaxRunLen || uint64_t{id.seq} + len > count[id.wire]) {
      return bad("piece length " + std::to_string(len));
    }
    r.lv = base[id.wire] + id.seq;
    r.len = static_cast<uint32_t>(len);
    if (left_kind == kLeftContinues) r.origin_left = r.lv - 1;
    if (left_kind == kLeftPrevious) r.origin_left = runs[i - 1].lv + runs[i - 1].len - 1;

    if (right_kind == kRightNext) {
      later.push_back(Later{i, i + 1, 0, false});
    } else if (right_kind == kRightAhead) {
      if (!in.varint(&d) || !in.varint(&offset)) return in.error();
      if (d == 0 || d >= pieces - i || offset > UINT32_MAX) return bad("right origin ahead");
      later.push_back(Later{i, i + static_cast<uint32_t>(d), static_cast<uint32_t>(offset), false});
    } else if (right_kind == kRightSame) {
      if (i == 0) return bad("right origin of a missing piece");
      later.push_back(Later{i, same, 0, true});
    } else if (right_kind == kRightId) {
      uint32_t seq = 0;
      if (n == 0 || !in.bounded(n - 1, "agent index", &d) || !in.u32(&seq, "seq")) {
        return in.error();
      }
      if (seq >= count[d]) return bad("right origin seq " + std::to_string(seq));
      r.origin_right = base[d] + seq;
    } else if (right_kind != kRightNone) {
      return bad("right origin kind " + std::to_string(right_kind));
    }
    if (!r.deleted) visible += len;
    runs.push_back(r);
    ids.push_back(id);
  }
  // Pieces ahead first, then copies, which only copy from earlier pieces.
  for (const Later& l : later) {
    if (l.same) continue;
    if (l.target >= runs.size() || l.offset >= runs[l.target].len) return bad("right origin");
    runs[l.piece].origin_right = runs[l.target].lv + l.offset;
  }
  for (const Later& l : later) {
    if (l.same) runs[l.piece].origin_right = runs[l.target].origin_right;
  }

  std::string_view utf8;
  std::string unpacked;
  uint64_t packed = 0;
  if (!in.bounded(visible * 4, "text size", &n) ||
      !in.bounded(in.remaining(), "packed size", &packed) ||
      !in.bytes(packed == 0 ? n : packed, &utf8)) {
    return in.error();
  }
  if (packed != 0) {
    if (!lz_decompress(utf8, n, &unpacked)) return bad("compressed text is corrupt");
    utf8 = unpacked;
  }
  std::u32string text;
  if (!decode_utf8(utf8, text) || text.size() != visible) {
    return bad("content is not " + std::to_string(visible) + " utf-8 code points");
  }
  if (!in.at_end()) return bad("trailing bytes");
  doc.seq_.begin_load(static_cast<Lv>(total));
  size_t at = 0;
  for (const ItemRun& r : runs) {
    std::u32string_view piece;
    if (!r.deleted) {
      piece = std::u32string_view(text).substr(at, r.len);
      at += r.len;
    }
    if (!doc.seq_.load_run(r, piece)) {
      return Status(StatusCode::corrupt,
                    "crdt snapshot: piece at " + std::to_string(r.lv) + " overlaps another");
    }
  }
  if (!doc.seq_.finish_load()) {
    return Status(StatusCode::corrupt, "crdt snapshot: characters missing from the sequence");
  }
  doc.sent_seq_ = doc.agents_[doc.self_].next_seq;
  return doc;
}

}  // namespace parley::crdt
