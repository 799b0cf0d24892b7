// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length, a JSON header of {name: {dtype, shape, data_offsets}} plus "__metadata__" (strings), then
// the raw little-endian data. Written atomically (engine/file_io.h: temp file, fsync, rename, fsync of
// the directory).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace seis {

struct SafetensorsContents {
  std::vector<std::pair<std::string, Tensor>> tensors;  // sorted by name, on the CPU
  std::map<std::string, std::string> metadata;

  const Tensor* find(const std::string& name) const;
};

// Tensors may live on any device; they are copied to the host to be written.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata);
// Throws InputError naming the file on anything malformed: a short file, a bad header, offsets
// outside the data, an unknown dtype, a shape that does not match its byte range.
SafetensorsContents load_safetensors(const std::string& path);

}  // namespace seis
