// bench_convert: `seisseg convert` of a large SEG-Y file against a raw sequential read of the same
// file, in one run. The SEG-Y is synthesised first, streamed trace by trace (nothing of its size in
// memory): format 5, big-endian, gathers of --traces traces of --samples samples, ffid per gather.
// Both measurements run cold: the SEG-Y is evicted from the page cache first (posix_fadvise
// DONTNEED after fsync; the rest of the machine's cache is left alone). The convert runs as its own
// process (fork, exec, wait4), so its peak RSS is the child's own; its time includes writing and
// syncing the HDF5 output (seisseg's writer fsyncs before the rename).
// Prints one JSON line per measurement, then the ratio, with the machine's load average around each.
//
//   bench_convert --gb 20                 # /tmp/seisseg_bench_convert.sgy and .h5, both deleted after
//   bench_convert --file F.sgy --keep     # an existing SEG-Y file, kept
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "bench_util.h"
#include "engine/rng.h"
#include "io/segy_headers.h"
#include "io/segy_writer.h"

using namespace seis;

namespace {

using bench::file_exists;
using bench::file_size;
using bench::now_s;

// The 1-minute load average, as /proc/loadavg says (-1 when unreadable).
double load_average() {
  std::ifstream f("/proc/loadavg");
  double l = -1;
  f >> l;
  return l;
}

void put_be(uint8_t* p, int64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[bytes - 1 - i] = static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i));
}

struct Synthesised {
  int64_t traces = 0, gathers = 0;
};

// About `bytes` of SEG-Y in whole gathers, written trace by trace through SegyWriter (IEEE float,
// big-endian; temp file, then rename).
Synthesised synthesise(const std::string& path, int64_t bytes, int64_t samples, int64_t traces_per_gather) {
  SegyWriter::Options o;
  o.text.assign(kSegyTextHeaderBytes, 0x40);  // EBCDIC blanks
  o.binary.assign(kSegyBinaryHeaderBytes, 0);
  put_be(o.binary.data() + 3217 - 3201, 1000, 2);  // dt, us
  put_be(o.binary.data() + 3221 - 3201, samples, 2);
  put_be(o.binary.data() + 3501 - 3201, 0x0100, 2);  // rev 1
  o.big_endian = true;
  o.samples = samples;
  SegyWriter w(path, o);
  const int64_t trace_bytes = kSegyTraceHeaderBytes + 4 * samples;
  Synthesised s;
  s.gathers = std::max<int64_t>(1, (bytes - 3600) / (trace_bytes * traces_per_gather));
  std::vector<uint8_t> h(kSegyTraceHeaderBytes);
  std::vector<float> x(static_cast<size_t>(samples));
  for (int64_t g = 0; g < s.gathers; ++g) {
    for (int64_t j = 0; j < traces_per_gather; ++j, ++s.traces) {
      std::fill(h.begin(), h.end(), 0);
      put_be(h.data() + 0, s.traces + 1, 4);  // trace sequence number in the line
      put_be(h.data() + 8, 1000 + g, 4);      // ffid
      put_be(h.data() + 12, j + 1, 4);        // channel
      put_be(h.data() + 70, -100, 2);         // coordinate scalar
      put_be(h.data() + 72, 100000 + 25 * g, 4);
      put_be(h.data() + 80, 100000 + 10 * j, 4);
      put_be(h.data() + 114, samples, 2);
      put_be(h.data() + 116, 1000, 2);
      Rng rng(7, static_cast<uint64_t>(s.traces));
      for (float& v : x) v = static_cast<float>(static_cast<int32_t>(rng.next_u64() >> 32)) * (1.0f / 2147483648.0f);
      w.write_trace(h.data(), x.data(), 1);
    }
  }
  w.commit();
  return s;
}

struct ChildRun {
  int code = -1;
  double seconds = 0;
  int64_t peak_rss_bytes = 0;
};

// Runs argv as a child process with stdout and stderr to `log`; its exit code, wall time and peak
// resident memory (getrusage of the child).
ChildRun run_child(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const double t0 = now_s();
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (std::freopen(log.c_str(), "w", stdout) == nullptr || ::dup2(::fileno(stdout), 2) < 0) ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ChildRun r;
  int status = 0;
  struct rusage ru {};
  if (pid > 0 && ::wait4(pid, &status, 0, &ru) == pid) {
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.peak_rss_bytes = static_cast<int64_t>(ru.ru_maxrss) * 1024;
  }
  r.seconds = now_s() - t0;
  return r;
}

