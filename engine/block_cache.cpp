#include "engine/block_cache.h"

#include <algorithm>
#include <utility>

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

BlockCache::Block DeviceBlocks::take(int64_t bytes) {
  if (arena_active_) {
    void* key = arena_->take(BlockCache::size_class(bytes));
    if (key == nullptr) {
      std::string why;
      arena_->finish(&why);
      throw Error("CUDA graph capture: " + why);
    }
    return {key, BlockCache::size_class(bytes)};
  }
  const BlockCache::Block b = main_.take_cached(bytes);
  // The request's own size class: the cached block that serves it may be larger.
  if (b.key != nullptr && recorder_) recorder_->on_alloc(b.key, BlockCache::size_class(bytes));
  return b;
}

void DeviceBlocks::add_fresh(void* key, int64_t block_bytes) {
  SEIS_CHECK(!arena_active_, "a fresh block while an arena serves a CUDA graph's capture");
  main_.add_live(key, block_bytes);
  if (recorder_) recorder_->on_alloc(key, block_bytes);
}

void DeviceBlocks::release(void* key) {
  if (arena_ && arena_->release(key)) {
    if (!arena_active_ && arena_->live_blocks() == 0) arena_.reset();
    return;
  }
  // A block from before the capture, freed during it: replays would use it while the cache hands
  // it to others.
  if (arena_active_) arena_->differ("the captured step frees a block it did not allocate");
  if (recorder_) recorder_->on_free(key);
  main_.release(key);
}

void DeviceBlocks::begin_record() {
  SEIS_CHECK(!recorder_ && !arena_active_, "a step is already being recorded or captured on this device");
  recorder_ = std::make_unique<StepRecorder>();
}

bool DeviceBlocks::end_record(StepTrace* trace, std::string* why) {
  SEIS_CHECK(recorder_, "no step is being recorded on this device");
  const bool ok = recorder_->finish(trace, why);
  recorder_.reset();
  return ok;
}

void DeviceBlocks::begin_arena(void* base, std::shared_ptr<const ArenaPlan> plan) {
  SEIS_CHECK(!recorder_ && !arena_active_, "a step is already being recorded or captured on this device");
  SEIS_CHECK(arena_live_blocks() == 0, "blocks of the previous CUDA graph's arena are still live");
  SEIS_CHECK(base != nullptr && plan != nullptr, "an arena without memory or plan");
  arena_ = std::make_unique<ArenaReplay>(static_cast<char*>(base), std::move(plan));
  arena_active_ = true;
}

bool DeviceBlocks::end_arena(std::string* why) {
  SEIS_CHECK(arena_active_, "no arena serves a capture on this device");
  arena_active_ = false;
  const bool ok = arena_->finish(why);
  if (arena_->live_blocks() == 0) arena_.reset();
  return ok;
}

}  // namespace seis
