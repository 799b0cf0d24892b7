#include "models/picking.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>

#include "engine/error.h"

namespace seis {

namespace {

void union_traces(std::vector<int64_t>* into, const std::vector<int64_t>& from) {
  std::vector<int64_t> merged;
  merged.reserve(into->size() + from.size());
  std::set_union(into->begin(), into->end(), from.begin(), from.end(), std::back_inserter(merged));
  into->swap(merged);
}

// The root of node i of a union-find forest (nodes with a `parent` index), halving its path.
template <typename Node>
int64_t find_root(std::vector<Node>& nodes, int64_t i) {
  while (nodes[static_cast<size_t>(i)].parent != i) {
    Node& n = nodes[static_cast<size_t>(i)];
    n.parent = nodes[static_cast<size_t>(n.parent)].parent;
    i = n.parent;
  }
  return i;
}

}  // namespace

TracePicker::TracePicker(int64_t width, const PickerOptions& options)
    : width_(width), options_(options), traces_(static_cast<size_t>(width)) {
  if (width < 1) throw UsageError("picker: width must be at least 1");
  if (!(options.threshold > 0.0f && options.threshold < 1.0f)) throw UsageError("picker: threshold must be in (0, 1)");
  if (options.min_separation < 1) throw UsageError("picker: the minimum separation must be at least one sample");
}

void TracePicker::reset() {
  std::fill(traces_.begin(), traces_.end(), TraceState{});
  next_ = 0;
}

void TracePicker::emit_held(int64_t trace, TraceState& s, std::vector<Pick>* out) {
  Pick p;
  p.trace = trace;
  p.sample = s.held_sample;
  p.score = s.held_score;
  out->push_back(p);
  s.held = false;
}

void TracePicker::close_run(int64_t trace, TraceState& s, std::vector<Pick>* out) {
  s.in_run = false;
  const double centre = s.sum_p > 0 ? s.sum_pt / s.sum_p : static_cast<double>(s.run_start);
  if (s.held) {
    if (centre - s.held_sample < static_cast<double>(options_.min_separation)) {
      if (s.peak > s.held_score) {  // the stronger of two close picks stays
        s.held_sample = centre;
        s.held_score = s.peak;
      }
      return;
    }
    emit_held(trace, s, out);
  }
  s.held = true;
  s.held_sample = centre;
  s.held_score = s.peak;
}

void TracePicker::feed(const float* prob, int64_t rows, std::vector<Pick>* out) {
  const float thr = options_.threshold;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = next_ + r;
    const float* row = prob + r * width_;
    for (int64_t j = 0; j < width_; ++j) {
      TraceState& s = traces_[static_cast<size_t>(j)];
      const float p = row[j];
      if (p >= thr) {
        if (!s.in_run) {
          if (s.held && static_cast<double>(t) - s.held_sample >= static_cast<double>(options_.min_separation)) {
            emit_held(j, s, out);
          }
          s.in_run = true;
          s.run_start = t;
          s.sum_p = s.sum_pt = 0;
          s.peak = 0;
        }
        s.sum_p += p;
        s.sum_pt += static_cast<double>(p) * static_cast<double>(t);
        s.peak = std::max(s.peak, p);
      } else if (s.in_run) {
        close_run(j, s, out);
      }
    }
  }
  next_ += rows;
  // A held pick that no later run can come within min_separation of is final.
  for (int64_t j = 0; j < width_; ++j) {
    TraceState& s = traces_[static_cast<size_t>(j)];
    if (s.held && !s.in_run &&
        static_cast<double>(next_) - s.held_sample >= static_cast<double>(options_.min_separation)) {
      emit_held(j, s, out);
    }
  }
}

void TracePicker::finish(std::vector<Pick>* out) {
  for (int64_t j = 0; j < width_; ++j) {
    TraceState& s = traces_[static_cast<size_t>(j)];
    if (s.in_run) close_run(j, s, out);
    if (s.held) emit_held(j, s, out);
  }
}

double TracePicker::watermark() const {
  double w = static_cast<double>(next_);
  for (const TraceState& s : traces_) {
    if (s.in_run) w = std::min(w, static_cast<double>(s.run_start));
    if (s.held) w = std::min(w, s.held_sample);
  }
  return w;
}

