// Feeds: the input as a CSV file to both readers of io/detection_csv.cpp that `seisseg evaluate`
// uses (read_picks_csv, read_events_csv): header check, fields, numbers, line lengths, BOM and
// \r\n. Seeds: picks.csv and events.csv written by the project's writers, with extra columns.
// Asserts: no crash or sanitizer report, only seis::InputError / seis::Error thrown, and every row
// read back obeys the readers' contract (non-negative gather and trace or event, finite times and
// scores).
#include <cmath>

#include "fuzz_util.h"
#include "io/detection_csv.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (seis::fuzz::seed_dir() == nullptr) return 0;
  const std::string picks = seis::fuzz::work_dir() + "/picks.csv", events = seis::fuzz::work_dir() + "/events.csv";
  {
    seis::PicksCsvWriter w(picks, {"ffid", "trace_number"});
    w.write({0, 3, 12.25, 24.5, 0.875f}, {"1001", "4"});
    w.write({2, 0, 0.5, 1.0, 1.0f}, {"1002", "1"});
    w.commit();
  }
  {
    seis::EventsCsvWriter w(events, {"utc"});
    seis::Detection d;
    d.gather = 1;
    d.event = 0;
    d.time_ms = 101.5;
    d.n_traces = 12;
    d.score = 0.75f;
    w.write(d, {"2026-12-03T10:00:00.1015Z"});
    w.commit();
  }
  seis::fuzz::write_seed("picks.csv", seis::fuzz::read_file(picks));
  seis::fuzz::write_seed("events.csv", seis::fuzz::read_file(events));
  seis::fuzz::write_seed("picks_bom_crlf.csv",
                         "\xEF\xBB\xBFgather,trace,sample,time_ms,score\r\n 1 , 2 ,3.5,7,0.5\r\n\r\n");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = seis::fuzz::input_file(data, size);
  seis::fuzz::expect_clean([&] {
    for (const seis::Pick& p : seis::read_picks_csv(path)) {
      if (p.gather < 0 || p.trace < 0 || !std::isfinite(p.time_ms) || !std::isfinite(p.score)) {
        std::fprintf(stderr, "fuzz finding: a pick outside the reader's contract was accepted\n");
        std::abort();
      }
    }
  });
  seis::fuzz::expect_clean([&] {
    for (const seis::Detection& d : seis::read_events_csv(path)) {
      if (d.gather < 0 || d.event < 0 || d.n_traces < 0 || !std::isfinite(d.time_ms) || !std::isfinite(d.score)) {
        std::fprintf(stderr, "fuzz finding: an event outside the reader's contract was accepted\n");
        std::abort();
      }
    }
  });
  return 0;
}
