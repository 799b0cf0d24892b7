// Feeds: the input as an HDF5 file to the vetting of io/hdf5_vet.cpp: the walk that h5_vet's child
// makes (our opening code for gathers or a record, /picks, /events, /headers, the SEG-Y header
// datasets, then every object under the root through the library), in a child process, where HDF5
// 1.10 crashing, looping or asking for absurd memory is the expected outcome for damaged files.
//
// One persistent child vets input after input (a fork server, as AFL's): it is forked again only
// when it dies, times out or has vetted kServerInputs files, so that the rate is set by the walk,
// not by forking an ASan process (a fork per input ran at 1-40 inputs per second). The child zeroes
// the coverage counters before each walk and sends them back with its verdict; they are added to
// this process's, so libFuzzer is guided by the coverage of the walk although it runs in another
// process. Every input the child did not clear (it died or refused the file) then goes through
// h5_vet itself, the production check with a fresh child per file, so that its outcome for the
// files that matter is checked as the product meets them.
//
// Asserts: this process never crashes or hangs; h5_vet either clears a file or throws one InputError
// line naming it; and no sanitizer report from our own code in a child (their reports go to files
// under the work directory, read after each input; the library's own crashes, which ASan reports
// as SEGV and the like, are the expected outcome there).
#include <dirent.h>
#include <elf.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <sanitizer/common_interface_defs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "io/hdf5_util.h"
#include "io/hdf5_vet.h"
#include "io/synth_file.h"

