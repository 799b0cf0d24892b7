// A CUDA graph of the work one piece of host code puts on a device's compute stream: captured once,
// launched many times, so that a training step runs as one launch without gaps between its kernels.
// The captured kernels keep the addresses they were captured with: the owner serves the capture's
// temporaries from memory reserved for the graph (apps/graph_step.h: an arena planned from a
// recorded step, engine/step_arena.h), and what the captured code reads from outside (inputs,
// parameters, step scalars) must stay at the same addresses, and change only in place, between
// launches.
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

  // Starts capturing the compute stream of the device (the previous graph, if any, is reset).
  void begin_capture();
  // Ends the capture and instantiates the graph. False, with the CUDA error in *why, when the
  // captured code did something a graph cannot hold (a copy to the host, a synchronisation) or the
  // capture otherwise failed: nothing ran and there is no graph. Also the way out of a capture that
  // an exception interrupted.
  bool end_capture(std::string* why);
  // Enqueues one run of the graph on the compute stream.
  void launch();
  bool ready() const { return exec_ != nullptr; }
  // Waits for queued launches and destroys the graph.
  void reset();
  int device() const { return device_; }

 private:
  int device_ = 0;
  bool capturing_ = false;
  CUgraph_st* graph_ = nullptr;
  CUgraphExec_st* exec_ = nullptr;
};

}  // namespace seis
