// seisseg train under mpirun (DESIGN.md, "Distributed training"): N ranks with B/N samples each
// give the weights of one rank with the global batch B; a rank that dies or throws ends the job.
// Starts mpirun itself (tests/CMakeLists.txt registers it as a plain test labelled mpi).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.h"
#include "engine/safetensors.h"

namespace {

using seis::test::validations;

struct Result {
  int code;
  std::string out;
  double seconds;
};

// `timeout` is the hang guard, not a speed test: a job still running after 60 s is stopped and
// reads as code 124.
constexpr int kHung = 124;
Result run(const std::string& cmd) {
  const auto t0 = std::chrono::steady_clock::now();
  FILE* p = popen(("OMP_NUM_THREADS=1 timeout -k 10 60 " + cmd + " 2>&1").c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  while (p != nullptr && fgets(buf.data(), buf.size(), p) != nullptr) out += buf.data();
  const int status = p != nullptr ? pclose(p) : -1;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out, s};
}

std::string mpirun(int np, const std::string& env = "") {
  return std::string(SEIS_MPIEXEC) + " -np " + std::to_string(np) + env + " " + SEISSEG_BIN;
}

class MpiTrain : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = ::testing::TempDir() + "/seis_mpi_train_cli";
    std::system(("rm -rf " + dir_ + " && mkdir -p " + dir_).c_str());
    const Result r = run(std::string(SEISSEG_BIN) + " synth --out " + dir_ +
                         "/d.h5 --samples 26 --height 32 --width 32 --seed 3 --events-max 4 --snr-db 10:20");
    ASSERT_EQ(r.code, 0) << r.out;
  }
  static std::string train_args(const std::string& out, const std::string& extra = "") {
    return " train --data " + dir_ +
           "/d.h5 --device cpu --levels 3 --base 4 --seed 5 --log-every 2 --val-fraction 0.3 " +
           "--pos-weight 3 --val-every 3 --save-every 100 --out " + dir_ + "/" + out + " " +
           (extra.find("--batch") == std::string::npos ? "--batch 4 " : "") + extra;
  }
  static std::string dir_;
};
std::string MpiTrain::dir_;

// Largest |a - b| / max|a| over the tensors of two weight files.
double max_scaled_diff(const std::string& a_path, const std::string& b_path, int64_t* differing) {
  const seis::SafetensorsContents a = seis::load_safetensors(a_path), b = seis::load_safetensors(b_path);
  EXPECT_EQ(a.tensors.size(), b.tensors.size());
  double worst = 0;
  *differing = 0;
  for (const auto& [name, ta] : a.tensors) {
    const seis::Tensor* tb = b.find(name);
    EXPECT_NE(tb, nullptr) << name;
    if (tb == nullptr) continue;
    double amax = 0, dmax = 0;
    for (int64_t i = 0; i < ta.numel(); ++i) {
      const float x = ta.data<float>()[i], y = tb->data<float>()[i];
      amax = std::max(amax, static_cast<double>(std::fabs(x)));
      dmax = std::max(dmax, std::fabs(static_cast<double>(x) - y));
      *differing += x != y;
    }
    worst = std::max(worst, amax > 0 ? dmax / amax : dmax);
  }
  return worst;
}

// The correctness anchor. Tolerance: per tensor, max|w_N - w_1| <= tol * max|w_1|. The ranks
// compute the same activations; only the order of the float sums in dW differs (per-rank partial
// sums, then the allreduce, against one sum over the whole batch), a few ulp per gradient element.
// SGD carries that into the weights unchanged (about 1e-10 of their scale seen): tol 1e-6. Adam
// divides each step by sqrt(v), so an element whose gradient is a near-cancelling sum (a few ulp of
// a tiny number) moves by a visibly different step: 5e-7 (2 ranks) and 2.3e-6 (4 ranks) of the
// scale seen after 6 steps at lr 1e-3 on the default synthetic data: tol 1e-5, still two orders
// below what a wrong gradient would do (Adam's step is about lr per weight, whatever the gradient's
// size, so a wrong share of the batch shows at about lr of the weights' scale). Not
// bit-identical: the CPU dW kernel's block partials depend on the rank batch size.
TEST_F(MpiTrain, TwoAndFourRanksGiveTheWeightsOfOneRankWithTheGlobalBatch) {
  for (const std::string opt : {"adam", "sgd"}) {
    const std::string flags = "--steps 6 --optimizer " + opt;
    const Result single = run(std::string(SEISSEG_BIN) + train_args("single_" + opt, flags));
    ASSERT_EQ(single.code, 0) << single.out;
    const std::string ref = dir_ + "/single_" + opt;
    for (int np : {1, 2, 4}) {
      const std::string out = "np" + std::to_string(np) + "_" + opt;
      const Result r = run(mpirun(np) + train_args(out, flags));
      ASSERT_EQ(r.code, 0) << r.out;
      int64_t differing = 0;
      const double d =
          max_scaled_diff(ref + "/weights.safetensors", dir_ + "/" + out + "/weights.safetensors", &differing);
      std::printf("[ result ] %s -np %d: max |w_np - w_1| / max|w_1| = %.3e, %lld weights differ\n", opt.c_str(), np, d,
                  static_cast<long long>(differing));
      if (np == 1) {
        EXPECT_EQ(differing, 0) << "one rank under mpirun must be bit-identical to no launcher";
      }
      EXPECT_LE(d, opt == "adam" ? 1e-5 : 1e-6) << opt << " -np " << np;
      // Validation: integer counts summed over the ranks' shares: the same metrics exactly.
      const auto va = validations(ref + "/metrics.jsonl"), vb = validations(dir_ + "/" + out + "/metrics.jsonl");
      ASSERT_EQ(va.size(), vb.size());
      ASSERT_EQ(va.size(), 2u);
      for (size_t i = 0; i < va.size(); ++i) {
        EXPECT_GT(va[i]["iou"].get<double>(), 0.0) << "a validation with true positives";
        EXPECT_EQ(va[i]["iou"], vb[i]["iou"]) << np;
        EXPECT_EQ(va[i]["precision"], vb[i]["precision"]) << np;
        EXPECT_EQ(va[i]["recall"], vb[i]["recall"]) << np;
        EXPECT_NEAR(va[i]["val_loss"].get<double>(), vb[i]["val_loss"].get<double>(),
                    1e-5 * std::fabs(va[i]["val_loss"].get<double>()));
        // Scores in the analyst's units (synth data has truth): each rank picks its share of the
        // gathers and the counts are summed, so the same as one rank; pick errors within the
        // weights' 1e-6 differences.
        ASSERT_TRUE(va[i].contains("event_f1") && vb[i].contains("event_f1")) << vb[i].dump();
        for (const char* k : {"event_f1", "event_precision", "event_recall", "pick_hit10", "p_hit10"}) {
          EXPECT_EQ(va[i][k], vb[i][k]) << k << " -np " << np;
        }
        ASSERT_EQ(va[i]["pick_mae_ms"].is_null(), vb[i]["pick_mae_ms"].is_null()) << np;
        if (!va[i]["pick_mae_ms"].is_null()) {
          EXPECT_NEAR(va[i]["pick_mae_ms"].get<double>(), vb[i]["pick_mae_ms"].get<double>(), 1e-3) << np;
        }
      }
    }
  }
}

