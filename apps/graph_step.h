// The training step as one CUDA graph (SEIS_CUDA_GRAPH=1, see train()): the forward, the loss,
// the backward and the optimizer update of one process on one GPU, captured once and then launched
// once per step, so that the GPU runs the step's few hundred kernels without a gap between them.
// The graph reads its batch from input buffers of its own (each step's batch is copied there on the
// device, in the activation type) and the step's learning rate and bias corrections from device memory
// (Optimizer::begin_step/step_from); everything else it touches keeps its address from step to
// step. Each launch computes what the eager step computes, bit for bit, except that the loss is
// read after the update rather than between the forward and the backward.
//
// Memory: the step's temporaries live in one arena planned from a recorded step
// (engine/step_arena.h). The first run() records the step as it runs it eagerly; the next captures
// it with its allocations served from the arena; later ones launch. The graph then holds about what
// the eager step holds at its peak. Nothing else may allocate on the device while a step is recorded
// or captured (the reader uploads a batch in the trainer's thread, between steps, and one process
// with a graph has no communication thread). On a shape-only GPU nothing is captured or launched, but the
// memory goes through the same stages, so that the planner (apps/memory_plan.h) runs this class.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "engine/cuda_graph.h"
#include "engine/optimizer.h"
#include "engine/step_arena.h"
#include "engine/tensor.h"
#include "models/unet.h"

namespace seis {

// Whether SEIS_CUDA_GRAPH=1 asks for the step as a CUDA graph (train, plan and --batch auto).
bool cuda_graph_switch();
// Whether SEIS_CUDA_ARENA=1 asks for the eager step with its temporaries in the arena (GraphStep
// without a capture): no block is made, cached or searched for during a step, and the device holds
// the step's live peak, not every block the caching allocator ever made for it.
bool cuda_arena_switch();

class GraphStep {
 public:
  // The step's scalars on the device, in floats (UpdateScalars, rounded up).
  static constexpr int64_t kScalarFloats = (sizeof(UpdateScalars) + sizeof(float) - 1) / sizeof(float);

  // The model on a GPU, or on a shape-only GPU (a plan). capture false: the arena without a graph,
  // every step after the recorded one run eagerly with its allocations served from the arena (which
  // is then kept from step to step).
  GraphStep(const UNet& model, Optimizer& optimizer, float pos_weight, bool capture = true);
  ~GraphStep();
  GraphStep(const GraphStep&) = delete;
  GraphStep& operator=(const GraphStep&) = delete;

  struct Result {
    double loss = 0;        // the step's loss (0 on a shape-only GPU)
    bool launched = false;  // the step ran as the graph (not recorded, not eagerly after a failed capture)
    bool arena = false;     // its temporaries came from the arena (a launch, or an eager replay)
    std::string gave_up;    // why the graph cannot serve later steps (the caller goes on without it); empty if it can
  };
  // One step on the batch (*data [B, H, W, C] f32 or in the activation type, *label u8 [B, H, W]) at `lr`; this waits
  // for the step to finish. The batch is copied into the graph's inputs (the data cast to the activation type there, as
  // the model's first op would) and released: *data and *label are empty afterwards, and their blocks serve the step.
  // The step always runs: recorded, captured and launched, or, when the capture failed, eagerly on the graph's inputs.
  Result run(Tensor* data, Tensor* label, float lr);
  // Releases the graph and its arena, for work that needs the memory (validation); the next run()
  // captures again, with the same plan.
  void reset();
  // The arena's plan (null before the recorded step).
  const ArenaPlan* plan() const { return plan_.get(); }

 private:
  void body();
  bool capture(std::string* why);
  bool replay(std::string* why);
  void release_arena();
  void drop_gradients();
  bool ready() const { return graph_ ? graph_->ready() : captured_; }

  const UNet& model_;
  Optimizer& optimizer_;
  float pos_weight_;
  Device device_;
  bool capture_ = true;
  std::unique_ptr<CudaGraph> graph_;  // null on a shape-only GPU and without capture
  bool captured_ = false;             // a shape-only GPU's stand-in for graph_->ready()
  std::shared_ptr<const ArenaPlan> plan_;
  Tensor arena_;
  Tensor data_, label_;                    // the graph's inputs
  Tensor scalars_;                         // UpdateScalars on the device
  UpdateScalars* scalars_host_ = nullptr;  // pinned staging for scalars_
  float* loss_host_ = nullptr;             // pinned: the step's last copy puts the loss here
};

}  // namespace seis
