// The files of a dataset as given on the command line (train's --data and --val): a comma-separated
// list whose items are each
//   - an HDF5 file;
//   - a directory: its *.h5 and *.hdf5 files (not its subdirectories), sorted by name;
//   - a glob pattern (* ? [...], quoted from the shell): the matching files (not directories),
//     sorted by name;
//   - a list file, @LIST or a name ending in .txt: one file, directory or glob per line, blank lines
//     and lines starting with # skipped, relative names taken from the list's own directory.
// The order is the sample order (global index g), so the same arguments give the same order.
#pragma once
#include <string>
#include <vector>

namespace seis {

// Expands `spec` (the value of `flag`, for messages) into file paths. InputError, one line naming
// the item: a glob that matches nothing, a directory without .h5 files or that cannot be listed, a
// list file that cannot be read, is larger than 64 MiB, names no file or names another list, more
// than 2^20 files in all. UsageError when spec names nothing (empty, or only commas). Files are
// not opened here: a missing or damaged HDF5 file is reported when the set opens it.
std::vector<std::string> expand_dataset_paths(const std::string& spec, const std::string& flag);

}  // namespace seis
