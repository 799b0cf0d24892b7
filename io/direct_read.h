// Reading a range of a file opened with O_DIRECT (H5SampleFile's direct reads): in I/O blocks of
// about kDirectBlockBytes, aligned to kDirectAlign in the file and in memory, several blocks in
// flight at once (Linux native AIO; one at a time with pread where the kernel gives no AIO context),
// each block's pieces handed over in order as soon as it is in. The buffers are the calling
// thread's own, reused from call to call.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace seis {

// I/O blocks of about this size, aligned to kDirectAlign (the logical block size of any disk).
constexpr int64_t kDirectBlockBytes = int64_t{1} << 22;
constexpr int64_t kDirectAlign = 4096;
// Blocks in flight per reading thread.
constexpr int kDirectBlocksInFlight = 2;

enum class DirectReadResult {
  done,     // every piece handed over
  refused,  // the file system refuses O_DIRECT reads (EINVAL on the first): nothing handed over
  failed,   // a read failed or the file ended early: *error says why, *error_at at which byte
};

// Bytes [off, off + bytes) of `fd` (opened with O_DIRECT): take(first, n, src) for each piece of
// `piece` bytes in order (the last may be shorter; first counts from off), src pointing at its
// bytes, valid during the call. Each I/O block holds a whole number of pieces. An exception from
// take() propagates once the blocks in flight have landed.
DirectReadResult direct_read(int fd, int64_t off, int64_t bytes, int64_t piece,
                             const std::function<void(int64_t first, int64_t n, const uint8_t* src)>& take,
                             std::string* error, int64_t* error_at);

}  // namespace seis
