// Damaged HDF5 files (tests/h5_mutants.h: bits flipped and fields set to extreme values in the
// metadata, truncations; a fixed seed) of the three kinds seisseg reads - gathers with ground truth,
// a continuous record, a file converted from SEG-Y - run through the real commands: info on every
// mutant, and train, predict, detect, evaluate and convert on a share of them; with a few damaged SEG-Y and
// safetensors files beside them. Every run ends by itself (no signal, no hang) with exit 0 or 1; a
// failure is one line on stderr naming the damaged file; what is printed is valid UTF-8 without
// control characters; nothing is left behind (no temporary file; no output after a failure). The
// known HDF5 1.10 crash (a variable-length string claiming 2^34 bytes) gives exactly the vetting
// error in every command.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "cli_util.h"
#include "h5_mutants.h"

namespace seis {
namespace {

namespace fs = std::filesystem;

// How long a run may take before it counts as hung. Far above what any of these runs needs (tens of
// milliseconds); the vetting child's own limit is set below it, so that a hang inside the HDF5
// library is reported by seisseg before this one fires.
constexpr int kHangSeconds = 120;

std::string dir() {
  static const std::string d = test::process_dir("hdf5_mutants");
  return d;
}

struct RunResult {
  bool hung = false;
  int signal = 0;  // the signal that ended it, if one did
  int code = -1;
  std::string out, err;
};

RunResult run(const std::vector<std::string>& args) {
  static int counter = 0;
  const std::string out_file = dir() + "/stdout_" + std::to_string(counter),
                    err_file = dir() + "/stderr_" + std::to_string(counter);
  ++counter;
  std::vector<char*> argv{const_cast<char*>(SEISSEG_BIN)};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int o = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0) ::_exit(126);
    ::setenv("SEISSEG_HDF5_VET_TIMEOUT", "60", 1);
    ::setenv("OMP_NUM_THREADS", "1", 1);
    ::execv(SEISSEG_BIN, argv.data());
    ::_exit(127);
  }
  RunResult r;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kHangSeconds);
  for (;;) {
    const pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.hung = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (!r.hung && WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
  r.out = test::slurp(out_file);
  r.err = test::slurp(err_file);
  std::remove(out_file.c_str());
  std::remove(err_file.c_str());
  return r;
}

// Valid UTF-8 holding no control character but newline and tab.
bool printable_text(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) return false;
      ++i;
      continue;
    }
    const size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (n == 0 || c > 0xf4 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

// Every file under `root`, recursively.
std::vector<std::string> files_under(const std::string& root) {
  std::vector<std::string> v;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file()) v.push_back(it->path().string());
  }
  return v;
}

struct Tally {
  int runs = 0, failures = 0, vetting_errors = 0;
  bool keep = false;  // an assertion failed on the present file: it is kept for a look
};

// The lines of a text.
std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> v;
  for (size_t at = 0; at < s.size();) {
    const size_t nl = s.find('\n', at);
    v.push_back(s.substr(at, nl == std::string::npos ? std::string::npos : nl - at));
    at = nl == std::string::npos ? s.size() : nl + 1;
  }
  return v;
}

// One run and the assertions every run must pass.
void check_run(const std::string& what, const std::string& damaged, const std::vector<std::string>& args,
               const std::string& out_dir, const std::vector<std::string>& outputs, Tally* tally) {
  const RunResult r = run(args);
  ++tally->runs;
  SCOPED_TRACE(what + " on " + damaged);
  ASSERT_FALSE(r.hung) << "no end after " << kHangSeconds << " s";
  ASSERT_EQ(r.signal, 0) << "killed by signal " << r.signal << "; stderr: " << r.err;
  ASSERT_TRUE(r.code == 0 || r.code == 1) << "exit " << r.code << "; stderr: " << r.err;
  EXPECT_TRUE(printable_text(r.out)) << r.out;
  EXPECT_TRUE(printable_text(r.err)) << r.err;
  for (const std::string& f : files_under(out_dir)) {
    EXPECT_NE(f.substr(f.size() - 4), ".tmp") << f << " left behind";
  }
  if (r.code == 1) {
    ++tally->failures;
    // One line naming the file, after any notes the command printed while it worked.
    const std::vector<std::string> l = lines(r.err);
    ASSERT_FALSE(l.empty());
    EXPECT_NE(l.back().find(damaged + ": "), std::string::npos) << r.err;
    for (size_t k = 0; k + 1 < l.size(); ++k) EXPECT_EQ(l[k].rfind("note: ", 0), 0u) << r.err;
    if (r.err.find("malformed HDF5 metadata") != std::string::npos) ++tally->vetting_errors;
    for (const std::string& o : outputs) EXPECT_FALSE(test::file_exists(o)) << o << " written by a failed run";
  }
}

