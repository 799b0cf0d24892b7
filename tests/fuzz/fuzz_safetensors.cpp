// Feeds: the input as a safetensors file to engine/safetensors.cpp (load_safetensors: the 8-byte
// header length, the JSON header, dtypes, shapes and data offsets, then the data). Seeds: files
// written by save_safetensors (f32, bf16 and u8 tensors of rank 0 to 4, metadata). Asserts: no crash
// or sanitizer report, only seis::InputError / seis::Error thrown, and no tensor loaded holds more
// bytes than the file.
#include "engine/safetensors.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (seis::fuzz::seed_dir() == nullptr) return 0;
  using seis::DType;
  using seis::Tensor;
  const std::string tmp = seis::fuzz::work_dir() + "/seed.safetensors";
  seis::save_safetensors(tmp,
                         {{"a.weight", Tensor::from_vector({2, 1, 3, 3}, std::vector<float>(18, 0.5f))},
                          {"a.bias", Tensor::full({2}, -1.0f)},
                          {"scalar", Tensor::full({}, 3.0f)},
                          {"bf", Tensor::zeros({3, 2}, DType::bf16)},
                          {"mask", Tensor::zeros({1, 2, 2, 2, 1}, DType::u8)}},
                         {{"seisseg.normalize", "trace"}, {"format", "pt"}});
  seis::fuzz::write_seed("tensors.safetensors", seis::fuzz::read_file(tmp));
  seis::save_safetensors(tmp, {}, {});
  seis::fuzz::write_seed("empty.safetensors", seis::fuzz::read_file(tmp));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = seis::fuzz::input_file(data, size);
  seis::fuzz::expect_clean([&] {
    const seis::SafetensorsContents c = seis::load_safetensors(path);
    for (const auto& [name, t] : c.tensors) {
      if (t.nbytes() < 0 || t.nbytes() > static_cast<int64_t>(size)) {
        std::fprintf(stderr, "fuzz finding: tensor %s holds %lld bytes from a file of %zu\n", name.c_str(),
                     static_cast<long long>(t.nbytes()), size);
        std::abort();
      }
    }
  });
  return 0;
}
