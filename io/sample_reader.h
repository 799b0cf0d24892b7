// SampleReader: the asynchronous data generator of DESIGN.md ("Data" -> "Reader").
//
// Order. Per epoch a permutation of the sample list seeded by (seed, epoch) (io/sample_order.h).
// Global batch b takes permutation positions [b*B, (b+1)*B); rank r of W takes
// [b*B + r*B/W, b*B + (r+1)*B/W), so the union over the ranks is exactly the global batch. The last
// incomplete global batch of each epoch is dropped: an epoch has floor(n / B) batches. The stream
// runs on through epochs; the caller decides when to stop. position() is the (epoch, batch) the
// next call returns; a reader started there (start_epoch, start_batch) continues the same sequence.
//
// Work. T worker threads fill a ring of `prefetch` pinned host slots, one rank batch (B/W samples)
// each, one sample per task, and publish batches in order. Each sample is read, checked for NaN/Inf,
// normalised over the full gather, then augmented: receiver flip, time shift, crop, in that order,
// with the label moved exactly like the data (and /trace_valid's per-trace flags like its receivers:
// flipped and cropped, not shifted). Every random draw is seeded by (seed, epoch,
// permutation position), so results do not depend on threads or timing (nor on W).
//
// Source. Any SampleSource (io/sample_source.h): a SampleSet of HDF5 files in practice.
//
// Passes over memory. /data arrives in blocks of rows of about 256 KiB (H5SampleFile::read_rows);
// each block is checked for NaN/Inf and added to the normalisation's sums (and converted from
// float16) while it is still in cache. Then one pass moves every row to its place (flip, shift,
// crop) and normalises it on the way, in the slot itself when not cropping. The bits are those of
// the separate passes (normalize_gather, then flip, shift, crop). A bf16 reader works in f32 in a
// scratch gather and rounds each output row into the slot on that pass. A sample read before (its
// statistics kept: norm_stats_cache_bytes) is finished block by block as it arrives instead: when
// its rows stay in place (f32, a drawn shift of 0, no crop), normalised and flipped there; else (a
// crop, bf16, or a time shift), each row normalised, flipped, shifted, cropped and rounded into its
// place in the slot, every block read to the scratch gather's start
// (SampleSource::RowBlocks::at_start), where it is still in cache, so that the rest of the scratch
// gather is neither written nor read (where the source reads in blocks: HDF5 chunks read with pread,
// not compressed ones). Its data then needs no pass after the read but the zeroing
// of the rows a time shift vacates (a label still gets a pass when it is shifted or cropped; a flip
// alone is done on each block of label rows as it arrives, in every epoch).
// So does every sample of a reader without normalisation, and a sample read for the first time
// whose statistics the file stores (/trace_norm, /sample_norm: written by seisseg synth and convert),
// normalised with them while its own sums are taken on the way; those must give the stored bits, or
// the sample is read again with its own (use_stored_stats). Stored statistics that passed are not
// kept: later epochs read them again (a few KiB) and use them without the sums, as kept ones.
//
// Bad samples (NaN or Inf in /data, or a chunk that cannot be read: an I/O error, a truncated
// file): InputError naming the file and sample, unless skip_bad_samples: the sample at position p
// is then replaced by the first good sample at positions p+1, p+2, ... (wrapping) of the same
// epoch's permutation, and counted; a read error is also reported on stderr, one line per sample.
// The replacement depends on the data only, so every rank count W gives the same global batch
// (where reads fail for good, not by chance). Worker errors are rethrown by next() for the batch they belong to;
// the reader stays failed after.
//
// Memory. prefetch x rank-batch bytes of pinned slots, plus one full-size f32 gather per worker when
// cropping, writing bf16 or shifting in time (SampleReader::scratch_bytes; with a time shift alone
// only its first block is used, or all of it for the samples the HDF5 library reads whole: compressed
// ones), plus the sample list and one permutation (8 bytes per sample), plus the kept normalisation
// statistics (at most norm_stats_cache_bytes; none for samples whose stored statistics passed their
// check, which take one byte each): never the dataset.
//
// Device. On CUDA, next() allocates the batch tensors, makes the copy stream wait for the compute
// stream (a fresh caching-allocator block may still be used by queued compute work), copies on the
// copy stream with cudaMemcpyAsync, and makes the compute stream wait for the copy. The slot goes
// back to the workers at once; a worker waits for that copy's event before overwriting it.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/device.h"
#include "engine/tensor.h"
#include "io/gather_rows.h"
#include "io/normalize.h"
#include "io/sample_source.h"

