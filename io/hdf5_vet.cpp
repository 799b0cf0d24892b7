// Vetting HDF5 files in a child process (see hdf5_vet.h).
#include "io/hdf5_vet.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "engine/error.h"
#include "io/hdf5_dataset.h"
#include "io/hdf5_record.h"
#include "io/hdf5_table.h"
#include "io/hdf5_util.h"
#include "io/segy_headers.h"
#include "io/synth_file.h"

namespace seis {

namespace {

bool g_in_vet_child = false;

// Links under the root that the generic walk visits (the dataset format has a handful).
constexpr size_t kMaxLinks = 1024;
// The largest gather or record row the child reads through the library (bytes of float32).
constexpr int64_t kMaxReadBytes = int64_t{256} << 20;
// The memory the child may use beyond what it had at the fork while it reads metadata (everything
// but those reads, which may use kH5VetMemoryBudgetBytes): a file's metadata needs a few MB, and a
// damaged one can ask for gigabytes (a variable-length string claiming 2^31 bytes, which the
// library allocates and zeroes before it reads the string).
constexpr int64_t kMetadataBudgetBytes = int64_t{256} << 20;

// The child's address space at the fork (0: unknown, no limits set).
rlim_t g_base_address_space = 0;

// Sets the soft limit of the child's address space to its size at the fork plus budget (at most
// the hard limit that h5_run_vetting_child set).
void set_memory_budget(int64_t budget) {
  if (g_base_address_space == 0) return;
  struct rlimit as {};
  if (::getrlimit(RLIMIT_AS, &as) != 0) return;
  const rlim_t want = g_base_address_space + static_cast<rlim_t>(budget);
  as.rlim_cur = as.rlim_max == RLIM_INFINITY ? want : std::min(want, as.rlim_max);
  ::setrlimit(RLIMIT_AS, &as);
}

// Runs f, ignoring the errors it reports: the child looks for crashes and hangs only.
template <typename F>
void attempt(F&& f) {
  try {
    f();
  } catch (...) {
  }
}

// A datatype through the library: class, size, and for a compound each member's name and type.
void walk_type(hid_t t, int depth) {
  const H5T_class_t cls = H5Tget_class(t);
  H5Tget_size(t);
  if (cls == H5T_COMPOUND && depth < 4) {
    const int n = H5Tget_nmembers(t);
    for (int k = 0; k < std::min(n, 256); ++k) {
      char* name = H5Tget_member_name(t, static_cast<unsigned>(k));
      if (name != nullptr) H5free_memory(name);
      H5Tget_member_class(t, static_cast<unsigned>(k));
      H5Tget_member_offset(t, static_cast<unsigned>(k));
      Hid m(H5Tget_member_type(t, static_cast<unsigned>(k)));
      if (m.ok()) walk_type(m.get(), depth + 1);
    }
  } else if ((cls == H5T_ENUM || cls == H5T_ARRAY || cls == H5T_VLEN) && depth < 4) {
    Hid base(H5Tget_super(t));
    if (base.ok()) walk_type(base.get(), depth + 1);
  } else if (cls == H5T_STRING) {
    H5Tis_variable_str(t);
  }
}

// A dataset through the library: type, shape, creation properties (layout, filters, chunk shape),
// its chunk index (every allocated chunk counted), storage and attributes.
void walk_dataset(hid_t d) {
  Hid t(H5Dget_type(d));
  if (t.ok()) walk_type(t.get(), 0);
  Hid s(H5Dget_space(d));
  const int rank = s.ok() ? H5Sget_simple_extent_ndims(s.get()) : -1;
  if (rank >= 0 && rank <= 32) {
    std::vector<hsize_t> dims(static_cast<size_t>(rank) + 1);
    H5Sget_simple_extent_dims(s.get(), dims.data(), nullptr);
  }
  Hid dcpl(H5Dget_create_plist(d));
  if (dcpl.ok()) {
    filters_str(dcpl.get());
    if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED && rank > 0 && rank <= 32) {
      std::vector<hsize_t> chunk(static_cast<size_t>(rank));
      H5Pget_chunk(dcpl.get(), rank, chunk.data());
      hsize_t nchunks = 0;
      H5Dget_num_chunks(d, s.get(), &nchunks);
    }
  }
  H5Dget_offset(d);
  H5Dget_storage_size(d);
  h5_attributes_text(d);
  H5Eclear2(H5E_DEFAULT);
}

// Every object linked from the root group (up to kMaxLinks), with the root's attributes.
void walk_root(const std::string& path) {
  std::lock_guard<std::mutex> lock(h5_mutex());
  h5_quiet();
  int64_t bytes = 0;
  Hid file = h5_open_readonly(path, &bytes);
  Hid root(H5Gopen2(file.get(), "/", H5P_DEFAULT));
  if (!root.ok()) return;
  h5_attributes_text(root.get());
  std::vector<std::string> names;
  hsize_t idx = 0;
  H5Literate(
      root.get(), H5_INDEX_NAME, H5_ITER_INC, &idx,
      [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
        auto* v = static_cast<std::vector<std::string>*>(data);
        v->emplace_back(name);
        return v->size() >= kMaxLinks ? 1 : 0;
      },
      &names);
  H5Eclear2(H5E_DEFAULT);
  for (const std::string& name : names) {
    Hid o(H5Oopen(root.get(), name.c_str(), H5P_DEFAULT));
    if (!o.ok()) continue;
    const H5I_type_t type = H5Iget_type(o.get());
    if (type == H5I_DATASET) {
      walk_dataset(o.get());
    } else if (type == H5I_GROUP) {
      h5_attributes_text(o.get());
    } else if (type == H5I_DATATYPE) {
      walk_type(o.get(), 0);
    }
    H5Eclear2(H5E_DEFAULT);
  }
}

// The first and last rows of a table, if the file has it.
void walk_table(const std::string& path, const H5TableSpec& spec) {
  H5TableReader table(path, spec);
  if (!table.exists() || table.rows() == 0) return;
  std::vector<uint8_t> row(spec.row_bytes);
  table.read(0, 1, row.data());
  table.read(table.rows() - 1, 1, row.data());
}

// What this process does with a file's metadata (hdf5_vet.h), in the child.
void walk(const std::string& path) {
  int64_t n = 0, width = 0;
  attempt([&] {
    if (h5_is_record(path)) {
      const H5RecordFile f(path);
      const H5RecordInfo& in = f.info();
      if (in.receivers > kMaxReadBytes / 4) return;
      set_memory_budget(kH5VetMemoryBudgetBytes);
      std::vector<float> data(static_cast<size_t>(in.receivers));
      std::vector<uint8_t> label(data.size());
      f.read_rows(0, 1, data.data(), label.data());
      f.read_rows(in.samples - 1, 1, data.data(), label.data());
      return;
    }
    const H5SampleFile f(path);
    const H5DatasetInfo& in = f.info();
    n = in.n;
    width = in.width;
    const bool has_label = in.label_type != H5ElemType::none;
    const bool library_reads = !in.data_direct || (has_label && !in.label_direct);
    if (!library_reads || static_cast<long double>(in.height) * in.width * 4 > kMaxReadBytes) return;
    set_memory_budget(kH5VetMemoryBudgetBytes);
    std::vector<float> data(static_cast<size_t>(in.height * in.width));
    std::vector<uint8_t> label(data.size());
    f.read(0, data.data(), label.data());
    f.read(in.n - 1, data.data(), label.data());
  });
  // The stored normalisation statistics of the first and last gathers, as the reader reads them.
  attempt([&] {
    if (n <= 0 || width <= 0 || width > kMaxReadBytes / 8) return;
    const H5SampleFile f(path);
    if (!f.info().has_trace_norm && !f.info().has_sample_norm) return;
    set_memory_budget(kH5VetMemoryBudgetBytes);
    GatherNormalizer::Stats st;
    for (const Normalize m : {Normalize::trace, Normalize::sample}) {
      f.stored_norm_stats(0, m, &st);
      f.stored_norm_stats(n - 1, m, &st);
    }
  });
  set_memory_budget(kMetadataBudgetBytes);
  attempt([&] { walk_table(path, synth_pick_table()); });
  attempt([&] { walk_table(path, synth_event_table()); });
  attempt([&] { walk_table(path, segy_header_table()); });
  // The SEG-Y headers of gather 0 as predict and detect read them: a mask of `width` bytes and up
  // to `width` 240-byte rows, so not for a gather wider than the child reads (a 1.5 KB file can
  // declare 2^32 traces of nothing; the commands refuse it, and asking for it here only runs the
  // child out of memory).
  if (n > 0 && width > 0 && width <= kMaxReadBytes / kSegyTraceHeaderBytes) {
    attempt([&] {
      SegyHeadersFile h(path, n, width);
      if (h.has_raw()) {
        h.text_header();
        h.binary_header();
      }
      h.begin(0);
    });
  }
  attempt([&] { walk_root(path); });
}

// Limits the address space of this process (the child) to its present size plus budget bytes: an
// allocation past it fails at once instead of taking the machine's memory.
void limit_address_space(int64_t budget) {
  char buf[128] = {};
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return;
  const long long pages = std::strtoll(buf, nullptr, 10);  // the first field: total program size
  const long page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return;
  const rlim_t base = static_cast<rlim_t>(pages) * static_cast<rlim_t>(page);
  const rlim_t limit = base + static_cast<rlim_t>(budget);
  struct rlimit now {};
  if (::getrlimit(RLIMIT_AS, &now) == 0 && now.rlim_max != RLIM_INFINITY && now.rlim_max < limit) return;
  const struct rlimit as = {limit, limit};
  if (::setrlimit(RLIMIT_AS, &as) == 0) g_base_address_space = base;
}

// Set in the child when the library reports a failed allocation (no space, cannot allocate),
// whatever our code then does with the error.
bool g_allocation_failed = false;

herr_t note_allocation_failure(hid_t stack, void*) {
  H5Ewalk2(
      stack, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void*) -> herr_t {
        if (e->min_num == H5E_NOSPACE || e->min_num == H5E_CANTALLOC) {
          g_allocation_failed = true;
        }
        return 0;
      },
      nullptr);
  return 0;
}

