// Static activation scales and SmoothQuant statistics from calibration
// windows (lowp/quant/activations.h).
#include "lowp/quant/activations.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "lowp/error.h"

namespace lowp {

void observe_all(const nn::Transformer& model,
                 const std::vector<std::vector<std::int32_t>>& calibration, unsigned threads,
                 const nn::LinearObserver& observe) {
  if (calibration.empty()) throw Error("activation calibration needs calibration text (--calib)");
  for (const std::vector<std::int32_t>& seq : calibration) {
    std::vector<float> x = model.embed(seq);
    for (int layer = 0; layer < model.config().n_layer; ++layer) {
      model.run_block(layer, x, observe, threads);
    }
    model.observe_head(x, observe);
  }
}

void channel_absmax(std::vector<float>& m, const float* x, std::size_t rows, std::size_t cols) {
  m.resize(cols, 0.0f);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t j = 0; j < cols; ++j) m[j] = std::max(m[j], std::fabs(x[r * cols + j]));
  }
}

nn::ActivationScales calibrate_activation_scales(
    const nn::Transformer& model, const std::vector<std::vector<std::int32_t>>& calibration,
    const StaticActivationOptions& opt) {
  const double max = max_finite(opt.element);
  if (!(max > 0.0) || !std::isfinite(max)) {
    throw Error("static activation scales need a scalar format with a finite maximum");
  }
  const auto layers = static_cast<std::size_t>(model.config().n_layer) + 1;
  std::vector<std::array<AbsHistogram, nn::kLinearInputs>> hist(layers);
  std::vector<std::array<std::vector<float>, nn::kLinearInputs>> absmax(layers);
  observe_all(
      model, calibration, opt.threads,
      [&](int layer, nn::LinearInput input, const float* x, std::size_t rows, std::size_t cols) {
        const auto l = static_cast<std::size_t>(layer);
        const auto i = static_cast<std::size_t>(input);
        if (opt.per_channel) {
          channel_absmax(absmax[l][i], x, rows, cols);
        } else {
          hist[l][i].add(x, rows * cols);
        }
      });
  nn::ActivationScales out;
  out.element = opt.element;
  out.scales.resize(layers);
  for (std::size_t l = 0; l < layers; ++l) {
    for (std::size_t i = 0; i < static_cast<std::size_t>(nn::kLinearInputs); ++i) {
      if (opt.per_channel) {
        for (float m : absmax[l][i]) out.scales[l][i].push_back(static_cast<float>(m / max));
      } else if (hist[l][i].total() > 0) {
        const double clip = calibrate_clip(hist[l][i], opt.element, opt.calibrator);
        out.scales[l][i] = {static_cast<float>(clip / max)};
      }
    }
  }
  return out;
}

SmoothStats smoothing_stats(const nn::Transformer& model,
                            const std::vector<std::vector<std::int32_t>>& calibration,
                            unsigned threads) {
  const auto n = static_cast<std::size_t>(model.config().n_layer);
  SmoothStats s;
  s.attention.resize(n);
  s.mlp.resize(n);
  s.attention_output.resize(n);
  observe_all(
      model, calibration, threads,
      [&](int layer, nn::LinearInput input, const float* x, std::size_t rows, std::size_t cols) {
        std::vector<float>* m = nullptr;
        const auto l = static_cast<std::size_t>(layer);
        switch (input) {
          case nn::LinearInput::kAttention:
            m = &s.attention[l];
            break;
          case nn::LinearInput::kMlp:
            m = &s.mlp[l];
            break;
          case nn::LinearInput::kAttentionOutput:
            m = &s.attention_output[l];
            break;
          default:
            return;
        }
        channel_absmax(*m, x, rows, cols);
      });
  return s;
}

}  // namespace lowp
