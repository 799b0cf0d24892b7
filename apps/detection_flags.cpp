#include "apps/detection_flags.h"

#include <cmath>
#include <cstdio>

#include "engine/error.h"

namespace seis {

void add_window_flags(CLI::App& app, DetectionSettings& s, const std::string& window_default) {
  app.add_option("--window", s.window, "window height in time samples (default: " + window_default + ")")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  app.add_option("--window-receivers", s.window_receivers, "window width in receivers (default: all receivers)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  app.add_option("--overlap", s.overlap, "fraction of a window shared with the next one")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.95));
}

void add_picking_flags(CLI::App& app, DetectionSettings& s) {
  app.add_option("--threshold", s.threshold,
                 "an arrival is a run of probability >= threshold; events are made of arrivals peaking at or above it")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--pick-threshold", s.pick_threshold,
                 "picks are runs of probability >= this, at most --threshold (default: --threshold); a pick that "
                 "peaks below --threshold makes no event, and is written only when chained to a strong front "
                 "(--anchor-traces)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--pick-delay-ms", s.pick_delay_ms,
                 "the picker's lateness, subtracted from every pick's time (default 0; --tune-on measures it: the "
                 "median error of the picks on the tuning records)")
      ->check(CLI::Range(-1000.0, 1000.0));
  app.add_option("--min-separation-ms", s.min_separation_ms, "closest two picks of one trace (the weaker goes)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--min-traces", s.min_traces,
                 "traces a phase front must cover to be an event (default: max(8, receivers / 8))")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  app.add_option("--anchor-traces", s.anchor_traces,
                 "with --pick-threshold: a pick peaking below --threshold is written only when the moveout links "
                 "chain it to picks reaching --threshold on at least this many traces (default: --min-traces, the "
                 "traces of an event's front; 1: any such pick)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  app.add_option("--min-velocity", s.min_velocity, "slowest apparent velocity along the array, m/s (moveout bound)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--moveout-ms", s.moveout_ms,
                 "largest moveout between neighbouring traces, ms (default: dx / min-velocity)")
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--event-gap-ms", s.event_gap_ms, "arrivals this close after an event's last one join it (P and S)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e7));
  app.add_flag("--fill-moveout", s.fill_moveout,
               "also pick, with score 0, the traces of each event that the network left unpicked, on the "
               "hyperbolic moveout fitted to the event's earliest picks; picks.csv gains a last column "
               "'filled' (1 for these; --segy-pick-byte takes them like the others)");
  app.add_option("--fill-tolerance-ms", s.fill_tolerance_ms,
                 "--fill-moveout: picks within this of the fitted moveout follow it; a trace with one is not filled")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 1000.0))
      ->needs("--fill-moveout");
}

MoveoutFillOptions fill_options(const DetectionSettings& s) {
  MoveoutFillOptions f;
  f.enabled = s.fill_moveout;
  f.tolerance_ms = s.fill_tolerance_ms;
  return f;
}

PickerOptions picker_options(const DetectionSettings& s, double dt) {
  if (!(s.threshold > 0.0f && s.threshold < 1.0f)) throw UsageError("--threshold must be inside (0, 1)");
  if (s.pick_threshold != 0 && !(s.pick_threshold > 0.0f && s.pick_threshold <= s.threshold)) {
    char msg[160];
    std::snprintf(msg, sizeof msg, "--pick-threshold %g must lie in (0, --threshold %g]: events are made of picks",
                  static_cast<double>(s.pick_threshold), static_cast<double>(s.threshold));
    throw UsageError(msg);
  }
  PickerOptions p;
  p.threshold = s.pick_threshold > 0 ? s.pick_threshold : s.threshold;
  p.min_separation = std::max<int64_t>(1, std::llround(s.min_separation_ms / (1000.0 * dt)));
  p.delay_ms = s.pick_delay_ms;
  return p;
}

AssociationOptions association_options(const DetectionSettings& s, double dx, int64_t width,
                                       const std::string& source) {
  AssociationOptions a;
  // A network's false alarms are small patches of a few neighbouring traces; a source below the
  // array lights up most of it.
  a.min_traces = s.min_traces > 0 ? s.min_traces : std::max<int64_t>(8, width / 8);
  a.event_gap_ms = s.event_gap_ms;
  a.min_score = s.threshold;
  a.anchor_traces = s.anchor_traces > 0 ? s.anchor_traces : a.min_traces;
  if (s.moveout_ms > 0) {
    a.ms_per_trace = s.moveout_ms;
  } else if (dx > 0) {
    a.ms_per_trace = dx / s.min_velocity * 1000.0;
  } else {
    std::fprintf(stderr, "note: %s has no dx attribute; events link picks up to %g ms apart per trace (--moveout-ms)\n",
                 source.c_str(), a.ms_per_trace);
  }
  return a;
}

}  // namespace seis
