// Register layouts of the warp-level tensor-core instructions the halo kernels use, as the PTX ISA
// documents them ("Matrix fragments for mma.m16n8k16 with floating point type", "ldmatrix"), as
// __host__ __device__ index functions: the kernels use them to place data, the CPU emulator
// (tests/warp_emulator.h) uses them to run the kernels' per-tile algorithms, so that both agree on
// one written-down layout.
//
// lane = thread index in the warp; group = lane / 4 ("groupID"), quad = lane % 4
// ("threadID_in_group").
// - mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: D[16x8] = A[16x16] B[16x8] + C, fp32
//   accumulation. A: 4 registers of 2 bf16 (elements a0..a7), B: 2 registers (b0..b3), C and D: 4
//   floats (c0..c3). In a register the element with the lower index sits in the lower 16 bits.
// - ldmatrix.sync.aligned.m8n8.x4.shared.b16: four 8x8 matrices of b16; lanes 8j..8j+7 give the
//   shared addresses of the 8 rows (16 bytes each) of matrix j; register j of every lane receives
//   two elements of matrix j: row group, columns 2 quad and 2 quad + 1 (.trans: rows 2 quad and
//   2 quad + 1 of column group).
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

namespace seis::cuda::mma {

struct RowCol {
  int row, col;
};

SEIS_HD constexpr int group(int lane) { return lane >> 2; }
SEIS_HD constexpr int quad(int lane) { return lane & 3; }

// A[16x16], element i in 0..7 of `lane`.
SEIS_HD constexpr RowCol a_element(int lane, int i) {
  return {group(lane) + ((i & 2) ? 8 : 0), quad(lane) * 2 + (i & 1) + ((i & 4) ? 8 : 0)};
}
// B[16x8] (row = k, col = n), element i in 0..3.
SEIS_HD constexpr RowCol b_element(int lane, int i) {
  return {quad(lane) * 2 + (i & 1) + ((i & 2) ? 8 : 0), group(lane)};
}
// C and D [16x8], element i in 0..3.
SEIS_HD constexpr RowCol c_element(int lane, int i) {
  return {group(lane) + ((i & 2) ? 8 : 0), quad(lane) * 2 + (i & 1)};
}

// ldmatrix .x4: the matrix and row whose address `lane` provides.
SEIS_HD constexpr int ldsm_matrix(int lane) { return lane >> 3; }
SEIS_HD constexpr int ldsm_row(int lane) { return lane & 7; }
// Element h (0: low half, 1: high half) of register j (= the matrix) of `lane`: its row and column
// in the 8x8 matrix.
SEIS_HD constexpr RowCol ldsm_element(int lane, int h, bool trans) {
  return trans ? RowCol{quad(lane) * 2 + h, group(lane)} : RowCol{group(lane), quad(lane) * 2 + h};
}

// Two bf16 packed into one 32-bit register, lo in the lower half.
SEIS_HD inline uint32_t pack(bf16 lo, bf16 hi) {
  return static_cast<uint32_t>(lo.bits) | (static_cast<uint32_t>(hi.bits) << 16);
}
SEIS_HD inline bf16 unpack(uint32_t r, int h) { return bf16{static_cast<uint16_t>(h ? r >> 16 : r & 0xffffu)}; }

}  // namespace seis::cuda::mma
