// lowp/quant/methods.h — quantizing one weight matrix better than rounding to
// nearest: one interface for every method, any lowp matrix format as target.
//
//   rtn    the format's own rule (PackedMatrix::quantize): the baseline.
//   mse    data-free scale search: each segment's scale (MX shared exponent,
//          NVFP4 E4M3 block scale, FP16 group scale, FP32 channel or tensor
//          scale with a clip) is the candidate (storage/segment_quantizer.h)
//          whose reconstruction error sum_i h_i (w_i - q(w_i))^2 is least; h_i
//          is 1, or the input's second moment diag(H)_i when statistics are
//          given. Ties keep the rule's scale.
//   gptq   GPTQ (Frantar et al., 2022): columns are quantized one at a time
//          and each one's error, weighted by the inverse Hessian of the layer
//          input, is pushed onto the columns not yet quantized, with lazy
//          block updates, damping and optional act-order. A segment's scale is
//          chosen when the column loop enters it (from the weights as updated
//          so far), or before the loop from the original weights ("static
//          groups": always under act-order, since a segment's columns are then
//          not visited together; always for channel and tensor scales).
//   fpsearch  LLM-FP4's format and clip search (Liu et al., 2023): the
//          element's bit width is kept and its exponent/mantissa split is
//          searched per layer over every eXmYfin of that width (E1M2, E2M1,
//          E3M0 at 4 bits; E2M5 .. E5M2 at 8), each with its scales chosen by
//          the mse search (a scale is LLM-FP4's real-valued exponent bias);
//          the layer keeps the split whose output error tr(dW H dW^T) is least
//          (the weights' squared error without statistics).
//   fpvote the per-channel vote of "FP8 Quantization: The Power of the
//          Exponent" (Kuzmin et al., 2022): every row takes the split whose
//          mse-searched error is least; the layer takes the split most rows
//          chose (ties: the lesser total error). Data-free.
//
//   power  PowerQuant / NUPES (lowp/quant/power.h): sign(w)|w|^a stored in the
//          format, a searched per matrix; the layer holds the fp32 weights
//          the stored matrix stands for (its bytes + the exponent counted).
//   nupes  the same with calibration data: a judged by the layer's output
//          error and refined by a golden-section search (power.h).
//
//   vq, gptvq  vector quantization with per-group code books, data-free or
//          inside GPTQ's loop (GPTVQ; lowp/quant/vq.h): on int<b>:group<G>
//          (or :channel) the vectors of `vq_dim` weights take b index bits
//          per weight and a code book serves 256 rows x G columns.
//
//   matgptq  MatGPTQ (Matryoshka quantization inside GPTQ; Nair et al.
//          2025): on an int8 format, GPTQ whose rounding minimizes the sum of
//          the errors of the code's slices to each width in
//          `matryoshka_bits` (lowp/quant/matryoshka.h), and which pushes on
//          their mean error, so that the int8 model and its int4 / int2
//          slices are all good models.
//
// Any method can be followed by LoRC (lowp/quant/lowrank.h): the rank-r SVD
// of its error, stored as int8 factors beside its matrix ("gptq+lorc8").
//
// Every method returns a PackedMatrix of the requested format (fpsearch and
// fpvote: of the format with the chosen element): the output is the
// format's exact storage, and its dequantize() is what the method chose.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowp/format/format.h"
#include "lowp/storage/packed_matrix.h"
#include "lowp/storage/segment_quantizer.h"

