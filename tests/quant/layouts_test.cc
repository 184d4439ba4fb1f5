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

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/io/layouts.h"
#include "lowp/io/safetensors.h"
#include "lowp/quant/model_quantize.h"
#include "lowp/storage/packed_matrix.h"

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
  // The weight and its module's input_scale (1: no activation statistics).
  ASSERT_EQ(d.model->tensors().size(), 2u);
  EXPECT_EQ(d.model->tensors()[1].name, "q_proj.input_scale");
  EXPECT_EQ(d.model->read_f32(d.model->tensors()[1]), std::vector<float>{1.0f});
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
  EXPECT_NE(image.find(R"("q_proj.input_scale":{"dtype":"F32","shape":[])"), std::string::npos);
  // weight_scale_2 and input_scale, both 1.0.
  EXPECT_EQ(image.substr(image.size() - 8), std::string("\x00\x00\x80\x3F\x00\x00\x80\x3F", 8));
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
  req.format = "int3:channel";  // 3-bit packing changed in compressed-tensors 0.17
  EXPECT_THROW(quantize_model_dir(tmp.path / "in.safetensors", tmp.path / "x", req), Error);
}

}  // namespace
}  // namespace lowp

namespace lowp {
namespace {

std::string file_bytes(const fs::path& f) {
  std::ifstream s(f, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(s), {});
}

// A raw safetensors file: each tensor with its bytes as given.
struct RawPart {
  io::OutputTensor tensor;
  std::vector<std::byte> bytes;
};
void write_raw(const fs::path& path, const std::vector<RawPart>& parts) {
  std::vector<io::OutputTensor> outputs;
  for (const RawPart& p : parts) {
    outputs.push_back(p.tensor);
    outputs.back().nbytes = p.bytes.size();
  }
  io::write_safetensors(path, outputs, {}, [&](std::size_t i) { return parts[i].bytes; });
}
std::vector<std::byte> le_bytes(std::uint64_t v, std::size_t size) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i < size; ++i)
    out.push_back(static_cast<std::byte>(i < 8 ? (v >> (8 * i)) & 0xFF : 0));
  return out;
}
std::vector<std::byte> cat(std::initializer_list<std::vector<std::byte>> pieces) {
  std::vector<std::byte> out;
  for (const auto& p : pieces) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// A deterministic weight matrix with rows of very different magnitudes.
std::vector<float> test_matrix(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  std::vector<float> w(rows * cols);
  std::uint32_t x = seed;
  for (std::size_t i = 0; i < w.size(); ++i) {
    x = x * 1664525u + 1013904223u;
    const float u = static_cast<float>(x >> 8) / 16777216.0f - 0.5f;
    w[i] = u * static_cast<float>(1 + (i / cols) % 5) * 0.37f;
  }
  return w;
}

std::string tensor_data(const std::string& image, const std::string& name);

TEST(CompressedTensorsLayout, Nvfp4HandVector) {
  // compressed-tensors nvfp4-pack-quantized (compressors/nvfp4/base.py,
  // helpers.py pack_fp4_to_uint8: element 2i in the low nibble; quantization/
  // utils/helpers.py generate_gparam: global scale = 448 * 6 / amax). The
  // ModelOpt hand rows divided by 448: amax 6, global scale 2688 / 6 = 448
  // (F32 00 00 E0 43); block scales amax_block / 6 * 448: 448 -> E4M3 0x7E,
  // 112 -> 0x6E; codes A2 54 70 F1 0 0 0 0 per row. Dequantized as
  // forward_helpers.py does, e2m1 * (e4m3 / 448): the input exactly.
  TempDir tmp;
  std::vector<float> row = {1.0f, -1.0f, 2.0f, 3.0f, 0.0f, 6.0f, 0.5f, -6.0f};
  row.resize(16, 0.0f);
  std::vector<float> w = row;
  for (float v : row) w.push_back(0.25f * v);
  write_f32(tmp.path / "in.safetensors", "q_proj.weight", {2, 16}, w);
  QuantizeRequest req;
  req.format = "nvfp4";
  req.layout = io::Layout::kCompressedTensors;
  const fs::path out = tmp.path / "out";
  quantize_model_dir(tmp.path / "in.safetensors", out, req);
  const std::string config = file_bytes(out / "config.json");
  for (const char* key :
       {R"("format": "nvfp4-pack-quantized")", R"("num_bits": 4)", R"("type": "float")",
        R"("strategy": "tensor_group")", R"("group_size": 16)", R"("symmetric": true)",
        R"("dynamic": false)", R"("scale_dtype": "torch.float8_e4m3fn")", R"("version": "0.18.0")",
        R"("quantization_status": "compressed")"}) {
    EXPECT_NE(config.find(key), std::string::npos) << key << "\n" << config;
  }
  const std::string image = file_bytes(out / "model.safetensors");
  EXPECT_NE(image.find(R"("q_proj.weight_packed":{"dtype":"U8","shape":[2,8])"), std::string::npos)
      << image.substr(0, 400);
  EXPECT_NE(image.find(R"("q_proj.weight_scale":{"dtype":"F8_E4M3","shape":[2,1])"),
            std::string::npos);
  EXPECT_NE(image.find(R"("q_proj.weight_global_scale":{"dtype":"F32","shape":[1])"),
            std::string::npos);
  const std::string data = "\xA2\x54\x70\xF1" + std::string(4, '\0') + "\xA2\x54\x70\xF1" +
                           std::string(4, '\0') + "\x7E\x6E" + std::string("\x00\x00\xE0\x43", 4);
  EXPECT_EQ(image.substr(image.size() - data.size()), data);
  const io::ModelDirectory d = io::open_model_directory(out);
  EXPECT_EQ(d.layout, "compressed-tensors");
  ASSERT_EQ(d.model->tensors().size(), 1u);
  const io::TensorInfo& t = d.model->tensors()[0];
  EXPECT_EQ(t.name, "q_proj.weight");
  EXPECT_EQ(t.dtype, "nvfp4");
  EXPECT_EQ(d.model->read_f32(t), w);
  const std::optional<PackedTensor> p = d.model->packed(t);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->tensor_scale, 1.0f / 448.0f);
  // Re-writing from the compressed-tensors directory copies the codes.
  quantize_model_dir(out, tmp.path / "again", req);
  EXPECT_EQ(file_bytes(tmp.path / "again" / "model.safetensors"), image);
}

