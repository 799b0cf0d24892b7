// seisseg plan and train --batch auto through the program: the JSON contract, a GPU plan made on a
// machine without that GPU, flag errors (exit 2), and auto batches on the CPU whose real peak (in
// metrics.jsonl) is the planned one.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_util.h"
#include "engine/device_runtime.h"

namespace seis {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::run_seisseg;

json plan_json(const std::string& args) {
  const test::CliResult r = run_seisseg("plan --json " + args);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(test::count_lines(r.out), 1) << r.out;
  return json::parse(r.out, nullptr, false);
}

TEST(PlanCli, JsonHasTheContractFieldsAndConsistentFigures) {
  const json one = plan_json("--levels 4 --base 8 --height 256 --width 256 --device cpu --memory-gib 1");
  ASSERT_TRUE(one.is_object());
  for (const char* k : {"bytes_per_sample", "peak_bytes", "max_batch", "resident_bytes", "budget_bytes", "params"}) {
    EXPECT_TRUE(one.contains(k)) << k;
  }
  EXPECT_EQ(one["params"], 134121);
  EXPECT_EQ(one["budget_bytes"], int64_t{1} << 30);
  const json four = plan_json("--levels 4 --base 8 --height 256 --width 256 --device cpu --memory-gib 1 --batch 4");
  const int64_t per = one["bytes_per_sample"], peak1 = one["peak_bytes"], peak4 = four["peak_bytes"];
  EXPECT_GT(per, 0);
  EXPECT_NEAR(static_cast<double>(peak4 - peak1), 3.0 * per, 0.02 * 3.0 * per);
  // On the CPU the reader's pinned slots count against the same memory.
  const int64_t max_batch = one["max_batch"];
  EXPECT_GT(max_batch, 4);
  auto held = [](const json& j) { return j["peak_bytes"].get<int64_t>() + j["reader_host_bytes"].get<int64_t>(); };
  const std::string args = "--levels 4 --base 8 --height 256 --width 256 --device cpu --batch ";
  EXPECT_LE(held(plan_json(args + std::to_string(max_batch))), int64_t{1} << 30);
  EXPECT_GT(held(plan_json(args + std::to_string(max_batch + 1))), int64_t{1} << 30);
}

TEST(PlanCli, PlansForAGpuWithoutOne) {
  const json j = plan_json("--height 1024 --width 512 --device cuda:1 --precision bf16");
  EXPECT_EQ(j["device"], "cuda:1");
  EXPECT_GT(j["peak_bytes"].get<int64_t>(), 0);
  if (cuda_device_count() < 2) {
    EXPECT_TRUE(j["max_batch"].is_null());  // no such GPU here to ask for its free memory
    const test::CliResult r = run_seisseg("plan --height 1024 --width 512 --device cuda:1");
    EXPECT_EQ(r.code, 0);
    EXPECT_NE(r.out.find("give --memory-gib"), std::string::npos) << r.out;
  }
}

// The planner follows the conv kernels a run would use: with SEIS_CONV_IMPL=halo (bf16 storage on
// CUDA) the halo kernels read the decoder's joined inputs in place and need no widening workspace,
// so a sample takes less; SEIS_CONV_IMPL=deep alone changes neither.
TEST(PlanCli, HaloKernelsPlanLessMemoryOnCuda) {
  auto bytes = [](const std::string& env) {
    const test::CliResult r = test::run_command(env + " SEIS_CUDA_BF16_STORAGE=1 " + std::string(SEISSEG_BIN) +
                                                " plan --json --levels 5 --height 1024 --width 512 --device cuda "
                                                "--precision bf16 --memory-gib 80");
    EXPECT_EQ(r.code, 0) << r.err;
    return json::parse(r.out, nullptr, false).value("bytes_per_sample", int64_t{-1});
  };
  const int64_t plain = bytes("SEIS_CONV_IMPL="), halo = bytes("SEIS_CONV_IMPL=halo"),
                deep = bytes("SEIS_CONV_IMPL=deep");
  EXPECT_GT(plain, 0);
  EXPECT_GT(halo, 0);
  EXPECT_LT(halo, plain * 9 / 10) << halo << " against " << plain;
  EXPECT_EQ(deep, plain);
}

// SEIS_CUDA_GRAPH=1: the plan runs the graph's stages (an eager step, the recorded one, the capture
// from its arena, launches) and reports the arena, which is at least the recorded step's live peak;
// the graph's step holds a little more than the eager one (the arena's packing, the graph's inputs
// beside the next batch), and without the switch there is no arena.
TEST(PlanCli, ACudaGraphStepPlansItsArena) {
  auto plan = [](const std::string& env) {
    const test::CliResult r = test::run_command(env + " SEIS_CUDA_BF16_STORAGE=1 " + std::string(SEISSEG_BIN) +
                                                " plan --json --levels 5 --height 1024 --width 512 --device cuda "
                                                "--precision bf16 --memory-gib 80");
    EXPECT_EQ(r.code, 0) << r.err;
    return json::parse(r.out, nullptr, false);
  };
  const json eager = plan("SEIS_CUDA_GRAPH=0"), graph = plan("SEIS_CUDA_GRAPH=1");
  EXPECT_FALSE(eager.contains("cuda_graph_arena_bytes"));
  const int64_t arena = graph.value("cuda_graph_arena_bytes", int64_t{-1});
  const int64_t live = graph.value("cuda_graph_live_peak_bytes", int64_t{-1});
  EXPECT_GT(live, 0);
  EXPECT_GE(arena, live);
  const int64_t e = eager.value("bytes_per_sample", int64_t{-1}), g = graph.value("bytes_per_sample", int64_t{-1});
  std::printf("[ result ] per sample: eager %lld, graph %lld bytes; arena %lld, live peak %lld\n",
              static_cast<long long>(e), static_cast<long long>(g), static_cast<long long>(arena),
              static_cast<long long>(live));
  EXPECT_GE(g, e);
  EXPECT_LE(g, e + e / 5);
}

// Issue 9's memory goal on a GPU, as planned: at most 3.2 GB per 4096x4096 sample of the paper's
// network in bf16 (half of PyTorch AMP's 6.26 GB) with the halo kernels, which read the joined inputs
// in place and sum the upsampled input's gradient in their epilogue, and the direct kernels, which
// read the 1-channel input and the head's input in bf16. A plan until a GPU run checks it
// (benchmarks/gpu_check.sh); the default kernels plan more (their fp32 widening copies).
TEST(PlanCli, CudaBf16SampleWithHaloKernelsIsAtMostHalfOfPyTorchAmp) {
  const test::CliResult r =
      test::run_command("SEIS_CONV_IMPL=halo SEIS_CUDA_BF16_STORAGE=1 " + std::string(SEISSEG_BIN) +
                        " plan --json --height 4096 --width 4096 --device cuda "
                        "--precision bf16 --memory-gib 80");
  ASSERT_EQ(r.code, 0) << r.err;
  const json plan = json::parse(r.out, nullptr, false);
  EXPECT_EQ(plan.value("levels", 0), 7);
  EXPECT_EQ(plan.value("base", 0), 8);
  const int64_t per_sample = plan.value("bytes_per_sample", int64_t{-1});
  EXPECT_GT(per_sample, 0);
  EXPECT_LE(static_cast<double>(per_sample), 3.2e9);
}

TEST(PlanCli, BadFlagsAreOneLineErrorsWithExitCode2) {
  for (const char* args :
       {"--height 100 --width 64",  // not divisible by 2^6
        "--height 64", "--height 64 --width 64 --precision fp16", "--height 64 --width 64 --device tpu",
        "--height 64 --width 64 --batch 0", "--height 64 --width 64 --memory-gib -1"}) {
    const test::CliResult r = run_seisseg(std::string("plan ") + args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.err;
    EXPECT_EQ(test::count_lines(r.err), 1) << args << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << args;
  }
}

class AutoBatch : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::TempDir() + "/seisseg_plan_cli";
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ASSERT_EQ(run_seisseg("synth --out " + dir_ + "/t.h5 --samples 24 --height 32 --width 32 --seed 3").code, 0);
  }
  static std::string dir_;
};
std::string AutoBatch::dir_;

