// The segment quantizer against PackedMatrix::quantize (byte for byte), and
// the weight quantization methods (MSE search, GPTQ) against round to nearest
// and an independent, unblocked fp64 GPTQ written here.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "lowp/error.h"
#include "lowp/format/registry.h"
#include "lowp/quant/budget.h"
#include "lowp/quant/methods.h"
#include "lowp/storage/segment_quantizer.h"

namespace lowp {
namespace {

const char* const kFormats[] = {"fp32",
                                "bf16",
                                "fp16",
                                "fp8_e4m3",
                                "int8",
                                "int8:channel",
                                "int4:channel",
                                "int4:group32",
                                "int4:group32:asym",
                                "fp4_e2m1:group32:asym",
                                "fp8_e4m3:group16:asym",
                                "int3:group16",
                                "uint4:group8",
                                "fp4_e2m1:group32",
                                "fp8_e4m3:channel",
                                "fp6_e2m3:group16",
                                "mxfp8_e4m3",
                                "mxfp8_e5m2",
                                "mxfp6_e3m2",
                                "mxfp6_e2m3",
                                "mxfp4",
                                "mxint8",
                                "mx:int4:32",
                                "nvfp4",
                                "nvfp4:32",
                                "nf4:group32",
                                "nf4:group32:asym",
                                "nf3:group16:asym",
                                "dint4:channel",
                                "dint4:group8:asym"};

// A matrix with heavy-tailed values, an outlier per row, a zero segment and
// a partial last segment (cols = 100).
std::vector<float> test_matrix(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> w(rows * cols);
  for (float& v : w) v = 0.02f * t(rng);
  for (std::size_t r = 0; r < rows; ++r) w[r * cols + (r * 37) % cols] *= 12.0f;
  for (std::size_t c = 32; c < 64 && rows > 2; ++c) w[2 * cols + c] = 0.0f;
  return w;
}

std::vector<float> dequantized(const PackedMatrix& m) {
  std::vector<float> out(m.rows() * m.cols());
  m.dequantize(out);
  return out;
}

PackedMatrix rtn_through_segments(const MatrixFormat& f, const std::vector<float>& w,
                                  std::size_t rows, std::size_t cols) {
  const SegmentQuantizer sq(f, cols, SegmentQuantizer::rule_tensor_scale(f, w));
  std::vector<std::uint32_t> codes(rows * cols);
  std::vector<SegmentScale> scales(rows * sq.segments());
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t g = 0; g < sq.segments(); ++g) {
      const std::size_t b = g * sq.segment(), n = std::min(sq.segment(), cols - b);
      const std::span<const float> v(w.data() + r * cols + b, n);
      scales[r * sq.segments() + g] = sq.rule(v);
      for (std::size_t i = 0; i < n; ++i) {
        codes[r * cols + b + i] = sq.encode(v[i], scales[r * sq.segments() + g]);
        // decode() is the packed matrix's value (checked below).
      }
    }
  }
  return sq.pack(rows, codes, scales);
}

TEST(SegmentQuantizer, RuleAndEncodeReproducePackedMatrixQuantize) {
  const std::size_t rows = 7, cols = 100;
  const std::vector<float> w = test_matrix(rows, cols, 1);
  for (const char* name : kFormats) {
    SCOPED_TRACE(name);
    const MatrixFormat f = parse_matrix_format(name);
    const PackedMatrix want = PackedMatrix::quantize(f, w, rows, cols);
    const PackedMatrix got = rtn_through_segments(f, w, rows, cols);
    ASSERT_EQ(std::vector<std::uint8_t>(got.codes().begin(), got.codes().end()),
              std::vector<std::uint8_t>(want.codes().begin(), want.codes().end()));
    EXPECT_EQ(got.scales().tensor, want.scales().tensor);
    EXPECT_EQ(got.scales().row, want.scales().row);
    EXPECT_EQ(got.scales().group, want.scales().group);
    EXPECT_EQ(got.scales().zero, want.scales().zero);
    EXPECT_EQ(got.scales().block, want.scales().block);
  }
}

