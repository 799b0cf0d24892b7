// Tables in HDF5 files: 1-D compound datasets (h5py reads them as numpy structured arrays), e.g. the
// synthetic generator's ground truth /picks and /events. A table is described once by a spec that
// maps each field to a member of the caller's row struct; the file stores the fields packed, in
// spec order, little-endian. Written by H5SampleWriter (add_table, append_rows: chunked and
// extendible, appended in order), read in row ranges by H5TableReader, so neither side ever holds
// a whole table.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace seis {

enum class H5FieldType { i64, u8, f64 };

struct H5Field {
  std::string name;
  H5FieldType type = H5FieldType::f64;
  size_t offset = 0;  // offsetof(Row, member)
};

struct H5TableSpec {
  std::string name;      // dataset name under the root, without '/'
  size_t row_bytes = 0;  // sizeof(Row)
  std::vector<H5Field> fields;
};

// Reads a table of an HDF5 file in row ranges.
class H5TableReader {
 public:
  // Opens /spec.name of path. exists() is false when the file has no such dataset. InputError
  // naming the file when it cannot be opened, or when the dataset is not a 1-D compound holding
  // every field of the spec, the integer fields as integers and the float fields as floats (any
  // extra fields are ignored; values are converted to the spec's types), declares more rows than
  // the file stores (never written), or has rows over 1 MiB or compressed chunks over 256 MiB.
  H5TableReader(const std::string& path, const H5TableSpec& spec);
  ~H5TableReader();
  H5TableReader(const H5TableReader&) = delete;
  H5TableReader& operator=(const H5TableReader&) = delete;

  bool exists() const;
  int64_t rows() const;
  // Rows [r0, r0 + count) into out (count rows laid out as the spec's struct). InputError naming
  // the rows when they cannot be read, or when an integer value does not fit the spec's type
  // (e.g. a phase of -1 for a uint8 field).
  void read(int64_t r0, int64_t count, void* out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace seis
