// conv2d on the CPU: im2col + OpenBLAS sgemm, and for 3x3 forward and backward_data where the CPU
// has AVX2 with FMA or AVX-512, the direct kernel of kernels/cpu/conv2d_direct.h (below, "The direct
// path"; SEIS_CPU_CONV=im2col keeps im2col). What follows describes the im2col path.
// Layout: activations NHWC, weights KRSC. The column matrix has one row per output pixel and
// R*R*C columns in (r, s, c) order, the order of a KRSC weight row, so Y[P,K] = col[P,RRC] x W^T.
// forward writes y (=); backward_data writes dx (=); backward_weight writes dw and dbias (=).
//
// backward_data is the forward conv of dy with the flipped, channel-transposed filter
// (W'[c,r,s,k] = W[k,R-1-r,R-1-s,c]): the same gather as the forward instead of a col2im
// scatter-add, so it has no write races and needs no halo. The ReLU mask (y_relu > 0) is applied
// while dy is gathered into the column buffer.
//
// Precision (kernels/conv2d.h): activations f32 or bf16, widened while gathered; the column buffer
// and the GEMM are fp32. Where the CUDA kernels run a tensor-core GEMM
// (conv_layout::rounds_operands), the operands, weights included, are rounded to the ConvMath as
// they are gathered, and bf16 outputs are rounded once after bias and ReLU: the same rounding points.
// dbias sums the unrounded (masked) dy, as the CUDA kernels do.
//
// Joined inputs (ConvJoin, kernels/conv2d.h): the gather reads [a | b] or the upsampled a pixel by
// pixel, and backward_data's chunk output is split by channel or summed 2x2 on its way out, so
// neither the concatenation, the upsampled tensor nor their full-size gradients ever exist.
//
// Parallelism: pixels are cut into chunks of whole image rows; the cut depends on the shape only.
// Each OpenMP thread takes whole chunks and runs a single-threaded sgemm on a column buffer small
// enough to stay in cache. OpenBLAS is therefore set to one thread (the Debian openblas-pthread
// build would otherwise start its own threads inside ours and oversubscribe the cores). Column
// buffers, rounded and transposed filters and dw partials are cut from the caller's workspace
// (conv2d_workspace_bytes), so that a memory plan counts them.
// Determinism: every output element of forward/backward_data is one sgemm dot product; dw is a sum
// of a fixed number of block partials (chunks in order within a block, blocks in order). OpenBLAS
// picks its kernels by CPU, so the im2col path's bits may differ from one CPU model to another.
#include "kernels/conv2d.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/conv2d_direct.h"
#include "kernels/cuda/conv2d_workspace.h"

namespace seis::cpu {
namespace {

constexpr int64_t kChunkBytes = int64_t{1} << 20;  // column buffer per thread
// backward_weight's column buffer: its sgemm (8-64 rows of dW) packs the whole buffer, and ran at
// 51-55 GFLOP/s from 576 KiB up against 94-114 up to 288 KiB (one core of the AVX-512 build machine,
// 8 channels; 85-101 against 106-110 at 32).
constexpr int64_t kWeightChunkBytes = int64_t{256} << 10;
constexpr int64_t kMinChunks = 8;     // so that small layers still split across threads
constexpr int64_t kWeightBlocks = 8;  // dw partial sums, combined in order
constexpr int64_t kWeightPartialBytes = int64_t{64} << 20;

void use_single_threaded_blas() {
  static const bool done = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
}

struct Chunking {
  int64_t rows_per_chunk = 1;  // image rows (n, h) per chunk
  int64_t num_chunks = 0;
};

// even: chunks of an even number of rows, so that a chunk holds whole 2x2 blocks of an image of even
// height (the upsampled join's backward_data).
Chunking make_chunking(int64_t rows, int64_t width, int64_t floats_per_pixel, bool even = false,
                       int64_t chunk_bytes = kChunkBytes) {
  const int64_t row_bytes = std::max<int64_t>(1, width * floats_per_pixel * int64_t{sizeof(float)});
  int64_t per = std::max<int64_t>(1, chunk_bytes / row_bytes);
  per = std::min(per, std::max<int64_t>(1, (rows + kMinChunks - 1) / kMinChunks));
  if (even) per += per % 2;
  return {per, (rows + per - 1) / per};
}

// dst[i] = src[i], or src[i] where mask[i] > 0 and 0 elsewhere, widened to float and rounded to
// `math` (f32: unchanged). Runs are short (R*C values): the plain fp32 copy goes in fixed 8-float
// blocks that compile to vector moves (a memcpy call per run costs more than the copy).
template <typename T>
inline void copy_run(float* dst, const T* src, const T* mask, int64_t len, ConvMath math) {
  int64_t i = 0;
  if constexpr (std::is_same_v<T, float>) {
    if (mask == nullptr && math == ConvMath::f32) {
      for (; i + 8 <= len; i += 8) std::memcpy(dst + i, src + i, 8 * sizeof(float));
      for (; i < len; ++i) dst[i] = src[i];
      return;
    }
  }
  for (; i < len; ++i) {
    const float v = to_float(src[i]);  // unconditional load: lets the compiler vectorise the select
    const float m = mask == nullptr || to_float(mask[i]) > 0.0f ? v : 0.0f;
    dst[i] = math == ConvMath::f32 ? m : round_operand(math, m);
  }
}

// Carves aligned pieces out of a workspace, or only measures them when base is null.
class Carver {
 public:
  explicit Carver(void* base) : base_(static_cast<char*>(base)) {}
  template <typename T>
  T* take(int64_t count) {
    T* p = base_ != nullptr ? reinterpret_cast<T*>(base_ + used_) : nullptr;
    used_ += (count * int64_t{sizeof(T)} + 63) / 64 * 64;
    return p;
  }
  int64_t used() const { return used_; }

