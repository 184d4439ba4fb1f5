// Tests for the engine checkpoint layouts (lowp/io/layouts.h) as written by
// quantize_model / quantize_model_dir and read back by the safetensors reader.
//
// gpt-oss vectors are derived by hand from Hugging Face transformers' reader,
// convert_moe_packed_tensors in src/transformers/integrations/mxfp4.py: for
// blocks U8 [..., G, 16] and scales U8 [..., G], byte i of a block gives
// element 2i = FP4_VALUES[byte & 0xF] and 2i+1 = FP4_VALUES[byte >> 4], times
// 2^(scale - 127); FP4_VALUES is the E2M1 table 0, 0.5, 1, 1.5, 2, 3, 4, 6 and
// their negatives at codes 8-15.
//
// ModelOpt vectors are derived from vLLM's ModelOpt NVFP4 loader
// (vllm/model_executor/layers/quantization/modelopt.py): "<name>" U8
// [rows, cols/2] (element 2i in the low nibble), "<name>_scale" float8_e4m3fn
// [rows, cols/16], "<name>_scale_2" one float32, and a weight is
// e2m1 * weight_scale * weight_scale_2 (weight_scale_2 = amax / (6 * 448)).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "lowp/error.h"
#include "lowp/io/layouts.h"
#include "lowp/io/safetensors.h"
#include "lowp/quant/model_quantize.h"

namespace lowp {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("lowp_layouts_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

// A safetensors file of one F32 tensor `name` of `shape`.
void write_f32(const fs::path& path, const std::string& name, std::vector<std::int64_t> shape,
               const std::vector<float>& values) {
  io::write_safetensors(path, {io::f32_output(name, std::move(shape))}, {},
                        [&](std::size_t) { return io::f32_bytes(values); });
}

// Row 0: amax 6, so the OCP floor scale is 2^0 (E8M0 127), codes 1.0 -> 2,
// -1.0 -> A, 2 -> 4, 3 -> 5, 0 -> 0, 6 -> 7, 0.5 -> 1, -6 -> F; row 1 is
// four times row 0: the same codes under E8M0 129.
std::vector<float> hand_rows() {
  std::vector<float> row = {1.0f, -1.0f, 2.0f, 3.0f, 0.0f, 6.0f, 0.5f, -6.0f};
  row.resize(32, 0.0f);
  std::vector<float> w = row;
  for (float v : row) w.push_back(4.0f * v);
  return w;
}

TEST(GptOssLayout, OutputsAndNames) {
  const std::vector<std::int64_t> shape = {3, 5, 64};
  const std::vector<io::OutputTensor> out = io::gpt_oss_outputs("mlp.experts.down_proj", shape);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "mlp.experts.down_proj_blocks");
  EXPECT_EQ(out[0].dtype, "U8");
  EXPECT_EQ(out[0].shape, (std::vector<std::int64_t>{3, 5, 2, 16}));
  EXPECT_EQ(out[0].nbytes, 3u * 5 * 2 * 16);
  EXPECT_EQ(out[1].name, "mlp.experts.down_proj_scales");
  EXPECT_EQ(out[1].shape, (std::vector<std::int64_t>{3, 5, 2}));
  EXPECT_EQ(out[1].nbytes, 3u * 5 * 2);
  const std::vector<std::int64_t> odd = {4, 48};
  EXPECT_THROW(io::gpt_oss_outputs("w", odd), Error);
  EXPECT_EQ(io::module_of("model.layers.0.self_attn.q_proj.weight"),
            "model.layers.0.self_attn.q_proj");
  EXPECT_EQ(io::parse_layout("gpt-oss"), io::Layout::kGptOss);
  EXPECT_THROW(io::parse_layout("gptoss"), Error);
}

TEST(GptOssLayout, ConfigKeepsTheInputsKeys) {
  const std::string q = io::gpt_oss_quantization_config({"lm_head"});
  EXPECT_EQ(q, R"({"quant_method":"mxfp4","modules_to_not_convert":["lm_head"]})");
  const std::string c = io::config_with_quantization(
      R"({"b": 1, "a": 2, "quantization_config": {"x": 0}})", q, "config.json");
  EXPECT_EQ(c,
            "{\n  \"b\": 1,\n  \"a\": 2,\n  \"quantization_config\": {\n    \"quant_method\": "
            "\"mxfp4\",\n    \"modules_to_not_convert\": [\n      \"lm_head\"\n    ]\n  }\n}\n");
  EXPECT_THROW(io::config_with_quantization("[1]", q, "config.json"), Error);
}

TEST(GptOssLayout, HandVectorBytesAndRoundTrip) {
  TempDir tmp;
  const std::vector<float> w = hand_rows();
  write_f32(tmp.path / "in.safetensors", "w", {2, 32}, w);
  QuantizeRequest req;
  req.format = "mxfp4";
  req.layout = io::Layout::kGptOss;
  const fs::path out = tmp.path / "out";
  const ModelReport report = quantize_model_dir(tmp.path / "in.safetensors", out, req);
  ASSERT_EQ(report.tensors.size(), 1u);
  EXPECT_TRUE(report.tensors[0].quantized);
  const std::unique_ptr<io::ModelReader> back = io::open_model(out / "model.safetensors");
  EXPECT_EQ(back->layout(), "gpt-oss");
  ASSERT_EQ(back->tensors().size(), 1u);
  const io::TensorInfo& t = back->tensors()[0];
  EXPECT_EQ(t.name, "w");
  EXPECT_EQ(t.dtype, "mxfp4");
  EXPECT_EQ(t.shape, (std::vector<std::int64_t>{2, 32}));
  const std::optional<PackedTensor> p = back->packed(t);
  ASSERT_TRUE(p.has_value());
  std::vector<std::uint8_t> row = {0xA2, 0x54, 0x70, 0xF1};
  row.resize(16, 0);
  std::vector<std::uint8_t> blocks = row;
  blocks.insert(blocks.end(), row.begin(), row.end());
  EXPECT_EQ(p->elements, blocks);
  EXPECT_EQ(p->scales, (std::vector<std::uint8_t>{127, 129}));
  EXPECT_EQ(back->read_f32(t), w);  // every value is exact in MXFP4
  // Re-writing from the gpt-oss directory copies the codes: byte-identical.
  const fs::path again = tmp.path / "again";
  quantize_model_dir(out, again, req);
  const auto bytes = [](const fs::path& f) {
    std::ifstream s(f, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(s), {});
  };
  EXPECT_EQ(bytes(again / "model.safetensors"), bytes(out / "model.safetensors"));
}

TEST(GptOssLayout, RefusesOtherFormatsAndLeavesNothing) {
  TempDir tmp;
  write_f32(tmp.path / "in.safetensors", "w", {2, 32}, hand_rows());
  QuantizeRequest req;
  req.layout = io::Layout::kGptOss;
  for (const char* format : {"nvfp4", "mxfp8_e4m3", "fp8_e4m3", "int4:group32"}) {
    req.format = format;
    EXPECT_THROW(quantize_model_dir(tmp.path / "in.safetensors", tmp.path / "out", req), Error)
        << format;
  }
  req.format = "mxfp4";
  req.block_size = 16;
  EXPECT_THROW(quantize_model_dir(tmp.path / "in.safetensors", tmp.path / "out", req), Error);
  // Only the input is left.
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp.path)) ++files;
  EXPECT_EQ(files, 1u);
}

