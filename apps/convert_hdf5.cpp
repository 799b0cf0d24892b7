#include "apps/convert_hdf5.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/error.h"
#include "io/hdf5_dataset.h"

namespace seis {

namespace {

// The gathers' memory across the threads, at most (one thread gets one gather whatever its size).
constexpr int64_t kGatherBytesInFlight = int64_t{1} << 30;

// "a, b, c" of at most `most` names, then ", ... (N in all)".
std::string name_list(const std::vector<std::string>& names, size_t most) {
  std::string r;
  for (size_t k = 0; k < names.size() && k < most; ++k) r += (k ? ", " : "") + names[k];
  if (names.size() > most) r += ", ... (" + std::to_string(names.size()) + " in all)";
  return r;
}

}  // namespace

void convert_hdf5(const std::string& in, const std::string& out) {
  const auto start = std::chrono::steady_clock::now();
  const H5SampleFile src(in);
  const H5DatasetInfo& info = src.info();
  const int64_t n = info.n, h = info.height, w = info.width;
  const bool labels = info.label_type != H5ElemType::none;

  H5SampleWriter::Options opt;
  opt.n = n;
  opt.height = h;
  opt.width = w;
  opt.with_label = labels;
  opt.norm_stats = true;
  opt.data_f16 = info.data_type == H5ElemType::f16;
  // (dt and dx come with the other root attributes, as they are.)
  H5SampleWriter writer(out, opt);
  // Everything but the gathers and their statistics first: a file that cannot be copied fails before
  // its gathers are read.
  const H5CopyResult copied =
      writer.copy_root_from(in, {"data", "label", "trace_norm", "sample_norm"}, {"data", "label"});
  writer.set_attribute("converted_from", std::filesystem::path(in).filename().string());

  // Each thread reads its next gather and writes it: while one waits for the disk, another writes.
  const int64_t gather_bytes = h * w * (4 + (labels ? 1 : 0) + (opt.data_f16 ? 6 : 0));  // (+ the writer's halves)
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  const int threads = static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>({std::clamp(hw, 2, 4), kGatherBytesInFlight / std::max<int64_t>(1, gather_bytes), n})));
  std::atomic<int64_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::exception_ptr error;
  std::vector<int64_t> nonfinite;
  auto work = [&] {
    try {
      std::vector<float> data(static_cast<size_t>(h * w));
      std::vector<uint8_t> label(labels ? static_cast<size_t>(h * w) : 0);
      std::vector<uint8_t> valid(info.has_trace_valid ? static_cast<size_t>(w) : 0);
      for (int64_t i = next++; i < n && !failed; i = next++) {
        if (i + threads < n) src.will_need(i + threads);
        src.read(i, data.data(), labels ? label.data() : nullptr);
        if (info.has_trace_valid) {
          // Padding traces as the reader reads them, zeros: the statistics are then the reader's.
          src.read_trace_valid(i, valid.data());
          for (int64_t t = 0; t < h; ++t) {
            for (int64_t x = 0; x < w; ++x) {
              if (valid[static_cast<size_t>(x)] == 0) data[static_cast<size_t>(t * w + x)] = 0.0f;
            }
          }
        }
        if (!writer.write(i, data.data(), labels ? label.data() : nullptr)) {
          std::lock_guard<std::mutex> lock(mu);
          nonfinite.push_back(i);
        }
        ++done;
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  src.will_need(0);
  std::vector<std::thread> pool;
  try {
    for (int t = 0; t < threads; ++t) pool.emplace_back(work);
  } catch (...) {  // (a thread that cannot start: stop those that did before giving up)
    failed = true;
    for (std::thread& t : pool) t.join();
    throw;
  }
  auto last = std::chrono::steady_clock::now();
  while (done < n && !failed) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto now = std::chrono::steady_clock::now();
    if (now - last > std::chrono::seconds(5)) {
      last = now;
      const double s = std::chrono::duration<double>(now - start).count();
      std::printf("converted %lld/%lld gathers, %.1f gathers/s\n", static_cast<long long>(done.load()),
                  static_cast<long long>(n), static_cast<double>(done.load()) / s);
      std::fflush(stdout);
    }
  }
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  writer.commit();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::sort(nonfinite.begin(), nonfinite.end());
  if (!nonfinite.empty()) {
    std::vector<std::string> which;
    for (int64_t i : nonfinite) which.push_back(std::to_string(i));
    std::fprintf(
        stderr,
        "seisseg convert: warning: %s: %zu gather(s) hold NaN or Inf (sample %s), copied as they are: training "
        "refuses them, or skips them with --skip-bad-samples\n",
        in.c_str(), nonfinite.size(), name_list(which, 10).c_str());
  }
  for (const std::string& s : copied.skipped) {
    std::fprintf(stderr, "seisseg convert: warning: %s: not copied: %s\n", in.c_str(), s.c_str());
  }
  const double gb = static_cast<double>(src.bytes_per_sample()) * static_cast<double>(n) / 1e9;
  std::string label_text = "no labels";
  if (labels) {
    label_text =
        std::string("labels uint8") +
        (info.label_type == H5ElemType::u8 ? "" : std::string(" (from ") + h5_elem_name(info.label_type) + ")");
  }
  std::printf(
      "seisseg convert: %s -> %s: %lld gathers, shape [%lld, %lld, %lld], %s, %s, one uncompressed chunk per gather, "
      "normalisation statistics stored; copied %zu object(s)%s%s and %zu attribute(s); %.2f GB in %.1f s "
      "(%.2f GB/s)\n",
      in.c_str(), out.c_str(), static_cast<long long>(n), static_cast<long long>(n), static_cast<long long>(h),
      static_cast<long long>(w), h5_elem_name(info.data_type), label_text.c_str(), copied.objects.size(),
      copied.objects.empty() ? "" : " (", (copied.objects.empty() ? "" : name_list(copied.objects, 8) + ")").c_str(),
      copied.attributes.size(), gb, seconds, gb / std::max(seconds, 1e-9));
}

}  // namespace seis