 private:
  char* base_;
  int64_t used_ = 0;
};

int64_t max_threads() { return std::max(1, omp_get_max_threads()); }

// Geometry of a "same" stride-1 convolution, channels cin -> cout.
struct Geometry {
  int64_t h, w, cin, cout, r;
  int64_t pad() const { return r / 2; }
  int64_t rrc() const { return r * r * cin; }
};

// Gathers the r x r x cin neighbourhood of every pixel of image rows [row0, row1) (row = n*H + h)
// into col, one row of rrc floats per pixel, zero outside the image. mask may be null.
template <typename T>
void im2col(const Geometry& g, const T* src, const T* mask, int64_t row0, int64_t row1, float* col, ConvMath math) {
  const int64_t pad = g.pad(), rrc = g.rrc(), run = g.r * g.cin;  // run: one filter row (s, c)
  for (int64_t row = row0; row < row1; ++row) {
    const int64_t n = row / g.h, h = row % g.h;
    float* col_row = col + (row - row0) * g.w * rrc;
    for (int64_t r = 0; r < g.r; ++r) {
      const int64_t hh = h + r - pad;
      if (hh < 0 || hh >= g.h) {
        for (int64_t w = 0; w < g.w; ++w) std::memset(col_row + w * rrc + r * run, 0, run * sizeof(float));
        continue;
      }
      const int64_t in_row = (n * g.h + hh) * g.w * g.cin;  // offset of pixel (n, hh, 0)
      const T* s_row = src + in_row;
      const T* m_row = mask ? mask + in_row : nullptr;
      // Interior pixels: the (s, c) run is contiguous in NHWC.
      const int64_t w_lo = std::min(pad, g.w), w_hi = std::max(w_lo, g.w - pad);
      for (int64_t w = w_lo; w < w_hi; ++w) {
        const int64_t off = (w - pad) * g.cin;
        copy_run(col_row + w * rrc + r * run, s_row + off, m_row ? m_row + off : nullptr, run, math);
      }
      // Border pixels: element by element in s.
      for (int64_t w = 0; w < g.w; ++w) {
        if (w >= w_lo && w < w_hi) continue;
        for (int64_t s = 0; s < g.r; ++s) {
          float* dst = col_row + w * rrc + r * run + s * g.cin;
          const int64_t ww = w + s - pad;
          if (ww < 0 || ww >= g.w) {
            std::memset(dst, 0, g.cin * sizeof(float));
          } else {
            const int64_t off = ww * g.cin;
            copy_run(dst, s_row + off, m_row ? m_row + off : nullptr, g.cin, math);
          }
        }
      }
    }
  }
}

// im2col of a joined input (ConvJoin concat or upsampled), pixel by pixel: each pixel's channels
// come from a then b (concat), or from the pixel (h / 2, w / 2) of a (upsampled). The same values as
// im2col of the materialised input.
template <typename T>
void im2col_joined(const Geometry& g, const ConvJoined<const T>& x, int64_t row0, int64_t row1, float* col,
                   ConvMath math) {
  const int64_t pad = g.pad(), rrc = g.rrc(), cb = x.join == ConvJoin::concat ? x.cb : 0, ca = g.cin - cb;
  const bool up = x.join == ConvJoin::upsampled;
  const int64_t lh = g.h / 2, lw = g.w / 2;  // upsampled: a's height and width
  const T* const no_mask = nullptr;
  for (int64_t row = row0; row < row1; ++row) {
    const int64_t n = row / g.h, h = row % g.h;
    float* col_row = col + (row - row0) * g.w * rrc;
    for (int64_t r = 0; r < g.r; ++r) {
      const int64_t hh = h + r - pad;
      float* dst_r = col_row + r * g.r * g.cin;
      if (hh < 0 || hh >= g.h) {
        for (int64_t w = 0; w < g.w; ++w) std::memset(dst_r + w * rrc, 0, g.r * g.cin * sizeof(float));
        continue;
      }
      // The source row(s) of image row hh.
      const T* ra = up ? x.a + (n * lh + hh / 2) * lw * g.cin : x.a + (n * g.h + hh) * g.w * ca;
      const T* rb = up ? nullptr : x.b + (n * g.h + hh) * g.w * cb;
      for (int64_t w = 0; w < g.w; ++w) {
        float* dst = dst_r + w * rrc;
        for (int64_t q = 0; q < g.r; ++q, dst += g.cin) {
          const int64_t ww = w + q - pad;
          if (ww < 0 || ww >= g.w) {
            std::memset(dst, 0, g.cin * sizeof(float));
          } else if (up) {
            copy_run(dst, ra + (ww / 2) * g.cin, no_mask, g.cin, math);
          } else {
            copy_run(dst, ra + ww * ca, no_mask, ca, math);
            copy_run(dst + ca, rb + ww * cb, no_mask, cb, math);
          }
        }
      }
    }
  }
}

// The column rows of an input, joined or not.
template <typename T>
void gather_rows(const Geometry& g, const ConvJoined<const T>& x, const T* mask, int64_t row0, int64_t row1, float* col,
                 ConvMath math) {
  if (x.join == ConvJoin::none) {
    im2col(g, x.a, mask, row0, row1, col, math);
  } else {
    im2col_joined(g, x, row0, row1, col, math);  // (never masked: only backward_data masks, its dy)
  }
}

// Writes a chunk's fp32 output y [rows row0..row1 of the image, cout] to a joined destination: a
// then b by channel (concat), or the 2x2 sums into a at half resolution (upsampled; the chunk holds
// whole 2x2 blocks).
template <typename T>
void store_joined(const Geometry& g, float* y, int64_t row0, int64_t row1, const ConvJoined<T>& dst) {
  const int64_t np = (row1 - row0) * g.w;
  if (dst.join == ConvJoin::concat) {
    const int64_t cb = dst.cb, ca = g.cout - cb, p0 = row0 * g.w;
    for (int64_t p = 0; p < np; ++p) {
      for (int64_t c = 0; c < ca; ++c) store(dst.a + (p0 + p) * ca + c, y[p * g.cout + c]);
      for (int64_t c = 0; c < cb; ++c) store(dst.b + (p0 + p) * cb + c, y[p * g.cout + ca + c]);
    }
    return;
  }
  // As upsample2x_backward of the materialised gradient: each value rounded to T first.
  if constexpr (!std::is_same_v<T, float>) {
    for (int64_t i = 0; i < np * g.cout; ++i) y[i] = round_bf16(y[i]);
  }
  const int64_t lw = g.w / 2, c = g.cout;
  for (int64_t row = row0; row < row1; row += 2) {
    const int64_t n = row / g.h, lrow = n * (g.h / 2) + (row % g.h) / 2;
    const float* d0 = y + (row - row0) * g.w * c;
    const float* d1 = d0 + g.w * c;
    T* out = dst.a + lrow * lw * c;
    for (int64_t j = 0; j < lw; ++j) {
      const int64_t a = 2 * j * c, b = (2 * j + 1) * c;
      for (int64_t ch = 0; ch < c; ++ch) store(out + j * c + ch, d0[a + ch] + d0[b + ch] + d1[a + ch] + d1[b + ch]);
    }
  }
}

// Stores a chunk's fp32 output y (rows row0..row1, cout channels) to dst: joined, rounded to bf16, or
// nothing to do when y is dst's own fp32 rows.
template <typename T>
void store_chunk(const Geometry& g, float* y, int64_t row0, int64_t row1, const ConvJoined<T>& dst) {
  if (dst.join != ConvJoin::none) {
    store_joined(g, y, row0, row1, dst);
  } else if constexpr (!std::is_same_v<T, float>) {
    const int64_t p0 = row0 * g.w, np = (row1 - row0) * g.w;
    for (int64_t i = 0; i < np * g.cout; ++i) dst.a[p0 * g.cout + i] = to_bf16(y[i]);
  }
}

// Per-thread buffers of conv_same: one chunk of im2col rows, and its fp32 output when the
// destination is bf16 or joined.
struct ConvBuffers {
  float* cols;
  float* outs;
};
ConvBuffers take_conv_buffers(Carver& ws, int64_t n, const Geometry& g, bool bf16, ConvJoin dst_join) {
  const Chunking ch = make_chunking(n * g.h, g.w, g.rrc(), dst_join == ConvJoin::upsampled);
  const int64_t T = max_threads(), rows = ch.rows_per_chunk * g.w;
  ConvBuffers b{};
  b.cols = ws.take<float>(T * rows * g.rrc());
  if (bf16 || dst_join != ConvJoin::none) b.outs = ws.take<float>(T * rows * g.cout);
  return b;
}

// dst[P, cout] (=) = conv(src [P, cin], weights [cout, r, r, cin]) (+ bias, then ReLU if relu),
// with src masked by (mask > 0) when mask is not null (src not joined) and rounded to `math` while
// gathered. The weights come rounded already. src and dst may be joined (ConvJoin).
template <typename T>
void conv_same(int64_t n, const Geometry& g, const ConvJoined<const T>& src, const T* mask, const float* weights,
               const float* bias, bool relu, const ConvJoined<T>& dst, const ConvBuffers& buf, ConvMath math) {
  use_single_threaded_blas();
  constexpr bool kWide = std::is_same_v<T, float>;
  const int64_t rows = n * g.h, rrc = g.rrc();
  // src itself is the column matrix of an unmasked, unrounded fp32 1x1 conv.
  const bool src_is_cols = kWide && g.r == 1 && mask == nullptr && math == ConvMath::f32 && src.join == ConvJoin::none;
  const bool plain_out = dst.join == ConvJoin::none;
  const Chunking ch = make_chunking(rows, g.w, rrc, dst.join == ConvJoin::upsampled);
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num();
    float* col = buf.cols + t * ch.rows_per_chunk * g.w * rrc;
#pragma omp for schedule(static)
    for (int64_t j = 0; j < ch.num_chunks; ++j) {
      const int64_t row0 = j * ch.rows_per_chunk, row1 = std::min(row0 + ch.rows_per_chunk, rows);
      const int64_t p0 = row0 * g.w, np = (row1 - row0) * g.w;
      const float* a = col;
      if (src_is_cols) {
        a = reinterpret_cast<const float*>(src.a) + p0 * g.cin;
      } else {
        gather_rows(g, src, mask, row0, row1, col, math);
      }
      float* y = kWide && plain_out ? reinterpret_cast<float*>(dst.a) + p0 * g.cout
                                    : buf.outs + t * ch.rows_per_chunk * g.w * g.cout;
      if (bias != nullptr) {
        for (int64_t p = 0; p < np; ++p) std::memcpy(y + p * g.cout, bias, g.cout * sizeof(float));
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(np), static_cast<int>(g.cout),
                  static_cast<int>(rrc), 1.0f, a, static_cast<int>(rrc), weights, static_cast<int>(rrc),
                  bias != nullptr ? 1.0f : 0.0f, y, static_cast<int>(g.cout));
      if (relu) {
        for (int64_t i = 0; i < np * g.cout; ++i) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
      }
      store_chunk(g, y, row0, row1, dst);
    }
  }
}

// ---- The direct path (kernels/cpu/conv2d_direct.h) ----

// Floats per channel of a staged row.
int64_t staged_stride(int64_t width) {
  return (width + direct::kRowGroup - 1) / direct::kRowGroup * direct::kRowGroup + 2;
}

// Whether a conv of geometry g runs the direct kernel of `isa`: 3x3 and output channels in eights
// (whole register blocks of both kernels, so that a conv takes the same path on AVX2 and AVX-512
// CPUs). On the 2-core build machine with AVX-512 it was faster than im2col + sgemm at every 3x3
// conv of the 5-level UNet at 256x256, 8 to 128 output channels (benchmarks/results/README.md).
bool runs_direct(const Geometry& g, direct::Isa isa) {
  return isa != direct::Isa::none && g.r == 3 && g.cout % 8 == 0 && g.w > 0;
}

// Stages image row `row` (= n * H + h) of the conv input as [cin][stride] floats, channel by
// channel: column j holds image column j - 1, the others zero. The values are im2col's: widened,
// masked by (mask > 0) when mask is not null (src not joined), rounded to `math`, joined parts read
// where they lie.
template <typename T>
void stage_row(const Geometry& g, const ConvJoined<const T>& x, const T* mask, int64_t row, int64_t stride, float* out,
               ConvMath math) {
  const int64_t W = g.w, C = g.cin;
  for (int64_t c = 0; c < C; ++c) {
    float* o = out + c * stride;
    o[0] = 0.0f;
    std::fill(o + 1 + W, o + stride, 0.0f);
  }
  auto put = [&](int64_t w, int64_t c, float v) {
    out[c * stride + 1 + w] = math == ConvMath::f32 ? v : round_operand(math, v);
  };
  if (x.join == ConvJoin::none) {
    const T* src = x.a + row * W * C;
    const T* m = mask != nullptr ? mask + row * W * C : nullptr;
    for (int64_t w = 0; w < W; ++w)
      for (int64_t c = 0; c < C; ++c) {
        const float v = to_float(src[w * C + c]);
        put(w, c, m == nullptr || to_float(m[w * C + c]) > 0.0f ? v : 0.0f);
      }
  } else if (x.join == ConvJoin::concat) {
    const int64_t cb = x.cb, ca = C - cb;
    const T* ra = x.a + row * W * ca;
    const T* rb = x.b + row * W * cb;
    for (int64_t w = 0; w < W; ++w) {
      for (int64_t c = 0; c < ca; ++c) put(w, c, to_float(ra[w * ca + c]));
      for (int64_t c = 0; c < cb; ++c) put(w, ca + c, to_float(rb[w * cb + c]));
    }
  } else {  // upsampled: a is [N, H/2, W/2, C]
    const int64_t n = row / g.h, h = row % g.h;
    const T* ra = x.a + (n * (g.h / 2) + h / 2) * (W / 2) * C;
    for (int64_t w = 0; w < W; ++w)
      for (int64_t c = 0; c < C; ++c) put(w, c, to_float(ra[(w / 2) * C + c]));
  }
}

// The filter of a direct conv as [cout / kb][3][3][cin][kb], rounded to `math`, from
// at(k, r, s, c), the weight of output channel k, tap (r, s), input channel c.
template <typename At>
void pack_filter(const Geometry& g, int64_t kb, ConvMath math, float* wpack, At at) {
  for (int64_t b = 0; b < g.cout / kb; ++b)
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t q = 0; q < 3; ++q)
        for (int64_t c = 0; c < g.cin; ++c)
          for (int64_t j = 0; j < kb; ++j)
            wpack[(((b * 3 + r) * 3 + q) * g.cin + c) * kb + j] = round_operand(math, at(b * kb + j, r, q, c));
}

