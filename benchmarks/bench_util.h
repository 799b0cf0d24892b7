// Helpers shared by the benchmark binaries: a monotonic clock and running a peer script.
#pragma once
#include <chrono>
#include <cstdio>
#include <string>

namespace seis::bench {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The standard output of a shell command (e.g. a Python peer printing JSON lines).
inline std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  pclose(p);
  return out;
}

}  // namespace seis::bench
