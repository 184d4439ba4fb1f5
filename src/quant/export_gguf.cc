// A transformer as llama.cpp's GGUF (lowp/quant/export_gguf.h).
#include "lowp/quant/export_gguf.h"

#include <bit>
#include <cstring>
#include <map>
#include <string>
#include <utility>

#include "lowp/block/ggml.h"
#include "lowp/block/ggml_quants.h"
#include "lowp/block/mx.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/kernels.h"
#include "lowp/nn/model_files.h"

namespace lowp {
namespace {

using nn::TensorRole;

struct TypeInfo {
  const char* name;         // lowp's spelling (-f)
  const char* gguf;         // ggml's
  std::size_t block;        // elements per block along a row
  std::uint32_t file_type;  // llama.cpp's general.file_type (LLAMA_FTYPE_*)
  bool four_bit;
};

constexpr TypeInfo kTypes[] = {
    {"fp32", "F32", 1, 0, false},     {"fp16", "F16", 1, 1, false},
    {"bf16", "BF16", 1, 32, false},   {"q8_0", "Q8_0", 32, 7, false},
    {"q4_0", "Q4_0", 32, 2, true},    {"q4_k", "Q4_K", 256, 14, true},
    {"mxfp4", "MXFP4", 32, 38, true},
};

const TypeInfo& type_info(const std::string& name) {
  for (const TypeInfo& t : kTypes) {
    if (name == t.name) return t;
  }
  std::string known;
  for (const TypeInfo& t : kTypes) known += std::string(known.empty() ? "" : ", ") + t.name;
  throw Error("GGUF export: unknown type " + quoted(name) + " (known: " + known + ")");
}

// The GGUF bytes of `x` (rows of `cols` values) in ggml type `gguf`.
std::vector<std::byte> encode(const std::string& gguf, std::span<const float> x, std::size_t cols) {
  std::vector<std::byte> out;
  if (gguf == "F32") {
    out.resize(x.size() * 4);
    if (!x.empty()) std::memcpy(out.data(), x.data(), out.size());
  } else if (gguf == "F16" || gguf == "BF16") {
    // Round to nearest even, as ggml's converters do.
    out.resize(x.size() * 2);
    encode_f32(gguf == "F16" ? kFp16 : kBf16, x, out.data(), {}, 0);
  } else if (gguf == "MXFP4") {
    const std::int64_t shape[2] = {static_cast<std::int64_t>(x.size() / cols),
                                   static_cast<std::int64_t>(cols)};
    BlockFormat mxfp4;
    parse_block_format("mxfp4", mxfp4);
    const PackedTensor packed = quantize(mxfp4, x, shape, -1, {});
    const std::vector<GgmlBlockMxfp4> blocks = to_ggml_mxfp4(packed);
    out.resize(blocks.size() * sizeof(GgmlBlockMxfp4));
    if (!blocks.empty()) std::memcpy(out.data(), blocks.data(), out.size());
  } else {
    const std::optional<GgmlQuantInfo> info = ggml_quant_info(gguf);
    if (!info) throw Error("GGUF export: no encoder for " + gguf);
    out = ggml_quantize(info->type, x);
  }
  return out;
}

std::size_t block_of(const std::string& gguf) {
  if (gguf == "F32" || gguf == "F16" || gguf == "BF16") return 1;
  const std::optional<GgmlQuantInfo> info = ggml_quant_info(gguf);
  return info ? info->block_elements : 32;
}

}  // namespace

std::vector<GgufExportTensor> export_gguf(const nn::Transformer& model,
                                          const std::filesystem::path& out,
                                          const GgufExportRequest& req) {
  const TypeInfo& type = type_info(req.type);
  const nn::TransformerConfig& c = model.config();
  std::string arch;
  if (c.family == "llama" || c.family == "mistral") {
    arch = "llama";
  } else if (c.family == "qwen2" || c.family == "qwen3" || c.family == "gpt2") {
    arch = c.family;
  } else {
    throw Error("GGUF export: llama.cpp has no architecture for a " + c.family +
                " model (lowp's own GPT: `lowp quantize FILE -o X.gguf` writes it with lowp's "
                "names)");
  }
  const bool gpt2 = arch == "gpt2";
  const std::string p = arch + ".";
  std::vector<io::GgufKv> kv;
  kv.emplace_back("general.architecture", io::GgufValue::string(arch));
  kv.emplace_back("general.name", io::GgufValue::string(req.name.empty() ? arch : req.name));
  kv.emplace_back("general.file_type", io::GgufValue::u32(type.file_type));
  if (type.block > 1) kv.emplace_back("general.quantization_version", io::GgufValue::u32(2));
  auto u32 = [](int v) { return io::GgufValue::u32(static_cast<std::uint32_t>(v)); };
  kv.emplace_back(p + "context_length", u32(c.n_ctx));
  kv.emplace_back(p + "embedding_length", u32(c.d_model));
  kv.emplace_back(p + "block_count", u32(c.n_layer));
  kv.emplace_back(p + "feed_forward_length", u32(c.d_ff));
  kv.emplace_back(p + "attention.head_count", u32(c.n_head));
  kv.emplace_back(p + "attention.head_count_kv", u32(c.n_kv_head));
  if (gpt2) {
    kv.emplace_back(p + "attention.layer_norm_epsilon", io::GgufValue::f32(c.norm_eps));
  } else {
    kv.emplace_back(p + "attention.layer_norm_rms_epsilon", io::GgufValue::f32(c.norm_eps));
    kv.emplace_back(p + "rope.freq_base", io::GgufValue::f32(static_cast<float>(c.rope_theta)));
    kv.emplace_back(p + "rope.dimension_count", u32(c.head_dim));
    if (c.head_dim * c.n_head != c.d_model) {
      kv.emplace_back(p + "attention.key_length", u32(c.head_dim));
      kv.emplace_back(p + "attention.value_length", u32(c.head_dim));
    }
    if (c.rope_divisors.empty() && c.rope_scaling == nn::RopeScaling::kLinear) {
      kv.emplace_back(p + "rope.scaling.type", io::GgufValue::string("linear"));
      kv.emplace_back(p + "rope.scaling.factor",
                      io::GgufValue::f32(static_cast<float>(c.rope_factor)));
    }
  }
  kv.emplace_back(p + "vocab_size", u32(c.vocab_size));
  for (const io::GgufKv& t : req.tokenizer_kv) {
    if (!t.first.starts_with("tokenizer."))
      throw Error("GGUF export: tokenizer key " + quoted(t.first) + " is not tokenizer.*");
    kv.push_back(t);
  }

  // Every tensor llama.cpp expects, in its order.
  struct Item {
    io::OutputTensor out;
    const std::vector<float>* values = nullptr;  // the model's; null: `owned`
    std::vector<float> owned;                    // permuted q/k, rope factors
    std::size_t cols = 1;
  };
  std::vector<Item> items;
  const nn::TransformerWeights& w = model.weights();
  const bool permute = arch == "llama";
  auto matrix_type = [&](TensorRole role, std::size_t cols) -> std::string {
    std::string t = type.gguf;
    if (role == TensorRole::kHead && type.four_bit) t = "Q6_K";
    if (cols % block_of(t) != 0) t = cols % 32 == 0 ? "Q8_0" : "F16";
    return t;
  };
  for (const nn::TensorName& tn : nn::tensor_names(gpt2 ? "gguf-gpt2" : "gguf-llama")) {
    const std::vector<std::int64_t> shape = nn::role_shape(tn.role, c);
    if (shape.empty()) continue;
    const bool layered = tn.name.find("{}") != std::string_view::npos;
    const std::size_t layers = layered ? static_cast<std::size_t>(c.n_layer) : 1;
    for (std::size_t l = 0; l < layers; ++l) {
      Item it;
      std::string name(tn.name);
      if (layered) name.replace(name.find("{}"), 2, std::to_string(l));
      it.values = &nn::role_values(w, tn.role, l);
      it.cols = shape.size() == 2 ? static_cast<std::size_t>(shape[1]) : 1;
      if (permute && (tn.role == TensorRole::kQW || tn.role == TensorRole::kQB ||
                      tn.role == TensorRole::kKW || tn.role == TensorRole::kKB)) {
        const bool is_q = tn.role == TensorRole::kQW || tn.role == TensorRole::kQB;
        it.owned =
            nn::gguf_permute_qk(*it.values, static_cast<std::size_t>(is_q ? c.n_head : c.n_kv_head),
                                static_cast<std::size_t>(c.head_dim), it.cols);
        it.values = nullptr;
      }
      const std::string t = shape.size() == 2 ? matrix_type(tn.role, it.cols) : "F32";
      it.out = io::OutputTensor{name, t, shape, io::gguf_tensor_nbytes(t, shape)};
      items.push_back(std::move(it));
    }
  }
  if (!gpt2 && (!c.rope_divisors.empty() || c.rope_scaling == nn::RopeScaling::kLlama3)) {
    Item it;
    const std::vector<double> f = nn::rope_frequency_divisors(c);
    it.owned.assign(f.begin(), f.end());
    const std::vector<std::int64_t> shape = {static_cast<std::int64_t>(f.size())};
    it.out =
        io::OutputTensor{"rope_freqs.weight", "F32", shape, io::gguf_tensor_nbytes("F32", shape)};
    items.push_back(std::move(it));
  }
  std::vector<io::OutputTensor> outputs;
  std::vector<GgufExportTensor> written;
  for (const Item& it : items) {
    outputs.push_back(it.out);
    written.push_back({it.out.name, it.out.dtype, it.out.shape, it.out.nbytes});
  }
  io::write_gguf(out, kv, outputs, [&](std::size_t i) {
    const Item& it = items[i];
    return encode(it.out.dtype, it.values == nullptr ? it.owned : *it.values, it.cols);
  });
  return written;
}

}  // namespace lowp
