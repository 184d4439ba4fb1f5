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
#include "lowp/io/gguf.h"
#include "lowp/kernels.h"
#include "lowp/nn/model_files.h"
#include "lowp/storage/packed_matrix.h"

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
    {"mxfp4", "MXFP4", 32, 38, true}, {"nvfp4", "NVFP4", 64, 39, true},
};

const TypeInfo& type_info(const std::string& name) {
  for (const TypeInfo& t : kTypes) {
    if (name == t.name) return t;
  }
  std::string known;
  for (const TypeInfo& t : kTypes) known += std::string(known.empty() ? "" : ", ") + t.name;
  throw Error("GGUF export: unknown type " + quoted(name) + " (known: " + known + ")");
}

// The GGUF bytes of `x` (rows of `cols` values) in ggml type `gguf`. NVFP4
// sets *tensor_scale to the scale its F32 ".scale" tensor holds.
std::vector<std::byte> encode(const std::string& gguf, std::span<const float> x, std::size_t cols,
                              float* tensor_scale) {
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
  } else if (gguf == "NVFP4") {
    // lowp's NVFP4 rule (lowp/block/mx.h) in ggml's blocks of 64, its FP32
    // tensor scale in the tensor's ".scale" tensor (io::gguf_nvfp4_scale_name).
    const std::int64_t shape[2] = {static_cast<std::int64_t>(x.size() / cols),
                                   static_cast<std::int64_t>(cols)};
    BlockFormat nvfp4;
    parse_block_format("nvfp4", nvfp4);
    const PackedTensor packed = quantize(nvfp4, x, shape, -1, {});
    const std::vector<GgmlBlockNvfp4> blocks = to_ggml_nvfp4(packed);
    out.resize(blocks.size() * sizeof(GgmlBlockNvfp4));
    if (!blocks.empty()) std::memcpy(out.data(), blocks.data(), out.size());
    *tensor_scale = packed.tensor_scale;
  } else {
    const std::optional<GgmlQuantInfo> info = ggml_quant_info(gguf);
    if (!info) throw Error("GGUF export: no encoder for " + gguf);
    out = ggml_quantize(info->type, x);
  }
  return out;
}

// Throws unless ggml type `gguf` stores matrices of format f (rows of `cols`)
// as they are (see GgufExportRequest::packed).
void check_packed(const std::string& gguf, const MatrixFormat& f, std::size_t cols,
                  const std::string& name) {
  const bool int_group32 = f.scheme == MatrixScheme::kGroup && f.group == 32 && !f.asymmetric &&
                           f.element.kind == Kind::kInt && cols % 32 == 0;
  BlockFormat mxfp4;
  parse_block_format("mxfp4", mxfp4);
  const bool ok =
      (gguf == "F32" && f.name == "fp32") || (gguf == "F16" && f.name == "fp16") ||
      (gguf == "BF16" && f.name == "bf16") ||
      (gguf == "Q8_0" && int_group32 && f.element.bits == 8) ||
      (gguf == "Q4_0" && int_group32 && f.element.bits == 4) ||
      (gguf == "MXFP4" && f.scheme == MatrixScheme::kBlock && f.block == mxfp4 && cols % 32 == 0);
  if (!ok) {
    throw Error("GGUF export: " + name + " is stored as " + f.name + ", which " + gguf +
                " cannot hold as it is");
  }
}

