#include "apps/segy_prob_writer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/error.h"

namespace seis {

SegyProbWriter::SegyProbWriter(const std::string& path, const std::string& input, const SegyHeadersFile& segy,
                               int64_t samples, int64_t pick_byte)
    : segy_(segy), pick_byte_(pick_byte), path_(path), header_(kSegyTraceHeaderBytes) {
  if (!segy.has_raw()) {
    throw InputError(input +
                     ": no SEG-Y headers (/segy_text_header, /segy_binary_header, /segy_trace_headers) for "
                     "--segy-out: convert the SEG-Y file with seisseg convert");
  }
  SEIS_CHECK(pick_byte >= 0 && pick_byte <= kSegyTraceHeaderBytes - 3, "SEG-Y pick byte " << pick_byte);
  SegyWriter::Options so;
  so.text = segy.text_header();
  so.binary = segy.binary_header();
  so.extended = segy.extended_text_headers();
  so.big_endian = segy.big_endian();
  so.samples = samples;
  writer_ = std::make_unique<SegyWriter>(path, so);
}

void SegyProbWriter::write_gather(const float* prob, int64_t width, const std::vector<Pick>& picks) {
  if (pick_byte_ > 0) {
    first_pick_ms_.assign(static_cast<size_t>(width), -1.0);
    for (const Pick& p : picks) {
      SEIS_CHECK(p.trace >= 0 && p.trace < width, "pick on trace " << p.trace << " of " << width);
      double& f = first_pick_ms_[static_cast<size_t>(p.trace)];
      if (f < 0 || p.time_ms < f) f = p.time_ms;
    }
  }
  for (int64_t j = 0; j < width; ++j) {
    const uint8_t* raw_header = segy_.raw_header(j);
    if (raw_header == nullptr) continue;  // padding
    std::memcpy(header_.data(), raw_header, kSegyTraceHeaderBytes);
    if (pick_byte_ > 0) {
      const double f = first_pick_ms_[static_cast<size_t>(j)];
      segy_put_i32(header_.data() + pick_byte_ - 1, f < 0 ? -1 : static_cast<int32_t>(std::lround(f)),
                   segy_.big_endian());
    }
    writer_->write_trace(header_.data(), prob + j, width);
  }
}

void SegyProbWriter::commit() {
  SEIS_CHECK(writer_->traces() == segy_.traces(),
             path_ << ": wrote " << writer_->traces() << " traces of " << segy_.traces());
  writer_->commit();
}

}  // namespace seis
