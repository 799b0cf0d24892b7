// Background noise for the synthetic generator cut from recordings (`seisseg synth --noise-from`):
// synthetic arrivals with exact labels on the noise of the site itself, as the paper trained its
// network and as Tegtow et al. (TLE 2024) carry synthetics over to field data.
//
// The recordings are continuous records (io/hdf5_record.h: /data [T, W] float32 or float16, root
// attribute dt equal to the set's). Each gather takes a window of H rows and W neighbouring
// receivers from one of them, chosen by the gather's own stream (so a gather is still a pure
// function of (seed, index)): the file and first row uniformly over every admissible window of all
// the files, the first receiver uniformly, the receiver order reversed and the polarity flipped each
// with probability 1/2. A window is admissible when it lies inside its record and, when the record
// has ground truth (/events), clear of every event's arrivals by kEventMarginS on either side: the
// noise must carry no arrival the label does not mark. Each trace of the window has its mean
// removed; the window is scaled so that the median rms of its live traces is 1 (the generator then
// scales it to the gather's noise level); a trace that is zero throughout is a dead channel.
//
// Read by hyperslab per gather (nothing is held but the files' event lists), thread-safe.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/synth_microseismic.h"

namespace seis {

class H5RecordFile;

class FieldNoise : public SynthNoiseSource {
 public:
  static constexpr double kEventMarginS = 1.0;
  // A window of this many floats (rows x the record's receivers) at most: 1 GiB.
  static constexpr int64_t kMaxWindowFloats = int64_t{1} << 28;

  // InputError naming the file and the problem: it does not open as a continuous record, has no dt
  // or another dt than dt_s, fewer receivers than width or fewer rows than height, a window of
  // height rows over all its receivers larger than kMaxWindowFloats, unreadable ground truth; or
  // when no file holds an admissible window. UsageError when paths is empty.
  FieldNoise(const std::vector<std::string>& paths, double dt_s, int64_t height, int64_t width);
  ~FieldNoise() override;

  // InputError naming the file when the window holds a non-finite sample, or when 16 windows in a
  // row hold no live trace.
  void window(uint64_t key, int64_t height, int64_t width, float* out, std::vector<uint8_t>* live,
              SynthNoiseWindow* where) const override;
  std::string describe() const override;  // the paths, comma-separated

  int64_t admissible_windows() const { return total_; }  // over all the files

 private:
  struct Span {  // first rows [t0, t1] of file `file` (inclusive)
    int64_t file, t0, t1;
  };
  std::vector<std::string> paths_;
  std::vector<std::unique_ptr<H5RecordFile>> files_;
  std::vector<Span> spans_;
  std::vector<int64_t> before_;  // windows in the spans before span i
  int64_t height_ = 0, width_ = 0, total_ = 0;
};

}  // namespace seis
