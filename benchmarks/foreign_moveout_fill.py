#!/usr/bin/env python3
"""How far can picks go along each detected event's moveout? An analysis of detect's output.

    foreign_moveout_fill.py --record F.h5,picks.csv,events.csv [--record ...] [--tolerance-ms 12]
                            [--degree 2|3 | --origin]

F.h5 is a record with ground truth (/picks: trace, phase, time_s, event; /events: first and last
arrival), such as benchmarks/foreign_record.py writes; picks.csv and events.csv are what `seisseg
detect --picks --out` wrote for it. For each detected event, the picks within [time - 30 ms, time +
2.5 s] are fitted by up to three fronts, t(x)^2 a polynomial of the trace index x of degree 2 (a
hyperbola without an origin time, models/moveout_fill.h's model before the sixteenth session; the
default) or 3 (RANSAC with the tolerance, then least squares on the inliers), or with --origin
t(x) = t0 + sqrt(quadratic) (a hyperbola after an origin time t0, the product's model since: the
degree-2 fit of t - t0 for each t0 of ORIGIN_OFFSETS_MS before the earliest pick, the t0 with the
most inliers); the earliest front is taken as the event's P moveout. Prints, per record
and pooled, the share of true P arrivals with a pick within +-10 ms of the truth:
  picks       the picks as written;
  fill        the picks, plus the fitted P time on every trace that has no pick within the tolerance
              of it (the picks a moveout-consistent filler would add);
  fit         the fitted P time alone on every trace of each detected event;
  fit+oracle  the fit shifted by each event's median error against the truth (an upper bound of
              any per-event time correction; it uses the truth, so it is no method);
and the share of the true P arrivals that belong to a detected event. Then two checks of the
fronts themselves:
  model       the same polynomial fitted by least squares to each true event's true P times: the
              share of them within 10 ms of it (what the model can follow at best);
  phase       which arrivals each detected event's front follows: its median error against the
              nearest true event's P times and S times; "P" or "S" when within 20 ms, else
              "other"; counts of the detections and the P arrivals of the events found by their S
              front only.
Needs numpy and h5py (/usr/bin/python3 on Debian with python3-h5py).
"""

import argparse
import csv
import sys

import h5py
import numpy as np


def fail(msg):
    print("foreign_moveout_fill.py: " + msg, file=sys.stderr)
    sys.exit(2)


def read_csv(path, cols):
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return {c: np.array([float(r[c]) for r in rows]) for c in cols}
    except (OSError, KeyError, ValueError) as e:
        fail("%s: %s" % (path, e))


def powers(x, degree, width):
    """The columns 1, u, ..., u^degree of u = x scaled to [-1, 1] over the array (conditioning)."""
    u = (np.asarray(x, float) - 0.5 * (width - 1)) / max(1.0, 0.5 * (width - 1))
    return np.stack([u ** k for k in range(degree + 1)], 1)


def front_time(c, x, width):
    """sqrt of the polynomial c at the traces x (0 where it is not positive)."""
    return np.sqrt(np.maximum(powers(x, len(c) - 1, width) @ c, 0))


def fit_front(x, t, tol, seed, degree, width):
    """t^2 a polynomial of x by RANSAC (300 draws of degree + 1 picks) then least squares on the inliers."""
    n = len(x)
    if n < degree + 3:
        return None
    rng = np.random.default_rng(seed)
    a_all = powers(x, degree, width)
    best = None
    for _ in range(300):
        idx = rng.choice(n, degree + 1, replace=False)
        try:
            c = np.linalg.solve(a_all[idx], t[idx] ** 2)
        except np.linalg.LinAlgError:
            continue
        p2 = a_all @ c
        if np.any(p2 <= 0):
            continue
        inl = np.abs(np.sqrt(p2) - t) < tol
        if best is None or inl.sum() > best[1].sum():
            best = (c, inl)
    if best is None:
        return None
    c, inl = best
    for _ in range(3):
        c = np.linalg.lstsq(a_all[inl], t[inl] ** 2, rcond=None)[0]
        inl = np.abs(front_time(c, x, width) - t) < tol
    return c, inl


