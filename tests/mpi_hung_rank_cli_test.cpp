// A rank that stops responding (SIGSTOP: alive, holding its connections, never answering) ends an
// MPI job in bounded time with a non-zero exit and one line that says so: every collective of
// engine/communicator.cpp gives up after SEIS_COMM_TIMEOUT_S and aborts the job.
//
// Starts mpirun itself (tests/CMakeLists.txt registers it as a plain test labelled mpi). The
// communicator cases run this same binary under mpirun, where HungRankCase.Run is the MPI program:
// rank 1 stops itself just before the collective that rank 0 then waits in. seisseg train is then
// stopped the same way by its test-only fault hook, and from outside at a time the test chooses.
#include <gtest/gtest.h>
// Only MPI's C API (the thread level check): keep the C++ bindings out.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_util.h"
#include "engine/communicator.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The hang guard, not a speed test: a job still running this long after the stop has hung.
constexpr double kBoundSeconds = 60;

// ---- The MPI program of the communicator cases ----------------------------------------------------

// SEIS_HUNG_CASE names the collective. Rank 1 stops before it; rank 0 calls it and must not return.
TEST(HungRankCase, Run) {
  const char* which = std::getenv("SEIS_HUNG_CASE");
  if (which == nullptr) GTEST_SKIP() << "the MPI program of the cases below; runs only under their mpirun";
  const std::string c = which;
  std::unique_ptr<seis::Communicator> comm = seis::make_communicator(seis::Device::cpu());
  ASSERT_EQ(comm->world(), 2);
  const char* level = std::getenv("SEIS_MPI_THREAD_LEVEL");
  if (level != nullptr && std::string(level) == "serialized") {
    int provided = -1;
    MPI_Query_thread(&provided);
    ASSERT_EQ(provided, MPI_THREAD_SERIALIZED) << "SEIS_MPI_THREAD_LEVEL=serialized was not applied";
  }
  const int rank = comm->rank();  // (kept: the finalize case destroys comm)
  if (rank == 1) std::raise(SIGSTOP);
  std::vector<float> f(1000, 1.0f);
  int64_t counts[4] = {1, 2, 3, 4};
  double sums[2] = {0.5, 1.5};
  char bytes[128] = {0};
  if (c == "allreduce_int64") {
    comm->allreduce_sum_host(counts, 4);  // the validation counts of apps/trainer.cpp
  } else if (c == "allreduce_double") {
    comm->allreduce_sum_host(sums, 2);  // loss sums, the data-wait mean
  } else if (c == "broadcast_bytes") {
    comm->broadcast_host_bytes(bytes, sizeof bytes, 1);  // from the stopped rank
  } else if (c == "broadcast") {
    comm->broadcast(f.data(), static_cast<int64_t>(f.size()), seis::Device::cpu(), 1);
  } else if (c == "barrier") {
    comm->barrier();
  } else if (c == "gradient") {
    comm->wait(comm->allreduce_sum_async(f.data(), static_cast<int64_t>(f.size()), seis::Device::cpu()));
  } else if (c == "finalize") {
    comm.reset();  // the barrier before MPI_Finalize
  } else {
    FAIL() << "unknown SEIS_HUNG_CASE " << c;
  }
  // (Rank 1 may get here: the job's teardown continues it (SIGCONT) before it ends it.)
  if (rank == 0) ADD_FAILURE() << c << " returned on rank 0 although rank 1 is stopped";
}

// ---- The tests --------------------------------------------------------------------------------------

std::vector<std::string> split_args(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> v;
  for (std::string a; in >> a;) v.push_back(a);
  return v;
}

// The pids whose parent is `parent` (the ranks mpirun started).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> v;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const size_t close = line.rfind(')');  // the command name may hold spaces
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    long ppid = 0;
    if (rest >> state >> ppid && ppid == parent) v.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return v;
}

bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

struct Job {
  int code = -1;                // mpirun's exit status (128 + signal when killed by the guard)
  bool hung = false;            // still running kBoundSeconds after `stopped_at`
  double seconds = 0;           // from the stop (or the start) to the end
  std::vector<pid_t> ranks;     // mpirun's children, as seen while it ran
  std::string out;              // stdout and stderr of every rank and mpirun
  std::vector<pid_t> leftover;  // ranks still alive after mpirun ended
};

