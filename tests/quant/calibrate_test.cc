// Whole-model quantization through the runtime: the block-by-block API the
// calibration runs on, sequential GPTQ on real checkpoints, and the GGUF
// export of its matrices, read back bit for bit.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ci.h"
#include "lowp/error.h"
#include "lowp/nn/model_files.h"
#include "lowp/quant/calibrate.h"
#include "lowp/quant/export_gguf.h"

namespace lowp {
namespace {

std::filesystem::path source_dir() {
  const char* s = std::getenv("LOWP_SOURCE_DIR");
  return s != nullptr ? s : LOWP_TEST_SOURCE_DIR;
}

// Byte tokens of the held-out text's start (tests only; measurements keep
// calibration and validation apart).
std::vector<std::int32_t> text_tokens(std::size_t n) {
  std::ifstream f(source_dir() / "models" / "kjv-char" / "val.txt", std::ios::binary);
  std::vector<std::int32_t> t;
  char c;
  while (t.size() < n && f.get(c)) t.push_back(static_cast<unsigned char>(c));
  return t;
}

TEST(Calibration, WindowsAreSeededAndChecked) {
  const std::vector<std::int32_t> t = text_tokens(1000);
  const auto a = calibration_windows(t, std::nullopt, 64, 5, 1);
  const auto b = calibration_windows(t, std::nullopt, 64, 5, 1);
  const auto c = calibration_windows(t, std::nullopt, 64, 5, 2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  ASSERT_EQ(a.size(), 5u);
  for (const auto& w : a) EXPECT_EQ(w.size(), 64u);
  const auto d = calibration_windows(t, 7, 64, 2, 1);
  EXPECT_EQ(d[0][0], 7);
  EXPECT_EQ(d[0].size(), 64u);
  EXPECT_THROW(calibration_windows(std::vector<std::int32_t>(10, 1), std::nullopt, 64, 1, 0),
               Error);
  EXPECT_THROW(calibration_windows(t, std::nullopt, 0, 1, 0), Error);
}

nn::Transformer embedded() {
  return nn::load_transformer(source_dir() / "models" / "kjv-char" / "model.safetensors");
}

TEST(Calibration, BlocksOneAtATimeAreTheForwardPass) {
  const nn::Transformer m = embedded().with_weights(parse_matrix_format("mxfp4"));
  const std::vector<std::int32_t> t = text_tokens(40);
  std::vector<float> want(t.size() * 256);
  m.forward(t, want, 2);
  std::vector<float> x = m.embed(t);
  std::size_t observed = 0;
  for (int l = 0; l < m.config().n_layer; ++l) {
    m.run_block(l, x, [&](int layer, nn::LinearInput, const float*, std::size_t rows, std::size_t) {
      EXPECT_EQ(layer, l);
      EXPECT_EQ(rows, t.size());
      ++observed;
    });
  }
  EXPECT_EQ(observed, 4u * static_cast<std::size_t>(m.config().n_layer));
  std::vector<float> head_in;
  m.observe_head(
      x, [&](int layer, nn::LinearInput in, const float* h, std::size_t rows, std::size_t cols) {
        EXPECT_EQ(layer, m.config().n_layer);
        EXPECT_EQ(in, nn::LinearInput::kHead);
        head_in.assign(h, h + rows * cols);
      });
  std::vector<float> got(want.size());
  m.linear_weight(m.config().n_layer, nn::LinearKind::kHead)
      .gemm(head_in.data(), t.size(), got.data(), 2);
  EXPECT_EQ(got, want);
}

TEST(Calibration, SequentialGptqBeatsRoundToNearestLayerByLayer) {
  const nn::Transformer m = embedded();
  const auto windows = calibration_windows(text_tokens(20000), std::nullopt, 128, 16, 3);
  for (const char* name : {"mxfp4", "int4:group32", "nvfp4"}) {
    SCOPED_TRACE(name);
    ModelQuantizeOptions o;
    o.method.method = QuantMethod::kGptq;
    o.method.threads = 2;
    const ModelQuantization q = quantize_transformer(m, parse_matrix_format(name), windows, o);
    EXPECT_EQ(q.calibration_tokens, 16u * 128u);
    ASSERT_EQ(q.linears.size(), 21u);  // 5 blocks x (qkv, o, fc, down) + head
    for (const LinearReport& r : q.linears) {
      EXPECT_LT(r.objective, r.rtn_objective) << r.name;
    }
    EXPECT_EQ(q.model.weight_format().name, name);
    EXPECT_EQ(q.model.linear_bits_per_weight(),
              m.with_weights(parse_matrix_format(name)).linear_bits_per_weight());
  }
  ModelQuantizeOptions o;
  o.method.method = QuantMethod::kGptq;
  EXPECT_THROW(quantize_transformer(m, parse_matrix_format("mxfp4"), {}, o), Error);
}

// GPTQ's matrices written into ggml's blocks decode, read back by the GGUF
// loader, to exactly the values the runtime ran.
TEST(Calibration, GgufExportOfPackedMatricesIsExact) {
  const std::filesystem::path dir = source_dir() / "models" / "kjv-llama";
  if (!std::filesystem::exists(dir / "model.safetensors")) {
    LOWP_SKIP_OR_FAIL_UNDER_CI("models/kjv-llama is missing");
  }
  const nn::Transformer m = nn::load_transformer(dir);
  std::vector<std::int32_t> tokens;
  for (std::int32_t t : text_tokens(3000)) tokens.push_back(t % m.config().vocab_size);
  const auto windows = calibration_windows(tokens, std::nullopt, 64, 4, 5);
  const std::filesystem::path out =
      std::filesystem::temp_directory_path() / ("lowp_calibrate_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(out);
  for (const auto& [type, storage] : std::vector<std::pair<std::string, std::string>>{
           {"q4_0", "int4:group32"}, {"q8_0", "q8_0"}, {"mxfp4", "mxfp4"}}) {
    SCOPED_TRACE(type);
    ModelQuantizeOptions o;
    o.method.method = QuantMethod::kGptq;
    o.method.threads = 2;
    o.measure_objective = false;
    const nn::Transformer q =
        quantize_transformer(m, parse_matrix_format(storage), windows, o).model;
    GgufExportRequest req;
    req.type = type;
    req.packed = true;
    const std::filesystem::path file = out / (type + ".gguf");
    export_gguf(q, file, req);
    const nn::Transformer back = nn::load_transformer(file);
    for (int l = 0; l < m.config().n_layer; ++l) {
      for (nn::LinearKind k : q.linear_kinds(l)) {
        const PackedMatrix& pm = q.linear_weight(l, k);
        std::vector<float> want(pm.rows() * pm.cols());
        pm.dequantize(want);
        const std::span<const float> got = back.linear_source(l, k);
        ASSERT_EQ(std::vector<float>(got.begin(), got.end()), want)
            << "layer " << l << " " << nn::linear_kind_name(k);
      }
    }
    // A format the type cannot hold is refused before anything is written.
    GgufExportRequest wrong = req;
    wrong.type = "q8_0";
    if (type != "q8_0") {
      EXPECT_THROW(export_gguf(q, out / "wrong.gguf", wrong), Error);
      EXPECT_FALSE(std::filesystem::exists(out / "wrong.gguf"));
    }
  }
  std::filesystem::remove_all(out);
}

}  // namespace
}  // namespace lowp
