// seisseg train and predict end to end through the program: exact resume (mid-epoch and at an epoch
// boundary), SIGINT saving the state, a SIGKILL during checkpoint writes leaving a loadable state,
// refused checkpoints, metrics.jsonl fields, and predict on a converted SEG-Y file.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli_util.h"

namespace {

using seis::test::slurp;

namespace fs = std::filesystem;

// The program's stdout and stderr together, as a user sees them.
struct Result {
  int code;
  std::string out;
};

Result run(const std::string& args) {
  const seis::test::CliResult r = seis::test::run_seisseg(args);
  return {r.code, r.out + r.err};
}

class TrainCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::TempDir() + "/seisseg_train_cli";
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // 20 training gathers, batch 4: 5 batches per epoch.
    ASSERT_EQ(run("synth --out " + dir_ + "/train.h5 --samples 20 --height 32 --width 32 --seed 5").code, 0);
    ASSERT_EQ(run("synth --out " + dir_ + "/val.h5 --samples 4 --height 32 --width 32 --seed 6").code, 0);
  }
  static std::string train_args(const std::string& out) {
    return "train --data " + dir_ + "/train.h5 --val " + dir_ + "/val.h5 --levels 3 --base 4 --batch 4 " +
           "--device cpu --val-every 4 --log-every 2 --seed 7 --out " + out;
  }
  static std::string dir_;
};
std::string TrainCli::dir_;

TEST_F(TrainCli, ResumeEqualsAnUninterruptedRunBitForBit) {
  const std::string full = dir_ + "/full";
  ASSERT_EQ(run(train_args(full) + " --steps 12").code, 0);
  // Mid-epoch (step 7 = epoch 1, batch 2) and at an epoch boundary (step 10).
  for (int stop : {7, 10}) {
    const std::string part = dir_ + "/part" + std::to_string(stop);
    ASSERT_EQ(run(train_args(part) + " --steps " + std::to_string(stop)).code, 0);
    const Result r = run("train --resume " + part + " --steps 12");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(slurp(full + "/weights.safetensors"), slurp(part + "/weights.safetensors"))
        << "resumed at step " << stop << " differs from the uninterrupted run";
    EXPECT_EQ(slurp(full + "/state.safetensors"), slurp(part + "/state.safetensors")) << "stop " << stop;
    // Every validation of the uninterrupted run is in the resumed run's metrics.jsonl with the
    // same figures. (The interrupted run's own last log and validation, at
    // the step it stopped, stay in the file as they happened.)
    // The same holds for the mean loss of every log interval on the --log-every schedule.
    auto lines_with = [](const std::string& path, const char* key) {
      std::map<int64_t, nlohmann::json> v;
      std::ifstream f(path);
      std::string line;
      while (std::getline(f, line)) {
        auto j = nlohmann::json::parse(line);
        if (j.contains(key)) v[j["step"].get<int64_t>()] = j;
      }
      return v;
    };
    for (const char* key : {"iou", "loss"}) {
      const auto va = lines_with(full + "/metrics.jsonl", key), vb = lines_with(part + "/metrics.jsonl", key);
      for (const auto& [step, j] : va) {
        ASSERT_TRUE(vb.count(step)) << key << " at step " << step << " missing after resuming at " << stop;
        for (const char* f : {"iou", "val_loss", "loss"}) {
          if (j.contains(f)) {
            EXPECT_EQ(j[f], vb.at(step)[f]) << f << " at step " << step << ", resumed at " << stop;
          }
        }
      }
    }
  }
}

// bf16 activation storage (CPU): the state is fp32, so a resumed run is still bit-identical.
TEST_F(TrainCli, Bf16ResumeEqualsAnUninterruptedRunBitForBit) {
  const std::string full = dir_ + "/bf16_full", part = dir_ + "/bf16_part";
  ASSERT_EQ(run(train_args(full) + " --precision bf16 --steps 9").code, 0);
  ASSERT_EQ(run(train_args(part) + " --precision bf16 --steps 5").code, 0);
  const Result r = run("train --resume " + part + " --steps 9");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(slurp(full + "/weights.safetensors"), slurp(part + "/weights.safetensors"));
  EXPECT_EQ(slurp(full + "/state.safetensors"), slurp(part + "/state.safetensors"));
  // And bf16 is not fp32 under another name.
  ASSERT_EQ(run(train_args(dir_ + "/fp32_9") + " --steps 9").code, 0);
  EXPECT_NE(slurp(full + "/weights.safetensors"), slurp(dir_ + "/fp32_9/weights.safetensors"));
}

