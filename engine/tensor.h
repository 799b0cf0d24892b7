// Tensor: a typed view (shape, strides, offset, all int64) of reference-counted storage on a
// device. Activations are NHWC; conv weights are KRSC inside the engine (OIHW in checkpoints).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"

namespace seis {

constexpr int kMaxRank = 5;

// Owns one allocation on one device; freed through the allocator it came from.
class Storage {
 public:
  Storage(Device device, int64_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }  // null on a shape-only device
  // The allocator's key of the block: data(), or a shape-only device's stand-in (never dereferenced).
  void* block() const { return data_ != nullptr ? data_ : plan_key_; }
  int64_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  Device device_;
  int64_t bytes_ = 0;
  void* data_ = nullptr;
  void* plan_key_ = nullptr;  // a shape-only device's block (engine/memory.h)
};

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);

class Tensor {
 public:
  Tensor() = default;
  // Uninitialised contents.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, float value, Device device = Device::cpu());
  static Tensor from_vector(const Shape& shape, const std::vector<float>& values);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t dim(int i) const;
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return shape_numel(shape_); }
  int64_t nbytes() const { return numel() * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::cpu(); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  void* raw() const;  // null on a shape-only device
  template <typename T>
  T* data() const {
    return static_cast<T*>(raw());
  }

  // Views sharing storage.
  Tensor reshape(const Shape& shape) const;         // contiguous only
  Tensor slice0(int64_t begin, int64_t end) const;  // rows [begin, end) of dim 0

  // Copies.
  Tensor to(Device device) const;  // contiguous copy on `device` (shares storage if already there)
  Tensor clone() const;
  Tensor to_dtype(DType dtype) const;  // CPU only
  void copy_from(const Tensor& src);   // same shape and dtype, any devices
  void zero_();
  std::vector<float> to_vector() const;  // f32 values, copied to the host

 private:
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;  // in elements
  Shape shape_, strides_;
  DType dtype_ = DType::f32;
};

}  // namespace seis
