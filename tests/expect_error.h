// A call that must fail with one InputError line containing a fragment (the file and the problem).
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "engine/error.h"

namespace seis::test {

template <typename F>
void expect_input_error(F&& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "no InputError; expected one containing '" << fragment << "'";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line: " << e.what();
  }
}

}  // namespace seis::test
