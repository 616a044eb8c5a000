// The only translation unit that instantiates cereal for the protocol.
#include "protocol/codec.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>

#include <cereal/types/vector.hpp>
#include <string_view>
#include <type_traits>

#include "protocol/json_archive.hpp"

namespace parley::wire {

using json::optional_field;
using cereal::make_nvp;

// ---- field lists (one per wire struct; docs/protocol.md lists the same) ----

template <class Ar>
void serialize(Ar& ar, Auth& m) {
  ar(make_nvp("rid", m.rid), make_nvp("token", m.token));
  optional_field(ar, "device", m.device);
  optional_field(ar, "client", m.client);
}
template <class Ar>
void serialize(Ar& ar, CreateChannel& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel));
}
template <class Ar>
void serialize(Ar& ar, JoinChannel& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel));
}
template <class Ar>
void serialize(Ar& ar, LeaveChannel& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel));
}
template <class Ar>
void serialize(Ar& ar, Send& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("id", m.id),
     make_nvp("text", m.text));
}
template <class Ar>
void serialize(Ar& ar, History& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel));
  optional_field(ar, "before", m.before);
  optional_field(ar, "after", m.after);
  ar(make_nvp("limit", m.limit));
}
template <class Ar>
void serialize(Ar& ar, ListChannels& m) {
  ar(make_nvp("rid", m.rid));
}
template <class Ar>
void serialize(Ar& ar, Typing& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("active", m.active));
}
template <class Ar>
void serialize(Ar& ar, Receipt& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("kind", m.kind),
     make_nvp("seq", m.seq));
}
template <class Ar>
void serialize(Ar& ar, ListReceipts& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel));
}
template <class Ar>
void serialize(Ar& ar, TypingEvent& m) {
  ar(make_nvp("channel", m.channel), make_nvp("user", m.user), make_nvp("active", m.active));
}
template <class Ar>
void serialize(Ar& ar, ReceiptEvent& m) {
  ar(make_nvp("channel", m.channel), make_nvp("user", m.user), make_nvp("kind", m.kind),
     make_nvp("seq", m.seq));
  optional_field(ar, "device", m.device);
}
template <class Ar>
void serialize(Ar& ar, ReceiptCursor& m) {
  ar(make_nvp("user", m.user));
  optional_field(ar, "device", m.device);
  ar(make_nvp("seq", m.seq));
}
template <class Ar>
void serialize(Ar& ar, ReceiptList& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("members", m.members),
     make_nvp("read", m.read), make_nvp("delivered", m.delivered));
}
template <class Ar>
void serialize(Ar& ar, ChannelEvent& m) {
  ar(make_nvp("channel", m.channel), make_nvp("seq", m.seq), make_nvp("kind", m.kind),
     make_nvp("sender", m.sender), make_nvp("ts", m.ts));
  optional_field(ar, "id", m.id);
  optional_field(ar, "text", m.text);
}
template <class Ar>
void serialize(Ar& ar, ChannelState& m) {
  ar(make_nvp("channel", m.channel), make_nvp("last_seq", m.last_seq));
}
template <class Ar>
void serialize(Ar& ar, Welcome& m) {
  ar(make_nvp("rid", m.rid), make_nvp("user", m.user), make_nvp("device", m.device),
     make_nvp("server_time", m.server_time), make_nvp("max_frame", m.max_frame),
     make_nvp("channels", m.channels));
}
template <class Ar>
void serialize(Ar& ar, Ok& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("seq", m.seq),
     make_nvp("last_seq", m.last_seq));
}
template <class Ar>
void serialize(Ar& ar, Ack& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("id", m.id),
     make_nvp("seq", m.seq), make_nvp("ts", m.ts));
  // "duplicate" is written only when true and optional on input.
  std::optional<bool> dup;
  if (m.duplicate) dup = true;
  optional_field(ar, "duplicate", dup);
  m.duplicate = dup.value_or(false);
}
template <class Ar>
void serialize(Ar& ar, HistoryPage& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channel", m.channel), make_nvp("last_seq", m.last_seq),
     make_nvp("events", m.events));
}
template <class Ar>
void serialize(Ar& ar, ChannelList& m) {
  ar(make_nvp("rid", m.rid), make_nvp("channels", m.channels));
}
template <class Ar>
void serialize(Ar& ar, Error& m) {
  optional_field(ar, "rid", m.rid);
  ar(make_nvp("code", m.code), make_nvp("message", m.message));
  optional_field(ar, "id", m.id);
}

// ---- type names --------------------------------------------------------------

namespace {

template <class T> constexpr const char* kName = nullptr;
template <> constexpr const char* kName<Auth> = "auth";
template <> constexpr const char* kName<CreateChannel> = "create";
template <> constexpr const char* kName<JoinChannel> = "join";
template <> constexpr const char* kName<LeaveChannel> = "leave";
template <> constexpr const char* kName<Send> = "send";
template <> constexpr const char* kName<History> = "history";
template <> constexpr const char* kName<ListChannels> = "channels";
template <> constexpr const char* kName<Welcome> = "welcome";
template <> constexpr const char* kName<Ok> = "ok";
template <> constexpr const char* kName<Ack> = "ack";
template <> constexpr const char* kName<HistoryPage> = "history";
template <> constexpr const char* kName<ChannelList> = "channels";
template <> constexpr const char* kName<Error> = "error";
template <> constexpr const char* kName<ChannelEvent> = "event";
template <> constexpr const char* kName<Typing> = "typing";
template <> constexpr const char* kName<Receipt> = "receipt";
template <> constexpr const char* kName<ListReceipts> = "receipts";
template <> constexpr const char* kName<TypingEvent> = "typing";
template <> constexpr const char* kName<ReceiptEvent> = "receipt";
template <> constexpr const char* kName<ReceiptList> = "receipts";

template <class Variant>
std::string encode_variant(const Variant& message) {
  rapidjson::StringBuffer buffer;
  json::JsonOut::Writer writer(buffer);
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        json::JsonOut ar(writer);
        writer.StartObject();
        writer.Key("type");
        writer.String(kName<T>);
        serialize(ar, const_cast<T&>(m));  // serialize() only reads when saving
        writer.EndObject();
      },
      message);
  return std::string(buffer.GetString(), buffer.GetSize());
}

