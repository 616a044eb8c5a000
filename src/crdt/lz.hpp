// A small LZ77 compressor for the text block of CRDT snapshots
// (docs/collab.md#encodings): greedy matching of 4+ bytes within the last
// 64 KiB, in the spirit of LZ4. Prose compresses to about half, and
// decompression runs at memory speed, so a snapshot loads as fast as before.
// Written here because none of Parley's dependencies offers compression.
//
//   std::string packed = lz_compress(text);
//   std::string text2;
//   if (!lz_decompress(packed, text.size(), &text2)) ...  // corrupt input
//
// Stateless functions: safe to call from any thread.
#pragma once

#include <string>
#include <string_view>

namespace parley::crdt {

// Format: sequences of a token byte (literal count << 4 | match length - 4,
// each nibble 15 meaning "plus a varint"), the literals, then, unless the
// output is complete, a 2-byte little-endian match offset (1 .. 65535).
std::string lz_compress(std::string_view in);

// Decompresses exactly raw_size bytes into *out. False if in is malformed,
// ends early, has bytes left over, or does not produce raw_size bytes.
bool lz_decompress(std::string_view in, size_t raw_size, std::string* out);

}  // namespace parley::crdt
