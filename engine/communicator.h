// Communicators for data-parallel training (DESIGN.md, "Distributed training"): one process per
// GPU (or per CPU node), ranks from the launcher. Three implementations behind one interface:
//   SingleComm  world 1, every call a no-op (no launcher: MPI is never touched);
//   MpiComm     CPU buffers over MPI (engine/communicator.cpp);
//   NcclComm    GPU buffers over NCCL on a comm stream; host calls go to an MPI (or single) comm
//               that also bootstraps NCCL (engine/nccl_comm.cpp, CUDA builds only).
//
// Ordering: collectives must be issued in the same order on every rank. allreduce_sum_async
// enqueues; every other collective (broadcast, host allreduces, barrier) first waits for all
// enqueued allreduces, so the order is the program order on every rank.
//
// Threads (MpiComm): one communication thread runs the queued allreduces with blocking
// MPI_Allreduce, so they progress while the compute thread runs backward. Every MPI call of the
// process, from either thread, holds one mutex (MPI_THREAD_SERIALIZED is all MPI must provide;
// MULTIPLE is asked for, SERIALIZED under SEIS_MPI_THREAD_LEVEL=serialized). abort() may find the
// comm thread blocked inside MPI on a dead peer, holding the mutex: under MULTIPLE it calls
// MPI_Abort anyway; under SERIALIZED only when it gets the mutex within 2 s, else it exits without
// MPI (a rank that ends without MPI_Finalize makes mpirun and srun end the job).
//
// Hung peers (MpiComm): no collective waits without a limit. wait() gives the gradient allreduces
// SEIS_COMM_TIMEOUT_S (comm_timeout_seconds()); the compute thread's own collectives (broadcast,
// host allreduces, barrier, the barrier before MPI_Finalize) are non-blocking MPI calls tested
// until that deadline. One that misses it prints one line on stderr ("rank R of W: <what> did not
// complete within S s (a rank hung?)") and aborts the job (MPI_Abort, exit code 1): a rank that is
// stopped or deadlocked ends the job in bounded time instead of hanging it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "engine/device.h"

namespace seis {

// How this process was started. launched: by mpirun/srun (environment), with its size and ranks.
struct LaunchInfo {
  bool launched = false;
  int world = 1, rank = 0, local_rank = 0;
  std::string launcher;  // "openmpi", "slurm", "pmi" or "" (none)
};
LaunchInfo detect_launch();

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  virtual int local_rank() const = 0;       // rank among the processes of this node (GPU index)
  virtual const char* backend() const = 0;  // "single", "mpi" or "nccl"

  // Starts an in-place sum over the ranks of buf[0, n) (on `device`); wait() with the handle
  // before reading or writing buf. On CUDA, wait() orders the compute stream after the reduction.
  virtual int64_t allreduce_sum_async(float* buf, int64_t n, Device device) = 0;
  virtual void wait(int64_t handle) = 0;
  // buf[0, n) of rank `root` to every rank.
  virtual void broadcast(float* buf, int64_t n, Device device, int root) = 0;
  // Small host arrays (metrics, counts): in-place sums, and a byte broadcast (bootstrap ids).
  virtual void allreduce_sum_host(int64_t* v, int64_t n) = 0;
  virtual void allreduce_sum_host(double* v, int64_t n) = 0;
  virtual void broadcast_host_bytes(void* buf, int64_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job with `code` (MPI_Abort); does not return.
  [[noreturn]] virtual void abort(int code) = 0;
};

// The process's communicator for training on `device`. Without a launcher: SingleComm on the CPU,
// and NcclComm of world 1 on a GPU when `nccl_for_single` (tests), else SingleComm. With one:
// MpiComm on the CPU, NcclComm on a GPU. MPI_Init is called only when launched; the
// communicator's destructor calls MPI_Finalize. At most one MPI communicator per process.
std::unique_ptr<Communicator> make_communicator(Device device, bool nccl_for_single = false);

// World 1, every call a no-op, whatever the launcher (a memory plan's gradient buckets).
std::unique_ptr<Communicator> make_single_communicator();

// Seconds a rank waits for a collective before it gives up and aborts the job (a hung peer):
// SEIS_COMM_TIMEOUT_S, 600 by default (fractions allowed).
double comm_timeout_seconds();

}  // namespace seis