namespace {

std::string g_report_dir;
// Seconds a walk in the persistent child may take: damaged files that make the library loop are
// expected, so they are cut short after 0.25 s (a file the limit cuts short is a timeout, the
// expected outcome of a loop, never a finding). Over the 765 files of the corpus of 2026-12-04, with
// two fuzzers running on the 2-core machine, the walks that cleared a file took 4 ms (median) to
// 53 ms (the slowest, of a 420 KB file), and the 14 timeouts were half the run at a 1 s limit. A
// child that is writing a sanitizer report by then is given kReportSeconds to finish it.
constexpr double kWalkSeconds = 0.25, kReportSeconds = 60;
std::string g_report_prefix;

// In every child (an atfork handler): sanitizer reports to files, since a vetting child's stderr
// is /dev/null; and no libFuzzer death callback, which would save the input as a crash of this
// target each time the library dies in a child (only this process's verdict counts).
void child_reports_to_files() {
  __sanitizer_set_report_path(g_report_prefix.c_str());
  __sanitizer_set_death_callback(nullptr);
}

// Whether the first frame of the report's first stack that is not the sanitizer's own (its
// interceptors and runtime) lies in libhdf5: the library failing on the file by itself, e.g. a
// memcpy-param-overlap in H5HG_read of a global heap object whose length is garbage.
bool first_frame_in_library(const std::string& report) {
  const size_t error = report.find("ERROR: ");
  size_t at = error == std::string::npos ? 0 : error;
  while (at < report.size()) {
    size_t end = report.find('\n', at);
    if (end == std::string::npos) end = report.size();
    const std::string line = report.substr(at, end - at);
    at = end + 1;
    // A frame: "#N 0x... in function (module+offset)", or without " in function" where the module
    // has no symbol for it (libhdf5's static functions).
    const size_t hash = line.find_first_not_of(' ');
    if (hash == std::string::npos || line[hash] != '#' || hash + 1 >= line.size() ||
        std::isdigit(static_cast<unsigned char>(line[hash + 1])) == 0) {
      continue;
    }
    // (Frames of this binary without a source line are the sanitizer's: malloc, memcpy and the like.)
    bool runtime = false;
    for (const char* own :
         {"__interceptor_", "__asan", "__sanitizer", "__ubsan", "__lsan", "__interception", "fuzz_hdf5_vet+0x"}) {
      runtime = runtime || line.find(own) != std::string::npos;
    }
    if (runtime) continue;
    return line.find("libhdf5") != std::string::npos;
  }
  return false;
}

// A child report that is not the library crashing: a memory error, undefined behaviour or a leak in
// code we compiled.
bool is_finding(const std::string& report) {
  if (first_frame_in_library(report)) return false;
  for (const char* expected :
       {"AddressSanitizer: SEGV", "AddressSanitizer: BUS", "AddressSanitizer: FPE", "AddressSanitizer: ILL",
        "AddressSanitizer: ABRT", "AddressSanitizer: stack-overflow", "AddressSanitizer: out of memory",
        "AddressSanitizer: requested allocation size", "AddressSanitizer: allocation-size-too-big",
        "AddressSanitizer failed to allocate", "AddressSanitizer: calloc-overflow"}) {
    if (report.find(expected) != std::string::npos) return false;
  }
  return true;
}

void check_child_reports() {
  DIR* d = ::opendir(g_report_dir.c_str());
  if (d == nullptr) return;
  bool finding = false;
  while (const dirent* e = ::readdir(d)) {
    if (std::strncmp(e->d_name, "child.", 6) != 0) continue;
    const std::string path = g_report_dir + "/" + e->d_name;
    const std::string report = seis::fuzz::read_file(path);
    if (is_finding(report)) {
      std::fprintf(stderr, "fuzz finding: a sanitizer report in the vetting child:\n%s\n", report.c_str());
      finding = true;
    }
    ::unlink(path.c_str());
  }
  ::closedir(d);
  if (finding) std::abort();
}

// The coverage counters of this binary (-fsanitize=fuzzer's inline 8-bit counters): its section
// __sancov_cntrs, found in its own section headers and moved by the load address. (The linker's
// __start___sancov_cntrs would name it too, but declaring that symbol here stops the compiler's
// registration of the counters with libFuzzer.)
struct Counters {
  uint8_t* begin = nullptr;
  size_t size = 0;
};

Counters find_counters() {
  Counters c;
  uintptr_t bias = 0;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        *static_cast<uintptr_t*>(data) = info->dlpi_addr;  // the first object is the program itself
        return 1;
      },
      &bias);
  const std::string exe = seis::fuzz::read_file("/proc/self/exe");
  Elf64_Ehdr eh;
  if (exe.size() < sizeof eh) return c;
  std::memcpy(&eh, exe.data(), sizeof eh);
  auto section = [&](size_t i, Elf64_Shdr* sh) {
    const size_t at = eh.e_shoff + i * sizeof(Elf64_Shdr);
    if (at + sizeof(Elf64_Shdr) > exe.size()) return false;
    std::memcpy(sh, exe.data() + at, sizeof *sh);
    return true;
  };
  Elf64_Shdr names;
  if (!section(eh.e_shstrndx, &names)) return c;
  for (size_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh;
    if (!section(i, &sh) || names.sh_offset + sh.sh_name >= exe.size()) continue;
    if (std::strcmp(exe.c_str() + names.sh_offset + sh.sh_name, "__sancov_cntrs") == 0) {
      c.begin = reinterpret_cast<uint8_t*>(bias + sh.sh_addr);
      c.size = sh.sh_size;
    }
  }
  return c;
}

Counters g_counters;

bool read_full(int fd, void* p, size_t n) {
  auto* b = static_cast<uint8_t*>(p);
  while (n > 0) {
    const ssize_t got = ::read(fd, b, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    b += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

bool write_full(int fd, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    const ssize_t put = ::write(fd, b, n);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return false;
    b += put;
    n -= static_cast<size_t>(put);
  }
  return true;
}

// Whether child pid has begun a sanitizer report. Its report file alone does not say so: with
// allocator_may_return_null the sanitizer writes one warning line there for each allocation it
// refuses, and a library that retries a garbage size in a loop fills it with those while it loops
// (waiting kReportSeconds for such a child made the slowest inputs take a minute each).
bool writing_report(pid_t pid) {
  const std::string path = g_report_prefix + "." + std::to_string(pid);
  if (!std::filesystem::exists(path)) return false;
  const std::string text = seis::fuzz::read_file(path);
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.find("WARNING: AddressSanitizer failed to allocate") == std::string::npos) return true;
  }
  // Only refused allocations so far; or nothing yet, when the file has just been opened for a report,
  // which is then given its time as well.
  return text.empty();
}

// The persistent vetting child: requests are a path (4-byte length, then its bytes); each answer is
// 'k' (the walk finished: cleared) or 'r' (the library failed to allocate: refused), then the
// counters of that walk.
class VetServer {
 public:
  enum Verdict { cleared, refused, died, timed_out };