// Runs `SEIS_MPIEXEC -np 2 <args>`; `during(mpirun pid, &stopped_at)` is called every 10 ms while it
// runs and may stop a rank (it then sets stopped_at). The job gets kBoundSeconds from the stop (or
// from the start when nothing was stopped) to end; then it is killed and counts as hung.
Job run_job(const std::string& args, const std::string& log,
            const std::function<void(pid_t, std::vector<pid_t>*, Clock::time_point*)>& during = {}) {
  std::vector<std::string> a = split_args(std::string(SEIS_MPIEXEC) + " -np 2 " + args);
  std::vector<char*> argv;
  for (std::string& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  const auto t0 = Clock::now();
  std::fflush(nullptr);  // nothing buffered here is written twice
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("OMP_NUM_THREADS", "1", 1);
    if (std::freopen(log.c_str(), "w", stdout) == nullptr || ::dup2(::fileno(stdout), 2) < 0) ::_exit(126);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  Job j;
  Clock::time_point from = t0;
  int status = 0;
  for (;;) {
    if (::waitpid(pid, &status, WNOHANG) == pid) break;
    for (pid_t r : children_of(pid)) {
      if (std::find(j.ranks.begin(), j.ranks.end(), r) == j.ranks.end()) j.ranks.push_back(r);
    }
    if (during) during(pid, &j.ranks, &from);
    if (std::chrono::duration<double>(Clock::now() - from).count() > kBoundSeconds) {
      j.hung = true;
      ::kill(pid, SIGKILL);
      for (pid_t r : j.ranks) ::kill(r, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  j.seconds = std::chrono::duration<double>(Clock::now() - from).count();
  j.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // init reaps the orphans
  for (pid_t r : j.ranks) {
    if (alive(r)) {
      j.leftover.push_back(r);
      ::kill(r, SIGKILL);
    }
  }
  j.out = seis::test::slurp(log);
  return j;
}

std::string timeout_line(int rank, const std::string& what, const std::string& seconds) {
  return "rank " + std::to_string(rank) + " of 2: " + what + " did not complete within " + seconds +
         " s (a rank hung?); SEIS_COMM_TIMEOUT_S sets the limit";
}

// The common verdict: the job ended by itself, non-zero, with the one line, and no rank outlived it.
void expect_aborted(const Job& j, const std::string& line, const std::string& name) {
  EXPECT_FALSE(j.hung) << name << ": still running " << kBoundSeconds << " s after the stop:\n" << j.out;
  EXPECT_NE(j.code, 0) << name << ":\n" << j.out;
  EXPECT_NE(j.out.find(line), std::string::npos) << name << ": no '" << line << "' in:\n" << j.out;
  EXPECT_EQ(j.leftover.size(), 0u) << name << ": a rank outlived the job";
  std::printf("[ result ] %s: exit %d, %.1f s after the stop (or the start)\n", name.c_str(), j.code, j.seconds);
}

class MpiHungRank : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::TempDir() + "/seis_mpi_hung_rank";
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const seis::test::CliResult r =
        seis::test::run_seisseg("synth --out " + dir_ + "/d.h5 --samples 24 --height 32 --width 32 --seed 3");
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static std::string train_args(const std::string& out) {
    return std::string(SEISSEG_BIN) + " train --data " + dir_ +
           "/d.h5 --device cpu --levels 3 --base 4 --batch 4 --seed 5 --log-every 1 --val-fraction 0.2 "
           "--val-every 2 --steps 100000 --out " +
           dir_ + "/" + out;
  }
  static std::string dir_;
};
std::string MpiHungRank::dir_;

// Every collective of the communicator, the small host ones of the metrics among them: rank 1 stops
// before it, rank 0 aborts the job after SEIS_COMM_TIMEOUT_S (2 s here).
TEST_F(MpiHungRank, EveryCollectiveGivesUpOnAStoppedRank) {
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const std::vector<std::pair<std::string, std::string>> cases = {{"allreduce_int64", "host allreduce"},
                                                                  {"allreduce_double", "host allreduce"},
                                                                  {"broadcast_bytes", "broadcast"},
                                                                  {"broadcast", "broadcast"},
                                                                  {"barrier", "barrier"},
                                                                  {"gradient", "gradient allreduce"},
                                                                  {"finalize", "the barrier before MPI_Finalize"}};
  for (const auto& [name, what] : cases) {
    const Job j =
        run_job("-x SEIS_HUNG_CASE=" + name + " -x SEIS_COMM_TIMEOUT_S=2 " + self + " --gtest_filter=HungRankCase.Run",
                dir_ + "/case_" + name + ".log");
    expect_aborted(j, timeout_line(0, what, "2"), name);
    EXPECT_EQ(j.out.find("returned on rank 0"), std::string::npos) << j.out;
  }
}

// The same under MPI_THREAD_SERIALIZED, where no MPI call may overlap another thread's: rank 0 aborts
// with MPI_Abort while it holds the MPI lock itself (host allreduce, finalize), and without any MPI
// call while its comm thread is blocked inside MPI_Allreduce (gradient): either way the job ends.
// Then a rank that throws in training: its compute thread takes the lock and calls MPI_Abort.
TEST_F(MpiHungRank, UnderThreadLevelSerializedTheJobStillEnds) {
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const std::vector<std::pair<std::string, std::string>> cases = {{"allreduce_int64", "host allreduce"},
                                                                  {"gradient", "gradient allreduce"},
                                                                  {"finalize", "the barrier before MPI_Finalize"}};
  for (const auto& [name, what] : cases) {
    const Job j = run_job("-x SEIS_MPI_THREAD_LEVEL=serialized -x SEIS_HUNG_CASE=" + name +
                              " -x SEIS_COMM_TIMEOUT_S=2 " + self + " --gtest_filter=HungRankCase.Run",
                          dir_ + "/serialized_" + name + ".log");
    expect_aborted(j, timeout_line(0, what, "2"), "serialized " + name);
    EXPECT_EQ(j.out.find("returned on rank 0"), std::string::npos) << j.out;
    EXPECT_EQ(j.out.find("was not applied"), std::string::npos) << j.out;
  }
  const Job j =
      run_job("-x SEIS_MPI_THREAD_LEVEL=serialized -x SEIS_TEST_FAULT=1:3:throw " + train_args("serialized_throw"),
              dir_ + "/serialized_throw.log");
  expect_aborted(j, "seisseg train: rank 1 of 2: SEIS_TEST_FAULT: rank 1 fails after step 3", "serialized throw");
}

// seisseg train: rank 1 stops itself after step 3 (SEIS_TEST_FAULT); rank 0 is then in the stop
// vote, the host allreduce after every step.
TEST_F(MpiHungRank, ARankThatStopsInTrainingEndsTheJob) {
  const Job j = run_job("-x SEIS_TEST_FAULT=1:3:stop -x SEIS_COMM_TIMEOUT_S=5 " + train_args("fault_stop"),
                        dir_ + "/fault_stop.log");
  expect_aborted(j, timeout_line(0, "host allreduce", "5"), "SEIS_TEST_FAULT=1:3:stop");
}

// The same from outside: once the run has logged a few steps, the test stops one of the ranks with
// SIGSTOP; the other waits for it in its next collective, whichever that is.
TEST_F(MpiHungRank, ARankStoppedFromOutsideEndsTheJob) {
  const std::string out = dir_ + "/outside_stop";
  bool stopped = false;
  pid_t victim = 0;
  const Job j = run_job("-x SEIS_COMM_TIMEOUT_S=5 " + train_args("outside_stop"), dir_ + "/outside_stop.log",
                        [&](pid_t, std::vector<pid_t>* ranks, Clock::time_point* from) {
                          if (stopped || ranks->size() < 2) return;
                          if (seis::test::lines_of(out + "/metrics.jsonl").size() < 5) return;
                          victim = (*ranks)[1];
                          ::kill(victim, SIGSTOP);
                          stopped = true;
                          *from = Clock::now();
                        });
  ASSERT_TRUE(stopped) << "the run never logged 5 lines:\n" << j.out;
  EXPECT_EQ(j.ranks.size(), 2u);
  // The survivor reports; which rank that is depends on the order mpirun started them in.
  EXPECT_NE(j.out.find(" did not complete within 5 s (a rank hung?); SEIS_COMM_TIMEOUT_S sets the limit"),
            std::string::npos)
      << j.out;
  expect_aborted(j, " of 2: ", "SIGSTOP of pid " + std::to_string(victim));
}

}  // namespace