TEST(CompressedTensorsLayout, FusedLayersShareTheGlobalScale) {
  // vLLM loads one weight_global_scale per fused layer (q/k/v, gate/up), and
  // llm-compressor gives the layers of one the same (the smallest g, the
  // largest amax): q, k, v with amax 6, 3, 12 all get g = 2688 / 12 = 224;
  // o_proj keeps its own, 2688 / 6 = 448.
  TempDir tmp;
  const auto rows = [](float amax) {
    std::vector<float> w(32, 0.0f);
    w[0] = amax;
    w[17] = -amax / 2;
    return w;
  };
  const std::vector<std::pair<std::string, float>> layers = {{"l.q_proj.weight", 6.0f},
                                                             {"l.k_proj.weight", 3.0f},
                                                             {"l.v_proj.weight", 12.0f},
                                                             {"l.o_proj.weight", 6.0f}};
  std::vector<io::OutputTensor> outputs;
  for (const auto& [name, amax] : layers) outputs.push_back(io::f32_output(name, {2, 16}));
  io::write_safetensors(tmp.path / "in.safetensors", outputs, {},
                        [&](std::size_t i) { return io::f32_bytes(rows(layers[i].second)); });
  QuantizeRequest req;
  req.format = "nvfp4";
  req.layout = io::Layout::kCompressedTensors;
  quantize_model_dir(tmp.path / "in.safetensors", tmp.path / "ct", req);
  const std::string image = file_bytes(tmp.path / "ct" / "model.safetensors");
  for (const auto& [name, amax] : layers) {
    float g = 0.0f;
    std::memcpy(&g, tensor_data(image, name + "_global_scale").data(), 4);
    EXPECT_EQ(g, name == "l.o_proj.weight" ? 448.0f : 224.0f) << name;
  }
  // Each layer's values are its own, under the shared scale: the codes hold
  // them exactly here (amax and amax / 2 at block scales of amax / 6).
  const io::ModelDirectory d = io::open_model_directory(tmp.path / "ct");
  for (const io::TensorInfo& t : d.model->tensors()) {
    const auto layer = std::find_if(layers.begin(), layers.end(),
                                    [&](const auto& l) { return l.first == t.name; });
    ASSERT_NE(layer, layers.end());
    EXPECT_EQ(d.model->read_f32(t), rows(layer->second)) << t.name;
  }
}