ORIGIN_OFFSETS_MS = (2, 5, 10, 20, 40, 80, 150, 300, 600, 1200, 2500)


def fit_front_origin(x, t, tol, seed, width):
    """t = t0 + sqrt(quadratic of x): fit_front (degree 2) on t - t0 for each t0 of ORIGIN_OFFSETS_MS
    before the earliest pick; the t0 with the most inliers (then the smallest rms on them).
    Returns (c, inliers, t0) or None."""
    best = None
    for off in ORIGIN_OFFSETS_MS:
        t0 = t.min() - off
        r = fit_front(x, t - t0, tol, seed, 2, width)
        if r is None:
            continue
        c, inl = r
        rms = float(np.sqrt(np.mean((front_time(c, x[inl], width) + t0 - t[inl]) ** 2))) if inl.any() else 1e9
        key = (int(inl.sum()), -rms)
        if best is None or key > best[0]:
            best = (key, c, inl, t0)
    return None if best is None else best[1:]


def p_moveout(pt, ptr, te, width, tol, degree, min_inliers=8):
    """The earliest of up to three fronts among the picks of the event detected at te (ms)."""
    m = (pt >= te - 30) & (pt <= te + 2500)
    x, t = ptr[m].astype(float), pt[m]
    keep = np.ones(len(x), bool)
    fronts = []
    for it in range(3):
        if keep.sum() < min_inliers:
            break
        if degree == 0:  # --origin
            r = fit_front_origin(x[keep], t[keep], tol, it, width)
        else:
            r = fit_front(x[keep], t[keep], tol, it, degree, width)
        if r is None or r[1].sum() < min_inliers:
            break
        fronts.append(front_time(r[0], np.arange(width), width) + (r[2] if degree == 0 else 0.0))
        keep[np.where(keep)[0][r[1]]] = False
    return min(fronts, key=np.median) if fronts else None