namespace seis {

class CudaEvent;

struct AugmentOptions {
  bool flip_receivers = false;  // reverse the receiver (W) axis with probability 1/2
  int64_t max_shift = 0;        // time shift s drawn uniformly from [-max_shift, max_shift]: out[t] = in[t - s]
  bool shift_circular = false;  // true: rows wrap around; false: the vacated rows are 0 (data and label)
  int64_t crop_height = 0;      // random crop to crop_height x crop_width; 0: the full gather
  int64_t crop_width = 0;
  int64_t crop_multiple = 1;  // both crop sizes must be divisible by this (the UNet's 2^(levels-1))
  bool any() const { return flip_receivers || max_shift > 0 || crop_height > 0 || crop_width > 0; }
};

struct SampleReaderOptions {
  std::vector<int64_t> indices;  // the source's samples to read (e.g. a train split); empty: all of them
  int64_t batch = 1;             // global batch B; B % world must be 0
  int world = 1;
  int rank = 0;
  uint64_t seed = 0;
  bool shuffle = true;      // false: the list order every epoch (e.g. validation)
  int64_t start_epoch = 0;  // the first batch returned (exact resume: a saved position())
  int64_t start_batch = 0;
  int prefetch = 3;  // rank batches in flight, i.e. pinned slots
  int threads = 0;   // worker threads; 0: default_threads()
  Normalize normalize = Normalize::trace;
  AugmentOptions augment;
  bool skip_bad_samples = false;
  // Before reading a sample, tell the kernel which one this worker reads next (posix_fadvise
  // WILLNEED on its chunks), so that the disk works on it while this one is processed.
  bool will_need = true;
  // Read /data and u8 /label around the page cache (SampleSource::use_direct_reads: O_DIRECT in 4 MiB
  // blocks, two in flight per worker, where the storage allows it; the hints then leave them out).
  // For streams larger than memory. Set on the source when the reader is made (off turns it off
  // again), for every reader of that source.
  bool direct_io = false;
  // With direct_io, blocks are read straight into the slots where the file's chunks and the slots
  // are 4 KiB-aligned (no copy); false: always through the workers' buffers, then copied (a
  // benchmark's peer, bench_reader's seisseg_direct_copied).
  bool direct_into_place = true;
  // The normalisation's statistics of the samples read so far, kept (up to this many bytes in all:
  // SampleReader::kept_stats_bytes) so that a later epoch normalises each block of rows as it
  // arrives instead of in a pass of its own; the same bits. 0: not kept.
  int64_t norm_stats_cache_bytes = int64_t{1} << 30;
  // A sample not read before whose statistics are stored with it (a file's /trace_norm or
  // /sample_norm: SampleSource::stored_norm_stats) is normalised with them as it arrives, like a
  // later epoch's, while its own sums are taken on the way; they must give the same bits, or the
  // sample is read again with its own (its bytes counted twice in ReaderStats::bytes_read) and this
  // reader uses no stored statistics from then on (one warning on stderr; so too when they cannot
  // be read), but for those of samples that already passed. Passed statistics are not kept
  // (norm_stats_cache_bytes): a later epoch reads them again and uses them unchecked, trusting the
  // file not to change during the run as it does for /data (a file replaced between reads is
  // refused on reopening), so that a dataset that stores them needs no memory for statistics but a
  // byte per sample.
  bool use_stored_stats = true;
  Device device = Device::cpu();
  // The data's type in the batches: f32, or bf16 (each value of the f32 sample rounded to nearest
  // even, as the model's input cast rounds it) for a run whose activations are bf16: half the pinned
  // memory and half the bytes uploaded, and the same bits after the model's cast.
  DType dtype = DType::f32;
};

// One rank batch. data [b, H', W', 1] (the options' dtype) and label [b, H', W'] u8 on the reader's device (label
// undefined when the source has no labels). H', W': the crop size, or H, W. trace_valid [b, W'] u8
// (1 = a real trace, 0 = padding), flipped and cropped with the data, when the source has padding traces.
struct ReaderBatch {
  Tensor data, label, trace_valid;
  int64_t epoch = 0, batch = 0;  // the global batch this is part of
  std::vector<int64_t> samples;  // source index of each row (after bad-sample replacement)
  int64_t skipped = 0;           // bad samples replaced in this rank batch
};

// The same, as a view of the pinned slot: valid until the next call of next() or next_host().
struct HostBatch {
  const float* data = nullptr;           // f32 data; null from a bf16 reader
  const bf16* data_bf16 = nullptr;       // bf16 data; null from an f32 reader
  const uint8_t* label = nullptr;        // null when the source has no labels
  const uint8_t* trace_valid = nullptr;  // [size][width]; null when the source has no padding traces
  int64_t size = 0, height = 0, width = 0;
  int64_t epoch = 0, batch = 0;
  std::vector<int64_t> samples;
  int64_t skipped = 0;
};

// Figures over an interval (since construction or the last take_stats()).
struct ReaderStats {
  double seconds = 0;       // wall time of the interval
  double wait_seconds = 0;  // time next() spent blocked waiting for a batch
  int64_t batches = 0, samples = 0, skipped = 0;
  int64_t bytes_read = 0;  // file bytes behind the returned batches (replaced bad samples included)
  double samples_per_s() const { return seconds > 0 ? static_cast<double>(samples) / seconds : 0; }
  double bytes_per_s() const { return seconds > 0 ? static_cast<double>(bytes_read) / seconds : 0; }
  double wait_fraction() const { return seconds > 0 ? wait_seconds / seconds : 0; }
};

// (zero_padding_traces, which the reader applies to every sample of a source with padding traces,
// is in io/gather_rows.h.)

class SampleReader {
 public:
  // Validates the options (UsageError: B % W != 0, rank outside [0, W), B > n, a crop larger than
  // the gather or not divisible by crop_multiple, max_shift >= H, prefetch or threads < 1 ...),
  // allocates the slots and starts the workers. `source` must outlive the reader.
  SampleReader(const SampleSource& source, const SampleReaderOptions& options);
  // Stops and joins the workers (also after a worker failed) and frees the slots.
  ~SampleReader();
  SampleReader(const SampleReader&) = delete;
  SampleReader& operator=(const SampleReader&) = delete;

