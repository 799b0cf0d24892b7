// SEG-Y reader. Byte positions in comments are the standard's 1-based file positions (binary
// header 3201-3600) or 1-based trace header positions (1-240).
#include "io/segy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>

#include "engine/error.h"
#include "engine/file_io.h"

namespace seis {

namespace {

constexpr int64_t kTextHeaderBytes = 3200;
constexpr int64_t kBinaryHeaderBytes = 400;
constexpr int64_t kHeadersBytes = kTextHeaderBytes + kBinaryHeaderBytes;
constexpr int64_t kTraceHeaderBytes = 240;
constexpr int64_t kMaxScannedTextHeaders = 10000;  // for a count of -1 (ended by ((SEG: EndText)))
constexpr int64_t kReadChunkBytes = int64_t{4} << 20;
constexpr uint32_t kByteOrderConstant = 0x01020304;  // 3297-3300, rev 2

uint16_t get_u16(const uint8_t* p, bool big) {
  return big ? static_cast<uint16_t>(p[0] << 8 | p[1]) : static_cast<uint16_t>(p[1] << 8 | p[0]);
}
uint32_t get_u32(const uint8_t* p, bool big) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = v << 8 | p[big ? i : 3 - i];
  return v;
}
uint64_t get_u64(const uint8_t* p, bool big) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[big ? i : 7 - i];
  return v;
}
int16_t get_i16(const uint8_t* p, bool big) { return static_cast<int16_t>(get_u16(p, big)); }
int32_t get_i32(const uint8_t* p, bool big) { return static_cast<int32_t>(get_u32(p, big)); }

// Offset in the binary header of standard byte position pos (3201-based).
constexpr int64_t bin(int pos) { return pos - 3201; }
// Offset in a trace header of standard byte position pos (1-based).
constexpr int64_t trh(int pos) { return pos - 1; }

// Bytes per sample for the SEG-Y rev 2 format codes; 0 for an unknown code.
int64_t format_bytes(int code) {
  switch (code) {
    case 1:
    case 2:
    case 4:
    case 5:
    case 10:
      return 4;
    case 3:
    case 11:
      return 2;
    case 6:
    case 9:
    case 12:
      return 8;
    case 7:
    case 15:
      return 3;
    case 8:
    case 16:
      return 1;
    default:
      return 0;
  }
}
bool format_supported(int code) { return code == 1 || code == 2 || code == 3 || code == 5 || code == 8; }

// The binary header fields we use, read in one byte order.
struct BinaryFields {
  int format = 0;
  int64_t samples = 0;  // 3221-3222, or the rev 2 extended 3269-3272 when that is set
  int dt16 = 0;         // 3217-3218, microseconds
  double dt_ext = 0;    // 3273-3280, rev 2
  int rev_major = 0, rev_minor = 0;
  int64_t ext_headers = 0;          // 3505-3506
  uint32_t byte_order = 0;          // 3297-3300
  int64_t extra_trace_headers = 0;  // 3507-3508, rev 2
  uint64_t traces = 0;              // 3513-3520, rev 2
  uint64_t first_trace_offset = 0;  // 3521-3528, rev 2
  int64_t trailer_stanzas = 0;      // 3529-3532, rev 2
};

BinaryFields parse_binary(const uint8_t* bh, bool big) {
  BinaryFields f;
  f.format = get_i16(bh + bin(3225), big);
  f.samples = get_u16(bh + bin(3221), big);
  f.dt16 = get_i16(bh + bin(3217), big);
  // Revision: major in 3501, minor in 3502 (rev 1 is 0x0100). Some writers store a plain 1 or 2.
  const uint16_t rev = get_u16(bh + bin(3501), big);
  if (rev >= 0x0100 && (rev >> 8) <= 2) {
    f.rev_major = rev >> 8;
    f.rev_minor = rev & 0xff;
  } else if (rev == 1 || rev == 2) {
    f.rev_major = rev;
  }
  f.ext_headers = get_i16(bh + bin(3505), big);
  f.byte_order = get_u32(bh + bin(3297), big);
  if (f.rev_major >= 2) {
    const int32_t ext_samples = get_i32(bh + bin(3269), big);
    if (ext_samples > 0) f.samples = ext_samples;
    const uint64_t bits = get_u64(bh + bin(3273), big);
    std::memcpy(&f.dt_ext, &bits, sizeof bits);
    f.extra_trace_headers = get_u16(bh + bin(3507), big);
    f.traces = get_u64(bh + bin(3513), big);
    f.first_trace_offset = get_u64(bh + bin(3521), big);
    f.trailer_stanzas = get_i32(bh + bin(3529), big);
  }
  return f;
}

