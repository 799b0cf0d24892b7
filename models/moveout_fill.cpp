#include "models/moveout_fill.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/error.h"

namespace seis {
namespace {

// The quadratic y = A + B u + C u^2 through three points of distinct u (Newton's divided differences).
bool through_three(const double* u, const double* y, double q[3]) {
  if (u[0] == u[1] || u[1] == u[2] || u[0] == u[2]) return false;
  const double d1 = (y[1] - y[0]) / (u[1] - u[0]);
  const double d2 = (y[2] - y[1]) / (u[2] - u[1]);
  q[2] = (d2 - d1) / (u[2] - u[0]);
  q[1] = d1 - q[2] * (u[0] + u[1]);
  q[0] = y[0] - q[1] * u[0] - q[2] * u[0] * u[0];
  return std::isfinite(q[0]) && std::isfinite(q[1]) && std::isfinite(q[2]);
}

// Least squares y = A + B u + C u^2 over the marked points (normal equations, partial pivoting);
// false when they do not determine a quadratic.
bool least_squares(const std::vector<double>& u, const std::vector<double>& y, const std::vector<char>& use,
                   double q[3]) {
  double m[3][4] = {};
  for (size_t i = 0; i < u.size(); ++i) {
    if (!use[i]) continue;
    const double p[3] = {1.0, u[i], u[i] * u[i]};
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c) m[r][c] += p[r] * p[c];
      m[r][3] += p[r] * y[i];
    }
  }
  for (int col = 0; col < 3; ++col) {
    int piv = col;
    for (int r = col + 1; r < 3; ++r) {
      if (std::fabs(m[r][col]) > std::fabs(m[piv][col])) piv = r;
    }
    if (!(std::fabs(m[piv][col]) > 1e-12 * std::max(1.0, std::fabs(m[0][0])))) return false;
    for (int c = 0; c < 4; ++c) std::swap(m[col][c], m[piv][c]);
    for (int r = 0; r < 3; ++r) {
      if (r == col) continue;
      const double f = m[r][col] / m[col][col];
      for (int c = col; c < 4; ++c) m[r][c] -= f * m[col][c];
    }
  }
  for (int r = 0; r < 3; ++r) q[r] = m[r][3] / m[r][r];
  return std::isfinite(q[0]) && std::isfinite(q[1]) && std::isfinite(q[2]);
}

// Picks within tol of the front t0 + sqrt(q(u)), and the sum of their misfits.
int64_t count_inliers(const std::vector<double>& u, const std::vector<double>& t, const double q[3], double t0,
                      double tol, std::vector<char>* use, double* misfit) {
  int64_t n = 0;
  double sum = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    const double p2 = q[0] + q[1] * u[i] + q[2] * u[i] * u[i];
    const double e = p2 > 0 ? std::fabs(t0 + std::sqrt(p2) - t[i]) : std::numeric_limits<double>::infinity();
    const bool in = e < tol;
    if (use != nullptr) (*use)[i] = in ? 1 : 0;
    if (in) {
      ++n;
      sum += e;
    }
  }
  if (misfit != nullptr) *misfit = sum;
  return n;
}

// The squared times after the origin t0, (t - t0)^2.
std::vector<double> squared_after(const std::vector<double>& t, double t0) {
  std::vector<double> y(t.size());
  for (size_t i = 0; i < t.size(); ++i) y[i] = (t[i] - t0) * (t[i] - t0);
  return y;
}

// One front t0 + sqrt(q(u)) for a given origin t0: the candidate quadratic that the most picks
// follow (triples of the spread sample, scored on su/st), refitted by least squares on its picks.
struct OriginFit {
  double q[3] = {0, 0, 0};
  double t0 = 0;
  int64_t inliers = 0;
  double misfit = std::numeric_limits<double>::infinity();  // sum of |error| over the inliers
  std::vector<char> use;
};

