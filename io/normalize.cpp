#include "io/normalize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/enum_names.h"
#include "engine/error.h"
#include "engine/simd_dispatch.h"
#include "io/gather_rows.h"

namespace seis {

namespace {
constexpr EnumName<Normalize> kNormalizeNames[] = {
    {Normalize::trace, "trace"}, {Normalize::sample, "sample"}, {Normalize::none, "none"}};
}  // namespace

Normalize parse_normalize(const std::string& s) { return parse_enum(kNormalizeNames, s, "--normalize"); }
const char* normalize_name(Normalize n) { return enum_name(kNormalizeNames, n); }
std::vector<std::string> normalize_names() { return enum_names(kNormalizeNames); }

void normalize_gather(Normalize mode, int64_t height, int64_t width, float* data) {
  if (mode == Normalize::none || height <= 0 || width <= 0) return;
  // The sums per trace, row by row, in double; per sample, then the traces' sums in trace order.
  constexpr double kTiny = 1e-12;
  std::vector<double> sum(static_cast<size_t>(width), 0.0), sum2(static_cast<size_t>(width), 0.0);
  for (int64_t t = 0; t < height; ++t) {
    const float* row = data + t * width;
    for (int64_t j = 0; j < width; ++j) {
      sum[j] += row[j];
      sum2[j] += static_cast<double>(row[j]) * row[j];
    }
  }
  if (mode == Normalize::sample) {
    double s = 0, s2 = 0;
    for (int64_t j = 0; j < width; ++j) {
      s += sum[j];
      s2 += sum2[j];
    }
    const int64_t n = height * width;
    const double mean = s / static_cast<double>(n);
    const double var = std::max(0.0, s2 / static_cast<double>(n) - mean * mean);
    const double inv = var > kTiny ? 1.0 / std::sqrt(var) : 0.0;
    for (int64_t i = 0; i < n; ++i) data[i] = static_cast<float>((data[i] - mean) * inv);
    return;
  }
  std::vector<float> mean(static_cast<size_t>(width)), inv(static_cast<size_t>(width));
  for (int64_t j = 0; j < width; ++j) {
    const double m = sum[j] / static_cast<double>(height);
    const double var = std::max(0.0, sum2[j] / static_cast<double>(height) - m * m);
    mean[j] = static_cast<float>(m);
    inv[j] = var > kTiny ? static_cast<float>(1.0 / std::sqrt(var)) : 0.0f;
  }
  for (int64_t t = 0; t < height; ++t) {
    float* row = data + t * width;
    for (int64_t j = 0; j < width; ++j) row[j] = (row[j] - mean[j]) * inv[j];
  }
}

namespace {

// Each trace's sums over rows [count][width]: sum[j] += x, sum2[j] += x * x in double, row by row.
// In strips of kSumStrip traces held in registers down all the rows, then the last traces row by row:
// each trace's additions keep their order (the bits of normalize_gather's loop), and the sums are
// not loaded and stored for every row (2.4x at AVX-512 on 1 MiB blocks of 4096 traces, 1.8x at
// AVX2; 32 traces measured faster than 16 or 64 at both).
//
// With `apply` (Apply::trace or Apply::sample), each value is also replaced by its normalised value
// with the statistics given (mean/inv, or col_mean/col_inv), as normalize_row computes it: each
// strip's rows in groups of kApplyRows, summed, then normalised while they are in L1. Returns
// whether every sum2 is finite, which it is exactly when every value added so far
// is: x * x of a finite float is at most 1.2e77 in double, and of NaN or Inf is NaN or Inf, which
// stays in the sum (sum2 never falls below 0).
enum class Apply { none, trace, sample };
constexpr int64_t kSumStrip = 32;
constexpr int64_t kApplyRows = 8;
template <Apply apply>
SEIS_SIMD_INLINE bool sums_body(float* rows, int64_t count, int64_t width, double* sum, double* sum2, double mean,
                                double inv, const float* col_mean, const float* col_inv) {
  constexpr double kMax = std::numeric_limits<double>::max();
  bool finite = true;
  int64_t j0 = 0;
  for (; j0 + kSumStrip <= width; j0 += kSumStrip) {
    double s[kSumStrip], s2[kSumStrip];
    float m[kSumStrip], v[kSumStrip];
    for (int64_t j = 0; j < kSumStrip; ++j) {
      s[j] = sum[j0 + j];
      s2[j] = sum2[j0 + j];
      if (apply == Apply::trace) {
        m[j] = col_mean[j0 + j];
        v[j] = col_inv[j0 + j];
      }
    }
    for (int64_t t0 = 0; t0 < count; t0 += kApplyRows) {
      const int64_t t1 = apply == Apply::none ? count : std::min(count, t0 + kApplyRows);
      for (int64_t t = t0; t < t1; ++t) {
        const float* x = rows + t * width + j0;
        for (int64_t j = 0; j < kSumStrip; ++j) {
          const float a = x[j];
          s[j] += a;
          s2[j] += static_cast<double>(a) * a;
        }
      }
      // Those rows of the strip normalised in a loop of their own, while they are in L1 (a few
      // rows: at a stride of a power of two they all fall in the same sets). With the stores in
      // the loop above, GCC kept the sums on the stack, a store and a load per row and value.
      if (apply != Apply::none) {
        for (int64_t t = t0; t < t1; ++t) {
          float* x = rows + t * width + j0;
          for (int64_t j = 0; j < kSumStrip; ++j) {
            if (apply == Apply::trace) x[j] = (x[j] - m[j]) * v[j];
            if (apply == Apply::sample) x[j] = static_cast<float>((x[j] - mean) * inv);
          }
        }
      }
      if (apply == Apply::none) break;
    }
    bool ok = true;
    for (int64_t j = 0; j < kSumStrip; ++j) {
      sum[j0 + j] = s[j];
      sum2[j0 + j] = s2[j];
      ok &= s2[j] <= kMax;
    }
    finite &= ok;
  }
  for (int64_t t = 0; t < count; ++t) {
    float* row = rows + t * width;
    for (int64_t j = j0; j < width; ++j) {
      const float a = row[j];
      sum[j] += a;
      sum2[j] += static_cast<double>(a) * a;
      if (apply == Apply::trace) row[j] = (a - col_mean[j]) * col_inv[j];
      if (apply == Apply::sample) row[j] = static_cast<float>((a - mean) * inv);
    }
  }
  for (int64_t j = j0; j < width; ++j) finite &= sum2[j] <= kMax;
  return finite;
}
SEIS_SIMD_INLINE bool add_trace_sums_body(const float* rows, int64_t count, int64_t width, double* sum, double* sum2) {
  // (Nothing is written without `apply`.)
  return sums_body<Apply::none>(const_cast<float*>(rows), count, width, sum, sum2, 0, 0, nullptr, nullptr);
}
SEIS_SIMD_VARIANTS(bool, add_trace_sums, (const float* rows, int64_t count, int64_t width, double* sum, double* sum2),
                   (rows, count, width, sum, sum2))

SEIS_SIMD_INLINE bool add_trace_sums_normalizing_body(float* rows, int64_t count, int64_t width, double* sum,
                                                      double* sum2, Normalize mode, double mean, double inv,
                                                      const float* col_mean, const float* col_inv) {
  return mode == Normalize::trace
             ? sums_body<Apply::trace>(rows, count, width, sum, sum2, mean, inv, col_mean, col_inv)
             : sums_body<Apply::sample>(rows, count, width, sum, sum2, mean, inv, col_mean, col_inv);
}
SEIS_SIMD_VARIANTS(bool, add_trace_sums_normalizing,
                   (float* rows, int64_t count, int64_t width, double* sum, double* sum2, Normalize mode, double mean,
                    double inv, const float* col_mean, const float* col_inv),
                   (rows, count, width, sum, sum2, mode, mean, inv, col_mean, col_inv))

// Rows [count][width] normalised in place with the statistics given (as normalize_row computes each
// value; none: left as they are), checking on the way that every value read is finite (the bits of
// all_finite's test), in one pass. With `reverse`, each row is also reversed in the same pass: the
// values of columns j and width - 1 - j are read together and each written, normalised with its own
// column's statistics, to the other's place (a separate std::reverse of each row cost a quarter to
// a half of the pass).
template <Normalize mode>
SEIS_SIMD_INLINE float normalized(float a, int64_t j, double mean, double inv, const float* col_mean,
                                  const float* col_inv) {
  if (mode == Normalize::trace) return (a - col_mean[j]) * col_inv[j];
  if (mode == Normalize::sample) return static_cast<float>((a - mean) * inv);
  return a;
}
SEIS_SIMD_INLINE uint32_t not_finite(float a) {
  uint32_t u;
  std::memcpy(&u, &a, sizeof u);
  return static_cast<uint32_t>((u & 0x7f800000u) == 0x7f800000u);
}
template <Normalize mode>
SEIS_SIMD_INLINE bool normalize_rows_finite_body(double mean, double inv, const float* col_mean, const float* col_inv,
                                                 int64_t width, float* rows, int64_t count, bool reverse) {
  uint32_t bad = 0;
  if (!reverse) {
    for (int64_t t = 0; t < count; ++t) {
      float* row = rows + t * width;
      for (int64_t j = 0; j < width; ++j) {
        const float a = row[j];
        bad |= not_finite(a);
        row[j] = normalized<mode>(a, j, mean, inv, col_mean, col_inv);
      }
    }
    return bad == 0;
  }
  const int64_t half = width / 2;
  for (int64_t t = 0; t < count; ++t) {
    float* lo = rows + t * width;
    float* hi = lo + (width - half);  // the last `half` columns: column width - 1 - j is hi[half - 1 - j]
    for (int64_t j = 0; j < half; ++j) {
      const int64_t k = half - 1 - j;
      const float a = lo[j], b = hi[k];
      bad |= not_finite(a) | not_finite(b);
      lo[j] = normalized<mode>(b, width - 1 - j, mean, inv, col_mean, col_inv);
      hi[k] = normalized<mode>(a, j, mean, inv, col_mean, col_inv);
    }
    if (width % 2 == 1) {  // the middle column stays where it is
      const float a = lo[half];
      bad |= not_finite(a);
      lo[half] = normalized<mode>(a, half, mean, inv, col_mean, col_inv);
    }
  }
  return bad == 0;
}
SEIS_SIMD_INLINE bool normalize_rows_finite_dispatch_body(Normalize mode, double mean, double inv,
                                                          const float* col_mean, const float* col_inv, int64_t width,
                                                          float* rows, int64_t count, bool reverse) {
  // One loop per mode, so that each is vectorised without a branch per value.
  switch (mode) {
    case Normalize::trace:
      return normalize_rows_finite_body<Normalize::trace>(mean, inv, col_mean, col_inv, width, rows, count, reverse);
    case Normalize::sample:
      return normalize_rows_finite_body<Normalize::sample>(mean, inv, col_mean, col_inv, width, rows, count, reverse);
    default:
      return normalize_rows_finite_body<Normalize::none>(mean, inv, col_mean, col_inv, width, rows, count, reverse);
  }
}
SEIS_SIMD_VARIANTS(bool, normalize_rows_finite_dispatch,
                   (Normalize mode, double mean, double inv, const float* col_mean, const float* col_inv, int64_t width,
                    float* rows, int64_t count, bool reverse),
                   (mode, mean, inv, col_mean, col_inv, width, rows, count, reverse))

// GatherNormalizer::apply_row, given its statistics.
SEIS_SIMD_INLINE void normalize_row_body(Normalize mode, double mean, double inv, const float* col_mean,
                                         const float* col_inv, int64_t width, const float* row, float* dst, int64_t x0,
                                         int64_t count, bool reverse) {
  if (mode == Normalize::none) {
    if (!reverse) {
      for (int64_t j = 0; j < count; ++j) dst[j] = row[x0 + j];
    } else {
      for (int64_t j = 0; j < count; ++j) dst[j] = row[width - 1 - x0 - j];
    }
  } else if (mode == Normalize::sample) {
    if (!reverse) {
      for (int64_t j = 0; j < count; ++j) dst[j] = static_cast<float>((row[x0 + j] - mean) * inv);
    } else {
      for (int64_t j = 0; j < count; ++j) dst[j] = static_cast<float>((row[width - 1 - x0 - j] - mean) * inv);
    }
  } else if (!reverse) {
    for (int64_t j = 0; j < count; ++j) dst[j] = (row[x0 + j] - col_mean[x0 + j]) * col_inv[x0 + j];
  } else {
    for (int64_t j = 0; j < count; ++j) {
      const int64_t x = width - 1 - x0 - j;
      dst[j] = (row[x] - col_mean[x]) * col_inv[x];
    }
  }
}
SEIS_SIMD_VARIANTS(void, normalize_row,
                   (Normalize mode, double mean, double inv, const float* col_mean, const float* col_inv, int64_t width,
                    const float* row, float* dst, int64_t x0, int64_t count, bool reverse),
                   (mode, mean, inv, col_mean, col_inv, width, row, dst, x0, count, reverse))

// Per trace and unflipped, into bf16: normalize_row's value, rounded as it is stored (the bits of
// round_to_bf16 after the float32 row, without the row).
SEIS_SIMD_INLINE void normalize_trace_row_bf16_body(const float* col_mean, const float* col_inv, const float* row,
                                                    bf16* dst, int64_t x0, int64_t count) {
  for (int64_t j = 0; j < count; ++j) dst[j] = to_bf16((row[x0 + j] - col_mean[x0 + j]) * col_inv[x0 + j]);
}
SEIS_SIMD_VARIANTS(void, normalize_trace_row_bf16,
                   (const float* col_mean, const float* col_inv, const float* row, bf16* dst, int64_t x0,
                    int64_t count),
                   (col_mean, col_inv, row, dst, x0, count))

// Both modes' statistics from per-trace sums over `rows` rows (GatherNormalizer::finish).
void stats_from_sums(int64_t rows, int64_t width, const double* sum, const double* sum2, float* col_mean,
                     float* col_inv, double* mean, double* inv) {
  constexpr double kTiny = 1e-12;
  double s = 0, s2 = 0;
  for (int64_t j = 0; j < width; ++j) {
    const double m = sum[j] / static_cast<double>(rows);
    const double var = std::max(0.0, sum2[j] / static_cast<double>(rows) - m * m);
    col_mean[j] = static_cast<float>(m);
    col_inv[j] = var > kTiny ? static_cast<float>(1.0 / std::sqrt(var)) : 0.0f;
    s += sum[j];
    s2 += sum2[j];
  }
  const double n = static_cast<double>(rows * width);
  *mean = s / n;
  const double var = std::max(0.0, s2 / n - *mean * *mean);
  *inv = var > kTiny ? 1.0 / std::sqrt(var) : 0.0;
}

}  // namespace

GatherNormalizer::GatherNormalizer(Normalize mode, int64_t width) : mode_(mode), width_(width) {
  if (mode_ != Normalize::none) {
    col_sum_.resize(static_cast<size_t>(width));
    col_sum2_.resize(static_cast<size_t>(width));
    col_mean_.resize(static_cast<size_t>(width));
    col_inv_.resize(static_cast<size_t>(width));
  }
}

void GatherNormalizer::begin() {
  rows_ = 0;
  std::fill(col_sum_.begin(), col_sum_.end(), 0.0);
  std::fill(col_sum2_.begin(), col_sum2_.end(), 0.0);
}

bool GatherNormalizer::add_rows(const float* rows, int64_t count) {
  rows_ += count;
  if (mode_ == Normalize::none) return all_finite(rows, count * width_);
  return add_trace_sums(rows, count, width_, col_sum_.data(), col_sum2_.data());
}

bool GatherNormalizer::add_rows_normalizing(float* rows, int64_t count, const GatherNormalizer& with, bool reverse) {
  SEIS_CHECK(with.mode_ == mode_ && with.width_ == width_, "add_rows_normalizing: normalisers of different shapes");
  rows_ += count;
  if (mode_ == Normalize::none && !reverse) return all_finite(rows, count * width_);
  if (reverse) {
    // The sums of the block (none: none), then its values normalised and each row reversed in one
    // pass while the block is in cache: a strip's columns cannot be written to their mirrored place
    // before the mirrored strip has been summed.
    const bool finite =
        mode_ == Normalize::none || add_trace_sums(rows, count, width_, col_sum_.data(), col_sum2_.data());
    return normalize_rows_finite_dispatch(mode_, with.mean_, with.inv_, with.col_mean_.data(), with.col_inv_.data(),
                                          width_, rows, count, reverse) &&
           finite;
  }
  return add_trace_sums_normalizing(rows, count, width_, col_sum_.data(), col_sum2_.data(), mode_, with.mean_,
                                    with.inv_, with.col_mean_.data(), with.col_inv_.data());
}

void GatherNormalizer::finish() {
  mean_ = inv_ = 0;
  if (mode_ == Normalize::none) return;
  double mean = 0, inv = 0;
  stats_from_sums(rows_, width_, col_sum_.data(), col_sum2_.data(), col_mean_.data(), col_inv_.data(), &mean, &inv);
  if (mode_ == Normalize::sample) {
    mean_ = mean;
    inv_ = inv;
  } else {
    sample_mean_ = mean;
    sample_inv_ = inv;
  }
}

void GatherNormalizer::apply_row(const float* row, float* dst, int64_t x0, int64_t count, bool reverse) const {
  normalize_row(mode_, mean_, inv_, col_mean_.data(), col_inv_.data(), width_, row, dst, x0, count, reverse);
}

void GatherNormalizer::apply_row(const float* row, bf16* dst, int64_t x0, int64_t count, bool reverse) const {
  // Per trace and unflipped, normalised and rounded in one loop (one core, rows of 4096: 23.0 GB/s of
  // float32 at AVX-512 against 12.8 for the two loops, 15.9 against 11.6 at AVX2). Flipped, or per
  // sample, GCC's one loop is slower than two at most levels (flipped: 3.6-5.2 against 11-13 at
  // AVX2 and AVX-512): float32 pieces that stay in L1, each rounded after.
  if (mode_ == Normalize::trace && !reverse) {
    normalize_trace_row_bf16(col_mean_.data(), col_inv_.data(), row, dst, x0, count);
    return;
  }
  constexpr int64_t kPiece = 512;
  float piece[kPiece];
  for (int64_t c = 0; c < count; c += kPiece) {
    const int64_t n = std::min(kPiece, count - c);
    apply_row(row, piece, x0 + c, n, reverse);  // (columns x0 + c + j, or width - 1 - x0 - c - j)
    round_to_bf16(piece, n, dst + c);
  }
}

void GatherNormalizer::apply_rows_in_place(float* rows, int64_t count, bool reverse) const {
  for (int64_t t = 0; t < count; ++t) {
    float* row = rows + t * width_;
    // Normalised where it is, then reversed: column j ends up with column w - 1 - j's normalised
    // value, as apply_row(row, dst, 0, width, true) computes it; both while the row is in cache.
    if (mode_ != Normalize::none) apply_row(row, row, 0, width_, false);
    if (reverse) std::reverse(row, row + width_);
  }
}

bool GatherNormalizer::apply_finite_rows_in_place(float* rows, int64_t count, bool reverse) const {
  return normalize_rows_finite_dispatch(mode_, mean_, inv_, col_mean_.data(), col_inv_.data(), width_, rows, count,
                                        reverse);
}

bool GatherNormalizer::Stats::same_bits(const Stats& o) const {
  auto bytes_equal = [](const void* a, const void* b, size_t n) { return n == 0 || std::memcmp(a, b, n) == 0; };
  return bytes_equal(&mean, &o.mean, sizeof mean) && bytes_equal(&inv, &o.inv, sizeof inv) &&
         col_mean.size() == o.col_mean.size() && col_inv.size() == o.col_inv.size() &&
         bytes_equal(col_mean.data(), o.col_mean.data(), col_mean.size() * sizeof(float)) &&
         bytes_equal(col_inv.data(), o.col_inv.data(), col_inv.size() * sizeof(float));
}

GatherNormalizer::Stats GatherNormalizer::stats(Normalize mode) const {
  Stats s;
  SEIS_CHECK(mode_ != Normalize::none || mode == Normalize::none, "statistics from a normaliser without sums");
  if (mode == Normalize::sample) {
    s.mean = mode_ == Normalize::sample ? mean_ : sample_mean_;
    s.inv = mode_ == Normalize::sample ? inv_ : sample_inv_;
  } else if (mode == Normalize::trace) {
    s.col_mean = col_mean_;
    s.col_inv = col_inv_;
  }
  return s;
}

void GatherNormalizer::set_stats(const Stats& s) {
  mean_ = mode_ == Normalize::sample ? s.mean : 0;
  inv_ = mode_ == Normalize::sample ? s.inv : 0;
  sample_mean_ = sample_inv_ = 0;  // (no sums: stats(Normalize::sample) of a per-trace normaliser is not known)
  if (mode_ == Normalize::trace) {
    SEIS_CHECK(static_cast<int64_t>(s.col_mean.size()) == width_ && static_cast<int64_t>(s.col_inv.size()) == width_,
               "normalisation statistics of " << s.col_mean.size() << " traces for a gather of " << width_);
    col_mean_ = s.col_mean;
    col_inv_ = s.col_inv;
  }
}

bool gather_norm_stats(int64_t height, int64_t width, const float* data, GatherNormalizer::Stats* trace,
                       GatherNormalizer::Stats* sample) {
  GatherNormalizer norm(Normalize::trace, width);
  norm.begin();
  const bool finite = norm.add_rows(data, height);
  norm.finish();
  if (trace) *trace = norm.stats(Normalize::trace);
  if (sample) *sample = norm.stats(Normalize::sample);
  return finite;
}

}  // namespace seis
