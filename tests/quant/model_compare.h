// tests/quant/model_compare.h — how far two transformers' logits are apart.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "lowp/nn/transformer.h"

namespace lowp_test {

// max |logit_a - logit_b| / max |logit_a| over a sequence (FP32 forward passes).
inline double max_relative_difference(const lowp::nn::Transformer& a,
                                      const lowp::nn::Transformer& b,
                                      const std::vector<std::int32_t>& t) {
  const auto v = static_cast<std::size_t>(a.config().vocab_size);
  std::vector<float> la(t.size() * v), lb(t.size() * v);
  a.forward(t, la, 2);
  b.forward(t, lb, 2);
  double diff = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < la.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(la[i]) - lb[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(la[i])));
  }
  return diff / scale;
}

}  // namespace lowp_test
