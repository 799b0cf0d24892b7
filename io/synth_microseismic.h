// Synthetic microseismic gathers: point sources below a line of surface receivers, P and S
// arrivals with their moveout, five wavelet families (below), background noise (white,
// band-limited, pink, optionally correlated across receivers) at a drawn SNR, dead and spiky
// traces with either polarity, unlabelled transients (power-line hum, short bursts on a few
// traces, ground roll) and coherent noise (plane waves of band-limited noise crossing the line), and
// the arrival mask as label. Layout: data and label are [H][W] row-major, H = time samples, W =
// receivers. Each sample is a pure function of (config, seed, index).
//
// SynthRecord makes one continuous record [T][W] of the same pieces instead (events at the times of
// a Poisson process), generated in windows of rows with bounded memory whatever T is.
//
// Both expose the arrivals they drew (SynthPick): the ground truth that the label is drawn from.
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace seis {

enum class VelocityModel { kHomogeneous, kLayered };

// The wavelet of an event (both phases; each phase with its own frequency f):
//   Ricker  zero phase, peak frequency f; the pick is its centre;
//   Ormsby  zero phase, trapezoid pass band with corners 0.4, 0.7, 1.3 and 1.8 f (the top two
//           kept below 0.45 / dt), Hann-tapered over +-1.5 / f; the pick is its centre;
//   Berlage causal, t e^(-5 f t) sin(2 pi f t) for t >= 0 (minimum-phase-like, envelope peak
//           at 0.2 / f, 93% of its energy within 0.6 / f); the pick is its onset;
//   Damped  causal, a family around the Berlage: u^n e^(-a u) sin(2 pi u) of u = f t >= 0, with
//           n in {0, 1, 2} and the damping a drawn per event (n 0: a in [1.5, 6], a damped
//           sinusoid that starts at full slope; n 1: [3, 8]; n 2: [5, 10], emergent), tapered to 0
//           over its third period; codas longer than the Berlage's. The pick is its first break, as
//           an analyst picks a noise-free trace: where |w| first reaches 10% of its peak.
//   Gabor   constant phase of any angle: e^(-tau^2 / 2 s^2) cos(2 pi f tau + phi), phi drawn in
//           [0, 2 pi) per event (a recorded wavelet's phase is rarely zero), s = 0.2-0.35 / f,
//           cut at +-4.25 s; the pick is the centre of its envelope, as for the zero-phase ones.
// Each is scaled to a peak of 1 before the event's amplitude. An attenuated event's wavelets are
// filtered per arrival by a causal constant-Q operator (SynthConfig::q_fraction,
// io/synth_attenuation.h), which broadens and delays them; they are then picked as an analyst picks
// the noise-free attenuated trace: the causal ones (Berlage, Damped) at their first break (10% of
// the peak |w|), the others at the peak of their Hilbert envelope.
enum class SynthWavelet : uint8_t { kRicker = 0, kOrmsby = 1, kBerlage = 2, kDamped = 3, kGabor = 4 };

// Half-width (s) of the label around a pick of this wavelet at frequency f: 0.5 / f for Ricker,
// Ormsby and Gabor (94.5%, 93% and 96-100% of their energy), 0.6 / f for Berlage and Damped. The label is centred on
// the pick, also for the causal wavelets (the Berlage's first 0.6 / f hold 93% of its energy, a Damped one's 55-97%),
// because a picker takes the centre of a labelled run: an asymmetric label would bias its picks late, and a label that
// follows a long coda would teach the network to.
double synth_label_half_width(SynthWavelet w, double f);

// Background noise taken from recordings instead of drawn (`synth --noise-from`, the paper's and
// Tegtow et al.'s recipe: synthetic arrivals with exact labels on the site's own noise).
// io/synth_field_noise.h reads it from continuous records.
struct SynthNoiseWindow {
  int64_t file = 0, t0 = 0, c0 = 0;  // the source, its first row and first receiver
  bool flipped = false;              // receivers in reverse order
  bool negated = false;              // polarity reversed
};
class SynthNoiseSource {
 public:
  virtual ~SynthNoiseSource() = default;
  // out[H*W] (row-major, H time samples): a noise window chosen by `key` alone (deterministic),
  // each trace with its mean removed, scaled so that the median rms of its live traces is 1;
  // live[j] = 0 for a trace that is zero throughout (a dead channel of the recording).
  virtual void window(uint64_t key, int64_t height, int64_t width, float* out, std::vector<uint8_t>* live,
                      SynthNoiseWindow* where) const = 0;
  virtual std::string describe() const = 0;  // the recordings, for the set's attributes
};

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
  // A factor on every velocity of the model (P and S), drawn per event, uniformly in
  // [velocity_scale_lo, velocity_scale_hi], from its own stream: below 1 a slower site, later arrivals
  // and steeper moveouts (at 10 m spacing a P front at 2 km/s crosses 2.5 samples of 2 ms per trace,
  // at the defaults at most about 1). 1:1 (the default): the model as given, bit for bit.
  double velocity_scale_lo = 1.0, velocity_scale_hi = 1.0;

  // Half-width (ms) of every label around its pick, whatever the wavelet and its frequency; 0 (the
  // default): the wavelet's own (synth_label_half_width, 0.5-0.6 / f, wider when attenuated). A
  // fixed width asks the network for the pick itself rather than the arrival's energy: a run's
  // centre then moves with the pick, not with the period. The SNR is measured over the wavelet's
  // own half-width either way, so the data keep their bits; at least one sample (dt).
  double label_half_ms = 0.0;

  // Event amplitudes, relative to the strongest possible event (the noise is set by the SNR).
  double amp_lo = 0.5, amp_hi = 1.0;
  double s_to_p_lo = 1.0, s_to_p_hi = 2.5;              // S/P amplitude ratio at the apex
  double s_freq_ratio_lo = 0.7, s_freq_ratio_hi = 1.0;  // f_S / f_P (Qs < Qp), clamped to freq_lo
  // Radiation-like variation across receivers: factor 1 - r + r cos^2(takeoff - strike), r in [0, 1].
  double radiation = 0.5;
  // Probability per event of a shear-like (double-couple) source instead: P radiates as
  // i + (1 - i) sin 2(takeoff - strike) with an isotropic part i in [0, 0.5], S as cos 2(takeoff -
  // strike), so each phase changes sign across its nodal planes and vanishes near them (a front's
  // polarity flips along the line, as for most induced events).
  double polarity_flips = 0.5;
  // Receiver statics: each receiver's arrivals come late or early by its own shift (the near
  // surface under it), rms `statics_ms` for P, half of it uncorrelated from trace to trace and half
  // smooth along the line (a few sinusoids of 20-300 traces), and the S shifts the P shifts times a
  // ratio in [1.5, 2.5] per gather (per record). Drawn per gather (per record with --continuous);
  // the picks and the label move with the arrivals. 0: none (the generator before statics, bit
  // for bit).
  double statics_ms = 0.0;

  // Background noise: white Gaussian plus band-limited (a 2-pole band-pass of the same white
  // sequence, centre frequency drawn per gather in [noise_band_lo, noise_band_hi], Q = 1).
  bool background_noise = true;                      // false: no background noise (defects below still apply)
  double white_fraction = 0.5;                       // nominal share of noise power that is white
  double noise_band_lo = 5.0, noise_band_hi = 60.0;  // Hz
  double dead_fraction = 0.02;                       // traces recorded as zeros (and labelled 0)
  double spiky_fraction = 0.02;                      // traces with a few spikes of 10-30 x the noise rms
  double reversed_fraction = 0.02;                   // live traces of reversed polarity (miswired; labelled)

  // Wavelets: relative weights of Ricker, Ormsby, Berlage, Damped and Gabor, drawn per event
  // (1:0:0:0:0 = Ricker only, the generator before wavelet mixes, bit for bit; a mix without Damped
  // and Gabor gives the bits of the generator before Damped existed).
  double wavelet_ricker = 1.0, wavelet_ormsby = 1.0, wavelet_berlage = 1.0, wavelet_damped = 1.0;
  double wavelet_gabor = 1.0;
  // The Damped family's onset powers: n drawn uniformly from 0..damped_power_max (1..4). Powers 3
  // and 4 start as t^3 and t^4 under a bell-shaped envelope, with first breaks well before their
  // energy. 2 (the default): the family as it was, bit for bit.
  int damped_power_max = 2;

  // Coloured noise, part of the background noise whose rms sets the SNR. pink_fraction: share of
  // the noise power that is pink (1/f from ~1 / (512 dt) to Nyquist); the rest is split white :
  // band-limited as white_fraction says. correlated_noise: probability per gather (per record) that
  // the noise is mixed along the receiver axis by a Gaussian kernel whose standard deviation is drawn
  // from [corr_length_lo, corr_length_hi] traces (neighbouring-trace correlation ~exp(-1 / (4 s^2))).
  double pink_fraction = 0.3;
  double correlated_noise = 0.5;
  double corr_length_lo = 0.5, corr_length_hi = 4.0;

  // Transients that carry no label (0 in the label, absent from the picks and events), each added on
  // live traces on top of the background noise (not counted in its rms, like the spikes), scaled to
  // it. Gathers: the probability that a gather has power-line hum / 1-3 bursts / one ground-roll
  // wave train. Records: hum is present in each 10 s segment with probability `hum` (faded between
  // segments); bursts and ground roll arrive at the given rates per minute.
  //   hum: 50 or 60 Hz plus its 2nd or 3rd harmonic, rms 0.1-1 x the noise, on all traces or a
  //        random subset, phases partly common;
  //   bursts: 10-60 ms on 1-3 neighbouring traces, impulsive (decaying noise) or wavelet-like
  //        (20-120 Hz), peak 3-20 x the noise;
  //   ground roll: from a surface source 50-500 m off one end of the line, linear moveout at
  //        300-900 m/s, 3-12 Hz, a few cycles, peak 1-6 x the noise at the nearest receiver,
  //        decaying as 1 / sqrt(distance).
  double hum = 0.3;
  double bursts = 0.3;
  double surface_waves = 0.3;
  double bursts_per_minute = 4.0;         // records
  double surface_waves_per_minute = 2.0;  // records

  // Coherent noise, unlabelled: continuous band-limited noise crossing the line as 1-4 plane waves
  // (distant traffic, machinery, pumps, microseisms: a wavefield coherent along the array that has
  // no onset and no end, unlike an event), on live traces on top of the background noise (not
  // counted in its rms). The probability per gather (records: of the record; its waves then run
  // throughout). Each wave: white noise through a band-pass of centre 3-60 Hz and Q 0.7-3, moving
  // out linearly at an apparent velocity of 300-8000 m/s (log-uniform) in either direction; the
  // waves together have rms 0.2-1 x the noise rms.
  double coherent_noise = 0.5;

  // Attenuation: the probability per event (gathers and records) that its arrivals pass through a
  // causal (minimum-phase) constant-Q filter of amplitude exp(-pi f t*), t* = traveltime / Q per
  // arrival (io/synth_attenuation.h). Qp is drawn per event log-uniformly in [q_lo, q_hi], Qs = Qp x
  // a ratio drawn uniformly in [qs_ratio_lo, qs_ratio_hi]. The other events keep their source
  // wavelets (no attenuation, or Q high enough not to matter). 0 (the default): none, the generator
  // before attenuation existed, bit for bit. (Off by default: the one demo trained with 0.75 scored
  // worse on the foreign records than without, benchmarks/results/README.md.)
  double q_fraction = 0.0;
  double q_lo = 60.0, q_hi = 400.0;
  double qs_ratio_lo = 0.4, qs_ratio_hi = 0.8;
  uint64_t seed = 0;

  // Background noise from recordings (SynthNoiseSource): when set, each gather's background noise is
  // a window of it scaled to the gather's noise level, in place of the white, band-limited, pink and
  // correlated noise above (those settings then do nothing); the trace defects and the unlabelled
  // transients are added as configured, and traces dead in the recording are dead traces. With
  // field_noise_share below 1, each gather takes recorded noise with that probability (its own
  // stream) and drawn noise otherwise. Gathers only (not SynthRecord).
  std::shared_ptr<const SynthNoiseSource> field_noise;
  double field_noise_share = 1.0;  // the probability per gather of recorded noise (else drawn as above)
};

