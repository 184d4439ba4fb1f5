// tests/ci.h — whether a test may skip for want of something optional.
//
// Outside CI a test whose input is missing (the real model that
// scripts/fetch-models.sh fetches, the embedded checkpoint) skips, and
// scripts/test.sh lists the skip in its summary. Under CI (environment CI=true,
// set by .ci/run) nothing may pass by skipping: the same test fails, naming
// what is missing.
#pragma once

#include <cstdlib>
#include <string_view>

namespace lowp_test {

inline bool under_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && (std::string_view(ci) == "true" || std::string_view(ci) == "1");
}

}  // namespace lowp_test

// Skips the current test with `why` (anything streamable into a gtest
// message), or fails it under CI. For use in a TEST body.
#define LOWP_SKIP_OR_FAIL_UNDER_CI(why)                                                  \
  do {                                                                                   \
    if (::lowp_test::under_ci()) FAIL() << why << " (CI=true: skipping is not allowed)"; \
    GTEST_SKIP() << why;                                                                 \
  } while (0)
