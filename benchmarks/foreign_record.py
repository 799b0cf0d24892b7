#!/usr/bin/python3
"""A continuous microseismic record with ground truth, made WITHOUT seisseg's generator.

Writes an HDF5 file in seisseg's continuous-record format: /data float32 [T, W] (rank 2, chunked
by full-width rows), root attributes dt (s) and dx (m), and the ground truth /picks (gather int64,
trace int64, phase uint8 0 P 1 S, time_s float64, event int64) and /events (gather, event int64;
origin_time_s, first_arrival_s, last_arrival_s, x_m, z_m, snr_db float64), gather 0 throughout.
Needs only numpy and h5py:

    /usr/bin/python3 benchmarks/foreign_record.py --out F.h5 --duration 120 --receivers 256 \
        --dt 0.002 --dx 10 --events-per-minute 2 --snr-db -6:10 --seed 1

Its purpose is an honest test of detectors trained on seisseg's generator (io/synth_microseismic.cpp),
so every piece of physics and noise is deliberately different from it:

| piece            | seisseg synth                               | this script                                   |
|------------------|---------------------------------------------|-----------------------------------------------|
| velocity         | 3 flat layers (3.5/5/6 km/s), hyperbolic    | constant vertical gradient v0 + k z per       |
|                  | moveout with the RMS velocity               | record (v0 2.0-3.2 km/s, k 0.3-1.0 /s):       |
|                  |                                             | circular rays, exact arccosh traveltime       |
| S waves          | S time = 1.73 x P time                      | own Vs gradient: Vp/Vs 1.8-2.3 at the surface,|
|                  |                                             | 1.55-1.8 for the gradient, so S moveout is    |
|                  |                                             | not a scaled P moveout                        |
| statics          | none                                        | per-receiver statics (rough + smooth, ~2-3 ms |
|                  |                                             | rms for P, 1.5-2.5x that for S) in the truth  |
| sources          | depth 1.2-2.2 km, 0.25-0.75 of the line     | depth 0.3-3.0 km, -0.3..1.3 of the line       |
| wavelets         | Ricker, Ormsby, Berlage, 15-45 Hz           | minimum-phase damped sinusoid, Kupper (n 2    |
|                  |                                             | or 4), Gabor/Morlet of random phase; 8-60 Hz; |
|                  |                                             | S at 0.5-0.9 of the P frequency               |
| amplitudes       | cos^2 lobes (never a sign change), S/P      | double-couple-like sin 2(theta - phi) mixed   |
|                  | 1-2.5, 1/r                                  | with an isotropic part: P polarity flips      |
|                  |                                             | across nodal planes; S/P 0.5-4; 1/r           |
| attenuation      | off by default; --attenuation P: causal     | causal (minimum-phase) constant-Q filter per  |
|                  | constant-Q filter per arrival on a share P  | arrival, exp(-pi f t/Q), Qp 80-300,           |
|                  | of events, Qp 60-400 per event (log-        |                                               |
|                  | uniform), Qs 0.4-0.8 Qp; picks on the       | Qs 0.4-0.7 Qp per record                      |
|                  | attenuated pulse (10% first break or        |                                               |
|                  | envelope peak); minimum phase by cepstrum   |                                               |
|                  | on the sampling grid, as here               |                                               |
| background noise | white + RBJ biquad band + Voss pink, unit   | per trace, a colour drawn from AR(1), AR(2)   |
|                  | rms on every trace, optionally Gaussian-    | resonance or power law f^-beta (applied by    |
|                  | mixed along receivers                       | FFT), plus 10-40% coherent plane-wave noise   |
|                  |                                             | (2-6 band-limited sources, +-0.8-5 km/s);     |
|                  |                                             | trace levels lognormal (0.35) and 2% noisy    |
|                  |                                             | traces at 3-6x                                |
| trace defects    | dead and spiky traces                       | 1-4% dead traces (no picks), 1-3% polarity-   |
|                  |                                             | reversed traces (picks kept)                  |
| unlabelled       | hum 50/60 Hz + one harmonic; bursts 10-60   | hum (80% of records) 50/60 Hz with some of    |
| transients       | ms on 1-3 traces; ground roll (linear       | harmonics 2-5 on 1-3 stretches of the line,   |
|                  | moveout 300-900 m/s, 3-12 Hz)               | 0.2-2x the trace's noise, slowly modulated;   |
|                  |                                             | single-trace spikes (15-45/min, 5-40x);       |
|                  |                                             | 20-300 ms bursts on 1-2 traces (4-10/min:     |
|                  |                                             | chirps, damped sines, boxcar noise, 3-30x);   |
|                  |                                             | vehicles (0.3-0.8/min) on a road 30-300 m     |
|                  |                                             | beside the line at 5-25 m/s, engine tones and |
|                  |                                             | noise as 200-500 m/s surface waves, 1-5x the  |
|                  |                                             | noise at closest approach: a slow coherent    |
|                  |                                             | noise train crossing the traces               |

Truth times are what an analyst would pick on the noise-free trace: for a causal wavelet (damped
sinusoid, Kupper) the first break, where the arrival first reaches 10% of its peak |amplitude| on
that trace after attenuation (after the kinematic arrival time by a median 3 ms for the damped
sinusoid and 10 ms for the emergent Kupper, up to ~25 ms at low frequency); for the Gabor, which
has no onset, the peak of its Hilbert envelope (as seisseg picks its zero-phase wavelets at their
centre; the causal Q filter delays it a few ms past the kinematic time). /picks holds one row per
arrival on a live (non-dead) trace whose time lies inside the record; /events one row per event
whose origin time lies in [-t_lead, duration) (t_lead: the longest S traveltime), with first/last
arrival NaN when none of its arrivals falls inside the record (seisseg does not score those).

SNR, as seisseg's generator defines it (an rms over the arrival's main lobe against the noise
rms), in this script's terms: 20 log10(signal rms / noise rms), where the signal rms is taken over
the noise-free event, on every live trace and both phases, within +-0.5 / f of each arrival's
energy centroid (f: that phase's nominal frequency), and the noise rms is the median, over live
traces, of the background noise rms (trace levels vary around it; hum, spikes, bursts and
vehicles are added on top and not counted, as in seisseg). Each event draws its own SNR uniformly
in --snr-db.

The whole record is held in memory as float32 (T x W x 4 bytes: 61 MB for 120 s x 256 receivers
at 2 ms); records over 4 GiB are refused. The file is written to F.h5.tmp and renamed, so a
failure leaves nothing half-written.
"""

