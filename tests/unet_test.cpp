// The UNet: parameter count, names and shapes (PyTorch's), output shapes, input-size errors, and
// a save/load round trip that reproduces the forward pass.
#include "models/unet.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>

#include "engine/error.h"
#include "engine/safetensors.h"
#include "test_util.h"

namespace seis {
namespace {

TEST(UNet, PaperDefaultsHaveExactly8652841Parameters) {
  UNet m(UNetConfig{}, 0, Device::cpu());
  EXPECT_EQ(m.num_params(), 8652841);
  // 7 encoder levels x 2 convs + 6 decoder levels x 3 convs + head, each weight and bias.
  EXPECT_EQ(m.params().size(), static_cast<size_t>(2 * (7 * 2 + 6 * 3 + 1)));
}

TEST(UNet, SafetensorsHoldPyTorchNamesAndOihwShapes) {
  UNetConfig cfg;
  cfg.levels = 3;
  cfg.base = 4;
  UNet m(cfg, 7, Device::cpu());
  const std::string path = testing::TempDir() + "/unet_names.safetensors";
  m.save(path, {{"seisseg.normalize", "trace"}});
  const SafetensorsContents c = load_safetensors(path);
  const std::map<std::string, Shape> want = {
      {"enc.0.conv1.weight", {4, 1, 3, 3}},   {"enc.0.conv1.bias", {4}},
      {"enc.0.conv2.weight", {4, 4, 3, 3}},   {"enc.0.conv2.bias", {4}},
      {"enc.1.conv1.weight", {8, 4, 3, 3}},   {"enc.1.conv1.bias", {8}},
      {"enc.1.conv2.weight", {8, 8, 3, 3}},   {"enc.1.conv2.bias", {8}},
      {"enc.2.conv1.weight", {16, 8, 3, 3}},  {"enc.2.conv1.bias", {16}},
      {"enc.2.conv2.weight", {16, 16, 3, 3}}, {"enc.2.conv2.bias", {16}},
      {"up.1.weight", {8, 16, 3, 3}},         {"up.1.bias", {8}},
      {"dec.1.conv1.weight", {8, 16, 3, 3}},  {"dec.1.conv1.bias", {8}},
      {"dec.1.conv2.weight", {8, 8, 3, 3}},   {"dec.1.conv2.bias", {8}},
      {"up.0.weight", {4, 8, 3, 3}},          {"up.0.bias", {4}},
      {"dec.0.conv1.weight", {4, 8, 3, 3}},   {"dec.0.conv1.bias", {4}},
      {"dec.0.conv2.weight", {4, 4, 3, 3}},   {"dec.0.conv2.bias", {4}},
      {"head.weight", {1, 4, 1, 1}},          {"head.bias", {1}},
  };
  ASSERT_EQ(c.tensors.size(), want.size());
  for (const auto& [name, shape] : want) {
    const Tensor* t = c.find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->shape(), shape) << name;
    EXPECT_EQ(t->dtype(), DType::f32) << name;
  }
  EXPECT_EQ(c.metadata.at("seisseg.levels"), "3");
  EXPECT_EQ(c.metadata.at("seisseg.normalize"), "trace");
  std::remove(path.c_str());
}

TEST(UNet, InitialisationIsSeededAndBoundedByKaimingUniform) {
  UNetConfig cfg;
  cfg.levels = 2;
  cfg.base = 4;
  UNet a(cfg, 3, Device::cpu()), b(cfg, 3, Device::cpu()), c(cfg, 4, Device::cpu());
  for (size_t i = 0; i < a.params().size(); ++i) {
    const auto va = a.params()[i].var->value.to_vector(), vb = b.params()[i].var->value.to_vector();
    EXPECT_EQ(va, vb) << a.params()[i].name;
    EXPECT_NE(va, c.params()[i].var->value.to_vector()) << a.params()[i].name;
  }
  // enc.0.conv2.weight: fan_in = 4 * 9, bound 1/6.
  const auto w = a.params()[2].var->value.to_vector();
  ASSERT_EQ(a.params()[2].name, "enc.0.conv2.weight");
  float mx = 0;
  for (float x : w) mx = std::max(mx, std::fabs(x));
  EXPECT_LE(mx, 1.0f / 6.0f);
  EXPECT_GT(mx, 0.8f / 6.0f);
}

TEST(UNet, OutputShapeMatchesInput) {
  UNetConfig cfg;
  cfg.levels = 4;
  cfg.base = 2;
  UNet m(cfg, 1, Device::cpu());
  Tensor x = Tensor::from_vector({2, 16, 24, 1}, test::random_vector(2 * 16 * 24, 5));
  const Var y = m.forward(nullptr, make_var(x));
  EXPECT_EQ(y->value.shape(), (Shape{2, 16, 24, 1}));
}

TEST(UNet, InputNotDivisibleByTwoToTheLevelsIsAClearError) {
  UNetConfig cfg;
  cfg.levels = 4;
  cfg.base = 2;
  UNet m(cfg, 1, Device::cpu());
  Tensor x = Tensor::zeros({1, 20, 16, 1});
  try {
    m.forward(nullptr, make_var(x));
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("2^(levels-1) = 8"), std::string::npos) << e.what();
  }
}

TEST(UNet, SaveLoadRoundTripReproducesTheForwardPass) {
  UNetConfig cfg;
  cfg.levels = 3;
  cfg.base = 3;
  UNet a(cfg, 11, Device::cpu()), b(cfg, 12, Device::cpu());
  const std::string path = testing::TempDir() + "/unet_roundtrip.safetensors";
  a.save(path, {});
  b.load(path);
  Tensor x = Tensor::from_vector({1, 8, 12, 1}, test::random_vector(96, 9));
  const auto ya = a.forward(nullptr, make_var(x))->value.to_vector();
  const auto yb = b.forward(nullptr, make_var(x))->value.to_vector();
  EXPECT_EQ(ya, yb);

  UNetConfig other = cfg;
  other.base = 4;
  UNet c(other, 1, Device::cpu());
  try {
    c.load(path);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
}

}  // namespace
}  // namespace seis
