// The order samples are visited in: per epoch a permutation seeded by (seed, epoch), the same on
// every rank and after a resume.
#pragma once
#include <cstdint>
#include <vector>

namespace seis {

// A permutation of 0..n-1 (Fisher-Yates with the counter-based Rng of engine/rng.h).
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace seis
