// Printable text from file bytes (see printable.h).
#include "engine/printable.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace seis {

namespace {

// The length of the valid UTF-8 sequence of a multi-byte character at s[i] (lead byte >= 0x80) and
// its code point; 0 when the bytes there are not one (overlong forms, surrogates, past U+10FFFF,
// truncated).
size_t utf8_char(std::string_view s, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  const uint8_t c = b(0);
  size_t n = 0;
  uint32_t v = 0, min = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2, v = c & 0x1fu, min = 0x80;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3, v = c & 0x0fu, min = 0x800;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4, v = c & 0x07u, min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0u) != 0x80u) return 0;
    v = v << 6 | (b(k) & 0x3fu);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return n;
}

// Characters that change how a terminal shows the rest of a line.
bool invisible_control(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
         cp == 0x200e || cp == 0x200f || cp == 0x061c;
}

}  // namespace

std::string printable(std::string_view s, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(s.size(), max_bytes) + 3);
  char esc[16];
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    std::string_view piece;
    size_t used = 1;
    if (c >= 0x20 && c < 0x7f) {
      piece = s.substr(i, 1);
    } else if (c == '\n' || c == '\r' || c == '\t') {
      piece = c == '\n' ? "\\n" : c == '\r' ? "\\r" : "\\t";
    } else if (c < 0x80) {
      std::snprintf(esc, sizeof esc, "\\x%02x", c);
      piece = esc;
    } else {
      uint32_t cp = 0;
      const size_t n = utf8_char(s, i, &cp);
      if (n == 0) {
        std::snprintf(esc, sizeof esc, "\\x%02x", c);
        piece = esc;
      } else if (invisible_control(cp)) {
        std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(cp));
        piece = esc;
        used = n;
      } else {
        piece = s.substr(i, n);
        used = n;
      }
    }
    if (out.size() + piece.size() > max_bytes) {
      out += "...";
      return out;
    }
    out += piece;
    i += used;
  }
  return out;
}

}  // namespace seis