TEST(GptOssLayout, DirectoryConfigMustMatchTheTensors) {
  TempDir tmp;
  write_f32(tmp.path / "model.safetensors", "w", {2, 32}, hand_rows());
  std::ofstream(tmp.path / "config.json")
      << R"({"quantization_config": {"quant_method": "mxfp4"}})";
  try {
    io::open_model_directory(tmp.path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("quant_method \"mxfp4\" (gpt-oss) but no tensor"),
              std::string::npos)
        << e.what();
  }
  std::ofstream(tmp.path / "config.json") << R"({"quantization_config": {"quant_method": "gptq"}})";
  EXPECT_THROW(io::open_model_directory(tmp.path), Error);
  std::ofstream(tmp.path / "config.json") << R"({"hidden_size": 8})";
  EXPECT_EQ(io::open_model_directory(tmp.path).layout, "");
}

TEST(ModeloptLayout, HandVectorBytesAndRoundTrip) {
  // Row 0: 448 times the gpt-oss row above, so the tensor amax is 2688 and
  // weight_scale_2 = 2688 / (6 * 448) = 1 (F32 bytes 00 00 80 3F); the block
  // scale is 2688 / 6 = 448 = 1.75 * 2^8, E4M3 0_1111_110 = 0x7E, and the
  // codes those of the gpt-oss row: A2 54 70 F1 00 00 00 00. Row 1 is a
  // quarter of row 0: block scale 112 = 1.75 * 2^6, E4M3 0_1101_110 = 0x6E.
  TempDir tmp;
  std::vector<float> row = {1.0f, -1.0f, 2.0f, 3.0f, 0.0f, 6.0f, 0.5f, -6.0f};
  row.resize(16, 0.0f);
  std::vector<float> w;
  for (float v : row) w.push_back(448.0f * v);
  for (float v : row) w.push_back(112.0f * v);
  write_f32(tmp.path / "in.safetensors", "q_proj.weight", {2, 16}, w);
  QuantizeRequest req;
  req.format = "nvfp4";
  req.layout = io::Layout::kModelopt;
  const fs::path out = tmp.path / "out";
  quantize_model_dir(tmp.path / "in.safetensors", out, req);
  EXPECT_TRUE(fs::exists(out / "hf_quant_config.json"));
  EXPECT_FALSE(fs::exists(out / "config.json"));  // a lone file has none to keep
  const io::ModelDirectory d = io::open_model_directory(out);
  EXPECT_EQ(d.layout, "modelopt");
  ASSERT_EQ(d.model->tensors().size(), 1u);
  const io::TensorInfo& t = d.model->tensors()[0];
  EXPECT_EQ(t.name, "q_proj.weight");
  EXPECT_EQ(t.dtype, "nvfp4");
  EXPECT_EQ(t.shape, (std::vector<std::int64_t>{2, 16}));
  const std::optional<PackedTensor> p = d.model->packed(t);
  ASSERT_TRUE(p.has_value());
  const std::vector<std::uint8_t> codes = {0xA2, 0x54, 0x70, 0xF1, 0, 0, 0, 0,
                                           0xA2, 0x54, 0x70, 0xF1, 0, 0, 0, 0};
  EXPECT_EQ(p->elements, codes);
  EXPECT_EQ(p->scales, (std::vector<std::uint8_t>{0x7E, 0x6E}));
  EXPECT_EQ(p->tensor_scale, 1.0f);
  EXPECT_EQ(d.model->read_f32(t), w);
  // The raw file: the three tensors, with the names and dtypes vLLM loads.
  const std::unique_ptr<io::ModelReader> file = io::open_model(out / "model.safetensors");
  EXPECT_EQ(file->metadata().size(), 0u);
  const auto bytes = [](const fs::path& f) {
    std::ifstream s(f, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(s), {});
  };
  const std::string image = bytes(out / "model.safetensors");
  EXPECT_NE(image.find(R"("q_proj.weight_scale":{"dtype":"F8_E4M3","shape":[2,1])"),
            std::string::npos)
      << image.substr(0, 400);
  EXPECT_NE(image.find(R"("q_proj.weight_scale_2":{"dtype":"F32","shape":[])"), std::string::npos);
  EXPECT_EQ(image.substr(image.size() - 4), std::string("\x00\x00\x80\x3F", 4));
  // Re-writing from the ModelOpt directory copies the codes: byte-identical.
  quantize_model_dir(out, tmp.path / "again", req);
  EXPECT_EQ(bytes(tmp.path / "again" / "model.safetensors"), image);
  // Other formats are refused.
  req.format = "mxfp4";
  EXPECT_THROW(quantize_model_dir(tmp.path / "in.safetensors", tmp.path / "x", req), Error);
  EXPECT_FALSE(fs::exists(tmp.path / "x"));
}

