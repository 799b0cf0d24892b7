// The training loop: batches from a SampleSource (per-epoch seeded permutation), forward, BCE loss,
// backward, optimizer step; periodic logs and validation with IoU, precision, recall and F1.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/optimizer.h"
#include "io/normalize.h"
#include "models/unet.h"

namespace seis {

// Gathers by index: data [H, W] float32 (time x receivers) and label [H, W] u8.
class SampleSource {
 public:
  virtual ~SampleSource() = default;
  virtual int64_t size() const = 0;
  virtual int64_t height() const = 0;
  virtual int64_t width() const = 0;
  virtual void read(int64_t index, float* data, uint8_t* label) = 0;
};

struct TrainOptions {
  UNetConfig model;
  int64_t batch = 4;
  int64_t steps = 100;
  OptimizerConfig optimizer;
  float pos_weight = 1.0f;
  Normalize normalize = Normalize::trace;
  uint64_t seed = 0;
  Device device;
  ExecConfig exec;
  int64_t log_every = 10;
  float threshold = 0.5f;
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
  double loss = 0;
  double samples_per_s = 0;
  double elapsed_s = 0;
};

struct TrainResult {
  std::vector<StepLog> log;
  std::vector<double> losses;  // every step's training loss
  EvalResult val;
  double seconds = 0;
};

// Builds the model input [B, H, W, 1] and labels [B, H, W] for `indices`, normalised, on `device`.
void load_batch(SampleSource& src, const std::vector<int64_t>& indices, Normalize normalize, Device device,
                Tensor* data, Tensor* label);

// The position of every sample in epoch `epoch`: a permutation seeded by (seed, epoch).
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

EvalResult evaluate(const UNet& model, SampleSource& src, int64_t batch, Normalize normalize, float pos_weight,
                    float threshold);

// Trains `model` in place. `on_log` (optional) sees each log line's figures.
TrainResult train(UNet& model, SampleSource& train_src, SampleSource* val_src, const TrainOptions& opt,
                  const std::function<void(const StepLog&)>& on_log = nullptr);

}  // namespace seis
