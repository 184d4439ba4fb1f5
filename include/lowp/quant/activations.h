// lowp/quant/activations.h — static activation scales from calibration
// (integer-quantization whitepaper, TensorRT): run the model over calibration
// windows, gather at every linear input a histogram of |x| (per tensor) or the
// per-channel absmax, and turn them into fixed scales with a calibrator
// (lowp/quant/act_calib.h). Also the per-channel statistics SmoothQuant needs.
#pragma once

#include <cstdint>
#include <vector>

#include "lowp/nn/transformer.h"
#include "lowp/quant/act_calib.h"
#include "lowp/quant/smooth.h"

namespace lowp {

struct StaticActivationOptions {
  Format element;                // a symmetric scalar format, e.g. int8, fp8_e4m3
  CalibratorOptions calibrator;  // per tensor; per channel always takes the max
  bool per_channel = false;
  unsigned threads = 1;
};

// Runs every calibration window through the model block by block, handing
// each linear input to `observe`. Throws lowp::Error without windows.
void observe_all(const nn::Transformer& model,
                 const std::vector<std::vector<std::int32_t>>& calibration, unsigned threads,
                 const nn::LinearObserver& observe);

// m[j] = max(m[j], |x[r][j]|) over the rows of x [rows, cols] (m is sized to
// cols, with zeros, when empty): the per-channel absmax calibration keeps.
void channel_absmax(std::vector<float>& m, const float* x, std::size_t rows, std::size_t cols);

// Static scales for every linear input of `model` (as it is: its weights in
// their formats, FP32 activations), s = clip / max(element). Throws
// lowp::Error without calibration windows or for an element with no finite
// maximum.
nn::ActivationScales calibrate_activation_scales(
    const nn::Transformer& model, const std::vector<std::vector<std::int32_t>>& calibration,
    const StaticActivationOptions& opt);

// Per-channel absmax of each block's normed inputs (and of o's input), the
// statistics of smooth_quant, from the model as it is.
SmoothStats smoothing_stats(const nn::Transformer& model,
                            const std::vector<std::vector<std::int32_t>>& calibration,
                            unsigned threads);

}  // namespace lowp
