// Amplitude normalisation of one gather [H time samples, W receivers], in place, as the reader's
// workers apply it: per trace (each receiver's column to zero mean, unit RMS), per sample (the whole
// gather), or none. Dead (constant) traces become zeros.
//
// The sums, in double, are taken per trace (column) row by row in both modes; per sample, the
// traces' sums are then added in trace order. The statistics are the float32 (per trace) or double
// (per sample) results of finish(): a file may store them (/trace_norm, /sample_norm,
// io/hdf5_dataset.h); the reader normalises with them as it reads and checks them against its own
// sums of the same rows afterwards.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/dtype.h"

namespace seis {

enum class Normalize { trace, sample, none };
Normalize parse_normalize(const std::string& s);  // UsageError on anything else
const char* normalize_name(Normalize n);
std::vector<std::string> normalize_names();  // the allowed names, in --help's order

void normalize_gather(Normalize mode, int64_t height, int64_t width, float* data);

// normalize_gather in pieces, for the reader's single pass: statistics gathered from blocks of rows
// as they arrive (while they are still in cache), then applied row by row while the rows are moved
// to their place. The same sums in the same order as normalize_gather, so the same bits.
class GatherNormalizer {
 public:
  GatherNormalizer(Normalize mode, int64_t width);
  void begin();  // a new gather
  // Its next `count` rows, in order. Returns whether every value added since begin() is finite
  // (not NaN or Inf; once false, the sums mean nothing), which the sums tell at no extra pass
  // (`none`, which takes no sums: whether these rows are, by all_finite).
  bool add_rows(const float* rows, int64_t count);
  // add_rows, and the same rows normalised in place with `with`'s statistics (a normaliser of the same
  // mode and width whose statistics are known: as with.apply_rows_in_place(rows, count, reverse)
  // writes them), while they are in cache (unflipped: a few rows summed, then normalised, strip by
  // strip; flipped: the block summed, then normalised and reversed): the sums of a gather normalised
  // with statistics that are to be checked against them.
  bool add_rows_normalizing(float* rows, int64_t count, const GatherNormalizer& with, bool reverse);
  void finish();  // after the last row
  // dst[j] = the normalised value of column x = x0 + j of `row` (x = width - 1 - x0 - j when
  // reverse), j in [0, count). `row` is a whole source row; dst may be row + x0 when not reverse
  // (each value is computed from the one it replaces), and must not overlap the row otherwise.
  void apply_row(const float* row, float* dst, int64_t x0, int64_t count, bool reverse) const;
  // The same values rounded to bf16 (round_to_bf16 of apply_row's): per trace and unflipped in one
  // loop, otherwise through float32 pieces on the stack.
  void apply_row(const float* row, bf16* dst, int64_t x0, int64_t count, bool reverse) const;
  // `count` whole rows normalised in place: apply_row of each row onto itself. reverse: each row
  // also reversed (what apply_row(row, dst, 0, width, true) writes, without a second row).
  void apply_rows_in_place(float* rows, int64_t count, bool reverse = false) const;
  // apply_rows_in_place, checking on the same pass that every value it reads is finite (all_finite's
  // test): false when one is not (the rows are then written all the same).
  bool apply_finite_rows_in_place(float* rows, int64_t count, bool reverse = false) const;

  // What finish() computed, to normalise the same gather again without its sums: after
  // set_stats(stats()) of the same gather, apply_row gives the same bits. `none` keeps nothing.
  struct Stats {
    double mean = 0, inv = 0;              // per sample (0 and 0 per trace)
    std::vector<float> col_mean, col_inv;  // per trace (empty per sample)
    // The memory one set of statistics takes, as a reader keeps it (with its allocations' overhead).
    static int64_t bytes_for(int64_t traces) { return static_cast<int64_t>(sizeof(Stats)) + 64 + 8 * traces; }
    // The same bits (a stored set checked against the reader's own sums).
    bool same_bits(const Stats& other) const;
  };
  Stats stats() const { return stats(mode_); }
  // The statistics of either mode from the same sums, after finish() (not after set_stats(), which
  // sets only this normaliser's mode; `none` gives zeros): what a writer stores for both from one pass.
  Stats stats(Normalize mode) const;
  void set_stats(const Stats& s);  // instead of begin(), add_rows() and finish()

 private:
  Normalize mode_;
  int64_t width_ = 0, rows_ = 0;
  double mean_ = 0, inv_ = 0;                // per sample (0 per trace)
  double sample_mean_ = 0, sample_inv_ = 0;  // per trace: the per-sample statistics of the same sums
  std::vector<double> col_sum_, col_sum2_;   // per trace, for both modes
  std::vector<float> col_mean_, col_inv_;
};

// The statistics of both modes of one gather [height][width], from one pass over it (a writer's).
// Returns whether every value is finite (add_rows'), false when one is NaN or Inf.
bool gather_norm_stats(int64_t height, int64_t width, const float* data, GatherNormalizer::Stats* trace,
                       GatherNormalizer::Stats* sample);

}  // namespace seis
