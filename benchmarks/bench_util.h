// Helpers shared by the benchmark binaries: a monotonic clock, running a peer script, evicting a
// file from the page cache and the raw sequential read of a file (the physical limit).
#pragma once
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/error.h"

namespace seis::bench {

inline bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

inline int64_t file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw InputError(path + ": cannot stat: " + std::strerror(errno));
  return static_cast<int64_t>(st.st_size);
}

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The standard output of a shell command (e.g. a Python peer printing JSON lines).
inline std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  pclose(p);
  return out;
}

// Drops the file's pages from the page cache (dirty pages are written first so they are clean):
// the next read of it is cold without dropping the whole machine's cache.
inline void evict(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw InputError(path + ": cannot open: " + std::strerror(errno));
  ::fsync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

struct RawRead {
  int64_t bytes = 0;
  double seconds = 0;
};

// read() of the whole file in blocks of `block` bytes, sequentially, into one buffer.
inline RawRead raw_read(const std::string& path, int64_t block = int64_t{8} << 20) {
  void* buf = nullptr;
  if (posix_memalign(&buf, 4096, static_cast<size_t>(block)) != 0) throw Error("out of memory");
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    std::free(buf);
    throw InputError(path + ": cannot open: " + std::strerror(errno));
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  RawRead r;
  const double t0 = now_s();
  for (;;) {
    const ssize_t got = ::read(fd, buf, static_cast<size_t>(block));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      ::close(fd);
      std::free(buf);
      throw InputError(path + ": read failed: " + std::strerror(errno));
    }
    if (got == 0) break;
    r.bytes += got;
  }
  r.seconds = now_s() - t0;
  ::close(fd);
  std::free(buf);
  return r;
}

}  // namespace seis::bench
