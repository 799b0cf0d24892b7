// SEG-Y writer (see segy_writer.h). Byte positions in comments are the standard's 1-based file
// positions.
#include "io/segy_writer.h"

#include <cstring>

#include "engine/error.h"
#include "io/segy_headers.h"

namespace seis {

namespace {

void put_u(uint8_t* p, uint64_t v, int bytes, bool big) {
  for (int i = 0; i < bytes; ++i) p[big ? bytes - 1 - i : i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t get_u(const uint8_t* p, int bytes, bool big) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | p[big ? i : bytes - 1 - i];
  return v;
}

constexpr int64_t bin(int pos) { return pos - 3201; }

}  // namespace

void segy_put_i32(uint8_t* p, int32_t v, bool big_endian) { put_u(p, static_cast<uint32_t>(v), 4, big_endian); }

SegyWriter::SegyWriter(const std::string& path, const Options& o)
    : file_(path), big_(o.big_endian), samples_(o.samples) {
  SEIS_CHECK(o.text.size() == kSegyTextHeaderBytes && o.binary.size() == kSegyBinaryHeaderBytes &&
                 o.extended.size() % kSegyTextHeaderBytes == 0 && o.samples > 0,
             path << ": SegyWriter options");
  std::vector<uint8_t> bh = o.binary;
  put_u(bh.data() + bin(3225), 5, 2, big_);  // IEEE float
  // Rev 2: a first trace offset (0 = right after the headers) must point where the traces now are.
  const uint16_t rev = static_cast<uint16_t>(get_u(bh.data() + bin(3501), 2, big_));
  if ((rev >> 8) >= 2 && get_u(bh.data() + bin(3521), 8, big_) != 0) {
    put_u(bh.data() + bin(3521),
          static_cast<uint64_t>(kSegyTextHeaderBytes + kSegyBinaryHeaderBytes + o.extended.size()), 8, big_);
  }
  trace_.resize(static_cast<size_t>(kSegyTraceHeaderBytes + 4 * samples_));
  // (A constructor that throws destroys file_, which removes the temporary file.)
  file_.write(o.text.data(), kSegyTextHeaderBytes);
  file_.write(bh.data(), kSegyBinaryHeaderBytes);
  if (!o.extended.empty()) file_.write(o.extended.data(), static_cast<int64_t>(o.extended.size()));
}

void SegyWriter::write_trace(const uint8_t* header, const float* samples, int64_t stride) {
  SEIS_CHECK(file_.stream() != nullptr, file_.path() << ": write_trace after commit");
  std::memcpy(trace_.data(), header, kSegyTraceHeaderBytes);
  uint8_t* out = trace_.data() + kSegyTraceHeaderBytes;
  for (int64_t k = 0; k < samples_; ++k) {
    uint32_t bits;
    std::memcpy(&bits, samples + k * stride, 4);
    put_u(out + 4 * k, bits, 4, big_);
  }
  file_.write(trace_.data(), static_cast<int64_t>(trace_.size()));
  ++traces_;
}

void SegyWriter::commit() {
  SEIS_CHECK(file_.stream() != nullptr, file_.path() << ": commit twice");
  file_.commit();
}

}  // namespace seis
