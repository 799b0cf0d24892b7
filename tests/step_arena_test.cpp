// The arena of a CUDA graph's step (engine/step_arena.h) and the allocator's two graph modes
// (DeviceBlocks in engine/block_cache.h): a recorded step's plan never gives two blocks alive at the
// same time overlapping bytes, comes close to the live peak, and a capture that strays from the
// recorded step is caught at its first difference.
#include "engine/step_arena.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "engine/block_cache.h"
#include "engine/error.h"

namespace seis {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

void* key(int i) { return reinterpret_cast<void*>(static_cast<uintptr_t>(i) * 64); }

StepTrace::Event alloc(int64_t a) { return {a, false}; }
StepTrace::Event release(int64_t a) { return {a, true}; }

// Every pair of allocations alive at the same time occupies disjoint bytes of the arena, inside it.
void expect_sound(const ArenaPlan& plan) {
  const size_t n = plan.trace.bytes.size();
  ASSERT_EQ(plan.offsets.size(), n);
  std::vector<int64_t> start(n), end(n);
  for (size_t e = 0; e < plan.trace.events.size(); ++e) {
    const StepTrace::Event ev = plan.trace.events[e];
    (ev.free ? end : start)[static_cast<size_t>(ev.alloc)] = static_cast<int64_t>(e);
  }
  for (size_t a = 0; a < n; ++a) {
    EXPECT_EQ(plan.offsets[a] % 512, 0) << "allocation " << a;
    EXPECT_GE(plan.offsets[a], 0);
    EXPECT_LE(plan.offsets[a] + plan.trace.bytes[a], plan.bytes);
    for (size_t b = a + 1; b < n; ++b) {
      const bool together = start[a] < end[b] && start[b] < end[a];
      const bool overlap = plan.offsets[a] < plan.offsets[b] + plan.trace.bytes[b] &&
                           plan.offsets[b] < plan.offsets[a] + plan.trace.bytes[a];
      EXPECT_FALSE(together && overlap) << "allocations " << a << " and " << b;
    }
  }
  EXPECT_GE(plan.bytes, plan.live_peak);
}

TEST(StepArena, ABlockFreedEarlyLendsItsBytesToALaterOne) {
  StepTrace t;
  t.bytes = {4 * kMiB, 2 * kMiB, 4 * kMiB, 2 * kMiB};
  // 0 and 1 together; 0 freed; 2 (the size of 0) and 3 come while 1 lives.
  t.events = {alloc(0), alloc(1), release(0), alloc(2), alloc(3), release(1), release(3), release(2)};
  const ArenaPlan p = plan_arena(t);
  expect_sound(p);
  EXPECT_EQ(p.live_peak, 8 * kMiB);
  EXPECT_EQ(p.bytes, 8 * kMiB) << "the plan reaches the live peak here";
  EXPECT_EQ(p.offsets[0], p.offsets[2]) << "2 reuses 0's bytes";
}

TEST(StepArena, RandomStepsArePlannedSoundlyAndNearTheirLivePeak) {
  std::mt19937_64 rng(7);
  double worst = 0;
  for (int trial = 0; trial < 200; ++trial) {
    StepTrace t;
    std::vector<int64_t> live;
    const int n = 1 + static_cast<int>(rng() % 120);
    for (int a = 0; a < n; ++a) {
      // Sizes as the allocator's classes: 512-byte steps up to 1 MiB, 2 MiB steps above.
      const int64_t bytes = rng() % 3 == 0 ? 512 * static_cast<int64_t>(1 + rng() % 2048)
                                           : 2 * kMiB * static_cast<int64_t>(1 + rng() % 64);
      t.bytes.push_back(bytes);
      t.events.push_back(alloc(a));
      live.push_back(a);
      while (!live.empty() && rng() % 3 == 0) {
        const size_t i = rng() % live.size();
        t.events.push_back(release(live[i]));
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
    for (int64_t a : live) t.events.push_back(release(a));
    const ArenaPlan p = plan_arena(t);
    expect_sound(p);
    worst = std::max(worst, static_cast<double>(p.bytes) / static_cast<double>(p.live_peak));
  }
  std::printf("[ result ] the largest arena over its live peak, 200 random steps: %.3f\n", worst);
  EXPECT_LE(worst, 1.5);
}

TEST(StepArena, IncompleteTracesAreRefused) {
  StepTrace never_freed;
  never_freed.bytes = {512};
  never_freed.events = {alloc(0)};
  EXPECT_THROW(plan_arena(never_freed), Error);
  StepTrace twice;
  twice.bytes = {512};
  twice.events = {alloc(0), release(0), release(0)};
  EXPECT_THROW(plan_arena(twice), Error);
  StepTrace early;
  early.bytes = {512};
  early.events = {release(0), alloc(0)};
  EXPECT_THROW(plan_arena(early), Error);
  StepTrace unknown;
  unknown.bytes = {512};
  unknown.events = {alloc(0), release(3)};
  EXPECT_THROW(plan_arena(unknown), Error);
}

TEST(StepRecorder, AStepThatFreesOlderBlocksOrKeepsItsOwnCannotBePlanned) {
  StepRecorder ok;
  ok.on_alloc(key(1), 512);
  ok.on_alloc(key(2), kMiB);
  ok.on_free(key(1));
  ok.on_free(key(2));
  StepTrace t;
  std::string why;
  ASSERT_TRUE(ok.finish(&t, &why)) << why;
  EXPECT_EQ(t.bytes, (std::vector<int64_t>{512, kMiB}));
  ASSERT_EQ(t.events.size(), 4u);
  EXPECT_TRUE(t.events[2].free);
  EXPECT_EQ(t.events[2].alloc, 0);

  StepRecorder foreign;
  foreign.on_alloc(key(1), 512);
  foreign.on_free(key(9));
  foreign.on_free(key(1));
  EXPECT_FALSE(foreign.finish(&t, &why));
  EXPECT_NE(why.find("did not allocate"), std::string::npos) << why;

  StepRecorder kept;
  kept.on_alloc(key(1), 512);
  EXPECT_FALSE(kept.finish(&t, &why));
  EXPECT_NE(why.find("past its end"), std::string::npos) << why;
}

StepTrace three_blocks() {
  StepTrace t;
  t.bytes = {2 * kMiB, 512, 2 * kMiB};
  t.events = {alloc(0), alloc(1), release(0), alloc(2), release(1), release(2)};
  return t;
}

TEST(ArenaReplay, TheRecordedStepGetsThePlannedAddresses) {
  const auto plan = std::make_shared<const ArenaPlan>(plan_arena(three_blocks()));
  std::vector<char> arena(static_cast<size_t>(plan->bytes));
  ArenaReplay r(arena.data(), plan);
  void* a = r.take(2 * kMiB);
  void* b = r.take(512);
  EXPECT_EQ(a, arena.data() + plan->offsets[0]);
  EXPECT_EQ(b, arena.data() + plan->offsets[1]);
  EXPECT_TRUE(r.release(a));
  EXPECT_FALSE(r.release(key(5))) << "not an arena block";
  void* c = r.take(2 * kMiB);
  EXPECT_EQ(c, arena.data() + plan->offsets[2]);
  EXPECT_EQ(r.live_blocks(), 2);
  EXPECT_TRUE(r.release(b));
  EXPECT_TRUE(r.release(c));
  std::string why;
  EXPECT_TRUE(r.finish(&why)) << why;
}

TEST(ArenaReplay, TheFirstDifferenceIsKept) {
  const auto plan = std::make_shared<const ArenaPlan>(plan_arena(three_blocks()));
  std::vector<char> arena(static_cast<size_t>(plan->bytes));
  std::string why;
  {  // another size
    ArenaReplay r(arena.data(), plan);
    ASSERT_NE(r.take(2 * kMiB), nullptr);
    EXPECT_EQ(r.take(1024), nullptr);
    EXPECT_EQ(r.take(512), nullptr) << "nothing is served after a difference";
    EXPECT_FALSE(r.finish(&why));
    EXPECT_NE(why.find("allocation 1 is 1024 bytes"), std::string::npos) << why;
  }
  {  // a free out of order: 1 before 0
    ArenaReplay r(arena.data(), plan);
    r.take(2 * kMiB);
    void* b = r.take(512);
    EXPECT_TRUE(r.release(b));
    EXPECT_FALSE(r.finish(&why));
    EXPECT_NE(why.find("out of the recorded order"), std::string::npos) << why;
  }
  {  // stopping short, with a block still live
    ArenaReplay r(arena.data(), plan);
    r.take(2 * kMiB);
    EXPECT_FALSE(r.finish(&why));
    EXPECT_NE(why.find("keeps 1"), std::string::npos) << why;
  }
  {  // one allocation too many
    ArenaReplay r(arena.data(), plan);
    void* a = r.take(2 * kMiB);
    void* b = r.take(512);
    r.release(a);
    void* c = r.take(2 * kMiB);
    r.release(b);
    r.release(c);
    EXPECT_EQ(r.take(512), nullptr);
    EXPECT_FALSE(r.finish(&why));
    EXPECT_NE(why.find("more allocations"), std::string::npos) << why;
  }
}

// The allocator's modes: a step recorded while the cache serves it; then its capture served from
// the arena, which the cache never sees; a capture that strays throws at the request.
TEST(DeviceBlocks, ARecordedStepIsCapturedFromItsArena) {
  DeviceBlocks d;
  d.add_fresh(key(100), 8 * kMiB);  // e.g. the graph's inputs, from before the step
  d.begin_record();
  EXPECT_THROW(d.begin_record(), Error);
  EXPECT_EQ(d.take(2 * kMiB).key, nullptr);
  d.add_fresh(key(1), 2 * kMiB);
  EXPECT_EQ(d.take(300).key, nullptr);
  d.add_fresh(key(2), 512);
  d.release(key(1));
  EXPECT_EQ(d.take(2 * kMiB).key, key(1)) << "the cache serves a recorded step as usual";
  d.release(key(2));
  d.release(key(1));
  StepTrace t;
  std::string why;
  ASSERT_TRUE(d.end_record(&t, &why)) << why;
  EXPECT_EQ(t.bytes, (std::vector<int64_t>{2 * kMiB, 512, 2 * kMiB}));
  const auto plan = std::make_shared<const ArenaPlan>(plan_arena(t));
  EXPECT_EQ(plan->bytes, 2 * kMiB + 512);

  // The arena is a block of the cache; the capture's blocks are inside it and not the cache's.
  d.add_fresh(key(200), 4 * kMiB);
  char* base = static_cast<char*>(key(200));
  const int64_t in_use = d.in_use();
  d.begin_arena(base, plan);
  EXPECT_TRUE(d.in_arena());
  const BlockCache::Block a = d.take(2 * kMiB);
  EXPECT_EQ(a.key, base + plan->offsets[0]);
  const BlockCache::Block b = d.take(300);
  EXPECT_EQ(b.key, base + plan->offsets[1]);
  EXPECT_EQ(d.in_use(), in_use) << "arena blocks are inside a block already counted";
  EXPECT_THROW(d.add_fresh(key(3), 512), Error);
  d.release(a.key);
  const BlockCache::Block c = d.take(2 * kMiB);
  d.release(b.key);
  d.release(c.key);
  ASSERT_TRUE(d.end_arena(&why)) << why;
  EXPECT_EQ(d.arena_live_blocks(), 0);
  EXPECT_EQ(d.in_use(), in_use);

  // A capture that asks for another size fails at that request; its blocks stay the arena's until
  // they are freed.
  d.begin_arena(base, plan);
  const BlockCache::Block a2 = d.take(2 * kMiB);
  EXPECT_THROW(d.take(4 * kMiB), Error);
  EXPECT_FALSE(d.end_arena(&why));
  EXPECT_NE(why.find("4194304 bytes"), std::string::npos) << why;
  EXPECT_EQ(d.arena_live_blocks(), 1);
  EXPECT_THROW(d.begin_arena(base, plan), Error) << "the last arena's blocks are still live";
  d.release(a2.key);
  EXPECT_EQ(d.arena_live_blocks(), 0);
  EXPECT_EQ(d.in_use(), in_use);

  // A capture that frees a block from before the step: the cache would lend it while replays use it.
  d.begin_arena(base, plan);
  d.release(key(100));
  EXPECT_FALSE(d.end_arena(&why));
  EXPECT_NE(why.find("did not allocate"), std::string::npos) << why;
}

// A request is recorded at its own size class, not at the size of the cached block that served it:
// the capture asks for the request's class again.
TEST(DeviceBlocks, ARequestIsRecordedAtItsSizeNotItsBlocks) {
  DeviceBlocks d;
  d.add_fresh(key(1), 10 * kMiB);
  d.release(key(1));
  d.begin_record();
  EXPECT_EQ(d.take(8 * kMiB).key, key(1)) << "a 10 MiB block serves 8 MiB (a quarter's waste at most)";
  d.release(key(1));
  StepTrace t;
  std::string why;
  ASSERT_TRUE(d.end_record(&t, &why)) << why;
  EXPECT_EQ(t.bytes, std::vector<int64_t>{8 * kMiB});
}

TEST(DeviceBlocks, ARecordingThatKeepsBlocksIsRefused) {
  DeviceBlocks d;
  d.begin_record();
  d.add_fresh(key(1), 512);
  StepTrace t;
  std::string why;
  EXPECT_FALSE(d.end_record(&t, &why));
  EXPECT_FALSE(d.recording());
  d.release(key(1));
  EXPECT_EQ(d.in_use(), 0);
}

}  // namespace
}  // namespace seis
