// JSON text frames of parley.v1: encoding and validating decoding.
//
// A frame holds one message (a JSON object with a "type" member) or several
// (a JSON array of such objects). Decoding validates UTF-8, refuses NaN and
// Infinity, and checks every field's presence and type; unknown fields are
// ignored so that later protocol versions can add some. Absent optional fields
// are left out of the JSON rather than written as null.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "parley/types.hpp"
#include "protocol/wire.hpp"

namespace parley::wire {

// Why (part of) a frame could not be decoded. `rid` is set when the item was
// an object with a usable "rid".
struct DecodeError {
  std::string code;  // one of wire::code
  std::string message;
  std::optional<std::uint64_t> rid;
};

template <typename T>
using Decoded = std::variant<T, DecodeError>;

// Each item of the frame decodes on its own: a bad item gives a DecodeError
// without spoiling the others. A frame that is not JSON at all gives one error.
std::vector<Decoded<ClientMessage>> decode_client_frame(std::string_view frame);
std::vector<Decoded<ServerMessage>> decode_server_frame(std::string_view frame);

// One message as one JSON object.
std::string encode(const ClientMessage& message);
std::string encode(const ServerMessage& message);

// An e2e payload alone, as one JSON object (the server stores it this way).
// decode_e2e: nullopt unless `text` is such an object with every field.
std::string encode_e2e(const E2e& e2e);
std::optional<E2e> decode_e2e(std::string_view text);

// Packs already-encoded objects into one frame: the object itself for one,
// a JSON array for several.
std::string pack(const std::vector<std::shared_ptr<const std::string>>& items);

// The "type" member of each message kind.
const char* type_name(const ClientMessage& message);
const char* type_name(const ServerMessage& message);

// True if `text` is well-formed UTF-8.
bool is_valid_utf8(std::string_view text);

// Channel metadata between the wire and the SDK's type.
ChannelMeta from_wire(const Meta& meta);
Meta to_wire(const ChannelMeta& meta);
// Why `meta` may not be stored, or empty when it may: each field within its
// limit (wire.hpp) and UTF-8, avatar an http(s) URL without spaces or
// controls, data the text of a JSON object.
std::string check_meta(const Meta& meta);

}  // namespace parley::wire