// The GGUF bytes of a packed matrix (check_packed holds).
std::vector<std::byte> encode_packed(const std::string& gguf, const PackedMatrix& m,
                                     const std::string& name) {
  const std::size_t rows = m.rows(), cols = m.cols();
  check_packed(gguf, m.format(), cols, name);
  std::vector<std::byte> out;
  if (gguf == "F32" || gguf == "F16" || gguf == "BF16") {
    out.resize(m.codes().size());
    if (!out.empty()) std::memcpy(out.data(), m.codes().data(), out.size());
    return out;
  }
  const std::size_t groups = cols / 32;
  if (gguf == "Q8_0") {
    out.resize(rows * groups * sizeof(GgmlBlockQ8_0));
    auto* blocks = reinterpret_cast<GgmlBlockQ8_0*>(out.data());
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t g = 0; g < groups; ++g) {
        GgmlBlockQ8_0& b = blocks[r * groups + g];
        b.d = m.scales().group[r * groups + g];
        std::memcpy(b.qs, m.codes().data() + r * cols + g * 32, 32);
      }
    }
    return out;
  }
  if (gguf == "Q4_0") {
    out.resize(rows * groups * sizeof(GgmlBlockQ4_0));
    auto* blocks = reinterpret_cast<GgmlBlockQ4_0*>(out.data());
    const std::size_t row_bytes = cols / 2;
    for (std::size_t r = 0; r < rows; ++r) {
      const std::span<const std::uint8_t> codes = m.codes().subspan(r * row_bytes, row_bytes);
      for (std::size_t g = 0; g < groups; ++g) {
        GgmlBlockQ4_0& b = blocks[r * groups + g];
        b.d = m.scales().group[r * groups + g];
        for (std::size_t j = 0; j < 16; ++j) {
          // A 4-bit two's complement code c in -7..7 is ggml's q = c + 8.
          const auto q = [&](std::size_t k) {
            return static_cast<std::uint8_t>((unpack_code(4, codes, g * 32 + k) + 8) & 0x0F);
          };
          b.qs[j] = static_cast<std::uint8_t>(q(j) | (q(j + 16) << 4));
        }
      }
    }
    return out;
  }
  if (gguf == "MXFP4") {
    PackedTensor t;
    parse_block_format("mxfp4", t.format);
    t.shape = {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols)};
    t.axis = 1;
    t.elements.assign(m.codes().begin(), m.codes().end());
    t.scales = m.scales().block;
    const std::vector<GgmlBlockMxfp4> blocks = to_ggml_mxfp4(t);
    out.resize(blocks.size() * sizeof(GgmlBlockMxfp4));
    if (!blocks.empty()) std::memcpy(out.data(), blocks.data(), out.size());
    return out;
  }
  return out;
}

// The rows of m in the order gguf_permute_qk puts them.
PackedMatrix permute_rows(const PackedMatrix& m, std::size_t heads, std::size_t head_dim) {
  const std::size_t rows = m.rows();
  std::vector<float> index(rows);
  for (std::size_t r = 0; r < rows; ++r) index[r] = static_cast<float>(r);
  const std::vector<float> order = nn::gguf_permute_qk(index, heads, head_dim, 1);
  const std::size_t rb = PackedMatrix::row_bytes(m.format(), m.cols());
  const MatrixScales& s = m.scales();
  const std::size_t groups = rows == 0 ? 0 : s.group.size() / rows;
  const std::size_t blocks = rows == 0 ? 0 : s.block.size() / rows;
  std::vector<std::uint8_t> codes(m.codes().size());
  MatrixScales out = s;
  for (std::size_t r = 0; r < rows; ++r) {
    const auto from = static_cast<std::size_t>(order[r]);
    std::memcpy(codes.data() + r * rb, m.codes().data() + from * rb, rb);
    if (!s.row.empty()) out.row[r] = s.row[from];
    for (std::size_t g = 0; g < groups; ++g) out.group[r * groups + g] = s.group[from * groups + g];
    for (std::size_t g = 0; g < groups && !s.zero.empty(); ++g) {
      out.zero[r * groups + g] = s.zero[from * groups + g];
    }
    for (std::size_t b = 0; b < blocks; ++b) out.block[r * blocks + b] = s.block[from * blocks + b];
  }
  return PackedMatrix::from_codes(m.format(), rows, m.cols(), std::move(codes), std::move(out));
}

