// Mixed precision under a budget (lowp/quant/budget.h).
#include "lowp/quant/budget.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "lowp/error.h"
#include "lowp/storage/packed_matrix.h"

namespace lowp {

BudgetSolution solve_budget(const std::vector<std::vector<double>>& cost,
                            const std::vector<std::vector<double>>& bits, double budget) {
  if (cost.empty() || cost.size() != bits.size()) {
    throw Error("budget: no tensors, or sensitivities and sizes of different lengths");
  }
  const std::size_t n = cost.size();
  BudgetSolution s;
  s.choice.resize(n);
  double smallest = 0.0;
  for (std::size_t t = 0; t < n; ++t) {
    if (cost[t].empty() || cost[t].size() != bits[t].size()) {
      throw Error("budget: tensor " + std::to_string(t) + " has no options, or ragged ones");
    }
    std::size_t best = 0, small = 0;
    for (std::size_t k = 1; k < cost[t].size(); ++k) {
      if (cost[t][k] < cost[t][best] || (cost[t][k] == cost[t][best] && bits[t][k] < bits[t][best]))
        best = k;
      if (bits[t][k] < bits[t][small]) small = k;
    }
    s.choice[t] = best;
    s.bits += bits[t][best];
    smallest += bits[t][small];
  }
  if (smallest > budget) {
    throw Error("budget: even the smallest formats need " + std::to_string(smallest) +
                " bits, over the budget of " + std::to_string(budget) + " (" +
                std::to_string(100.0 * (smallest - budget) / budget) + "% more)");
  }
  // Down: the cheapest sensitivity per bit saved, until the budget holds.
  while (s.bits > budget) {
    double best_ratio = std::numeric_limits<double>::infinity();
    std::size_t bt = n, bk = 0;
    for (std::size_t t = 0; t < n; ++t) {
      const std::size_t c = s.choice[t];
      for (std::size_t k = 0; k < cost[t].size(); ++k) {
        const double saved = bits[t][c] - bits[t][k];
        if (!(saved > 0.0)) continue;
        const double ratio = (cost[t][k] - cost[t][c]) / saved;
        if (ratio < best_ratio) {
          best_ratio = ratio;
          bt = t;
          bk = k;
        }
      }
    }
    if (bt == n) break;  // cannot happen: smallest <= budget
    s.bits += bits[bt][bk] - bits[bt][s.choice[bt]];
    s.choice[bt] = bk;
  }
  // Up: spend what is left where it removes the most sensitivity per bit.
  for (;;) {
    double best_ratio = 0.0;
    std::size_t bt = n, bk = 0;
    for (std::size_t t = 0; t < n; ++t) {
      const std::size_t c = s.choice[t];
      for (std::size_t k = 0; k < cost[t].size(); ++k) {
        const double spent = bits[t][k] - bits[t][c];
        const double gain = cost[t][c] - cost[t][k];
        if (!(spent > 0.0) || !(gain > 0.0) || s.bits + spent > budget) continue;
        if (gain / spent > best_ratio) {
          best_ratio = gain / spent;
          bt = t;
          bk = k;
        }
      }
    }
    if (bt == n) break;
    s.bits += bits[bt][bk] - bits[bt][s.choice[bt]];
    s.choice[bt] = bk;
  }
  for (std::size_t t = 0; t < n; ++t) s.sensitivity += cost[t][s.choice[t]];
  return s;
}

TransformerAssignment assign_transformer_formats(
    const nn::Transformer& model, const std::vector<MatrixFormat>& formats, double bits_per_weight,
    const std::vector<std::vector<std::int32_t>>& calibration, unsigned threads,
    const std::function<void(const std::string&)>& progress) {
  if (formats.empty()) throw Error("budget: no candidate formats");
  const nn::TransformerConfig& c = model.config();
  static const MatrixFormat fp32 = parse_matrix_format("fp32");
  nn::Transformer probe = model.with_weights(fp32);
  // The calibration tokens as one text (without each window's BOS: evaluate
  // adds it per evaluation window).
  std::vector<std::int32_t> tokens;
  std::optional<std::int32_t> bos;
  for (const std::vector<std::int32_t>& w : calibration) {
    std::size_t first = 0;
    if (c.bos && !w.empty() && w[0] == *c.bos) {
      bos = c.bos;
      first = 1;
    }
    tokens.insert(tokens.end(), w.begin() + static_cast<std::ptrdiff_t>(first), w.end());
  }
  const std::vector<std::uint32_t> ones(tokens.size(), 1);
  const bool data = tokens.size() >= 2;
  const double baseline = data ? probe.evaluate(tokens, ones, threads, bos).nats_per_token() : 0.0;

  // Sizes first: a budget no format list meets fails before any measuring.
  {
    double smallest = 0.0, all = 0.0;
    for (int layer = 0; layer <= c.n_layer; ++layer) {
      for (nn::LinearKind k : probe.linear_kinds(layer)) {
        const PackedMatrix& m = probe.linear_weight(layer, k);
        double least = std::numeric_limits<double>::infinity();
        for (const MatrixFormat& f : formats) {
          least = std::min(least, f.bits_per_value(m.cols()) * static_cast<double>(m.cols()) *
                                      static_cast<double>(m.rows()));
        }
        smallest += least;
        all += static_cast<double>(m.rows() * m.cols());
      }
    }
    if (smallest > bits_per_weight * all * (1.0 + 1e-9)) {
      throw Error("budget: " + std::to_string(bits_per_weight) +
                  " bits per weight cannot be met; the smallest of the formats need " +
                  std::to_string(smallest / all) + " bits per weight (over the budget)");
    }
  }
  TransformerAssignment out;
  out.sensitivity = data ? "calibration loss" : "weight error";
  std::vector<std::vector<double>> cost, bits;
  double weights = 0.0;
  for (int layer = 0; layer <= c.n_layer; ++layer) {
    for (nn::LinearKind k : probe.linear_kinds(layer)) {
      MatrixAssignment a;
      a.layer = layer;
      a.kind = k;
      a.name = layer == c.n_layer
                   ? "head"
                   : "layers." + std::to_string(layer) + "." + std::string(nn::linear_kind_name(k));
      const std::span<const float> w = probe.linear_source(layer, k);
      const PackedMatrix original = probe.linear_weight(layer, k);
      const std::size_t rows = original.rows(), cols = original.cols();
      a.weights = rows * cols;
      weights += static_cast<double>(a.weights);
      std::vector<double> b;
      for (const MatrixFormat& f : formats) {
        PackedMatrix q = PackedMatrix::quantize(f, w, rows, cols);
        b.push_back(8.0 * static_cast<double>(q.bytes()));
        if (data) {
          probe.set_linear(layer, k, std::move(q));
          a.sensitivity.push_back(probe.evaluate(tokens, ones, threads, bos).nats_per_token() -
                                  baseline);
          probe.set_linear(layer, k, original);
        } else {
          std::vector<float> d(w.size());
          q.dequantize(d);
          double err = 0.0, norm = 0.0;
          for (std::size_t i = 0; i < w.size(); ++i) {
            err += std::pow(static_cast<double>(w[i]) - d[i], 2);
            norm += static_cast<double>(w[i]) * w[i];
          }
          a.sensitivity.push_back(norm > 0.0 ? err / norm : 0.0);
        }
      }
      cost.push_back(a.sensitivity);
      bits.push_back(std::move(b));
      if (progress) progress("budget: sensitivity of " + a.name + " measured");
      out.matrices.push_back(std::move(a));
    }
  }
  const BudgetSolution s = solve_budget(cost, bits, bits_per_weight * weights);
  for (std::size_t t = 0; t < out.matrices.size(); ++t) {
    out.matrices[t].format = formats[s.choice[t]];
  }
  out.bits_per_weight = s.bits / weights;
  return out;
}

}  // namespace lowp
