#include "io/sample_reader.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>

#include "engine/cuda_stream.h"
#include "engine/device_runtime.h"
#include "engine/error.h"
#include "engine/printable.h"
#include "engine/rng.h"
#include "io/gather_rows.h"
#include "io/sample_order.h"

namespace seis {

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Where the rows of a gather [h, w] go: out[i][j] = in[t][x] with t = t0 + i - shift (wrapped when
// circular, else a vacated row of zeros) and x = x0 + j, or w - 1 - x0 - j when flipped. That is
// flip, then shift, then crop [oh, ow] at (t0, x0), as one mapping.
struct Placement {
  int64_t h = 0, w = 0, oh = 0, ow = 0, t0 = 0, x0 = 0, shift = 0;
  bool circular = false, flip = false;
  bool in_place = false;  // out is in itself (no crop): every row is read before it is overwritten
};

// place_rows (below) when the output is the input itself.
template <typename T, typename Emit>
void place_rows_in_place(const Placement& p, T* dst, T* tmp, Emit emit) {
  const int64_t h = p.h, w = p.w;
  auto vacate = [&](int64_t i) { std::fill(dst + i * w, dst + (i + 1) * w, T{}); };
  const int64_t s = p.shift;
  if (s == 0) {
    for (int64_t i = 0; i < h; ++i) {
      T* row = dst + i * w;
      if (p.flip) {
        std::copy(row, row + w, tmp);
        emit(tmp, row);
      } else {
        emit(row, row);
      }
    }
  } else if (!p.circular && s > 0) {
    for (int64_t i = h - 1; i >= s; --i) emit(dst + (i - s) * w, dst + i * w);
    for (int64_t i = 0; i < s; ++i) vacate(i);
  } else if (!p.circular) {
    const int64_t a = -s;
    for (int64_t i = 0; i < h - a; ++i) emit(dst + (i + a) * w, dst + i * w);
    for (int64_t i = h - a; i < h; ++i) vacate(i);
  } else {
    // out[i] = in[(i - k) mod h]: gcd(h, k) cycles; the first row of each waits in tmp.
    const int64_t k = ((s % h) + h) % h;
    const int64_t cycles = std::gcd(h, k);
    for (int64_t c = 0; c < cycles; ++c) {
      std::copy(dst + c * w, dst + (c + 1) * w, tmp);
      for (int64_t i = c;;) {
        const int64_t from = (i - k + h) % h;
        if (from == c) {
          emit(tmp, dst + i * w);
          break;
        }
        emit(dst + from * w, dst + i * w);
        i = from;
      }
    }
  }
}

// Writes every output row with emit(source row, output row); `tmp` holds one row. In place, rows
// are visited in an order that reads each one before it is overwritten (a circular shift follows
// the cycles of the rotation), so the move needs one row of memory, not a second gather. Out of
// place the output may be of another type (bf16 rows from f32 ones); vacated rows are zero bits.
template <typename T, typename D, typename Emit>
void place_rows(const Placement& p, const T* src, D* dst, T* tmp, Emit emit) {
  const int64_t h = p.h, w = p.w, ow = p.ow;
  auto vacate = [&](int64_t i) { std::fill(dst + i * ow, dst + (i + 1) * ow, D{}); };
  if constexpr (!std::is_same_v<T, D>) {
    SEIS_CHECK(!p.in_place, "place_rows: in place from one type into another");
  }
  if (!p.in_place) {
    for (int64_t i = 0; i < p.oh; ++i) {
      int64_t t = p.t0 + i - p.shift;
      if (p.circular) t = ((t % h) + h) % h;
      if (t < 0 || t >= h) {
        vacate(i);
      } else {
        emit(src + t * w, dst + i * ow);
      }
    }
    return;
  }
  if constexpr (std::is_same_v<T, D>) place_rows_in_place(p, dst, tmp, emit);
}

std::string i2s(int64_t v) { return std::to_string(v); }

}  // namespace

// A worker's own memory: the full gather when cropping, writing bf16 or shifting, one row for in-place
// moves, the sums.
struct SampleReader::Scratch {
  // The f32 gather, left uninitialised: the pages of a gather this large (malloc maps it fresh) are
  // only backed by memory once a read writes them (a later epoch's blocks, read to its start, touch
  // its first one or two MiB).
  std::unique_ptr<float[]> data;
  std::vector<float> data_row;
  std::vector<uint8_t> label, label_row, valid;  // valid: the sample's /trace_valid [W]
  GatherNormalizer norm;
  GatherNormalizer check;     // the sums of a sample normalised with stored statistics, to check them
  GatherNormalizer identity;  // moves rows already normalised as they arrived
  Scratch(Normalize mode, int64_t width) : norm(mode, width), check(mode, width), identity(Normalize::none, width) {}
};

std::shared_ptr<const GatherNormalizer::Stats> SampleReader::kept_stats(int64_t g) const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_.empty() ? nullptr : stats_[static_cast<size_t>(g)];
}

