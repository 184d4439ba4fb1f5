// The runtime's model files: one tensor-name table per layout, the
// hyperparameters of each family, and the loaders (lowp/nn/model_files.h).
#include "lowp/nn/model_files.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "lowp/error.h"
#include "lowp/io/gguf.h"

namespace lowp::nn {
namespace {

using R = TensorRole;
using Shape = std::vector<std::int64_t>;

constexpr TensorName kLowpGpt[] = {
    {R::kTokEmb, "wte.weight"},          {R::kPosEmb, "wpe.weight"},
    {R::kNormFW, "ln_f.weight"},         {R::kNormFB, "ln_f.bias"},
    {R::kHead, "lm_head.weight"},        {R::kNorm1W, "h.{}.ln_1.weight"},
    {R::kNorm1B, "h.{}.ln_1.bias"},      {R::kQkvW, "h.{}.attn.c_attn.weight"},
    {R::kQkvB, "h.{}.attn.c_attn.bias"}, {R::kOW, "h.{}.attn.c_proj.weight"},
    {R::kOB, "h.{}.attn.c_proj.bias"},   {R::kNorm2W, "h.{}.ln_2.weight"},
    {R::kNorm2B, "h.{}.ln_2.bias"},      {R::kFcW, "h.{}.mlp.c_fc.weight"},
    {R::kFcB, "h.{}.mlp.c_fc.bias"},     {R::kDownW, "h.{}.mlp.c_proj.weight"},
    {R::kDownB, "h.{}.mlp.c_proj.bias"},
};

// GPT-2 as Hugging Face stores it: Conv1D matrices [in, out]. Names may carry
// a "transformer." prefix (the loader finds out which).
constexpr TensorName kHfGpt2[] = {
    {R::kTokEmb, "wte.weight"},          {R::kPosEmb, "wpe.weight"},
    {R::kNormFW, "ln_f.weight"},         {R::kNormFB, "ln_f.bias"},
    {R::kHead, "lm_head.weight"},        {R::kNorm1W, "h.{}.ln_1.weight"},
    {R::kNorm1B, "h.{}.ln_1.bias"},      {R::kQkvW, "h.{}.attn.c_attn.weight", true},
    {R::kQkvB, "h.{}.attn.c_attn.bias"}, {R::kOW, "h.{}.attn.c_proj.weight", true},
    {R::kOB, "h.{}.attn.c_proj.bias"},   {R::kNorm2W, "h.{}.ln_2.weight"},
    {R::kNorm2B, "h.{}.ln_2.bias"},      {R::kFcW, "h.{}.mlp.c_fc.weight", true},
    {R::kFcB, "h.{}.mlp.c_fc.bias"},     {R::kDownW, "h.{}.mlp.c_proj.weight", true},
    {R::kDownB, "h.{}.mlp.c_proj.bias"},
};

constexpr TensorName kHfLlama[] = {
    {R::kTokEmb, "model.embed_tokens.weight"},
    {R::kNormFW, "model.norm.weight"},
    {R::kHead, "lm_head.weight"},
    {R::kNorm1W, "model.layers.{}.input_layernorm.weight"},
    {R::kQW, "model.layers.{}.self_attn.q_proj.weight"},
    {R::kQB, "model.layers.{}.self_attn.q_proj.bias"},
    {R::kKW, "model.layers.{}.self_attn.k_proj.weight"},
    {R::kKB, "model.layers.{}.self_attn.k_proj.bias"},
    {R::kVW, "model.layers.{}.self_attn.v_proj.weight"},
    {R::kVB, "model.layers.{}.self_attn.v_proj.bias"},
    {R::kOW, "model.layers.{}.self_attn.o_proj.weight"},
    {R::kOB, "model.layers.{}.self_attn.o_proj.bias"},
    {R::kQNorm, "model.layers.{}.self_attn.q_norm.weight"},
    {R::kKNorm, "model.layers.{}.self_attn.k_norm.weight"},
    {R::kNorm2W, "model.layers.{}.post_attention_layernorm.weight"},
    {R::kGateW, "model.layers.{}.mlp.gate_proj.weight"},
    {R::kFcW, "model.layers.{}.mlp.up_proj.weight"},
    {R::kDownW, "model.layers.{}.mlp.down_proj.weight"},
    {R::kGateB, "model.layers.{}.mlp.gate_proj.bias"},
    {R::kFcB, "model.layers.{}.mlp.up_proj.bias"},
    {R::kDownB, "model.layers.{}.mlp.down_proj.bias"},
};

// llama.cpp's tensor names (llama, qwen2 and qwen3 share them).
constexpr TensorName kGgufLlama[] = {
    {R::kTokEmb, "token_embd.weight"},
    {R::kNormFW, "output_norm.weight"},
    {R::kHead, "output.weight"},
    {R::kNorm1W, "blk.{}.attn_norm.weight"},
    {R::kQW, "blk.{}.attn_q.weight"},
    {R::kQB, "blk.{}.attn_q.bias"},
    {R::kKW, "blk.{}.attn_k.weight"},
    {R::kKB, "blk.{}.attn_k.bias"},
    {R::kVW, "blk.{}.attn_v.weight"},
    {R::kVB, "blk.{}.attn_v.bias"},
    {R::kOW, "blk.{}.attn_output.weight"},
    {R::kOB, "blk.{}.attn_output.bias"},
    {R::kQNorm, "blk.{}.attn_q_norm.weight"},
    {R::kKNorm, "blk.{}.attn_k_norm.weight"},
    {R::kNorm2W, "blk.{}.ffn_norm.weight"},
    {R::kGateW, "blk.{}.ffn_gate.weight"},
    {R::kFcW, "blk.{}.ffn_up.weight"},
    {R::kDownW, "blk.{}.ffn_down.weight"},
    {R::kGateB, "blk.{}.ffn_gate.bias"},
    {R::kFcB, "blk.{}.ffn_up.bias"},
    {R::kDownB, "blk.{}.ffn_down.bias"},
};

constexpr TensorName kGgufGpt2[] = {
    {R::kTokEmb, "token_embd.weight"},     {R::kPosEmb, "position_embd.weight"},
    {R::kNormFW, "output_norm.weight"},    {R::kNormFB, "output_norm.bias"},
    {R::kHead, "output.weight"},           {R::kNorm1W, "blk.{}.attn_norm.weight"},
    {R::kNorm1B, "blk.{}.attn_norm.bias"}, {R::kQkvW, "blk.{}.attn_qkv.weight"},
    {R::kQkvB, "blk.{}.attn_qkv.bias"},    {R::kOW, "blk.{}.attn_output.weight"},
    {R::kOB, "blk.{}.attn_output.bias"},   {R::kNorm2W, "blk.{}.ffn_norm.weight"},
    {R::kNorm2B, "blk.{}.ffn_norm.bias"},  {R::kFcW, "blk.{}.ffn_up.weight"},
    {R::kFcB, "blk.{}.ffn_up.bias"},       {R::kDownW, "blk.{}.ffn_down.weight"},
    {R::kDownB, "blk.{}.ffn_down.bias"},
};

bool per_layer(TensorRole r) {
  switch (r) {
    case R::kTokEmb:
    case R::kPosEmb:
    case R::kNormFW:
    case R::kNormFB:
    case R::kHead:
      return false;
    default:
      return true;
  }
}

std::string layer_name(std::string_view pattern, std::size_t layer) {
  std::string s(pattern);
  const std::size_t at = s.find("{}");
  if (at != std::string::npos) s.replace(at, 2, std::to_string(layer));
  return s;
}

std::string shape_text(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// The tensors of one or more files (a model's shards) by name.
class TensorSet {
 public:
  void add(std::unique_ptr<io::ModelReader> reader, std::string source) {
    const std::size_t index = readers_.size();
    for (const io::TensorInfo& t : reader->tensors()) {
      const auto [it, inserted] = by_name_.emplace(t.name, std::make_pair(index, &t));
      if (!inserted) {
        throw Error(source + ": tensor " + quoted(t.name) + " is also in " +
                    sources_[it->second.first]);
      }
    }
    owned_.push_back(std::move(reader));
    readers_.push_back(owned_.back().get());
    sources_.push_back(std::move(source));
  }
  void add_borrowed(const io::ModelReader& reader, std::string source) {
    const std::size_t index = readers_.size();
    for (const io::TensorInfo& t : reader.tensors())
      by_name_.emplace(t.name, std::make_pair(index, &t));
    readers_.push_back(&reader);
    sources_.push_back(std::move(source));
  }
  bool has(const std::string& name) const { return by_name_.contains(name); }
  const std::string& source_of(const std::string& name) const {
    return sources_[by_name_.at(name).first];
  }
  // Names in file order of each file.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const io::ModelReader* r : readers_) {
      for (const io::TensorInfo& t : r->tensors()) out.push_back(t.name);
    }
    return out;
  }
  // The fp32 values of `name`, checked against `shape` (stored reversed when
  // `transposed`, and then transposed back).
  std::vector<float> take(const std::string& name, const Shape& shape, bool transposed,
                          const std::string& missing_where) const {
    const auto it = by_name_.find(name);
    if (it == by_name_.end()) {
      throw Error(missing_where + ": tensor " + quoted(name) + " is missing (expected shape " +
                  shape_text(transposed ? Shape(shape.rbegin(), shape.rend()) : shape) + ")");
    }
    const auto [index, t] = it->second;
    const std::string& source = sources_[index];
    const Shape want = transposed ? Shape(shape.rbegin(), shape.rend()) : shape;
    if (t->shape != want) {
      throw Error(source + ": tensor " + quoted(name) + " has shape " + shape_text(t->shape) +
                  ", expected " + shape_text(want));
    }
    if (!t->is_float) {
      throw Error(source + ": tensor " + quoted(name) + " has dtype " + quoted(t->dtype) +
                  ", expected a float dtype (F32, F16, BF16, ...)");
    }
    std::vector<float> v = readers_[index]->read_f32(*t);
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) {
        throw Error(source + ": tensor " + quoted(name) + " holds a non-finite value at index " +
                    std::to_string(i));
      }
    }
    if (transposed && shape.size() == 2) {
      const auto rows = static_cast<std::size_t>(shape[0]),
                 cols = static_cast<std::size_t>(shape[1]);
      std::vector<float> out(v.size());
      for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t c = 0; c < cols; ++c) out[r * cols + c] = v[c * rows + r];
      }
      v = std::move(out);
    }
    return v;
  }

 private:
  std::vector<std::unique_ptr<io::ModelReader>> owned_;
  std::vector<const io::ModelReader*> readers_;
  std::vector<std::string> sources_;
  std::map<std::string, std::pair<std::size_t, const io::TensorInfo*>> by_name_;
};

