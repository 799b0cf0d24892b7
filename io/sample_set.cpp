#include "io/sample_set.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "engine/error.h"
#include "engine/rng.h"

namespace seis {

SampleSet::SampleSet(const std::vector<std::string>& paths, int max_open_files) : max_open_(max_open_files) {
  if (paths.empty()) throw UsageError("no dataset files given; pass --data F.h5[,G.h5...]");
  if (max_open_files < 1) throw UsageError("open files " + std::to_string(max_open_files) + " must be at least 1");
  first_.push_back(0);
  for (const std::string& p : paths) {
    files_.push_back(std::make_unique<H5SampleFile>(p));
    where_.push_back(lru_.end());
    use(static_cast<int>(files_.size()) - 1);  // (closes the least recent one past the limit)
    const H5DatasetInfo& info = files_.back()->info();
    const bool label = info.label_type != H5ElemType::none;
    if (files_.size() == 1) {
      height_ = info.height;
      width_ = info.width;
      has_label_ = label;
    } else if (info.height != height_ || info.width != width_) {
      std::ostringstream os;
      os << p << ": samples are " << info.height << "x" << info.width << " but " << paths[0] << " has " << height_
         << "x" << width_ << "; every file of a dataset must have the same H and W";
      throw InputError(os.str());
    } else if (label != has_label_) {
      throw InputError(p + (label ? ": has /label but " : ": has no /label but ") + paths[0] +
                       (has_label_ ? " has one" : " has none") + "; every file of a dataset must agree on labels");
    }
    has_trace_valid_ = has_trace_valid_ || info.has_trace_valid;
    total_ += info.n;
    first_.push_back(total_);
  }
}

SampleSet::~SampleSet() = default;

SampleSet::Location SampleSet::locate(int64_t g) const {
  SEIS_CHECK(g >= 0 && g < total_, "sample " << g << " is out of range [0, " << total_ << ")");
  // first_ is sorted: the file is the last one whose first index is <= g.
  const auto it = std::upper_bound(first_.begin(), first_.end(), g);
  const int f = static_cast<int>(it - first_.begin()) - 1;
  return {f, g - first_[static_cast<size_t>(f)]};
}

const H5SampleFile& SampleSet::use(int f) const {
  std::lock_guard<std::mutex> lock(lru_mu_);
  auto& at = where_[static_cast<size_t>(f)];
  if (at != lru_.end()) {
    lru_.splice(lru_.begin(), lru_, at);
  } else {
    lru_.push_front(f);
    while (static_cast<int>(lru_.size()) > max_open_) {
      const int victim = lru_.back();
      lru_.pop_back();
      where_[static_cast<size_t>(victim)] = lru_.end();
      files_[static_cast<size_t>(victim)]->close_handles();
    }
  }
  at = lru_.begin();
  return *files_[static_cast<size_t>(f)];
}

void SampleSet::done(int f) const {
  std::lock_guard<std::mutex> lock(lru_mu_);
  // Evicted while this read reopened it: close it again, or it would stay open uncounted.
  if (where_[static_cast<size_t>(f)] == lru_.end()) files_[static_cast<size_t>(f)]->close_handles();
}

int SampleSet::open_files() const {
  int n = 0;
  for (const auto& f : files_) n += f->handles_open() ? 1 : 0;
  return n;
}

namespace {

// Calls SampleSet::done when a read ends, also by an exception.
template <typename Done>
struct AfterRead {
  Done done;
  ~AfterRead() { done(); }
};
template <typename Done>
AfterRead<Done> after_read(Done d) {
  return AfterRead<Done>{d};
}

}  // namespace

void SampleSet::read(int64_t g, float* data, uint8_t* label) const {
  const Location l = locate(g);
  const auto guard = after_read([&] { done(l.file); });
  use(l.file).read(l.local, data, label);
}

void SampleSet::read_rows(int64_t g, float* data, uint8_t* label, RowBlocks where, const RowsReady& ready,
                          const LabelRowsReady& label_ready) const {
  const Location l = locate(g);
  const auto guard = after_read([&] { done(l.file); });
  use(l.file).read_rows(l.local, data, label, where, ready, label_ready);
}

void SampleSet::will_need(int64_t g) const {
  const Location l = locate(g);
  const auto guard = after_read([&] { done(l.file); });
  use(l.file).will_need(l.local);
}

void SampleSet::use_direct_reads(bool on, bool into_place) const {
  for (const auto& f : files_) f->use_direct_reads(on, into_place);
}

void SampleSet::read_trace_valid(int64_t g, uint8_t* valid) const {
  const Location l = locate(g);
  const auto guard = after_read([&] { done(l.file); });
  use(l.file).read_trace_valid(l.local, valid);
}

bool SampleSet::stored_norm_stats(int64_t g, Normalize mode, GatherNormalizer::Stats* stats) const {
  const Location l = locate(g);
  const H5SampleFile& f = *files_[static_cast<size_t>(l.file)];
  if (mode == Normalize::trace ? !f.info().has_trace_norm : !f.info().has_sample_norm) return false;
  const auto guard = after_read([&] { done(l.file); });
  return use(l.file).stored_norm_stats(l.local, mode, stats);
}

int64_t SampleSet::bytes_per_sample(int64_t g) const {
  return files_[static_cast<size_t>(locate(g).file)]->bytes_per_sample();
}

std::string SampleSet::describe(int64_t g) const {
  const Location l = locate(g);
  return files_[static_cast<size_t>(l.file)]->describe(l.local);
}

IndexSplit split_validation(int64_t n, double fraction, uint64_t seed) {
  if (!(fraction >= 0.0 && fraction < 1.0)) {
    throw UsageError("--val-fraction " + std::to_string(fraction) + " is outside [0, 1)");
  }
  int64_t n_val = static_cast<int64_t>(std::llround(static_cast<double>(n) * fraction));
  if (fraction > 0 && n_val == 0) n_val = 1;
  if (n - n_val < 1) {
    throw UsageError("--val-fraction " + std::to_string(fraction) + " leaves no training sample of the " +
                     std::to_string(n));
  }
  // A Fisher-Yates shuffle on its own stream, independent of the epoch permutations.
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  Rng rng(seed, 0x7a110000ull);
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[static_cast<size_t>(i)], p[rng.below(static_cast<uint64_t>(i + 1))]);
  IndexSplit s;
  s.val.assign(p.begin(), p.begin() + n_val);
  s.train.assign(p.begin() + n_val, p.end());
  std::sort(s.val.begin(), s.val.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

}  // namespace seis
