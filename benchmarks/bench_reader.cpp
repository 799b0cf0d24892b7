// bench_reader: SampleReader throughput against the physical limit and the Python ways of reading
// the same HDF5 file, all in one run. Each measurement runs cold (the file evicted from the page
// cache first: posix_fadvise DONTNEED after fsync; it evicts clean pages only) and warm (the file
// in the page cache):
//   reader          SampleReader, one shuffled epoch into pinned slots (next_host: no device, no copy);
//                   and its second epoch ("seisseg_later_epoch"; cold: the file evicted again after the
//                   first), a training run's steady state, where the normalisation's statistics are
//                   kept from the first
//   raw             read() of the whole file in 8 MiB blocks, sequentially, into one buffer that stays
//                   in cache: the disk's sequential speed (cold); warm, no ceiling for filling slots
//   raw_slots       the bytes the reader reads (each sample's chunks), in the reader's order, by as many
//                   threads as the reader has, one pread per chunk, into a ring of buffers as large as
//                   the reader's slots and in the same kind of pages (huge where the kernel gives
//                   them): what filling the slots costs with no processing at all
//   fio             fio (Debian's fio, when installed): as many jobs as reader threads, each reading its
//                   share of the file sequentially in 4 MiB requests (psync): parallel reads of the disk
//   fio_direct      the same with O_DIRECT (cold only): whether reading past the page cache, as the
//                   reader could into aligned pinned slots, would pay on this disk (fio_direct_over_fio)
//   seisseg_direct  with --also-direct: the reader with direct reads (O_DIRECT, 4 MiB; direct_io),
//                   first and later epoch; warm, it reads the disk again. Blocks go straight into the
//                   slots where the file's chunks are 4 KiB-aligned (as synth and convert write them;
//                   direct_bytes_in_place says how many). Its peers, cold:
//   seisseg_direct_copied  its first epoch with every block through the workers' buffers and
//                   copied (direct_into_place off), just before it: what reading into place gains
//   raw_slots_direct  raw_slots with O_DIRECT: each chunk's 4 KiB-aligned span in reads of at most
//                   4 MiB straight into the ring, no copy (the ceiling of the reader's direct reads)
//   h5py_generator  benchmarks/reader_peers.py: the paper's per-sample h5py generator
//   dataloader      benchmarks/reader_peers.py: PyTorch DataLoader over h5py, 2 workers, pin_memory
// Prints one JSON line per measurement, then the ratios. GB/s counts file bytes (data + labels). The
// reader's lines carry the SIMD level its loops ran at ("simd"; SEIS_SIMD=baseline|avx2 caps it).
//
// --sparse-gb G (issue 12, scale): the file is created sparse, G GB of samples whose chunks are all
// allocated and never written (HDF5's early allocation without fill: no disk space, zeros on read),
// so that any machine can stream a survey-sized dataset. One pass instead of cold and warm (G is
// meant to exceed the page cache): raw_slots and one epoch of the reader, each with the process's
// peak resident memory over it (VmHWM, reset before each), which for the reader must stay near its
// slots whatever G is. raw only with --sparse-raw: on holes there is no disk to measure, and one
// thread's sequential read measures the kernel zero-filling page-cache pages (0.3 GB/s on the
// 2-core build machine, against 3.8 GB/s for raw_slots' two threads of 64 MiB preads). The sparse
// file stores its (zero) normalisation statistics unless --no-norm-stats; --also-without-stored-stats
// adds a second epoch of a reader that ignores them; --also-direct, raw_slots_direct and epochs of
// the reader with direct reads, copied then into place (on holes the kernel zero-fills the buffers
// with no page cache).
//
// --also-split K (issue 13, "many files as fast as one"): the same samples are also written as K files
// (consecutive runs of samples, with their statistics, beside the file in <file>.split-K/, deleted
// after unless --keep), and the reader times one epoch of that K-file set ("seisseg_split"; same
// seed, so the same permutation and bytes), and again keeping at most 2 files open
// ("seisseg_split_max_open_2": every read of another file reopens it), against the one-file reader
// of the same run (seisseg_split_over_seisseg).
//
// Created files carry /trace_norm and /sample_norm as synth and convert write them (not with
// --no-norm-stats); --also-without-stored-stats also times a first epoch that computes its own
// (impl seisseg_no_stored_stats), the two-pass first epoch of a file without them.
//
//   bench_reader --samples 52 --size 4096            # creates /tmp/seisseg_bench_reader.h5 (4.4 GB), deletes it after
//   bench_reader --file F.h5 --batch 4 --threads 2   # an existing file, kept
//   bench_reader --sparse-gb 750 --file /data/sparse.h5 --normalize trace   # 750 GB, sparse on disk
#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "apps/cli.h"
#include "bench_util.h"
#include "engine/device_runtime.h"
#include "engine/host_pages.h"
#include "engine/rng.h"
#include "engine/simd_dispatch.h"
#include "io/hdf5_dataset.h"
#include "io/hdf5_util.h"
#include "io/sample_order.h"
#include "io/sample_reader.h"
#include "io/sample_set.h"

