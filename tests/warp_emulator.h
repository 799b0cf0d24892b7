// A CPU emulator of one warp's tensor-core instructions, as the PTX ISA specifies them
// (kernels/cuda/mma_layout.h holds the layouts): ldmatrix.x4 (with and without .trans) from a byte
// array standing for shared memory, and mma.sync m16n8k16 with bf16 operands and fp32 accumulation.
// Kernels' per-tile algorithms run on it, built from the same index functions as the kernels, and
// are checked against double-precision references before any GPU time is spent. ldmatrix checks
// alignment and bounds (an address bug throws) and counts bank-conflict wavefronts.
#pragma once
#include <array>
#include <cstdint>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/mma_layout.h"

namespace seis::test {

namespace mma = ::seis::cuda::mma;

using LaneAddrs = std::array<int64_t, 32>;  // byte offsets into shared memory, one per lane
using Regs4 = std::array<std::array<uint32_t, 4>, 32>;
using Regs2 = std::array<std::array<uint32_t, 2>, 32>;
using Acc4 = std::array<std::array<float, 4>, 32>;

struct WarpEmulator {
  int64_t wavefronts = 0;  // shared-memory wavefronts of all ldmatrix so far (4 per .x4 when conflict-free)

  // ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16
  Regs4 ldmatrix_x4(const std::vector<uint8_t>& smem, const LaneAddrs& addr, bool trans) {
    Regs4 out{};
    for (int j = 0; j < 4; ++j) {
      // Matrix j: rows from lanes 8j..8j+7, each 16 bytes, one wavefront per distinct 128-byte
      // line slot set: rows in the same 16-byte bank group of different lines conflict.
      std::array<std::set<int64_t>, 8> lines_per_group;
      for (int r = 0; r < 8; ++r) {
        const int64_t a = addr[8 * j + r];
        if (a < 0 || a % 16 != 0 || a + 16 > static_cast<int64_t>(smem.size())) {
          throw std::runtime_error("ldmatrix: lane " + std::to_string(8 * j + r) + " address " + std::to_string(a) +
                                   " is unaligned or outside " + std::to_string(smem.size()) + " bytes");
        }
        lines_per_group[(a / 16) % 8].insert(a / 128);
      }
      size_t worst = 1;
      for (const auto& s : lines_per_group) worst = std::max(worst, s.size());
      wavefronts += static_cast<int64_t>(worst);
      for (int lane = 0; lane < 32; ++lane) {
        uint16_t h[2];
        for (int half = 0; half < 2; ++half) {
          const mma::RowCol rc = mma::ldsm_element(lane, half, trans);
          std::memcpy(&h[half], smem.data() + addr[8 * j + rc.row] + 2 * rc.col, 2);
        }
        out[lane][j] = mma::pack(bf16{h[0]}, bf16{h[1]});
      }
    }
    return out;
  }

  // mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: d = a b + c, products exact, sums in double
  // and rounded once (the hardware's internal order is unspecified; references allow for fp32 sums).
  static void mma_m16n8k16(const Regs4& a, const std::array<uint32_t, 2>* b, Acc4& c) {
    double A[16][16], B[16][8];
    for (int lane = 0; lane < 32; ++lane) {
      for (int i = 0; i < 8; ++i) {
        const mma::RowCol rc = mma::a_element(lane, i);
        A[rc.row][rc.col] = to_float(mma::unpack(a[lane][i / 2], i % 2));
      }
      for (int i = 0; i < 4; ++i) {
        const mma::RowCol rc = mma::b_element(lane, i);
        B[rc.row][rc.col] = to_float(mma::unpack(b[lane][i / 2], i % 2));
      }
    }
    Acc4 d{};
    for (int lane = 0; lane < 32; ++lane) {
      for (int i = 0; i < 4; ++i) {
        const mma::RowCol rc = mma::c_element(lane, i);
        double s = c[lane][i];
        for (int k = 0; k < 16; ++k) s += A[rc.row][k] * B[k][rc.col];
        d[lane][i] = static_cast<float>(s);
      }
    }
    c = d;
  }
};

}  // namespace seis::test