// Decodes one object of a frame as whichever alternative of Variant its
// "type" names.
template <class Variant, std::size_t I = 0>
bool decode_as(std::string_view type, json::JsonIn& ar, Variant* out) {
  if constexpr (I < std::variant_size_v<Variant>) {
    using T = std::variant_alternative_t<I, Variant>;
    if (type == kName<T>) {
      T value{};
      serialize(ar, value);
      *out = std::move(value);
      return true;
    }
    return decode_as<Variant, I + 1>(type, ar, out);
  } else {
    return false;
  }
}

template <class Variant>
Decoded<Variant> decode_item(const rapidjson::Value& item) {
  DecodeError error;
  if (!item.IsObject()) {
    error.code = code::kBadFrame;
    error.message = "a frame must hold JSON objects";
    return error;
  }
  auto rid = item.FindMember("rid");
  if (rid != item.MemberEnd() && rid->value.IsUint64()) error.rid = rid->value.GetUint64();
  auto type = item.FindMember("type");
  if (type == item.MemberEnd()) {
    error.code = code::kMissingField;
    error.message = "field \"type\" is missing";
    return error;
  }
  if (!type->value.IsString()) {
    error.code = code::kBadField;
    error.message = "field \"type\" must be a string";
    return error;
  }
  std::string_view name(type->value.GetString(), type->value.GetStringLength());
  try {
    json::JsonIn ar(item, &is_valid_utf8);
    Variant out;
    if (decode_as(name, ar, &out)) return out;
  } catch (const json::FieldError& e) {
    error.code = e.code;
    error.message = e.message;
    return error;
  } catch (const std::exception& e) {  // allocation failure and the like
    error.code = code::kBadFrame;
    error.message = e.what();
    return error;
  }
  error.code = code::kUnknownType;
  std::string shown(name.substr(0, 64));
  if (!is_valid_utf8(shown)) shown = "?";
  error.message = "unknown frame type \"" + shown + "\"";
  return error;
}

template <class Variant>
std::vector<Decoded<Variant>> decode_frame(std::string_view frame) {
  std::vector<Decoded<Variant>> out;
  rapidjson::Document doc;
  // Iterative: deep nesting cannot exhaust the stack. No kParseNanAndInfFlag:
  // NaN and Infinity are refused. Strings must be valid UTF-8.
  constexpr unsigned kFlags = rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag;
  doc.Parse<kFlags>(frame.data(), frame.size());
  if (doc.HasParseError()) {
    DecodeError error;
    auto code = doc.GetParseError();
    if (code == rapidjson::kParseErrorStringInvalidEncoding ||
        code == rapidjson::kParseErrorStringUnicodeSurrogateInvalid) {
      error.code = code::kInvalidUtf8;
      error.message = "invalid utf-8 at offset " + std::to_string(doc.GetErrorOffset());
    } else {
      error.code = code::kBadFrame;
      error.message = std::string("malformed json at offset ") +
                      std::to_string(doc.GetErrorOffset()) + ": " +
                      rapidjson::GetParseError_En(code);
    }
    out.push_back(std::move(error));
    return out;
  }
  if (doc.IsArray()) {
    if (doc.Empty()) {
      out.push_back(DecodeError{code::kBadFrame, "empty array frame", std::nullopt});
    }
    for (const auto& item : doc.GetArray()) out.push_back(decode_item<Variant>(item));
  } else {
    out.push_back(decode_item<Variant>(doc));
  }
  return out;
}

}  // namespace

std::vector<Decoded<ClientMessage>> decode_client_frame(std::string_view frame) {
  return decode_frame<ClientMessage>(frame);
}

std::vector<Decoded<ServerMessage>> decode_server_frame(std::string_view frame) {
  return decode_frame<ServerMessage>(frame);
}

std::string encode(const ClientMessage& message) { return encode_variant(message); }
std::string encode(const ServerMessage& message) { return encode_variant(message); }

std::string pack(const std::vector<std::shared_ptr<const std::string>>& items) {
  if (items.size() == 1) return *items.front();
  std::size_t size = 2 + items.size();
  for (const auto& item : items) size += item->size();
  std::string frame;
  frame.reserve(size);
  frame.push_back('[');
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i != 0) frame.push_back(',');
    frame.append(*items[i]);
  }
  frame.push_back(']');
  return frame;
}

const char* type_name(const ClientMessage& message) {
  return std::visit([](const auto& m) { return kName<std::decay_t<decltype(m)>>; }, message);
}

const char* type_name(const ServerMessage& message) {
  return std::visit([](const auto& m) { return kName<std::decay_t<decltype(m)>>; }, message);
}

namespace {
struct NullOutput {
  void Put(char) {}
};
}  // namespace

bool is_valid_utf8(std::string_view text) {
  rapidjson::MemoryStream in(text.data(), text.size());
  NullOutput sink;
  while (in.Tell() < text.size()) {
    if (!rapidjson::UTF8<>::Validate(in, sink)) return false;
  }
  return true;
}

}  // namespace parley::wire
