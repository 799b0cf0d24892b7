// Synthetic microseismic gathers and continuous records. Layout [rows][W] row-major (time,
// receiver). Cost is dominated by the background noise (one Gaussian per sample, one biquad step
// per sample, plus ~2 Gaussians per sample when pink noise is on); wavelets are stamped only over
// their support (io/synth_wavelet.h). The pieces (event draw, arrival geometry, stamping, trace
// defects, noise filter, spikes, pink noise, mixing along receivers, hum, bursts, ground roll) are
// shared by synth_sample and SynthRecord; the order of the random draws inside each is part of the
// output and must not change. Each newer piece draws from streams of its own, so that turning it
// off (wavelets 1:0:0, pink 0, correlated noise 0, no transients, q_fraction 0) gives the older
// generator's bits. An attenuated arrival (io/synth_attenuation.h) costs two FFTs of a few hundred
// points, per stamping and per pick.
#include "io/synth_microseismic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <string>

#include "engine/error.h"
#include "io/synth_attenuation.h"
#include "io/synth_wavelet.h"

namespace seis {
namespace {

constexpr double kPi = 3.14159265358979323846;
// rms of a unit-peak Ricker over its labelled window |t| <= 0.5 / f (independent of f).
constexpr double kRickerWindowRms = 0.5318;
constexpr int64_t kTraceBlock = 16;  // traces generated together, so the writes into [H][W] are rows

// Counter-based streams: a SplitMix64 sequence whose start is a hash of (seed, index, purpose, sub).
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

enum Purpose : uint64_t {
  kEvents = 1,
  kDefects = 2,
  kTraceNoise = 3,
  // Continuous records: `index` is the segment, run or filter segment; `sub` the trace.
  kRecord = 4,
  kRecordEvents = 5,
  kRecordDefects = 6,
  kRecordNoise = 7,
  kRecordSpikes = 8,
  // Newer pieces: `index` the gather (records: the segment, octave or run), `sub` as noted.
  kWavelets = 9,         // sub: the event
  kEdgeNoise = 10,       // gathers: the virtual traces beyond the line that correlated noise mixes in
  kPink = 11,            // sub: trace * 16 + octave
  kCorrelation = 12,     // sub 0
  kHum = 13,             // sub 0
  kBursts = 14,          // sub 0: the draws; 1 + b: burst b's noise
  kSurfaceWaves = 15,    // sub 0
  kRecordWavelets = 16,  // index the segment, sub the event in it
  kRecordPink = 17,      // index the octave, sub the trace
  kRecordHum = 18,       // index 0 sub 0: the record's hum; index the segment, sub 1: its level
  kRecordBursts = 19,    // index the segment; sub 0 the draws, 1 + b burst b's noise
  kRecordSurface = 20,
  kRecordCorrelation = 21,
  kCoherent = 22,             // sub 0: the draws; 1 + w: wave w's white noise (a run key derived from it)
  kRecordCoherent = 23,       // index 0; sub as kCoherent
  kAttenuation = 24,          // sub: the event
  kRecordAttenuation = 25,    // index the segment, sub the event in it
  kStatics = 26,              // sub 0
  kRecordStatics = 27,        // index 0, sub 0
  kVelocityScale = 28,        // sub: the event
  kRecordVelocityScale = 29,  // index the segment, sub the event in it
  kFieldNoise = 30,           // sub 0: the recorded noise window (SynthConfig::field_noise); 1: whether to take it
};

uint64_t stream_key(uint64_t seed, int64_t index, Purpose purpose, int64_t sub) {
  uint64_t h = mix64(seed + 0x9E3779B97F4A7C15ull);
  h = mix64(h ^ (static_cast<uint64_t>(index) + 0x632BE59BD9B4E019ull));
  h = mix64(h ^ (static_cast<uint64_t>(purpose) * 0xD6E8FEB86659FD93ull));
  return mix64(h ^ (static_cast<uint64_t>(sub) + 0xA0761D6478BD642Full));
}

class Rng {
 public:
  explicit Rng(uint64_t key) : state_(key) {}
  uint64_t next() { return mix64(state_ += 0x9E3779B97F4A7C15ull); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int64_t integer(int64_t lo, int64_t hi) {  // [lo, hi]; modulo bias is below 2^-40 here
    return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
  }
  double sign() { return (next() >> 63) ? 1.0 : -1.0; }
  // Standard normal by Marsaglia and Tsang's ziggurat (128 layers); the layer index and the
  // value come from different bits of one 64-bit draw (Doornik's fix).
  double gaussian();

 private:
  uint64_t state_;
};

struct Ziggurat {
  static constexpr int kLayers = 128;
  static constexpr double kR = 3.442619855899;  // start of the tail
  double k[kLayers], w[kLayers], f[kLayers];
  Ziggurat() {
    const double m1 = 2147483648.0, vn = 9.91256303526217e-3;
    double dn = kR, tn = dn;
    const double q = vn / std::exp(-0.5 * dn * dn);
    k[0] = (dn / q) * m1;
    k[1] = 0;
    w[0] = q / m1;
    w[kLayers - 1] = dn / m1;
    f[0] = 1.0;
    f[kLayers - 1] = std::exp(-0.5 * dn * dn);
    for (int i = kLayers - 2; i >= 1; --i) {
      dn = std::sqrt(-2.0 * std::log(vn / dn + std::exp(-0.5 * dn * dn)));
      k[i + 1] = (dn / tn) * m1;
      tn = dn;
      f[i] = std::exp(-0.5 * dn * dn);
      w[i] = dn / m1;
    }
  }
};
const Ziggurat kZig;

double Rng::gaussian() {
  for (;;) {
    const uint64_t bits = next();
    const int layer = static_cast<int>(bits & (Ziggurat::kLayers - 1));
    const int64_t hz = static_cast<int32_t>(static_cast<uint32_t>(bits >> 32));
    const double x = static_cast<double>(hz) * kZig.w[layer];
    if (static_cast<double>(hz < 0 ? -hz : hz) < kZig.k[layer]) return x;  // inside the layer's core: ~99%
    if (layer == 0) {                                                      // the tail beyond kR
      double xt = 0, y = 0;
      do {
        xt = -std::log(1.0 - uniform()) / Ziggurat::kR;
        y = -std::log(1.0 - uniform());
      } while (y + y < xt * xt);
      return hz > 0 ? Ziggurat::kR + xt : -Ziggurat::kR - xt;
    }
    if (kZig.f[layer] + uniform() * (kZig.f[layer - 1] - kZig.f[layer]) < std::exp(-0.5 * x * x)) return x;
  }
}

// One-way vertical P time t0 to depth z and the RMS P velocity over that path.
void vertical_time(const SynthConfig& cfg, double z, double* t0, double* vrms) {
  if (cfg.velocity == VelocityModel::kHomogeneous) {
    *t0 = z / cfg.vp;
    *vrms = cfg.vp;
    return;
  }
  double t = 0, v2t = 0;
  const size_t n = cfg.layer_top.size();
  for (size_t i = 0; i < n && z > cfg.layer_top[i]; ++i) {
    const double bottom = i + 1 < n ? std::min(z, cfg.layer_top[i + 1]) : z;
    const double dt = (bottom - cfg.layer_top[i]) / cfg.layer_vp[i];
    t += dt;
    v2t += cfg.layer_vp[i] * cfg.layer_vp[i] * dt;
  }
  *t0 = t;
  *vrms = t > 0 ? std::sqrt(v2t / t) : cfg.layer_vp[0];
}

// Per-gather event parameters drawn from the event stream, plus what stamping needs.
// Receiver statics (SynthConfig::statics_ms): the shift of P and of S arrivals on each trace, s.
struct Statics {
  std::vector<double> p, s;
};

Statics draw_statics(const SynthConfig& cfg, int64_t W, uint64_t key) {
  Statics st;
  if (cfg.statics_ms <= 0) return st;
  Rng rng(key);
  const double half_rms = cfg.statics_ms * 1e-3 / std::sqrt(2.0);
  st.p.assign(static_cast<size_t>(W), 0.0);
  for (int64_t j = 0; j < W; ++j) st.p[static_cast<size_t>(j)] = half_rms * rng.gaussian();
  // The smooth part: 3 sinusoids of random wavelength and phase along the line, together of rms
  // half_rms (each sin of unit amplitude has rms 1/sqrt(2)).
  constexpr int kWaves = 3;
  const double amp = half_rms * std::sqrt(2.0 / kWaves);
  for (int k = 0; k < kWaves; ++k) {
    const double wavelength = rng.uniform(20.0, 300.0), phase = rng.uniform(0.0, 2.0 * kPi);
    for (int64_t j = 0; j < W; ++j) {
      st.p[static_cast<size_t>(j)] += amp * std::sin(2.0 * kPi * static_cast<double>(j) / wavelength + phase);
    }
  }
  const double ratio = rng.uniform(1.5, 2.5);
  st.s.resize(st.p.size());
  for (size_t j = 0; j < st.p.size(); ++j) st.s[j] = ratio * st.p[j];
  return st;
}

struct Event {
  SynthEvent pub;
  const Statics* statics = nullptr;   // the gather's (record's) receiver statics; null: none
  WaveletShape shape_p, shape_s;      // of pub.wavelet at freq_p and freq_s
  double t0 = 0, vrms = 0;            // P vertical time and RMS velocity to the source depth
  double strike_p = 0, strike_s = 0;  // radiation lobes, rad
  double iso = 0;                     // double-couple events: the isotropic part of the P radiation
  // Attenuated events in a gather: the pick and label half-width of phase p on trace j at [p W + j],
  // kept from stamping for the ground truth (NaN where not computed: the arrival cannot reach the
  // gather); empty otherwise.
  std::vector<double> att_pick, att_half;
};

// The event's factor on the model's velocities, from its own stream (so that the other draws stay
// those of the generator before the factor existed; a range of one value draws nothing).
void draw_velocity_scale(const SynthConfig& cfg, uint64_t key, Event* e) {
  double scale = cfg.velocity_scale_lo;
  if (cfg.velocity_scale_hi > cfg.velocity_scale_lo) {
    Rng rng(key);
    scale = rng.uniform(cfg.velocity_scale_lo, cfg.velocity_scale_hi);
  }
  e->pub.velocity_scale = scale;
  e->t0 /= scale;
  e->vrms *= scale;
}

// Source position, wavelets, amplitudes and radiation lobes of one event (not its origin time).
void draw_source(const SynthConfig& cfg, double line, Rng& rng, Event* e) {
  SynthEvent& p = e->pub;
  p.z = rng.uniform(cfg.depth_lo, cfg.depth_hi);
  p.x = rng.uniform(cfg.lateral_lo, cfg.lateral_hi) * line;
  p.freq_p = rng.uniform(cfg.freq_lo, cfg.freq_hi);
  p.freq_s = std::max(cfg.freq_lo, p.freq_p * rng.uniform(cfg.s_freq_ratio_lo, cfg.s_freq_ratio_hi));
  const double amp = rng.uniform(cfg.amp_lo, cfg.amp_hi);
  p.amp_p = amp * rng.sign();
  p.amp_s = amp * rng.uniform(cfg.s_to_p_lo, cfg.s_to_p_hi) * rng.sign();
  e->strike_p = rng.uniform(0.0, kPi);
  e->strike_s = rng.uniform(0.0, kPi);
  vertical_time(cfg, p.z, &e->t0, &e->vrms);
}

// The event's wavelet from its own stream (weights wavelet_ricker : ormsby : berlage : damped), and
// its shapes (a Damped one's n and a drawn after the kind, so that the other kinds' draws are those
// of the generator before the family existed).
void draw_wavelet(const SynthConfig& cfg, uint64_t key, Event* e) {
  const double total =
      cfg.wavelet_ricker + cfg.wavelet_ormsby + cfg.wavelet_berlage + cfg.wavelet_damped + cfg.wavelet_gabor;
  Rng rng(key);
  const double u = rng.uniform() * total;
  const double rob = cfg.wavelet_ricker + cfg.wavelet_ormsby + cfg.wavelet_berlage;
  e->pub.wavelet = u < cfg.wavelet_ricker                        ? SynthWavelet::kRicker
                   : u < cfg.wavelet_ricker + cfg.wavelet_ormsby ? SynthWavelet::kOrmsby
                   : u < rob                                     ? SynthWavelet::kBerlage
                   : u < rob + cfg.wavelet_damped                ? SynthWavelet::kDamped
                                                                 : SynthWavelet::kGabor;
  if (e->pub.wavelet == SynthWavelet::kDamped) {
    const double u0 = rng.uniform(), u1 = rng.uniform();
    damped_parameters(u0, u1, cfg.damped_power_max, &e->pub.damped_power, &e->pub.damped_rate);
  }
  // The Gabor's phase and width, drawn for every kind after the draws above (which stay those of
  // the generator before the Gabor existed).
  const double phase = rng.uniform(0.0, 2.0 * kPi), width = rng.uniform(0.2, 0.35);
  if (e->pub.wavelet == SynthWavelet::kGabor) {
    e->pub.gabor_phase = phase;
    e->pub.gabor_width = width;
  }
  // The radiation kind, drawn after the wavelet's parameters (so that those stay the draws of the
  // generator before radiation kinds existed).
  const double flip = rng.uniform(), iso = rng.uniform(0.0, 0.5);
  e->pub.double_couple = flip < cfg.polarity_flips;
  e->iso = e->pub.double_couple ? iso : 0.0;
  const SynthEvent& p = e->pub;
  e->shape_p = make_wavelet(p.wavelet, p.freq_p, cfg.dt, p.damped_power, p.damped_rate, p.gabor_phase, p.gabor_width);
  e->shape_s = make_wavelet(p.wavelet, p.freq_s, cfg.dt, p.damped_power, p.damped_rate, p.gabor_phase, p.gabor_width);
}

// Whether the event is attenuated, Qp log-uniform in [q_lo, q_hi] and Qs = Qp x ratio, from its
// own stream (so that the other draws stay those of the generator before attenuation existed).
void draw_attenuation(const SynthConfig& cfg, uint64_t key, Event* e) {
  if (cfg.q_fraction <= 0) return;
  Rng rng(key);
  const double u = rng.uniform(), log_q = rng.uniform(std::log(cfg.q_lo), std::log(cfg.q_hi));
  const double ratio = rng.uniform(cfg.qs_ratio_lo, cfg.qs_ratio_hi);
  if (u >= cfg.q_fraction) return;
  e->pub.q_p = std::exp(log_q);
  e->pub.q_s = e->pub.q_p * ratio;
}

// An event's P and S arrival times (s from the first sample), traveltimes and amplitudes on
// receiver j.
struct Arrival {
  double tp = 0, ts = 0, amp_p = 0, amp_s = 0;
  double tt_p = 0, tt_s = 0;
};

Arrival arrival_at(const SynthConfig& cfg, const Event& e, int64_t j) {
  const SynthEvent& p = e.pub;
  const double h = static_cast<double>(j) * cfg.dx - p.x;
  const double r = std::sqrt(h * h + p.z * p.z);
  const double spreading = p.z / r;  // 1/r, normalised to 1 at the apex
  const double takeoff = std::atan2(h, p.z);
  const double cp = std::cos(takeoff - e.strike_p), cs = std::cos(takeoff - e.strike_s);
  double rad_p = 1.0 - cfg.radiation + cfg.radiation * cp * cp;
  double rad_s = 1.0 - cfg.radiation + cfg.radiation * cs * cs;
  if (e.pub.double_couple) {  // one fault plane for both phases
    rad_p = e.iso + (1.0 - e.iso) * std::sin(2.0 * (takeoff - e.strike_p));
    rad_s = std::cos(2.0 * (takeoff - e.strike_p));
  }
  const double tp = std::sqrt(e.t0 * e.t0 + (h * h) / (e.vrms * e.vrms));
  // vs = vp / vp_vs in every layer, so the S time is the P time scaled.
  Arrival a;
  a.tt_p = tp;
  a.tt_s = tp * cfg.vp_vs;
  a.tp = p.origin_time + a.tt_p;
  a.ts = p.origin_time + a.tt_s;
  if (e.statics != nullptr && !e.statics->p.empty()) {
    a.tp += e.statics->p[static_cast<size_t>(j)];
    a.ts += e.statics->s[static_cast<size_t>(j)];
  }
  a.amp_p = p.amp_p * spreading * rad_p;
  a.amp_s = p.amp_s * spreading * rad_s;
  return a;
}

enum TraceKind : uint8_t { kLive = 0, kDead = 1, kSpiky = 2 };

// Dead and spiky traces: one uniform draw per trace; then the polarity of each trace (-1: reversed,
// never a dead one), one more draw per trace when reversed_fraction > 0.
std::vector<uint8_t> draw_trace_kinds(const SynthConfig& cfg, int64_t W, Rng& rng, int64_t* n_dead, int64_t* n_spiky,
                                      std::vector<double>* polarity, int64_t* n_reversed) {
  std::vector<uint8_t> kind(static_cast<size_t>(W), kLive);
  *n_dead = *n_spiky = 0;
  for (int64_t j = 0; j < W; ++j) {
    const double u = rng.uniform();
    if (u < cfg.dead_fraction) {
      kind[j] = kDead;
      ++*n_dead;
    } else if (u < cfg.dead_fraction + cfg.spiky_fraction) {
      kind[j] = kSpiky;
      ++*n_spiky;
    }
  }
  polarity->assign(static_cast<size_t>(W), 1.0);
  *n_reversed = 0;
  if (cfg.reversed_fraction > 0) {
    for (int64_t j = 0; j < W; ++j) {
      if (rng.uniform() < cfg.reversed_fraction && kind[j] != kDead) {
        (*polarity)[j] = -1.0;
        ++*n_reversed;
      }
    }
  }
  return kind;
}

// The spikes of a spiky trace over `rows` samples: 1 to 5 of 10-30 x sigma, random sign and place;
// add(k, value) for each.
template <typename Add>
void draw_spikes(Rng& rng, int64_t rows, double sigma, Add add) {
  const int64_t n_spikes = rng.integer(1, 5);
  for (int64_t s = 0; s < n_spikes; ++s) {
    const int64_t k = rng.integer(0, rows - 1);
    add(k, static_cast<float>(rng.sign() * rng.uniform(10.0, 30.0) * sigma));
  }
}

// The band-limited part of the noise: RBJ band-pass biquad (0 dB peak), centre fc, quality q (1 for
// the background noise).
struct BandPass {
  double fc = 0, dt = 0, q = 0;
  double b0 = 0, a1 = 0, a2 = 0;
  BandPass(double fc_hz, double dt_s, double quality = 1.0) : fc(fc_hz), dt(dt_s), q(quality) {
    const double w0 = 2.0 * kPi * fc * dt, alpha = std::sin(w0) / (2.0 * q);
    const double a0 = 1.0 + alpha;
    b0 = alpha / a0;
    a1 = -2.0 * std::cos(w0) / a0;
    a2 = (1.0 - alpha) / a0;
  }
  // Samples for a start-up transient to decay by e^-time_constants (the poles have radius
  // ~exp(-pi fc dt / q)), at most cap.
  int64_t warmup(double time_constants, int64_t cap) const {
    return std::min<int64_t>(cap, static_cast<int64_t>(std::ceil(time_constants * q / (kPi * fc * dt))) + 8);
  }
  // Variance of the output for white input of unit variance: the sum of the squared impulse response.
  double white_gain() const;
};

struct BiquadState {
  double x1 = 0, x2 = 0, y1 = 0, y2 = 0;
  double step(const BandPass& f, double x) {
    const double y = f.b0 * (x - x2) - f.a1 * y1 - f.a2 * y2;
    x2 = x1;
    x1 = x;
    y2 = y1;
    y1 = y;
    return y;
  }
};

double BandPass::white_gain() const {
  double gain = 0;
  BiquadState st;
  const int64_t n = warmup(40.0, int64_t{1} << 22);
  for (int64_t k = 0; k < n; ++k) {
    const double y = st.step(*this, k == 0 ? 1.0 : 0.0);
    gain += y * y;
  }
  return gain;
}

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

constexpr int64_t kWhiteRun = 256;        // white noise: one stream per run of samples (per trace)
constexpr int64_t kFilterSegment = 2048;  // band-pass restarts (and record spike draws) per this many samples
constexpr double kRecordWarmup = 12.0;    // lead-in before each restart, in filter time constants
constexpr int64_t kRecordWarmupCap = 16384;

// Band-passed white noise as a function of the absolute sample index k, at [t0, t1) (t0 may be
// negative): white noise in runs of kWhiteRun samples, run r from the stream run_key(r); the filter
// restarts at every multiple of kFilterSegment from a zero state `warm` samples earlier, so that a
// sample's value does not depend on the range it is made in. emit(k, white, band) for each k.
template <typename RunKey, typename Emit>
void segmented_band_noise(RunKey run_key, const BandPass& filter, int64_t warm, int64_t t0, int64_t t1,
                          std::vector<float>* scratch, Emit emit) {
  for (int64_t g = floor_div(t0, kFilterSegment); g * kFilterSegment < t1; ++g) {
    const int64_t start = g * kFilterSegment, lead = start - warm;
    const int64_t end = std::min(t1, start + kFilterSegment);
    scratch->resize(static_cast<size_t>(end - lead));
    float* w = scratch->data();
    for (int64_t r = floor_div(lead, kWhiteRun); r * kWhiteRun < end; ++r) {
      Rng rng(run_key(r));
      for (int64_t k = r * kWhiteRun; k < (r + 1) * kWhiteRun; ++k) {
        const float x = static_cast<float>(rng.gaussian());
        if (k >= lead && k < end) w[k - lead] = x;
      }
    }
    BiquadState st;
    const int64_t first = std::max(t0, start);  // the lead-in belongs to the segment before
    for (int64_t k = lead; k < end; ++k) {
      const double y = st.step(filter, w[k - lead]);
      if (k >= first) emit(k, w[k - lead], y);
    }
  }
}

// Rows [row0, row0 + rows) of a [rows][W] block: a whole gather (row0 0) or a record's window.
struct Rows {
  int64_t row0 = 0, rows = 0, W = 0;
  float* data = nullptr;
  uint8_t* label = nullptr;
  // With a fixed label width (SynthConfig::label_half_ms): the label is +-label_half around each
  // pick, and `energy`, when set, gets the wavelet-wide mask the gather's SNR is measured over.
  double label_half = 0;
  uint8_t* energy = nullptr;
};

// The wavelet over its support and the label over +-half around the pick (a Berlage's label
// begins before its onset); half is the wavelet's, or b.label_half when set.
void stamp_phase(double dt, const Rows& b, int64_t j, double t_arr, const WaveletShape& w, double amp) {
  const double half = b.label_half > 0 ? b.label_half : w.half;
  // The wavelet's samples (as without a fixed label width: a Ricker is not 0 beyond its support)
  // and the label's, which a wide fixed label can exceed.
  const int64_t w0 = static_cast<int64_t>(std::ceil((t_arr - std::max(w.before, w.half)) / dt));
  const int64_t w1 = static_cast<int64_t>(std::floor((t_arr + std::max(w.after, w.half)) / dt));
  const int64_t k0 = std::max<int64_t>(b.row0, std::min(w0, static_cast<int64_t>(std::ceil((t_arr - half) / dt))));
  const int64_t k1 =
      std::min<int64_t>(b.row0 + b.rows - 1, std::max(w1, static_cast<int64_t>(std::floor((t_arr + half) / dt))));
  for (int64_t k = k0; k <= k1; ++k) {
    const double tau = k * dt - t_arr;
    const int64_t at = (k - b.row0) * b.W + j;
    if (k >= w0 && k <= w1) b.data[at] += static_cast<float>(amp * w(tau));
    if (std::fabs(tau) <= half) b.label[at] = 1;
    if (b.energy != nullptr && std::fabs(tau) <= w.half) b.energy[at] = 1;
  }
}

// An attenuated arrival: the samples, pick and label half-width of its wavelet after the Q filter.
void attenuate(const SynthConfig& cfg, const Event& e, const Arrival& a, int phase, AttenuatedArrival* out) {
  if (phase == 0) {
    attenuate_arrival(e.shape_p, a.tp, a.tt_p / e.pub.q_p, cfg.dt, out);
  } else {
    attenuate_arrival(e.shape_s, a.ts, a.tt_s / e.pub.q_s, cfg.dt, out);
  }
}

// The attenuated wavelet over its samples and the label over +-half around its pick.
void stamp_attenuated(double dt, const Rows& b, int64_t j, const AttenuatedArrival& w, double amp) {
  const int64_t n = static_cast<int64_t>(w.w.size());
  const double half = b.label_half > 0 ? b.label_half : w.half, reach = std::max(half, w.half);
  const int64_t lo = std::min(w.k0, static_cast<int64_t>(std::ceil((w.pick - reach) / dt)));
  const int64_t hi = std::max(w.k0 + n - 1, static_cast<int64_t>(std::floor((w.pick + reach) / dt)));
  const int64_t k0 = std::max(b.row0, lo), k1 = std::min(b.row0 + b.rows - 1, hi);
  for (int64_t k = k0; k <= k1; ++k) {
    const int64_t at = (k - b.row0) * b.W + j, i = k - w.k0;
    if (i >= 0 && i < n) b.data[at] += static_cast<float>(amp * w.w[static_cast<size_t>(i)]);
    const double tau = std::fabs(static_cast<double>(k) * dt - w.pick);
    if (tau <= half) b.label[at] = 1;
    if (b.energy != nullptr && tau <= w.half) b.energy[at] = 1;
  }
}

// Both phases of event e on receiver j (polarity: the trace's), attenuated when the event is; an
// attenuated arrival is computed only when it can reach the block's rows. With `keep`, its pick and
// label half-width go to e.att_pick and e.att_half.
void stamp_event(const SynthConfig& cfg, const Rows& b, int64_t j, const Event& e, double polarity,
                 AttenuatedArrival* scratch, Event* keep = nullptr) {
  const Arrival a = arrival_at(cfg, e, j);
  if (e.pub.q_p <= 0) {
    stamp_phase(cfg.dt, b, j, a.tp, e.shape_p, polarity * a.amp_p);
    stamp_phase(cfg.dt, b, j, a.ts, e.shape_s, polarity * a.amp_s);
    return;
  }
  const double first = static_cast<double>(b.row0) * cfg.dt, last = static_cast<double>(b.row0 + b.rows - 1) * cfg.dt;
  for (int phase = 0; phase < 2; ++phase) {
    const double t = phase == 0 ? a.tp : a.ts;
    const double reach = phase == 0 ? attenuated_reach(e.shape_p.f, a.tt_p / e.pub.q_p, cfg.dt)
                                    : attenuated_reach(e.shape_s.f, a.tt_s / e.pub.q_s, cfg.dt);
    if (t + reach + b.label_half < first || t - reach - b.label_half > last) continue;  // (its label too)
    attenuate(cfg, e, a, phase, scratch);
    stamp_attenuated(cfg.dt, b, j, *scratch, polarity * (phase == 0 ? a.amp_p : a.amp_s));
    if (keep) {
      keep->att_pick[static_cast<size_t>(phase * b.W + j)] = scratch->pick;
      keep->att_half[static_cast<size_t>(phase * b.W + j)] = scratch->half;
    }
  }
}

// Picks of event `e` (numbered `number`) on live traces inside [0, t_max]: P over the traces, then
// S; sets its first and last arrival.
void event_picks(const SynthConfig& cfg, const std::vector<uint8_t>& kind, double t_max, int64_t number, Event* e,
                 std::vector<SynthPick>* picks) {
  const int64_t W = static_cast<int64_t>(kind.size());
  const size_t first = picks->size();
  AttenuatedArrival att;
  for (uint8_t phase = 0; phase < 2; ++phase) {
    for (int64_t j = 0; j < W; ++j) {
      if (kind[j] == kDead) continue;
      const Arrival a = arrival_at(cfg, *e, j);
      double t = phase == 0 ? a.tp : a.ts, half = phase == 0 ? e->shape_p.half : e->shape_s.half;
      if (!e->att_pick.empty()) {
        t = e->att_pick[static_cast<size_t>(phase * W + j)];
        half = e->att_half[static_cast<size_t>(phase * W + j)];
      } else if (e->pub.q_p > 0) {
        attenuate(cfg, *e, a, phase, &att);
        t = att.pick;
        half = att.half;
      }
      if (cfg.label_half_ms > 0) half = cfg.label_half_ms * 1e-3;
      if (t >= 0.0 && t <= t_max) picks->push_back({number, j, phase, t, half});
    }
  }
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (size_t k = first; k < picks->size(); ++k) {
    lo = std::min(lo, (*picks)[k].time);
    hi = std::max(hi, (*picks)[k].time);
  }
  e->pub.first_arrival = picks->size() > first ? lo : std::numeric_limits<double>::quiet_NaN();
  e->pub.last_arrival = picks->size() > first ? hi : std::numeric_limits<double>::quiet_NaN();
}

// ---- Pink noise ---------------------------------------------------------------------------
// A sum of random sources of periods P = 1, 2, 4, ..., 512 samples (Voss-McCartney), each linearly
// interpolated between Gaussian knots: power ~P sinc^4(f P) per source, ~1/f in sum from ~1 / (512
// dt) to Nyquist. Knot m of a source is the first Gaussian of a stream keyed by (source, m), and the
// knots sit at a per-source random offset (so that the octaves of all traces do not step together):
// a sample is a function of its index alone, whatever window it is made in.
constexpr int kPinkOctaves = 10;

// Expected variance of the sum: per source, the mean over the phase u = i / P of (1-u)^2 + u^2.
double pink_variance() {
  static const double v = [] {
    double sum = 0;
    for (int o = 0; o < kPinkOctaves; ++o) {
      const int64_t period = int64_t{1} << o;
      double s = 0;
      for (int64_t i = 0; i < period; ++i) {
        const double u = static_cast<double>(i) / static_cast<double>(period);
        s += (1 - u) * (1 - u) + u * u;
      }
      sum += s / static_cast<double>(period);
    }
    return sum;
  }();
  return v;
}

// Unit-variance (in expectation) pink noise at samples [k0, k1) into out; key(o) keys source o.
template <typename Key>
void pink_noise(Key key, int64_t k0, int64_t k1, std::vector<double>* acc, float* out) {
  const int64_t n = k1 - k0;
  acc->assign(static_cast<size_t>(n), 0.0);
  for (int o = 0; o < kPinkOctaves; ++o) {
    const uint64_t base = key(o);
    const int64_t period = int64_t{1} << o;
    const int64_t off = static_cast<int64_t>(mix64(base) & static_cast<uint64_t>(period - 1));
    auto knot = [&](int64_t m) {
      return Rng(mix64(base ^ (static_cast<uint64_t>(m) * 0xD1B54A32D192ED03ull))).gaussian();
    };
    int64_t m = floor_div(k0 + off, period);
    double g0 = knot(m), g1 = knot(m + 1);
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t x = k + off;
      if (x >= (m + 1) * period) {  // next knot interval (consecutive: reuse the right knot)
        const int64_t next = floor_div(x, period);
        g0 = next == m + 1 ? g1 : knot(next);
        m = next;
        g1 = knot(m + 1);
      }
      const double u = static_cast<double>(x - m * period) / static_cast<double>(period);
      (*acc)[static_cast<size_t>(k - k0)] += (1 - u) * g0 + u * g1;
    }
  }
  const double norm = 1.0 / std::sqrt(pink_variance());
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>((*acc)[static_cast<size_t>(i)] * norm);
}

// ---- Noise correlated across receivers ----------------------------------------------------
// Gaussian kernel of standard deviation s traces, radius ceil(3 s) (at least 1), scaled to a sum of
// squares of 1: independent unit-variance traces mix to unit variance, with neighbouring-trace
// correlation exp(-1 / (4 s^2)).
std::vector<double> mixing_kernel(double s) {
  const int64_t r = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(3.0 * s)));
  std::vector<double> g(static_cast<size_t>(2 * r + 1));
  double ss = 0;
  for (int64_t m = -r; m <= r; ++m) {
    const double v = std::exp(-0.5 * (static_cast<double>(m) / s) * (static_cast<double>(m) / s));
    g[static_cast<size_t>(m + r)] = v;
    ss += v * v;
  }
  for (double& v : g) v /= std::sqrt(ss);
  return g;
}

