// seisseg convert of an HDF5 dataset file (one written by h5py or another tool) into the layout the
// reader reads fastest, with the normalisation statistics stored (DESIGN.md, "Data"): /data (float32,
// or float16 kept float16) and /label (uint8: float labels become 0/1, as the reader reads them) in
// uncompressed chunks of one gather, allocated in gather order; /trace_norm and /sample_norm
// computed from the values written (padding traces, 0 in /trace_valid, written as zeros, as the
// reader reads them); everything else under the root (tables, SEG-Y headers, /trace_valid, groups,
// links, root attributes, the attributes of /data and /label) copied as it is. The gathers are read and written
// by a few threads at once; memory is a gather or two per thread, whatever the file's size. `out`
// may name the input: it is replaced only once the new file is complete (engine/file_io.h).
#pragma once
#include <string>

namespace seis {

// Prints one summary line to stdout, a line per warning to stderr (gathers holding NaN or Inf, which
// are kept as they are; what could not be copied). InputError naming the file and the problem
// (apps/commands.h), nothing left under `out`.
void convert_hdf5(const std::string& in, const std::string& out);

}  // namespace seis
