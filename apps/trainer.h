// The training loop: batches from a BatchSource, forward, BCE loss, backward, optimizer step at the
// schedule's rate; log intervals, periodic validation (IoU, precision, recall, F1) and checkpoint
// points reported through hooks. Where it starts (step, epoch, batch) is an argument, so a resumed
// run continues exactly where the interrupted one stopped.
#pragma once
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "engine/communicator.h"
#include "engine/grad_buckets.h"
#include "engine/lr_schedule.h"
#include "engine/ops.h"
#include "engine/optimizer.h"
#include "io/normalize.h"
#include "io/sample_source.h"
#include "models/unet.h"

namespace seis {

// Training batches in a fixed order per (seed, epoch).
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t batches_per_epoch() const = 0;
  // The next next() returns batch `batch` of epoch `epoch`.
  virtual void seek(int64_t epoch, int64_t batch) = 0;
  // data [b, H, W, 1] f32 and labels [b, H, W] u8 on the training device; trace_valid [b, W] u8
  // (1 real, 0 padding) when the data has padding traces, else left undefined.
  virtual void next(Tensor* data, Tensor* label, Tensor* trace_valid) = 0;
  // Seconds next() waited for data since the last call.
  virtual double take_wait_seconds() { return 0.0; }
};

// The position in a run: steps done, and the epoch and batch the next step takes.
struct TrainProgress {
  int64_t step = 0;
  int64_t epoch = 0;
  int64_t batch = 0;
  // The losses since the last log on the --log-every schedule, so that a resumed run logs the
  // same interval means as an uninterrupted one.
  double log_loss_sum = 0;
  int64_t log_steps = 0;
};

struct TrainOptions {
  int64_t batch = 4;
  int64_t steps = 100;  // total for the run, counting steps done before a resume
  LrSchedule lr;
  float pos_weight = 1.0f;
  Normalize normalize = Normalize::trace;
  ExecConfig exec;
  int64_t log_every = 10;
  int64_t val_every = 0;  // steps between validations; 0: at the end only
  float threshold = 0.5f;
  // Data parallelism: with a communicator of world W > 1, `batches` yields this rank's B/W of each
  // global batch; the loss is the mean over the global batch, gradients are sum-allreduced in
  // buckets of `bucket_bytes` during backward, the reported loss, samples/s, data wait and
  // validation are over all ranks, and a stop request on any rank stops every rank at the same
  // step. Null (or world 1): one process, no communication at all.
  Communicator* comm = nullptr;
  int64_t bucket_bytes = int64_t{25} << 20;
  // Run the step as a CUDA graph (apps/graph_step.h; SEIS_CUDA_GRAPH=1 in train and bench_step):
  // one process on a GPU, batches without padding traces. The first step of a call runs without a
  // graph (it settles cuDNN's choices and the allocator's blocks), and so does any step whose capture
  // fails (said once on stderr, and the run goes on without graphs). A validation releases the
  // graph's memory first; the next step captures again.
  bool cuda_graph = false;
  // Without a graph, the same arena (SEIS_CUDA_ARENA=1): every step after the recorded one runs
  // eagerly with its temporaries in the arena, which stays allocated between steps. Same conditions;
  // cuda_graph wins when both are asked.
  bool step_arena = false;
};

struct EvalResult {
  double loss = 0;
  int64_t tp = 0, fp = 0, fn = 0, pixels = 0;
  double iou() const { return tp + fp + fn > 0 ? static_cast<double>(tp) / static_cast<double>(tp + fp + fn) : 1.0; }
  double precision() const { return tp + fp > 0 ? static_cast<double>(tp) / static_cast<double>(tp + fp) : 1.0; }
  double recall() const { return tp + fn > 0 ? static_cast<double>(tp) / static_cast<double>(tp + fn) : 1.0; }
  double f1() const {
    const double p = precision(), r = recall();
    return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
  }
};

struct StepLog {
  int64_t step = 0;
  int64_t epoch = 0;
  double loss = 0;  // mean over the interval
  double lr = 0;
  double samples_per_s = 0;
  double data_wait = 0;  // fraction of the interval spent waiting for data
  double elapsed_s = 0;
  int64_t peak_bytes = 0;  // the training device's allocator peak (engine/memory.h)
};