int64_t SampleReader::kept_stats_bytes(int64_t source_samples, int64_t kept, int64_t traces) {
  return source_samples * static_cast<int64_t>(sizeof(std::shared_ptr<const GatherNormalizer::Stats>)) +
         kept * GatherNormalizer::Stats::bytes_for(traces);
}

int64_t SampleReader::norm_stats_kept_bytes() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_bytes_;
}

bool SampleReader::stored_checked(int64_t g) const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return !stored_checked_.empty() && stored_checked_[static_cast<size_t>(g)] != 0;
}

void SampleReader::mark_stored_checked(int64_t g) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  if (stored_checked_.empty()) stored_checked_.resize(static_cast<size_t>(source_.size()));
  stored_checked_[static_cast<size_t>(g)] = 1;
}

void SampleReader::keep_stats(int64_t g, const GatherNormalizer& norm) {
  if (opt_.normalize == Normalize::none || opt_.norm_stats_cache_bytes <= 0) return;
  const int64_t traces = opt_.normalize == Normalize::trace ? source_.width() : 0;
  {
    // The budget first (the index counts against it), before copying the statistics.
    std::lock_guard<std::mutex> lock(stats_mu_);
    if (stats_full_ || (!stats_.empty() && stats_[static_cast<size_t>(g)])) return;
    const int64_t after =
        (stats_.empty() ? kept_stats_bytes(source_.size(), 0, traces) : stats_bytes_) + kept_stats_bytes(0, 1, traces);
    if (after > opt_.norm_stats_cache_bytes) {
      stats_full_ = true;
      return;
    }
  }
  auto kept = std::make_shared<const GatherNormalizer::Stats>(norm.stats());
  std::lock_guard<std::mutex> lock(stats_mu_);
  if (stats_.empty()) {
    stats_.resize(static_cast<size_t>(source_.size()));
    stats_bytes_ = kept_stats_bytes(source_.size(), 0, traces);
  }
  // Another worker may have kept it, or spent the budget, meanwhile.
  if (stats_[static_cast<size_t>(g)] || stats_bytes_ + kept_stats_bytes(0, 1, traces) > opt_.norm_stats_cache_bytes) {
    return;
  }
  stats_bytes_ += kept_stats_bytes(0, 1, traces);
  stats_[static_cast<size_t>(g)] = std::move(kept);
}

struct SampleReader::Slot {
  void* mem = nullptr;   // one pinned allocation: data, then labels, then trace_valid
  void* data = nullptr;  // f32 or bf16 (SampleReaderOptions::dtype)
  uint8_t* label = nullptr;
  uint8_t* valid = nullptr;
  int64_t seq = -1;  // the batch it holds or is being filled with
  int64_t remaining = 0;
  bool ready = false;
  std::exception_ptr error;
  int64_t error_row = 0;
  std::vector<int64_t> samples;
  int64_t skipped = 0, bytes = 0;
  std::unique_ptr<CudaEvent> copied;  // CUDA: the upload from this slot
};

