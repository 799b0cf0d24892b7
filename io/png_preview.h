// PNG previews of one gather: input | label | prediction side by side, 8-bit RGB.
#pragma once
#include <cstdint>
#include <string>

namespace seis {

// Panels (left to right), each H' x W', separated by kPreviewSeparator grey pixels:
//   input: red (+) / white (0) / blue (-), clipped at the 98th percentile of |x|;
//   label and prob: greyscale, 0 black, 1 white; a null pointer gives a flat dark panel.
// data, label and prob are [height][width] row-major (time, receiver). A gather larger than
// kPreviewMaxSide in either dimension is reduced by an integer factor: the input keeps the sample
// of largest |x| in each block (so thin arrivals stay visible), label and prob are block means.
// The file is written atomically (engine/file_io.h: temp file, fsync, rename, fsync of the directory);
// on failure nothing is left behind and
// seis::InputError names the file and the problem.
constexpr int64_t kPreviewSeparator = 4;
constexpr int64_t kPreviewMaxSide = 1024;

void write_preview_png(const std::string& path, int64_t height, int64_t width, const float* data, const uint8_t* label,
                       const float* prob);

}  // namespace seis
