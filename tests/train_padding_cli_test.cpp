// Training and validation on gathers padded with dead traces (a converted SEG-Y with /trace_valid
// to which a user added /label), through the program: the loss and the validation metrics leave the
// padding out, so that what the file holds in padding traces (data or labels) changes nothing, bit
// for bit, while a change in a real trace does; a file without /trace_valid trains as before. Also
// the reader's errors for a /trace_valid of the wrong shape.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cli_util.h"
#include "io/hdf5_dataset.h"

namespace {

using seis::test::lines_of;
using seis::test::slurp;
namespace fs = std::filesystem;

constexpr int64_t kN = 8, kH = 32, kW = 32;

// Gather g has 32 - 3 (g % 4) real traces, then padding; the real traces hold a noisy band of
// arrivals (label 1 within 2 samples of a moveout line), the same for every variant below.
int64_t real_width(int64_t g) { return kW - 3 * (g % 4); }

struct Variant {
  bool with_trace_valid = true;
  bool junk_in_padding = false;  // random data and label 1 in the padding traces
  bool real_label_flip = false;  // one real trace's labels inverted (a change that must count)
};

void write_set(const std::string& path, const Variant& v) {
  seis::H5SampleWriter::Options o;
  o.n = kN;
  o.height = kH;
  o.width = kW;
  o.dt = 0.002;
  o.dx = 10;
  seis::H5SampleWriter wr(path, o);
  std::mt19937_64 gen(11);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  std::mt19937_64 junk_gen(99);
  std::uniform_real_distribution<float> junk(-50.0f, 50.0f);
  if (v.with_trace_valid) wr.add_byte_rows("trace_valid", kW, 4);
  for (int64_t g = 0; g < kN; ++g) {
    std::vector<float> data(static_cast<size_t>(kH * kW), 0.0f);
    std::vector<uint8_t> label(static_cast<size_t>(kH * kW), 0), valid(static_cast<size_t>(kW), 0);
    for (int64_t j = 0; j < kW; ++j) {
      const bool real = j < real_width(g);
      valid[static_cast<size_t>(j)] = real ? 1 : 0;
      const int64_t arrival = 6 + g + j / 2;
      for (int64_t t = 0; t < kH; ++t) {
        const size_t k = static_cast<size_t>(t * kW + j);
        const float n = noise(gen);  // drawn for every pixel, so the real traces never depend on the variant
        if (real) {
          const bool on = std::llabs(t - arrival) <= 2;
          data[k] = n + (on ? 4.0f : 0.0f);
          label[k] = on ? 1 : 0;
          if (v.real_label_flip && g == 1 && j == 3) label[k] = 1 - label[k];
        } else if (v.junk_in_padding) {
          data[k] = junk(junk_gen);
          label[k] = 1;
        }
      }
    }
    wr.write(g, data.data(), label.data());
    if (v.with_trace_valid) wr.append_byte_rows("trace_valid", valid.data(), 1);
  }
  wr.commit();
}

class TrainPaddingCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::TempDir() + "/seisseg_train_padding_cli";
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write_set(dir_ + "/padded.h5", {});
    write_set(dir_ + "/junk.h5", {true, true, false});
    write_set(dir_ + "/flip.h5", {true, false, true});
    write_set(dir_ + "/unmasked.h5", {false, true, false});
  }
  // 3 steps of batch 4 with a validation at step 3 on the same file; flips and crops exercise the
  // reader's handling of the mask.
  static seis::test::CliResult train(const std::string& file, const std::string& out, const std::string& extra = "") {
    return seis::test::run_seisseg("train --data " + dir_ + "/" + file + " --val " + dir_ + "/" + file +
                                   " --levels 3 --base 4 --batch 4 --steps 3 --log-every 1 --device cpu --seed 3"
                                   " --pos-weight 2 --out " +
                                   dir_ + "/" + out + " " + extra);
  }
  // The first validation record of a run.
  static nlohmann::json validation(const std::string& out) {
    const std::vector<nlohmann::json> v = seis::test::validations(dir_ + "/" + out + "/metrics.jsonl");
    return v.empty() ? nlohmann::json() : v[0];
  }
  static std::string dir_;
};
std::string TrainPaddingCli::dir_;