// How well the binary header reads in one byte order: the rev 2 byte-order constant decides;
// otherwise a known (better: supported) format code, and a sample count that tiles the file.
int byte_order_score(const BinaryFields& f, int64_t file_size) {
  if (f.byte_order == kByteOrderConstant) return 100;
  int score = 0;
  if (format_supported(f.format)) {
    score += 4;
  } else if (format_bytes(f.format) > 0) {
    score += 2;
  }
  const int64_t bps = format_bytes(f.format);
  const int64_t data = file_size - kHeadersBytes - kTextHeaderBytes * std::max<int64_t>(0, f.ext_headers);
  if (bps > 0 && f.samples > 0 && data > 0 && data % (kTraceHeaderBytes + f.samples * bps) == 0) score += 1;
  return score;
}

// "((SEG: EndText))" in ASCII or EBCDIC.
bool has_end_text(const uint8_t* block, int64_t n) {
  static const char kAscii[] = "((SEG: EndText))";
  static const uint8_t kEbcdic[] = {0x4D, 0x4D, 0xE2, 0xC5, 0xC7, 0x7A, 0x40, 0xC5,
                                    0x95, 0x84, 0xE3, 0x85, 0xA7, 0xA3, 0x5D, 0x5D};
  const int64_t len = sizeof kEbcdic;
  for (int64_t i = 0; i + len <= n; ++i) {
    if (std::memcmp(block + i, kAscii, len) == 0 || std::memcmp(block + i, kEbcdic, len) == 0) return true;
  }
  return false;
}

// Converts n samples at src to float, writing dst[k * stride].
void decode_samples(const uint8_t* src, int64_t n, int format, bool big, float* dst, int64_t stride) {
  switch (format) {
    case 1:
      for (int64_t k = 0; k < n; ++k) dst[k * stride] = ibm_to_float(get_u32(src + 4 * k, big));
      break;
    case 2:
      for (int64_t k = 0; k < n; ++k) dst[k * stride] = static_cast<float>(get_i32(src + 4 * k, big));
      break;
    case 3:
      for (int64_t k = 0; k < n; ++k) dst[k * stride] = static_cast<float>(get_i16(src + 2 * k, big));
      break;
    case 5:
      for (int64_t k = 0; k < n; ++k) {
        const uint32_t bits = get_u32(src + 4 * k, big);
        float v;
        std::memcpy(&v, &bits, sizeof v);
        dst[k * stride] = v;
      }
      break;
    case 8:
      for (int64_t k = 0; k < n; ++k) dst[k * stride] = static_cast<float>(static_cast<int8_t>(src[k]));
      break;
    default:
      SEIS_CHECK(false, "unsupported SEG-Y format " << format);
  }
}

// "1, 2, 3, 6, ..." : the first divisors of n.
std::string divisors_text(int64_t n) {
  std::ostringstream os;
  int shown = 0;
  for (int64_t d = 1; d <= n; ++d) {
    if (n % d != 0) continue;
    if (shown == 8) {
      os << ", ..., " << n;
      break;
    }
    os << (shown++ ? ", " : "") << d;
  }
  return os.str();
}

}  // namespace

const char* segy_byte_order_name(SegyByteOrder order) {
  switch (order) {
    case SegyByteOrder::big:
      return "big";
    case SegyByteOrder::little:
      return "little";
    default:
      return "auto";
  }
}

