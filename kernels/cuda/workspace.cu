// The per-stream workspace of the deterministic reductions (kernels/cuda/common.cuh).
#include <map>
#include <mutex>
#include <utility>

#include "kernels/cuda/common.cuh"

namespace seis::cuda {

void* stream_workspace(cudaStream_t stream) {
  static std::mutex* mu = new std::mutex;
  static auto* buffers = new std::map<std::pair<int, cudaStream_t>, void*>;  // never freed: see header
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(*mu);
  void*& p = (*buffers)[{device, stream}];
  if (p == nullptr) CUDA_CHECK(cudaMalloc(&p, kWorkspaceBytes));
  return p;
}

}  // namespace seis::cuda
