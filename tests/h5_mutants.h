// Damaged copies of valid HDF5 files, as a user's corrupted or truncated copies would be: bits
// flipped and header fields set to extreme values in the file's metadata (every byte that is not a
// dataset's raw data: flipping sample values tests nothing), and truncations anywhere. Deterministic
// per seed. Also one damage known to crash HDF5 1.10 in H5Aread of a variable-length string (the
// global heap object of the string claims 2^34 bytes, and H5HG_read copies them).
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace seis::test {

inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

inline bool write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(f);
}

// The byte ranges [offset, offset + size) of every dataset's raw data (allocated chunks, or the
// contiguous storage) in a valid file.
inline std::vector<std::pair<int64_t, int64_t>> raw_data_ranges(const std::string& path) {
  std::vector<std::pair<int64_t, int64_t>> r;
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return r;
  std::vector<std::string> names;
  H5Literate(
      f, H5_INDEX_NAME, H5_ITER_INC, nullptr,
      [](hid_t, const char* name, const H5L_info_t*, void* d) -> herr_t {
        static_cast<std::vector<std::string>*>(d)->emplace_back(name);
        return 0;
      },
      &names);
  for (const std::string& name : names) {
    const hid_t d = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
    if (d < 0) continue;
    const hid_t dcpl = H5Dget_create_plist(d);
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
      const hid_t space = H5Dget_space(d);
      hsize_t n = 0;
      H5Dget_num_chunks(d, space, &n);
      for (hsize_t k = 0; k < n; ++k) {
        hsize_t offset[8] = {}, size = 0;
        unsigned mask = 0;
        haddr_t addr = HADDR_UNDEF;
        if (H5Dget_chunk_info(d, space, k, offset, &mask, &addr, &size) >= 0 && addr != HADDR_UNDEF) {
          r.emplace_back(static_cast<int64_t>(addr), static_cast<int64_t>(size));
        }
      }
      H5Sclose(space);
    } else {
      const haddr_t addr = H5Dget_offset(d);
      if (addr != HADDR_UNDEF) r.emplace_back(static_cast<int64_t>(addr), static_cast<int64_t>(H5Dget_storage_size(d)));
    }
    H5Pclose(dcpl);
    H5Dclose(d);
  }
  H5Fclose(f);
  return r;
}

// The offsets of the bytes of a valid file that are not raw data.
inline std::vector<int64_t> metadata_offsets(const std::string& path, int64_t file_size) {
  std::vector<char> raw(static_cast<size_t>(file_size), 0);
  for (const auto& [off, size] : raw_data_ranges(path)) {
    for (int64_t i = off; i < off + size && i < file_size; ++i) raw[static_cast<size_t>(i)] = 1;
  }
  std::vector<int64_t> meta;
  for (int64_t i = 0; i < file_size; ++i) {
    if (!raw[static_cast<size_t>(i)]) meta.push_back(i);
  }
  return meta;
}

enum class Mutation { flip_bits, extreme_field, truncate };

// Mutant `k` of `bytes` (meta: metadata_offsets of the file): one of three kinds in turn, the places
// and values drawn from (seed, k).
inline std::string mutate(const std::string& bytes, const std::vector<int64_t>& meta, uint64_t seed, uint64_t k,
                          Mutation* kind) {
  std::mt19937_64 rng(seed * 1000003 + k);
  std::string b = bytes;
  *kind = static_cast<Mutation>(k % 3);
  auto pick = [&] { return meta[std::uniform_int_distribution<size_t>(0, meta.size() - 1)(rng)]; };
  if (*kind == Mutation::flip_bits) {
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) b[static_cast<size_t>(pick())] ^= static_cast<char>(1u << (rng() % 8));
  } else if (*kind == Mutation::extreme_field) {
    // A little-endian field of 1, 2, 4 or 8 bytes set to 0, all ones, the largest or the smallest
    // signed value.
    const int64_t at = pick();
    const int width = 1 << (rng() % 4);
    const int value = static_cast<int>(rng() % 4);
    for (int j = 0; j < width && at + j < static_cast<int64_t>(b.size()); ++j) {
      const bool top = j == width - 1;
      uint8_t v = 0;
      if (value == 1) v = 0xff;
      if (value == 2) v = top ? 0x7f : 0xff;
      if (value == 3) v = top ? 0x80 : 0x00;
      b[static_cast<size_t>(at + j)] = static_cast<char>(v);
    }
  } else {
    b.resize(static_cast<size_t>(rng() % bytes.size()));
  }
  return b;
}

// The known crash: the first object of the file's first global heap collection ("GCOL": where HDF5
// keeps variable-length strings, such as seisseg's text attributes) made to claim 2^34 more bytes.
// Empty when the file has no global heap.
inline std::string inflate_global_heap_object(const std::string& bytes) {
  const size_t g = bytes.find("GCOL");
  // Collection: signature (4), version (1), reserved (3), size (8); then the object: index (2),
  // reference count (2), reserved (4), size (8).
  if (g == std::string::npos || g + 32 > bytes.size()) return "";
  std::string b = bytes;
  b[g + 16 + 8 + 4] = static_cast<char>(b[g + 16 + 8 + 4] | 4);
  return b;
}

}  // namespace seis::test
