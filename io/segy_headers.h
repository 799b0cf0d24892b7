// SEG-Y headers kept in a converted HDF5 file (DESIGN.md, "Data": from SEG-Y), so that predictions and
// picks stay traceable to field record, channel and coordinates and can go back to SEG-Y:
//   /segy_text_header u8 [3200], /segy_binary_header u8 [400], /segy_extended_text_headers u8
//   [k, 3200] (only when the file has them), /segy_trace_headers u8 [n_traces, 240]: raw, file order;
//   /headers: one row per trace in file order (SegyHeaderRow, values decoded in the file's byte order);
//   /trace_valid u8 [N, W]: 1 for a real trace, 0 for padding, only when gathers of different trace
//   counts were padded to the widest (absent: every trace is real).
// Real traces of a gather are its columns with trace_valid 1, in order; the k-th real trace of the file
// (gathers in order) is row k of /segy_trace_headers and /headers.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/hdf5_table.h"

namespace seis {

constexpr int64_t kSegyTextHeaderBytes = 3200;
constexpr int64_t kSegyBinaryHeaderBytes = 400;
constexpr int64_t kSegyTraceHeaderBytes = 240;

struct SegyHeaderRow {
  int64_t gather = 0, trace = 0;                                // the sample index in /data and the column within it
  int64_t ffid = 0;                                             // field record number, trace header bytes 9-12
  int64_t trace_number = 0;                                     // trace number within the field record, 13-16
  int64_t cdp = 0;                                              // 21-24
  int64_t offset = 0;                                           // source to receiver distance, 37-40
  int64_t coordinate_scalar = 0;                                // 71-72, as stored
  double source_x = 0, source_y = 0, group_x = 0, group_y = 0;  // 73-88, the scalar applied
  int64_t delay_ms = 0;                                         // delay recording time, 109-110
  int64_t year = 0, day = 0, hour = 0, minute = 0, second = 0;  // recording time, 157-166
};

// The /headers table (fields in the order above).
const H5TableSpec& segy_header_table();

// Decodes a raw 240-byte trace header. Coordinates: a positive scalar multiplies, a negative one
// divides by its absolute value, 0 means 1.
SegyHeaderRow segy_header_row(const uint8_t* trace_header, bool big_endian, int64_t gather, int64_t trace);

// The SEG-Y side of a converted file of gathers /data [N, H, W], read gather by gather.
class SegyHeadersFile {
 public:
  // n and width: the shape of /data. InputError naming the file when the datasets that are present
  // do not fit it (a header dataset of the wrong type or shape, /trace_valid not [N, W], header rows
  // that are not N x W without /trace_valid, /headers and /segy_trace_headers of different lengths);
  // begin() checks each gather's real traces against the header rows. Nothing read or allocated here
  // grows with N (a few KB of HDF5 may declare any N).
  SegyHeadersFile(const std::string& path, int64_t n, int64_t width);
  ~SegyHeadersFile();
  SegyHeadersFile(const SegyHeadersFile&) = delete;
  SegyHeadersFile& operator=(const SegyHeadersFile&) = delete;

  // /segy_text_header, /segy_binary_header and /segy_trace_headers: enough to write SEG-Y.
  bool has_raw() const;
  bool has_table() const;    // /headers
  bool has_padding() const;  // /trace_valid
  bool big_endian() const;   // the byte order of the raw headers (attribute segy_byte_order)
  int64_t traces() const;    // real traces: the header rows (or N x W; /trace_valid counted when alone)

  std::vector<uint8_t> text_header() const;            // [3200]
  std::vector<uint8_t> binary_header() const;          // [400]
  std::vector<uint8_t> extended_text_headers() const;  // [k * 3200], empty when none

  // Loads gather g (in order g = 0, 1, ... each costs one row; out of order, /trace_valid is counted
  // from gather 0). Then, for column j of that gather:
  void begin(int64_t g);
  bool valid(int64_t j) const;
  const std::vector<uint8_t>& valid_mask() const;  // [W]
  // Its /headers row, or nullptr for padding (or without /headers). Checked: gather g, trace j.
  const SegyHeaderRow* row(int64_t j) const;
  // Its raw trace header [240], or nullptr for padding (or without /segy_trace_headers).
  const uint8_t* raw_header(int64_t j) const;

 private:
  void open();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace seis