SampleReader::SampleReader(const SampleSource& source, const SampleReaderOptions& options)
    : source_(source), opt_(options) {
  n_ = opt_.indices.empty() ? source_.size() : static_cast<int64_t>(opt_.indices.size());
  for (int64_t g : opt_.indices) {
    if (g < 0 || g >= source_.size()) {
      throw UsageError("sample index " + i2s(g) + " is outside the dataset's " + i2s(source_.size()) + " samples");
    }
  }
  const int64_t B = opt_.batch, W = opt_.world;
  if (W < 1 || opt_.rank < 0 || opt_.rank >= W) {
    throw UsageError("rank " + i2s(opt_.rank) + " is outside the " + i2s(W) + " ranks");
  }
  if (B < 1) throw UsageError("--batch " + i2s(B) + " must be at least 1");
  if (B % W != 0) {
    throw UsageError("--batch " + i2s(B) + " is not divisible by the " + i2s(W) + " ranks; use a multiple of " +
                     i2s(W));
  }
  if (B > n_) throw UsageError("--batch " + i2s(B) + " exceeds the " + i2s(n_) + " samples to train on");
  if (opt_.prefetch < 1) throw UsageError("prefetch depth " + i2s(opt_.prefetch) + " must be at least 1");
  if (opt_.threads < 0) throw UsageError("reader threads " + i2s(opt_.threads) + " must be at least 1");
  if (opt_.threads == 0) opt_.threads = default_threads();
  source_.use_direct_reads(opt_.direct_io, opt_.direct_into_place);
  const int64_t h = source_.height(), w = source_.width();
  const AugmentOptions& a = opt_.augment;
  if (a.max_shift < 0 || a.max_shift >= h) {
    throw UsageError("time shift " + i2s(a.max_shift) + " must be in [0, " + i2s(h) + ") (the gather has " + i2s(h) +
                     " time samples)");
  }
  if (a.crop_multiple < 1) throw UsageError("crop multiple " + i2s(a.crop_multiple) + " must be at least 1");
  out_h_ = a.crop_height > 0 ? a.crop_height : h;
  out_w_ = a.crop_width > 0 ? a.crop_width : w;
  if (a.crop_height < 0 || a.crop_width < 0 || out_h_ > h || out_w_ > w) {
    throw UsageError("crop " + i2s(a.crop_height) + "x" + i2s(a.crop_width) + " does not fit in the " + i2s(h) + "x" +
                     i2s(w) + " gathers");
  }
  if (out_h_ % a.crop_multiple != 0 || out_w_ % a.crop_multiple != 0) {
    throw UsageError("crop " + i2s(out_h_) + "x" + i2s(out_w_) + " must be divisible by " + i2s(a.crop_multiple) +
                     " (2^(levels-1) for the UNet)");
  }
  if (opt_.start_epoch < 0 || opt_.start_batch < 0) {
    throw UsageError("start position (epoch " + i2s(opt_.start_epoch) + ", batch " + i2s(opt_.start_batch) +
                     ") is negative");
  }
  rank_batch_ = B / W;
  batches_per_epoch_ = n_ / B;
  // A start batch past the end of its epoch continues into the next ones.
  first_abs_batch_ = opt_.start_epoch * batches_per_epoch_ + opt_.start_batch;

  if (opt_.dtype != DType::f32 && opt_.dtype != DType::bf16) {
    throw UsageError(std::string("the reader writes f32 or bf16 data, not ") + dtype_name(opt_.dtype));
  }
  const int64_t pix = out_h_ * out_w_;
  const int64_t data_bytes = rank_batch_ * pix * dtype_size(opt_.dtype);
  const int64_t label_bytes = source_.has_label() ? rank_batch_ * pix : 0;
  const int64_t valid_bytes = source_.has_trace_valid() ? rank_batch_ * out_w_ : 0;
  slot_bytes_ = data_bytes + label_bytes + valid_bytes;
  if (a.crop_height > 0 || a.crop_width > 0) {
    scratch_bytes_ = opt_.threads * h * w * (source_.has_label() ? 5 : 4);
  } else if (opt_.dtype == DType::bf16 || a.max_shift > 0) {
    // The f32 gather (the labels are placed in the slot). With a time shift only, a later epoch's
    // blocks pass through its start on their way to the slot.
    scratch_bytes_ = opt_.threads * h * w * 4;
  }
  if (opt_.device.is_cuda()) {
    if (opt_.device.index >= cuda_device_count()) {
      throw UsageError("device " + opt_.device.str() + " does not exist (" + i2s(cuda_device_count()) +
                       " CUDA device(s) visible)");
    }
    compute_ready_ = std::make_unique<CudaEvent>(opt_.device.index);
  }
  for (int i = 0; i < opt_.prefetch; ++i) {
    auto s = std::make_unique<Slot>();
    s->mem = pinned_alloc(slot_bytes_);
    // Touch every page now: first-touch faults would otherwise land in the first epoch's reads.
    std::memset(s->mem, 0, static_cast<size_t>(slot_bytes_));
    s->data = s->mem;
    s->label = source_.has_label() ? static_cast<uint8_t*>(s->mem) + data_bytes : nullptr;
    s->valid = source_.has_trace_valid() ? static_cast<uint8_t*>(s->mem) + data_bytes + label_bytes : nullptr;
    s->samples.resize(static_cast<size_t>(rank_batch_));
    if (opt_.device.is_cuda()) s->copied = std::make_unique<CudaEvent>(opt_.device.index);
    slots_.push_back(std::move(s));
  }
  interval_start_ = now_s();
  start_workers();
}

void SampleReader::start_workers() {
  for (int t = 0; t < opt_.threads; ++t) workers_.emplace_back([this] { worker_main(); });
}

void SampleReader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

