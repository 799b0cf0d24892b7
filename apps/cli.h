// Command-line helpers shared by the subcommands: CLI11 parsing where a bad flag or value becomes
// a one-line UsageError (exit 2) and --help prints and exits 0.
#pragma once
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "engine/error.h"
#include "engine/ops.h"  // kPrecisionHelp, as every command explains --precision

namespace seis {

// A run time or an ETA in progress lines: "3m05s", or "1h02m" from an hour on.
inline std::string format_duration(double seconds) {
  char buf[32];
  const long t = std::lround(std::max(0.0, seconds));
  if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  }
  return buf;
}

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
