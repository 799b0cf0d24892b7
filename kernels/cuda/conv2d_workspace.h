// The scratch of the CUDA conv launchers (kernels/conv2d.h) and the backward-weight split-K
// partition that sizes it, as host code: kernels/cuda/conv2d.cu cuts its workspace with these
// functions, and the engine sizes the workspace it passes in with them, on any machine (a memory plan
// for a GPU is made without one). Plain C++: no CUDA headers.
//
// Workspace per pass (each piece 256-byte aligned):
// - forward: none;
// - backward_data: the flipped, channel-transposed filter, K*R*R*C floats;
// - backward_weight, direct kernel (K <= 8, R*R*C <= 16): per-block partials [blocks, K*RRC + K] and
//   their sums [K*RRC + K];
// - backward_weight, implicit GEMM: with more than one split, partials [splits, K*RRC + K].
// With bf16 activations the GEMMs' fp32 copies come first (kernels/conv2d.h: widen, run, round;
// the direct kernels read and write bf16 and need only their fp32 pieces):
// - forward: x [P, C] and y [P, K] in fp32;
// - backward_data: dy masked by (y_relu > 0) [P, K] and dx [P, C] in fp32, then the fp32 pieces;
// - backward_weight: x [P, C] and masked dy [P, K] in fp32, then the fp32 pieces; at least the halo
//   backward-weight's partials (halo_wgrad::partial_floats) where that kernel supports the shape,
//   and the deep backward-weight's partials and masked dy (deep_wgrad::workspace_bytes);
// - forward, bf16: at least the deep conv's bf16 filter (deep::filter_bytes) where that kernel
//   supports the shape; backward_data, bf16: at least its flipped filter and masked dy.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "kernels/conv2d.h"
#include "kernels/cuda/conv_impl.h"
#include "kernels/cuda/deep_conv_layout.h"
#include "kernels/cuda/deep_wgrad_layout.h"
#include "kernels/cuda/halo_wgrad_layout.h"

namespace seis::cuda {

namespace conv_layout {

constexpr int kBK = 32;             // k-tile of the GEMMs; backward-weight tiles are kBK pixels of one row
constexpr int kBlockThreads = 256;  // 8 warps
constexpr int kWgK = 8, kWgE = 16;  // the direct backward-weight kernel: K <= kWgK, R*R*C <= kWgE
constexpr int64_t kWgradDirectBlocks = 1024;
constexpr int64_t kWgradTargetBlocks = 1024;  // split-K aims at this many blocks on every GPU
constexpr int64_t kWgradMaxPartialFloats = int64_t{64} << 20;

inline int64_t rrc(const Conv2dShape& s) { return s.r * s.r * s.c; }

// Which kernel a pass runs. Few channels take direct FFMA kernels, which compute in exact fp32
// whatever the ConvMath; the rest take the tensor-core GEMMs, which round their operands to the
// ConvMath. The CPU twin (kernels/cpu/conv2d.cpp) asks the same questions to round where they do.
// A forward-form conv (forward, and backward_data as a conv of dy): rrc = R*R*Cin, nout = Cout.
inline bool forward_form_direct(int64_t rrc, int64_t nout) {
  return (rrc <= 16 || nout <= 4) && (nout * rrc + nout) * 4 <= 32 * 1024;
}
inline bool wgrad_direct(const Conv2dShape& s) { return s.k <= kWgK && rrc(s) <= kWgE; }
inline bool runs_direct(const Conv2dShape& s, ConvPass pass) {
  switch (pass) {
    case ConvPass::forward:
      return forward_form_direct(rrc(s), s.k);
    case ConvPass::backward_data:
      return forward_form_direct(s.r * s.r * s.k, s.c);
    case ConvPass::backward_weight:
      return wgrad_direct(s);
  }
  return false;
}
inline bool rounds_operands(const Conv2dShape& s, ConvPass pass) { return !runs_direct(s, pass); }

inline int64_t wgrad_direct_blocks(const Conv2dShape& s) {
  return std::min<int64_t>(kWgradDirectBlocks, (s.pixels() + kBlockThreads - 1) / kBlockThreads);
}

// The backward-weight GEMM tile: M = K_out rows, N = R*R*C columns.
struct WgradTile {
  int bm, bn;
};
inline WgradTile wgrad_tile(const Conv2dShape& s) { return s.k <= 32 ? WgradTile{32, 128} : WgradTile{128, 64}; }

// Split-K over pixel tiles: a fixed number of blocks (not the device's SM count), at least 8 pixel
// tiles per split and a bounded partial buffer, so the partition and the sum order depend on the
// shape only.
struct WgradSplit {
  int64_t mn_blocks = 0;        // output tiles
  int64_t wtiles = 0;           // pixel tiles per image row
  int64_t tiles = 0;            // pixel tiles in all
  int64_t tiles_per_split = 0;  // consecutive pixel tiles per split
  int64_t splits = 0;
};
inline WgradSplit wgrad_split(const Conv2dShape& s) {
  const WgradTile t = wgrad_tile(s);
  WgradSplit p;
  p.mn_blocks = ((s.k + t.bm - 1) / t.bm) * ((rrc(s) + t.bn - 1) / t.bn);
  p.wtiles = (s.w + kBK - 1) / kBK;
  p.tiles = s.n * s.h * p.wtiles;
  int64_t splits = (kWgradTargetBlocks + p.mn_blocks - 1) / p.mn_blocks;
  splits = std::min(splits, (p.tiles + 7) / 8);
  splits = std::min(splits, kWgradMaxPartialFloats / (s.k * rrc(s)));
  splits = std::max<int64_t>(1, std::min<int64_t>(splits, 65535));
  p.tiles_per_split = std::max<int64_t>(1, (p.tiles + splits - 1) / splits);
  p.splits = (p.tiles + p.tiles_per_split - 1) / p.tiles_per_split;
  return p;
}

// Cuts a workspace into 256-byte aligned pieces, or only measures them when base is null.
class Carver {
 public:
  explicit Carver(void* base) : base_(static_cast<char*>(base)) {}
  float* floats(int64_t n) {
    float* p = base_ != nullptr && n > 0 ? reinterpret_cast<float*>(base_ + used_) : nullptr;
    used_ += (n * 4 + 255) / 256 * 256;
    return p;
  }
  int64_t used() const { return used_; }

