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

int64_t BlockCache::unmark_live(void* key, const char* what) {
  auto it = live_.find(key);
  SEIS_CHECK(it != live_.end(), "block cache: " << what << " of " << key << ", which is not a live block");
  const int64_t bytes = it->second;
  live_.erase(it);
  in_use_ -= bytes;
  return bytes;
}

int64_t BlockCache::release(void* key) {
  const int64_t bytes = unmark_live(key, "release");
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

int64_t BlockCache::forget(void* key) { return unmark_live(key, "forget"); }

void BlockCache::add_cached(void* key, int64_t block_bytes) {
  SEIS_CHECK(key != nullptr && live_.count(key) == 0 && block_bytes > 0,
             "block cache: bad block " << key << " of " << block_bytes << " bytes to cache");
  free_.emplace(block_bytes, key);
  cached_ += block_bytes;
}

BlockCache::Blocks BlockCache::take_all() {
  Blocks all;
  for (const auto& kv : live_) all.live.push_back({kv.first, kv.second});
  for (const auto& kv : free_) all.cached.push_back({kv.second, kv.first});
  live_.clear();
  free_.clear();
  in_use_ = cached_ = 0;
  return all;
}

BlockCache::Block DeviceBlocks::take(int64_t bytes) {
  if (!capturing_) return main_.take_cached(bytes);
  BlockCache::Block b = graph_->take_cached(bytes);
  if (b.key != nullptr) return b;
  b = main_.take_cached(bytes);
  if (b.key != nullptr) {
    main_.forget(b.key);
    graph_->add_live(b.key, b.bytes);
  }
  return b;
}

void DeviceBlocks::add_fresh(void* key, int64_t block_bytes) {
  (capturing_ ? *graph_ : main_).add_live(key, block_bytes);
}

void DeviceBlocks::release(void* key) {
  if (graph_ && graph_->is_live(key)) {
    graph_->release(key);
  } else {
    main_.release(key);
  }
}

void DeviceBlocks::begin_capture() {
  SEIS_CHECK(!capturing_, "a CUDA graph capture is already under way on this device");
  if (!graph_) graph_ = std::make_unique<BlockCache>();
  capturing_ = true;
}

void DeviceBlocks::end_capture() { capturing_ = false; }

void DeviceBlocks::end_graph() {
  capturing_ = false;
  if (!graph_) return;
  const BlockCache::Blocks all = graph_->take_all();
  graph_.reset();
  for (const BlockCache::Block& b : all.live) main_.add_live(b.key, b.bytes);
  for (const BlockCache::Block& b : all.cached) main_.add_cached(b.key, b.bytes);
}

int64_t DeviceBlocks::in_use() const { return main_.in_use() + graph_pool_bytes(); }

int64_t DeviceBlocks::peak() const { return std::max(main_.peak(), in_use()); }

}  // namespace seis
