// picks.csv and events.csv (io/detection_csv.h): a written file reads back to the printed precision
// (extra columns ignored), nothing is left under the path or as .tmp when a writer is destroyed
// without commit(), and every malformed file is a one-line InputError naming the file and the line.
#include "io/detection_csv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "cli_util.h"
#include "engine/error.h"

namespace seis {
namespace {

std::string dir() {
  static const std::string d = test::process_dir("detection_csv");
  return d;
}

std::string write_text(const std::string& name, const std::string& text) {
  const std::string p = dir() + "/" + name;
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

// The InputError message of reading `text` as a picks (or events) file; "" when it reads.
std::string error_of(const std::string& name, const std::string& text, bool events = false) {
  const std::string p = write_text(name, text);
  try {
    if (events) {
      read_events_csv(p);
    } else {
      read_picks_csv(p);
    }
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(DetectionCsv, PicksRoundTripToThePrintedPrecision) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 4000);
  std::vector<Pick> picks;
  for (int k = 0; k < 500; ++k) {
    Pick p;
    p.gather = k / 50;
    p.trace = k % 97;
    p.sample = u(rng);
    p.time_ms = p.sample * 2;
    p.score = static_cast<float>(u(rng) / 4000);
    picks.push_back(p);
  }
  const std::string path = dir() + "/picks.csv";
  {
    PicksCsvWriter w(path, {"ffid", "utc"});
    for (const Pick& p : picks) w.write(p, {std::to_string(p.gather + 1000), "2024-01-01T00:00:00Z"});
    EXPECT_EQ(w.rows(), 500);
    EXPECT_FALSE(test::file_exists(path)) << "the file appears only on commit()";
    w.commit();
  }
  EXPECT_FALSE(test::file_exists(path + ".tmp"));
  std::ifstream in(path);
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header, "gather,trace,sample,time_ms,score,ffid,utc");
  const std::vector<Pick> back = read_picks_csv(path);
  ASSERT_EQ(back.size(), picks.size());
  for (size_t k = 0; k < picks.size(); ++k) {
    ASSERT_EQ(back[k].gather, picks[k].gather) << "row " << k;
    ASSERT_EQ(back[k].trace, picks[k].trace) << "row " << k;
    ASSERT_NEAR(back[k].sample, picks[k].sample, 0.0005) << "row " << k;
    ASSERT_NEAR(back[k].time_ms, picks[k].time_ms, 0.0005) << "row " << k;
    ASSERT_NEAR(back[k].score, picks[k].score, 0.00005 + 1e-7) << "row " << k;
  }
}

TEST(DetectionCsv, EventsRoundTripAndExactText) {
  const std::string path = dir() + "/events.csv";
  {
    EventsCsvWriter w(path);
    Detection d;
    d.gather = 3;
    d.event = 12;
    d.time_ms = 1234.56789;
    d.n_traces = 40;
    d.score = 0.87654f;
    d.last_ms = 1500;
    w.write(d);
    w.commit();
  }
  std::ifstream in(path);
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  EXPECT_EQ(header, "gather,event,time_ms,n_traces,score");
  EXPECT_EQ(row, "3,12,1234.568,40,0.8765");
  const std::vector<Detection> back = read_events_csv(path);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].gather, 3);
  EXPECT_EQ(back[0].event, 12);
  EXPECT_DOUBLE_EQ(back[0].time_ms, 1234.568);
  EXPECT_EQ(back[0].n_traces, 40);
  EXPECT_FLOAT_EQ(back[0].score, 0.8765f);
}

TEST(DetectionCsv, WriterWithoutCommitLeavesNothing) {
  const std::string path = dir() + "/abandoned.csv";
  {
    PicksCsvWriter w(path);
    w.write(Pick{});
    EXPECT_TRUE(test::file_exists(path + ".tmp"));
  }
  EXPECT_FALSE(test::file_exists(path + ".tmp"));
  EXPECT_FALSE(test::file_exists(path));
  // A writer into a directory that does not exist: InputError naming the file.
  try {
    EventsCsvWriter w(dir() + "/no/such/dir/events.csv");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/dir/events.csv"), std::string::npos) << e.what();
  }
}

