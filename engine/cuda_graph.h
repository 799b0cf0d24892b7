// A CUDA graph of the work one piece of host code puts on a device's compute stream: captured once,
// launched many times, so that a training step runs as one launch without gaps between its kernels.
// Its temporaries come from a private pool of the device's allocator (DeviceBlocks in
// engine/block_cache.h), reserved for the graph until reset(): the captured kernels keep those
// addresses. What the captured code reads from outside (inputs, parameters, step scalars) must
// stay at the same addresses, and change only in place, between launches.
// In a build without CUDA every function here throws, except the destructor and reset().
#pragma once
#include <cstdint>
#include <string>

struct CUgraph_st;
struct CUgraphExec_st;

namespace seis {

class CudaGraph {
 public:
  explicit CudaGraph(int device);
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Starts capturing the compute stream of the device (the previous graph, if any, is reset), and
  // routes the device's allocations to the graph's pool until end_capture.
  void begin_capture();
  // Ends the capture and instantiates the graph. False, with the CUDA error in *why, when the
  // captured code did something a graph cannot hold (a copy to the host, a synchronisation) or the
  // capture otherwise failed: nothing ran, there is no graph, and the pool is released. Also the
  // way out of a capture that an exception interrupted.
  bool end_capture(std::string* why);
  // Enqueues one run of the graph on the compute stream.
  void launch();
  bool ready() const { return exec_ != nullptr; }
  // Waits for queued launches, destroys the graph and returns its pool to the device's cache.
  void reset();
  int device() const { return device_; }

 private:
  int device_ = 0;
  bool capturing_ = false;
  CUgraph_st* graph_ = nullptr;
  CUgraphExec_st* exec_ = nullptr;
};

// Bytes the private pool of the device's graph holds (0 without a graph).
int64_t cuda_graph_pool_bytes(int device);

}  // namespace seis
