// seisseg convert: SEG-Y to the HDF5 dataset format (DESIGN.md, "Data"). Gathers are streamed one at
// a time into /data [N, H, W] (H = samples per trace, W = traces of the widest gather, narrower ones
// padded with zero traces and marked in /trace_valid) with no /label, every header kept
// (io/segy_headers.h); the file appears under --out only once complete. Field records of one width
// convert in a single read of the SEG-Y; records of different widths need a first pass over the
// trace headers to find W. The gathers are read and decoded on a second thread, a few ahead of the
// one being written (io/segy_gather_stream.h), so the read and the write overlap. An HDF5 input is
// rewritten instead (apps/convert_hdf5.h).
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/convert_hdf5.h"
#include "io/hdf5_dataset.h"
#include "io/segy.h"
#include "io/segy_gather_stream.h"
#include "io/segy_headers.h"

namespace seis {

namespace {

// The gathers read ahead of the one being written: at most this many bytes of them, and at least one
// for gathers up to SegyGatherStream::kMaxReadAheadGather (1 GiB).
constexpr int64_t kReadAheadBytes = int64_t{64} << 20;

// Whether both paths name one existing file.
bool same_file(const std::string& a, const std::string& b) {
  struct stat x {
  }, y{};
  return ::stat(a.c_str(), &x) == 0 && ::stat(b.c_str(), &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

// Streams `gathers` into `out`. assumed: the gathers are a guess at the field records (consecutive
// traces of equal bytes 9-12); false is returned, and nothing is left under `out`, at the first
// gather whose traces are not one whole field record.
bool write_dataset(const SegyFile& segy, const std::string& in, const std::string& out,
                   const std::vector<SegyGather>& gathers, int64_t gather_size, bool assumed) {
  const SegyInfo& info = segy.info();
  const int64_t h = info.samples, n = static_cast<int64_t>(gathers.size());
  // Gathers of different trace counts are padded with zero traces to the widest; /trace_valid says
  // which are real. A field-record gather of one trace means the key does not group this file.
  int64_t w = 0, lo = INT64_MAX;
  for (const SegyGather& g : gathers) {
    if (gather_size == 0 && g.traces == 1 && n > 1) {
      throw InputError(in + ": trace " + std::to_string(g.first_trace) + " is a gather of one trace (field record " +
                       std::to_string(g.field_record) +
                       ", trace header bytes 9-12): the field record numbers do not group this file into gathers; "
                       "use --gather-size N");
    }
    w = std::max(w, g.traces);
    lo = std::min(lo, g.traces);
  }
  if (h * w * 4 >= (int64_t{1} << 32)) {
    const auto widest = std::max_element(gathers.begin(), gathers.end(),
                                         [](const SegyGather& a, const SegyGather& b) { return a.traces < b.traces; });
    throw InputError(in + ": the gather from trace " + std::to_string(widest->first_trace) + " holds " +
                     std::to_string(w) + " traces of " + std::to_string(h) +
                     " samples, over HDF5's 4 GiB chunk for one gather; use --gather-size N");
  }
  const bool padded = lo != w;
  const std::string grouping = gather_size > 0 ? "gather_size " + std::to_string(gather_size) : "field_record";
  const std::string format = std::to_string(info.format) + " (" + segy_format_name(info.format) + ")";
  const std::string byte_order = std::string(info.big_endian ? "big" : "little") + "-endian";

  H5SampleWriter::Options opt;
  opt.n = n;
  opt.height = h;
  opt.width = w;
  opt.with_label = false;
  opt.norm_stats = true;  // (computed on the writing thread from the gather as written, padding zeros included)
  opt.dt = info.sample_interval_us * 1e-6;
  H5SampleWriter writer(out, opt);
  writer.set_attribute("source", std::filesystem::path(in).filename().string());
  writer.set_attribute("segy_revision", info.revision());
  writer.set_attribute("segy_format", format);
  writer.set_attribute("segy_byte_order", byte_order);
  writer.set_attribute("segy_traces", static_cast<double>(info.traces));
  writer.set_attribute("gather_grouping", grouping);

  // The headers, raw and decoded, appended gather by gather: nothing grows with the survey.
  std::vector<uint8_t> block(static_cast<size_t>(kSegyTextHeaderBytes));
  segy.read_text_header(block.data());
  writer.write_bytes("segy_text_header", block.data(), kSegyTextHeaderBytes);
  segy.read_binary_header(block.data());
  writer.write_bytes("segy_binary_header", block.data(), kSegyBinaryHeaderBytes);
  if (info.extended_text_headers > 0) {
    writer.add_byte_rows("segy_extended_text_headers", kSegyTextHeaderBytes, 1);
    for (int64_t k = 0; k < info.extended_text_headers; ++k) {
      segy.read_extended_text_header(k, block.data());
      writer.append_byte_rows("segy_extended_text_headers", block.data(), 1);
    }
  }
  writer.add_byte_rows("segy_trace_headers", kSegyTraceHeaderBytes, 4096);
  writer.add_table(segy_header_table());
  if (padded) writer.add_byte_rows("trace_valid", w, std::max<int64_t>(1, std::min<int64_t>(1024, (1 << 20) / w)));

  // The next gathers are read and decoded on a thread of their own while this one is written.
  const int64_t gather_bytes = h * w * 4 + w * kSegyTraceHeaderBytes;
  SegyGatherStream stream(segy, gathers, w, SegyGatherStream::depth_for(gather_bytes, kReadAheadBytes));
  std::vector<uint8_t> valid(static_cast<size_t>(w));
  std::vector<SegyHeaderRow> rows(static_cast<size_t>(w));
  int64_t previous_ffid = 0;
  const auto start = std::chrono::steady_clock::now();
  auto last = start;
  for (int64_t i = 0; i < n; ++i) {
    const SegyGather& g = gathers[static_cast<size_t>(i)];
    const SegyGatherStream::Gather read = stream.next();
    const uint8_t* headers = read.headers;
    writer.write(i, read.data, nullptr);
    for (int64_t j = 0; j < g.traces; ++j) {
      rows[static_cast<size_t>(j)] = segy_header_row(headers + j * kSegyTraceHeaderBytes, info.big_endian, i, j);
    }
    if (assumed) {
      for (int64_t j = 0; j < g.traces; ++j) {
        const bool same = rows[static_cast<size_t>(j)].ffid == rows[0].ffid;
        if (!same || (j == 0 && i > 0 && rows[0].ffid == previous_ffid)) return false;
      }
      previous_ffid = rows[0].ffid;
    }
    writer.append_byte_rows("segy_trace_headers", headers, g.traces);
    writer.append_rows("headers", rows.data(), g.traces);
    if (padded) {
      std::fill(valid.begin(), valid.end(), 0);
      std::fill(valid.begin(), valid.begin() + g.traces, 1);
      writer.append_byte_rows("trace_valid", valid.data(), 1);
    }
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
  const std::string padding = padded ? ", " + std::to_string(n * w - info.traces) + " padding traces (gathers of " +
                                           std::to_string(lo) + " to " + std::to_string(w) + ")"
                                     : "";
  std::printf(
      "seisseg convert: %s -> %s: %lld traces in %lld gathers (%s), shape [%lld, %lld, %lld], format %s, %s%s, "
      "headers kept%s\n",
      in.c_str(), out.c_str(), static_cast<long long>(info.traces), static_cast<long long>(n), grouping.c_str(),
      static_cast<long long>(n), static_cast<long long>(h), static_cast<long long>(w), format.c_str(),
      byte_order.c_str(), info.byte_order_detected ? " (detected)" : " (--endian)", padding.c_str());
  return true;
}

}  // namespace

int cmd_convert(int argc, char** argv) {
  CLI::App app{
      "seisseg convert: SEG-Y (rev 0/1/2, formats 1, 2, 3, 5, 8) to the HDF5 dataset format; or an HDF5 dataset "
      "file (h5py's, any chunking or compression) rewritten in the layout the reader reads fastest, with its "
      "normalisation statistics stored and everything else copied",
      "seisseg convert"};
  std::string in, out, endian = "auto", gather_key = "field_record";
  int64_t gather_size = 0;
  app.add_option("input", in, "SEG-Y file, or HDF5 dataset file (told apart by the HDF5 signature)")->required();
  app.add_option("--out", out, "output HDF5 file (for an HDF5 input, it may be the input: replaced once complete)")
      ->required();
  CLI::Option* endian_opt = app.add_option("--endian", endian, "SEG-Y byte order: auto (detected), big or little")
                                ->capture_default_str()
                                ->check(CLI::IsMember({"auto", "big", "little"}));
  CLI::Option* key =
      app.add_option("--gather-key", gather_key,
                     "trace header key: consecutive traces with equal field record numbers (bytes 9-12) form a gather")
          ->capture_default_str()
          ->check(CLI::IsMember({"field_record"}));
  CLI::Option* size_opt =
      app.add_option("--gather-size", gather_size, "group traces into gathers of exactly N (instead of --gather-key)")
          ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
          ->excludes(key);
  if (!parse_cli(app, argc, argv)) return 0;
  // The output is written to OUT.tmp first, which must not be the input (it is truncated at once).
  if (same_file(in, out + ".tmp")) throw UsageError("--out: '" + out + ".tmp', its temporary file, is the input");
  if (has_hdf5_signature(in)) {
    for (const CLI::Option* o : {endian_opt, key, size_opt}) {
      if (o->count() > 0) throw UsageError(o->get_name() + ": for SEG-Y input; " + in + " is an HDF5 file");
    }
    convert_hdf5(in, out);
    return 0;
  }
  if (out == in || same_file(in, out)) throw UsageError("--out: '" + out + "' is the input file");

  SegyByteOrder order = SegyByteOrder::auto_detect;
  parse_segy_byte_order(endian, &order);  // already checked by CLI11
  const SegyFile segy(in, order);
  // Fixed-width field records (the usual case) convert in one pass over the file: the first
  // record's width is taken for all, and each gather's keys are checked as it is read. Where the
  // guess fails, or the widths differ, every header is read first to find the gathers.
  if (gather_size == 0) {
    const int64_t first = segy.field_record_run(0);
    if (first > 1 && segy.info().traces % first == 0 &&
        write_dataset(segy, in, out, segy.gathers_by_count(first), gather_size, true)) {
      return 0;
    }
  }
  write_dataset(segy, in, out, gather_size > 0 ? segy.gathers_by_count(gather_size) : segy.gathers_by_field_record(),
                gather_size, false);
  return 0;
}

}  // namespace seis
