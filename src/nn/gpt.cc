// Loading and validating a GPT checkpoint, and building its packed linear
// layers in a weight format. The forward pass is in gpt_forward.cc.
#include "lowp/nn/gpt.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "gpt_checkpoint.h"
#include "lowp/error.h"

namespace lowp::nn {

namespace {

using Shape = std::vector<std::int64_t>;

std::string shape_text(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// A positive integer hyperparameter from the metadata.
int metadata_int(const std::map<std::string, std::string>& meta, const std::string& key,
                 const std::string& source) {
  const auto it = meta.find(key);
  if (it == meta.end()) {
    throw Error(source + ": metadata " + quoted(key) +
                " is missing (a lowp gpt checkpoint records its hyperparameters)");
  }
  const std::string& text = it->second;
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > (1 << 20)) {
    throw Error(source + ": metadata " + quoted(key) + " is " + quoted(text) +
                ", expected an integer from 1 to 1048576");
  }
  return value;
}

GptConfig read_config(const io::ModelReader& reader, const std::string& source) {
  std::map<std::string, std::string> meta;
  for (const auto& [key, value] : reader.metadata()) meta.emplace(key, value);
  const auto arch = meta.find("lowp.arch");
  if (arch == meta.end()) {
    throw Error(source +
                ": not a lowp gpt checkpoint: metadata 'lowp.arch' is missing (expected 'gpt')");
  }
  if (arch->second != "gpt") {
    throw Error(source + ": metadata 'lowp.arch' is " + quoted(arch->second) +
                ", expected 'gpt' (the only architecture the runtime runs)");
  }
  GptConfig c;
  c.vocab_size = metadata_int(meta, "vocab_size", source);
  c.n_ctx = metadata_int(meta, "n_ctx", source);
  c.d_model = metadata_int(meta, "d_model", source);
  c.n_head = metadata_int(meta, "n_head", source);
  c.n_layer = metadata_int(meta, "n_layer", source);
  c.d_ff = metadata_int(meta, "d_ff", source);
  if (c.vocab_size != 256) {
    throw Error(source + ": metadata 'vocab_size' is " + std::to_string(c.vocab_size) +
                ", expected 256 (the runtime is byte-level)");
  }
  if (c.d_model % c.n_head != 0) {
    throw Error(source + ": metadata 'd_model' (" + std::to_string(c.d_model) +
                ") is not a multiple of 'n_head' (" + std::to_string(c.n_head) + ")");
  }
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
    c.ln_eps = static_cast<float>(v);
  }
  return c;
}

// Reads the named tensors of a checkpoint, checking each against its expected
// shape, dtype and values, and that nothing else is present.
class TensorLoader {
 public:
  TensorLoader(const io::ModelReader& reader, std::string source)
      : reader_(reader), source_(std::move(source)) {}

  std::vector<float> take(const std::string& name, const Shape& shape) {
    expected_.insert(name);
    const io::TensorInfo* t = reader_.find(name);
    if (t == nullptr) {
      throw Error(source_ + ": tensor " + quoted(name) + " is missing (expected shape " +
                  shape_text(shape) + ")");
    }
    if (t->shape != shape) {
      throw Error(source_ + ": tensor " + quoted(name) + " has shape " + shape_text(t->shape) +
                  ", expected " + shape_text(shape));
    }
    if (!t->is_float) {
      throw Error(source_ + ": tensor " + quoted(name) + " has dtype " + quoted(t->dtype) +
                  ", expected a float dtype (F32, F16, BF16, ...)");
    }
    std::vector<float> v = reader_.read_f32(*t);
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) {
        throw Error(source_ + ": tensor " + quoted(name) + " holds a non-finite value at index " +
                    std::to_string(i));
      }
    }
    return v;
  }

  // Throws for the first tensor of the file that take() was not asked for.
  void check_no_others(const GptConfig& c) const {
    for (const io::TensorInfo& t : reader_.tensors()) {
      if (!expected_.contains(t.name)) {
        throw Error(source_ + ": unexpected tensor " + quoted(t.name) +
                    " (not part of a gpt model with n_layer=" + std::to_string(c.n_layer) +
                    ", tied_head=" + (c.tied_head ? "1" : "0") + ")");
      }
    }
  }

 private:
  const io::ModelReader& reader_;
  std::string source_;
  std::set<std::string> expected_;
};

}  // namespace

double EvalResult::bits_per_byte() const { return nats_per_byte / std::log(2.0); }
double EvalResult::perplexity() const { return std::exp(nats_per_byte); }

Gpt Gpt::load(const std::filesystem::path& path) {
  const std::unique_ptr<io::ModelReader> reader = io::open_model(path);
  return load(*reader, path.string());
}

