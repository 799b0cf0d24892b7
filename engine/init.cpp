#include "engine/init.h"

#include <cmath>

#include "engine/error.h"
#include "engine/rng.h"

namespace seis {

void init_conv_weight(Tensor& w, uint64_t seed, uint64_t stream_id) {
  SEIS_CHECK(w.rank() == 4 && w.device().is_cpu() && w.dtype() == DType::f32, "init_conv_weight: KRSC f32 on the CPU");
  const int64_t k = w.dim(0), r = w.dim(1), s = w.dim(2), c = w.dim(3);
  const double bound = 1.0 / std::sqrt(static_cast<double>(c * r * s));
  Rng rng(seed, stream_id);
  float* p = w.data<float>();
  for (int64_t ki = 0; ki < k; ++ki)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t ri = 0; ri < r; ++ri)
        for (int64_t si = 0; si < s; ++si)
          p[((ki * r + ri) * s + si) * c + ci] = static_cast<float>(rng.uniform(-bound, bound));
}

void init_conv_bias(Tensor& b, int64_t fan_in, uint64_t seed, uint64_t stream_id) {
  SEIS_CHECK(b.rank() == 1 && b.device().is_cpu() && b.dtype() == DType::f32, "init_conv_bias: f32 on the CPU");
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  Rng rng(seed, stream_id);
  for (int64_t i = 0; i < b.numel(); ++i) b.data<float>()[i] = static_cast<float>(rng.uniform(-bound, bound));
}

Tensor krsc_to_oihw(const Tensor& w) {
  SEIS_CHECK(w.rank() == 4 && w.dtype() == DType::f32, "krsc_to_oihw of " << shape_str(w.shape()));
  const Tensor h = w.to(Device::cpu());
  const int64_t k = h.dim(0), r = h.dim(1), s = h.dim(2), c = h.dim(3);
  Tensor o = Tensor::empty({k, c, r, s});
  for (int64_t ki = 0; ki < k; ++ki)
    for (int64_t ri = 0; ri < r; ++ri)
      for (int64_t si = 0; si < s; ++si)
        for (int64_t ci = 0; ci < c; ++ci)
          o.data<float>()[((ki * c + ci) * r + ri) * s + si] = h.data<float>()[((ki * r + ri) * s + si) * c + ci];
  return o;
}

Tensor oihw_to_krsc(const Tensor& w) {
  SEIS_CHECK(w.rank() == 4 && w.dtype() == DType::f32, "oihw_to_krsc of " << shape_str(w.shape()));
  const Tensor h = w.to(Device::cpu());
  const int64_t k = h.dim(0), c = h.dim(1), r = h.dim(2), s = h.dim(3);
  Tensor o = Tensor::empty({k, r, s, c});
  for (int64_t ki = 0; ki < k; ++ki)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t ri = 0; ri < r; ++ri)
        for (int64_t si = 0; si < s; ++si)
          o.data<float>()[((ki * r + ri) * s + si) * c + ci] = h.data<float>()[((ki * c + ci) * r + ri) * s + si];
  return o;
}

}  // namespace seis