void emit(const nlohmann::ordered_json& j) {
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_convert: seisseg convert of a SEG-Y file against a raw sequential read of it"};
  std::string file = "/tmp/seisseg_bench_convert.sgy", out, seisseg = SEISSEG_BIN;
  double gb = 1.0;
  int64_t samples = 2000, traces = 240;
  bool keep = false;
  app.add_option("--file", file, "SEG-Y file to convert; synthesised (and deleted after) when missing")
      ->capture_default_str();
  app.add_option("--out", out, "HDF5 output (default: the SEG-Y path with .h5; deleted after)");
  app.add_option("--gb", gb, "size of a synthesised SEG-Y file, GB (1e9 bytes)")->capture_default_str();
  app.add_option("--samples", samples, "samples per trace of a synthesised file")->capture_default_str();
  app.add_option("--traces", traces, "traces per gather of a synthesised file")->capture_default_str();
  app.add_option("--seisseg", seisseg, "the seisseg binary")->capture_default_str();
  app.add_flag("--keep", keep, "keep a synthesised SEG-Y file and the HDF5 output");
  bool created = false;
  try {
    if (!parse_cli(app, argc, argv)) return 0;
    if (out.empty() || out == file) out = file.substr(0, file.rfind('.')) + ".h5";
    if (!(gb > 0) || samples < 1 || samples > 32767 || traces < 2) {
      throw UsageError("--gb must be > 0, --samples in 1..32767 and --traces at least 2");
    }
    if (!file_exists(file)) {
      const double t0 = now_s();
      const Synthesised s = synthesise(file, static_cast<int64_t>(gb * 1e9), samples, traces);
      created = true;
      emit({{"bench", "convert_file"},
            {"file", file},
            {"created", true},
            {"bytes", file_size(file)},
            {"traces", s.traces},
            {"gathers", s.gathers},
            {"samples", samples},
            {"seconds", now_s() - t0}});
    }
    const int64_t segy_bytes = file_size(file);

    const double load_raw = load_average();
    bench::evict(file);
    const bench::RawRead raw = bench::raw_read(file);
    const double raw_gbs = static_cast<double>(raw.bytes) / raw.seconds / 1e9;
    emit({{"bench", "convert"},
          {"impl", "raw_read"},
          {"mode", "cold"},
          {"bytes", raw.bytes},
          {"seconds", raw.seconds},
          {"gb_per_s", raw_gbs},
          {"block_mib", 8},
          {"load_average", load_raw}});

    std::remove(out.c_str());
    const double load_convert = load_average();
    bench::evict(file);
    const std::string log = out + ".log";
    const ChildRun c = run_child({seisseg, "convert", file, "--out", out}, log);
    if (c.code != 0) {
      std::ifstream l(log);
      std::string text((std::istreambuf_iterator<char>(l)), std::istreambuf_iterator<char>());
      std::remove(log.c_str());
      throw InputError("seisseg convert exited with " + std::to_string(c.code) + ": " + text);
    }
    std::remove(log.c_str());
    const double convert_gbs = static_cast<double>(segy_bytes) / c.seconds / 1e9;
    emit({{"bench", "convert"},
          {"impl", "seisseg_convert"},
          {"mode", "cold"},
          {"bytes", segy_bytes},
          {"out_bytes", file_size(out)},
          {"seconds", c.seconds},
          {"gb_per_s", convert_gbs},
          {"peak_rss_bytes", c.peak_rss_bytes},
          {"load_average", load_convert}});
    emit({{"bench", "convert_ratio"},
          {"mode", "cold"},
          {"convert_over_raw", convert_gbs / raw_gbs},
          {"peak_rss_gb", static_cast<double>(c.peak_rss_bytes) / 1e9},
          {"load_average_after", load_average()}});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_convert: %s\n", e.what());
    if (created && !keep) std::remove(file.c_str());
    if (!keep) std::remove(out.c_str());
    return 1;
  }
  if (created && !keep) std::remove(file.c_str());
  if (!keep) std::remove(out.c_str());
  return 0;
}
