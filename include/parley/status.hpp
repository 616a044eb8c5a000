// parley/status.hpp - errors as values.
//
//   parley::Result<parley::MessageId> r = client->send("general", "hi");
//   if (!r) std::fprintf(stderr, "%s: %s\n", r.status().reason().c_str(),
//                        r.status().message().c_str());
//
// Status and Result<T> are plain values: safe to copy and to move between threads.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

#include "parley/export.hpp"

namespace parley {

// What kind of failure, for callers that handle kinds differently. The finer,
// stable machine-readable name of a failure (the protocol's error code such as
// "channel_exists") is Status::reason().
enum class StatusCode {
  ok = 0,
  invalid_argument,   // bad name, bad id, empty text, bad command
  not_found,          // no such channel
  already_exists,     // channel exists
  unauthenticated,    // token forged, malformed or refused
  token_expired,      // token past its expiry
  forbidden,          // not a member, not allowed
  offline,            // needs the server and none is reachable
  timeout,            // no answer in time
  rate_limited,       // slowed down by the server
  protocol_error,     // the peer broke the protocol
  corrupt,            // corrupt cache or data
  io_error,           // file system or SQLite failure
  cancelled,          // the client was closed while the request was open
  internal,           // anything else
};

// The default reason string of a code ("invalid_argument", "offline", ...).
PARLEY_EXPORT const char* to_string(StatusCode code);

class PARLEY_EXPORT Status {
 public:
  Status() = default;
  // reason: the stable error code (e.g. "channel_exists"); empty means to_string(code).
  Status(StatusCode code, std::string message, std::string reason = {})
      : code_(code), message_(std::move(message)), reason_(std::move(reason)) {}

  static Status ok_status() { return Status(); }

  bool ok() const { return code_ == StatusCode::ok; }
  explicit operator bool() const { return ok(); }
  StatusCode code() const { return code_; }
  // One line, lower case, naming the offending value.
  const std::string& message() const { return message_; }
  // Stable machine-readable code: the protocol's error code when the server
  // refused, otherwise the name of code().
  std::string reason() const { return reason_.empty() ? parley::to_string(code_) : reason_; }
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::ok;
  std::string message_;
  std::string reason_;
};

// A value or the Status saying why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Status& status() const { return status_; }
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace parley
