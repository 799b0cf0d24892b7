// SingleComm, MpiComm, the launcher detection and the communicator factory (see communicator.h).
#include "engine/communicator.h"

// Only MPI's C API is used: keep OpenMPI's and MPICH's C++ bindings out.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "engine/device_runtime.h"
#include "engine/error.h"
#include "engine/nccl_comm.h"

namespace seis {

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return end != nullptr && *end == '\0' && x >= 0 && x <= INT_MAX ? static_cast<int>(x) : fallback;
}

bool has_env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

[[noreturn]] void throw_mpi_error(const char* file, int line, const char* call, int code) {
  char msg[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(code, msg, &len) != MPI_SUCCESS) std::snprintf(msg, sizeof msg, "unknown");
  throw Error(std::string(file) + ":" + std::to_string(line) + ": MPI error " + std::to_string(code) + " (" + msg +
              ") in " + call);
}

// MPI errors return (MPI_ERRORS_RETURN on our communicators) and are thrown here.
#define MPI_CHECK(call)                                                 \
  do {                                                                  \
    const int seis_mpi_rc_ = (call);                                    \
    if (seis_mpi_rc_ != MPI_SUCCESS) {                                  \
      ::seis::throw_mpi_error(__FILE__, __LINE__, #call, seis_mpi_rc_); \
    }                                                                   \
  } while (0)

// MPI counts are int: long buffers go in pieces.
constexpr int64_t kMaxMpiCount = int64_t{1} << 30;

// The exit code (MPI_Abort's error code, which mpirun returns) of a job whose collective timed out.
constexpr int kHungExitCode = 1;

// The thread level MpiComm asks MPI for: MPI_THREAD_MULTIPLE, or MPI_THREAD_SERIALIZED under
// SEIS_MPI_THREAD_LEVEL=serialized (for an MPI whose MULTIPLE mode is slow or broken; the tests run
// the abort paths with it).
int requested_thread_level() {
  const char* v = std::getenv("SEIS_MPI_THREAD_LEVEL");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "multiple") == 0) return MPI_THREAD_MULTIPLE;
  if (std::strcmp(v, "serialized") == 0) return MPI_THREAD_SERIALIZED;
  throw Error(std::string("SEIS_MPI_THREAD_LEVEL=") + v + ": expected multiple or serialized");
}

class SingleComm final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  int local_rank() const override { return 0; }
  const char* backend() const override { return "single"; }
  int64_t allreduce_sum_async(float*, int64_t, Device) override { return ++issued_; }
  void wait(int64_t) override {}
  void broadcast(float*, int64_t, Device, int) override {}
  void allreduce_sum_host(int64_t*, int64_t) override {}
  void allreduce_sum_host(double*, int64_t) override {}
  void broadcast_host_bytes(void*, int64_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(code);
  }

 private:
  int64_t issued_ = 0;
};

