"""Exceptions mapped from the C API's status codes (parley.h, "Status codes").

Every failure raises a subclass of ParleyError chosen by its code; each
carries `code` (the negative PARLEY_E_* value), `reason` (the stable
machine-readable reason, such as "channel_exists" or "invalid_name") and
`message` (one line for people).

    try:
        client.send("general", "")
    except parley.InvalidArgumentError as e:
        print(e.reason, e.message)
"""

import builtins

OK = 0
E_INVALID_ARGUMENT = -1
E_NOT_FOUND = -2
E_ALREADY_EXISTS = -3
E_UNAUTHENTICATED = -4
E_TOKEN_EXPIRED = -5
E_FORBIDDEN = -6
E_OFFLINE = -7
E_TIMEOUT = -8
E_RATE_LIMITED = -9
E_PROTOCOL = -10
E_CORRUPT = -11
E_IO = -12
E_CANCELLED = -13
E_INTERNAL = -14
E_NOMEM = -15


class ParleyError(Exception):
    """A failure reported by Parley.

    code: the PARLEY_E_* status (negative); reason: the stable reason;
    message: one line; event: the completion event, when the failure came
    with one (a refused request), else None.
    """

    code = None  # set by each subclass

    def __init__(self, message="", reason="", code=None, event=None):
        if code is not None:
            self.code = code
        self.reason = reason or _DEFAULT_REASONS.get(self.code, "unknown")
        self.message = message or self.reason
        self.event = event
        super().__init__(self.message)

    def __str__(self):
        if self.message and self.message != self.reason:
            return "%s: %s" % (self.reason, self.message)
        return self.reason

    def __repr__(self):
        return "%s(code=%r, reason=%r, message=%r)" % (
            type(self).__name__, self.code, self.reason, self.message)


class InvalidArgumentError(ParleyError, ValueError):
    code = E_INVALID_ARGUMENT


class NotFoundError(ParleyError, LookupError):
    code = E_NOT_FOUND


class AlreadyExistsError(ParleyError):
    code = E_ALREADY_EXISTS


class UnauthenticatedError(ParleyError):
    code = E_UNAUTHENTICATED


class TokenExpiredError(ParleyError):
    code = E_TOKEN_EXPIRED


class ForbiddenError(ParleyError):
    code = E_FORBIDDEN


class OfflineError(ParleyError):
    code = E_OFFLINE


class TimeoutError(ParleyError, builtins.TimeoutError):  # noqa: A001 - parley.TimeoutError
    """No answer in time: from Parley (E_TIMEOUT), or a wait of this binding
    (Client.wait_for, Client.wait_request) that ran out."""
    code = E_TIMEOUT


class RateLimitedError(ParleyError):
    code = E_RATE_LIMITED


class ProtocolError(ParleyError):
    code = E_PROTOCOL


class CorruptError(ParleyError):
    code = E_CORRUPT


class IoError(ParleyError):
    code = E_IO


class CancelledError(ParleyError):
    code = E_CANCELLED


class InternalError(ParleyError):
    code = E_INTERNAL


class NoMemoryError(ParleyError, MemoryError):
    code = E_NOMEM


_BY_CODE = {cls.code: cls for cls in (
    InvalidArgumentError, NotFoundError, AlreadyExistsError, UnauthenticatedError,
    TokenExpiredError, ForbiddenError, OfflineError, TimeoutError, RateLimitedError,
    ProtocolError, CorruptError, IoError, CancelledError, InternalError, NoMemoryError)}

_DEFAULT_REASONS = {
    E_INVALID_ARGUMENT: "invalid_argument", E_NOT_FOUND: "not_found",
    E_ALREADY_EXISTS: "already_exists", E_UNAUTHENTICATED: "unauthenticated",
    E_TOKEN_EXPIRED: "token_expired", E_FORBIDDEN: "forbidden", E_OFFLINE: "offline",
    E_TIMEOUT: "timeout", E_RATE_LIMITED: "rate_limited", E_PROTOCOL: "protocol_error",
    E_CORRUPT: "corrupt", E_IO: "io_error", E_CANCELLED: "cancelled",
    E_INTERNAL: "internal", E_NOMEM: "nomem",
}


def error_for(code, reason="", message="", event=None):
    """The exception for status `code` (a ParleyError subclass instance)."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return ParleyError(message, reason, code=code, event=event)
    return cls(message, reason, event=event)
