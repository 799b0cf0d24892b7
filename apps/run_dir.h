// The output folder of a training run (DESIGN.md, "A training run writes to DIR"): config.json,
// metrics.jsonl, weights and previews, each file written atomically.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace seis {

class RunDir {
 public:
  // Creates `path` (and parents) if needed. InputError naming it when that fails or it is a file.
  explicit RunDir(std::string path);
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  void write_config(const nlohmann::ordered_json& config) const;
  // Appends one JSON object as a line to metrics.jsonl (rewritten atomically each time).
  void append_metrics(const nlohmann::ordered_json& record);

 private:
  std::string path_;
  std::string metrics_;  // everything written to metrics.jsonl so far
};

}  // namespace seis
