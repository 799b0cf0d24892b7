#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/file_io.h"
#include "engine/printable.h"

namespace seis {

namespace {

const char* st_dtype(DType t) {
  switch (t) {
    case DType::f32:
      return "F32";
    case DType::bf16:
      return "BF16";
    case DType::u8:
      return "U8";
  }
  return "?";
}

bool parse_st_dtype(const std::string& s, DType* t) {
  if (s == "F32")
    *t = DType::f32;
  else if (s == "BF16")
    *t = DType::bf16;
  else if (s == "U8")
    *t = DType::u8;
  else
    return false;
  return true;
}

}  // namespace

const Tensor* SafetensorsContents::find(const std::string& name) const {
  for (const auto& [n, t] : tensors) {
    if (n == name) return &t;
  }
  return nullptr;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) {
    nlohmann::ordered_json md = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) md[k] = v;
    header["__metadata__"] = md;
  }
  int64_t offset = 0;
  std::vector<Tensor> host;
  for (const auto& [name, t] : tensors) {
    Tensor h = t.to(Device::cpu());
    header[name] = {
        {"dtype", st_dtype(h.dtype())}, {"shape", h.shape()}, {"data_offsets", {offset, offset + h.nbytes()}}};
    offset += h.nbytes();
    host.push_back(h);
  }
  std::string hs = header.dump();
  // The data section starts 8-byte aligned, as the reference implementation pads with spaces.
  while ((8 + hs.size()) % 8 != 0) hs.push_back(' ');
  std::string bytes;
  bytes.reserve(8 + hs.size() + static_cast<size_t>(offset));
  const uint64_t n = hs.size();
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  bytes += hs;
  for (const Tensor& h : host) bytes.append(static_cast<const char*>(h.raw()), static_cast<size_t>(h.nbytes()));
  write_atomic(path, bytes);
}

SafetensorsContents load_safetensors(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw InputError(path + ": cannot open: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw InputError(path + ": is a directory, not a safetensors file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(path + ": cannot open: " + std::strerror(errno));
  struct CloseFd {
    int fd;
    ~CloseFd() { ::close(fd); }
  } close_fd{fd};
  const int64_t file_size = st.st_size;
  std::string err;
  unsigned char len_bytes[8];
  if (file_size < 8 || !pread_full(fd, len_bytes, 8, 0, &err)) {
    throw InputError(path + ": not a safetensors file (shorter than its 8-byte header length)");
  }
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(len_bytes[i]) << (8 * i);
  if (header_len > static_cast<uint64_t>(file_size - 8) || header_len > (100u << 20)) {
    throw InputError(path + ": not a safetensors file or truncated (header length " + std::to_string(header_len) +
                     " for a file of " + std::to_string(file_size) + " bytes)");
  }
  std::string hs(header_len, '\0');
  if (!pread_full(fd, hs.data(), static_cast<int64_t>(header_len), 8, &err)) {
    throw InputError(path + ": cannot read the safetensors header: " + err);
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(hs);
  } catch (const std::exception& e) {
    // (The parser's message quotes the bytes it stopped at.)
    throw InputError(path + ": bad safetensors header: " + printable(e.what()));
  }
  if (!header.is_object()) throw InputError(path + ": bad safetensors header: not a JSON object");
  const int64_t data_start = 8 + static_cast<int64_t>(header_len);
  const int64_t data_size = file_size - data_start;
  SafetensorsContents out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    const std::string tensor = ": tensor '" + printable(name) + "': ";
    if (name == "__metadata__") {
      if (!v.is_object()) throw InputError(path + ": bad safetensors __metadata__");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) {
          throw InputError(path + ": __metadata__ value '" + printable(m.key()) + "' is not a string");
        }
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    DType dt;
    if (!v.is_object() || !v.contains("dtype") || !v["dtype"].is_string() || !parse_st_dtype(v["dtype"], &dt)) {
      throw InputError(path + tensor + "missing or unsupported dtype (F32, BF16, U8)");
    }
    if (!v.contains("shape") || !v["shape"].is_array() || v["shape"].size() > static_cast<size_t>(kMaxRank) ||
        !v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2) {
      throw InputError(path + tensor + "bad shape or data_offsets");
    }
    Shape shape;
    int64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (1ull << 40)) {
        throw InputError(path + tensor + "bad dimension in shape");
      }
      shape.push_back(d.get<int64_t>());
      // (Checked before multiplying: two dimensions of 2^40 would overflow int64.)
      if (shape.back() > 0 && numel > (1ll << 40) / shape.back()) throw InputError(path + tensor + "shape too large");
      numel *= shape.back();
    }
    const auto& off = v["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
      throw InputError(path + tensor + "bad data_offsets");
    }
    const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e || e > static_cast<uint64_t>(data_size)) {
      throw InputError(path + tensor + "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                       ") outside the " + std::to_string(data_size) + " data bytes (truncated file?)");
    }
    if (static_cast<int64_t>(e - b) != numel * dtype_size(dt)) {
      throw InputError(path + tensor + "shape " + shape_str(shape) + " does not match its " + std::to_string(e - b) +
                       " bytes");
    }
    Tensor t = Tensor::empty(shape, dt);
    if (!pread_full(fd, t.raw(), static_cast<int64_t>(e - b), data_start + static_cast<int64_t>(b), &err)) {
      throw InputError(path + tensor + "read failed (truncated file?): " + err);
    }
    out.tensors.emplace_back(name, t);
  }
  return out;
}

}  // namespace seis
