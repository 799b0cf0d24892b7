// Reading a range of a file opened with O_DIRECT (H5SampleFile's direct reads): in I/O blocks of
// about kDirectBlockBytes, aligned to kDirectAlign in the file and in memory, several blocks in
// flight at once (Linux native AIO; one at a time with pread where the kernel gives no AIO context),
// each block's pieces handed over in order as soon as it is in. The buffers are the calling
// thread's own, reused from call to call.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "engine/host_pages.h"

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
// bytes, valid during the call. An exception from take() propagates once the blocks in flight have
// landed.
//
// dst, where not null, is the range's final place (bytes bytes, which the call may write): when it
// and off are both aligned to kDirectAlign, the blocks are read straight into it, with no copy (a
// last block that ends off the alignment lands in the thread's buffer and is copied there), and src
// is then dst + first; *in_place (where not null) counts the bytes that landed in dst with no copy.
// Otherwise the blocks land in the thread's aligned buffers, src points there, and dst is left alone.
DirectReadResult direct_read(int fd, int64_t off, int64_t bytes, int64_t piece, uint8_t* dst,
                             const std::function<void(int64_t first, int64_t n, const uint8_t* src)>& take,
                             std::string* error, int64_t* error_at, int64_t* in_place = nullptr);

// One slot of a thread's buffer for I/O blocks of `per_io` bytes: the block and the aligned file
// span around it (a margin of kDirectAlign on each side), rounded so that every slot starts aligned.
inline int64_t direct_read_slot_bytes(int64_t per_io) {
  return (per_io + 2 * kDirectAlign + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
}

// The memory direct_read holds for good in each thread that calls it, for pieces of at most `piece`
// bytes: kDirectBlocksInFlight slots of blocks of at most max(kDirectBlockBytes, piece), in whole
// (huge) pages.
inline int64_t direct_read_buffer_bytes(int64_t piece) {
  const int64_t per_io = piece > kDirectBlockBytes ? piece : kDirectBlockBytes;
  return host_pages_bytes(kDirectBlocksInFlight * direct_read_slot_bytes(per_io));
}

// Whether direct_read reads a range at file offset `off` straight into `dst`.
inline bool direct_read_in_place(int64_t off, const void* dst) {
  return dst != nullptr && off % kDirectAlign == 0 && reinterpret_cast<uintptr_t>(dst) % kDirectAlign == 0;
}

}  // namespace seis