TEST(CompressedTensorsLayout, GlobalScaleIsTheTensorScalesReciprocal) {
  // generate_gparam: g = 448 * 6 / amax in FP32 (1 where that overflows);
  // lowp's tensor scale is fp32(1 / g).
  EXPECT_EQ(io::compressed_nvfp4_global_scale(6.0f), 448.0f);
  EXPECT_EQ(io::compressed_nvfp4_global_scale(2688.0f), 1.0f);
  EXPECT_EQ(io::compressed_nvfp4_global_scale(0.0f), 1.0f);
  EXPECT_EQ(io::compressed_nvfp4_global_scale(1e-45f), 1.0f);
  EXPECT_EQ(io::compressed_nvfp4_tensor_scale(448.0f), 1.0f / 448.0f);
  // compressed_global_scale (a copied tensor's g) finds an FP32 g with
  // fp32(1 / g) == t wherever one exists among fp32(1 / t) and its two
  // neighbours either side; where none does it is fp32(1 / t). A tensor
  // scale that is itself a reciprocal always has one.
  int exact = 0, inexact = 0;
  for (std::uint32_t bits = 0x3A000000u; bits < 0x3C000000u; bits += 4099u) {
    const float t = std::bit_cast<float>(bits);
    const float g = io::compressed_global_scale(t);
    if (1.0f / g == t) {
      ++exact;
    } else {
      ++inexact;
      EXPECT_EQ(g, 1.0f / t);
      float n = g;
      for (int k = 0; k < 8; ++k) {
        n = std::nextafter(n, 0.0f);
        EXPECT_NE(1.0f / n, t);
      }
    }
    const float reciprocal = io::compressed_nvfp4_tensor_scale(t);
    EXPECT_EQ(1.0f / io::compressed_global_scale(reciprocal), reciprocal) << t;
  }
  EXPECT_GT(exact, 0);
  EXPECT_GT(inexact, 0);                                          // the reciprocal is not onto FP32
  EXPECT_EQ(io::compressed_global_scale(1.0f / 448.0f), 448.0f);  // the shortest significand
  EXPECT_EQ(io::compressed_global_scale(0.0f), 1.0f);
}

