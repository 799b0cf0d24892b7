// The probabilities of an input converted from SEG-Y written back as SEG-Y, with the input's headers
// (DESIGN.md, "SEG-Y out"): predict --segy-out and detect --segy-out share it. Per gather, the real
// traces in the input's order (padding dropped), each with its 240-byte header unchanged except,
// with a pick byte, its first pick (ms, rounded; -1 when none) as a 4-byte integer at that byte.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/detection_csv.h"
#include "io/segy_headers.h"
#include "io/segy_writer.h"

namespace seis {

class SegyProbWriter {
 public:
  // InputError naming `input` when it has no raw SEG-Y headers (nothing is created then); samples:
  // per trace (the gather height); pick_byte: 1..237, or 0 for none. `segy` must outlive the writer.
  SegyProbWriter(const std::string& path, const std::string& input, const SegyHeadersFile& segy, int64_t samples,
                 int64_t pick_byte);
  // The real traces of segy's current gather (after segy.begin(g)): prob [samples][width], and the
  // gather's picks for the pick byte.
  void write_gather(const float* prob, int64_t width, const std::vector<Pick>& picks);
  // Checks that every real trace of the input was written, then renames the file into place.
  void commit();
  int64_t traces() const { return writer_->traces(); }

 private:
  const SegyHeadersFile& segy_;
  int64_t pick_byte_ = 0;
  std::unique_ptr<SegyWriter> writer_;
  std::string path_;
  std::vector<uint8_t> header_;
  std::vector<double> first_pick_ms_;
};

}  // namespace seis
