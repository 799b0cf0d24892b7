// safetensors: round trip, and refusal of malformed files with an error naming the file.
#include "engine/safetensors.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "engine/error.h"
#include "test_util.h"

namespace seis {
namespace {

std::string tmp(const std::string& name) { return testing::TempDir() + "/" + name; }

std::string read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_all(const std::string& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}

void expect_input_error(const std::string& path, const std::string& fragment) {
  try {
    load_safetensors(path);
    FAIL() << "expected InputError for " << path;
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
  }
}

TEST(Safetensors, RoundTripKeepsValuesShapesDtypesAndMetadata) {
  const std::string p = tmp("rt.safetensors");
  Tensor a = Tensor::from_vector({2, 3}, {1, -2, 3.5f, 4, 5, 6e-7f});
  Tensor b = Tensor::zeros({4}, DType::u8);
  b.data<uint8_t>()[2] = 7;
  save_safetensors(p, {{"a", a}, {"b", b}}, {{"k", "v"}});
  EXPECT_FALSE(std::filesystem::exists(p + ".tmp"));
  const std::string bytes = read_all(p);
  EXPECT_EQ((8 + bytes[0]) % 8, 0) << "data section must start 8-byte aligned";
  const SafetensorsContents c = load_safetensors(p);
  ASSERT_NE(c.find("a"), nullptr);
  EXPECT_EQ(c.find("a")->shape(), (Shape{2, 3}));
  EXPECT_EQ(c.find("a")->to_vector(), a.to_vector());
  EXPECT_EQ(c.find("b")->dtype(), DType::u8);
  EXPECT_EQ(c.find("b")->to_vector(), b.to_vector());
  EXPECT_EQ(c.metadata.at("k"), "v");
  std::remove(p.c_str());
}

TEST(Safetensors, MalformedFilesAreRefusedNamingTheFile) {
  const std::string good = tmp("good.safetensors");
  save_safetensors(good, {{"w", Tensor::from_vector({4}, {1, 2, 3, 4})}}, {});
  const std::string bytes = read_all(good);

  const std::string truncated = tmp("truncated.safetensors");
  write_all(truncated, bytes.substr(0, bytes.size() - 3));
  expect_input_error(truncated, "outside");

  const std::string tiny = tmp("tiny.safetensors");
  write_all(tiny, "abc");
  expect_input_error(tiny, "not a safetensors file");

  const std::string huge_header = tmp("huge.safetensors");
  std::string h = bytes;
  h[7] = static_cast<char>(0x7f);
  write_all(huge_header, h);
  expect_input_error(huge_header, "header length");

  const std::string bad_json = tmp("badjson.safetensors");
  std::string j = bytes;
  j[9] = '!';
  write_all(bad_json, j);
  expect_input_error(bad_json, "header");

  expect_input_error(tmp("missing.safetensors"), "cannot open");
  expect_input_error(testing::TempDir(), "directory");
  for (const auto& p : {good, truncated, tiny, huge_header, bad_json}) std::remove(p.c_str());
}

// Found by review while fuzzing (tests/fuzz/fuzz_safetensors.cpp): each dimension within 2^40, but
// their product past int64 (signed overflow, undefined) before the size check.
TEST(Safetensors, ShapeWhoseProductOverflowsIsRefused) {
  const std::string p = tmp("overflow.safetensors");
  std::string header = R"({"w":{"dtype":"F32","shape":[1099511627776,1099511627776,16],"data_offsets":[0,4]}})";
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(header.size());
  write_all(p, bytes + header + std::string(4, '\0'));
  expect_input_error(p, "shape too large");
  std::remove(p.c_str());
}

TEST(Safetensors, WritingIntoAMissingDirectoryFailsCleanly) {
  const std::string p = tmp("no/such/dir/x.safetensors");
  EXPECT_THROW(save_safetensors(p, {{"w", Tensor::zeros({1})}}, {}), InputError);
  EXPECT_FALSE(std::filesystem::exists(p + ".tmp"));
}

}  // namespace
}  // namespace seis
