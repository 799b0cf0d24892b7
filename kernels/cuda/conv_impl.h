// SEIS_CONV_IMPL: which hand-written conv families, not yet the default, a run switches on. The
// value is a comma-separated list of family names ("halo", "deep", "deep_wgrad", "halo,deep"). Plain
// C++, so that the parsing is tested on any machine (tests/deep_conv_test.cpp).
#pragma once
#include <algorithm>
#include <string>

namespace seis::cuda {

// Whether the comma-separated `list` names `family` (whole names only: "halo" is not in "halos").
inline bool conv_impl_lists(const char* list, const std::string& family) {
  if (list == nullptr) return false;
  const std::string s(list);
  size_t begin = 0;
  while (begin <= s.size()) {
    const size_t end = std::min(s.find(',', begin), s.size());
    if (s.compare(begin, end - begin, family) == 0) return true;
    begin = end + 1;
  }
  return false;
}

}  // namespace seis::cuda
