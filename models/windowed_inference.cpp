#include "models/windowed_inference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <future>
#include <limits>

#include "engine/error.h"
#include "engine/ops.h"

namespace seis {

WindowAxis window_axis(int64_t n, int64_t window, double overlap, double blind_fraction) {
  WindowAxis a;
  a.n = n;
  a.size = std::max<int64_t>(1, std::min(window, n));
  const int64_t overlap_n = std::llround(overlap * static_cast<double>(a.size));
  a.hop = std::max<int64_t>(1, a.size - overlap_n);
  const int64_t shared = a.size - a.hop;
  a.blind = std::max<int64_t>(
      0, std::min<int64_t>(std::llround(blind_fraction * static_cast<double>(a.size)), (shared - 1) / 2));
  a.starts.push_back(0);
  while (a.starts.back() + a.size < n) a.starts.push_back(std::min(a.starts.back() + a.hop, n - a.size));
  return a;
}

float WindowAxis::weight(int64_t start, int64_t pos) const {
  int64_t d = std::numeric_limits<int64_t>::max();
  if (start > 0) d = pos;                                 // an edge shared with the window before
  if (start + size < n) d = std::min(d, size - 1 - pos);  // and with the one after
  if (d == std::numeric_limits<int64_t>::max()) return 1.0f;
  if (d < blind) return 0.0f;
  const int64_t ramp = std::max<int64_t>(1, (size - hop) - 2 * blind);
  return std::min(1.0f, static_cast<float>(d - blind + 1) / static_cast<float>(ramp));
}

WindowedInference::WindowedInference(const UNet& model, const WindowOptions& options)
    : model_(model), options_(options) {
  if (!(options.overlap >= 0 && options.overlap < 1)) throw UsageError("--overlap must be in [0, 1)");
  if (!(options.blind >= 0 && options.blind < 0.5)) throw UsageError("window blinding must be in [0, 0.5)");
  if (options.batch < 1) throw UsageError("the window batch must be at least 1");
  if (options.rows < 0 || options.cols < 0) throw UsageError("window sizes must not be negative");
}

void WindowedInference::run(int64_t T, int64_t W, const RowReader& read, const RowSink& sink,
                            const Progress& progress) const {
  if (T < 1 || W < 1) throw InputError("nothing to run the network on: the record is empty");
  const WindowAxis ax_t = window_axis(T, window_rows(T), options_.overlap, options_.blind);
  const WindowAxis ax_w = window_axis(W, window_cols(W), options_.overlap, options_.blind);
  const int64_t m = int64_t{1} << (model_.config().levels - 1);
  const int64_t R = ax_t.size, C = ax_w.size;
  const int64_t Hp = (R + m - 1) / m * m, Wp = (C + m - 1) / m * m;

  // Rows [base, base + R) of the data and of the stacked sums, for the current time window.
  std::vector<float> data(static_cast<size_t>(R * W)), next(static_cast<size_t>(R * W));
  std::vector<float> sum_p(static_cast<size_t>(R * W), 0.0f), sum_w(static_cast<size_t>(R * W), 0.0f);
  std::vector<float> out(static_cast<size_t>(R * W));
  std::vector<float> tile(static_cast<size_t>(R * C));
  std::vector<float> wt(static_cast<size_t>(R)), wc(static_cast<size_t>(C));
  int64_t base = 0, data_end = 0;  // data holds rows [base, data_end)

  auto emit = [&](int64_t rows) {  // rows [base, base + rows) are final
    for (int64_t i = 0; i < rows * W; ++i) {
      const size_t k = static_cast<size_t>(i);
      out[k] = sum_w[k] > 0 ? sum_p[k] / sum_w[k] : 0.0f;
    }
    sink(base, rows, out.data());
  };
  auto fetch = [&](int64_t t0, int64_t rows, float* dst) {
    if (rows > 0) read(t0, rows, dst);
  };

  std::future<void> pending;
  int64_t pending_t0 = 0, pending_rows = 0;
  for (size_t k = 0; k < ax_t.starts.size(); ++k) {
    const int64_t s = ax_t.starts[k];
    // Rows before s are final: every later window starts at s or after.
    if (s > base) {
      const int64_t done = s - base;
      emit(done);
      const int64_t keep = R - done;
      std::memmove(sum_p.data(), sum_p.data() + done * W, static_cast<size_t>(keep * W) * sizeof(float));
      std::memmove(sum_w.data(), sum_w.data() + done * W, static_cast<size_t>(keep * W) * sizeof(float));
      std::fill(sum_p.begin() + keep * W, sum_p.end(), 0.0f);
      std::fill(sum_w.begin() + keep * W, sum_w.end(), 0.0f);
      const int64_t kept_data = std::max<int64_t>(0, data_end - s);
      std::memmove(data.data(), data.data() + (s - base) * W, static_cast<size_t>(kept_data * W) * sizeof(float));
      base = s;
      data_end = s + kept_data;
      if (progress) progress(base);
    }
    // This window's new rows: prefetched during the previous window, or read now.
    if (pending.valid()) {
      pending.get();
      std::memcpy(data.data() + (pending_t0 - base) * W, next.data(),
                  static_cast<size_t>(pending_rows * W) * sizeof(float));
      data_end = pending_t0 + pending_rows;
    }
    if (data_end < s + R) {
      fetch(data_end, s + R - data_end, data.data() + (data_end - base) * W);
      data_end = s + R;
    }
    if (k + 1 < ax_t.starts.size()) {  // the next window's new rows, read while this one runs
      pending_t0 = s + R;
      pending_rows = ax_t.starts[k + 1] + R - pending_t0;
      if (pending_rows > 0) {
        pending = std::async(std::launch::async, fetch, pending_t0, pending_rows, next.data());
      }
    }

    for (int64_t i = 0; i < R; ++i) wt[static_cast<size_t>(i)] = ax_t.weight(s, i);
    for (size_t c0 = 0; c0 < ax_w.starts.size(); c0 += static_cast<size_t>(options_.batch)) {
      const int64_t nb = std::min<int64_t>(options_.batch, static_cast<int64_t>(ax_w.starts.size() - c0));
      Tensor x = Tensor::zeros({nb, Hp, Wp, 1});
      for (int64_t b = 0; b < nb; ++b) {
        const int64_t cs = ax_w.starts[c0 + static_cast<size_t>(b)];
        for (int64_t i = 0; i < R; ++i) {
          std::memcpy(tile.data() + i * C, data.data() + i * W + cs, static_cast<size_t>(C) * sizeof(float));
        }
        normalize_gather(options_.normalize, R, C, tile.data());
        float* dst = x.data<float>() + b * Hp * Wp;
        for (int64_t i = 0; i < R; ++i)
          std::memcpy(dst + i * Wp, tile.data() + i * C, static_cast<size_t>(C) * sizeof(float));
      }
      const Var logits = model_.forward(nullptr, make_var(x.to(model_.device())));
      const Tensor prob = sigmoid(cast(nullptr, logits, DType::f32)->value.to(Device::cpu()));
      for (int64_t b = 0; b < nb; ++b) {
        const int64_t cs = ax_w.starts[c0 + static_cast<size_t>(b)];
        for (int64_t j = 0; j < C; ++j) wc[static_cast<size_t>(j)] = ax_w.weight(cs, j);
        const float* p = prob.data<float>() + b * Hp * Wp;
        for (int64_t i = 0; i < R; ++i) {
          float* sp = sum_p.data() + i * W + cs;
          float* sw = sum_w.data() + i * W + cs;
          for (int64_t j = 0; j < C; ++j) {
            const float w = wt[static_cast<size_t>(i)] * wc[static_cast<size_t>(j)];
            sp[j] += w * p[i * Wp + j];
            sw[j] += w;
          }
        }
      }
    }
  }
  emit(T - base);
  if (progress) progress(T);
}

}  // namespace seis