// What synth_sample drew for one gather (for the HDF5 attributes, ground truth, tests and debugging).
struct SynthEvent {
  double x = 0, z = 0;            // source position, m
  double origin_time = 0;         // s, relative to the first time sample; may be negative
  double freq_p = 0, freq_s = 0;  // wavelet frequencies (Ricker peak, Ormsby centre, the others' f), Hz
  SynthWavelet wavelet = SynthWavelet::kRicker;
  int damped_power = 0;                     // Damped: n
  double damped_rate = 0;                   // Damped: a
  double gabor_phase = 0, gabor_width = 0;  // Gabor: phi (rad) and s x f
  bool double_couple = false;               // shear-like radiation: polarity changes along the line (polarity_flips)
  double q_p = 0, q_s = 0;                  // quality factors of the attenuation of P and S; 0: not attenuated
  double velocity_scale = 1;                // its factor on the model's velocities (SynthConfig::velocity_scale_lo/hi)
  double amp_p = 0, amp_s = 0;              // signed amplitudes at the apex (sign = polarity)
  double snr_db = 0;                        // gathers: the gather's SNR; records: this event's own
  // Earliest and latest of the event's picks (P and S); NaN when none lies inside the window.
  double first_arrival = std::numeric_limits<double>::quiet_NaN();
  double last_arrival = std::numeric_limits<double>::quiet_NaN();
};

