// H5SampleWriter when writing fails, and its bookkeeping of written pieces: a writer that fails
// (or is dropped) closes every HDF5 id it opened, so that HDF5's shutdown cannot crash on a file
// it had already freed (HDF5 1.10 does after a failed H5Fclose); the program gives one line and a
// non-zero exit for a write that fails (a file size limit) and refuses, before creating anything,
// an output larger than the free disk space; the written pieces are tracked in memory that does
// not grow with the file's length, whatever order they come in.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "cli_util.h"
#include "engine/error.h"
#include "io/hdf5_dataset.h"
#include "io/hdf5_record.h"

namespace seis {
namespace {

std::string dir() {
  static const std::string d = seis::test::process_dir("h5_writer_failure");
  return d;
}

using seis::test::file_exists;

// Runs body() in a child process and returns its exit status (-1 when it did not exit normally:
// a crash). The child never returns into the test framework.
template <typename F>
int in_child(F body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
      code = 98;
    }
    ::_exit(code);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return -2;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Open HDF5 files of this process, or -1 when the library cannot say.
ssize_t open_files() { return H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE); }

TEST(Hdf5WriterFailure, ADroppedWriterWhoseFileCannotBeFlushedClosesItAndShutdownDoesNotCrash) {
  // A record of 8192 chunks of 1023 x 2^20 float32 (4 GiB each), allocated when it is created
  // (uncompressed): 32 TiB of addresses, past the 16 TiB that ext4 (and overlayfs on it) allow in
  // one file, so the chunk index that HDF5 writes when the file is closed cannot be written
  // (EFBIG). That H5Fclose failed, left HDF5 a freed file under a live id, and H5close (what HDF5
  // runs at exit) crashed on it. The file holds 96 bytes meanwhile: nothing is written before.
  // (Where one file may pass 32 TiB, xfs or tmpfs, the close succeeds anyway: the same checks.)
  const std::string path = dir() + "/32tib.h5";
  const int code = in_child([&] {
    H5SampleWriter::Options o;
    o.record = true;
    o.record_chunk_rows = 1023;
    o.height = 8192 * o.record_chunk_rows;
    o.width = int64_t{1} << 20;
    { H5SampleWriter w(path, o); }  // dropped uncommitted: the temporary file is discarded
    if (file_exists(path + ".tmp") || file_exists(path)) return 2;
    if (open_files() != 0) return 3;
    return H5close() < 0 ? 4 : 0;
  });
  EXPECT_EQ(code, 0) << "-1: the child crashed; 3: a file left open";
}

TEST(Hdf5WriterFailure, WriteFailureUnderAFileSizeLimitIsOneLineAndNoCrash) {
  // 20 MB allowed (SIGXFSZ ignored, so that the write fails with EFBIG instead of killing the
  // program): a 64 MB record fails mid-way, and so does the flush of its discarded file.
  const std::string out = dir() + "/limited.h5";
  for (const char* extra : {"", " --gzip 1"}) {
    const test::CliResult r = test::run_command(
        "bash -c \"ulimit -f 20000; trap '' XFSZ; exec " + std::string(SEISSEG_BIN) + " synth --out " + out +
        " --continuous --duration 200 --receivers 128 --threads 2" + extra + "\"");
    EXPECT_EQ(r.code, 1) << extra << ": " << r.err;  // -1: a crash (it was SIGSEGV at exit)
    // One error line (progress lines, once a second, may come before it on a slow machine).
    const std::string last = r.err.substr(r.err.rfind('\n', r.err.size() - 2) + 1);
    EXPECT_EQ(last.rfind("seisseg synth: ", 0), 0u) << r.err;
    EXPECT_EQ(r.err.find("seisseg synth: "), r.err.size() - last.size()) << "one error line: " << r.err;
    EXPECT_NE(last.find(out + ": writing rows"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("File too large"), std::string::npos) << r.err;
    EXPECT_FALSE(file_exists(out));
    EXPECT_FALSE(file_exists(out + ".tmp"));
  }
}

TEST(Hdf5WriterFailure, SynthRefusesAnOutputLargerThanTheFreeDiskBeforeCreatingIt) {
  const std::string out = dir() + "/absurd.h5";
  struct Case {
    std::string flags, named;
  };
  const std::vector<Case> cases = {
      {"--continuous --duration 2e9 --receivers 1048576", "--duration x --receivers"},
      {"--continuous --duration 2e9 --receivers 1048576 --gzip 9", "--duration x --receivers"},
      {"--samples 1099511627776 --height 1024 --width 1024", "--samples x --height x --width"},
  };
  for (const Case& c : cases) {
    const test::CliResult res = test::run_seisseg("synth --out " + out + " " + c.flags + " --threads 1");
    EXPECT_EQ(res.code, 2) << c.flags << ": " << res.err;  // a UsageError, not a crash (it was exit 139)
    EXPECT_EQ(test::count_lines(res.err), 1) << res.err;
    EXPECT_NE(res.err.find(c.named + ": the file needs"), std::string::npos) << res.err;
    EXPECT_NE(res.err.find("are free where --out " + out), std::string::npos) << res.err;
    EXPECT_FALSE(file_exists(out + ".tmp")) << "created before the check";
    EXPECT_FALSE(file_exists(out));
  }
}

H5SampleWriter::Options small_record(int gzip) {
  H5SampleWriter::Options o;
  o.record = true;
  o.height = 10;
  o.width = 3;
  o.record_chunk_rows = 3;  // chunks 0..3, the last of 1 row
  o.gzip_level = gzip;
  return o;
}

TEST(Hdf5WriterFailure, CommitNamesTheFirstPieceNeverWrittenWhateverTheOrder) {
  const std::vector<float> d(9, 0.5f);
  const std::vector<uint8_t> l(9, 1);
  auto rows = [](int64_t c) { return std::min<int64_t>(3, 10 - 3 * c); };
  // Out of order, one chunk twice: committed.
  {
    const std::string path = dir() + "/any_order.h5";
    H5SampleWriter w(path, small_record(0));
    for (int64_t c : {2, 0, 3, 0, 1}) w.write_rows(3 * c, rows(c), d.data(), l.data());
    w.commit();
    H5RecordFile f(path);
    EXPECT_EQ(f.info().samples, 10);
    std::vector<float> got(30);
    f.read_rows(0, 10, got.data(), nullptr);
    for (float v : got) ASSERT_EQ(v, 0.5f);
  }
  // A chunk written twice does not stand in for one never written.
  for (const std::vector<int64_t>& order : {std::vector<int64_t>{3, 0, 0, 2}, std::vector<int64_t>{0, 0, 0}}) {
    const std::string path = dir() + "/missing.h5";
    H5SampleWriter w(path, small_record(1));
    for (int64_t c : order) w.write_rows(3 * c, rows(c), d.data(), l.data());
    try {
      w.commit();
      ADD_FAILURE() << "commit with a chunk missing";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("chunk 1 never written"), std::string::npos) << e.what();
    }
  }
  // Gathers: sample by sample.
  H5SampleWriter::Options g;
  g.n = 4;
  g.height = 3;
  g.width = 3;
  H5SampleWriter w(dir() + "/gathers.h5", g);
  for (int64_t i : {3, 1, 0}) w.write(i, d.data(), l.data());
  try {
    w.commit();
    ADD_FAILURE() << "commit with a sample missing";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sample 2 never written"), std::string::npos) << e.what();
  }
}

TEST(Hdf5WriterFailure, APieceCountOfTwoToTheFortyNeedsNoMemoryPerPiece) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "AddressSanitizer reserves terabytes of shadow address space: an address-space limit cannot hold";
#endif
  // 2^40 chunks of one row (compressed: nothing is allocated in the file until written). One flag
  // per chunk was 1 TiB; the child runs under a 2 GiB address-space limit and must create and
  // drop the writer well within a few seconds.
  const std::string path = dir() + "/long.h5";
  const auto t0 = std::chrono::steady_clock::now();
  const int code = in_child([&] {
    struct rlimit lim {};
    lim.rlim_cur = lim.rlim_max = rlim_t{2} << 30;
    if (::setrlimit(RLIMIT_AS, &lim) != 0) return 5;
    H5SampleWriter::Options o;
    o.record = true;
    o.height = int64_t{1} << 40;
    o.width = 1;
    o.record_chunk_rows = 1;
    o.gzip_level = 1;
    {
      H5SampleWriter w(path, o);
      const float v = 1.0f;
      const uint8_t l = 0;
      w.write_rows((int64_t{1} << 40) - 1, 1, &v, &l);  // the last chunk first
      w.write_rows(0, 1, &v, &l);
    }
    return file_exists(path + ".tmp") ? 2 : 0;
  });
  EXPECT_EQ(code, 0) << "98: an exception (std::bad_alloc under the limit), -1: a crash";
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0);
}

}  // namespace
}  // namespace seis
