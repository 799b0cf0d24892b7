// Training state for an exact resume: one safetensors file (written atomically) holding the model
// weights (PyTorch names and layouts), the optimizer state in parameter order, and in its metadata
// the position (step, epoch, batch), the best validation figures, the optimizer's step count and the
// identity of the run (the settings a resume must share).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "apps/trainer.h"
#include "engine/optimizer.h"
#include "models/unet.h"

namespace seis {

struct CheckpointState {
  TrainProgress progress;
  double best_iou = -1;  // -1: no validation yet
  // The best event F1 and pick MAE of the validations so far (--best-by); -1: none yet (also in
  // checkpoints from before they were kept), DBL_MAX: no validation picked an arrival within the
  // tolerance yet (finite, so that it survives JSON exactly).
  double best_event_f1 = -1;
  double best_pick_mae_ms = -1;
};

void save_checkpoint(const std::string& path, const UNet& model, Optimizer& optimizer, const CheckpointState& state,
                     const nlohmann::json& identity);

// Restores model and optimizer in place. InputError naming the file when it is missing, truncated,
// not a seisseg checkpoint, or from another configuration (an identity field that differs).
CheckpointState load_checkpoint(const std::string& path, UNet& model, Optimizer& optimizer,
                                const nlohmann::json& identity);

}  // namespace seis