OriginFit fit_at_origin(const std::vector<double>& u, const std::vector<double>& tt, const std::vector<size_t>& sample,
                        const std::vector<double>& su, const std::vector<double>& st, double t0, double tol) {
  OriginFit f;
  f.t0 = t0;
  const std::vector<double> y = squared_after(tt, t0);
  const size_t m = sample.size();
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = i + 1; j < m; ++j) {
      for (size_t k = j + 1; k < m; ++k) {
        const double uu[3] = {u[sample[i]], u[sample[j]], u[sample[k]]};
        const double yy[3] = {y[sample[i]], y[sample[j]], y[sample[k]]};
        double q[3];
        if (!through_three(uu, yy, q)) continue;
        double misfit = 0;
        const int64_t c = count_inliers(su, st, q, t0, tol, nullptr, &misfit);
        if (c > f.inliers || (c == f.inliers && c > 0 && misfit < f.misfit)) {
          f.inliers = c;
          f.misfit = misfit;
          std::copy(q, q + 3, f.q);
        }
      }
    }
  }
  if (f.inliers < 3) {
    f.inliers = 0;
    return f;
  }
  // Refitted on the picks that follow it, until they stop changing (at most three times).
  const size_t n = u.size();
  f.use.assign(n, 0);
  f.inliers = count_inliers(u, tt, f.q, t0, tol, &f.use, &f.misfit);
  for (int it = 0; it < 3; ++it) {
    double q[3];
    if (!least_squares(u, y, f.use, q)) break;
    std::vector<char> next(n, 0);
    double misfit = 0;
    const int64_t c = count_inliers(u, tt, q, t0, tol, &next, &misfit);
    if (c < f.inliers) break;  // the refit lost picks: keep what we had
    std::copy(q, q + 3, f.q);
    f.inliers = c;
    f.misfit = misfit;
    if (next == f.use) break;
    f.use.swap(next);
  }
  f.inliers = count_inliers(u, tt, f.q, t0, tol, &f.use, &f.misfit);
  return f;
}

// The sum of squared errors of the least-squares front through the marked picks for origin t0
// (infinite where they determine none).
double origin_misfit(const std::vector<double>& u, const std::vector<double>& tt, const std::vector<char>& use,
                     double t0, double q[3]) {
  if (!least_squares(u, squared_after(tt, t0), use, q)) return std::numeric_limits<double>::infinity();
  double sum = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    if (!use[i]) continue;
    const double p2 = q[0] + q[1] * u[i] + q[2] * u[i] * u[i];
    if (!(p2 > 0)) return std::numeric_limits<double>::infinity();
    const double e = t0 + std::sqrt(p2) - tt[i];
    sum += e * e;
  }
  return sum;
}

bool time_order(const Pick& a, const Pick& b) {
  return a.time_ms != b.time_ms ? a.time_ms < b.time_ms : a.trace < b.trace;
}