FrontMerger::FrontMerger(double event_gap_ms, int64_t gather, int64_t first_event)
    : gap_ms_(event_gap_ms), gather_(gather), next_event_(first_event) {}

void FrontMerger::close(std::vector<Detection>* out) {
  Detection d;
  d.gather = gather_;
  d.event = next_event_++;
  d.time_ms = event_.first_ms;
  d.last_ms = event_.last_ms;
  d.n_traces = static_cast<int64_t>(event_.traces.size());
  d.score = event_.picks > 0 ? static_cast<float>(event_.score_sum / static_cast<double>(event_.picks)) : 0.0f;
  out->push_back(d);
  open_ = false;
}

void FrontMerger::add(const Front& f, std::vector<Detection>* out) {
  if (open_ && f.first_ms <= event_.last_ms + gap_ms_) {
    event_.first_ms = std::min(event_.first_ms, f.first_ms);
    event_.last_ms = std::max(event_.last_ms, f.last_ms);
    union_traces(&event_.traces, f.traces);
    event_.score_sum += f.score_sum;
    event_.picks += f.picks;
    return;
  }
  if (open_) close(out);
  event_ = f;
  open_ = true;
}

void FrontMerger::advance(double t_ms, std::vector<Detection>* out) {
  if (open_ && t_ms > event_.last_ms + gap_ms_) close(out);
}

void FrontMerger::finish(std::vector<Detection>* out) {
  if (open_) close(out);
}

double FrontMerger::open_first_ms() const { return open_ ? event_.first_ms : std::numeric_limits<double>::infinity(); }

EventAssociator::EventAssociator(const AssociationOptions& options, int64_t gather, int64_t first_event)
    : options_(options),
      reach_ms_(static_cast<double>(options.max_trace_gap) * options.ms_per_trace + options.tolerance_ms),
      merger_(options.event_gap_ms, gather, first_event) {
  if (options.max_trace_gap < 1) throw UsageError("association: the trace gap must be at least 1");
  if (options.min_traces < 1) throw UsageError("association: the minimum trace count must be at least 1");
  if (!(options.ms_per_trace >= 0) || !(options.tolerance_ms >= 0) || !(options.event_gap_ms >= 0)) {
    throw UsageError("association: moveout, tolerance and event gap must not be negative");
  }
}

EventAssociator::~EventAssociator() = default;

int64_t EventAssociator::find(int64_t i) { return find_root(nodes_, i); }

void EventAssociator::unite(int64_t a, int64_t b) {
  a = find(a);
  b = find(b);
  if (a == b) return;
  Component& ca = comps_[static_cast<size_t>(a)];
  Component& cb = comps_[static_cast<size_t>(b)];
  if (ca.traces.size() < cb.traces.size()) {  // keep the larger trace list as the root's
    std::swap(a, b);
  }
  Component& root = comps_[static_cast<size_t>(a)];
  Component& child = comps_[static_cast<size_t>(b)];
  root.first = std::min(root.first, child.first);
  root.last = std::max(root.last, child.last);
  union_traces(&root.traces, child.traces);
  root.score_sum += child.score_sum;
  root.picks += child.picks;
  child = Component{};
  nodes_[static_cast<size_t>(b)].parent = a;
}

void EventAssociator::add(const Pick& p, std::vector<Detection>* out) {
  const double t = p.time_ms;
  if (t - last_sweep_ms_ >= 0.5 * reach_ms_) sweep(t, false, out);
  const int64_t n = static_cast<int64_t>(nodes_.size());
  nodes_.push_back(Node{p.trace, t, p.score, n});
  comps_.push_back(Component{t, t, {p.trace}, p.score, 1});
  for (int64_t i = n - 1; i >= 0; --i) {
    const Node& q = nodes_[static_cast<size_t>(i)];
    if (q.t < t - reach_ms_) break;  // nodes_ is in time order
    const int64_t dj = std::llabs(q.trace - p.trace);
    if (dj < 1 || dj > options_.max_trace_gap) continue;
    if (std::fabs(t - q.t) <= static_cast<double>(dj) * options_.ms_per_trace + options_.tolerance_ms) unite(i, n);
  }
}