void direct_row(direct::Isa isa, const direct::RowArgs& a) {
#if defined(SEIS_CPU_DIRECT_CONV)
  if (isa == direct::Isa::avx512) {
    direct::avx512::conv3x3_row(a);
    return;
  }
  direct::avx2::conv3x3_row(a);
#else
  (void)isa;
  (void)a;
#endif
}

// Per-thread buffers of conv_direct: one chunk's staged rows (and the two beside it), and its fp32
// output when the destination is bf16 or joined.
struct DirectBuffers {
  float* staged;
  float* outs;
};
Chunking direct_chunking(int64_t n, const Geometry& g, ConvJoin dst_join) {
  return make_chunking(n * g.h, 1, g.cin * staged_stride(g.w) + g.w * g.cout, dst_join == ConvJoin::upsampled);
}
DirectBuffers take_direct_buffers(Carver& ws, int64_t n, const Geometry& g, bool bf16, ConvJoin dst_join) {
  const Chunking ch = direct_chunking(n, g, dst_join);
  const int64_t T = max_threads();
  DirectBuffers b{};
  b.staged = ws.take<float>(T * (ch.rows_per_chunk + 2) * g.cin * staged_stride(g.w));
  if (bf16 || dst_join != ConvJoin::none) b.outs = ws.take<float>(T * ch.rows_per_chunk * g.w * g.cout);
  return b;
}

