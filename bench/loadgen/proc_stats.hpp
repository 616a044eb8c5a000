// CPU and memory figures of processes, from getrusage (this process) and
// /proc/PID/stat and /proc/PID/status (the server under test), so that each
// figure can be printed beside the CPU it cost on both sides.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace parley::loadgen {

// User + system CPU seconds this process has used.
inline double self_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// User + system CPU seconds of process `pid` (fields 14 and 15 of
// /proc/PID/stat, after the command name in parentheses); -1 if unreadable.
inline double process_cpu_s(long pid) {
  if (pid <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  // After ")": state is field 3, so utime (14) and stime (15) are the 12th and 13th here.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// VmRSS of process `pid` in kB; -1 if unreadable.
inline long process_rss_kb(long pid) {
  if (pid <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

// CPU use between two readings as a percentage of one core.
inline double cpu_percent(double cpu_s_before, double cpu_s_after, double wall_s) {
  if (cpu_s_before < 0 || cpu_s_after < 0 || wall_s <= 0) return -1;
  return (cpu_s_after - cpu_s_before) / wall_s * 100.0;
}

}  // namespace parley::loadgen