TEST(SegmentQuantizer, DecodeIsThePackedValueForAnyCandidate) {
  const std::size_t rows = 3, cols = 100;
  const std::vector<float> w = test_matrix(rows, cols, 2);
  ScaleSearch search;
  search.exponent_radius = 2;
  for (const char* name : kFormats) {
    SCOPED_TRACE(name);
    const MatrixFormat f = parse_matrix_format(name);
    const SegmentQuantizer sq(f, cols, SegmentQuantizer::rule_tensor_scale(f, w));
    std::vector<std::uint32_t> codes(rows * cols);
    std::vector<SegmentScale> scales(rows * sq.segments());
    std::vector<float> expect(rows * cols);
    std::vector<SegmentScale> cands;
    std::size_t pick = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t g = 0; g < sq.segments(); ++g) {
        const std::size_t b = g * sq.segment(), n = std::min(sq.segment(), cols - b);
        const std::span<const float> v(w.data() + r * cols + b, n);
        sq.candidates(v, search, cands);
        ASSERT_FALSE(cands.empty());
        const SegmentScale s = cands[pick++ % cands.size()];  // any candidate, not the rule
        scales[r * sq.segments() + g] = s;
        for (std::size_t i = 0; i < n; ++i) {
          codes[r * cols + b + i] = sq.encode(v[i], s);
          expect[r * cols + b + i] = sq.decode(codes[r * cols + b + i], s);
        }
      }
    }
    const std::vector<float> got = dequantized(sq.pack(rows, codes, scales));
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(std::bit_cast<std::uint32_t>(got[i]), std::bit_cast<std::uint32_t>(expect[i]))
          << "value " << i;
    }
  }
}

TEST(SegmentQuantizer, CandidatesSpanTheSearch) {
  const std::vector<float> v = {0.1f, -0.5f, 0.25f, 3.0f};
  std::vector<SegmentScale> c;
  const SegmentQuantizer mx(parse_matrix_format("mx:fp4_e2m1:4"), 4);
  mx.candidates(v, {2, 8, 0.5, 50}, c);
  ASSERT_EQ(c.size(), 5u);  // the rule's exponent and two either side
  EXPECT_EQ(c[0].code, mx.rule(v).code);
  const SegmentQuantizer g(parse_matrix_format("int4:group4"), 4);
  g.candidates(v, {1, 8, 0.5, 50}, c);
  EXPECT_GT(c.size(), 20u);  // FP16 rounding merges a few of the 51 clips
  for (const SegmentScale& s : c) EXPECT_LE(s.value, g.rule(v).value);
}

double squared_error(const std::vector<float>& w, const PackedMatrix& q) {
  const std::vector<float> d = dequantized(q);
  double e = 0.0;
  for (std::size_t i = 0; i < w.size(); ++i) e += std::pow(double(w[i]) - double(d[i]), 2);
  return e;
}

TEST(Methods, MseNeverWorseThanRtnAndBetterAtFourBits) {
  const std::size_t rows = 16, cols = 100;
  const std::vector<float> w = test_matrix(rows, cols, 3);
  MethodOptions mse;
  mse.method = QuantMethod::kMse;
  for (const char* name : kFormats) {
    SCOPED_TRACE(name);
    const MatrixFormat f = parse_matrix_format(name);
    const double rtn = squared_error(w, PackedMatrix::quantize(f, w, rows, cols));
    const double searched = squared_error(w, quantize_weight(f, w, rows, cols, mse).matrix);
    EXPECT_LE(searched, rtn);
    const std::string n = name;
    if (n == "mxfp4" || n == "nvfp4" || n == "int4:group32" || n == "int4:channel") {
      EXPECT_LT(searched, rtn);
    }
  }
}

// Inputs with correlated, unequal channels (as real activations are).
InputHessian test_hessian(std::size_t cols, std::size_t tokens, std::uint32_t seed,
                          std::vector<float>* xs = nullptr) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> mix(cols * 4), x(tokens * cols);
  for (float& m : mix) m = n(rng);
  for (std::size_t t = 0; t < tokens; ++t) {
    float z[4] = {n(rng), n(rng), n(rng), n(rng)};
    for (std::size_t c = 0; c < cols; ++c) {
      const float scale = 1.0f + 4.0f * static_cast<float>(c % 7 == 0);
      x[t * cols + c] = scale * (0.5f * n(rng) + z[0] * mix[c * 4] + z[1] * mix[c * 4 + 1] +
                                 z[2] * mix[c * 4 + 2] + z[3] * mix[c * 4 + 3]);
    }
  }
  InputHessian h(cols);
  h.add(x.data(), tokens, 2);
  if (xs != nullptr) *xs = x;
  return h;
}