// One command on one damaged file; `outputs` are the files it writes, which must not exist after
// a failure. The assertions every run must pass (a failed one marks *tally).
void check(const std::string& what, const std::string& damaged, const std::vector<std::string>& args,
           const std::string& out_dir, const std::vector<std::string>& outputs, Tally* tally) {
  const int failed_before = testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
  check_run(what, damaged, args, out_dir, outputs, tally);
  if (testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count() != failed_before) {
    tally->keep = true;
  }
}
struct Base {
  std::string path, bytes;
  std::vector<int64_t> meta;
};

Base base(const std::string& path) {
  Base b{path, test::read_bytes(path), {}};
  b.meta = test::metadata_offsets(path, static_cast<int64_t>(b.bytes.size()));
  return b;
}

// The inputs: gathers with ground truth, a record, a converted SEG-Y file, weights, an events file.
struct Inputs {
  Base gathers, record, converted;
  std::string weights, events, segy;
};

const Inputs& inputs() {
  static const Inputs in = [] {
    Inputs i;
    const std::string d = dir();
    auto ok = [](const std::string& args) {
      const auto r = test::run_seisseg(args);
      EXPECT_EQ(r.code, 0) << args << ": " << r.err;
    };
    ok("synth --out " + d + "/gathers.h5 --samples 3 --height 16 --width 8 --events-max 2 --seed 5");
    ok("synth --out " + d + "/record.h5 --continuous --duration 0.2 --receivers 4 --seed 5");
    i.segy = std::string(SEIS_SOURCE_DIR) + "/tests/data/segy/small.sgy";
    ok("convert " + i.segy + " --out " + d + "/converted.h5");
    ok("train --data " + d + "/gathers.h5 --steps 1 --levels 2 --base 2 --batch 1 --val-fraction 0 --out " + d +
       "/run");
    i.gathers = base(d + "/gathers.h5");
    i.record = base(d + "/record.h5");
    i.converted = base(d + "/converted.h5");
    i.weights = d + "/run/weights.safetensors";
    i.events = d + "/events.csv";
    std::ofstream(i.events) << "gather,event,time_ms,n_traces,score\n0,0,10.000,4,0.9000\n";
    return i;
  }();
  return in;
}

// A fresh, empty output directory for one run.
std::string out_dir(const std::string& name) {
  const std::string o = dir() + "/out_" + name;
  fs::remove_all(o);
  fs::create_directories(o);
  return o;
}

// The commands that read a damaged file `m` of gathers (k picks which besides info).
void gathers_commands(const std::string& m, const std::string& tag, int k, bool truth, Tally* t) {
  const Inputs& in = inputs();
  const std::string o = out_dir(tag);
  check("info", m, {"info", m}, o, {}, t);
  if (k % 2 == 1) check("convert", m, {"convert", m, "--out", o + "/c.h5"}, o, {o + "/c.h5"}, t);
  if (k % 3 == 0) {
    check("predict", m,
          {"predict", "--weights", in.weights, "--in", m, "--out", o + "/p.h5", "--picks", o + "/picks.csv", "--events",
           o + "/events.csv"},
          o, {o + "/p.h5", o + "/picks.csv", o + "/events.csv"}, t);
  } else if (k % 3 == 1 && truth) {
    check("evaluate", m, {"evaluate", "--truth", m, "--events", in.events}, o, {}, t);
  } else if (k % 3 == 2 && truth) {
    check("train", m,
          {"train", "--data", m, "--steps", "1", "--levels", "2", "--base", "2", "--batch", "1", "--val-fraction", "0",
           "--out", o + "/run"},
          o, {o + "/run/weights.safetensors"}, t);
  }
}

