// A fault-injection shim for the CLI tests (tests/fault_injection_cli_test.cpp), loaded into the
// seisseg program with LD_PRELOAD, never linked into it. It interposes libc's I/O calls and makes
// those on one file fail with a chosen errno, as a full or failing disk would. Environment:
//
//   SEIS_FAULT_PATH   substring of the file's path (resolved from the descriptor through
//                     /proc/self/fd); no fault without it
//   SEIS_FAULT_OP     write: write, pwrite, writev, fwrite and fflush (stdio writes reach the
//                     kernel through glibc's internal write, so the stream calls are interposed);
//                     fsync: fsync and fdatasync; read: read and pread; dread: pread on a
//                     descriptor opened with O_DIRECT (native AIO is then unavailable, io_setup
//                     failing with EAGAIN as when fs.aio-max-nr is reached, so that direct reads are
//                     preads); aio: native AIO reads of the file (io_submit), which are submitted
//                     and then complete with the error in their event (io_getevents), as a disk
//                     error reaches them
//   SEIS_FAULT_ERRNO  ENOSPC, EIO or a number (default EIO)
//   SEIS_FAULT_AFTER  matching calls that succeed before the first fault (default 0)
//   SEIS_FAULT_COUNT  matching calls that fail after those (default: every one, a persistent fault)
//   SEIS_FAULT_SIZE   only calls of exactly this many bytes match (reads of whole samples, not of
//                     HDF5 metadata); default 0: calls of any size
//   SEIS_FAULT_SHORT  1: the first faulty write or pwrite writes half its bytes and returns that
//                     short count, as a disk that fills up during the call does; the next one fails
//
// Counters are per process (a forked child starts from its parent's counts).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/aio_abi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum Op { kNone, kWrite, kSync, kRead, kDirectRead, kAio };

static enum Op fault_op = kNone;
static const char* fault_path = NULL;
static int fault_errno = EIO;
static long long fault_after = 0, fault_count = -1, fault_size = 0, fault_short = 0;
static long long calls = 0;  // matching calls so far (atomic)

static ssize_t (*real_write)(int, const void*, size_t);
static ssize_t (*real_pwrite)(int, const void*, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void*, size_t, off64_t);
static ssize_t (*real_writev)(int, const struct iovec*, int);
static size_t (*real_fwrite)(const void*, size_t, size_t, FILE*);
static int (*real_fflush)(FILE*);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static ssize_t (*real_read)(int, void*, size_t);
static ssize_t (*real_pread)(int, void*, size_t, off_t);
static ssize_t (*real_pread64)(int, void*, size_t, off64_t);
static long (*real_syscall)(long, ...);

static long long env_number(const char* name, long long fallback) {
  const char* v = getenv(name);
  return v != NULL && *v != '\0' ? strtoll(v, NULL, 10) : fallback;
}

