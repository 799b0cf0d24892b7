// Seeded initialisation following PyTorch's default for conv layers: kaiming_uniform_(a = sqrt(5))
// for the weight and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias. Both bounds reduce to
// 1/sqrt(fan_in), fan_in = C*R*S. Values are drawn in OIHW order from the stream (seed, stream_id).
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace seis {

// Fills a KRSC weight [K,R,S,C] on the CPU, drawing in OIHW order so that the values do not depend
// on the internal layout.
void init_conv_weight(Tensor& w_krsc, uint64_t seed, uint64_t stream_id);
void init_conv_bias(Tensor& b, int64_t fan_in, uint64_t seed, uint64_t stream_id);

// Layout conversions between the engine's KRSC and PyTorch's OIHW (= KCRS), CPU f32.
Tensor krsc_to_oihw(const Tensor& w);
Tensor oihw_to_krsc(const Tensor& w);

}  // namespace seis
