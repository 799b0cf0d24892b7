// Where every chunk of an HDF5 chunked dataset lies in the file, read from the file's own bytes in
// one pass over the chunk index (HDF5 1.10's H5Dget_chunk_info scans the whole index per call, so
// asking it about every chunk is quadratic: minutes for 10^5 chunks).
//
// Supported (everything else returns false, and the caller uses the library):
//   - object header version 1 or 2 ("OHDR", checksums verified), continuation blocks included;
//   - data layout message version 3 (v1 B-tree: libver "earliest", h5py's default, ours) and
//     version 4 with the single-chunk, implicit and fixed-array indexes (libver "latest" without
//     unlimited dimensions; "FAHD"/"FADB" checksums verified, paged data blocks included);
//   - sizes of offsets and lengths up to 8 bytes, no user block, the sec2 (default) file driver.
// Every address and size of index metadata is checked against the file size before it is read;
// the result is checked for consistency (strictly increasing grid index, no two chunks
// overlapping). Chunks past the end of the file are listed as they are: the caller reports them.
// Any inconsistency is a false return with the reason, never a crash.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace seis {

struct H5ChunkLocation {
  int64_t index = 0;  // row-major position in the chunk grid (dims rounded up to chunk multiples)
  int64_t addr = 0;   // file offset of the stored chunk bytes
  int64_t size = 0;   // stored bytes (compressed size when filtered)
  uint32_t filter_mask = 0;
};

// Every allocated chunk of the chunked dataset `dset`, in ascending grid index (which is the order
// H5Dget_chunk_info numbers them). fd: the same file, open for reading. False, with the reason in
// *why_not, where the layout is not supported or anything in the file is inconsistent.
bool read_chunk_index(int fd, hid_t dset, std::vector<H5ChunkLocation>* chunks, std::string* why_not);

// Compares `chunks` with the library (H5Dget_chunk_info by index): all of them when there are at
// most `check_all_below`, else the first 8, 16 evenly spaced ones (first and last included), and that
// there is none past the last. Costs about ten scans of the index in HDF5 1.10: O(n).
bool verify_chunk_index(hid_t dset, const std::vector<H5ChunkLocation>& chunks, std::string* why_not,
                        int64_t check_all_below = 256);

// Jenkins' lookup3 hash (hashlittle) with initval 0: HDF5's metadata checksum.
uint32_t h5_checksum_lookup3(const uint8_t* data, size_t length);

}  // namespace seis