  // Vets path; call with seis::h5_mutex() held (the child is forked with it held, as h5_vet does).
  Verdict vet(const std::string& path, double timeout_seconds) {
    if (pid_ > 0 && served_ >= kServerInputs) stop();
    if (pid_ <= 0) start(timeout_seconds);
    ++served_;
    const uint32_t len = static_cast<uint32_t>(path.size());
    if (!write_full(to_child_, &len, sizeof len) || !write_full(to_child_, path.data(), path.size())) {
      stop();
      return died;
    }
    struct pollfd p = {from_child_, POLLIN, 0};
    int ready;
    do {
      ready = ::poll(&p, 1, static_cast<int>(timeout_seconds * 1000));
    } while (ready < 0 && errno == EINTR);
    if (ready == 0 && writing_report(pid_)) {
      // The child is writing a sanitizer report: killing it now would cut the report short, and
      // could leave the symbolizer it shares with this process mid-answer.
      do {
        ready = ::poll(&p, 1, static_cast<int>(kReportSeconds * 1000));
      } while (ready < 0 && errno == EINTR);
    }
    if (ready == 0) {
      stop();
      return timed_out;
    }
    char verdict = 0;
    std::vector<uint8_t> counters(g_counters.size);
    if (ready < 0 || !read_full(from_child_, &verdict, 1) ||
        !read_full(from_child_, counters.data(), counters.size())) {
      stop();
      return died;
    }
    // The walk's coverage, as if it had run here.
    for (size_t i = 0; i < counters.size(); ++i) {
      g_counters.begin[i] = static_cast<uint8_t>(std::min(255, g_counters.begin[i] + counters[i]));
    }
    return verdict == 'k' ? cleared : refused;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::close(to_child_);
    ::close(from_child_);
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

 private:
  // Files one child vets before it is replaced: bounds what the library's state (and the ASan
  // quarantine, which counts against the child's memory limit) can carry from file to file.
  static constexpr int64_t kServerInputs = 500;

  void start(double timeout_seconds) {
    int req[2], resp[2];
    if (::pipe2(req, O_CLOEXEC) != 0 || ::pipe2(resp, O_CLOEXEC) != 0) {
      std::fprintf(stderr, "fuzz: pipe: %s\n", std::strerror(errno));
      std::abort();
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
      std::fprintf(stderr, "fuzz: fork: %s\n", std::strerror(errno));
      std::abort();
    }
    if (pid == 0) {
      ::close(req[1]);
      ::close(resp[0]);
      seis::h5_become_vetting_child(seis::kH5VetMemoryBudgetBytes);
      const unsigned alarm_s = static_cast<unsigned>(timeout_seconds + kReportSeconds) + 2;
      for (;;) {
        uint32_t n = 0;
        if (!read_full(req[0], &n, sizeof n)) ::_exit(0);
        std::string file(n, '\0');
        if (!read_full(req[0], file.data(), n)) ::_exit(0);
        ::alarm(alarm_s);  // should this process be left behind
        std::fill(g_counters.begin, g_counters.begin + g_counters.size, uint8_t{0});
        bool ok = true;
        try {
          ok = seis::h5_vet_walk(file);
        } catch (...) {
        }
        ::alarm(0);
        const char verdict = ok ? 'k' : 'r';
        if (!write_full(resp[1], &verdict, 1) || !write_full(resp[1], g_counters.begin, g_counters.size)) {
          ::_exit(3);
        }
      }
    }
    ::close(req[0]);
    ::close(resp[1]);
    pid_ = pid;
    to_child_ = req[1];
    from_child_ = resp[0];
    served_ = 0;
  }

  pid_t pid_ = -1;
  int to_child_ = -1, from_child_ = -1;
  int64_t served_ = 0;
};

// The production check on path: clears it, or one InputError line naming it.
void check_h5_vet(const std::string& path) {
  try {
    seis::h5_vet(path);
  } catch (const seis::InputError& e) {
    const std::string what = e.what();
    if (what.find('\n') != std::string::npos || what.compare(0, path.size(), path) != 0) {
      std::fprintf(stderr, "fuzz finding: the vetting error is not one line naming the file: %s\n", what.c_str());
      std::abort();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz finding: unexpected exception %s: %s\n", typeid(e).name(), e.what());
    std::abort();
  }
}

}  // namespace

extern "C" const char* __asan_default_options() {
  // A smaller quarantine than ASan's 256 MB: the persistent child's freed memory counts against its
  // memory limit (256 MiB above its size at the fork while it reads metadata). An allocation past
  // that limit returns null, as glibc's malloc does in the product's vetting child, instead of
  // ending the child with a report: the library then reports that it could not allocate, and the
  // child refuses the file.
  return "quarantine_size_mb=32:allocator_may_return_null=1";
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // h5_vet's limit, for the files the persistent child refused or died on: 10 s rather than 120 s
  // (they fail at once; a loop has been cut short already), and longer than a child under load may
  // take to write its sanitizer report.
  ::setenv("SEISSEG_HDF5_VET_TIMEOUT", "10", 0);
  // Start the sanitizer's symbolizer (llvm-symbolizer, a process of its own) here: the children
  // inherit it with the program's symbols loaded, instead of starting their own for each report.
  char where[256];
  __sanitizer_symbolize_pc(reinterpret_cast<void*>(&LLVMFuzzerInitialize), "%F", where, sizeof where);
  // A write to a persistent child that has just died fails with EPIPE instead of ending this process.
  ::signal(SIGPIPE, SIG_IGN);
  g_counters = find_counters();
  if (g_counters.size == 0) {
    std::fprintf(stderr, "fuzz: no coverage counters (section __sancov_cntrs) in /proc/self/exe\n");
    std::abort();
  }
  g_report_dir = seis::fuzz::work_dir() + "/reports";
  std::filesystem::create_directories(g_report_dir);
  g_report_prefix = g_report_dir + "/child";
  ::pthread_atfork(nullptr, nullptr, child_reports_to_files);
  if (seis::fuzz::seed_dir() != nullptr) {
    // Small files as `seisseg synth` writes them: gathers with /picks and /events (uncompressed and
    // gzip), and a continuous record.
    seis::SynthConfig cfg;
    cfg.height = 16;
    cfg.width = 8;
    cfg.events_max = 2;
    const std::string tmp = seis::fuzz::work_dir() + "/seed.h5";
    seis::write_synth_file(tmp, cfg, 2, 1, 0, "0.1.0", false);
    seis::fuzz::write_seed("gathers.h5", seis::fuzz::read_file(tmp));
    seis::write_synth_file(tmp, cfg, 2, 1, 4, "0.1.0", false);
    seis::fuzz::write_seed("gathers_gzip.h5", seis::fuzz::read_file(tmp));
    seis::SynthRecordOptions ro;
    ro.samples = 64;
    ro.block_rows = 16;
    seis::write_synth_record(tmp, cfg, ro, 1, 0, "0.1.0", false);
    seis::fuzz::write_seed("record.h5", seis::fuzz::read_file(tmp));
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static VetServer server;
  static int64_t verdicts[4] = {};
  static const bool report_at_exit = [] {
    std::atexit([] {
      std::fprintf(stderr,
                   "fuzz_hdf5_vet: %lld cleared, %lld refused, %lld died, %lld timed out in the persistent child\n",
                   static_cast<long long>(verdicts[0]), static_cast<long long>(verdicts[1]),
                   static_cast<long long>(verdicts[2]), static_cast<long long>(verdicts[3]));
    });
    return true;
  }();
  (void)report_at_exit;
  // A new name each time: h5_vet remembers the files it has vetted.
  static int64_t counter = 0;
  const std::string path = seis::fuzz::work_dir() + "/input_" + std::to_string(counter++) + ".h5";
  seis::fuzz::write_file(path, data, size);
  {
    std::lock_guard<std::mutex> lock(seis::h5_mutex());
    const VetServer::Verdict v = server.vet(path, kWalkSeconds);
    ++verdicts[v];
    // A file the persistent child did not clear goes through the production check (not a file that
    // made the library loop: the check would only wait for its own time limit).
    if (v == VetServer::refused || v == VetServer::died) check_h5_vet(path);
  }
  ::unlink(path.c_str());
  check_child_reports();
  return 0;
}