def hits(sets, rows):
    h = 0
    for r in rows:
        a = sets[int(r["trace"])]
        if len(a) and np.min(np.abs(np.asarray(a) - r["time_s"] * 1000.0)) <= 10.0:
            h += 1
    return h


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--record", action="append", required=True, help="F.h5,picks.csv,events.csv")
    ap.add_argument("--tolerance-ms", type=float, default=12.0)
    ap.add_argument("--degree", type=int, choices=(2, 3), default=2,
                    help="degree of t^2 in the trace index (2: hyperbola)")
    ap.add_argument("--origin", action="store_true",
                    help="fit t = t0 + sqrt(quadratic) (a hyperbola after an origin time) instead")
    a = ap.parse_args()
    degree = 0 if a.origin else a.degree
    total = np.zeros(6)
    model = np.zeros(2)  # true P arrivals within 10 ms of the model fitted to them, all of them
    phases = {"P": 0, "S": 0, "other": 0}
    s_only = 0  # P arrivals of events whose detections all follow the S front
    for rec in a.record:
        parts = rec.split(",")
        if len(parts) != 3:
            fail("--record %s: expected F.h5,picks.csv,events.csv" % rec)
        try:
            f = h5py.File(parts[0], "r")
            width = f["data"].shape[1]
            truth = f["picks"][:]
            events = f["events"][:]
        except (OSError, KeyError) as e:
            fail("%s: %s" % (parts[0], e))
        p_rows = truth[truth["phase"] == 0]
        pk = read_csv(parts[1], ["trace", "time_ms"])
        ev = read_csv(parts[2], ["time_ms"])
        pt, ptr = pk["time_ms"], pk["trace"].astype(int)
        base = {j: list(np.sort(pt[ptr == j])) for j in range(width)}
        fill = {j: list(v) for j, v in base.items()}
        fit = {j: [] for j in range(width)}
        oracle = {j: [] for j in range(width)}
        in_detected = 0
        for e in events:
            if not np.isfinite(e["first_arrival_s"]):
                continue
            lo, hi = e["first_arrival_s"] * 1000.0 - 50, e["last_arrival_s"] * 1000.0 + 50
            m = (ev["time_ms"] >= lo) & (ev["time_ms"] <= hi)
            if m.any():
                in_detected += int(np.sum(p_rows["event"] == e["event"]))
        for e in events:
            rows = p_rows[p_rows["event"] == e["event"]]
            if len(rows) < 5:
                continue
            t = rows["time_s"] * 1000.0
            if a.origin:  # least squares of t - t0 for each t0, the best by rms
                best = None
                for off in ORIGIN_OFFSETS_MS + tuple(np.geomspace(1, 5000, 200)):
                    c = np.linalg.lstsq(powers(rows["trace"], 2, width), (t - t.min() + off) ** 2, rcond=None)[0]
                    pred = front_time(c, rows["trace"], width) + t.min() - off
                    rms = np.sqrt(np.mean((pred - t) ** 2))
                    if best is None or rms < best[0]:
                        best = (rms, pred)
                pred = best[1]
            else:
                c = np.linalg.lstsq(powers(rows["trace"], a.degree, width), t ** 2, rcond=None)[0]
                pred = front_time(c, rows["trace"], width)
            model += [np.sum(np.abs(pred - t) <= 10.0), len(rows)]
        by_event = {}  # true event -> the phases its detections' fronts follow
        for te in ev["time_ms"]:
            pred = p_moveout(pt, ptr, te, width, a.tolerance_ms, degree)
            if pred is None:
                continue
            # The true event whose P arrivals this front follows best (for the oracle shift), and
            # the phase it follows (the nearest event's P or S front, by the median error).
            shift = 0.0
            best = None
            nearest = None
            for e in events:
                for phase in (0, 1):
                    rows = truth[(truth["event"] == e["event"]) & (truth["phase"] == phase)]
                    if len(rows) == 0:
                        continue
                    med = float(np.median(pred[rows["trace"]] - rows["time_s"] * 1000.0))
                    if phase == 0 and (best is None or abs(med) < abs(best)):
                        best = med
                    if nearest is None or abs(med) < abs(nearest[0]):
                        nearest = (med, phase, int(e["event"]))
            if best is not None:
                shift = best
            kind = "other"
            if nearest is not None and abs(nearest[0]) <= 20.0:
                kind = "PS"[nearest[1]]
                by_event.setdefault(nearest[2], set()).add(kind)
            phases[kind] += 1
            for j in range(width):
                fit[j].append(pred[j])
                oracle[j].append(pred[j] - shift)
                if not any(abs(q - pred[j]) < a.tolerance_ms for q in base[j]):
                    fill[j].append(pred[j])
        for ev_id, kinds in by_event.items():
            if kinds == {"S"}:
                s_only += int(np.sum(p_rows["event"] == ev_id))
        n = len(p_rows)
        row = np.array([hits(base, p_rows), hits(fill, p_rows), hits(fit, p_rows), hits(oracle, p_rows),
                        in_detected, n], float)
        total += row
        print("%s: %d P arrivals; within 10 ms: picks %.3f, fill %.3f, fit %.3f, fit+oracle %.3f; "
              "in detected events %.3f" % (parts[0], n, *(row[:5] / n)))
    n = total[5]
    print("pooled: %d P arrivals; within 10 ms: picks %.3f, fill %.3f, fit %.3f, fit+oracle %.3f; "
          "in detected events %.3f" % (n, *(total[:5] / n)))
    print("model (%s) fitted to the true P times: %.3f of them within 10 ms" % (
        "origin time + sqrt(quadratic)" if a.origin else "degree %d" % a.degree, model[0] / model[1]))
    print("phase of the detections' fronts: P %d, S %d, other %d; P arrivals of events found by their S front "
          "only: %.3f" % (phases["P"], phases["S"], phases["other"], s_only / n))


if __name__ == "__main__":
    main()
