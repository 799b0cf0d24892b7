// Whole reads and atomic writes (see file_io.h).
#include "engine/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/error.h"

namespace seis {

bool pread_full(int fd, void* buf, int64_t bytes, int64_t offset, std::string* err) {
  SEIS_CHECK(bytes >= 0 && offset >= 0, "pread_full of " << bytes << " bytes at " << offset);
  auto* p = static_cast<char*>(buf);
  while (bytes > 0) {
    const ssize_t r = ::pread(fd, p, static_cast<size_t>(bytes), static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      *err = std::strerror(errno);
      return false;
    }
    if (r == 0) {
      *err = "unexpected end of file (truncated?)";
      return false;
    }
    p += r;
    bytes -= r;
    offset += r;
  }
  return true;
}

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what, int err) {
  throw InputError(path + ": " + what + ": " + std::strerror(err));
}

// fsync of the directory holding path, so that a rename into it survives a crash. A directory that
// cannot be opened for reading (mode -r) or a file system that cannot sync one (EINVAL) is no error:
// there is nothing more to be done for durability there.
void sync_directory(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  const bool ok = ::fsync(fd) == 0 || errno == EINVAL || errno == EROFS;
  const int err = errno;
  ::close(fd);
  if (!ok) fail(path, "cannot sync its directory", err);
}

// rename(tmp, path) and the directory's fsync; removes tmp when the rename fails.
void rename_into_place(const std::string& tmp, const std::string& path) {
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(path, "cannot rename the temporary file into place", err);
  }
  sync_directory(path);
}

}  // namespace

void write_atomic(const std::string& path, const void* bytes, int64_t size) {
  AtomicFile f(path);
  f.write(bytes, size);
  f.commit();
}

void write_atomic(const std::string& path, const std::string& bytes) {
  write_atomic(path, bytes.data(), static_cast<int64_t>(bytes.size()));
}

void commit_atomic(const std::string& tmp, const std::string& path) {
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    fail(path, "cannot sync " + tmp, err);
  }
  ::close(fd);
  rename_into_place(tmp, path);
}

AtomicFile::AtomicFile(const std::string& path) : path_(path), tmp_(path + ".tmp") {
  const int fd = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path_, "cannot write", errno);
  file_ = ::fdopen(fd, "wb");
  if (file_ == nullptr) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp_.c_str());
    fail(path_, "cannot write", err);
  }
  std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
}

AtomicFile::~AtomicFile() { discard(); }

void AtomicFile::write(const void* bytes, int64_t size) {
  SEIS_CHECK(file_ != nullptr, path_ << ": write after commit or discard");
  SEIS_CHECK(size >= 0 && (bytes != nullptr || size == 0), path_ << ": write of " << size << " bytes");
  if (size > 0 && std::fwrite(bytes, 1, static_cast<size_t>(size), file_) != static_cast<size_t>(size)) {
    fail(path_, "write failed", errno);
  }
}

void AtomicFile::commit() {
  SEIS_CHECK(file_ != nullptr, path_ << ": commit after commit or discard");
  std::FILE* f = file_;
  file_ = nullptr;
  int err = 0;
  if (std::fflush(f) != 0 || std::ferror(f) != 0) {
    err = errno != 0 ? errno : EIO;
  } else if (::fsync(::fileno(f)) != 0) {
    err = errno;
  }
  if (std::fclose(f) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(tmp_.c_str());
    fail(path_, "write failed", err);
  }
  rename_into_place(tmp_, path_);
}

void AtomicFile::discard() {
  if (file_ == nullptr) return;
  std::fclose(file_);
  file_ = nullptr;
  ::unlink(tmp_.c_str());
}

}  // namespace seis
