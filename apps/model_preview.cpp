#include "apps/model_preview.h"

#include <vector>

#include "io/png_preview.h"

namespace seis {

int64_t first_labelled_sample(const SampleSource& src, int64_t scan) {
  const int64_t hw = src.height() * src.width();
  std::vector<float> data(static_cast<size_t>(hw));
  std::vector<uint8_t> label(static_cast<size_t>(hw));
  for (int64_t i = 0; i < std::min(scan, src.size()); ++i) {
    src.read(i, data.data(), label.data());
    for (uint8_t v : label) {
      if (v != 0) return i;
    }
  }
  return 0;
}

void write_model_preview(const UNet& model, const SampleSource& src, int64_t index, Normalize normalize,
                         const std::string& path) {
  Tensor data, label;
  load_batch(src, {index}, normalize, model.device(), &data, &label);
  const Tensor prob = sigmoid(model.forward(nullptr, make_var(data))->value).to(Device::cpu());
  write_preview_png(path, src.height(), src.width(), data.to(Device::cpu()).data<float>(),
                    label.to(Device::cpu()).data<uint8_t>(), prob.data<float>());
}

}  // namespace seis