  // The next rank batch, on the reader's device. Blocks until it is ready; rethrows a worker's error.
  ReaderBatch next();
  // The next rank batch as a view of its pinned slot (no copy); the slot stays held until the next call.
  HostBatch next_host();

  struct Position {
    int64_t epoch = 0, batch = 0;
  };
  Position position() const;  // of the batch the next call returns
  // Continues from (epoch, batch) instead: drops the batches in flight and restarts the workers
  // there (also clears a failure). The same sequence as a reader constructed at that position.
  void seek(int64_t epoch, int64_t batch);
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  int64_t rank_batch() const { return rank_batch_; }  // B / W
  int64_t out_height() const { return out_h_; }
  int64_t out_width() const { return out_w_; }
  int64_t size() const { return n_; }  // samples in the list

  ReaderStats stats() const;  // the current interval
  ReaderStats take_stats();   // the current interval, then starts a new one
  int64_t skipped_total() const;
  // Samples normalised with statistics known from an earlier read, since construction: kept ones,
  // or stored ones that passed their check then (not the second read of a sample whose stored
  // statistics failed their check).
  int64_t norm_stats_reused() const { return stats_reused_.load(); }
  // Samples normalised with statistics stored with them and checked on the way, since construction.
  int64_t norm_stats_stored() const { return stats_stored_.load(); }
  // The memory of the kept normalisation statistics now (kept_stats_bytes; 0 while none are kept).
  int64_t norm_stats_kept_bytes() const;
  // Whether stored statistics were found stale (differing from the data's), and so are no longer used.
  bool stored_stats_refused() const { return stored_refused_.load(); }