using namespace seis;

namespace {

using bench::evict;
using bench::file_exists;
using bench::file_size;
using bench::now_s;
using bench::run_capture;

// Writes `n` samples of size x size random floats (and sparse random labels) with H5SampleWriter,
// with their normalisation statistics (/trace_norm, /sample_norm) as synth and convert write them,
// unless !norm_stats.
void create_file(const std::string& path, int64_t n, int64_t size, bool norm_stats) {
  H5SampleWriter::Options o;
  o.n = n;
  o.height = size;
  o.width = size;
  o.norm_stats = norm_stats;
  H5SampleWriter wr(path, o);
  const int threads = static_cast<int>(std::max(1u, std::min(4u, std::thread::hardware_concurrency())));
  std::vector<std::thread> ts;
  std::exception_ptr error;
  std::mutex mu;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      try {
        std::vector<float> d(static_cast<size_t>(size * size));
        std::vector<uint8_t> l(d.size());
        for (int64_t i = t; i < n; i += threads) {
          Rng rng(1234, static_cast<uint64_t>(i));
          for (size_t p = 0; p < d.size(); ++p) {
            const uint64_t r = rng.next_u64();
            d[p] = static_cast<float>(static_cast<int32_t>(r >> 32)) * (1.0f / 2147483648.0f);
            l[p] = (r & 0xff) == 0 ? 1 : 0;
          }
          wr.write(i, d.data(), l.data());
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        error = std::current_exception();
      }
    });
  }
  for (auto& t : ts) t.join();
  if (error) std::rethrow_exception(error);
  wr.commit();
}

// `n` samples of size x size (f32 /data and u8 /label, one chunk per sample, aligned as H5SampleWriter lays
// them out) whose chunks are allocated when the dataset is created and never written: the file is
// sparse (its size is the data's, its blocks almost none) and reads as zeros. With norm_stats, also
// /trace_norm [n, 2, size] (one chunk per sample) and /sample_norm [n, 2] (contiguous), allocated
// and never written like them: zeros, which are the statistics of gathers of zeros (mean 0, and an
// inverse deviation of 0 for a dead trace), so the reader's check accepts them.
void create_sparse_file(const std::string& path, int64_t n, int64_t size, bool norm_stats) {
  const hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  const hid_t file = fapl >= 0 && h5_align_chunks(fapl) >= 0 ? H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl)
                                                             : H5I_INVALID_HID;
  if (fapl >= 0) H5Pclose(fapl);
  if (file < 0) throw InputError(path + ": cannot create");
  bool ok = true;
  struct Dset {
    const char* name;
    hid_t type;
    int rank;
    hsize_t rows, cols;  // dims [n, rows, cols] (rank 3) or [n, rows] (rank 2, contiguous)
  };
  std::vector<Dset> dsets = {{"data", H5T_IEEE_F32LE, 3, static_cast<hsize_t>(size), static_cast<hsize_t>(size)},
                             {"label", H5T_STD_U8LE, 3, static_cast<hsize_t>(size), static_cast<hsize_t>(size)}};
  if (norm_stats) {
    dsets.push_back({"trace_norm", H5T_IEEE_F32LE, 3, 2, static_cast<hsize_t>(size)});
    dsets.push_back({"sample_norm", H5T_IEEE_F64LE, 2, 2, 0});
  }
  for (const Dset& ds : dsets) {
    const char* name = ds.name;
    const hid_t type = ds.type;
    const hsize_t dims[3] = {static_cast<hsize_t>(n), ds.rows, ds.cols};
    const hsize_t chunk[3] = {1, dims[1], dims[2]};
    const hid_t space = H5Screate_simple(ds.rank, dims, nullptr), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    ok = ok && space >= 0 && dcpl >= 0 && (ds.rank == 2 || H5Pset_chunk(dcpl, 3, chunk) >= 0) &&
         H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) >= 0 && H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) >= 0;
    const hid_t d = ok ? H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
    ok = ok && d >= 0;
    if (d >= 0) H5Dclose(d);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
  }
  ok = H5Fclose(file) >= 0 && ok;
  if (!ok) {
    std::remove(path.c_str());
    throw InputError(path + ": creating the sparse datasets failed");
  }
}

