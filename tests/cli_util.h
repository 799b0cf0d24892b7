// Running the seisseg program from tests: exit code, stdout and stderr captured separately.
#pragma once
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

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

// One run of the seisseg binary with its peak resident memory (getrusage of the child) and wall
// time; stdout is discarded.
struct MeasuredRun {
  int code = -1;  // the exit status; -1 when the program did not exit normally (e.g. a signal)
  long peak_kib = 0;
  double seconds = 0;
  std::string err;
};

inline MeasuredRun run_seisseg_measured(const std::vector<std::string>& args) {
  static std::atomic<int> counter{0};
  const std::string err_file =
      testing::TempDir() + "/seisseg_measured_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  std::vector<char*> argv{const_cast<char*>(SEISSEG_BIN)};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (std::freopen("/dev/null", "w", stdout) == nullptr || std::freopen(err_file.c_str(), "w", stderr) == nullptr) {
      ::_exit(126);
    }
    ::execv(SEISSEG_BIN, argv.data());
    ::_exit(127);
  }
  MeasuredRun r;
  int status = 0;
  struct rusage ru {};
  if (pid > 0 && ::wait4(pid, &status, 0, &ru) == pid) {
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.peak_kib = ru.ru_maxrss;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::stringstream err;
  err << std::ifstream(err_file).rdbuf();
  r.err = err.str();
  std::remove(err_file.c_str());
  return r;
}

inline int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// A directory of this test process, under the test temp dir, made on first use.
inline std::string process_dir(const std::string& name) {
  const std::string p = testing::TempDir() + name + "_" + std::to_string(::getpid());
  ::mkdir(p.c_str(), 0755);
  return p;
}

inline bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

// Debian's python3 with h5py and numpy, for files written the way users write them.
inline bool have_h5py() { return std::system("/usr/bin/python3 -c 'import h5py, numpy' >/dev/null 2>&1") == 0; }

// Runs `script` (with sys, h5py and numpy as np imported) as `file` under /usr/bin/python3 with
// `args`; returns its exit code (-1 when it did not exit normally).
inline int run_h5py_script(const std::string& file, const std::string& script, const std::string& args = "") {
  std::ofstream(file) << "import sys\nimport h5py\nimport numpy as np\n" << script;
  const int status = std::system(("/usr/bin/python3 " + file + " " + args).c_str());
  std::remove(file.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A whole file as a string (empty when it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// The lines of a text file (a CSV, a log).
inline std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> v;
  for (std::string l; std::getline(f, l);) v.push_back(l);
  return v;
}

// The validation records of a run's metrics.jsonl (the lines with "iou"), in order.
inline std::vector<nlohmann::json> validations(const std::string& metrics) {
  std::vector<nlohmann::json> v;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("iou")) v.push_back(j);
  }
  return v;
}

}  // namespace seis::test
