// Document: agents and sequence numbers over the Sequence's local versions,
// local edits, undo/redo, and applying remote updates with pending
// dependencies. The wire formats are in codec.cpp.
#include "crdt/document.hpp"

#include <algorithm>
#include <cassert>
#include <string>
#include <utility>

#include "crdt/utf.hpp"

namespace parley::crdt {

namespace {

Status out_of_range(const char* what, size_t pos, size_t size) {
  return Status(StatusCode::invalid_argument, std::string(what) + " " + std::to_string(pos) +
                                                  ": past the end of the text (" +
                                                  std::to_string(size) + ")");
}

}  // namespace

Document::Document(AgentId agent) {
  assert(agent != 0 && "agent id 0 is reserved for rebased documents");
  self_ = agent_index(agent);
}

uint32_t Document::agent_index(AgentId id) {
  auto [it, added] = agent_index_.try_emplace(id, static_cast<uint32_t>(agents_.size()));
  if (added) agents_.push_back(AgentState{id, 0, {}});
  return it->second;
}

void Document::add_chars(uint32_t agent, Lv lv, uint32_t len) {
  AgentState& a = agents_[agent];
  uint32_t seq = a.next_seq;
  a.next_seq += len;
  if (!a.spans.empty() && a.spans.back().lv + a.spans.back().len == lv) {
    a.spans.back().len += len;
  } else {
    a.spans.push_back(AgentSpan{seq, lv, len});
  }
  if (!lv_spans_.empty()) {
    LvSpan& last = lv_spans_.back();
    if (last.agent == agent && last.seq + last.len == seq && last.lv + last.len == lv) {
      last.len += len;
      return;
    }
  }
  lv_spans_.push_back(LvSpan{lv, agent, seq, len});
}

bool Document::lv_of(OptId id, Lv* lv) const {
  if (id.none()) {
    *lv = kNoLv;
    return true;
  }
  const AgentState& a = agents_[id.agent];
  if (id.seq >= a.next_seq) return false;
  auto it = std::upper_bound(a.spans.begin(), a.spans.end(), id.seq,
                             [](uint32_t seq, const AgentSpan& s) { return seq < s.seq; });
  --it;
  *lv = it->lv + (id.seq - it->seq);
  return true;
}

const Document::LvSpan& Document::span_of(Lv lv) const {
  auto it = std::upper_bound(lv_spans_.begin(), lv_spans_.end(), lv,
                             [](Lv v, const LvSpan& s) { return v < s.lv; });
  return *--it;
}

Document::OptId Document::id_of(Lv lv) const {
  if (lv == kNoLv) return OptId{};
  const LvSpan& s = span_of(lv);
  return OptId{s.agent, s.seq + (lv - s.lv)};
}

Status Document::check_room(size_t n) const {
  if (n >= kMaxChars - seq_.next_lv()) {
    return Status(StatusCode::invalid_argument,
                  "document full: " + std::to_string(seq_.next_lv()) + " characters");
  }
  return Status();
}

// ---- local edits ----------------------------------------------------------

Status Document::insert(size_t pos, std::string_view utf8) {
  if (pos > size()) return out_of_range("insert at", pos, size());
  scratch_.clear();
  if (!decode_utf8(utf8, scratch_)) {
    return Status(StatusCode::invalid_argument, "insert: text is not valid utf-8");
  }
  std::u32string text = std::move(scratch_);
  Status st = insert_chars(pos, text);
  scratch_ = std::move(text);
  return st;
}

Status Document::insert_chars(size_t pos, std::u32string_view text) {
  if (text.empty()) return Status();
  if (Status st = check_room(text.size()); !st) return st;
  Lv lv = seq_.next_lv();
  seq_.insert_local(pos, text);
  add_chars(self_, lv, static_cast<uint32_t>(text.size()));
  record(true, lv, static_cast<uint32_t>(text.size()), {});
  return Status();
}

Status Document::remove(size_t pos, size_t count) {
  if (pos > size() || count > size() - pos) return out_of_range("remove to", pos + count, size());
  if (count == 0) return Status();
  deleted_.clear();
  deleted_text_.clear();
  seq_.delete_local(pos, count, &deleted_, &deleted_text_);
  unsent_deletes_.insert(unsent_deletes_.end(), deleted_.begin(), deleted_.end());
  size_t at = 0;
  begin_undo_group();  // one step, whatever the number of ranges
  for (const LvRange& r : deleted_) {
    record(false, r.lv, r.len, std::u32string_view(deleted_text_).substr(at, r.len));
    at += r.len;
  }
  end_undo_group();
  return Status();
}

Result<size_t> Document::utf16_to_pos(size_t offset) const {
  size_t pos = 0;
  if (!seq_.pos_of_utf16(offset, &pos)) {
    return Status(StatusCode::invalid_argument,
                  "utf-16 offset " + std::to_string(offset) +
                      ": past the end or inside a surrogate pair (length " +
                      std::to_string(size_utf16()) + ")");
  }
  return pos;
}

size_t Document::pos_to_utf16(size_t pos) const { return seq_.utf16_of(std::min(pos, size())); }

Status Document::insert_utf16(size_t offset, std::string_view utf8) {
  Result<size_t> pos = utf16_to_pos(offset);
  if (!pos) return pos.status();
  return insert(*pos, utf8);
}

Status Document::remove_utf16(size_t offset, size_t count) {
  Result<size_t> from = utf16_to_pos(offset);
  if (!from) return from.status();
  if (count > size_utf16() - offset) return out_of_range("remove to", offset + count, size_utf16());
  Result<size_t> to = utf16_to_pos(offset + count);
  if (!to) return to.status();
  return remove(*from, *to - *from);
}

// ---- undo -----------------------------------------------------------------

void Document::record(bool inserted, Lv lv, uint32_t len, std::u32string_view text) {
  if (replaying_) return;
  redo_.actions.clear();
  redo_.steps = 0;
  bool first = undo_group_depth_ == 0 || !group_open_;
  group_open_ = undo_group_depth_ > 0;
  push_action(&undo_, UndoAction{lv, len, inserted, false, std::u32string(text)}, &first);
  trim(&undo_);
}

// Appends action to log; the first action pushed for a step (*first) starts it.
void Document::push_action(UndoLog* log, UndoAction action, bool* first) {
  action.step_start = *first;
  if (*first) ++log->steps;
  *first = false;
  log->actions.push_back(std::move(action));
}

// Drops the oldest steps beyond the limit.
void Document::trim(UndoLog* log) const {
  while (log->steps > undo_limit_) {
    do {
      log->actions.pop_front();
    } while (!log->actions.empty() && !log->actions.front().step_start);
    --log->steps;
  }
}

void Document::set_undo_limit(size_t steps) {
  undo_limit_ = std::max<size_t>(steps, 1);
  trim(&undo_);
  trim(&redo_);
}

void Document::begin_undo_group() {
  if (undo_group_depth_++ == 0) group_open_ = false;
}

void Document::end_undo_group() {
  assert(undo_group_depth_ > 0);
  if (--undo_group_depth_ == 0) group_open_ = false;
}

// Performs the opposite of action as a local edit and records it in `to`.
void Document::invert(const UndoAction& action, UndoLog* to, bool* first) {
  if (action.inserted) {
    // Characters since deleted and brought back by an undo are now others.
    std::vector<LvRange> now;
    for (Lv lv = action.lv; lv < action.lv + action.len; ++lv) {
      Lv at = lv;
      for (auto it = restored_.find(at); it != restored_.end(); it = restored_.find(at)) {
        at = it->second;
      }
      if (!now.empty() && now.back().lv + now.back().len == at) {
        ++now.back().len;
      } else {
        now.push_back(LvRange{at, 1});
      }
    }
    std::vector<LvRange> done;
    for (const LvRange& r : now) seq_.delete_lvs(r.lv, r.len, &done);
    for (const LvRange& r : done) {
      std::u32string text;
      for (uint32_t i = 0; i < r.len; ++i) text.push_back(seq_.char_at(r.lv + i));
      push_action(to, UndoAction{r.lv, r.len, false, false, std::move(text)}, first);
    }
    unsent_deletes_.insert(unsent_deletes_.end(), done.begin(), done.end());
  } else if (!action.text.empty() && check_room(action.text.size())) {
    // Right where the deleted characters are.
    Lv lv = seq_.next_lv();
    seq_.insert_before(action.lv, action.text);
    add_chars(self_, lv, action.len);
    for (uint32_t i = 0; i < action.len; ++i) restored_[action.lv + i] = lv + i;
    push_action(to, UndoAction{lv, action.len, true, false, {}}, first);
  }
}

// Undoes the last step of `from`, recording the opposite as a step of `to`.
bool Document::replay(UndoLog* from, UndoLog* to) {
  if (from->steps == 0) return false;
  replaying_ = true;
  bool first = true;
  for (bool done = false; !done;) {
    UndoAction action = std::move(from->actions.back());
    from->actions.pop_back();
    done = action.step_start;
    invert(action, to, &first);
  }
  replaying_ = false;
  --from->steps;
  trim(to);
  group_open_ = false;
  return true;
}

bool Document::undo() { return replay(&undo_, &redo_); }
bool Document::redo() { return replay(&redo_, &undo_); }

// ---- remote updates -------------------------------------------------------

StateVector Document::state_vector() const {
  StateVector sv;
  for (const AgentState& a : agents_) {
    if (a.next_seq > 0) sv[a.id] = a.next_seq;
  }
  return sv;
}

Status Document::apply_update(std::string_view update) {
  Update u;
  if (Status st = decode_update(update, &u); !st) return st;
  size_t chars = 0;
  for (const RemoteRun& r : u.runs) chars += r.len;
  if (Status st = check_room(chars); !st) return st;
  for (RemoteRun& r : u.runs) pending_runs_.push_back(std::move(r));
  for (const RemoteDelete& d : u.deletes) pending_deletes_.push_back(d);
  drain_pending();
  return Status();
}

// Integrates run if its dependencies are here (trimming what is already
// known). Returns true when the run is done with, false when it must wait.
bool Document::try_integrate(RemoteRun& run) {
  AgentState& a = agents_[run.agent];
  if (run.seq + uint64_t{run.len} <= a.next_seq) return true;  // duplicate
  if (run.seq > a.next_seq) return false;  // the agent's earlier characters first
  if (run.seq < a.next_seq) {
    uint32_t known = a.next_seq - run.seq;
    run.seq += known;
    run.len -= known;
    run.origin_left = OptId{run.agent, run.seq - 1};
    if (!run.deleted) run.text.erase(0, known);
  }
  Lv left = kNoLv;
  Lv right = kNoLv;
  if (!lv_of(run.origin_left, &left) || !lv_of(run.origin_right, &right)) return false;
  Lv lv = seq_.next_lv();
  auto agent_of = [this](Lv x) { return agents_[span_of(x).agent].id; };
  seq_.integrate(left, right, run.len, run.deleted ? std::u32string_view() : run.text,
                 agents_[run.agent].id, agent_of);
  add_chars(run.agent, lv, run.len);
  return true;
}

// Deletes the known part of del; what remains (not yet received) waits.
bool Document::try_delete(RemoteDelete& del) {
  const AgentState& a = agents_[del.agent];
  while (del.len > 0 && del.seq < a.next_seq) {
    Lv lv = 0;
    lv_of(OptId{del.agent, del.seq}, &lv);
    const AgentSpan& span =
        *--std::upper_bound(a.spans.begin(), a.spans.end(), del.seq,
                            [](uint32_t seq, const AgentSpan& s) { return seq < s.seq; });
    uint32_t take = std::min(del.len, span.seq + span.len - del.seq);
    seq_.delete_lvs(lv, take, nullptr);
    del.seq += take;
    del.len -= take;
  }
  return del.len == 0;
}

void Document::drain_pending() {
  bool progress = true;
  while (progress) {
    progress = false;
    size_t kept = 0;
    for (size_t i = 0; i < pending_runs_.size(); ++i) {
      if (try_integrate(pending_runs_[i])) {
        progress = true;
      } else {
        if (kept != i) pending_runs_[kept] = std::move(pending_runs_[i]);
        ++kept;
      }
    }
    pending_runs_.resize(kept);
  }
  size_t kept = 0;
  for (size_t i = 0; i < pending_deletes_.size(); ++i) {
    if (!try_delete(pending_deletes_[i])) pending_deletes_[kept++] = pending_deletes_[i];
  }
  pending_deletes_.resize(kept);
}

// ---- size -----------------------------------------------------------------

Document::Stats Document::stats() const {
  Stats s;
  s.visible_chars = seq_.size();
  s.total_chars = seq_.next_lv();
  s.runs = seq_.run_count();
  s.agents = agents_.size();
  s.memory_bytes = sizeof(*this) + seq_.memory_bytes() + lv_spans_.capacity() * sizeof(LvSpan) +
                   agents_.capacity() * sizeof(AgentState) +
                   unsent_deletes_.capacity() * sizeof(LvRange);
  for (const AgentState& a : agents_) s.memory_bytes += a.spans.capacity() * sizeof(AgentSpan);
  for (const UndoLog* log : {&undo_, &redo_}) {
    for (const UndoAction& a : log->actions) {
      s.memory_bytes += sizeof(a) + (a.text.size() > 3 ? a.text.capacity() * sizeof(char32_t) : 0);
    }
  }
  return s;
}

bool Document::over_budget(const TombstoneBudget& budget) const {
  Stats s = stats();
  double tombstones = static_cast<double>(s.total_chars - s.visible_chars);
  return s.memory_bytes > budget.max_memory_bytes ||
         tombstones > budget.max_tombstone_ratio * static_cast<double>(s.visible_chars + 1);
}

Document Document::rebased(AgentId agent) const {
  Document doc(agent);
  std::u32string text;
  text.reserve(size());
  seq_.for_each_run([&](const ItemRun& r) {
    for (uint32_t i = 0; !r.deleted && i < r.len; ++i) text.push_back(seq_.char_at(r.lv + i));
  });
  if (!text.empty()) {
    uint32_t base = doc.agent_index(0);
    doc.seq_.insert_local(0, text);
    doc.add_chars(base, 0, static_cast<uint32_t>(text.size()));
  }
  return doc;
}

}  // namespace parley::crdt