// One arrival on a live (non-dead) trace inside the time window [0, (H-1) dt]: exactly the arrivals
// whose label sample round(time / dt) is 1. (An arrival just outside the window can still label the
// first or last few samples; it has no pick.)
struct SynthPick {
  int64_t event = 0;  // index of the event: in SynthSampleInfo::events, or record-wide (SynthRecord)
  int64_t trace = 0;
  uint8_t phase = 0;  // 0 = P, 1 = S
  double time = 0;    // s from the first sample: origin_time + traveltime, the centre of its label
                      // (the wavelet's centre, a Berlage's onset, a Damped one's first break, a
                      // Gabor's envelope centre); attenuated: the first break of a causal wavelet, the
                      // envelope peak of the others, on the noise-free attenuated trace
  double half = 0;    // label half-width around time, s (synth_label_half_width; wider when attenuated)
};

struct SynthSampleInfo {
  double snr_db = 0;
  double signal_rms = 0;  // rms of the noise-free signal over labelled samples
  double noise_rms = 0;   // rms of the background noise over live (non-dead) traces
  int64_t dead_traces = 0, spiky_traces = 0, reversed_traces = 0;
  // Coloured noise and unlabelled transients drawn for this gather (0 when absent).
  double correlation_length = 0;  // traces (standard deviation of the mixing kernel)
  double hum_hz = 0;              // fundamental
  int64_t bursts = 0;
  std::vector<int64_t> burst_traces;  // every trace a burst touches (ascending, may repeat)
  int64_t surface_waves = 0;
  double surface_velocity = 0;              // m/s
  double surface_source_x = 0;              // m, along the line (negative: before the first receiver)
  std::vector<double> coherent_velocities;  // apparent velocity of each coherent-noise wave, m/s (signed:
                                            // negative moves towards the first receiver); empty: none
  std::vector<SynthEvent> events;
  std::vector<SynthPick> picks;   // ordered by event, then phase, then trace
  bool recorded_noise = false;    // the background noise is recorded (SynthConfig::field_noise) ...
  SynthNoiseWindow noise_window;  // ... from there
};

