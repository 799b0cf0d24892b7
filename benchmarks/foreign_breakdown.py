#!/usr/bin/env python3
"""Where a network misses on a foreign record (benchmarks/foreign_record.py), event by event.

    foreign_breakdown.py --truth F.h5 --prob P.h5 [--threshold T] [--window-ms M] [--phase P|S|both]

F.h5 is a record written by foreign_record.py (its attributes give the arguments it was made with,
so its events are drawn again: wavelet family, frequency, S/P ratio, double-couple share, position);
P.h5 is the probability of `seisseg detect --prob P.h5` on it (/prob [T, W]). For each arrival of
F.h5's /picks, the arrival is found when the probability on its trace reaches T (default 0.5)
within +-M ms (default 50) of the true time; its error is that run's probability-weighted centre
minus the truth. Prints one line per event and phase (share found, median error), then the shares
by wavelet family, by frequency band (below, inside and above seisseg synth's default 15-45 Hz) and
by the front's slope at each arrival (samples per trace, from a quartic fitted to the phase's true
times along the traces, statics smoothed away; seisseg synth's default site stays below about 1)
and by the arrival's SNR on its own trace (the rms of its noise-free main lobe over the trace's
background-noise level: the event's SNR spread by distance, radiation, S/P and trace levels).
Last, per phase, a bound of what any picking along the fronts could reach from these
probabilities: the arrivals of the events found on at least a share S of their traces (--front-share,
default 0.3: enough picks to fit a front through) all counted, those of the other events only
where found.
Needs numpy and h5py (/usr/bin/python3 on Debian with python3-h5py).
"""

import argparse
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import foreign_record  # noqa: E402


def fail(msg):
    print("foreign_breakdown.py: " + msg, file=sys.stderr)
    sys.exit(2)


def record_events(truth):
    """The record model and the events foreign_record.py drew for this file, from the arguments in
    its attributes."""
    a = truth.attrs
    if "generator" not in a or "foreign_record.py" not in str(a["generator"]):
        fail("%s: not a record written by benchmarks/foreign_record.py" % truth.filename)
    t, w = truth["data"].shape
    args = ["--out", os.devnull, "--duration", repr(t * float(a["dt"])), "--receivers", str(w),
            "--dt", repr(float(a["dt"])), "--dx", repr(float(a["dx"])),
            "--events-per-minute", repr(float(a["events_per_minute"])),
            "--snr-db=%r:%r" % (float(a["snr_db_lo"]), float(a["snr_db_hi"])), "--seed", str(int(a["seed"]))]
    rec = foreign_record.Record(foreign_record.parse_args(args))
    return rec, rec.draw_events()


def trace_snr(rec, events, picks):
    """Per arrival: its SNR on its own trace, dB: the rms of the scaled, noise-free arrival within
    +-0.5 / f of its energy centroid (foreign_record.py's lobe) over that trace's background-noise
    level (rec.sigma; the event's SNR is the same rms over all its arrivals against the median level)."""
    out = np.full(len(picks), np.nan)
    where = {(int(p["event"]), int(p["phase"]), int(p["trace"])): n for n, p in enumerate(picks)}
    for number, e in enumerate(events):
        ph = [rec.phase_waves(e, 0), rec.phase_waves(e, 1)]
        scale = rec.event_scale(e, ph)
        for phase, (live, t_arr, k0, w, f) in enumerate(ph):
            for i, j in enumerate(live):
                n = where.get((number, phase, int(j)))
                if n is None:
                    continue
                a, b = rec.lobe_energy(w[i:i + 1] * scale, f, rec.dt)
                out[n] = 10.0 * np.log10(max(a / max(b, 1), 1e-30) / rec.sigma[j] ** 2)
    return out


def run_errors(prob, picks, dt_ms, threshold, window):
    """Per arrival: whether a run reaches the threshold within +-window samples, and its centre's error (ms)."""
    found = np.zeros(len(picks), bool)
    err = np.full(len(picks), np.nan)
    t_len = prob.shape[0]
    for n, p in enumerate(picks):
        tr = int(p["trace"])
        t_ms = float(p["time_s"]) * 1000.0
        i = int(round(t_ms / dt_ms))
        lo, hi = max(0, i - window), min(t_len, i + window + 1)
        if lo >= hi:
            continue
        above = np.flatnonzero(prob[lo:hi, tr] >= threshold)
        if above.size == 0:
            continue
        j = lo + above[np.argmin(np.abs(lo + above - i))]
        a0 = j
        while a0 > 0 and prob[a0 - 1, tr] >= threshold:
            a0 -= 1
        a1 = j
        while a1 + 1 < t_len and prob[a1 + 1, tr] >= threshold:
            a1 += 1
        q = prob[a0:a1 + 1, tr].astype(np.float64)
        centre = (q * np.arange(a0, a1 + 1)).sum() / q.sum()
        found[n] = True
        err[n] = centre * dt_ms - t_ms
    return found, err


def front_slopes(picks, dt_ms):
    """Per arrival: |dt/dx| of its event's phase front in samples per trace, from a quartic in the
    trace index fitted to that phase's true times (NaN for a phase on fewer than 10 traces)."""
    slope = np.full(len(picks), np.nan)
    for ev in np.unique(picks["event"]):
        for ph in (0, 1):
            idx = np.flatnonzero((picks["event"] == ev) & (picks["phase"] == ph))
            if idx.size < 10:
                continue
            x = picks["trace"][idx].astype(np.float64)
            c = np.polyfit(x, picks["time_s"][idx] * 1000.0, 4)
            slope[idx] = np.abs(np.polyval(np.polyder(c), x)) / dt_ms
    return slope


