// Every SIMD level this CPU has (engine/simd_dispatch.h) gives the baseline's bits in each loop that
// has variants: the reader's row loops (io/gather_rows.h) and the normalisation's sums and rows
// (io/normalize.h), on odd lengths, with NaN, Inf, signed zeros, subnormals and bf16 rounding ties.
#include "engine/simd_dispatch.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/rng.h"
#include "io/gather_rows.h"
#include "io/normalize.h"

namespace seis {
namespace {

// Restores the level the process had.
class SimdLevelGuard {
 public:
  SimdLevelGuard() : saved_(simd_level()) {}
  ~SimdLevelGuard() { set_simd_level(saved_); }

 private:
  SimdLevel saved_;
};

std::vector<SimdLevel> levels_here() {
  std::vector<SimdLevel> out;
  for (int l = 0; l <= static_cast<int>(simd_cpu_level()); ++l) out.push_back(static_cast<SimdLevel>(l));
  return out;
}

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Values of every kind, deterministic: ordinary ones of many magnitudes, and the special cases.
std::vector<float> hostile_values(int64_t n, uint64_t seed, bool finite_only) {
  Rng rng(seed, 1);
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t r = rng.next_u64();
    float x = static_cast<float>(static_cast<double>(r >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
    x *= std::ldexp(1.0f, static_cast<int>(r % 40) - 20);
    switch (r % 17) {
      case 0:
        x = -0.0f;
        break;
      case 1:
        x = bits_to_float(1u + static_cast<uint32_t>(r >> 40) % 0x7fffffu);  // subnormal
        break;
      case 2:
        x = bits_to_float((static_cast<uint32_t>(r >> 32) & 0xffff0000u) | 0x8000u);  // a bf16 tie
        break;
      case 3:
        if (!finite_only) x = std::numeric_limits<float>::quiet_NaN();
        break;
      case 4:
        if (!finite_only) x = bits_to_float(0xff800001u + static_cast<uint32_t>(r >> 44));  // NaN, payload
        break;
      case 5:
        if (!finite_only)
          x = (r & 64) ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
        break;
      default:
        break;
    }
    if (std::isfinite(x) || !finite_only) v[static_cast<size_t>(i)] = x;
  }
  return v;
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

TEST(SimdDispatch, LevelIsCappedAndNamed) {
  SimdLevelGuard guard;
  EXPECT_LE(static_cast<int>(simd_level()), static_cast<int>(simd_cpu_level()));
  set_simd_level(SimdLevel::baseline);
  EXPECT_EQ(simd_level(), SimdLevel::baseline);
  set_simd_level(SimdLevel::avx512);
  EXPECT_EQ(simd_level(), simd_cpu_level()) << "never above what the CPU runs";
  EXPECT_STREQ(simd_level_name(SimdLevel::baseline), "baseline");
  EXPECT_STREQ(simd_level_name(SimdLevel::avx2), "avx2");
  EXPECT_STREQ(simd_level_name(SimdLevel::avx512), "avx512");
  std::printf("this CPU: %s\n", simd_level_name(simd_cpu_level()));
}

TEST(SimdDispatch, RowLoopsGiveTheBaselinesBits) {
  SimdLevelGuard guard;
  if (simd_cpu_level() == SimdLevel::baseline) GTEST_SKIP() << "this CPU has no wider level than the baseline";
  for (const int64_t n : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{15}, int64_t{16}, int64_t{17}, int64_t{63},
                          int64_t{129}, int64_t{1031}}) {
    SCOPED_TRACE(n);
    const std::vector<float> x = hostile_values(n, 100 + static_cast<uint64_t>(n), false);
    std::vector<uint8_t> bytes(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(i * 37 + 5);
    std::vector<bf16> want_bf16;
    std::vector<uint8_t> want_rev;
    for (const SimdLevel l : levels_here()) {
      SCOPED_TRACE(simd_level_name(l));
      set_simd_level(l);
      std::vector<bf16> b(static_cast<size_t>(n));
      round_to_bf16(x.data(), n, b.data());
      std::vector<uint8_t> rev(static_cast<size_t>(n));
      reverse_copy_bytes(bytes.data(), n, rev.data());
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(b[static_cast<size_t>(i)].bits, to_bf16(x[static_cast<size_t>(i)]).bits) << i;
        ASSERT_EQ(rev[static_cast<size_t>(i)], bytes[static_cast<size_t>(n - 1 - i)]) << i;
      }
      if (l == SimdLevel::baseline) {
        want_bf16 = b;
        want_rev = rev;
      }
      EXPECT_TRUE(same_bits(b, want_bf16));
      EXPECT_TRUE(same_bits(rev, want_rev));

      // all_finite: a finite array, then one bad value at every position (the vector body and the
      // scalar tail).
      std::vector<float> f = hostile_values(n, 7, true);
      ASSERT_TRUE(all_finite(f.data(), n));
      for (int64_t i = 0; i < n; ++i) {
        for (const float bad : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
          const float keep = f[static_cast<size_t>(i)];
          f[static_cast<size_t>(i)] = bad;
          ASSERT_FALSE(all_finite(f.data(), n)) << "missed " << bad << " at " << i;
          f[static_cast<size_t>(i)] = keep;
        }
      }
    }
  }
}

TEST(SimdDispatch, PaddingTracesZeroedAlike) {
  SimdLevelGuard guard;
  const int64_t h = 13, w = 37;
  std::vector<uint8_t> valid(static_cast<size_t>(w));
  for (int64_t j = 0; j < w; ++j) valid[static_cast<size_t>(j)] = (j % 5 == 1 || j == w - 1) ? 0 : 1;
  const std::vector<float> x = hostile_values(h * w, 3, false);
  std::vector<float> want;
  for (const SimdLevel l : levels_here()) {
    SCOPED_TRACE(simd_level_name(l));
    set_simd_level(l);
    std::vector<float> d = x;
    zero_padding_traces(valid.data(), h, w, d.data());
    for (int64_t t = 0; t < h; ++t) {
      for (int64_t j = 0; j < w; ++j) {
        const size_t k = static_cast<size_t>(t * w + j);
        if (valid[static_cast<size_t>(j)] == 0) {
          ASSERT_EQ(d[k], 0.0f);
        } else {
          ASSERT_EQ(std::memcmp(&d[k], &x[k], 4), 0);
        }
      }
    }
    if (l == SimdLevel::baseline) want = d;
    EXPECT_TRUE(same_bits(d, want));
  }
}

// The statistics (sums in double, per trace or per sample) and every way of applying them: the
// same bits at every level, and normalize_gather's (the separate pass, compiled for the baseline).
TEST(SimdDispatch, NormalisationGivesTheBaselinesBits) {
  SimdLevelGuard guard;
  const int64_t h = 29, w = 1031;
  std::vector<float> gather = hostile_values(h * w, 11, true);
  for (int64_t t = 0; t < h; ++t) gather[static_cast<size_t>(t * w + 3)] = 2.5f;  // a dead trace
  // Traces whose sums depend on the order of their additions (2^53 - 2^53 + 1 is 1, 1 + 2^53 - 2^53
  // is 0 in double), in a strip of the vectorised sums and among the traces after the last strip.
  for (const int64_t j : {int64_t{5}, w - 2}) {
    gather[static_cast<size_t>(j)] = 0x1p53f;
    gather[static_cast<size_t>(w + j)] = -0x1p53f;
    gather[static_cast<size_t>(2 * w + j)] = 1.0f;
  }
  for (const Normalize mode : {Normalize::trace, Normalize::sample, Normalize::none}) {
    SCOPED_TRACE(normalize_name(mode));
    std::vector<float> separate = gather;
    normalize_gather(mode, h, w, separate.data());
    std::vector<float> want_rows, want_flipped, want_cropped;
    for (const SimdLevel l : levels_here()) {
      SCOPED_TRACE(simd_level_name(l));
      set_simd_level(l);
      GatherNormalizer norm(mode, w);
      norm.begin();
      for (int64_t r0 = 0; r0 < h; r0 += 6) norm.add_rows(gather.data() + r0 * w, std::min<int64_t>(6, h - r0));
      norm.finish();
      if (mode != Normalize::none) {
        // The per-sample statistics are doubles from the traces' sums, which the float32 results
        // above may round away: their bits against the sums taken row by row, trace by trace.
        std::vector<double> sum(static_cast<size_t>(w)), sum2(static_cast<size_t>(w));
        for (int64_t t = 0; t < h; ++t) {
          for (int64_t j = 0; j < w; ++j) {
            const float x = gather[static_cast<size_t>(t * w + j)];
            sum[static_cast<size_t>(j)] += x;
            sum2[static_cast<size_t>(j)] += static_cast<double>(x) * x;
          }
        }
        double s = 0, s2 = 0;
        for (int64_t j = 0; j < w; ++j) {
          s += sum[static_cast<size_t>(j)];
          s2 += sum2[static_cast<size_t>(j)];
        }
        const double mean = s / static_cast<double>(h * w);
        const double inv = 1.0 / std::sqrt(s2 / static_cast<double>(h * w) - mean * mean);
        const GatherNormalizer::Stats st = norm.stats(Normalize::sample);
        EXPECT_EQ(std::memcmp(&st.mean, &mean, sizeof mean), 0) << st.mean << " against " << mean;
        EXPECT_EQ(std::memcmp(&st.inv, &inv, sizeof inv), 0) << st.inv << " against " << inv;
      }
      std::vector<float> rows = gather, flipped = gather;
      norm.apply_rows_in_place(rows.data(), h);
      norm.apply_rows_in_place(flipped.data(), h, true);
      ASSERT_TRUE(same_bits(rows, separate)) << "in place against normalize_gather";
      std::vector<float> cropped(static_cast<size_t>(h * (w - 10)));
      for (int64_t t = 0; t < h; ++t) {
        norm.apply_row(gather.data() + t * w, cropped.data() + t * (w - 10), 3, w - 10, t % 2 == 1);
      }
      // Into bf16 rows: the float32 values rounded as round_to_bf16 rounds them.
      std::vector<bf16> cropped16(cropped.size()), want16(cropped.size());
      for (int64_t t = 0; t < h; ++t) {
        norm.apply_row(gather.data() + t * w, cropped16.data() + t * (w - 10), 3, w - 10, t % 2 == 1);
      }
      round_to_bf16(cropped.data(), static_cast<int64_t>(cropped.size()), want16.data());
      EXPECT_EQ(std::memcmp(cropped16.data(), want16.data(), want16.size() * sizeof(bf16)), 0);
      if (l == SimdLevel::baseline) {
        want_rows = rows;
        want_flipped = flipped;
        want_cropped = cropped;
      }
      EXPECT_TRUE(same_bits(rows, want_rows));
      EXPECT_TRUE(same_bits(flipped, want_flipped));
      EXPECT_TRUE(same_bits(cropped, want_cropped));

      // The fused passes: sums taken while normalising with known statistics give the same sums and
      // the same rows as the separate passes; normalising with the finite check gives the same rows.
      GatherNormalizer sums(mode, w);
      sums.begin();
      std::vector<float> fused = gather, fused_flipped = gather, checked = gather, checked_flipped = gather;
      for (int64_t r0 = 0; r0 < h; r0 += 6) {
        const int64_t n = std::min<int64_t>(6, h - r0);
        ASSERT_TRUE(sums.add_rows_normalizing(fused.data() + r0 * w, n, norm, false));
        ASSERT_TRUE(norm.apply_finite_rows_in_place(checked.data() + r0 * w, n, false));
        ASSERT_TRUE(norm.apply_finite_rows_in_place(checked_flipped.data() + r0 * w, n, true));
      }
      GatherNormalizer again(mode, w), whole(mode, w);
      again.begin();
      ASSERT_TRUE(again.add_rows_normalizing(fused_flipped.data(), h, norm, true));
      // All h rows at once, unflipped: the strips' groups of rows after the first, and a short last one.
      whole.begin();
      std::vector<float> fused_whole = gather;
      ASSERT_TRUE(whole.add_rows_normalizing(fused_whole.data(), h, norm, false));
      sums.finish();
      again.finish();
      whole.finish();
      if (mode != Normalize::none) {
        EXPECT_TRUE(sums.stats(Normalize::trace).same_bits(norm.stats(Normalize::trace)));
        EXPECT_TRUE(sums.stats(Normalize::sample).same_bits(norm.stats(Normalize::sample)));
        EXPECT_TRUE(again.stats(Normalize::sample).same_bits(norm.stats(Normalize::sample)));
        EXPECT_TRUE(whole.stats(Normalize::trace).same_bits(norm.stats(Normalize::trace)));
        EXPECT_TRUE(whole.stats(Normalize::sample).same_bits(norm.stats(Normalize::sample)));
      }
      EXPECT_TRUE(same_bits(fused_whole, rows));
      EXPECT_TRUE(same_bits(fused, rows));
      EXPECT_TRUE(same_bits(fused_flipped, flipped));
      EXPECT_TRUE(same_bits(checked, rows));
      EXPECT_TRUE(same_bits(checked_flipped, flipped));
    }
  }
}

// Every pass that checks values finite on its way finds one NaN or Inf wherever it is: in a strip of
// the vectorised sums, after the last strip, in a later block; the largest finite values pass (their
// squares do not overflow the double sums).
TEST(SimdDispatch, FusedPassesFindEveryNonFiniteValue) {
  SimdLevelGuard guard;
  const int64_t h = 9, w = 71;  // two strips of 32 traces and 7 after them; a middle column when flipped
  std::vector<float> gather = hostile_values(h * w, 21, true);
  for (int64_t j = 0; j < w; ++j) gather[static_cast<size_t>(4 * w + j)] = j % 2 ? -FLT_MAX : FLT_MAX;
  for (const SimdLevel l : levels_here()) {
    set_simd_level(l);
    for (const Normalize mode : {Normalize::trace, Normalize::sample, Normalize::none}) {
      SCOPED_TRACE(::testing::Message() << simd_level_name(l) << ", " << normalize_name(mode));
      GatherNormalizer known(mode, w);
      known.begin();
      ASSERT_TRUE(known.add_rows(gather.data(), h));
      known.finish();
      for (int64_t i = -1; i < h * w; i += (i < 0 ? 1 : 7)) {
        for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                                -std::numeric_limits<float>::infinity()}) {
          std::vector<float> g = gather;
          if (i >= 0) g[static_cast<size_t>(i)] = bad;
          // Blocks of 4 rows: the bad value may lie in the first, second or third.
          bool sums_ok = true, fused_ok = true, checked_ok = true;
          GatherNormalizer sums(mode, w), fused(mode, w);
          sums.begin();
          fused.begin();
          std::vector<float> a = g, b = g;
          for (int64_t r0 = 0; r0 < h; r0 += 4) {
            const int64_t n = std::min<int64_t>(4, h - r0);
            sums_ok = sums.add_rows(g.data() + r0 * w, n) && sums_ok;
            fused_ok = fused.add_rows_normalizing(a.data() + r0 * w, n, known, r0 % 8 == 4) && fused_ok;
            checked_ok = known.apply_finite_rows_in_place(b.data() + r0 * w, n, r0 % 8 == 0) && checked_ok;
          }
          EXPECT_EQ(sums_ok, i < 0) << "add_rows, " << bad << " at " << i;
          EXPECT_EQ(fused_ok, i < 0) << "add_rows_normalizing, " << bad << " at " << i;
          EXPECT_EQ(checked_ok, i < 0) << "apply_finite_rows_in_place, " << bad << " at " << i;
          if (i < 0) break;
        }
      }
    }
  }
}

}  // namespace
}  // namespace seis