// Fills data[H*W] and label[H*W] for sample `index`. Deterministic per (cfg, index): any sample
// can be generated alone, in any order and on any thread.
//
// SNR: 20 log10(signal_rms / noise_rms), signal_rms over the labelled samples of the noise-free
// gather, noise_rms of the background noise over all samples of live traces (dead traces and
// spikes are defects, not counted). A gather without labelled samples gets the noise level that a
// one-event gather of mean amplitude would have at the drawn SNR.
//
// Label: 1 within SynthPick::half of each arrival's pick (synth_label_half_width, the same for an
// attenuated arrival around its own pick: io/synth_attenuation.h); for a Ricker +-0.5 / f (f its peak
// frequency), i.e. one period of the peak frequency in total: the main lobe (zeros at +-0.225 / f)
// and most of the side lobes (troughs at +-0.39 / f); 94.5% of the Ricker's energy lies inside. 0 on
// dead traces and elsewhere, and under every unlabelled transient that is not on an arrival.
void synth_sample(const SynthConfig& cfg, int64_t index, float* data, uint8_t* label, SynthSampleInfo* info = nullptr);

// One-way traveltime (s) of a P (s_wave false) or S wave from a source at depth z (m) to a surface
// receiver at horizontal offset h (m), in the config's velocity model with every velocity times
// velocity_scale (an event's SynthEvent::velocity_scale).
double synth_traveltime(const SynthConfig& cfg, double z, double h, bool s_wave, double velocity_scale = 1.0);

