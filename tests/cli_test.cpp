// The seisseg program: a bad flag or value is one line on stderr and exit code 2.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_util.h"

namespace {

using seis::test::CliResult;
using seis::test::count_lines;

// The program's stderr is what these tests read.
CliResult run(const std::string& args) { return seis::test::run_seisseg(args); }

void expect_usage_error(const std::string& args, const std::string& fragment) {
  const CliResult r = run(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << args << ": expected one line, got\n" << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << args << ": " << r.err;
}

TEST(Cli, BadFlagsAndValuesExitWithCode2AndOneLine) {
  expect_usage_error("", "usage");
  expect_usage_error("no-such-command", "unknown command");
  expect_usage_error("demo --no-such-flag", "--no-such-flag");
  expect_usage_error("demo --steps abc", "--steps");
  expect_usage_error("demo --steps 0", "--steps");
  expect_usage_error("demo --lr -1", "--lr");
  expect_usage_error("demo --snr-db 5", "--snr-db");
  expect_usage_error("demo --snr-db 9:3", "--snr-db");
  expect_usage_error("demo --device gpu7", "--device");
  expect_usage_error("demo --size 100 --levels 4", "multiples of 2^(levels-1) = 8");
}

TEST(Cli, HelpExitsZero) {
  EXPECT_EQ(run("--help").code, 0);
  EXPECT_EQ(run("demo --help").code, 0);
}

TEST(Cli, CudaWithoutAGpuIsAUsageError) {
  // Only meaningful where no GPU is present; with a GPU, --device cuda is valid.
  const CliResult probe =
      run("demo --device cuda --steps 1 --train-samples 1 --val-samples 1 --size 16 --levels 1 --out /dev/null/x");
  if (probe.code == 2) {
    EXPECT_NE(probe.err.find("no CUDA GPU"), std::string::npos) << probe.err;
  } else {
    EXPECT_EQ(probe.code, 1) << probe.err;  // the GPU exists, and /dev/null/x is refused as an output dir
  }
}

}  // namespace

TEST(Cli, DemoWritesItsOutputsAtomically) {
  const std::string dir = testing::TempDir() + "/seisseg_demo_cli";
  std::system(("rm -rf " + dir).c_str());
  const CliResult r =
      run("demo --device cpu --size 32 --levels 2 --base 4 --steps 4 --batch 2 --train-samples 8 "
          "--val-samples 2 --out " +
          dir);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"config.json", "metrics.jsonl", "weights.safetensors", "preview.png"}) {
    FILE* p = std::fopen((dir + "/" + f).c_str(), "rb");
    EXPECT_NE(p, nullptr) << f << " missing";
    if (p != nullptr) std::fclose(p);
    FILE* t = std::fopen((dir + "/" + f + ".tmp").c_str(), "rb");
    EXPECT_EQ(t, nullptr) << f << ".tmp left behind";
    if (t != nullptr) std::fclose(t);
  }
  // Every metrics line is one JSON object; the last one holds the validation figures.
  std::ifstream m(dir + "/metrics.jsonl");
  std::string line;
  nlohmann::json last;
  int n = 0;
  while (std::getline(m, line)) {
    last = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(last.is_object()) << "not a JSON object: " << line;
    ++n;
  }
  EXPECT_GE(n, 2);
  for (const char* k : {"iou", "precision", "recall", "f1", "val_loss"}) {
    ASSERT_TRUE(last.contains(k)) << k << " missing from " << last.dump();
    EXPECT_TRUE(last[k].is_number()) << k;
  }
  // The detection on a continuous record, in the analyst's units, for both methods.
  ASSERT_TRUE(last.contains("detect")) << last.dump();
  for (const char* method : {"unet", "sta_lta"}) {
    for (const char* k : {"event_f1", "precision", "recall", "false_per_hour", "p_hit10", "pick_mae_ms"}) {
      ASSERT_TRUE(last["detect"][method][k].is_number()) << method << "." << k << " in " << last.dump();
    }
  }
  // Synthetic events at 0 to 10 dB: the tuned classical detector finds most of them.
  EXPECT_GE(last["detect"]["sta_lta"]["event_f1"].get<double>(), 0.5) << last.dump();
  for (const char* f : {"record_tune.h5", "record_test.h5"}) {
    EXPECT_FALSE(std::ifstream(dir + "/" + f).good()) << f << " left behind without --keep-data";
  }
}
