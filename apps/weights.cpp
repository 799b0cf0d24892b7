#include "apps/weights.h"

#include <cstdio>

#include "engine/error.h"
#include "engine/safetensors.h"

namespace seis {

std::string InferenceWeights::normalize_or(const std::string& fallback) const {
  auto it = metadata.find("seisseg.normalize");
  return it != metadata.end() ? it->second : fallback;
}

InferenceWeights load_inference_weights(const std::string& path, Device device) {
  const SafetensorsContents c = load_safetensors(path);
  UNetConfig mc;
  const Tensor* first = c.find("enc.0.conv1.weight");
  if (first == nullptr || first->rank() != 4) {
    throw InputError(path + ": no 'enc.0.conv1.weight' of rank 4: not seisseg UNet weights");
  }
  mc.base = static_cast<int>(first->dim(0));
  mc.in_channels = static_cast<int>(first->dim(1));
  if (mc.in_channels != 1) {
    throw InputError(path + ": a network of " + std::to_string(mc.in_channels) +
                     " input channels; seisseg runs single-channel gathers");
  }
  mc.levels = 0;
  while (mc.levels < 12 && c.find("enc." + std::to_string(mc.levels) + ".conv1.weight") != nullptr) ++mc.levels;
  InferenceWeights w;
  w.model = std::make_unique<UNet>(mc, 0, device);
  w.model->load_tensors(c, path);
  w.metadata = c.metadata;
  auto g = c.metadata.find(kTrainedGatherKey);
  if (g != c.metadata.end()) {
    long long h = 0, wd = 0;
    char tail = 0;
    if (std::sscanf(g->second.c_str(), "%lldx%lld%c", &h, &wd, &tail) == 2 && h > 0 && wd > 0) {
      w.trained_height = h;
      w.trained_width = wd;
    }
  }
  return w;
}

}  // namespace seis
