// Synthetic microseismic gathers: point sources below a line of surface receivers, P and S
// arrivals with their moveout, Ricker wavelets, background noise at a drawn SNR, dead and spiky
// traces, and the arrival mask as label. Layout: data and label are [H][W] row-major, H = time
// samples, W = receivers. Each sample is a pure function of (config, seed, index).
#pragma once
#include <cstdint>
#include <vector>

namespace seis {

enum class VelocityModel { kHomogeneous, kLayered };

struct SynthConfig {
  int64_t height = 256;  // time samples
  int64_t width = 256;   // receivers
  double dt = 0.002;     // s
  double dx = 10.0;      // receiver spacing, m; receiver j sits at x = j * dx on the surface

  int64_t events_min = 0, events_max = 3;  // per gather, drawn uniformly
  double snr_db_lo = 0.0, snr_db_hi = 10.0;
  double freq_lo = 15.0, freq_hi = 45.0;  // Ricker peak frequency of the P wavelet, Hz

  // Velocity. S velocity is vp / vp_vs everywhere. Layered: straight-ray RMS-velocity traveltime
  // t(h)^2 = t0^2 + h^2 / vrms^2 (t0 one-way vertical time to the source, h horizontal offset);
  // exact for the homogeneous model. Defaults: a hard-rock (geothermal-like) site.
  VelocityModel velocity = VelocityModel::kLayered;
  double vp = 5000.0;  // homogeneous model, m/s
  double vp_vs = 1.73;
  std::vector<double> layer_top = {0.0, 300.0, 1000.0};     // m, increasing, first 0
  std::vector<double> layer_vp = {3500.0, 5000.0, 6000.0};  // m/s, one per layer

  // Sources: depth in m; lateral position as a fraction of the receiver line (0 = first receiver,
  // 1 = last; values outside [0, 1] put sources beyond the line).
  double depth_lo = 1200.0, depth_hi = 2200.0;
  double lateral_lo = 0.25, lateral_hi = 0.75;

  // Event amplitudes, relative to the strongest possible event (the noise is set by the SNR).
  double amp_lo = 0.5, amp_hi = 1.0;
  double s_to_p_lo = 1.0, s_to_p_hi = 2.5;              // S/P amplitude ratio at the apex
  double s_freq_ratio_lo = 0.7, s_freq_ratio_hi = 1.0;  // f_S / f_P (Qs < Qp), clamped to freq_lo
  // Radiation-like variation across receivers: factor 1 - r + r cos^2(takeoff - strike), r in [0, 1].
  double radiation = 0.5;

  // Background noise: white Gaussian plus band-limited (a 2-pole band-pass of the same white
  // sequence, centre frequency drawn per gather in [noise_band_lo, noise_band_hi], Q = 1).
  bool background_noise = true;                      // false: no background noise (defects below still apply)
  double white_fraction = 0.5;                       // nominal share of noise power that is white
  double noise_band_lo = 5.0, noise_band_hi = 60.0;  // Hz
  double dead_fraction = 0.02;                       // traces recorded as zeros (and labelled 0)
  double spiky_fraction = 0.02;                      // traces with a few spikes of 10-30 x the noise rms
  uint64_t seed = 0;
};

// What synth_sample drew for one gather (for the HDF5 attributes, tests and debugging).
struct SynthEvent {
  double x = 0, z = 0;            // source position, m
  double origin_time = 0;         // s, relative to the first time sample; may be negative
  double freq_p = 0, freq_s = 0;  // Ricker peak frequencies, Hz
  double amp_p = 0, amp_s = 0;    // signed amplitudes at the apex (sign = polarity)
};
struct SynthSampleInfo {
  double snr_db = 0;
  double signal_rms = 0;  // rms of the noise-free signal over labelled samples
  double noise_rms = 0;   // rms of the background noise over live (non-dead) traces
  int64_t dead_traces = 0, spiky_traces = 0;
  std::vector<SynthEvent> events;
};

// Fills data[H*W] and label[H*W] for sample `index`. Deterministic per (cfg, index): any sample
// can be generated alone, in any order and on any thread.
//
// SNR: 20 log10(signal_rms / noise_rms), signal_rms over the labelled samples of the noise-free
// gather, noise_rms of the background noise over all samples of live traces (dead traces and
// spikes are defects, not counted). A gather without labelled samples gets the noise level that a
// one-event gather of mean amplitude would have at the drawn SNR.
//
// Label: 1 within +-0.5 / f of each arrival (f its Ricker peak frequency), i.e. one period of the
// peak frequency in total: the main lobe (zeros at +-0.225 / f) and most of the side lobes (troughs
// at +-0.39 / f); 94.5% of the Ricker's energy lies inside. 0 on dead traces and elsewhere.
void synth_sample(const SynthConfig& cfg, int64_t index, float* data, uint8_t* label, SynthSampleInfo* info = nullptr);

// One-way traveltime (s) of a P (s_wave false) or S wave from a source at depth z (m) to a surface
// receiver at horizontal offset h (m), in the config's velocity model.
double synth_traveltime(const SynthConfig& cfg, double z, double h, bool s_wave);

// Throws seis::UsageError naming the field when a value is out of range.
void validate_synth_config(const SynthConfig& cfg);

}  // namespace seis
