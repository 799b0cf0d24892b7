// SEG-Y rev 0/1/2 reader (DESIGN.md, "Data": SEG-Y import). Layout: a 3200-byte textual header, a
// 400-byte binary header, optional 3200-byte extended textual headers, then traces of a 240-byte
// header plus samples. Nothing in the file is trusted: every header value is checked against the
// file size before anything is allocated, and every read is bounds-checked. A bad file throws
// seis::InputError, one line naming the file and the problem.
//
// Samples are converted to float32: format 1 (IBM float, exact wherever float32 can hold the value),
// 2 (int32), 3 (int16), 5 (IEEE float) and 8 (int8). Gathers are read one at a time, time-major:
// data[t * W + j] = sample t of the gather's trace j.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace seis {

enum class SegyByteOrder { auto_detect, big, little };

// "big", "little" or "auto"; parse returns false for anything else.
const char* segy_byte_order_name(SegyByteOrder order);
bool parse_segy_byte_order(const std::string& s, SegyByteOrder* order);

// "IBM float", "int32", ...; "unknown" for a code outside the SEG-Y rev 2 table.
const char* segy_format_name(int code);

// IBM System/360 single precision to float32, rounded to nearest; exact where representable.
// Zero keeps its sign, tiny values become float denormals or zero, huge ones +-infinity.
float ibm_to_float(uint32_t ibm);

struct SegyInfo {
  std::string path;
  int64_t file_size = 0;
  int revision_major = 0, revision_minor = 0;
  int format = 0;  // 1, 2, 3, 5 or 8
  int64_t bytes_per_sample = 0;
  bool big_endian = true;
  bool byte_order_detected = true;  // false when the caller forced it
  int64_t extended_text_headers = 0;
  int64_t first_trace_offset = 0;  // bytes from the start of the file
  int64_t samples = 0;             // per trace (H)
  int64_t trace_bytes = 0;         // 240 + samples * bytes_per_sample
  int64_t traces = 0;
  double sample_interval_us = 0;  // 0 when the file does not say

  std::string revision() const;  // "1.0"
};

// A run of consecutive traces: [first_trace, first_trace + traces).
struct SegyGather {
  int64_t first_trace = 0, traces = 0;
  int32_t field_record = 0;  // trace header bytes 9-12 of the first trace
};

class SegyFile {
 public:
  // Opens and validates the headers. Throws InputError naming the file and the problem.
  explicit SegyFile(const std::string& path, SegyByteOrder order = SegyByteOrder::auto_detect);
  ~SegyFile();
  SegyFile(const SegyFile&) = delete;
  SegyFile& operator=(const SegyFile&) = delete;

  const SegyInfo& info() const { return info_; }

  // Consecutive runs of equal field record numbers (trace header bytes 9-12). Reads every trace
  // header once (and checks it); holds no samples.
  std::vector<SegyGather> gathers_by_field_record() const;
  // Gathers of exactly n traces; InputError unless n divides the trace count.
  std::vector<SegyGather> gathers_by_count(int64_t n) const;
  // The traces from `first` on that share its field record number (at least 1): the first gather's
  // width, from its headers alone.
  int64_t field_record_run(int64_t first) const;

  // Reads gather g into data [samples * width], time-major, width >= g.traces (0: g.traces); the
  // columns past g.traces are zero (padding to a wider gather). With headers, also its raw trace
  // headers [g.traces * 240]. Checks every trace header it reads.
  void read_gather(const SegyGather& g, float* data, int64_t width = 0, uint8_t* headers = nullptr) const;
  // Reads trace i's samples into samples [info().samples].
  void read_trace(int64_t i, float* samples) const;

  // The raw headers as they are in the file: the textual header [3200], the binary header [400] and
  // extended textual header k (0 <= k < info().extended_text_headers) [3200].
  void read_text_header(uint8_t* out) const;
  void read_binary_header(uint8_t* out) const;
  void read_extended_text_header(int64_t k, uint8_t* out) const;

 private:
  void pread_exact(void* buf, int64_t bytes, int64_t offset, const char* what) const;
  void check_trace_header(int64_t trace, const uint8_t* header) const;

  SegyInfo info_;
  int fd_ = -1;
  int32_t trace0_samples_field_ = 0;  // trace header bytes 115-116 of trace 0, the reference for the rest
};

}  // namespace seis
