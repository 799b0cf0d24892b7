#include "engine/grad_buckets.h"

#include <algorithm>
#include <cstring>

#include "engine/device_runtime.h"
#include "engine/error.h"
#include "kernels/elementwise.h"
#if SEIS_HAVE_CUDA
#include <cuda_runtime.h>

#include "engine/cuda_check.h"
#endif

namespace seis {

GradBucketer::GradBucketer(Communicator& comm, std::vector<Var> params, int64_t bucket_bytes)
    : comm_(comm), params_(std::move(params)), got_grad_(params_.size(), 0) {
  SEIS_CHECK(bucket_bytes > 0, "bucket size " << bucket_bytes);
  SEIS_CHECK(!params_.empty(), "no parameters to bucket");
  const Device device = params_[0]->value.device();
  // Reverse registration order: the last layers' gradients come first in backward.
  Bucket cur;
  int64_t cur_bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& v = params_[k]->value;
    SEIS_CHECK(v.dtype() == DType::f32 && v.device() == device, "bucketed parameters must be f32 on one device");
    cur.params.push_back(k);
    cur.offsets.push_back(cur_bytes / 4);
    cur_bytes += v.numel() * 4;
    if (cur_bytes >= bucket_bytes || k == 0) {
      cur.flat = Tensor::zeros({cur_bytes / 4}, DType::f32, device);
      buckets_.push_back(std::move(cur));
      cur = Bucket();
      cur_bytes = 0;
    }
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& bk = buckets_[b];
    bk.pending = static_cast<int64_t>(bk.params.size());
    for (size_t s = 0; s < bk.params.size(); ++s) {
      VarImpl& p = *params_[bk.params[s]];
      SEIS_CHECK(!p.on_grad_ready, "a parameter is already bucketed");
      p.on_grad_ready = [this, b, s](VarImpl& v) { on_ready(b, s, v); };
    }
  }
}

GradBucketer::~GradBucketer() {
  for (const Var& p : params_) p->on_grad_ready = nullptr;
}

int64_t GradBucketer::total_floats() const {
  int64_t n = 0;
  for (const Bucket& b : buckets_) n += b.flat.numel();
  return n;
}

std::vector<int64_t> GradBucketer::bucket_floats() const {
  std::vector<int64_t> v;
  for (const Bucket& b : buckets_) v.push_back(b.flat.numel());
  return v;
}

void GradBucketer::on_ready(size_t bucket, size_t slot, VarImpl& v) {
  Bucket& b = buckets_[bucket];
  const size_t k = b.params[slot];
  SEIS_CHECK(b.handle < 0 && !got_grad_[k], "parameter " << k << " got its gradient twice in one step");
  got_grad_[k] = 1;
  const int64_t n = v.value.numel();
  Tensor view = b.flat.slice0(b.offsets[slot], b.offsets[slot] + n).reshape(v.value.shape());
  const Device d = view.device();
  if (d.shape_only) {
    // a memory plan: nothing to copy
  } else if (d.is_cpu()) {
    std::memcpy(view.raw(), v.grad.raw(), static_cast<size_t>(n) * sizeof(float));
  } else {
#if SEIS_HAVE_CUDA
    // On the compute stream, without a host sync (the gradient's block is freed stream-ordered).
    CUDA_CHECK(cudaMemcpyAsync(view.raw(), v.grad.raw(), static_cast<size_t>(n) * sizeof(float),
                               cudaMemcpyDeviceToDevice, cuda_compute_stream(d.index)));
#endif
  }
  v.grad = std::move(view);
  if (--b.pending == 0) {
    start(b);
    ++started_in_backward_;
  }
}

void GradBucketer::start(Bucket& b) {
  b.handle = comm_.allreduce_sum_async(b.flat.data<float>(), b.flat.numel(), b.flat.device());
}

void GradBucketer::finish() {
  // Buckets that never filled hold parameters without a gradient: reduce zeros in their place.
  // Started in bucket order, as every rank does (the same graph gives the same missing params).
  for (Bucket& b : buckets_) {
    if (b.handle >= 0) continue;
    for (size_t s = 0; s < b.params.size(); ++s) {
      if (got_grad_[b.params[s]]) continue;
      const int64_t n = params_[b.params[s]]->value.numel();
      b.flat.slice0(b.offsets[s], b.offsets[s] + n).zero_();
    }
    start(b);
  }
  for (Bucket& b : buckets_) {
    comm_.wait(b.handle);
    b.handle = -1;
    b.pending = static_cast<int64_t>(b.params.size());
  }
  std::fill(got_grad_.begin(), got_grad_.end(), 0);
  last_started_in_backward_ = started_in_backward_;
  started_in_backward_ = 0;
}

}  // namespace seis