void EventAssociator::sweep(double now_ms, bool all, std::vector<Detection>* out) {
  last_sweep_ms_ = now_ms;
  // Close the components no later pick can link to (or grown too long), keep the others.
  std::vector<int64_t> remap(nodes_.size(), -1);
  std::vector<char> closed(nodes_.size(), 0);
  double open_first = now_ms;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].parent != static_cast<int64_t>(i)) continue;
    const Component& c = comps_[i];
    if (all || c.last < now_ms - reach_ms_ || c.last - c.first > options_.max_front_ms) {
      closed[i] = 1;
      if (static_cast<int64_t>(c.traces.size()) >= options_.min_traces) {
        ready_.push_back(Front{c.first, c.last, c.traces, c.score_sum, c.picks});
      }
    } else {
      open_first = std::min(open_first, c.first);
    }
  }
  std::vector<Node> nodes;
  std::vector<Component> comps;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const int64_t root = find(static_cast<int64_t>(i));
    if (closed[static_cast<size_t>(root)]) continue;
    remap[i] = static_cast<int64_t>(nodes.size());
    nodes.push_back(nodes_[i]);
    comps.push_back(std::move(comps_[i]));
  }
  for (size_t i = 0, k = 0; i < nodes_.size(); ++i) {  // every kept node points at its root directly
    if (remap[i] >= 0) nodes[k++].parent = remap[static_cast<size_t>(find(static_cast<int64_t>(i)))];
  }
  nodes_.swap(nodes);
  comps_.swap(comps);

  // Fronts go to the merger in order of their first arrival: those that begin before every open
  // component (and every later pick) can go now.
  std::sort(ready_.begin(), ready_.end(), [](const Front& a, const Front& b) { return a.first_ms < b.first_ms; });
  size_t k = 0;
  while (k < ready_.size() && (all || ready_[k].first_ms <= open_first)) merger_.add(ready_[k++], out);
  ready_.erase(ready_.begin(), ready_.begin() + static_cast<std::ptrdiff_t>(k));
  if (all) {
    merger_.finish(out);
  } else if (ready_.empty()) {
    merger_.advance(open_first, out);
  } else {
    merger_.advance(std::min(open_first, ready_.front().first_ms), out);
  }
}

void EventAssociator::advance(double t_ms, std::vector<Detection>* out) {
  if (t_ms - last_sweep_ms_ >= 0.5 * reach_ms_) sweep(t_ms, false, out);
}

void EventAssociator::finish(std::vector<Detection>* out) { sweep(last_sweep_ms_, true, out); }

double EventAssociator::pending_since_ms() const {
  double t = merger_.open_first_ms();
  for (const Front& f : ready_) t = std::min(t, f.first_ms);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].parent == static_cast<int64_t>(i)) t = std::min(t, comps_[i].first);
  }
  return t;
}

PickChains::PickChains(const AssociationOptions& options)
    : options_(options),
      reach_ms_(static_cast<double>(options.max_trace_gap) * options.ms_per_trace + options.tolerance_ms) {
  if (options.anchor_traces < 1) throw UsageError("pick chains: anchor_traces must be at least 1");
}

int64_t PickChains::find(int64_t i) { return find_root(nodes_, i); }

void PickChains::add(const Pick& p, std::vector<Pick>* out) {
  const double t = p.time_ms;
  if (t - last_sweep_ms_ >= 0.5 * reach_ms_) sweep(t, false, out);
  const int64_t n = static_cast<int64_t>(nodes_.size());
  nodes_.push_back(Node{p, n});
  Chain fresh{t, t, false, {}};
  if (p.score >= options_.min_score) {
    fresh.anchored = options_.anchor_traces <= 1;
    if (!fresh.anchored) fresh.strong_traces.push_back(p.trace);
  }
  chains_.push_back(std::move(fresh));
  for (int64_t i = n - 1; i >= 0; --i) {
    const Pick& q = nodes_[static_cast<size_t>(i)].pick;
    if (q.time_ms < t - reach_ms_) break;  // nodes_ is in time order
    const int64_t dj = std::llabs(q.trace - p.trace);
    if (dj < 1 || dj > options_.max_trace_gap ||
        std::fabs(t - q.time_ms) > static_cast<double>(dj) * options_.ms_per_trace + options_.tolerance_ms) {
      continue;
    }
    const int64_t a = find(i), b = find(n);
    if (a == b) continue;
    merge(chains_[static_cast<size_t>(a)], chains_[static_cast<size_t>(b)]);
    nodes_[static_cast<size_t>(b)].parent = a;
  }
}