bool parse_segy_byte_order(const std::string& s, SegyByteOrder* order) {
  if (s == "auto") {
    *order = SegyByteOrder::auto_detect;
  } else if (s == "big") {
    *order = SegyByteOrder::big;
  } else if (s == "little") {
    *order = SegyByteOrder::little;
  } else {
    return false;
  }
  return true;
}

const char* segy_format_name(int code) {
  switch (code) {
    case 1:
      return "IBM float";
    case 2:
      return "int32";
    case 3:
      return "int16";
    case 4:
      return "fixed point with gain (obsolete)";
    case 5:
      return "IEEE float";
    case 6:
      return "IEEE double";
    case 7:
      return "int24";
    case 8:
      return "int8";
    case 9:
      return "int64";
    case 10:
      return "uint32";
    case 11:
      return "uint16";
    case 12:
      return "uint64";
    case 15:
      return "uint24";
    case 16:
      return "uint8";
    default:
      return "unknown";
  }
}

float ibm_to_float(uint32_t ibm) {
  // sign | 7-bit base-16 exponent biased by 64 | 24-bit fraction: value = 0.fraction * 16^(exp - 64).
  // The product is exact in a double; the one rounding is the cast to float.
  const bool negative = (ibm >> 31) != 0;
  const uint32_t fraction = ibm & 0x00ffffffu;
  const int exponent = static_cast<int>((ibm >> 24) & 0x7f) - 64;
  const double v = fraction == 0 ? 0.0 : std::ldexp(static_cast<double>(fraction), 4 * exponent - 24);
  return static_cast<float>(negative ? -v : v);
}

std::string SegyInfo::revision() const { return std::to_string(revision_major) + "." + std::to_string(revision_minor); }

