#include "apps/graph_step.h"

#include "apps/trainer.h"
#include "engine/cuda_stream.h"
#include "engine/device_runtime.h"
#include "engine/error.h"

namespace seis {

namespace {
constexpr int64_t kScalarFloats = (sizeof(UpdateScalars) + sizeof(float) - 1) / sizeof(float);
}  // namespace

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
  graph_.reset();  // waits for queued launches, which read the pinned buffers
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
    *why = std::string(e.what()) + (cuda_why.empty() ? "" : "; the capture: " + cuda_why);
    return false;
  }
  return graph_.end_capture(why);
}

bool GraphStep::run(const Tensor& data, const Tensor& label, float lr, double* loss, std::string* why) {
  SEIS_CHECK(data.device() == model_.device() && label.device() == model_.device(),
             "GraphStep: the batch is not on " << model_.device().str());
  if (!data_.defined() || data_.shape() != data.shape() || data_.dtype() != data.dtype() ||
      label_.shape() != label.shape()) {
    graph_.reset();
    data_ = Tensor();
    label_ = Tensor();
    data_ = Tensor::empty(data.shape(), data.dtype(), data.device());
    label_ = Tensor::empty(label.shape(), label.dtype(), label.device());
  }
  cuda_copy_async(device_, data_.raw(), data.raw(), data.nbytes());
  cuda_copy_async(device_, label_.raw(), label.raw(), label.nbytes());
  if (!graph_.ready() && !capture(why)) return false;
  // The previous launch is done (its loss was read), so the staging buffer is free.
  *scalars_host_ = optimizer_.begin_step(lr);
  cuda_copy_async(device_, scalars_.raw(), scalars_host_, sizeof(UpdateScalars));
  graph_.launch();
  cuda_stream_synchronize(cuda_compute_stream(device_));
  *loss = *loss_host_;
  return true;
}

}  // namespace seis
