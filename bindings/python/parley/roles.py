"""Channel permissions and name rules, without a client (docs/channels.md).

The server's own tables and checks, so that a UI offers only what will be
accepted and rejects a bad name before any request is made:

    parley.role_allows("public", "moderator", "ban")   # True
    parley.outranks("admin", "moderator")              # True
    parley.check_channel_name("gen eral")              # raises InvalidArgumentError

Kinds, roles and permissions are the strings Client uses ("public",
"member", "post", ...) or their C values. Safe to call from any thread,
including from inside the client's callbacks.
"""

import ctypes

from . import _lib
from ._lib import c_int, check, enc
from .client import CHANNEL_KINDS, PERMISSIONS, ROLES, _enum


def role_allows(kind, role, permission):
    """True when `role` grants `permission` in a channel of `kind` (the
    permission table; acting on another member also needs outranks())."""
    out = c_int()
    check(_lib.lib().role_allows(ctypes.byref(out), _enum(CHANNEL_KINDS, kind, "channel kind"),
                                 _enum(ROLES, role, "role"),
                                 _enum(PERMISSIONS, permission, "permission")))
    return bool(out.value)


def outranks(a, b):
    """True when role `a` ranks strictly above role `b`
    (owner > admin > moderator > member > read_only)."""
    out = c_int()
    check(_lib.lib().role_outranks(ctypes.byref(out), _enum(ROLES, a, "role"),
                                   _enum(ROLES, b, "role")))
    return bool(out.value)


def check_channel_name(name):
    """None when `name` is a valid channel name; else raises
    InvalidArgumentError (reason "invalid_name") saying what is wrong."""
    check(_lib.lib().channel_name_check(enc(name)))


def check_user_name(name):
    """None when `name` is a valid user name; else raises
    InvalidArgumentError (reason "invalid_user") saying what is wrong."""
    check(_lib.lib().user_name_check(enc(name)))
