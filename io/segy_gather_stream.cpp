#include "io/segy_gather_stream.h"

#include <algorithm>

#include "engine/error.h"
#include "io/segy_headers.h"

namespace seis {

SegyGatherStream::SegyGatherStream(const SegyFile& segy, const std::vector<SegyGather>& gathers, int64_t width,
                                   int depth)
    : segy_(segy), gathers_(gathers), width_(width) {
  SEIS_CHECK(depth >= 1, "SegyGatherStream: depth " << depth);
  for (const SegyGather& g : gathers_) {
    SEIS_CHECK(g.traces <= width_,
               "SegyGatherStream: a gather of " << g.traces << " traces into " << width_ << " columns");
  }
  slots_.resize(static_cast<size_t>(std::min<int64_t>(depth, std::max<int64_t>(1, size()))));
  for (Slot& s : slots_) {
    s.data.resize(static_cast<size_t>(segy_.info().samples * width_));
    s.headers.resize(static_cast<size_t>(width_ * kSegyTraceHeaderBytes));
  }
  thread_ = std::thread([this] { run(); });
}

SegyGatherStream::~SegyGatherStream() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void SegyGatherStream::run() {
  const int64_t depth = static_cast<int64_t>(slots_.size());
  for (int64_t i = 0; i < size(); ++i) {
    // Gather i goes into slot i % depth once gather i - depth is released: the consumer holds
    // gather released_ at most, which is in another slot.
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || i < released_ + depth; });
      if (stop_) return;
    }
    Slot& slot = slots_[static_cast<size_t>(i % depth)];
    try {
      segy_.read_gather(gathers_[static_cast<size_t>(i)], slot.data.data(), width_, slot.headers.data());
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      error_ = std::current_exception();
      failed_at_ = i;
      cv_.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      read_ = i + 1;
    }
    cv_.notify_all();
  }
}

SegyGatherStream::Gather SegyGatherStream::next() {
  SEIS_CHECK(returned_ < size(), "SegyGatherStream: all " << size() << " gathers were returned");
  const int64_t i = returned_;
  {
    std::unique_lock<std::mutex> lock(mu_);
    released_ = i;  // the gather returned before this one, if any, is free again
    cv_.notify_all();
    cv_.wait(lock, [&] { return read_ > i || failed_at_ == i; });
    if (failed_at_ == i) std::rethrow_exception(error_);
  }
  ++returned_;
  const Slot& slot = slots_[static_cast<size_t>(i % static_cast<int64_t>(slots_.size()))];
  Gather g;
  g.data = slot.data.data();
  g.headers = slot.headers.data();
  g.index = i;
  return g;
}

int SegyGatherStream::depth_for(int64_t gather_bytes, int64_t budget_bytes) {
  if (gather_bytes > kMaxReadAheadGather) return 1;
  const int64_t ahead = gather_bytes > 0 ? budget_bytes / gather_bytes : 7;
  return 1 + static_cast<int>(std::clamp<int64_t>(ahead, 1, 7));
}

}  // namespace seis