import argparse
import math
import os
import sys

import h5py
import numpy as np

MAX_BYTES = 4 << 30


def fail(msg):
    print("foreign_record.py: " + msg, file=sys.stderr)
    sys.exit(2)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Write a continuous record (HDF5, seisseg's format, with ground truth) made by "
        "physics and noise different from seisseg's generator."
    )
    p.add_argument("--out", required=True, help="output HDF5 file")
    p.add_argument("--duration", type=float, required=True, help="record length, s")
    p.add_argument("--receivers", type=int, required=True, help="receivers W along the line")
    p.add_argument("--dt", type=float, default=0.002, help="sample interval, s (default 0.002)")
    p.add_argument("--dx", type=float, default=10.0, help="receiver spacing, m (default 10)")
    p.add_argument("--events-per-minute", type=float, default=2.0, help="Poisson rate of events (default 2)")
    p.add_argument("--snr-db", default="-6:10", help="each event's SNR range LO:HI in dB (default -6:10)")
    p.add_argument("--seed", type=int, default=0, help="random seed, >= 0 (default 0)")
    # "--snr-db -6:10" would read as an option to argparse: join a flag and its value.
    argv = list(argv)
    for i in range(len(argv) - 1):
        if argv[i] == "--snr-db":
            argv[i:i + 2] = ["--snr-db=" + argv[i + 1]]
            break
    a = p.parse_args(argv)
    if not (math.isfinite(a.duration) and a.duration > 0):
        fail("--duration %r: must be a positive number of seconds" % a.duration)
    if a.receivers < 2:
        fail("--receivers %d: at least 2 are needed" % a.receivers)
    if not (math.isfinite(a.dt) and 0 < a.dt <= 0.004):
        fail("--dt %r: must lie in (0, 0.004] s (the wavelets reach 60 Hz and the hum 300 Hz)" % a.dt)
    if not (math.isfinite(a.dx) and a.dx > 0):
        fail("--dx %r: must be a positive spacing in m" % a.dx)
    if not (math.isfinite(a.events_per_minute) and 0 <= a.events_per_minute <= 600):
        fail("--events-per-minute %r: must lie in [0, 600]" % a.events_per_minute)
    parts = a.snr_db.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        a.snr_lo, a.snr_hi = float(parts[0]), float(parts[1])
    except ValueError:
        fail("--snr-db %r: expected LO:HI in dB, e.g. -6:10" % a.snr_db)
    if not (math.isfinite(a.snr_lo) and math.isfinite(a.snr_hi) and a.snr_lo <= a.snr_hi):
        fail("--snr-db %r: LO and HI must be finite with LO <= HI" % a.snr_db)
    if a.seed < 0:
        fail("--seed %d: must be >= 0" % a.seed)
    a.T = int(round(a.duration / a.dt))
    if a.T < 1:
        fail("--duration %g at --dt %g gives no sample" % (a.duration, a.dt))
    if a.T * a.receivers * 4 > MAX_BYTES:
        fail("%d x %d float32 samples are more than the %d GiB this script holds in memory"
             % (a.T, a.receivers, MAX_BYTES >> 30))
    out_dir = os.path.dirname(os.path.abspath(a.out))
    if not os.path.isdir(out_dir):
        fail("--out %s: directory %s does not exist" % (a.out, out_dir))
    if os.path.isdir(a.out):
        fail("--out %s: is a directory" % a.out)
    return a


