#include "apps/memory_plan.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "apps/graph_step.h"
#include "apps/trainer.h"
#include "engine/communicator.h"
#include "engine/device_runtime.h"
#include "engine/error.h"
#include "engine/grad_buckets.h"
#include "engine/host_pages.h"
#include "engine/memory.h"
#include "io/hdf5_dataset.h"
#include "io/sample_reader.h"

namespace seis {

namespace {

// What a training process holds between steps, on the plan's device.
struct Model {
  UNet net;
  Optimizer optimizer;
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<GradBucketer> buckets;
  Model(const PlanRequest& r, Device d)
      : net(r.model, 0, d), optimizer(OptimizerConfig{r.optimizer}, net.param_vars()) {
    if (r.world > 1) {
      comm = make_single_communicator();
      buckets = std::make_unique<GradBucketer>(*comm, net.param_vars());
    }
  }
};

}  // namespace

MemoryPlanner::MemoryPlanner(const PlanRequest& request)
    : req_(request), plan_device_(Device::shape_only_of(request.device)) {
  SEIS_CHECK(!request.device.shape_only, "plan of a shape-only device");
  SEIS_CHECK(request.world >= 1 && request.prefetch >= 1, "plan: world " << request.world);
  reset_shape_only(plan_device_);
  const Model m(req_, plan_device_);
  m.net.check_input_size(req_.height, req_.width, "plan");
  resident_ = memory_in_use(plan_device_);
  num_params_ = m.net.num_params();
}

int64_t MemoryPlanner::num_params() const { return num_params_; }

int64_t MemoryPlanner::step_peak_bytes(int64_t batch) {
  SEIS_CHECK(batch >= 1, "plan: batch " << batch);
  ExecConfig exec;
  exec.math = req_.math;
  reset_shape_only(plan_device_);
  Model m(req_, plan_device_);
  m.net.set_exec(exec);
  int64_t peak = -1;
  // The step as a CUDA graph: the trainer's GraphStep itself, which on a shape-only GPU goes through
  // the memory of recording, capturing and launching without computing.
  std::unique_ptr<GraphStep> graph;
  if ((req_.cuda_graph || req_.step_arena) && req_.device.is_cuda() && req_.world == 1) {
    graph = std::make_unique<GraphStep>(m.net, m.optimizer, 1.0f, req_.cuda_graph);
  }
  // The step's allocations are the same every step, but which cached block serves a request can
  // change while the cache fills: run until the peak repeats (a graph: its first step is eager, the
  // second recorded, the third captured).
  for (int step = 0; step < 8; ++step) {
    reset_memory_peak(plan_device_);
    {
      // The reader's batch, in the type train() asks it in.
      Tensor data = Tensor::empty({batch, req_.height, req_.width, req_.model.in_channels},
                                  batch_dtype(exec, req_.device), plan_device_);
      Tensor label = Tensor::empty({batch, req_.height, req_.width}, DType::u8, plan_device_);
      if (graph && step > 0) {
        if (!graph->run(&data, &label, 0.0f).gave_up.empty()) graph.reset();  // then eager, as train() does
      } else {
        Tape tape;
        const Var loss = step_forward(tape, m.net, std::move(data), label, 1.0f, req_.world);
        step_backward(tape, loss, m.buckets.get(), m.optimizer, 0.0f);
      }
    }
    const int64_t p = memory_peak(plan_device_);
    if (p == peak && (!graph || step >= 3)) break;
    peak = std::max(peak, p);
  }
  reserved_ = req_.device.is_cuda() ? memory_reserved(plan_device_) : 0;
  graph_arena_ = graph && graph->plan() ? graph->plan()->bytes : 0;
  graph_live_peak_ = graph && graph->plan() ? graph->plan()->live_peak : 0;
  return peak;
}

int64_t MemoryPlanner::max_batch(int64_t budget, bool with_reader) {
  auto fits = [&](int64_t b) { return step_peak_bytes(b) + (with_reader ? reader_host_bytes(b) : 0) <= budget; };
  if (!fits(1)) return 0;
  // Gallop to a batch that does not fit, then bisect: plans are cheap (no compute).
  constexpr int64_t kLimit = int64_t{1} << 24;
  int64_t lo = 1, hi = 2;
  while (hi <= kLimit && fits(hi)) {
    lo = hi;
    hi *= 2;
  }
  if (hi > kLimit) return lo;
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

int64_t MemoryPlanner::reader_host_bytes(int64_t batch) const {
  ExecConfig exec;
  exec.math = req_.math;
  const DType dtype = batch_dtype(exec, req_.device);
  const int64_t pix = req_.height * req_.width;
  const int64_t sample = pix * (dtype_size(dtype) * req_.model.in_channels + 1);
  // (Each slot in whole pages, huge ones from 2 MiB on: engine/host_pages.h.)
  int64_t bytes = static_cast<int64_t>(req_.prefetch) * host_pages_bytes(batch * sample);
  const int threads = req_.reader_threads > 0 ? req_.reader_threads : SampleReader::default_threads();
  if (dtype != DType::f32) {  // each worker's f32 gather (SampleReader, bf16 batches)
    bytes += static_cast<int64_t>(threads) * pix * req_.model.in_channels * 4;
  }
  if (req_.direct_reads) {
    bytes += static_cast<int64_t>(threads) *
             H5SampleFile::direct_read_thread_bytes(req_.gather_width > 0 ? req_.gather_width : req_.width);
  }
  if (req_.train_samples > 0) {
    bytes += std::min(SampleReaderOptions{}.norm_stats_cache_bytes,
                      SampleReader::kept_stats_bytes(req_.source_samples, req_.train_samples, req_.gather_width));
  }
  return bytes;
}

int64_t device_memory_budget(Device d) {
  if (d.is_cuda()) return cuda_free_bytes(d.index);
  std::ifstream f("/proc/meminfo");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream is(line);
    std::string key;
    int64_t kib = 0;
    if (is >> key >> kib && key == "MemAvailable:") return kib * 1024;
  }
  throw Error("cannot read MemAvailable from /proc/meminfo; give the memory budget explicitly");
}

}  // namespace seis