double vet_timeout_seconds() {
  const char* env = std::getenv("SEISSEG_HDF5_VET_TIMEOUT");
  if (env != nullptr) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    if (end != env && *end == '\0' && v > 0 && std::isfinite(v)) return v;
  }
  return kH5VetTimeoutSeconds;
}

}  // namespace

bool h5_in_vet_child() { return g_in_vet_child; }

void h5_become_vetting_child(int64_t memory_budget_bytes) {
  g_in_vet_child = true;
  const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
  }
  const struct rlimit no_core = {0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  limit_address_space(memory_budget_bytes);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP, SIGALRM}) ::signal(sig, SIG_DFL);
}

bool h5_vet_walk(const std::string& path) {
  g_allocation_failed = false;
  H5Eset_auto2(H5E_DEFAULT, note_allocation_failure, nullptr);
  set_memory_budget(kMetadataBudgetBytes);
  walk(path);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  return !g_allocation_failed;
}

H5VetOutcome h5_run_vetting_child(const std::function<bool()>& walk_fn, double timeout_seconds,
                                  int64_t memory_budget_bytes) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw InputError(std::string("pipe: ") + std::strerror(errno));
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw InputError(std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    // The child: async-signal-safe calls, then the walk, then one byte that says it finished.
    ::close(fds[0]);
    h5_become_vetting_child(memory_budget_bytes);
    // Its own deadline too, should the parent be gone.
    ::alarm(static_cast<unsigned>(std::min(std::ceil(timeout_seconds) + 1, double{UINT_MAX / 2})));
    bool ok = true;
    try {
      ok = walk_fn();
    } catch (...) {
    }
    const char done = ok ? 'k' : 'r';
    const ssize_t w = ::write(fds[1], &done, 1);
    ::_exit(w == 1 ? 0 : 3);
  }
  ::close(fds[1]);
  H5VetOutcome r;
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(timeout_seconds));
  bool finished = false, killed = false;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    struct pollfd p = {fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count() + 1, 60000)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready > 0) {
      char c = 0;
      ssize_t got;
      do {
        got = ::read(fds[0], &c, 1);
      } while (got < 0 && errno == EINTR);
      finished = got == 1 && (c == 'k' || c == 'r');
      if (got == 1 && c == 'r') r.kind = H5VetOutcome::refused;
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  pid_t waited;
  do {
    waited = ::waitpid(pid, &status, 0);
  } while (waited < 0 && errno == EINTR);
  if (finished) return r;
  const int sig = waited == pid && WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  if (killed || sig == SIGALRM) {
    r.kind = H5VetOutcome::timed_out;
  } else {
    r.kind = H5VetOutcome::signalled;
    r.signal = sig;
  }
  return r;
}