void SampleReader::seek(int64_t epoch, int64_t batch) {
  if (epoch < 0 || batch < 0) {
    throw UsageError("start position (epoch " + i2s(epoch) + ", batch " + i2s(batch) + ") is negative");
  }
  stop_workers();
  std::lock_guard<std::mutex> lock(mu_);
  first_abs_batch_ = epoch * batches_per_epoch_ + batch;
  next_seq_ = next_row_ = released_ = consumed_ = 0;
  host_held_ = false;
  failed_ = nullptr;
  perms_.clear();
  for (auto& s : slots_) {
    s->seq = -1;
    s->ready = false;
    s->error = nullptr;
  }
  stop_ = false;
  start_workers();
}

SampleReader::~SampleReader() {
  stop_workers();
  for (auto& s : slots_) {
    // An upload may still read the slot: wait for it before freeing (destructors do not throw).
    try {
      if (s->copied) s->copied->synchronize();
    } catch (const std::exception&) {
    }
    pinned_free(s->mem);
  }
}

void SampleReader::epoch_and_batch(int64_t seq, int64_t* epoch, int64_t* batch) const {
  const int64_t abs = first_abs_batch_ + seq;
  *epoch = abs / batches_per_epoch_;
  *batch = abs % batches_per_epoch_;
}

std::shared_ptr<const std::vector<int64_t>> SampleReader::permutation(int64_t epoch) {
  auto it = perms_.find(epoch);
  if (it != perms_.end()) return it->second;
  std::vector<int64_t> p;
  if (opt_.shuffle) {
    p = epoch_permutation(n_, opt_.seed, epoch);
  } else {
    p.resize(static_cast<size_t>(n_));
    for (int64_t i = 0; i < n_; ++i) p[static_cast<size_t>(i)] = i;
  }
  if (!opt_.indices.empty()) {
    for (int64_t& v : p) v = opt_.indices[static_cast<size_t>(v)];
  }
  auto sp = std::make_shared<const std::vector<int64_t>>(std::move(p));
  // Tasks run at most `prefetch` batches apart: older epochs are done (or hold their own copy).
  perms_.erase(perms_.begin(), perms_.lower_bound(epoch - 1));
  perms_.emplace(epoch, sp);
  return sp;
}

void SampleReader::worker_main() {
  Scratch scratch(opt_.normalize, source_.width());
  if (source_.has_trace_valid()) scratch.valid.resize(static_cast<size_t>(source_.width()));
  const int64_t pix = source_.height() * source_.width();
  if (scratch_bytes_ > 0) scratch.data.reset(new float[static_cast<size_t>(pix)]);
  if (cropping() && source_.has_label()) scratch.label.resize(static_cast<size_t>(pix));
  scratch.data_row.resize(static_cast<size_t>(source_.width()));
  scratch.label_row.resize(static_cast<size_t>(source_.width()));
  for (;;) {
    int64_t seq = 0, row = 0;
    Slot* slot = nullptr;
    std::shared_ptr<const std::vector<int64_t>> perm;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || next_seq_ < released_ + static_cast<int64_t>(slots_.size()); });
      if (stop_) return;
      seq = next_seq_;
      row = next_row_;
      if (++next_row_ == rank_batch_) {
        next_row_ = 0;
        ++next_seq_;
      }
      slot = slots_[static_cast<size_t>(seq % static_cast<int64_t>(slots_.size()))].get();
      if (row == 0) {
        slot->seq = seq;
        slot->remaining = rank_batch_;
        slot->ready = false;
        slot->error = nullptr;
        slot->error_row = rank_batch_;
        slot->skipped = 0;
        slot->bytes = 0;
      }
      int64_t epoch = 0, batch = 0;
      epoch_and_batch(seq, &epoch, &batch);
      try {
        perm = permutation(epoch);
      } catch (...) {
        slot->error = std::current_exception();
      }
    }
    int64_t set_index = -1, skipped = 0, bytes = 0;
    std::exception_ptr error;
    if (perm) {
      try {
        // The previous upload from this slot must be finished before it is overwritten.
        if (slot->copied) slot->copied->synchronize();
        process_sample(seq, row, *perm, *slot, scratch, &set_index, &skipped, &bytes);
      } catch (...) {
        error = std::current_exception();
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (error && row < slot->error_row) {
        slot->error = error;
        slot->error_row = row;
      }
      slot->samples[static_cast<size_t>(row)] = set_index;
      slot->skipped += skipped;
      slot->bytes += bytes;
      if (--slot->remaining == 0) {
        slot->ready = true;
        ready_cv_.notify_all();
      }
    }
  }
}