void record_commands(const std::string& m, const std::string& tag, int k, Tally* t) {
  const Inputs& in = inputs();
  const std::string o = out_dir(tag);
  check("info", m, {"info", m}, o, {}, t);
  if (k % 2 == 0) {
    check("detect", m,
          {"detect", "--in", m, "--method", "sta-lta", "--sta", "0.01", "--lta", "0.05", "--out", o + "/events.csv",
           "--picks", o + "/picks.csv"},
          o, {o + "/events.csv", o + "/picks.csv"}, t);
  } else {
    check("evaluate", m, {"evaluate", "--truth", m, "--events", in.events}, o, {}, t);
  }
}

// `count` mutants of b, each run through commands(file, tag, k); a mutant on which an assertion
// failed is kept.
void mutants(const Base& b, const std::string& name, int count, uint64_t seed, Tally* t,
             const std::function<void(const std::string&, const std::string&, int)>& commands) {
  for (int k = 0; k < count; ++k) {
    test::Mutation kind;
    const std::string m = dir() + "/" + name + "_" + std::to_string(k) + ".h5";
    ASSERT_TRUE(test::write_bytes(m, test::mutate(b.bytes, b.meta, seed, static_cast<uint64_t>(k), &kind)));
    t->keep = false;
    commands(m, name + "_" + std::to_string(k), k);
    if (testing::Test::HasFatalFailure()) return;
    if (!t->keep) {
      std::remove(m.c_str());
      fs::remove_all(dir() + "/out_" + name + "_" + std::to_string(k));
    }
  }
}

TEST(Hdf5Mutants, GathersRecordsAndConvertedFilesNeverCrashHangOrLeaveOutput) {
  const Inputs& in = inputs();
  ASSERT_FALSE(in.gathers.meta.empty());
  Tally t;
  mutants(in.gathers, "gathers", 48, 11, &t,
          [&](const std::string& m, const std::string& tag, int k) { gathers_commands(m, tag, k, true, &t); });
  mutants(in.record, "record", 36, 12, &t,
          [&](const std::string& m, const std::string& tag, int k) { record_commands(m, tag, k, &t); });
  mutants(in.converted, "converted", 18, 13, &t,
          [&](const std::string& m, const std::string& tag, int k) { gathers_commands(m, tag, k, false, &t); });
  // Most damage is found (a failure) and the rest is harmless; both happen.
  EXPECT_GT(t.failures, t.runs / 4);
  EXPECT_LT(t.failures, t.runs);
  std::printf("%d runs on damaged HDF5 files: %d failed cleanly (%d in the vetting child), %d succeeded\n", t.runs,
              t.failures, t.vetting_errors, t.runs - t.failures);
}

