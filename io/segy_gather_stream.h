// SegyGatherStream: the gathers of a SEG-Y file, read and decoded in order on a thread of their own
// into a ring of `depth` buffers (the one the consumer holds included, so up to depth - 1 gathers
// ahead of it), so that the disk reads the next gathers while the consumer writes this one (seisseg
// convert). Without it the read, the decoding and the write of each gather follow one another, and
// the convert takes their sum rather than the longest of them. At depth 1 they still do.
//
// Memory: `depth` gathers of [samples, width] floats and their trace headers, whatever the file's
// size. depth_for() chooses the depth from a byte budget.
//
// Errors: a read or header error of gather i (SegyFile::read_gather's InputError) is rethrown by the
// next() call that would return gather i; gathers before it are delivered as usual. The thread reads
// nothing after a failed gather.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "io/segy.h"

namespace seis {

class SegyGatherStream {
 public:
  struct Gather {
    const float* data = nullptr;       // [samples][width], time-major; columns past the gather's traces 0
    const uint8_t* headers = nullptr;  // [traces][240], the raw trace headers in file order
    int64_t index = 0;                 // into the gathers given to the constructor
  };

  // Starts reading gathers[0], gathers[1], ... of `segy` into `width` columns (at least every
  // gather's trace count). `segy` and `gathers` must outlive the stream. depth >= 1.
  SegyGatherStream(const SegyFile& segy, const std::vector<SegyGather>& gathers, int64_t width, int depth);
  SegyGatherStream(const SegyFile&, std::vector<SegyGather>&&, int64_t, int) = delete;  // (a list that would die)
  // Stops the thread (after the read in progress) and joins it.
  ~SegyGatherStream();
  SegyGatherStream(const SegyGatherStream&) = delete;
  SegyGatherStream& operator=(const SegyGatherStream&) = delete;

  // The next gather in order, valid until the next call or the destructor; blocks until it is read.
  // Rethrows that gather's read error. At most size() calls.
  Gather next();
  int64_t size() const { return static_cast<int64_t>(gathers_.size()); }
  int depth() const { return static_cast<int>(slots_.size()); }

  // The depth for gathers of gather_bytes each (samples * width * 4 plus width * 240): the buffer
  // being written plus as many read ahead as fit in budget_bytes, at most 7 and at least 1 for
  // gathers up to kMaxReadAheadGather. Larger gathers get depth 1: read and written in turn, in one
  // buffer, as a survey of such gathers would otherwise hold two of them.
  static int depth_for(int64_t gather_bytes, int64_t budget_bytes);
  static constexpr int64_t kMaxReadAheadGather = int64_t{1} << 30;

 private:
  struct Slot {
    std::vector<float> data;
    std::vector<uint8_t> headers;
  };
  void run();

  const SegyFile& segy_;
  const std::vector<SegyGather>& gathers_;
  const int64_t width_;
  std::vector<Slot> slots_;
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t read_ = 0;        // gathers read (under mu_)
  int64_t released_ = 0;    // gathers the consumer is done with (under mu_)
  int64_t returned_ = 0;    // gathers returned by next() (consumer only)
  int64_t failed_at_ = -1;  // the gather whose read threw (under mu_)
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace seis