// The process's peak resident memory (VmHWM), and its reset to the current resident memory (Linux
// 4.0+: "5" to /proc/self/clear_refs). -1 when /proc does not say.
int64_t peak_rss_bytes() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long long kib = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "VmHWM: %lld kB", &kib) == 1) break;
  }
  std::fclose(f);
  return kib < 0 ? -1 : kib * 1024;
}
void reset_peak_rss() {
  FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (f == nullptr) return;
  std::fputs("5", f);
  std::fclose(f);
}

// The samples of `set` (one file) as `k` files of consecutive runs of them, in `dir`: float32 and
// uncompressed as H5SampleWriter writes them, with statistics it computes when the file has them.
// Each file's path is appended to *paths before it is written (so that the caller can remove what a
// failure left), in sample order. The same bytes as the file's for a file of that layout (as
// bench_reader creates them); a float16, compressed or padded --file gives other work per sample.
void write_split(const SampleSet& set, int64_t k, const std::string& dir, std::vector<std::string>* paths) {
  const H5SampleFile& in = set.file(0);
  const int64_t n = set.size(), h = set.height(), w = set.width();
  if (k < 2 || k > n) throw UsageError("--also-split " + std::to_string(k) + " must be in [2, samples]");
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) throw InputError(dir + ": cannot create the folder");
  std::vector<float> d(static_cast<size_t>(h * w));
  std::vector<uint8_t> l(static_cast<size_t>(h * w));
  for (int64_t f = 0; f < k; ++f) {
    const int64_t i0 = n * f / k, i1 = n * (f + 1) / k;
    char name[32];
    std::snprintf(name, sizeof name, "/part-%03lld.h5", static_cast<long long>(f));
    paths->push_back(dir + name);
    H5SampleWriter::Options o;
    o.n = i1 - i0;
    o.height = h;
    o.width = w;
    o.with_label = set.has_label();
    o.norm_stats = in.info().has_trace_norm;
    H5SampleWriter wr(paths->back(), o);
    for (int64_t i = i0; i < i1; ++i) {
      in.read(i, d.data(), o.with_label ? l.data() : nullptr);
      wr.write(i - i0, d.data(), o.with_label ? l.data() : nullptr);
    }
    wr.commit();
  }
}

// Every file of `set` out of the page cache (bench::evict).
void evict_set(const SampleSet& set) {
  for (int f = 0; f < set.num_files(); ++f) evict(set.file(f).info().path);
}

nlohmann::ordered_json measure_raw(const std::string& path, bool cold) {
  if (cold) evict(path);
  const bench::RawRead r = bench::raw_read(path);
  return {{"bench", "reader"}, {"impl", "raw"},        {"mode", cold ? "cold" : "warm"},
          {"bytes", r.bytes},  {"seconds", r.seconds}, {"gb_per_s", static_cast<double>(r.bytes) / r.seconds / 1e9},
          {"block_mib", 8}};
}

// pread of `bytes` at `offset`, whole (short reads continued).
void read_at(int fd, char* buf, int64_t bytes, int64_t offset, const std::string& path) {
  while (bytes > 0) {
    const ssize_t got = ::pread(fd, buf, static_cast<size_t>(bytes), static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) throw InputError(path + ": read failed at byte " + std::to_string(offset));
    buf += got;
    bytes -= got;
    offset += got;
  }
}

