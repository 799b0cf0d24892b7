// Errors: internal checks throw seis::Error with file:line; UsageError and InputError carry the
// one-line message a user sees (exit codes 2 and 1).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace seis {

// An internal invariant or a failing library call.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A bad flag or value on the command line: exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A bad input file or value: exit code 1. The message names the file and the problem.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_check_failure(const char* file, int line, const char* cond, const std::string& msg);

}  // namespace seis

#define SEIS_CHECK(cond, ...)                                                       \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::ostringstream seis_check_os_;                                            \
      seis_check_os_ << __VA_ARGS__;                                                \
      ::seis::throw_check_failure(__FILE__, __LINE__, #cond, seis_check_os_.str()); \
    }                                                                               \
  } while (0)