// Reads every tensor the configuration has under a layout's names into
// TransformerWeights; `prefix` goes before every name; names in `ignored`
// (patterns with "{}") may be present and are skipped; anything else present
// is an error.
TransformerWeights load_weights(const TensorSet& set, std::string_view layout,
                                const TransformerConfig& c, const std::string& prefix,
                                std::span<const std::string_view> ignored,
                                const std::string& where) {
  TransformerWeights w;
  w.layers.resize(static_cast<std::size_t>(c.n_layer));
  std::set<std::string> used;
  const bool permute = layout == "gguf-llama" && c.family == "llama";
  for (const TensorName& tn : tensor_names(layout)) {
    const Shape shape = role_shape(tn.role, c);
    const std::size_t layers = per_layer(tn.role) ? w.layers.size() : 1;
    for (std::size_t l = 0; l < layers; ++l) {
      // GPT-2's head is outside the "transformer." prefix.
      const std::string name = (tn.role == R::kHead ? "" : prefix) + layer_name(tn.name, l);
      if (shape.empty()) continue;
      used.insert(name);
      std::vector<float> v = set.take(name, shape, tn.transposed, where);
      if (permute &&
          (tn.role == R::kQW || tn.role == R::kQB || tn.role == R::kKW || tn.role == R::kKB)) {
        const bool is_q = tn.role == R::kQW || tn.role == R::kQB;
        const auto heads = static_cast<std::size_t>(is_q ? c.n_head : c.n_kv_head);
        const std::size_t cols = shape.size() == 2 ? static_cast<std::size_t>(shape[1]) : 1;
        v = gguf_unpermute_qk(v, heads, static_cast<std::size_t>(c.head_dim), cols);
      }
      role_values(w, tn.role, l) = std::move(v);
    }
  }
  for (const std::string& name : set.names()) {
    if (used.contains(name)) continue;
    bool skip = false;
    for (std::string_view pattern : ignored) {
      const std::size_t at = pattern.find("{}");
      if (at == std::string_view::npos) {
        skip =
            skip || name == (pattern.starts_with("lm_head") ? "" : prefix) + std::string(pattern);
        continue;
      }
      const std::string head = prefix + std::string(pattern.substr(0, at)),
                        tail = std::string(pattern.substr(at + 2));
      if (name.size() > head.size() + tail.size() && name.starts_with(head) &&
          name.ends_with(tail)) {
        const std::string_view mid(name.data() + head.size(),
                                   name.size() - head.size() - tail.size());
        skip = skip ||
               std::all_of(mid.begin(), mid.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
      }
    }
    if (!skip) {
      throw Error(set.source_of(name) + ": unexpected tensor " + quoted(name) + " (not part of a " +
                  c.family + " model with n_layer=" + std::to_string(c.n_layer) + ", tied head " +
                  (c.tied_head ? "yes" : "no") + ")");
    }
  }
  return w;
}

// ---- lowp's GPT checkpoints ----

int metadata_int(const std::map<std::string, std::string>& meta, const std::string& key,
                 const std::string& source) {
  const auto it = meta.find(key);
  if (it == meta.end()) {
    throw Error(source + ": metadata " + quoted(std::string(key)) +
                " is missing (a lowp gpt checkpoint records its hyperparameters)");
  }
  const std::string& text = it->second;
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > (1 << 20)) {
    throw Error(source + ": metadata " + quoted(std::string(key)) + " is " + quoted(text) +
                ", expected an integer from 1 to 1048576");
  }
  return value;
}

