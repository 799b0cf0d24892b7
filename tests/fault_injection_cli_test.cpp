// Disk and read faults injected into the seisseg program: writes that fail with ENOSPC or EIO (on
// the write, cut short, or on the flush) and fsyncs that fail with EIO, on a checkpoint (state,
// weights, best), metrics.jsonl, the preview, a prediction and its picks CSV, detect's outputs and
// a converted file; read errors in the middle of an epoch (fatal, or skipped with
// --skip-bad-samples) and while opening; and a real full disk (a tmpfs in a private mount
// namespace, skipped visibly where mounts are not allowed). Every failure is exit code 1 and one
// line naming the file and the reason, leaves no temporary file, and leaves the previous file
// byte-identical and loadable. The faults come from tests/fault_inject.c, preloaded into the
// program (LD_PRELOAD).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/aio_abi.h>
#include <sys/syscall.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli_util.h"
#include "h5_util.h"

namespace seis {
namespace {

namespace fs = std::filesystem;
using test::CliResult;
using test::run_seisseg;
using test::slurp;

// What to break (see tests/fault_inject.c).
struct Fault {
  std::string path;          // substring of the file's path
  std::string op;            // write, fsync, read, dread or aio
  std::string err;           // ENOSPC or EIO
  int after = 0;             // matching calls that succeed first
  int count = -1;            // matching calls that fail then (-1: all)
  long size = 0;             // only calls moving exactly this many bytes match (0: any)
  bool short_write = false;  // the first faulty write is cut short (half written) instead
};

std::string reason(const Fault& f) { return f.err == "ENOSPC" ? "No space left on device" : "Input/output error"; }

std::string describe(const Fault& f) {
  return f.op + " " + f.err + " on " + f.path + " after " + std::to_string(f.after) + (f.short_write ? " (short)" : "");
}

CliResult run_with_fault(const Fault& f, const std::string& args) {
  // (Under AddressSanitizer its runtime must come first in the library list, or it refuses to run.)
  const std::string env =
      std::string("LD_PRELOAD=") + SEIS_FAULT_SHIM + " SEIS_FAULT_PATH='" + f.path + "' SEIS_FAULT_OP=" + f.op +
      " SEIS_FAULT_ERRNO=" + f.err + " SEIS_FAULT_AFTER=" + std::to_string(f.after) +
      " SEIS_FAULT_COUNT=" + std::to_string(f.count) + " SEIS_FAULT_SIZE=" + std::to_string(f.size) +
      " SEIS_FAULT_SHORT=" + (f.short_write ? "1" : "0") +
      " ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0\" ";
  return test::run_command(env + SEISSEG_BIN + " " + args);
}

// Exit code 1 and one line, "seisseg CMD: ...", naming `file` and the errno text: no crash, no
// internal error, no second line.
void expect_one_line_error(const CliResult& r, const std::string& cmd, const std::string& file,
                           const std::string& why) {
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(test::count_lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("seisseg " + cmd + ": ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(file), std::string::npos) << "does not name " << file << ": " << r.err;
  EXPECT_NE(r.err.find(why), std::string::npos) << "does not say '" << why << "': " << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
}

// Names of the temporary files (*.tmp) in dir.
std::vector<std::string> temporaries(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".tmp") v.push_back(e.path().filename().string());
  }
  return v;
}

// Fresh copy of `from` at `to`.
void copy_dir(const std::string& from, const std::string& to) {
  fs::remove_all(to);
  fs::copy(from, to, fs::copy_options::recursive);
}

class FaultInjectionCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test::process_dir("fault_injection_cli");
    // 20 training gathers of 32x32, batch 4: 5 batches per epoch.
    ASSERT_EQ(run_seisseg("synth --out " + dir_ + "/train.h5 --samples 20 --height 32 --width 32 --seed 5").code, 0);
    ASSERT_EQ(run_seisseg("synth --out " + dir_ + "/val.h5 --samples 4 --height 32 --width 32 --seed 6").code, 0);
    ASSERT_EQ(run_seisseg("synth --out " + dir_ + "/gathers.h5 --samples 20 --height 32 --width 36 --seed 8").code, 0);
    // A good run of 2 steps, a checkpoint after each: the previous checkpoint of the faulty runs.
    const CliResult r = run_seisseg(train_args(dir_ + "/base") + " --steps 2");
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static std::string train_args(const std::string& out) {
    return "train --data " + dir_ + "/train.h5 --val " + dir_ + "/val.h5 --levels 3 --base 4 --batch 4 " +
           "--device cpu --threads 1 --log-every 1 --save-every 1 --seed 7 --out " + out;
  }
  // The weights load for prediction.
  static void expect_weights_load(const std::string& weights) {
    const CliResult r = run_seisseg("predict --weights " + weights + " --in " + dir_ + "/val.h5 --out " + dir_ +
                                    "/check.h5 --device cpu");
    EXPECT_EQ(r.code, 0) << weights << " does not load: " << r.err;
  }
  static std::string dir_;
};
std::string FaultInjectionCli::dir_;

// The three ways a write of a whole file fails: the data itself (the stream's fwrite), its flush
// (a disk that fills while the buffer goes out) and fsync (an error the disk reports late).
std::vector<Fault> write_faults(const std::string& path) {
  return {{path, "write", "EIO", 0}, {path, "write", "ENOSPC", 1}, {path, "fsync", "EIO", 0}};
}

TEST_F(FaultInjectionCli, CheckpointWriteFaultsKeepThePreviousCheckpoint) {
  // A resumed run saves at step 3: weights.safetensors, then state.safetensors (the commit point).
  for (const char* file : {"state.safetensors", "weights.safetensors"}) {
    const std::string out = dir_ + "/ckpt";
    for (const Fault& f : write_faults(out + "/" + file)) {
      SCOPED_TRACE(describe(f));
      copy_dir(dir_ + "/base", out);
      const std::string before = slurp(out + "/" + file);
      ASSERT_FALSE(before.empty());
      const CliResult r = run_with_fault(f, "train --resume " + out + " --steps 4");
      expect_one_line_error(r, "train", out + "/" + file, reason(f));
      EXPECT_EQ(temporaries(out), std::vector<std::string>{});
      EXPECT_TRUE(slurp(out + "/" + file) == before) << file << " changed";
      // The previous checkpoint loads: its weights predict, the state resumes and finishes.
      expect_weights_load(out + "/weights.safetensors");
      const CliResult resumed = run_seisseg("train --resume " + out + " --steps 4");
      EXPECT_EQ(resumed.code, 0) << resumed.err;
    }
  }
}

TEST_F(FaultInjectionCli, BestCheckpointWriteFaultLeavesNoFileAndTheRunResumes) {
  // The first validation (step 3) always writes the best weights, to best.pending.safetensors until
  // the checkpoint that records their figure; the checkpoint of step 2 stays.
  const std::string out = dir_ + "/best";
  for (const Fault& f : write_faults(out + "/best.pending.safetensors")) {
    SCOPED_TRACE(describe(f));
    fs::remove_all(out);
    const CliResult r = run_with_fault(f, train_args(out) + " --steps 4 --val-every 3");
    expect_one_line_error(r, "train", out + "/best.pending.safetensors", reason(f));
    EXPECT_FALSE(fs::exists(out + "/best.pending.safetensors"));
    EXPECT_EQ(temporaries(out), std::vector<std::string>{});
    EXPECT_FALSE(fs::exists(out + "/best.safetensors"));
    expect_weights_load(out + "/weights.safetensors");
    const CliResult resumed = run_seisseg("train --resume " + out + " --steps 4");
    EXPECT_EQ(resumed.code, 0) << resumed.err;
    expect_weights_load(out + "/best.safetensors");
  }
}

TEST_F(FaultInjectionCli, PreviewWriteFaultIsOneLineAndTheRunResumes) {
  // preview.png is written at the validation of step 3, through libpng's own fwrite calls.
  const std::string out = dir_ + "/preview";
  for (const Fault& f : write_faults(out + "/preview.png")) {
    SCOPED_TRACE(describe(f));
    fs::remove_all(out);
    const CliResult r = run_with_fault(f, train_args(out) + " --steps 4 --val-every 3");
    expect_one_line_error(r, "train", out + "/preview.png", reason(f));
    EXPECT_EQ(temporaries(out), std::vector<std::string>{});
    EXPECT_FALSE(fs::exists(out + "/preview.png"));
    const CliResult resumed = run_seisseg("train --resume " + out + " --steps 4");
    EXPECT_EQ(resumed.code, 0) << resumed.err;
  }
}

TEST_F(FaultInjectionCli, MetricsWriteFaultLeavesWholeLinesOnly) {
  // The second line (step 2) fails: refused outright, or cut short by a full disk.
  const std::string out = dir_ + "/metrics";
  const std::string metrics = out + "/metrics.jsonl";
  for (const Fault& f : {Fault{metrics, "write", "EIO", 1}, Fault{metrics, "write", "ENOSPC", 1, -1, 0, true}}) {
    SCOPED_TRACE(describe(f));
    fs::remove_all(out);
    const CliResult r = run_with_fault(f, train_args(out) + " --steps 3");
    expect_one_line_error(r, "train", metrics, reason(f));
    EXPECT_EQ(temporaries(out), std::vector<std::string>{});
    const std::vector<std::string> lines = test::lines_of(metrics);
    ASSERT_EQ(lines.size(), 1u) << slurp(metrics);
    EXPECT_EQ(nlohmann::json::parse(lines[0]).at("step"), 1) << lines[0];
    // The run resumes from step 1's checkpoint and its metrics read as an uninterrupted run's.
    const CliResult resumed = run_seisseg("train --resume " + out + " --steps 3");
    ASSERT_EQ(resumed.code, 0) << resumed.err;
    std::vector<int64_t> steps;
    for (const std::string& l : test::lines_of(metrics)) {
      const auto j = nlohmann::json::parse(l, nullptr, false);
      ASSERT_TRUE(j.is_object()) << l;
      if (!j.contains("iou")) steps.push_back(j.at("step").get<int64_t>());
    }
    EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3}));
  }
}

