// The permission table of docs/channels.md, shared by the SDK and the server.
#include "parley/roles.hpp"

#include <array>
#include <utility>

namespace parley {
namespace {

constexpr std::array<std::pair<ChannelKind, const char*>, 4> kKinds = {{
    {ChannelKind::public_channel, "public"},
    {ChannelKind::private_channel, "private"},
    {ChannelKind::direct, "direct"},
    {ChannelKind::broadcast, "broadcast"},
}};
constexpr std::array<std::pair<Role, const char*>, 5> kRoles = {{
    {Role::owner, "owner"},
    {Role::admin, "admin"},
    {Role::moderator, "moderator"},
    {Role::member, "member"},
    {Role::read_only, "read_only"},
}};
constexpr std::array<std::pair<Permission, const char*>, 9> kPermissions = {{
    {Permission::post, "post"},
    {Permission::invite, "invite"},
    {Permission::remove, "remove"},
    {Permission::ban, "ban"},
    {Permission::mute, "mute"},
    {Permission::edit_meta, "edit_meta"},
    {Permission::delete_others, "delete_others"},
    {Permission::pin, "pin"},
    {Permission::change_roles, "change_roles"},
}};

template <class T, std::size_t N>
const char* name_of(const std::array<std::pair<T, const char*>, N>& table, T value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return table[0].second;
}

template <class T, std::size_t N>
bool value_of(const std::array<std::pair<T, const char*>, N>& table, std::string_view text,
              T* out) {
  for (const auto& [v, name] : table) {
    if (text == name) {
      *out = v;
      return true;
    }
  }
  return false;
}

int rank(Role role) {
  switch (role) {
    case Role::owner: return 4;
    case Role::admin: return 3;
    case Role::moderator: return 2;
    case Role::member: return 1;
    case Role::read_only: return 0;
  }
  return 0;
}

}  // namespace

const char* to_string(ChannelKind kind) { return name_of(kKinds, kind); }
const char* to_string(Role role) { return name_of(kRoles, role); }
const char* to_string(Permission permission) { return name_of(kPermissions, permission); }
bool parse_channel_kind(std::string_view text, ChannelKind* out) {
  return value_of(kKinds, text, out);
}
bool parse_role(std::string_view text, Role* out) { return value_of(kRoles, text, out); }
bool parse_permission(std::string_view text, Permission* out) {
  return value_of(kPermissions, text, out);
}

bool outranks(Role a, Role b) { return rank(a) > rank(b); }

bool role_allows(ChannelKind kind, Role role, Permission permission) {
  // A direct channel belongs to its two users: both post, delete their own
  // messages and pin; nobody manages its membership or metadata.
  if (kind == ChannelKind::direct) {
    return role != Role::read_only && (permission == Permission::post || permission == Permission::pin);
  }
  switch (permission) {
    case Permission::post:
      if (kind == ChannelKind::broadcast) return rank(role) >= rank(Role::admin);
      return rank(role) >= rank(Role::member);
    case Permission::invite:
    case Permission::remove:
    case Permission::ban:
    case Permission::mute:
    case Permission::delete_others:
    case Permission::pin:
      return rank(role) >= rank(Role::moderator);
    case Permission::edit_meta:
    case Permission::change_roles:
      return rank(role) >= rank(Role::admin);
  }
  return false;
}

}  // namespace parley
