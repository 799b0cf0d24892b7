// The UNet over a gather or a continuous record of any size [T][W] (T time samples, W receivers),
// in overlapping windows: each window is normalised on its own (as the training gathers were),
// zero-padded to the network's multiple of 2^(levels-1), and its probabilities are stacked with
// the neighbours' by weight. A window's weight is 0 within `blind` of an edge it shares with
// another window (where a UNet sees no context), then rises linearly to 1 across the rest of the
// overlap, and is 1 at the record's own edges; the stacked probability is sum(w p) / sum(w). So no
// row or receiver takes its result from a window edge, and the result does not hinge on where
// the windows start.
//
// Streaming: rows arrive from a reader callback in order and leave, final, through a sink callback
// in order; memory is two windows of rows whatever T is. The next window's rows are read on a
// second thread while the network runs.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "io/normalize.h"
#include "models/unet.h"

namespace seis {

// Windows of `window` samples along an axis of n (n < window: one window of n). Starts 0, hop,
// 2 hop, ... and the last window ends at n. hop = window - round(overlap x window), at least 1;
// blind = round(blind_fraction x window), at most (window - hop - 1) / 2 so that every position
// has a positive weight.
struct WindowAxis {
  int64_t n = 0, size = 0, hop = 0, blind = 0;
  std::vector<int64_t> starts;
  // Weight of position `pos` (0 <= pos < size) of the window starting at `start`.
  float weight(int64_t start, int64_t pos) const;
};
WindowAxis window_axis(int64_t n, int64_t window, double overlap, double blind_fraction);

struct WindowOptions {
  int64_t rows = 0, cols = 0;  // window height and width; 0: the whole axis
  double overlap = 0.5;        // fraction of a window shared with the next one
  double blind = 0.125;        // fraction of a window blinded at a shared edge
  Normalize normalize = Normalize::trace;
  int64_t batch = 4;  // windows per forward pass (receiver tiles of one time window)
};

class WindowedInference {
 public:
  using RowReader = std::function<void(int64_t t0, int64_t rows, float* data)>;      // [rows][W]
  using RowSink = std::function<void(int64_t t0, int64_t rows, const float* prob)>;  // [rows][W]
  using Progress = std::function<void(int64_t rows_done)>;

  // UsageError when the options are out of range (overlap in [0, 1), blind in [0, 0.5), batch >= 1).
  WindowedInference(const UNet& model, const WindowOptions& options);

  // Runs over a [T][W] source; sink gets every row exactly once, in order.
  void run(int64_t T, int64_t W, const RowReader& read, const RowSink& sink, const Progress& progress = {}) const;

  // The window sizes run() uses for a [T][W] source.
  int64_t window_rows(int64_t T) const { return options_.rows > 0 ? std::min(options_.rows, T) : T; }
  int64_t window_cols(int64_t W) const { return options_.cols > 0 ? std::min(options_.cols, W) : W; }

 private:
  const UNet& model_;
  WindowOptions options_;
};

}  // namespace seis
