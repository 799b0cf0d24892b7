#include "apps/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "engine/device_runtime.h"
#include "engine/error.h"
#include "engine/rng.h"

namespace seis {

namespace {
double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  Rng rng(seed, 0x5eed0000ull + static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[rng.below(static_cast<uint64_t>(i + 1))]);
  return p;
}

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

TrainResult train(UNet& model, SampleSource& train_src, SampleSource* val_src, const TrainOptions& opt,
                  const std::function<void(const StepLog&)>& on_log) {
  SEIS_CHECK(train_src.size() > 0, "empty training set");
  model.check_input_size(train_src.height(), train_src.width(), "training data");
  set_exec_config(opt.exec);
  if (model.device().is_cuda()) cuda_set_device(model.device().index);
  Optimizer optimizer(opt.optimizer, model.param_vars());
  TrainResult result;
  const int64_t n = train_src.size();
  const int64_t batches_per_epoch = std::max<int64_t>(1, n / opt.batch);
  const double t0 = now_s();
  double t_log = t0;
  int64_t samples_since_log = 0;
  double loss_since_log = 0;
  int64_t steps_since_log = 0;
  std::vector<int64_t> perm;
  int64_t perm_epoch = -1;
  for (int64_t step = 0; step < opt.steps; ++step) {
    const int64_t epoch = step / batches_per_epoch, pos = step % batches_per_epoch;
    if (epoch != perm_epoch) {
      perm = epoch_permutation(n, opt.seed, epoch);
      perm_epoch = epoch;
    }
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < opt.batch; ++i) idx.push_back(perm[(pos * opt.batch + i) % n]);
    Tensor data, label;
    load_batch(train_src, idx, opt.normalize, model.device(), &data, &label);
    Tape tape;
    Var logits = model.forward(&tape, make_var(data));
    Var loss = bce_with_logits(&tape, logits, label, opt.pos_weight);
    logits.reset();
    const double loss_v = scalar_value(loss->value);
    if (!std::isfinite(loss_v)) {
      throw InputError("training diverged at step " + std::to_string(step + 1) + ": loss is " + std::to_string(loss_v) +
                       "; lower --lr or check the data for NaN/Inf");
    }
    tape.backward(loss);
    optimizer.step(opt.optimizer.lr);
    result.losses.push_back(loss_v);
    samples_since_log += opt.batch;
    loss_since_log += loss_v;
    ++steps_since_log;
    if ((step + 1) % opt.log_every == 0 || step + 1 == opt.steps) {
      const double t = now_s();
      StepLog l;
      l.step = step + 1;
      l.epoch = epoch;
      l.loss = loss_since_log / static_cast<double>(steps_since_log);
      l.samples_per_s = static_cast<double>(samples_since_log) / std::max(1e-9, t - t_log);
      l.elapsed_s = t - t0;
      result.log.push_back(l);
      if (on_log) on_log(l);
      t_log = t;
      samples_since_log = 0;
      loss_since_log = 0;
      steps_since_log = 0;
    }
  }
  if (val_src != nullptr && val_src->size() > 0) {
    result.val = evaluate(model, *val_src, opt.batch, opt.normalize, opt.pos_weight, opt.threshold);
  }
  result.seconds = now_s() - t0;
  return result;
}

}  // namespace seis
