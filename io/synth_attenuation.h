// Causal constant-Q attenuation of the generator's wavelets (io/synth_wavelet.h), per arrival.
//
// A wave that has travelled for a time t through rock of quality factor Q has lost amplitude
// exp(-pi f t*) at frequency f, t* = t / Q, and, the loss being causal, it is also dispersed: the
// operator is the minimum-phase filter of that amplitude spectrum (its phase is the Hilbert transform
// of its log amplitude), computed on the sampling grid as Futterman's and Kjartansson's operators are
// approximated in practice, by folding the real cepstrum of -pi f t* (f up to Nyquist). It broadens
// the pulse and delays its peak, but nothing reaches before the wavelet's onset.
//
// Each arrival is attenuated numerically: its wavelet, sampled at the absolute sample times of its
// trace (so the result is a pure function of the arrival, never of a window), goes through a radix-2
// FFT of N points (N a power of two, >= twice the stamped support, against wrap-around), times the
// operator, and back; the stamped support is the wavelet's own plus a Q tail of kQTailTstars t*,
// Hann-tapered over its last half. The result is scaled to a peak |w| of 1, as the other wavelets.
//
// Pick: what an analyst picks on the noise-free attenuated trace, interpolated between samples:
//   Berlage and Damped (causal): the first break, the first crossing of 10% of the peak |w|
//     (linear interpolation);
//   Ricker, Ormsby and Gabor (symmetric): the peak of the Hilbert envelope (parabolic interpolation).
// Label half-width: the unattenuated wavelet's own (synth_label_half_width), around the new pick. (A
// label widened with the pulse, by the fall of its spectral centroid up to 2x, was tried: it spread
// the label over noise before a causal first break and over weak codas, and the demo's validation
// IoU fell from 0.61 to 0.28; benchmarks/results/README.md, 2026-12-03, sixth and seventh sessions.)
#pragma once
#include <cstdint>
#include <vector>

#include "io/synth_wavelet.h"

namespace seis {

constexpr double kQTailTstars = 10.0;  // the Q tail stamped after the wavelet's support, in t*

struct AttenuatedArrival {
  int64_t k0 = 0;         // absolute sample index of w[0]
  std::vector<double> w;  // the attenuated wavelet at samples k0, k0 + 1, ..., peak |w| = 1
  double pick = 0;        // s, absolute (sample k at k dt)
  double half = 0;        // label half-width around the pick, s
  double peak_gain = 0;   // peak |w| before scaling to 1, relative to the unattenuated wavelet's sampled peak
};

// The wavelet `shape` of an arrival whose unattenuated pick would be at t_arr (s), attenuated by
// tstar = traveltime / Q (s, >= 0), on the grid of sample interval dt. Deterministic; thread-safe.
void attenuate_arrival(const WaveletShape& shape, double t_arr, double tstar, double dt, AttenuatedArrival* out);

// A bound on how far from t_arr anything of attenuate_arrival's result reaches, stamped samples and
// label alike, for any wavelet at frequency >= f_lo and any t* <= tstar_max, at sample interval dt.
double attenuated_reach(double f_lo, double tstar_max, double dt);

}  // namespace seis