void SampleReader::process_sample(int64_t seq, int64_t row, const std::vector<int64_t>& perm, Slot& slot,
                                  Scratch& scratch, int64_t* set_index, int64_t* skipped, int64_t* bytes) {
  int64_t epoch = 0, batch = 0;
  epoch_and_batch(seq, &epoch, &batch);
  const int64_t pos = batch * opt_.batch + opt_.rank * rank_batch_ + row;  // in the epoch's permutation
  const int64_t h = source_.height(), w = source_.width(), pix = out_h_ * out_w_;
  const AugmentOptions& a = opt_.augment;
  const bool crop = cropping(), bf16_out = opt_.dtype == DType::bf16;
  // The data's output row `row`; f32 work in the slot itself unless cropping or rounding to bf16.
  float* dst_data = bf16_out ? nullptr : static_cast<float*>(slot.data) + row * pix;
  bf16* dst_bf16 = bf16_out ? static_cast<bf16*>(slot.data) + row * pix : nullptr;
  uint8_t* dst_label = slot.label ? slot.label + row * pix : nullptr;
  float* data = crop || bf16_out ? scratch.data.get() : dst_data;
  uint8_t* label = dst_label ? (crop ? scratch.label.data() : dst_label) : nullptr;
  GatherNormalizer& norm = scratch.norm;
  // Per trace, [W]: flipped and cropped with the receivers; a time shift leaves it as it is.
  uint8_t* dst_valid = slot.valid ? slot.valid + row * out_w_ : nullptr;
  uint8_t* valid = dst_valid ? scratch.valid.data() : nullptr;

  if (opt_.will_need) {
    // This sample (its whole chunk goes to the disk at once, not a readahead window at a time) and
    // the one this worker takes next, about `threads` tasks on, when it is in the same epoch.
    source_.will_need(perm[static_cast<size_t>(pos)]);
    const int64_t q = seq * rank_batch_ + row + opt_.threads;
    int64_t next_epoch = 0, next_batch = 0;
    epoch_and_batch(q / rank_batch_, &next_epoch, &next_batch);
    if (next_epoch == epoch) {
      source_.will_need(perm[static_cast<size_t>(next_batch * opt_.batch + opt_.rank * rank_batch_ + q % rank_batch_)]);
    }
  }

  // The augmentation's draws depend on the position only (not on the sample a bad one gives way to).
  Placement p;
  p.h = h;
  p.w = w;
  p.oh = out_h_;
  p.ow = out_w_;
  p.circular = a.shift_circular;
  p.in_place = !crop;
  if (a.any()) {
    // One stream per (seed, epoch, position): the same draws whichever thread, rank count or timing.
    Rng rng(hash_combine(opt_.seed, 0xa6a6000000000000ull + static_cast<uint64_t>(epoch)), static_cast<uint64_t>(pos));
    p.flip = a.flip_receivers && (rng.next_u64() & 1u);
    if (a.max_shift > 0) {
      p.shift = static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * a.max_shift + 1))) - a.max_shift;
    }
    if (crop) {
      p.t0 = static_cast<int64_t>(rng.below(static_cast<uint64_t>(h - out_h_ + 1)));
      p.x0 = static_cast<int64_t>(rng.below(static_cast<uint64_t>(w - out_w_ + 1)));
    }
  }
  // When nothing needs the whole gather first (the statistics are kept, or stored with the data, or
  // there are none), the data rows are finished block by block as they arrive: where they stay in
  // place but for a flip, normalised and flipped there; where they go elsewhere (a crop, bf16 rows
  // or a time shift), each row with a place in the output is normalised, flipped, cropped and
  // rounded into it from the block, read to the scratch gather's start.
  const bool rows_stay = !crop && !bf16_out && p.shift == 0;
  // The output row that source row t goes to, or -1 (out[i] = in[t0 + i - shift], as place_rows).
  auto out_index = [&](int64_t t) -> int64_t {
    int64_t i = t - p.t0 + p.shift;
    if (p.circular) i = ((i % h) + h) % h;
    return i >= 0 && i < p.oh ? i : -1;
  };
  // Rows [r0, r1) of the sample, at `rows`, into their places in the slot.
  auto place_block = [&](const GatherNormalizer& with, int64_t r0, int64_t r1, const float* rows) {
    for (int64_t t = r0; t < r1; ++t) {
      const int64_t i = out_index(t);
      if (i < 0) continue;
      const float* from = rows + (t - r0) * w;
      if (bf16_out) {
        with.apply_row(from, dst_bf16 + i * p.ow, p.x0, p.ow, p.flip);
      } else {
        with.apply_row(from, dst_data + i * p.ow, p.x0, p.ow, p.flip);
      }
    }
  };

  // Labels that stay in place but for a flip are flipped block by block as they arrive (any epoch).
  const bool label_flipped_on_read = label != nullptr && p.flip && !crop && p.shift == 0;
  SampleSource::LabelRowsReady label_ready;
  if (label_flipped_on_read) {
    label_ready = [&](int64_t r0, int64_t r1, uint8_t* rows) {
      uint8_t* tmp = scratch.label_row.data();
      for (int64_t t = r0; t < r1; ++t) {
        uint8_t* row = rows + (t - r0) * w;
        std::memcpy(tmp, row, static_cast<size_t>(w));
        reverse_copy_bytes(tmp, w, row);
      }
    };
  }

  // Read; each block of rows is checked and summed while it is in cache, or, when the sample's
  // statistics are kept from an earlier read or stored with the data (or there are none to
  // gather), checked and finished as above: normalised and flipped in place, or placed into the
  // slot (stored statistics: summed too, to check them after the read). With skip_bad_samples a bad
  // sample (NaN or Inf, or a read error) gives way to the next good one in the permutation.
  std::shared_ptr<const GatherNormalizer::Stats> known;
  bool finished = false;  // the data rows are finished by the read
  bool placing = false;   // ... and placed into the slot from the blocks (vacated rows zeroed after)
  bool checking = false;  // `known` was stored with the data, unchecked: the read also sums, to check them
  // After stored statistics failed their check: the sample's own, for its second read.
  std::shared_ptr<const GatherNormalizer::Stats> computed;
  bool rereading = false;
  GatherNormalizer& check = scratch.check;
  // Stops the use of stored statistics for good (said once, on stderr).
  auto refuse_stored = [&](const std::string& why) {
    if (!stored_refused_.exchange(true)) {
      std::fprintf(stderr, "seisseg: warning: %s; the reader computes the normalisation statistics from the data\n",
                   printable(why, 4096).c_str());
    }
  };
  for (int64_t k = 0;; ++k) {
    const int64_t g = perm[static_cast<size_t>((pos + k) % n_)];
    bool finite = true;
    rereading = computed != nullptr;
    known = rereading ? computed : kept_stats(g);
    computed.reset();
    checking = false;
    // Stored statistics that passed their check on an earlier read are used unchecked (even once
    // others were refused), as kept ones would be.
    const bool may_store = !known && opt_.normalize != Normalize::none && opt_.use_stored_stats;
    const bool passed = may_store && stored_checked(g);
    if (may_store && (passed || !stored_refused_.load())) {
      // A file whose statistics cannot be read is read without them (its data may be fine).
      auto stored = std::make_shared<GatherNormalizer::Stats>();
      try {
        if (source_.stored_norm_stats(g, opt_.normalize, stored.get())) {
          known = std::move(stored);
          checking = !passed;
          if (checking) check.begin();
        }
      } catch (const InputError& e) {
        refuse_stored(e.what());
      }
    }
    try {
      finished = known || opt_.normalize == Normalize::none;
      placing = finished && !rows_stay;
      // Padding traces are read as zeros, before the check and the sums: what a file holds there
      // never reaches the network.
      if (valid) source_.read_trace_valid(g, valid);
      if (known) {
        norm.set_stats(*known);
      } else {
        norm.begin();
      }
      // Blocks that go from the scratch gather to the slot as they arrive are all read to its
      // start, so that they stay in cache and the rest of it is never written.
      const auto where = placing ? SampleSource::RowBlocks::at_start : SampleSource::RowBlocks::in_place;
      source_.read_rows(
          g, placing ? scratch.data.get() : data, label, where,
          [&](int64_t r0, int64_t r1, float* rows) {
            if (!finite) return;
            const int64_t n = r1 - r0;
            if (valid) zero_padding_traces(valid, n, w, rows);
            // The finite check rides on the pass that reads the block first: in the sums where there
            // are any (they are finite exactly when the values are), else in the normalisation. A
            // bad block may be left half-normalised: the sample is dropped.
            if (!finished) {
              finite = norm.add_rows(rows, n);
            } else if (placing) {
              finite = checking ? check.add_rows(rows, n) : all_finite(rows, n * w);
              if (finite) place_block(norm, r0, r1, rows);
            } else if (checking) {
              finite = check.add_rows_normalizing(rows, n, norm, p.flip);
            } else {
              finite = norm.apply_finite_rows_in_place(rows, n, p.flip);
            }
          },
          label_ready);
    } catch (const InputError& e) {  // (the message names the file, the sample and the reason)
      if (!opt_.skip_bad_samples) throw;
      // Unlike NaN in the data, a read error is news about the disk: said once per sample.
      std::fprintf(stderr, "seisseg: skipping a sample that cannot be read (--skip-bad-samples): %s\n",
                   printable(e.what(), 4096).c_str());
      ++*skipped;
      if (k + 1 == n_)
        throw InputError("every sample of the dataset holds NaN or Inf values in /data or cannot be read");
      continue;
    }
    *bytes += source_.bytes_per_sample(g);
    if (finite && checking) {
      check.finish();
      if (!check.stats().same_bits(*known)) {
        // Stale statistics (the data was rewritten after them): this sample is read again with its
        // own, and the reader stops using stored ones.
        refuse_stored(source_.describe(g) + ": the stored normalisation statistics differ from those of its data");
        keep_stats(g, check);
        computed = std::make_shared<const GatherNormalizer::Stats>(check.stats());
        --k;
        continue;
      }
    }
    if (finite) {
      *set_index = g;
      break;
    }
    if (!opt_.skip_bad_samples) {
      throw InputError(source_.describe(g) +
                       ": /data holds NaN or Inf values; fix or remove the sample, or skip bad "
                       "samples (--skip-bad-samples)");
    }
    ++*skipped;
    if (k + 1 == n_) throw InputError("every sample of the dataset holds NaN or Inf values in /data or cannot be read");
  }
  if (checking) {
    // Not kept: a later epoch reads them again, unchecked.
    ++stats_stored_;
    mark_stored_checked(*set_index);
  } else if (known) {
    if (!rereading) ++stats_reused_;
  } else {
    norm.finish();
    keep_stats(*set_index, norm);
  }
  // The rows' normalisation on the move below, unless they were normalised as they arrived.
  const GatherNormalizer& row_norm = known ? scratch.identity : norm;

  const bool moved = !p.in_place || p.flip || p.shift != 0;
  if (finished) {
    // The rows with no source (a time shift's vacated rows) are zero; the others were placed.
    if (placing && !p.circular) {
      for (int64_t i = 0; i < p.oh; ++i) {
        const int64_t t = p.t0 + i - p.shift;
        if (t >= 0 && t < h) continue;
        if (bf16_out) {
          std::fill(dst_bf16 + i * p.ow, dst_bf16 + (i + 1) * p.ow, bf16{});
        } else {
          std::fill(dst_data + i * p.ow, dst_data + (i + 1) * p.ow, 0.0f);
        }
      }
    }
  } else if (bf16_out) {
    // From the f32 gather to the slot's bf16 rows: each row normalised and rounded as it is stored.
    Placement pd = p;
    pd.in_place = false;
    place_rows(pd, data, dst_bf16, scratch.data_row.data(),
               [&](const float* from, bf16* to) { row_norm.apply_row(from, to, p.x0, p.ow, p.flip); });
  } else if (moved || (opt_.normalize != Normalize::none && !known)) {
    place_rows(p, data, dst_data, scratch.data_row.data(),
               [&](const float* from, float* to) { row_norm.apply_row(from, to, p.x0, p.ow, p.flip); });
  }
  if (label && moved && !label_flipped_on_read) {
    place_rows(p, label, dst_label, scratch.label_row.data(), [&](const uint8_t* from, uint8_t* to) {
      if (!p.flip) {
        if (from + p.x0 != to) std::memcpy(to, from + p.x0, static_cast<size_t>(p.ow));
      } else {
        reverse_copy_bytes(from + (w - p.x0 - p.ow), p.ow, to);
      }
    });
  }
  if (dst_valid) {
    for (int64_t j = 0; j < p.ow; ++j) dst_valid[j] = p.flip ? valid[w - 1 - p.x0 - j] : valid[p.x0 + j];
  }
}

