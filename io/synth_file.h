// Streams a synthetic microseismic set to an HDF5 dataset file: T worker threads each take the
// next sample index, generate the gather (deterministic per (seed, index)) and hand it to the
// thread-safe writer, so at most T gathers are in memory whatever N is. The generator's parameters
// become attributes; the file appears under `out` only when complete.
#pragma once
#include <cstdint>
#include <string>

#include "io/synth_microseismic.h"

namespace seis {

// Returns the seconds it took. With `progress`, prints samples/s, MB/s and the ETA to stderr at most
// once a second. Throws InputError naming the file when it cannot be written.
double write_synth_file(const std::string& out, const SynthConfig& cfg, int64_t samples, int threads, int gzip,
                        const std::string& version, bool progress);

}  // namespace seis