TEST(ModeloptLayout, Fp8PerTensorHandVector) {
  // ModelOpt FP8 (quant_algo "FP8", vLLM's ModelOptFp8LinearMethod): weight
  // float8_e4m3fn, weight_scale one float32, a weight is e4m3 * weight_scale.
  // amax 224 gives the scale 224 / 448 = 0.5 (F32 bytes 00 00 00 3F) and the
  // OCP E4M3 codes of w / 0.5: 448 -> 0x7E, -224 -> 0xF6, 1 -> 0x38, 0 -> 0x00,
  // 2 -> 0x40, 3 -> 0x44, -448 -> 0xFE, 0.5 -> 0x30.
  TempDir tmp;
  const std::vector<float> w = {224.0f, -112.0f, 0.5f, 0.0f, 1.0f, 1.5f, -224.0f, 0.25f};
  write_f32(tmp.path / "in.safetensors", "o_proj.weight", {2, 4}, w);
  QuantizeRequest req;
  req.format = "fp8_e4m3:tensor";
  req.layout = io::Layout::kModelopt;
  const fs::path out = tmp.path / "out";
  quantize_model_dir(tmp.path / "in.safetensors", out, req);
  const auto bytes = [](const fs::path& f) {
    std::ifstream s(f, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(s), {});
  };
  EXPECT_NE(bytes(out / "hf_quant_config.json").find(R"("quant_algo": "FP8")"), std::string::npos);
  const std::string image = bytes(out / "model.safetensors");
  EXPECT_NE(image.find(R"("o_proj.weight":{"dtype":"F8_E4M3","shape":[2,4])"), std::string::npos)
      << image.substr(0, 300);
  EXPECT_NE(image.find(R"("o_proj.weight_scale":{"dtype":"F32","shape":[])"), std::string::npos);
  EXPECT_EQ(image.substr(image.size() - 12),
            std::string("\x7E\xF6\x38\x00\x40\x44\xFE\x30\x00\x00\x00\x3F", 12));
  const io::ModelDirectory d = io::open_model_directory(out);
  EXPECT_EQ(d.layout, "modelopt");
  ASSERT_EQ(d.model->tensors().size(), 1u);
  EXPECT_EQ(d.model->tensors()[0].dtype, "fp8_e4m3:tensor");
  EXPECT_EQ(d.model->read_f32(d.model->tensors()[0]), w);
  quantize_model_dir(out, tmp.path / "again", req);
  EXPECT_EQ(bytes(tmp.path / "again" / "model.safetensors"), image);
}