TEST(Methods, HessianIsXTransposeX) {
  std::vector<float> x;
  const InputHessian h = test_hessian(20, 50, 4, &x);
  EXPECT_EQ(h.tokens(), 50u);
  for (std::size_t i = 0; i < 20; ++i) {
    for (std::size_t j = 0; j < 20; ++j) {
      double s = 0.0;
      for (std::size_t t = 0; t < 50; ++t) s += double(x[t * 20 + i]) * double(x[t * 20 + j]);
      EXPECT_NEAR(h.matrix()[i * 20 + j], s, 1e-4 * (std::fabs(s) + 1.0));
    }
  }
}

TEST(Methods, GptqObjectiveBelowRtnForEveryFormat) {
  const std::size_t rows = 24, cols = 96;
  const std::vector<float> w = test_matrix(rows, cols, 5);
  const InputHessian h = test_hessian(cols, 400, 6);
  for (const char* name : kFormats) {
    if (std::string(name) == "fp32") continue;
    SCOPED_TRACE(name);
    const MatrixFormat f = parse_matrix_format(name);
    const double rtn = hessian_error(w, PackedMatrix::quantize(f, w, rows, cols), h);
    for (bool act_order : {false, true}) {
      MethodOptions o;
      o.method = QuantMethod::kGptq;
      o.gptq.act_order = act_order;
      o.gptq.block = 32;
      o.threads = 2;
      const WeightQuantization q = quantize_weight(f, w, rows, cols, o, &h);
      const double gptq = hessian_error(w, q.matrix, h);
      EXPECT_LT(gptq, rtn) << "act_order " << act_order;
      EXPECT_TRUE(q.warnings.empty());
    }
  }
}

TEST(Methods, GptqDoesNotDependOnThreadsOrBlock) {
  const std::size_t rows = 9, cols = 64;
  const std::vector<float> w = test_matrix(rows, cols, 7);
  const InputHessian h = test_hessian(cols, 200, 8);
  const MatrixFormat f = parse_matrix_format("mxfp4");
  MethodOptions a;
  a.method = QuantMethod::kGptq;
  a.gptq.block = 128;
  MethodOptions b = a;
  b.threads = 3;
  b.gptq.block = 16;
  const PackedMatrix qa = quantize_weight(f, w, rows, cols, a, &h).matrix;
  const PackedMatrix qb = quantize_weight(f, w, rows, cols, b, &h).matrix;
  // Lazy blocks change only the order of fp64 sums: nearly every code agrees.
  const std::vector<float> da = dequantized(qa), db = dequantized(qb);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < da.size(); ++i) differ += da[i] != db[i];
  EXPECT_LE(differ, da.size() / 100);
  b.gptq.block = 128;
  const PackedMatrix qc = quantize_weight(f, w, rows, cols, b, &h).matrix;
  EXPECT_EQ(dequantized(qa), dequantized(qc));  // threads alone change nothing
}

