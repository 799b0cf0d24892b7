// The CUDA device runtime (engine/device_runtime.h, engine/cuda_stream.h): device count, a caching
// allocator per device, pinned host memory, and the compute and copy streams.
//
// Allocator: the size classes and block reuse of engine/block_cache.h (which the memory planner
// runs too). Blocks are reused in compute-stream order: memory used on another stream must be
// synchronised with the compute stream before it is freed. On cudaMalloc failure the cache is
// released and the allocation retried once.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <unordered_set>
#include <utility>

#include "engine/block_cache.h"
#include "engine/cuda_check.h"
#include "engine/cuda_graph.h"
#include "engine/cuda_stream.h"
#include "engine/device_runtime.h"
#include "engine/error.h"
#include "engine/host_pages.h"

namespace seis {

namespace {

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

std::string gib(int64_t bytes) {
  std::ostringstream os;
  os.precision(3);
  os << static_cast<double>(bytes) / double(int64_t{1} << 30) << " GiB";
  return os.str();
}

// Per-device state. Created once for all devices and never destroyed: tensors freed during static
// destruction must still find their allocator.
struct DeviceState {
  std::mutex mu;
  DeviceBlocks blocks;  // the cache, and a CUDA graph's recording or arena
  int64_t flushes = 0;  // caches emptied to retry a cudaMalloc (cuda_cache_flushes)

  std::once_flag compute_once;
  std::once_flag copy_once;
  cudaStream_t compute = nullptr;
  cudaStream_t copy = nullptr;
};

DeviceState& state(int device) {
  const int count = cuda_device_count();
  SEIS_CHECK(device >= 0 && device < count,
             "CUDA device " << device << " does not exist (" << count << " device(s) visible)");
  static DeviceState* all = new DeviceState[count];
  return all[device];
}

// Makes `device` current for the scope, restoring the previous device after (device_runtime.h).
using DeviceGuard = CudaDeviceGuard;

// Returns every cached block to the driver. Caller holds s.mu and a DeviceGuard.
void release_cache_locked(DeviceState& s) {
  // Cached blocks may still be read by queued kernels: let the device finish first.
  CUDA_CHECK(cudaDeviceSynchronize());
  for (void* p : s.blocks.drop_cache()) CUDA_CHECK(cudaFree(p));
}

// SEIS_CUDA_MEMORY_LIMIT_GIB caps what the allocator holds (in use plus cached), so that what fits
// on a smaller card can be measured on a larger one.
int64_t memory_limit() {
  static const int64_t limit = [] {
    const char* e = std::getenv("SEIS_CUDA_MEMORY_LIMIT_GIB");
    const double gib = e != nullptr ? std::atof(e) : 0.0;
    return gib > 0 ? static_cast<int64_t>(gib * 1073741824.0) : std::numeric_limits<int64_t>::max();
  }();
  return limit;
}

// cudaMalloc (within the memory limit) with one retry after releasing the cache. Caller holds s.mu.
void* device_malloc(int device, DeviceState& s, int64_t requested, int64_t size) {
  DeviceGuard guard(device);
  void* p = nullptr;
  const int64_t limit = memory_limit();
  auto try_malloc = [&]() {
    if (s.blocks.in_use() + s.blocks.cached() + size > limit) return cudaErrorMemoryAllocation;
    return cudaMalloc(&p, static_cast<size_t>(size));
  };
  cudaError_t err = try_malloc();
  if (err == cudaErrorMemoryAllocation && s.blocks.has_cached()) {
    (void)cudaGetLastError();  // not sticky; clear it so that later launch checks do not report it
    ++s.flushes;
    release_cache_locked(s);
    err = try_malloc();
  }
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) (void)cudaGetLastError();
    std::ostringstream os;
    os << "CUDA out of memory on cuda:" << device << ": requested " << requested << " bytes (" << gib(requested)
       << "); " << s.blocks.in_use() << " bytes (" << gib(s.blocks.in_use()) << ") in use by seisseg's allocator, peak "
       << gib(s.blocks.peak()) << "; the device has " << gib(static_cast<int64_t>(free_bytes)) << " free of "
       << gib(static_cast<int64_t>(total_bytes)) << ". Reduce --batch or the sample size.";
    throw Error(os.str());
  }
  if (err != cudaSuccess) detail::throw_cuda_error(__FILE__, __LINE__, "cudaMalloc", err);
  return p;
}