int SampleReader::default_threads() {
  return static_cast<int>(std::min(4u, std::max(1u, std::thread::hardware_concurrency())));
}

SampleReader::Slot& SampleReader::acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  if (failed_) std::rethrow_exception(failed_);
  Slot& slot = *slots_[static_cast<size_t>(consumed_ % static_cast<int64_t>(slots_.size()))];
  const double t0 = now_s();
  ready_cv_.wait(lock, [&] { return slot.seq == consumed_ && slot.ready; });
  const double t1 = now_s();
  cur_.wait_seconds += t1 - t0;
  if (slot.error) {
    failed_ = slot.error;
    std::rethrow_exception(failed_);
  }
  cur_.batches += 1;
  cur_.samples += rank_batch_;
  cur_.skipped += slot.skipped;
  cur_.bytes_read += slot.bytes;
  skipped_total_ += slot.skipped;
  return slot;
}

void SampleReader::release(Slot& slot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    SEIS_CHECK(slot.seq == consumed_, "reader slot released out of order");
    ++consumed_;
    released_ = consumed_;
  }
  work_cv_.notify_all();
}

void SampleReader::release_held() {
  if (!host_held_) return;
  host_held_ = false;
  release(*slots_[static_cast<size_t>(consumed_ % static_cast<int64_t>(slots_.size()))]);
}

