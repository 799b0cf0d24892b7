// Datasets of many files: --data as a directory, a glob or a list file (io/dataset_paths.h), the
// bounded number of open files (io/sample_set.h), and the same batches as the comma-list form.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_util.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "io/dataset_paths.h"
#include "io/hdf5_dataset.h"
#include "io/sample_reader.h"
#include "io/sample_set.h"

namespace seis {
namespace {

namespace fs = std::filesystem;

class DatasetFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "dataset_files_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A small dataset file whose values name (tag, sample, pixel).
  std::string write(const std::string& name, int tag, int64_t n, int64_t h = 8, int64_t w = 6) {
    const std::string path = dir_ + "/" + name;
    H5SampleWriter::Options o;
    o.n = n;
    o.height = h;
    o.width = w;
    H5SampleWriter wr(path, o);
    std::vector<float> d(static_cast<size_t>(h * w));
    std::vector<uint8_t> l(d.size());
    for (int64_t i = 0; i < n; ++i) {
      for (size_t p = 0; p < d.size(); ++p) {
        const uint64_t r = hash_combine(hash_combine(static_cast<uint64_t>(tag), static_cast<uint64_t>(i)), p);
        d[p] = static_cast<float>(static_cast<double>(r >> 11) * (1.0 / 9007199254740992.0) - 0.5);
        l[p] = (r & 3) == 0;
      }
      wr.write(i, d.data(), l.data());
    }
    wr.commit();
    return path;
  }

  void write_text(const std::string& name, const std::string& text) { std::ofstream(dir_ + "/" + name) << text; }

  template <typename E>
  std::string error_of(const std::string& spec) {
    try {
      expand_dataset_paths(spec, "--data");
    } catch (const E& e) {
      return e.what();
    }
    ADD_FAILURE() << "no error for --data " << spec;
    return "";
  }

