// O_DIRECT 4 MiB reads of a file by 2 threads into (a) a reused 8 MiB buffer per thread, (b) a 1 GiB
// ring, (c) the ring with MADV_HUGEPAGE. Not kept.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>
int main(int argc, char** argv) {
  const char* path = argv[1];
  const char mode = argv[2][0];
  const int fd = open(path, O_RDONLY | O_DIRECT);
  const off_t size = lseek(fd, 0, SEEK_END) / (4 << 20) * (4 << 20);
  const size_t ring = size_t{1} << 30;
  uint8_t* big = nullptr;
  if (mode != 'a') {
    big = static_cast<uint8_t*>(mmap(nullptr, ring, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (mode == 'c') madvise(big, ring, MADV_HUGEPAGE);
    memset(big, 1, ring);
  }
  std::atomic<long> next{0};
  const long blocks = size / (4 << 20);
  auto t0 = std::chrono::steady_clock::now();
  auto work = [&](int id) {
    void* own = nullptr;
    posix_memalign(&own, 2 << 20, 8 << 20);
    if (mode == 'd') madvise(own, 8 << 20, MADV_HUGEPAGE);
    memset(own, 0, 8 << 20);
    long k = 0;
    for (;;) {
      const long j = next++;
      if (j >= blocks) break;
      uint8_t* dst = (mode == 'a' || mode == 'd') ? static_cast<uint8_t*>(own) + (k++ % 2) * (4 << 20)
                                                  : big + (j % (ring / (4 << 20))) * (4 << 20);
      if (pread(fd, dst, 4 << 20, j * (4L << 20)) != (4 << 20)) {
        perror("pread");
        exit(1);
      }
    }
  };
  std::thread a(work, 0), b(work, 1);
  a.join();
  b.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%c %.2f GB/s\n", mode, size / s / 1e9);
}