TEST(CompressedTensorsLayout, Nvfp4RoundTripAndDivision) {
  // lowp -> compressed-tensors -> lowp: codes and block scales as lowp's own
  // nvfp4 quantizer gives them under the written tensor scale, which reads
  // back exactly; values identical. A compressed-tensors reader divides,
  // e2m1 * (e4m3 / g); lowp multiplies, e2m1 * (e4m3 * fp32(1 / g)).
  TempDir tmp;
  const std::size_t rows = 24, cols = 64;
  const std::vector<float> w = test_matrix(rows, cols, 7);
  write_f32(tmp.path / "in.safetensors", "mlp.down_proj.weight", {24, 64}, w);
  QuantizeRequest req;
  req.format = "nvfp4";
  req.layout = io::Layout::kCompressedTensors;
  quantize_model_dir(tmp.path / "in.safetensors", tmp.path / "ct", req);
  const io::ModelDirectory d = io::open_model_directory(tmp.path / "ct");
  const io::TensorInfo& t = d.model->tensors()[0];
  const std::optional<PackedTensor> p = d.model->packed(t);
  ASSERT_TRUE(p.has_value());
  // lowp's quantizer under that tensor scale gives the same bytes.
  float amax = 0.0f;
  for (const float v : w) amax = std::max(amax, std::fabs(v));
  const float g = io::compressed_nvfp4_global_scale(amax);
  EXPECT_EQ(p->tensor_scale, 1.0f / g);
  const std::string image = file_bytes(tmp.path / "ct" / "model.safetensors");
  float stored_g = 0.0f;
  std::memcpy(&stored_g, tensor_data(image, "mlp.down_proj.weight_global_scale").data(), 4);
  EXPECT_EQ(stored_g, g);
  std::vector<std::uint8_t> elements(rows * cols / 2, 0), scales(rows * cols / 16, 0);
  quantize_blocked(p->format, w, cols, p->tensor_scale, {}, elements.data(), scales.data());
  EXPECT_EQ(p->elements, elements);
  EXPECT_EQ(p->scales, scales);
  const std::vector<float> values = d.model->read_f32(t);
  std::vector<float> lowp_values(w.size());
  dequantize(*p, lowp_values);
  EXPECT_EQ(values, lowp_values);
  // Into a lowp file and back into compressed-tensors: byte-identical.
  QuantizeRequest to_lowp;
  to_lowp.format = "nvfp4";
  to_lowp.output_kind = "safetensors";
  quantize_model(*d.model, tmp.path / "lowp.safetensors", to_lowp);
  const std::unique_ptr<io::ModelReader> lowp_file = io::open_model(tmp.path / "lowp.safetensors");
  const std::optional<PackedTensor> q = lowp_file->packed(lowp_file->tensors()[0]);
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->elements, p->elements);
  EXPECT_EQ(q->scales, p->scales);
  EXPECT_EQ(q->tensor_scale, p->tensor_scale);
  // And back into compressed-tensors (copied): the same codes and scales, and
  // a global scale whose reciprocal is the same tensor scale.
  quantize_model_dir(tmp.path / "lowp.safetensors", tmp.path / "ct2", req);
  const io::ModelDirectory d2 = io::open_model_directory(tmp.path / "ct2");
  const std::optional<PackedTensor> p2 = d2.model->packed(d2.model->tensors()[0]);
  ASSERT_TRUE(p2.has_value());
  EXPECT_EQ(p2->elements, p->elements);
  EXPECT_EQ(p2->scales, p->scales);
  EXPECT_EQ(p2->tensor_scale, p->tensor_scale);
  // Division against lowp's product. forward_helpers.py dequantizes
  // e2m1 * (e4m3 / g); lowp reads e2m1 * (e4m3 * fp32(1 / g)). fp32(1 / g)
  // is 1 / g within a relative 2^-24, so the two block factors are roundings
  // of reals that close and differ by at most an FP32 ulp or two (one seen),
  // and the E2M1 factor (a power of two times 1 or 1.5) at most doubles that.
  // Measured on this matrix: 1078 of the 1536 values differ, each by one ulp
  // (asserted: at most 2, a one-ulp factor times 1.5, rounded). Engines
  // differ again (vLLM's kernels fold 1 / g into the GEMM's alpha); lowp's
  // values are those of multiplying by the tensor scale fp32(1 / g).
  int differ = 0;
  std::uint32_t max_ulps = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const auto code = static_cast<std::uint32_t>((p->elements[i / 2] >> (4 * (i % 2))) & 0xF);
    const float block = decode_f32(kFp8E4m3, p->scales[i / 16]) / g;
    const float divided = decode_f32(kFp4E2m1, code) * block;
    if (divided != values[i]) {
      ++differ;
      const auto a = std::bit_cast<std::uint32_t>(divided),
                 b = std::bit_cast<std::uint32_t>(values[i]);
      max_ulps = std::max(max_ulps, a > b ? a - b : b - a);  // the same sign: bits are ordered
    }
  }
  EXPECT_GT(differ, 0);
  EXPECT_LE(max_ulps, 2u);
  std::printf("division differs from lowp's product in %d of %zu values, by at most %u ulps\n",
              differ, w.size(), max_ulps);
}

// The codes of a pack-quantized file read back the way compressed-tensors'
// unpack_from_int32 (compressors/pack_quantized/helpers.py) does: element i of
// a row at bit i * bits of the row's int32 words, minus 2^(bits-1).
std::vector<int> unpack_int32_rows(const std::string& bytes, std::size_t rows, std::size_t words,
                                   std::size_t cols, int bits) {
  std::vector<int> q;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t i = 0; i < cols; ++i) {
      std::uint32_t v = 0;
      for (int b = 0; b < bits; ++b) {
        const std::size_t bit = i * static_cast<std::size_t>(bits) + static_cast<std::size_t>(b);
        const std::size_t word = bit / 32;
        std::uint32_t x = 0;
        for (std::size_t k = 0; k < 4; ++k)
          x |= std::uint32_t{static_cast<unsigned char>(bytes[(r * words + word) * 4 + k])}
               << (8 * k);
        v |= ((x >> (bit % 32)) & 1u) << b;
      }
      q.push_back(static_cast<int>(v) - (1 << (bits - 1)));
    }
  }
  return q;
}

// One tensor's bytes in a safetensors image, by its header entry.
std::string tensor_data(const std::string& image, const std::string& name) {
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | static_cast<unsigned char>(image[static_cast<std::size_t>(i)]);
  const std::size_t at = image.find("\"" + name + "\":");
  EXPECT_NE(at, std::string::npos) << name;
  if (at == std::string::npos) return "";
  const std::size_t offsets = image.find("\"data_offsets\":[", at) + 16;
  const std::size_t comma = image.find(',', offsets), end = image.find(']', comma);
  const std::uint64_t b = std::stoull(image.substr(offsets, comma - offsets));
  const std::uint64_t e = std::stoull(image.substr(comma + 1, end - comma - 1));
  return image.substr(static_cast<std::size_t>(8 + n + b), static_cast<std::size_t>(e - b));
}

