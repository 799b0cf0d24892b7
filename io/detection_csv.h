// Picks and events as CSV files (DESIGN.md, "Picks and events"): the fixed leading columns
//   picks.csv   gather,trace,sample,time_ms,score
//   events.csv  gather,event,time_ms,n_traces,score
// then any extra columns (absolute UTC time, trace header keys), which readers ignore. One header
// line, one row per pick or event, no quoting (no field holds a comma). `sample` is sub-sample (the
// probability-weighted centre of a run), `time_ms` = sample x dt x 1000 from the first sample of the
// gather or record.
//
// Writers stream rows to path + ".tmp" and rename it into place on commit(): destroyed without
// commit(), they remove the temporary file, so a failed run leaves nothing half-written under path.
// Readers give a one-line InputError naming the file and line for anything they cannot parse.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/file_io.h"

namespace seis {

// One arrival picked on one trace.
struct Pick {
  int64_t gather = 0, trace = 0;
  double sample = 0;    // sub-sample position from the first sample of the gather or record
  double time_ms = 0;   // sample x dt x 1000
  float score = 0;      // peak probability of the run (or the detector's own score)
  bool filled = false;  // placed on the event's fitted moveout, not picked (models/moveout_fill.h)
};

// One event: picks coherent across traces.
struct Detection {
  int64_t gather = 0, event = 0;  // event: numbered from 0 in time order, per file
  double time_ms = 0;             // earliest arrival of the event
  int64_t n_traces = 0;           // traces with a pick in the event
  float score = 0;
  double last_ms = 0;  // latest arrival of the event (not written; for association and tests)
};

class CsvWriter {
 public:
  // header: the whole header line without the newline. InputError naming path when the temporary
  // file cannot be created.
  CsvWriter(const std::string& path, const std::string& header);
  CsvWriter(const CsvWriter&) = delete;
  CsvWriter& operator=(const CsvWriter&) = delete;
  // One line (without the newline). InputError naming the file on a write error (disk full).
  void line(const std::string& text);
  int64_t rows() const { return rows_; }
  // Flushes, syncs and renames into place. InputError naming the file when that fails.
  void commit();

 private:
  AtomicFile file_;
  int64_t rows_ = 0;
};

// picks.csv with optional extra column names after the fixed ones; write() takes their values.
class PicksCsvWriter {
 public:
  PicksCsvWriter(const std::string& path, const std::vector<std::string>& extra_columns = {});
  void write(const Pick& p, const std::vector<std::string>& extra = {});
  int64_t rows() const { return csv_.rows(); }
  void commit() { csv_.commit(); }

 private:
  CsvWriter csv_;
  size_t extra_ = 0;
};

class EventsCsvWriter {
 public:
  EventsCsvWriter(const std::string& path, const std::vector<std::string>& extra_columns = {});
  void write(const Detection& d, const std::vector<std::string>& extra = {});
  int64_t rows() const { return csv_.rows(); }
  void commit() { csv_.commit(); }

 private:
  CsvWriter csv_;
  size_t extra_ = 0;
};

// Whole files (evaluate). InputError naming the file and line: missing file, a header whose leading
// columns are not the contract's, a row with too few fields, a field that is not a number, a
// negative gather or trace, a non-finite time or score.
// Also: an empty file, a line over 1 MiB (never read whole), an integer field (gather, trace, event,
// n_traces) that is not a non-negative integer, an empty line before the last row. Accepted: a UTF-8
// byte order mark, \r\n line endings, spaces around fields, empty lines at the end. So row k of the
// result is line k + 2 of the file. read_events_csv sets last_ms = time_ms (the file has no last).
std::vector<Pick> read_picks_csv(const std::string& path);
std::vector<Detection> read_events_csv(const std::string& path);

}  // namespace seis