void PickChains::merge(Chain& a, Chain& b) const {
  a.first = std::min(a.first, b.first);
  a.last = std::max(a.last, b.last);
  std::vector<int64_t> gone;  // b's traces, or a's once anchored: their memory goes with it
  if (a.anchored || b.anchored) {
    a.anchored = true;
    gone.swap(a.strong_traces);
  } else if (!b.strong_traces.empty()) {  // a weak pick's chain brings no traces: nothing to do
    if (a.strong_traces.size() < b.strong_traces.size()) a.strong_traces.swap(b.strong_traces);
    if (b.strong_traces.size() == 1) {  // one strong pick joining: an insertion
      const int64_t j = b.strong_traces[0];
      const auto at = std::lower_bound(a.strong_traces.begin(), a.strong_traces.end(), j);
      if (at == a.strong_traces.end() || *at != j) a.strong_traces.insert(at, j);
    } else if (!b.strong_traces.empty()) {  // (empty when a had none: it has taken b's)
      std::vector<int64_t> both;
      both.reserve(a.strong_traces.size() + b.strong_traces.size());
      std::set_union(a.strong_traces.begin(), a.strong_traces.end(), b.strong_traces.begin(), b.strong_traces.end(),
                     std::back_inserter(both));
      a.strong_traces.swap(both);
    }
    if (static_cast<int64_t>(a.strong_traces.size()) >= options_.anchor_traces) {
      a.anchored = true;
      gone.swap(a.strong_traces);
    }
  }
  std::vector<int64_t>().swap(b.strong_traces);
}

void PickChains::sweep(double now_ms, bool all, std::vector<Pick>* out) {
  last_sweep_ms_ = now_ms;
  // The chains no later pick can link to (or grown too long) are decided; the others stay.
  std::vector<char> closed(nodes_.size(), 0);
  double open_first = now_ms;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].parent != static_cast<int64_t>(i)) continue;
    const Chain& c = chains_[i];
    if (all || c.last < now_ms - reach_ms_ || c.last - c.first > options_.max_front_ms) {
      closed[i] = 1;
    } else {
      open_first = std::min(open_first, c.first);
    }
  }
  std::vector<int64_t> remap(nodes_.size(), -1);
  std::vector<Node> nodes;
  std::vector<Chain> chains;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const int64_t root = find(static_cast<int64_t>(i));
    if (closed[static_cast<size_t>(root)]) {
      if (chains_[static_cast<size_t>(root)].anchored || nodes_[i].pick.score >= options_.min_score) {
        kept_.push(nodes_[i].pick);
      }
      continue;
    }
    remap[i] = static_cast<int64_t>(nodes.size());
    nodes.push_back(nodes_[i]);
    chains.push_back(std::move(chains_[i]));
  }
  for (size_t i = 0, k = 0; i < nodes_.size(); ++i) {  // every kept node points at its root directly
    if (remap[i] >= 0) nodes[k++].parent = remap[static_cast<size_t>(find(static_cast<int64_t>(i)))];
  }
  nodes_.swap(nodes);
  chains_.swap(chains);
  // Every pick of an open chain, and every later one, is at or after open_first.
  while (!kept_.empty() && (all || kept_.top().time_ms < open_first)) {
    out->push_back(kept_.top());
    kept_.pop();
  }
}

void PickChains::advance(double t_ms, std::vector<Pick>* out) {
  if (t_ms - last_sweep_ms_ >= 0.5 * reach_ms_) sweep(t_ms, false, out);
}

void PickChains::finish(std::vector<Pick>* out) { sweep(last_sweep_ms_, true, out); }

double PickChains::pending_since_ms() const {
  double t = kept_.empty() ? std::numeric_limits<double>::infinity() : kept_.top().time_ms;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].parent == static_cast<int64_t>(i)) t = std::min(t, chains_[i].first);
  }
  return t;
}