// Row by row, out[j] += sum_m g[m] field[j + m] for the live traces, field holding W + 2R traces
// (R beyond each end).
void mix_rows(const std::vector<double>& g, const std::vector<uint8_t>& kind, int64_t rows, const float* field,
              float* out, int64_t W) {
  const int64_t R = (static_cast<int64_t>(g.size()) - 1) / 2, WN = W + 2 * R;
  for (int64_t k = 0; k < rows; ++k) {
    const float* f = field + k * WN;
    for (int64_t j = 0; j < W; ++j) {
      if (kind[j] == kDead) continue;
      double v = 0;
      for (int64_t m = 0; m <= 2 * R; ++m) v += g[static_cast<size_t>(m)] * f[j + m];
      out[k * W + j] += static_cast<float>(v);
    }
  }
}

// ---- Unlabelled transients ----------------------------------------------------------------

// Power-line hum: a fundamental (50 or 60 Hz, +-0.05) and its 2nd or 3rd harmonic at 0.1-0.5 of its
// amplitude, on all traces or on a random share of them, with per-trace amplitude 0.5-1.5 and
// phases partly common (the same line feeds neighbouring channels). Unit rms (before the level).
struct Hum {
  double f0 = 0, f2 = 0, rel = 0;
  bool on1 = false, on2 = false;           // components under 0.45 / dt
  std::vector<double> a1c, a1s, a2c, a2s;  // per trace: amplitude x (cos, sin) of the phases; 0 if off
};