// The front through the picks (u ascending, tt their times): t0 + sqrt(q(u)) with the origin time
// searched (origin: each of kOriginOffsetsMs before the earliest pick, the one whose front the most
// picks follow, then refined), or with t0 = 0, t^2 quadratic in the time from the start of the
// gather or record (the stiffer model). inliers = 0 when no candidate fits three picks.
OriginFit fit_front(const std::vector<double>& u, const std::vector<double>& tt, double tolerance_ms, bool origin) {
  const size_t n = u.size();
  // Candidate triples from up to 24 picks spread evenly over the traces: every triple of them.
  const size_t m = std::min<size_t>(n, 24);
  std::vector<size_t> sample(m);
  for (size_t k = 0; k < m; ++k) sample[k] = m == 1 ? 0 : (k * (n - 1) + (m - 1) / 2) / (m - 1);
  // The candidates are scored on at most 512 of the picks, spread evenly (a wide array's event can
  // hold thousands); the refit uses them all.
  std::vector<double> su, st;
  const size_t ns = std::min<size_t>(n, 512);
  for (size_t k = 0; k < ns; ++k) {
    const size_t i = ns == n ? k : k * (n - 1) / (ns - 1);
    su.push_back(u[i]);
    st.push_back(tt[i]);
  }
  if (!origin) return fit_at_origin(u, tt, sample, su, st, 0.0, tolerance_ms);
  // The origin time: each of kOriginOffsetsMs before the earliest pick, the one whose front the
  // most picks follow (then the smallest misfit) ...
  const double t_min = *std::min_element(tt.begin(), tt.end());
  constexpr double kOriginOffsetsMs[] = {2, 5, 10, 20, 40, 80, 150, 300, 600, 1200, 2500};
  constexpr int kOffsets = static_cast<int>(sizeof(kOriginOffsetsMs) / sizeof(kOriginOffsetsMs[0]));
  OriginFit best;
  int best_k = -1;
  for (int k = 0; k < kOffsets; ++k) {
    OriginFit f = fit_at_origin(u, tt, sample, su, st, t_min - kOriginOffsetsMs[k], tolerance_ms);
    if (f.inliers > best.inliers || (f.inliers == best.inliers && f.inliers > 0 && f.misfit < best.misfit)) {
      best = std::move(f);
      best_k = k;
    }
  }
  if (best.inliers < 3) return best;
  // ... then refined between its neighbours by golden-section search on the least-squares misfit of
  // those picks, kept when at least as many picks follow the refined front.
  {
    const double lo_off = best_k > 0 ? kOriginOffsetsMs[best_k - 1] : 0.5 * kOriginOffsetsMs[0];
    const double hi_off = best_k + 1 < kOffsets ? kOriginOffsetsMs[best_k + 1] : 2.0 * kOriginOffsetsMs[kOffsets - 1];
    double a = t_min - hi_off, b = t_min - lo_off;
    const double g = 0.5 * (std::sqrt(5.0) - 1.0);
    double q1[3], q2[3];
    double c = b - g * (b - a), d = a + g * (b - a);
    double fc = origin_misfit(u, tt, best.use, c, q1), fd = origin_misfit(u, tt, best.use, d, q2);
    for (int it = 0; it < 40; ++it) {
      if (fc <= fd) {
        b = d;
        d = c;
        fd = fc;
        c = b - g * (b - a);
        fc = origin_misfit(u, tt, best.use, c, q1);
      } else {
        a = c;
        c = d;
        fc = fd;
        d = a + g * (b - a);
        fd = origin_misfit(u, tt, best.use, d, q2);
      }
    }
    const double t0 = 0.5 * (a + b);
    double q[3];
    if (std::isfinite(origin_misfit(u, tt, best.use, t0, q))) {
      std::vector<char> use(n, 0);
      double misfit = 0;
      const int64_t cnt = count_inliers(u, tt, q, t0, tolerance_ms, &use, &misfit);
      if (cnt >= best.inliers) {
        std::copy(q, q + 3, best.q);
        best.t0 = t0;
        best.inliers = cnt;
        best.misfit = misfit;
        best.use.swap(use);
      }
    }
  }
  return best;
}

// Picks of the fitted front within tol of it.
int64_t follow(const OriginFit& f, const std::vector<double>& u, const std::vector<double>& tt, double tol) {
  return f.inliers > 0 ? count_inliers(u, tt, f.q, f.t0, tol, nullptr, nullptr) : 0;
}

}  // namespace

bool MoveoutFit::time_at(double x, double* t_ms) const {
  const double u = (x - x0) / scale;
  const double p2 = a + b * u + c * u * u;
  if (!(p2 > 0) || !std::isfinite(p2)) return false;
  *t_ms = t0 + std::sqrt(p2);
  return true;
}