TEST(CompressedTensorsLayout, Int4GroupHandVector) {
  // pack-quantized int4, group 16 (compressors/pack_quantized/base.py and
  // helpers.py pack_to_int32): lowp's scale fp16(amax_group / 7), codes
  // round(w / s). Row 0, group 0: amax 7, scale 1 (F16 00 3C), q = 7 -7 1 -1
  // 0 3 -3 2 then 0s; offset binary q + 8 = F 1 9 7 8 B 5 A, 8...: element i
  // at bits 4i of the word, so word 0 = 0xA5B8791F (bytes 1F 79 B8 A5) and
  // word 1 = 0x88888888. Group 1: twice group 0, scale 2 (00 40), the same
  // words. Row 1 = -row 0: q + 8 = 1 F 7 9 8 5 B 6, word 0x6B5897F1 (F1 97 58
  // 6B), then 0x88888888.
  TempDir tmp;
  std::vector<float> group = {7, -7, 1, -1, 0, 3, -3, 2};
  group.resize(16, 0.0f);
  std::vector<float> w = group;
  for (float v : group) w.push_back(2 * v);
  for (std::size_t i = 0; i < 32; ++i) w.push_back(-w[i]);
  write_f32(tmp.path / "in.safetensors", "up_proj.weight", {2, 32}, w);
  QuantizeRequest req;
  req.format = "int4:group16";
  req.layout = io::Layout::kCompressedTensors;
  const fs::path out = tmp.path / "out";
  quantize_model_dir(tmp.path / "in.safetensors", out, req);
  const std::string config = file_bytes(out / "config.json");
  for (const char* key : {R"("format": "pack-quantized")", R"("num_bits": 4)", R"("type": "int")",
                          R"("strategy": "group")", R"("group_size": 16)", R"("symmetric": true)",
                          R"("scale_dtype": "torch.float16")", R"("zp_dtype": null)"}) {
    EXPECT_NE(config.find(key), std::string::npos) << key << "\n" << config;
  }
  const std::string image = file_bytes(out / "model.safetensors");
  EXPECT_NE(image.find(R"("up_proj.weight_packed":{"dtype":"I32","shape":[2,4])"),
            std::string::npos)
      << image.substr(0, 400);
  const std::string g0 = std::string("\x1F\x79\xB8\xA5", 4) + "\x88\x88\x88\x88";
  const std::string g1 = std::string("\xF1\x97\x58\x6B", 4) + "\x88\x88\x88\x88";
  EXPECT_EQ(tensor_data(image, "up_proj.weight_packed"), g0 + g0 + g1 + g1);
  EXPECT_EQ(tensor_data(image, "up_proj.weight_scale"),
            std::string("\x00\x3C\x00\x40\x00\x3C\x00\x40", 8));
  EXPECT_EQ(tensor_data(image, "up_proj.weight_shape"),
            std::string("\x02\0\0\0\0\0\0\0\x20\0\0\0\0\0\0\0", 16));
  EXPECT_EQ(image.find("weight_zero_point"), std::string::npos);
  const io::ModelDirectory d = io::open_model_directory(out);
  EXPECT_EQ(d.layout, "compressed-tensors");
  ASSERT_EQ(d.model->tensors().size(), 1u);
  EXPECT_EQ(d.model->tensors()[0].name, "up_proj.weight");
  EXPECT_EQ(d.model->tensors()[0].dtype, "int4:group16");
  EXPECT_EQ(d.model->read_f32(d.model->tensors()[0]), w);
  quantize_model_dir(out, tmp.path / "again", req);
  EXPECT_EQ(file_bytes(tmp.path / "again" / "model.safetensors"), image);
}