Hum draw_hum(const SynthConfig& cfg, const std::vector<uint8_t>& kind, Rng& r) {
  Hum h;
  const int64_t W = static_cast<int64_t>(kind.size());
  h.f0 = (r.uniform() < 0.5 ? 50.0 : 60.0) + r.uniform(-0.05, 0.05);
  h.f2 = h.f0 * static_cast<double>(r.integer(2, 3));
  h.rel = r.uniform(0.1, 0.5);
  h.on1 = h.f0 < 0.45 / cfg.dt;
  h.on2 = h.f2 < 0.45 / cfg.dt;
  const bool all = r.uniform() < 0.5;
  const double share = r.uniform(0.2, 0.8), jitter = r.uniform(0.0, 1.0);
  const double ph1 = r.uniform(0.0, 2.0 * kPi), ph2 = r.uniform(0.0, 2.0 * kPi);
  // Mean square of a (sin + rel sin) over time and of a over traces (E a^2 = 13/12).
  const double unit = std::sqrt(2.0 / ((1.0 + h.rel * h.rel) * 13.0 / 12.0));
  for (int64_t j = 0; j < W; ++j) {
    const bool on = all || r.uniform() < share;
    const double a = r.uniform(0.5, 1.5) * unit;
    const double p1 = ph1 + jitter * r.uniform(-kPi, kPi), p2 = ph2 + jitter * r.uniform(-kPi, kPi);
    const bool live = on && kind[j] != kDead;
    h.a1c.push_back(live && h.on1 ? a * std::cos(p1) : 0.0);
    h.a1s.push_back(live && h.on1 ? a * std::sin(p1) : 0.0);
    h.a2c.push_back(live && h.on2 ? a * h.rel * std::cos(p2) : 0.0);
    h.a2s.push_back(live && h.on2 ? a * h.rel * std::sin(p2) : 0.0);
  }
  return h;
}