TEST(DetectionCsv, ReadersAcceptBomCrlfSpacesExtraColumnsAndTrailingEmptyLines) {
  const std::string text =
      "\xEF\xBB\xBFgather,trace,sample,time_ms,score,ffid\r\n0,5, 10.5,21.000,0.9,77\r\n1,6,3,6,1,\r\n\r\n";
  const std::vector<Pick> p = read_picks_csv(write_text("ok.csv", text));
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].trace, 5);
  EXPECT_DOUBLE_EQ(p[0].sample, 10.5);
  EXPECT_DOUBLE_EQ(p[1].time_ms, 6);
  // Only a header: no rows. No newline at the end: the last line still counts.
  EXPECT_TRUE(read_picks_csv(write_text("header_only.csv", "gather,trace,sample,time_ms,score\n")).empty());
  EXPECT_EQ(read_events_csv(write_text("no_newline.csv", "gather,event,time_ms,n_traces,score\n2,0,5.5,3,0.5")).size(),
            1u);
}

TEST(DetectionCsv, MalformedFilesNameTheFileAndLine) {
  const std::string h = "gather,trace,sample,time_ms,score\n";
  struct Case {
    const char* name;
    std::string text;
    const char* line;
    const char* what;
  };
  const std::vector<Case> cases = {
      {"empty.csv", "", "line 1", "empty file"},
      {"bad_header.csv", "gather,trace,time_ms,sample,score\n0,0,1,2,0.5\n", "line 1", "header"},
      {"short_header.csv", "gather,trace\n", "line 1", "header"},
      {"few_fields.csv", h + "0,1,2,3,0.5\n0,1,2\n", "line 3", "3 fields"},
      {"not_number.csv", h + "0,1,2x,3,0.5\n", "line 2", "sample '2x' is not a number"},
      {"empty_field.csv", h + "0,1,,3,0.5\n", "line 2", "sample is empty"},
      {"not_integer.csv", h + "0,1.5,2,3,0.5\n", "line 2", "trace '1.5' is not an integer"},
      {"negative_gather.csv", h + "0,1,2,3,0.5\n-1,1,2,3,0.5\n", "line 3", "gather -1 is negative"},
      {"nan_time.csv", h + "0,1,2,nan,0.5\n", "line 2", "time_ms 'nan' is not finite"},
      {"inf_score.csv", h + "0,1,2,3,inf\n", "line 2", "score 'inf' is not finite"},
      {"huge_time.csv", h + "0,1,2,1e999,0.5\n", "line 2", "not finite"},
      {"huge_index.csv", h + "99999999999999999999,1,2,3,0.5\n", "line 2", "out of range"},
      {"inner_empty.csv", h + "0,1,2,3,0.5\n\n0,1,2,3,0.5\n", "line 3", "empty line"},
      {"long_line.csv", h + std::string(size_t{3} << 20, '7') + "\n", "line 2", "longer than 1 MiB"},
  };
  for (const Case& c : cases) {
    const std::string msg = error_of(c.name, c.text);
    EXPECT_NE(msg.find(c.name), std::string::npos) << c.name << ": " << msg;
    EXPECT_NE(msg.find(std::string(c.line) + ":"), std::string::npos) << c.name << ": " << msg;
    EXPECT_NE(msg.find(c.what), std::string::npos) << c.name << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << c.name << ": one line: " << msg;
  }
  const std::string eh = "gather,event,time_ms,n_traces,score\n";
  const std::string neg = error_of("neg_traces.csv", eh + "0,0,5,-3,0.5\n", true);
  EXPECT_NE(neg.find("neg_traces.csv line 2: n_traces -3 is negative"), std::string::npos) << neg;
  const std::string picks_header = error_of("picks_as_events.csv", h + "0,0,5,3,0.5\n", true);
  EXPECT_NE(picks_header.find("picks_as_events.csv line 1: header"), std::string::npos) << picks_header;
  // Missing files and directories name the file.
  try {
    read_picks_csv(dir() + "/missing.csv");
    FAIL() << "no error for a missing file";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.csv: cannot open"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_events_csv(dir()), InputError);
}

}  // namespace
}  // namespace seis
