#include "engine/step_arena.h"

#include <algorithm>
#include <numeric>
#include <sstream>

#include "engine/error.h"

namespace seis {

void StepRecorder::on_alloc(void* key, int64_t block_bytes) {
  const int64_t index = static_cast<int64_t>(trace_.bytes.size());
  trace_.bytes.push_back(block_bytes);
  trace_.events.push_back({index, false});
  live_[key] = index;
}

void StepRecorder::on_free(void* key) {
  const auto it = live_.find(key);
  if (it == live_.end()) {
    ++foreign_frees_;
    return;
  }
  trace_.events.push_back({it->second, true});
  live_.erase(it);
}

bool StepRecorder::finish(StepTrace* trace, std::string* why) {
  std::ostringstream os;
  if (foreign_frees_ > 0) {
    os << "the step frees " << foreign_frees_ << " block(s) it did not allocate";
  } else if (!live_.empty()) {
    int64_t kept = 0;
    for (const auto& kv : live_) kept += trace_.bytes[static_cast<size_t>(kv.second)];
    os << "the step keeps " << live_.size() << " block(s) of its own (" << kept << " bytes) past its end";
  } else {
    *trace = std::move(trace_);
    trace_ = StepTrace();
    return true;
  }
  *why = os.str();
  return false;
}

ArenaPlan plan_arena(StepTrace trace) {
  const int64_t n = static_cast<int64_t>(trace.bytes.size());
  std::vector<int64_t> start(static_cast<size_t>(n), -1), end(static_cast<size_t>(n), -1);
  int64_t live = 0, live_peak = 0;
  for (size_t e = 0; e < trace.events.size(); ++e) {
    const StepTrace::Event ev = trace.events[e];
    SEIS_CHECK(ev.alloc >= 0 && ev.alloc < n, "step trace: event " << e << " names allocation " << ev.alloc);
    const size_t a = static_cast<size_t>(ev.alloc);
    const int64_t t = static_cast<int64_t>(e);
    SEIS_CHECK(trace.bytes[a] > 0, "step trace: allocation " << ev.alloc << " of " << trace.bytes[a] << " bytes");
    if (!ev.free) {
      SEIS_CHECK(start[a] < 0, "step trace: allocation " << ev.alloc << " made twice");
      start[a] = t;
      live += trace.bytes[a];
      live_peak = std::max(live_peak, live);
    } else {
      SEIS_CHECK(start[a] >= 0 && end[a] < 0,
                 "step trace: allocation " << ev.alloc << " freed before it was made or twice");
      end[a] = t;
      live -= trace.bytes[a];
    }
  }
  for (int64_t a = 0; a < n; ++a) {
    SEIS_CHECK(end[static_cast<size_t>(a)] >= 0, "step trace: allocation " << a << " is never freed");
  }

  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
    return trace.bytes[static_cast<size_t>(x)] > trace.bytes[static_cast<size_t>(y)];
  });
  ArenaPlan plan;
  plan.offsets.assign(static_cast<size_t>(n), -1);
  plan.live_peak = live_peak;
  std::vector<int64_t> placed;  // allocations placed so far, by increasing offset
  std::vector<int64_t> overlapping;
  for (const int64_t a : order) {
    const size_t ua = static_cast<size_t>(a);
    const int64_t size = trace.bytes[ua];
    overlapping.clear();
    for (const int64_t b : placed) {
      const size_t ub = static_cast<size_t>(b);
      if (start[ub] < end[ua] && start[ua] < end[ub]) overlapping.push_back(b);
    }
    // The smallest gap between the blocks alive at the same time that fits, else past the last.
    int64_t best = -1, best_gap = 0, reach = 0;
    for (const int64_t b : overlapping) {
      const size_t ub = static_cast<size_t>(b);
      const int64_t gap = plan.offsets[ub] - reach;
      if (gap >= size && (best < 0 || gap < best_gap)) {
        best = reach;
        best_gap = gap;
      }
      reach = std::max(reach, plan.offsets[ub] + trace.bytes[ub]);
    }
    plan.offsets[ua] = best >= 0 ? best : reach;
    plan.bytes = std::max(plan.bytes, plan.offsets[ua] + size);
    const auto at = std::upper_bound(placed.begin(), placed.end(), plan.offsets[ua], [&](int64_t off, int64_t b) {
      return off < plan.offsets[static_cast<size_t>(b)];
    });
    placed.insert(at, a);
  }
  plan.trace = std::move(trace);
  return plan;
}

void ArenaReplay::differ(const std::string& what) {
  if (difference_.empty()) difference_ = what;
}

void* ArenaReplay::take(int64_t block_bytes) {
  if (!difference_.empty()) return nullptr;
  const std::vector<StepTrace::Event>& events = plan_->trace.events;
  std::ostringstream os;
  if (next_event_ >= events.size()) {
    os << "the captured step makes more allocations than the recorded one (" << plan_->trace.bytes.size() << ")";
  } else if (events[next_event_].free) {
    os << "the captured step allocates " << block_bytes << " bytes where the recorded one frees its allocation "
       << events[next_event_].alloc;
  } else {
    const int64_t a = events[next_event_].alloc;
    const int64_t recorded = plan_->trace.bytes[static_cast<size_t>(a)];
    if (recorded == block_bytes) {
      void* key = base_ + plan_->offsets[static_cast<size_t>(a)];
      live_[key] = a;
      ++next_event_;
      return key;
    }
    os << "the captured step's allocation " << a << " is " << block_bytes << " bytes, the recorded one's " << recorded;
  }
  differ(os.str());
  return nullptr;
}

bool ArenaReplay::release(void* key) {
  const auto it = live_.find(key);
  if (it == live_.end()) return false;
  const int64_t a = it->second;
  live_.erase(it);
  if (difference_.empty()) {
    const std::vector<StepTrace::Event>& events = plan_->trace.events;
    if (next_event_ < events.size() && events[next_event_].free && events[next_event_].alloc == a) {
      ++next_event_;
    } else {
      differ("the captured step frees its allocation " + std::to_string(a) + " out of the recorded order");
    }
  }
  return true;
}

bool ArenaReplay::finish(std::string* why) const {
  std::ostringstream os;
  if (!difference_.empty()) {
    os << difference_;
  } else if (!live_.empty()) {
    os << "the captured step keeps " << live_.size() << " of its arena's blocks past its end";
  } else if (next_event_ != plan_->trace.events.size()) {
    os << "the captured step stops after " << next_event_ << " of the recorded step's " << plan_->trace.events.size()
       << " allocations and frees";
  } else {
    return true;
  }
  if (why != nullptr) *why = os.str();
  return false;
}

}  // namespace seis
