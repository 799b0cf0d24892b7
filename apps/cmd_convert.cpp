// seisseg convert: SEG-Y to the HDF5 dataset format (DESIGN.md, "Data"). Gathers are streamed one at
// a time into /data [N, H, W] (H = samples per trace, W = traces per gather) with no /label; the
// file appears under --out only once complete.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "apps/commands.h"
#include "io/hdf5_dataset.h"
#include "io/segy.h"

namespace seis {

namespace {

std::string base_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

int cmd_convert(int argc, char** argv) {
  CLI::App app{"seisseg convert: SEG-Y (rev 0/1/2, formats 1, 2, 3, 5, 8) to the HDF5 dataset format",
               "seisseg convert"};
  std::string in, out, endian = "auto", gather_key = "field_record";
  int64_t gather_size = 0;
  app.add_option("input", in, "SEG-Y file")->required();
  app.add_option("--out", out, "output HDF5 file")->required();
  app.add_option("--endian", endian, "byte order: auto (detected), big or little")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "big", "little"}));
  CLI::Option* key =
      app.add_option("--gather-key", gather_key,
                     "trace header key: consecutive traces with equal field record numbers (bytes 9-12) form a gather")
          ->capture_default_str()
          ->check(CLI::IsMember({"field_record"}));
  app.add_option("--gather-size", gather_size, "group traces into gathers of exactly N (instead of --gather-key)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->excludes(key);
  if (!parse_cli(app, argc, argv)) return 0;
  if (out == in) throw UsageError("--out: '" + out + "' is the input file");

  SegyByteOrder order = SegyByteOrder::auto_detect;
  parse_segy_byte_order(endian, &order);  // already checked by CLI11
  const SegyFile segy(in, order);
  const SegyInfo& info = segy.info();
  const std::vector<SegyGather> gathers =
      gather_size > 0 ? segy.gathers_by_count(gather_size) : segy.gathers_by_field_record();
  const int64_t w = segy_uniform_gather_width(info, gathers);
  const int64_t h = info.samples, n = static_cast<int64_t>(gathers.size());
  const std::string grouping = gather_size > 0 ? "gather_size " + std::to_string(gather_size) : "field_record";
  const std::string format = std::to_string(info.format) + " (" + segy_format_name(info.format) + ")";
  const std::string byte_order = std::string(info.big_endian ? "big" : "little") + "-endian";

  H5SampleWriter::Options opt;
  opt.n = n;
  opt.height = h;
  opt.width = w;
  opt.with_label = false;
  opt.dt = info.sample_interval_us * 1e-6;
  H5SampleWriter writer(out, opt);
  writer.set_attribute("source", base_name(in));
  writer.set_attribute("segy_revision", info.revision());
  writer.set_attribute("segy_format", format);
  writer.set_attribute("segy_byte_order", byte_order);
  writer.set_attribute("segy_traces", static_cast<double>(info.traces));
  writer.set_attribute("gather_grouping", grouping);

  std::vector<float> gather(static_cast<size_t>(h * w));
  const auto start = std::chrono::steady_clock::now();
  auto last = start;
  for (int64_t i = 0; i < n; ++i) {
    segy.read_gather(gathers[static_cast<size_t>(i)], gather.data());
    writer.write(i, gather.data(), nullptr);
    const auto now = std::chrono::steady_clock::now();
    if (now - last > std::chrono::seconds(5)) {
      last = now;
      const double s = std::chrono::duration<double>(now - start).count();
      std::printf("converted %lld/%lld gathers, %.0f gathers/s\n", static_cast<long long>(i + 1),
                  static_cast<long long>(n), static_cast<double>(i + 1) / s);
      std::fflush(stdout);
    }
  }
  writer.commit();
  std::printf(
      "seisseg convert: %s -> %s: %lld traces in %lld gathers (%s), shape [%lld, %lld, %lld], format %s, %s%s\n",
      in.c_str(), out.c_str(), static_cast<long long>(info.traces), static_cast<long long>(n), grouping.c_str(),
      static_cast<long long>(n), static_cast<long long>(h), static_cast<long long>(w), format.c_str(),
      byte_order.c_str(), info.byte_order_detected ? " (detected)" : " (--endian)");
  return 0;
}

}  // namespace seis