TEST(CompressedTensorsLayout, PackQuantizedRoundTrips) {
  // Each format: the file's codes unpacked as unpack_from_int32 does, times
  // its scales (minus its zero points, unpacked down the columns), are lowp's
  // own PackedMatrix values; lowp reads the directory back as the same format
  // and values, and re-writes it byte for byte.
  struct Case {
    const char* format;
    std::size_t rows, cols;
  };
  for (const Case c :
       {Case{"int4:group12", 3, 36}, Case{"int4:channel", 5, 40}, Case{"int8:channel", 3, 5},
        Case{"int8:group8", 2, 24}, Case{"int2:group8", 3, 24}, Case{"int4:group12:asym", 5, 36},
        Case{"int8:group16:asym", 9, 32}, Case{"int2:group8:asym", 17, 24}}) {
    SCOPED_TRACE(c.format);
    TempDir tmp;
    const std::vector<float> w = test_matrix(c.rows, c.cols, 11);
    write_f32(tmp.path / "in.safetensors", "o.weight",
              {static_cast<std::int64_t>(c.rows), static_cast<std::int64_t>(c.cols)}, w);
    QuantizeRequest req;
    req.format = c.format;
    req.layout = io::Layout::kCompressedTensors;
    quantize_model_dir(tmp.path / "in.safetensors", tmp.path / "ct", req);
    const MatrixFormat f = parse_matrix_format(c.format);
    const PackedMatrix m = PackedMatrix::quantize(f, w, c.rows, c.cols);
    std::vector<float> expected(w.size());
    m.dequantize(expected);
    const std::string image = file_bytes(tmp.path / "ct" / "model.safetensors");
    const int bits = f.element.bits;
    const std::size_t words = (c.cols * static_cast<std::size_t>(bits) + 31) / 32;
    const std::vector<int> q =
        unpack_int32_rows(tensor_data(image, "o.weight_packed"), c.rows, words, c.cols, bits);
    const std::string scale = tensor_data(image, "o.weight_scale");
    const std::size_t groups =
        f.scheme == MatrixScheme::kGroup
            ? (c.cols + static_cast<std::size_t>(f.group) - 1) / static_cast<std::size_t>(f.group)
            : 1;
    std::vector<int> zero(c.rows * groups, 0);
    if (f.zero_points()) {
      // Packed down each column: transpose, unpack the rows, transpose back.
      const std::string z = tensor_data(image, "o.weight_zero_point");
      const std::size_t zwords = (c.rows * static_cast<std::size_t>(bits) + 31) / 32;
      std::string transposed;
      for (std::size_t k = 0; k < groups; ++k)
        for (std::size_t wd = 0; wd < zwords; ++wd)
          transposed += z.substr((wd * groups + k) * 4, 4);
      const std::vector<int> zt = unpack_int32_rows(transposed, groups, zwords, c.rows, bits);
      for (std::size_t r = 0; r < c.rows; ++r)
        for (std::size_t k = 0; k < groups; ++k) zero[r * groups + k] = zt[k * c.rows + r];
    }
    for (std::size_t r = 0; r < c.rows; ++r) {
      for (std::size_t i = 0; i < c.cols; ++i) {
        const std::size_t k = r * groups + i * groups / c.cols;
        float s = 0;
        if (f.scheme == MatrixScheme::kChannel) {
          std::uint32_t b = 0;
          for (std::size_t j = 0; j < 4; ++j)
            b |= std::uint32_t{static_cast<unsigned char>(scale[r * 4 + j])} << (8 * j);
          s = std::bit_cast<float>(b);
        } else {
          const auto b =
              static_cast<std::uint32_t>(static_cast<unsigned char>(scale[k * 2]) |
                                         static_cast<unsigned char>(scale[k * 2 + 1]) << 8);
          s = decode_f32(kFp16, b);
        }
        EXPECT_EQ(static_cast<float>(q[r * c.cols + i] - zero[k]) * s, expected[r * c.cols + i])
            << r << " " << i;
      }
    }
    const io::ModelDirectory d = io::open_model_directory(tmp.path / "ct");
    ASSERT_EQ(d.model->tensors().size(), 1u);
    EXPECT_EQ(d.model->tensors()[0].dtype, c.format);
    EXPECT_EQ(d.model->read_f32(d.model->tensors()[0]), expected);
    quantize_model_dir(tmp.path / "ct", tmp.path / "again", req);
    EXPECT_EQ(file_bytes(tmp.path / "again" / "model.safetensors"), image);
  }
}

