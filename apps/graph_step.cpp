#include "apps/graph_step.h"

#include <cstdio>
#include <cstdlib>

#include "apps/trainer.h"
#include "engine/cuda_stream.h"
#include "engine/device_runtime.h"
#include "engine/dispatch.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "kernels/elementwise.h"

namespace seis {

namespace {
constexpr int64_t kScalarFloats = (sizeof(UpdateScalars) + sizeof(float) - 1) / sizeof(float);
}  // namespace

bool cuda_graph_switch() {
  const char* g = std::getenv("SEIS_CUDA_GRAPH");
  return g != nullptr && std::string(g) == "1";
}

GraphStep::GraphStep(const UNet& model, Optimizer& optimizer, float pos_weight)
    : model_(model),
      optimizer_(optimizer),
      pos_weight_(pos_weight),
      device_(model.device().index),
      graph_(model.device().index) {
  SEIS_CHECK(model.device().is_cuda() && !model.device().shape_only,
             "a CUDA graph of the step needs the model on a GPU, not " << model.device().str());
  scalars_ = Tensor::empty({kScalarFloats}, DType::f32, model.device());
  scalars_host_ = static_cast<UpdateScalars*>(pinned_alloc(sizeof(UpdateScalars)));
  loss_host_ = static_cast<float*>(pinned_alloc(sizeof(float)));
}

GraphStep::~GraphStep() {
  try {
    graph_.reset();                    // waits for queued launches, which read the pinned buffers
  } catch (const std::exception& e) {  // (a destructor that throws during unwinding ends the process)
    std::fprintf(stderr, "warning: releasing the CUDA graph of the step: %s\n", e.what());
  }
  pinned_free(scalars_host_);
  pinned_free(loss_host_);
}

void GraphStep::reset() { graph_.reset(); }

bool GraphStep::capture(std::string* why) {
  try {
    graph_.begin_capture();
    Tape tape;
    const Var loss = step_forward(tape, model_, data_, label_, pos_weight_, 1);
    cuda_copy_async(device_, loss_host_, loss->value.raw(), sizeof(float));
    tape.backward(loss);
    optimizer_.step_from(reinterpret_cast<const UpdateScalars*>(scalars_.raw()));
  } catch (const std::exception& e) {
    std::string cuda_why;
    graph_.end_capture(&cuda_why);
    drop_gradients();
    *why = std::string(e.what()) + (cuda_why.empty() ? "" : "; the capture: " + cuda_why);
    return false;
  }
  if (graph_.end_capture(why)) return true;
  drop_gradients();
  return false;
}

// A capture cut short in backward leaves gradients that no kernel wrote on the parameters: the
// eager step that follows would add into them.
void GraphStep::drop_gradients() {
  for (const Var& p : model_.param_vars()) p->grad = Tensor();
}

bool GraphStep::run(Tensor* data, Tensor* label, float lr, double* loss, std::string* why) {
  SEIS_CHECK(data->device() == model_.device() && label->device() == model_.device(),
             "GraphStep: the batch is not on " << model_.device().str());
  // The input in the activation type: the model's input cast then happens here, before the graph,
  // with the same kernel, and the graph's forward starts from what the eager one casts to.
  const DType input_type = activation_dtype(model_.exec(), model_.device());
  if (!data_.defined() || data_.shape() != data->shape() || data_.dtype() != input_type ||
      label_.shape() != label->shape()) {
    graph_.reset();
    data_ = Tensor();
    label_ = Tensor();
    data_ = Tensor::empty(data->shape(), input_type, data->device());
    label_ = Tensor::empty(label->shape(), label->dtype(), label->device());
  }
  SEIS_CHECK(label->dtype() == DType::u8 && data->dtype() == DType::f32,
             "GraphStep: a batch of " << dtype_name(data->dtype()) << " data and " << dtype_name(label->dtype())
                                      << " labels; expected f32 and u8");
  if (input_type == DType::bf16) {
    SEIS_DISPATCH(*data, convert, data->numel(), data->data<float>(), data_.data<bf16>());
  } else {
    cuda_copy_async(device_, data_.raw(), data->raw(), data->nbytes());
  }
  cuda_copy_async(device_, label_.raw(), label->raw(), label->nbytes());
  if (!graph_.ready() && !capture(why)) return false;
  // The batch is in the graph's inputs: its blocks go back to the cache (in compute-stream order).
  *data = Tensor();
  *label = Tensor();
  // The previous launch is done (its loss was read), so the staging buffer is free.
  *scalars_host_ = optimizer_.begin_step(lr);
  cuda_copy_async(device_, scalars_.raw(), scalars_host_, sizeof(UpdateScalars));
  graph_.launch();
  cuda_stream_synchronize(cuda_compute_stream(device_));
  *loss = *loss_host_;
  return true;
}

}  // namespace seis