std::mutex& pinned_mutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}
// Pointers from cudaHostAlloc; any other pinned_alloc pointer is ordinary aligned memory.
std::unordered_set<void*>& pinned_set() {
  static auto* set = new std::unordered_set<void*>;
  return *set;
}

void check_copy_args(void* dst, const void* src, int64_t bytes) {
  SEIS_CHECK(bytes >= 0, "negative copy size " << bytes);
  SEIS_CHECK(bytes == 0 || (dst != nullptr && src != nullptr), "null pointer in a copy of " << bytes << " bytes");
}

void copy_sync(int device, void* dst, const void* src, int64_t bytes, cudaMemcpyKind kind) {
  check_copy_args(dst, src, bytes);
  if (bytes == 0) return;
  cudaStream_t stream = cuda_compute_stream(device);
  DeviceGuard guard(device);
  CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), kind, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace

// ---- Devices -----------------------------------------------------------------------------------

int cuda_device_count() {
  static const int count = [] {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      // No driver, an old driver or no device: zero GPUs is an answer, not a failure.
      (void)cudaGetLastError();
      return 0;
    }
    return std::max(n, 0);
  }();
  return count;
}

std::string cuda_device_description(int device) {
  state(device);  // validates the index
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(1);
  os << prop.name << " (sm_" << prop.major << prop.minor << ", " << prop.multiProcessorCount << " SMs, "
     << static_cast<double>(prop.totalGlobalMem) / double(int64_t{1} << 30) << " GiB)";
  return os.str();
}

// ---- Device memory ------------------------------------------------------------------------------

void* cuda_alloc(int device, int64_t bytes) {
  SEIS_CHECK(bytes >= 0, "negative allocation size " << bytes << " on cuda:" << device);
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mu);
  const BlockCache::Block cached = s.blocks.take(bytes);
  if (cached.key != nullptr) return cached.key;
  const int64_t size = BlockCache::size_class(bytes);
  void* p = device_malloc(device, s, bytes, size);
  s.blocks.add_fresh(p, size);
  return p;
}

void cuda_free(int device, void* p) {
  if (p == nullptr) return;
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mu);
  s.blocks.release(p);
}

int64_t cuda_bytes_in_use(int device) {
  if (device < 0 || device >= cuda_device_count()) return 0;
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mu);
  return s.blocks.in_use();
}

int64_t cuda_cache_flushes(int device) {
  if (device < 0 || device >= cuda_device_count()) return 0;
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mu);
  return s.flushes;
}

int64_t cuda_peak_bytes(int device) {
  if (device < 0 || device >= cuda_device_count()) return 0;
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mu);
  return s.blocks.peak();
}

void cuda_reset_peak_bytes(int device) {
  if (device < 0 || device >= cuda_device_count()) return;
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mu);
  s.blocks.reset_peak();
}

void cuda_release_cached_memory(int device) {
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.blocks.has_cached()) return;
  DeviceGuard guard(device);
  release_cache_locked(s);
}

void cuda_begin_record(int device) {
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mu);
  s.blocks.begin_record();
}

bool cuda_end_record(int device, StepTrace* trace, std::string* why) {
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mu);
  return s.blocks.end_record(trace, why);
}

void cuda_begin_arena(int device, void* base, std::shared_ptr<const ArenaPlan> plan) {
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mu);
  s.blocks.begin_arena(base, std::move(plan));
}

bool cuda_end_arena(int device, std::string* why) {
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mu);
  return s.blocks.end_arena(why);
}

int64_t cuda_arena_live_blocks(int device) {
  if (device < 0 || device >= cuda_device_count()) return 0;
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mu);
  return s.blocks.arena_live_blocks();
}

int64_t cuda_free_bytes(int device) {
  DeviceState& s = state(device);
  DeviceGuard guard(device);
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  std::lock_guard<std::mutex> lock(s.mu);
  return static_cast<int64_t>(free_bytes) + s.blocks.cached();
}

int64_t cuda_reserved_bytes(int device) {
  if (device < 0 || device >= cuda_device_count()) return 0;
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mu);
  return s.blocks.in_use() + s.blocks.cached();
}

// ---- Pinned host memory -----------------------------------------------------------------------

