#include "apps/graph_step.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>

#include "apps/trainer.h"
#include "engine/cuda_stream.h"
#include "engine/device_runtime.h"
#include "engine/dispatch.h"
#include "engine/error.h"
#include "engine/memory.h"
#include "engine/ops.h"
#include "kernels/elementwise.h"

namespace seis {

namespace {
// An asynchronous copy on the compute stream; nothing on a shape-only GPU.
void copy_async(Device d, void* dst, const void* src, int64_t bytes) {
  if (!d.shape_only) cuda_copy_async(d.index, dst, src, bytes);
}

// Host staging for copies: pinned on a GPU; ordinary memory on a shape-only one (no driver
// context for a plan). pinned_free frees either.
void* staging_alloc(Device d, size_t bytes) {
  if (!d.shape_only) return pinned_alloc(static_cast<int64_t>(bytes));
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  SEIS_CHECK(p != nullptr, "out of host memory allocating " << bytes << " bytes");
  return p;
}

// The allocator's graph modes, ended on every way out of a scope: a mode left on would serve every
// later allocation of the device from a stale record or arena.
class RecordMode {
 public:
  explicit RecordMode(Device d) : d_(d) { memory_begin_record(d); }
  ~RecordMode() {
    if (on_) {
      StepTrace t;
      std::string why;
      memory_end_record(d_, &t, &why);
    }
  }
  bool end(StepTrace* trace, std::string* why) {
    on_ = false;
    return memory_end_record(d_, trace, why);
  }

 private:
  Device d_;
  bool on_ = true;
};

class ArenaMode {
 public:
  ArenaMode(Device d, void* base, std::shared_ptr<const ArenaPlan> plan) : d_(d) {
    memory_begin_arena(d, base, std::move(plan));
  }
  ~ArenaMode() {
    if (on_) {
      std::string why;
      memory_end_arena(d_, &why);
    }
  }
  bool end(std::string* why) {
    on_ = false;
    return memory_end_arena(d_, why);
  }