# ---- Velocity: v(z) = v0 + k z, exact traveltime along the circular ray ----------------------

def gradient_time(v0, k, z_src, r):
    """Traveltime from a source at depth z_src to a surface receiver at distance r (straight-line)."""
    vs = v0 + k * z_src
    return np.arccosh(1.0 + (k * r) ** 2 / (2.0 * vs * v0)) / k


# ---- Wavelets: w(tau), tau in s from the arrival's reference time ---------------------------

def _kupper_peak_hz():
    """Spectral peak of the Kupper wavelets of duration 1 s, for n = 2 and 4."""
    out = {}
    fs = 4000.0
    t = np.arange(0.0, 1.0, 1.0 / fs)
    for n in (2, 4):
        x = np.pi * t
        w = np.sin(n * x) - n / (n + 2.0) * np.sin((n + 2) * x)
        spec = np.abs(np.fft.rfft(w, 1 << 18))
        f = np.fft.rfftfreq(1 << 18, 1.0 / fs)
        out[n] = f[int(np.argmax(spec))]
    return out


KUPPER_PEAK = _kupper_peak_hz()


class Wavelet:
    """One event phase's wavelet. kind: 'damped' (minimum-phase damped sinusoid, onset at 0),
    'kupper' (Kupper, onset at 0), 'gabor' (Gabor/Morlet of random phase, centred on 0)."""

    def __init__(self, kind, f, rng):
        self.kind, self.f = kind, f
        if kind == "damped":
            self.decay = rng.uniform(0.4, 1.0) / f  # envelope e^(-tau / decay): 1.5-4 visible cycles
            self.before, self.after = 0.0, 6.9 * self.decay
        elif kind == "kupper":
            self.n = int(rng.choice([2, 4]))
            self.length = KUPPER_PEAK[self.n] / f
            self.before, self.after = 0.0, self.length
        else:
            self.sigma = rng.uniform(0.3, 0.6) / f
            self.phase = rng.uniform(0.0, 2.0 * np.pi)
            self.before = self.after = 4.0 * self.sigma

    def __call__(self, tau):
        if self.kind == "damped":
            on = tau >= 0
            tt = np.where(on, tau, 0.0)
            return np.where(on, np.sin(2 * np.pi * self.f * tt) * np.exp(-tt / self.decay), 0.0)
        if self.kind == "kupper":
            on = (tau >= 0) & (tau <= self.length)
            x = np.pi * np.clip(tau, 0.0, self.length) / self.length
            w = np.sin(self.n * x) - self.n / (self.n + 2.0) * np.sin((self.n + 2) * x)
            return np.where(on, w, 0.0)
        env = np.exp(-0.5 * (tau / self.sigma) ** 2)
        env = np.where(np.abs(tau) <= self.after, env, 0.0)
        w = np.cos(2 * np.pi * self.f * tau + self.phase) * env
        # No DC: remove the envelope's share of the mean (a random-phase Gabor of few cycles has one).
        dc = w.sum(axis=-1, keepdims=True) / np.maximum(env.sum(axis=-1, keepdims=True), 1e-30)
        return w - dc * env