// The reader's bytes without the reader: see raw_slots above. Null when the file's samples are not
// read with pread (compressed chunks). direct (raw_slots_direct, the peer of the reader's direct
// reads): O_DIRECT, each extent's 4 KiB-aligned span in reads of at most 4 MiB straight into the
// ring (no copy), or null where the file system refuses O_DIRECT.
nlohmann::ordered_json measure_raw_slots(const std::string& path, const SampleSet& set, const SampleReaderOptions& o,
                                         bool cold, bool direct = false) {
  const H5SampleFile& file = set.file(0);
  const int64_t n = set.size(), count = n / o.batch * o.batch;
  if (file.direct_extents(0).empty()) return nullptr;
  const std::vector<int64_t> perm = epoch_permutation(n, o.seed, 0);
  constexpr int64_t kAlign = 4096, kDirectRead = int64_t{4} << 20;
  const int64_t margin = direct ? 2 * kAlign * static_cast<int64_t>(file.direct_extents(0).size()) : 0;
  // (Each ring slot 4 KiB-aligned for O_DIRECT.)
  const int64_t per_sample = direct ? (set.bytes_per_sample(0) + margin + kAlign - 1) / kAlign * kAlign
                                    : set.bytes_per_sample(0),
                ring = static_cast<int64_t>(o.prefetch) * o.batch;
  // The ring in the memory the reader's slots are in without a CUDA driver (engine/host_pages.h:
  // huge pages where the kernel gives them), so that the page size favours neither.
  void* mem = alloc_host_pages(ring * per_sample);
  if (mem == nullptr) throw Error("out of memory");
  std::memset(mem, 0, static_cast<size_t>(ring * per_sample));  // touched, as the reader's slots are
  const int fd = ::open(path.c_str(), O_RDONLY | (direct ? O_DIRECT : 0));
  if (fd < 0 && direct) {
    free_host_pages(mem, ring * per_sample);
    return nullptr;
  }
  if (fd < 0) throw InputError(path + ": cannot open: " + std::strerror(errno));
  if (cold) evict(path);
  std::atomic<int64_t> next{0}, total{0};
  std::exception_ptr error;
  std::mutex mu;
  const double t0 = now_s();
  std::vector<std::thread> ts;
  for (int t = 0; t < o.threads; ++t) {
    ts.emplace_back([&] {
      try {
        for (int64_t q = next++; q < count; q = next++) {
          char* dst = static_cast<char*>(mem) + (q % ring) * per_sample;
          for (const H5SampleFile::Extent& e : file.direct_extents(perm[static_cast<size_t>(q)])) {
            if (!direct) {
              read_at(fd, dst, e.bytes, e.offset, path);
              dst += e.bytes;
            } else {
              const int64_t a0 = e.offset / kAlign * kAlign, a1 = (e.offset + e.bytes + kAlign - 1) / kAlign * kAlign;
              for (int64_t at = a0; at < a1; at += kDirectRead) {
                const int64_t want = std::min(kDirectRead, a1 - at);
                const ssize_t r = ::pread(fd, dst, static_cast<size_t>(want), static_cast<off_t>(at));
                if (r < std::min(want, e.offset + e.bytes - at)) {
                  throw InputError(path + ": O_DIRECT read at byte " + std::to_string(at) +
                                   " failed: " + (r < 0 ? std::strerror(errno) : "short read"));
                }
                dst += want;
              }
            }
            total += e.bytes;
          }
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        error = std::current_exception();
      }
    });
  }
  for (auto& t : ts) t.join();
  const double s = now_s() - t0;
  ::close(fd);
  free_host_pages(mem, ring * per_sample);
  if (error) std::rethrow_exception(error);
  const int64_t bytes = total.load();
  return {{"bench", "reader"},
          {"impl", direct ? "raw_slots_direct" : "raw_slots"},
          {"mode", cold ? "cold" : "warm"},
          {"bytes", bytes},
          {"seconds", s},
          {"gb_per_s", static_cast<double>(bytes) / s / 1e9},
          {"threads", o.threads},
          {"ring_bytes", ring * per_sample}};
}

// fio's parallel sequential read of the file, or null when fio is not installed. direct: O_DIRECT
// (--direct=1), the disk into the buffers past the page cache (cold only: nothing is cached).
nlohmann::ordered_json measure_fio(const std::string& path, int jobs, bool cold, bool direct = false) {
  if (std::system("command -v fio >/dev/null 2>&1") != 0) return nullptr;
  if (cold) evict(path);
  const int64_t share = file_size(path) / jobs / 4096 * 4096;
  const std::string cmd = "fio --name=seisseg_bench --filename='" + path +
                          "' --readonly --rw=read --bs=4m --ioengine=psync --numjobs=" + std::to_string(jobs) +
                          " --size=" + std::to_string(share) + " --offset_increment=" + std::to_string(share) +
                          " --invalidate=" + (cold ? "1" : "0") + " --direct=" + (direct ? "1" : "0") +
                          " --group_reporting --output-format=json 2>/dev/null";
  const nlohmann::json j = nlohmann::json::parse(run_capture(cmd), nullptr, false);
  if (j.is_discarded() || !j.contains("jobs") || j["jobs"].empty()) {
    std::fprintf(stderr, "bench_reader: fio gave no JSON result\n");
    return nullptr;
  }
  const nlohmann::json& rd = j["jobs"][0]["read"];
  const double bytes = rd.value("io_bytes", 0.0), bw = rd.value("bw_bytes", 0.0);
  return {{"bench", "reader"},
          {"impl", direct ? "fio_direct" : "fio"},
          {"mode", cold ? "cold" : "warm"},
          {"bytes", bytes},
          {"seconds", bytes / bw},
          {"gb_per_s", bw / 1e9},
          {"jobs", jobs},
          {"block_mib", 4},
          {"ioengine", "psync"}};
}

// One epoch of a fresh reader; with later_epoch, its second epoch (the first untimed): a training
// run's steady state, where the normalisation's statistics are kept from the first. Of that second
// epoch, the first `prefetch` batches are taken untimed: the workers read them ahead during the
// first epoch, before the file was evicted (cold), so timing them would count bytes never read from
// the disk (until 2026-12-05 they were timed: cold later epochs then looked up to prefetch/batches
// per epoch faster than they were, 3/13 with the usual 52 samples in batches of 4).
nlohmann::ordered_json measure_reader(const SampleSet& set, const SampleReaderOptions& o, bool cold,
                                      const char* impl = "seisseg", bool later_epoch = false) {
  if (cold) evict_set(set);
  // Setup (allocating and touching the pinned slots) is timed apart: a training run pays it once.
  const double t_setup = now_s();
  SampleReader reader(set, o);
  int64_t timed = reader.batches_per_epoch();
  if (later_epoch) {
    for (int64_t b = 0; b < reader.batches_per_epoch(); ++b) reader.next_host();
    if (cold) evict_set(set);
    const int64_t ahead = std::min<int64_t>(o.prefetch, timed - 1);
    for (int64_t b = 0; b < ahead; ++b) reader.next_host();
    timed -= ahead;
    reader.take_stats();
  }
  // Bytes read with O_DIRECT straight into the slots, no copy (aligned chunks: H5SampleFile).
  auto in_place = [&] {
    int64_t b = 0;
    for (int f = 0; f < set.num_files(); ++f) b += set.file(f).direct_bytes_in_place();
    return b;
  };
  const int64_t reused_before = reader.norm_stats_reused(), stored_before = reader.norm_stats_stored();
  const int64_t in_place_before = in_place();
  const double t0 = now_s();
  int64_t samples = 0;
  for (int64_t b = 0; b < timed; ++b) samples += reader.next_host().size;
  const double s = now_s() - t0;
  const ReaderStats st = reader.stats();
  return {{"bench", "reader"},
          {"impl", impl},
          {"mode", cold ? "cold" : "warm"},
          {"samples", samples},
          {"bytes", st.bytes_read},
          {"seconds", s},
          {"samples_per_s", static_cast<double>(samples) / s},
          {"gb_per_s", static_cast<double>(st.bytes_read) / s / 1e9},
          {"threads", o.threads},
          {"prefetch", o.prefetch},
          {"batch", o.batch},
          {"normalize", normalize_name(o.normalize)},
          {"flip", o.augment.flip_receivers},
          {"max_shift", o.augment.max_shift},
          {"dtype", o.dtype == DType::bf16 ? "bf16" : "f32"},
          {"will_need", o.will_need},
          {"simd", simd_level_name(simd_level())},
          {"pinned_slot_bytes", reader.slot_bytes()},
          {"setup_seconds", t0 - t_setup},
          {"wait_fraction", st.wait_fraction()},
          {"norm_stats_reused", reader.norm_stats_reused() - reused_before},
          {"file_norm_stats", set.file(0).info().has_trace_norm},
          {"use_stored_stats", o.use_stored_stats},
          {"norm_stats_stored", reader.norm_stats_stored() - stored_before},
          {"direct_bytes_in_place", in_place() - in_place_before},
          {"files", set.num_files()},
          {"max_open_files", set.max_open_files()}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_reader: SampleReader against a raw read, an h5py generator and a PyTorch DataLoader"};
  std::string file = "/tmp/seisseg_bench_reader.h5", python = "/usr/bin/python3", normalize = "none";
  int64_t samples = 52, size = 4096, batch = 4, max_shift = 0;
  int threads = 0, prefetch = 3, workers = 2;
  bool no_peers = false, keep = false, without_willneed = false, willneed_first = false, sparse_raw = false;
  bool flip = false, bf16_batches = false, no_norm_stats = false, without_stored = false, also_direct = false;
  double sparse_gb = 0;
  int64_t also_split = 0;
  app.add_option("--file", file, "HDF5 file to read; created (and deleted after) when missing")->capture_default_str();
  app.add_option("--samples", samples, "samples of a created file")->capture_default_str();
  app.add_option("--size", size, "H = W of a created file")->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--threads", threads, "reader worker threads (0: min(4, cores))")->capture_default_str();
  app.add_option("--prefetch", prefetch)->capture_default_str();
  app.add_option("--normalize", normalize, "trace, sample or none")->capture_default_str();
  app.add_flag("--flip", flip,
               "seisseg's readers flip the receiver axis at random (train --flip; the Python peers do not)");
  app.add_option("--max-shift", max_shift,
                 "seisseg's readers shift each gather in time by up to this many samples (train --max-shift)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--bf16", bf16_batches, "seisseg's readers write bf16 batches (train --precision bf16)");
  app.add_option("--workers", workers, "DataLoader workers")->capture_default_str();
  app.add_option("--python", python, "the Python with h5py and torch")->capture_default_str();
  app.add_flag("--no-peers", no_peers, "skip the Python peers");
  app.add_flag("--also-without-willneed", without_willneed,
               "also time the reader without its posix_fadvise(WILLNEED) hints (impl seisseg_no_willneed)");
  app.add_flag("--willneed-first", willneed_first,
               "with --also-without-willneed: time the reader with hints before the one without");
  app.add_flag("--keep", keep, "keep a created file");
  app.add_flag("--also-direct", also_direct, "also time seisseg's readers with O_DIRECT reads (direct_io)");
  app.add_flag("--no-norm-stats", no_norm_stats,
               "create the file without its normalisation statistics (/trace_norm, /sample_norm)");
  app.add_flag("--also-without-stored-stats", without_stored,
               "also time a first epoch that ignores the file's stored statistics (impl seisseg_no_stored_stats)");
  app.add_option("--sparse-gb", sparse_gb,
                 "create the file sparse with this many GB of samples of --size (allocated, never written) and "
                 "stream it once: raw, raw_slots and the reader, with peak resident memory")
      ->check(CLI::PositiveNumber);
  app.add_flag("--sparse-raw", sparse_raw, "with --sparse-gb: also time raw (one thread's sequential read)");
  app.add_option("--also-split", also_split,
                 "also write the samples as K files (<file>.split-K/) and time the reader on them, with the default "
                 "bound on open files and with 2 (impl seisseg_split, seisseg_split_max_open_2)")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  bool created = false;
  std::vector<std::string> split_paths;
  std::string split_dir;
  auto remove_split = [&] {
    for (const std::string& f : split_paths) std::remove(f.c_str());
    if (!split_dir.empty()) ::rmdir(split_dir.c_str());
  };
  try {
    if (!parse_cli(app, argc, argv)) return 0;
    if (also_split > 0 && sparse_gb > 0) {
      throw UsageError("--also-split is for files read cold and warm, not with --sparse-gb");
    }
    if (sparse_gb > 0)
      samples = static_cast<int64_t>(std::ceil(sparse_gb * 1e9 / static_cast<double>(size * size * 5)));
    if (!file_exists(file)) {
      const double t0 = now_s();
      if (sparse_gb > 0) {
        create_sparse_file(file, samples, size, !no_norm_stats);
      } else {
        create_file(file, samples, size, !no_norm_stats);
      }
      created = true;
      struct stat st {};
      ::stat(file.c_str(), &st);
      nlohmann::ordered_json rec = {
          {"bench", "reader_file"},   {"file", file},
          {"created", true},          {"sparse", sparse_gb > 0},
          {"samples", samples},       {"size", size},
          {"bytes", file_size(file)}, {"bytes_on_disk", static_cast<int64_t>(st.st_blocks) * 512},
          {"seconds", now_s() - t0}};
      std::printf("%s\n", rec.dump().c_str());
      std::fflush(stdout);
    }
    SampleSet set({file});
    SampleReaderOptions o;
    o.batch = batch;
    o.threads =
        threads > 0 ? threads : static_cast<int>(std::min(4u, std::max(1u, std::thread::hardware_concurrency())));
    o.prefetch = prefetch;
    o.normalize = parse_normalize(normalize);
    o.augment.flip_receivers = flip;
    o.augment.max_shift = max_shift;
    if (bf16_batches) o.dtype = DType::bf16;
    std::unique_ptr<SampleSet> split, split_bounded;
    if (also_split > 0) {
      split_dir = file + ".split-" + std::to_string(also_split);
      const double t0 = now_s();
      write_split(set, also_split, split_dir, &split_paths);
      split = std::make_unique<SampleSet>(split_paths);
      split_bounded = std::make_unique<SampleSet>(split_paths, 2);
      int64_t bytes = 0;
      for (const std::string& f : split_paths) bytes += file_size(f);
      const nlohmann::ordered_json rec = {{"bench", "reader_split_files"},
                                          {"dir", split_dir},
                                          {"files", also_split},
                                          {"bytes", bytes},
                                          {"seconds", now_s() - t0}};
      std::printf("%s\n", rec.dump().c_str());
      std::fflush(stdout);
    }
    std::string script = "benchmarks/reader_peers.py";
    if (!file_exists(script)) script = std::string(SEIS_SOURCE_DIR) + "/" + script;

    if (sparse_gb > 0) {
      // One pass of each, peak resident memory over each.
      std::map<std::string, double> gbs;
      auto emit = [&](nlohmann::ordered_json rec) {
        rec["mode"] = "sparse";
        rec["peak_rss_bytes"] = peak_rss_bytes();
        std::printf("%s\n", rec.dump().c_str());
        std::fflush(stdout);
        gbs[rec["impl"].get<std::string>()] = rec["gb_per_s"].get<double>();
      };
      if (sparse_raw) {
        reset_peak_rss();
        emit(measure_raw(file, true));
      }
      reset_peak_rss();
      const nlohmann::ordered_json slots = measure_raw_slots(file, set, o, true);
      if (!slots.is_null()) emit(slots);
      reset_peak_rss();
      emit(measure_reader(set, o, true));
      if (without_stored) {
        SampleReaderOptions own = o;
        own.use_stored_stats = false;
        reset_peak_rss();
        emit(measure_reader(set, own, true, "seisseg_no_stored_stats"));
      }
      if (also_direct) {
        reset_peak_rss();
        const nlohmann::ordered_json raw_direct = measure_raw_slots(file, set, o, true, true);
        if (!raw_direct.is_null()) emit(raw_direct);
        SampleReaderOptions direct = o;
        direct.direct_io = true;
        direct.direct_into_place = false;
        reset_peak_rss();
        emit(measure_reader(set, direct, true, "seisseg_direct_copied"));
        direct.direct_into_place = true;
        reset_peak_rss();
        emit(measure_reader(set, direct, true, "seisseg_direct"));
      }
      nlohmann::ordered_json ratio = {{"bench", "reader_ratio"}, {"mode", "sparse"}};
      for (const char* peer : {"raw", "raw_slots", "seisseg_no_stored_stats"}) {
        if (gbs.count(peer) && gbs[peer] > 0) ratio[std::string("seisseg_over_") + peer] = gbs["seisseg"] / gbs[peer];
      }
      for (const char* peer : {"raw_slots", "raw_slots_direct", "seisseg_direct_copied"}) {
        if (gbs.count("seisseg_direct") && gbs.count(peer) && gbs[peer] > 0) {
          ratio[std::string("seisseg_direct_over_") + peer] = gbs["seisseg_direct"] / gbs[peer];
        }
      }
      std::printf("%s\n", ratio.dump().c_str());
    }
    for (bool cold : {true, false}) {
      if (sparse_gb > 0) break;
      const char* mode = cold ? "cold" : "warm";
      if (!cold) measure_raw(file, false);  // brings the file into the page cache
      std::map<std::string, double> gbs;
      auto emit = [&](const nlohmann::ordered_json& rec) {
        std::printf("%s\n", rec.dump().c_str());
        std::fflush(stdout);
        gbs[rec["impl"].get<std::string>()] = rec["gb_per_s"].get<double>();
      };
      emit(measure_raw(file, cold));
      const nlohmann::ordered_json slots = measure_raw_slots(file, set, o, cold);
      if (!slots.is_null()) emit(slots);
      const nlohmann::ordered_json fio = measure_fio(file, o.threads, cold);
      if (!fio.is_null()) emit(fio);
      if (cold) {
        // Would O_DIRECT reads into the slots (issue 13) beat the page cache on this disk?
        const nlohmann::ordered_json direct = measure_fio(file, o.threads, cold, true);
        if (!direct.is_null()) emit(direct);
        if (also_direct) {
          const nlohmann::ordered_json raw_direct = measure_raw_slots(file, set, o, cold, true);
          if (!raw_direct.is_null()) emit(raw_direct);
        }
      }
      // Without the hints first, or second with --willneed-first: the two orders tell an order effect
      // (e.g. reclaim after the peers) from the hints' own.
      SampleReaderOptions plain = o;
      plain.will_need = false;
      if (without_willneed && !willneed_first) emit(measure_reader(set, plain, cold, "seisseg_no_willneed"));
      emit(measure_reader(set, o, cold));
      if (without_stored) {
        SampleReaderOptions own = o;
        own.use_stored_stats = false;
        emit(measure_reader(set, own, cold, "seisseg_no_stored_stats"));
      }
      if (without_willneed && willneed_first) emit(measure_reader(set, plain, cold, "seisseg_no_willneed"));
      // A training run's later epochs: the statistics kept, each block normalised as it arrives
      // (cold: the file evicted again after the first epoch, as a dataset larger than memory is).
      emit(measure_reader(set, o, cold, "seisseg_later_epoch", true));
      if (split) {
        // The same samples as many files (warm: each read once into the page cache first).
        if (!cold) {
          for (const std::string& f : split_paths) bench::raw_read(f);
        }
        emit(measure_reader(*split, o, cold, "seisseg_split"));
        emit(measure_reader(*split_bounded, o, cold, "seisseg_split_max_open_2"));
      }
      if (also_direct) {
        // The same around the page cache (O_DIRECT, 4 MiB blocks): against fio_direct cold; warm,
        // it reads the disk again where the others read the page cache.
        // First through the workers' buffers only (copied to the slots), as before the reads went
        // straight into aligned slots: the gain of that, in the same run.
        SampleReaderOptions direct = o;
        direct.direct_io = true;
        direct.direct_into_place = false;
        emit(measure_reader(set, direct, cold, "seisseg_direct_copied"));
        direct.direct_into_place = true;
        emit(measure_reader(set, direct, cold, "seisseg_direct"));
        emit(measure_reader(set, direct, cold, "seisseg_direct_later_epoch", true));
      }
      if (!no_peers) {
        for (const char* impl : {"h5py_generator", "dataloader"}) {
          const std::string cmd = python + " " + script + " --file " + file + " --impl " + impl + " --batch " +
                                  std::to_string(batch) + " --workers " + std::to_string(workers) +
                                  (cold ? " --cold" : "") + " 2>&1";
          const std::string out = run_capture(cmd);
          size_t start = 0;
          while (start < out.size()) {
            const size_t end = out.find('\n', start);
            const std::string line = out.substr(start, end == std::string::npos ? std::string::npos : end - start);
            start = end == std::string::npos ? out.size() : end + 1;
            nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
            if (j.is_discarded() || !j.is_object() || !j.contains("gb_per_s")) {
              if (!line.empty()) std::fprintf(stderr, "reader_peers.py: %s\n", line.c_str());
              continue;
            }
            emit(j);
          }
        }
      }
      nlohmann::ordered_json ratio = {{"bench", "reader_ratio"}, {"mode", mode}};
      const double ours = gbs["seisseg"];
      for (const char* peer : {"raw", "raw_slots", "fio", "seisseg_no_willneed", "seisseg_no_stored_stats",
                               "h5py_generator", "dataloader"}) {
        if (gbs.count(peer) && gbs[peer] > 0) ratio[std::string("seisseg_over_") + peer] = ours / gbs[peer];
      }
      if (gbs.count("fio_direct") && gbs.count("fio") && gbs["fio"] > 0) {
        ratio["fio_direct_over_fio"] = gbs["fio_direct"] / gbs["fio"];
      }
      for (const char* ours_too : {"seisseg_later_epoch", "seisseg_no_stored_stats", "seisseg_direct",
                                   "seisseg_direct_later_epoch", "seisseg_split", "seisseg_split_max_open_2"}) {
        for (const char* peer : {"raw_slots", "fio_direct", "raw_slots_direct", "seisseg_direct_copied", "seisseg"}) {
          if (std::string(peer) == "seisseg" && std::string(ours_too).rfind("seisseg_split", 0) != 0) continue;
          if (gbs.count(ours_too) && gbs.count(peer) && gbs[peer] > 0) {
            ratio[std::string(ours_too) + "_over_" + peer] = gbs[ours_too] / gbs[peer];
          }
        }
      }
      std::printf("%s\n", ratio.dump().c_str());
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_reader: %s\n", e.what());
    if (!keep) remove_split();
    if (created && !keep) std::remove(file.c_str());
    return 1;
  }
  if (!keep) remove_split();
  if (created && !keep) std::remove(file.c_str());
  return 0;
}
