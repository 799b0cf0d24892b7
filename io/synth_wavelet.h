// The wavelets of the synthetic generator (io/synth_microseismic.h): Ricker, Ormsby and Berlage,
// each as a shape w(tau) of the time tau (s) from its pick, peak 1, with the support to stamp and
// the half-width of its label. A pure function of (kind, f, dt): no state, no randomness.
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

  double operator()(double tau) const;
};

WaveletShape make_wavelet(SynthWavelet kind, double f, double dt);

// The widest stamped support, before and after the pick, of any wavelet at frequency f.
constexpr double kWaveletMaxBeforePeriods = 1.5, kWaveletMaxAfterPeriods = 3.0;

}  // namespace seis
