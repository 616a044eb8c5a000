// LZ77 compression of snapshot text: see lz.hpp for the format.
#include "crdt/lz.hpp"

#include <cstdint>
#include <cstring>
#include <vector>

#include "crdt/varint.hpp"

namespace parley::crdt {

namespace {

constexpr size_t kMinMatch = 4;
constexpr size_t kWindow = 65535;
constexpr int kHashBits = 16;

uint32_t read32(const char* p) {
  uint32_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint32_t hash4(uint32_t v) { return (v * 2654435761u) >> (32 - kHashBits); }

void put_sequence(std::string& out, std::string_view literals, size_t match_len, size_t offset) {
  size_t lit = literals.size();
  size_t extra = match_len >= kMinMatch ? match_len - kMinMatch : 0;
  out.push_back(static_cast<char>((lit < 15 ? lit : 15) << 4 | (extra < 15 ? extra : 15)));
  if (lit >= 15) put_varint(out, lit - 15);
  out.append(literals);
  if (match_len == 0) return;  // the last sequence: literals only
  out.push_back(static_cast<char>(offset & 0xff));
  out.push_back(static_cast<char>(offset >> 8));
  if (extra >= 15) put_varint(out, extra - 15);
}

}  // namespace

std::string lz_compress(std::string_view in) {
  std::string out;
  out.reserve(in.size() / 2 + 16);
  std::vector<int64_t> table(size_t{1} << kHashBits, -1);  // last position of each hash
  const size_t n = in.size();
  size_t anchor = 0;
  size_t i = 0;
  while (i + kMinMatch <= n) {
    uint32_t h = hash4(read32(in.data() + i));
    int64_t candidate = table[h];
    table[h] = static_cast<int64_t>(i);
    if (candidate < 0 || i - static_cast<size_t>(candidate) > kWindow ||
        read32(in.data() + candidate) != read32(in.data() + i)) {
      ++i;
      continue;
    }
    auto from = static_cast<size_t>(candidate);
    size_t len = kMinMatch;
    while (i + len < n && in[from + len] == in[i + len]) ++len;
    put_sequence(out, in.substr(anchor, i - anchor), len, i - from);
    // Remember some positions inside the match too: later text often repeats it.
    for (size_t k = i + 1; k + kMinMatch <= n && k < i + len; k += 2) {
      table[hash4(read32(in.data() + k))] = static_cast<int64_t>(k);
    }
    i += len;
    anchor = i;
  }
  if (anchor < n || n == 0) put_sequence(out, in.substr(anchor), 0, 0);
  return out;
}

bool lz_decompress(std::string_view in, size_t raw_size, std::string* out) {
  out->clear();
  out->reserve(raw_size);
  ByteReader reader(in, "lz");
  while (out->size() < raw_size || (raw_size == 0 && !reader.at_end())) {
    std::string_view token;
    if (!reader.bytes(1, &token)) return false;
    auto t = static_cast<uint8_t>(token[0]);
    uint64_t lit = t >> 4;
    uint64_t extra = 0;
    if (lit == 15 && (!reader.varint(&extra) || extra > raw_size)) return false;
    lit += extra;
    std::string_view literals;
    if (lit > raw_size - out->size() || !reader.bytes(lit, &literals)) return false;
    out->append(literals);
    if (out->size() == raw_size) break;
    std::string_view offset_bytes;
    if (!reader.bytes(2, &offset_bytes)) return false;
    size_t offset = static_cast<uint8_t>(offset_bytes[0]) |
                    static_cast<size_t>(static_cast<uint8_t>(offset_bytes[1])) << 8;
    uint64_t len = (t & 15) + kMinMatch;
    if ((t & 15) == 15 && (!reader.varint(&extra) || extra > raw_size)) return false;
    if ((t & 15) == 15) len += extra;
    if (offset == 0 || offset > out->size() || len > raw_size - out->size()) return false;
    size_t from = out->size() - offset;
    for (size_t k = 0; k < len; ++k) {  // byte by byte: the source may overlap the copy
      char c = (*out)[from + k];
      out->push_back(c);
    }
  }
  return reader.at_end() && out->size() == raw_size;
}

}  // namespace parley::crdt
