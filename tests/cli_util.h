// Running the seisseg program from tests: exit code, stdout and stderr captured separately.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace seis::test {

struct CliResult {
  int code = -1;  // the exit status; -1 when the program did not exit normally
  std::string out, err;
};

// Runs `command` through the shell.
inline CliResult run_command(const std::string& command) {
  static std::atomic<int> counter{0};
  const std::string err_file =
      testing::TempDir() + "/seisseg_stderr_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  FILE* p = popen((command + " 2>" + err_file).c_str(), "r");
  CliResult r;
  std::array<char, 4096> buf{};
  while (p != nullptr && fgets(buf.data(), buf.size(), p) != nullptr) r.out += buf.data();
  const int status = p != nullptr ? pclose(p) : -1;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::stringstream err;
  err << std::ifstream(err_file).rdbuf();
  r.err = err.str();
  std::remove(err_file.c_str());
  return r;
}

// Runs the seisseg binary under test with `args`.
inline CliResult run_seisseg(const std::string& args) { return run_command(std::string(SEISSEG_BIN) + " " + args); }

inline int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace seis::test
