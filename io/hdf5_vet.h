// Vetting an HDF5 file before the HDF5 library reads its metadata in this process. HDF5 1.10 is not
// robust to malformed metadata: a flipped byte in an object header, a B-tree node or a heap can make
// it read out of bounds and die with SIGSEGV, or loop. A crash in the library cannot be caught, so
// the first time a process opens a file, the file is opened and walked in a short-lived child
// process (fork) that does everything this process will do with the file's metadata: the same
// opening code (gathers or continuous record, the tables /picks, /events and /headers, the SEG-Y
// header datasets), then every dataset and attribute under the root through the library (shapes,
// types, filters, chunk index), and a read through the library of the first and last gather (or
// row) where reads will use the library. A child that dies by a signal, does not finish in time, or
// in which the library fails to allocate memory (its address space may grow by 256 MiB while it
// reads metadata, by 1 GiB while it reads a gather: a few bytes of a damaged file can make HDF5 ask
// for gigabytes, e.g. a variable-length string that claims 2^31 bytes, which it then zeroes) becomes
// a one-line InputError naming the file;
// a child that finishes (whatever other errors the library reported: this process reports those
// itself, with their own messages) clears the file.
//
// (Why a child process rather than our own parser of the format, as io/hdf5_chunk_index.cpp has for
// the chunk index: the library reads far more than we could re-parse and keep in step with it -
// superblock versions, symbol tables, local and fractal heaps, B-trees of two versions, dense
// attribute storage, variable-length data in global heaps - and the crashes are inside its own
// readers of those structures. Running the library itself on the file is the one check that
// covers exactly what it will read, including its future versions.)
//
// Threads: the child is forked with h5_mutex() held, so no thread of ours is inside the library and
// its state is consistent in the child; there the forking thread is the only thread, h5_mutex()
// hands out a mutex of the child's own, and nothing but the library, malloc and _exit is used (no
// stdio: the child's stdout and stderr are /dev/null; no MPI, no CUDA, no OpenMP). Call sites take
// the lock anyway (h5_open_readonly is the one caller).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace seis {

// The memory the child may use beyond what it had at the fork: enough for the library to read a
// gather of kMaxReadBytes (hdf5_vet.cpp) with its chunk and conversion buffers.
constexpr int64_t kH5VetMemoryBudgetBytes = int64_t{1} << 30;

// How long the child may take, in seconds (a walk of a sound file takes milliseconds; a file on a
// slow network file system may take a few seconds). SEISSEG_HDF5_VET_TIMEOUT overrides it.
constexpr double kH5VetTimeoutSeconds = 120;

// Vets `path` (see above) unless this process has vetted the same file already (same path, device,
// inode, size and modification time). Call with h5_mutex() held, after checking that path exists
// and is no directory. InputError "path: malformed HDF5 metadata (the HDF5 library failed reading
// it)" when the child died by a signal, "path: malformed HDF5 metadata (the HDF5 library did not
// finish reading it within N s)" when it timed out, "path: malformed HDF5 metadata (the HDF5 library
// asked for more memory than reading it can need)" when an allocation failed, "path: cannot check
// its HDF5 metadata: ..." when no child can be started. A no-op inside the child itself.
void h5_vet(const std::string& path);

// True in a vetting child process.
bool h5_in_vet_child();

// The mechanism, for tests: runs walk() in a forked child (stdout and stderr to /dev/null, no core
// dump, exceptions caught, its address space limited to what it had at the fork plus
// memory_budget_bytes) and waits for it up to timeout_seconds, then kills it. walk() returns false
// for a file it refuses (the library could not allocate what the file asks for).
struct H5VetOutcome {
  enum Kind { finished, refused, signalled, timed_out } kind = finished;
  int signal = 0;  // signalled: the signal
};
H5VetOutcome h5_run_vetting_child(const std::function<bool()>& walk, double timeout_seconds,
                                  int64_t memory_budget_bytes);

// The parts of a vetting child, for a child that vets many files (the vetting fuzz target's
// persistent child, tests/fuzz/fuzz_hdf5_vet.cpp). h5_become_vetting_child puts a freshly forked
// process in the state h5_run_vetting_child gives its children (h5_in_vet_child() true, stdout and
// stderr to /dev/null, no core dump, the default action for crash signals, its address space
// limited to its present size plus memory_budget_bytes). h5_vet_walk(path) is h5_vet's walk of the
// file in this process: false when the library failed to allocate what the file asked for.
void h5_become_vetting_child(int64_t memory_budget_bytes);
bool h5_vet_walk(const std::string& path);

}  // namespace seis
