// Feeds: the input as a SEG-Y file to io/segy.cpp (SegyFile: byte order detected, and forced to the
// order the last byte's low bit picks), then everything `seisseg convert` does with an opened file:
// gathers by field record and by count, the first and last gather with their raw trace headers
// decoded by io/segy_headers.cpp (segy_header_row), one trace, the textual, binary and extended
// headers. Asserts: no crash or sanitizer report, only seis::InputError / seis::Error thrown
// (tests/fuzz/fuzz_util.h), and the header-derived sizes consistent with the file size.
#include <cstdint>
#include <vector>

#include "fuzz_util.h"
#include "io/segy.h"
#include "io/segy_headers.h"

namespace {

void read_gather(const seis::SegyFile& f, const seis::SegyGather& g) {
  const seis::SegyInfo& in = f.info();
  std::vector<float> data(static_cast<size_t>(in.samples * g.traces));
  std::vector<uint8_t> headers(static_cast<size_t>(g.traces * seis::kSegyTraceHeaderBytes));
  f.read_gather(g, data.data(), 0, headers.data());
  for (int64_t j = 0; j < g.traces; ++j) {
    seis::segy_header_row(headers.data() + j * seis::kSegyTraceHeaderBytes, in.big_endian, 0, j);
  }
}

void exercise(const std::string& path, seis::SegyByteOrder order) {
  seis::SegyFile f(path, order);
  const seis::SegyInfo& in = f.info();
  // Everything later allocations rest on was checked against the file.
  if (in.samples < 0 || in.traces < 0 || in.trace_bytes != 240 + in.samples * in.bytes_per_sample ||
      in.first_trace_offset + in.traces * in.trace_bytes > in.file_size) {
    std::fprintf(stderr, "fuzz finding: inconsistent SegyInfo (samples %lld, traces %lld, file %lld bytes)\n",
                 static_cast<long long>(in.samples), static_cast<long long>(in.traces),
                 static_cast<long long>(in.file_size));
    std::abort();
  }
  std::vector<uint8_t> text(seis::kSegyTextHeaderBytes), binary(seis::kSegyBinaryHeaderBytes);
  f.read_text_header(text.data());
  f.read_binary_header(binary.data());
  for (int64_t k = 0; k < in.extended_text_headers && k < 4; ++k) f.read_extended_text_header(k, text.data());
  if (in.traces == 0) return;
  std::vector<float> trace(static_cast<size_t>(in.samples));
  f.read_trace(in.traces - 1, trace.data());
  f.field_record_run(0);
  seis::fuzz::expect_clean([&] { f.gathers_by_count(in.traces); });
  seis::fuzz::expect_clean([&] { f.gathers_by_count(3); });
  const std::vector<seis::SegyGather> gathers = f.gathers_by_field_record();
  if (gathers.empty()) return;
  read_gather(f, gathers.front());
  if (gathers.size() > 1) read_gather(f, gathers.back());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = seis::fuzz::input_file(data, size);
  seis::fuzz::expect_clean([&] { exercise(path, seis::SegyByteOrder::auto_detect); });
  if (size > 0) {
    const auto forced = (data[size - 1] & 1) ? seis::SegyByteOrder::little : seis::SegyByteOrder::big;
    seis::fuzz::expect_clean([&] { exercise(path, forced); });
  }
  return 0;
}
