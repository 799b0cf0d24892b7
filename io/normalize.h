// Amplitude normalisation of one gather [H time samples, W receivers], in place, as the reader's
// workers apply it: per trace (each receiver's column to zero mean, unit RMS), per sample (the whole
// gather), or none. Dead (constant) traces become zeros.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

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
  void begin();                                     // a new gather
  void add_rows(const float* rows, int64_t count);  // its next `count` rows, in order
  void finish();                                    // after the last row
  // dst[j] = the normalised value of column x = x0 + j of `row` (x = width - 1 - x0 - j when
  // reverse), j in [0, count). `row` is a whole source row; dst may be row + x0 when not reverse
  // (each value is computed from the one it replaces), and must not overlap the row otherwise.
  void apply_row(const float* row, float* dst, int64_t x0, int64_t count, bool reverse) const;
  // `count` whole rows normalised in place: apply_row of each row onto itself. reverse: each row
  // also reversed (what apply_row(row, dst, 0, width, true) writes, without a second row).
  void apply_rows_in_place(float* rows, int64_t count, bool reverse = false) const;

  // What finish() computed, to normalise the same gather again without its sums: after
  // set_stats(stats()) of the same gather, apply_row gives the same bits. `none` keeps nothing.
  struct Stats {
    double mean = 0, inv = 0;              // per sample
    std::vector<float> col_mean, col_inv;  // per trace
    // The memory one set of statistics takes, as a reader keeps it (with its allocations' overhead).
    static int64_t bytes_for(int64_t traces) { return static_cast<int64_t>(sizeof(Stats)) + 64 + 8 * traces; }
  };
  Stats stats() const;
  void set_stats(const Stats& s);  // instead of begin(), add_rows() and finish()

 private:
  Normalize mode_;
  int64_t width_ = 0, rows_ = 0;
  double sum_ = 0, sum2_ = 0, mean_ = 0, inv_ = 0;  // per sample
  std::vector<double> col_sum_, col_sum2_;          // per trace
  std::vector<float> col_mean_, col_inv_;
};

}  // namespace seis
