// Shared by the libFuzzer targets of tests/fuzz: the input as a file (the parsers take paths), the
// outcome check, and the seeds a target generates itself (scripts/fuzz.sh runs each target once
// with SEIS_FUZZ_SEED_DIR set and -runs=0 to collect them).
//
// The outcome check: a parser given any bytes returns, or throws seis::InputError (a bad file) or
// seis::Error (a failed check). Any other exception is a finding and aborts, so that libFuzzer
// saves the input; crashes, sanitizer reports, leaks and timeouts are findings by themselves.
#pragma once
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <typeinfo>

#include "engine/error.h"

namespace seis::fuzz {

// A directory of this process's own under /tmp (removed at a normal exit).
inline const std::string& work_dir() {
  static const std::string dir = [] {
    const std::string d = "/tmp/seis_fuzz_" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all("/tmp/seis_fuzz_" + std::to_string(::getpid()), ec);
    });
    return d;
  }();
  return dir;
}

// Writes bytes to `path` (truncating it); aborts when that fails (the disk, not the parser).
inline void write_file(const std::string& path, const void* data, size_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::fprintf(stderr, "fuzz: cannot create %s: %s\n", path.c_str(), std::strerror(errno));
    std::abort();
  }
  const auto* p = static_cast<const uint8_t*>(data);
  size_t done = 0;
  while (done < size) {
    const ssize_t w = ::write(fd, p + done, size - done);
    if (w <= 0) {
      std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
      std::abort();
    }
    done += static_cast<size_t>(w);
  }
  ::close(fd);
}

// The input as a file the parsers can open by name: an in-memory file (memfd) of this process,
// reached as /proc/self/fd/N, rewritten for each input.
inline std::string input_file(const uint8_t* data, size_t size) {
  static const int fd = ::memfd_create("seis_fuzz_input", MFD_CLOEXEC);
  if (fd < 0 || ::ftruncate(fd, 0) != 0 || ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) {
    std::fprintf(stderr, "fuzz: cannot write the input to a memfd: %s\n", std::strerror(errno));
    std::abort();
  }
  return "/proc/self/fd/" + std::to_string(fd);
}

// Runs f; InputError and Error are the expected outcomes of a bad input. Returns true when f returned.
template <typename F>
bool expect_clean(F&& f) {
  try {
    f();
    return true;
  } catch (const seis::InputError& e) {
    if (std::strchr(e.what(), '\n') != nullptr) {
      std::fprintf(stderr, "fuzz finding: an InputError of more than one line: %s\n", e.what());
      std::abort();
    }
  } catch (const seis::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz finding: unexpected exception %s: %s\n", typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fuzz finding: unexpected exception of an unknown type\n");
    std::abort();
  }
  return false;
}

// Where generated seeds go, or nullptr when none are asked for.
inline const char* seed_dir() {
  const char* d = std::getenv("SEIS_FUZZ_SEED_DIR");
  return d != nullptr && *d != '\0' ? d : nullptr;
}

inline void write_seed(const std::string& name, const std::string& bytes) {
  std::filesystem::create_directories(seed_dir());
  write_file(std::string(seed_dir()) + "/" + name, bytes.data(), bytes.size());
}

// The bytes of a file (for seeds written through the project's own writers).
inline std::string read_file(const std::string& path) {
  std::string s;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return s;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

}  // namespace seis::fuzz