Gpt Gpt::load(const io::ModelReader& reader, const std::string& source) {
  const GptConfig c = read_config(reader, source);
  const std::int64_t v = c.vocab_size, d = c.d_model, ff = c.d_ff;
  TensorLoader in(reader, source);
  auto ckpt = std::make_shared<Checkpoint>();
  ckpt->wte = in.take("wte.weight", {v, d});
  ckpt->wpe = in.take("wpe.weight", {c.n_ctx, d});
  ckpt->layers.resize(static_cast<std::size_t>(c.n_layer));
  for (int i = 0; i < c.n_layer; ++i) {
    Checkpoint::Layer& l = ckpt->layers[static_cast<std::size_t>(i)];
    const std::string p = "h." + std::to_string(i) + ".";
    l.ln_1_weight = in.take(p + "ln_1.weight", {d});
    l.ln_1_bias = in.take(p + "ln_1.bias", {d});
    l.c_attn_weight = in.take(p + "attn.c_attn.weight", {3 * d, d});
    l.c_attn_bias = in.take(p + "attn.c_attn.bias", {3 * d});
    l.attn_proj_weight = in.take(p + "attn.c_proj.weight", {d, d});
    l.attn_proj_bias = in.take(p + "attn.c_proj.bias", {d});
    l.ln_2_weight = in.take(p + "ln_2.weight", {d});
    l.ln_2_bias = in.take(p + "ln_2.bias", {d});
    l.c_fc_weight = in.take(p + "mlp.c_fc.weight", {ff, d});
    l.c_fc_bias = in.take(p + "mlp.c_fc.bias", {ff});
    l.mlp_proj_weight = in.take(p + "mlp.c_proj.weight", {d, ff});
    l.mlp_proj_bias = in.take(p + "mlp.c_proj.bias", {d});
  }
  ckpt->ln_f_weight = in.take("ln_f.weight", {d});
  ckpt->ln_f_bias = in.take("ln_f.bias", {d});
  if (!c.tied_head) ckpt->lm_head = in.take("lm_head.weight", {v, d});
  in.check_no_others(c);

  Gpt g;
  g.config_ = c;
  g.checkpoint_ = std::move(ckpt);
  g.build(parse_matrix_format("fp32"));
  return g;
}

void Gpt::build(const MatrixFormat& f) {
  const Checkpoint& k = *checkpoint_;
  const auto d = static_cast<std::size_t>(config_.d_model),
             ff = static_cast<std::size_t>(config_.d_ff),
             v = static_cast<std::size_t>(config_.vocab_size);
  auto linear = [&f](const std::vector<float>& w, const std::vector<float>& b, std::size_t rows,
                     std::size_t cols) {
    return Linear{PackedMatrix::quantize(f, w, rows, cols), b};
  };
  weight_format_ = f;
  layers_.clear();
  layers_.reserve(k.layers.size());
  for (const Checkpoint::Layer& l : k.layers) {
    Layer out;
    out.ln_1_weight = l.ln_1_weight;
    out.ln_1_bias = l.ln_1_bias;
    out.ln_2_weight = l.ln_2_weight;
    out.ln_2_bias = l.ln_2_bias;
    out.c_attn = linear(l.c_attn_weight, l.c_attn_bias, 3 * d, d);
    out.attn_proj = linear(l.attn_proj_weight, l.attn_proj_bias, d, d);
    out.c_fc = linear(l.c_fc_weight, l.c_fc_bias, ff, d);
    out.mlp_proj = linear(l.mlp_proj_weight, l.mlp_proj_bias, d, ff);
    layers_.push_back(std::move(out));
  }
  head_ = linear(config_.tied_head ? k.wte : k.lm_head, {}, v, d);
}

Gpt Gpt::with_weights(const MatrixFormat& f) const {
  Gpt g;
  g.config_ = config_;
  g.checkpoint_ = checkpoint_;
  g.activations_ = activations_;
  g.build(f);
  return g;
}

Gpt Gpt::with_activations(std::optional<MatrixFormat> f) const {
  Gpt g = *this;
  g.activations_ = std::move(f);
  return g;
}

std::size_t Gpt::parameter_count() const {
  const Checkpoint& k = *checkpoint_;
  std::size_t n =
      k.wte.size() + k.wpe.size() + k.ln_f_weight.size() + k.ln_f_bias.size() + k.lm_head.size();
  for (const Checkpoint::Layer& l : k.layers) {
    for (const std::vector<float>* t :
         {&l.ln_1_weight, &l.ln_1_bias, &l.c_attn_weight, &l.c_attn_bias, &l.attn_proj_weight,
          &l.attn_proj_bias, &l.ln_2_weight, &l.ln_2_bias, &l.c_fc_weight, &l.c_fc_bias,
          &l.mlp_proj_weight, &l.mlp_proj_bias}) {
      n += t->size();
    }
  }
  return n;
}

std::size_t Gpt::weight_bytes() const {
  const Checkpoint& k = *checkpoint_;
  std::size_t fp32 = k.wte.size() + k.wpe.size() + k.ln_f_weight.size() + k.ln_f_bias.size();
  std::size_t packed = head_.weight.bytes();
  for (const Layer& l : layers_) {
    fp32 += l.ln_1_weight.size() + l.ln_1_bias.size() + l.ln_2_weight.size() + l.ln_2_bias.size();
    for (const Linear* lin : {&l.c_attn, &l.attn_proj, &l.c_fc, &l.mlp_proj}) {
      fp32 += lin->bias.size();
      packed += lin->weight.bytes();
    }
  }
  return packed + 4 * fp32;
}

double Gpt::linear_bits_per_weight() const {
  std::size_t bytes = head_.weight.bytes(), weights = head_.weight.rows() * head_.weight.cols();
  for (const Layer& l : layers_) {
    for (const Linear* lin : {&l.c_attn, &l.attn_proj, &l.c_fc, &l.mlp_proj}) {
      bytes += lin->weight.bytes();
      weights += lin->weight.rows() * lin->weight.cols();
    }
  }
  return weights == 0 ? 0.0 : 8.0 * static_cast<double>(bytes) / static_cast<double>(weights);
}

}  // namespace lowp::nn
