// lowp/quant/calibrate.h — quantizing a whole transformer with a method of
// lowp/quant/methods.h, calibrated through the runtime.
//
// Sequential calibration (as GPTQ does): the calibration sequences' hidden
// states are kept at one block boundary ([tokens, d_model] fp32, the only
// activations held); block l runs on them with the weights of blocks < l
// already quantized, its linear inputs are observed (the Hessian X^T X per
// input, per-channel absmax), its matrices are quantized, and the block is run
// again, now quantized, to give block l + 1 its inputs. The head comes last.
// With true_sequential (the default) the inputs within a block are taken one
// at a time, each after the matrices before it are quantized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lowp/nn/transformer.h"
#include "lowp/quant/methods.h"

namespace lowp {

// `count` windows of `length` tokens from a tokenized calibration text, each
// starting at a seeded random offset (the same seed, the same windows); with
// `bos`, each window is bos followed by length - 1 text tokens. Throws
// lowp::Error when the text is shorter than one window or length is 0.
std::vector<std::vector<std::int32_t>> calibration_windows(std::span<const std::int32_t> tokens,
                                                           std::optional<std::int32_t> bos,
                                                           std::size_t length, std::size_t count,
                                                           std::uint64_t seed);

// What calibration saw at one linear input.
struct InputStats {
  InputHessian hessian;       // empty (cols 0) when the method needs none
  std::vector<float> absmax;  // per channel
};

struct LinearReport {
  std::string name;    // "layers.3.q", "head"
  std::string format;  // the format of the matrix the layer holds (fpsearch / fpvote:
                       // with the chosen element; LoRC: fp32, see detail)
  std::string detail;  // fpsearch / fpvote: each split's error or votes
  std::size_t rows = 0, cols = 0;
  double seconds = 0;        // quantizing this matrix
  double objective = 0;      // tr(dW H dW^T) of the method (when a Hessian was taken)
  double rtn_objective = 0;  // the same for round to nearest
  double damp = 0;
};

struct ModelQuantization {
  nn::Transformer model;
  std::vector<LinearReport> linears;
  std::vector<std::string> warnings;
  double seconds = 0;  // all of it, calibration included
  std::size_t calibration_tokens = 0;
};

struct ModelQuantizeOptions {
  MethodOptions method;
  bool measure_objective = true;  // also quantize by RTN to report both objectives
  // Within a block, observe each input only after the matrices before it
  // (q/k/v before o, o before the MLP, ...) are quantized: one pass over the
  // calibration windows per input instead of one per block.
  bool true_sequential = true;
  // A format per matrix (mixed precision, lowp/quant/budget.h); when empty,
  // every matrix takes the format argument.
  std::function<MatrixFormat(int layer, nn::LinearKind kind)> format_of;
  // Called with a line of progress (for stderr) as each block finishes, and
  // for each matrix whose method chose its element (fpsearch, fpvote).
  std::function<void(const std::string&)> progress;
};

// Quantizes every linear weight of `model` (its checkpoint fp32 values) to
// `f` by the method; `calibration` is needed by methods that need data.
// Activation formats and scales of `model` stay in place and are seen by
// calibration. Throws lowp::Error for a method that needs data without it.
ModelQuantization quantize_transformer(const nn::Transformer& model, const MatrixFormat& f,
                                       const std::vector<std::vector<std::int32_t>>& calibration,
                                       const ModelQuantizeOptions& opt);

}  // namespace lowp