bool fit_moveout(const std::vector<double>& x, const std::vector<double>& t, double tolerance_ms, int64_t min_inliers,
                 MoveoutFit* fit) {
  const size_t n = x.size();
  if (n != t.size() || n < 3 || !(tolerance_ms > 0)) return false;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(t[i])) return false;
  }
  // Trace indices centred and scaled to [-1, 1] over the picks, for a well-conditioned fit.
  const auto [x_min, x_max] = std::minmax_element(x.begin(), x.end());
  const double x0 = 0.5 * (*x_min + *x_max), scale = std::max(1.0, 0.5 * (*x_max - *x_min));
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] != x[b] ? x[a] < x[b] : a < b; });
  std::vector<double> u(n), tt(n);
  for (size_t i = 0; i < n; ++i) {
    u[i] = (x[order[i]] - x0) / scale;
    tt[i] = t[order[i]];
  }
  // Both models through all the picks; the one kept is the one that better predicts the outer fifth
  // of the picks on each side when fitted to the inner three fifths (the fill extrapolates: with
  // precise picks the origin time follows the front's curvature, with scattered ones its four
  // parameters trade off and the stiffer model carries further), else the one more picks follow.
  OriginFit best = fit_front(u, tt, tolerance_ms, true);
  OriginFit stiff = fit_front(u, tt, tolerance_ms, false);
  std::vector<double> ui, ti, uo, to;
  for (size_t i = 0; i < n; ++i) {
    const bool inner = std::fabs(u[i]) <= 0.6;
    if (inner) {
      ui.push_back(u[i]);
      ti.push_back(tt[i]);
    } else {
      uo.push_back(u[i]);
      to.push_back(tt[i]);
    }
  }
  bool take_stiff = stiff.inliers > best.inliers;
  if (static_cast<int64_t>(ui.size()) >= std::max<int64_t>(8, min_inliers / 2) && uo.size() >= 4) {
    const int64_t a = follow(fit_front(ui, ti, tolerance_ms, true), uo, to, tolerance_ms);
    const int64_t b = follow(fit_front(ui, ti, tolerance_ms, false), uo, to, tolerance_ms);
    take_stiff = b >= a;
  }
  if (take_stiff) best = std::move(stiff);
  if (best.inliers < std::max<int64_t>(3, min_inliers)) return false;
  const std::vector<char>& use = best.use;
  fit->a = best.q[0];
  fit->b = best.q[1];
  fit->c = best.q[2];
  fit->t0 = best.t0;
  fit->x0 = x0;
  fit->scale = scale;
  fit->inliers = best.inliers;
  fit->x_lo = std::numeric_limits<double>::infinity();
  fit->x_hi = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < n; ++i) {
    if (!use[i]) continue;
    fit->x_lo = std::min(fit->x_lo, x[order[i]]);
    fit->x_hi = std::max(fit->x_hi, x[order[i]]);
  }
  return true;
}

MoveoutFill::MoveoutFill(int64_t width, double dt_ms, const MoveoutFillOptions& options)
    : width_(width), dt_ms_(dt_ms), options_(options) {
  if (width < 1) throw UsageError("moveout fill: the width must be at least 1");
  if (!(dt_ms > 0)) throw UsageError("moveout fill: dt must be positive");
  if (!(options.tolerance_ms > 0) || !std::isfinite(options.tolerance_ms)) {
    throw UsageError("moveout fill: the tolerance must be positive");
  }
  if (!(options.max_hold_ms > 0)) throw UsageError("moveout fill: the hold must be positive");
}

double MoveoutFill::reach(const Detection& d) const {
  // Far traces of a front picked only near its apex arrive after the event's last pick.
  return std::max(d.last_ms + options_.tolerance_ms, d.time_ms + options_.max_span_ms);
}

