#include "io/direct_read.h"

#include <linux/aio_abi.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "engine/error.h"
#include "engine/host_pages.h"

namespace seis {

namespace {

// A buffer aligned to kDirectAlign that only grows (in huge pages where the kernel gives them).
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { free_host_pages(mem_, size_); }
  uint8_t* at_least(int64_t bytes) {
    if (bytes > size_) {
      void* p = alloc_host_pages(bytes);
      if (p == nullptr) throw std::bad_alloc();
      free_host_pages(mem_, size_);
      mem_ = static_cast<uint8_t*>(p);
      size_ = bytes;
    }
    return mem_;
  }

 private:
  uint8_t* mem_ = nullptr;
  int64_t size_ = 0;
};

// The calling thread's AIO context, made on first use; 0 where the kernel gives none (no AIO, or
// fs.aio-max-nr reached): reads then go one at a time.
class AioContext {
 public:
  ~AioContext() {
    if (ctx_ != 0) ::syscall(SYS_io_destroy, ctx_);
  }
  aio_context_t get() {
    if (!tried_) {
      tried_ = true;
      if (::syscall(SYS_io_setup, kDirectBlocksInFlight, &ctx_) != 0) ctx_ = 0;
    }
    return ctx_;
  }
  // After waiting for its reads failed: io_destroy cancels them or waits for them, so that none
  // lands after the call, and no late event is taken for a later call's; the next use makes a new one.
  void discard() {
    if (ctx_ != 0) ::syscall(SYS_io_destroy, ctx_);
    ctx_ = 0;
    tried_ = false;
  }

 private:
  aio_context_t ctx_ = 0;
  bool tried_ = false;
};

// Reads [a0, a0 + want) into buf with one pread (again only after EINTR): *got bytes. A direct read
// comes back short only at the end of the file, and is not retried there: the rest would start at
// an unaligned offset, which some kernels refuse with EINVAL. false with errno set when it fails.
bool read_span(int fd, uint8_t* buf, int64_t a0, int64_t want, int64_t* got) {
  for (;;) {
    const ssize_t r = ::pread(fd, buf, static_cast<size_t>(want), static_cast<off_t>(a0));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    *got = r;
    return true;
  }
}

}  // namespace