 private:
  char* base_;
  int64_t used_ = 0;
};

// The fp32 copies of bf16 activations for the GEMMs; null in the fp32 forms and where a direct
// kernel takes the pass (it reads and writes bf16 itself).
struct WideScratch {
  float* in = nullptr;   // forward: x; backward_data: masked dy; backward_weight: x
  float* out = nullptr;  // forward: y; backward_data: dx; backward_weight: masked dy
};
inline WideScratch carve_wide(const Conv2dShape& s, ConvPass pass, bool bf16, Carver& ws) {
  WideScratch w;
  if (!bf16 || s.pixels() == 0 || runs_direct(s, pass)) return w;
  const int64_t px = s.pixels();
  switch (pass) {
    case ConvPass::forward:
      w.in = ws.floats(px * s.c);
      w.out = ws.floats(px * s.k);
      break;
    case ConvPass::backward_data:
      w.in = ws.floats(px * s.k);
      w.out = ws.floats(px * s.c);
      break;
    case ConvPass::backward_weight:
      w.in = ws.floats(px * s.c);
      w.out = ws.floats(px * s.k);
      break;
  }
  return w;
}

struct BackwardDataScratch {
  float* wt = nullptr;
};
inline BackwardDataScratch carve_backward_data(const Conv2dShape& s, Carver& ws) {
  BackwardDataScratch b;
  if (s.pixels() > 0) b.wt = ws.floats(s.weight_numel());
  return b;
}

struct BackwardWeightScratch {
  float* part = nullptr;  // partials: [blocks or splits, K*RRC + K]
  float* sums = nullptr;  // the direct kernel's summed row
};
inline BackwardWeightScratch carve_backward_weight(const Conv2dShape& s, Carver& ws) {
  BackwardWeightScratch b;
  if (s.pixels() == 0) return b;
  const int64_t out_n = s.weight_numel() + s.k;
  if (wgrad_direct(s)) {
    b.part = ws.floats(wgrad_direct_blocks(s) * out_n);
    b.sums = ws.floats(out_n);
  } else {
    const WgradSplit p = wgrad_split(s);
    if (p.splits > 1) b.part = ws.floats(p.splits * out_n);
  }
  return b;
}

}  // namespace conv_layout

// SEIS_CONV_IMPL lists "halo" (conv_impl.h; read once): the halo kernels run where they apply.
inline bool halo_conv_listed() {
  static const bool on = conv_impl_lists(std::getenv("SEIS_CONV_IMPL"), "halo");
  return on;
}

// Whether the halo kernels take this pass of a conv on bf16 storage (conv2d.cu's dispatch asks the
// same): listed, bf16 operands, 3x3 with channels they instantiate (backward-data: the conv of dy).
inline bool halo_takes(const Conv2dShape& s, ConvPass pass, ConvMath math) {
  if (!halo_conv_listed() || math != ConvMath::bf16) return false;
  switch (pass) {
    case ConvPass::forward:
      return halo::supports(s.c, s.k, s.r);
    case ConvPass::backward_data:
      return halo::supports(s.k, s.c, s.r);
    case ConvPass::backward_weight:
      return halo_wgrad::supports(s.c, s.k, s.r);
  }
  return false;
}

inline int64_t conv2d_workspace_bytes(const Conv2dShape& s, ConvPass pass, bool bf16) {
  conv_layout::Carver measure(nullptr);
  conv_layout::carve_wide(s, pass, bf16, measure);
  if (pass == ConvPass::backward_data) conv_layout::carve_backward_data(s, measure);
  if (pass == ConvPass::backward_weight) conv_layout::carve_backward_weight(s, measure);
  // The halo backward-weight (SEIS_CONV_IMPL=halo) needs only its partials, the deep one
  // (SEIS_CONV_IMPL=deep_wgrad) its partials and the masked dy: the largest of the three.
  if (pass == ConvPass::backward_weight && bf16) {
    return std::max({measure.used(), halo_wgrad::partial_floats(s.n, s.h, s.w, s.c, s.k) * 4,
                     deep_wgrad::workspace_bytes(s.pixels(), s.c, s.k)});
  }
  // The deep forward (SEIS_CONV_IMPL=deep) needs only its bf16 filter.
  if (pass == ConvPass::forward && bf16 && s.pixels() > 0 && deep::supports(s.c, s.k, s.r)) {
    return std::max(measure.used(), deep::filter_bytes(s.c, s.k));
  }
  // The deep backward-data: its flipped bf16 filter and the masked dy.
  if (pass == ConvPass::backward_data && bf16 && s.pixels() > 0 && deep::supports(s.k, s.c, s.r)) {
    return std::max(measure.used(), deep::backward_data_bytes(s.pixels(), s.c, s.k));
  }
  return measure.used();
}

// The workspace a bf16-storage pass needs with the kernel that takes it: where the halo kernels do,
// only the backward-weight's partials (they read and write bf16 themselves); otherwise
// conv2d_workspace_bytes(s, pass, true), which the widening path needs.
inline int64_t conv2d_workspace_bytes(const Conv2dShape& s, ConvPass pass, bool bf16, ConvMath math) {
  if (!bf16 || !halo_takes(s, pass, math)) return conv2d_workspace_bytes(s, pass, bf16);
  return pass == ConvPass::backward_weight ? halo_wgrad::partial_floats(s.n, s.h, s.w, s.c, s.k) * 4 : 0;
}

// Whether the CUDA conv reads a joined input (ConvJoin; cb: a concat's second part) in place: only
// the halo kernels do, so only on bf16 storage where they take all three passes of the shape and
// their staging reads the join (halo::joined_supported). Elsewhere the engine materialises it.
inline bool conv2d_joins_in_place(const Conv2dShape& s, ConvMath math, bool bf16, ConvJoin join, int64_t cb) {
  return join != ConvJoin::none && bf16 && halo_takes(s, ConvPass::forward, math) &&
         halo_takes(s, ConvPass::backward_data, math) && halo_takes(s, ConvPass::backward_weight, math) &&
         halo::joined_supported(join, s.c, s.c - cb, s.h, s.w);
}

// Whether the CUDA forward pools its output in the epilogue (conv2d_forward_pooled, kernels/conv2d.h:
// the encoder's second conv and its 2x2 maxpool in one kernel): on bf16 storage where the halo
// forward takes the conv and instantiates the pool epilogue (halo::supports_pooled: C = K). Elsewhere
// the engine runs the maxpool kernel after the conv.
inline bool conv2d_pools_in_epilogue(const Conv2dShape& s, ConvMath math, bool bf16) {
  return bf16 && halo_takes(s, ConvPass::forward, math) && halo::supports_pooled(s.c, s.k, s.r);
}

// The workspace of a joined pass (conv2d_joins_in_place): the halo backward-weight's partials,
// nothing else (the backward-data of an upsampled input sums its 2x2 quads in the epilogue).
inline int64_t conv2d_joined_workspace_bytes(const Conv2dShape& s, ConvPass pass, ConvJoin /*join*/) {
  return pass == ConvPass::backward_weight ? halo_wgrad::partial_floats(s.n, s.h, s.w, s.c, s.k) * 4 : 0;
}

}  // namespace seis::cuda