// GPTQ as its paper states it, unblocked and with H^-1 formed explicitly
// (Gauss-Jordan), fp64, per-channel int4 scales fixed from the original W.
std::vector<float> reference_gptq(const std::vector<float>& w, std::size_t rows, std::size_t cols,
                                  const InputHessian& hs, double damp_rel) {
  std::vector<double> h(hs.matrix().begin(), hs.matrix().end());
  double mean = 0.0;
  for (std::size_t i = 0; i < cols; ++i) mean += h[i * cols + i];
  mean /= double(cols);
  for (std::size_t i = 0; i < cols; ++i) h[i * cols + i] += damp_rel * mean;
  // Hinv by Gauss-Jordan.
  std::vector<double> a = h, inv(cols * cols, 0.0);
  for (std::size_t i = 0; i < cols; ++i) inv[i * cols + i] = 1.0;
  for (std::size_t k = 0; k < cols; ++k) {
    const double p = a[k * cols + k];
    for (std::size_t j = 0; j < cols; ++j) {
      a[k * cols + j] /= p;
      inv[k * cols + j] /= p;
    }
    for (std::size_t i = 0; i < cols; ++i) {
      if (i == k) continue;
      const double f = a[i * cols + k];
      for (std::size_t j = 0; j < cols; ++j) {
        a[i * cols + j] -= f * a[k * cols + j];
        inv[i * cols + j] -= f * inv[k * cols + j];
      }
    }
  }
  std::vector<float> q(rows * cols);
  for (std::size_t r = 0; r < rows; ++r) {
    float amax = 0.0f;
    for (std::size_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(w[r * cols + c]));
    const float s = amax / 7.0f;
    std::vector<double> wr(w.begin() + long(r * cols), w.begin() + long((r + 1) * cols));
    std::vector<double> hinv = inv;  // the inverse shrinks as columns are fixed
    for (std::size_t j = 0; j < cols; ++j) {
      const float code = std::clamp(std::nearbyint(float(wr[j]) / s), -7.0f, 7.0f);
      const double qv = double(code * s);
      q[r * cols + j] = float(qv);
      const double d = hinv[j * cols + j];
      const double e = (wr[j] - qv) / d;
      for (std::size_t k = j + 1; k < cols; ++k) wr[k] -= e * hinv[j * cols + k];
      // Remove variable j from the inverse (the OBS update).
      std::vector<double> next = hinv;
      for (std::size_t i = j + 1; i < cols; ++i) {
        for (std::size_t k = j + 1; k < cols; ++k) {
          next[i * cols + k] -= hinv[i * cols + j] * hinv[j * cols + k] / d;
        }
      }
      hinv.swap(next);
    }
  }
  return q;
}

TEST(Methods, GptqMatchesAnUnblockedReference) {
  const std::size_t rows = 6, cols = 40;
  const std::vector<float> w = test_matrix(rows, cols, 9);
  const InputHessian h = test_hessian(cols, 300, 10);
  MethodOptions o;
  o.method = QuantMethod::kGptq;
  o.gptq.block = 8;
  o.gptq.mse_scales = false;
  const std::vector<float> got = dequantized(
      quantize_weight(parse_matrix_format("int4:channel"), w, rows, cols, o, &h).matrix);
  const std::vector<float> want = reference_gptq(w, rows, cols, h, o.gptq.damp);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < got.size(); ++i) differ += got[i] != want[i];
  EXPECT_LE(differ, got.size() / 50) << differ << " of " << got.size() << " codes differ";
}

TEST(Methods, BadInput) {
  const MatrixFormat f = parse_matrix_format("int4:group32");
  const std::vector<float> w(64, 0.5f);
  MethodOptions gptq;
  gptq.method = QuantMethod::kGptq;
  EXPECT_THROW(quantize_weight(f, w, 2, 32, gptq), Error);  // no statistics
  InputHessian wrong(16);
  EXPECT_THROW(quantize_weight(f, w, 2, 32, gptq, &wrong), Error);
  EXPECT_THROW(quantize_weight(f, w, 3, 32, gptq), Error);  // sizes
  std::vector<float> bad = w;
  bad[5] = std::nanf("");
  MethodOptions mse;
  mse.method = QuantMethod::kMse;
  EXPECT_THROW(quantize_weight(f, bad, 2, 32, mse), Error);
  EXPECT_THROW(parse_method("awq"), Error);
}

TEST(Methods, SingularHessianRaisesDampingAndSaysSo) {
  const std::size_t cols = 32;
  // Every input is the same vector: H has rank one.
  std::vector<float> x(10 * cols);
  for (std::size_t t = 0; t < 10; ++t) {
    for (std::size_t c = 0; c < cols; ++c) x[t * cols + c] = float(t + 1) * float(c % 5);
  }
  InputHessian h(cols);
  h.add(x.data(), 10);
  const std::vector<float> w = test_matrix(4, cols, 11);
  MethodOptions o;
  o.method = QuantMethod::kGptq;
  o.gptq.damp = 0.0;
  const WeightQuantization q =
      quantize_weight(parse_matrix_format("int4:group32"), w, 4, cols, o, &h);
  ASSERT_FALSE(q.warnings.empty());
  EXPECT_GT(q.damp, 0.0);
  EXPECT_NE(q.warnings[0].find("singular"), std::string::npos);
}

}  // namespace
}  // namespace lowp

