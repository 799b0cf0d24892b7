// The output folder of a training run (DESIGN.md, "A training run writes to DIR"): config.json,
// metrics.jsonl, weights, state and previews. Whole files are written atomically (temp file, then
// rename); metrics.jsonl grows by appended lines, and a resume first rewrites it (atomically) to the
// lines of the steps up to the checkpoint, so that it reads as the uninterrupted run's.
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
  // Appends one JSON object as a line to metrics.jsonl. InputError naming the file and the reason
  // when the line cannot be written whole (disk full): the file then holds the lines before it.
  void append_metrics(const nlohmann::ordered_json& record) const;
  // Keeps only the metrics lines whose "step" is at most `step` (for a resume). InputError, the file
  // unchanged, when it cannot be read.
  void truncate_metrics(int64_t step) const;

 private:
  std::string path_;
};

}  // namespace seis