// conv_same's contract, computed by the direct kernel: wpack is the packed, rounded filter
// (pack_filter with k_block(isa)).
template <typename T>
void conv_direct(int64_t n, const Geometry& g, const ConvJoined<const T>& src, const T* mask, const float* wpack,
                 const float* bias, bool relu, const ConvJoined<T>& dst, const DirectBuffers& buf, ConvMath math,
                 direct::Isa isa) {
  constexpr bool kWide = std::is_same_v<T, float>;
  const int64_t rows = n * g.h, stride = staged_stride(g.w), row_floats = g.cin * stride;
  const bool plain_out = dst.join == ConvJoin::none;
  const Chunking ch = direct_chunking(n, g, dst.join);
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num();
    float* staged = buf.staged + t * (ch.rows_per_chunk + 2) * row_floats;
    float* outs = kWide && plain_out ? nullptr : buf.outs + t * ch.rows_per_chunk * g.w * g.cout;
#pragma omp for schedule(static)
    for (int64_t j = 0; j < ch.num_chunks; ++j) {
      const int64_t row0 = j * ch.rows_per_chunk, row1 = std::min(row0 + ch.rows_per_chunk, rows);
      // staged + i * row_floats holds row row0 - 1 + i
      for (int64_t i = 0; i < row1 - row0 + 2; ++i) {
        const int64_t row = row0 - 1 + i;
        if (row >= 0 && row < rows) stage_row(g, src, mask, row, stride, staged + i * row_floats, math);
      }
      for (int64_t row = row0; row < row1; ++row) {
        const int64_t h = row % g.h;
        const float* mid = staged + (row - row0 + 1) * row_floats;
        direct::RowArgs a{};
        a.rows[0] = h > 0 ? mid - row_floats : nullptr;
        a.rows[1] = mid;
        a.rows[2] = h + 1 < g.h ? mid + row_floats : nullptr;
        a.stride = stride;
        a.cin = g.cin;
        a.width = g.w;
        a.cout = g.cout;
        a.wpack = wpack;
        a.bias = bias;
        a.relu = relu ? 1 : 0;
        a.out =
            outs == nullptr ? reinterpret_cast<float*>(dst.a) + row * g.w * g.cout : outs + (row - row0) * g.w * g.cout;
        direct_row(isa, a);
      }
      if (outs != nullptr) store_chunk(g, outs, row0, row1, dst);
    }
  }
}

