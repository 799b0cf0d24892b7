#include "apps/run_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "engine/error.h"
#include "engine/file_io.h"

namespace seis {

RunDir::RunDir(std::string path) : path_(std::move(path)) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(path_, ec) && !fs::is_directory(path_, ec)) {
    throw InputError(path_ + ": exists and is not a directory");
  }
  fs::create_directories(path_, ec);
  if (ec) throw InputError(path_ + ": cannot create the output directory: " + ec.message());
}

void RunDir::write_config(const nlohmann::ordered_json& config) const {
  write_atomic(file("config.json"), config.dump(2) + "\n");
}

void RunDir::append_metrics(const nlohmann::ordered_json& record) const {
  const std::string name = file("metrics.jsonl");
  const std::string line = record.dump() + "\n";
  const int fd = ::open(name.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw InputError(name + ": cannot append: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw InputError(name + ": cannot append: " + std::strerror(e));
  }
  int err = 0;
  for (size_t done = 0; err == 0 && done < line.size();) {
    const ssize_t w = ::write(fd, line.data() + done, line.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) err = w < 0 ? errno : EIO;
    if (w > 0) done += static_cast<size_t>(w);
  }
  // A line not written whole (disk full) is cut off again, so that the next append does not
  // continue a torn line. (Should that fail too, a resume drops the torn line: truncate_metrics.)
  const bool cut = err == 0 || ::ftruncate(fd, st.st_size) == 0;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    throw InputError(name + ": cannot append" + (cut ? "" : " (a partial line remains)") + ": " + std::strerror(err));
  }
}

void RunDir::truncate_metrics(int64_t step) const {
  std::ifstream in(file("metrics.jsonl"));
  std::string kept, line;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    // A torn last line (a crash mid-append) is dropped with the lines past the checkpoint.
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) continue;
    if (j["step"].get<int64_t>() <= step) kept += line + "\n";
  }
  // (A read that fails part-way must not rewrite the file with the lines read so far.)
  if (in.bad()) throw InputError(file("metrics.jsonl") + ": cannot read: " + std::strerror(errno != 0 ? errno : EIO));
  write_atomic(file("metrics.jsonl"), kept);
}

}  // namespace seis
