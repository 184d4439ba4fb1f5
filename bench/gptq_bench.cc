// GPTQ at the size the literature quotes: one 4096 x 4096 layer calibrated
// on 128 sequences of 2048 tokens. Prints the two costs apart: accumulating
// the input Hessian (X^T X over 262,144 tokens, shared by every method that
// uses data) and the GPTQ solve itself, for a few formats.
//
//   build/bin/lowp_gptq_bench [DIM] [TOKENS] [THREADS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "lowp/quant/methods.h"

int main(int argc, char** argv) {
  const std::size_t dim = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 4096;
  const std::size_t tokens = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 128 * 2048;
  const unsigned threads = argc > 3 ? static_cast<unsigned>(std::atoi(argv[3])) : 2;
  using clock = std::chrono::steady_clock;
  std::mt19937 rng(1);
  std::normal_distribution<float> n(0.0f, 1.0f);
  // Inputs: a few shared directions plus noise, in chunks of one sequence.
  const std::size_t chunk = 2048;
  std::vector<float> dirs(8 * dim), x(chunk * dim), w(dim * dim);
  for (float& v : dirs) v = n(rng);
  for (float& v : w) v = 0.02f * n(rng);
  lowp::InputHessian h(dim);
  double gen = 0.0;
  const auto t0 = clock::now();
  for (std::size_t done = 0; done < tokens; done += chunk) {
    const std::size_t rows = std::min(chunk, tokens - done);
    const auto g0 = clock::now();
    for (std::size_t t = 0; t < rows; ++t) {
      float z[8];
      for (float& v : z) v = n(rng);
      for (std::size_t c = 0; c < dim; ++c) {
        float s = 0.3f * n(rng);
        for (int k = 0; k < 8; ++k) s += z[k] * dirs[static_cast<std::size_t>(k) * dim + c];
        x[t * dim + c] = s;
      }
    }
    gen += std::chrono::duration<double>(clock::now() - g0).count();
    h.add(x.data(), rows, threads);
  }
  const double hessian = std::chrono::duration<double>(clock::now() - t0).count() - gen;
  std::printf("%zu x %zu layer, %zu calibration tokens, %u threads\n", dim, dim, tokens, threads);
  std::printf("  Hessian X^T X accumulation: %8.2f s (%.1f GFLOP/s)\n", hessian,
              2.0 * static_cast<double>(tokens) * static_cast<double>(dim * dim) / hessian * 1e-9);
  for (const char* name : {"int4:group128", "mxfp4", "nvfp4"}) {
    lowp::MethodOptions o;
    o.method = lowp::QuantMethod::kGptq;
    o.threads = threads;
    const auto q0 = clock::now();
    const lowp::WeightQuantization q =
        lowp::quantize_weight(lowp::parse_matrix_format(name), w, dim, dim, o, &h);
    const double s = std::chrono::duration<double>(clock::now() - q0).count();
    std::printf("  GPTQ solve %-14s %8.2f s (%zu warnings)\n", name, s, q.warnings.size());
  }
  return 0;
}