  std::string dir_;
};

TEST_F(DatasetFiles, DirectoryGlobAndListFormsExpandSorted) {
  const std::string b = write("b.h5", 1, 2), a = write("a.h5", 2, 2), c = write("c.hdf5", 3, 2);
  write_text("notes.md", "not data");
  write_text(".hidden.h5", "a hidden file is skipped");
  fs::create_directories(dir_ + "/sub.h5");  // a directory named like a file is skipped
  const std::vector<std::string> sorted = {a, b, c};
  EXPECT_EQ(expand_dataset_paths(dir_, "--data"), sorted);
  EXPECT_EQ(expand_dataset_paths(dir_ + "/", "--data"),
            (std::vector<std::string>{dir_ + "/a.h5", dir_ + "/b.h5", dir_ + "/c.hdf5"}));
  EXPECT_EQ(expand_dataset_paths(dir_ + "/*.h5", "--data"), (std::vector<std::string>{a, b}));
  EXPECT_EQ(expand_dataset_paths(dir_ + "/[bc].*", "--data"), (std::vector<std::string>{b, c}));
  // A list: comments, blank lines, spaces, names relative to the list's directory, absolute names, globs.
  write_text("files.txt", "# training files\n\n  c.hdf5  \n" + a + "\n*.h5\n");
  const std::vector<std::string> listed = {dir_ + "/c.hdf5", a, a, b};
  EXPECT_EQ(expand_dataset_paths(dir_ + "/files.txt", "--data"), listed);
  write_text("files.lst", "b.h5\n");
  EXPECT_EQ(expand_dataset_paths("@" + dir_ + "/files.lst", "--data"), (std::vector<std::string>{dir_ + "/b.h5"}));
  // Items of every form in one comma list, in the order given.
  std::vector<std::string> mixed = {c};
  mixed.insert(mixed.end(), sorted.begin(), sorted.end());
  mixed.push_back(dir_ + "/b.h5");
  EXPECT_EQ(expand_dataset_paths(c + "," + dir_ + ",@" + dir_ + "/files.lst", "--data"), mixed);
  // A plain name that does not exist passes through: opening it reports "not found" with its name.
  EXPECT_EQ(expand_dataset_paths(dir_ + "/missing.h5", "--data"), (std::vector<std::string>{dir_ + "/missing.h5"}));
}

TEST_F(DatasetFiles, BadFormsAreOneLineErrorsNamingTheItem) {
  write("a.h5", 1, 2);
  fs::create_directories(dir_ + "/empty");
  write_text("empty/readme.txt", "no data here");
  std::string m = error_of<InputError>(dir_ + "/*.hdf5");
  EXPECT_NE(m.find(dir_ + "/*.hdf5: no file matches"), std::string::npos) << m;
  m = error_of<InputError>(dir_ + "/empty");
  EXPECT_NE(m.find(dir_ + "/empty: a directory without .h5 files"), std::string::npos) << m;
  m = error_of<InputError>("@" + dir_ + "/missing.lst");
  EXPECT_NE(m.find(dir_ + "/missing.lst: cannot read the list of files"), std::string::npos) << m;
  m = error_of<InputError>(dir_ + "/missing.txt");
  EXPECT_NE(m.find(dir_ + "/missing.txt: cannot read the list of files"), std::string::npos) << m;
  m = error_of<InputError>("@" + dir_);
  EXPECT_NE(m.find("is a directory, not a list of files"), std::string::npos) << m;
  write_text("blank.txt", "# nothing\n\n");
  m = error_of<InputError>(dir_ + "/blank.txt");
  EXPECT_NE(m.find("names no file"), std::string::npos) << m;
  write_text("nested.txt", "a.h5\n@other.txt\n");
  m = error_of<InputError>(dir_ + "/nested.txt");
  EXPECT_NE(m.find(dir_ + "/nested.txt line 2"), std::string::npos) << m;
  if (::geteuid() != 0) {  // root reads any file: no unreadable list then
    write_text("secret.txt", "a.h5\n");
    ::chmod((dir_ + "/secret.txt").c_str(), 0);
    m = error_of<InputError>(dir_ + "/secret.txt");
    EXPECT_NE(m.find("cannot read the list of files"), std::string::npos) << m;
  }
  EXPECT_THROW(expand_dataset_paths(",,", "--data"), UsageError);
  EXPECT_THROW(expand_dataset_paths("@", "--data"), UsageError);
  for (const std::string& e : {error_of<InputError>(dir_ + "/*.hdf5"), error_of<InputError>(dir_ + "/empty")}) {
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
}

int open_descriptors() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n - 1;  // (the one opendir holds)
}

// 12 files, at most 3 open: every batch of two shuffled epochs equals the batch of the same set
// opened whole (the comma-list form), and the open descriptors stay within the bound.
TEST_F(DatasetFiles, MoreFilesThanMayBeOpenGiveTheSameBatches) {
  std::vector<std::string> paths;
  for (int f = 0; f < 12; ++f) paths.push_back(write("part" + std::to_string(100 + f) + ".h5", f, 3 + f % 3));
  const int fds_before = open_descriptors();
  const int kMaxOpen = 3, kThreads = 3;
  SampleSet bounded(expand_dataset_paths(dir_ + "/part*.h5", "--data"), kMaxOpen);
  EXPECT_LE(bounded.open_files(), kMaxOpen);
  EXPECT_LE(open_descriptors() - fds_before, kMaxOpen);
  std::string comma;
  for (const std::string& p : paths) comma += (comma.empty() ? "" : ",") + p;
  SampleSet whole(expand_dataset_paths(comma, "--data"));
  ASSERT_EQ(bounded.size(), whole.size());
  ASSERT_EQ(whole.open_files(), 12);

  SampleReaderOptions o;
  o.batch = 5;
  o.seed = 3;
  o.threads = kThreads;
  o.prefetch = 2;
  o.normalize = Normalize::trace;
  o.augment.flip_receivers = true;
  int max_open = 0, max_fds = 0;
  {
    SampleReader r(bounded, o), w(whole, o);
    for (int64_t k = 0; k < 2 * r.batches_per_epoch(); ++k) {
      const ReaderBatch a = r.next(), b = w.next();
      max_open = std::max(max_open, bounded.open_files());
      max_fds = std::max(max_fds, open_descriptors() - fds_before - 12);  // (less the whole set's 12)
      ASSERT_EQ(a.samples, b.samples) << "batch " << k;
      ASSERT_EQ(a.data.to_vector(), b.data.to_vector()) << "batch " << k;
      ASSERT_EQ(std::memcmp(a.label.raw(), b.label.raw(), static_cast<size_t>(a.label.numel())), 0) << "batch " << k;
    }
  }
  // At most kMaxOpen kept open, plus one per thread caught in the middle of a read.
  EXPECT_LE(max_open, kMaxOpen + kThreads);
  EXPECT_LE(max_fds, kMaxOpen + kThreads);
  EXPECT_LE(bounded.open_files(), kMaxOpen);
  EXPECT_GE(max_open, 1);
  EXPECT_THROW(SampleSet(paths, 0), UsageError);
}

TEST_F(DatasetFiles, AFileReplacedWhileClosedIsAnInputError) {
  const std::string a = write("a.h5", 1, 2), b = write("b.h5", 2, 2);
  SampleSet set({a, b}, 1);
  std::vector<float> d(48);
  set.read(0, d.data(), nullptr);  // a open
  set.read(2, d.data(), nullptr);  // b open, a closed
  EXPECT_EQ(set.open_files(), 1);
  const std::string other = write("other.h5", 9, 2);
  ASSERT_EQ(std::rename(other.c_str(), a.c_str()), 0);
  try {
    set.read(1, d.data(), nullptr);
    FAIL() << "no error for a replaced file";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(a + ": was replaced or changed"), std::string::npos) << m;
  }
  EXPECT_LE(set.open_files(), 1);
}

