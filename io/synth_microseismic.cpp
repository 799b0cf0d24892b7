// Synthetic microseismic gathers. Layout [H][W] row-major (time, receiver). Cost is dominated by the
// background noise (one Gaussian per sample, one biquad step per sample); wavelets are stamped only
// within +-1.25 / f of each arrival, where the Ricker has decayed below 1e-5 of its peak.
#include "io/synth_microseismic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <string>

#include "engine/error.h"

namespace seis {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kLabelHalfPeriods = 0.5;   // label half-width, in periods of the peak frequency
constexpr double kStampHalfPeriods = 1.25;  // wavelet support stamped around each arrival
// rms of a unit-peak Ricker over its labelled window |t| <= 0.5 / f (independent of f).
constexpr double kRickerWindowRms = 0.5318;
constexpr int64_t kTraceBlock = 16;  // traces generated together, so the writes into [H][W] are rows

// Counter-based streams: a SplitMix64 sequence whose start is a hash of (seed, index, purpose, sub).
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

enum Purpose : uint64_t { kEvents = 1, kDefects = 2, kTraceNoise = 3 };

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

double ricker(double tau, double f) {
  const double a = kPi * kPi * f * f * tau * tau;
  return (1.0 - 2.0 * a) * std::exp(-a);
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
struct Event {
  SynthEvent pub;
  double t0 = 0, vrms = 0;            // P vertical time and RMS velocity to the source depth
  double strike_p = 0, strike_s = 0;  // radiation lobes, rad
};

enum TraceKind : uint8_t { kLive = 0, kDead = 1, kSpiky = 2 };

void stamp_phase(const SynthConfig& cfg, double t_arr, double f, double amp, int64_t j, float* data, uint8_t* label) {
  const int64_t H = cfg.height, W = cfg.width;
  const double stamp = kStampHalfPeriods / f, half = kLabelHalfPeriods / f;
  const int64_t k0 = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((t_arr - stamp) / cfg.dt)));
  const int64_t k1 = std::min<int64_t>(H - 1, static_cast<int64_t>(std::floor((t_arr + stamp) / cfg.dt)));
  for (int64_t k = k0; k <= k1; ++k) {
    const double tau = k * cfg.dt - t_arr;
    data[k * W + j] += static_cast<float>(amp * ricker(tau, f));
    if (std::fabs(tau) <= half) label[k * W + j] = 1;
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
  need(c.amp_lo > 0 && c.amp_lo <= c.amp_hi, "amplitude range must satisfy 0 < amp_lo <= amp_hi");
  need(c.s_to_p_lo > 0 && c.s_to_p_lo <= c.s_to_p_hi, "S/P ratio range must satisfy 0 < lo <= hi");
  need(c.s_freq_ratio_lo > 0 && c.s_freq_ratio_lo <= c.s_freq_ratio_hi && c.s_freq_ratio_hi <= 1.0,
       "S frequency ratio range must satisfy 0 < lo <= hi <= 1");
  need(c.radiation >= 0 && c.radiation <= 1, "radiation must lie in [0, 1]");
  need(c.white_fraction >= 0 && c.white_fraction <= 1, "white_fraction must lie in [0, 1]");
  need(c.noise_band_lo > 0 && c.noise_band_lo <= c.noise_band_hi, "noise band must satisfy 0 < lo <= hi");
  need(c.dead_fraction >= 0 && c.spiky_fraction >= 0 && c.dead_fraction + c.spiky_fraction <= 1,
       "dead_fraction and spiky_fraction must be >= 0 with a sum <= 1");
}

double synth_traveltime(const SynthConfig& cfg, double z, double h, bool s_wave) {
  double t0 = 0, vrms = 0;
  vertical_time(cfg, z, &t0, &vrms);
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
  for (Event& e : events) {
    SynthEvent& p = e.pub;
    p.z = rng.uniform(cfg.depth_lo, cfg.depth_hi);
    p.x = rng.uniform(cfg.lateral_lo, cfg.lateral_hi) * line;
    p.freq_p = rng.uniform(cfg.freq_lo, cfg.freq_hi);
    p.freq_s = std::max(cfg.freq_lo, p.freq_p * rng.uniform(cfg.s_freq_ratio_lo, cfg.s_freq_ratio_hi));
    const double amp = rng.uniform(cfg.amp_lo, cfg.amp_hi);
    p.amp_p = amp * rng.sign();
    p.amp_s = amp * rng.uniform(cfg.s_to_p_lo, cfg.s_to_p_hi) * rng.sign();
    e.strike_p = rng.uniform(0.0, kPi);
    e.strike_s = rng.uniform(0.0, kPi);
    vertical_time(cfg, p.z, &e.t0, &e.vrms);

    // Origin time: the earliest P arrival lands uniformly where the whole P..S span fits in the
    // window. A longer span (wide aperture, short window) keeps both apexes inside and lets the
    // far-offset S tails leave the window at the bottom.
    const double h_min = std::clamp(p.x, 0.0, line) - p.x;  // 0 when the source is under the line
    const double h_max = std::max(std::fabs(p.x), std::fabs(line - p.x));
    const double tp_min = synth_traveltime(cfg, p.z, h_min, false);
    const double ts_min = synth_traveltime(cfg, p.z, h_min, true);
    const double ts_max = synth_traveltime(cfg, p.z, h_max, true);
    const double lo = kLabelHalfPeriods / p.freq_p;
    const double room = T - kLabelHalfPeriods / p.freq_s - lo;
    const double span = ts_max - tp_min <= room ? ts_max - tp_min : ts_min - tp_min;
    const double hi = std::max(lo, lo + room - span);
    p.origin_time = rng.uniform(lo, hi) - tp_min;
  }

  // ---- Trace defects (dead, spiky), one stream for the gather. ----
  std::vector<uint8_t> kind(static_cast<size_t>(W), kLive);
  Rng defects(stream_key(cfg.seed, index, kDefects, 0));
  int64_t n_dead = 0, n_spiky = 0;
  for (int64_t j = 0; j < W; ++j) {
    const double u = defects.uniform();
    if (u < cfg.dead_fraction) {
      kind[j] = kDead;
      ++n_dead;
    } else if (u < cfg.dead_fraction + cfg.spiky_fraction) {
      kind[j] = kSpiky;
      ++n_spiky;
    }
  }

  // ---- Signal and label: P and S Ricker wavelets stamped near each arrival. ----
  for (const Event& e : events) {
    const SynthEvent& p = e.pub;
    for (int64_t j = 0; j < W; ++j) {
      if (kind[j] == kDead) continue;
      const double h = static_cast<double>(j) * cfg.dx - p.x;
      const double r = std::sqrt(h * h + p.z * p.z);
      const double spreading = p.z / r;  // 1/r, normalised to 1 at the apex
      const double takeoff = std::atan2(h, p.z);
      const double cp = std::cos(takeoff - e.strike_p), cs = std::cos(takeoff - e.strike_s);
      const double rad_p = 1.0 - cfg.radiation + cfg.radiation * cp * cp;
      const double rad_s = 1.0 - cfg.radiation + cfg.radiation * cs * cs;
      const double tp = std::sqrt(e.t0 * e.t0 + (h * h) / (e.vrms * e.vrms));
      stamp_phase(cfg, p.origin_time + tp, p.freq_p, p.amp_p * spreading * rad_p, j, data, label);
      stamp_phase(cfg, p.origin_time + tp * cfg.vp_vs, p.freq_s, p.amp_s * spreading * rad_s, j, data, label);
    }
  }
  double sig2 = 0;
  int64_t n_label = 0;
  for (int64_t k = 0; k < H; ++k) {
    float acc[8] = {};  // per-row partial sums in float, 8 lanes so that the loop vectorises
    int64_t row_n = 0;
    for (int64_t j = 0; j < W; ++j) {
      const float m = label[k * W + j], v = data[k * W + j];
      acc[j & 7] += m * v * v;
      row_n += label[k * W + j];
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
  const double w0 = 2.0 * kPi * noise_fc * cfg.dt, alpha = std::sin(w0) / 2.0;
  const double a0 = 1.0 + alpha;
  const double b0 = alpha / a0, a1 = -2.0 * std::cos(w0) / a0, a2 = (1.0 - alpha) / a0;
  const int64_t warm = std::min<int64_t>(4096, static_cast<int64_t>(std::ceil(4.0 / (kPi * noise_fc * cfg.dt))) + 8);
  const int64_t L = warm + H;
  constexpr int64_t B = kTraceBlock;
  std::vector<float> white(static_cast<size_t>(L * B)), band(static_cast<size_t>(H * B));
  for (int64_t j0 = 0; j0 < W; j0 += B) {
    const int64_t nb = std::min(B, W - j0);
    bool noisy[B] = {};
    for (int64_t b = 0; b < B; ++b) {
      noisy[b] = b < nb && cfg.background_noise && kind[j0 + b] != kDead;
      if (!noisy[b]) {
        for (int64_t k = 0; k < L; ++k) white[k * B + b] = 0.0f;
        continue;
      }
      Rng trng(stream_key(cfg.seed, index, kTraceNoise, j0 + b));
      for (int64_t k = 0; k < L; ++k) white[k * B + b] = static_cast<float>(trng.gaussian());
    }
    double x1[B] = {}, x2[B] = {}, y1[B] = {}, y2[B] = {}, ww[B] = {}, bb[B] = {}, wb[B] = {};
    for (int64_t k = 0; k < L; ++k) {
      const float* wk = white.data() + k * B;
      for (int64_t b = 0; b < B; ++b) {
        const double x = wk[b];
        const double y = b0 * (x - x2[b]) - a1 * y1[b] - a2 * y2[b];
        x2[b] = x1[b];
        x1[b] = x;
        y2[b] = y1[b];
        y1[b] = y;
      }
      if (k < warm) continue;
      float* bk = band.data() + (k - warm) * B;
      for (int64_t b = 0; b < B; ++b) {
        bk[b] = static_cast<float>(y1[b]);
        ww[b] += static_cast<double>(wk[b]) * wk[b];
        bb[b] += y1[b] * y1[b];
        wb[b] += wk[b] * y1[b];
      }
    }
    // noise = cw * white + cb * band with power shares white_fraction : 1 - white_fraction, then
    // normalised to rms sigma using the cross term, so each live trace has exactly rms sigma.
    float cw[B] = {}, cb[B] = {};
    for (int64_t b = 0; b < nb; ++b) {
      if (!noisy[b]) continue;
      const double hn = static_cast<double>(H);
      const double sw = std::sqrt(cfg.white_fraction / std::max(ww[b] / hn, 1e-30));
      const double sb = std::sqrt((1.0 - cfg.white_fraction) / std::max(bb[b] / hn, 1e-30));
      const double power = (sw * sw * ww[b] + sb * sb * bb[b] + 2.0 * sw * sb * wb[b]) / hn;
      const double norm = sigma / std::sqrt(std::max(power, 1e-30));
      cw[b] = static_cast<float>(sw * norm);
      cb[b] = static_cast<float>(sb * norm);
    }
    for (int64_t k = 0; k < H; ++k) {
      float* row = data + k * W + j0;
      const float* wk = white.data() + (warm + k) * B;
      const float* bk = band.data() + k * B;
      for (int64_t b = 0; b < nb; ++b) row[b] += cw[b] * wk[b] + cb[b] * bk[b];
    }
    for (int64_t b = 0; b < nb; ++b) {
      if (kind[j0 + b] != kSpiky) continue;
      Rng srng(stream_key(cfg.seed, index, kTraceNoise, W + j0 + b));
      const int64_t n_spikes = srng.integer(1, 5);
      for (int64_t s = 0; s < n_spikes; ++s) {
        const int64_t k = srng.integer(0, H - 1);
        data[k * W + j0 + b] += static_cast<float>(srng.sign() * srng.uniform(10.0, 30.0) * sigma);
      }
    }
  }

  if (info) {
    info->snr_db = snr_db;
    info->signal_rms = n_label > 0 ? std::sqrt(sig2 / static_cast<double>(n_label)) : 0.0;
    info->noise_rms = cfg.background_noise ? sigma : 0.0;
    info->dead_traces = n_dead;
    info->spiky_traces = n_spiky;
    info->events.clear();
    for (const Event& e : events) info->events.push_back(e.pub);
  }
}

}  // namespace seis