TEST_F(MpiTrain, ResumeOnTwoRanksEqualsAnUninterruptedRun) {
  const Result full = run(mpirun(2) + train_args("full2", "--steps 6"));
  ASSERT_EQ(full.code, 0) << full.out;
  const Result first = run(mpirun(2) + train_args("part2", "--steps 3"));
  ASSERT_EQ(first.code, 0) << first.out;
  const Result rest = run(mpirun(2) + " train --resume " + dir_ + "/part2 --steps 6");
  ASSERT_EQ(rest.code, 0) << rest.out;
  int64_t differing = 0;
  max_scaled_diff(dir_ + "/full2/weights.safetensors", dir_ + "/part2/weights.safetensors", &differing);
  EXPECT_EQ(differing, 0);
}

// Every rank finds it before MPI starts; mpirun may stop the others before they print.
TEST_F(MpiTrain, AutoBatchIsOneAgreedMultipleOfTheRanks) {
  const Result r = run(mpirun(2) + train_args("auto2", "--steps 2 --batch auto"));
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream in(dir_ + "/auto2/config.json");
  const nlohmann::json config = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(config.is_object());
  // 32x32 samples on the CPU: every training sample fits, in equal shares of the two ranks.
  const int64_t train = config["resolved"]["train_samples"], batch = config["settings"]["batch"];
  EXPECT_EQ(batch, train / 2 * 2);
  EXPECT_NE(r.out.find("--batch auto: " + std::to_string(batch) + " (" + std::to_string(batch / 2) + " per rank)"),
            std::string::npos)
      << r.out;
}

TEST_F(MpiTrain, BatchNotDivisibleByTheRanksIsAUsageError) {
  const Result r = run(mpirun(4) + train_args("bad", "--steps 2 --batch 6"));
  EXPECT_EQ(r.code, 2) << r.out;
  size_t lines = 0, pos = 0;
  while ((pos = r.out.find("--batch 6 is not divisible by the 4 ranks", pos)) != std::string::npos) ++lines, ++pos;
  EXPECT_GE(lines, 1u) << r.out;
}

// A rank killed mid-run: mpirun tears the job down (non-zero, no hang).
TEST_F(MpiTrain, AKilledRankEndsTheJob) {
  const Result r = run(mpirun(2, " -x SEIS_TEST_FAULT=1:3:kill") + train_args("killed", "--steps 200"));
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.code, kHung) << "the hang guard fired (the job did not end): " << r.out;
  std::printf("[ result ] killed rank: exit %d after %.1f s\n", r.code, r.seconds);
}

// A rank that throws prints its one-line error and MPI_Aborts the job.
TEST_F(MpiTrain, ARankThatThrowsEndsTheJobWithItsError) {
  const Result r = run(mpirun(2, " -x SEIS_TEST_FAULT=1:3:throw") + train_args("threw", "--steps 200"));
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.code, kHung) << "the hang guard fired (the job did not end): " << r.out;
  EXPECT_NE(r.out.find("seisseg train: rank 1 of 2: SEIS_TEST_FAULT: rank 1 fails after step 3"), std::string::npos)
      << r.out;
  std::printf("[ result ] throwing rank: exit %d after %.1f s\n", r.code, r.seconds);
}

}  // namespace
