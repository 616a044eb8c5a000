// The cache's receipt cursors, channel members and this user's own read
// cursor (tables receipts, members and channels.my_read / my_read_sent).
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "store/cache_rep.hpp"

// ---- receipts -------------------------------------------------------------------

namespace parley::store {
namespace {
constexpr const char* kRaiseReceipt =
    "INSERT INTO receipts(channel, user, device, kind, seq) VALUES(?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT(channel, user, device, kind) DO UPDATE SET seq = excluded.seq "
    "WHERE excluded.seq > receipts.seq";
constexpr const char* kMemberNames = "SELECT user FROM members WHERE channel = ?1";
constexpr const char* kAddMember = "INSERT OR IGNORE INTO members(channel, user) VALUES(?1, ?2)";
constexpr const char* kRemoveMember = "DELETE FROM members WHERE channel = ?1 AND user = ?2";
constexpr const char* kCountMembers =
    "SELECT count(*) FROM members WHERE channel = ?1 AND user != ?2";
constexpr const char* kCountReached =
    "SELECT count(DISTINCT r.user) FROM receipts r "
    "JOIN members m ON m.channel = r.channel AND m.user = r.user "
    "WHERE r.channel = ?1 AND r.user != ?2 AND r.kind = ?3 AND r.seq >= ?4";
constexpr const char* kRaiseMyRead =
    "INSERT INTO channels(name, member, my_read) VALUES(?1, 1, ?2) "
    "ON CONFLICT(name) DO UPDATE SET my_read = max(my_read, excluded.my_read)";
constexpr const char* kMyRead = "SELECT my_read FROM channels WHERE name = ?1";
constexpr const char* kSetMyReadSent =
    "UPDATE channels SET my_read_sent = max(my_read_sent, ?2) WHERE name = ?1";
constexpr const char* kUnsentReads =
    "SELECT name, my_read FROM channels WHERE my_read > my_read_sent ORDER BY name";
}  // namespace

Result<bool> Cache::raise_receipt(const std::string& channel, const std::string& user,
                                  const std::string& device, ReceiptKind kind, std::uint64_t seq) {
  return rep_->note([&]() -> Result<bool> {
    auto st = rep_->stmt(kRaiseReceipt);
    if (!st) return st.status();
    Scoped q(**st);
    Status s = q->bind(1, channel)
                   .bind(2, user)
                   .bind(3, kind == ReceiptKind::read ? std::string() : device)
                   .bind(4, to_string(kind))
                   .bind(5, clamp_seq(seq))
                   .run();
    if (!s.ok()) return s;
    return rep_->db.changes() > 0;
  }());
}

Status Cache::set_members(const std::string& channel, const std::vector<std::string>& users) {
  return rep_->note([&]() -> Status {
    Transaction tx(rep_->db);
    if (!tx.begin_status().ok()) return tx.begin_status();
    // Members who stay keep their rows (roles and mutes, cache_channels.cpp).
    const std::set<std::string> staying(users.begin(), users.end());
    std::vector<std::string> gone;
    {
      auto st = rep_->stmt(kMemberNames);
      if (!st) return st.status();
      Scoped q(**st);
      q->bind(1, channel);
      for (;;) {
        auto row = q->step();
        if (!row) return row.status();
        if (!*row) break;
        std::string user = q->column_text(0);
        if (staying.count(user) == 0) gone.push_back(user);
      }
    }
    for (const auto& user : gone) {
      auto st = rep_->stmt(kRemoveMember);
      if (!st) return st.status();
      Scoped q(**st);
      if (Status s = q->bind(1, channel).bind(2, user).run(); !s.ok()) return s;
    }
    for (const auto& user : users) {
      auto st = rep_->stmt(kAddMember);
      if (!st) return st.status();
      Scoped q(**st);
      if (Status s = q->bind(1, channel).bind(2, user).run(); !s.ok()) return s;
    }
    return tx.commit();
  }());
}

Status Cache::add_member(const std::string& channel, const std::string& user) {
  return rep_->note([&]() -> Status {
    auto st = rep_->stmt(kAddMember);
    if (!st) return st.status();
    Scoped q(**st);
    return q->bind(1, channel).bind(2, user).run();
  }());
}

Status Cache::remove_member(const std::string& channel, const std::string& user) {
  return rep_->note([&]() -> Status {
    auto st = rep_->stmt(kRemoveMember);
    if (!st) return st.status();
    Scoped q(**st);
    return q->bind(1, channel).bind(2, user).run();
  }());
}

Result<ReceiptSummary> Cache::receipt_summary(const std::string& channel, std::uint64_t seq,
                                              const std::string& sender) {
  return rep_->note([&]() -> Result<ReceiptSummary> {
    ReceiptSummary out;
    {
      auto st = rep_->stmt(kCountMembers);
      if (!st) return st.status();
      Scoped q(**st);
      q->bind(1, channel).bind(2, sender);
      auto row = q->step();
      if (!row) return row.status();
      out.members = *row ? static_cast<std::uint32_t>(q->column_int(0)) : 0;
    }
    for (ReceiptKind kind : {ReceiptKind::delivered, ReceiptKind::read}) {
      auto st = rep_->stmt(kCountReached);
      if (!st) return st.status();
      Scoped q(**st);
      q->bind(1, channel).bind(2, sender).bind(3, to_string(kind)).bind(4, clamp_seq(seq));
      auto row = q->step();
      if (!row) return row.status();
      auto n = *row ? static_cast<std::uint32_t>(q->column_int(0)) : 0;
      (kind == ReceiptKind::read ? out.read : out.delivered) = n;
    }
    // Whoever read a message has it: count readers as delivered too.
    out.delivered = std::max(out.delivered, out.read);
    return out;
  }());
}

Result<std::uint64_t> Cache::raise_my_read(const std::string& channel, std::uint64_t seq) {
  return rep_->note([&]() -> Result<std::uint64_t> {
    {
      auto st = rep_->stmt(kRaiseMyRead);
      if (!st) return st.status();
      Scoped q(**st);
      if (Status s = q->bind(1, channel).bind(2, clamp_seq(seq)).run(); !s.ok()) return s;
    }
    auto st = rep_->stmt(kMyRead);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel);
    auto row = q->step();
    if (!row) return row.status();
    return *row ? static_cast<std::uint64_t>(q->column_int(0)) : 0;
  }());
}

Status Cache::set_my_read_sent(const std::string& channel, std::uint64_t seq) {
  return rep_->note([&]() -> Status {
    auto st = rep_->stmt(kSetMyReadSent);
    if (!st) return st.status();
    Scoped q(**st);
    return q->bind(1, channel).bind(2, clamp_seq(seq)).run();
  }());
}

Result<std::vector<Cache::PendingRead>> Cache::unsent_reads() {
  return rep_->note([&]() -> Result<std::vector<Cache::PendingRead>> {
    auto st = rep_->stmt(kUnsentReads);
    if (!st) return st.status();
    Scoped q(**st);
    std::vector<PendingRead> out;
    for (;;) {
      auto row = q->step();
      if (!row) return row.status();
      if (!*row) break;
      out.push_back({q->column_text(0), static_cast<std::uint64_t>(q->column_int(1))});
    }
    return out;
  }());
}

}  // namespace parley::store
