// Streams a synthetic microseismic set to an HDF5 dataset file: T worker threads each take the
// next sample index, generate the gather (deterministic per (seed, index)) and hand it to the
// thread-safe writer, so at most T gathers are in memory whatever N is. The generator's parameters
// become attributes; the file appears under `out` only when complete.
//
// Ground truth, from the same numbers that draw the label (SynthSampleInfo::picks and events):
//   /picks  compound, one row per arrival on a live trace inside the window (SynthPick):
//           gather i8, trace i8, phase u1 (0 P, 1 S), time_s f8 (from the gather's first sample),
//           event i8; ordered by gather, event, phase, trace;
//   /events compound, one row per event: gather i8, event i8, origin_time_s f8, first_arrival_s
//           f8, last_arrival_s f8 (over the event's picks; NaN without any), x_m f8, z_m f8,
//           snr_db f8 (a gather's SNR; in a record, the event's own); ordered by gather, event.
// Both are 1-D, chunked (4096 rows) and extendible: rows are appended in gather order as gathers
// finish (i8 = int64 little-endian, u1 = uint8, f8 = float64; h5py reads them as structured arrays).
//
// write_synth_record writes one continuous record instead (SynthRecord): /data float32 and /label
// uint8 [T, W] chunked [rows, W], the same tables with gather 0.
#pragma once
#include <cstdint>
#include <string>

#include "io/hdf5_table.h"
#include "io/synth_microseismic.h"

namespace seis {

struct SynthPickRow {
  int64_t gather = 0, trace = 0;
  uint8_t phase = 0;
  double time_s = 0;
  int64_t event = 0;
};

struct SynthEventRow {
  int64_t gather = 0, event = 0;
  double origin_time_s = 0, first_arrival_s = 0, last_arrival_s = 0, x_m = 0, z_m = 0, snr_db = 0;
};

// The table specs of /picks and /events (fields in the order above).
const H5TableSpec& synth_pick_table();
const H5TableSpec& synth_event_table();

// Returns the seconds it took. With `progress`, prints samples/s, MB/s and the ETA to stderr at most
// once a second. Throws InputError naming the file when it cannot be written.
double write_synth_file(const std::string& out, const SynthConfig& cfg, int64_t samples, int threads, int gzip,
                        const std::string& version, bool progress);

struct SynthRecordOptions {
  int64_t samples = 0;             // T
  double events_per_minute = 2.0;  // rate of the Poisson process of origin times
  int64_t block_rows = 0;          // rows generated (and chunked) together; 0: synth_record_block_rows
};

// Rows per block and chunk of a record of W receivers: 4096, fewer where a block of float data
// would pass 32 MiB (so threads x blocks bound the memory whatever T and W), at most T.
int64_t synth_record_block_rows(int64_t samples, int64_t receivers);

// One continuous record of cfg.width receivers (see SynthRecord), generated block by block on
// `threads` threads, each holding one block: memory is threads x block, whatever the length.
// Ground truth first (a pass over the event segments, one at a time), then the blocks in any order.
double write_synth_record(const std::string& out, const SynthConfig& cfg, const SynthRecordOptions& options,
                          int threads, int gzip, const std::string& version, bool progress);

}  // namespace seis
