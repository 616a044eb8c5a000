// parley/version.hpp - the library and protocol versions.
#pragma once

#include "parley/export.hpp"

#define PARLEY_VERSION_MAJOR 0
#define PARLEY_VERSION_MINOR 1
#define PARLEY_VERSION_PATCH 0

namespace parley {
// "0.1.0"
PARLEY_EXPORT const char* version();
// The WebSocket subprotocol this library speaks: "parley.v1".
inline constexpr const char* kProtocolName = "parley.v1";
}  // namespace parley