// The ConvMath a pass rounds to: the call's, where the CUDA kernels round at all.
ConvMath rounding(const Conv2dShape& s, ConvPass pass, ConvMath math) {
  return cuda::conv_layout::rounds_operands(s, pass) ? math : ConvMath::f32;
}

// The pieces of each pass's workspace, in order; with a null base only their sizes are summed.
// A pass's workspace holds the pieces of the path it runs (direct or im2col);
// conv2d_workspace_bytes gives the larger of the two, so that either fits.
struct ForwardScratch {
  float* w;  // the filter rounded to the ConvMath (direct: packed)
  ConvBuffers conv;
  DirectBuffers direct;
};
ForwardScratch carve_forward(const Conv2dShape& s, bool bf16, bool direct, Carver& ws) {
  ForwardScratch f{};
  const Geometry g{s.h, s.w, s.c, s.k, s.r};
  f.w = ws.take<float>(s.weight_numel());
  if (direct) {
    f.direct = take_direct_buffers(ws, s.n, g, bf16, ConvJoin::none);
  } else {
    f.conv = take_conv_buffers(ws, s.n, g, bf16, ConvJoin::none);
  }
  return f;
}

struct BackwardDataScratch {
  float* wt;  // the flipped, channel-transposed filter, rounded (direct: packed)
  ConvBuffers conv;
  DirectBuffers direct;
};
BackwardDataScratch carve_backward_data(const Conv2dShape& s, bool bf16, ConvJoin join, bool direct, Carver& ws) {
  BackwardDataScratch b{};
  const Geometry g{s.h, s.w, s.k, s.c, s.r};
  b.wt = ws.take<float>(s.weight_numel());
  if (direct) {
    b.direct = take_direct_buffers(ws, s.n, g, bf16, join);
  } else {
    b.conv = take_conv_buffers(ws, s.n, g, bf16, join);
  }
  return b;
}