// Adds level(k) x hum at the window's rows (k the absolute sample; the phase is of absolute time).
template <typename Level>
void add_hum(const Hum& h, double dt, const Rows& b, Level level) {
  for (int64_t k = b.row0; k < b.row0 + b.rows; ++k) {
    const double g = level(k);
    if (g == 0.0) continue;
    const double t = static_cast<double>(k) * dt;
    const double s1 = std::sin(2.0 * kPi * h.f0 * t), c1 = std::cos(2.0 * kPi * h.f0 * t);
    const double s2 = std::sin(2.0 * kPi * h.f2 * t), c2 = std::cos(2.0 * kPi * h.f2 * t);
    float* row = b.data + (k - b.row0) * b.W;
    for (int64_t j = 0; j < b.W; ++j) {
      const double v = s1 * h.a1c[j] + c1 * h.a1s[j] + s2 * h.a2c[j] + c2 * h.a2s[j];
      row[j] += static_cast<float>(g * v);
    }
  }
}

// A burst on 1-3 neighbouring traces: 10-60 ms of decaying noise (impulsive) or of a 20-120 Hz
// oscillation under a Hann window (wavelet-like), peak 3-20 x the noise, weaker on the neighbours.
struct Burst {
  int64_t k0 = 0, n = 0, j0 = 0, traces = 0;
  double fac[3] = {1, 1, 1};
  bool impulsive = false;
  double freq = 0, phase = 0, peak = 0;
  uint64_t key = 0;  // stream of the impulsive burst's noise
};

Burst draw_burst(Rng& r, int64_t k0, int64_t W, double dt, double sigma, uint64_t key) {
  Burst q;
  q.k0 = k0;
  q.key = key;
  q.j0 = r.integer(0, W - 1);
  q.traces = r.integer(1, 3);
  q.n = std::max<int64_t>(1, std::llround(r.uniform(0.01, 0.06) / dt));
  q.impulsive = r.uniform() < 0.5;
  q.freq = std::min(r.uniform(20.0, 120.0), 0.4 / dt);
  q.phase = r.uniform(0.0, 2.0 * kPi);
  q.peak = r.uniform(3.0, 20.0) * sigma;
  q.fac[1] = r.uniform(0.3, 1.0);
  q.fac[2] = r.uniform(0.3, 1.0);
  return q;
}

constexpr double kBurstMaxSeconds = 0.07;  // a burst's length and more

void add_burst(const Burst& q, const std::vector<uint8_t>& kind, double dt, const Rows& b,
               std::vector<int64_t>* touched) {
  std::vector<double> w(static_cast<size_t>(q.n));
  Rng g(q.key);
  double peak = 0;
  for (int64_t i = 0; i < q.n; ++i) {
    const double x = static_cast<double>(i);
    const double hann = std::sin(kPi * (x + 0.5) / static_cast<double>(q.n));
    w[i] = q.impulsive ? g.gaussian() * std::exp(-4.0 * x / static_cast<double>(q.n))
                       : std::sin(2.0 * kPi * q.freq * x * dt + q.phase) * hann * hann;
    peak = std::max(peak, std::fabs(w[i]));
  }
  const int64_t W = static_cast<int64_t>(kind.size());
  for (int64_t t = 0; t < q.traces; ++t) {
    const int64_t j = q.j0 + t;
    if (j >= W || kind[j] == kDead) continue;
    if (touched) touched->push_back(j);
    const double a = q.peak * q.fac[t] / std::max(peak, 1e-30);
    for (int64_t i = 0; i < q.n; ++i) {
      const int64_t k = q.k0 + i;
      if (k < b.row0 || k >= b.row0 + b.rows) continue;
      b.data[(k - b.row0) * b.W + j] += static_cast<float>(a * w[i]);
    }
  }
}

// Ground roll: a surface source 50-500 m off one end of the line; linear moveout at 300-900 m/s
// from t_near at the nearest receiver; a Gabor wave train (2-4 cycles of 3-12 Hz under a
// Gaussian); peak 1-6 x the noise at the nearest receiver, decaying as 1 / sqrt(distance).
struct GroundRoll {
  double xs = 0, r_near = 0, v = 0, f = 0, width = 0, phase = 0, peak = 0, t_near = 0;
};

constexpr double kRollMaxWidth = 4.0 / (4.0 * 3.0);  // Gaussian standard deviation, s: 4 cycles of 3 Hz
constexpr double kRollVelocityLo = 300.0;

GroundRoll draw_ground_roll(Rng& r, double line, double dt, double sigma, double t_near) {
  GroundRoll g;
  g.t_near = t_near;
  const bool after = r.uniform() < 0.5;
  g.r_near = r.uniform(50.0, 500.0);
  g.xs = after ? line + g.r_near : -g.r_near;
  g.v = r.uniform(kRollVelocityLo, 900.0);
  g.f = std::min(r.uniform(3.0, 12.0), 0.4 / dt);
  g.width = r.uniform(2.0, 4.0) / (4.0 * g.f);
  g.phase = r.uniform(0.0, 2.0 * kPi);
  g.peak = r.uniform(1.0, 6.0) * sigma;
  return g;
}

void add_ground_roll(const GroundRoll& g, const std::vector<uint8_t>& kind, double dx, double dt, const Rows& b) {
  const int64_t W = static_cast<int64_t>(kind.size());
  for (int64_t j = 0; j < W; ++j) {
    if (kind[j] == kDead) continue;
    const double r = std::fabs(static_cast<double>(j) * dx - g.xs);
    const double t = g.t_near + (r - g.r_near) / g.v, a = g.peak * std::sqrt(g.r_near / r);
    const int64_t k0 = std::max<int64_t>(b.row0, static_cast<int64_t>(std::ceil((t - 3.0 * g.width) / dt)));
    const int64_t k1 =
        std::min<int64_t>(b.row0 + b.rows - 1, static_cast<int64_t>(std::floor((t + 3.0 * g.width) / dt)));
    for (int64_t k = k0; k <= k1; ++k) {
      const double tau = static_cast<double>(k) * dt - t, e = tau / g.width;
      b.data[(k - b.row0) * b.W + j] +=
          static_cast<float>(a * std::exp(-0.5 * e * e) * std::cos(2.0 * kPi * g.f * tau + g.phase));
    }
  }
}

// Coherent noise: plane waves of band-passed white noise crossing the line (see SynthConfig). Each
// wave is a series u(n) of the absolute sample index n (segmented_band_noise, unit variance in
// expectation after `amp`'s gain correction), recorded at receiver j as u(k - x_j s / dt) for
// sample k, linearly interpolated between samples.
struct PlaneWave {
  double slowness = 0;        // s/m along the line; negative: moving towards the first receiver
  double amp = 0;             // factor on the band-passed unit white noise: expected rms `level x sqrt(share)`
  BandPass filter{1.0, 1.0};  // centre frequency and quality drawn per wave
  int64_t warm = 0;
  uint64_t key = 0;  // its white-noise runs: mix64(key ^ run)
};

constexpr double kCoherentVelocityLo = 300.0, kCoherentVelocityHi = 8000.0;

// 1-4 waves with power shares drawn and normalised, together of expected rms `level`; wave w's noise
// from the stream key_of(w).
template <typename KeyOf>
std::vector<PlaneWave> draw_plane_waves(Rng& r, double dt, double level, KeyOf key_of) {
  std::vector<PlaneWave> waves(static_cast<size_t>(r.integer(1, 4)));
  std::vector<double> share(waves.size());
  double total = 0;
  for (double& v : share) total += v = r.uniform(0.2, 1.0);
  for (size_t w = 0; w < waves.size(); ++w) {
    PlaneWave& p = waves[w];
    const double v = std::exp(r.uniform(std::log(kCoherentVelocityLo), std::log(kCoherentVelocityHi)));
    p.slowness = (r.uniform() < 0.5 ? 1.0 : -1.0) / v;
    const double fc = std::min(r.uniform(3.0, 60.0), 0.4 / dt);
    p.filter = BandPass(fc, dt, r.uniform(0.7, 3.0));
    p.warm = p.filter.warmup(kRecordWarmup, kRecordWarmupCap);
    p.amp = level * std::sqrt(share[w] / total / std::max(p.filter.white_gain(), 1e-30));
    p.key = key_of(static_cast<int64_t>(w));
  }
  return waves;
}

// Adds the waves at the block's rows on live traces.
void add_plane_waves(const std::vector<PlaneWave>& waves, const std::vector<uint8_t>& kind, double dx, double dt,
                     const Rows& b) {
  std::vector<float> white;
  std::vector<double> u;
  const int64_t W = static_cast<int64_t>(kind.size());
  for (const PlaneWave& p : waves) {
    // Sample positions k - j dx s / dt over the block lie in [lo, hi].
    const double span = static_cast<double>(W - 1) * dx * p.slowness / dt;
    const double lo = static_cast<double>(b.row0) - std::max(0.0, span);
    const double hi = static_cast<double>(b.row0 + b.rows - 1) - std::min(0.0, span);
    const int64_t n0 = static_cast<int64_t>(std::floor(lo)), n1 = static_cast<int64_t>(std::floor(hi)) + 2;
    u.assign(static_cast<size_t>(n1 - n0), 0.0);
    segmented_band_noise(
        [&](int64_t run) { return mix64(p.key ^ (static_cast<uint64_t>(run) + 0x2545F4914F6CDD1Dull)); }, p.filter,
        p.warm, n0, n1, &white, [&](int64_t k, float, double y) { u[static_cast<size_t>(k - n0)] = y; });
    for (int64_t j = 0; j < W; ++j) {
      if (kind[j] == kDead) continue;
      const double delay = static_cast<double>(j) * dx * p.slowness / dt;
      for (int64_t k = b.row0; k < b.row0 + b.rows; ++k) {
        const double at = static_cast<double>(k) - delay;
        const int64_t n = static_cast<int64_t>(std::floor(at));
        const double f = at - static_cast<double>(n);
        const size_t i = static_cast<size_t>(n - n0);
        b.data[(k - b.row0) * b.W + j] += static_cast<float>(p.amp * ((1.0 - f) * u[i] + f * u[i + 1]));
      }
    }
  }
}

