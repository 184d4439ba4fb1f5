// lowp/quant/budget.h — mixed precision under a bits-per-weight budget: give
// each tensor one format from a list so that the average storage meets the
// budget and the summed sensitivity is least.
//
// Sensitivities are assumed additive over tensors. The solver is greedy, as
// in the mixed-precision literature's knapsack heuristics: every tensor starts
// in its least sensitive format; while the total is over the budget, the move
// to a smaller format with the least sensitivity added per bit saved is
// taken; then, while bits remain, the move to a larger format with the most
// sensitivity removed per bit spent that still fits. Ties go to the lower
// tensor index, so the result is deterministic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lowp/nn/transformer.h"
#include "lowp/storage/matrix_format.h"

namespace lowp {

struct BudgetSolution {
  std::vector<std::size_t> choice;  // per tensor, an index into its options
  double bits = 0;                  // total stored bits
  double sensitivity = 0;           // summed
};

// cost[t][k], bits[t][k]: tensor t stored in option k. `budget` is the total
// number of bits allowed. Throws lowp::Error when even the smallest options
// exceed the budget (saying by how much) or the tables are ragged or empty.
BudgetSolution solve_budget(const std::vector<std::vector<double>>& cost,
                            const std::vector<std::vector<double>>& bits, double budget);

// The formats of a transformer's linear layers chosen under an average
// budget of `bits_per_weight` (scales included) over all linear weights.
struct MatrixAssignment {
  int layer = 0;
  nn::LinearKind kind = nn::LinearKind::kHead;
  std::string name;  // "layers.3.q", "head"
  std::size_t weights = 0;
  MatrixFormat format;
  std::vector<double> sensitivity;  // per candidate format
};
struct TransformerAssignment {
  std::vector<MatrixAssignment> matrices;
  double bits_per_weight = 0;
  std::string sensitivity;  // how it was measured: "calibration loss" or "weight error"
};

// Sensitivity of each matrix in each format: with calibration windows, the
// increase of the model's mean cross-entropy on them when only that matrix
// is cast (round to nearest) to the format; without, the data-free relative
// weight error |W - Q|^2 / |W|^2. Then solve_budget.
TransformerAssignment assign_transformer_formats(
    const nn::Transformer& model, const std::vector<MatrixFormat>& formats, double bits_per_weight,
    const std::vector<std::vector<std::int32_t>>& calibration, unsigned threads,
    const std::function<void(const std::string&)>& progress = {});

}  // namespace lowp
