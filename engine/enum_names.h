// The names of an enum's values (the values of a flag such as --optimizer), written once as a table
// of {value, name} pairs: parsing, naming and the list of allowed names (for CLI::IsMember and the
// error message) all read the same table.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/printable.h"

namespace seis {

template <typename E>
struct EnumName {
  E value;
  const char* name;
};

// The names in the table's order, e.g. {"adam", "adamw", "sgd"}.
template <typename E, size_t N>
std::vector<std::string> enum_names(const EnumName<E> (&table)[N]) {
  std::vector<std::string> names;
  for (const EnumName<E>& e : table) names.push_back(e.name);
  return names;
}

// The value called `name`; otherwise UsageError "--flag: 'x' is not adam, adamw or sgd".
template <typename E, size_t N>
E parse_enum(const EnumName<E> (&table)[N], const std::string& name, const char* flag) {
  for (const EnumName<E>& e : table) {
    if (name == e.name) return e.value;
  }
  std::string allowed;
  for (size_t i = 0; i < N; ++i) allowed += std::string(i == 0 ? "" : i + 1 < N ? ", " : " or ") + table[i].name;
  throw UsageError(std::string(flag) + ": '" + printable(name, 64) + "' is not " + allowed);
}

// The name of `value`; "?" for a value the table lacks.
template <typename E, size_t N>
const char* enum_name(const EnumName<E> (&table)[N], E value) {
  for (const EnumName<E>& e : table) {
    if (e.value == value) return e.name;
  }
  return "?";
}

}  // namespace seis
