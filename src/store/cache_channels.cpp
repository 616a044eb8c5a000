// The cache's view of group channels (schema 4): the channel's kind, this
// user's role and mute, the metadata (channels.kind, role, muted_until, meta),
// the members' roles and mutes (members.role, muted_until), and deleted
// messages (messages.deleted). docs/channels.md, "In the SDK".
//
// Roles and kinds are stored by their wire names; '' means not known yet. A
// mute is NULL (none), 0 (until lifted) or its end in ms since the epoch.
// The metadata is a JSON object of the fields that are set (avatar_url under
// "avatar", as on the wire); a meta event's fields are merged into it.
#include <fmt/format.h>

#include "store/cache_rep.hpp"

namespace parley::store {
namespace {

constexpr const char* kChannelAccess =
    "SELECT member, kind, role, muted_until FROM channels WHERE name = ?1";
constexpr const char* kSetKind = "UPDATE channels SET kind = ?2 WHERE name = ?1";
constexpr const char* kSetMyRole = "UPDATE channels SET role = ?2 WHERE name = ?1";
constexpr const char* kSetMyMute = "UPDATE channels SET muted_until = ?2 WHERE name = ?1";
// Absent fields are bound as NULL, which json_patch leaves out.
constexpr const char* kReplaceMeta =
    "UPDATE channels SET meta = json_patch('{}', json_object('name', ?2, 'topic', ?3, "
    "'description', ?4, 'avatar', ?5, 'data', ?6)) WHERE name = ?1";
constexpr const char* kChannelMeta =
    "SELECT json_extract(meta, '$.name'), json_extract(meta, '$.topic'), "
    "json_extract(meta, '$.description'), json_extract(meta, '$.avatar'), "
    "json_extract(meta, '$.data') FROM channels WHERE name = ?1";
constexpr const char* kSetMemberRole =
    "INSERT INTO members(channel, user, role) VALUES(?1, ?2, ?3) "
    "ON CONFLICT(channel, user) DO UPDATE SET role = excluded.role";
constexpr const char* kSetMemberMute =
    "UPDATE members SET muted_until = ?3 WHERE channel = ?1 AND user = ?2";
constexpr const char* kClearMembers = "DELETE FROM members WHERE channel = ?1";
constexpr const char* kInsertMember =
    "INSERT OR REPLACE INTO members(channel, user, role, muted_until) VALUES(?1, ?2, ?3, ?4)";
constexpr const char* kMembers =
    "SELECT user, role, muted_until FROM members WHERE channel = ?1 ORDER BY user";
constexpr const char* kMarkDeleted =
    "UPDATE messages SET text = '', deleted = 1 WHERE channel = ?1 AND seq = ?2";

std::optional<ChannelKind> kind_of(const std::string& name) {
  ChannelKind kind;
  if (!parse_channel_kind(name, &kind)) return std::nullopt;
  return kind;
}

std::optional<Role> role_of(const std::string& name) {
  Role role;
  if (!parse_role(name, &role)) return std::nullopt;
  return role;
}

std::optional<std::int64_t> optional_int(Statement& q, int column) {
  if (q.column_is_null(column)) return std::nullopt;
  return q.column_int(column);
}

Statement& bind_optional(Statement& q, int index, const std::optional<std::int64_t>& value) {
  return value ? q.bind(index, *value) : q.bind_null(index);
}

}  // namespace

Result<std::optional<Cache::ChannelAccess>> Cache::channel_access(const std::string& channel) {
  return rep_->note([&]() -> Result<std::optional<ChannelAccess>> {
    auto st = rep_->stmt(kChannelAccess);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel);
    auto row = q->step();
    if (!row) return row.status();
    if (!*row) return std::optional<ChannelAccess>();
    ChannelAccess a;
    a.member = q->column_int(0) != 0;
    a.kind = kind_of(q->column_text(1));
    a.role = role_of(q->column_text(2));
    a.muted_until = optional_int(*q, 3);
    return std::optional<ChannelAccess>(a);
  }());
}

Status Cache::set_channel_kind(const std::string& channel, ChannelKind kind) {
  return rep_->note([&]() -> Status {
    auto st = rep_->stmt(kSetKind);
    if (!st) return st.status();
    Scoped q(**st);
    return q->bind(1, channel).bind(2, to_string(kind)).run();
  }());
}

Status Cache::set_my_role(const std::string& channel, std::optional<Role> role) {
  return rep_->note([&]() -> Status {
    auto st = rep_->stmt(kSetMyRole);
    if (!st) return st.status();
    Scoped q(**st);
    return q->bind(1, channel).bind(2, role ? to_string(*role) : "").run();
  }());
}

