#include "apps/run_dir.h"

#include <filesystem>
#include <system_error>

#include "engine/error.h"
#include "engine/safetensors.h"

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
  write_file_atomic(file("config.json"), config.dump(2) + "\n");
}

void RunDir::append_metrics(const nlohmann::ordered_json& record) {
  metrics_ += record.dump() + "\n";
  write_file_atomic(file("metrics.jsonl"), metrics_);
}

}  // namespace seis