ReaderBatch SampleReader::next() {
  release_held();
  Slot& slot = acquire();
  ReaderBatch out;
  epoch_and_batch(slot.seq, &out.epoch, &out.batch);
  out.samples = slot.samples;
  out.skipped = slot.skipped;
  const Shape dshape = {rank_batch_, out_h_, out_w_, 1}, lshape = {rank_batch_, out_h_, out_w_};
  const Shape vshape = {rank_batch_, out_w_};
  const int64_t dbytes = rank_batch_ * out_h_ * out_w_ * dtype_size(opt_.dtype), lbytes = rank_batch_ * out_h_ * out_w_;
  const int64_t vbytes = rank_batch_ * out_w_;
  if (opt_.device.is_cpu()) {
    out.data = Tensor::empty(dshape, opt_.dtype, opt_.device);
    std::memcpy(out.data.raw(), slot.data, static_cast<size_t>(dbytes));
    if (slot.label) {
      out.label = Tensor::empty(lshape, DType::u8, opt_.device);
      std::memcpy(out.label.raw(), slot.label, static_cast<size_t>(lbytes));
    }
    if (slot.valid) {
      out.trace_valid = Tensor::empty(vshape, DType::u8, opt_.device);
      std::memcpy(out.trace_valid.raw(), slot.valid, static_cast<size_t>(vbytes));
    }
  } else {
    const int dev = opt_.device.index;
    const CudaDeviceGuard guard(dev);  // the tensors are allocated on `dev`; restored on any exit
    out.data = Tensor::empty(dshape, opt_.dtype, opt_.device);
    if (slot.label) out.label = Tensor::empty(lshape, DType::u8, opt_.device);
    if (slot.valid) out.trace_valid = Tensor::empty(vshape, DType::u8, opt_.device);
    CUstream_st* compute = cuda_compute_stream(dev);
    CUstream_st* copy = cuda_copy_stream(dev);
    // The new blocks come from the caching allocator in compute-stream order: queued compute work
    // may still use them, so the copy stream starts after the compute stream's current point.
    compute_ready_->record(compute);
    compute_ready_->wait(copy);
    cuda_copy_async(dev, out.data.raw(), slot.data, dbytes, copy);
    if (slot.label) cuda_copy_async(dev, out.label.raw(), slot.label, lbytes, copy);
    if (slot.valid) cuda_copy_async(dev, out.trace_valid.raw(), slot.valid, vbytes, copy);
    slot.copied->record(copy);
    slot.copied->wait(compute);
  }
  release(slot);
  return out;
}

