// io/hdf5_vet.h: the child process that walks an HDF5 file before this process lets the library read
// its metadata. The mechanism (a walk that finishes, dies by a signal, hangs or throws), a file known
// to crash HDF5 1.10 in H5Aread of a variable-length string (each reader of io/ gives the one-line
// error naming it, and this test process survives), one that makes it loop (an error after the time
// limit), sound files opened as before, and attribute names and values from files made printable.
#include "io/hdf5_vet.h"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli_util.h"
#include "engine/error.h"
#include "h5_mutants.h"
#include "io/ground_truth.h"
#include "io/hdf5_dataset.h"
#include "io/hdf5_record.h"
#include "io/hdf5_table.h"
#include "io/synth_file.h"

namespace seis {
namespace {

std::string dir() {
  static const std::string d = test::process_dir("hdf5_vet");
  return d;
}

// A small synthetic file of gathers and a continuous record, written by seisseg synth.
const std::string& gathers_file() {
  static const std::string p = [] {
    const std::string f = dir() + "/gathers.h5";
    const auto r = test::run_seisseg("synth --out " + f + " --samples 2 --height 16 --width 8 --seed 3");
    EXPECT_EQ(r.code, 0) << r.err;
    return f;
  }();
  return p;
}

const std::string& record_file() {
  static const std::string p = [] {
    const std::string f = dir() + "/record.h5";
    const auto r = test::run_seisseg("synth --out " + f + " --continuous --duration 0.1 --receivers 4 --seed 3");
    EXPECT_EQ(r.code, 0) << r.err;
    return f;
  }();
  return p;
}

// The known crash (tests/h5_mutants.h) of a valid file, written next to it.
std::string crash_copy(const std::string& valid, const std::string& name) {
  const std::string bytes = test::inflate_global_heap_object(test::read_bytes(valid));
  EXPECT_FALSE(bytes.empty()) << valid << " has no global heap";
  const std::string path = dir() + "/" + name;
  EXPECT_TRUE(test::write_bytes(path, bytes));
  return path;
}

std::string malformed(const std::string& path) {
  return path + ": malformed HDF5 metadata (the HDF5 library failed reading it)";
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

TEST(VettingChild, FinishesDiesOrTimesOut) {
  constexpr int64_t kBudget = int64_t{1} << 30;
  EXPECT_EQ(h5_run_vetting_child([] { return true; }, 60, kBudget).kind, H5VetOutcome::finished);
  EXPECT_EQ(h5_run_vetting_child([] { return false; }, 60, kBudget).kind, H5VetOutcome::refused);
  const H5VetOutcome segv = h5_run_vetting_child(
      [] {
        std::raise(SIGSEGV);
        return true;
      },
      60, kBudget);
  EXPECT_EQ(segv.kind, H5VetOutcome::signalled);
  EXPECT_EQ(segv.signal, SIGSEGV);
  const H5VetOutcome abrt = h5_run_vetting_child([]() -> bool { std::abort(); }, 60, kBudget);
  EXPECT_EQ(abrt.kind, H5VetOutcome::signalled);
  EXPECT_EQ(abrt.signal, SIGABRT);
  EXPECT_EQ(h5_run_vetting_child(
                [] {
                  ::pause();
                  return true;
                },
                0.2, kBudget)
                .kind,
            H5VetOutcome::timed_out);
  // Errors reported by the walk are no failure of the library: this process reports them itself.
  EXPECT_EQ(h5_run_vetting_child([]() -> bool { throw InputError("x"); }, 60, kBudget).kind, H5VetOutcome::finished);
  // The address space is limited: 4 GiB more than at the fork cannot be had (and is not taken).
  // (Not under a sanitizer: its shadow memory makes an address-space limit meaningless.)
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  EXPECT_EQ(h5_run_vetting_child(
                [] {
                  try {
                    std::vector<char> big(size_t{4} << 30, 1);
                    return big[12345] == 1;
                  } catch (const std::bad_alloc&) {
                    return false;
                  }
                },
                60, kBudget)
                .kind,
            H5VetOutcome::refused);
#endif
  // Nothing the child does reaches this process: it writes to /dev/null and exits with _exit.
  EXPECT_FALSE(h5_in_vet_child());
}

TEST(Vet, KnownLibraryCrashIsAnErrorNamingTheFile) {
  const std::string g = crash_copy(gathers_file(), "crash_gathers.h5");
  const std::string r = crash_copy(record_file(), "crash_record.h5");
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  if (major == 1 && minor == 10) {
    // The library itself dies on these files: what every reader below would have done.
    for (const std::string& path : {g, r}) {
      const H5VetOutcome raw = h5_run_vetting_child(
          [&] {
            H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
            const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
            const hid_t root = H5Gopen2(f, "/", H5P_DEFAULT);
            H5Aiterate2(
                root, H5_INDEX_NAME, H5_ITER_INC, nullptr,
                [](hid_t loc, const char* name, const H5A_info_t*, void*) -> herr_t {
                  const hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
                  const hid_t t = H5Aget_type(a);
                  if (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0) {
                    char* p = nullptr;
                    H5Aread(a, t, &p);
                  }
                  return 0;
                },
                nullptr);
            return true;
          },
          60, int64_t{1} << 30);
#ifndef __SANITIZE_THREAD__  // ThreadSanitizer's own SIGSEGV handler keeps the child from dying of it
      EXPECT_EQ(raw.kind, H5VetOutcome::signalled) << path << ": HDF5 " << major << "." << minor << "." << release;
#else
      EXPECT_NE(raw.kind, H5VetOutcome::finished) << path;
#endif
    }
  }
  EXPECT_EQ(error_of([&] { H5SampleFile f(g); }), malformed(g));
  EXPECT_EQ(error_of([&] { H5RecordFile f(r); }), malformed(r));
  EXPECT_EQ(error_of([&] { H5TableReader t(g, synth_pick_table()); }), malformed(g));
  EXPECT_EQ(error_of([&] { read_ground_truth(r); }), malformed(r));
  EXPECT_FALSE(h5_is_record(r));
  // Each outcome is kept for the file as it is: asked again, the same answer.
  EXPECT_EQ(error_of([&] { H5SampleFile f(g); }), malformed(g));
}

TEST(Vet, LibraryHangIsAnErrorAfterTheTimeLimit) {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  if (major != 1 || minor != 10) GTEST_SKIP() << "the file loops HDF5 1.10; this is " << major << "." << minor;
  // (tests/data/hdf5/SOURCE.md.) The limit is set low, so that the test does not wait 120 s.
  const std::string path = std::string(SEIS_SOURCE_DIR) + "/tests/data/hdf5/hang_global_heap.h5";
  const auto r = test::run_command("SEISSEG_HDF5_VET_TIMEOUT=2 " + std::string(SEISSEG_BIN) + " info " + path);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "seisseg info: " + path +
                       ": malformed HDF5 metadata (the HDF5 library did not finish reading it within 2 s)\n");
}

// Fuzz findings (tests/data/hdf5/SOURCE.md): the library faults in the vetting child, the command
// says so in one line.
TEST(Vet, LibraryFaultIsAnError) {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  if (major != 1 || minor != 10) GTEST_SKIP() << "the file faults HDF5 1.10; this is " << major << "." << minor;
  for (const char* name : {"overlap_global_heap.h5", "oom_global_heap.h5"}) {
    const std::string path = std::string(SEIS_SOURCE_DIR) + "/tests/data/hdf5/" + name;
    const auto r = test::run_command(std::string(SEISSEG_BIN) + " info " + path);
    EXPECT_EQ(r.code, 1) << name;
    EXPECT_EQ(r.err, "seisseg info: " + path + ": malformed HDF5 metadata (the HDF5 library failed reading it)\n");
  }
}

// A gather declared 2^32 traces wide and never written (tests/data/hdf5/SOURCE.md): one line, exit 1.
TEST(Vet, VeryWideGatherIsOneLine) {
  const std::string path = std::string(SEIS_SOURCE_DIR) + "/tests/data/hdf5/wide_gathers.h5";
  const auto r = test::run_command(std::string(SEISSEG_BIN) + " info " + path);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "seisseg info: " + path +
                       ": gathers of 1 x 4278190088 values exceed the 4 GiB of float32 that one gather (one HDF5 "
                       "chunk) can hold\n");
}

// A fuzz finding (tests/data/hdf5/SOURCE.md): gathers of 1 x 8845070288275111944 values, whose bytes
// overflowed int64 in H5SampleFile's open (UBSan in the vetting child): one line, exit 1.
TEST(Vet, GathersPastInt64ByteCountsAreOneLine) {
  const std::string path = std::string(SEIS_SOURCE_DIR) + "/tests/data/hdf5/overflow_gathers.h5";
  const auto r = test::run_command(std::string(SEISSEG_BIN) + " info " + path);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "seisseg info: " + path +
                       ": /data declares gathers of 1 x 8845070288275111944 values, more than 64-bit byte counts can "
                       "address\n");
}