// Through the program: a glob, a directory and a list train exactly as the comma list does, and
// the bad forms are one-line errors with exit code 1.
TEST_F(DatasetFiles, TrainTakesEveryFormOfData) {
  for (int f = 0; f < 3; ++f) {
    const std::string p = dir_ + "/shots/s" + std::to_string(f) + ".h5";
    fs::create_directories(dir_ + "/shots");
    ASSERT_EQ(
        test::run_seisseg("synth --out " + p + " --samples 4 --height 32 --width 32 --seed " + std::to_string(20 + f))
            .code,
        0);
  }
  write_text("shots/list.txt", "s0.h5\ns1.h5\ns2.h5\n");
  const std::string common =
      " --val-fraction 0 --levels 3 --base 4 --batch 4 --steps 3 --device cpu --seed 1 "
      "--max-open-files 1 --log-every 1 --out ";
  const std::string comma = dir_ + "/shots/s0.h5," + dir_ + "/shots/s1.h5," + dir_ + "/shots/s2.h5";
  const std::vector<std::string> forms = {comma, "'" + dir_ + "/shots/s*.h5'", dir_ + "/shots",
                                          "@" + dir_ + "/shots/list.txt"};
  std::vector<std::string> weights;
  for (size_t k = 0; k < forms.size(); ++k) {
    const std::string out = dir_ + "/run" + std::to_string(k);
    const test::CliResult r = test::run_seisseg("train --data " + forms[k] + common + out);
    ASSERT_EQ(r.code, 0) << forms[k] << "\n" << r.out << r.err;
    weights.push_back(test::slurp(out + "/weights.safetensors"));
    ASSERT_FALSE(weights.back().empty());
    EXPECT_EQ(weights.back(), weights[0]) << "--data " << forms[k] << " trained other weights than the comma list";
  }
  // A run on a glob resumes while the glob names the same files, and refuses once it names others.
  test::CliResult r = test::run_seisseg("train --resume " + dir_ + "/run1 --steps 4");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  fs::copy_file(dir_ + "/shots/s0.h5", dir_ + "/shots/s3.h5");
  r = test::run_seisseg("train --resume " + dir_ + "/run1 --steps 5");
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("data-files is \"4 files"), std::string::npos) << r.err;
  fs::remove(dir_ + "/shots/s3.h5");
  struct Bad {
    std::string data, says;
  };
  fs::create_directories(dir_ + "/nodata");
  const std::vector<Bad> bad = {{"'" + dir_ + "/shots/*.hdf5'", dir_ + "/shots/*.hdf5: no file matches"},
                                {dir_ + "/nodata", dir_ + "/nodata: a directory without .h5 files"},
                                {"@" + dir_ + "/nolist.txt", dir_ + "/nolist.txt: cannot read the list of files"}};
  for (const Bad& b : bad) {
    const test::CliResult r = test::run_seisseg("train --data " + b.data + common + dir_ + "/bad");
    EXPECT_EQ(r.code, 1) << b.data << ": " << r.err;
    EXPECT_NE(r.err.find(b.says), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "not one line: " << r.err;
    EXPECT_FALSE(fs::exists(dir_ + "/bad/weights.safetensors"));
  }
}

}  // namespace
}  // namespace seis