TEST_F(FaultInjectionCli, MetricsReadFaultOnResumeLosesNoLine) {
  // A resume rewrites metrics.jsonl to the lines up to its checkpoint: a read that fails part-way
  // must stop it, not rewrite the file with the lines read so far (it did: none).
  const std::string out = dir_ + "/metrics_read";
  copy_dir(dir_ + "/base", out);
  const std::string before = slurp(out + "/metrics.jsonl");
  const CliResult r = run_with_fault({out + "/metrics.jsonl", "read", "EIO"}, "train --resume " + out + " --steps 4");
  expect_one_line_error(r, "train", out + "/metrics.jsonl", "Input/output error");
  EXPECT_EQ(slurp(out + "/metrics.jsonl"), before);
  EXPECT_EQ(temporaries(out), std::vector<std::string>{});
}

TEST_F(FaultInjectionCli, PredictionWriteFaultsKeepThePreviousOutputs) {
  const std::string out = dir_ + "/predict";
  fs::create_directories(out);
  const std::string prob = out + "/prob.h5", picks = out + "/picks.csv";
  const std::string args = "predict --weights " + dir_ + "/base/weights.safetensors --in " + dir_ + "/val.h5 --out " +
                           prob + " --picks " + picks + " --threshold 0.3 --device cpu";
  ASSERT_EQ(run_seisseg(args).code, 0);
  const std::string prob_before = slurp(prob), picks_before = slurp(picks);
  ASSERT_FALSE(prob_before.empty());
  std::vector<Fault> faults = write_faults(prob);
  // The CSV's header goes out when it is opened (before /prob is committed) and its rows at its commit
  // (after): the second is the last output written.
  faults.push_back({picks, "write", "ENOSPC", 0});
  faults.push_back({picks, "write", "EIO", 1});
  faults.push_back({picks, "fsync", "EIO", 0});
  for (const Fault& f : faults) {
    SCOPED_TRACE(describe(f));
    const CliResult r = run_with_fault(f, args);
    expect_one_line_error(r, "predict", f.path, reason(f));
    EXPECT_EQ(temporaries(out), std::vector<std::string>{});
    EXPECT_TRUE(slurp(picks) == picks_before) << "picks.csv changed";
    // /prob is written again, whole, when only the CSV's commit, which comes after it, fails.
    const bool before_prob_commit = f.path == prob || (f.op == "write" && f.after == 0);
    if (before_prob_commit) {
      EXPECT_TRUE(slurp(prob) == prob_before) << "prob.h5 changed";
    }
    std::vector<hsize_t> dims;
    EXPECT_EQ(test::read_all<float>(prob, "prob", H5T_NATIVE_FLOAT, &dims).size(), 4u * 32 * 32);
  }
}