void MoveoutFill::fill_event(const Detection& d) {
  const double tol = options_.tolerance_ms;
  const double lo_ms = lo(d), hi_ms = d.last_ms + tol, reach_ms = reach(d);
  // held_ is in time order: the picks that can bear on the event, by trace then time (filled ones
  // count as picks already there, but fit nothing).
  auto first =
      std::lower_bound(held_.begin(), held_.end(), lo_ms - tol, [](const Pick& p, double t) { return p.time_ms < t; });
  std::vector<const Pick*> near;
  for (auto it = first; it != held_.end() && it->time_ms <= reach_ms + tol; ++it) near.push_back(&*it);
  std::sort(near.begin(), near.end(), [](const Pick* a, const Pick* b) {
    return a->trace != b->trace ? a->trace < b->trace : a->time_ms < b->time_ms;
  });
  std::vector<double> x, t;
  for (size_t i = 0; i < near.size();) {
    size_t j = i;
    bool taken = false;
    for (; j < near.size() && near[j]->trace == near[i]->trace; ++j) {
      const Pick& p = *near[j];
      if (!taken && !p.filled && p.time_ms >= lo_ms && p.time_ms <= hi_ms) {  // the trace's earliest pick
        x.push_back(static_cast<double>(p.trace));
        t.push_back(p.time_ms);
        taken = true;
      }
    }
    i = j;
  }
  MoveoutFit fit;
  if (!fit_moveout(x, t, tol, options_.min_inliers, &fit)) return;
  // The traces of the fitted picks, widened on each side by their own span (at least 64 traces):
  // the front's continuation, not a hyperbola carried across a wide array.
  const double ext = std::max(64.0, fit.x_hi - fit.x_lo);
  const int64_t j0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(fit.x_lo - ext)));
  const int64_t j1 = std::min<int64_t>(width_ - 1, static_cast<int64_t>(std::ceil(fit.x_hi + ext)));
  std::vector<Pick> add;
  size_t k = 0;
  for (int64_t j = j0; j <= j1; ++j) {
    while (k < near.size() && near[k]->trace < j) ++k;
    if (!live_.empty() && (j >= static_cast<int64_t>(live_.size()) || live_[static_cast<size_t>(j)] == 0)) continue;
    double pred = 0;
    if (!fit.time_at(static_cast<double>(j), &pred) || pred < lo_ms || pred > reach_ms || pred < 0) continue;
    bool picked = false;
    for (size_t q = k; q < near.size() && near[q]->trace == j; ++q) {
      if (std::fabs(near[q]->time_ms - pred) < tol) picked = true;
    }
    if (picked) continue;
    if (pred < released_) {  // behind a forced release: the picks before it are gone
      ++dropped_;
      continue;
    }
    Pick p;
    p.gather = d.gather;
    p.trace = j;
    p.time_ms = pred;
    p.sample = pred / dt_ms_;
    p.score = 0;
    p.filled = true;
    add.push_back(p);
  }
  filled_ += static_cast<int64_t>(add.size());
  std::sort(add.begin(), add.end(), time_order);
  const size_t mid = held_.size();
  held_.insert(held_.end(), add.begin(), add.end());
  std::inplace_merge(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(mid), held_.end(), time_order);
}

void MoveoutFill::release(double below_ms, std::vector<Pick>* out) {
  const auto end =
      std::lower_bound(held_.begin(), held_.end(), below_ms, [](const Pick& p, double t) { return p.time_ms < t; });
  out->insert(out->end(), held_.begin(), end);
  held_.erase(held_.begin(), end);
  released_ = std::max(released_, below_ms);
}

void MoveoutFill::add(const std::vector<Pick>& picks, const std::vector<Detection>& events, double safe_ms,
                      double floor_ms, double now_ms, std::vector<Pick>* out) {
  std::vector<Pick> in(picks);
  std::sort(in.begin(), in.end(), time_order);
  const size_t mid = held_.size();
  held_.insert(held_.end(), in.begin(), in.end());
  std::inplace_merge(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(mid), held_.end(), time_order);
  waiting_.insert(waiting_.end(), events.begin(), events.end());
  // An event is filled once every pick that can bear on it has arrived.
  std::vector<Detection> still;
  for (const Detection& d : waiting_) {
    if (reach(d) + options_.tolerance_ms < floor_ms) {
      fill_event(d);
    } else {
      still.push_back(d);
    }
  }
  waiting_.swap(still);
  // The held picks that neither a waiting event nor one still to come can look at go out (the
  // filled picks of those lie at or after the start of their window); never more than max_hold_ms
  // of them are kept.
  double bound = safe_ms;
  for (const Detection& d : waiting_) bound = std::min(bound, lo(d));
  release(std::max(bound - options_.tolerance_ms, now_ms - options_.max_hold_ms), out);
}

void MoveoutFill::finish(std::vector<Pick>* out) {
  for (const Detection& d : waiting_) fill_event(d);
  waiting_.clear();
  release(std::numeric_limits<double>::infinity(), out);
  reset();
}

void MoveoutFill::reset() {
  held_.clear();
  waiting_.clear();
  released_ = -std::numeric_limits<double>::infinity();  // the next gather starts at time 0 again
}

}  // namespace seis
