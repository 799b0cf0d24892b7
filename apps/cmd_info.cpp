// seisseg info: validates and summarises HDF5 dataset files: shapes, types, chunking, filters,
// attributes, value statistics over up to --stat-samples gathers (or windows of a continuous
// record) spread across the file, the ground truth tables /picks and /events and the SEG-Y headers of
// a converted file (/headers, /trace_valid) when present.
// Nothing is read whole: gathers and windows one at a time, tables in blocks of rows; memory
// follows a byte budget, never the sizes a file declares (a few KB of HDF5 may declare exabytes).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "apps/cli.h"
#include "apps/commands.h"
#include "engine/printable.h"
#include "engine/tensor.h"
#include "io/hdf5_dataset.h"
#include "io/hdf5_record.h"
#include "io/hdf5_table.h"
#include "io/segy_headers.h"
#include "io/synth_file.h"

namespace seis {

namespace {

using Json = nlohmann::ordered_json;

// One JSON object as a line. Strings from files are printable already (h5_attributes_text); a path
// that is not UTF-8 has its bad bytes replaced rather than failing the dump.
std::string json_line(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

struct Stats {
  int64_t pieces = 0, values = 0, finite = 0, nan = 0, inf = 0;  // pieces: gathers or windows read
  double min = 0, max = 0, mean = 0, std = 0;
  int64_t label_values = 0, label_positive = 0;
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  double sum = 0, sum2 = 0;

  void add(const std::vector<float>& data, const std::vector<uint8_t>* label) {
    ++pieces;
    values += static_cast<int64_t>(data.size());
    double gsum = 0, gsum2 = 0;  // per piece, then combined: less rounding over large pieces
    for (float v : data) {
      if (std::isnan(v)) {
        ++nan;
      } else if (std::isinf(v)) {
        ++inf;
      } else {
        ++finite;
        lo = std::min<double>(lo, v);
        hi = std::max<double>(hi, v);
        gsum += v;
        gsum2 += static_cast<double>(v) * v;
      }
    }
    sum += gsum;
    sum2 += gsum2;
    if (label != nullptr) {
      label_values += static_cast<int64_t>(label->size());
      for (uint8_t v : *label) label_positive += v != 0;
    }
  }

  void finish() {
    if (finite == 0) return;
    min = lo;
    max = hi;
    mean = sum / static_cast<double>(finite);
    std = std::sqrt(std::max(0.0, sum2 / static_cast<double>(finite) - mean * mean));
  }
};

// Piece k of m spread evenly over [0, last], first and last included. In 128 bits: k * last
// overflows int64 for a file that declares 2^62 rows.
int64_t spread(int64_t k, int64_t m, int64_t last) {
  if (m <= 1) return 0;
  return static_cast<int64_t>(static_cast<__int128>(k) * last / (m - 1));
}

Stats gather_stats(const H5SampleFile& f, int64_t max_gathers) {
  const H5DatasetInfo& in = f.info();
  // A gather is read whole. HDF5 stores no chunk over 4 GiB and seisseg writes none (a gather is
  // one chunk), so a larger one is a file declaring sizes it cannot hold: refused before anything
  // is allocated. (In long double: H * W may overflow int64.)
  constexpr int64_t kMaxGatherBytes = int64_t{4} << 30;
  if (static_cast<long double>(in.height) * static_cast<long double>(in.width) * 4 >= kMaxGatherBytes) {
    throw InputError(in.path + ": gathers of " + std::to_string(in.height) + " x " + std::to_string(in.width) +
                     " values exceed the 4 GiB of float32 that one gather (one HDF5 chunk) can hold");
  }
  const int64_t hw = in.height * in.width;
  const int64_t m = std::min(in.n, max_gathers);
  const bool has_label = in.label_type != H5ElemType::none;
  std::vector<float> data(static_cast<size_t>(hw));
  std::vector<uint8_t> label(static_cast<size_t>(hw));
  Stats s;
  for (int64_t k = 0; k < m; ++k) {
    const int64_t i = spread(k, m, in.n - 1);  // first and last included
    f.read(i, data.data(), has_label ? label.data() : nullptr);
    s.add(data, has_label ? &label : nullptr);
  }
  s.finish();
  return s;
}

// One row of a record (data and label) is the least a statistics window holds: wider records are
// refused rather than read in column tiles (a row of 256 MiB is over 50 million receivers; nothing
// real comes near, and a file declaring it is far more likely broken or hostile).
constexpr int64_t kMaxRowBytes = int64_t{256} << 20;

// Rows per statistics window of a record: the generator's blocks (synth_record_block_rows: 4096
// rows, fewer where a block would pass 32 MiB of float data, at least 1, at most T), so a window
// of a synthetic record is one chunk and memory is bounded by bytes, not by the file's dims.
int64_t stat_window_rows(const H5RecordInfo& in) {
  if (in.receivers > kMaxRowBytes / 5) {
    throw InputError(in.path + ": /data has " + std::to_string(in.receivers) +
                     " receivers: one row of data and label is more than the " + std::to_string(kMaxRowBytes >> 20) +
                     " MiB that info reads at a time");
  }
  return synth_record_block_rows(in.samples, in.receivers);
}

Stats record_stats(const H5RecordFile& f, int64_t max_windows) {
  const H5RecordInfo& in = f.info();
  const int64_t rows = stat_window_rows(in);
  const int64_t available = in.samples / rows + (in.samples % rows != 0);  // (no T + rows - 1: T may be near 2^63)
  const int64_t m = std::min(available, max_windows);
  const bool has_label = in.label_type != H5ElemType::none;
  std::vector<float> data(static_cast<size_t>(rows * in.receivers));
  std::vector<uint8_t> label(data.size());
  Stats s;
  for (int64_t k = 0; k < m; ++k) {
    const int64_t t0 = spread(k, m, in.samples - rows);  // first and last rows included
    f.read_rows(t0, rows, data.data(), has_label ? label.data() : nullptr);
    s.add(data, has_label ? &label : nullptr);
  }
  s.finish();
  return s;
}

// The ground truth tables, validated against the data's shape while they are summarised.
struct Truth {
  bool has_picks = false, has_events = false;
  int64_t picks = 0, picks_p = 0, picks_s = 0;
  int64_t events = 0, per_gather_min = 0, per_gather_max = 0;
  double per_gather_mean = 0;
  double snr_lo = 0, snr_hi = 0;
  int64_t events_without_arrivals = 0;  // no arrival inside the window (first/last arrival NaN)
};

Truth read_truth(const std::string& path, int64_t gathers, int64_t traces) {
  constexpr int64_t kBlock = 65536;
  Truth t;
  auto bad_row = [&](const char* table, int64_t row, const std::string& what) {
    throw InputError(path + ": /" + table + " row " + std::to_string(row) + ": " + what);
  };
  H5TableReader picks(path, synth_pick_table());
  if (picks.exists()) {
    t.has_picks = true;
    t.picks = picks.rows();
    std::vector<SynthPickRow> rows;
    for (int64_t r0 = 0; r0 < t.picks; r0 += kBlock) {
      const int64_t n = std::min(kBlock, t.picks - r0);
      rows.resize(static_cast<size_t>(n));
      picks.read(r0, n, rows.data());
      for (int64_t k = 0; k < n; ++k) {
        const SynthPickRow& p = rows[static_cast<size_t>(k)];
        if (p.gather < 0 || p.gather >= gathers) {
          bad_row("picks", r0 + k,
                  "gather " + std::to_string(p.gather) + " outside [0, " + std::to_string(gathers) + ")");
        }
        if (p.trace < 0 || p.trace >= traces) {
          bad_row("picks", r0 + k, "trace " + std::to_string(p.trace) + " outside [0, " + std::to_string(traces) + ")");
        }
        if (p.phase > 1) bad_row("picks", r0 + k, "phase " + std::to_string(p.phase) + " is neither 0 (P) nor 1 (S)");
        if (!std::isfinite(p.time_s)) bad_row("picks", r0 + k, "time_s is not finite");
        (p.phase == 0 ? t.picks_p : t.picks_s) += 1;
      }
    }
  }
  H5TableReader events(path, synth_event_table());
  if (events.exists()) {
    t.has_events = true;
    t.events = events.rows();
    // Events per gather from runs of equal gather: rows are ordered by gather (the documented
    // order, checked), so no per-gather state is needed however many gathers there are.
    int64_t run_gather = -1, run = 0, distinct = 0;
    t.per_gather_max = 0;
    t.per_gather_min = std::numeric_limits<int64_t>::max();
    auto end_run = [&] {
      if (run_gather < 0) return;
      t.per_gather_min = std::min(t.per_gather_min, run);
      t.per_gather_max = std::max(t.per_gather_max, run);
      ++distinct;
    };
    std::vector<SynthEventRow> rows;
    t.snr_lo = std::numeric_limits<double>::infinity();
    t.snr_hi = -t.snr_lo;
    for (int64_t r0 = 0; r0 < t.events; r0 += kBlock) {
      const int64_t n = std::min(kBlock, t.events - r0);
      rows.resize(static_cast<size_t>(n));
      events.read(r0, n, rows.data());
      for (int64_t k = 0; k < n; ++k) {
        const SynthEventRow& e = rows[static_cast<size_t>(k)];
        if (e.gather < 0 || e.gather >= gathers) {
          bad_row("events", r0 + k,
                  "gather " + std::to_string(e.gather) + " outside [0, " + std::to_string(gathers) + ")");
        }
        if (e.gather < run_gather) {
          bad_row("events", r0 + k,
                  "gather " + std::to_string(e.gather) + " after gather " + std::to_string(run_gather) +
                      ": rows must be ordered by gather");
        }
        if (e.gather != run_gather) {
          end_run();
          run_gather = e.gather;
          run = 0;
        }
        ++run;
        t.snr_lo = std::min(t.snr_lo, e.snr_db);
        t.snr_hi = std::max(t.snr_hi, e.snr_db);
        t.events_without_arrivals += std::isnan(e.first_arrival_s) ? 1 : 0;
      }
    }
    end_run();
    if (t.events == 0) t.snr_lo = t.snr_hi = 0;
    if (distinct < gathers) t.per_gather_min = 0;  // gathers without events have no rows
    t.per_gather_mean = static_cast<double>(t.events) / static_cast<double>(gathers);
  }
  return t;
}

void truth_json(const Truth& t, Json* j) {
  if (t.has_picks) {
    (*j)["picks"] = {{"count", t.picks}, {"p", t.picks_p}, {"s", t.picks_s}};
  } else {
    (*j)["picks"] = nullptr;
  }
  if (t.has_events) {
    Json e;
    e["count"] = t.events;
    e["per_gather"] = {{"min", t.per_gather_min}, {"mean", t.per_gather_mean}, {"max", t.per_gather_max}};
    e["snr_db"] = {{"min", t.snr_lo}, {"max", t.snr_hi}};
    e["without_arrivals"] = t.events_without_arrivals;
    (*j)["events"] = e;
  } else {
    (*j)["events"] = nullptr;
  }
}

void truth_text(const Truth& t) {
  if (!t.has_picks && !t.has_events) return;
  std::printf("  ground truth:\n");
  if (t.has_picks) {
    std::printf("    /picks: %lld arrivals (P %lld, S %lld)\n", static_cast<long long>(t.picks),
                static_cast<long long>(t.picks_p), static_cast<long long>(t.picks_s));
  }
  if (t.has_events) {
    std::printf("    /events: %lld events, per gather min %lld mean %.3g max %lld, SNR %.2f..%.2f dB",
                static_cast<long long>(t.events), static_cast<long long>(t.per_gather_min), t.per_gather_mean,
                static_cast<long long>(t.per_gather_max), t.snr_lo, t.snr_hi);
    if (t.events_without_arrivals > 0) {
      std::printf(", %lld without an arrival inside the window", static_cast<long long>(t.events_without_arrivals));
    }
    std::printf("\n");
  }
}

// The SEG-Y side of a converted gathers file.
struct SegySummary {
  bool present = false, raw = false, table = false;
  int64_t traces = 0, padding = 0, ffid_lo = 0, ffid_hi = 0, ffids = 0;  // ffids: runs of equal ffid
  std::string byte_order;
};

SegySummary read_segy_summary(const std::string& path, int64_t gathers, int64_t width) {
  SegySummary s;
  const SegyHeadersFile h(path, gathers, width);
  s.raw = h.has_raw();
  s.table = h.has_table();
  s.present = s.raw || s.table || h.has_padding();
  if (!s.present) return s;
  s.traces = h.traces();
  s.padding = gathers * width - s.traces;
  s.byte_order = h.big_endian() ? "big-endian" : "little-endian";
  if (s.table) {
    constexpr int64_t kBlock = 65536;
    H5TableReader t(path, segy_header_table());
    std::vector<SegyHeaderRow> rows;
    int64_t prev = 0;
    for (int64_t r0 = 0; r0 < t.rows(); r0 += kBlock) {
      const int64_t n = std::min(kBlock, t.rows() - r0);
      rows.resize(static_cast<size_t>(n));
      t.read(r0, n, rows.data());
      for (int64_t k = 0; k < n; ++k) {
        const int64_t f = rows[static_cast<size_t>(k)].ffid;
        const bool first = r0 + k == 0;
        if (first || f != prev) ++s.ffids;
        s.ffid_lo = first ? f : std::min(s.ffid_lo, f);
        s.ffid_hi = first ? f : std::max(s.ffid_hi, f);
        prev = f;
      }
    }
  }
  return s;
}

Json dset_json(H5ElemType type, const std::vector<int64_t>& shape, const std::vector<int64_t>& chunk,
               const std::string& filters) {
  Json j;
  j["dtype"] = h5_elem_name(type);
  j["shape"] = shape;
  j["chunks"] = chunk.empty() ? Json(nullptr) : Json(chunk);
  j["filters"] = filters;
  return j;
}

std::string dset_text(H5ElemType type, const std::vector<int64_t>& shape, const std::vector<int64_t>& chunk,
                      const std::string& filters, const std::string& chunk_note) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%-8s %s", h5_elem_name(type), shape_str(shape).c_str());
  std::string s = buf;
  s += chunk.empty() ? ", contiguous" : ", chunks " + shape_str(chunk) + chunk_note;
  s += filters.empty() ? ", uncompressed" : ", " + filters;
  return s;
}

Json stats_json(const Stats& s, const char* pieces_key) {
  Json st;
  st[pieces_key] = s.pieces;
  st["values"] = s.values;
  st["min"] = s.min;
  st["max"] = s.max;
  st["mean"] = s.mean;
  st["std"] = s.std;
  st["nan"] = s.nan;
  st["inf"] = s.inf;
  st["label_positive_fraction"] =
      s.label_values > 0 ? Json(static_cast<double>(s.label_positive) / static_cast<double>(s.label_values))
                         : Json(nullptr);
  return st;
}

void stats_text(const Stats& s) {
  std::printf("    data: min %.6g  max %.6g  mean %.6g  std %.6g  NaN %lld  Inf %lld\n", s.min, s.max, s.mean, s.std,
              static_cast<long long>(s.nan), static_cast<long long>(s.inf));
  if (s.label_values > 0) {
    std::printf("    label: positive fraction %.6f\n",
                static_cast<double>(s.label_positive) / static_cast<double>(s.label_values));
  }
}

void print_gathers(const H5SampleFile& f, const Stats& s, const Truth& t, const SegySummary& sg, bool json) {
  const H5DatasetInfo& in = f.info();
  const bool has_label = in.label_type != H5ElemType::none;
  const std::vector<int64_t> shape = {in.n, in.height, in.width};
  if (json) {
    Json j;
    j["file"] = in.path;
    j["kind"] = "gathers";
    j["file_bytes"] = in.file_bytes;
    j["n"] = in.n;
    j["h"] = in.height;
    j["w"] = in.width;
    j["data"] = dset_json(in.data_type, shape, in.data_chunk, in.data_filters);
    j["data"]["direct_read"] = in.data_direct;
    j["data"]["aligned_4k"] = in.data_aligned;
    if (has_label) {
      j["label"] = dset_json(in.label_type, shape, in.label_chunk, in.label_filters);
      j["label"]["direct_read"] = in.label_direct;
      j["label"]["aligned_4k"] = in.label_aligned;
    } else {
      j["label"] = nullptr;
    }
    j["dt"] = in.dt;
    j["dx"] = in.dx;
    j["bytes_per_sample"] = f.bytes_per_sample();
    j["norm_stats"] = {{"trace", in.has_trace_norm},
                       {"sample", in.has_sample_norm},
                       {"trace_direct_read", in.trace_norm_direct},
                       {"sample_direct_read", in.sample_norm_direct}};
    j["attributes"] = in.attributes;
    Json st = stats_json(s, "gathers_sampled");
    st["gathers_total"] = in.n;
    j["stats"] = st;
    truth_json(t, &j);
    if (sg.present) {
      j["segy"] = {{"traces", sg.traces},
                   {"padding_traces", sg.padding},
                   {"raw_headers", sg.raw},
                   {"byte_order", sg.byte_order},
                   {"headers", sg.table ? Json{{"ffid_min", sg.ffid_lo}, {"ffid_max", sg.ffid_hi}, {"ffids", sg.ffids}}
                                        : Json(nullptr)}};
    } else {
      j["segy"] = nullptr;
    }
    std::printf("%s\n", json_line(j).c_str());
    return;
  }
  std::printf("%s: %lld gathers of %lld time samples x %lld receivers, %.1f MB\n", in.path.c_str(),
              static_cast<long long>(in.n), static_cast<long long>(in.height), static_cast<long long>(in.width),
              static_cast<double>(in.file_bytes) / 1e6);
  const std::string per_sample = " (one per sample)";
  auto how = [](bool direct) { return direct ? ", read with pread" : ", read through the HDF5 library"; };
  // (With --direct-io, samples on 4 KiB land straight in the reader's slots; convert aligns them.)
  auto on_pages = [](bool aligned, bool direct) {
    return !direct ? "" : aligned ? ", on 4 KiB" : ", not on 4 KiB (seisseg convert aligns chunks of 64 KiB or more)";
  };
  std::printf("  /data   %s%s%s\n",
              dset_text(in.data_type, shape, in.data_chunk, in.data_filters,
                        in.data_chunk == std::vector<int64_t>{1, in.height, in.width} ? per_sample : "")
                  .c_str(),
              how(in.data_direct), on_pages(in.data_aligned, in.data_direct));
  if (has_label) {
    std::printf("  /label  %s%s%s\n",
                dset_text(in.label_type, shape, in.label_chunk, in.label_filters,
                          in.label_chunk == std::vector<int64_t>{1, in.height, in.width} ? per_sample : "")
                    .c_str(),
                how(in.label_direct), on_pages(in.label_aligned, in.label_direct));
  } else {
    std::printf("  /label  none (data for prediction only)\n");
  }
  if (in.has_trace_norm || in.has_sample_norm) {
    const bool both = in.has_trace_norm && in.has_sample_norm;
    const bool direct = (!in.has_trace_norm || in.trace_norm_direct) && (!in.has_sample_norm || in.sample_norm_direct);
    std::printf("  normalisation statistics: %s%s%s (stored with the data: a first epoch normalises as it reads)%s\n",
                in.has_trace_norm ? "/trace_norm" : "", both ? ", " : "", in.has_sample_norm ? "/sample_norm" : "",
                how(direct));
  }
  std::printf("  attributes:%s\n", in.attributes.empty() ? " none" : "");
  for (const auto& [k, v] : in.attributes) std::printf("    %s = %s\n", k.c_str(), v.c_str());
  std::printf("  values over %lld of %lld gathers (spread evenly across the file):\n", static_cast<long long>(s.pieces),
              static_cast<long long>(in.n));
  stats_text(s);
  truth_text(t);
  if (sg.present) {
    std::printf("  SEG-Y: %lld traces in %lld gathers, %lld padding traces (/trace_valid 0)%s (%s)\n",
                static_cast<long long>(sg.traces), static_cast<long long>(in.n), static_cast<long long>(sg.padding),
                sg.raw ? ", raw headers kept" : "", sg.byte_order.c_str());
    if (sg.table) {
      std::printf("    /headers: ffid %lld..%lld, %lld field records\n", static_cast<long long>(sg.ffid_lo),
                  static_cast<long long>(sg.ffid_hi), static_cast<long long>(sg.ffids));
    }
  }
}

void print_record(const H5RecordFile& f, const Stats& s, const Truth& t, bool json) {
  const H5RecordInfo& in = f.info();
  const bool has_label = in.label_type != H5ElemType::none;
  const std::vector<int64_t> shape = {in.samples, in.receivers};
  const double duration = static_cast<double>(in.samples) * in.dt;
  const int64_t window = stat_window_rows(in);
  if (json) {
    Json j;
    j["file"] = in.path;
    j["kind"] = "record";
    j["file_bytes"] = in.file_bytes;
    j["samples"] = in.samples;
    j["receivers"] = in.receivers;
    j["duration_s"] = in.dt > 0 ? Json(duration) : Json(nullptr);
    j["dt"] = in.dt;
    j["dx"] = in.dx;
    j["start_time"] = in.start_time.empty() ? Json(nullptr) : Json(in.start_time);
    j["data"] = dset_json(in.data_type, shape, in.data_chunk, in.data_filters);
    j["label"] = has_label ? dset_json(in.label_type, shape, in.label_chunk, in.label_filters) : Json(nullptr);
    j["attributes"] = in.attributes;
    Json st = stats_json(s, "windows_sampled");
    st["window_samples"] = window;
    j["stats"] = st;
    truth_json(t, &j);
    std::printf("%s\n", json_line(j).c_str());
    return;
  }
  std::printf("%s: continuous record of %lld time samples", in.path.c_str(), static_cast<long long>(in.samples));
  if (in.dt > 0) {
    std::printf(" (%.6g s at dt %g s)", duration, in.dt);
  } else {
    std::printf(" (no dt attribute: duration unknown)");
  }
  std::printf(" x %lld receivers", static_cast<long long>(in.receivers));
  if (in.dx > 0) std::printf(" (dx %g m)", in.dx);
  std::printf(", %.1f MB\n", static_cast<double>(in.file_bytes) / 1e6);
  if (!in.start_time.empty()) std::printf("  start time %s\n", in.start_time.c_str());
  std::printf("  /data   %s\n", dset_text(in.data_type, shape, in.data_chunk, in.data_filters, "").c_str());
  if (has_label) {
    std::printf("  /label  %s\n", dset_text(in.label_type, shape, in.label_chunk, in.label_filters, "").c_str());
  } else {
    std::printf("  /label  none (data for prediction only)\n");
  }
  std::printf("  attributes:%s\n", in.attributes.empty() ? " none" : "");
  for (const auto& [k, v] : in.attributes) std::printf("    %s = %s\n", k.c_str(), v.c_str());
  std::printf("  values over %lld windows of %lld samples (spread evenly across the record):\n",
              static_cast<long long>(s.pieces), static_cast<long long>(window));
  stats_text(s);
  truth_text(t);
}

}  // namespace

int cmd_info(int argc, char** argv) {
  CLI::App app{
      "seisseg info: validate and summarise HDF5 dataset files (gathers [N, H, W] or continuous records "
      "[T, W], with their ground truth /picks and /events)",
      "seisseg info"};
  std::vector<std::string> files;
  bool json = false;
  int64_t stat_samples = 16;
  app.add_option("files", files, "HDF5 dataset files")->required();
  app.add_flag("--json", json, "one JSON object per file, one per line");
  app.add_option("--stat-samples", stat_samples,
                 "gathers (or windows of up to 4096 samples of a record, fewer for wide records) read for the "
                 "value statistics, spread across the file")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  if (!parse_cli(app, argc, argv)) return 0;

  // Every file is reported; a bad one is one line on stderr, and the exit code is 1 if any was bad.
  int rc = 0;
  for (const std::string& path : files) {
    try {
      if (h5_is_record(path)) {
        H5RecordFile f(path);
        const Stats s = record_stats(f, stat_samples);
        const Truth t = read_truth(path, 1, f.info().receivers);
        print_record(f, s, t, json);
      } else {
        H5SampleFile f(path);
        const Stats s = gather_stats(f, stat_samples);
        const Truth t = read_truth(path, f.info().n, f.info().width);
        const SegySummary sg = read_segy_summary(path, f.info().n, f.info().width);
        print_gathers(f, s, t, sg, json);
      }
      std::fflush(stdout);
    } catch (const InputError& e) {
      if (files.size() == 1) throw;
      const std::string what = e.what();
      std::fprintf(stderr, "seisseg info: %s\n", printable(what.substr(0, what.find('\n')), 4096).c_str());
      rc = 1;
    }
  }
  return rc;
}

}  // namespace seis