void h5_vet(const std::string& path) {
  if (g_in_vet_child) return;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;  // (h5_open_readonly reports it)
  // Every outcome is kept: a file that failed is not walked (and waited for) twice.
  static std::map<std::string, std::string> vetted;  // identity -> "" or the error; under h5_mutex()
  const std::string key = path + '\0' + std::to_string(st.st_dev) + ':' + std::to_string(st.st_ino) + ':' +
                          std::to_string(st.st_size) + ':' + std::to_string(st.st_mtim.tv_sec) + '.' +
                          std::to_string(st.st_mtim.tv_nsec);
  auto it = vetted.find(key);
  if (it == vetted.end()) {
    const double timeout = vet_timeout_seconds();
    std::string error;
    bool keep = true;  // false for what may pass on a second try: an interrupted or unstarted check
    try {
      const H5VetOutcome o = h5_run_vetting_child([&] { return h5_vet_walk(path); }, timeout, kH5VetMemoryBudgetBytes);
      if (o.kind == H5VetOutcome::refused) {
        error = path + ": malformed HDF5 metadata (the HDF5 library asked for more memory than reading it can need)";
      } else if (o.kind == H5VetOutcome::timed_out) {
        char secs[32];
        std::snprintf(secs, sizeof secs, "%g", timeout);
        error = path + ": malformed HDF5 metadata (the HDF5 library did not finish reading it within " + secs + " s)";
      } else if (o.kind == H5VetOutcome::signalled) {
        if (o.signal == SIGINT || o.signal == SIGTERM || o.signal == SIGHUP) {
          error = path + ": checking its HDF5 metadata was interrupted (signal " + std::to_string(o.signal) + ")";
          keep = false;
        } else {
          error = path + ": malformed HDF5 metadata (the HDF5 library failed reading it)";
        }
      }
    } catch (const InputError& e) {
      error = path + ": cannot check its HDF5 metadata: " + e.what();
      keep = false;
    }
    if (!keep) throw InputError(error);
    it = vetted.emplace(key, error).first;
  }
  if (!it->second.empty()) throw InputError(it->second);
}

}  // namespace seis