[[noreturn]] void bad_field(const std::string& msg) { throw UsageError("synthetic generator: " + msg); }

}  // namespace

void validate_synth_config(const SynthConfig& c) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) bad_field(what);
  };
  need(c.height >= 1 && c.width >= 1, "height and width must be at least 1");
  need(c.dt > 0 && c.dx > 0, "dt and dx must be positive");
  need(c.events_min >= 0 && c.events_min <= c.events_max, "events must satisfy 0 <= events_min <= events_max");
  need(c.snr_db_lo <= c.snr_db_hi, "snr_db_lo must not exceed snr_db_hi");
  {
    std::ostringstream os;
    os << "freq_lo..freq_hi (" << c.freq_lo << ".." << c.freq_hi << " Hz) must be positive, ordered and below Nyquist ("
       << 0.5 / c.dt << " Hz)";
    need(c.freq_lo > 0 && c.freq_lo <= c.freq_hi && c.freq_hi < 0.5 / c.dt, os.str());
  }
  need(c.vp_vs >= 1.0, "vp_vs must be at least 1");
  if (c.velocity == VelocityModel::kHomogeneous) {
    need(c.vp > 0, "vp must be positive");
  } else {
    need(!c.layer_top.empty() && c.layer_top.size() == c.layer_vp.size(),
         "layer_top and layer_vp must be non-empty and of equal length");
    need(c.layer_top[0] == 0.0, "layer_top[0] must be 0 (the surface)");
    for (size_t i = 0; i < c.layer_top.size(); ++i) {
      need(c.layer_vp[i] > 0, "layer_vp values must be positive");
      need(i == 0 || c.layer_top[i] > c.layer_top[i - 1], "layer_top must be strictly increasing");
    }
  }
  need(c.depth_lo > 0 && c.depth_lo <= c.depth_hi, "depth range must satisfy 0 < depth_lo <= depth_hi");
  need(c.lateral_lo <= c.lateral_hi, "lateral_lo must not exceed lateral_hi");
  need(c.label_half_ms == 0 || (c.label_half_ms >= 1000 * c.dt && c.label_half_ms <= 1000),
       "label_half_ms must be 0 (the wavelet's) or lie within [dt, 1000] ms");
  need(c.velocity_scale_lo >= 0.1 && c.velocity_scale_lo <= c.velocity_scale_hi && c.velocity_scale_hi <= 10,
       "velocity scale range must satisfy 0.1 <= velocity_scale_lo <= velocity_scale_hi <= 10");
  need(c.amp_lo > 0 && c.amp_lo <= c.amp_hi, "amplitude range must satisfy 0 < amp_lo <= amp_hi");
  need(c.s_to_p_lo > 0 && c.s_to_p_lo <= c.s_to_p_hi, "S/P ratio range must satisfy 0 < lo <= hi");
  need(c.s_freq_ratio_lo > 0 && c.s_freq_ratio_lo <= c.s_freq_ratio_hi && c.s_freq_ratio_hi <= 1.0,
       "S frequency ratio range must satisfy 0 < lo <= hi <= 1");
  need(c.radiation >= 0 && c.radiation <= 1, "radiation must lie in [0, 1]");
  need(c.polarity_flips >= 0 && c.polarity_flips <= 1, "polarity_flips (a probability) must lie in [0, 1]");
  need(c.statics_ms >= 0 && c.statics_ms <= 100, "statics_ms (the rms of the receiver statics) must lie in [0, 100]");
  need(c.reversed_fraction >= 0 && c.reversed_fraction <= 1, "reversed_fraction must lie in [0, 1]");
  need(c.white_fraction >= 0 && c.white_fraction <= 1, "white_fraction must lie in [0, 1]");
  need(c.noise_band_lo > 0 && c.noise_band_lo <= c.noise_band_hi, "noise band must satisfy 0 < lo <= hi");
  need(c.dead_fraction >= 0 && c.spiky_fraction >= 0 && c.dead_fraction + c.spiky_fraction <= 1,
       "dead_fraction and spiky_fraction must be >= 0 with a sum <= 1");
  auto fraction = [](double v) { return v >= 0 && v <= 1; };  // false for NaN
  const double wsum = c.wavelet_ricker + c.wavelet_ormsby + c.wavelet_berlage + c.wavelet_damped + c.wavelet_gabor;
  need(c.wavelet_ricker >= 0 && c.wavelet_ormsby >= 0 && c.wavelet_berlage >= 0 && c.wavelet_damped >= 0 &&
           c.wavelet_gabor >= 0 && std::isfinite(wsum) && wsum > 0,
       "wavelet weights (Ricker:Ormsby:Berlage:Damped:Gabor) must be finite, >= 0 and not all 0");
  need(c.damped_power_max >= 1 && c.damped_power_max <= kDampedMaxPower,
       "damped_power_max must lie in 1.." + std::to_string(kDampedMaxPower));
  need(fraction(c.pink_fraction), "pink_fraction must lie in [0, 1]");
  need(fraction(c.correlated_noise), "correlated_noise (a probability) must lie in [0, 1]");
  need(c.corr_length_lo > 0 && c.corr_length_lo <= c.corr_length_hi && c.corr_length_hi <= 64,
       "correlation length must satisfy 0 < lo <= hi <= 64 traces");
  need(fraction(c.hum) && fraction(c.bursts) && fraction(c.surface_waves),
       "hum, bursts and surface_waves (probabilities per gather) must lie in [0, 1]");
  need(fraction(c.coherent_noise), "coherent_noise (a probability) must lie in [0, 1]");
  need(fraction(c.field_noise_share), "field_noise_share (a probability) must lie in [0, 1]");
  need(fraction(c.q_fraction), "q_fraction (a probability per event) must lie in [0, 1]");
  need(c.q_lo >= 10 && c.q_lo <= c.q_hi && c.q_hi <= 1e5, "Q range must satisfy 10 <= q_lo <= q_hi <= 100000");
  need(c.qs_ratio_lo > 0 && c.qs_ratio_lo <= c.qs_ratio_hi && c.qs_ratio_hi <= 2,
       "Qs/Qp ratio range must satisfy 0 < qs_ratio_lo <= qs_ratio_hi <= 2");
  need(c.bursts_per_minute >= 0 && c.bursts_per_minute <= 6000 && c.surface_waves_per_minute >= 0 &&
           c.surface_waves_per_minute <= 6000,
       "bursts and surface waves per minute must lie in [0, 6000]");
}

double synth_traveltime(const SynthConfig& cfg, double z, double h, bool s_wave, double velocity_scale) {
  double t0 = 0, vrms = 0;
  vertical_time(cfg, z, &t0, &vrms);
  t0 /= velocity_scale;
  vrms *= velocity_scale;
  const double t = std::sqrt(t0 * t0 + (h * h) / (vrms * vrms));
  // vs = vp / vp_vs in every layer, so the S time is the P time scaled.
  return s_wave ? t * cfg.vp_vs : t;
}