  // min(4, hardware threads): the workers when SampleReaderOptions::threads is 0.
  static int default_threads();
  // The memory of kept normalisation statistics (SampleReaderOptions::norm_stats_cache_bytes
  // bounds it): an index of one pointer per sample of a source of `source_samples`, and for each of
  // `kept` samples its statistics (GatherNormalizer::Stats::bytes_for(traces); traces = 0 for
  // per-sample normalisation).
  static int64_t kept_stats_bytes(int64_t source_samples, int64_t kept, int64_t traces);
  // Host memory the reader holds for data, whatever n is: the pinned slots, and the workers'
  // full-size scratch gathers when cropping, writing bf16 or shifting in time.
  int64_t slot_bytes() const { return slot_bytes_ * static_cast<int64_t>(slots_.size()); }
  int64_t scratch_bytes() const { return scratch_bytes_; }

 private:
  struct Slot;
  struct Task;
  struct Scratch;
  void start_workers();
  void stop_workers();
  void worker_main();
  bool cropping() const { return opt_.augment.crop_height > 0 || opt_.augment.crop_width > 0; }
  void process_sample(int64_t seq, int64_t row, const std::vector<int64_t>& perm, Slot& slot, Scratch& scratch,
                      int64_t* set_index, int64_t* skipped, int64_t* bytes);
  std::shared_ptr<const std::vector<int64_t>> permutation(int64_t epoch);  // under mu_
  void epoch_and_batch(int64_t seq, int64_t* epoch, int64_t* batch) const;
  Slot& acquire();      // waits for batch consumed_; rethrows its error
  void release_held();  // gives a slot held by next_host() back to the workers
  void release(Slot& slot);

  const SampleSource& source_;
  SampleReaderOptions opt_;
  int64_t n_ = 0, rank_batch_ = 0, batches_per_epoch_ = 0, first_abs_batch_ = 0;
  int64_t out_h_ = 0, out_w_ = 0, slot_bytes_ = 0, scratch_bytes_ = 0;

  std::vector<std::unique_ptr<Slot>> slots_;
  std::unique_ptr<CudaEvent> compute_ready_;
  std::vector<std::thread> workers_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_;
  std::map<int64_t, std::shared_ptr<const std::vector<int64_t>>> perms_;
  int64_t next_seq_ = 0, next_row_ = 0;  // the next task
  int64_t released_ = 0;                 // batches before this one have left their slots
  int64_t consumed_ = 0;                 // the next batch to return
  bool host_held_ = false;
  bool stop_ = false;
  std::exception_ptr failed_;

  // Stats of the current interval, under mu_.
  double interval_start_ = 0;
  ReaderStats cur_;
  int64_t skipped_total_ = 0;

  // The kept normalisation statistics, by source index (under stats_mu_), and their bytes.
  std::shared_ptr<const GatherNormalizer::Stats> kept_stats(int64_t g) const;
  void keep_stats(int64_t g, const GatherNormalizer& norm);
  mutable std::mutex stats_mu_;
  std::vector<std::shared_ptr<const GatherNormalizer::Stats>> stats_;
  int64_t stats_bytes_ = 0;
  // Samples whose stored statistics passed their check (1), by source index (under stats_mu_;
  // empty until the first).
  bool stored_checked(int64_t g) const;
  void mark_stored_checked(int64_t g);
  std::vector<uint8_t> stored_checked_;
  bool stats_full_ = false;  // the budget is spent: no more are kept
  std::atomic<int64_t> stats_reused_{0};
  std::atomic<int64_t> stats_stored_{0};
  std::atomic<bool> stored_refused_{false};
};

}  // namespace seis