TEST_F(TrainPaddingCli, PaddingTracesChangeNothingAndRealTracesDo) {
  for (const std::string extra : {"", "--flip --crop 32x24"}) {
    SCOPED_TRACE("flags '" + extra + "'");
    const std::string tag = extra.empty() ? "plain" : "aug";
    const auto a = train("padded.h5", "a_" + tag, extra);
    ASSERT_EQ(a.code, 0) << a.out << a.err;
    const auto b = train("junk.h5", "b_" + tag, extra);
    ASSERT_EQ(b.code, 0) << b.out << b.err;
    const auto c = train("flip.h5", "c_" + tag, extra);
    ASSERT_EQ(c.code, 0) << c.out << c.err;
    const auto d = train("unmasked.h5", "d_" + tag, extra);
    ASSERT_EQ(d.code, 0) << d.out << d.err;

    // The training loss of every step is finite and the same whatever the padding holds.
    std::vector<double> la, lb;
    for (const std::string& l : lines_of(dir_ + "/a_" + tag + "/metrics.jsonl")) {
      const nlohmann::json j = nlohmann::json::parse(l);
      if (j.contains("loss") && !j.contains("iou")) la.push_back(j["loss"].get<double>());
    }
    for (const std::string& l : lines_of(dir_ + "/b_" + tag + "/metrics.jsonl")) {
      const nlohmann::json j = nlohmann::json::parse(l);
      if (j.contains("loss") && !j.contains("iou")) lb.push_back(j["loss"].get<double>());
    }
    ASSERT_EQ(la.size(), 3u);
    for (double l : la) EXPECT_TRUE(std::isfinite(l) && l > 0) << "loss " << l;
    EXPECT_EQ(la, lb) << "the losses depend on the padding";

    const std::string wa = slurp(dir_ + "/a_" + tag + "/weights.safetensors");
    ASSERT_FALSE(wa.empty());
    EXPECT_EQ(wa, slurp(dir_ + "/b_" + tag + "/weights.safetensors"))
        << "data or labels in padding changed the weights";
    EXPECT_NE(wa, slurp(dir_ + "/c_" + tag + "/weights.safetensors")) << "a real trace's labels changed nothing";
    EXPECT_NE(wa, slurp(dir_ + "/d_" + tag + "/weights.safetensors"))
        << "without /trace_valid the junk traces must count (the mask was not what made b equal a)";

    // The validation leaves the padding out too.
    const nlohmann::json va = validation("a_" + tag), vb = validation("b_" + tag);
    ASSERT_TRUE(va.contains("val_loss") && vb.contains("val_loss"));
    EXPECT_EQ(va["val_loss"], vb["val_loss"]);
    EXPECT_EQ(va["iou"], vb["iou"]);
    EXPECT_EQ(va["precision"], vb["precision"]);
    EXPECT_EQ(va["recall"], vb["recall"]);
    EXPECT_NE(va["val_loss"], validation("d_" + tag)["val_loss"]);
  }
}

TEST_F(TrainPaddingCli, TraceValidOfTheWrongShapeIsAOneLineError) {
  const std::string bad = dir_ + "/bad_valid.h5";
  {
    seis::H5SampleWriter::Options o;
    o.n = 2;
    o.height = 8;
    o.width = 8;
    seis::H5SampleWriter wr(bad, o);
    wr.add_byte_rows("trace_valid", 7, 2);  // W is 8
    std::vector<float> data(64, 1.0f);
    std::vector<uint8_t> label(64, 0), valid(7, 1);
    for (int64_t g = 0; g < 2; ++g) {
      wr.write(g, data.data(), label.data());
      wr.append_byte_rows("trace_valid", valid.data(), 1);
    }
    wr.commit();
  }
  const auto r =
      seis::test::run_seisseg("train --data " + bad + " --levels 2 --base 4 --batch 2 --steps 1 --device cpu " +
                              "--val-fraction 0 --out " + dir_ + "/bad_run");
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find(bad + ": /trace_valid has shape [2, 7]"), std::string::npos) << r.err;
  EXPECT_EQ(seis::test::count_lines(r.err), 1) << r.err;
}

}  // namespace