void synth_sample(const SynthConfig& cfg, int64_t index, float* data, uint8_t* label, SynthSampleInfo* info) {
  validate_synth_config(cfg);
  const int64_t H = cfg.height, W = cfg.width;
  const double T = static_cast<double>(H - 1) * cfg.dt;
  std::fill(data, data + H * W, 0.0f);
  std::fill(label, label + H * W, uint8_t{0});

  // ---- Gather-level draws: SNR, noise band, events. ----
  Rng rng(stream_key(cfg.seed, index, kEvents, 0));
  const double snr_db = rng.uniform(cfg.snr_db_lo, cfg.snr_db_hi);
  const double noise_fc = std::min(rng.uniform(cfg.noise_band_lo, cfg.noise_band_hi), 0.45 / cfg.dt);
  const int64_t n_events = rng.integer(cfg.events_min, cfg.events_max);
  const double line = static_cast<double>(W - 1) * cfg.dx;
  std::vector<Event> events(static_cast<size_t>(n_events));
  const Statics statics = draw_statics(cfg, W, stream_key(cfg.seed, index, kStatics, 0));
  for (size_t i = 0; i < events.size(); ++i) {
    Event& e = events[i];
    e.statics = &statics;
    draw_source(cfg, line, rng, &e);
    draw_wavelet(cfg, stream_key(cfg.seed, index, kWavelets, static_cast<int64_t>(i)), &e);
    draw_attenuation(cfg, stream_key(cfg.seed, index, kAttenuation, static_cast<int64_t>(i)), &e);
    draw_velocity_scale(cfg, stream_key(cfg.seed, index, kVelocityScale, static_cast<int64_t>(i)), &e);
    SynthEvent& p = e.pub;
    p.snr_db = snr_db;

    // Origin time: the earliest P arrival lands uniformly where the whole P..S span fits in the
    // window. A longer span (wide aperture, short window) keeps both apexes inside and lets the
    // far-offset S tails leave the window at the bottom.
    const double h_min = std::clamp(p.x, 0.0, line) - p.x;  // 0 when the source is under the line
    const double h_max = std::max(std::fabs(p.x), std::fabs(line - p.x));
    const double tp_min = synth_traveltime(cfg, p.z, h_min, false, p.velocity_scale);
    const double ts_min = synth_traveltime(cfg, p.z, h_min, true, p.velocity_scale);
    const double ts_max = synth_traveltime(cfg, p.z, h_max, true, p.velocity_scale);
    const double lo = e.shape_p.half;
    const double room = T - e.shape_s.half - lo;
    const double span = ts_max - tp_min <= room ? ts_max - tp_min : ts_min - tp_min;
    const double hi = std::max(lo, lo + room - span);
    p.origin_time = rng.uniform(lo, hi) - tp_min;
  }

  // ---- Trace defects (dead, spiky), one stream for the gather. ----
  Rng defects(stream_key(cfg.seed, index, kDefects, 0));
  int64_t n_dead = 0, n_spiky = 0, n_reversed = 0;
  std::vector<double> polarity;
  std::vector<uint8_t> kind = draw_trace_kinds(cfg, W, defects, &n_dead, &n_spiky, &polarity, &n_reversed);
  // Recorded noise: its window first, so that the recording's dead channels are dead traces.
  std::vector<float> recorded;
  SynthNoiseWindow noise_window;
  const bool use_recorded =
      cfg.field_noise && (cfg.field_noise_share >= 1.0 ||
                          Rng(stream_key(cfg.seed, index, kFieldNoise, 1)).uniform() < cfg.field_noise_share);
  if (use_recorded) {
    recorded.resize(static_cast<size_t>(H * W));
    std::vector<uint8_t> live;
    cfg.field_noise->window(stream_key(cfg.seed, index, kFieldNoise, 0), H, W, recorded.data(), &live, &noise_window);
    for (int64_t j = 0; j < W; ++j) {
      if (live[static_cast<size_t>(j)] != 0 || kind[j] == kDead) continue;
      if (kind[j] == kSpiky) --n_spiky;
      if (polarity[j] < 0) --n_reversed;
      kind[j] = kDead;
      polarity[j] = 1.0;
      ++n_dead;
    }
  }

  // ---- Signal and label: P and S wavelets (attenuated or not) stamped near each arrival. ----
  // A fixed label width: the SNR is still measured over the wavelets' own half-widths (`energy`).
  std::vector<uint8_t> energy(cfg.label_half_ms > 0 ? static_cast<size_t>(H * W) : 0);
  const Rows gather{0, H, W, data, label, cfg.label_half_ms * 1e-3, energy.empty() ? nullptr : energy.data()};
  const uint8_t* snr_mask = energy.empty() ? label : energy.data();
  AttenuatedArrival scratch;
  for (Event& e : events) {
    Event* keep = nullptr;
    if (info && e.pub.q_p > 0) {
      e.att_pick.assign(static_cast<size_t>(2 * W), std::numeric_limits<double>::quiet_NaN());
      e.att_half.assign(static_cast<size_t>(2 * W), 0.0);
      keep = &e;
    }
    for (int64_t j = 0; j < W; ++j) {
      if (kind[j] != kDead) stamp_event(cfg, gather, j, e, polarity[j], &scratch, keep);
    }
  }
  double sig2 = 0;
  int64_t n_label = 0;
  for (int64_t k = 0; k < H; ++k) {
    float acc[8] = {};  // per-row partial sums in float, 8 lanes so that the loop vectorises
    int64_t row_n = 0;
    for (int64_t j = 0; j < W; ++j) {
      const float m = snr_mask[k * W + j], v = data[k * W + j];
      acc[j & 7] += m * v * v;
      row_n += snr_mask[k * W + j];
    }
    for (float a : acc) sig2 += a;
    n_label += row_n;
  }
  double signal_rms = n_label > 0 ? std::sqrt(sig2 / static_cast<double>(n_label)) : 0.0;
  if (signal_rms == 0.0) {
    // Noise-only gather: the noise level of a one-event gather of mean amplitude.
    const double amp = 0.5 * (cfg.amp_lo + cfg.amp_hi);
    const double s_to_p = 0.5 * (cfg.s_to_p_lo + cfg.s_to_p_hi);
    signal_rms = kRickerWindowRms * amp * std::sqrt(0.5 * (1.0 + s_to_p * s_to_p));
  }
  const double sigma = signal_rms / std::pow(10.0, snr_db / 20.0);

  // ---- Background noise: each trace from its own stream, exactly unit rms, then scaled. ----
  // Band-limited part: RBJ band-pass biquad (0 dB peak), Q = 1, run over a warm-up so that its
  // start-up transient does not show. Blocks of traces are filtered together, time-major, so
  // the recursions of neighbouring traces overlap and the writes into [H][W] are short rows.
  // Correlated noise: the traces (also of dead traces, and of R virtual traces beyond each end
  // from streams of their own) go to a field [H][W + 2R] first, are mixed along receivers, and each
  // live trace is scaled again to rms sigma.
  // Recorded noise (SynthConfig::field_noise) takes the place of the drawn background noise.
  const bool drawn = cfg.background_noise && !use_recorded;
  if (use_recorded && cfg.background_noise) {
    const float g = static_cast<float>(sigma);
    for (int64_t k = 0; k < H; ++k) {
      float* row = data + k * W;
      const float* src = recorded.data() + k * W;
      for (int64_t j = 0; j < W; ++j) row[j] += kind[j] == kDead ? 0.0f : g * src[j];
    }
  }
  Rng crng(stream_key(cfg.seed, index, kCorrelation, 0));
  const bool correlated = drawn && crng.uniform() < cfg.correlated_noise;
  const double corr_length = correlated ? crng.uniform(cfg.corr_length_lo, cfg.corr_length_hi) : 0.0;
  const std::vector<double> kernel = correlated ? mixing_kernel(corr_length) : std::vector<double>{};
  const int64_t R = correlated ? (static_cast<int64_t>(kernel.size()) - 1) / 2 : 0;
  const int64_t J0 = -R, J1 = W + R, WN = J1 - J0;
  std::vector<float> field(correlated ? static_cast<size_t>(H * WN) : 0);
  const double pf = cfg.pink_fraction;
  const bool pink = drawn && pf > 0;
  const double white_share = (1.0 - pf) * cfg.white_fraction, band_share = (1.0 - pf) * (1.0 - cfg.white_fraction);

  const BandPass filter(noise_fc, cfg.dt);
  const int64_t warm = filter.warmup(4.0, 4096);
  const int64_t L = warm + H;
  constexpr int64_t B = kTraceBlock;
  std::vector<float> white(static_cast<size_t>(L * B)), band(static_cast<size_t>(H * B));
  std::vector<float> pinks(pink ? static_cast<size_t>(H * B) : 0), ptrace(pink ? static_cast<size_t>(H) : 0);
  std::vector<double> pacc;
  for (int64_t j0 = J0; drawn && j0 < J1; j0 += B) {
    const int64_t nb = std::min(B, J1 - j0);
    bool noisy[B] = {};
    for (int64_t b = 0; b < B; ++b) {
      const int64_t j = j0 + b;
      noisy[b] = b < nb && cfg.background_noise && (correlated || kind[j] != kDead);
      if (!noisy[b]) {
        for (int64_t k = 0; k < L; ++k) white[k * B + b] = 0.0f;
        if (pink) {
          for (int64_t k = 0; k < H; ++k) pinks[k * B + b] = 0.0f;
        }
        continue;
      }
      Rng trng(j >= 0 && j < W ? stream_key(cfg.seed, index, kTraceNoise, j)
                               : stream_key(cfg.seed, index, kEdgeNoise, j));
      for (int64_t k = 0; k < L; ++k) white[k * B + b] = static_cast<float>(trng.gaussian());
      if (pink) {
        pink_noise([&](int o) { return stream_key(cfg.seed, index, kPink, j * 16 + o); }, 0, H, &pacc, ptrace.data());
        for (int64_t k = 0; k < H; ++k) pinks[k * B + b] = ptrace[k];
      }
    }
    BiquadState st[B];
    double ww[B] = {}, bb[B] = {}, wb[B] = {}, pp[B] = {}, wp[B] = {}, bp[B] = {};
    for (int64_t k = 0; k < L; ++k) {
      const float* wk = white.data() + k * B;
      for (int64_t b = 0; b < B; ++b) st[b].step(filter, wk[b]);
      if (k < warm) continue;
      float* bk = band.data() + (k - warm) * B;
      for (int64_t b = 0; b < B; ++b) {
        const double y = st[b].y1;
        bk[b] = static_cast<float>(y);
        ww[b] += static_cast<double>(wk[b]) * wk[b];
        bb[b] += y * y;
        wb[b] += wk[b] * y;
      }
      if (pink) {
        const float* pk = pinks.data() + (k - warm) * B;
        for (int64_t b = 0; b < B; ++b) {
          pp[b] += static_cast<double>(pk[b]) * pk[b];
          wp[b] += static_cast<double>(wk[b]) * pk[b];
          bp[b] += static_cast<double>(bk[b]) * pk[b];
        }
      }
    }
    // noise = cw * white + cb * band (+ cp * pink) with power shares white : band (: pink) as
    // configured, then normalised to rms sigma using the cross terms, so each trace has exactly rms
    // sigma.
    float cw[B] = {}, cb[B] = {}, cp[B] = {};
    for (int64_t b = 0; b < nb; ++b) {
      if (!noisy[b]) continue;
      const double hn = static_cast<double>(H);
      const double sw = std::sqrt(white_share / std::max(ww[b] / hn, 1e-30));
      const double sb = std::sqrt(band_share / std::max(bb[b] / hn, 1e-30));
      double power = (sw * sw * ww[b] + sb * sb * bb[b] + 2.0 * sw * sb * wb[b]) / hn;
      double sp = 0;
      if (pink) {
        sp = std::sqrt(pf / std::max(pp[b] / hn, 1e-30));
        power += (sp * sp * pp[b] + 2.0 * sw * sp * wp[b] + 2.0 * sb * sp * bp[b]) / hn;
      }
      const double norm = sigma / std::sqrt(std::max(power, 1e-30));
      cw[b] = static_cast<float>(sw * norm);
      cb[b] = static_cast<float>(sb * norm);
      cp[b] = static_cast<float>(sp * norm);
    }
    for (int64_t k = 0; k < H; ++k) {
      const float* wk = white.data() + (warm + k) * B;
      const float* bk = band.data() + k * B;
      const float* pk = pink ? pinks.data() + k * B : nullptr;
      if (correlated) {
        float* row = field.data() + k * WN + (j0 - J0);
        for (int64_t b = 0; b < nb; ++b) row[b] = cw[b] * wk[b] + cb[b] * bk[b] + (pk ? cp[b] * pk[b] : 0.0f);
      } else if (pk) {
        float* row = data + k * W + j0;
        for (int64_t b = 0; b < nb; ++b) row[b] += cw[b] * wk[b] + cb[b] * bk[b] + cp[b] * pk[b];
      } else {
        float* row = data + k * W + j0;
        for (int64_t b = 0; b < nb; ++b) row[b] += cw[b] * wk[b] + cb[b] * bk[b];
      }
    }
  }
  if (correlated) {
    std::vector<float> mixed(static_cast<size_t>(H * W), 0.0f);
    mix_rows(kernel, kind, H, field.data(), mixed.data(), W);
    for (int64_t j = 0; j < W; ++j) {
      if (kind[j] == kDead) continue;
      double ss = 0;
      for (int64_t k = 0; k < H; ++k) ss += static_cast<double>(mixed[k * W + j]) * mixed[k * W + j];
      const float g = static_cast<float>(sigma / std::sqrt(std::max(ss / static_cast<double>(H), 1e-30)));
      for (int64_t k = 0; k < H; ++k) data[k * W + j] += g * mixed[k * W + j];
    }
  }
  for (int64_t j = 0; j < W; ++j) {
    if (kind[j] != kSpiky) continue;
    Rng srng(stream_key(cfg.seed, index, kTraceNoise, W + j));
    draw_spikes(srng, H, sigma, [&](int64_t k, float v) { data[k * W + j] += v; });
  }

  // ---- Unlabelled transients, each from its own stream, scaled to the noise rms. ----
  double hum_hz = 0;
  {
    Rng r(stream_key(cfg.seed, index, kHum, 0));
    if (r.uniform() < cfg.hum) {
      const double level = r.uniform(0.1, 1.0) * sigma;
      const Hum h = draw_hum(cfg, kind, r);
      hum_hz = h.f0;
      add_hum(h, cfg.dt, gather, [&](int64_t) { return level; });
    }
  }
  int64_t n_bursts = 0;
  std::vector<int64_t> burst_traces;
  {
    Rng r(stream_key(cfg.seed, index, kBursts, 0));
    if (r.uniform() < cfg.bursts) {
      n_bursts = r.integer(1, 3);
      for (int64_t i = 0; i < n_bursts; ++i) {
        const int64_t k0 = r.integer(0, H - 1);
        const Burst q = draw_burst(r, k0, W, cfg.dt, sigma, stream_key(cfg.seed, index, kBursts, 1 + i));
        add_burst(q, kind, cfg.dt, gather, &burst_traces);
      }
    }
  }
  GroundRoll roll;
  int64_t n_rolls = 0;
  {
    Rng r(stream_key(cfg.seed, index, kSurfaceWaves, 0));
    if (r.uniform() < cfg.surface_waves) {
      const double t_near = r.uniform(0.0, T);
      roll = draw_ground_roll(r, line, cfg.dt, sigma, t_near);
      add_ground_roll(roll, kind, cfg.dx, cfg.dt, gather);
      n_rolls = 1;
    }
  }
  std::vector<PlaneWave> waves;
  {
    Rng r(stream_key(cfg.seed, index, kCoherent, 0));
    if (r.uniform() < cfg.coherent_noise) {
      const double level = r.uniform(0.2, 1.0) * sigma;
      waves =
          draw_plane_waves(r, cfg.dt, level, [&](int64_t w) { return stream_key(cfg.seed, index, kCoherent, 1 + w); });
      add_plane_waves(waves, kind, cfg.dx, cfg.dt, gather);
    }
  }

  if (info) {
    info->snr_db = snr_db;
    info->signal_rms = n_label > 0 ? std::sqrt(sig2 / static_cast<double>(n_label)) : 0.0;
    info->noise_rms = cfg.background_noise ? sigma : 0.0;
    info->dead_traces = n_dead;
    info->spiky_traces = n_spiky;
    info->reversed_traces = n_reversed;
    info->correlation_length = corr_length;
    info->hum_hz = hum_hz;
    info->bursts = n_bursts;
    std::sort(burst_traces.begin(), burst_traces.end());
    info->burst_traces = burst_traces;
    info->surface_waves = n_rolls;
    info->surface_velocity = n_rolls ? roll.v : 0.0;
    info->surface_source_x = n_rolls ? roll.xs : 0.0;
    info->recorded_noise = use_recorded;
    info->noise_window = noise_window;
    info->coherent_velocities.clear();
    for (const PlaneWave& p : waves) info->coherent_velocities.push_back(1.0 / p.slowness);
    // Ground truth: the arrivals stamped above, where they can carry label 1.
    info->events.clear();
    info->picks.clear();
    for (size_t i = 0; i < events.size(); ++i) {
      event_picks(cfg, kind, T, static_cast<int64_t>(i), &events[i], &info->picks);
      info->events.push_back(events[i].pub);
    }
  }
}