// The libc functions behind the interposed ones (also before init() has run: another library's
// constructor may write first).
static void resolve(void) {
  if (real_write != NULL) return;
  real_pwrite = (ssize_t(*)(int, const void*, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
  real_pwrite64 = (ssize_t(*)(int, const void*, size_t, off64_t))dlsym(RTLD_NEXT, "pwrite64");
  real_writev = (ssize_t(*)(int, const struct iovec*, int))dlsym(RTLD_NEXT, "writev");
  real_fwrite = (size_t(*)(const void*, size_t, size_t, FILE*))dlsym(RTLD_NEXT, "fwrite");
  real_fflush = (int (*)(FILE*))dlsym(RTLD_NEXT, "fflush");
  real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  real_read = (ssize_t(*)(int, void*, size_t))dlsym(RTLD_NEXT, "read");
  real_pread = (ssize_t(*)(int, void*, size_t, off_t))dlsym(RTLD_NEXT, "pread");
  real_pread64 = (ssize_t(*)(int, void*, size_t, off64_t))dlsym(RTLD_NEXT, "pread64");
  real_syscall = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
  real_write = (ssize_t(*)(int, const void*, size_t))dlsym(RTLD_NEXT, "write");  // (last: resolve's guard)
}

__attribute__((constructor)) static void init(void) {
  resolve();
  fault_path = getenv("SEIS_FAULT_PATH");
  const char* op = getenv("SEIS_FAULT_OP");
  if (fault_path == NULL || *fault_path == '\0' || op == NULL) return;
  if (strcmp(op, "write") == 0) fault_op = kWrite;
  if (strcmp(op, "fsync") == 0) fault_op = kSync;
  if (strcmp(op, "read") == 0) fault_op = kRead;
  if (strcmp(op, "dread") == 0) fault_op = kDirectRead;
  if (strcmp(op, "aio") == 0) fault_op = kAio;
  const char* e = getenv("SEIS_FAULT_ERRNO");
  if (e != NULL && strcmp(e, "ENOSPC") == 0) {
    fault_errno = ENOSPC;
  } else if (e != NULL && strcmp(e, "EIO") == 0) {
    fault_errno = EIO;
  } else if (e != NULL && *e != '\0') {
    fault_errno = (int)strtol(e, NULL, 10);
  }
  fault_after = env_number("SEIS_FAULT_AFTER", 0);
  fault_count = env_number("SEIS_FAULT_COUNT", -1);
  fault_size = env_number("SEIS_FAULT_SIZE", 0);
  fault_short = env_number("SEIS_FAULT_SHORT", 0);
}

// Nonzero when this call on fd is to fail: 1 for the first faulty call, 2 for the second, ...
// (errno is then set). Counts the matching calls.
static int should_fail(enum Op op, int fd, size_t bytes) {
  resolve();
  if (fault_op != op || fd < 0 || (fault_size > 0 && (long long)bytes != fault_size)) return 0;
  char link[64], target[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const int saved = errno;
  const ssize_t n = readlink(link, target, sizeof target - 1);
  errno = saved;
  if (n <= 0) return 0;
  target[n] = '\0';
  if (strstr(target, fault_path) == NULL) return 0;
  const long long k = __atomic_fetch_add(&calls, 1, __ATOMIC_SEQ_CST);
  if (k < fault_after || (fault_count >= 0 && k >= fault_after + fault_count)) return 0;
  errno = fault_errno;
  return (int)(k - fault_after + 1);
}

// A write cut short (SEIS_FAULT_SHORT): half of n bytes, or the fault when there is nothing to cut.
static int short_write(int fault, size_t n) { return fault == 1 && fault_short != 0 && n >= 2; }

ssize_t write(int fd, const void* buf, size_t n) {
  const int fault = should_fail(kWrite, fd, n);
  if (short_write(fault, n)) return real_write(fd, buf, n / 2);
  return fault ? -1 : real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  const int fault = should_fail(kWrite, fd, n);
  if (short_write(fault, n)) return real_pwrite(fd, buf, n / 2, off);
  return fault ? -1 : real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t off) {
  const int fault = should_fail(kWrite, fd, n);
  if (short_write(fault, n)) return real_pwrite64(fd, buf, n / 2, off);
  return fault ? -1 : real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec* iov, int count) {
  size_t n = 0;
  for (int i = 0; i < count; ++i) n += iov[i].iov_len;
  return should_fail(kWrite, fd, n) ? -1 : real_writev(fd, iov, count);
}

size_t fwrite(const void* buf, size_t size, size_t count, FILE* f) {
  return should_fail(kWrite, fileno(f), size * count) ? 0 : real_fwrite(buf, size, count, f);
}

int fflush(FILE* f) {
  // fflush(NULL) flushes every stream: not one file's call.
  return f != NULL && should_fail(kWrite, fileno(f), 0) ? EOF : real_fflush(f);
}

int fsync(int fd) { return should_fail(kSync, fd, 0) ? -1 : real_fsync(fd); }

int fdatasync(int fd) { return should_fail(kSync, fd, 0) ? -1 : real_fdatasync(fd); }

ssize_t read(int fd, void* buf, size_t n) { return should_fail(kRead, fd, n) ? -1 : real_read(fd, buf, n); }

// A pread that is to fail as a read of either kind.
static int pread_fails(int fd, size_t n) {
  if (fault_op == kDirectRead) {
    const int saved = errno;
    const int flags = fcntl(fd, F_GETFL);
    errno = saved;
    return flags >= 0 && (flags & O_DIRECT) != 0 && should_fail(kDirectRead, fd, n);
  }
  return should_fail(kRead, fd, n);
}

ssize_t pread(int fd, void* buf, size_t n, off_t off) { return pread_fails(fd, n) ? -1 : real_pread(fd, buf, n, off); }

ssize_t pread64(int fd, void* buf, size_t n, off64_t off) {
  return pread_fails(fd, n) ? -1 : real_pread64(fd, buf, n, off);
}

// AIO reads that are to complete with the error (SEIS_FAULT_OP=aio), by (context, aio_data), which
// identify a request in flight; a slot is free when ctx is 0. Under doomed_lock.
#define kDoomedSlots 64
static struct {
  unsigned long ctx;
  unsigned long long data;
} doomed[kDoomedSlots];
static int doomed_lock = 0;

static void lock_doomed(void) {
  while (__atomic_exchange_n(&doomed_lock, 1, __ATOMIC_ACQUIRE)) {
  }
}

static void unlock_doomed(void) { __atomic_store_n(&doomed_lock, 0, __ATOMIC_RELEASE); }

long syscall(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (int i = 0; i < 6; ++i) a[i] = va_arg(ap, long);  // (as glibc's syscall reads six registers)
  va_end(ap);
  resolve();
  if (fault_op == kDirectRead && number == SYS_io_setup) {
    errno = EAGAIN;
    return -1;
  }
  if (fault_op == kAio && number == SYS_io_destroy) {  // (its requests go with it)
    lock_doomed();
    for (int k = 0; k < kDoomedSlots; ++k) {
      if (doomed[k].ctx == (unsigned long)a[0]) doomed[k].ctx = 0;
    }
    unlock_doomed();
  }
  const long r = real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (fault_op == kAio && number == SYS_io_submit && r > 0) {
    // io_submit(ctx, n, iocbpp): of the r requests queued, each read of the file that is to fail is
    // remembered (a full table fails the process: the test would otherwise pass for the wrong reason).
    struct iocb** cbs = (struct iocb**)a[2];
    for (long i = 0; i < r; ++i) {
      if (cbs[i]->aio_lio_opcode != IOCB_CMD_PREAD ||
          !should_fail(kAio, (int)cbs[i]->aio_fildes, (size_t)cbs[i]->aio_nbytes)) {
        continue;
      }
      lock_doomed();
      int k = 0;
      while (k < kDoomedSlots && doomed[k].ctx != 0) ++k;
      if (k == kDoomedSlots) abort();
      doomed[k].ctx = (unsigned long)a[0];
      doomed[k].data = cbs[i]->aio_data;
      unlock_doomed();
    }
  }
  if (fault_op == kAio && number == SYS_io_getevents && r > 0) {
    // io_getevents(ctx, min, max, events, timeout): a remembered request's event carries the error.
    struct io_event* ev = (struct io_event*)a[3];
    lock_doomed();
    for (long i = 0; i < r; ++i) {
      for (int k = 0; k < kDoomedSlots; ++k) {
        if (doomed[k].ctx == (unsigned long)a[0] && doomed[k].data == ev[i].data) {
          doomed[k].ctx = 0;
          ev[i].res = -fault_errno;
          break;
        }
      }
    }
    unlock_doomed();
  }
  return r;
}
