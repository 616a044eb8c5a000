// parley::crdt::Document: a text edited by several replicas at once that
// converges whatever order their updates arrive in (docs/collab.md).
//
//   crdt::Document alice(1), bob(2);              // agent ids: unique, nonzero
//   alice.insert(0, "hello");
//   bob.apply_update(alice.take_update());        // what alice typed since her last update
//   bob.insert(5, " world");
//   alice.apply_update(bob.encode_update(alice.state_vector()));  // all that alice lacks
//   assert(alice.text() == bob.text());
//   std::string saved = alice.encode_snapshot();  // later: Document::load_snapshot(saved, 1)
//
// A Document is a plain value with no threads and no I/O: use from one thread
// at a time (the client's actor thread owns its documents). Positions count
// Unicode code points; the *_utf16 variants take UTF-16 offsets, as mobile
// text views use. The caller owns every returned string.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "crdt/sequence.hpp"
#include "parley/status.hpp"

namespace parley::crdt {

// Who made an edit. Each replica that edits needs its own; 0 is reserved for
// the base text of a rebased document.
using AgentId = uint64_t;

// How many characters of each agent a replica holds: agent -> n means its
// characters 0 .. n - 1. Deletions are not counted (see encode_update).
using StateVector = std::map<AgentId, uint32_t>;

std::string encode_state_vector(const StateVector& sv);
Result<StateVector> decode_state_vector(std::string_view bytes);

// When tombstones have grown too large for a document (see over_budget).
struct TombstoneBudget {
  size_t max_memory_bytes = 64u << 20;
  double max_tombstone_ratio = 8.0;  // deleted characters per visible one
};

class Document {
 public:
  explicit Document(AgentId agent);

  AgentId agent() const { return agents_[self_].id; }
  size_t size() const { return seq_.size(); }
  size_t size_utf16() const { return seq_.size_utf16(); }
  std::string text() const { return seq_.text(); }

  // Local edits. Each is one undo step (see begin_undo_group). Errors:
  // invalid_argument for a position past the end, bad UTF-8, or a split
  // surrogate pair.
  Status insert(size_t pos, std::string_view utf8);
  Status remove(size_t pos, size_t count);
  Status insert_utf16(size_t offset, std::string_view utf8);
  Status remove_utf16(size_t offset, size_t count);
  Result<size_t> utf16_to_pos(size_t offset) const;
  size_t pos_to_utf16(size_t pos) const;  // pos <= size()

  // Undo and redo this replica's own edits (others' edits stay). Undoing an
  // insertion deletes what is left of it; undoing a deletion inserts the text
  // again where it was. Return false when there is nothing to undo or redo.
  bool undo();
  bool redo();
  bool can_undo() const { return undo_.steps > 0; }
  bool can_redo() const { return redo_.steps > 0; }
  // Edits between begin and end (nested pairs count once) undo as one step.
  void begin_undo_group();
  void end_undo_group();
  // The undo history keeps the latest `steps` steps (default 1,000).
  void set_undo_limit(size_t steps);

  StateVector state_vector() const;
  // This replica's own edits since the previous call: what to broadcast.
  std::string take_update();
  // The characters a peer at `since` lacks, and every deletion this replica
  // knows of (deletions are state, sent whole, as in Yjs).
  std::string encode_update(const StateVector& since) const;
  // Applies an update from take_update or encode_update, from any peer, in any
  // order, any number of times. Characters whose dependencies (origins, the
  // agent's earlier characters) are missing wait in pending() until they
  // arrive. corrupt: malformed update, nothing applied.
  Status apply_update(std::string_view update);
  size_t pending() const { return pending_runs_.size() + pending_deletes_.size(); }

  // The whole state (not pending ops, not undo history) in document order.
  std::string encode_snapshot() const;
  static Result<Document> load_snapshot(std::string_view bytes, AgentId agent);

  struct Stats {
    size_t visible_chars = 0;
    size_t total_chars = 0;  // including tombstones
    size_t runs = 0;
    size_t agents = 0;
    size_t memory_bytes = 0;
  };
  Stats stats() const;
  // True when tombstones exceed the budget; the application then agrees with
  // its peers on a state and replaces the document with rebased().
  bool over_budget(const TombstoneBudget& budget) const;
  // A new document holding only the current text, as characters of agent 0:
  // replicas that rebase the same text hold identical documents.
  Document rebased(AgentId agent) const;

