// The direct 3x3 conv of the CPU backend: one image row of output from three staged input rows,
// with AVX2+FMA or AVX-512 and no column matrix.
//
// Why: im2col + sgemm copies each input value nine times into the column matrix, OpenBLAS then packs
// that matrix once more, and its kernels are built for wide matrices: at the UNet's top levels (8-16
// output channels, the largest images) the two copies and a GEMM 8 or 16 columns wide ran at 40-110
// GFLOP/s on two cores where a 1024^3 sgemm gives 110-120 per core. Here each input row is staged once
// (widened, masked, rounded, joined: kernels/cpu/conv2d.cpp), channel by channel ("planar"), and the
// kernel keeps a tile of pixels x output channels in registers: per tap and input channel, one
// vector load of pixels and a broadcast of each filter value.
//
// The row kernels live in two files compiled for their instruction sets
// (conv2d_direct_avx2.cpp: -mavx2 -mfma; conv2d_direct_avx512.cpp: -mavx512f -mfma), each its body
// (conv2d_direct_rows.h) inside a namespace of its own. Those files include nothing but this header,
// which defines no function, and the intrinsics: no inline function compiled there for AVX-512 can be
// picked by the linker for a caller elsewhere.
//
// Bits: each output is ((sum over r, then s, then c, of x * w, fused multiply-adds from +0) + bias),
// then ReLU: the same for both instruction sets, for any thread count; not the bits of the im2col
// path (OpenBLAS sums in its own order). Input rows above and below the image are skipped where
// im2col multiplies zeros, so with an Inf or NaN weight the first and last rows can stay finite
// where im2col gives NaN.
#pragma once
#include <cstdint>

namespace seis::cpu::direct {

enum class Isa { none, avx2, avx512 };

// Staged rows are round_up(width, kRowGroup) + 2 floats per channel (column j holds image column
// j - 1; columns 0, width + 1 and beyond hold zeros): the kernels read up to round_up(width, their
// vector width) + 1.
constexpr int64_t kRowGroup = 48;

// One output row: out[w * cout + k] (=) for w < width.
struct RowArgs {
  const float* rows[3];  // staged input rows of image rows h - 1, h, h + 1: [cin][stride]; null outside the image
  int64_t stride;        // floats per channel of a staged row
  int64_t cin;
  int64_t width;
  int64_t cout;        // a multiple of k_block(isa)
  const float* wpack;  // the filter as [cout / kb][3][3][cin][kb], kb = k_block(isa)
  const float* bias;   // [cout], or null
  int relu;            // 1: ReLU after the bias
  float* out;          // [width][cout], fp32
};

// The kernels (defined where CMakeLists.txt defines SEIS_CPU_DIRECT_CONV: x86-64).
namespace avx2 {
void conv3x3_row(const RowArgs& a);
}
namespace avx512 {
void conv3x3_row(const RowArgs& a);
}

// The kernel this CPU runs, or none (the im2col path): avx512 where the CPU has AVX-512F, avx2 where it
// has AVX2 and FMA. Read once: SEIS_CPU_CONV=im2col chooses the im2col path, and SEIS_SIMD caps it as
// it caps the engine's loops (baseline: im2col; avx2: at most avx2). set_isa overrides both.
Isa isa();
// For tests and benchmarks: from now on, `want`, or the widest this CPU has where that is narrower.
void set_isa(Isa want);
// Output channels per register block: 8 (avx512) or 4 (avx2).
int64_t k_block(Isa isa);
const char* isa_name(Isa isa);

}  // namespace seis::cpu::direct
