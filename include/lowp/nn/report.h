// lowp/nn/report.h — what each number format costs a model and what it saves:
// direct-cast the model's matrices to each format, evaluate its validation loss
// with the runtime (src/nn), and tabulate bits per weight, bytes, loss and
// speed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowp/nn/transformer.h"

namespace lowp::nn {

// fp32, bf16, fp8_e4m3, fp8_e5m2, mxfp8_e4m3, mxfp6_e3m2, mxfp6_e2m3, mxfp4,
// mxint8, nvfp4, int8:channel, int4:group32.
std::vector<std::string> default_report_formats();

// Text for an SVG/XML element or attribute: &, <, > and " escaped, control
// characters (not allowed in XML 1.0 text) replaced by spaces.
std::string xml_escape(std::string_view s);

struct ReportRow {
  std::string format;
  std::string method = "rtn";     // how the weights were quantized ("rtn": the direct cast)
  double quantize_seconds = 0;    // time the method took (0 for rtn)
  double bits_per_weight = 0;     // of the linear layers' matrices, scales included
  std::uint64_t model_bytes = 0;  // every parameter as stored
  double nats_per_byte = 0;       // validation cross-entropy per byte of predicted text
  double bits_per_byte = 0;       // nats / ln 2
  double perplexity = 0;          // exp(cross-entropy per token of the model's tokenizer)
  double delta_bits = 0;          // bits_per_byte - the FP32 model's (FP32 activations)
  double delta_percent = 0;       // 100 * delta / fp32's bits_per_byte
  double tokens_per_second = 0;   // evaluation speed (GEMM path)
  std::size_t tokens = 0;         // tokens predicted
};

// A validation text as the model sees it: its tokens, the bytes each stands
// for, and the token that starts every evaluation window (if the model's
// tokenizer adds one). See Transformer::evaluate.
struct ReportText {
  std::vector<std::int32_t> tokens;
  std::vector<std::uint32_t> token_bytes;
  std::optional<std::int32_t> bos;
};
// Builds the model whose weights `method` quantized to `format` (the
// quantization methods live in lowp/quant, above this layer; the caller
// provides them).
using ReportQuantizer = std::function<Transformer(
    const Transformer& model, const MatrixFormat& format, const std::string& method)>;

// A row for a model built another way (e.g. mixed precision under a budget):
// `build` makes it from the FP32 model.
struct ReportExtra {
  std::string format, method;  // the row's labels
  std::function<Transformer(const Transformer& model)> build;
  // Instead of `build`, a model this runtime does not run (integer-only
  // inference): `measure` evaluates the text itself (threads as the report's).
  struct Measured {
    EvalResult eval;
    double bits_per_weight = 0;
    std::uint64_t model_bytes = 0;
  };
  std::function<Measured(const ReportText& text, unsigned threads)> measure;
};

struct ReportOptions {
  std::vector<std::string> formats = default_report_formats();
  std::string activations;  // empty: FP32 activations
  unsigned threads = 1;
  // Methods per format, one row each ("rtn": the direct cast, always
  // available; others through `quantize`). Empty: rtn only.
  std::vector<std::string> methods;
  ReportQuantizer quantize;
  // Whether a method applies to a format (empty: every one does); a pair
  // that does not gets no row.
  std::function<bool(const MatrixFormat& format, const std::string& method)> applies;
  std::vector<ReportExtra> extra;  // rows after the formats'
  // Matryoshka slices (lowp/quant/matryoshka.h): after each row, a row per
  // width r in `slices` for the model `slice` makes of that row's quantized
  // model (its format spelled "<format>@<r>"); `slice` returns nullopt where
  // the format has no slices.
  std::vector<int> slices;
  std::function<std::optional<Transformer>(const Transformer& quantized, const MatrixFormat& f,
                                           int bits)>
      slice;
  // Applied to the FP32 model before a format's rows quantize it, once per
  // format but fp32 (e.g. AQAS smoothing chosen for that weight format);
  // empty: none.
  std::function<Transformer(const Transformer& model, const MatrixFormat& f)> prepare;
  // Applied to each row's model after its activation format is set (e.g.
  // static activation scales calibrated on it); empty: none.
  std::function<Transformer(Transformer)> finish;
};

struct Report {
  std::string model;  // a name for the model (file or "embedded")
  std::string text;   // a name for the validation text
  std::uint64_t parameters = 0;
  std::string activations;  // "fp32" when not quantized
  unsigned threads = 1;
  double baseline_bits_per_byte = 0;  // the FP32 model with FP32 activations
  std::vector<ReportRow> rows;        // in the order of options.formats
};

// Throws lowp::Error naming `source` when the text is empty, shorter than two
// bytes, or not valid UTF-8 (with the offset of the first bad byte).
void check_validation_text(std::span<const std::uint8_t> text, std::string_view source);

// A text for a byte-level model: every byte a token.
ReportText byte_tokens(std::span<const std::uint8_t> text);

// Runs the report. The baseline of the deltas is the FP32 model with FP32
// activations, evaluated even when "fp32" is not among the formats or when the
// rows quantize activations. `progress` (may be empty) is called after
// each row.
Report run_report(const Transformer& model, const ReportText& text, const ReportOptions& opt,
                  const std::function<void(const ReportRow&)>& progress = {});

// An SVG chart (standalone, no scripts): model size (x) against validation
// bits per byte (y), one labelled point per format.
std::string report_svg(const Report& r);

}  // namespace lowp::nn
