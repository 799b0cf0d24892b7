#include "engine/error.h"

namespace seis {

void throw_check_failure(const char* file, int line, const char* cond, const std::string& msg) {
  std::ostringstream os;
  os << file << ":" << line << ": check failed: " << cond;
  if (!msg.empty()) os << ": " << msg;
  throw Error(os.str());
}

}  // namespace seis
