// The server's log: one line per record on stderr, with a UTC timestamp.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <utility>

#include "parley/types.hpp"

namespace parley::server {

inline std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

template <typename... Args>
void log(const char* level, fmt::format_string<Args...> format, Args&&... args) {
  std::string line = fmt::format("{} {}: {}\n", format_timestamp(now_ms()), level,
                                 fmt::format(format, std::forward<Args>(args)...));
  std::fputs(line.c_str(), stderr);
}

}  // namespace parley::server
