// Copying what an HDF5 file holds under its root into another file, for seisseg convert of a
// dataset file (H5SampleWriter::copy_root_from): every root link but the ones the caller writes
// itself, and every root attribute, carried over as they are. Internal to io/, as hdf5_util.h.
#pragma once
#include <hdf5.h>

#include <set>
#include <string>

#include "io/hdf5_dataset.h"

namespace seis {

// Copies into the open file `dst` (its root) every link under the root of `src` whose name is not in
// `except`, and every root attribute of `src`:
// - a hard link (dataset, group, named datatype): H5Ocopy, with its attributes, type, shape, chunk
//   layout and filters, and a group with all it holds;
// - a soft or external link: the same link (the same target path, or file and path);
// - an attribute: the same name, type (a committed one as a plain copy), shape and values;
// and the attributes of each object named in `attributes_of` that both files hold onto dst's. An
// attribute holding object references (e.g. h5py's DIMENSION_LIST) is not copied but listed in
// skipped. Object references inside copied objects (datasets holding them, or their attributes,
// e.g. h5py's REFERENCE_LIST) come out null: HDF5 does not carry them from one file to another.
// The caller holds h5_mutex(). Throws InputError naming src_path (or dst_path) and the object when
// HDF5 cannot read or write one.
H5CopyResult h5_copy_root(hid_t src, const std::string& src_path, hid_t dst, const std::string& dst_path,
                          const std::set<std::string>& except, const std::set<std::string>& attributes_of = {});

}  // namespace seis