 private:
  // Characters ever inserted into one document, tombstones included: memory
  // is about 8 bytes per character (docs/collab.md#limits), so a hostile
  // update cannot make a replica allocate gigabytes.
  static constexpr size_t kMaxChars = size_t{1} << 24;

  struct AgentSpan {  // an agent's characters seq .. seq + len - 1 are lv ..
    uint32_t seq;
    Lv lv;
    uint32_t len;
  };
  struct AgentState {
    AgentId id = 0;
    uint32_t next_seq = 0;
    std::vector<AgentSpan> spans;  // by seq
  };
  struct LvSpan {  // lv .. lv + len - 1 are characters seq .. of agent (index)
    Lv lv;
    uint32_t agent;
    uint32_t seq;
    uint32_t len;
  };
  struct OptId {  // a character by agent index and seq; agent UINT32_MAX: none
    uint32_t agent = UINT32_MAX;
    uint32_t seq = 0;
    bool none() const { return agent == UINT32_MAX; }
  };
  struct RemoteRun {
    uint32_t agent;
    uint32_t seq;
    uint32_t len;
    bool deleted;
    OptId origin_left;
    OptId origin_right;
    std::u32string text;
  };
  struct RemoteDelete {
    uint32_t agent;
    uint32_t seq;
    uint32_t len;
  };
  struct Update {
    std::vector<RemoteRun> runs;
    std::vector<RemoteDelete> deletes;
  };
  // Undo history: a flat list of actions; an action with step_start begins
  // a step (steps are undone whole, last action first).
  struct UndoAction {
    Lv lv;  // the characters lv .. lv + len - 1
    uint32_t len;
    bool inserted;  // else deleted, and text holds them
    bool step_start;
    std::u32string text;
  };
  struct UndoLog {
    std::deque<UndoAction> actions;
    size_t steps = 0;
  };

  uint32_t agent_index(AgentId id);
  void add_chars(uint32_t agent, Lv lv, uint32_t len);
  bool lv_of(OptId id, Lv* lv) const;
  OptId id_of(Lv lv) const;
  const LvSpan& span_of(Lv lv) const;
  Status check_room(size_t n) const;

  Status insert_chars(size_t pos, std::u32string_view text);
  void record(bool inserted, Lv lv, uint32_t len, std::u32string_view text);
  void push_action(UndoLog* log, UndoAction action, bool* first);
  void trim(UndoLog* log) const;
  void invert(const UndoAction& action, UndoLog* to, bool* first);
  bool replay(UndoLog* from, UndoLog* to);

  bool try_integrate(RemoteRun& run);
  bool try_delete(RemoteDelete& del);
  void drain_pending();

  // codec.cpp
  std::vector<RemoteDelete> delete_set() const;
  std::string encode_parts(std::vector<LvRange> ranges,
                           const std::vector<RemoteDelete>& deletes) const;
  Status decode_update(std::string_view bytes, Update* out);

  Sequence seq_;
  std::vector<AgentState> agents_;
  std::unordered_map<AgentId, uint32_t> agent_index_;
  std::vector<LvSpan> lv_spans_;  // by lv
  uint32_t self_ = 0;

  uint32_t sent_seq_ = 0;                // own characters already in a take_update
  std::vector<LvRange> unsent_deletes_;  // local deletions since then

  std::vector<RemoteRun> pending_runs_;
  std::vector<RemoteDelete> pending_deletes_;

  UndoLog undo_;
  UndoLog redo_;
  size_t undo_limit_ = 1000;  // steps
  // Deleted character -> the character an undo inserted in its place.
  std::unordered_map<Lv, Lv> restored_;
  int undo_group_depth_ = 0;
  bool group_open_ = false;  // the group's step has begun
  bool replaying_ = false;   // undo/redo in progress: do not record

  std::vector<LvRange> deleted_;  // scratch of remove()
  std::u32string deleted_text_;
  std::u32string scratch_;
};

}  // namespace parley::crdt