// The runtime's matrix behind a GGUF matrix role (null for the others).
std::optional<std::pair<int, nn::LinearKind>> linear_of(TensorRole role, std::size_t layer,
                                                        const nn::TransformerConfig& c) {
  const auto l = static_cast<int>(layer);
  switch (role) {
    case TensorRole::kQkvW:
      return std::pair{l, nn::LinearKind::kQkv};
    case TensorRole::kQW:
      return std::pair{l, nn::LinearKind::kQ};
    case TensorRole::kKW:
      return std::pair{l, nn::LinearKind::kK};
    case TensorRole::kVW:
      return std::pair{l, nn::LinearKind::kV};
    case TensorRole::kOW:
      return std::pair{l, nn::LinearKind::kO};
    case TensorRole::kFcW:
      return std::pair{l, nn::LinearKind::kFc};
    case TensorRole::kGateW:
      return std::pair{l, nn::LinearKind::kGate};
    case TensorRole::kDownW:
      return std::pair{l, nn::LinearKind::kDown};
    case TensorRole::kHead:
      if (!c.tied_head) return std::pair{c.n_layer, nn::LinearKind::kHead};
      return std::nullopt;
    default:
      return std::nullopt;
  }
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
  // llama.cpp takes its vocabulary size from the token list: a model whose
  // embedding has rows past the tokenizer's (padded for speed, as Qwen's) gets
  // unused "[PAD<i>]" tokens up to its size, as llama.cpp's converter writes.
  std::size_t listed = 0;
  for (const io::GgufKv& t : req.tokenizer_kv) {
    if (t.first == "tokenizer.ggml.tokens") listed = t.second.items.size();
  }
  const auto vocab = static_cast<std::size_t>(c.vocab_size);
  if (listed > vocab) {
    throw Error("GGUF export: the tokenizer has " + std::to_string(listed) +
                " tokens, more than the model's vocabulary of " + std::to_string(vocab));
  }
  for (io::GgufKv t : req.tokenizer_kv) {
    if (!t.first.starts_with("tokenizer."))
      throw Error("GGUF export: tokenizer key " + quoted(t.first) + " is not tokenizer.*");
    for (std::size_t i = listed; listed > 0 && i < vocab; ++i) {
      if (t.first == "tokenizer.ggml.tokens") {
        t.second.items.push_back(io::GgufValue::string("[PAD" + std::to_string(i) + "]"));
      } else if (t.first == "tokenizer.ggml.token_type") {
        t.second.items.push_back(io::GgufValue::i32(5));  // unused
      } else if (t.first == "tokenizer.ggml.scores") {
        t.second.items.push_back(io::GgufValue::f32(-1000.0f));
      }
    }
    kv.push_back(std::move(t));
  }

  // Every tensor llama.cpp expects, in its order.
  struct Item {
    io::OutputTensor out;
    const std::vector<float>* values = nullptr;  // the model's; null: `owned`
    std::vector<float> owned;                    // permuted q/k, rope factors
    std::optional<PackedMatrix> packed;          // written as it is (req.packed)
    std::size_t cols = 1;
    bool scale_of_previous = false;  // the F32 scale of the NVFP4 tensor before it
  };
  std::vector<Item> items;
  const nn::TransformerWeights& w = model.weights();
  const bool permute = arch == "llama";
  auto matrix_type = [&](TensorRole role, std::size_t cols) -> std::string {
    std::string t = type.gguf;
    if (role == TensorRole::kHead && type.four_bit) t = "Q6_K";
    // NVFP4 for the linear layers alone (as ModelOpt quantizes them, and as
    // llama.cpp reads a ".scale" tensor beside them): the token embedding in Q8_0.
    if (t == "NVFP4" && !linear_of(role, 0, c)) t = "Q8_0";
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
      const auto linear = linear_of(tn.role, l, c);
      if (req.packed && linear && !(tn.role == TensorRole::kHead && type.four_bit)) {
        const PackedMatrix& m = model.linear_weight(linear->first, linear->second);
        const bool qk = permute && (tn.role == TensorRole::kQW || tn.role == TensorRole::kKW);
        it.packed =
            qk ? permute_rows(
                     m,
                     static_cast<std::size_t>(tn.role == TensorRole::kQW ? c.n_head : c.n_kv_head),
                     static_cast<std::size_t>(c.head_dim))
               : m;
        check_packed(t, m.format(), m.cols(), name);  // before anything is written
      }
      it.out = io::OutputTensor{name, t, shape, io::gguf_tensor_nbytes(t, shape)};
      items.push_back(std::move(it));
      if (t == "NVFP4") {
        Item scale;
        scale.out = io::OutputTensor{io::gguf_nvfp4_scale_name(name), "F32", {1}, 4};
        scale.scale_of_previous = true;
        items.push_back(std::move(scale));
      }
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
  float tensor_scale = 1.0f;  // of the last NVFP4 tensor written
  io::write_gguf(out, kv, outputs, [&](std::size_t i) {
    const Item& it = items[i];
    if (it.scale_of_previous) {
      std::vector<std::byte> bytes(4);
      std::memcpy(bytes.data(), &tensor_scale, 4);
      return bytes;
    }
    if (it.packed) return encode_packed(it.out.dtype, *it.packed, it.out.name);
    return encode(it.out.dtype, it.values == nullptr ? it.owned : *it.values, it.cols,
                  &tensor_scale);
  });
  return written;
}

}  // namespace lowp