struct TrainHooks {
  std::function<void(const StepLog&)> on_log;
  std::function<void(const TrainProgress&, const EvalResult&)> on_validation;
  // During each validation, before on_validation: the logits [H][W] (host) of every validation
  // sample this rank evaluates (see evaluate()), by index into the validation source.
  std::function<void(int64_t, const float*)> on_val_logits;
  // After every step; the caller decides whether a checkpoint is due.
  std::function<void(const TrainProgress&)> after_step;
  // Checked after every step: true stops the loop (e.g. on SIGINT), the progress is returned.
  std::function<bool()> should_stop;
  // Sees an error of the loop before anything is unwound (the gradient buckets may still be in
  // flight): a multi-rank run aborts the whole job here. The error is rethrown afterwards.
  std::function<void(std::exception_ptr)> on_error;
};

struct TrainResult {
  TrainProgress progress;      // where the run stopped
  std::vector<double> losses;  // each step's training loss, this call only
  EvalResult val;              // the last validation
  bool stopped = false;        // should_stop ended the run early
  double seconds = 0;
  int64_t graph_steps = 0;  // steps run as a CUDA graph (TrainOptions::cuda_graph)
  int64_t arena_steps = 0;  // steps whose temporaries came from the arena (graph launches included)
};

// Builds the model input [B, H, W, 1] and labels [B, H, W] for `indices`, normalised, on `device`,
// and trace_valid [B, W] when the source has padding traces and trace_valid is not null (else it is
// left undefined). Padding traces' data is set to zero before the normalisation (zero_padding_traces).
void load_batch(const SampleSource& src, const std::vector<int64_t>& indices, Normalize normalize, Device device,
                Tensor* data, Tensor* label, Tensor* trace_valid = nullptr);

// With a communicator of world W > 1, rank r evaluates the samples i with i % W == r in batches of
// max(1, batch / W), and the counts (exact) and loss sums of all ranks are added: every rank gets
// the result of the whole set. With `on_logits`, each of this rank's samples is passed on with its
// logits [H][W] on the host (padding traces at -inf: probability 0, as predict gives them). With
// padding traces the loss, the counts and `pixels` cover the real traces only.
EvalResult evaluate(const UNet& model, const SampleSource& src, int64_t batch, Normalize normalize, float pos_weight,
                    float threshold, Communicator* comm = nullptr,
                    const std::function<void(int64_t, const float*)>& on_logits = {});

// The type of the batches a training run asks the reader for (SampleReaderOptions::dtype): the
// activations' type on a GPU, where bf16 batches halve the pinned slots and the upload and the model's
// input cast then has nothing to round (the same bits); f32 on the CPU, where they would save only
// a copy's bytes and cost each reader thread a full-size f32 gather.
DType batch_dtype(const ExecConfig& exec, Device device);

// The two halves of a training step, shared by train() and the memory planner (apps/memory_plan.h),
// so that a plan allocates what a step allocates. step_forward records the forward and the loss
// (the mean over the global batch of `world` ranks' equal shares); step_backward runs backward (with
// the gradient buckets' allreduce when `buckets` is not null) and the optimizer step.
// With trace_valid, the loss is the mean over the real traces' pixels of the global batch (their
// count summed over the ranks by `comm` when world > 1), and padding gets no gradient.
// step_forward takes `data`: moved in, the batch is released once the forward no longer needs it
// (under bf16 storage, after the model's input cast; the backward then runs without it).
Var step_forward(Tape& tape, const UNet& model, Tensor data, const Tensor& label, float pos_weight, int world,
                 const Tensor& trace_valid = Tensor(), Communicator* comm = nullptr);
void step_backward(Tape& tape, const Var& loss, GradBucketer* buckets, Optimizer& optimizer, float lr);

// Trains `model` from `start` until opt.steps steps are done (or should_stop says so).
TrainResult train(UNet& model, Optimizer& optimizer, BatchSource& batches, const SampleSource* val,
                  const TrainOptions& opt, const TrainProgress& start, const TrainHooks& hooks = {});

}  // namespace seis
