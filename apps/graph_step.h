// The training step as one CUDA graph (SEIS_CUDA_GRAPH=1, see train()): the forward, the loss,
// the backward and the optimizer update of one process on one GPU, captured once and then launched
// once per step, so that the GPU runs the step's few hundred kernels without a gap between them.
// The graph reads its batch from input buffers of its own (each step's batch is copied there on the
// device, in the activation type) and the step's learning rate and bias corrections from device memory
// (Optimizer::begin_step/step_from); everything else it touches keeps its address from step to
// step. Each launch computes what the eager step computes, bit for bit, except that the loss is
// read after the update rather than between the forward and the backward.
#pragma once
#include <string>

#include "engine/cuda_graph.h"
#include "engine/optimizer.h"
#include "engine/tensor.h"
#include "models/unet.h"

namespace seis {

// Whether SEIS_CUDA_GRAPH=1 asks for the step as a CUDA graph (train, plan and --batch auto).
bool cuda_graph_switch();

class GraphStep {
 public:
  GraphStep(const UNet& model, Optimizer& optimizer, float pos_weight);
  ~GraphStep();
  GraphStep(const GraphStep&) = delete;
  GraphStep& operator=(const GraphStep&) = delete;

  // One step on the batch (*data f32 [B, H, W, C], *label u8 [B, H, W]) at `lr`; the loss in *loss
  // (this waits for the step to finish). The batch is copied into the graph's inputs (the data
  // cast to the activation type there, as the model's first op would) and released: *data and
  // *label are empty afterwards, so that the graph's step holds no more memory than the eager one.
  // The first call captures the graph (again after reset(), or for a batch of another shape). False,
  // with the reason in *why, when the capture failed: then nothing of the step has run, the
  // optimizer has not counted it, the batch is left as it was, and the caller runs the step without
  // a graph.
  bool run(Tensor* data, Tensor* label, float lr, double* loss, std::string* why);
  // Releases the graph and its memory pool, for work that needs the memory (validation); the next
  // run() captures again.
  void reset();

 private:
  bool capture(std::string* why);
  void drop_gradients();

  const UNet& model_;
  Optimizer& optimizer_;
  float pos_weight_;
  int device_;
  CudaGraph graph_;
  Tensor data_, label_;                    // the graph's inputs
  Tensor scalars_;                         // UpdateScalars on the device
  UpdateScalars* scalars_host_ = nullptr;  // pinned staging for scalars_
  float* loss_host_ = nullptr;             // pinned: the graph's last node copies the loss here
};

}  // namespace seis