TEST(CompressedTensorsLayout, GroupsThatDoNotDivideTheRowAreKept) {
  // A reader finds the group size as cols / groups: a [2, 40] matrix in
  // groups of 16 (3 groups, the last short) is left unquantized and listed in
  // "ignore"; [2, 48] is quantized.
  TempDir tmp;
  io::write_safetensors(
      tmp.path / "in.safetensors",
      {io::f32_output("a.weight", {2, 40}), io::f32_output("b.weight", {2, 48})}, {},
      [&](std::size_t i) { return io::f32_bytes(test_matrix(2, i == 0 ? 40 : 48, 3)); });
  QuantizeRequest req;
  req.format = "int4:group16";
  req.layout = io::Layout::kCompressedTensors;
  quantize_model_dir(tmp.path / "in.safetensors", tmp.path / "ct", req);
  const io::ModelDirectory d = io::open_model_directory(tmp.path / "ct");
  ASSERT_EQ(d.model->tensors().size(), 2u);
  EXPECT_EQ(d.model->tensors()[0].name, "a.weight");
  EXPECT_EQ(d.model->tensors()[0].dtype, "F32");
  EXPECT_EQ(d.model->tensors()[1].name, "b.weight");
  EXPECT_EQ(d.model->tensors()[1].dtype, "int4:group16");
  EXPECT_NE(file_bytes(tmp.path / "ct" / "config.json").find(R"("ignore": [
      "a"
    ])"),
            std::string::npos)
      << file_bytes(tmp.path / "ct" / "config.json");
}

// The first line of the error opening `path`, or "" when it opens.
std::string open_error(const fs::path& path) {
  try {
    io::open_model(path);
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    return what;
  }
  return "";
}

TEST(CompressedTensorsLayout, BadPartsAreOneLineErrors) {
  TempDir tmp;
  const fs::path f = tmp.path / "bad.safetensors";
  const auto contains = [](const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
  };
  // NVFP4: packed [2, 8] (cols 16) needs F8_E4M3 [2, 1] scales and an F32 global scale.
  const RawPart packed{{"a.weight_packed", "U8", {2, 8}, 0}, std::vector<std::byte>(16)};
  const RawPart scale{{"a.weight_scale", "F8_E4M3", {2, 1}, 0}, std::vector<std::byte>(2)};
  const RawPart global{{"a.weight_global_scale", "F32", {1}, 0}, le_bytes(0x43E00000u, 4)};
  write_raw(f, {packed, scale, global});
  EXPECT_EQ(open_error(f), "");
  write_raw(f, {packed, global});
  std::string e = open_error(f);
  EXPECT_TRUE(contains(e, "'a.weight_packed'") && contains(e, "'a.weight_scale' (F8_E4M3") &&
              contains(e, "missing"))
      << e;
  write_raw(f, {packed, scale});
  e = open_error(f);
  EXPECT_TRUE(contains(e, "'a.weight_global_scale'") && contains(e, "missing")) << e;
  write_raw(
      f, {packed, {{"a.weight_scale", "F8_E4M3", {2, 2}, 0}, std::vector<std::byte>(4)}, global});
  e = open_error(f);
  EXPECT_TRUE(contains(e, "must be F8_E4M3 of shape [2, 1]") && contains(e, "[2, 2]")) << e;
  write_raw(f, {packed, {{"a.weight_scale", "U8", {2, 1}, 0}, std::vector<std::byte>(2)}, global});
  e = open_error(f);
  EXPECT_TRUE(contains(e, "must be F8_E4M3")) << e;
  write_raw(f, {packed, scale, {{"a.weight_global_scale", "F16", {1}, 0}, le_bytes(0x3C00, 2)}});
  e = open_error(f);
  EXPECT_TRUE(contains(e, "must be one F32 value")) << e;
  write_raw(f, {packed, scale, {{"a.weight_global_scale", "F32", {1}, 0}, le_bytes(0, 4)}});
  e = open_error(f);
  EXPECT_TRUE(contains(e, "finite and positive")) << e;

  // pack-quantized: int4 [2, 16] is 2 words per row, scales [2, G], shape I64 [2].
  const RawPart ipacked{{"b.weight_packed", "I32", {2, 2}, 0}, std::vector<std::byte>(16)};
  const RawPart iscale{{"b.weight_scale", "F16", {2, 1}, 0}, std::vector<std::byte>(4)};
  const RawPart ishape{{"b.weight_shape", "I64", {2}, 0}, cat({le_bytes(2, 8), le_bytes(16, 8)})};
  write_raw(f, {ipacked, iscale, ishape});
  EXPECT_EQ(open_error(f), "");
  EXPECT_EQ(io::open_model(f)->tensors()[0].dtype, "int4:channel");
  write_raw(f, {ipacked, ishape});
  e = open_error(f);
  EXPECT_TRUE(contains(e, "'b.weight_packed'") && contains(e, "'b.weight_scale'") &&
              contains(e, "missing"))
      << e;
  write_raw(f, {ipacked, iscale});
  e = open_error(f);
  EXPECT_TRUE(contains(e, "'b.weight_shape' (I64 [2]) is missing")) << e;
  write_raw(f, {ipacked,
                iscale,
                {{"b.weight_shape", "I64", {2}, 0}, cat({le_bytes(3, 8), le_bytes(16, 8)})}});
  e = open_error(f);
  EXPECT_TRUE(contains(e, "does not fit the packed [2, 2]")) << e;
  // 3 words of 14 values: 6- or 7-bit codes, not 2, 4, 8.
  write_raw(f, {{{"b.weight_packed", "I32", {2, 3}, 0}, std::vector<std::byte>(24)},
                iscale,
                {{"b.weight_shape", "I64", {2}, 0}, cat({le_bytes(2, 8), le_bytes(14, 8)})}});
  e = open_error(f);
  EXPECT_TRUE(contains(e, "not 2-, 4- or 8-bit codes")) << e;
  write_raw(f,
            {ipacked, {{"b.weight_scale", "F16", {2, 3}, 0}, std::vector<std::byte>(12)}, ishape});
  e = open_error(f);
  EXPECT_TRUE(contains(e, "groups dividing the 16 columns")) << e;
  write_raw(f,
            {ipacked, {{"b.weight_scale", "I32", {2, 1}, 0}, std::vector<std::byte>(8)}, ishape});
  e = open_error(f);
  EXPECT_TRUE(contains(e, "must be F32, F16 or BF16")) << e;
  write_raw(
      f, {ipacked,
          {{"b.weight_scale", "F32", {2, 2}, 0}, cat({le_bytes(0x3F800001u, 4), le_bytes(0, 12)})},
          ishape});
  e = open_error(f);  // 1 + 2^-23 is no FP16 value
  EXPECT_TRUE(contains(e, "not exactly an FP16 value")) << e;
  write_raw(f, {ipacked,
                {{"b.weight_scale", "F16", {2, 2}, 0}, std::vector<std::byte>(8)},
                ishape,
                {{"b.weight_zero_point", "I32", {2, 2}, 0}, std::vector<std::byte>(16)}});
  e = open_error(f);
  EXPECT_TRUE(contains(e, "'b.weight_zero_point' must be I32 [1, 2]")) << e;

  // A directory whose config names a compressed-tensors format its tensors do not hold.
  const fs::path dir = tmp.path / "dir";
  fs::create_directories(dir);
  write_f32(dir / "model.safetensors", "c.weight", {2, 16}, std::vector<float>(32, 1.0f));
  std::ofstream(dir / "config.json")
      << R"({"quantization_config": {"quant_method": "compressed-tensors", "format": "pack-quantized"}})";
  try {
    io::open_model_directory(dir);
    ADD_FAILURE() << "opened";
  } catch (const Error& err) {
    EXPECT_TRUE(contains(err.what(), "pack-quantized") && contains(err.what(), "_packed"))
        << err.what();
  }
}

