// Text taken from files (names, attribute values, parser messages quoting input), made safe to print
// in an error message or a summary: one line, valid UTF-8, no terminal control sequences, bounded.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace seis {

// `s` with every byte that is not part of a printable, valid UTF-8 character escaped: \n, \r and \t
// as such, other control bytes and bytes of invalid UTF-8 as \xNN, C1 controls and the bidirectional
// overrides (which reorder what a terminal shows) as \uNNNN. Cut at a character boundary once the
// result would pass max_bytes, and then ended with "...". Printable ASCII and valid UTF-8 text pass
// unchanged.
std::string printable(std::string_view s, size_t max_bytes = 256);

}  // namespace seis