SegyFile::SegyFile(const std::string& path, SegyByteOrder order) {
  info_.path = path;
  auto fail = [&](const std::string& problem) { throw InputError(path + ": " + problem); };

  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(std::string("cannot open: ") + std::strerror(errno));
  try {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) fail(std::string("cannot stat: ") + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) fail("is a directory, not a SEG-Y file");
    if (!S_ISREG(st.st_mode)) fail("not a regular file");
    const int64_t size = st.st_size;
    info_.file_size = size;
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);  // a hint: larger readahead for the gather reads
    if (size < kHeadersBytes) {
      fail("not a SEG-Y file: " + std::to_string(size) +
           " bytes, shorter than the 3600 bytes of textual and binary headers");
    }

    std::array<uint8_t, kBinaryHeaderBytes> bh{};
    pread_exact(bh.data(), kBinaryHeaderBytes, kTextHeaderBytes, "the binary header");
    const BinaryFields be = parse_binary(bh.data(), true), le = parse_binary(bh.data(), false);
    bool big = true;
    if (order == SegyByteOrder::auto_detect) {
      const int sb = byte_order_score(be, size), sl = byte_order_score(le, size);
      if (sb == 0 && sl == 0) {
        fail("not a SEG-Y file: the sample format code (bytes 3225-3226) reads " + std::to_string(be.format) +
             " big-endian and " + std::to_string(le.format) + " little-endian, neither a SEG-Y format code");
      }
      big = sb >= sl;  // a tie goes to big-endian, the standard's order
    } else {
      big = order == SegyByteOrder::big;
      info_.byte_order_detected = false;
    }
    info_.big_endian = big;
    const BinaryFields& f = big ? be : le;
    const std::string order_text = big ? "big-endian" : "little-endian";
    info_.revision_major = f.rev_major;
    info_.revision_minor = f.rev_minor;

    if (!format_supported(f.format)) {
      fail("sample format code " + std::to_string(f.format) + " (" + segy_format_name(f.format) + ", read " +
           order_text + ") is not supported; supported: 1 IBM float, 2 int32, 3 int16, 5 IEEE float, 8 int8" +
           (info_.byte_order_detected ? "" : " (check --endian)"));
    }
    info_.format = f.format;
    info_.bytes_per_sample = format_bytes(f.format);
    if (f.extra_trace_headers != 0) {
      fail("declares up to " + std::to_string(f.extra_trace_headers) +
           " additional trace headers per trace (bytes 3507-3508): not supported");
    }
    if (f.trailer_stanzas != 0) {
      fail("declares " + std::to_string(f.trailer_stanzas) + " data trailer stanzas (bytes 3529-3532): not supported");
    }

    // Extended textual headers.
    const int64_t room = (size - kHeadersBytes) / kTextHeaderBytes;
    if (f.ext_headers == -1) {
      std::array<uint8_t, kTextHeaderBytes> block{};
      int64_t k = 0;
      for (;; ++k) {
        if (k >= room || k >= kMaxScannedTextHeaders) {
          fail(
              "the number of extended textual headers is variable (-1 at bytes 3505-3506) but no ((SEG: EndText)) "
              "stanza ends them within " +
              std::to_string(k) + " headers");
        }
        pread_exact(block.data(), kTextHeaderBytes, kHeadersBytes + k * kTextHeaderBytes, "an extended textual header");
        if (has_end_text(block.data(), kTextHeaderBytes)) break;
      }
      info_.extended_text_headers = k + 1;
    } else if (f.ext_headers < 0) {
      fail("invalid number of extended textual headers " + std::to_string(f.ext_headers) + " (bytes 3505-3506)");
    } else if (f.ext_headers > room) {
      fail("declares " + std::to_string(f.ext_headers) + " extended textual headers (bytes 3505-3506) but " +
           std::to_string(size) + " bytes hold at most " + std::to_string(room));
    } else {
      info_.extended_text_headers = f.ext_headers;
    }
    info_.first_trace_offset = kHeadersBytes + kTextHeaderBytes * info_.extended_text_headers;
    if (f.first_trace_offset != 0) {
      if (f.first_trace_offset < static_cast<uint64_t>(kHeadersBytes) ||
          f.first_trace_offset > static_cast<uint64_t>(size)) {
        fail("first trace offset " + std::to_string(f.first_trace_offset) +
             " (bytes 3521-3528) is outside the file's " + std::to_string(kHeadersBytes) + ".." + std::to_string(size) +
             " bytes of traces");
      }
      // Rev 2: a nonzero offset overrides the one implied by a non-negative extended header count;
      // the extended headers are then those that end before it.
      if (f.first_trace_offset < static_cast<uint64_t>(info_.first_trace_offset)) {
        if (f.ext_headers == -1) {
          fail("first trace offset " + std::to_string(f.first_trace_offset) + " (bytes 3521-3528) lies inside the " +
               std::to_string(info_.extended_text_headers) + " extended textual headers that ((SEG: EndText)) ends");
        }
        info_.extended_text_headers = (static_cast<int64_t>(f.first_trace_offset) - kHeadersBytes) / kTextHeaderBytes;
      }
      info_.first_trace_offset = static_cast<int64_t>(f.first_trace_offset);
    }

    const int64_t data = size - info_.first_trace_offset;
    if (data == 0) fail("no traces: the file ends after its headers (" + std::to_string(size) + " bytes)");
    if (data < kTraceHeaderBytes) {
      fail("truncated: the file ends " + std::to_string(data) + " bytes into the first 240-byte trace header");
    }

    // Samples per trace: the binary header's, else the first trace header's (115-116); the one
    // that tiles the file wins, since either may be stale.
    std::array<uint8_t, kTraceHeaderBytes> th{};
    pread_exact(th.data(), kTraceHeaderBytes, info_.first_trace_offset, "the first trace header");
    trace0_samples_field_ = get_u16(th.data() + trh(115), big);
    const int64_t bps = info_.bytes_per_sample;
    auto tiles = [&](int64_t ns) { return ns > 0 && data % (kTraceHeaderBytes + ns * bps) == 0; };
    int64_t ns = 0;
    if (tiles(f.samples)) {
      ns = f.samples;
    } else if (tiles(trace0_samples_field_)) {
      ns = trace0_samples_field_;
    } else if (f.samples == 0 && trace0_samples_field_ == 0) {
      fail("samples per trace is 0 in both the binary header (bytes 3221-3222) and the first trace header");
    } else {
      const int64_t declared = f.samples > 0 ? f.samples : trace0_samples_field_;
      const int64_t tb = kTraceHeaderBytes + declared * bps;
      fail("truncated or malformed: " + std::to_string(data) + " bytes of traces are not a whole number of " +
           std::to_string(tb) + "-byte traces (" + std::to_string(declared) + " samples of " + std::to_string(bps) +
           " bytes, format " + std::to_string(f.format) + ", " + order_text + "): " + std::to_string(data / tb) +
           " traces and " + std::to_string(data % tb) + " bytes left over");
    }
    info_.samples = ns;
    info_.trace_bytes = kTraceHeaderBytes + ns * bps;
    info_.traces = data / info_.trace_bytes;
    if (f.traces != 0 && f.traces != static_cast<uint64_t>(info_.traces)) {
      fail("declares " + std::to_string(f.traces) + " traces (bytes 3513-3520) but its size holds " +
           std::to_string(info_.traces));
    }

    // Sample interval: binary header, else the first trace header (117-118); rev 2's double overrides.
    if (f.dt16 > 0) {
      info_.sample_interval_us = f.dt16;
    } else if (get_i16(th.data() + trh(117), big) > 0) {
      info_.sample_interval_us = get_i16(th.data() + trh(117), big);
    }
    if (f.rev_major >= 2 && std::isfinite(f.dt_ext) && f.dt_ext > 0) info_.sample_interval_us = f.dt_ext;

    // A cheap early check that the last trace header is where the layout puts it.
    if (info_.traces > 1) {
      const int64_t last = info_.traces - 1;
      pread_exact(th.data(), kTraceHeaderBytes, info_.first_trace_offset + last * info_.trace_bytes,
                  "the last trace header");
      check_trace_header(last, th.data());
    }
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

