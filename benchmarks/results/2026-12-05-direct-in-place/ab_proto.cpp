// Alternating cold epochs of the reader with direct reads into place or copied. Not kept.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "io/sample_reader.h"
#include "io/sample_set.h"
using namespace seis;
int main(int argc, char** argv) {
  const SampleSet set({argv[1]});
  const int rounds = std::atoi(argv[2]);
  for (int r = 0; r < rounds; ++r) {
    for (int k = 0; k < 2; ++k) {
      const bool into = (r + k) % 2 == 0;
      if (std::system("sync; echo 3 > /proc/sys/vm/drop_caches") != 0) return 1;
      SampleReaderOptions o;
      o.batch = 4;
      o.threads = 2;
      o.normalize = Normalize::trace;
      o.direct_io = true;
      o.direct_into_place = into;
      SampleReader reader(set, o);
      const int64_t before = set.file(0).direct_bytes_in_place();
      const auto t0 = std::chrono::steady_clock::now();
      int64_t n = 0;
      for (int64_t b = 0; b < reader.batches_per_epoch(); ++b) n += reader.next_host().size;
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("round %d %-8s %.2f GB/s (%lld B in place)\n", r, into ? "straight" : "copied",
                  reader.stats().bytes_read / s / 1e9, (long long)(set.file(0).direct_bytes_in_place() - before));
      std::fflush(stdout);
    }
  }
}
