// engine/file_io.h and engine/printable.h: whole reads at an offset (short reads, end of file),
// atomic writes (the file appears complete or not at all, no temporary file is left, failures name
// the final path), and text from files made printable (control bytes, invalid UTF-8, bidirectional
// overrides escaped; valid text unchanged; the length capped at a character boundary).
#include "engine/file_io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "cli_util.h"
#include "engine/error.h"
#include "engine/printable.h"

namespace seis {
namespace {

std::string dir() {
  static const std::string d = test::process_dir("file_io");
  return d;
}

TEST(FileIo, PreadFullReadsWholeRangesAndReportsTheEnd) {
  const std::string path = dir() + "/bytes.bin";
  std::string bytes(100000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + 3);
  write_atomic(path, bytes);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::string err;
  std::vector<char> buf(70000);
  ASSERT_TRUE(pread_full(fd, buf.data(), 70000, 12345, &err)) << err;
  EXPECT_EQ(std::string(buf.data(), buf.size()), bytes.substr(12345, 70000));
  EXPECT_TRUE(pread_full(fd, buf.data(), 0, 100000, &err));  // nothing to read: no error
  EXPECT_FALSE(pread_full(fd, buf.data(), 10, 99995, &err));
  EXPECT_NE(err.find("unexpected end of file"), std::string::npos) << err;
  ::close(fd);
  err.clear();
  EXPECT_FALSE(pread_full(fd, buf.data(), 10, 0, &err));  // a closed descriptor: the errno text
  EXPECT_FALSE(err.empty());
}

TEST(FileIo, WriteAtomicReplacesWholeFilesAndLeavesNoTemporary) {
  const std::string path = dir() + "/config.json";
  write_atomic(path, std::string("first\n"));
  write_atomic(path, std::string("second, longer\n"));
  EXPECT_EQ(test::slurp(path), "second, longer\n");
  EXPECT_FALSE(test::file_exists(path + ".tmp"));
  write_atomic(path, nullptr, 0);
  EXPECT_TRUE(test::file_exists(path));
  EXPECT_EQ(test::slurp(path), "");
}

TEST(FileIo, FailuresNameThePathAndLeaveNothing) {
  const std::string path = dir() + "/no/such/dir/out.bin";
  try {
    write_atomic(path, std::string("x"));
    FAIL() << "no error";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  }
  EXPECT_FALSE(test::file_exists(path + ".tmp"));

  // The rename fails (the target is a non-empty directory): the temporary file is removed.
  const std::string target = dir() + "/occupied";
  ::mkdir(target.c_str(), 0755);
  write_atomic(target + "/inside", std::string("y"));
  try {
    write_atomic(target, std::string("z"));
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(target + ": cannot rename", 0), 0u) << e.what();
  }
  EXPECT_FALSE(test::file_exists(target + ".tmp"));

  // commit_atomic of a temporary file that is not there: an error naming the final path.
  try {
    commit_atomic(dir() + "/absent.tmp", dir() + "/absent");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(dir() + "/absent: ", 0), 0u) << e.what();
  }
  EXPECT_FALSE(test::file_exists(dir() + "/absent"));
}

TEST(FileIo, AtomicFileAppearsOnlyOnCommit) {
  const std::string path = dir() + "/rows.csv";
  {
    AtomicFile f(path);
    f.write(std::string("a,b\n"));
    std::fputs("1,2\n", f.stream());
    EXPECT_TRUE(test::file_exists(path + ".tmp"));
    EXPECT_FALSE(test::file_exists(path));
  }
  EXPECT_FALSE(test::file_exists(path + ".tmp"));
  EXPECT_FALSE(test::file_exists(path));
  AtomicFile f(path);
  f.write(std::string("a,b\n"));
  std::fputs("1,2\n", f.stream());
  f.commit();
  EXPECT_EQ(f.stream(), nullptr);
  EXPECT_EQ(test::slurp(path), "a,b\n1,2\n");
  EXPECT_FALSE(test::file_exists(path + ".tmp"));
  EXPECT_THROW(f.commit(), Error);  // twice: an internal error, not a second rename
}

TEST(Printable, EscapesWhatATerminalWouldInterpret) {
  EXPECT_EQ(printable("dt = 0.002, caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac"),
            "dt = 0.002, caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac");
  EXPECT_EQ(printable("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(printable(std::string("x\0y\x1b[31mz\x7f", 10)), "x\\x00y\\x1b[31mz\\x7f");
  // Invalid UTF-8: a lone continuation byte, a truncated sequence, an overlong '/', a surrogate.
  EXPECT_EQ(printable("\x80|\xe6\x97|\xc0\xaf|\xed\xa0\x80"), "\\x80|\\xe6\\x97|\\xc0\\xaf|\\xed\\xa0\\x80");
  // C1 controls and the right-to-left override are valid UTF-8 but reorder or hide text.
  EXPECT_EQ(printable("\xc2\x9b"
                      "1m \xe2\x80\xae"
                      "cba"),
            "\\u009b1m \\u202ecba");
}

TEST(Printable, CapsTheLengthAtACharacterBoundary) {
  EXPECT_EQ(printable(std::string(300, 'a'), 10), std::string(10, 'a') + "...");
  EXPECT_EQ(printable("abcdefghi\xc3\xa9", 10), "abcdefghi...");  // the 2-byte character would pass 10
  EXPECT_EQ(printable("abcdefgh\x01", 10), "abcdefgh...");        // so would its 4-byte escape
  EXPECT_EQ(printable(std::string(256, 'b')), std::string(256, 'b'));
  EXPECT_EQ(printable(""), "");
}

}  // namespace
}  // namespace seis