SegyFile::~SegyFile() {
  if (fd_ >= 0) ::close(fd_);
}

void SegyFile::pread_exact(void* buf, int64_t bytes, int64_t offset, const char* what) const {
  SEIS_CHECK(bytes >= 0 && offset >= 0, "bad read " << bytes << " at " << offset);
  if (offset + bytes > info_.file_size) {
    throw InputError(info_.path + ": truncated: " + what + " at byte " + std::to_string(offset) + " ends past the " +
                     std::to_string(info_.file_size) + "-byte file");
  }
  std::string err;
  if (!pread_full(fd_, buf, bytes, offset, &err)) {
    throw InputError(info_.path + ": cannot read " + what + " at byte " + std::to_string(offset) + ": " + err);
  }
}

void SegyFile::check_trace_header(int64_t trace, const uint8_t* header) const {
  // In a fixed-length file every trace header carries the same samples field (right or stale);
  // a different one means the headers are not where the layout puts them.
  const int32_t ns = get_u16(header + trh(115), info_.big_endian);
  if (ns != trace0_samples_field_) {
    throw InputError(info_.path + ": trace " + std::to_string(trace) + " header (byte " +
                     std::to_string(info_.first_trace_offset + trace * info_.trace_bytes) + ") declares " +
                     std::to_string(ns) + " samples where trace 0 declares " + std::to_string(trace0_samples_field_) +
                     ": the traces are not laid out as " + std::to_string(info_.samples) + " samples of " +
                     std::to_string(info_.bytes_per_sample) +
                     " bytes (corrupt file, or a wrong samples per trace in the binary header)");
  }
}

std::vector<SegyGather> SegyFile::gathers_by_field_record() const {
  std::vector<SegyGather> out;
  std::array<uint8_t, kTraceHeaderBytes> th{};
  for (int64_t i = 0; i < info_.traces; ++i) {
    pread_exact(th.data(), kTraceHeaderBytes, info_.first_trace_offset + i * info_.trace_bytes, "a trace header");
    check_trace_header(i, th.data());
    const int32_t key = get_i32(th.data() + trh(9), info_.big_endian);
    if (out.empty() || out.back().field_record != key) {
      out.push_back({i, 0, key});
    }
    ++out.back().traces;
  }
  return out;
}

