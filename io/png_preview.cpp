// PNG previews (libpng). The image is composed in memory first; the libpng calls live in one
// function whose locals are plain C types, because libpng reports errors by longjmp.
#include "io/png_preview.h"

#include <png.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include "engine/error.h"
#include "engine/file_io.h"

namespace seis {
namespace {

struct PngErrorState {
  jmp_buf jump;
  char message[256];
  int write_errno;  // errno of a failed fwrite (libpng's "Write Error" says no more)
};

void on_png_error(png_structp png, png_const_charp msg) {
  auto* state = static_cast<PngErrorState*>(png_get_error_ptr(png));
  state->write_errno = std::strcmp(msg, "Write Error") == 0 ? (errno != 0 ? errno : EIO) : 0;
  std::snprintf(state->message, sizeof(state->message), "%s", msg);
  longjmp(state->jump, 1);
}

void on_png_warning(png_structp, png_const_charp) {}

// Returns false with state->message set on failure. Only C types live across setjmp.
bool write_rgb_png(std::FILE* file, int64_t width, int64_t height, const uint8_t* rgb, PngErrorState* state) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, state, on_png_error, on_png_warning);
  if (!png) {
    std::snprintf(state->message, sizeof(state->message), "out of memory creating the PNG writer");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    std::snprintf(state->message, sizeof(state->message), "out of memory creating the PNG header");
    return false;
  }
  if (setjmp(state->jump)) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_init_io(png, file);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int64_t y = 0; y < height; ++y) png_write_row(png, rgb + y * width * 3);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

// Integer reduction factor so that n / f <= kPreviewMaxSide.
int64_t reduction(int64_t n) { return (n + kPreviewMaxSide - 1) / kPreviewMaxSide; }

}  // namespace

void write_preview_png(const std::string& path, int64_t height, int64_t width, const float* data, const uint8_t* label,
                       const float* prob) {
  if (height < 1 || width < 1 || data == nullptr) {
    throw InputError("cannot write preview '" + path + "': empty gather (" + std::to_string(height) + " x " +
                     std::to_string(width) + ")");
  }
  const int64_t fh = reduction(height), fw = reduction(width);
  const int64_t ph = (height + fh - 1) / fh, pw = (width + fw - 1) / fw;  // panel size
  const int64_t sep = kPreviewSeparator;
  const int64_t img_w = 3 * pw + 2 * sep, img_h = ph;

  // Reduce each panel to ph x pw.
  std::vector<float> amp(static_cast<size_t>(ph * pw)), lab(amp.size()), pro(amp.size());
  for (int64_t py = 0; py < ph; ++py) {
    for (int64_t px = 0; px < pw; ++px) {
      float peak = 0, lsum = 0, psum = 0;
      int64_t n = 0;
      for (int64_t y = py * fh; y < std::min(height, (py + 1) * fh); ++y) {
        for (int64_t x = px * fw; x < std::min(width, (px + 1) * fw); ++x) {
          const int64_t i = y * width + x;
          const float v = std::isfinite(data[i]) ? data[i] : 0.0f;
          if (std::fabs(v) > std::fabs(peak)) peak = v;
          if (label) lsum += label[i] ? 1.0f : 0.0f;
          if (prob) psum += prob[i];
          ++n;
        }
      }
      const int64_t o = py * pw + px;
      amp[o] = peak;
      lab[o] = lsum / static_cast<float>(n);
      pro[o] = psum / static_cast<float>(n);
    }
  }
  std::vector<float> mag(amp.size());
  for (size_t i = 0; i < amp.size(); ++i) mag[i] = std::fabs(amp[i]);
  const size_t q = std::min(mag.size() - 1, static_cast<size_t>(0.98 * static_cast<double>(mag.size())));
  std::nth_element(mag.begin(), mag.begin() + static_cast<std::ptrdiff_t>(q), mag.end());
  const float clip = mag[q] > 0 ? mag[q] : 1.0f;

  auto grey = [](float v) {  // NaN (a diverged prediction) shows as black
    return static_cast<uint8_t>(std::lround(255.0f * (std::isfinite(v) ? std::clamp(v, 0.0f, 1.0f) : 0.0f)));
  };
  std::vector<uint8_t> rgb(static_cast<size_t>(img_w * img_h * 3), 128);  // separators stay mid grey
  for (int64_t y = 0; y < ph; ++y) {
    uint8_t* row = rgb.data() + y * img_w * 3;
    for (int64_t x = 0; x < pw; ++x) {
      const int64_t o = y * pw + x;
      // Red-white-blue: positive fades white to red, negative white to blue.
      const float a = std::clamp(amp[o] / clip, -1.0f, 1.0f);
      const uint8_t fade = grey(1.0f - std::fabs(a));
      uint8_t* p = row + x * 3;
      p[0] = a >= 0 ? 255 : fade;
      p[1] = fade;
      p[2] = a >= 0 ? fade : 255;
      const uint8_t gl = label ? grey(lab[o]) : 48, gp = prob ? grey(pro[o]) : 48;
      uint8_t* l = row + (pw + sep + x) * 3;
      uint8_t* r = row + (2 * (pw + sep) + x) * 3;
      l[0] = l[1] = l[2] = gl;
      r[0] = r[1] = r[2] = gp;
    }
  }

  AtomicFile file(path);  // (removes its temporary file when anything below throws)
  PngErrorState state{};
  if (!write_rgb_png(file.stream(), img_w, img_h, rgb.data(), &state)) {
    // (A full disk reads as every other output's: the path, "write failed" and the reason.)
    if (state.write_errno != 0) throw InputError(path + ": write failed: " + std::strerror(state.write_errno));
    throw InputError("cannot write preview '" + path + "': " + state.message);
  }
  file.commit();
}

}  // namespace seis