namespace lowp {
namespace {

TEST(Budget, GreedyMeetsTheBudgetAndSpendsWhatIsLeft) {
  // Three tensors of 100 weights; options 4, 6 and 8 bits per weight.
  const std::vector<std::vector<double>> bits(3, {400.0, 600.0, 800.0});
  // Tensor 0 barely cares, tensor 2 cares a lot about 4 bits.
  const std::vector<std::vector<double>> cost = {
      {0.1, 0.05, 0.0}, {1.0, 0.2, 0.0}, {9.0, 0.3, 0.0}};
  BudgetSolution s = solve_budget(cost, bits, 1800.0);  // 6 bits on average
  EXPECT_LE(s.bits, 1800.0);
  EXPECT_EQ(s.choice, (std::vector<std::size_t>{0, 1, 2}));  // 4 + 6 + 8 bits
  EXPECT_DOUBLE_EQ(s.sensitivity, 0.1 + 0.2 + 0.0);
  s = solve_budget(cost, bits, 2400.0);  // room for everything
  EXPECT_EQ(s.choice, (std::vector<std::size_t>{2, 2, 2}));
  s = solve_budget(cost, bits, 1200.0);  // only the smallest fit
  EXPECT_EQ(s.choice, (std::vector<std::size_t>{0, 0, 0}));
  EXPECT_THROW(solve_budget(cost, bits, 1199.0), Error);
  EXPECT_THROW(solve_budget({}, {}, 10.0), Error);
  EXPECT_THROW(solve_budget({{1.0}}, {{1.0, 2.0}}, 10.0), Error);
}

}  // namespace
}  // namespace lowp

namespace lowp {
namespace {

TEST(SegmentQuantizer, FastQuantizeIsDecodeOfEncode) {
  std::mt19937 rng(12);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> v(4000);
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i] = n(rng) * std::ldexp(1.0f, static_cast<int>(i % 13) - 6);
  }
  // Exact ties and edges: halfway points of small integers and E2M1 values, 0, -0.
  for (float t : {0.5f, 1.5f, 2.5f, -2.5f, 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 7.0f,
                  -5.0f, 0.0f, -0.0f, 1e-30f, 100.0f})
    v.push_back(t);
  ScaleSearch search;
  search.exponent_radius = 3;
  for (const char* name : kFormats) {
    SCOPED_TRACE(name);
    const MatrixFormat f = parse_matrix_format(name);
    const SegmentQuantizer sq(f, v.size(), SegmentQuantizer::rule_tensor_scale(f, v));
    std::vector<SegmentScale> cands;
    for (std::size_t b = 0; b < v.size(); b += sq.segment()) {
      const std::span<const float> seg(v.data() + b, std::min(sq.segment(), v.size() - b));
      sq.candidates(seg, search, cands);
      cands.push_back({1.0f, 127, 0});  // a unit scale: the ties above land on ties
      cands.push_back({1.0f, 0x38, 0});
      for (const SegmentScale& s : cands) {
        if (f.scheme == MatrixScheme::kGroup && s.code == 127) continue;  // not an FP16 of 1.0
        for (float x : seg) {
          ASSERT_EQ(std::bit_cast<std::uint32_t>(sq.quantize(x, s) + 0.0f),
                    std::bit_cast<std::uint32_t>(sq.decode(sq.encode(x, s), s) + 0.0f))
              << "x = " << x << " scale " << s.value << " code " << s.code;
        }
      }
    }
  }
}

}  // namespace
}  // namespace lowp

