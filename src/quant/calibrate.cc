// Whole-transformer quantization by a method, with sequential calibration
// through the runtime (lowp/quant/calibrate.h).
#include "lowp/quant/calibrate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <string>

#include "lowp/error.h"
#include "lowp/quant/activations.h"

namespace lowp {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string linear_name(const nn::TransformerConfig& c, int layer, nn::LinearKind k) {
  if (layer == c.n_layer) return "head";
  return "layers." + std::to_string(layer) + "." + std::string(nn::linear_kind_name(k));
}

}  // namespace

std::vector<std::vector<std::int32_t>> calibration_windows(std::span<const std::int32_t> tokens,
                                                           std::optional<std::int32_t> bos,
                                                           std::size_t length, std::size_t count,
                                                           std::uint64_t seed) {
  if (length == 0) throw Error("calibration: the sequence length is 0");
  const std::size_t text = bos ? length - 1 : length;
  if (tokens.size() < text || text == 0) {
    throw Error("calibration: the text has " + std::to_string(tokens.size()) +
                " tokens, shorter than one sequence of " + std::to_string(length));
  }
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::size_t> start(0, tokens.size() - text);
  std::vector<std::vector<std::int32_t>> out(count);
  for (std::vector<std::int32_t>& w : out) {
    const std::size_t s = count == 1 && tokens.size() == text ? 0 : start(rng);
    if (bos) w.push_back(*bos);
    w.insert(w.end(), tokens.begin() + static_cast<std::ptrdiff_t>(s),
             tokens.begin() + static_cast<std::ptrdiff_t>(s + text));
  }
  return out;
}

ModelQuantization quantize_transformer(const nn::Transformer& model, const MatrixFormat& f,
                                       const std::vector<std::vector<std::int32_t>>& calibration,
                                       const ModelQuantizeOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const nn::TransformerConfig& c = model.config();
  const MethodOptions& m = opt.method;
  const bool data = method_needs_data(m.method);
  if (data && calibration.empty()) {
    throw Error(std::string("method ") + std::string(method_name(m.method)) +
                " needs calibration data (--calib FILE)");
  }
  ModelQuantization out{model.with_weights(f), {}, {}, 0.0, 0};
  if (m.method == QuantMethod::kRtn && m.lorc_rank == 0 && !m.row_scale && !opt.format_of) {
    out.seconds = seconds_since(t0);
    return out;
  }
  nn::Transformer& cur = out.model;
  static const MatrixFormat fp32 = parse_matrix_format("fp32");
  const unsigned threads = std::max(1u, m.threads);

  // Hidden states at the current block boundary, one entry per sequence.
  std::vector<std::vector<float>> xs;
  if (data) {
    for (const std::vector<std::int32_t>& seq : calibration) {
      xs.push_back(cur.embed(seq));
      out.calibration_tokens += seq.size();
    }
  }
  for (int layer = 0; layer <= c.n_layer; ++layer) {
    const auto tl = std::chrono::steady_clock::now();
    const std::vector<nn::LinearKind> kinds = cur.linear_kinds(layer);
    std::vector<InputStats> stats(nn::kLinearInputs);
    if (data) {
      // This block in fp32 until its matrices are quantized.
      for (nn::LinearKind k : kinds) {
        const PackedMatrix& w = cur.linear_weight(layer, k);
        cur.set_linear(
            layer, k,
            PackedMatrix::quantize(fp32, cur.linear_source(layer, k), w.rows(), w.cols()));
      }
    }
    // Observes the inputs in `sites` (a bit per LinearInput) over every window.
    const auto observe_sites = [&](unsigned sites) {
      const nn::LinearObserver observe = [&](int, nn::LinearInput input, const float* x,
                                             std::size_t rows, std::size_t cols) {
        if ((sites >> static_cast<unsigned>(input) & 1u) == 0) return;
        InputStats& s = stats[static_cast<std::size_t>(input)];
        if (s.hessian.cols() != cols) {
          s.hessian = InputHessian(cols);
          s.absmax.assign(cols, 0.0f);
        }
        s.hessian.add(x, rows, threads);
        channel_absmax(s.absmax, x, rows, cols);
      };
      for (std::vector<float>& x : xs) {
        if (layer < c.n_layer) {
          std::vector<float> copy = x;
          cur.run_block(layer, copy, observe, threads);
        } else {
          cur.observe_head(x, observe);
        }
      }
    };
    const auto quantize_kind = [&](nn::LinearKind k) {
      const auto tk = std::chrono::steady_clock::now();
      const std::span<const float> w = cur.linear_source(layer, k);
      const std::size_t rows = cur.linear_weight(layer, k).rows();
      const std::size_t cols = cur.linear_weight(layer, k).cols();
      const InputStats& s = stats[static_cast<std::size_t>(nn::linear_input_of(k))];
      const InputHessian* h = data ? &s.hessian : nullptr;
      const MatrixFormat fk = opt.format_of ? opt.format_of(layer, k) : f;
      WeightQuantization q = quantize_weight(fk, w, rows, cols, m, h);
      LinearReport rep;
      rep.name = linear_name(c, layer, k);
      rep.format = q.matrix.format().name;
      rep.detail = q.detail;
      rep.rows = rows;
      rep.cols = cols;
      rep.seconds = seconds_since(tk);
      rep.damp = q.damp;
      if (h != nullptr && opt.measure_objective) {
        rep.objective = hessian_error(w, q.matrix, *h);
        rep.rtn_objective = hessian_error(w, PackedMatrix::quantize(fk, w, rows, cols), *h);
      }
      for (const std::string& warning : q.warnings) {
        out.warnings.push_back(rep.name + ": " + warning);
      }
      if (opt.progress && !rep.detail.empty()) {
        opt.progress(std::string(method_name(m.method)) + " " + rep.name + ": " +
                     (q.stored_bytes ? rep.detail : rep.format + " (" + rep.detail + ")"));
      }
      cur.set_linear(layer, k, std::move(q.matrix), q.stored_bytes);
      out.linears.push_back(std::move(rep));
    };
    if (data && opt.true_sequential) {
      // Input by input, in the order the block reads them: each is observed
      // with the matrices before it already quantized.
      for (int site = 0; site < nn::kLinearInputs; ++site) {
        std::vector<nn::LinearKind> group;
        for (nn::LinearKind k : kinds) {
          if (static_cast<int>(nn::linear_input_of(k)) == site) group.push_back(k);
        }
        if (group.empty()) continue;
        observe_sites(1u << static_cast<unsigned>(site));
        for (nn::LinearKind k : group) quantize_kind(k);
      }
    } else {
      if (data) observe_sites(~0u);
      for (nn::LinearKind k : kinds) quantize_kind(k);
    }
    if (data && layer < c.n_layer) {
      for (std::vector<float>& x : xs) cur.run_block(layer, x, {}, threads);
    }
    if (opt.progress) {
      char line[160];
      std::snprintf(line, sizeof line, "%s %s: %s done in %.1f s",
                    std::string(method_name(m.method)).c_str(), f.name.c_str(),
                    layer == c.n_layer ? "head" : ("block " + std::to_string(layer)).c_str(),
                    seconds_since(tl));
      opt.progress(line);
    }
  }
  out.seconds = seconds_since(t0);
  return out;
}

}  // namespace lowp