namespace lowp {

enum class QuantMethod {
  kRtn,
  kMse,
  kGptq,
  kFpSearch,
  kFpVote,
  kPower,
  kVq,
  kGptvq,
  kMatGptq,
  kNupes
};

std::string_view method_name(QuantMethod m);
// "rtn", "mse", "gptq", "fpsearch", "fpvote", "power", "vq", "gptvq",
// "matgptq" or "nupes"; throws lowp::Error naming
// the spelling otherwise.
QuantMethod parse_method(std::string_view name);
// Whether the method needs calibration statistics (a Hessian).
bool method_needs_data(QuantMethod m);
// A method as the CLI spells it: "<method>[+row][+lorc<R>]": +row puts an
// MX format's power-of-two block scales under a real FP32 scale per row
// (ZeroQuant-FP's second scale layout; MethodOptions::row_scale), +lorc<R>
// adds LoRC of rank R after it. Throws lowp::Error naming the spelling
// otherwise.
struct MethodSpec {
  QuantMethod method = QuantMethod::kRtn;
  std::size_t lorc_rank = 0;
  bool row_scale = false;
};
MethodSpec parse_method_spec(std::string_view name);

// Why the method cannot quantize to f (e.g. fpsearch to an integer format),
// or empty when it can.
std::string method_mismatch(QuantMethod m, const MatrixFormat& f);
// The same for a spelled method (+row needs an MX format).
std::string method_mismatch(const MethodSpec& spec, const MatrixFormat& f);

struct GptqOptions {
  double damp = 0.01;       // added to H's diagonal, times mean(diag H)
  std::size_t block = 128;  // columns per lazy update
  bool act_order = false;   // columns in order of decreasing diag(H)
  bool static_groups = false;
  bool mse_scales = true;  // choose each segment's scale by the MSE search (else the rule)
};

// The element formats fpsearch and fpvote choose from for a float element of
// `bits` bits: eXmYfin (every code a number, the simulators' convention)
// with 1 + X + Y = bits and 1 <= X <= min(bits - 1, 5), fewest exponent bits
// first (bits 3 .. 16). Throws lowp::Error otherwise.
std::vector<Format> fp_split_candidates(int bits);

struct MethodOptions {
  QuantMethod method = QuantMethod::kRtn;
  // LoRC after the method: the rank of the error's compensation (0: none),
  // its factors stored in `lorc_format` (lowp/quant/lowrank.h).
  std::size_t lorc_rank = 0;
  std::string lorc_format = "int8:channel";
  // Quantize diag(r)^-1 W with r an FP32 scale per row (amax / max of the
  // element) in an MX format, the layer holding diag(r) Q: ZeroQuant-FP's
  // "real row scale times per-group 2^-k" (the method's bytes + 4 per row).
  bool row_scale = false;
  std::size_t vq_dim = 2;  // vq, gptvq: weights per vector (1, 2 or 4)
  int vq_update = 0;       // gptvq: code-book update steps (lowp/quant/vq.h; 0: none)
  // matgptq: the widths whose slices of the int8 codes share the objective
  // (8 is the int8 model itself), and each one's weight lambda_r in it
  // (empty: equal weights; normalized to sum 1).
  std::vector<int> matryoshka_bits = {8, 4, 2};
  std::vector<double> matryoshka_weights;
  ScaleSearch search;
  GptqOptions gptq;
  unsigned threads = 1;  // results do not depend on it
};

// The second moment of a layer's input: H = sum over tokens of x x^T
// (cols x cols, fp64, symmetric), and the number of tokens added.
class InputHessian {
 public:
  InputHessian() = default;
  explicit InputHessian(std::size_t cols);
  // A Hessian given as a matrix (cols x cols, row-major) over `tokens`
  // tokens. Throws lowp::Error for a size that is not cols^2 or a matrix
  // that is not symmetric or not finite.
  static InputHessian from_matrix(std::size_t cols, std::span<const double> h,
                                  std::uint64_t tokens);
  // Adds `rows` input vectors (row-major, rows x cols); threads split the
  // work, the sum does not depend on them.
  void add(const float* x, std::size_t rows, unsigned threads = 1);
  std::size_t cols() const { return cols_; }
  std::uint64_t tokens() const { return tokens_; }
  std::span<const double> matrix() const { return h_; }
  std::span<double> matrix() { return h_; }

 private:
  std::size_t cols_ = 0;
  std::uint64_t tokens_ = 0;
  std::vector<double> h_;
};

struct WeightQuantization {
  PackedMatrix matrix;
  double damp = 0;                    // gptq: the damping that was used (relative)
  std::vector<std::string> warnings;  // e.g. damping raised for a singular Hessian
  std::string detail;                 // fpsearch / fpvote: each split's error or votes (one line)
  // With LoRC: `matrix` holds Q + U'V'^T in fp32 (what the layer computes) and
  // stored_bytes what Q and the factors take; 0 otherwise (matrix.bytes()).
  std::size_t stored_bytes = 0;
};

// Quantizes w [rows x cols] (row-major; W of y = W x, scales along a row) to
// f by `opt.method`. `h` (cols x cols) is required by gptq and optional for
// mse. Throws lowp::Error for sizes that do not fit, a non-finite weight, a
// method that needs statistics without them, or a Hessian the damping cannot
// make positive definite.
WeightQuantization quantize_weight(const MatrixFormat& f, std::span<const float> w,
                                   std::size_t rows, std::size_t cols, const MethodOptions& opt,
                                   const InputHessian* h = nullptr);

// GPTQ's per-layer objective tr((W - Q) H (W - Q)^T) (fp64), with Q the
// packed matrix's values: the output error summed over the calibration tokens.
double hessian_error(std::span<const float> w, const PackedMatrix& q, const InputHessian& h,
                     unsigned threads = 1);

}  // namespace lowp
