// Where a tensor lives: the CPU or CUDA device N. A shape-only device (engine/memory.h) stands
// for one of them: tensors on it have shapes and are accounted as that device's allocator would
// hold them, but own no memory, and ops on them compute nothing.
#pragma once
#include <string>

namespace seis {

struct Device {
  enum class Kind { cpu, cuda };
  Kind kind = Kind::cpu;
  int index = 0;
  bool shape_only = false;

  static Device cpu() { return {}; }
  static Device cuda(int i = 0) { return {Kind::cuda, i}; }
  // The shape-only stand-in for `d`.
  static Device shape_only_of(Device d) {
    d.shape_only = true;
    return d;
  }
  bool is_cpu() const { return kind == Kind::cpu; }
  bool is_cuda() const { return kind == Kind::cuda; }
  bool operator==(const Device& o) const {
    return kind == o.kind && shape_only == o.shape_only && (is_cpu() || index == o.index);
  }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const {
    return (shape_only ? "plan:" : "") + (is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index));
  }
};

// "cpu", "cuda", "cuda:N" or "auto" (the first GPU if there is one, else the CPU).
// Throws UsageError on anything else, or on "cuda" when no GPU is present.
Device parse_device(const std::string& s);

}  // namespace seis
