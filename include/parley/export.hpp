// parley/export.hpp - which declarations libparley.so exports.
//
// The library is compiled with hidden visibility: only what the public headers
// mark PARLEY_EXPORT (the Client, Status, the extension interfaces of
// parley::sys and the free functions of include/parley/) is visible to apps,
// together with the C ABI of parley.h. Internal code (src/) stays inside the
// library. docs/packaging.md explains the ABI policy.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define PARLEY_EXPORT __attribute__((visibility("default")))
#else
#define PARLEY_EXPORT
#endif