TEST_F(TrainCli, MetricsAreJsonLinesWithTheDocumentedFields) {
  const std::string out = dir_ + "/metrics";
  ASSERT_EQ(run(train_args(out) + " --steps 8").code, 0);
  std::ifstream f(out + "/metrics.jsonl");
  std::string line;
  int logs = 0, vals = 0;
  while (std::getline(f, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    if (j.contains("loss")) {
      ++logs;
      for (const char* k : {"step", "epoch", "loss", "lr", "samples_per_s", "data_wait", "peak_bytes"}) {
        EXPECT_TRUE(j.contains(k)) << k << " missing in " << line;
      }
    } else {
      ++vals;
      for (const char* k : {"step", "epoch", "val_loss", "iou", "precision", "recall", "f1"}) {
        EXPECT_TRUE(j.contains(k)) << k << " missing in " << line;
      }
    }
  }
  EXPECT_EQ(logs, 4);
  EXPECT_EQ(vals, 2);
  const auto cfg = nlohmann::json::parse(slurp(out + "/config.json"));
  EXPECT_EQ(cfg["settings"]["batch"], 4);
  EXPECT_EQ(cfg["settings"]["optimizer"], "adam");  // defaults are recorded too
  for (const char* f2 : {"weights.safetensors", "best.safetensors", "state.safetensors", "preview.png"}) {
    EXPECT_TRUE(fs::exists(out + "/" + f2)) << f2;
  }
}

TEST_F(TrainCli, BadCheckpointsAreRefused) {
  const std::string out = dir_ + "/bad";
  ASSERT_EQ(run(train_args(out) + " --steps 4").code, 0);
  // Another configuration.
  Result r = run("train --resume " + out + " --steps 8 --lr 0.5");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--lr"), std::string::npos) << r.out;
  // A truncated state file.
  const std::string state = slurp(out + "/state.safetensors");
  {
    std::ofstream f(out + "/state.safetensors", std::ios::binary | std::ios::trunc);
    f << state.substr(0, state.size() / 2);
  }
  r = run("train --resume " + out + " --steps 8");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("state.safetensors"), std::string::npos) << r.out;
  // A missing one.
  fs::remove(out + "/state.safetensors");
  r = run("train --resume " + out + " --steps 8");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("state.safetensors"), std::string::npos) << r.out;
  // Not a run directory at all.
  r = run("train --resume " + dir_ + "/nowhere --steps 8");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("config.json"), std::string::npos) << r.out;
}

pid_t spawn_train(const std::string& args) {
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string cmd = std::string(SEISSEG_BIN) + " " + args + " >/dev/null 2>&1";
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

TEST_F(TrainCli, SigintSavesTheStateAndTheRunResumes) {
  const std::string out = dir_ + "/sigint";
  const pid_t pid = spawn_train(train_args(out) + " --steps 100000");
  // Wait for the first log line, then interrupt.
  for (int i = 0; i < 600 && !fs::exists(out + "/metrics.jsonl"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(fs::exists(out + "/metrics.jsonl"));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGINT);
  const Result r = run("train --resume " + out + " --steps 3");
  // The interrupted run saved a state past step 2, so a total of 3 steps is already done or finishes.
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST_F(TrainCli, SigkillDuringCheckpointWritesLeavesALoadableState) {
  const std::string out = dir_ + "/sigkill";
  // A checkpoint after every step: a kill lands during or between writes.
  ASSERT_EQ(run(train_args(out) + " --steps 2 --save-every 1").code, 0);
  for (int round = 0; round < 3; ++round) {
    const pid_t pid = spawn_train("train --resume " + out + " --steps 100000 --save-every 1");
    std::this_thread::sleep_for(std::chrono::milliseconds(1500 + 700 * round));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    EXPECT_FALSE(fs::exists(out + "/weights.safetensors.tmp") && fs::file_size(out + "/weights.safetensors") == 0);
    const Result r = run("train --resume " + out + " --steps 1");
    EXPECT_EQ(r.code, 0) << "round " << round << ": the state left by SIGKILL does not load:\n" << r.out;
  }
}

TEST_F(TrainCli, PredictOnAConvertedSegyFile) {
  const std::string out = dir_ + "/segy";
  fs::create_directories(out);
  // small.sgy: one gather of 25 traces x 50 samples, which a 1-level network takes at any size.
  ASSERT_EQ(
      run("convert " + std::string(SEIS_SOURCE_DIR) + "/tests/data/segy/small.sgy --out " + out + "/small.h5").code, 0);
  ASSERT_EQ(run("train --data " + dir_ +
                "/train.h5 --val-fraction 0 --levels 1 --base 2 --batch 4 --steps 2 "
                "--device cpu --out " +
                out + "/run")
                .code,
            0);
  const Result r = run("predict --weights " + out + "/run/weights.safetensors --in " + out + "/small.h5 --out " + out +
                       "/pred.h5 --png " + out + "/pred.png --device cpu");
  ASSERT_EQ(r.code, 0) << r.out;
  // /prob float32 and /mask uint8, [1, 50, 25]: small.sgy is one gather of 25 traces x 50 samples.
  const hid_t f = H5Fopen((out + "/pred.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  for (const char* name : {"prob", "mask"}) {
    const hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    ASSERT_GE(d, 0) << name;
    const hid_t sp = H5Dget_space(d);
    hsize_t dims[3] = {0, 0, 0};
    EXPECT_EQ(H5Sget_simple_extent_ndims(sp), 3);
    H5Sget_simple_extent_dims(sp, dims, nullptr);
    EXPECT_EQ(dims[0], 1u);
    EXPECT_EQ(dims[1], 50u);
    EXPECT_EQ(dims[2], 25u);
    if (std::string(name) == "prob") {
      std::vector<float> v(50 * 25);
      ASSERT_GE(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), 0);
      for (float x : v) ASSERT_TRUE(x >= 0.0f && x <= 1.0f) << x;
    }
    H5Sclose(sp);
    H5Dclose(d);
  }
  H5Fclose(f);
  EXPECT_TRUE(fs::exists(out + "/pred.png"));
  EXPECT_FALSE(fs::exists(out + "/pred.h5.tmp"));
}

}  // namespace
