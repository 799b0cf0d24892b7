// Constant-Q attenuation of one arrival: sample the wavelet, FFT, times the minimum-phase operator
// exp(t* L1(f)), inverse FFT to the analytic signal (real part: the trace; modulus: its envelope).
// L1 is the minimum-phase log spectrum of t* = 1 on the N-point grid: log amplitude -pi f, linear in
// t*, so one table per (N, dt) serves every arrival.
#include "io/synth_attenuation.h"

#include <algorithm>
#include <cmath>
#include <complex>

#include "engine/error.h"

namespace seis {
namespace {

using cplx = std::complex<double>;
constexpr double kPi = 3.14159265358979323846;
constexpr double kFirstBreak = 0.1;  // of the peak |w|, as the Damped family's pick (io/synth_wavelet.cpp)
constexpr int64_t kMinPoints = 64;

// In-place radix-2 FFT of a power-of-two length (sign -1: forward; +1: inverse, unscaled). The
// twiddles come from one table per thread for the longest length seen: e^(-2 pi i k / n) is entry
// k (nmax / n), the same bits whatever nmax (its angle is scaled by powers of two only). Complex
// products are written out: std::complex's operator* checks for infinities and NaN (a library call
// per product without -ffast-math).
void fft(std::vector<cplx>& v, int sign) {
  const size_t n = v.size();
  thread_local std::vector<double> tw_re, tw_im;  // e^(-2 pi i k / nmax), k < nmax / 2
  if (tw_re.size() < n / 2) {
    tw_re.resize(n / 2);
    tw_im.resize(n / 2);
    for (size_t k = 0; k < n / 2; ++k) {
      const double a = -2.0 * kPi * static_cast<double>(k) / static_cast<double>(n);
      tw_re[k] = std::cos(a);
      tw_im[k] = std::sin(a);
    }
  }
  const size_t scale = 2 * tw_re.size() / n;
  double* a = reinterpret_cast<double*>(v.data());  // re, im interleaved (std::complex's layout)
  for (size_t i = 1, j = 0; i < n; ++i) {           // bit reversal
    size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(v[i], v[j]);
  }
  const double s = sign < 0 ? 1.0 : -1.0;
  for (size_t len = 2; len <= n; len <<= 1) {
    const size_t half = len / 2, step = scale * (n / len);
    for (size_t i = 0; i < n; i += len) {
      for (size_t k = 0; k < half; ++k) {
        const double wr = tw_re[k * step], wi = s * tw_im[k * step];
        double* u = a + 2 * (i + k);
        double* w = a + 2 * (i + k + half);
        const double vr = w[0] * wr - w[1] * wi, vi = w[0] * wi + w[1] * wr;
        w[0] = u[0] - vr;
        w[1] = u[1] - vi;
        u[0] += vr;
        u[1] += vi;
      }
    }
  }
}

// The minimum-phase log spectrum of amplitude exp(-pi f) (t* = 1 s) at the N grid frequencies of
// sample interval dt, bins 0..N/2: the real cepstrum of -pi |f|, folded onto positive quefrencies,
// transformed back. Cached per thread and (N, dt) (a handful of lengths in any run).
const std::vector<cplx>& min_phase_log_spectrum(int64_t n, double dt) {
  struct Table {
    int64_t n = 0;
    double dt = 0;
    std::vector<cplx> l1;
  };
  thread_local std::vector<Table> cache;
  for (const Table& t : cache) {
    if (t.n == n && t.dt == dt) return t.l1;
  }
  std::vector<cplx> c(static_cast<size_t>(n));
  for (int64_t m = 0; m < n; ++m) {
    const double f = static_cast<double>(std::min(m, n - m)) / (static_cast<double>(n) * dt);
    c[static_cast<size_t>(m)] = -kPi * f;
  }
  fft(c, +1);
  for (int64_t q = 0; q < n; ++q) {
    const double v = c[static_cast<size_t>(q)].real() / static_cast<double>(n);
    const double fold = q == 0 || q == n / 2 ? 1.0 : q < n / 2 ? 2.0 : 0.0;
    c[static_cast<size_t>(q)] = fold * v;
  }
  fft(c, -1);
  if (cache.size() >= 16) cache.erase(cache.begin());  // bounded: the oldest goes
  cache.push_back({n, dt, std::vector<cplx>(c.begin(), c.begin() + n / 2 + 1)});
  return cache.back().l1;
}

int64_t next_pow2(int64_t x) {
  int64_t n = kMinPoints;
  while (n < x) n <<= 1;
  return n;
}

bool causal(SynthWavelet k) { return k == SynthWavelet::kBerlage || k == SynthWavelet::kDamped; }

}  // namespace

void attenuate_arrival(const WaveletShape& shape, double t_arr, double tstar, double dt, AttenuatedArrival* out) {
  SEIS_CHECK(tstar >= 0 && std::isfinite(tstar) && dt > 0, "attenuation: t* " << tstar << ", dt " << dt);
  // Support: the wavelet's own, two samples early (its onset falls between samples), plus the Q tail.
  const double tail = kQTailTstars * tstar;
  const int64_t k0 = static_cast<int64_t>(std::floor((t_arr - shape.before) / dt)) - 2;
  const int64_t k_end = static_cast<int64_t>(std::ceil((t_arr + shape.after + tail) / dt)) + 2;
  const int64_t L = k_end - k0 + 1;
  const int64_t n = next_pow2(2 * L);
  thread_local std::vector<cplx> x, z;
  x.assign(static_cast<size_t>(n), cplx(0.0, 0.0));
  double peak0 = 0;
  for (int64_t i = 0; i < L; ++i) {
    const double v = shape(static_cast<double>(k0 + i) * dt - t_arr);
    x[static_cast<size_t>(i)] = v;
    peak0 = std::max(peak0, std::fabs(v));
  }
  fft(x, -1);
  // Operator and the analytic signal's spectrum.
  const std::vector<cplx>& l1 = min_phase_log_spectrum(n, dt);
  z.assign(static_cast<size_t>(n), cplx(0.0, 0.0));
  for (int64_t m = 0; m <= n / 2; ++m) {
    const cplx xm = x[static_cast<size_t>(m)], lm = l1[static_cast<size_t>(m)];
    const double g = std::exp(tstar * lm.real()), hr = g * std::cos(tstar * lm.imag()),
                 hi = g * std::sin(tstar * lm.imag());
    const cplx ym(xm.real() * hr - xm.imag() * hi, xm.real() * hi + xm.imag() * hr);
    z[static_cast<size_t>(m)] = m == 0 || m == n / 2 ? ym : 2.0 * ym;
  }
  fft(z, +1);
  const double inv_n = 1.0 / static_cast<double>(n);

  // The Q tail after the wavelet's support, Hann-tapered to 0 over its second half.
  out->k0 = k0;
  out->w.resize(static_cast<size_t>(L));
  const double taper_from = t_arr + shape.after + 0.5 * tail, taper_len = 0.5 * tail + 2.0 * dt;
  double peak = 0;
  for (int64_t i = 0; i < L; ++i) {
    const double t = static_cast<double>(k0 + i) * dt;
    double v = z[static_cast<size_t>(i)].real() * inv_n;
    if (t > taper_from) {
      const double u = std::min(1.0, (t - taper_from) / taper_len);
      v *= 0.5 * (1.0 + std::cos(kPi * u));
    }
    out->w[static_cast<size_t>(i)] = v;
    peak = std::max(peak, std::fabs(v));
  }
  SEIS_CHECK(peak > 0,
             "attenuation: an all-zero wavelet (kind " << static_cast<int>(shape.kind) << ", f " << shape.f << ")");
  for (double& v : out->w) v /= peak;
  out->peak_gain = peak0 > 0 ? peak / peak0 : 0.0;

  double pick_index = 0;
  if (causal(shape.kind)) {
    int64_t i = 0;
    while (i < L && std::fabs(out->w[static_cast<size_t>(i)]) < kFirstBreak) ++i;
    const double prev = i > 0 ? std::fabs(out->w[static_cast<size_t>(i - 1)]) : 0.0;
    const double cur = std::fabs(out->w[static_cast<size_t>(std::min(i, L - 1))]);
    const double frac = i > 0 ? std::clamp((kFirstBreak - prev) / std::max(cur - prev, 1e-30), 0.0, 1.0) : 0.0;
    pick_index = static_cast<double>(i - 1) + frac;
  } else {
    int64_t best = 1;
    double best_env2 = -1;  // squared envelope
    for (int64_t i = 1; i + 1 < L; ++i) {
      const double env2 = std::norm(z[static_cast<size_t>(i)]);
      if (env2 > best_env2) best_env2 = env2, best = i;
    }
    const double y0 = std::sqrt(std::norm(z[static_cast<size_t>(best - 1)])), y1 = std::sqrt(best_env2);
    const double y2 = std::sqrt(std::norm(z[static_cast<size_t>(best + 1)])), den = y0 - 2.0 * y1 + y2;
    const double off = std::fabs(den) > 1e-300 ? std::clamp(0.5 * (y0 - y2) / den, -0.5, 0.5) : 0.0;
    pick_index = static_cast<double>(best) + off;
  }
  out->pick = (static_cast<double>(k0) + pick_index) * dt;
  out->half = shape.half;
}

double attenuated_reach(double f_lo, double tstar_max, double dt) {
  // Samples: [t_arr - before - 3 dt, t_arr + after + tail + 3 dt]; the pick lies among them and the
  // label reaches the widest half-width (0.6 / f) around it.
  return std::max(kWaveletMaxBeforePeriods, kWaveletMaxAfterPeriods) / f_lo + kQTailTstars * tstar_max + 3.0 * dt +
         0.6 / f_lo;
}

}  // namespace seis
