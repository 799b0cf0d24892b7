// Writes SEG-Y with the headers of another file (DESIGN.md, "Prediction writes"; predict --segy-out):
// its textual header, its binary header with the sample format code (bytes 3225-3226) set to 5 (IEEE
// float) and, for rev 2, the first trace offset (3521-3528) set to where the traces now start, its
// extended textual headers, then one trace per write_trace: the 240-byte trace header as given and the
// samples as IEEE float. Everything is written in the byte order of the headers it copies (they are
// kept byte for byte, so the samples follow them: a big-endian input gives big-endian output, a
// little-endian one little-endian).
//
// The file goes to path + ".tmp" and is renamed into place by commit() (an AtomicFile,
// engine/file_io.h); destroyed without commit(), the writer removes the temporary file, so a failed
// run leaves nothing half-written under path.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/file_io.h"

namespace seis {

// Stores v at p as a 4-byte integer in the given byte order.
void segy_put_i32(uint8_t* p, int32_t v, bool big_endian);

class SegyWriter {
 public:
  struct Options {
    std::vector<uint8_t> text;      // [3200]
    std::vector<uint8_t> binary;    // [400], as in the input
    std::vector<uint8_t> extended;  // [k * 3200]
    bool big_endian = true;
    int64_t samples = 0;  // per trace
  };
  // InputError naming path when the temporary file cannot be created or written.
  SegyWriter(const std::string& path, const Options& options);
  SegyWriter(const SegyWriter&) = delete;
  SegyWriter& operator=(const SegyWriter&) = delete;

  // One trace: header [240] and samples[k * stride], k < samples.
  void write_trace(const uint8_t* header, const float* samples, int64_t stride);
  int64_t traces() const { return traces_; }
  // Flushes, syncs and renames into place. InputError naming the file when that fails.
  void commit();

 private:
  AtomicFile file_;
  bool big_ = true;
  int64_t samples_ = 0, traces_ = 0;
  std::vector<uint8_t> trace_;
};

}  // namespace seis
