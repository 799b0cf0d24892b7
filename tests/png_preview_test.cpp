// PNG previews: a valid PNG of the expected size, written atomically, and a clear error for a bad path.
#include "io/png_preview.h"

#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/error.h"
#include "io/synth_microseismic.h"

namespace seis {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir() {
  const fs::path dir = fs::temp_directory_path() / ("seis_png_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

struct Decoded {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Decodes with libpng's simplified API; fails the test on any libpng error.
Decoded decode(const fs::path& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  Decoded d;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    ADD_FAILURE() << "libpng cannot open " << path << ": " << image.message;
    return d;
  }
  image.format = PNG_FORMAT_RGB;
  d.rgb.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, d.rgb.data(), 0, nullptr)) {
    ADD_FAILURE() << "libpng cannot decode " << path << ": " << image.message;
    return d;
  }
  d.width = image.width;
  d.height = image.height;
  return d;
}

bool has_png_signature(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char sig[8] = {};
  in.read(reinterpret_cast<char*>(sig), 8);
  return in.gcount() == 8 && png_sig_cmp(sig, 0, 8) == 0;
}

TEST(PngPreview, WritesInputLabelPrediction) {
  SynthConfig cfg;
  cfg.height = 96;
  cfg.width = 70;
  cfg.events_min = 1;
  std::vector<float> data(static_cast<size_t>(cfg.height * cfg.width)), prob(data.size());
  std::vector<uint8_t> label(data.size());
  synth_sample(cfg, 0, data.data(), label.data());
  for (size_t i = 0; i < prob.size(); ++i) prob[i] = label[i] ? 0.9f : 0.1f;

  const fs::path dir = temp_dir(), path = dir / "preview.png";
  write_preview_png(path.string(), cfg.height, cfg.width, data.data(), label.data(), prob.data());
  ASSERT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
  EXPECT_TRUE(has_png_signature(path));
  const Decoded d = decode(path);
  EXPECT_EQ(d.width, 3 * cfg.width + 2 * kPreviewSeparator);
  EXPECT_EQ(d.height, cfg.height);

  // The label panel is white exactly where the label is 1.
  int64_t mismatches = 0;
  for (int64_t y = 0; y < cfg.height; ++y) {
    for (int64_t x = 0; x < cfg.width; ++x) {
      const uint8_t g = d.rgb[(y * d.width + cfg.width + kPreviewSeparator + x) * 3];
      mismatches += (g == 255) != (label[y * cfg.width + x] == 1);
    }
  }
  EXPECT_EQ(mismatches, 0);
  fs::remove_all(dir);
}

TEST(PngPreview, NullPanelsAndLargeGatherIsReduced) {
  const int64_t H = 2500, W = 1100;  // reduced by 3 and 2: 834 x 550 panels
  std::vector<float> data(static_cast<size_t>(H * W));
  for (int64_t i = 0; i < H * W; ++i) data[i] = static_cast<float>((i * 7919) % 201 - 100);
  const fs::path dir = temp_dir(), path = dir / "big.png";
  write_preview_png(path.string(), H, W, data.data(), nullptr, nullptr);
  const Decoded d = decode(path);
  EXPECT_EQ(d.width, 3 * 550 + 2 * kPreviewSeparator);
  EXPECT_EQ(d.height, 834);
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
  fs::remove_all(dir);
}

TEST(PngPreview, MissingDirectoryThrowsInputErrorNamingThePath) {
  const fs::path path = temp_dir() / "no_such_dir" / "preview.png";
  std::vector<float> data(16 * 16, 0.5f);
  try {
    write_preview_png(path.string(), 16, 16, data.data(), nullptr, nullptr);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
  fs::remove_all(path.parent_path().parent_path());
}

}  // namespace
}  // namespace seis