Status Cache::set_my_mute(const std::string& channel, std::optional<std::int64_t> until_ms) {
  return rep_->note([&]() -> Status {
    auto st = rep_->stmt(kSetMyMute);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel);
    bind_optional(*q, 2, until_ms);
    return q->run();
  }());
}

Status Cache::merge_meta(const std::string& channel, const ChannelMeta& changes) {
  auto current = channel_meta(channel);
  if (!current) return current.status();
  if (!*current) return Status();  // no such channel: nothing to change
  ChannelMeta merged = **current;
  const std::optional<std::string>* from[] = {&changes.name, &changes.topic, &changes.description,
                                              &changes.avatar_url, &changes.data};
  std::optional<std::string>* to[] = {&merged.name, &merged.topic, &merged.description,
                                      &merged.avatar_url, &merged.data};
  for (int i = 0; i < 5; ++i) {
    if (*from[i]) *to[i] = *from[i];
  }
  return replace_meta(channel, merged);
}

Status Cache::replace_meta(const std::string& channel, const ChannelMeta& meta) {
  return rep_->note([&]() -> Status {
    auto st = rep_->stmt(kReplaceMeta);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel);
    const std::optional<std::string>* fields[] = {&meta.name, &meta.topic, &meta.description,
                                                  &meta.avatar_url, &meta.data};
    for (int i = 0; i < 5; ++i) {
      // An empty string clears the field: stored as absent.
      if (*fields[i] && !(*fields[i])->empty()) {
        q->bind(i + 2, **fields[i]);
      } else {
        q->bind_null(i + 2);
      }
    }
    return q->run();
  }());
}

Result<std::optional<ChannelMeta>> Cache::channel_meta(const std::string& channel) {
  return rep_->note([&]() -> Result<std::optional<ChannelMeta>> {
    auto st = rep_->stmt(kChannelMeta);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel);
    auto row = q->step();
    if (!row) return row.status();
    if (!*row) return std::optional<ChannelMeta>();
    ChannelMeta meta;
    std::optional<std::string>* fields[] = {&meta.name, &meta.topic, &meta.description,
                                            &meta.avatar_url, &meta.data};
    for (int i = 0; i < 5; ++i) {
      if (!q->column_is_null(i)) *fields[i] = q->column_text(i);
    }
    return std::optional<ChannelMeta>(std::move(meta));
  }());
}

Status Cache::set_member_role(const std::string& channel, const std::string& user, Role role) {
  return rep_->note([&]() -> Status {
    auto st = rep_->stmt(kSetMemberRole);
    if (!st) return st.status();
    Scoped q(**st);
    return q->bind(1, channel).bind(2, user).bind(3, to_string(role)).run();
  }());
}

Status Cache::set_member_mute(const std::string& channel, const std::string& user,
                              std::optional<std::int64_t> until_ms) {
  return rep_->note([&]() -> Status {
    auto st = rep_->stmt(kSetMemberMute);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel).bind(2, user);
    bind_optional(*q, 3, until_ms);
    return q->run();
  }());
}

Status Cache::replace_members(const std::string& channel, const std::vector<MemberRow>& members) {
  return rep_->note([&]() -> Status {
    Transaction tx(rep_->db);
    if (!tx.begin_status().ok()) return tx.begin_status();
    {
      auto st = rep_->stmt(kClearMembers);
      if (!st) return st.status();
      Scoped q(**st);
      if (Status s = q->bind(1, channel).run(); !s.ok()) return s;
    }
    for (const MemberRow& m : members) {
      auto st = rep_->stmt(kInsertMember);
      if (!st) return st.status();
      Scoped q(**st);
      q->bind(1, channel).bind(2, m.user).bind(3, m.role ? to_string(*m.role) : "");
      bind_optional(*q, 4, m.muted_until);
      if (Status s = q->run(); !s.ok()) return s;
    }
    return tx.commit();
  }());
}

Result<std::vector<Cache::MemberRow>> Cache::members(const std::string& channel) {
  return rep_->note([&]() -> Result<std::vector<MemberRow>> {
    auto st = rep_->stmt(kMembers);
    if (!st) return st.status();
    Scoped q(**st);
    q->bind(1, channel);
    std::vector<MemberRow> out;
    for (;;) {
      auto row = q->step();
      if (!row) return row.status();
      if (!*row) break;
      out.push_back({q->column_text(0), role_of(q->column_text(1)), optional_int(*q, 2)});
    }
    return out;
  }());
}

Status Cache::mark_deleted(const std::string& channel, std::uint64_t seq) {
  return rep_->note([&]() -> Status {
    auto st = rep_->stmt(kMarkDeleted);
    if (!st) return st.status();
    Scoped q(**st);
    return q->bind(1, channel).bind(2, clamp_seq(seq)).run();
  }());
}

}  // namespace parley::store