TEST(Vet, SoundFilesOpenAndReadAsBefore) {
  H5SampleFile g(gathers_file());
  EXPECT_EQ(g.info().n, 2);
  EXPECT_EQ(g.info().attributes.at("generator"), "seisseg synth");
  std::vector<float> data(16 * 8);
  std::vector<uint8_t> label(data.size());
  g.read(1, data.data(), label.data());
  H5RecordFile r(record_file());
  EXPECT_EQ(r.info().receivers, 4);
  EXPECT_GT(r.info().dt, 0);
  const GroundTruth t = read_ground_truth(gathers_file());
  EXPECT_EQ(t.gathers, 2);
}

// A file whose attribute names and values hold a terminal escape, a newline and invalid UTF-8.
std::string hostile_attributes_file() {
  const std::string path = dir() + "/attributes.h5";
  const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hsize_t dims[3] = {1, 4, 4};
  const hid_t space = H5Screate_simple(3, dims, nullptr);
  const hid_t d = H5Dcreate2(f, "data", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const std::vector<float> zeros(16, 0.0f);
  H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data());
  const hid_t scalar = H5Screate(H5S_SCALAR);
  const hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  const char* value = "red \x1b[31m\nnext line \xff\xfe end";
  const hid_t a = H5Acreate2(f, "note\x1b]0;title\x07", t, scalar, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, t, &value);
  H5Aclose(a);
  H5Tclose(t);
  H5Sclose(scalar);
  H5Dclose(d);
  H5Sclose(space);
  H5Fclose(f);
  return path;
}

bool printable_utf8_lines(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c < 0x20 && c != '\n') || c == 0x7f || c >= 0x80) return false;  // (these files hold only ASCII text)
  }
  return true;
}

TEST(Vet, AttributeTextFromFilesIsPrintable) {
  const std::string path = hostile_attributes_file();
  H5SampleFile f(path);
  ASSERT_EQ(f.info().attributes.size(), 1u);
  const auto& [name, value] = *f.info().attributes.begin();
  EXPECT_EQ(name, "note\\x1b]0;title\\x07");
  EXPECT_EQ(value, "red \\x1b[31m\\nnext line \\xff\\xfe end");
  const auto text = test::run_seisseg("info " + path);
  EXPECT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("note\\x1b]0;title\\x07 = red \\x1b[31m\\nnext line"), std::string::npos) << text.out;
  EXPECT_TRUE(printable_utf8_lines(text.out)) << text.out;
  const auto json = test::run_seisseg("info --json " + path);
  EXPECT_EQ(json.code, 0) << json.err;
  const nlohmann::json j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["attributes"]["note\\x1b]0;title\\x07"], "red \\x1b[31m\\nnext line \\xff\\xfe end");
}

}  // namespace
}  // namespace seis
