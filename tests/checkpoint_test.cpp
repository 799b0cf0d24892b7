// Training checkpoints (apps/checkpoint.h): a round trip restores position, figures and optimizer
// steps; damaged "seisseg.state" metadata (values of the wrong type, as found by
// tests/fuzz/fuzz_checkpoint.cpp) is a one-line InputError naming the file, never nlohmann's
// type_error or a float-to-integer conversion out of range.
#include "apps/checkpoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "engine/error.h"
#include "engine/safetensors.h"

namespace seis {
namespace {

std::string tmp(const std::string& name) { return testing::TempDir() + "/ckpt_" + name; }

struct TinyRun {
  UNet model{UNetConfig{2, 2, 1}, 7, Device::cpu()};
  Optimizer optimizer{OptimizerConfig{}, model.param_vars()};
  nlohmann::json identity = {{"levels", 2}, {"base", 2}};
};

// A checkpoint of run whose metadata JSON is `meta` (the tensors of a real checkpoint).
std::string checkpoint_with_meta(TinyRun& run, const std::string& name, const std::string& meta) {
  const std::string p = tmp(name);
  save_checkpoint(p, run.model, run.optimizer, CheckpointState{}, run.identity);
  SafetensorsContents c = load_safetensors(p);
  save_safetensors(p, c.tensors, {{"seisseg.state", meta}});
  return p;
}

TEST(Checkpoint, RoundTripRestoresPositionAndFigures) {
  TinyRun run;
  CheckpointState st;
  st.progress.step = 12;
  st.progress.epoch = 2;
  st.progress.batch = 3;
  st.progress.log_loss_sum = 0.25;
  st.progress.log_steps = 2;
  st.best_iou = 0.5;
  st.best_pick_mae_ms = 7.5;
  const std::string p = tmp("rt.safetensors");
  save_checkpoint(p, run.model, run.optimizer, st, run.identity);
  TinyRun back;
  const CheckpointState got = load_checkpoint(p, back.model, back.optimizer, back.identity);
  EXPECT_EQ(got.progress.step, 12);
  EXPECT_EQ(got.progress.epoch, 2);
  EXPECT_EQ(got.progress.batch, 3);
  EXPECT_EQ(got.progress.log_loss_sum, 0.25);
  EXPECT_EQ(got.progress.log_steps, 2);
  EXPECT_EQ(got.best_iou, 0.5);
  EXPECT_EQ(got.best_event_f1, -1.0);
  EXPECT_EQ(got.best_pick_mae_ms, 7.5);
  std::remove(p.c_str());
}

TEST(Checkpoint, MetadataOfTheWrongTypeIsAnInputError) {
  const char* const cases[][2] = {
      {"epoch_string", R"({"step":1,"identity":{"levels":2,"base":2},"epoch":"x"})"},
      {"batch_negative", R"({"step":1,"identity":{"levels":2,"base":2},"batch":-1})"},
      {"steps_huge_float", R"({"step":1,"identity":{"levels":2,"base":2},"optimizer_steps":1e300})"},
      {"log_steps_bool", R"({"step":1,"identity":{"levels":2,"base":2},"log_steps":true})"},
      {"iou_string", R"({"step":1,"identity":{"levels":2,"base":2},"best_iou":"0.5"})"},
      {"loss_array", R"({"step":1,"identity":{"levels":2,"base":2},"log_loss_sum":[1]})"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c[0]);
    TinyRun run;
    const std::string p = checkpoint_with_meta(run, std::string(c[0]) + ".safetensors", c[1]);
    try {
      load_checkpoint(p, run.model, run.optimizer, run.identity);
      ADD_FAILURE() << "expected an InputError";
    } catch (const InputError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(p), std::string::npos) << msg;
      EXPECT_NE(msg.find("damaged checkpoint metadata"), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
    std::remove(p.c_str());
  }
}

TEST(Checkpoint, NullFiguresAreNaNAsNlohmannWritesThem) {
  TinyRun run;
  const std::string p = checkpoint_with_meta(run, "null.safetensors",
                                             R"({"step":4,"identity":{"levels":2,"base":2},"log_loss_sum":null})");
  const CheckpointState st = load_checkpoint(p, run.model, run.optimizer, run.identity);
  EXPECT_EQ(st.progress.step, 4);
  EXPECT_TRUE(std::isnan(st.progress.log_loss_sum));
  std::remove(p.c_str());
}

}  // namespace
}  // namespace seis