TransformerConfig lowp_gpt_config(const io::ModelReader& reader,
                                  const std::map<std::string, std::string>& meta,
                                  const std::string& source) {
  const auto arch = meta.find("lowp.arch");
  if (arch->second != "gpt") {
    throw Error(source + ": metadata 'lowp.arch' is " + quoted(arch->second) +
                ", expected 'gpt' (lowp's own checkpoints are GPTs)");
  }
  TransformerConfig c;
  c.family = "lowp-gpt";
  c.vocab_size = metadata_int(meta, "vocab_size", source);
  c.n_ctx = metadata_int(meta, "n_ctx", source);
  c.d_model = metadata_int(meta, "d_model", source);
  c.n_head = metadata_int(meta, "n_head", source);
  c.n_layer = metadata_int(meta, "n_layer", source);
  c.d_ff = metadata_int(meta, "d_ff", source);
  if (c.vocab_size != 256) {
    throw Error(source + ": metadata 'vocab_size' is " + std::to_string(c.vocab_size) +
                ", expected 256 (lowp's GPT checkpoints are byte-level)");
  }
  if (c.d_model % c.n_head != 0) {
    throw Error(source + ": metadata 'd_model' (" + std::to_string(c.d_model) +
                ") is not a multiple of 'n_head' (" + std::to_string(c.n_head) + ")");
  }
  c.n_kv_head = c.n_head;
  c.head_dim = c.d_model / c.n_head;
  if (const auto tied = meta.find("tied_head"); tied != meta.end()) {
    if (tied->second != "0" && tied->second != "1") {
      throw Error(source + ": metadata 'tied_head' is " + quoted(tied->second) +
                  ", expected '0' or '1'");
    }
    c.tied_head = tied->second == "1";
  } else {
    c.tied_head = reader.find("lm_head.weight") == nullptr;
  }
  if (const auto eps = meta.find("ln_eps"); eps != meta.end()) {
    const std::string& text = eps->second;
    char* end = nullptr;
    const double v = text.empty() ? 0.0 : std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || !(v > 0.0) || !(v < 1.0)) {
      throw Error(source + ": metadata 'ln_eps' is " + quoted(text) +
                  ", expected a number between 0 and 1 (e.g. 1e-05)");
    }
    c.norm_eps = static_cast<float>(v);
  }
  return c;
}

// ---- llama.cpp's GGUF metadata ----

