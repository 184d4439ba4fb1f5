// Runs a test body once per SIMD target the kernels were compiled for (as
// Highway's own tests do), so every target must match the scalar reference.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lowp/kernels.h"

namespace lowp_test {

// fn() on every available target (the best one only when all_targets is
// false), then back to the default dispatch.
template <class Fn>
void for_each_target(Fn&& fn, bool all_targets = true) {
  const std::vector<std::int64_t> targets = lowp::kernels::available_targets();
  ASSERT_FALSE(targets.empty());
  const std::size_t runs = all_targets ? targets.size() : 1;
  for (std::size_t k = 0; k < runs; ++k) {
    const std::int64_t t = targets[k];
    lowp::kernels::set_target_for_testing(t);
    ASSERT_EQ(lowp::kernels::current_target(), t);
    SCOPED_TRACE("target " + lowp::kernels::target_name(t));
    fn();
  }
  lowp::kernels::set_target_for_testing(0);
}

}  // namespace lowp_test