// Throws seis::UsageError naming the field when a value is out of range.
void validate_synth_config(const SynthConfig& cfg);

// One continuous record of `samples` (T) time samples x cfg.width receivers at cfg.dt (cfg.height,
// events_min and events_max are not used). Events have origin times from a Poisson process of the
// given rate over [0, T dt), may overlap, and each draws its own SNR from [snr_db_lo, snr_db_hi]:
// its amplitudes are scaled so that its signal rms over its own labelled samples (as if it were
// alone, inside the record or not) is that many dB above the background noise, whose rms is 1 on
// every live trace (in expectation: the record is never whole, so it is not normalised after the
// fact). Sources, wavelets, label, noise model, dead and spiky traces are the gathers' (see
// synth_sample).
//
// Every sample is a pure function of (cfg, rate, its time index, its trace), never of the window
// it is made in: window() over any partition of [0, T) gives the same record bit for bit, and a
// longer record with the same seed begins with the shorter one (unless some traveltime is shorter
// than a wavelet's half-length, 1.25 / f, so that an event's wavelet precedes its origin time).
// How: events are drawn per segment of kSegmentSeconds from a stream of their own (a window redraws
// the few segments whose events can reach it, and recomputes their attenuated arrivals, each from
// the arrival alone); white noise comes in runs of 256 samples per trace,
// each from its own stream; the band-pass filter restarts every 2048 samples from a zero state
// after a lead-in over the true preceding white noise long enough for the start-up transient to
// decay below e^-12 (6 ppm; only a band centre under ~0.12 Hz at dt = 2 ms hits the lead-in's cap
// of 16384 samples and leaves more), so its restarts do not show; spikes are drawn per 2048
// samples per spiky trace. Pink noise is a sum of linearly interpolated random sources of periods
// 1, 2, ..., 256 samples at per-trace offsets (a pure function of the sample index); the mixing
// along receivers is instantaneous (it needs all traces of a row, never other rows); hum is a
// function of absolute time with a per-segment amplitude; bursts and ground roll are drawn per
// segment like the events; each coherent-noise wave is a band-passed white-noise series of absolute
// time (white noise in runs, filter restarts as for the background noise) sampled at t - x / v.
class SynthRecord {
 public:
  static constexpr double kSegmentSeconds = 10.0;

  // UsageError naming the value when the config, samples (>= 1) or rate (>= 0) is out of range.
  SynthRecord(const SynthConfig& cfg, int64_t samples, double events_per_minute);
  ~SynthRecord();

  const SynthConfig& config() const;
  int64_t samples() const;
  double events_per_minute() const;
  double noise_band_hz() const;  // centre of the band-limited noise, drawn once per record
  int64_t dead_traces() const;
  int64_t spiky_traces() const;
  int64_t reversed_traces() const;
  double correlation_length() const;                // traces; 0: noise independent across receivers
  double hum_hz() const;                            // fundamental of the hum (drawn even where no segment has hum)
  std::vector<double> coherent_velocities() const;  // as SynthSampleInfo's; empty: no coherent noise

  // Ground truth, one segment of kSegmentSeconds at a time (in time order, so bounded memory
  // whatever T is): the events with origin time in segment s, numbered first_event, first_event
  // + 1, ... in origin-time order, and their picks (event, phase, trace order) inside [0, (T-1) dt].
  int64_t segments() const;
  void segment_truth(int64_t segment, int64_t first_event, std::vector<SynthEvent>* events,
                     std::vector<SynthPick>* picks) const;

  // Rows [t0, t0 + rows) of the record into data [rows][W] and label [rows][W]. Thread-safe.
  void window(int64_t t0, int64_t rows, float* data, uint8_t* label) const;

 private:
  struct Impl;
  std::unique_ptr<const Impl> impl_;
};

}  // namespace seis