ArrivalDetector::ArrivalDetector(int64_t width, double dt, const PickerOptions& picker,
                                 const AssociationOptions& association, const MoveoutFillOptions& fill)
    : dt_ms_(dt * 1000.0), picker_(width, picker), association_(association) {
  if (!(dt > 0)) throw UsageError("picker: dt must be positive");
  if (!std::isfinite(picker.delay_ms)) throw UsageError("picker: the delay must be finite");
  delay_samples_ = picker.delay_ms / dt_ms_;
  associator_ = std::make_unique<EventAssociator>(association_, 0, 0);
  if (association.min_score > picker.threshold) chains_ = std::make_unique<PickChains>(association_);
  if (fill.enabled) fill_ = std::make_unique<MoveoutFill>(width, dt_ms_, fill);
}

ArrivalDetector::~ArrivalDetector() = default;

void ArrivalDetector::begin(int64_t gather) {
  picker_.reset();
  pending_ = {};
  if (chains_) chains_ = std::make_unique<PickChains>(association_);
  if (fill_) {
    fill_->reset();
    fill_->set_live({});
  }
  const int64_t first_event = associator_->next_event();
  associator_ = std::make_unique<EventAssociator>(association_, gather, first_event);
  gather_ = gather;
}

void ArrivalDetector::release(double below_sample, std::vector<Pick>* picks, std::vector<Detection>* events) {
  const size_t p0 = picks->size(), e0 = events->size();
  while (!pending_.empty() && pending_.top().sample < below_sample) {
    Pick p = pending_.top();
    pending_.pop();
    if (p.score >= association_.min_score) associator_->add(p, events);
    if (chains_) {
      chains_->add(p, picks);
    } else {
      picks->push_back(p);
    }
  }
  if (std::isfinite(below_sample)) {
    associator_->advance(below_sample * dt_ms_, events);
    if (chains_) chains_->advance(below_sample * dt_ms_, picks);
    if (fill_) pass_to_fill(p0, e0, below_sample * dt_ms_, false, picks, events);
  }
}

void ArrivalDetector::pass_to_fill(size_t p0, size_t e0, double now_ms, bool last, std::vector<Pick>* picks,
                                   const std::vector<Detection>* events) {
  fill_in_.assign(picks->begin() + static_cast<std::ptrdiff_t>(p0), picks->end());
  picks->resize(p0);
  fill_events_.assign(events->begin() + static_cast<std::ptrdiff_t>(e0), events->end());
  // Every pick before `floor` has been given (weak ones wait in their chains); no event still to
  // come holds a pick before `safe`.
  double floor = now_ms, safe = now_ms;
  if (!last) {
    if (chains_) floor = std::min(floor, chains_->pending_since_ms());
    safe = std::min(floor, associator_->pending_since_ms());
  }
  fill_->add(fill_in_, fill_events_, safe, floor, now_ms, picks);
  if (last) fill_->finish(picks);
}

void ArrivalDetector::set_live_traces(std::vector<uint8_t> live) {
  if (fill_) fill_->set_live(std::move(live));
}

int64_t ArrivalDetector::filled() const { return fill_ ? fill_->filled() : 0; }
int64_t ArrivalDetector::fill_dropped() const { return fill_ ? fill_->dropped() : 0; }

void ArrivalDetector::queue_picks() {
  for (Pick& p : scratch_) {
    p.gather = gather_;
    p.sample = std::max(0.0, p.sample - delay_samples_);
    p.time_ms = p.sample * dt_ms_;
    pending_.push(p);
  }
}

void ArrivalDetector::feed(const float* prob, int64_t rows, std::vector<Pick>* picks, std::vector<Detection>* events) {
  scratch_.clear();
  picker_.feed(prob, rows, &scratch_);
  queue_picks();
  // Every pick still to come is moved by the same delay (clamped at 0, which keeps the order).
  release(std::max(0.0, picker_.watermark() - delay_samples_), picks, events);
}

void ArrivalDetector::finish(std::vector<Pick>* picks, std::vector<Detection>* events) {
  const size_t p0 = picks->size(), e0 = events->size();
  scratch_.clear();
  picker_.finish(&scratch_);
  queue_picks();
  release(std::numeric_limits<double>::infinity(), picks, events);
  associator_->finish(events);
  if (chains_) chains_->finish(picks);
  if (fill_) pass_to_fill(p0, e0, std::numeric_limits<double>::infinity(), true, picks, events);
}

}  // namespace seis