def min_phase_q(tstar, n, dt):
    """Minimum-phase spectra (rfft grid of n points) of amplitude exp(-pi f t*), one row per t*."""
    f = np.fft.rfftfreq(n, dt)
    log_a = -np.pi * f[None, :] * tstar[:, None]
    c = np.fft.irfft(log_a, n, axis=-1)
    fold = np.zeros_like(c)
    fold[:, 0] = c[:, 0]
    fold[:, 1:n // 2] = 2.0 * c[:, 1:n // 2]
    fold[:, n // 2] = c[:, n // 2]
    return np.exp(np.fft.rfft(fold, n, axis=-1))


def next_pow2(x):
    return 1 << max(4, int(math.ceil(math.log2(max(x, 16)))))


# ---- The record --------------------------------------------------------------------------------

class Record:
    def __init__(self, a):
        self.a = a
        self.T, self.W, self.dt, self.dx = a.T, a.receivers, a.dt, a.dx
        self.line = (self.W - 1) * self.dx
        self.xr = np.arange(self.W) * self.dx
        streams = np.random.SeedSequence(a.seed).spawn(8)
        self.rng_model, self.rng_events, self.rng_noise, self.rng_hum = (np.random.default_rng(s) for s in streams[:4])
        self.rng_spikes, self.rng_bursts, self.rng_vehicles, self.rng_traces = (
            np.random.default_rng(s) for s in streams[4:])
        self.data = np.zeros((self.T, self.W), dtype=np.float32)
        self.counts = {}
        self.draw_model()

    def draw_model(self):
        r = self.rng_model
        self.vp0 = r.uniform(2000.0, 3200.0)
        self.kp = r.uniform(0.3, 1.0)
        self.vs0 = self.vp0 / r.uniform(1.8, 2.3)
        self.ks = self.kp / r.uniform(1.55, 1.8)
        self.qp = r.uniform(80.0, 300.0)
        self.qs = self.qp * r.uniform(0.4, 0.7)
        # Statics: a rough part and a smooth part (a random walk, smoothed), ~2-3 ms rms for P.
        rough = r.normal(0.0, 1.5e-3, self.W)
        walk = np.cumsum(r.normal(0.0, 1.0, self.W))
        kern = np.exp(-0.5 * (np.arange(-30, 31) / 10.0) ** 2)
        smooth = np.convolve(walk - walk.mean(), kern / kern.sum(), mode="full")[30:30 + self.W]
        smooth = smooth / max(np.std(smooth), 1e-12) * 1.5e-3
        self.static_p = rough + smooth
        self.static_s = self.static_p * r.uniform(1.5, 2.5)
        # Trace defects and levels.
        t = self.rng_traces
        self.dead = t.random(self.W) < t.uniform(0.01, 0.04)
        self.reversed = (~self.dead) & (t.random(self.W) < t.uniform(0.01, 0.03))
        self.sigma = np.exp(t.normal(0.0, 0.35, self.W))
        noisy = t.random(self.W) < 0.02
        self.sigma[noisy] *= t.uniform(3.0, 6.0, int(noisy.sum()))
        self.live = ~self.dead
        self.sigma_ref = float(np.median(self.sigma[self.live])) if self.live.any() else 1.0
        # Longest S traveltime: deepest source, farthest offset.
        far = math.hypot(1.3 * self.line + 0.3 * self.line, 3000.0)
        self.t_lead = float(gradient_time(self.vs0, self.ks, 3000.0, far)) + 1.0

    # -- background noise ---------------------------------------------------------------------

    def add_background(self):
        r = self.rng_noise
        T, dt = self.T, self.dt
        n = T
        f = np.fft.rfftfreq(n, dt)
        w = 2 * np.pi * f * dt
        z1 = np.exp(-1j * w)
        # Coherent plane-wave noise: a few band-limited sources crossing the line.
        n_src = int(r.integers(2, 7))
        coherent_share = r.uniform(0.1, 0.4)
        src = []
        for _ in range(n_src):
            fc, bw = r.uniform(3.0, 40.0), r.uniform(2.0, 15.0)
            band = np.exp(-0.5 * ((f - fc) / bw) ** 2)
            spec = np.fft.rfft(r.standard_normal(n)) * band
            spec *= r.uniform(0.3, 1.0) / math.sqrt(max(np.sum(np.abs(spec) ** 2), 1e-30))
            v = r.uniform(800.0, 5000.0) * (1 if r.random() < 0.5 else -1)
            src.append((spec, v))
        kinds = {"ar1": 0, "ar2": 0, "power": 0}
        block = 32
        for j0 in range(0, self.W, block):
            j1 = min(self.W, j0 + block)
            B = j1 - j0
            white = np.fft.rfft(r.standard_normal((n, B)), axis=0)
            shape = np.empty((f.size, B))
            for b in range(B):
                u = r.random()
                if u < 1 / 3:
                    phi = r.uniform(0.3, 0.95) if r.random() < 0.8 else r.uniform(-0.6, -0.2)
                    h = 1.0 / np.abs(1.0 - phi * z1)
                    kinds["ar1"] += 1
                elif u < 2 / 3:
                    rad, f0 = r.uniform(0.9, 0.995), r.uniform(3.0, min(80.0, 0.2 / dt))
                    th = 2 * np.pi * f0 * dt
                    h = 1.0 / np.abs(1.0 - 2 * rad * math.cos(th) * z1 + rad * rad * z1 * z1)
                    kinds["ar2"] += 1
                else:
                    beta, flo = r.uniform(0.5, 2.0), r.uniform(0.5, 3.0)
                    h = (np.maximum(f, flo) / flo) ** (-beta / 2.0)
                    kinds["power"] += 1
                h2 = h * h
                h2 /= max(h2.mean(), 1e-30)
                white_share = r.uniform(0.05, 0.5)
                shape[:, b] = np.sqrt(white_share + (1.0 - white_share) * h2)
            shape[f < 0.5, :] = 0.0
            inc = np.fft.irfft(white * shape, n, axis=0)
            inc /= np.maximum(np.sqrt(np.mean(inc * inc, axis=0)), 1e-30)
            coh_spec = np.zeros((f.size, B), dtype=np.complex128)
            for spec, v in src:
                delay = self.xr[j0:j1] / v
                coh_spec += spec[:, None] * np.exp(-2j * np.pi * f[:, None] * delay[None, :])
            coh = np.fft.irfft(coh_spec, n, axis=0)
            coh /= np.maximum(np.sqrt(np.mean(coh * coh, axis=0)), 1e-30)
            mix = math.sqrt(1.0 - coherent_share) * inc + math.sqrt(coherent_share) * coh
            mix /= np.maximum(np.sqrt(np.mean(mix * mix, axis=0)), 1e-30)  # exactly sigma_j rms below
            self.data[:, j0:j1] += (mix * self.sigma[None, j0:j1]).astype(np.float32)
        self.counts.update({"noise_" + k: v for k, v in kinds.items()})
        self.counts["coherent_sources"] = n_src
        self.coherent_share = coherent_share

    # -- events -------------------------------------------------------------------------------

    def draw_events(self):
        r = self.rng_events
        rate = self.a.events_per_minute / 60.0
        events = []
        t = -self.t_lead
        while rate > 0:
            t += r.exponential(1.0 / rate)
            if t >= self.T * self.dt:
                break
            e = {"origin": t}
            e["x"] = r.uniform(-0.3, 1.3) * self.line
            e["z"] = r.uniform(300.0, 3000.0)
            kind = ["damped", "kupper", "gabor"][int(r.integers(0, 3))]
            fp = r.uniform(8.0, min(60.0, 0.15 / self.dt))
            fs = max(5.0, fp * r.uniform(0.5, 0.9))
            e["kind"] = kind
            e["wp"], e["ws"] = Wavelet(kind, fp, r), Wavelet(kind, fs, r)
            e["strike"] = r.uniform(0.0, np.pi)
            e["dc"] = r.uniform(0.0, 0.8)  # share of the double couple; above 0.5 the P changes sign
            e["iso"] = 1.0 if r.random() < 0.5 else -1.0
            e["s_to_p"] = r.uniform(0.5, 4.0)
            e["s_sign"] = 1.0 if r.random() < 0.5 else -1.0
            e["snr_db"] = r.uniform(self.a.snr_lo, self.a.snr_hi)
            events.append(e)
        return events

    def phase_waves(self, e, phase):
        """Arrival times (s) on live traces, their first sample, and the noise-free waveforms
        [live traces, N] (amplitude and sign included, before the SNR scale)."""
        live = np.flatnonzero(self.live)
        h = self.xr[live] - e["x"]
        R = np.hypot(h, e["z"])
        theta = np.arctan2(h, e["z"])
        if phase == 0:
            tt = gradient_time(self.vp0, self.kp, e["z"], R)
            t_arr = e["origin"] + tt + self.static_p[live]
            rad = e["dc"] * np.sin(2 * (theta - e["strike"])) + (1 - e["dc"]) * e["iso"]
            amp = rad * e["z"] / R
            wav, q = e["wp"], self.qp
        else:
            tt = gradient_time(self.vs0, self.ks, e["z"], R)
            t_arr = e["origin"] + tt + self.static_s[live]
            rad = e["dc"] * np.cos(2 * (theta - e["strike"])) + (1 - e["dc"]) * 0.5
            amp = e["s_to_p"] * e["s_sign"] * rad * e["z"] / R
            wav, q = e["ws"], self.qs
        tstar = tt / q
        pre = wav.before + 0.02
        n = next_pow2((pre + wav.after + 0.1 + 12.0 * float(tstar.max())) / self.dt)
        k0 = np.floor((t_arr - pre) / self.dt).astype(np.int64)
        tau = (k0[:, None] + np.arange(n)[None, :]) * self.dt - t_arr[:, None]
        w = wav(tau)
        w = np.fft.irfft(np.fft.rfft(w, n, axis=-1) * min_phase_q(tstar, n, self.dt), n, axis=-1)
        peak = np.max(np.abs(w), axis=-1, keepdims=True)
        w = w / np.maximum(peak, 1e-30)
        t_pick = (k0 + self.pick_index(w, wav.kind == "gabor")) * self.dt
        return live, t_pick, k0, w * amp[:, None], wav.f

    @staticmethod
    def pick_index(w, symmetric):
        """Fractional sample of each row's pick on the noise-free, unit-peak arrival: the first break
        (the first crossing of 10% of the peak |amplitude|) for a causal wavelet, the peak of the
        Hilbert envelope for the Gabor."""
        n = w.shape[-1]
        rows = np.arange(w.shape[0])
        if symmetric:
            spec = np.fft.fft(w, axis=-1)
            h = np.zeros(n)
            h[0] = 1.0
            h[1:(n + 1) // 2] = 2.0
            if n % 2 == 0:
                h[n // 2] = 1.0
            env = np.abs(np.fft.ifft(spec * h[None, :], axis=-1))
            k = np.clip(np.argmax(env, axis=-1), 1, n - 2)
            y0, y1, y2 = env[rows, k - 1], env[rows, k], env[rows, k + 1]
            den = y0 - 2.0 * y1 + y2
            off = np.where(np.abs(den) > 1e-30, 0.5 * (y0 - y2) / np.where(den == 0, 1.0, den), 0.0)
            return k + np.clip(off, -0.5, 0.5)
        a = np.abs(w)
        k = np.argmax(a >= 0.1, axis=-1)
        prev = a[rows, np.maximum(k - 1, 0)]
        cur = a[rows, k]
        frac = np.where(k > 0, (0.1 - prev) / np.maximum(cur - prev, 1e-30), 0.0)
        return k - 1 + np.clip(frac, 0.0, 1.0)

    @staticmethod
    def lobe_energy(w, f, dt):
        """Sum of squares and count of samples within +-0.5 / f of each row's energy centroid."""
        e = w * w
        tot = e.sum(axis=-1)
        idx = np.arange(w.shape[-1])
        c = (e * idx[None, :]).sum(axis=-1) / np.maximum(tot, 1e-300)
        half = 0.5 / f / dt
        inside = np.abs(idx[None, :] - c[:, None]) <= half
        return float((e * inside).sum()), int(inside.sum())

    def event_scale(self, e, ph):
        """The factor on the noise-free waveforms ph (phase_waves of P and S) that gives event e its
        SNR: the rms over every arrival's main lobe against the median background-noise level."""
        s2, cnt = 0.0, 0
        for live, t_arr, k0, w, f in ph:
            a, b = self.lobe_energy(w, f, self.dt)
            s2, cnt = s2 + a, cnt + b
        rms = math.sqrt(s2 / cnt) if cnt > 0 and s2 > 0 else 1.0
        return 10.0 ** (e["snr_db"] / 20.0) * self.sigma_ref / rms

    def add_events(self, events):
        picks, rows = [], []
        t_max = (self.T - 1) * self.dt
        for number, e in enumerate(events):
            ph = [self.phase_waves(e, 0), self.phase_waves(e, 1)]
            scale = self.event_scale(e, ph)
            times = []
            for phase, (live, t_arr, k0, w, f) in enumerate(ph):
                n = w.shape[1]
                for i, j in enumerate(live):
                    a0, a1 = max(0, k0[i]), min(self.T, k0[i] + n)
                    if a0 < a1:
                        self.data[a0:a1, j] += (scale * w[i, a0 - k0[i]:a1 - k0[i]]).astype(np.float32)
                    if 0.0 <= t_arr[i] <= t_max:
                        picks.append((0, int(j), phase, float(t_arr[i]), number))
                        times.append(float(t_arr[i]))
            first = min(times) if times else float("nan")
            last = max(times) if times else float("nan")
            rows.append((0, number, e["origin"], first, last, e["x"], e["z"], e["snr_db"]))
        self.counts["wavelets"] = {k: sum(1 for e in events if e["kind"] == k) for k in ("damped", "kupper", "gabor")}
        return picks, rows

    # -- unlabelled transients ------------------------------------------------------------------

    def add_hum(self):
        r = self.rng_hum
        if r.random() >= 0.8:
            self.counts["hum_hz"] = 0
            return
        f0 = (50.0 if r.random() < 0.5 else 60.0) + r.uniform(-0.02, 0.02)
        harm = [(1, 1.0)]
        for m in range(2, 6):
            if r.random() < (0.8 if m % 2 else 0.5):
                harm.append((m, r.uniform(0.1, 0.7)))
        on = np.zeros(self.W, dtype=bool)
        for _ in range(int(r.integers(1, 4))):
            length = int(r.integers(max(1, self.W // 10), max(2, self.W // 3)))
            start = int(r.integers(0, self.W))
            on[start:start + length] = True
        t = np.arange(self.T) * self.dt
        mod = 1.0 + r.uniform(0.0, 0.5) * np.sin(2 * np.pi * t / r.uniform(5.0, 30.0) + r.uniform(0, 2 * np.pi))
        base_phase = r.uniform(0.0, 2 * np.pi, len(harm))
        level = r.uniform(0.2, 2.0, self.W)
        nyq = 0.5 / self.dt
        for j in np.flatnonzero(on & self.live):
            s = np.zeros(self.T)
            for (m, rel), ph in zip(harm, base_phase):
                if m * f0 < 0.9 * nyq:
                    s += rel * np.sin(2 * np.pi * m * f0 * t + ph + r.normal(0.0, 0.3))
            s *= level[j] * self.sigma[j] * mod / math.sqrt(sum(rel * rel for _, rel in harm) / 2.0)
            self.data[:, j] += s.astype(np.float32)
        self.counts["hum_hz"] = round(f0, 3)
        self.counts["hum_harmonics"] = [m for m, _ in harm]
        self.counts["hum_traces"] = int((on & self.live).sum())

    def add_spikes(self):
        r = self.rng_spikes
        n = int(r.poisson(30.0 * r.uniform(0.5, 1.5) * self.T * self.dt / 60.0))
        for _ in range(n):
            j, k = int(r.integers(0, self.W)), int(r.integers(0, self.T))
            if self.dead[j]:
                continue
            for i in range(int(r.integers(1, 4))):
                if k + i < self.T:
                    self.data[k + i, j] += np.float32(r.choice([-1, 1]) * r.uniform(5.0, 40.0) * self.sigma[j]
                                                      * (0.5 ** i))
        self.counts["spikes"] = n

    def add_bursts(self):
        r = self.rng_bursts
        n = int(r.poisson(r.uniform(4.0, 10.0) * self.T * self.dt / 60.0))
        for _ in range(n):
            k0 = int(r.integers(0, self.T))
            dur = r.uniform(0.02, 0.3)
            m = max(4, int(dur / self.dt))
            t = np.arange(m) * self.dt
            kind = int(r.integers(0, 3))
            if kind == 0:  # decaying chirp
                fa, fb = r.uniform(40.0, min(150.0, 0.3 / self.dt)), r.uniform(10.0, 30.0)
                ph = 2 * np.pi * (fa * t + 0.5 * (fb - fa) / dur * t * t)
                s = np.sin(ph) * np.exp(-3.0 * t / dur)
            elif kind == 1:  # damped sinusoid: a single-trace look-alike of an arrival
                fq = r.uniform(10.0, 80.0)
                s = np.sin(2 * np.pi * fq * t) * np.exp(-t / r.uniform(0.3, 1.0) * fq)
            else:  # boxcar of band noise
                s = np.convolve(r.standard_normal(m), np.ones(3) / 3.0, mode="same")
                s[: max(1, m // 10)] *= np.linspace(0, 1, max(1, m // 10))
            s /= max(np.max(np.abs(s)), 1e-30)
            j0 = int(r.integers(0, self.W))
            ntr = 1 if r.random() < 0.8 else 2
            peak = r.uniform(3.0, 30.0)
            for jj in range(j0, min(self.W, j0 + ntr)):
                if self.dead[jj]:
                    continue
                a1 = min(self.T, k0 + m)
                fac = 1.0 if jj == j0 else r.uniform(0.3, 0.9)
                self.data[k0:a1, jj] += (peak * fac * self.sigma[jj] * s[: a1 - k0]).astype(np.float32)
        self.counts["bursts"] = n

    def add_vehicles(self):
        r = self.rng_vehicles
        dur_s = self.T * self.dt
        n = int(r.poisson(r.uniform(0.3, 0.8) * (dur_s + 120.0) / 60.0))
        t = np.arange(self.T) * self.dt
        for _ in range(n):
            t_on = r.uniform(-120.0, dur_s)
            speed = r.uniform(5.0, 25.0)
            d = r.uniform(30.0, 300.0)
            c = r.uniform(200.0, 500.0)
            forward = r.random() < 0.5
            x_start = -600.0 if forward else self.line + 600.0
            sign = 1.0 if forward else -1.0
            amp = r.uniform(1.0, 5.0) * self.sigma_ref
            # Engine source: tones (fundamental 8-25 Hz, harmonics) with wobble, plus band noise.
            ts0, ts1 = -5.0 - 3000.0 / c, dur_s + 5.0
            ts = np.arange(ts0, ts1, self.dt)
            fe = r.uniform(8.0, 25.0) * (1.0 + 0.05 * np.sin(2 * np.pi * ts / r.uniform(3.0, 10.0)))
            phase = 2 * np.pi * np.cumsum(fe) * self.dt
            s = sum(r.uniform(0.2, 1.0) * np.sin(m * phase + r.uniform(0, 2 * np.pi)) for m in (1, 2, 3)
                    if m * 25.0 < 0.4 / self.dt)
            nz = np.fft.irfft(np.fft.rfft(r.standard_normal(ts.size))
                              * np.exp(-0.5 * ((np.fft.rfftfreq(ts.size, self.dt) - 25.0) / 15.0) ** 2), ts.size)
            s = s / max(np.std(s), 1e-30) + 0.7 * nz / max(np.std(nz), 1e-30)
            s /= max(np.std(s), 1e-30)
            xv = x_start + sign * speed * (t - t_on)
            active = (t >= t_on) & (xv >= -600.0) & (xv <= self.line + 600.0)
            if not active.any():
                continue
            ta = t[active]
            xa = xv[active]
            for j in np.flatnonzero(self.live):
                rr = np.hypot(self.xr[j] - xa, d)
                near = rr < 1500.0
                if not near.any():
                    continue
                v = amp * (d / rr[near]) * np.interp(ta[near] - rr[near] / c, ts, s)
                idx = np.flatnonzero(active)[near]
                self.data[idx, j] += v.astype(np.float32)
        self.counts["vehicles"] = n

    def finish_traces(self):
        self.data[:, self.reversed] *= -1.0
        self.data[:, self.dead] = 0.0


PICK_DTYPE = np.dtype([("gather", "<i8"), ("trace", "<i8"), ("phase", "u1"), ("time_s", "<f8"), ("event", "<i8")])
EVENT_DTYPE = np.dtype([("gather", "<i8"), ("event", "<i8"), ("origin_time_s", "<f8"), ("first_arrival_s", "<f8"),
                        ("last_arrival_s", "<f8"), ("x_m", "<f8"), ("z_m", "<f8"), ("snr_db", "<f8")])


def write(a, rec, picks, events):
    tmp = a.out + ".tmp"
    picks.sort(key=lambda p: (p[0], p[4], p[2], p[1]))
    try:
        with h5py.File(tmp, "w") as f:
            rows = max(1, min(rec.T, (1 << 18) // rec.W))
            f.create_dataset("data", data=rec.data, chunks=(rows, rec.W))
            f.create_dataset("picks", data=np.array(picks, dtype=PICK_DTYPE))
            f.create_dataset("events", data=np.array(events, dtype=EVENT_DTYPE))
            at = f.attrs
            at["dt"] = float(a.dt)
            at["dx"] = float(a.dx)
            at["generator"] = "benchmarks/foreign_record.py (not seisseg synth)"
            at["seed"] = int(a.seed)
            at["events_per_minute"] = float(a.events_per_minute)
            at["snr_db_lo"] = float(a.snr_lo)
            at["snr_db_hi"] = float(a.snr_hi)
            at["snr_definition"] = ("rms of the noise-free event within +-0.5/f of each arrival's energy centroid "
                                    "(live traces, P and S) over the median background-noise rms of live traces")
            at["vp0_m_s"], at["vp_gradient_1_s"] = rec.vp0, rec.kp
            at["vs0_m_s"], at["vs_gradient_1_s"] = rec.vs0, rec.ks
            at["qp"], at["qs"] = rec.qp, rec.qs
            at["noise_sigma_ref"] = rec.sigma_ref
            at["coherent_noise_share"] = rec.coherent_share
            at["dead_traces"] = int(rec.dead.sum())
            at["reversed_traces"] = int(rec.reversed.sum())
            for k in ("spikes", "bursts", "vehicles", "hum_hz"):
                at[k] = rec.counts.get(k, 0)
        os.replace(tmp, a.out)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def main(argv):
    a = parse_args(argv)
    rec = Record(a)
    rec.add_background()
    events = rec.draw_events()
    picks, event_rows = rec.add_events(events)
    rec.add_hum()
    rec.add_spikes()
    rec.add_bursts()
    rec.add_vehicles()
    rec.finish_traces()
    try:
        write(a, rec, picks, event_rows)
    except OSError as err:
        print("foreign_record.py: cannot write %s: %s" % (a.out, err), file=sys.stderr)
        return 1
    scored = sum(1 for e in event_rows if not math.isnan(e[3]))
    print("foreign_record.py: wrote %s: %d x %d at dt %g s, dx %g m; %d events (%d with arrivals in the record), "
          "%d picks (%d P); dead %d, reversed %d; vp0 %.0f m/s + %.2f/s z, vs0 %.0f m/s + %.2f/s z, Qp %.0f Qs %.0f; "
          "%s" % (a.out, rec.T, rec.W, a.dt, a.dx, len(event_rows), scored, len(picks),
                  sum(1 for p in picks if p[2] == 0), int(rec.dead.sum()), int(rec.reversed.sum()), rec.vp0, rec.kp,
                  rec.vs0, rec.ks, rec.qp, rec.qs, rec.counts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
