// The property both frame decoders keep: whatever the bytes, decoding returns
// one result per item; errors carry a code and a UTF-8 message (the server
// echoes it to the peer); and every message that decodes encodes to an object
// that decodes to itself (same encoding), alone or packed with the others.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fuzz_support.hpp"
#include "protocol/codec.hpp"

namespace parley::fuzz {

template <class Message, class Decode>
void check_decoder(std::string_view frame, Decode decode) {
  auto items = decode(frame);
  FUZZ_CHECK(!items.empty(), "a frame decodes to at least one result");
  std::vector<std::shared_ptr<const std::string>> encoded;
  for (const auto& item : items) {
    if (const auto* error = std::get_if<wire::DecodeError>(&item)) {
      FUZZ_CHECK(!error->code.empty(), "error without a code: %s", error->message.c_str());
      FUZZ_CHECK(wire::is_valid_utf8(error->message), "error message is not utf-8");
      continue;
    }
    const Message& message = std::get<Message>(item);
    auto once = std::make_shared<const std::string>(wire::encode(message));
    auto again = decode(*once);
    FUZZ_CHECK(again.size() == 1, "re-encoded message decodes to %zu items: %s", again.size(),
               once->c_str());
    const auto* back = std::get_if<Message>(&again[0]);
    FUZZ_CHECK(back != nullptr, "re-encoded message does not decode (%s): %s",
               std::get<wire::DecodeError>(again[0]).message.c_str(), once->c_str());
    std::string twice = wire::encode(*back);
    FUZZ_CHECK(twice == *once, "round trip changed the message:\n  %s\n  %s", once->c_str(),
               twice.c_str());
    encoded.push_back(std::move(once));
  }
  if (encoded.size() > 1) {
    auto packed = decode(wire::pack(encoded));
    FUZZ_CHECK(packed.size() == encoded.size(), "packed frame decodes to %zu of %zu items",
               packed.size(), encoded.size());
    for (const auto& item : packed) {
      FUZZ_CHECK(std::holds_alternative<Message>(item), "a packed item does not decode");
    }
  }
}

}  // namespace parley::fuzz