TEST(CompressedTensorsLayout, ForeignInt4ReadsAsCompressedTensorsWrites) {
  // A file as llm-compressor writes it (BF16 scales, -8 codes, which lowp's
  // symmetric quantizer never makes): [1, 16] int4 channel, q = -8 -1 0 1 7 2
  // -2 3 then 0s, stored q + 8 = 0 7 8 9 F A 6 B, 8...: words 0xB6AF9870,
  // 0x88888888; scale 0.5 (BF16 0x3F00). Dequantized q * 0.5.
  TempDir tmp;
  const fs::path f = tmp.path / "ct.safetensors";
  write_raw(f, {{{"m.weight_packed", "I32", {1, 2}, 0},
                 cat({le_bytes(0xB6AF9870u, 4), le_bytes(0x88888888u, 4)})},
                {{"m.weight_scale", "BF16", {1, 1}, 0}, le_bytes(0x3F00, 2)},
                {{"m.weight_shape", "I64", {2}, 0}, cat({le_bytes(1, 8), le_bytes(16, 8)})}});
  const std::unique_ptr<io::ModelReader> m = io::open_model(f);
  EXPECT_EQ(m->layout(), "compressed-tensors");
  ASSERT_EQ(m->tensors().size(), 1u);
  EXPECT_EQ(m->tensors()[0].dtype, "int4:channel");
  std::vector<float> expected = {-4.0f, -0.5f, 0.0f, 0.5f, 3.5f, 1.0f, -1.0f, 1.5f};
  expected.resize(16, 0.0f);
  EXPECT_EQ(m->read_f32(m->tensors()[0]), expected);
}

}  // namespace
}  // namespace lowp
