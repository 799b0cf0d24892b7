// maxpool2d 2x2, stride 2, NHWC. Output [N, H/2, W/2, C] (floor, as PyTorch).
// forward writes y and argmax (=). argmax holds, in 2 bits, the winning position 0..3 (row * 2 + col
// within the window) of each output, the first maximum on ties: output k of output row r (k = j * C
// + c over the row's W/2 x C outputs; r = n * (H/2) + i) at byte r * maxpool2d_argmax_row_bytes(W, C)
// + k / 4, bits 2 (k % 4) and 2 (k % 4) + 1 (each row padded to whole bytes, so that rows are written
// apart). backward writes dx (=), zero where no output took its value, or with accumulate adds that
// into dx (+=: the sum in fp32, rounded once into the value type, the bits of add_inplace of that
// dx: the skip connection's gradient takes the pool's without a second full-size tensor).
// f32 or bf16 values (pooling and its backward only move values: no rounding unless accumulating).
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

struct CUstream_st;

namespace seis {

// Bytes of one output row of argmax, and of the whole argmax of an [n, h, w, c] input.
inline int64_t maxpool2d_argmax_row_bytes(int64_t w, int64_t c) { return ((w / 2) * c + 3) / 4; }
inline int64_t maxpool2d_argmax_bytes(int64_t n, int64_t h, int64_t w, int64_t c) {
  return n * (h / 2) * maxpool2d_argmax_row_bytes(w, c);
}

namespace cpu {
void maxpool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y, uint8_t* argmax);
void maxpool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, const uint8_t* argmax, float* dx,
                        bool accumulate);
void maxpool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* x, bf16* y, uint8_t* argmax);
void maxpool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* dy, const uint8_t* argmax, bf16* dx,
                        bool accumulate);
}  // namespace cpu
namespace cuda {
void maxpool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y, uint8_t* argmax,
                       CUstream_st* stream);
void maxpool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, const uint8_t* argmax, float* dx,
                        bool accumulate, CUstream_st* stream);
void maxpool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* x, bf16* y, uint8_t* argmax,
                       CUstream_st* stream);
void maxpool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* dy, const uint8_t* argmax, bf16* dx,
                        bool accumulate, CUstream_st* stream);
}  // namespace cuda
}  // namespace seis
