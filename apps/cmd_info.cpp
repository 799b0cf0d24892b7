// seisseg info: validates and summarises HDF5 dataset files: shapes, types, chunking, filters,
// attributes, and value statistics over up to --stat-samples gathers spread across the file.
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "apps/cli.h"
#include "apps/commands.h"
#include "io/hdf5_dataset.h"

namespace seis {

namespace {

struct Stats {
  int64_t gathers = 0, values = 0, finite = 0, nan = 0, inf = 0;
  double min = 0, max = 0, mean = 0, std = 0;
  int64_t label_values = 0, label_positive = 0;
};

Stats sample_stats(const H5SampleFile& f, int64_t max_gathers) {
  const H5DatasetInfo& in = f.info();
  const int64_t hw = in.height * in.width;
  const int64_t m = std::min(in.n, max_gathers);
  std::vector<float> data(static_cast<size_t>(hw));
  std::vector<uint8_t> label(static_cast<size_t>(hw));
  Stats s;
  s.gathers = m;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0, sum2 = 0;
  for (int64_t k = 0; k < m; ++k) {
    const int64_t i = m == 1 ? 0 : k * (in.n - 1) / (m - 1);  // first and last included
    f.read(i, data.data(), in.label_type != H5ElemType::none ? label.data() : nullptr);
    double gsum = 0, gsum2 = 0;  // per gather, then combined: less rounding over large gathers
    for (float v : data) {
      if (std::isnan(v)) {
        ++s.nan;
      } else if (std::isinf(v)) {
        ++s.inf;
      } else {
        ++s.finite;
        lo = std::min<double>(lo, v);
        hi = std::max<double>(hi, v);
        gsum += v;
        gsum2 += static_cast<double>(v) * v;
      }
    }
    sum += gsum;
    sum2 += gsum2;
    if (in.label_type != H5ElemType::none) {
      s.label_values += hw;
      for (uint8_t v : label) s.label_positive += v != 0;
    }
  }
  s.values = m * hw;
  if (s.finite > 0) {
    s.min = lo;
    s.max = hi;
    s.mean = sum / static_cast<double>(s.finite);
    s.std = std::sqrt(std::max(0.0, sum2 / static_cast<double>(s.finite) - s.mean * s.mean));
  }
  return s;
}

std::string shape_str(const std::vector<int64_t>& v) {
  std::string r = "[";
  for (size_t k = 0; k < v.size(); ++k) r += (k ? ", " : "") + std::to_string(v[k]);
  return r + "]";
}

nlohmann::ordered_json dset_json(const H5DatasetInfo& in, H5ElemType type, const std::vector<int64_t>& chunk,
                                 const std::string& filters, bool direct) {
  nlohmann::ordered_json j;
  j["dtype"] = h5_elem_name(type);
  j["shape"] = {in.n, in.height, in.width};
  j["chunks"] = chunk.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(chunk);
  j["filters"] = filters;
  j["direct_read"] = direct;
  return j;
}

std::string dset_text(const H5DatasetInfo& in, H5ElemType type, const std::vector<int64_t>& chunk,
                      const std::string& filters, bool direct) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%-8s %s", h5_elem_name(type), shape_str({in.n, in.height, in.width}).c_str());
  std::string s = buf;
  if (chunk.empty()) {
    s += ", contiguous";
  } else {
    s += ", chunks " + shape_str(chunk);
    if (chunk == std::vector<int64_t>{1, in.height, in.width}) s += " (one per sample)";
  }
  s += filters.empty() ? ", uncompressed" : ", " + filters;
  s += direct ? ", read with pread" : ", read through the HDF5 library";
  return s;
}

void print_file(const H5SampleFile& f, const Stats& s, bool json) {
  const H5DatasetInfo& in = f.info();
  const bool has_label = in.label_type != H5ElemType::none;
  if (json) {
    nlohmann::ordered_json j;
    j["file"] = in.path;
    j["file_bytes"] = in.file_bytes;
    j["n"] = in.n;
    j["h"] = in.height;
    j["w"] = in.width;
    j["data"] = dset_json(in, in.data_type, in.data_chunk, in.data_filters, in.data_direct);
    j["label"] = has_label ? dset_json(in, in.label_type, in.label_chunk, in.label_filters, in.label_direct)
                           : nlohmann::ordered_json(nullptr);
    j["dt"] = in.dt;
    j["dx"] = in.dx;
    j["bytes_per_sample"] = f.bytes_per_sample();
    j["attributes"] = in.attributes;
    nlohmann::ordered_json st;
    st["gathers_sampled"] = s.gathers;
    st["gathers_total"] = in.n;
    st["values"] = s.values;
    st["min"] = s.min;
    st["max"] = s.max;
    st["mean"] = s.mean;
    st["std"] = s.std;
    st["nan"] = s.nan;
    st["inf"] = s.inf;
    st["label_positive_fraction"] =
        has_label ? nlohmann::ordered_json(static_cast<double>(s.label_positive) / static_cast<double>(s.label_values))
                  : nlohmann::ordered_json(nullptr);
    j["stats"] = st;
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("%s: %lld gathers of %lld time samples x %lld receivers, %.1f MB\n", in.path.c_str(),
              static_cast<long long>(in.n), static_cast<long long>(in.height), static_cast<long long>(in.width),
              static_cast<double>(in.file_bytes) / 1e6);
  std::printf("  /data   %s\n", dset_text(in, in.data_type, in.data_chunk, in.data_filters, in.data_direct).c_str());
  if (has_label) {
    std::printf("  /label  %s\n",
                dset_text(in, in.label_type, in.label_chunk, in.label_filters, in.label_direct).c_str());
  } else {
    std::printf("  /label  none (data for prediction only)\n");
  }
  std::printf("  attributes:%s\n", in.attributes.empty() ? " none" : "");
  for (const auto& [k, v] : in.attributes) std::printf("    %s = %s\n", k.c_str(), v.c_str());
  std::printf("  values over %lld of %lld gathers (spread evenly across the file):\n",
              static_cast<long long>(s.gathers), static_cast<long long>(in.n));
  std::printf("    data: min %.6g  max %.6g  mean %.6g  std %.6g  NaN %lld  Inf %lld\n", s.min, s.max, s.mean, s.std,
              static_cast<long long>(s.nan), static_cast<long long>(s.inf));
  if (has_label) {
    std::printf("    label: positive fraction %.6f\n",
                static_cast<double>(s.label_positive) / static_cast<double>(s.label_values));
  }
}

}  // namespace

int cmd_info(int argc, char** argv) {
  CLI::App app{"seisseg info: validate and summarise HDF5 dataset files", "seisseg info"};
  std::vector<std::string> files;
  bool json = false;
  int64_t stat_samples = 16;
  app.add_option("files", files, "HDF5 dataset files")->required();
  app.add_flag("--json", json, "one JSON object per file, one per line");
  app.add_option("--stat-samples", stat_samples, "gathers read for the value statistics, spread across the file")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  if (!parse_cli(app, argc, argv)) return 0;

  // Every file is reported; a bad one is one line on stderr, and the exit code is 1 if any was bad.
  int rc = 0;
  for (const std::string& path : files) {
    try {
      H5SampleFile f(path);
      const Stats s = sample_stats(f, stat_samples);
      print_file(f, s, json);
      std::fflush(stdout);
    } catch (const InputError& e) {
      if (files.size() == 1) throw;
      std::fprintf(stderr, "seisseg info: %s\n", e.what());
      rc = 1;
    }
  }
  return rc;
}

}  // namespace seis