struct BackwardWeightScratch {
  int64_t blocks;     // dw partials, combined in order
  float* part;        // [blocks, K*RRC]
  double* bias_part;  // [blocks, K]
  float* cols;        // per thread: im2col rows of one chunk
  float* masked;      // per thread: dy of one chunk, masked by y_relu > 0 and widened
  float* bias_sum;    // per thread: [K]
};
Chunking weight_chunking(const Conv2dShape& s) {
  return make_chunking(s.n * s.h, s.w, s.r * s.r * s.c + s.k, false, kWeightChunkBytes);
}
BackwardWeightScratch carve_backward_weight(const Conv2dShape& s, Carver& ws) {
  const int64_t wn = s.weight_numel(), T = max_threads();
  const Chunking ch = weight_chunking(s);
  const int64_t max_blocks = std::max<int64_t>(1, kWeightPartialBytes / (wn * int64_t{sizeof(float)}));
  BackwardWeightScratch b{};
  b.blocks = std::min({kWeightBlocks, ch.num_chunks, max_blocks});
  b.part = ws.take<float>(b.blocks * wn);
  b.bias_part = ws.take<double>(b.blocks * s.k);
  b.cols = ws.take<float>(T * ch.rows_per_chunk * s.w * s.r * s.r * s.c);
  b.masked = ws.take<float>(T * ch.rows_per_chunk * s.w * s.k);
  b.bias_sum = ws.take<float>(T * s.k);
  return b;
}

template <typename T>
void forward(const Conv2dShape& s, ConvMath math, const ConvJoined<const T>& x, const float* w, const float* bias,
             bool relu, T* y, void* workspace) {
  Carver ws(workspace);
  const Geometry g{s.h, s.w, s.c, s.k, s.r};
  const direct::Isa isa = direct::isa();
  const bool dir = runs_direct(g, isa);
  const ForwardScratch f = carve_forward(s, std::is_same_v<T, bf16>, dir, ws);
  const ConvMath m = rounding(s, ConvPass::forward, math);
  const T* const no_mask = nullptr;
  if (dir) {
    pack_filter(g, direct::k_block(isa), m, f.w,
                [&](int64_t k, int64_t r, int64_t q, int64_t c) { return w[((k * 3 + r) * 3 + q) * s.c + c]; });
    conv_direct(s.n, g, x, no_mask, f.w, bias, relu, ConvJoined<T>{ConvJoin::none, y}, f.direct, m, isa);
    return;
  }
  for (int64_t i = 0; i < s.weight_numel(); ++i) f.w[i] = round_operand(m, w[i]);
  conv_same(s.n, g, x, no_mask, f.w, bias, relu, ConvJoined<T>{ConvJoin::none, y}, f.conv, m);
}