TEST_F(AutoBatch, TakesTheLargestBatchThatFitsAndPeaksWhereThePlanSaid) {
  const std::string out = dir_ + "/run";
  const test::CliResult r = run_seisseg("train --data " + dir_ + "/t.h5 --val-fraction 0 --levels 3 --base 4 " +
                                        "--batch auto --steps 4 --device cpu --log-every 2 --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("--batch auto: 24"), std::string::npos) << r.out;  // the whole set fits
  std::ifstream cf(out + "/config.json");
  const json config = json::parse(cf, nullptr, false);
  EXPECT_EQ(config["settings"]["batch"], 24);
  EXPECT_EQ(config["resolved"]["batch_auto"], true);
  const json plan = plan_json("--levels 3 --base 4 --height 32 --width 32 --device cpu --batch 24");
  std::ifstream mf(out + "/metrics.jsonl");
  std::string line;
  int logs = 0;
  while (std::getline(mf, line)) {
    const json m = json::parse(line, nullptr, false);
    if (!m.contains("peak_bytes")) continue;
    ++logs;
    EXPECT_EQ(m["peak_bytes"], plan["peak_bytes"]) << line;
  }
  EXPECT_EQ(logs, 2);
  // A resumed run keeps its batch; a bad value is a usage error.
  EXPECT_EQ(run_seisseg("train --resume " + out + " --batch auto --steps 6").code, 2);
  EXPECT_EQ(run_seisseg("train --data " + dir_ + "/t.h5 --batch many --out " + dir_ + "/x").code, 2);
}

}  // namespace
}  // namespace seis
