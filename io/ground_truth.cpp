// Ground truth from an HDF5 file (io/ground_truth.h): the shape from H5SampleFile or H5RecordFile,
// the tables through H5TableReader in ranges of 65536 rows, each row checked as it arrives.
#include "io/ground_truth.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "io/hdf5_dataset.h"
#include "io/hdf5_record.h"
#include "io/hdf5_table.h"

namespace seis {

namespace {

constexpr int64_t kBlock = 65536;

// Every row of /spec.name, `check`ed one by one. InputError naming the file without the table.
template <typename Row, typename Check>
std::vector<Row> read_table(const std::string& path, const H5TableSpec& spec, Check check) {
  H5TableReader table(path, spec);
  if (!table.exists()) {
    throw InputError(path + ": no /" + spec.name + " table: not a file with ground truth (seisseg synth writes one)");
  }
  std::vector<Row> rows(static_cast<size_t>(table.rows()));
  for (int64_t r0 = 0; r0 < table.rows(); r0 += kBlock) {
    const int64_t n = std::min(kBlock, table.rows() - r0);
    table.read(r0, n, rows.data() + r0);
    for (int64_t k = r0; k < r0 + n; ++k) check(rows[static_cast<size_t>(k)], k);
  }
  return rows;
}

}  // namespace

GroundTruth read_ground_truth(const std::string& path) {
  GroundTruth t;
  if (h5_is_record(path)) {
    H5RecordFile f(path);
    t.record = true;
    t.gathers = 1;
    t.samples = f.info().samples;
    t.width = f.info().receivers;
    t.dt = f.info().dt;
  } else {
    H5SampleFile f(path);
    t.gathers = f.info().n;
    t.samples = f.info().height;
    t.width = f.info().width;
    t.dt = f.info().dt;
  }
  if (!(t.dt > 0) || !std::isfinite(t.dt)) {
    throw InputError(path + ": no positive dt attribute (the sample interval in s): times cannot be scored");
  }
  t.duration_s = static_cast<double>(t.gathers) * static_cast<double>(t.samples) * t.dt;

  auto bad_row = [&](const char* table, int64_t row, const std::string& what) {
    throw InputError(path + ": /" + table + " row " + std::to_string(row) + ": " + what);
  };
  auto check_gather = [&](const char* table, int64_t row, int64_t gather) {
    if (gather < 0 || gather >= t.gathers) {
      bad_row(table, row, "gather " + std::to_string(gather) + " outside [0, " + std::to_string(t.gathers) + ")");
    }
  };
  t.picks = read_table<SynthPickRow>(path, synth_pick_table(), [&](const SynthPickRow& p, int64_t row) {
    check_gather("picks", row, p.gather);
    if (p.trace < 0 || p.trace >= t.width) {
      bad_row("picks", row, "trace " + std::to_string(p.trace) + " outside [0, " + std::to_string(t.width) + ")");
    }
    if (p.phase > 1) bad_row("picks", row, "phase " + std::to_string(p.phase) + " is neither 0 (P) nor 1 (S)");
    if (!std::isfinite(p.time_s)) bad_row("picks", row, "time_s is not finite");
  });
  t.events = read_table<SynthEventRow>(path, synth_event_table(), [&](const SynthEventRow& e, int64_t row) {
    check_gather("events", row, e.gather);
    const bool first_nan = std::isnan(e.first_arrival_s), last_nan = std::isnan(e.last_arrival_s);
    if (first_nan != last_nan) bad_row("events", row, "only one of first_arrival_s and last_arrival_s is NaN");
    if (first_nan) {
      ++t.events_without_arrivals;
    } else if (!std::isfinite(e.first_arrival_s) || !std::isfinite(e.last_arrival_s)) {
      bad_row("events", row, "first_arrival_s or last_arrival_s is infinite");
    } else if (e.first_arrival_s > e.last_arrival_s) {
      bad_row("events", row, "first_arrival_s is after last_arrival_s");
    }
    if (!std::isfinite(e.snr_db)) bad_row("events", row, "snr_db is not finite");
  });
  return t;
}

}  // namespace seis

namespace seis {

bool has_ground_truth(const std::string& path) {
  return H5TableReader(path, synth_pick_table()).exists() && H5TableReader(path, synth_event_table()).exists();
}

GroundTruth pool_ground_truths(const std::vector<GroundTruth>& truths, std::vector<int64_t>* first) {
  GroundTruth all;
  if (!truths.empty()) {
    all.dt = truths[0].dt;
    all.samples = truths[0].samples;
    all.width = truths[0].width;
    all.record = truths[0].record;
  }
  for (const GroundTruth& t : truths) {
    first->push_back(all.gathers);
    for (SynthPickRow r : t.picks) {
      r.gather += all.gathers;
      all.picks.push_back(r);
    }
    for (SynthEventRow e : t.events) {
      e.gather += all.gathers;
      all.events.push_back(e);
    }
    all.gathers += t.gathers;
    all.duration_s += t.duration_s;
    all.events_without_arrivals += t.events_without_arrivals;
  }
  return all;
}

}  // namespace seis
