// seisseg demo: the embedded default. Synthesises microseismic gathers, trains a small UNet on
// whatever device exists, reports validation metrics and writes weights and a preview.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/run_dir.h"
#include "apps/synth_source.h"
#include "apps/trainer.h"
#include "engine/device_runtime.h"
#include "io/png_preview.h"

namespace seis {

namespace {

std::string format_eta(double s) {
  char buf[32];
  const long t = std::lround(std::max(0.0, s));
  std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

void parse_range(const std::string& flag, const std::string& v, double* lo, double* hi) {
  const size_t c = v.find(':');
  try {
    if (c == std::string::npos) throw std::invalid_argument(v);
    size_t used = 0;
    *lo = std::stod(v.substr(0, c), &used);
    if (used != c) throw std::invalid_argument(v);
    *hi = std::stod(v.substr(c + 1), &used);
    if (used != v.size() - c - 1) throw std::invalid_argument(v);
  } catch (const std::exception&) {
    throw UsageError(flag + ": '" + v + "' is not LO:HI");
  }
  if (!(*lo <= *hi)) throw UsageError(flag + ": LO must not exceed HI in '" + v + "'");
}

}  // namespace

int cmd_demo(int argc, char** argv) {
  CLI::App app{"seisseg demo: synthesise a small microseismic set, train a UNet, report and preview", "seisseg demo"};
  std::string out = "seisseg-demo", device_s = "auto", snr = "0:10", precision = "fp32", conv_backend = "own";
  int64_t steps = 300, train_samples = 4096, val_samples = 64, size = 256, batch = 4;
  int levels = 4, base = 8;
  float lr = 2e-3f;
  uint64_t seed = 1;
  app.add_option("--out", out, "output directory")->capture_default_str();
  app.add_option("--device", device_s, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--precision", precision, "CUDA conv operands: fp32 (exact), tf32 or bf16 (fp32 accumulation)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "tf32", "bf16"}));
  app.add_option("--conv-backend", conv_backend, "CUDA conv kernels: own or cudnn")
      ->capture_default_str()
      ->check(CLI::IsMember({"own", "cudnn"}));
  app.add_option("--steps", steps, "training steps")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--batch", batch, "batch size")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{4096}));
  app.add_option("--lr", lr, "Adam learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--size", size, "gather height and width (time samples = receivers)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{16}, int64_t{8192}));
  app.add_option("--levels", levels, "UNet levels")->capture_default_str()->check(CLI::Range(1, 12));
  app.add_option("--base", base, "UNet base channels")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--train-samples", train_samples, "synthetic training gathers")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--val-samples", val_samples, "synthetic validation gathers")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--snr-db", snr, "SNR range LO:HI in dB")->capture_default_str();
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  if (!parse_cli(app, argc, argv)) return 0;

  SynthConfig sc;
  sc.height = size;
  sc.width = size;
  sc.seed = seed;
  parse_range("--snr-db", snr, &sc.snr_db_lo, &sc.snr_db_hi);
  validate_synth_config(sc);

  UNetConfig mc;
  mc.levels = levels;
  mc.base = base;
  const Device device = parse_device(device_s);
  TrainOptions opt;
  opt.batch = batch;
  opt.steps = steps;
  opt.lr.lr = lr;
  opt.exec.math = precision == "bf16" ? ConvMath::bf16 : precision == "tf32" ? ConvMath::tf32 : ConvMath::f32;
  opt.exec.conv_backend = conv_backend == "cudnn" ? ConvBackend::cudnn : ConvBackend::own;
  opt.log_every = std::max<int64_t>(1, std::min<int64_t>(25, steps / 20));

  UNet model(mc, seed, device);
  model.check_input_size(size, size, "--size");
  OptimizerConfig oc;
  oc.kind = OptimizerKind::adam;
  oc.lr = lr;
  Optimizer optimizer(oc, model.param_vars());
  SynthSource train_src(sc, 0, train_samples);
  SynthSource val_src(sc, int64_t{1} << 40, val_samples);  // far from the training indices
  RunDir dir(out);

