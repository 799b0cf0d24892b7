// File I/O shared by every reader and writer of the project (engine/ and io/ both use it, so it
// lives here): whole reads at an offset, and files that appear under their name complete or not at
// all. An output is written to path + ".tmp" in the same directory, then fsync'ed, renamed into
// place and its directory fsync'ed, so that after a crash or power loss the name holds either the
// old file, or nothing, or the whole new file; on any failure the temporary file is removed and a
// one-line InputError names the final path and the reason (errno text).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace seis {

// Reads exactly `bytes` bytes at `offset` of `fd` into buf, retrying short reads and EINTR. False,
// with *err set ("unexpected end of file (truncated?)" or the errno text), when it cannot.
bool pread_full(int fd, void* buf, int64_t bytes, int64_t offset, std::string* err);

// Writes `bytes` bytes to path atomically (see above).
void write_atomic(const std::string& path, const void* bytes, int64_t size);
void write_atomic(const std::string& path, const std::string& bytes);

// Makes `tmp`, a finished file written by someone else (the HDF5 library), durable under `path`:
// fsync, rename, fsync of the directory. On failure removes `tmp` and throws InputError naming path.
void commit_atomic(const std::string& tmp, const std::string& path);

// A file written through a buffered stdio stream (for streams of rows and for libraries that take a
// FILE*, such as libpng) that appears under its path only on commit(). Destroyed without commit(),
// or when commit() fails, it removes the temporary file.
class AtomicFile {
 public:
  // Creates path + ".tmp". InputError naming path when it cannot.
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const std::string& path() const { return path_; }
  const std::string& tmp_path() const { return tmp_; }
  // The stream on the temporary file; null after commit() or discard().
  std::FILE* stream() const { return file_; }
  // Appends bytes. InputError naming path on a write error (disk full).
  void write(const void* bytes, int64_t size);
  void write(const std::string& bytes) { write(bytes.data(), static_cast<int64_t>(bytes.size())); }
  // Flushes, fsyncs, renames into place and fsyncs the directory. InputError naming path on failure
  // (the temporary file is then gone).
  void commit();
  // Closes and removes the temporary file (what the destructor does without commit()).
  void discard();

 private:
  std::string path_, tmp_;
  std::FILE* file_ = nullptr;
};

}  // namespace seis
