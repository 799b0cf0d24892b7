#include "engine/block_cache.h"

#include <algorithm>

#include "engine/error.h"

namespace seis {

namespace {
constexpr int64_t kSmallLimit = int64_t{1} << 20;  // requests up to this size are "small"
constexpr int64_t kSmallRound = 512;
constexpr int64_t kLargeRound = int64_t{2} << 20;

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
}  // namespace

int64_t BlockCache::size_class(int64_t bytes) {
  if (bytes <= kSmallLimit) return std::max(kSmallRound, round_up(bytes, kSmallRound));
  return round_up(bytes, kLargeRound);
}

BlockCache::Block BlockCache::take_cached(int64_t bytes) {
  const int64_t size = size_class(bytes);
  auto it = free_.lower_bound(size);
  if (it == free_.end() || it->first > size + size / 4) return {};
  const Block b{it->second, it->first};
  free_.erase(it);
  cached_ -= b.bytes;
  mark_live(b.key, b.bytes);
  return b;
}

void BlockCache::add_live(void* key, int64_t block_bytes) {
  SEIS_CHECK(key != nullptr && live_.count(key) == 0, "block cache: bad fresh block " << key);
  mark_live(key, block_bytes);
}

void BlockCache::mark_live(void* key, int64_t block_bytes) {
  live_.emplace(key, block_bytes);
  in_use_ += block_bytes;
  peak_ = std::max(peak_, in_use_);
}

int64_t BlockCache::release(void* key) {
  auto it = live_.find(key);
  SEIS_CHECK(it != live_.end(), "block cache: release of " << key << ", which is not a live block");
  const int64_t bytes = it->second;
  live_.erase(it);
  in_use_ -= bytes;
  free_.emplace(bytes, key);
  cached_ += bytes;
  return bytes;
}

std::vector<void*> BlockCache::drop_cache() {
  std::vector<void*> keys;
  keys.reserve(free_.size());
  for (const auto& kv : free_) keys.push_back(kv.second);
  free_.clear();
  cached_ = 0;
  return keys;
}

}  // namespace seis