 private:
  Device d_;
  bool on_ = true;
};
}  // namespace

bool cuda_graph_switch() {
  const char* g = std::getenv("SEIS_CUDA_GRAPH");
  return g != nullptr && std::string(g) == "1";
}

bool cuda_arena_switch() {
  const char* a = std::getenv("SEIS_CUDA_ARENA");
  return a != nullptr && std::string(a) == "1";
}

GraphStep::GraphStep(const UNet& model, Optimizer& optimizer, float pos_weight, bool capture)
    : model_(model), optimizer_(optimizer), pos_weight_(pos_weight), device_(model.device()), capture_(capture) {
  SEIS_CHECK(device_.is_cuda(), "a CUDA graph of the step needs the model on a GPU, not " << device_.str());
  if (capture_ && !device_.shape_only) graph_ = std::make_unique<CudaGraph>(device_.index);
  scalars_ = Tensor::empty({kScalarFloats}, DType::f32, device_);
  scalars_host_ = static_cast<UpdateScalars*>(staging_alloc(device_, sizeof(UpdateScalars)));
  loss_host_ = static_cast<float*>(staging_alloc(device_, sizeof(float)));
  *loss_host_ = 0.0f;
}

GraphStep::~GraphStep() {
  try {
    reset();                           // waits for queued launches, which read the pinned buffers
  } catch (const std::exception& e) {  // (a destructor that throws during unwinding ends the process)
    std::fprintf(stderr, "warning: releasing the CUDA graph of the step: %s\n", e.what());
  }
  pinned_free(scalars_host_);
  pinned_free(loss_host_);
}

void GraphStep::reset() {
  if (graph_) graph_->reset();
  captured_ = false;
  release_arena();
}

// The arena's memory goes back unless blocks of it are still live (a capture that went wrong and
// left tensors there): then it is kept for good rather than handed to anything else.
void GraphStep::release_arena() {
  if (!arena_.defined()) return;
  if (memory_arena_live_blocks(device_) == 0) {
    arena_ = Tensor();
    return;
  }
  std::fprintf(stderr, "warning: the CUDA graph's arena (%lld bytes) is kept: blocks of it are still in use\n",
               static_cast<long long>(arena_.nbytes()));
  new Tensor(std::move(arena_));  // NOLINT: deliberately never freed
  arena_ = Tensor();
}

// The step on the graph's inputs: what a capture records and what a recording runs eagerly.
void GraphStep::body() {
  Tape tape;
  const Var loss = step_forward(tape, model_, data_, label_, pos_weight_, 1);
  copy_async(device_, loss_host_, loss->value.raw(), sizeof(float));
  tape.backward(loss);
  optimizer_.step_from(reinterpret_cast<const UpdateScalars*>(scalars_.raw()));
}

bool GraphStep::capture(std::string* why) {
  if (memory_arena_live_blocks(device_) != 0) {
    *why = "blocks of an earlier capture's arena are still in use";
    return false;
  }
  std::unique_ptr<ArenaMode> arena_mode;
  bool capturing = false;
  std::string arena_why;
  try {
    arena_ = Tensor::empty({plan_->bytes}, DType::u8, device_);
    arena_mode = std::make_unique<ArenaMode>(device_, arena_.storage()->block(), plan_);
    if (graph_) graph_->begin_capture();
    capturing = graph_ != nullptr;
    body();
  } catch (const std::exception& e) {
    std::string cuda_why;
    if (capturing) {
      graph_->end_capture(&cuda_why);
      graph_->reset();  // (an exception of ours leaves a valid capture: its graph must not launch)
    }
    if (arena_mode) arena_mode->end(&arena_why);
    drop_gradients();
    release_arena();
    *why = std::string(e.what()) + (cuda_why.empty() ? "" : "; the capture: " + cuda_why);
    return false;
  }
  bool ok = graph_ ? graph_->end_capture(why) : true;
  if (!arena_mode->end(&arena_why)) {
    if (ok) *why = "its allocations differ from the recorded step's: " + arena_why;
    ok = false;
  }
  if (ok) {
    captured_ = true;
    return true;
  }
  if (graph_) graph_->reset();
  drop_gradients();
  release_arena();
  return false;
}

// An eager step with its allocations served from the arena, which stays allocated from step to
// step. Whether the step ran (false: it stopped at a request that differs from the recorded step's,
// before any block overlapping a live one was handed out and before the optimizer's update; the
// caller runs it again without the arena). *why is set when the arena cannot serve later steps.
bool GraphStep::replay(std::string* why) {
  std::unique_ptr<ArenaMode> arena_mode;
  std::string arena_why;
  try {
    if (!arena_.defined()) {
      SEIS_CHECK(memory_arena_live_blocks(device_) == 0, "blocks of an earlier arena are still in use");
      arena_ = Tensor::empty({plan_->bytes}, DType::u8, device_);
    }
    arena_mode = std::make_unique<ArenaMode>(device_, arena_.storage()->block(), plan_);
    body();
  } catch (const std::exception& e) {
    if (arena_mode) arena_mode->end(&arena_why);
    drop_gradients();
    release_arena();
    *why = e.what();
    return false;
  }
  if (!arena_mode->end(&arena_why)) {
    *why = "its allocations differ from the recorded step's: " + arena_why;
    release_arena();
  }
  return true;
}

// A capture cut short in backward leaves gradients that no kernel wrote on the parameters: the
// eager step that follows would add into them.
void GraphStep::drop_gradients() {
  for (const Var& p : model_.param_vars()) p->grad = Tensor();
}

GraphStep::Result GraphStep::run(Tensor* data, Tensor* label, float lr) {
  SEIS_CHECK(data->device() == device_ && label->device() == device_,
             "GraphStep: the batch is not on " << device_.str());
  // The input in the activation type: the model's input cast then happens here, before the graph,
  // with the same kernel, and the graph's forward starts from what the eager one casts to.
  const DType input_type = activation_dtype(model_.exec(), device_);
  SEIS_CHECK(label->dtype() == DType::u8 && (data->dtype() == DType::f32 || data->dtype() == input_type),
             "GraphStep: a batch of " << dtype_name(data->dtype()) << " data and " << dtype_name(label->dtype())
                                      << " labels; expected f32 or " << dtype_name(input_type) << " and u8");
  if (!data_.defined() || data_.shape() != data->shape() || data_.dtype() != input_type ||
      label_.shape() != label->shape()) {
    reset();
    plan_.reset();
    data_ = Tensor();
    label_ = Tensor();
    data_ = Tensor::empty(data->shape(), input_type, device_);
    label_ = Tensor::empty(label->shape(), label->dtype(), device_);
  }
  if (data->dtype() != input_type) {  // f32 into bf16
    SEIS_DISPATCH(*data, convert, data->numel(), data->data<float>(), data_.data<bf16>());
  } else {
    copy_async(device_, data_.raw(), data->raw(), data->nbytes());
  }
  copy_async(device_, label_.raw(), label->raw(), label->nbytes());
  // The batch is in the graph's inputs: its blocks go back to the cache (in compute-stream order).
  *data = Tensor();
  *label = Tensor();
  // The previous step is done (its loss was read), so the staging buffer is free.
  *scalars_host_ = optimizer_.begin_step(lr);
  copy_async(device_, scalars_.raw(), scalars_host_, sizeof(UpdateScalars));
  Result r;
  if (!plan_) {
    // The step runs eagerly while its allocations are recorded; their plan serves the next capture.
    RecordMode record(device_);
    StepTrace trace;
    std::string why;
    try {
      body();
    } catch (...) {
      drop_gradients();
      throw;
    }
    if (record.end(&trace, &why)) {
      plan_ = std::make_shared<const ArenaPlan>(plan_arena(std::move(trace)));
    } else {
      r.gave_up = "the step cannot be planned: " + why;
    }
  } else if (!capture_) {
    r.arena = replay(&r.gave_up);
    if (!r.arena) body();  // stopped before it changed anything: the step without the arena
  } else if (ready() || capture(&r.gave_up)) {
    if (graph_) graph_->launch();
    r.launched = true;
    r.arena = true;
  } else {
    body();  // the capture ran nothing: the step runs eagerly on the inputs it left
  }
  if (!device_.shape_only) cuda_stream_synchronize(cuda_compute_stream(device_.index));
  r.loss = *loss_host_;
  return r;
}

}  // namespace seis
