#include "apps/run_dir.h"

#include <cstdio>
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
  FILE* f = std::fopen(name.c_str(), "a");
  if (f == nullptr) throw InputError(name + ": cannot append");
  const std::string line = record.dump() + "\n";
  const bool ok = std::fwrite(line.data(), 1, line.size(), f) == line.size();
  if (std::fclose(f) != 0 || !ok) throw InputError(name + ": write failed");
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
  write_atomic(file("metrics.jsonl"), kept);
}

}  // namespace seis