DirectReadResult direct_read(int fd, int64_t off, int64_t bytes, int64_t piece, uint8_t* dst,
                             const std::function<void(int64_t first, int64_t n, const uint8_t* src)>& take,
                             std::string* error, int64_t* error_at, int64_t* in_place) {
  const bool straight = direct_read_in_place(off, dst);
  if (in_place != nullptr) *in_place = 0;
  // Blocks in the thread's buffers hold whole pieces, each handed over from there as soon as its
  // block is in. Blocks read straight into dst are kDirectBlockBytes exactly (aligned), and a piece
  // is handed over once all its bytes are in.
  const int64_t per_io = straight ? kDirectBlockBytes : std::max<int64_t>(1, kDirectBlockBytes / piece) * piece;
  // (per_io, whole pieces of rows, need not be a multiple of kDirectAlign: each slot starts aligned.)
  const int64_t slot_bytes = direct_read_slot_bytes(per_io);
  thread_local AlignedBuffer buffers;
  thread_local AioContext aio;
  const aio_context_t ctx = aio.get();
  const int depth = ctx != 0 ? kDirectBlocksInFlight : 1;
  uint8_t* base = buffers.at_least(slot_bytes * depth);
  const int64_t blocks = (bytes + per_io - 1) / per_io;
  // Block j: bytes [s, e) of the range, the aligned file span [a0, a1) around them, read into
  // buffer(j): dst + s (straight, where the block ends aligned), or slot j % depth.
  auto span = [&](int64_t j, int64_t* s, int64_t* e, int64_t* a0, int64_t* a1) {
    *s = j * per_io;
    *e = std::min(bytes, *s + per_io);
    *a0 = (off + *s) / kDirectAlign * kDirectAlign;
    *a1 = (off + *e + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
  };
  auto buffer = [&](int64_t j, int64_t s, int64_t e) {
    return straight && (e - s) % kDirectAlign == 0 ? dst + s : base + (j % depth) * slot_bytes;
  };
  int64_t result[kDirectBlocksInFlight] = {};
  bool landed[kDirectBlocksInFlight] = {};
  int in_flight = 0;
  int64_t submitted = 0;  // blocks [0, submitted) were queued; the rest are read with pread
  auto submit = [&](int64_t j) {
    int64_t s, e, a0, a1;
    span(j, &s, &e, &a0, &a1);
    const int slot = static_cast<int>(j % depth);
    struct iocb cb {};
    cb.aio_data = static_cast<uint64_t>(slot);
    cb.aio_lio_opcode = IOCB_CMD_PREAD;
    cb.aio_fildes = static_cast<uint32_t>(fd);
    cb.aio_buf = reinterpret_cast<uint64_t>(buffer(j, s, e));
    cb.aio_nbytes = static_cast<uint64_t>(a1 - a0);
    cb.aio_offset = a0;
    struct iocb* list[1] = {&cb};
    SEIS_CHECK(cb.aio_buf % kDirectAlign == 0, "direct read into a buffer that is not 4 KiB-aligned");
    landed[slot] = false;
    if (::syscall(SYS_io_submit, ctx, static_cast<long>(1), list) != 1) return false;
    ++in_flight;
    submitted = j + 1;
    return true;
  };
  auto reap = [&](int at_least) {
    while (at_least > 0) {
      struct io_event ev[kDirectBlocksInFlight];
      const long got =
          ::syscall(SYS_io_getevents, ctx, static_cast<long>(1), static_cast<long>(in_flight), ev, nullptr);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      for (long k = 0; k < got; ++k) {
        const auto slot = static_cast<size_t>(ev[k].data);
        result[slot] = ev[k].res;
        landed[slot] = true;
        --in_flight;
        --at_least;
      }
    }
    return true;
  };
  // Whatever happens (a failed read, an exception from take, a failed wait), no read is left
  // landing in the buffers or in dst after the call.
  struct Drain {
    std::function<void()> f;
    ~Drain() { f(); }
  } drain{[&] {
    if (in_flight > 0 && !reap(in_flight)) aio.discard();
  }};
  auto fail = [&](int64_t at, const std::string& why) {
    *error = why;
    *error_at = at;
    return DirectReadResult::failed;
  };

  // A block the kernel will not queue (io_submit failing: no AIO on this file, no memory for the
  // request) and every block after it are read with pread instead.
  bool queueing = depth > 1;
  for (int64_t j = 0; queueing && j < std::min<int64_t>(blocks, depth); ++j) queueing = submit(j);
  int64_t next = 0;  // straight: the first byte of the next piece to hand over
  for (int64_t j = 0; j < blocks; ++j) {
    int64_t s, e, a0, a1;
    span(j, &s, &e, &a0, &a1);
    // (A block read with pread never shares a slot with a queued one not yet taken: see above.)
    uint8_t* buf = buffer(j, s, e);
    const int slot = static_cast<int>(j % depth);
    const int64_t need = off + e - a0;
    int64_t got = 0;
    int err = 0;
    if (j < submitted) {
      while (!landed[slot]) {
        if (!reap(1)) return fail(a0, std::string("waiting for a read: ") + std::strerror(errno));
      }
      if (result[slot] < 0) {
        err = static_cast<int>(-result[slot]);
      } else {
        got = result[slot];
      }
    } else if (!read_span(fd, buf, a0, a1 - a0, &got)) {
      err = errno;
    }
    if (err == EINVAL && j == 0) return DirectReadResult::refused;
    if (err != 0) return fail(a0 + got, std::strerror(err));
    if (got < need) return fail(a0 + got, "unexpected end of file (truncated?)");
    if (straight) {
      if (buf != dst + s) {
        std::memcpy(dst + s, buf + (off + s - a0), static_cast<size_t>(e - s));
      } else if (in_place != nullptr) {
        *in_place += e - s;
      }
      for (; next < bytes && std::min(bytes, next + piece) <= e; next += piece) {
        take(next, std::min(piece, bytes - next), dst + next);
      }
    } else {
      for (int64_t p = s; p < e; p += piece) take(p, std::min(piece, e - p), buf + (off + p - a0));
    }
    if (queueing && j + depth < blocks) queueing = submit(j + depth);
  }
  return DirectReadResult::done;
}

}  // namespace seis
