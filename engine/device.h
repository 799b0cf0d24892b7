// Where a tensor lives: the CPU or CUDA device N.
#pragma once
#include <string>

namespace seis {

struct Device {
  enum class Kind { cpu, cuda };
  Kind kind = Kind::cpu;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int i = 0) { return {Kind::cuda, i}; }
  bool is_cpu() const { return kind == Kind::cpu; }
  bool is_cuda() const { return kind == Kind::cuda; }
  bool operator==(const Device& o) const { return kind == o.kind && (is_cpu() || index == o.index); }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
};

// "cpu", "cuda", "cuda:N" or "auto" (the first GPU if there is one, else the CPU).
// Throws UsageError on anything else, or on "cuda" when no GPU is present.
Device parse_device(const std::string& s);

}  // namespace seis