TEST_F(FaultInjectionCli, ConvertWriteFaultsKeepThePreviousOutput) {
  const std::string out = dir_ + "/convert";
  fs::create_directories(out);
  const std::string h5 = out + "/f3.h5";
  const std::string args = "convert " + std::string(SEIS_SOURCE_DIR) + "/tests/data/segy/f3.sgy --out " + h5;
  ASSERT_EQ(run_seisseg(args).code, 0);
  const std::string before = slurp(h5);
  for (const Fault& f : write_faults(h5)) {
    SCOPED_TRACE(describe(f));
    const CliResult r = run_with_fault(f, args);
    expect_one_line_error(r, "convert", h5, reason(f));
    EXPECT_EQ(temporaries(out), std::vector<std::string>{});
    EXPECT_TRUE(slurp(h5) == before) << "f3.h5 changed";
  }
  EXPECT_EQ(run_seisseg("info " + h5).code, 0);
}

TEST_F(FaultInjectionCli, DetectWriteFaultsKeepThePreviousOutputs) {
  const std::string out = dir_ + "/detect";
  fs::create_directories(out);
  ASSERT_EQ(run_seisseg("synth --continuous --duration 4 --receivers 16 --seed 4 --out " + out + "/rec.h5").code, 0);
  const std::string events = out + "/events.csv", prob = out + "/prob.h5";
  const std::string args = "detect --weights " + dir_ + "/base/weights.safetensors --in " + out + "/rec.h5 --out " +
                           events + " --prob " + prob + " --device cpu";
  ASSERT_EQ(run_seisseg(args).code, 0);
  const std::string events_before = slurp(events), prob_before = slurp(prob);
  for (const Fault& f :
       {Fault{events, "write", "ENOSPC", 0}, Fault{prob, "write", "EIO", 0}, Fault{prob, "fsync", "EIO", 0}}) {
    SCOPED_TRACE(describe(f));
    const CliResult r = run_with_fault(f, args);
    // detect reports its progress on stderr: the error is the last line, and every line before it
    // is a progress line ("detect: ..."), not a second error or a warning.
    EXPECT_EQ(r.code, 1) << r.err;
    const std::string last = r.err.substr(r.err.rfind('\n', r.err.size() - 2) + 1);
    expect_one_line_error({r.code, "", last}, "detect", f.path, reason(f));
    std::istringstream before(r.err.substr(0, r.err.size() - last.size()));
    for (std::string line; std::getline(before, line);) {
      EXPECT_EQ(line.rfind("detect: ", 0), 0u) << "not a progress line before the error: " << line;
    }
    EXPECT_EQ(temporaries(out), std::vector<std::string>{});
    EXPECT_TRUE(slurp(events) == events_before) << "events.csv changed";
    EXPECT_TRUE(slurp(prob) == prob_before) << "prob.h5 changed";
  }
}