HostBatch SampleReader::next_host() {
  release_held();
  Slot& slot = acquire();
  host_held_ = true;
  HostBatch out;
  if (opt_.dtype == DType::bf16) {
    out.data_bf16 = static_cast<const bf16*>(slot.data);
  } else {
    out.data = static_cast<const float*>(slot.data);
  }
  out.label = slot.label;
  out.trace_valid = slot.valid;
  out.size = rank_batch_;
  out.height = out_h_;
  out.width = out_w_;
  epoch_and_batch(slot.seq, &out.epoch, &out.batch);
  out.samples = slot.samples;
  out.skipped = slot.skipped;
  return out;
}

SampleReader::Position SampleReader::position() const {
  std::lock_guard<std::mutex> lock(mu_);
  Position p;
  epoch_and_batch(consumed_ + (host_held_ ? 1 : 0), &p.epoch, &p.batch);
  return p;
}

ReaderStats SampleReader::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  ReaderStats s = cur_;
  s.seconds = now_s() - interval_start_;
  return s;
}

ReaderStats SampleReader::take_stats() {
  std::lock_guard<std::mutex> lock(mu_);
  ReaderStats s = cur_;
  const double t = now_s();
  s.seconds = t - interval_start_;
  interval_start_ = t;
  cur_ = ReaderStats();
  return s;
}

int64_t SampleReader::skipped_total() const {
  std::lock_guard<std::mutex> lock(mu_);
  return skipped_total_;
}

}  // namespace seis
