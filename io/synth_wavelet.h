// The wavelets of the synthetic generator (io/synth_microseismic.h): Ricker, Ormsby, Berlage and the
// Damped family, each as a shape w(tau) of the time tau (s) from its pick, peak 1, with the support
// to stamp and the half-width of its label. A pure function of (kind, f, dt, n, a): no state, no
// randomness.
#pragma once
#include <cstdint>

#include "io/synth_microseismic.h"

namespace seis {

struct WaveletShape {
  SynthWavelet kind = SynthWavelet::kRicker;
  double f = 0;       // Hz
  double before = 0;  // stamped support [-before, after] around the pick, s
  double after = 0;   //   (outside it the shape is below ~1e-4 of its peak, or tapered to 0)
  double half = 0;    // label half-width, s (synth_label_half_width)
  double c[4] = {};   // Ormsby corners, Hz
  double norm = 1;    // 1 / the unscaled peak
  int power = 0;      // Damped: n
  double rate = 0;    // Damped: a
  double onset = 0;   // Damped: its onset before the pick (the first break), s
  double phase = 0;   // Gabor: phi, rad
  double sigma = 0;   // Gabor: s, the envelope's standard deviation, s

  double operator()(double tau) const;
};

// power and rate are the Damped family's n and a, phase and width the Gabor's phi and s x f (each
// ignored for the other kinds).
WaveletShape make_wavelet(SynthWavelet kind, double f, double dt, int power = 0, double rate = 0, double phase = 0,
                          double width = 0);

// The Damped family's draw: n in {0, ..., max_power} from u0 in [0, 1) (max_power 1..kDampedMaxPower),
// a in n's range from u1 in [0, 1).
constexpr int kDampedMaxPower = 4;
void damped_parameters(double u0, double u1, int max_power, int* power, double* rate);

// The widest stamped support, before and after the pick, of any wavelet at frequency f.
constexpr double kWaveletMaxBeforePeriods = 1.5, kWaveletMaxAfterPeriods = 3.0;

}  // namespace seis