void* pinned_alloc(int64_t bytes) {
  SEIS_CHECK(bytes >= 0, "negative pinned allocation size " << bytes);
  const int64_t size = std::max<int64_t>(4096, round_up(bytes, 4096));
  if (cuda_device_count() > 0) {
    void* p = nullptr;
    const cudaError_t err = cudaHostAlloc(&p, static_cast<size_t>(size), cudaHostAllocPortable);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      std::ostringstream os;
      os << "cudaHostAlloc of " << bytes << " bytes (" << gib(bytes)
         << ") of pinned host memory failed: " << cudaGetErrorString(err)
         << ". Reduce the reader's prefetch depth or --batch.";
      throw Error(os.str());
    }
    std::lock_guard<std::mutex> lock(pinned_mutex());
    pinned_set().insert(p);
    return p;
  }
  void* p = alloc_host_pages_kept(size);
  SEIS_CHECK(p != nullptr, "out of host memory allocating " << bytes << " bytes");
  return p;
}

void pinned_free(void* p) {
  if (p == nullptr) return;
  bool was_pinned = false;
  {
    std::lock_guard<std::mutex> lock(pinned_mutex());
    was_pinned = pinned_set().erase(p) > 0;
  }
  if (was_pinned) {
    CUDA_WARN(cudaFreeHost(p));
  } else {
    release_host_pages(p);
  }
}

// ---- Streams and copies -------------------------------------------------------------------------

CUstream_st* cuda_compute_stream(int device) {
  DeviceState& s = state(device);
  std::call_once(s.compute_once, [&] {
    DeviceGuard guard(device);
    CUDA_CHECK(cudaStreamCreateWithFlags(&s.compute, cudaStreamNonBlocking));
  });
  return s.compute;
}

CUstream_st* cuda_copy_stream(int device) {
  DeviceState& s = state(device);
  std::call_once(s.copy_once, [&] {
    DeviceGuard guard(device);
    CUDA_CHECK(cudaStreamCreateWithFlags(&s.copy, cudaStreamNonBlocking));
  });
  return s.copy;
}

void cuda_stream_synchronize(CUstream_st* stream) { CUDA_CHECK(cudaStreamSynchronize(stream)); }

void cuda_copy_to_device(int device, void* dst, const void* src, int64_t bytes) {
  copy_sync(device, dst, src, bytes, cudaMemcpyHostToDevice);
}

void cuda_copy_to_host(int device, void* dst, const void* src, int64_t bytes) {
  copy_sync(device, dst, src, bytes, cudaMemcpyDeviceToHost);
}

void cuda_copy_device_to_device(int device, void* dst, const void* src, int64_t bytes) {
  copy_sync(device, dst, src, bytes, cudaMemcpyDeviceToDevice);
}

void cuda_copy_async(int device, void* dst, const void* src, int64_t bytes, CUstream_st* on) {
  check_copy_args(dst, src, bytes);
  if (bytes == 0) return;
  cudaStream_t stream = on != nullptr ? on : cuda_compute_stream(device);
  DeviceGuard guard(device);
  CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), cudaMemcpyDefault, stream));
}

void cuda_memset_zero(int device, void* p, int64_t bytes) {
  SEIS_CHECK(bytes >= 0, "negative memset size " << bytes);
  if (bytes == 0) return;
  SEIS_CHECK(p != nullptr, "cuda_memset_zero of a null pointer");
  cudaStream_t stream = cuda_compute_stream(device);
  DeviceGuard guard(device);
  CUDA_CHECK(cudaMemsetAsync(p, 0, static_cast<size_t>(bytes), stream));
}

void cuda_set_device(int device) {
  state(device);
  CUDA_CHECK(cudaSetDevice(device));
}

CudaDeviceGuard::CudaDeviceGuard(int device) : device_(device) {
  state(device);
  CUDA_CHECK(cudaGetDevice(&prev_));
  if (prev_ != device_) CUDA_CHECK(cudaSetDevice(device_));
}

CudaDeviceGuard::~CudaDeviceGuard() {
  if (prev_ != device_) CUDA_WARN(cudaSetDevice(prev_));
}

void cuda_synchronize(int device) {
  state(device);
  DeviceGuard guard(device);
  CUDA_CHECK(cudaDeviceSynchronize());
}

// ---- Events -------------------------------------------------------------------------------------

CudaEvent::CudaEvent(int device) : device_(device) {
  state(device);
  DeviceGuard guard(device);
  cudaEvent_t e = nullptr;
  CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  event_ = e;
}

