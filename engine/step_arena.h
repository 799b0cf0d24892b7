// A static memory plan for the training step as a CUDA graph. A graph's kernels keep the addresses
// they were captured with, so every temporary of the captured step needs memory that nothing else
// takes while the graph lives. Serving the capture from the caching allocator would reserve every
// block it ever touched, several times the step's live bytes (the blocks are never split or
// merged). Instead, one eager step is recorded (the size of each allocation and when it is freed),
// each allocation is given an offset in one arena so that allocations alive at the same time never
// overlap, and the capture takes its allocations from the arena in the recorded order: the graph
// then holds about what the eager step holds at its peak.
//
// Offsets: greedy by size. The allocations, largest first, each take the lowest offset where they
// overlap nothing already placed that is alive at the same time (the smallest gap that fits, else
// the end). Deterministic; offsets are multiples of 512 bytes (the sizes are the allocator's size
// classes).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace seis {

// One step's device allocations, in order.
struct StepTrace {
  struct Event {
    int64_t alloc = 0;  // the allocation's index (into bytes)
    bool free = false;  // its free; otherwise its allocation
  };
  std::vector<int64_t> bytes;  // per allocation, the size of its block
  std::vector<Event> events;
};

// Records a trace from the allocator's calls, keyed by the blocks' addresses. A free of a block the
// step did not allocate, or a block the step does not free, makes the trace unusable: a graph's
// arena cannot hold it (what() then says why).
class StepRecorder {
 public:
  void on_alloc(void* key, int64_t block_bytes);
  void on_free(void* key);
  // The trace in *trace; false, with the reason in *why, when a graph's arena cannot hold the step.
  bool finish(StepTrace* trace, std::string* why);

 private:
  StepTrace trace_;
  std::unordered_map<void*, int64_t> live_;  // key -> allocation index, of blocks not yet freed
  int64_t foreign_frees_ = 0;
};

struct ArenaPlan {
  StepTrace trace;
  std::vector<int64_t> offsets;  // per allocation
  int64_t bytes = 0;             // the arena's size
  int64_t live_peak = 0;         // the most bytes alive at once (the floor of `bytes`)
};

// Plans the arena of a complete trace (every allocation freed once, after it was made; throws Error
// otherwise).
ArenaPlan plan_arena(StepTrace trace);

// Serves a capture from the arena by the plan, and checks that the captured step makes the same
// requests in the same order as the recorded one; the first difference is kept (the capture must
// then be discarded: its offsets may overlap).
class ArenaReplay {
 public:
  ArenaReplay(char* base, std::shared_ptr<const ArenaPlan> plan) : base_(base), plan_(std::move(plan)) {}
  // The address of the next allocation, or null (a difference) when the step asks for another
  // size than the recorded one, or for more allocations.
  void* take(int64_t block_bytes);
  // Frees `key` when it is one of the arena's live blocks (true); false for any other block.
  bool release(void* key);
  // A difference found by the caller (e.g. a block from before the step freed during it).
  void differ(const std::string& what);
  // Whether the whole trace was replayed in order, every block freed, no difference found (the
  // first difference in *why otherwise).
  bool finish(std::string* why) const;
  int64_t live_blocks() const { return static_cast<int64_t>(live_.size()); }

 private:
  char* base_;
  std::shared_ptr<const ArenaPlan> plan_;
  size_t next_event_ = 0;
  std::unordered_map<void*, int64_t> live_;  // key -> allocation index
  std::string difference_;
};

}  // namespace seis
