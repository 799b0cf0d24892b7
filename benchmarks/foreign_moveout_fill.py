#!/usr/bin/env python3
"""How far can picks go along each detected event's moveout? An analysis of detect's output.

    foreign_moveout_fill.py --record F.h5,picks.csv,events.csv [--record ...] [--tolerance-ms 12]

F.h5 is a record with ground truth (/picks: trace, phase, time_s, event; /events: first and last
arrival), such as benchmarks/foreign_record.py writes; picks.csv and events.csv are what `seisseg
detect --picks --out` wrote for it. For each detected event, the picks within [time - 30 ms, time +
2.5 s] are fitted by up to three hyperbolic fronts, t(x)^2 = a + b x + c x^2 over the trace index x
(RANSAC with the tolerance, then least squares on the inliers); the earliest front is taken as the
event's P moveout. Prints, per record and pooled, the share of true P arrivals with a pick within
+-10 ms of the truth:
  picks       the picks as written;
  fill        the picks, plus the fitted P time on every trace that has no pick within the tolerance
              of it (the picks a moveout-consistent filler would add);
  fit         the fitted P time alone on every trace of each detected event;
  fit+oracle  the fit shifted by each event's median error against the truth (an upper bound of
              any per-event time correction; it uses the truth, so it is no method);
and the share of the true P arrivals that belong to a detected event.
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


def fit_front(x, t, tol, seed):
    """t^2 = a + b x + c x^2 by RANSAC (300 draws of 3 picks) then least squares on the inliers."""
    n = len(x)
    if n < 5:
        return None
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(300):
        idx = rng.choice(n, 3, replace=False)
        a = np.stack([np.ones(3), x[idx], x[idx] ** 2], 1)
        try:
            c = np.linalg.solve(a, t[idx] ** 2)
        except np.linalg.LinAlgError:
            continue
        p2 = c[0] + c[1] * x + c[2] * x ** 2
        if np.any(p2 <= 0):
            continue
        inl = np.abs(np.sqrt(p2) - t) < tol
        if best is None or inl.sum() > best[1].sum():
            best = (c, inl)
    if best is None:
        return None
    c, inl = best
    for _ in range(3):
        a = np.stack([np.ones(inl.sum()), x[inl], x[inl] ** 2], 1)
        c = np.linalg.lstsq(a, t[inl] ** 2, rcond=None)[0]
        inl = np.abs(np.sqrt(np.maximum(c[0] + c[1] * x + c[2] * x ** 2, 0)) - t) < tol
    return c, inl


def p_moveout(pt, ptr, te, width, tol, min_inliers=8):
    """The earliest of up to three fronts among the picks of the event detected at te (ms)."""
    m = (pt >= te - 30) & (pt <= te + 2500)
    x, t = ptr[m].astype(float), pt[m]
    keep = np.ones(len(x), bool)
    fronts = []
    for it in range(3):
        if keep.sum() < min_inliers:
            break
        r = fit_front(x[keep], t[keep], tol, it)
        if r is None or r[1].sum() < min_inliers:
            break
        c = r[0]
        xs = np.arange(width)
        pred = np.sqrt(np.maximum(c[0] + c[1] * xs + c[2] * xs ** 2, 0))
        fronts.append(pred)
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
    a = ap.parse_args()
    total = np.zeros(6)
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
        for te in ev["time_ms"]:
            pred = p_moveout(pt, ptr, te, width, a.tolerance_ms)
            if pred is None:
                continue
            # The true event whose P arrivals this front follows best (for the oracle shift only).
            shift = 0.0
            best = None
            for e in events:
                rows = p_rows[p_rows["event"] == e["event"]]
                if len(rows) == 0:
                    continue
                err = pred[rows["trace"]] - rows["time_s"] * 1000.0
                med = float(np.median(err))
                if best is None or abs(med) < abs(best):
                    best = med
            if best is not None:
                shift = best
            for j in range(width):
                fit[j].append(pred[j])
                oracle[j].append(pred[j] - shift)
                if not any(abs(q - pred[j]) < a.tolerance_ms for q in base[j]):
                    fill[j].append(pred[j])
        n = len(p_rows)
        row = np.array([hits(base, p_rows), hits(fill, p_rows), hits(fit, p_rows), hits(oracle, p_rows),
                        in_detected, n], float)
        total += row
        print("%s: %d P arrivals; within 10 ms: picks %.3f, fill %.3f, fit %.3f, fit+oracle %.3f; "
              "in detected events %.3f" % (parts[0], n, *(row[:5] / n)))
    n = total[5]
    print("pooled: %d P arrivals; within 10 ms: picks %.3f, fill %.3f, fit %.3f, fit+oracle %.3f; "
          "in detected events %.3f" % (n, *(total[:5] / n)))


if __name__ == "__main__":
    main()