template <typename T>
void backward_data(const Conv2dShape& s, ConvMath math, const T* dy, const T* y_relu, const float* w,
                   const ConvJoined<T>& dx, void* workspace) {
  Carver ws(workspace);
  const Geometry g{s.h, s.w, s.k, s.c, s.r};  // the conv of dy with W'
  const direct::Isa isa = direct::isa();
  const bool dir = runs_direct(g, isa);
  const BackwardDataScratch b = carve_backward_data(s, std::is_same_v<T, bf16>, dx.join, dir, ws);
  const ConvMath m = rounding(s, ConvPass::backward_data, math);
  const ConvJoined<const T> dy_in{ConvJoin::none, dy};
  // W'[c, r, s, k] = W[k, R-1-r, R-1-s, c]
  const int64_t R = s.r;
  if (dir) {
    pack_filter(g, direct::k_block(isa), m, b.wt, [&](int64_t c, int64_t r, int64_t q, int64_t k) {
      return w[((k * R + (R - 1 - r)) * R + (R - 1 - q)) * s.c + c];
    });
    conv_direct(s.n, g, dy_in, y_relu, b.wt, nullptr, false, dx, b.direct, m, isa);
    return;
  }
  for (int64_t c = 0; c < s.c; ++c)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t q = 0; q < R; ++q)
        for (int64_t k = 0; k < s.k; ++k)
          b.wt[((c * R + r) * R + q) * s.k + k] =
              round_operand(m, w[((k * R + (R - 1 - r)) * R + (R - 1 - q)) * s.c + c]);
  conv_same(s.n, g, dy_in, y_relu, b.wt, nullptr, false, dx, b.conv, m);
}

template <typename T>
void backward_weight(const Conv2dShape& s, ConvMath math, const ConvJoined<const T>& x, const T* dy, const T* y_relu,
                     float* dw, float* dbias, void* workspace) {
  use_single_threaded_blas();
  constexpr bool kWide = std::is_same_v<T, float>;
  const Geometry g{s.h, s.w, s.c, s.k, s.r};
  const int64_t rows = s.n * s.h, rrc = g.rrc(), wn = s.weight_numel();
  const ConvMath m = rounding(s, ConvPass::backward_weight, math);
  const bool x_is_cols = kWide && s.r == 1 && m == ConvMath::f32 && x.join == ConvJoin::none;  // x is the column matrix
  const bool copy_dy = !kWide || y_relu != nullptr;  // else dy itself, unrounded, serves
  const Chunking ch = weight_chunking(s);
  Carver ws(workspace);
  const BackwardWeightScratch sc = carve_backward_weight(s, ws);
  const int64_t nb = sc.blocks;
  if (nb == 0) {  // no pixels
    std::fill(dw, dw + wn, 0.0f);
    if (dbias != nullptr) std::fill(dbias, dbias + s.k, 0.0f);
    return;
  }
  std::fill(sc.bias_part, sc.bias_part + nb * s.k, 0.0);
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num();
    float* col = sc.cols + t * ch.rows_per_chunk * s.w * rrc;
    float* masked = sc.masked + t * ch.rows_per_chunk * s.w * s.k;
    float* bias_sum = sc.bias_sum + t * s.k;
#pragma omp for schedule(static)
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t j0 = b * ch.num_chunks / nb, j1 = (b + 1) * ch.num_chunks / nb;
      float* dw_b = sc.part + b * wn;
      double* db_b = sc.bias_part + b * s.k;
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t row0 = j * ch.rows_per_chunk, row1 = std::min(row0 + ch.rows_per_chunk, rows);
        const int64_t p0 = row0 * s.w, np = (row1 - row0) * s.w;
        const float* a = col;
        if (x_is_cols) {
          a = reinterpret_cast<const float*>(x.a) + p0 * s.c;
        } else {
          gather_rows(g, x, static_cast<const T*>(nullptr), row0, row1, col, m);
        }
        // The GEMM's dy: a widened, masked copy, rounded after dbias has summed it; or dy itself.
        const bool copy = copy_dy || m != ConvMath::f32;
        const float* d = copy ? masked : reinterpret_cast<const float*>(dy) + p0 * s.k;
        if (copy) copy_run(masked, dy + p0 * s.k, y_relu ? y_relu + p0 * s.k : nullptr, np * s.k, ConvMath::f32);
        // dbias: float sums over the chunk (vectorised over k) of the unrounded dy, accumulated in
        // double across chunks.
        std::fill(bias_sum, bias_sum + s.k, 0.0f);
        for (int64_t p = 0; p < np; ++p)
          for (int64_t k = 0; k < s.k; ++k) bias_sum[k] += d[p * s.k + k];
        for (int64_t k = 0; k < s.k; ++k) db_b[k] += bias_sum[k];
        if (m != ConvMath::f32) {
          for (int64_t i = 0; i < np * s.k; ++i) masked[i] = round_operand(m, masked[i]);
        }
        // dW_b[K, RRC] (+)= dY^T x col
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(s.k), static_cast<int>(rrc),
                    static_cast<int>(np), 1.0f, d, static_cast<int>(s.k), a, static_cast<int>(rrc),
                    j == j0 ? 0.0f : 1.0f, dw_b, static_cast<int>(rrc));
      }
    }
  }
  // Combine the block partials in block order.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < wn; ++i) {
    float sum = sc.part[i];
    for (int64_t b = 1; b < nb; ++b) sum += sc.part[b * wn + i];
    dw[i] = sum;
  }
  if (dbias != nullptr) {
    for (int64_t k = 0; k < s.k; ++k) {
      double sum = 0.0;
      for (int64_t b = 0; b < nb; ++b) sum += sc.bias_part[b * s.k + k];
      dbias[k] = static_cast<float>(sum);
    }
  }
}

}  // namespace