int64_t SegyFile::field_record_run(int64_t first) const {
  SEIS_CHECK(first >= 0 && first < info_.traces, "trace " << first << " outside " << info_.traces << " traces");
  std::array<uint8_t, kTraceHeaderBytes> th{};
  int32_t key = 0;
  int64_t i = first;
  for (; i < info_.traces; ++i) {
    pread_exact(th.data(), kTraceHeaderBytes, info_.first_trace_offset + i * info_.trace_bytes, "a trace header");
    check_trace_header(i, th.data());
    const int32_t k = get_i32(th.data() + trh(9), info_.big_endian);
    if (i > first && k != key) break;
    key = k;
  }
  return i - first;
}

std::vector<SegyGather> SegyFile::gathers_by_count(int64_t n) const {
  SEIS_CHECK(n >= 1, "gather size " << n);
  if (info_.traces % n != 0) {
    throw InputError(info_.path + ": its " + std::to_string(info_.traces) + " traces do not split into gathers of " +
                     std::to_string(n) + "; --gather-size must divide " + std::to_string(info_.traces) + " (" +
                     divisors_text(info_.traces) + ")");
  }
  std::vector<SegyGather> out;
  out.reserve(static_cast<size_t>(info_.traces / n));
  for (int64_t i = 0; i < info_.traces; i += n) out.push_back({i, n, 0});
  return out;
}

void SegyFile::read_gather(const SegyGather& g, float* data, int64_t width, uint8_t* headers) const {
  SEIS_CHECK(g.first_trace >= 0 && g.traces >= 0 && g.first_trace + g.traces <= info_.traces,
             "gather [" << g.first_trace << ", +" << g.traces << ") outside " << info_.traces << " traces");
  const int64_t w = width > 0 ? width : g.traces, tb = info_.trace_bytes;
  SEIS_CHECK(w >= g.traces, "gather of " << g.traces << " traces into " << w << " columns");
  if (w > g.traces) {
    for (int64_t t = 0; t < info_.samples; ++t) std::fill(data + t * w + g.traces, data + (t + 1) * w, 0.0f);
  }
  // Chunks of whole traces keep the raw buffer small whatever the gather size.
  const int64_t chunk = std::max<int64_t>(1, std::min(g.traces, kReadChunkBytes / tb));
  std::vector<uint8_t> raw(static_cast<size_t>(chunk * tb));
  for (int64_t j0 = 0; j0 < g.traces; j0 += chunk) {
    const int64_t nj = std::min(chunk, g.traces - j0);
    pread_exact(raw.data(), nj * tb, info_.first_trace_offset + (g.first_trace + j0) * tb, "a trace");
    for (int64_t j = 0; j < nj; ++j) {
      const uint8_t* trace = raw.data() + j * tb;
      check_trace_header(g.first_trace + j0 + j, trace);
      if (headers != nullptr) std::memcpy(headers + (j0 + j) * kTraceHeaderBytes, trace, kTraceHeaderBytes);
      decode_samples(trace + kTraceHeaderBytes, info_.samples, info_.format, info_.big_endian, data + j0 + j, w);
    }
  }
}

void SegyFile::read_trace(int64_t i, float* samples) const { read_gather({i, 1, 0}, samples); }

void SegyFile::read_text_header(uint8_t* out) const { pread_exact(out, kTextHeaderBytes, 0, "the textual header"); }

void SegyFile::read_binary_header(uint8_t* out) const {
  pread_exact(out, kBinaryHeaderBytes, kTextHeaderBytes, "the binary header");
}

void SegyFile::read_extended_text_header(int64_t k, uint8_t* out) const {
  SEIS_CHECK(k >= 0 && k < info_.extended_text_headers, "extended textual header " << k);
  pread_exact(out, kTextHeaderBytes, kHeadersBytes + k * kTextHeaderBytes, "an extended textual header");
}

}  // namespace seis
