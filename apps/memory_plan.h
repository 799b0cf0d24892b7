// Memory plans (`seisseg plan`, `train --batch auto`): the training step of apps/trainer.h run on a
// shape-only device (engine/device.h), which computes nothing and allocates nothing but holds every
// tensor as the modelled device's allocator would: the caching allocator's size classes and block
// reuse on CUDA, workspaces included. The peak of such a step is the peak of the real step, on any
// machine, in milliseconds.
//
// What it counts: parameters, gradients, optimizer state, gradient buckets (world > 1), the batch
// on the device, every activation the tape keeps and every workspace of our kernels. What it does
// not: the CUDA context and library handles (outside the allocator: cuda_free_bytes already leaves
// them out), the cuDNN backend's own scratch, and the reader's host memory (reported apart).
// A shape-only device is process-wide: one planner at a time.
#pragma once
#include <cstdint>

#include "engine/ops.h"
#include "engine/optimizer.h"
#include "models/unet.h"

namespace seis {

struct PlanRequest {
  UNetConfig model;
  int64_t height = 0, width = 0;  // the training sample (the crop when training on crops)
  ConvMath math = ConvMath::f32;
  Device device;  // the device modelled: cpu or cuda:N
  OptimizerKind optimizer = OptimizerKind::adam;
  int world = 1;           // ranks: gradient buckets when > 1
  int prefetch = 3;        // the reader's pinned slots, in rank batches
  int reader_threads = 0;  // the reader's workers (0: its default); each holds an f32 gather for bf16 batches
  // The step as a CUDA graph (SEIS_CUDA_GRAPH=1, apps/graph_step.h; one rank on a GPU): the
  // graph's own inputs, into which each batch is copied before its step and then released, and the
  // arena of the step's temporaries, which the graph holds for good, even while the next batch is
  // uploaded.
  bool cuda_graph = false;
  // The eager step with its temporaries in the same arena (SEIS_CUDA_ARENA=1): the same memory.
  bool step_arena = false;
  // The training reader's normalisation statistics (SampleReader::kept_stats_bytes, at most
  // SampleReaderOptions::norm_stats_cache_bytes): it keeps them for the `train_samples` it reads of
  // a source of `source_samples` gathers `gather_width` traces wide; counted in reader_host_bytes at
  // per-trace normalisation's size. 0: none counted. (Validation does not read through a reader.)
  int64_t train_samples = 0, source_samples = 0, gather_width = 0;
  // The reader reads with O_DIRECT (SampleReaderOptions::direct_io): each worker holds its I/O
  // buffers (H5SampleFile::direct_read_thread_bytes for gathers `width` traces wide), counted in
  // reader_host_bytes.
  bool direct_reads = false;
};

class MemoryPlanner {
 public:
  explicit MemoryPlanner(const PlanRequest& request);
  MemoryPlanner(const MemoryPlanner&) = delete;
  MemoryPlanner& operator=(const MemoryPlanner&) = delete;

  // The allocator's peak over training steps of `batch` samples per rank, in bytes, as a fresh
  // training process would reach it: each call starts from an empty allocator and a new model, and
  // runs steps until the peak repeats (the caching allocator may hand later steps larger blocks).
  int64_t step_peak_bytes(int64_t batch);
  // Bytes held between steps: parameters, optimizer state and gradient buckets.
  int64_t resident_bytes() const { return resident_; }
  // The largest per-rank batch whose step peak is at most `budget` bytes (0: not even one sample);
  // with_reader: the reader's pinned slots count against the same budget (a CPU device's memory).
  int64_t max_batch(int64_t budget, bool with_reader = false);
  // The reader's host memory for `batch` samples per rank: its pinned slots (in the batches' type,
  // batch_dtype), a full-size f32 gather per worker when the batches are bf16, each worker's direct
  // read buffers (PlanRequest::direct_reads), and the kept normalisation statistics
  // (PlanRequest::train_samples; counted also for files that store theirs, which the reader keeps
  // only where the stored ones turn out stale: the worst case). (Training on crops adds a full-size
  // gather per worker too, and so does a time shift with f32 batches, of which the reader touches
  // only its first block unless the file is compressed; the request knows neither.)
  int64_t reader_host_bytes(int64_t batch) const;
  int64_t num_params() const;
  // With cuda_graph, the arena of the last step_peak_bytes's graph and the live peak it was planned
  // from (both 0 when the step could not run as a graph: training would then run it eagerly).
  int64_t graph_arena_bytes() const { return graph_arena_; }
  int64_t graph_live_peak() const { return graph_live_peak_; }
  // On CUDA, every block of the caching allocator after the last step_peak_bytes's steps, cached
  // ones included: what the device holds if the allocator never empties its cache. Its blocks are
  // never split, so this can be well above the peak in use; above the device's memory, the real
  // allocator empties its cache and retries (a device synchronisation each time) to stay at the
  // peak. 0 on the CPU.
  int64_t reserved_bytes() const { return reserved_; }

 private:
  PlanRequest req_;
  Device plan_device_;
  int64_t resident_ = 0, num_params_ = 0;
  int64_t graph_arena_ = 0, graph_live_peak_ = 0, reserved_ = 0;
};

// What a device can hold for training: the driver's free memory plus the allocator's cache (CUDA),
// or MemAvailable of /proc/meminfo (CPU).
int64_t device_memory_budget(Device d);

}  // namespace seis
