// A run's config.json read back on --resume (apps/run_config.h): the settings written come back
// equal; a damaged file (not JSON, no settings, a setting of the wrong type or out of its flag's
// range, as tests/fuzz/fuzz_run_config.cpp feeds) is a one-line InputError naming the file and the
// setting, never nlohmann's type_error.
#include "apps/run_config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "engine/error.h"

namespace seis {
namespace {

std::string write_config(const std::string& name, const std::string& text) {
  const std::string p = testing::TempDir() + "/runcfg_" + name + ".json";
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

TrainSettings read_back(const std::string& path) {
  return train_settings_from_json(read_run_config(path, "run"), path);
}

void expect_input_error(const std::string& path, const std::string& fragment) {
  try {
    read_back(path);
    ADD_FAILURE() << "expected an InputError for " << path;
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(RunConfig, SettingsRoundTrip) {
  TrainSettings s;
  s.data = "a.h5,b.h5";
  s.levels = 3;
  s.batch = 6;
  s.lr = 2e-3f;
  s.seed = 18446744073709551615ull;
  s.flip = true;
  s.threshold = 0.25f;
  const nlohmann::ordered_json j = {{"version", "0.1.0"}, {"settings", s.to_json()}};
  const std::string p = write_config("roundtrip", j.dump(2));
  const TrainSettings got = read_back(p);
  EXPECT_EQ(got.to_json(), s.to_json());
  std::remove(p.c_str());
}

TEST(RunConfig, DamagedConfigsAreInputErrors) {
  const char* const cases[][3] = {
      {"not_json", "{\"settings\": {", "not a seisseg train config"},
      {"no_settings", "{\"version\": \"0.1.0\"}", "not a seisseg train config"},
      {"levels_string", R"({"settings": {"levels": "7"}})", "\"levels\""},
      {"levels_huge_float", R"({"settings": {"levels": 1e300}})", "\"levels\""},
      {"levels_out_of_range", R"({"settings": {"levels": 40}})", "1..12"},
      {"batch_zero", R"({"settings": {"batch": 0}})", "\"batch\""},
      {"seed_negative", R"({"settings": {"seed": -1}})", "\"seed\""},
      {"lr_string", R"({"settings": {"lr": "fast"}})", "\"lr\""},
      {"lr_zero", R"({"settings": {"lr": 0}})", "\"lr\""},
      {"threshold_null", R"({"settings": {"threshold": null}})", "\"threshold\""},
      {"flip_number", R"({"settings": {"flip": 1}})", "\"flip\""},
      {"data_array", R"({"settings": {"data": ["a.h5"]}})", "\"data\""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c[0]);
    const std::string p = write_config(c[0], c[1]);
    expect_input_error(p, c[2]);
    std::remove(p.c_str());
  }
  expect_input_error(testing::TempDir() + "/runcfg_missing.json", "cannot open");
}

}  // namespace
}  // namespace seis