class MpiComm final : public Communicator {
 public:
  MpiComm() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    SEIS_CHECK(!initialized, "MPI is already initialised: one MPI communicator per process");
    // MULTIPLE where available (SEIS_MPI_THREAD_LEVEL=serialized asks for less); SERIALIZED is
    // enough, since every call holds mpi_mu_ (only abort() differs, see there).
    const int rc = MPI_Init_thread(nullptr, nullptr, requested_thread_level(), &provided_);
    if (rc != MPI_SUCCESS) throw_mpi_error(__FILE__, __LINE__, "MPI_Init_thread", rc);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (provided_ < MPI_THREAD_SERIALIZED) {
      MPI_Finalize();
      throw Error("MPI provides thread level " + std::to_string(provided_) +
                  "; seisseg needs MPI_THREAD_SERIALIZED (a communication thread runs the gradient allreduces)");
    }
    MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm_));
    MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    MPI_CHECK(MPI_Comm_size(comm_, &world_));
    MPI_Comm node = MPI_COMM_NULL;
    MPI_CHECK(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
    MPI_CHECK(MPI_Comm_rank(node, &local_rank_));
    MPI_Comm_free(&node);
    timeout_s_ = comm_timeout_seconds();
    thread_ = std::thread([this] { comm_thread_main(); });
  }

  ~MpiComm() override {
    {
      std::lock_guard<std::mutex> lock(q_mu_);
      stop_ = true;
    }
    q_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    // MPI_Finalize waits for every rank without a limit: a bounded barrier first, so that a rank that
    // hangs before the end is reported, not waited for.
    if (world_ > 1 && failure_ == nullptr) {
      try {
        MpiLock lock(this);
        MPI_Request req = MPI_REQUEST_NULL;
        MPI_CHECK(MPI_Ibarrier(comm_, &req));
        complete_or_abort(&req, "the barrier before MPI_Finalize");
      } catch (const std::exception& e) {
        // (MPI_Finalize would wait for the peers without a limit: end the job instead.)
        std::fprintf(stderr, "seisseg: rank %d of %d: %s\n", rank_, world_, e.what());
        abort(kHungExitCode);
      }
    }
    MPI_Comm_free(&comm_);
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int world() const override { return world_; }
  int local_rank() const override { return local_rank_; }
  const char* backend() const override { return "mpi"; }

  int64_t allreduce_sum_async(float* buf, int64_t n, Device device) override {
    if (world_ == 1) {  // nothing to reduce (e.g. mpirun -np 1 on a GPU)
      std::lock_guard<std::mutex> lock(q_mu_);
      return issued_;
    }
    SEIS_CHECK(device.is_cpu(), "MpiComm reduces CPU buffers; " << device.str() << " needs NcclComm");
    SEIS_CHECK(n >= 0 && (n == 0 || buf != nullptr), "allreduce of " << n << " floats at a null pointer");
    std::lock_guard<std::mutex> lock(q_mu_);
    queue_.push_back({++issued_, buf, n});
    q_cv_.notify_all();
    return issued_;
  }

  void wait(int64_t handle) override {
    std::unique_lock<std::mutex> lock(q_mu_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
    while (completed_ < handle && !failure_) {
      if (done_cv_.wait_until(lock, deadline) == std::cv_status::timeout && completed_ < handle && !failure_) {
        abort_hung("gradient allreduce");
      }
    }
    if (failure_) std::rethrow_exception(failure_);
  }

  void broadcast(float* buf, int64_t n, Device device, int root) override {
    if (world_ == 1) return;
    SEIS_CHECK(device.is_cpu(), "MpiComm broadcasts CPU buffers");
    broadcast_raw(buf, n, MPI_FLOAT, root);
  }
  void broadcast_host_bytes(void* buf, int64_t bytes, int root) override { broadcast_raw(buf, bytes, MPI_BYTE, root); }

  void allreduce_sum_host(int64_t* v, int64_t n) override { host_allreduce(v, n, MPI_INT64_T); }
  void allreduce_sum_host(double* v, int64_t n) override { host_allreduce(v, n, MPI_DOUBLE); }

  void barrier() override {
    drain();
    MpiLock lock(this);
    MPI_Request req = MPI_REQUEST_NULL;
    MPI_CHECK(MPI_Ibarrier(comm_, &req));
    complete_or_abort(&req, "barrier");
  }

  // MPI_Abort where MPI allows it from this thread now. The comm thread may be blocked inside MPI on
  // a rank that is gone, holding mpi_mu_: with MPI_THREAD_MULTIPLE any thread may call MPI_Abort
  // then; with only MPI_THREAD_SERIALIZED no call may overlap another thread's, so this thread
  // calls MPI_Abort only when it holds mpi_mu_ (already, or within kAbortLockWait), and otherwise
  // exits without MPI: a rank that ends without MPI_Finalize makes mpirun and srun end the job.
  [[noreturn]] void abort(int code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    const bool mine = mpi_owner_.load() == std::this_thread::get_id();
    if (provided_ >= MPI_THREAD_MULTIPLE || mine) MPI_Abort(MPI_COMM_WORLD, code);
    if (!mine && mpi_mu_.try_lock_for(kAbortLockWait)) {
      mpi_owner_.store(std::this_thread::get_id());
      MPI_Abort(MPI_COMM_WORLD, code);
    }
    std::_Exit(code);
  }

 private:
  // How long abort() waits for mpi_mu_ under MPI_THREAD_SERIALIZED.
  static constexpr std::chrono::seconds kAbortLockWait{2};

  // mpi_mu_ for a scope, its holder recorded.
  class MpiLock {
   public:
    explicit MpiLock(MpiComm* c) : c_(c) {
      c_->mpi_mu_.lock();
      c_->mpi_owner_.store(std::this_thread::get_id());
    }
    ~MpiLock() {
      c_->mpi_owner_.store(std::thread::id());
      c_->mpi_mu_.unlock();
    }
    MpiLock(const MpiLock&) = delete;
    MpiLock& operator=(const MpiLock&) = delete;

   private:
    MpiComm* c_;
  };

  struct Task {
    int64_t handle;
    float* buf;
    int64_t n;
  };

  void drain() {
    int64_t last = 0;
    {
      std::lock_guard<std::mutex> lock(q_mu_);
      last = issued_;
    }
    wait(last);
  }

  void broadcast_raw(void* buf, int64_t n, MPI_Datatype type, int root) {
    drain();
    MpiLock lock(this);
    int size = 0;
    MPI_CHECK(MPI_Type_size(type, &size));
    for (int64_t off = 0; off < n; off += kMaxMpiCount) {
      const int count = static_cast<int>(std::min(kMaxMpiCount, n - off));
      MPI_Request req = MPI_REQUEST_NULL;
      MPI_CHECK(MPI_Ibcast(static_cast<char*>(buf) + off * size, count, type, root, comm_, &req));
      complete_or_abort(&req, "broadcast");
    }
  }

  void host_allreduce(void* v, int64_t n, MPI_Datatype type) {
    SEIS_CHECK(n >= 0 && n <= kMaxMpiCount, "host allreduce of " << n << " values");
    drain();
    MpiLock lock(this);
    MPI_Request req = MPI_REQUEST_NULL;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, v, static_cast<int>(n), type, MPI_SUM, comm_, &req));
    complete_or_abort(&req, "host allreduce");
  }

  // Every collective of the compute thread ends here: it completes `req` (the caller holds mpi_mu_),
  // or, when it has made no progress for SEIS_COMM_TIMEOUT_S, a peer is taken for hung (stopped,
  // deadlocked, its node gone) and the job is aborted. Not an exception: MPI still owns the request
  // and its buffer, and MPI_Finalize in the unwinding would wait for the hung peer in turn.
  // Spins (yielding) for the first second, as a blocking MPI call would, so that a collective that
  // needs many progress rounds (a large broadcast) runs at full speed; then tests once a millisecond.
  void complete_or_abort(MPI_Request* req, const char* what) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    const auto deadline = start + std::chrono::duration<double>(timeout_s_);
    for (;;) {
      int done = 0;
      MPI_CHECK(MPI_Test(req, &done, MPI_STATUS_IGNORE));
      if (done != 0) return;
      const auto now = clock::now();
      if (now >= deadline) abort_hung(what);
      if (now - start < std::chrono::seconds(1)) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }

  // The one line of a collective that timed out, then MPI_Abort: mpirun ends every rank, a stopped
  // one too (SIGKILL).
  [[noreturn]] void abort_hung(const char* what) {
    std::fprintf(stderr,
                 "seisseg: rank %d of %d: %s did not complete within %g s (a rank hung?); SEIS_COMM_TIMEOUT_S sets "
                 "the limit\n",
                 rank_, world_, what, timeout_s_);
    abort(kHungExitCode);
  }

  void comm_thread_main() {
    for (;;) {
      Task t{};
      {
        std::unique_lock<std::mutex> lock(q_mu_);
        q_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stop_
        t = queue_.front();
        queue_.pop_front();
      }
      std::exception_ptr err;
      try {
        MpiLock lock(this);
        for (int64_t off = 0; off < t.n; off += kMaxMpiCount) {
          const int count = static_cast<int>(std::min(kMaxMpiCount, t.n - off));
          MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, t.buf + off, count, MPI_FLOAT, MPI_SUM, comm_));
        }
      } catch (...) {
        err = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(q_mu_);
        completed_ = t.handle;
        if (err && !failure_) failure_ = err;
      }
      done_cv_.notify_all();
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, world_ = 1, local_rank_ = 0;
  double timeout_s_ = 600;
  // Held by every MPI call after the constructor's (see abort()); mpi_owner_ is the thread holding it.
  std::timed_mutex mpi_mu_;
  std::atomic<std::thread::id> mpi_owner_{};
  int provided_ = 0;  // MPI's thread level

  std::mutex q_mu_;
  std::condition_variable q_cv_, done_cv_;
  std::deque<Task> queue_;
  int64_t issued_ = 0, completed_ = 0;
  bool stop_ = false;
  std::exception_ptr failure_;
  std::thread thread_;
};

}  // namespace

