// lowp/nn/ops.h — the transformer runtime's operations on fp32 rows, public so
// that tests, calibration and other runtimes compute exactly what the runtime
// does. Each sums in a fixed order (no sum is split across threads or
// reordered by the vector width), so results do not depend on the CPU.
#pragma once

#include <cstddef>
#include <span>

namespace lowp::nn {

// y[r] = (x[r] - mean) / sqrt(var + eps) * weight + bias, for `rows` rows of
// d values (biased variance, as torch.nn.LayerNorm); statistics in fp64.
// x and y may be the same buffer.
void layer_norm(const float* x, float* y, std::size_t rows, std::size_t d, const float* weight,
                const float* bias, float eps);

// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight (RMSNorm as Llama, Qwen and
// T5 define it); the mean of squares in fp64. x and y may be the same buffer.
void rms_norm(const float* x, float* y, std::size_t rows, std::size_t d, const float* weight,
              float eps);

// GELU with the exact erf: x/2 (1 + erf(x / sqrt 2)), in place.
void gelu(float* x, std::size_t n);
// GELU's tanh approximation (GPT-2's "gelu_new"):
// x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in place.
void gelu_tanh(float* x, std::size_t n);
// SwiGLU's gate: gate[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + e^-x).
void silu_mul(float* gate, const float* up, std::size_t n);

// x += y.
void add(float* x, const float* y, std::size_t n);

// Each of `rows` rows of n values (n a power of two) replaced by its
// orthonormal Walsh-Hadamard transform H x / sqrt(n) (H the Sylvester
// Hadamard matrix, symmetric, so applying it twice gives x back up to
// rounding). In place, O(n log n) per row.
void hadamard_rows(float* x, std::size_t rows, std::size_t n);

// RoPE in the rotate-half convention: for each of `heads` heads of head_dim
// values at x + h * head_dim, and i < head_dim / 2,
//   (x_i, x_{i+half}) <- (x_i cos_i - x_{i+half} sin_i, x_{i+half} cos_i + x_i sin_i)
// with cos/sin the head_dim / 2 values of one position (rope_angles).
void rope(float* x, std::size_t heads, std::size_t head_dim, const float* cos, const float* sin);

// The head_dim / 2 rotation angles of position `pos`: pos * inv_freq[i], with
// inv_freq[i] = theta^(-2i / head_dim) divided by `scale[i]`, as cos and sin
// (computed in fp64, rounded to fp32). `scale` holds one divisor per pair (1
// without RoPE scaling; rope_inv_freq_scales gives the linear and llama3 ones).
void rope_angles(std::size_t pos, std::size_t head_dim, double theta, std::span<const double> scale,
                 float* cos, float* sin);

// Causal attention of one query of one head, in two halves: scores[j] =
// (q . k_j) * scale for j < n_keys, the dot product summed in order i = 0, 1,
// ..., d_head - 1 whatever the layout of the keys (so every path rounds
// alike), then out = sum_j softmax(scores)_j v_j.
// Keys as rows: k_j at k + j * stride (a KV cache).
void attention_scores_rows(const float* q, const float* k, std::size_t stride, std::size_t n_keys,
                           std::size_t d_head, float scale, float* scores);
// Keys transposed: component i of k_j at kt[i * ld + j] (vectorizes over j).
void attention_scores_columns(const float* q, const float* kt, std::size_t ld, std::size_t n_keys,
                              std::size_t d_head, float scale, float* scores);
// out = sum_j softmax(scores)_j v_j with v_j at v + j * v_stride, summed in
// order j = 0, 1, ...; scores is overwritten with the probabilities.
void attention_mix(float* scores, std::size_t n_keys, const float* v, std::size_t v_stride,
                   std::size_t d_head, float* out);

// -log softmax(logits)[target], in fp64.
double cross_entropy(const float* logits, std::size_t vocab, std::size_t target);

}  // namespace lowp::nn