def slope_bin(v):
    return "%d-%d per trace" % (int(v), int(v) + 1) if v < 3 else "3+ per trace"


SNR_EDGES = [-12, -6, -3, 0, 3, 6, 10]
SNR_LABELS = (["below %+d dB" % SNR_EDGES[0]]
              + ["%+d..%+d dB" % (lo, hi) for lo, hi in zip(SNR_EDGES[:-1], SNR_EDGES[1:])]
              + ["%+d dB and up" % SNR_EDGES[-1]])


def snr_bin(v):
    return SNR_LABELS[int(np.searchsorted(SNR_EDGES, v, side="right"))]


def band(f):
    return "below 15 Hz" if f < 15 else ("15-45 Hz" if f <= 45 else "above 45 Hz")


def main(argv):
    p = argparse.ArgumentParser(description="Per-event misses of a network on a foreign record.")
    p.add_argument("--truth", required=True, help="record written by benchmarks/foreign_record.py")
    p.add_argument("--prob", required=True, help="seisseg detect --prob output for that record")
    p.add_argument("--threshold", type=float, default=0.5, help="probability of a run (default 0.5)")
    p.add_argument("--window-ms", type=float, default=50.0, help="search half-window around the truth, ms")
    p.add_argument("--phase", choices=["P", "S", "both"], default="both", help="phases to report (default both)")
    p.add_argument("--front-share", type=float, default=0.3,
                   help="an event found on this share of its traces counts whole in the bound (default 0.3)")
    a = p.parse_args(argv)
    if not 0 <= a.front_share <= 1:
        fail("--front-share %r: must lie in [0, 1]" % a.front_share)
    if not 0 < a.threshold < 1:
        fail("--threshold %r: must lie in (0, 1)" % a.threshold)
    if not a.window_ms > 0:
        fail("--window-ms %r: must be positive" % a.window_ms)
    try:
        truth = h5py.File(a.truth, "r")
        probf = h5py.File(a.prob, "r")
    except OSError as e:
        fail(str(e))
    if "prob" not in probf or probf["prob"].shape != truth["data"].shape:
        fail("%s: no /prob of the record's shape %s" % (a.prob, truth["data"].shape))
    rec, events = record_events(truth)
    dt_ms = float(truth.attrs["dt"]) * 1000.0
    snr = {int(e["event"]): float(e["snr_db"]) for e in truth["events"][:]}
    picks = truth["picks"][:]
    prob = probf["prob"][:]
    found, err = run_errors(prob, picks, dt_ms, a.threshold, int(round(a.window_ms / dt_ms)))
    slopes = front_slopes(picks, dt_ms)
    snrs = trace_snr(rec, events, picks)

    phases = [0, 1] if a.phase == "both" else [0 if a.phase == "P" else 1]
    groups = {}
    bound = {ph: [0, 0.0, 0] for ph in phases}  # arrivals, bound count, events counted whole
    print("event phase family   f_Hz  SNR_dB  S/P   dc    x/line  z_m   arrivals found  median_err_ms")
    width = truth["data"].shape[1] * float(truth.attrs["dx"])
    for ev in sorted(set(int(x) for x in picks["event"])):
        e = events[ev]
        for ph in phases:
            sel = (picks["event"] == ev) & (picks["phase"] == ph)
            n = int(sel.sum())
            if n == 0:
                continue
            f = (e["wp"] if ph == 0 else e["ws"]).f
            share = found[sel].mean()
            whole = share >= a.front_share
            bound[ph][0] += n
            bound[ph][1] += n if whole else int(found[sel].sum())
            bound[ph][2] += int(whole)
            med = np.nanmedian(err[sel]) if found[sel].any() else float("nan")
            print("%5d %5s %-7s %5.1f %+6.1f %5.2f %5.2f %+6.2f %5.0f %8d %6.2f %+8.1f" % (
                ev, "PS"[ph], e["kind"], f, snr[ev], e["s_to_p"], e["dc"], e["x"] / width, e["z"], n, share, med))
            for key in (("family", "PS"[ph], e["kind"]), ("band", "PS"[ph], band(f))):
                g = groups.setdefault(key, [0, 0, []])
                g[0] += n
                g[1] += int(found[sel].sum())
                g[2].extend(err[sel][found[sel]].tolist())
            for k in np.flatnonzero(sel):
                for kind, v, name in (("slope", slopes[k], slope_bin), ("trace SNR", snrs[k], snr_bin)):
                    if np.isnan(v):
                        continue
                    g = groups.setdefault((kind, "PS"[ph], name(v)), [0, 0, []])
                    g[0] += 1
                    g[1] += int(found[k])
                    if found[k]:
                        g[2].append(err[k])
    for kind in ("family", "band", "slope", "trace SNR"):
        print("by %s:" % kind)
        order = (lambda k: (k[1], SNR_LABELS.index(k[2]))) if kind == "trace SNR" else None
        for key in sorted((k for k in groups if k[0] == kind), key=order):
            n, h, errs = groups[key]
            print("  %s %-12s %6d arrivals, found %.3f, within 10 ms of the truth %.3f, median error %+.1f ms" % (
                key[1], key[2], n, h / n, np.mean(np.abs(errs) <= 10) * h / n if errs else 0.0,
                np.median(errs) if errs else float("nan")))
    for ph in phases:
        n, b, whole = bound[ph]
        print("%s bound along the fronts: %d of %d arrivals (%.3f); %d events found on at least %.2f of their traces" % (
            "PS"[ph], b, n, b / n if n else 0.0, whole, a.front_share))


if __name__ == "__main__":
    main(sys.argv[1:])
