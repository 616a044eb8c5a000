#include "crypto/franking.hpp"

#include <sodium.h>



namespace parley::crypto {
namespace {

void put_u16(Bytes& out, std::size_t n) {
  out.push_back(static_cast<std::uint8_t>((n >> 8) & 0xff));
  out.push_back(static_cast<std::uint8_t>(n & 0xff));
}
void put_bytes(Bytes& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }

bool parse_id(std::string_view hex, std::uint8_t out[16]) {
  if (hex.size() != 32) return false;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  std::size_t len = 0;
  return sodium_hex2bin(out, 16, hex.data(), hex.size(), nullptr, &len, nullptr) == 0 && len == 16;
}

}  // namespace

Key32 new_franking_key() {
  Key32 k{};
  sodium_ready();
  randombytes_buf(k.data(), k.size());
  return k;
}

bool franking_commit(const Key32& key, std::string_view id_hex, std::string_view sender,
                     std::string_view channel, std::string_view text, Key32* out) {
  std::uint8_t id[16];
  if (!parse_id(id_hex, id) || sender.size() > 255 || channel.size() > 255) return false;
  static constexpr char kLabel[] = "parley-frank-v1";
  Bytes data;
  data.reserve(sizeof kLabel + 16 + 2 + sender.size() + channel.size() + text.size());
  data.insert(data.end(), kLabel, kLabel + sizeof kLabel);  // with its 0x00
  data.insert(data.end(), id, id + 16);
  data.push_back(static_cast<std::uint8_t>(sender.size()));
  put_bytes(data, sender);
  data.push_back(static_cast<std::uint8_t>(channel.size()));
  put_bytes(data, channel);
  put_bytes(data, text);
  *out = hmac_sha256(key, data);
  sodium_memzero(data.data(), data.size());
  return true;
}

Key32 franking_tag(const Key32& server_key, const FrankingContext& context, const Key32& commit) {
  static constexpr char kLabel[] = "parley-frank-tag-v1";
  Bytes data;
  data.insert(data.end(), kLabel, kLabel + sizeof kLabel);
  for (std::string_view part : {context.channel, context.id, context.sender, context.device}) {
    put_u16(data, part.size());
    put_bytes(data, part);
  }
  auto ts = static_cast<std::uint64_t>(context.ts);
  for (int shift = 56; shift >= 0; shift -= 8) {
    data.push_back(static_cast<std::uint8_t>((ts >> shift) & 0xff));
  }
  data.insert(data.end(), commit.begin(), commit.end());
  return hmac_sha256(server_key, data);
}

bool equal32(const Key32& a, const Key32& b) { return sodium_memcmp(a.data(), b.data(), 32) == 0; }

}  // namespace parley::crypto