LaunchInfo detect_launch() {
  LaunchInfo li;
  if (has_env("OMPI_COMM_WORLD_SIZE")) {
    li.launched = true;
    li.launcher = "openmpi";
    li.world = env_int("OMPI_COMM_WORLD_SIZE", 1);
    li.rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    li.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
  } else if (has_env("SLURM_STEP_NUM_TASKS") && has_env("SLURM_PROCID")) {
    // Inside an srun step (a batch script alone has no step task count).
    li.launched = true;
    li.launcher = "slurm";
    li.world = env_int("SLURM_STEP_NUM_TASKS", 1);
    li.rank = env_int("SLURM_PROCID", 0);
    li.local_rank = env_int("SLURM_LOCALID", 0);
  } else if (has_env("PMIX_RANK") || has_env("PMI_SIZE")) {
    li.launched = true;
    li.launcher = "pmi";
    li.world = env_int("PMI_SIZE", 1);
    li.rank = env_int("PMIX_RANK", env_int("PMI_RANK", 0));
    li.local_rank = env_int("MPI_LOCALRANKID", env_int("PMI_LOCAL_RANK", 0));
  }
  return li;
}

double comm_timeout_seconds() {
  const char* v = std::getenv("SEIS_COMM_TIMEOUT_S");
  if (v != nullptr && *v != '\0') {
    char* end = nullptr;
    const double s = std::strtod(v, &end);
    if (end != nullptr && *end == '\0' && s > 0) return s;
  }
  return 600.0;
}

std::unique_ptr<Communicator> make_single_communicator() { return std::make_unique<SingleComm>(); }

std::unique_ptr<Communicator> make_communicator(Device device, bool nccl_for_single) {
  const LaunchInfo li = detect_launch();
  std::unique_ptr<Communicator> host;
  if (li.launched) {
    host = std::make_unique<MpiComm>();
  } else {
    host = std::make_unique<SingleComm>();
  }
  if (device.is_cuda() && (host->world() > 1 || nccl_for_single)) {
#if SEIS_HAVE_CUDA
    return make_nccl_comm(std::move(host), device.index);
#else
    throw Error("NCCL needs a build with CUDA");
#endif
  }
  return host;
}

}  // namespace seis
