#include "apps/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>

#include "apps/graph_step.h"
#include "engine/device_runtime.h"
#include "engine/error.h"
#include "engine/memory.h"
#include "io/sample_reader.h"

namespace seis {

namespace {
double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

void load_batch(const SampleSource& src, const std::vector<int64_t>& indices, Normalize normalize, Device device,
                Tensor* data, Tensor* label, Tensor* trace_valid) {
  const int64_t b = static_cast<int64_t>(indices.size()), h = src.height(), w = src.width();
  Tensor hd = Tensor::empty({b, h, w, 1});
  Tensor hl = Tensor::empty({b, h, w}, DType::u8);
  // Padding traces are zero traces whatever the file holds (zero_padding_traces), for every caller.
  const bool masked = src.has_trace_valid();
  Tensor hv = masked ? Tensor::empty({b, w}, DType::u8) : Tensor();
  for (int64_t i = 0; i < b; ++i) {
    float* d = hd.data<float>() + i * h * w;
    src.read(indices[i], d, hl.data<uint8_t>() + i * h * w);
    if (masked) {
      src.read_trace_valid(indices[i], hv.data<uint8_t>() + i * w);
      zero_padding_traces(hv.data<uint8_t>() + i * w, h, w, d);
    }
    normalize_gather(normalize, h, w, d);
  }
  *data = hd.to(device);
  *label = hl.to(device);
  if (trace_valid != nullptr) *trace_valid = masked ? hv.to(device) : Tensor();
}

EvalResult evaluate(const UNet& model, const SampleSource& src, int64_t batch, Normalize normalize, float pos_weight,
                    float threshold, Communicator* comm, const std::function<void(int64_t, const float*)>& on_logits) {
  const int world = comm != nullptr ? comm->world() : 1, rank = comm != nullptr ? comm->rank() : 0;
  std::vector<int64_t> mine;  // this rank's share
  for (int64_t i = rank; i < src.size(); i += world) mine.push_back(i);
  if (world > 1) batch = std::max<int64_t>(1, batch / world);
  const int64_t count = static_cast<int64_t>(mine.size());
  EvalResult r;
  double loss_sum = 0;
  for (int64_t start = 0; start < count; start += batch) {
    std::vector<int64_t> idx(mine.begin() + start, mine.begin() + std::min(count, start + batch));
    Tensor data, label, valid;
    load_batch(src, idx, normalize, model.device(), &data, &label, &valid);
    Var logits = model.forward(nullptr, make_var(data));
    const int64_t counted = counted_elements(label, valid);
    const Var loss = bce_with_logits(nullptr, logits, label, pos_weight, 0, valid);
    loss_sum += static_cast<double>(scalar_value(loss->value)) * static_cast<double>(counted);
    const auto c = confusion_counts(logits->value, label, threshold, valid);
    r.tp += c[0];
    r.fp += c[1];
    r.fn += c[2];
    r.pixels += counted;
    if (on_logits) {
      Tensor host = logits->value.to(Device::cpu());
      if (host.dtype() != DType::f32) host = host.to_dtype(DType::f32);  // bf16 activations
      const int64_t h = src.height(), w = src.width();
      const Tensor host_valid = valid.defined() ? valid.to(Device::cpu()) : Tensor();
      for (size_t b = 0; b < idx.size(); ++b) {
        float* l = host.data<float>() + static_cast<int64_t>(b) * h * w;
        if (host_valid.defined()) {
          const uint8_t* v = host_valid.data<uint8_t>() + static_cast<int64_t>(b) * w;
          for (int64_t j = 0; j < w; ++j) {
            if (v[j] != 0) continue;
            for (int64_t t = 0; t < h; ++t) l[t * w + j] = -std::numeric_limits<float>::infinity();
          }
        }
        on_logits(idx[b], l);
      }
    }
  }
  if (world > 1) {
    int64_t counts[4] = {r.tp, r.fp, r.fn, r.pixels};
    comm->allreduce_sum_host(counts, 4);
    comm->allreduce_sum_host(&loss_sum, 1);
    r.tp = counts[0];
    r.fp = counts[1];
    r.fn = counts[2];
    r.pixels = counts[3];
  }
  r.loss = r.pixels > 0 ? loss_sum / static_cast<double>(r.pixels) : 0.0;
  return r;
}

namespace {
void check_finite_loss(double loss, int64_t steps_done) {
  if (!std::isfinite(loss)) {
    throw InputError("training diverged at step " + std::to_string(steps_done + 1) + ": the loss is " +
                     std::to_string(loss) + "; lower --lr or check the data for NaN/Inf");
  }
}
}  // namespace

DType batch_dtype(const ExecConfig& exec, Device device) {
  return device.is_cuda() ? activation_dtype(exec, device) : DType::f32;
}

Var step_forward(Tape& tape, const UNet& model, Tensor data, const Tensor& label, float pos_weight, int world,
                 const Tensor& trace_valid, Communicator* comm) {
  // The mean over the global batch: this rank's loss and gradients are partial sums of it.
  int64_t mean_over = world > 1 ? label.numel() * world : 0;
  if (trace_valid.defined() && world > 1) {
    SEIS_CHECK(comm != nullptr, "step_forward: padding traces on " << world << " ranks without a communicator");
    mean_over = counted_elements(label, trace_valid);  // the real pixels of all ranks' shares
    comm->allreduce_sum_host(&mean_over, 1);
  }
  return bce_with_logits(&tape, model.forward(&tape, make_var(std::move(data))), label, pos_weight, mean_over,
                         trace_valid);
}

void step_backward(Tape& tape, const Var& loss, GradBucketer* buckets, Optimizer& optimizer, float lr) {
  tape.backward(loss);
  if (buckets != nullptr) buckets->finish();
  optimizer.step(lr);
}

TrainResult train(UNet& model, Optimizer& optimizer, BatchSource& batches, const SampleSource* val,
                  const TrainOptions& opt, const TrainProgress& start, const TrainHooks& hooks) {
  SEIS_CHECK(batches.batches_per_epoch() > 0, "no complete batch in an epoch");
  model.set_exec(opt.exec);
  const Device device = model.device();
  if (device.is_cuda()) cuda_set_device(device.index);
  reset_memory_peak(device);
  Communicator* comm = opt.comm;
  const int world = comm != nullptr ? comm->world() : 1;
  std::unique_ptr<GradBucketer> buckets;
  if (world > 1) buckets = std::make_unique<GradBucketer>(*comm, model.param_vars(), opt.bucket_bytes);
  std::unique_ptr<GraphStep> graph;
  // (the switch a message names)
  const char* graph_switch = opt.cuda_graph ? "SEIS_CUDA_GRAPH" : "SEIS_CUDA_ARENA";
  if (opt.cuda_graph || opt.step_arena) {
    if (device.is_cuda() && !device.shape_only && world == 1) {
      graph = std::make_unique<GraphStep>(model, optimizer, opt.pos_weight, opt.cuda_graph);
    } else {
      std::fprintf(stderr,
                   "seisseg: %s: the step runs without a CUDA graph or arena (they need one process "
                   "on a GPU)\n",
                   graph_switch);
    }
  }
  TrainResult result;
  TrainProgress p = start;
  batches.seek(p.epoch, p.batch);
  const double t0 = now_s();
  double t_log = t0, wait_since_log = 0;
  int64_t samples_since_log = 0;
  try {
    while (p.step < opt.steps) {
      Tensor data, label, valid;
      batches.next(&data, &label, &valid);
      wait_since_log += batches.take_wait_seconds();
      const int64_t batch_samples = data.dim(0);
      const float lr = opt.lr.at(p.step);
      double loss_v = 0;
      bool stepped = false;
      if (graph && valid.defined()) {
        std::fprintf(stderr,
                     "seisseg: %s: the step runs without a CUDA graph or arena (the data has padding "
                     "traces, whose count changes the loss's mean from batch to batch)\n",
                     graph_switch);
        graph.reset();
      }
      if (graph && p.step > start.step) {
        // The run's first step is eager (it makes the optimizer's state and the kernels' lasting
        // buffers); the graph records the second, captures the third and launches from then on.
        const GraphStep::Result r = graph->run(&data, &label, lr);
        stepped = true;
        loss_v = r.loss;
        if (r.launched) ++result.graph_steps;
        if (r.arena) ++result.arena_steps;
        if (!r.gave_up.empty()) {
          std::fprintf(stderr,
                       "seisseg: %s: the step cannot run as a CUDA graph or from its arena (%s); training goes "
                       "on without\n",
                       graph_switch, r.gave_up.c_str());
          graph.reset();
        }
      }
      if (stepped) {
        // The loss of a graph's step is read after its update: a divergence stops the run one update later.
        check_finite_loss(loss_v, p.step);
      } else {
        Tape tape;
        const Var loss = step_forward(tape, model, std::move(data), label, opt.pos_weight, world, valid, comm);
        loss_v = scalar_value(loss->value);
        if (world > 1) comm->allreduce_sum_host(&loss_v, 1);
        check_finite_loss(loss_v, p.step);
        step_backward(tape, loss, buckets.get(), optimizer, lr);
      }
      result.losses.push_back(loss_v);
      ++p.step;
      if (++p.batch >= batches.batches_per_epoch()) {
        ++p.epoch;
        p.batch = 0;
      }
      samples_since_log += batch_samples * world;
      p.log_loss_sum += loss_v;
      ++p.log_steps;
      const bool on_schedule = p.step % opt.log_every == 0;
      if (on_schedule || p.step == opt.steps) {
        const double t = now_s();
        if (world > 1) {  // the mean over the ranks
          comm->allreduce_sum_host(&wait_since_log, 1);
          wait_since_log /= world;
        }
        StepLog l;
        l.step = p.step;
        l.epoch = p.epoch;
        l.loss = p.log_loss_sum / static_cast<double>(p.log_steps);
        l.lr = lr;
        l.samples_per_s = static_cast<double>(samples_since_log) / std::max(1e-9, t - t_log);
        l.data_wait = std::min(1.0, wait_since_log / std::max(1e-9, t - t_log));
        l.elapsed_s = t - t0;
        l.peak_bytes = memory_peak(device);
        if (hooks.on_log) hooks.on_log(l);
        t_log = t;
        samples_since_log = 0;
        wait_since_log = 0;
        // The last step of a run logs off the schedule without closing the interval: a resumed
        // run continues it.
        if (on_schedule) {
          p.log_loss_sum = 0;
          p.log_steps = 0;
        }
      }
      const bool validate_now = val != nullptr && val->size() > 0 &&
                                ((opt.val_every > 0 && p.step % opt.val_every == 0) || p.step == opt.steps);
      if (validate_now) {
        if (graph) graph->reset();  // its arena, for the validation
        result.val =
            evaluate(model, *val, opt.batch, opt.normalize, opt.pos_weight, opt.threshold, comm, hooks.on_val_logits);
        if (hooks.on_validation) hooks.on_validation(p, result.val);
      }
      if (hooks.after_step) hooks.after_step(p);
      bool stop = hooks.should_stop && hooks.should_stop();
      if (world > 1) {  // every rank stops at the same step
        int64_t votes = stop ? 1 : 0;
        comm->allreduce_sum_host(&votes, 1);
        stop = votes > 0;
      }
      if (stop) {
        result.stopped = p.step < opt.steps;
        break;
      }
    }
  } catch (...) {
    if (hooks.on_error) hooks.on_error(std::current_exception());
    throw;
  }
  result.progress = p;
  result.seconds = now_s() - t0;
  return result;
}

}  // namespace seis
