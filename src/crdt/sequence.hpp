// The item sequence of a text CRDT document: every character ever inserted, in
// document order, deleted ones kept as tombstones (docs/collab.md#algorithm).
//
// Characters are named by local versions (Lv): 0, 1, 2, ... in the order this
// replica learnt of them. Consecutive characters form run-length encoded runs
// (ItemRun), kept in leaves of at most kMaxRuns runs; the root is the array of
// leaves with their visible lengths, so finding a visible position scans the
// leaf lengths and then one leaf. Inserts place characters with the
// FugueMax / YjsMod rule of Gentle and Kleppmann (left and right origins, ties
// broken by agent id), so concurrent insertions at one place never interleave.
//
// Knows nothing about agents, sequence numbers or the wire: Document maps
// those to Lvs. Use from one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace parley::crdt {

using Lv = uint32_t;
// "No character": as a left origin, the start of the document; as a right
// origin, its end.
inline constexpr Lv kNoLv = UINT32_MAX;

// Characters lv .. lv + len - 1. Character k > 0 of a run has left origin
// lv + k - 1 and the run's right origin, which is what lets runs merge.
struct ItemRun {
  Lv lv;
  uint32_t len : 31;
  uint32_t deleted : 1;
  Lv origin_left;   // of the first character
  Lv origin_right;  // of every character
};

struct LvRange {
  Lv lv;
  uint32_t len;
};

class Sequence {
 public:
  static constexpr uint32_t kMaxRuns = 64;

  Sequence();
  Sequence(Sequence&&) noexcept;
  Sequence& operator=(Sequence&&) noexcept;
  ~Sequence();

  // Local versions handed out so far; the next character gets next_lv().
  Lv next_lv() const { return static_cast<Lv>(content_.size()); }
  // Visible characters (code points), and the same text's length in UTF-16.
  size_t size() const { return visible_; }
  size_t size_utf16() const { return visible_ + astral_; }

  // Inserts text at visible position pos (<= size()) as new characters
  // next_lv() .., after the visible character before pos.
  void insert_local(size_t pos, std::u32string_view text);
  // Inserts text as new characters right before character `before` (visible
  // or not), after whatever precedes it: how undo puts deleted text back.
  void insert_before(Lv before, std::u32string_view text);
  // Deletes the visible characters [pos, pos + n) (pos + n <= size()); adds
  // what it deleted, in document order, to ranges and text.
  void delete_local(size_t pos, size_t n, std::vector<LvRange>* ranges, std::u32string* text);

  // Integrates characters received from a peer as next_lv() .. with the given
  // origins, which this sequence must hold. text empty: tombstones of len
  // characters whose content was compacted away. agent_of gives the agent id
  // of a character, to order concurrent insertions at one place.
  void integrate(Lv origin_left, Lv origin_right, uint32_t len, std::u32string_view text,
                 uint64_t agent, const std::function<uint64_t(Lv)>& agent_of);
  // Marks [lv, lv + n) deleted; adds the ranges that were visible to newly.
  void delete_lvs(Lv lv, uint32_t n, std::vector<LvRange>* newly);

  char32_t char_at(Lv lv) const { return content_[lv]; }
  // The run holding lv (origins of lv: see ItemRun) and lv's offset in it.
  const ItemRun& run_of(Lv lv, uint32_t* offset) const;

  std::string text() const;
  // Code points <-> UTF-16 units. pos_of_utf16 returns false if off16 is
  // past the end or falls inside a surrogate pair.
  size_t utf16_of(size_t pos) const;
  bool pos_of_utf16(size_t off16, size_t* pos) const;

  // Every run in document order.
  template <typename Fn>
  void for_each_run(Fn&& fn) const {
    for (uint32_t id : order_) {
      for (const ItemRun& r : leaves_[id]->runs) fn(r);
    }
  }
  size_t run_count() const;
  size_t memory_bytes() const;

  // Snapshot loading: start empty with lv_count characters, then append the
  // runs in document order (text: the content of a visible run). Returns
  // false if a run overlaps an earlier one or leaves [0, lv_count); finish_load()
  // checks that every character was given.
  void begin_load(Lv lv_count);
  bool load_run(const ItemRun& run, std::u32string_view text);
  bool finish_load() const;

 private:
  struct Leaf {
    std::vector<ItemRun> runs;
    uint32_t order = 0;  // index in order_
  };
  // A run by leaf order index and run index; idx == runs.size() is the end of
  // that leaf.
  struct Cursor {
    uint32_t leaf;
    uint32_t idx;
  };

  Leaf& leaf_at(uint32_t order_index) { return *leaves_[order_[order_index]]; }
  const Leaf& leaf_at(uint32_t order_index) const { return *leaves_[order_[order_index]]; }
  ItemRun& run(Cursor c) { return leaf_at(c.leaf).runs[c.idx]; }

  Cursor locate(Lv lv, uint32_t* offset) const;
  // Moves the search hint: edits tend to stay near the previous one.
  Cursor find_visible(size_t pos, uint32_t* offset);
  // Moves c past leaf ends; false at the end of the document.
  bool normalize(Cursor* c) const;
  Lv lv_at(Cursor c) const;
  uint32_t count_astral(Lv lv, uint32_t n) const;
  void split_run(Cursor c, uint32_t offset);
  bool try_merge(Cursor c);
  void mark_deleted(Cursor c);
  void insert_run(Cursor at, const ItemRun& r, std::u32string_view text);
  // Adds n visible characters (astral of them outside the BMP) to a leaf.
  void add_visible(uint32_t leaf, int64_t n, int64_t astral);
  void rebalance();
  void split_leaf(uint32_t order_index);

  std::vector<std::unique_ptr<Leaf>> leaves_;  // by leaf id; ids are stable
  std::vector<uint32_t> order_;                // leaf ids in document order
  std::vector<uint32_t> vis_;                  // visible code points per leaf (order index)
  std::vector<uint32_t> vis_astral_;           // of which outside the BMP
  std::vector<uint32_t> leaf_of_;              // leaf id per Lv
  std::u32string content_;                     // per Lv; 0 where compacted away
  std::vector<uint32_t> touched_;              // leaf ids that may need splitting
  size_t visible_ = 0;
  size_t astral_ = 0;
  // Where find_visible last stopped: a leaf and the visible characters
  // before it, kept exact by add_visible and split_leaf.
  uint32_t hint_leaf_ = 0;
  size_t hint_start_ = 0;
};

}  // namespace parley::crdt
