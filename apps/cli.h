// Command-line helpers shared by the subcommands: CLI11 parsing where a bad flag or value becomes
// a one-line UsageError (exit 2) and --help prints and exits 0.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "engine/error.h"

namespace seis {

// --precision, as every command explains it.
constexpr const char* kPrecisionHelp =
    "fp32 (exact), tf32 or bf16: conv operands rounded to it, fp32 accumulation; bf16 also stores activations "
    "and their gradients in bf16 (on CUDA only with SEIS_CUDA_BF16_STORAGE=1 until verified on a GPU)";

// Returns false when --help was printed (the command should return 0).
inline bool parse_cli(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return false;
  } catch (const CLI::ParseError& e) {
    throw UsageError(std::string(e.what()) + " (see --help)");
  }
  return true;
}

// "LO:HI" into two numbers; UsageError naming the flag otherwise, or when LO > HI.
inline void parse_range(const std::string& flag, const std::string& v, double* lo, double* hi) {
  const size_t c = v.find(':');
  try {
    if (c == std::string::npos) throw std::invalid_argument(v);
    size_t used = 0;
    *lo = std::stod(v.substr(0, c), &used);
    if (used != c) throw std::invalid_argument(v);
    *hi = std::stod(v.substr(c + 1), &used);
    if (used != v.size() - c - 1) throw std::invalid_argument(v);
  } catch (const std::exception&) {
    throw UsageError(flag + ": '" + v + "' is not LO:HI");
  }
  if (!(*lo <= *hi)) throw UsageError(flag + ": LO must not exceed HI in '" + v + "'");
}

}  // namespace seis
