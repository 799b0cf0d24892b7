#include "engine/tensor.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "engine/device_runtime.h"
#include "engine/dispatch.h"
#include "engine/error.h"
#include "engine/memory.h"
#include "kernels/elementwise.h"

namespace seis {

namespace {
int64_t allocated_bytes(int64_t bytes) { return (bytes + 63) / 64 * 64; }
}  // namespace

Storage::Storage(Device device, int64_t bytes) : device_(device), bytes_(bytes) {
  SEIS_CHECK(bytes >= 0, "negative allocation size " << bytes);
  const int64_t rounded = allocated_bytes(bytes);
  if (rounded == 0) return;
  if (device.shape_only) {
    plan_key_ = shape_only_alloc(device, rounded);
  } else if (device.is_cpu()) {
    data_ = host_alloc(rounded);
  } else {
    data_ = cuda_alloc(device.index, rounded);
  }
}

Storage::~Storage() {
  if (plan_key_ != nullptr) shape_only_free(device_, plan_key_, allocated_bytes(bytes_));
  if (data_ == nullptr) return;
  if (device_.is_cpu()) {
    host_free(data_, allocated_bytes(bytes_));
  } else {
    cuda_free(device_.index, data_);
  }
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

static Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t acc = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= shape[i];
  }
  return st;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  SEIS_CHECK(shape.size() <= static_cast<size_t>(kMaxRank), "rank " << shape.size() << " > " << kMaxRank);
  for (int64_t d : shape) SEIS_CHECK(d >= 0, "negative dimension in " << shape_str(shape));
  Tensor t;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(device, shape_numel(shape) * dtype_size(dtype));
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  // Filled where it lives: on a GPU a kernel on the compute stream, no host copy to wait for.
  Tensor t = empty(shape, DType::f32, device);
  SEIS_DISPATCH(t, fill, t.numel(), value, t.data<float>());
  return t;
}

Tensor Tensor::from_vector(const Shape& shape, const std::vector<float>& values) {
  SEIS_CHECK(shape_numel(shape) == static_cast<int64_t>(values.size()),
             "shape " << shape_str(shape) << " does not hold " << values.size() << " values");
  Tensor t = empty(shape);
  if (!values.empty()) std::memcpy(t.raw(), values.data(), values.size() * sizeof(float));
  return t;
}

int64_t Tensor::dim(int i) const {
  if (i < 0) i += rank();
  SEIS_CHECK(i >= 0 && i < rank(), "dim " << i << " of a rank-" << rank() << " tensor");
  return shape_[i];
}

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_); }

void* Tensor::raw() const {
  if (!storage_ || storage_->data() == nullptr) return nullptr;  // empty, or shape-only
  return static_cast<char*>(storage_->data()) + offset_ * dtype_size(dtype_);
}

Tensor Tensor::reshape(const Shape& shape) const {
  SEIS_CHECK(is_contiguous(), "reshape of a non-contiguous tensor");
  SEIS_CHECK(shape_numel(shape) == numel(), "reshape " << shape_str(shape_) << " to " << shape_str(shape));
  Tensor t = *this;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  return t;
}

Tensor Tensor::slice0(int64_t begin, int64_t end) const {
  SEIS_CHECK(rank() >= 1 && 0 <= begin && begin <= end && end <= shape_[0],
             "slice [" << begin << ", " << end << ") of " << shape_str(shape_));
  Tensor t = *this;
  t.offset_ += begin * strides_[0];
  t.shape_[0] = end - begin;
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  SEIS_CHECK(shape_ == src.shape_ && dtype_ == src.dtype_, "copy " << shape_str(src.shape_) << " "
                                                                   << dtype_name(src.dtype_) << " into "
                                                                   << shape_str(shape_) << " " << dtype_name(dtype_));
  SEIS_CHECK(is_contiguous() && src.is_contiguous(), "copy of non-contiguous tensors");
  const int64_t bytes = nbytes();
  const Device d = device(), s = src.device();
  if (bytes == 0 || d.shape_only) return;  // a shape-only destination holds no values
  SEIS_CHECK(!s.shape_only, "copy from a shape-only tensor into " << d.str() << ": it has no values");
  if (d.is_cpu() && s.is_cpu()) {
    std::memcpy(raw(), src.raw(), static_cast<size_t>(bytes));
  } else if (d.is_cuda() && s.is_cpu()) {
    cuda_copy_to_device(d.index, raw(), src.raw(), bytes);
  } else if (d.is_cpu() && s.is_cuda()) {
    cuda_copy_to_host(s.index, raw(), src.raw(), bytes);
  } else {
    SEIS_CHECK(d == s, "copy between two GPUs");
    // Ordered on the compute stream like a kernel, without waiting (and so capturable in a graph).
    cuda_copy_async(d.index, raw(), src.raw(), bytes);
  }
}

Tensor Tensor::to(Device device) const {
  if (this->device() == device && is_contiguous()) return *this;
  Tensor t = empty(shape_, dtype_, device);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device());
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to_dtype(DType dtype) const {
  SEIS_CHECK(device().is_cpu() && is_contiguous(), "to_dtype needs a contiguous CPU tensor");
  if (dtype == dtype_) return clone();
  Tensor t = empty(shape_, dtype, Device::cpu());
  const int64_t n = numel();
  std::vector<float> v = to_vector();
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype) {
      case DType::f32:
        t.data<float>()[i] = v[i];
        break;
      case DType::bf16:
        t.data<uint16_t>()[i] = float_to_bf16(v[i]);
        break;
      case DType::u8:
        t.data<uint8_t>()[i] = static_cast<uint8_t>(v[i]);
        break;
    }
  }
  return t;
}

void Tensor::zero_() {
  if (nbytes() == 0 || device().shape_only) return;
  SEIS_CHECK(is_contiguous(), "zero_ of a non-contiguous tensor");
  if (device().is_cpu()) {
    std::memset(raw(), 0, static_cast<size_t>(nbytes()));
  } else {
    cuda_memset_zero(device().index, raw(), nbytes());
  }
}

std::vector<float> Tensor::to_vector() const {
  Tensor h = to(Device::cpu());
  const int64_t n = h.numel();
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype_) {
      case DType::f32:
        v[i] = h.data<float>()[i];
        break;
      case DType::bf16:
        v[i] = bf16_to_float(h.data<uint16_t>()[i]);
        break;
      case DType::u8:
        v[i] = h.data<uint8_t>()[i];
        break;
    }
  }
  return v;
}

}  // namespace seis
