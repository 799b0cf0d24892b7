// seisseg convert, run as a program: SEG-Y files become HDF5 datasets holding exactly the samples the
// SEG-Y reader reads; bad flags exit 2 and bad files exit 1, each with one line, and nothing is left
// under --out (nor a .tmp) when the conversion fails.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli_util.h"
#include "io/hdf5_dataset.h"
#include "io/segy.h"

namespace seis {
namespace {

using Result = test::CliResult;

std::string segy_path(const std::string& name) { return std::string(SEIS_SOURCE_DIR) + "/tests/data/segy/" + name; }

std::string scratch(const std::string& name) {
  const std::string dir = testing::TempDir() + "/seis_convert_cli";
  std::system(("mkdir -p " + dir).c_str());
  return dir + "/" + name;
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

Result run(const std::string& args) { return test::run_seisseg(args); }

int lines(const std::string& s) { return test::count_lines(s); }

// Converts and checks the HDF5 file against the SEG-Y reader, gather by gather.
void expect_converted(const std::string& segy, const std::string& flags, int64_t n, int64_t h, int64_t w,
                      const std::string& grouping) {
  SCOPED_TRACE(segy + " " + flags);
  const std::string out = scratch(segy + ".h5");
  std::remove(out.c_str());
  const Result r = run("convert " + segy_path(segy) + " --out " + out + " " + flags);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lines(r.out), 1) << r.out;
  std::ostringstream shape;
  shape << "[" << n << ", " << h << ", " << w << "]";
  EXPECT_NE(r.out.find(shape.str()), std::string::npos) << r.out;
  EXPECT_FALSE(exists(out + ".tmp"));

  const H5SampleFile f(out);
  const H5DatasetInfo& info = f.info();
  EXPECT_EQ(info.n, n);
  EXPECT_EQ(info.height, h);
  EXPECT_EQ(info.width, w);
  EXPECT_EQ(info.data_type, H5ElemType::f32);
  EXPECT_EQ(info.label_type, H5ElemType::none);
  EXPECT_TRUE(info.data_chunked_per_sample);
  EXPECT_EQ(info.attributes.at("source"), segy);
  EXPECT_EQ(info.attributes.at("gather_grouping"), grouping);

  const SegyFile s(segy_path(segy));
  EXPECT_DOUBLE_EQ(info.dt, s.info().sample_interval_us * 1e-6);
  EXPECT_NE(info.attributes.at("segy_format").find(std::to_string(s.info().format)), std::string::npos);
  EXPECT_EQ(info.attributes.at("segy_byte_order"), s.info().big_endian ? "big-endian" : "little-endian");
  EXPECT_EQ(info.attributes.at("segy_revision"), s.info().revision());
  std::vector<float> want(static_cast<size_t>(h * w)), got(static_cast<size_t>(h * w));
  for (int64_t i = 0; i < n; ++i) {
    s.read_gather({i * w, w, 0}, want.data());
    f.read(i, got.data(), nullptr);
    ASSERT_EQ(got, want) << "gather " << i;
  }
}

TEST(ConvertCli, ConvertsRealFiles) {
  expect_converted("small.sgy", "", 1, 50, 25, "field_record");
  expect_converted("small-lsb.sgy", "--endian little", 1, 50, 25, "field_record");
  expect_converted("f3.sgy", "", 23, 75, 18, "field_record");
  expect_converted("Format1lsb.sgy", "--gather-size 46", 9, 75, 46, "gather_size 46");
  expect_converted("shot-gather.sgy", "--gather-size 61", 1, 25, 61, "gather_size 61");
}

// Field records of 10, 12, 13 and 26 traces: padded with zero traces to 26, /trace_valid marks them.
TEST(ConvertCli, PadsGathersOfDifferentTraceCounts) {
  const std::string out = scratch("shot-gather.h5");
  std::remove(out.c_str());
  const Result r = run("convert " + segy_path("shot-gather.sgy") + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("[4, 25, 26]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("43 padding traces (gathers of 10 to 26)"), std::string::npos) << r.out;
  const H5SampleFile f(out);
  ASSERT_EQ(f.info().n, 4);
  ASSERT_EQ(f.info().width, 26);
  const SegyFile s(segy_path("shot-gather.sgy"));
  const int64_t widths[] = {10, 12, 13, 26};
  std::vector<float> got(25 * 26), want(25);
  int64_t k = 0;
  for (int64_t g = 0; g < 4; ++g) {
    f.read(g, got.data(), nullptr);
    for (int64_t j = 0; j < 26; ++j) {
      if (j < widths[g]) s.read_trace(k++, want.data());
      for (int64_t t = 0; t < 25; ++t) {
        ASSERT_EQ(got[static_cast<size_t>(t * 26 + j)], j < widths[g] ? want[static_cast<size_t>(t)] : 0.0f)
            << "gather " << g << " trace " << j << " sample " << t;
      }
    }
    // The stored normalisation statistics are those of the gather as read, padding traces included.
    for (const Normalize mode : {Normalize::trace, Normalize::sample}) {
      GatherNormalizer::Stats stored;
      ASSERT_TRUE(f.stored_norm_stats(g, mode, &stored)) << "gather " << g;
      GatherNormalizer norm(mode, 26);
      norm.begin();
      norm.add_rows(got.data(), 25);
      norm.finish();
      EXPECT_TRUE(stored.same_bits(norm.stats())) << "gather " << g << ", " << normalize_name(mode);
    }
  }
  EXPECT_EQ(k, 61);
}

void expect_usage_error(const std::string& args, const std::string& fragment) {
  const Result r = run(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  EXPECT_EQ(lines(r.err), 1) << args << ": expected one line, got\n" << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << args << ": " << r.err;
}

TEST(ConvertCli, BadFlagsExitWithCode2AndOneLine) {
  const std::string in = segy_path("small.sgy"), out = scratch("flags.h5");
  expect_usage_error("convert", "input");
  expect_usage_error("convert " + in, "--out");
  expect_usage_error("convert " + in + " --out " + out + " --endian middle", "--endian");
  expect_usage_error("convert " + in + " --out " + out + " --gather-size 0", "--gather-size");
  expect_usage_error("convert " + in + " --out " + out + " --gather-size x", "--gather-size");
  expect_usage_error("convert " + in + " --out " + out + " --gather-key cdp", "--gather-key");
  expect_usage_error("convert " + in + " --out " + out + " --gather-key field_record --gather-size 5", "exclude");
  expect_usage_error("convert " + in + " --out " + in, "input file");
  expect_usage_error("convert " + in + " --out " + out + " --no-such-flag", "--no-such-flag");
  EXPECT_FALSE(exists(out));
  EXPECT_EQ(run("convert --help").code, 0);
}

TEST(ConvertCli, BadFilesExitWithCode1AndLeaveNothing) {
  const std::pair<std::string, std::string> cases[] = {
      {"broken.sgy", "truncated or malformed"},
      {"text.sgy", "no traces"},
      {"long.sgy", "declares"},
      {"no-such-file.sgy", "cannot open"},
  };
  for (const auto& [file, fragment] : cases) {
    SCOPED_TRACE(file);
    const std::string out = scratch("bad.h5");
    std::remove(out.c_str());
    const Result r = run("convert " + segy_path(file) + " --out " + out);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(segy_path(file)), std::string::npos) << "does not name the file: " << r.err;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
    EXPECT_FALSE(exists(out));
    EXPECT_FALSE(exists(out + ".tmp"));
  }
  const Result r = run("convert " + segy_path("f3.sgy") + " --out " + scratch("bad.h5") + " --gather-size 100");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("must divide 414"), std::string::npos) << r.err;
  // An unwritable destination is a bad file too.
  const Result d = run("convert " + segy_path("small.sgy") + " --out /nonexistent-dir/x.h5");
  EXPECT_EQ(d.code, 1) << d.err;
  EXPECT_EQ(lines(d.err), 1) << d.err;
}

}  // namespace
}  // namespace seis