// ---- Continuous records -------------------------------------------------------------------

namespace {}  // namespace

struct SynthRecord::Impl {
  SynthConfig cfg;
  int64_t T = 0;
  double per_minute = 0;
  double fc = 0;
  std::vector<uint8_t> kind;
  std::vector<double> polarity;  // -1 on reversed traces
  int64_t n_dead = 0, n_spiky = 0, n_reversed = 0;
  Statics statics;  // the record's receiver statics (empty: none)
  BandPass filter{1.0, 1.0};
  int64_t warm = 0;
  float cw = 0, cb = 0, cp = 0;  // weights of the white, band-limited and pink noise: unit expected rms
  double corr_length = 0;        // mixing along receivers (0: none) and its kernel
  std::vector<double> kernel;
  Hum hum;  // drawn once per record; its level per segment
  double hum_hz = 0;
  double roll_reach = 0;         // bound on the end of a ground roll's wave train after its drawn time, s
  std::vector<PlaneWave> waves;  // coherent noise, drawn once per record

  struct Scratch {
    std::vector<float> white, pink, field;
    std::vector<double> pink_acc;
  };
  double line = 0;       // length of the receiver line, m
  double stamp_max = 0;  // widest wavelet half-support, s
  double reach = 0;      // bound on (latest arrival - origin) + stamp_max, s
  int64_t n_segments = 0;

  // Events with origin time in segment s, in time order, amplitudes scaled to their SNR. The
  // inter-event times are exponential (a Poisson process; memoryless, so restarting it at each
  // segment start changes nothing).
  std::vector<Event> segment_events(int64_t s) const {
    std::vector<Event> ev;
    if (per_minute <= 0) return ev;
    Rng rng(stream_key(cfg.seed, s, kRecordEvents, 0));
    const double rate = per_minute / 60.0;
    const double end =
        std::min(static_cast<double>(s + 1) * SynthRecord::kSegmentSeconds, static_cast<double>(T) * cfg.dt);
    for (double t = static_cast<double>(s) * SynthRecord::kSegmentSeconds;;) {
      t += -std::log(1.0 - rng.uniform()) / rate;
      if (t >= end) break;
      Event e;
      e.statics = &statics;
      draw_source(cfg, line, rng, &e);
      draw_wavelet(cfg, stream_key(cfg.seed, s, kRecordWavelets, static_cast<int64_t>(ev.size())), &e);
      draw_attenuation(cfg, stream_key(cfg.seed, s, kRecordAttenuation, static_cast<int64_t>(ev.size())), &e);
      draw_velocity_scale(cfg, stream_key(cfg.seed, s, kRecordVelocityScale, static_cast<int64_t>(ev.size())), &e);
      e.pub.origin_time = t;
      e.pub.snr_db = rng.uniform(cfg.snr_db_lo, cfg.snr_db_hi);
      scale_to_snr(&e);
      ev.push_back(e);
    }
    return ev;
  }

  // Scales the event's amplitudes so that its signal rms over its own labelled samples (on live
  // traces, inside the record or not: the SNR is the event's, not the window's) is snr_db above the
  // unit noise rms.
  void scale_to_snr(Event* e) const {
    double sig2 = 0;
    int64_t n = 0;
    AttenuatedArrival att;
    for (int64_t j = 0; j < cfg.width; ++j) {
      if (kind[j] == kDead) continue;
      const Arrival a = arrival_at(cfg, *e, j);
      for (int phase = 0; phase < 2; ++phase) {
        if (e->pub.q_p > 0) {
          attenuate(cfg, *e, a, phase, &att);
          const double amp = phase == 0 ? a.amp_p : a.amp_s;
          const int64_t k0 = static_cast<int64_t>(std::ceil((att.pick - att.half) / cfg.dt));
          const int64_t k1 = static_cast<int64_t>(std::floor((att.pick + att.half) / cfg.dt));
          for (int64_t k = k0; k <= k1; ++k) {
            const int64_t i = k - att.k0;
            if (std::fabs(static_cast<double>(k) * cfg.dt - att.pick) > att.half) continue;
            const double v =
                i >= 0 && i < static_cast<int64_t>(att.w.size()) ? amp * att.w[static_cast<size_t>(i)] : 0.0;
            sig2 += v * v;
            ++n;
          }
          continue;
        }
        const double t = phase == 0 ? a.tp : a.ts;
        const WaveletShape& w = phase == 0 ? e->shape_p : e->shape_s;
        const double amp = phase == 0 ? a.amp_p : a.amp_s, half = w.half;
        const int64_t k0 = static_cast<int64_t>(std::ceil((t - half) / cfg.dt));
        const int64_t k1 = static_cast<int64_t>(std::floor((t + half) / cfg.dt));
        for (int64_t k = k0; k <= k1; ++k) {
          const double tau = k * cfg.dt - t;
          if (std::fabs(tau) > half) continue;
          const double v = amp * w(tau);
          sig2 += v * v;
          ++n;
        }
      }
    }
    if (n == 0 || sig2 <= 0) return;
    const double scale = std::pow(10.0, e->pub.snr_db / 20.0) / std::sqrt(sig2 / static_cast<double>(n));
    e->pub.amp_p *= scale;
    e->pub.amp_s *= scale;
  }

  // Background noise of trace j at samples [t0, t1), added to col[(k - t0) * stride] (white noise
  // from the streams (run, kRecordNoise, j), band-passed by segmented_band_noise, so a sample's value
  // does not depend on the window it is made in). j may lie beyond the line (the virtual traces that
  // correlated noise mixes in).
  void add_noise(int64_t j, int64_t t0, int64_t t1, float* col, int64_t stride, Scratch* scratch) const {
    segmented_band_noise(
        [&](int64_t r) { return stream_key(cfg.seed, r, kRecordNoise, j); }, filter, warm, t0, t1, &scratch->white,
        [&](int64_t k, float w, double y) { col[(k - t0) * stride] += cw * w + cb * static_cast<float>(y); });
    if (cp == 0.0f) return;
    scratch->pink.resize(static_cast<size_t>(t1 - t0));
    pink_noise([&](int o) { return stream_key(cfg.seed, o, kRecordPink, j); }, t0, t1, &scratch->pink_acc,
               scratch->pink.data());
    for (int64_t k = t0; k < t1; ++k) col[(k - t0) * stride] += cp * scratch->pink[static_cast<size_t>(k - t0)];
  }
};