namespace lowp {
namespace {

TEST(FormatSearch, SplitCandidates) {
  std::vector<std::string> four, eight;
  for (const Format& f : fp_split_candidates(4)) four.push_back(format_name(f));
  for (const Format& f : fp_split_candidates(8)) eight.push_back(format_name(f));
  // e2m1fin is OCP's FP4 E2M1, named by the registry.
  EXPECT_EQ(four, (std::vector<std::string>{"e1m2fin", "fp4_e2m1", "e3m0fin"}));
  EXPECT_EQ(eight,
            (std::vector<std::string>{"e1m6fin", "e2m5fin", "e3m4fin", "e4m3fin", "e5m2fin"}));
  EXPECT_THROW(fp_split_candidates(2), Error);
  EXPECT_THROW(fp_split_candidates(17), Error);
}

// Uniform rows want the most mantissa bits, heavy-tailed rows (Student-t,
// nu = 2) the most exponent bits: the search and the vote find each from the
// data alone.
std::vector<float> rows_of(std::size_t rows, std::size_t cols, bool heavy, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::student_t_distribution<float> t(2.0f);
  std::vector<float> w(rows * cols);
  for (float& v : w) v = heavy ? t(gen) : u(gen);
  return w;
}

std::string element_of(const WeightQuantization& q) {
  return format_name(q.matrix.format().element);
}

TEST(FormatSearch, SearchFindsTheSplitTheDataWants) {
  const MatrixFormat f = parse_matrix_format("fp4_e2m1:channel");
  MethodOptions o;
  o.method = QuantMethod::kFpSearch;
  const std::size_t rows = 8, cols = 256;
  const WeightQuantization uniform =
      quantize_weight(f, rows_of(rows, cols, false, 1), rows, cols, o);
  EXPECT_EQ(element_of(uniform), "e1m2fin");
  EXPECT_EQ(uniform.matrix.format().name, "e1m2fin:channel");
  const WeightQuantization wide = quantize_weight(f, rows_of(rows, cols, true, 2), rows, cols, o);
  EXPECT_EQ(element_of(wide), "e3m0fin");
  EXPECT_NE(wide.detail.find("squared error: e1m2fin"), std::string::npos) << wide.detail;

  // The pick is the split whose mse-searched matrix has the least error.
  const std::vector<float> w = rows_of(rows, cols, true, 3);
  double best = 1e300;
  std::string want;
  for (const Format& e : fp_split_candidates(4)) {
    MatrixFormat g = f;
    g.element = e;
    g.name = matrix_format_name(g);
    MethodOptions m;
    m.method = QuantMethod::kMse;
    const PackedMatrix q = quantize_weight(g, w, rows, cols, m).matrix;
    std::vector<float> d(w.size());
    q.dequantize(d);
    double err = 0;
    for (std::size_t i = 0; i < w.size(); ++i) err += (double(w[i]) - d[i]) * (double(w[i]) - d[i]);
    if (err < best) best = err, want = format_name(e);
  }
  EXPECT_EQ(element_of(quantize_weight(f, w, rows, cols, o)), want);
}

TEST(FormatSearch, VoteTakesTheMajorityOfRows) {
  const MatrixFormat f = parse_matrix_format("fp8_e4m3:channel");
  const std::size_t cols = 128;
  // Five uniform rows and three wide ones.
  std::vector<float> w = rows_of(5, cols, false, 4);
  const std::vector<float> wide = rows_of(3, cols, true, 5);
  w.insert(w.end(), wide.begin(), wide.end());
  MethodOptions o;
  o.method = QuantMethod::kFpVote;
  const WeightQuantization q = quantize_weight(f, w, 8, cols, o);
  EXPECT_EQ(element_of(q), "e1m6fin");
  EXPECT_NE(q.detail.find("e1m6fin 5"), std::string::npos) << q.detail;
  // The same with more threads, bit for bit.
  o.threads = 3;
  const WeightQuantization t = quantize_weight(f, w, 8, cols, o);
  ASSERT_EQ(t.matrix.bytes(), q.matrix.bytes());
  EXPECT_TRUE(
      std::equal(t.matrix.codes().begin(), t.matrix.codes().end(), q.matrix.codes().begin()));
  EXPECT_EQ(t.matrix.scales().row, q.matrix.scales().row);
}

TEST(FormatSearch, NeedsAScaledFloatFormat) {
  MethodOptions o;
  o.method = QuantMethod::kFpSearch;
  const std::vector<float> w(64, 1.0f);
  for (const char* name : {"int4:channel", "mxfp4", "bf16"}) {
    try {
      quantize_weight(parse_matrix_format(name), w, 2, 32, o);
      ADD_FAILURE() << name;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--method fpsearch"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(parse_method("fpvote"), QuantMethod::kFpVote);
  EXPECT_TRUE(method_needs_data(QuantMethod::kFpSearch));
  EXPECT_FALSE(method_needs_data(QuantMethod::kFpVote));
}

}  // namespace
}  // namespace lowp

namespace lowp {
namespace {

// ZeroQuant-FP's row scale under MX blocks: r_i = amax_i / 6 (E2M1's max),
// W / r in mxfp4 by the spec's rule, times r again; recomputed here.
TEST(RowScale, IsTheMxRuleUnderARealRowScale) {
  const std::size_t rows = 6, cols = 96;
  const std::vector<float> w = test_matrix(rows, cols, 17);
  const MatrixFormat f = parse_matrix_format("mxfp4");
  MethodOptions o;
  o.row_scale = true;
  const WeightQuantization q = quantize_weight(f, w, rows, cols, o);
  std::vector<float> r(rows), ws(w.size());
  for (std::size_t i = 0; i < rows; ++i) {
    double amax = 0;
    for (std::size_t j = 0; j < cols; ++j)
      amax = std::max(amax, std::fabs(double(w[i * cols + j])));
    r[i] = static_cast<float>(amax / 6.0);
    for (std::size_t j = 0; j < cols; ++j) ws[i * cols + j] = float(double(w[i * cols + j]) / r[i]);
  }
  std::vector<float> want(w.size());
  PackedMatrix::quantize(f, ws, rows, cols).dequantize(want);
  for (std::size_t i = 0; i < want.size(); ++i) want[i] = float(double(want[i]) * r[i / cols]);
  EXPECT_EQ(dequantized(q.matrix), want);
  EXPECT_EQ(q.stored_bytes, PackedMatrix::quantize(f, ws, rows, cols).bytes() + 4 * rows);
  // Each row's largest weight is kept to fp32 rounding (its block's scale is 2^0).
  for (std::size_t i = 0; i < rows; ++i) {
    std::size_t at = 0;
    for (std::size_t j = 0; j < cols; ++j)
      if (std::fabs(w[i * cols + j]) > std::fabs(w[i * cols + at])) at = j;
    EXPECT_NEAR(dequantized(q.matrix)[i * cols + at], w[i * cols + at],
                1e-6 * std::fabs(w[i * cols + at]));
  }
  EXPECT_NE(q.detail.find("FP32 scale per row"), std::string::npos) << q.detail;
  // Spellings and formats.
  EXPECT_TRUE(parse_method_spec("gptq+row").row_scale);
  const MethodSpec both = parse_method_spec("gptq+row+lorc4");
  EXPECT_TRUE(both.row_scale);
  EXPECT_EQ(both.lorc_rank, 4u);
  for (const char* bad : {"gptq+lorc4+row", "gptq+row+row", "gptq+rows", "gptq+"}) {
    EXPECT_THROW(parse_method_spec(bad), Error) << bad;
  }
  EXPECT_FALSE(method_mismatch(both, parse_matrix_format("int4:channel")).empty());
  EXPECT_FALSE(method_mismatch(both, parse_matrix_format("nvfp4")).empty());
  EXPECT_TRUE(method_mismatch(both, parse_matrix_format("mx:fp4_e2m1:64")).empty());
  EXPECT_THROW(quantize_weight(parse_matrix_format("int4:channel"), w, rows, cols, o), Error);
}

}  // namespace
}  // namespace lowp

namespace lowp {
namespace {

TEST(Methods, EveryMethodParsesBackFromItsName) {
  for (int i = 0; i <= static_cast<int>(QuantMethod::kNupes); ++i) {
    const auto m = static_cast<QuantMethod>(i);
    EXPECT_EQ(parse_method(method_name(m)), m) << method_name(m);
    EXPECT_EQ(parse_method_spec(std::string(method_name(m)) + "+lorc2").method, m);
  }
}

}  // namespace
}  // namespace lowp
