// Wavelet shapes. The Ricker's expression is the generator's original one, so a Ricker-only
// config gives the same bits as before wavelet mixes existed.
#include "io/synth_wavelet.h"

#include <algorithm>
#include <cmath>

namespace seis {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kRickerStamp = 1.25;    // periods: the Ricker has decayed below 1e-5 of its peak
constexpr double kOrmsbyTaper = 1.5;     // periods: Hann taper of the Ormsby's slowly decaying sinc tails
constexpr double kBerlageDamping = 5.0;  // e^(-5 f t): envelope peak at 0.2 / f
constexpr double kBerlageStamp = 3.0;    // periods: envelope below 1.2e-5 of its peak
constexpr double kDampedStamp = 3.0;     // periods: Hann-tapered to 0 over the last one
constexpr double kFirstBreak = 0.1;      // of the peak: where an analyst sees the arrival begin
constexpr double kGaborCut = 4.25;       // envelope standard deviations: e^(-9.03), 1.2e-4 of its peak

double ricker(double tau, double f) {
  const double a = kPi * kPi * f * f * tau * tau;
  return (1.0 - 2.0 * a) * std::exp(-a);
}

double sinc2(double x) {
  if (std::fabs(x) < 1e-8) return 1.0;
  const double s = std::sin(x) / x;
  return s * s;
}

// Unscaled Ormsby: the inverse transform of a trapezoid with corners c (zero phase).
double ormsby(double t, const double* c) {
  auto term = [&](double fc) { return (kPi * fc) * (kPi * fc) * sinc2(kPi * fc * t); };
  return (term(c[3]) - term(c[2])) / (c[3] - c[2]) - (term(c[1]) - term(c[0])) / (c[1] - c[0]);
}

// u e^(-5u) sin(2 pi u) of u = f t: the Berlage in units of its period.
double berlage_unit(double u) { return u * std::exp(-kBerlageDamping * u) * std::sin(2.0 * kPi * u); }

// Its peak, once: a grid, then golden-section refinement (deterministic).
double berlage_peak() {
  static const double peak = [] {
    double best_u = 0, best = 0;
    for (int i = 1; i < 10000; ++i) {
      const double u = i * 1e-4, v = berlage_unit(u);
      if (v > best) best = v, best_u = u;
    }
    double a = best_u - 1e-4, b = best_u + 1e-4;
    for (int it = 0; it < 60; ++it) {
      const double m1 = b - (b - a) * 0.6180339887498949, m2 = a + (b - a) * 0.6180339887498949;
      if (berlage_unit(m1) < berlage_unit(m2))
        a = m1;
      else
        b = m2;
    }
    return berlage_unit(0.5 * (a + b));
  }();
  return peak;
}

// u^n e^(-a u) sin(2 pi u) of u = f t, tapered (Hann) to 0 over its last period.
double damped_unit(double u, int n, double a) {
  if (u <= 0.0 || u >= kDampedStamp) return 0.0;
  const double taper = u <= kDampedStamp - 1.0 ? 1.0 : 0.5 * (1.0 + std::cos(kPi * (u - (kDampedStamp - 1.0))));
  return std::pow(u, n) * std::exp(-a * u) * std::sin(2.0 * kPi * u) * taper;
}

// Its peak |w| (a grid, then golden-section refinement around the best point) and its first break:
// the first u where |w| reaches kFirstBreak of that peak (bisection inside the grid step that
// crosses it). Deterministic.
void damped_peak_and_onset(int n, double a, double* peak, double* first_break) {
  constexpr int kGrid = 6000;
  const double step = kDampedStamp / kGrid;
  double best_u = step, best = 0;
  for (int i = 1; i < kGrid; ++i) {
    const double v = std::fabs(damped_unit(i * step, n, a));
    if (v > best) best = v, best_u = i * step;
  }
  double lo = best_u - step, hi = best_u + step;
  for (int it = 0; it < 60; ++it) {
    const double m1 = hi - (hi - lo) * 0.6180339887498949, m2 = lo + (hi - lo) * 0.6180339887498949;
    if (std::fabs(damped_unit(m1, n, a)) < std::fabs(damped_unit(m2, n, a)))
      lo = m1;
    else
      hi = m2;
  }
  *peak = std::max(best, std::fabs(damped_unit(0.5 * (lo + hi), n, a)));
  const double level = kFirstBreak * *peak;
  int i = 1;
  while (i < kGrid && std::fabs(damped_unit(i * step, n, a)) < level) ++i;
  double b0 = (i - 1) * step, b1 = i * step;
  for (int it = 0; it < 60; ++it) {
    const double m = 0.5 * (b0 + b1);
    (std::fabs(damped_unit(m, n, a)) < level ? b0 : b1) = m;
  }
  *first_break = b1;
}

// e^(-tau^2 / 2 sigma^2) cos(2 pi f tau + phase): the Gabor, unscaled.
double gabor_unit(double tau, double f, double sigma, double phase) {
  const double e = tau / sigma;
  return std::exp(-0.5 * e * e) * std::cos(2.0 * kPi * f * tau + phase);
}

}  // namespace