TEST(Hdf5Mutants, KnownLibraryCrashIsTheVettingErrorInEveryCommand) {
  const Inputs& in = inputs();
  const std::string g = dir() + "/crash_gathers.h5", r = dir() + "/crash_record.h5";
  ASSERT_TRUE(test::write_bytes(g, test::inflate_global_heap_object(in.gathers.bytes)));
  ASSERT_TRUE(test::write_bytes(r, test::inflate_global_heap_object(in.record.bytes)));
  const std::string o = out_dir("crash");
  struct Case {
    std::string file, prefix;
    std::vector<std::string> args, outputs;
  };
  const std::vector<Case> cases = {
      {g, "seisseg info: ", {"info", g}, {}},
      {g, "seisseg info: ", {"info", "--json", g}, {}},
      {g, "seisseg predict: ", {"predict", "--weights", in.weights, "--in", g, "--out", o + "/p.h5"}, {o + "/p.h5"}},
      {g, "seisseg evaluate: ", {"evaluate", "--truth", g, "--events", in.events}, {}},
      {g, "seisseg convert: ", {"convert", g, "--out", o + "/c.h5"}, {o + "/c.h5"}},
      {g,
       "seisseg train: ",
       {"train", "--data", g, "--steps", "1", "--levels", "2", "--base", "2", "--out", o + "/run"},
       {o + "/run/weights.safetensors"}},
      {g,
       "seisseg train: ",
       {"train", "--data", in.gathers.path, "--val", g, "--steps", "1", "--levels", "2", "--base", "2", "--out",
        o + "/run2"},
       {o + "/run2/weights.safetensors"}},
      {r, "seisseg info: ", {"info", r}, {}},
      {r, "seisseg detect: ", {"detect", "--in", r, "--method", "sta-lta", "--out", o + "/e.csv"}, {o + "/e.csv"}},
      {r,
       "seisseg detect: ",
       {"detect", "--in", in.record.path, "--method", "sta-lta", "--sta", "0.01", "--lta", "0.05", "--tune-on", r,
        "--out", o + "/e2.csv"},
       {o + "/e2.csv"}},
      {r, "seisseg evaluate: ", {"evaluate", "--truth", r, "--events", in.events}, {}},
  };
  for (const Case& c : cases) {
    const RunResult res = run(c.args);
    SCOPED_TRACE(c.args[0] + " " + c.args[1]);
    EXPECT_FALSE(res.hung);
    EXPECT_EQ(res.signal, 0);
    EXPECT_EQ(res.code, 1);
    // (After any progress line the command printed before it reached the file.)
    const std::vector<std::string> l = lines(res.err);
    ASSERT_FALSE(l.empty());
    EXPECT_EQ(l.back(), c.prefix + c.file + ": malformed HDF5 metadata (the HDF5 library failed reading it)")
        << res.err;
    for (const std::string& f : c.outputs) EXPECT_FALSE(test::file_exists(f)) << f;
    for (const std::string& f : files_under(o)) EXPECT_NE(f.substr(f.size() - 4), ".tmp") << f;
  }
}

// Damaged SEG-Y (convert) and safetensors (predict --weights) files: the same guarantees.
TEST(Hdf5Mutants, DamagedSegyAndWeightsNeitherCrashNorLeaveOutput) {
  const Inputs& in = inputs();
  Tally t;
  const std::string segy = test::read_bytes(in.segy), weights = test::read_bytes(in.weights);
  std::vector<int64_t> segy_all(segy.size()), weights_all(weights.size());
  for (size_t i = 0; i < segy_all.size(); ++i) segy_all[i] = static_cast<int64_t>(i);
  // The safetensors header (the 8-byte length and the JSON): the tensor bytes are any floats.
  const size_t header = 8 + static_cast<size_t>(static_cast<unsigned char>(weights[0])) +
                        (static_cast<size_t>(static_cast<unsigned char>(weights[1])) << 8);
  weights_all.resize(std::min(header, weights.size()));
  for (size_t i = 0; i < weights_all.size(); ++i) weights_all[i] = static_cast<int64_t>(i);
  for (int k = 0; k < 15; ++k) {
    test::Mutation kind;
    t.keep = false;
    const std::string o = out_dir("segy_" + std::to_string(k));
    const std::string m = dir() + "/segy_" + std::to_string(k) + ".sgy";
    ASSERT_TRUE(test::write_bytes(m, test::mutate(segy, segy_all, 21, static_cast<uint64_t>(k), &kind)));
    check("convert", m, {"convert", m, "--out", o + "/c.h5"}, o, {o + "/c.h5"}, &t);
    const std::string w = dir() + "/weights_" + std::to_string(k) + ".safetensors";
    ASSERT_TRUE(test::write_bytes(w, test::mutate(weights, weights_all, 22, static_cast<uint64_t>(k), &kind)));
    check("predict", w, {"predict", "--weights", w, "--in", in.gathers.path, "--out", o + "/p.h5"}, o, {o + "/p.h5"},
          &t);
    if (HasFatalFailure()) return;
    if (!t.keep) {
      std::remove(m.c_str());
      std::remove(w.c_str());
      fs::remove_all(o);
    }
  }
  EXPECT_GT(t.failures, 0);
}

}  // namespace
}  // namespace seis
