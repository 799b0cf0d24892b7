// picks.csv and events.csv (io/detection_csv.h). Writers: an AtomicFile (engine/file_io.h), so the
// file under path is complete or absent. Readers: the file in 64 KiB blocks, one line at a time (at
// most 1 MiB), each field parsed in the "C" locale with strtoll / strtod and required to be consumed
// whole; fields and lines quoted in errors pass through printable() (engine/printable.h).
#include "io/detection_csv.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "engine/error.h"
#include "engine/printable.h"

namespace seis {

namespace {

constexpr const char* kPickColumns[] = {"gather", "trace", "sample", "time_ms", "score"};
constexpr const char* kEventColumns[] = {"gather", "event", "time_ms", "n_traces", "score"};
constexpr size_t kColumns = 5;
constexpr size_t kMaxLine = size_t{1} << 20;

std::string header_line(const char* const* columns, const std::vector<std::string>& extra) {
  std::string h;
  for (size_t k = 0; k < kColumns; ++k) h += (k ? "," : "") + std::string(columns[k]);
  for (const std::string& e : extra) {
    SEIS_CHECK(e.find_first_of(",\r\n") == std::string::npos, "CSV column name '" << e << "' holds a separator");
    h += "," + e;
  }
  return h;
}

void append_extra(std::string* line, const std::vector<std::string>& extra, size_t expected) {
  SEIS_CHECK(extra.size() == expected,
             "CSV row has " << extra.size() << " extra values for " << expected << " columns");
  for (const std::string& e : extra) {
    SEIS_CHECK(e.find_first_of(",\r\n") == std::string::npos, "CSV value '" << e << "' holds a separator");
    *line += ",";
    *line += e;
  }
}

// Lines of a text file, bounded: a line longer than kMaxLine is an error, never a huge allocation.
class LineReader {
 public:
  explicit LineReader(const std::string& path) : path_(path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw InputError(path + ": cannot open: " + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw InputError(path + ": is a directory, not a CSV file");
    file_ = std::fopen(path.c_str(), "rb");
    if (file_ == nullptr) throw InputError(path + ": cannot open: " + std::strerror(errno));
  }
  ~LineReader() {
    if (file_ != nullptr) std::fclose(file_);
  }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line without its "\n" or "\r\n"; false at the end of the file. line_number() is the
  // 1-based number of the line returned.
  bool next(std::string* line) {
    line->clear();
    if (done_) return false;
    for (;;) {
      if (pos_ == len_) {
        len_ = std::fread(buf_, 1, sizeof(buf_), file_);
        pos_ = 0;
        if (len_ == 0) {
          if (std::ferror(file_)) throw InputError(path_ + ": read failed: " + std::strerror(errno));
          done_ = true;
          // A last line without a newline is a line; nothing after the last newline is not.
          if (line->empty()) return false;
          break;
        }
      }
      const char* start = buf_ + pos_;
      const void* nl = std::memchr(start, '\n', len_ - pos_);
      const size_t take = nl ? static_cast<size_t>(static_cast<const char*>(nl) - start) : len_ - pos_;
      if (line->size() + take > kMaxLine) {
        throw InputError(path_ + " line " + std::to_string(line_ + 1) + ": longer than 1 MiB: not a CSV file?");
      }
      line->append(start, take);
      pos_ += take;
      if (nl) {
        ++pos_;
        break;
      }
    }
    ++line_;
    if (!line->empty() && line->back() == '\r') line->pop_back();
    return true;
  }
  int64_t line_number() const { return line_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  char buf_[65536];
  size_t pos_ = 0, len_ = 0;
  int64_t line_ = 0;
  bool done_ = false;
};

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (;;) {
    const size_t c = line.find(',', start);
    fields.push_back(trim(line.substr(start, c == std::string::npos ? std::string::npos : c - start)));
    if (c == std::string::npos) return fields;
    start = c + 1;
  }
}

// The rows of a CSV file whose leading columns must be `columns`: calls row(fields, where) for each
// data row, `where` being "F.csv line N: ". Empty lines are allowed only at the end of the file.
template <typename RowFn>
void read_csv(const std::string& path, const char* const* columns, RowFn row) {
  LineReader in(path);
  std::string line;
  const std::string expected = header_line(columns, {});
  auto where = [&](int64_t n) { return path + " line " + std::to_string(n) + ": "; };
  if (!in.next(&line)) throw InputError(where(1) + "empty file; expected the header '" + expected + "'");
  if (line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // a UTF-8 byte order mark
  const std::vector<std::string> header = split(line);
  bool header_ok = header.size() >= kColumns;
  for (size_t k = 0; header_ok && k < kColumns; ++k) header_ok = header[k] == columns[k];
  if (!header_ok) {
    const std::string shown = printable(line, 80);
    throw InputError(where(1) + "header '" + shown + "' does not start with '" + expected + "'");
  }
  int64_t empty_line = 0;  // the first of the empty lines seen since the last row
  while (in.next(&line)) {
    if (trim(line).empty()) {
      if (empty_line == 0) empty_line = in.line_number();
      continue;
    }
    if (empty_line != 0) throw InputError(where(empty_line) + "empty line before the end of the file");
    const std::vector<std::string> fields = split(line);
    const std::string at = where(in.line_number());
    if (fields.size() < kColumns) {
      throw InputError(at + std::to_string(fields.size()) + " fields, expected at least " + std::to_string(kColumns) +
                       " (" + expected + ")");
    }
    row(fields, at);
  }
}

std::string shown(const std::string& field) { return printable(field, 40); }

// A non-negative integer field (gather, trace, event, n_traces).
int64_t parse_index(const std::string& field, const char* name, const std::string& at) {
  if (field.empty()) throw InputError(at + name + " is empty");
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(field.c_str(), &end, 10);
  if (end != field.c_str() + field.size()) {
    throw InputError(at + name + " '" + shown(field) + "' is not an integer");
  }
  if (errno == ERANGE) throw InputError(at + name + " '" + shown(field) + "' is out of range");
  if (v < 0) throw InputError(at + name + " " + shown(field) + " is negative");
  return static_cast<int64_t>(v);
}

// A finite number field (sample, time_ms, score).
double parse_number(const std::string& field, const char* name, const std::string& at) {
  if (field.empty()) throw InputError(at + name + " is empty");
  char* end = nullptr;
  const double v = std::strtod(field.c_str(), &end);
  if (end != field.c_str() + field.size()) throw InputError(at + name + " '" + shown(field) + "' is not a number");
  if (!std::isfinite(v)) throw InputError(at + name + " '" + shown(field) + "' is not finite");
  return v;
}

float parse_score(const std::string& field, const std::string& at) {
  const double v = parse_number(field, "score", at);
  if (std::fabs(v) > 3.0e38) throw InputError(at + "score '" + shown(field) + "' is out of range");
  return static_cast<float>(v);
}

}  // namespace

CsvWriter::CsvWriter(const std::string& path, const std::string& header) : file_(path) { file_.write(header + "\n"); }

void CsvWriter::line(const std::string& text) {
  SEIS_CHECK(file_.stream() != nullptr, file_.path() << ": line() after commit()");
  file_.write(text + "\n");
  ++rows_;
}

void CsvWriter::commit() {
  SEIS_CHECK(file_.stream() != nullptr, file_.path() << ": commit() twice");
  file_.commit();
}

PicksCsvWriter::PicksCsvWriter(const std::string& path, const std::vector<std::string>& extra_columns)
    : csv_(path, header_line(kPickColumns, extra_columns)), extra_(extra_columns.size()) {}

void PicksCsvWriter::write(const Pick& p, const std::vector<std::string>& extra) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%lld,%lld,%.3f,%.3f,%.4f", static_cast<long long>(p.gather),
                static_cast<long long>(p.trace), p.sample, p.time_ms, static_cast<double>(p.score));
  std::string line = buf;
  append_extra(&line, extra, extra_);
  csv_.line(line);
}

EventsCsvWriter::EventsCsvWriter(const std::string& path, const std::vector<std::string>& extra_columns)
    : csv_(path, header_line(kEventColumns, extra_columns)), extra_(extra_columns.size()) {}

void EventsCsvWriter::write(const Detection& d, const std::vector<std::string>& extra) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%lld,%lld,%.3f,%lld,%.4f", static_cast<long long>(d.gather),
                static_cast<long long>(d.event), d.time_ms, static_cast<long long>(d.n_traces),
                static_cast<double>(d.score));
  std::string line = buf;
  append_extra(&line, extra, extra_);
  csv_.line(line);
}

std::vector<Pick> read_picks_csv(const std::string& path) {
  std::vector<Pick> picks;
  read_csv(path, kPickColumns, [&](const std::vector<std::string>& f, const std::string& at) {
    Pick p;
    p.gather = parse_index(f[0], "gather", at);
    p.trace = parse_index(f[1], "trace", at);
    p.sample = parse_number(f[2], "sample", at);
    p.time_ms = parse_number(f[3], "time_ms", at);
    p.score = parse_score(f[4], at);
    picks.push_back(p);
  });
  return picks;
}

std::vector<Detection> read_events_csv(const std::string& path) {
  std::vector<Detection> events;
  read_csv(path, kEventColumns, [&](const std::vector<std::string>& f, const std::string& at) {
    Detection d;
    d.gather = parse_index(f[0], "gather", at);
    d.event = parse_index(f[1], "event", at);
    d.time_ms = parse_number(f[2], "time_ms", at);
    d.n_traces = parse_index(f[3], "n_traces", at);
    d.score = parse_score(f[4], at);
    d.last_ms = d.time_ms;  // not in the file
    events.push_back(d);
  });
  return events;
}

}  // namespace seis
