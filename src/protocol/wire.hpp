// The wire messages of protocol parley.v1 as plain structs, shared by the
// client and the server. docs/protocol.md is their specification; codec.hpp
// turns them into JSON text frames and back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace parley::wire {

inline constexpr const char* kSubprotocol = "parley.v1";
inline constexpr std::size_t kMaxTextBytes = 8192;
inline constexpr std::uint32_t kMaxHistoryLimit = 500;
inline constexpr std::size_t kDefaultMaxFrame = 64 * 1024;
// A history reply is one frame of at most about this many bytes (clients
// accept frames of several MiB; client-to-server frames stay small).
inline constexpr std::size_t kMaxHistoryPageBytes = 1024 * 1024;

// ---- client to server -------------------------------------------------------

struct Auth {
  std::uint64_t rid = 0;
  std::string token;
  std::optional<std::string> device;  // the device's stable id
  std::optional<std::string> client;  // free-form software name, for logs
};
struct CreateChannel {
  std::uint64_t rid = 0;
  std::string channel;
};
struct JoinChannel {
  std::uint64_t rid = 0;
  std::string channel;
};
struct LeaveChannel {
  std::uint64_t rid = 0;
  std::string channel;
};
struct Send {
  std::uint64_t rid = 0;
  std::string channel;
  std::string id;  // 32 lowercase hex digits
  std::string text;
};
// Events of `channel` with after < seq < before, newest first when only
// `before` is given, oldest first otherwise; at most `limit`.
struct History {
  std::uint64_t rid = 0;
  std::string channel;
  std::optional<std::uint64_t> before;
  std::optional<std::uint64_t> after;
  std::uint32_t limit = 50;
};
struct ListChannels {
  std::uint64_t rid = 0;
};

// The user is typing (active) or stopped. Never stored; relayed to the
// members connected now. No reply unless refused.
struct Typing {
  std::uint64_t rid = 0;
  std::string channel;
  bool active = true;
};
// A receipt cursor: kind "delivered" (this device has received the channel up
// to seq) or "read" (this user has read it up to seq). Monotonic: the server
// keeps the highest. Reply: ok with seq = the cursor now stored.
struct Receipt {
  std::uint64_t rid = 0;
  std::string channel;
  std::string kind;
  std::uint64_t seq = 0;
};
// The channel's members and their latest receipt cursors. Reply: receipts.
struct ListReceipts {
  std::uint64_t rid = 0;
  std::string channel;
};

using ClientMessage = std::variant<Auth, CreateChannel, JoinChannel, LeaveChannel, Send, History,
                                   ListChannels, Typing, Receipt, ListReceipts>;

// ---- server to client -------------------------------------------------------

// One entry of a channel's sequence. kind: "message", "create", "join", "leave".
struct ChannelEvent {
  std::string channel;
  std::uint64_t seq = 0;
  std::string kind;
  std::string sender;
  std::int64_t ts = 0;              // server time, ms since the Unix epoch
  std::optional<std::string> id;    // kind "message" only
  std::optional<std::string> text;  // kind "message" only
};
struct ChannelState {
  std::string channel;
  std::uint64_t last_seq = 0;
};
struct Welcome {
  std::uint64_t rid = 0;
  std::string user;
  std::string device;
  std::int64_t server_time = 0;
  std::uint64_t max_frame = 0;
  std::vector<ChannelState> channels;  // the user's memberships
};
// Reply to create, join and leave. seq: the membership event, 0 for a no-op.
struct Ok {
  std::uint64_t rid = 0;
  std::string channel;
  std::uint64_t seq = 0;
  std::uint64_t last_seq = 0;
};
// Reply to send. duplicate: the id was seen before; seq and ts are the original.
struct Ack {
  std::uint64_t rid = 0;
  std::string channel;
  std::string id;
  std::uint64_t seq = 0;
  std::int64_t ts = 0;
  bool duplicate = false;
};
struct HistoryPage {
  std::uint64_t rid = 0;
  std::string channel;
  std::uint64_t last_seq = 0;
  std::vector<ChannelEvent> events;  // ascending seq
};
struct ChannelList {
  std::uint64_t rid = 0;
  std::vector<ChannelState> channels;
};
struct Error {
  std::optional<std::uint64_t> rid;  // the request refused, if any
  std::string code;
  std::string message;
  std::optional<std::string> id;     // the message id, for a refused send
};

// Relayed typing signal (type "typing").
struct TypingEvent {
  std::string channel;
  std::string user;
  bool active = true;
};
// A receipt cursor moved (type "receipt"). device: for kind "delivered".
struct ReceiptEvent {
  std::string channel;
  std::string user;
  std::string kind;
  std::uint64_t seq = 0;
  std::optional<std::string> device;
};
struct ReceiptCursor {
  std::string user;
  std::optional<std::string> device;  // for delivered cursors
  std::uint64_t seq = 0;
};
// Reply to receipts (type "receipts").
struct ReceiptList {
  std::uint64_t rid = 0;
  std::string channel;
  std::vector<std::string> members;
  std::vector<ReceiptCursor> read;       // one per user
  std::vector<ReceiptCursor> delivered;  // one per user and device
};

using ServerMessage = std::variant<Welcome, Ok, Ack, HistoryPage, ChannelList, Error, ChannelEvent,
                                   TypingEvent, ReceiptEvent, ReceiptList>;

// ---- error codes (docs/errors.md) -----------------------------------------

namespace code {
inline constexpr const char* kBadFrame = "bad_frame";
inline constexpr const char* kInvalidUtf8 = "invalid_utf8";
inline constexpr const char* kFrameTooLarge = "frame_too_large";
inline constexpr const char* kBinaryFrame = "binary_frame";
inline constexpr const char* kUnknownType = "unknown_type";
inline constexpr const char* kMissingField = "missing_field";
inline constexpr const char* kBadField = "bad_field";
inline constexpr const char* kNotAuthenticated = "not_authenticated";
inline constexpr const char* kAlreadyAuthenticated = "already_authenticated";
inline constexpr const char* kInvalidToken = "invalid_token";
inline constexpr const char* kTokenExpired = "token_expired";
inline constexpr const char* kInvalidName = "invalid_name";
inline constexpr const char* kInvalidId = "invalid_id";
inline constexpr const char* kInvalidText = "invalid_text";
inline constexpr const char* kInvalidLimit = "invalid_limit";
inline constexpr const char* kInvalidKind = "invalid_kind";
inline constexpr const char* kInvalidSeq = "invalid_seq";
inline constexpr const char* kChannelExists = "channel_exists";
inline constexpr const char* kNoSuchChannel = "no_such_channel";
inline constexpr const char* kNotMember = "not_member";
inline constexpr const char* kShuttingDown = "shutting_down";
inline constexpr const char* kInternal = "internal";
}  // namespace code

// WebSocket close codes the server uses (RFC 6455 section 7.4; 4000-4999 are ours).
namespace close_code {
inline constexpr int kNormal = 1000;
inline constexpr int kGoingAway = 1001;      // server shutting down
inline constexpr int kPolicy = 1008;         // protocol violation
inline constexpr int kInvalidToken = 4001;
inline constexpr int kTokenExpired = 4002;
inline constexpr int kNotAuthenticated = 4003;
}  // namespace close_code

}  // namespace parley::wire