  nlohmann::ordered_json cfg = {{"version", SEIS_VERSION},
                                {"command", "demo"},
                                {"device", device.str()},
                                {"precision", precision},
                                {"conv_backend", conv_backend},
                                {"levels", levels},
                                {"base", base},
                                {"parameters", model.num_params()},
                                {"size", size},
                                {"batch", batch},
                                {"steps", steps},
                                {"optimizer", "adam"},
                                {"lr", lr},
                                {"normalize", normalize_name(opt.normalize)},
                                {"train_samples", train_samples},
                                {"val_samples", val_samples},
                                {"snr_db", {sc.snr_db_lo, sc.snr_db_hi}},
                                {"seed", seed}};
  dir.write_config(cfg);

  std::printf("seisseg demo: %lld-level UNet (%lld parameters) on %s, %lldx%lld gathers, SNR %g..%g dB\n",
              static_cast<long long>(levels), static_cast<long long>(model.num_params()),
              device.is_cpu() ? "cpu" : cuda_device_description(device.index).c_str(),
              static_cast<long long>(size), static_cast<long long>(size), sc.snr_db_lo, sc.snr_db_hi);
  std::fflush(stdout);
  SyncBatchSource batches(train_src, batch, seed, opt.normalize, device);
  TrainHooks hooks;
  hooks.on_log = [&](const StepLog& l) {
    const double eta = l.elapsed_s / static_cast<double>(l.step) * static_cast<double>(steps - l.step);
    std::printf("step %6lld/%lld  loss %.4f  %7.1f samples/s  ETA %s\n", static_cast<long long>(l.step),
                static_cast<long long>(steps), l.loss, l.samples_per_s, format_eta(eta).c_str());
    std::fflush(stdout);
    dir.append_metrics(
        {{"step", l.step}, {"epoch", l.epoch}, {"loss", l.loss}, {"lr", lr}, {"samples_per_s", l.samples_per_s}});
  };
  TrainResult r = train(model, optimizer, batches, &val_src, opt, TrainProgress{}, hooks);
  const EvalResult& v = r.val;
  const double pos_frac = static_cast<double>(v.tp + v.fn) / static_cast<double>(std::max<int64_t>(1, v.pixels));
  std::printf("validation (%lld gathers): loss %.4f  IoU %.3f  precision %.3f  recall %.3f  F1 %.3f\n",
              static_cast<long long>(val_samples), v.loss, v.iou(), v.precision(), v.recall(), v.f1());
  std::printf("baselines: all-zero mask IoU 0.000, all-one mask IoU %.3f\n", pos_frac);
  dir.append_metrics({{"step", steps},
                      {"val_loss", v.loss},
                      {"iou", v.iou()},
                      {"precision", v.precision()},
                      {"recall", v.recall()},
                      {"f1", v.f1()},
                      {"seconds", r.seconds}});

  model.save(dir.file("weights.safetensors"), {{"seisseg.normalize", normalize_name(opt.normalize)}});

  // Preview: the first validation gather holding an event.
  Tensor data, label;
  for (int64_t i = 0; i < val_samples; ++i) {
    load_batch(val_src, {i}, opt.normalize, device, &data, &label);
    bool any = false;
    const Tensor lh = label.to(Device::cpu());
    for (int64_t j = 0; j < lh.numel() && !any; ++j) any = lh.data<uint8_t>()[j] != 0;
    if (any) break;
  }
  const Tensor prob = sigmoid(model.forward(nullptr, make_var(data))->value).to(Device::cpu());
  write_preview_png(dir.file("preview.png"), size, size, data.to(Device::cpu()).data<float>(),
                    label.to(Device::cpu()).data<uint8_t>(), prob.data<float>());
  std::printf("wrote %s/{weights.safetensors,preview.png,metrics.jsonl,config.json} in %.0f s\n", out.c_str(),
              r.seconds);
  return 0;
}

}  // namespace seis