// Training on gathers.h5 (20 gathers of 32x36, no validation: one epoch is 5 steps).
std::string read_args(const std::string& dir, const std::string& out) {
  return "train --data " + dir +
         "/gathers.h5 --val-fraction 0 --levels 3 --base 4 --batch 4 --device cpu "
         "--threads 1 --log-every 1 --save-every 1 --seed 7 --steps 5 --out " +
         out;
}

// Reads of whole gathers of gathers.h5 (32 x 36 float32: no HDF5 metadata read has that size).
Fault gather_read_fault(const std::string& dir, int after, int count) {
  return {dir + "/gathers.h5", "read", "EIO", after, count, 32 * 36 * 4};
}

TEST_F(FaultInjectionCli, ReadErrorMidEpochNamesTheFileAndTheSample) {
  const std::string out = dir_ + "/read";
  fs::remove_all(out);
  // Seven of the epoch's twenty gathers are read, then the disk fails for good.
  const CliResult r = run_with_fault(gather_read_fault(dir_, 7, -1), read_args(dir_, out));
  expect_one_line_error(r, "train", dir_ + "/gathers.h5: sample ", "Input/output error");
  EXPECT_NE(r.err.find(": reading /data at byte "), std::string::npos) << r.err;
  EXPECT_EQ(temporaries(out), std::vector<std::string>{});
  // The last checkpoint (a step before the fault) loads and the run resumes.
  const CliResult resumed = run_seisseg("train --resume " + out);
  EXPECT_EQ(resumed.code, 0) << resumed.err;
}

