// LEB128 varints and a bounds-checked reader for the CRDT update and snapshot
// formats (docs/collab.md#encoding).
//
//   std::string out;
//   put_varint(out, 300);
//   ByteReader in(out, "crdt update");
//   uint64_t v = 0;
//   if (!in.varint(&v)) return in.error();
//
// Plain values: use from one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "parley/status.hpp"

namespace parley::crdt {

inline void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Signed values as zigzag varints: small magnitudes take one byte either way.
inline void put_svarint(std::string& out, int64_t v) {
  put_varint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

// Reads what put_varint and put_svarint wrote. Every read checks the bounds;
// the first failure is kept in error() and later reads fail too.
class ByteReader {
 public:
  // what: names the format in error messages ("crdt update").
  ByteReader(std::string_view bytes, const char* what) : data_(bytes), what_(what) {}

  bool varint(uint64_t* out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return fail("truncated varint");
      auto b = static_cast<uint8_t>(data_[pos_++]);
      if (shift == 63 && b > 1) return fail("varint overflows 64 bits");
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *out = v;
        return true;
      }
    }
    return fail("varint longer than 10 bytes");
  }

  // A varint that must not exceed max (a length, a count, an index).
  bool bounded(uint64_t max, const char* what, uint64_t* out) {
    if (!varint(out)) return false;
    if (*out > max) {
      return fail(std::string(what) + " " + std::to_string(*out) + " exceeds " +
                  std::to_string(max));
    }
    return true;
  }

  bool u32(uint32_t* out, const char* what) {
    uint64_t v = 0;
    if (!bounded(UINT32_MAX, what, &v)) return false;
    *out = static_cast<uint32_t>(v);
    return true;
  }

  bool svarint(int64_t* out) {
    uint64_t v = 0;
    if (!varint(&v)) return false;
    *out = static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
    return true;
  }

  bool bytes(size_t n, std::string_view* out) {
    if (n > data_.size() - pos_) return fail("truncated: " + std::to_string(n) + " bytes wanted");
    *out = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }

  bool fail(std::string message) {
    if (ok_) {
      ok_ = false;
      error_ = std::move(message) + " at byte " + std::to_string(pos_);
    }
    return false;
  }

  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == data_.size(); }
  size_t remaining() const { return data_.size() - pos_; }
  Status error() const { return Status(StatusCode::corrupt, std::string(what_) + ": " + error_); }

 private:
  std::string_view data_;
  const char* what_;
  size_t pos_ = 0;
  bool ok_ = true;
  std::string error_;
};

}  // namespace parley::crdt
