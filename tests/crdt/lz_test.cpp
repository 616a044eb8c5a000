// The LZ77 compressor of snapshot text: round trips and corrupt input.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "crdt/lz.hpp"

using parley::crdt::lz_compress;
using parley::crdt::lz_decompress;

namespace {

std::string round_trip(const std::string& text) {
  std::string packed = lz_compress(text);
  std::string out;
  REQUIRE(lz_decompress(packed, text.size(), &out));
  return out;
}

}  // namespace

TEST_CASE("lz: round trips") {
  CHECK(round_trip("").empty());
  CHECK(round_trip("a") == "a");
  CHECK(round_trip("abcd") == "abcd");
  std::string runs(100000, 'x');
  CHECK(round_trip(runs) == runs);
  CHECK(lz_compress(runs).size() < 100);
  std::mt19937 rng(3);
  for (int i = 0; i < 200; ++i) {
    std::string text;
    size_t n = rng() % 5000;
    const std::string words[] = {"the ", "quick ", "brown ", "fox ", "ü", "😀", "\n"};
    while (text.size() < n) {
      if (rng() % 4 == 0) {
        text.push_back(static_cast<char>(rng()));
      } else {
        text += words[rng() % std::size(words)];
      }
    }
    CHECK(round_trip(text) == text);
  }
  std::string prose;
  for (int i = 0; i < 2000; ++i) prose += "collaborative editing of text, " + std::to_string(i % 37);
  CHECK(lz_compress(prose).size() < prose.size() / 3);
}

TEST_CASE("lz: corrupt input is refused") {
  std::string text;
  for (int i = 0; i < 300; ++i) text += "a line of text number " + std::to_string(i) + "\n";
  std::string packed = lz_compress(text);
  std::string out;
  CHECK(!lz_decompress(packed, text.size() + 1, &out));
  CHECK(!lz_decompress(packed, text.size() - 1, &out));
  CHECK(!lz_decompress(packed.substr(0, packed.size() - 1), text.size(), &out));
  CHECK(!lz_decompress(packed + "x", text.size(), &out));
  CHECK(!lz_decompress("\x0f\xff\xff\xff\xff\x0f", 100, &out));  // huge literal count
  CHECK(!lz_decompress(std::string("\x10" "a\x05\x00", 4), 10, &out));  // offset past start
  std::mt19937 rng(5);
  for (int i = 0; i < 5000; ++i) {
    std::string bytes = packed;
    for (int f = 0; f < 3; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    size_t size = rng() % 2 == 0 ? text.size() : rng() % 20000;
    if (lz_decompress(bytes, size, &out)) CHECK(out.size() == size);
  }
}