int64_t conv2d_workspace_bytes(const Conv2dShape& s, ConvPass pass, bool bf16, ConvJoin join) {
  Carver measure(nullptr);
  switch (pass) {
    case ConvPass::forward: {
      Carver other(nullptr);
      carve_forward(s, bf16, false, measure);
      carve_forward(s, bf16, true, other);
      return std::max(measure.used(), other.used());
    }
    case ConvPass::backward_data: {
      Carver other(nullptr);
      carve_backward_data(s, bf16, join, false, measure);
      carve_backward_data(s, bf16, join, true, other);
      return std::max(measure.used(), other.used());
    }
    case ConvPass::backward_weight:
      carve_backward_weight(s, measure);
      break;
  }
  return measure.used();
}

int64_t conv2d_workspace_bytes(const Conv2dShape& s, ConvPass pass, bool bf16) {
  return conv2d_workspace_bytes(s, pass, bf16, ConvJoin::none);
}

void conv2d_forward(const Conv2dShape& s, ConvMath math, const float* x, const float* w, const float* bias, bool relu,
                    float* y, void* workspace) {
  forward(s, math, ConvJoined<const float>{ConvJoin::none, x}, w, bias, relu, y, workspace);
}
void conv2d_forward(const Conv2dShape& s, ConvMath math, const bf16* x, const float* w, const float* bias, bool relu,
                    bf16* y, void* workspace) {
  forward(s, math, ConvJoined<const bf16>{ConvJoin::none, x}, w, bias, relu, y, workspace);
}
void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const float* dy, const float* y_relu, const float* w,
                          float* dx, void* workspace) {
  backward_data(s, math, dy, y_relu, w, ConvJoined<float>{ConvJoin::none, dx}, workspace);
}
void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const bf16* dy, const bf16* y_relu, const float* w,
                          bf16* dx, void* workspace) {
  backward_data(s, math, dy, y_relu, w, ConvJoined<bf16>{ConvJoin::none, dx}, workspace);
}
void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const float* x, const float* dy, const float* y_relu,
                            float* dw, float* dbias, void* workspace) {
  backward_weight(s, math, ConvJoined<const float>{ConvJoin::none, x}, dy, y_relu, dw, dbias, workspace);
}
void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const bf16* x, const bf16* dy, const bf16* y_relu,
                            float* dw, float* dbias, void* workspace) {
  backward_weight(s, math, ConvJoined<const bf16>{ConvJoin::none, x}, dy, y_relu, dw, dbias, workspace);
}

void conv2d_forward(const Conv2dShape& s, ConvMath math, const ConvJoined<const float>& x, const float* w,
                    const float* bias, bool relu, float* y, void* workspace) {
  forward(s, math, x, w, bias, relu, y, workspace);
}
void conv2d_forward(const Conv2dShape& s, ConvMath math, const ConvJoined<const bf16>& x, const float* w,
                    const float* bias, bool relu, bf16* y, void* workspace) {
  forward(s, math, x, w, bias, relu, y, workspace);
}
void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const float* dy, const float* y_relu, const float* w,
                          const ConvJoined<float>& dx, void* workspace) {
  backward_data(s, math, dy, y_relu, w, dx, workspace);
}
void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const bf16* dy, const bf16* y_relu, const float* w,
                          const ConvJoined<bf16>& dx, void* workspace) {
  backward_data(s, math, dy, y_relu, w, dx, workspace);
}
void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const ConvJoined<const float>& x, const float* dy,
                            const float* y_relu, float* dw, float* dbias, void* workspace) {
  backward_weight(s, math, x, dy, y_relu, dw, dbias, workspace);
}
void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const ConvJoined<const bf16>& x, const bf16* dy,
                            const bf16* y_relu, float* dw, float* dbias, void* workspace) {
  backward_weight(s, math, x, dy, y_relu, dw, dbias, workspace);
}

}  // namespace seis::cpu
