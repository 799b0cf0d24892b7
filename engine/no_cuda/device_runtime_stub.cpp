// The device runtime of a build without CUDA: zero devices; pinned memory is ordinary memory.
#include <cstdlib>

#include "engine/cuda_graph.h"
#include "engine/cuda_stream.h"
#include "engine/device_runtime.h"
#include "engine/error.h"
#include "engine/host_pages.h"

namespace seis {

namespace {
[[noreturn]] void no_cuda() { throw Error("this seisseg was built without CUDA (SEIS_CUDA=OFF or nvcc not found)"); }
}  // namespace

int cuda_device_count() { return 0; }
std::string cuda_device_description(int) { no_cuda(); }
void* cuda_alloc(int, int64_t) { no_cuda(); }
void cuda_free(int, void*) { no_cuda(); }
int64_t cuda_bytes_in_use(int) { return 0; }
int64_t cuda_peak_bytes(int) { return 0; }
void cuda_reset_peak_bytes(int) {}
int64_t cuda_cache_flushes(int) { return 0; }
void cuda_begin_record(int) { no_cuda(); }
bool cuda_end_record(int, StepTrace*, std::string*) { no_cuda(); }
void cuda_begin_arena(int, void*, std::shared_ptr<const ArenaPlan>) { no_cuda(); }
bool cuda_end_arena(int, std::string*) { no_cuda(); }
int64_t cuda_arena_live_blocks(int) { return 0; }
int64_t cuda_free_bytes(int) { no_cuda(); }
void* pinned_alloc(int64_t bytes) {
  void* p = alloc_host_pages_kept(bytes);
  SEIS_CHECK(p != nullptr, "out of host memory allocating " << bytes << " bytes");
  return p;
}
void pinned_free(void* p) { release_host_pages(p); }
CUstream_st* cuda_compute_stream(int) { no_cuda(); }
void cuda_copy_to_device(int, void*, const void*, int64_t) { no_cuda(); }
void cuda_copy_to_host(int, void*, const void*, int64_t) { no_cuda(); }
void cuda_copy_device_to_device(int, void*, const void*, int64_t) { no_cuda(); }
void cuda_memset_zero(int, void*, int64_t) { no_cuda(); }
void cuda_copy_async(int, void*, const void*, int64_t, CUstream_st*) { no_cuda(); }
void cuda_synchronize(int) { no_cuda(); }
void cuda_set_device(int) { no_cuda(); }
CudaDeviceGuard::CudaDeviceGuard(int device) : device_(device), prev_(device) { no_cuda(); }
CudaDeviceGuard::~CudaDeviceGuard() = default;

CUstream_st* cuda_copy_stream(int) { no_cuda(); }
void cuda_stream_synchronize(CUstream_st*) { no_cuda(); }
void cuda_release_cached_memory(int) {}
int64_t cuda_reserved_bytes(int) { return 0; }
CudaEvent::CudaEvent(int) { no_cuda(); }
CudaEvent::~CudaEvent() = default;
CudaEvent::CudaEvent(CudaEvent&& o) noexcept : device_(o.device_), event_(o.event_) { o.event_ = nullptr; }
CudaEvent& CudaEvent::operator=(CudaEvent&& o) noexcept {
  device_ = o.device_;
  event_ = o.event_;
  o.event_ = nullptr;
  return *this;
}
void CudaEvent::record(CUstream_st*) { no_cuda(); }
void CudaEvent::wait(CUstream_st*) const { no_cuda(); }
bool CudaEvent::done() const { return true; }
void CudaEvent::synchronize() const {}

CudaGraph::CudaGraph(int device) : device_(device) { no_cuda(); }
CudaGraph::~CudaGraph() = default;
void CudaGraph::begin_capture() { no_cuda(); }
bool CudaGraph::end_capture(std::string*) { no_cuda(); }
void CudaGraph::launch() { no_cuda(); }
void CudaGraph::reset() {
  capturing_ = false;
  graph_ = nullptr;
  exec_ = nullptr;
}

}  // namespace seis
