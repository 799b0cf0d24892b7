// seisseg predict: runs trained weights over every gather of an HDF5 file, streamed through the
// reader one gather at a time, and writes /prob (sigmoid of the logits, f32) and /mask
// (prob >= threshold, u8) to a new HDF5 file; with labels present it also reports the metrics.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/trainer.h"
#include "engine/device_runtime.h"
#include "engine/safetensors.h"
#include "io/hdf5_dataset.h"
#include "io/png_preview.h"
#include "io/sample_reader.h"

namespace seis {

namespace {

// The network a weights file holds, from its tensors: levels = number of encoder levels, base =
// output channels of the first conv. Works for files written by PyTorch too.
UNetConfig config_from_weights(const SafetensorsContents& c, const std::string& path) {
  UNetConfig mc;
  const Tensor* first = c.find("enc.0.conv1.weight");
  if (first == nullptr || first->rank() != 4) {
    throw InputError(path + ": no 'enc.0.conv1.weight' of rank 4: not seisseg UNet weights");
  }
  mc.base = static_cast<int>(first->dim(0));
  mc.in_channels = static_cast<int>(first->dim(1));
  mc.levels = 0;
  while (mc.levels < 12 && c.find("enc." + std::to_string(mc.levels) + ".conv1.weight") != nullptr) ++mc.levels;
  return mc;
}

}  // namespace

int cmd_predict(int argc, char** argv) {
  std::string weights, in, out, png, png_dir, normalize_s, device_s = "auto", precision = "fp32";
  float threshold = 0.5f;
  CLI::App app{"seisseg predict: segment every gather of an HDF5 file with trained weights", "seisseg predict"};
  app.add_option("--weights", weights, "weights (safetensors) from seisseg train or demo")->required();
  app.add_option("--in", in, "input HDF5 file (/data; /label optional)")->required();
  app.add_option("--out", out, "output HDF5 file (/prob, /mask)")->required();
  app.add_option("--png", png, "preview PNG of the first gather");
  app.add_option("--png-dir", png_dir, "one preview PNG per gather in this directory");
  app.add_option("--threshold", threshold, "mask = prob >= threshold")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--normalize", normalize_s, "trace, sample or none (default: as the weights were trained)")
      ->check(CLI::IsMember({"trace", "sample", "none"}));
  app.add_option("--device", device_s, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--precision", precision, kPrecisionHelp)
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "tf32", "bf16"}));
  if (!parse_cli(app, argc, argv)) return 0;
  if (threshold <= 0.0f || threshold >= 1.0f) throw UsageError("--threshold must be inside (0, 1)");
  std::error_code same_ec;
  if (std::filesystem::equivalent(in, out, same_ec)) {
    throw UsageError("--out " + out + " is the input file");
  }

  const Device device = parse_device(device_s);
  const SafetensorsContents wc = load_safetensors(weights);
  UNet model(config_from_weights(wc, weights), 0, device);
  model.load_tensors(wc, weights);
  auto md = wc.metadata.find("seisseg.normalize");
  const Normalize normalize = parse_normalize(!normalize_s.empty()      ? normalize_s
                                              : md != wc.metadata.end() ? md->second
                                                                        : "trace");
  ExecConfig exec;
  exec.math = parse_precision(precision);
  set_exec_config(exec);
  if (device.is_cuda()) cuda_set_device(device.index);

  SampleSet set({in});
  model.check_input_size(set.height(), set.width(), in);
  if (!png_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(png_dir, ec);
    if (ec) throw InputError(png_dir + ": cannot create: " + ec.message());
  }
  const int64_t n = set.size(), h = set.height(), w = set.width();
  H5SampleWriter::Options wo;
  wo.n = n;
  wo.height = h;
  wo.width = w;
  wo.data_name = "prob";
  wo.label_name = "mask";
  wo.dt = set.file(0).info().dt;
  wo.dx = set.file(0).info().dx;
  H5SampleWriter writer(out, wo);
  writer.set_attribute("weights", weights);
  writer.set_attribute("source", in);
  writer.set_attribute("threshold", static_cast<double>(threshold));
  writer.set_attribute("normalize", normalize_name(normalize));

  // One gather per batch, in file order: memory stays at a few gathers whatever N is.
  SampleReaderOptions ro;
  ro.batch = 1;
  ro.shuffle = false;
  ro.normalize = normalize;
  ro.device = device;
  ro.prefetch = 2;
  SampleReader reader(set, ro);
  EvalResult metrics;
  std::vector<uint8_t> mask(static_cast<size_t>(h * w));
  for (int64_t i = 0; i < n; ++i) {
    ReaderBatch b = reader.next();
    Var logits = model.forward(nullptr, make_var(b.data));
    if (b.label.defined()) {
      const auto c = confusion_counts(logits->value, b.label, threshold);
      metrics.tp += c[0];
      metrics.fp += c[1];
      metrics.fn += c[2];
      metrics.pixels += b.label.numel();
    }
    const Tensor lg = logits->value.to(Device::cpu());
    const Tensor prob = sigmoid(lg);
    for (int64_t j = 0; j < h * w; ++j) mask[static_cast<size_t>(j)] = prob.data<float>()[j] >= threshold ? 1 : 0;
    writer.write(b.samples[0], prob.data<float>(), mask.data());
    if ((!png.empty() && i == 0) || !png_dir.empty()) {
      const Tensor d = b.data.to(Device::cpu());
      const Tensor l = b.label.defined() ? b.label.to(Device::cpu()) : Tensor();
      const uint8_t* lp = l.defined() ? l.data<uint8_t>() : nullptr;
      if (!png.empty() && i == 0) write_preview_png(png, h, w, d.data<float>(), lp, prob.data<float>());
      if (!png_dir.empty()) {
        char name[64];
        std::snprintf(name, sizeof name, "/gather_%06lld.png", static_cast<long long>(b.samples[0]));
        write_preview_png(png_dir + name, h, w, d.data<float>(), lp, prob.data<float>());
      }
    }
    if (n >= 10 && (i + 1) % std::max<int64_t>(1, n / 10) == 0) {
      std::fprintf(stderr, "predict: %lld/%lld gathers\n", static_cast<long long>(i + 1), static_cast<long long>(n));
    }
  }
  writer.commit();
  std::printf("seisseg predict: %lld gathers of %lldx%lld -> %s (/prob, /mask at threshold %g)\n",
              static_cast<long long>(n), static_cast<long long>(h), static_cast<long long>(w), out.c_str(), threshold);
  if (metrics.pixels > 0) {
    std::printf("against /label: IoU %.4f  precision %.4f  recall %.4f  F1 %.4f\n", metrics.iou(), metrics.precision(),
                metrics.recall(), metrics.f1());
  }
  return 0;
}

}  // namespace seis
