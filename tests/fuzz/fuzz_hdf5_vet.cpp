// Feeds: the input as an HDF5 file to io/hdf5_vet.cpp (h5_vet): a forked child opens and walks it with
// the library and our opening code (gathers or record, /picks, /events, /headers, the SEG-Y header
// datasets); HDF5 1.10 crashing or looping in the child is the expected outcome for damaged files,
// reported as one InputError line. One fork per input, so this target is slow (hundreds of inputs
// per second at most). Asserts: the parent never crashes or hangs and either clears the file or
// throws one InputError line naming it; and no sanitizer report from our own code in the child (its
// reports go to files under the work directory, read after each input; the library's own crashes,
// which ASan reports as SEGV and the like, are the expected outcome there).
#include <dirent.h>
#include <pthread.h>
#include <sanitizer/common_interface_defs.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "fuzz_util.h"
#include "io/hdf5_util.h"
#include "io/hdf5_vet.h"
#include "io/synth_file.h"

namespace {

std::string g_report_dir;
std::string g_report_prefix;

// In the vetting child only (an atfork handler): sanitizer reports to files, since its stderr is
// /dev/null.
void child_reports_to_files() { __sanitizer_set_report_path(g_report_prefix.c_str()); }

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
    const size_t hash = line.find_first_not_of(' ');
    if (hash == std::string::npos || line[hash] != '#' || line.find(" in ") == std::string::npos) continue;
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

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Damaged files that make the library loop are expected: find them in 3 s rather than 120 s.
  ::setenv("SEISSEG_HDF5_VET_TIMEOUT", "3", 0);
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
  // A new name each time: h5_vet remembers the files it has vetted.
  static int64_t counter = 0;
  const std::string path = seis::fuzz::work_dir() + "/input_" + std::to_string(counter++) + ".h5";
  seis::fuzz::write_file(path, data, size);
  try {
    std::lock_guard<std::mutex> lock(seis::h5_mutex());
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
  ::unlink(path.c_str());
  check_child_reports();
  return 0;
}