double synth_label_half_width(SynthWavelet w, double f) {
  return (w == SynthWavelet::kBerlage || w == SynthWavelet::kDamped ? 0.6 : 0.5) / f;
}

void damped_parameters(double u0, double u1, int max_power, int* power, double* rate) {
  // Envelope u^n e^(-a u): its peak at u = n / a periods (3 and 4: 0.33-0.67, bell-shaped).
  static constexpr double kLo[kDampedMaxPower + 1] = {1.5, 3.0, 5.0, 4.5, 6.0};
  static constexpr double kHi[kDampedMaxPower + 1] = {6.0, 8.0, 10.0, 9.0, 12.0};
  const int top = std::clamp(max_power, 1, kDampedMaxPower);
  *power = std::min(top, static_cast<int>(u0 * static_cast<double>(top + 1)));
  *rate = kLo[*power] + u1 * (kHi[*power] - kLo[*power]);
}

WaveletShape make_wavelet(SynthWavelet kind, double f, double dt, int power, double rate, double phase, double width) {
  WaveletShape s;
  s.kind = kind;
  s.f = f;
  s.half = synth_label_half_width(kind, f);
  switch (kind) {
    case SynthWavelet::kRicker:
      s.before = s.after = kRickerStamp / f;
      break;
    case SynthWavelet::kOrmsby: {
      // Corners 0.4, 0.7, 1.3, 1.8 f; the top two kept under 0.45 / dt (and above f) so that the
      // pass band is not aliased.
      const double top = std::max(0.45 / dt, 1.1 * f);
      s.c[0] = 0.4 * f;
      s.c[1] = 0.7 * f;
      s.c[3] = std::min(1.8 * f, top);
      s.c[2] = std::min(1.3 * f, 0.5 * (f + s.c[3]));
      s.before = s.after = kOrmsbyTaper / f;
      s.norm = 1.0 / ormsby(0.0, s.c);
      break;
    }
    case SynthWavelet::kBerlage:
      s.before = 0.0;
      s.after = kBerlageStamp / f;
      s.norm = 1.0 / berlage_peak();
      break;
    case SynthWavelet::kDamped: {
      s.power = power;
      s.rate = rate;
      double peak = 1, first_break = 0;
      damped_peak_and_onset(power, rate, &peak, &first_break);
      s.norm = 1.0 / peak;
      s.onset = first_break / f;
      s.before = s.onset;
      s.after = kDampedStamp / f - s.onset;
      break;
    }
    case SynthWavelet::kGabor: {
      s.phase = phase;
      s.sigma = width / f;
      s.before = s.after = kGaborCut * s.sigma;
      double peak = 0;  // on a grid of 1/4000 of the support (deterministic; within 1e-5 of the true peak)
      for (int i = -2000; i <= 2000; ++i) {
        peak = std::max(peak, std::fabs(gabor_unit(i * s.after / 2000.0, f, s.sigma, phase)));
      }
      s.norm = 1.0 / std::max(peak, 1e-30);
      break;
    }
  }
  return s;
}

double WaveletShape::operator()(double tau) const {
  switch (kind) {
    case SynthWavelet::kRicker:
      return ricker(tau, f);
    case SynthWavelet::kOrmsby: {
      if (std::fabs(tau) >= after) return 0.0;
      const double taper = 0.5 * (1.0 + std::cos(kPi * tau / after));
      return norm * ormsby(tau, c) * taper;
    }
    case SynthWavelet::kBerlage:
      return tau < 0.0 || tau > after ? 0.0 : norm * berlage_unit(f * tau);
    case SynthWavelet::kDamped:
      return norm * damped_unit(f * (tau + onset), power, rate);
    case SynthWavelet::kGabor:
      return std::fabs(tau) > after ? 0.0 : norm * gabor_unit(tau, f, sigma, phase);
  }
  return 0.0;
}

}  // namespace seis
