// cereal archives over rapidjson for the JSON text frames of parley.v1.
//
// cereal's own JSONInputArchive cannot report parse errors, accepts invalid
// UTF-8 and NaN, truncates strings at NUL bytes and writes std::optional as an
// object. These two small archives keep cereal's serialize() functions and
// give the protocol the validation it needs: every field is checked for
// presence and type, errors name the field, and optional fields are simply
// left out when empty (see optional_field).
//
// Include only from src/protocol/codec.cpp: cereal templates stay in one
// translation unit.
#pragma once

#include <cereal/cereal.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace parley::wire::json {

// Thrown inside the codec only, caught by decode(); never crosses the API.
struct FieldError {
  const char* code;
  std::string message;
};

// ---- output ----------------------------------------------------------------

class JsonOut : public cereal::OutputArchive<JsonOut>, public cereal::traits::TextArchive {
 public:
  using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
  explicit JsonOut(Writer& writer) : cereal::OutputArchive<JsonOut>(this), writer_(writer) {}

  void start_node() { nodes_.push_back(Node::pending_object); }
  void make_array() { nodes_.back() = Node::pending_array; }
  void finish_array_or_object() {
    open_pending();
    if (nodes_.back() == Node::array) {
      writer_.EndArray();
    } else {
      writer_.EndObject();
    }
    nodes_.pop_back();
  }
  void key(const char* name) {
    open_pending();
    writer_.Key(name);
  }
  void value(bool v) { open_pending(), writer_.Bool(v); }
  void value(std::uint64_t v) { open_pending(), writer_.Uint64(v); }
  void value(std::int64_t v) { open_pending(), writer_.Int64(v); }
  void value(std::uint32_t v) { open_pending(), writer_.Uint(v); }
  void value(std::int32_t v) { open_pending(), writer_.Int(v); }
  void value(const std::string& v) {
    open_pending();
    writer_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }

 private:
  enum class Node { pending_object, pending_array, object, array };
  // Opens every node started but not yet written, outermost first.
  void open_pending() {
    for (Node& node : nodes_) {
      if (node == Node::pending_object) {
        writer_.StartObject();
        node = Node::object;
      } else if (node == Node::pending_array) {
        writer_.StartArray();
        node = Node::array;
      }
    }
  }
  Writer& writer_;
  std::vector<Node> nodes_;
};

// ---- input -----------------------------------------------------------------

class JsonIn : public cereal::InputArchive<JsonIn>, public cereal::traits::TextArchive {
 public:
  using Utf8Check = bool (*)(std::string_view);
  JsonIn(const rapidjson::Value& object, Utf8Check valid_utf8)
      : cereal::InputArchive<JsonIn>(this), valid_utf8_(valid_utf8) {
    frames_.push_back({&object, 0, "message"});
  }

  void set_name(const char* name) { next_name_ = name; }
  bool has_member(const char* name) const {
    const rapidjson::Value& top = *frames_.back().node;
    if (!top.IsObject()) return false;
    auto it = top.FindMember(name);
    return it != top.MemberEnd() && !it->value.IsNull();
  }

  // The value the next load reads: the named member of the current object or
  // the next element of the current array.
  const rapidjson::Value& next(std::string* what) {
    Frame& top = frames_.back();
    if (next_name_ != nullptr) {
      const char* name = next_name_;
      next_name_ = nullptr;
      *what = name;
      auto it = top.node->FindMember(name);
      if (it == top.node->MemberEnd() || it->value.IsNull()) {
        throw FieldError{"missing_field", "field \"" + *what + "\" is missing"};
      }
      return it->value;
    }
    *what = top.name + "[" + std::to_string(top.index) + "]";
    if (!top.node->IsArray() || top.index >= top.node->Size()) {
      throw FieldError{"bad_field", "\"" + top.name + "\" has too few elements"};
    }
    return (*top.node)[top.index++];
  }

  void start_node() {
    std::string what;
    const rapidjson::Value& v = next(&what);
    if (!v.IsObject() && !v.IsArray()) {
      throw FieldError{"bad_field", "field \"" + what + "\" must be an object or an array"};
    }
    frames_.push_back({&v, 0, what});
  }
  void finish_node() { frames_.pop_back(); }
  std::size_t array_size() {
    const Frame& top = frames_.back();
    if (!top.node->IsArray()) {
      throw FieldError{"bad_field", "field \"" + top.name + "\" must be an array"};
    }
    return top.node->Size();
  }

  void load(bool& out) {
    std::string what;
    const auto& v = next(&what);
    if (!v.IsBool()) type_error(what, "a boolean");
    out = v.GetBool();
  }
  void load(std::uint64_t& out) {
    std::string what;
    const auto& v = next(&what);
    if (!v.IsUint64()) type_error(what, "a non-negative integer");
    out = v.GetUint64();
  }
  void load(std::int64_t& out) {
    std::string what;
    const auto& v = next(&what);
    if (!v.IsInt64()) type_error(what, "an integer");
    out = v.GetInt64();
  }
  void load(std::uint32_t& out) {
    std::string what;
    const auto& v = next(&what);
    if (!v.IsUint()) type_error(what, "a non-negative 32-bit integer");
    out = v.GetUint();
  }
  void load(std::int32_t& out) {
    std::string what;
    const auto& v = next(&what);
    if (!v.IsInt()) type_error(what, "a 32-bit integer");
    out = v.GetInt();
  }
  void load(std::string& out) {
    std::string what;
    const auto& v = next(&what);
    if (!v.IsString()) type_error(what, "a string");
    out.assign(v.GetString(), v.GetStringLength());
    // Raw bytes were validated by the parser, but an escape can still spell a
    // lone low surrogate ("\udc00"), which rapidjson turns into invalid UTF-8.
    if (!valid_utf8_(out)) {
      throw FieldError{"invalid_utf8", "field \"" + what + "\" is not valid utf-8"};
    }
  }

