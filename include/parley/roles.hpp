// parley/roles.hpp - channel kinds, member roles and what each role may do.
//
//   if (parley::role_allows(kind, role, parley::Permission::ban)) show_ban_button();
//
// The server enforces the same table (docs/channels.md, "Permissions"); the
// SDK exposes it so that a UI offers only what the server will accept.
#pragma once

#include <string>
#include <string_view>

#include "parley/export.hpp"

namespace parley {

// public_channel: anyone may join. private_channel: members are invited.
// direct: exactly two users, created by the first direct message and found
// again by the pair. broadcast: anyone may join and read; only owners and
// admins post.
enum class ChannelKind { public_channel, private_channel, direct, broadcast };

// From the highest rank to the lowest.
enum class Role { owner, admin, moderator, member, read_only };

enum class Permission {
  post,           // send messages
  invite,         // add a user to the channel
  remove,         // remove (kick) a member
  ban,            // ban and unban
  mute,           // mute and unmute
  edit_meta,      // name, topic, description, avatar, custom data
  delete_others,  // delete other users' messages (anyone may delete their own)
  pin,            // pin and unpin messages
  change_roles,   // give another member a role below one's own
};

// Wire names: "public", "private", "direct", "broadcast"; "owner", "admin",
// "moderator", "member", "read_only"; "post", "invite", ... as spelled above.
PARLEY_EXPORT const char* to_string(ChannelKind kind);
PARLEY_EXPORT const char* to_string(Role role);
PARLEY_EXPORT const char* to_string(Permission permission);
PARLEY_EXPORT bool parse_channel_kind(std::string_view text, ChannelKind* out);
PARLEY_EXPORT bool parse_role(std::string_view text, Role* out);
PARLEY_EXPORT bool parse_permission(std::string_view text, Permission* out);

// Whether `role` grants `permission` in a channel of `kind`. Acting on another
// member (remove, ban, mute, change their role, delete their message) also
// needs a higher rank than theirs: see outranks().
PARLEY_EXPORT bool role_allows(ChannelKind kind, Role role, Permission permission);
// True when `a` ranks strictly above `b` (owner > admin > moderator > member > read_only).
PARLEY_EXPORT bool outranks(Role a, Role b);

}  // namespace parley
