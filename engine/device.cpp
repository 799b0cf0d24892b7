#include "engine/device.h"

#include "engine/device_runtime.h"
#include "engine/error.h"

namespace seis {

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::cpu();
  if (s == "auto") return cuda_device_count() > 0 ? Device::cuda(0) : Device::cpu();
  int index = 0;
  if (s.rfind("cuda:", 0) == 0) {
    const std::string digits = s.substr(5);
    if (digits.empty() || digits.size() > 3 || digits.find_first_not_of("0123456789") != std::string::npos) {
      throw UsageError("--device: '" + s + "' is not cpu, cuda, cuda:N or auto");
    }
    index = std::stoi(digits);
  } else if (s != "cuda") {
    throw UsageError("--device: '" + s + "' is not cpu, cuda, cuda:N or auto");
  }
  const int count = cuda_device_count();
  if (count == 0) throw UsageError("--device " + s + ": no CUDA GPU is available here; use --device cpu or auto");
  if (index >= count) {
    throw UsageError("--device " + s + ": only " + std::to_string(count) + " CUDA GPU(s) are available");
  }
  return Device::cuda(index);
}

}  // namespace seis
