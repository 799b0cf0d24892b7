// Command-line helpers shared by the subcommands: CLI11 parsing where a bad flag or value becomes
// a one-line UsageError (exit 2) and --help prints and exits 0.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "engine/error.h"

namespace seis {

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

}  // namespace seis