SynthRecord::SynthRecord(const SynthConfig& cfg, int64_t samples, double events_per_minute) {
  validate_synth_config(cfg);
  if (samples < 1) bad_field("a record needs at least one time sample");
  if (cfg.field_noise) bad_field("noise from recordings is for gathers, not for a continuous record");
  if (!(events_per_minute >= 0) || !std::isfinite(events_per_minute)) {
    bad_field("events per minute must be a finite number >= 0");
  }
  auto m = std::make_unique<Impl>();
  m->cfg = cfg;
  m->T = samples;
  m->per_minute = events_per_minute;
  const int64_t W = cfg.width;
  Rng rng(stream_key(cfg.seed, 0, kRecord, 0));
  m->fc = std::min(rng.uniform(cfg.noise_band_lo, cfg.noise_band_hi), 0.45 / cfg.dt);
  Rng defects(stream_key(cfg.seed, 0, kRecordDefects, 0));
  m->kind = draw_trace_kinds(cfg, W, defects, &m->n_dead, &m->n_spiky, &m->polarity, &m->n_reversed);
  m->statics = draw_statics(cfg, W, stream_key(cfg.seed, 0, kRecordStatics, 0));
  m->filter = BandPass(m->fc, cfg.dt);
  m->warm = m->filter.warmup(kRecordWarmup, kRecordWarmupCap);

  // Noise weights from the filter's expected gains (white noise of unit variance): the band output
  // has variance sum h[n]^2 and covariance h[0] = b0 with its input; the pink noise has unit
  // variance and is independent of both. Power shares as in a gather, then normalised to unit rms.
  const double gain = m->filter.white_gain();
  const double pf = cfg.pink_fraction;
  const double ws = (1.0 - pf) * cfg.white_fraction, bs = (1.0 - pf) * (1.0 - cfg.white_fraction);
  const double sw = std::sqrt(ws), sb = std::sqrt(bs / std::max(gain, 1e-30)), sp = std::sqrt(pf);
  const double norm = 1.0 / std::sqrt(ws + bs + 2.0 * sw * sb * m->filter.b0 + pf);
  m->cw = cfg.background_noise ? static_cast<float>(sw * norm) : 0.0f;
  m->cb = cfg.background_noise ? static_cast<float>(sb * norm) : 0.0f;
  m->cp = cfg.background_noise ? static_cast<float>(sp * norm) : 0.0f;

  // Correlated noise and hum: drawn once per record (the hum's level per segment, in window()).
  Rng crng(stream_key(cfg.seed, 0, kRecordCorrelation, 0));
  if (cfg.background_noise && crng.uniform() < cfg.correlated_noise) {
    m->corr_length = crng.uniform(cfg.corr_length_lo, cfg.corr_length_hi);
    m->kernel = mixing_kernel(m->corr_length);
  }
  Rng hrng(stream_key(cfg.seed, 0, kRecordHum, 0));
  m->hum = draw_hum(cfg, m->kind, hrng);
  m->hum_hz = m->hum.f0;
  Rng wrng(stream_key(cfg.seed, 0, kRecordCoherent, 0));
  if (wrng.uniform() < cfg.coherent_noise) {
    const double level = wrng.uniform(0.2, 1.0);
    m->waves = draw_plane_waves(wrng, cfg.dt, level,
                                [&](int64_t w) { return stream_key(cfg.seed, 0, kRecordCoherent, 1 + w); });
  }

  // Which events can touch a window: arrival - origin <= the S time from the deepest source to the
  // farthest receiver, bounded by t0(z_max) + h_max / v_min (vrms >= the slowest layer).
  m->line = static_cast<double>(W - 1) * cfg.dx;
  const double h_max = m->line * std::max({std::fabs(cfg.lateral_lo), std::fabs(cfg.lateral_hi),
                                           std::fabs(1.0 - cfg.lateral_lo), std::fabs(1.0 - cfg.lateral_hi)});
  double t0 = 0, vrms = 0;
  vertical_time(cfg, cfg.depth_hi, &t0, &vrms);
  t0 /= cfg.velocity_scale_lo;
  const double v_min = cfg.velocity_scale_lo * (cfg.velocity == VelocityModel::kHomogeneous
                                                    ? cfg.vp
                                                    : *std::min_element(cfg.layer_vp.begin(), cfg.layer_vp.end()));
  // S frequencies are clamped to >= freq_lo; any wavelet's support and label lie within this (a
  // fixed label width reaches that far from a pick, which an attenuated wavelet can put anywhere
  // in its reach). Receiver statics move arrivals either way by at most their largest magnitude.
  const double label_half = cfg.label_half_ms * 1e-3;
  double static_max = 0;
  for (const std::vector<double>* v : {&m->statics.p, &m->statics.s}) {
    for (double x : *v) static_max = std::max(static_max, std::fabs(x));
  }
  m->stamp_max = std::max(std::max(kWaveletMaxBeforePeriods, kWaveletMaxAfterPeriods) / cfg.freq_lo, label_half);
  const double travel_max = (t0 + h_max / v_min) * cfg.vp_vs;
  if (cfg.q_fraction > 0) {  // the longest Q tail and the widest label: S at the longest traveltime and lowest Q
    const double tstar_max = travel_max / (cfg.q_lo * std::min(1.0, cfg.qs_ratio_lo));
    m->stamp_max = std::max(m->stamp_max, attenuated_reach(cfg.freq_lo, tstar_max, cfg.dt) + label_half);
  }
  m->stamp_max += static_max;
  m->reach = travel_max + m->stamp_max;
  m->roll_reach = m->line / kRollVelocityLo + 6.0 * kRollMaxWidth;
  m->n_segments = static_cast<int64_t>(std::ceil(static_cast<double>(samples) * cfg.dt / SynthRecord::kSegmentSeconds));
  impl_ = std::move(m);
}

SynthRecord::~SynthRecord() = default;

const SynthConfig& SynthRecord::config() const { return impl_->cfg; }
int64_t SynthRecord::samples() const { return impl_->T; }
double SynthRecord::events_per_minute() const { return impl_->per_minute; }
double SynthRecord::noise_band_hz() const { return impl_->fc; }
int64_t SynthRecord::dead_traces() const { return impl_->n_dead; }
int64_t SynthRecord::spiky_traces() const { return impl_->n_spiky; }
int64_t SynthRecord::reversed_traces() const { return impl_->n_reversed; }
double SynthRecord::correlation_length() const { return impl_->corr_length; }
double SynthRecord::hum_hz() const { return impl_->hum_hz; }
std::vector<double> SynthRecord::coherent_velocities() const {
  std::vector<double> v;
  for (const PlaneWave& p : impl_->waves) v.push_back(1.0 / p.slowness);
  return v;
}
int64_t SynthRecord::segments() const { return impl_->n_segments; }

void SynthRecord::segment_truth(int64_t segment, int64_t first_event, std::vector<SynthEvent>* events,
                                std::vector<SynthPick>* picks) const {
  const Impl& m = *impl_;
  SEIS_CHECK(segment >= 0 && segment < m.n_segments, "segment " << segment << " of " << m.n_segments);
  events->clear();
  picks->clear();
  std::vector<Event> ev = m.segment_events(segment);
  const double t_max = static_cast<double>(m.T - 1) * m.cfg.dt;
  for (size_t i = 0; i < ev.size(); ++i) {
    event_picks(m.cfg, m.kind, t_max, first_event + static_cast<int64_t>(i), &ev[i], picks);
    events->push_back(ev[i].pub);
  }
}

void SynthRecord::window(int64_t t0, int64_t rows, float* data, uint8_t* label) const {
  const Impl& m = *impl_;
  const SynthConfig& cfg = m.cfg;
  const int64_t W = cfg.width;
  SEIS_CHECK(t0 >= 0 && rows >= 1 && t0 + rows <= m.T, "window [" << t0 << ", " << t0 + rows << ") of " << m.T);
  std::fill(data, data + rows * W, 0.0f);
  std::fill(label, label + rows * W, uint8_t{0});
  const Rows b{t0, rows, W, data, label, cfg.label_half_ms * 1e-3, nullptr};

  // Signal and label: the events whose wavelets can reach [t0, t0 + rows).
  AttenuatedArrival scratch_arrival;
  const double lo = static_cast<double>(t0) * cfg.dt - m.reach;
  const double hi = static_cast<double>(t0 + rows - 1) * cfg.dt + m.stamp_max;
  const int64_t s0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(lo / kSegmentSeconds)));
  const int64_t s1 = std::min<int64_t>(m.n_segments - 1, static_cast<int64_t>(std::floor(hi / kSegmentSeconds)));
  for (int64_t s = s0; s <= s1; ++s) {
    for (const Event& e : m.segment_events(s)) {
      if (e.pub.origin_time < lo || e.pub.origin_time > hi) continue;
      for (int64_t j = 0; j < W; ++j) {
        if (m.kind[j] != kDead) stamp_event(cfg, b, j, e, m.polarity[j], &scratch_arrival);
      }
    }
  }

  // Background noise (mixed along receivers when correlated: instantaneous, so a row needs only
  // its own samples of the neighbouring traces), then spikes (drawn per filter segment, so also
  // window-independent).
  Impl::Scratch scratch;
  if (cfg.background_noise && !m.kernel.empty()) {
    const int64_t R = (static_cast<int64_t>(m.kernel.size()) - 1) / 2, WN = W + 2 * R;
    scratch.field.assign(static_cast<size_t>(rows * WN), 0.0f);
    for (int64_t j = -R; j < W + R; ++j) m.add_noise(j, t0, t0 + rows, scratch.field.data() + (j + R), WN, &scratch);
    mix_rows(m.kernel, m.kind, rows, scratch.field.data(), data, W);
  }
  for (int64_t j = 0; j < W; ++j) {
    if (m.kind[j] == kDead) continue;
    if (cfg.background_noise && m.kernel.empty()) m.add_noise(j, t0, t0 + rows, data + j, W, &scratch);
    if (m.kind[j] != kSpiky) continue;
    for (int64_t g = t0 / kFilterSegment; g * kFilterSegment < t0 + rows; ++g) {
      Rng srng(stream_key(cfg.seed, g, kRecordSpikes, j));
      draw_spikes(srng, kFilterSegment, 1.0, [&](int64_t k, float v) {
        const int64_t at = g * kFilterSegment + k;
        if (at >= t0 && at < t0 + rows) data[(at - t0) * W + j] += v;
      });
    }
  }

  // Unlabelled transients (the noise rms is 1). Hum: level per segment, faded (raised cosine)
  // between segment centres, so it neither starts nor stops abruptly.
  const double seg = kSegmentSeconds;
  if (cfg.hum > 0) {
    auto level_of = [&](int64_t s) {
      Rng r(stream_key(cfg.seed, s, kRecordHum, 1));
      const bool on = r.uniform() < cfg.hum;
      const double level = r.uniform(0.1, 1.0);
      return on ? level : 0.0;
    };
    int64_t cached = std::numeric_limits<int64_t>::min();
    double a0 = 0, a1 = 0;
    add_hum(m.hum, cfg.dt, b, [&](int64_t k) {
      const double x = static_cast<double>(k) * cfg.dt / seg - 0.5;
      const int64_t s = static_cast<int64_t>(std::floor(x));
      if (s != cached) {
        a0 = level_of(s);
        a1 = level_of(s + 1);
        cached = s;
      }
      const double w = 0.5 - 0.5 * std::cos(kPi * (x - static_cast<double>(s)));
      return (1.0 - w) * a0 + w * a1;
    });
  }
  // Bursts and ground roll: Poisson processes per segment, like the events, each from its stream.
  auto arrivals = [&](Purpose purpose, double per_minute, double before, double after, auto add) {
    if (per_minute <= 0) return;
    const double wlo = static_cast<double>(t0) * cfg.dt - before, whi = static_cast<double>(t0 + rows) * cfg.dt + after;
    const int64_t s0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(wlo / seg)));
    const int64_t s1 = std::min<int64_t>(m.n_segments - 1, static_cast<int64_t>(std::floor(whi / seg)));
    for (int64_t s = s0; s <= s1; ++s) {
      Rng r(stream_key(cfg.seed, s, purpose, 0));
      const double end = std::min(static_cast<double>(s + 1) * seg, static_cast<double>(m.T) * cfg.dt);
      int64_t i = 0;
      for (double t = static_cast<double>(s) * seg;; ++i) {
        t += -std::log(1.0 - r.uniform()) / (per_minute / 60.0);
        if (t >= end) break;
        add(r, s, i, t, t >= wlo && t <= whi);
      }
    }
  };
  arrivals(kRecordBursts, cfg.bursts_per_minute, kBurstMaxSeconds, 0.0,
           [&](Rng& r, int64_t s, int64_t i, double t, bool near) {
             const int64_t k0 = static_cast<int64_t>(std::floor(t / cfg.dt));
             const Burst q = draw_burst(r, k0, W, cfg.dt, 1.0, stream_key(cfg.seed, s, kRecordBursts, 1 + i));
             if (near) add_burst(q, m.kind, cfg.dt, b, nullptr);
           });
  // A ground roll's wave train begins at its drawn time (t_near 3 widths later), as a burst does: so
  // neither reaches before its time, and a shorter record stays the start of a longer one.
  arrivals(kRecordSurface, cfg.surface_waves_per_minute, m.roll_reach, 0.0,
           [&](Rng& r, int64_t, int64_t, double t, bool near) {
             GroundRoll g = draw_ground_roll(r, m.line, cfg.dt, 1.0, t);
             g.t_near = t + 3.0 * g.width;
             if (near) add_ground_roll(g, m.kind, cfg.dx, cfg.dt, b);
           });
  add_plane_waves(m.waves, m.kind, cfg.dx, cfg.dt, b);
}

}  // namespace seis
