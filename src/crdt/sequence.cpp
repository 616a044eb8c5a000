// The item sequence: local edits by position, remote integration by origins
// (FugueMax / YjsMod), tombstones, leaf splitting. See sequence.hpp.
#include "crdt/sequence.hpp"

#include <algorithm>
#include <cassert>
#include <limits>

#include "crdt/utf.hpp"

namespace parley::crdt {

namespace {

constexpr uint32_t kNoLeaf = UINT32_MAX;
// Runs per leaf when a snapshot is loaded: room to grow before splitting.
constexpr uint32_t kLoadRuns = Sequence::kMaxRuns * 3 / 4;

}  // namespace

Sequence::Sequence() {
  leaves_.push_back(std::make_unique<Leaf>());
  order_.push_back(0);
  vis_.push_back(0);
  vis_astral_.push_back(0);
}

Sequence::Sequence(Sequence&&) noexcept = default;
Sequence& Sequence::operator=(Sequence&&) noexcept = default;
Sequence::~Sequence() = default;

Sequence::Cursor Sequence::locate(Lv lv, uint32_t* offset) const {
  assert(lv < leaf_of_.size());
  const Leaf& leaf = *leaves_[leaf_of_[lv]];
  for (uint32_t i = 0; i < leaf.runs.size(); ++i) {
    const ItemRun& r = leaf.runs[i];
    if (lv >= r.lv && lv - r.lv < r.len) {
      *offset = lv - r.lv;
      return Cursor{leaf.order, i};
    }
  }
  assert(false && "lv missing from its leaf");
  return Cursor{0, 0};
}

const ItemRun& Sequence::run_of(Lv lv, uint32_t* offset) const {
  Cursor c = locate(lv, offset);
  return leaf_at(c.leaf).runs[c.idx];
}

Sequence::Cursor Sequence::find_visible(size_t pos, uint32_t* offset) {
  assert(pos < visible_);
  uint32_t li = hint_leaf_;
  size_t start = hint_start_;
  while (pos < start) start -= vis_[--li];
  while (pos - start >= vis_[li]) start += vis_[li++];
  hint_leaf_ = li;
  hint_start_ = start;
  pos -= start;
  const Leaf& leaf = leaf_at(li);
  for (uint32_t i = 0;; ++i) {
    const ItemRun& r = leaf.runs[i];
    if (r.deleted) continue;
    if (pos < r.len) {
      *offset = static_cast<uint32_t>(pos);
      return Cursor{li, i};
    }
    pos -= r.len;
  }
}

void Sequence::add_visible(uint32_t leaf, int64_t n, int64_t astral) {
  vis_[leaf] = static_cast<uint32_t>(vis_[leaf] + n);
  vis_astral_[leaf] = static_cast<uint32_t>(vis_astral_[leaf] + astral);
  visible_ = static_cast<size_t>(static_cast<int64_t>(visible_) + n);
  astral_ = static_cast<size_t>(static_cast<int64_t>(astral_) + astral);
  if (leaf < hint_leaf_) hint_start_ = static_cast<size_t>(static_cast<int64_t>(hint_start_) + n);
}

bool Sequence::normalize(Cursor* c) const {
  while (c->idx == leaf_at(c->leaf).runs.size()) {
    if (c->leaf + 1 == order_.size()) return false;
    *c = Cursor{c->leaf + 1, 0};
  }
  return true;
}

Lv Sequence::lv_at(Cursor c) const {
  return normalize(&c) ? leaf_at(c.leaf).runs[c.idx].lv : kNoLv;
}

uint32_t Sequence::count_astral(Lv lv, uint32_t n) const {
  uint32_t count = 0;
  for (uint32_t i = 0; i < n; ++i) count += is_astral(content_[lv + i]) ? 1 : 0;
  return count;
}

void Sequence::split_run(Cursor c, uint32_t offset) {
  Leaf& leaf = leaf_at(c.leaf);
  ItemRun& first = leaf.runs[c.idx];
  assert(offset > 0 && offset < first.len);
  ItemRun second = first;
  second.lv = first.lv + offset;
  second.len = first.len - offset;
  second.origin_left = second.lv - 1;
  first.len = offset;
  leaf.runs.insert(leaf.runs.begin() + c.idx + 1, second);
  touched_.push_back(order_[c.leaf]);
}

// Merges run c.idx into run c.idx - 1 when the pair is one run split earlier
// (or typed in one go): contiguous lvs, chained left origin, same right origin.
bool Sequence::try_merge(Cursor c) {
  Leaf& leaf = leaf_at(c.leaf);
  if (c.idx == 0 || c.idx >= leaf.runs.size()) return false;
  ItemRun& prev = leaf.runs[c.idx - 1];
  const ItemRun& cur = leaf.runs[c.idx];
  if (prev.lv + prev.len != cur.lv || cur.origin_left != cur.lv - 1 ||
      cur.origin_right != prev.origin_right || cur.deleted != prev.deleted ||
      uint64_t{prev.len} + cur.len >= (1u << 31)) {
    return false;
  }
  prev.len = prev.len + cur.len;
  leaf.runs.erase(leaf.runs.begin() + c.idx);
  return true;
}

void Sequence::mark_deleted(Cursor c) {
  ItemRun& r = run(c);
  assert(!r.deleted);
  r.deleted = 1;
  uint32_t astral = vis_astral_[c.leaf] != 0 ? count_astral(r.lv, r.len) : 0;
  add_visible(c.leaf, -int64_t{r.len}, -int64_t{astral});
}

void Sequence::insert_run(Cursor at, const ItemRun& r, std::u32string_view text) {
  uint32_t id = order_[at.leaf];
  if (text.empty()) {
    content_.append(r.len, U'\0');
  } else {
    content_.append(text);
  }
  leaf_of_.resize(leaf_of_.size() + r.len, id);
  Leaf& leaf = leaf_at(at.leaf);
  leaf.runs.insert(leaf.runs.begin() + at.idx, r);
  if (!r.deleted) add_visible(at.leaf, r.len, count_astral(r.lv, r.len));
  touched_.push_back(id);
  try_merge(at);
  rebalance();
}

void Sequence::insert_local(size_t pos, std::u32string_view text) {
  assert(pos <= visible_);
  auto n = static_cast<uint32_t>(text.size());
  if (n == 0) return;
  Lv lv = next_lv();
  Lv left = kNoLv;
  Cursor at{0, 0};
  if (pos > 0) {
    uint32_t off = 0;
    Cursor c = find_visible(pos - 1, &off);
    ItemRun& r = run(c);
    left = r.lv + off;
    at = Cursor{c.leaf, c.idx + 1};
    if (off + 1 < r.len) {
      split_run(c, off + 1);
    } else if (r.lv + r.len == lv && r.origin_right == lv_at(at)) {
      // Typing on: the new characters continue the run (the common case).
      r.len = r.len + n;
      content_.append(text);
      leaf_of_.resize(leaf_of_.size() + n, order_[c.leaf]);
      add_visible(c.leaf, n, count_astral(lv, n));
      return;
    }
  }
  insert_run(at, ItemRun{lv, n, 0, left, lv_at(at)}, text);
}

void Sequence::insert_before(Lv before, std::u32string_view text) {
  if (text.empty()) return;
  uint32_t off = 0;
  Cursor c = locate(before, &off);
  if (off > 0) {
    split_run(c, off);
    ++c.idx;
  }
  Lv left = kNoLv;
  if (c.idx > 0) {
    const ItemRun& prev = leaf_at(c.leaf).runs[c.idx - 1];
    left = prev.lv + prev.len - 1;
  } else if (c.leaf > 0) {
    const ItemRun& prev = leaf_at(c.leaf - 1).runs.back();
    left = prev.lv + prev.len - 1;
  }
  insert_run(c, ItemRun{next_lv(), static_cast<uint32_t>(text.size()), 0, left, before}, text);
}

void Sequence::delete_local(size_t pos, size_t n, std::vector<LvRange>* ranges,
                            std::u32string* text) {
  assert(pos + n <= visible_);
  if (n == 0) return;
  uint32_t off = 0;
  Cursor c = find_visible(pos, &off);
  if (off > 0) {
    split_run(c, off);
    ++c.idx;
  }
  while (n > 0) {
    bool more = normalize(&c);
    assert(more);
    (void)more;
    if (run(c).deleted) {
      ++c.idx;
      continue;
    }
    if (run(c).len > n) split_run(c, static_cast<uint32_t>(n));
    const ItemRun& r = run(c);
    ranges->push_back(LvRange{r.lv, r.len});
    text->append(content_, r.lv, r.len);
    n -= r.len;
    mark_deleted(c);
    if (!try_merge(c)) ++c.idx;
  }
  try_merge(c);
  rebalance();
}

void Sequence::delete_lvs(Lv lv, uint32_t n, std::vector<LvRange>* newly) {
  while (n > 0) {
    uint32_t off = 0;
    Cursor c = locate(lv, &off);
    uint32_t take = std::min<uint32_t>(n, run(c).len - off);
    if (!run(c).deleted) {
      if (off > 0) {
        split_run(c, off);
        ++c.idx;
      }
      if (take < run(c).len) split_run(c, take);
      mark_deleted(c);
      if (newly != nullptr) newly->push_back(LvRange{lv, take});
      Cursor next{c.leaf, c.idx + 1};
      try_merge(next);
      try_merge(c);
    }
    lv += take;
    n -= take;
  }
  rebalance();
}

void Sequence::integrate(Lv origin_left, Lv origin_right, uint32_t len, std::u32string_view text,
                         uint64_t agent, const std::function<uint64_t(Lv)>& agent_of) {
  assert(len > 0 && (text.empty() || text.size() == len));
  // Make the right origin start a run and the left origin end one, so the
  // concurrent region between them is whole runs.
  uint32_t off = 0;
  if (origin_right != kNoLv) {
    Cursor c = locate(origin_right, &off);
    if (off > 0) split_run(c, off);
  }
  Cursor start{0, 0};
  if (origin_left != kNoLv) {
    Cursor c = locate(origin_left, &off);
    if (off + 1 < run(c).len) split_run(c, off + 1);
    start = Cursor{c.leaf, c.idx + 1};
  }

  // The runs between the origins: inserted concurrently with this one (or
  // after such), usually none. Positions: left origin 0, region 1 .. W,
  // right origin W + 1.
  struct Region {
    Lv lv;
    uint32_t len;
    Lv origin_left;
    Lv origin_right;
    Cursor at;
    int64_t pos;
  };
  std::vector<Region> region;
  Cursor end = start;
  int64_t pos = 1;
  while (normalize(&end)) {
    const ItemRun& r = run(end);
    if (r.lv == origin_right) break;
    region.push_back(Region{r.lv, r.len, r.origin_left, r.origin_right, end, pos});
    pos += r.len;
    ++end.idx;
  }
  const int64_t right_pos = pos;
  constexpr int64_t kAfterRight = std::numeric_limits<int64_t>::max();
  auto region_pos = [&region](Lv x) -> int64_t {
    for (const Region& g : region) {
      if (x >= g.lv && x - g.lv < g.len) return g.pos + (x - g.lv);
    }
    return -1;
  };

  // YjsMod / FugueMax integration (Gentle's reference-crdts, Eg-walker paper
  // section 4.2): skip what belongs after, stop at what belongs before.
  size_t dest = 0;
  bool scanning = false;
  size_t i = 0;
  for (; i < region.size(); ++i) {
    if (!scanning) dest = i;
    const Region& o = region[i];
    int64_t o_left = o.origin_left == origin_left ? 0
                     : o.origin_left == kNoLv     ? -1
                                                  : region_pos(o.origin_left);
    if (o_left < 0) break;  // o's left origin is before ours: we go first
    if (o_left > 0) continue;
    int64_t o_right = o.origin_right == origin_right ? right_pos
                      : o.origin_right == kNoLv      ? kAfterRight
                                                     : region_pos(o.origin_right);
    if (o_right < 0) o_right = kAfterRight;
    if (o_right < right_pos) {
      scanning = true;
    } else if (o_right == right_pos) {
      if (agent < agent_of(o.lv)) break;
      scanning = false;
    } else {
      scanning = false;
    }
  }
  if (i == region.size() && !scanning) dest = region.size();

  Cursor at = dest < region.size() ? region[dest].at : end;
  ItemRun r{next_lv(), len, text.empty() ? 1u : 0u, origin_left, origin_right};
  insert_run(at, r, text);
}

std::string Sequence::text() const {
  std::string out;
  out.reserve(visible_ + astral_ * 3);
  for_each_run([&](const ItemRun& r) {
    if (r.deleted) return;
    for (uint32_t i = 0; i < r.len; ++i) append_utf8(out, content_[r.lv + i]);
  });
  return out;
}

size_t Sequence::utf16_of(size_t pos) const {
  assert(pos <= visible_);
  size_t units = pos;
  uint32_t li = 0;
  for (; li < order_.size() && pos >= vis_[li]; ++li) {
    pos -= vis_[li];
    units += vis_astral_[li];
  }
  if (pos == 0 || vis_astral_[li] == 0) return units;
  for (const ItemRun& r : leaf_at(li).runs) {
    if (r.deleted) continue;
    uint32_t take = static_cast<uint32_t>(std::min<size_t>(pos, r.len));
    units += count_astral(r.lv, take);
    pos -= take;
    if (pos == 0) break;
  }
  return units;
}

bool Sequence::pos_of_utf16(size_t off16, size_t* pos) const {
  if (off16 > size_utf16()) return false;
  size_t p = 0;
  uint32_t li = 0;
  for (; li < order_.size() && off16 >= vis_[li] + vis_astral_[li]; ++li) {
    off16 -= vis_[li] + vis_astral_[li];
    p += vis_[li];
  }
  if (off16 > 0) {
    for (const ItemRun& r : leaf_at(li).runs) {
      if (r.deleted) continue;
      for (uint32_t k = 0; k < r.len && off16 > 0; ++k) {
        size_t w = is_astral(content_[r.lv + k]) ? 2 : 1;
        if (w > off16) return false;  // inside a surrogate pair
        off16 -= w;
        ++p;
      }
      if (off16 == 0) break;
    }
  }
  *pos = p;
  return true;
}

size_t Sequence::run_count() const {
  size_t n = 0;
  for (const auto& leaf : leaves_) n += leaf->runs.size();
  return n;
}

size_t Sequence::memory_bytes() const {
  size_t n = sizeof(*this) + content_.capacity() * sizeof(char32_t) +
             (leaf_of_.capacity() + order_.capacity() + vis_.capacity() + vis_astral_.capacity()) *
                 sizeof(uint32_t) +
             leaves_.capacity() * sizeof(leaves_[0]);
  for (const auto& leaf : leaves_) n += sizeof(Leaf) + leaf->runs.capacity() * sizeof(ItemRun);
  return n;
}

void Sequence::rebalance() {
  for (uint32_t id : touched_) {
    while (leaves_[id]->runs.size() > kMaxRuns) split_leaf(leaves_[id]->order);
  }
  touched_.clear();
}

// Moves the second half of a leaf into a new leaf placed after it. A leaf
// that must split repeatedly keeps its first part: rebalance() loops.
void Sequence::split_leaf(uint32_t oi) {
  Leaf& leaf = leaf_at(oi);
  auto id = static_cast<uint32_t>(leaves_.size());
  auto moved = std::make_unique<Leaf>();
  size_t half = leaf.runs.size() / 2;
  moved->runs.assign(leaf.runs.begin() + static_cast<std::ptrdiff_t>(half), leaf.runs.end());
  leaf.runs.resize(half);
  uint32_t vis = 0;
  uint32_t astral = 0;
  for (const ItemRun& r : moved->runs) {
    std::fill_n(leaf_of_.begin() + r.lv, r.len, id);
    if (r.deleted) continue;
    vis += r.len;
    if (vis_astral_[oi] != 0) astral += count_astral(r.lv, r.len);
  }
  vis_[oi] -= vis;
  vis_astral_[oi] -= astral;
  order_.insert(order_.begin() + oi + 1, id);
  vis_.insert(vis_.begin() + oi + 1, vis);
  vis_astral_.insert(vis_astral_.begin() + oi + 1, astral);
  leaves_.push_back(std::move(moved));
  for (uint32_t i = oi + 1; i < order_.size(); ++i) leaves_[order_[i]]->order = i;
  if (oi < hint_leaf_) ++hint_leaf_;  // the characters before it stay the same
}

void Sequence::begin_load(Lv lv_count) {
  *this = Sequence();
  content_.assign(lv_count, U'\0');
  leaf_of_.assign(lv_count, kNoLeaf);
}

bool Sequence::load_run(const ItemRun& r, std::u32string_view text) {
  if (r.len == 0 || r.lv >= leaf_of_.size() || leaf_of_.size() - r.lv < r.len) return false;
  if (!r.deleted && text.size() != r.len) return false;
  uint32_t oi = static_cast<uint32_t>(order_.size()) - 1;
  if (leaf_at(oi).runs.size() >= kLoadRuns) {
    auto id = static_cast<uint32_t>(leaves_.size());
    leaves_.push_back(std::make_unique<Leaf>());
    leaves_.back()->order = ++oi;
    order_.push_back(id);
    vis_.push_back(0);
    vis_astral_.push_back(0);
  }
  uint32_t id = order_[oi];
  for (uint32_t i = 0; i < r.len; ++i) {
    if (leaf_of_[r.lv + i] != kNoLeaf) return false;
    leaf_of_[r.lv + i] = id;
  }
  Leaf& leaf = leaf_at(oi);
  leaf.runs.push_back(r);
  if (!r.deleted) {
    std::copy(text.begin(), text.end(), content_.begin() + r.lv);
    uint32_t astral = count_astral(r.lv, r.len);
    vis_[oi] += r.len;
    vis_astral_[oi] += astral;
    visible_ += r.len;
    astral_ += astral;
  }
  return true;
}

bool Sequence::finish_load() const {
  return std::find(leaf_of_.begin(), leaf_of_.end(), kNoLeaf) == leaf_of_.end();
}

}  // namespace parley::crdt