TEST_F(FaultInjectionCli, ReadErrorMidEpochIsSkippedAndCountedWithSkipBadSamples) {
  const std::string out = dir_ + "/read_skip";
  fs::remove_all(out);
  // One read fails: that gather gives way to the next in the permutation, and is counted.
  const CliResult r = run_with_fault(gather_read_fault(dir_, 7, 1), read_args(dir_, out) + " --skip-bad-samples");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(test::count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("skipping a sample that cannot be read"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(dir_ + "/gathers.h5: sample "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Input/output error"), std::string::npos) << r.err;
  nlohmann::json last;
  for (const std::string& l : test::lines_of(out + "/metrics.jsonl")) last = nlohmann::json::parse(l);
  EXPECT_EQ(last.value("step", 0), 5) << last.dump();
  EXPECT_EQ(last.value("skipped_samples", 0), 1) << last.dump();
}

TEST_F(FaultInjectionCli, ReadErrorWhileOpeningIsNotCalledABadFile) {
  // Every read of the file fails from the first: an I/O error, not "not an HDF5 file" nor
  // "no /data" (what the library's failures used to be taken for); not skippable either.
  const std::string out = dir_ + "/read_open";
  for (const char* skip : {"", " --skip-bad-samples"}) {
    SCOPED_TRACE(skip);
    fs::remove_all(out);
    const CliResult r = run_with_fault({dir_ + "/gathers.h5", "read", "EIO"}, read_args(dir_, out) + skip);
    expect_one_line_error(r, "train", dir_ + "/gathers.h5: ", "Input/output error");
    EXPECT_EQ(r.err.find("not an HDF5 file"), std::string::npos) << r.err;
  }
}

// --direct-io on where the storage refuses O_DIRECT reads (EINVAL on the first): the reader falls
// back to page-cache reads and the run is the run without direct reads, bit for bit. A direct read
// that fails with EIO is a read error like any other: one line naming the file and the sample.
TEST_F(FaultInjectionCli, DirectReadsRefusedFallBackAndFailedOnesNameTheFile) {
  const int probe = ::open((dir_ + "/gathers.h5").c_str(), O_RDONLY | O_DIRECT);
  if (probe < 0) GTEST_SKIP() << dir_ << " refuses O_DIRECT: there are no direct reads to break";
  ::close(probe);
  const std::string plain = dir_ + "/direct_off", refused = dir_ + "/direct_refused", failed = dir_ + "/direct_eio",
                    failed_aio = dir_ + "/direct_aio_eio";
  for (const std::string& d : {plain, refused, failed, failed_aio}) fs::remove_all(d);
  const CliResult a = run_seisseg(read_args(dir_, plain) + " --direct-io off");
  ASSERT_EQ(a.code, 0) << a.err;
  const CliResult b =
      run_with_fault({dir_ + "/gathers.h5", "dread", "22", 0, 1}, read_args(dir_, refused) + " --direct-io on");
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.out.find("around the page cache (O_DIRECT, --direct-io on)"), std::string::npos) << b.out;
  const std::string w = slurp(plain + "/weights.safetensors");
  EXPECT_FALSE(w.empty());
  EXPECT_TRUE(w == slurp(refused + "/weights.safetensors")) << "the fallback changed the run";
  const CliResult c =
      run_with_fault({dir_ + "/gathers.h5", "dread", "EIO", 3, -1}, read_args(dir_, failed) + " --direct-io on");
  expect_one_line_error(c, "train", dir_ + "/gathers.h5: sample ", "Input/output error");
  EXPECT_NE(c.err.find(": reading /"), std::string::npos) << c.err;  // (/data or /label: both read direct)
  // A disk error reported in an AIO read's completion (two reads in flight per worker), not by a
  // pread: the same one line (where the kernel gives AIO contexts: else the reads are preads).
  aio_context_t ctx = 0;
  if (::syscall(SYS_io_setup, 2, &ctx) != 0) GTEST_SKIP() << "no native AIO here: the AIO fault is not tested";
  ::syscall(SYS_io_destroy, ctx);
  const CliResult d =
      run_with_fault({dir_ + "/gathers.h5", "aio", "EIO", 3, -1}, read_args(dir_, failed_aio) + " --direct-io on");
  expect_one_line_error(d, "train", dir_ + "/gathers.h5: sample ", "Input/output error");
  EXPECT_NE(d.err.find(": reading /"), std::string::npos) << d.err;
}

// Direct reads straight into the slots (256x256 gathers: chunks and places on 4 KiB), with two AIO
// reads in flight and with none (the shim's dread op with no fault disables AIO: one pread at a
// time into the slot), train as page-cache reads do: the same weights, byte for byte.
TEST_F(FaultInjectionCli, DirectReadsInPlaceWithAndWithoutAioTrainTheSame) {
  const std::string data = dir_ + "/aligned.h5";
  ASSERT_EQ(run_seisseg("synth --out " + data + " --samples 8 --height 256 --width 256 --seed 9").code, 0);
  const int probe = ::open(data.c_str(), O_RDONLY | O_DIRECT);
  if (probe < 0) GTEST_SKIP() << dir_ << " refuses O_DIRECT";
  ::close(probe);
  auto args = [&](const std::string& out) {
    return "train --data " + data + " --val-fraction 0 --levels 3 --base 4 --batch 2 --device cpu --threads 2 " +
           "--steps 6 --seed 3 --out " + out;
  };
  const std::string plain = dir_ + "/inplace_off", aio = dir_ + "/inplace_aio", no_aio = dir_ + "/inplace_pread";
  for (const std::string& d : {plain, aio, no_aio}) fs::remove_all(d);
  const CliResult a = run_seisseg(args(plain) + " --direct-io off");
  ASSERT_EQ(a.code, 0) << a.err;
  const CliResult b = run_seisseg(args(aio) + " --direct-io on");
  ASSERT_EQ(b.code, 0) << b.err;
  const CliResult c = run_with_fault({data, "dread", "EIO", 1 << 30, -1}, args(no_aio) + " --direct-io on");
  ASSERT_EQ(c.code, 0) << c.err;
  const std::string w = slurp(plain + "/weights.safetensors");
  EXPECT_FALSE(w.empty());
  EXPECT_TRUE(w == slurp(aio + "/weights.safetensors")) << "direct reads with AIO changed the run";
  EXPECT_TRUE(w == slurp(no_aio + "/weights.safetensors")) << "direct reads without AIO changed the run";

  // A file system that refuses O_DIRECT on the first block (EINVAL in its AIO completion) while the
  // second, in flight beside it, lands in the slot: the gather is read again through the page cache
  // over it, and direct reads stay off. Gathers of 1100 rows of 4 KiB: two I/O blocks each.
  const std::string two = dir_ + "/two_blocks.h5";
  ASSERT_EQ(run_seisseg("synth --out " + two + " --samples 2 --height 1100 --width 1024 --seed 10").code, 0);
  aio_context_t ctx = 0;
  if (::syscall(SYS_io_setup, 2, &ctx) != 0) GTEST_SKIP() << "no native AIO here";
  ::syscall(SYS_io_destroy, ctx);
  auto two_args = [&](const std::string& out) {
    return "train --data " + two + " --val-fraction 0 --levels 3 --base 2 --batch 1 --device cpu --threads 1 " +
           "--steps 2 --seed 3 --out " + out;
  };
  const std::string two_plain = dir_ + "/two_off", two_refused = dir_ + "/two_refused";
  for (const std::string& d : {two_plain, two_refused}) fs::remove_all(d);
  const CliResult e = run_seisseg(two_args(two_plain) + " --direct-io off");
  ASSERT_EQ(e.code, 0) << e.err;
  const CliResult f = run_with_fault({two, "aio", "22", 0, 1}, two_args(two_refused) + " --direct-io on");
  ASSERT_EQ(f.code, 0) << f.err;
  const std::string w2 = slurp(two_plain + "/weights.safetensors");
  EXPECT_FALSE(w2.empty());
  EXPECT_TRUE(w2 == slurp(two_refused + "/weights.safetensors")) << "a refusal after a block landed changed the run";
}

TEST_F(FaultInjectionCli, RealFullDiskDuringACheckpointKeepsThePreviousOne) {
  // A 4 MiB tmpfs, mounted in a private mount namespace (it goes when the namespace does), filled
  // up after a good run of 2 steps: the resumed run's checkpoint at step 3 meets a full disk.
  // (--log-every 100: no metrics line is due before it.)
  if (std::system("unshare -m sh -c 'mount -t tmpfs -o size=64k tmpfs /mnt' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs in a private mount namespace here (needs CAP_SYS_ADMIN)";
  }
  const std::string host = dir_ + "/full";  // what the script reports, outside the tmpfs
  fs::remove_all(host);
  fs::create_directories(host + "/mnt");
  const std::string bin = SEISSEG_BIN, run = host + "/mnt/run";
  std::ofstream(host + "/script.sh")
      << "set -u\n"
      << "mount -t tmpfs -o size=4m tmpfs " << host << "/mnt || exit 3\n"
      << bin << " " << train_args(run) << " --steps 2 >/dev/null 2>&1 || exit 4\n"
      << "cd " << run << " || exit 5\n"
      << "sha256sum state.safetensors > " << host
      << "/before.txt\n"
      // Full but for 48 KiB: room for config.json and metrics.jsonl, not for the 100 KiB state.
      << "dd if=/dev/zero of=" << host << "/mnt/fill bs=4k >/dev/null 2>&1\n"
      << "truncate -s -48K " << host << "/mnt/fill\n"
      << bin << " train --resume " << run << " --steps 4 --log-every 100 >/dev/null 2>" << host << "/err.txt\n"
      << "echo $? > " << host << "/code.txt\n"
      << "ls -a > " << host << "/ls.txt\n"
      << "sha256sum state.safetensors > " << host << "/after.txt\n"
      << "rm " << host << "/mnt/fill\n"
      << bin << " train --resume " << run << " --steps 4 >/dev/null 2>" << host << "/resume_err.txt\n"
      << "echo $? > " << host << "/resume_code.txt\n";
  const CliResult r = test::run_command("unshare -m sh " + host + "/script.sh");
  ASSERT_EQ(r.code, 0) << r.err;
  CliResult faulty;
  faulty.code = std::stoi(slurp(host + "/code.txt"));
  faulty.err = slurp(host + "/err.txt");
  expect_one_line_error(faulty, "train", run + "/state.safetensors", "No space left on device");
  EXPECT_EQ(slurp(host + "/ls.txt").find(".tmp"), std::string::npos) << slurp(host + "/ls.txt");
  // state.safetensors is the checkpoint's commit point, written last (weights.safetensors, written
  // before it, may already hold step 3, which the resumed run writes again): it is the step-2 one.
  EXPECT_EQ(slurp(host + "/after.txt"), slurp(host + "/before.txt"));
  EXPECT_EQ(slurp(host + "/resume_code.txt"), "0\n") << slurp(host + "/resume_err.txt");
}

}  // namespace
}  // namespace seis