 private:
  [[noreturn]] static void type_error(const std::string& what, const char* expected) {
    throw FieldError{"bad_field", "field \"" + what + "\" must be " + expected};
  }
  struct Frame {
    const rapidjson::Value* node;
    rapidjson::SizeType index;
    std::string name;
  };
  std::vector<Frame> frames_;
  const char* next_name_ = nullptr;
  Utf8Check valid_utf8_;
};

// ---- cereal hooks ------------------------------------------------------------

template <class T>
struct is_plain_class
    : std::bool_constant<std::is_class_v<T> && !std::is_same_v<T, std::string>> {};
template <class T>
struct is_plain_class<cereal::NameValuePair<T>> : std::false_type {};
template <class T>
struct is_plain_class<cereal::SizeTag<T>> : std::false_type {};

template <class T>
inline void prologue(JsonOut&, const cereal::NameValuePair<T>&) {}
template <class T>
inline void epilogue(JsonOut&, const cereal::NameValuePair<T>&) {}
template <class T>
inline void prologue(JsonIn&, const cereal::NameValuePair<T>&) {}
template <class T>
inline void epilogue(JsonIn&, const cereal::NameValuePair<T>&) {}
template <class T>
inline void prologue(JsonOut&, const cereal::SizeTag<T>&) {}
template <class T>
inline void epilogue(JsonOut&, const cereal::SizeTag<T>&) {}
template <class T>
inline void prologue(JsonIn&, const cereal::SizeTag<T>&) {}
template <class T>
inline void epilogue(JsonIn&, const cereal::SizeTag<T>&) {}

template <class T, std::enable_if_t<!is_plain_class<T>::value, int> = 0>
inline void prologue(JsonOut&, const T&) {}
template <class T, std::enable_if_t<!is_plain_class<T>::value, int> = 0>
inline void epilogue(JsonOut&, const T&) {}
template <class T, std::enable_if_t<!is_plain_class<T>::value, int> = 0>
inline void prologue(JsonIn&, const T&) {}
template <class T, std::enable_if_t<!is_plain_class<T>::value, int> = 0>
inline void epilogue(JsonIn&, const T&) {}

template <class T, std::enable_if_t<is_plain_class<T>::value, int> = 0>
inline void prologue(JsonOut& ar, const T&) { ar.start_node(); }
template <class T, std::enable_if_t<is_plain_class<T>::value, int> = 0>
inline void epilogue(JsonOut& ar, const T&) { ar.finish_array_or_object(); }
template <class T, std::enable_if_t<is_plain_class<T>::value, int> = 0>
inline void prologue(JsonIn& ar, const T&) { ar.start_node(); }
template <class T, std::enable_if_t<is_plain_class<T>::value, int> = 0>
inline void epilogue(JsonIn& ar, const T&) { ar.finish_node(); }

template <class T>
inline void CEREAL_SAVE_FUNCTION_NAME(JsonOut& ar, const cereal::NameValuePair<T>& nvp) {
  ar.key(nvp.name);
  ar(nvp.value);
}
template <class T>
inline void CEREAL_LOAD_FUNCTION_NAME(JsonIn& ar, cereal::NameValuePair<T>& nvp) {
  ar.set_name(nvp.name);
  ar(nvp.value);
}
template <class T>
inline void CEREAL_SAVE_FUNCTION_NAME(JsonOut& ar, const cereal::SizeTag<T>&) {
  ar.make_array();
}
template <class T>
inline void CEREAL_LOAD_FUNCTION_NAME(JsonIn& ar, cereal::SizeTag<T>& tag) {
  tag.size = static_cast<std::remove_reference_t<T>>(ar.array_size());
}
template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
inline void CEREAL_SAVE_FUNCTION_NAME(JsonOut& ar, const T& v) {
  ar.value(v);
}
template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
inline void CEREAL_LOAD_FUNCTION_NAME(JsonIn& ar, T& v) {
  ar.load(v);
}
inline void CEREAL_SAVE_FUNCTION_NAME(JsonOut& ar, const std::string& s) { ar.value(s); }
inline void CEREAL_LOAD_FUNCTION_NAME(JsonIn& ar, std::string& s) { ar.load(s); }

// An optional field: left out when empty; absent or null reads as empty.
template <class T>
inline void optional_field(JsonOut& ar, const char* name, std::optional<T>& value) {
  if (value) ar(cereal::make_nvp(name, *value));
}
template <class T>
inline void optional_field(JsonIn& ar, const char* name, std::optional<T>& value) {
  if (ar.has_member(name)) {
    T loaded{};
    ar(cereal::make_nvp(name, loaded));
    value = std::move(loaded);
  } else {
    value.reset();
  }
}

}  // namespace parley::wire::json

CEREAL_REGISTER_ARCHIVE(parley::wire::json::JsonOut)
CEREAL_REGISTER_ARCHIVE(parley::wire::json::JsonIn)