CudaEvent::~CudaEvent() {
  if (event_ != nullptr) CUDA_WARN(cudaEventDestroy(event_));
}

CudaEvent::CudaEvent(CudaEvent&& o) noexcept : device_(o.device_), event_(std::exchange(o.event_, nullptr)) {}

CudaEvent& CudaEvent::operator=(CudaEvent&& o) noexcept {
  if (this != &o) {
    if (event_ != nullptr) CUDA_WARN(cudaEventDestroy(event_));
    device_ = o.device_;
    event_ = std::exchange(o.event_, nullptr);
  }
  return *this;
}

void CudaEvent::record(CUstream_st* stream) {
  SEIS_CHECK(event_ != nullptr, "record on a moved-from CudaEvent");
  DeviceGuard guard(device_);
  CUDA_CHECK(cudaEventRecord(event_, stream));
}

void CudaEvent::wait(CUstream_st* stream) const {
  SEIS_CHECK(event_ != nullptr, "wait on a moved-from CudaEvent");
  CUDA_CHECK(cudaStreamWaitEvent(stream, event_, 0));
}

bool CudaEvent::done() const {
  SEIS_CHECK(event_ != nullptr, "query of a moved-from CudaEvent");
  const cudaError_t err = cudaEventQuery(event_);
  if (err == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
  if (err != cudaSuccess) detail::throw_cuda_error(__FILE__, __LINE__, "cudaEventQuery", err);
  return true;
}

void CudaEvent::synchronize() const {
  SEIS_CHECK(event_ != nullptr, "synchronize on a moved-from CudaEvent");
  CUDA_CHECK(cudaEventSynchronize(event_));
}

// ---- Graphs -------------------------------------------------------------------------------------

CudaGraph::CudaGraph(int device) : device_(device) { state(device); }

CudaGraph::~CudaGraph() {
  try {
    reset();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: releasing a CUDA graph: %s\n", e.what());
  }
}

void CudaGraph::begin_capture() {
  reset();
  cudaStream_t stream = cuda_compute_stream(device_);
  DeviceGuard guard(device_);
  // Relaxed: calls that do not touch the stream (cudaFuncSetAttribute, a cudaMalloc) are allowed.
  // Anything that must wait for the device (a copy to the host, a synchronisation) still fails, and
  // end_capture says so.
  CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
  capturing_ = true;
}

bool CudaGraph::end_capture(std::string* why) {
  if (!capturing_) {
    if (why != nullptr) *why = "no capture under way";
    return false;
  }
  capturing_ = false;
  cudaStream_t stream = cuda_compute_stream(device_);
  DeviceGuard guard(device_);
  cudaGraph_t graph = nullptr;
  cudaError_t err = cudaStreamEndCapture(stream, &graph);
  cudaGraphExec_t exec = nullptr;
  if (err == cudaSuccess && graph != nullptr) err = cudaGraphInstantiate(&exec, graph, 0);
  if (err != cudaSuccess || graph == nullptr) {
    (void)cudaGetLastError();  // a failed capture is not sticky; clear it for later launch checks
    if (graph != nullptr) CUDA_WARN(cudaGraphDestroy(graph));
    if (why != nullptr) *why = std::string(cudaGetErrorName(err)) + " (" + cudaGetErrorString(err) + ")";
    return false;
  }
  graph_ = graph;
  exec_ = exec;
  return true;
}

void CudaGraph::launch() {
  SEIS_CHECK(exec_ != nullptr, "launch of a CUDA graph that was not captured");
  DeviceGuard guard(device_);
  CUDA_CHECK(cudaGraphLaunch(exec_, cuda_compute_stream(device_)));
}

void CudaGraph::reset() {
  if (capturing_) end_capture(nullptr);
  if (exec_ == nullptr && graph_ == nullptr) return;
  DeviceGuard guard(device_);
  // Replays still queued read the memory the owner reserved for them: they finish first.
  CUDA_CHECK(cudaStreamSynchronize(cuda_compute_stream(device_)));
  if (exec_ != nullptr) CUDA_WARN(cudaGraphExecDestroy(exec_));
  if (graph_ != nullptr) CUDA_WARN(cudaGraphDestroy(graph_));
  exec_ = nullptr;
  graph_ = nullptr;
}

}  // namespace seis
