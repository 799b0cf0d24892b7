#include "apps/trainer.h"

#include <chrono>
#include <cmath>

#include "engine/device_runtime.h"
#include "engine/error.h"
#include "io/sample_order.h"

namespace seis {

namespace {
double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

void load_batch(SampleSource& src, const std::vector<int64_t>& indices, Normalize normalize, Device device,
                Tensor* data, Tensor* label) {
  const int64_t b = static_cast<int64_t>(indices.size()), h = src.height(), w = src.width();
  Tensor hd = Tensor::empty({b, h, w, 1});
  Tensor hl = Tensor::empty({b, h, w}, DType::u8);
  for (int64_t i = 0; i < b; ++i) {
    float* d = hd.data<float>() + i * h * w;
    src.read(indices[i], d, hl.data<uint8_t>() + i * h * w);
    normalize_gather(normalize, h, w, d);
  }
  *data = hd.to(device);
  *label = hl.to(device);
}

SyncBatchSource::SyncBatchSource(SampleSource& src, int64_t batch, uint64_t seed, Normalize normalize, Device device)
    : src_(src), batch_(batch), seed_(seed), normalize_(normalize), device_(device) {
  if (src.size() < batch) {
    throw UsageError("--batch " + std::to_string(batch) + " is larger than the " + std::to_string(src.size()) +
                     " training samples");
  }
}

int64_t SyncBatchSource::batches_per_epoch() const { return src_.size() / batch_; }

void SyncBatchSource::seek(int64_t epoch, int64_t batch) {
  epoch_ = epoch;
  pos_ = batch;
}

void SyncBatchSource::next(Tensor* data, Tensor* label) {
  if (pos_ >= batches_per_epoch()) {
    ++epoch_;
    pos_ = 0;
  }
  if (perm_epoch_ != epoch_) {
    perm_ = epoch_permutation(src_.size(), seed_, epoch_);
    perm_epoch_ = epoch_;
  }
  std::vector<int64_t> idx(perm_.begin() + pos_ * batch_, perm_.begin() + (pos_ + 1) * batch_);
  load_batch(src_, idx, normalize_, device_, data, label);
  ++pos_;
}

EvalResult evaluate(const UNet& model, SampleSource& src, int64_t batch, Normalize normalize, float pos_weight,
                    float threshold) {
  EvalResult r;
  double loss_sum = 0;
  for (int64_t start = 0; start < src.size(); start += batch) {
    std::vector<int64_t> idx;
    for (int64_t i = start; i < std::min(src.size(), start + batch); ++i) idx.push_back(i);
    Tensor data, label;
    load_batch(src, idx, normalize, model.device(), &data, &label);
    Var logits = model.forward(nullptr, make_var(data));
    const Var loss = bce_with_logits(nullptr, logits, label, pos_weight);
    loss_sum += static_cast<double>(scalar_value(loss->value)) * static_cast<double>(label.numel());
    const auto c = confusion_counts(logits->value, label, threshold);
    r.tp += c[0];
    r.fp += c[1];
    r.fn += c[2];
    r.pixels += label.numel();
  }
  r.loss = r.pixels > 0 ? loss_sum / static_cast<double>(r.pixels) : 0.0;
  return r;
}

TrainResult train(UNet& model, Optimizer& optimizer, BatchSource& batches, SampleSource* val, const TrainOptions& opt,
                  const TrainProgress& start, const TrainHooks& hooks) {
  SEIS_CHECK(batches.batches_per_epoch() > 0, "no complete batch in an epoch");
  set_exec_config(opt.exec);
  const Device device = model.device();
  if (device.is_cuda()) {
    cuda_set_device(device.index);
    cuda_reset_peak_bytes(device.index);
  }
  TrainResult result;
  TrainProgress p = start;
  batches.seek(p.epoch, p.batch);
  const double t0 = now_s();
  double t_log = t0, wait_since_log = 0, loss_since_log = 0;
  int64_t samples_since_log = 0, steps_since_log = 0;
  while (p.step < opt.steps) {
    Tensor data, label;
    batches.next(&data, &label);
    wait_since_log += batches.take_wait_seconds();
    Tape tape;
    Var loss = bce_with_logits(&tape, model.forward(&tape, make_var(data)), label, opt.pos_weight);
    const double loss_v = scalar_value(loss->value);
    if (!std::isfinite(loss_v)) {
      throw InputError("training diverged at step " + std::to_string(p.step + 1) + ": the loss is " +
                       std::to_string(loss_v) + "; lower --lr or check the data for NaN/Inf");
    }
    tape.backward(loss);
    const float lr = opt.lr.at(p.step);
    optimizer.step(lr);
    result.losses.push_back(loss_v);
    ++p.step;
    if (++p.batch >= batches.batches_per_epoch()) {
      ++p.epoch;
      p.batch = 0;
    }
    samples_since_log += data.dim(0);
    loss_since_log += loss_v;
    ++steps_since_log;
    if (p.step % opt.log_every == 0 || p.step == opt.steps) {
      const double t = now_s();
      StepLog l;
      l.step = p.step;
      l.epoch = p.epoch;
      l.loss = loss_since_log / static_cast<double>(steps_since_log);
      l.lr = lr;
      l.samples_per_s = static_cast<double>(samples_since_log) / std::max(1e-9, t - t_log);
      l.data_wait = std::min(1.0, wait_since_log / std::max(1e-9, t - t_log));
      l.elapsed_s = t - t0;
      l.peak_bytes = device.is_cuda() ? cuda_peak_bytes(device.index) : 0;
      if (hooks.on_log) hooks.on_log(l);
      t_log = t;
      samples_since_log = steps_since_log = 0;
      loss_since_log = wait_since_log = 0;
    }
    const bool validate_now = val != nullptr && val->size() > 0 &&
                              ((opt.val_every > 0 && p.step % opt.val_every == 0) || p.step == opt.steps);
    if (validate_now) {
      result.val = evaluate(model, *val, opt.batch, opt.normalize, opt.pos_weight, opt.threshold);
      if (hooks.on_validation) hooks.on_validation(p, result.val);
    }
    if (hooks.after_step) hooks.after_step(p);
    if (hooks.should_stop && hooks.should_stop()) {
      result.stopped = p.step < opt.steps;
      break;
    }
  }
  result.progress = p;
  result.seconds = now_s() - t0;
  return result;
}

}  // namespace seis