class GgufMeta {
 public:
  GgufMeta(const io::ModelReader& reader, std::string source) : source_(std::move(source)) {
    for (const io::GgufKv& kv : io::gguf_kv(reader)) kv_.emplace(kv.first, &kv.second);
  }
  const io::GgufValue* find(const std::string& key) const {
    const auto it = kv_.find(key);
    return it == kv_.end() ? nullptr : it->second;
  }
  std::string str(const std::string& key) const {
    const io::GgufValue* v = find(key);
    if (v == nullptr)
      throw Error(source_ + ": metadata " + quoted(std::string(key)) + " is missing");
    if (v->type != io::GgufType::kString)
      throw Error(source_ + ": metadata " + quoted(std::string(key)) + " is not a string");
    return v->str;
  }
  std::optional<std::int64_t> opt_int(const std::string& key, std::int64_t lo,
                                      std::int64_t hi) const {
    const io::GgufValue* v = find(key);
    if (v == nullptr) return std::nullopt;
    const std::optional<std::int64_t> i = v->as_i64();
    if (!i || *i < lo || *i > hi) {
      throw Error(source_ + ": metadata " + quoted(std::string(key)) + " is " + v->to_text() +
                  ", expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    }
    return *i;
  }
  int integer(const std::string& key, std::int64_t lo = 1, std::int64_t hi = 1 << 24) const {
    const std::optional<std::int64_t> v = opt_int(key, lo, hi);
    if (!v) throw Error(source_ + ": metadata " + quoted(std::string(key)) + " is missing");
    return static_cast<int>(*v);
  }
  std::optional<double> opt_real(const std::string& key) const {
    const io::GgufValue* v = find(key);
    if (v == nullptr) return std::nullopt;
    const std::optional<double> d = v->as_f64();
    if (!d || !std::isfinite(*d))
      throw Error(source_ + ": metadata " + quoted(std::string(key)) + " is " + v->to_text() +
                  ", expected a finite number");
    return *d;
  }
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::map<std::string, const io::GgufValue*> kv_;
};

TransformerConfig gguf_config(const io::ModelReader& reader, const GgufMeta& m) {
  const std::string& source = m.source();
  const std::string arch = m.str("general.architecture");
  TransformerConfig c;
  if (arch == "llama" || arch == "qwen2" || arch == "qwen3") {
    c.family = arch;
    c.norm = NormKind::kRmsNorm;
    c.mlp = MlpKind::kSwiGlu;
    c.learned_positions = false;
    c.fused_qkv = false;
    // Biases are optional in llama.cpp's llama graph: present or absent as
    // the file has them (Qwen2 always has q/k/v biases).
    c.qkv_bias = arch == "qwen2" || reader.find("blk.0.attn_q.bias") != nullptr;
    c.o_bias = reader.find("blk.0.attn_output.bias") != nullptr;
    c.mlp_bias = reader.find("blk.0.ffn_down.bias") != nullptr;
    c.qk_norm = arch == "qwen3";
  } else if (arch == "gpt2") {
    c.family = "gpt2";
    c.mlp = MlpKind::kGeluTanh;
  } else {
    throw Error(source + ": metadata 'general.architecture' is " + quoted(arch) +
                "; lowp runs llama, qwen2, qwen3 and gpt2 GGUF files");
  }
  const std::string p = arch + ".";
  if (const auto experts = m.opt_int(p + "expert_count", 0, 1 << 20); experts && *experts > 0) {
    throw Error(source + ": metadata '" + p + "expert_count' is " + std::to_string(*experts) +
                ": mixture-of-experts models are not supported");
  }
  c.n_ctx = m.integer(p + "context_length", 1, 1 << 24);
  c.d_model = m.integer(p + "embedding_length");
  c.n_layer = m.integer(p + "block_count");
  c.d_ff = m.integer(p + "feed_forward_length");
  c.n_head = m.integer(p + "attention.head_count");
  if (const io::GgufValue* kv = m.find(p + "attention.head_count_kv");
      kv != nullptr && kv->type == io::GgufType::kArray) {
    throw Error(source + ": metadata '" + p +
                "attention.head_count_kv' varies per layer, which lowp does not support");
  }
  c.n_kv_head =
      static_cast<int>(m.opt_int(p + "attention.head_count_kv", 1, c.n_head).value_or(c.n_head));
  c.head_dim = static_cast<int>(
      m.opt_int(p + "attention.key_length", 1, 1 << 12).value_or(c.d_model / c.n_head));
  if (const auto vl = m.opt_int(p + "attention.value_length", 1, 1 << 12);
      vl && *vl != c.head_dim) {
    throw Error(source + ": metadata '" + p + "attention.value_length' (" + std::to_string(*vl) +
                ") differs from the key length (" + std::to_string(c.head_dim) + ")");
  }
  if (c.norm == NormKind::kRmsNorm) {
    c.norm_eps =
        static_cast<float>(m.opt_real(p + "attention.layer_norm_rms_epsilon").value_or(1e-5));
  } else {
    c.norm_eps = static_cast<float>(m.opt_real(p + "attention.layer_norm_epsilon").value_or(1e-5));
  }
  if (!c.learned_positions) {
    c.rope_theta = m.opt_real(p + "rope.freq_base").value_or(10000.0);
    if (const auto dims = m.opt_int(p + "rope.dimension_count", 1, 1 << 12);
        dims && *dims != c.head_dim) {
      throw Error(source + ": metadata '" + p + "rope.dimension_count' is " +
                  std::to_string(*dims) + " but the head dimension is " +
                  std::to_string(c.head_dim) + " (partial RoPE is not supported)");
    }
    if (const io::GgufValue* t = m.find(p + "rope.scaling.type"); t != nullptr) {
      const std::string type = m.str(p + "rope.scaling.type");
      if (type == "linear") {
        c.rope_scaling = RopeScaling::kLinear;
        c.rope_factor = m.opt_real(p + "rope.scaling.factor").value_or(1.0);
      } else if (type != "none") {
        throw Error(source + ": metadata '" + p + "rope.scaling.type' is " + quoted(type) +
                    "; lowp supports none and linear (llama3 comes as rope_freqs.weight)");
      }
    }
    if (const io::GgufValue* f = m.find(p + "rope.freq_scale"); f != nullptr) {
      const double scale = m.opt_real(p + "rope.freq_scale").value_or(1.0);
      if (scale != 1.0) {
        if (!(scale > 0.0))
          throw Error(source + ": metadata '" + p + "rope.freq_scale' must be > 0");
        c.rope_scaling = RopeScaling::kLinear;
        c.rope_factor = 1.0 / scale;
      }
    }
  }
  if (const io::TensorInfo* t = reader.find("token_embd.weight");
      t != nullptr && t->shape.size() == 2)
    c.vocab_size = static_cast<int>(std::clamp<std::int64_t>(t->shape[0], 0, 1 << 25));
  if (const auto v = m.opt_int(p + "vocab_size", 1, 1 << 24)) c.vocab_size = static_cast<int>(*v);
  c.tied_head = reader.find("output.weight") == nullptr;
  if (const auto b = m.opt_int("tokenizer.ggml.bos_token_id", 0, (1 << 24) - 1))
    c.bos = static_cast<std::int32_t>(*b);
  if (const auto e = m.opt_int("tokenizer.ggml.eos_token_id", 0, (1 << 24) - 1))
    c.eos = static_cast<std::int32_t>(*e);
  return c;
}

Transformer load_gguf(const io::ModelReader& reader, const std::string& source) {
  const GgufMeta meta(reader, source);
  TransformerConfig c = gguf_config(reader, meta);
  c.validate(source);
  TensorSet set;
  set.add_borrowed(reader, source);
  const bool gpt2 = c.family == "gpt2";
  std::vector<std::string_view> ignored;
  // NVFP4 weights' F32 scale tensors: read_f32 of the weight applies them.
  const std::map<std::string, std::string> scales = io::gguf_nvfp4_scales(reader);
  for (const auto& [scale, weight] : scales) ignored.push_back(scale);
  if (!gpt2) {
    ignored.push_back("rope_freqs.weight");
    if (set.has("rope_freqs.weight")) {
      const std::vector<float> f = set.take("rope_freqs.weight", {c.head_dim / 2}, false, source);
      c.rope_divisors.assign(f.begin(), f.end());
      c.rope_scaling = RopeScaling::kNone;
    }
  }
  TransformerWeights w =
      load_weights(set, gpt2 ? "gguf-gpt2" : "gguf-llama", c, "", ignored, source);
  return Transformer(std::move(c), std::move(w), source);
}

// ---- Hugging Face directories ----

using Json = nlohmann::json;

class HfConfig {
 public:
  HfConfig(const Json& j, std::string source) : j_(j), source_(std::move(source)) {}
  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  std::int64_t integer(const char* key, std::int64_t lo = 1, std::int64_t hi = 1 << 24) const {
    if (!has(key)) throw Error(source_ + ": key " + quoted(std::string(key)) + " is missing");
    return integer_of(j_.at(key), key, lo, hi);
  }
  std::int64_t integer_or(const char* key, std::int64_t fallback, std::int64_t lo = 1,
                          std::int64_t hi = 1 << 24) const {
    return has(key) ? integer(key, lo, hi) : fallback;
  }
  std::int64_t integer_of(const Json& v, const std::string& key, std::int64_t lo,
                          std::int64_t hi) const {
    if (!v.is_number_integer() || v.get<std::int64_t>() < lo || v.get<std::int64_t>() > hi) {
      throw Error(source_ + ": key " + quoted(std::string(key)) + " is " + v.dump() +
                  ", expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    }
    return v.get<std::int64_t>();
  }
  double real_or(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    return real_of(j_.at(key), key);
  }
  double real_of(const Json& v, const std::string& key) const {
    if (!v.is_number() || !std::isfinite(v.get<double>()))
      throw Error(source_ + ": key " + quoted(std::string(key)) + " is " + v.dump() +
                  ", expected a number");
    return v.get<double>();
  }
  bool boolean_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j_.at(key).is_boolean())
      throw Error(source_ + ": key " + quoted(std::string(key)) + " is " + j_.at(key).dump() +
                  ", expected true or false");
    return j_.at(key).get<bool>();
  }
  std::string string_or(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    if (!j_.at(key).is_string())
      throw Error(source_ + ": key " + quoted(std::string(key)) + " is " + j_.at(key).dump() +
                  ", expected a string");
    return j_.at(key).get<std::string>();
  }
  // A token id key: an integer, or a list whose first item is taken.
  std::optional<std::int32_t> token(const char* key) const {
    if (!has(key)) return std::nullopt;
    const Json& v = j_.at(key);
    const Json& first = v.is_array() && !v.empty() ? v.front() : v;
    return static_cast<std::int32_t>(integer_of(first, key, 0, (1 << 24) - 1));
  }
  const Json& json() const { return j_; }
  const std::string& source() const { return source_; }

 private:
  const Json& j_;
  std::string source_;
};

void hf_rope_scaling(const HfConfig& h, TransformerConfig& c) {
  if (!h.has("rope_scaling")) return;
  const Json& r = h.json().at("rope_scaling");
  const std::string& source = h.source();
  if (!r.is_object()) throw Error(source + ": key 'rope_scaling' is not an object");
  std::string type;
  for (const char* k : {"rope_type", "type"}) {
    if (r.contains(k) && r.at(k).is_string()) {
      type = r.at(k).get<std::string>();
      break;
    }
  }
  if (type.empty()) throw Error(source + ": key 'rope_scaling' has no 'rope_type' or 'type'");
  auto real = [&](const char* k) {
    if (!r.contains(k)) throw Error(source + ": key 'rope_scaling." + k + "' is missing");
    return h.real_of(r.at(k), std::string("rope_scaling.") + k);
  };
  if (type == "default") return;
  if (type == "linear") {
    c.rope_scaling = RopeScaling::kLinear;
    c.rope_factor = real("factor");
  } else if (type == "llama3") {
    c.rope_scaling = RopeScaling::kLlama3;
    c.rope_factor = real("factor");
    c.rope_low_freq_factor = real("low_freq_factor");
    c.rope_high_freq_factor = real("high_freq_factor");
    c.rope_original_context = real("original_max_position_embeddings");
  } else {
    throw Error(source + ": rope_scaling type " + quoted(type) +
                " is not supported (lowp supports linear and llama3)");
  }
}

}  // namespace

std::span<const TensorName> tensor_names(std::string_view layout) {
  if (layout == "lowp-gpt") return kLowpGpt;
  if (layout == "hf-gpt2") return kHfGpt2;
  if (layout == "hf-llama") return kHfLlama;
  if (layout == "gguf-llama") return kGgufLlama;
  if (layout == "gguf-gpt2") return kGgufGpt2;
  throw Error("unknown tensor layout " + quoted(std::string(layout)));
}

std::vector<std::int64_t> role_shape(TensorRole role, const TransformerConfig& c) {
  const std::int64_t v = c.vocab_size, d = c.d_model, ff = c.d_ff, q = c.q_dim(), kv = c.kv_dim(),
                     dh = c.head_dim;
  const bool ln = c.norm == NormKind::kLayerNorm, swiglu = c.mlp == MlpKind::kSwiGlu;
  auto when = [](bool yes, Shape s) { return yes ? s : Shape{}; };
  switch (role) {
    case R::kTokEmb:
      return {v, d};
    case R::kPosEmb:
      return when(c.learned_positions, {c.n_ctx, d});
    case R::kNormFW:
      return {d};
    case R::kNormFB:
      return when(ln, {d});
    case R::kHead:
      return when(!c.tied_head, {v, d});
    case R::kNorm1W:
    case R::kNorm2W:
      return {d};
    case R::kNorm1B:
    case R::kNorm2B:
      return when(ln, {d});
    case R::kQkvW:
      return when(c.fused_qkv, {q + 2 * kv, d});
    case R::kQkvB:
      return when(c.fused_qkv && c.qkv_bias, {q + 2 * kv});
    case R::kQW:
      return when(!c.fused_qkv, {q, d});
    case R::kKW:
    case R::kVW:
      return when(!c.fused_qkv, {kv, d});
    case R::kQB:
      return when(!c.fused_qkv && c.qkv_bias, {q});
    case R::kKB:
    case R::kVB:
      return when(!c.fused_qkv && c.qkv_bias, {kv});
    case R::kOW:
      return {d, q};
    case R::kOB:
      return when(c.o_bias, {d});
    case R::kQNorm:
    case R::kKNorm:
      return when(c.qk_norm, {dh});
    case R::kFcW:
      return {ff, d};
    case R::kFcB:
      return when(c.mlp_bias, {ff});
    case R::kGateW:
      return when(swiglu, {ff, d});
    case R::kGateB:
      return when(swiglu && c.mlp_bias, {ff});
    case R::kDownW:
      return {d, ff};
    case R::kDownB:
      return when(c.mlp_bias, {d});
  }
  return {};
}

std::vector<float>& role_values(TransformerWeights& w, TensorRole role, std::size_t layer) {
  switch (role) {
    case R::kTokEmb:
      return w.tok_emb;
    case R::kPosEmb:
      return w.pos_emb;
    case R::kNormFW:
      return w.norm_f_w;
    case R::kNormFB:
      return w.norm_f_b;
    case R::kHead:
      return w.head;
    default:
      break;
  }
  TransformerWeights::Layer& l = w.layers.at(layer);
  switch (role) {
    case R::kNorm1W:
      return l.norm_1_w;
    case R::kNorm1B:
      return l.norm_1_b;
    case R::kQkvW:
      return l.qkv_w;
    case R::kQkvB:
      return l.qkv_b;
    case R::kQW:
      return l.q_w;
    case R::kQB:
      return l.q_b;
    case R::kKW:
      return l.k_w;
    case R::kKB:
      return l.k_b;
    case R::kVW:
      return l.v_w;
    case R::kVB:
      return l.v_b;
    case R::kOW:
      return l.o_w;
    case R::kOB:
      return l.o_b;
    case R::kQNorm:
      return l.q_norm;
    case R::kKNorm:
      return l.k_norm;
    case R::kNorm2W:
      return l.norm_2_w;
    case R::kNorm2B:
      return l.norm_2_b;
    case R::kFcW:
      return l.fc_w;
    case R::kFcB:
      return l.fc_b;
    case R::kGateW:
      return l.gate_w;
    case R::kGateB:
      return l.gate_b;
    case R::kDownW:
      return l.down_w;
    case R::kDownB:
      return l.down_b;
    default:
      break;
  }
  throw Error("role_values: unknown role");
}

const std::vector<float>& role_values(const TransformerWeights& w, TensorRole role,
                                      std::size_t layer) {
  return role_values(const_cast<TransformerWeights&>(w), role, layer);
}

namespace {

// Row a * head_dim/2 + b of each head (a in {0, 1}) <-> row 2b + a.
std::vector<float> interleave_qk(std::span<const float> m, std::size_t heads, std::size_t head_dim,
                                 std::size_t cols, bool to_interleaved) {
  if (m.size() != heads * head_dim * cols || head_dim % 2 != 0)
    throw Error("interleaving q/k rows: " + std::to_string(m.size()) + " values are not " +
                std::to_string(heads) + " heads of " + std::to_string(head_dim) + " rows of " +
                std::to_string(cols) + " (head_dim even)");
  std::vector<float> out(m.size());
  const std::size_t half = head_dim / 2;
  for (std::size_t h = 0; h < heads; ++h) {
    for (std::size_t a = 0; a < 2; ++a) {
      for (std::size_t b = 0; b < half; ++b) {
        const std::size_t split = h * head_dim + a * half + b, pairs = h * head_dim + 2 * b + a;
        const std::size_t from = to_interleaved ? split : pairs,
                          to = to_interleaved ? pairs : split;
        std::copy_n(m.data() + from * cols, cols, out.data() + to * cols);
      }
    }
  }
  return out;
}

}  // namespace

std::vector<float> gguf_permute_qk(std::span<const float> m, std::size_t heads,
                                   std::size_t head_dim, std::size_t cols) {
  return interleave_qk(m, heads, head_dim, cols, true);
}

std::vector<float> gguf_unpermute_qk(std::span<const float> m, std::size_t heads,
                                     std::size_t head_dim, std::size_t cols) {
  return interleave_qk(m, heads, head_dim, cols, false);
}

TransformerConfig config_from_hf_json(std::string_view text, const std::string& source) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception& e) {
    throw Error(source + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw Error(source + ": not a JSON object");
  const HfConfig h(j, source);
  std::string arch;
  if (h.has("architectures")) {
    const Json& a = j.at("architectures");
    if (!a.is_array() || a.size() != 1 || !a.front().is_string())
      throw Error(source + ": key 'architectures' is not a list of one name");
    arch = a.front().get<std::string>();
  }
  const std::string model_type = h.string_or("model_type", "");
  static const std::map<std::string, std::string> kArch = {{"LlamaForCausalLM", "llama"},
                                                           {"MistralForCausalLM", "mistral"},
                                                           {"Qwen2ForCausalLM", "qwen2"},
                                                           {"Qwen3ForCausalLM", "qwen3"},
                                                           {"GPT2LMHeadModel", "gpt2"}};
  std::string family;
  if (!arch.empty()) {
    const auto it = kArch.find(arch);
    if (it == kArch.end()) {
      throw Error(source + ": architecture " + quoted(arch) +
                  " is not supported (lowp runs LlamaForCausalLM, MistralForCausalLM, "
                  "Qwen2ForCausalLM, Qwen3ForCausalLM and GPT2LMHeadModel)");
    }
    family = it->second;
  } else {
    for (const auto& [name, fam] : kArch) {
      if (fam == model_type) family = fam;
    }
    if (family.empty())
      throw Error(source + ": neither 'architectures' nor a supported 'model_type' (got " +
                  quoted(model_type) + ")");
  }
  for (const char* moe : {"num_local_experts", "num_experts", "n_routed_experts"}) {
    if (h.has(moe) && h.integer(moe, 0) > 0)
      throw Error(source + ": key " + quoted(std::string(moe)) +
                  " is set: mixture-of-experts models are not supported");
  }
  TransformerConfig c;
  c.family = family;
  c.bos = h.token("bos_token_id");
  c.eos = h.token("eos_token_id");
  if (family == "gpt2") {
    c.d_model = static_cast<int>(h.integer("n_embd"));
    c.n_layer = static_cast<int>(h.integer("n_layer"));
    c.n_head = static_cast<int>(h.integer("n_head"));
    c.n_kv_head = c.n_head;
    c.n_ctx = static_cast<int>(h.integer_or("n_positions", h.integer_or("n_ctx", 1024)));
    c.vocab_size = static_cast<int>(h.integer("vocab_size"));
    c.d_ff = static_cast<int>(h.integer_or("n_inner", 4 * static_cast<std::int64_t>(c.d_model)));
    c.norm_eps = static_cast<float>(h.real_or("layer_norm_epsilon", 1e-5));
    const std::string act = h.string_or("activation_function", "gelu_new");
    if (act == "gelu_new" || act == "gelu_pytorch_tanh") {
      c.mlp = MlpKind::kGeluTanh;
    } else if (act == "gelu") {
      c.mlp = MlpKind::kGelu;
    } else {
      throw Error(source + ": activation_function " + quoted(act) +
                  " is not supported (gelu_new, gelu_pytorch_tanh, gelu)");
    }
    if (c.d_model % c.n_head != 0) throw Error(source + ": n_embd is not a multiple of n_head");
    c.head_dim = c.d_model / c.n_head;
    c.tied_head = h.boolean_or("tie_word_embeddings", true);
    c.fused_qkv = true;
    c.learned_positions = true;
    if (h.boolean_or("scale_attn_by_inverse_layer_idx", false) ||
        h.boolean_or("reorder_and_upcast_attn", false) || !h.boolean_or("scale_attn_weights", true))
      throw Error(source + ": GPT-2 attention-scaling variants are not supported");
    return c;
  }
  c.norm = NormKind::kRmsNorm;
  c.mlp = MlpKind::kSwiGlu;
  c.learned_positions = false;
  c.fused_qkv = false;
  c.d_model = static_cast<int>(h.integer("hidden_size"));
  c.d_ff = static_cast<int>(h.integer("intermediate_size"));
  c.n_layer = static_cast<int>(h.integer("num_hidden_layers"));
  c.n_head = static_cast<int>(h.integer("num_attention_heads"));
  c.n_kv_head = static_cast<int>(h.integer_or("num_key_value_heads", c.n_head));
  c.vocab_size = static_cast<int>(h.integer("vocab_size"));
  c.n_ctx = static_cast<int>(h.integer("max_position_embeddings"));
  if (!h.has("head_dim") && c.d_model % c.n_head != 0)
    throw Error(source + ": hidden_size is not a multiple of num_attention_heads");
  c.head_dim = static_cast<int>(h.integer_or("head_dim", c.d_model / c.n_head, 1, 1 << 12));
  c.norm_eps = static_cast<float>(h.real_or("rms_norm_eps", 1e-6));
  c.rope_theta = h.real_or("rope_theta", 10000.0);
  const std::string act = h.string_or("hidden_act", "silu");
  if (act != "silu")
    throw Error(source + ": hidden_act " + quoted(act) + " is not supported (silu)");
  hf_rope_scaling(h, c);
  c.tied_head = h.boolean_or("tie_word_embeddings", false);
  const bool attention_bias = h.boolean_or("attention_bias", false);
  c.qkv_bias = family == "qwen2" || attention_bias;
  c.o_bias = family != "qwen2" && attention_bias;
  c.mlp_bias = h.boolean_or("mlp_bias", false);
  c.qk_norm = family == "qwen3";
  // A sliding window at least as long as the context changes nothing; a
  // shorter one would, so the runtime's context stops at the window.
  const bool sliding = family == "mistral" || h.boolean_or("use_sliding_window", false);
  if (sliding && h.has("sliding_window")) {
    const auto window = h.integer("sliding_window");
    if (window < c.n_ctx) c.n_ctx = static_cast<int>(window);
  }
  if (h.has("partial_rotary_factor") && h.real_or("partial_rotary_factor", 1.0) != 1.0)
    throw Error(source + ": partial_rotary_factor is not supported");
  return c;
}

Transformer load_transformer(const io::ModelReader& reader, const std::string& source) {
  if (reader.kind() == std::string_view("gguf")) {
    bool lowp = false;
    for (const auto& [key, value] : reader.metadata()) lowp = lowp || key == "lowp.arch";
    if (!lowp) return load_gguf(reader, source);
  }
  std::map<std::string, std::string> meta;
  for (const auto& [key, value] : reader.metadata()) meta.emplace(key, value);
  if (!meta.contains("lowp.arch")) {
    throw Error(source +
                ": not a lowp gpt checkpoint: metadata 'lowp.arch' is missing (expected 'gpt'; "
                "a Hugging Face model is loaded from its directory)");
  }
  const TransformerConfig c = lowp_gpt_config(reader, meta, source);
  c.validate(source);
  TensorSet set;
  set.add_borrowed(reader, source);
  TransformerWeights w = load_weights(set, "lowp-gpt", c, "", {}, source);
  return Transformer(c, std::move(w), source);
}

Transformer load_transformer(const std::filesystem::path& path) {
  if (!std::filesystem::is_directory(path)) {
    const std::unique_ptr<io::ModelReader> reader = io::open_model(path);
    return load_transformer(*reader, path.string());
  }
  const std::filesystem::path config_path = path / "config.json";
  if (!std::filesystem::exists(config_path)) {
    throw Error(path.string() + ": a model directory needs config.json (none found)");
  }
  std::string config_text;
  {
    io::MappedFile f(config_path);
    const auto b = f.bytes();
    config_text.assign(reinterpret_cast<const char*>(b.data()), b.size());
  }
  TransformerConfig c = config_from_hf_json(config_text, config_path.string());
  c.validate(config_path.string());
  TensorSet set;
  const std::filesystem::path single = path / "model.safetensors",
                              index = path / "model.safetensors.index.json";
  if (std::filesystem::exists(single)) {
    set.add(io::open_model(single), single.string());
  } else if (std::filesystem::exists(index)) {
    io::MappedFile index_file(index);
    const auto b = index_file.bytes();
    Json j;
    try {
      j = Json::parse(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
    } catch (const Json::exception& e) {
      throw Error(index.string() + ": not valid JSON (" + e.what() + ")");
    }
    if (!j.is_object() || !j.contains("weight_map") || !j.at("weight_map").is_object())
      throw Error(index.string() + ": key 'weight_map' is missing or not an object");
    std::set<std::string> shards;
    for (const auto& [name, file] : j.at("weight_map").items()) {
      if (!file.is_string())
        throw Error(index.string() + ": weight_map entry " + quoted(name) + " is not a file name");
      const std::string f = file.get<std::string>();
      if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos ||
          f == "." || f == "..")
        throw Error(index.string() + ": weight_map entry " + quoted(name) + " names " + quoted(f) +
                    ", not a file in the directory");
      shards.insert(f);
    }
    for (const std::string& f : shards) set.add(io::open_model(path / f), (path / f).string());
    for (const auto& [name, file] : j.at("weight_map").items()) {
      if (!set.has(name))
        throw Error((path / file.get<std::string>()).string() + ": tensor " + quoted(name) +
                    " listed in model.safetensors.index.json is missing");
    }
  } else {
    throw Error(path.string() +
                ": no model.safetensors or model.safetensors.index.json in the directory");
  }
  const std::string where = path.string();
  if (c.family == "gpt2") {
    const std::string prefix = set.has("transformer.wte.weight") ? "transformer." : "";
    // A tied GPT-2 may still store lm_head.weight (without the prefix).
    std::vector<std::string_view> ignored = {"h.{}.attn.bias", "h.{}.attn.masked_bias"};
    if (c.tied_head) ignored.push_back("lm_head.weight");
    TransformerWeights w = load_weights(set, "hf-gpt2", c, prefix, ignored, where);
    return Transformer(std::move(c), std::move(w), where);
  }
  std::vector<std::string_view> ignored = {"model.layers.{}.self_attn.rotary_emb.inv_freq"};
  if (c.tied_head) ignored.push_back("lm_head.weight");
  TransformerWeights w = load_weights(set, "hf-llama", c, "", ignored, where);
  return Transformer(std::move(c), std::move(w), where);
}

}  // namespace lowp::nn
