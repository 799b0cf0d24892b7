// Trained weights for inference (predict, detect): the network a safetensors file holds, rebuilt
// from its tensors (so files written by PyTorch with the same names load too), and what training
// recorded beside them (normalisation, gather size).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "models/unet.h"

namespace seis {

struct InferenceWeights {
  std::unique_ptr<UNet> model;
  std::map<std::string, std::string> metadata;
  int64_t trained_height = 0, trained_width = 0;  // gather size of training (0: not recorded)

  // seisseg.normalize from the metadata, else `fallback`.
  std::string normalize_or(const std::string& fallback) const;
};

// InputError naming the file when it is not seisseg UNet weights (no enc.0.conv1.weight, a network
// with another input channel count, a tensor of another shape).
InferenceWeights load_inference_weights(const std::string& path, Device device);

// The metadata key training writes with the gather size, "HxW".
constexpr const char* kTrainedGatherKey = "seisseg.gather";

}  // namespace seis