TEST(CompressedTensorsLayout, Fp8PerChannelHandVector) {
  // compressed-tensors float-quantized FP8, strategy "channel" (transformers'
  // docs/source/en/quantization/compressed_tensors.md lists weight F8_E4M3 and
  // weight_scale; per channel the scale is [rows, 1]), value = e4m3 * scale.
  // Row 0 has amax 224: scale 0.5, codes of w / 0.5 (448 -> 0x7E, -224 ->
  // 0xF6, 1 -> 0x38, 0 -> 0x00); row 1 amax 448: scale 1, codes 2 -> 0x40,
  // 3 -> 0x44, -448 -> 0xFE, 0.5 -> 0x30. Scales F32 00 00 00 3F, 00 00 80 3F.
  TempDir tmp;
  const std::vector<float> w = {224.0f, -112.0f, 0.5f, 0.0f, 2.0f, 3.0f, -448.0f, 0.5f};
  write_f32(tmp.path / "in.safetensors", "o_proj.weight", {2, 4}, w);
  QuantizeRequest req;
  req.format = "fp8_e4m3:channel";
  req.layout = io::Layout::kCompressedTensors;
  const fs::path out = tmp.path / "out";
  quantize_model_dir(tmp.path / "in.safetensors", out, req);
  const auto bytes = [](const fs::path& f) {
    std::ifstream s(f, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(s), {});
  };
  const std::string config = bytes(out / "config.json");
  EXPECT_NE(config.find(R"("quant_method": "compressed-tensors")"), std::string::npos) << config;
  EXPECT_NE(config.find(R"("format": "float-quantized")"), std::string::npos);
  EXPECT_NE(config.find(R"("strategy": "channel")"), std::string::npos);
  const std::string image = bytes(out / "model.safetensors");
  EXPECT_NE(image.find(R"("o_proj.weight_scale":{"dtype":"F32","shape":[2,1])"), std::string::npos)
      << image.substr(0, 300);
  EXPECT_EQ(image.substr(image.size() - 16),
            std::string("\x7E\xF6\x38\x00\x40\x44\xFE\x30\x00\x00\x00\x3F\x00\x00\x80\x3F", 16));
  const io::ModelDirectory d = io::open_model_directory(out);
  EXPECT_EQ(d.layout, "compressed-tensors");
  ASSERT_EQ(d.model->tensors().size(), 1u);
  EXPECT_EQ(d.model->tensors()[0].dtype, "fp8_e4m3:channel");
  EXPECT_EQ(d.model->read_f32(d.model->tensors()[0]), w);
  quantize_model_dir(out, tmp.path / "again", req);
  EXPECT_EQ(bytes(tmp.path / "again" / "model.safetensors"), image);
  req.format = "mxfp4";  // compressed-tensors writes FP8, NVFP4 and integers
  EXPECT_THROW(quantize_model_dir(tmp.path / "in.safetensors", tmp.path / "x", req), Error);
  req.format = "int3:channel";        // 3-bit packing changed in compressed-tensors 0.17
  EXPECT_THROW(quantize_model_dir(tmp.path / "in.safetensors", tmp.path / "x", req), Error);
}

}  // namespace
}  // namespace lowp
