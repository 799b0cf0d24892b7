// The device runtime on any machine: the device count is an answer (0 without a GPU or driver, never
// an error), and pinned memory works with or without a driver (ordinary aligned memory without).
#include "engine/device_runtime.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/device.h"
#include "engine/error.h"

namespace seis {
namespace {

TEST(DeviceRuntime, DeviceCountIsAnAnswer) {
  const int count = cuda_device_count();
  EXPECT_GE(count, 0);
  EXPECT_EQ(cuda_device_count(), count) << "cached";
  if (count == 0) {
    // This is what a build or CI machine without a GPU must see.
    EXPECT_EQ(cuda_bytes_in_use(0), 0);
    EXPECT_EQ(cuda_peak_bytes(0), 0);
    EXPECT_THROW(cuda_alloc(0, 16), Error);
    EXPECT_TRUE(parse_device("auto").is_cpu());
  }
}

TEST(DeviceRuntime, PinnedMemoryWorksWithOrWithoutADriver) {
  for (int64_t bytes : {int64_t{0}, int64_t{1}, int64_t{100}, int64_t{1} << 20, (int64_t{1} << 24) + 7}) {
    auto* p = static_cast<uint8_t*>(pinned_alloc(bytes));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u) << bytes << " bytes";
    std::vector<uint8_t> pattern(static_cast<size_t>(bytes));
    for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i * 7 + 3);
    if (bytes > 0) {
      std::memcpy(p, pattern.data(), pattern.size());
      EXPECT_EQ(std::memcmp(p, pattern.data(), pattern.size()), 0);
    }
    pinned_free(p);
  }
  pinned_free(nullptr);
}

}  // namespace
}  // namespace seis
