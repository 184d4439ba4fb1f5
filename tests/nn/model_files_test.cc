// The runtime's configuration parsing (config.json), its name/shape tables and
// llama.cpp's q/k interleaving; whole models are checked end to end by
// test_hf_models.py and test_llama_cpp.py.
#include "lowp/nn/model_files.h"

#include <gtest/gtest.h>

#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "lowp/error.h"

namespace lowp::nn {
namespace {

std::string llama_json(const std::string& extra) {
  return R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
    "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 300,
    "max_position_embeddings": 128)" +
         extra + "}";
}

std::string error_of(const std::string& json) {
  try {
    config_from_hf_json(json, "config.json").validate("config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HfConfig, LlamaDefaults) {
  const TransformerConfig c = config_from_hf_json(llama_json(""), "config.json");
  EXPECT_EQ(c.family, "llama");
  EXPECT_EQ(c.n_kv_head, 4);  // no num_key_value_heads: MHA
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_FALSE(c.tied_head);
  EXPECT_FALSE(c.qkv_bias || c.o_bias || c.mlp_bias || c.qk_norm || c.fused_qkv);
  EXPECT_EQ(c.norm, NormKind::kRmsNorm);
  EXPECT_EQ(c.mlp, MlpKind::kSwiGlu);
  EXPECT_FALSE(c.learned_positions);
}

TEST(HfConfig, FamiliesAndOptions) {
  TransformerConfig c = config_from_hf_json(
      R"({"architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
      "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
      "vocab_size": 300, "max_position_embeddings": 32768, "sliding_window": 4096,
      "use_sliding_window": false, "tie_word_embeddings": true, "eos_token_id": [7, 8]})",
      "config.json");
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_TRUE(c.tied_head);
  EXPECT_EQ(c.n_ctx, 32768);  // the window is off
  EXPECT_EQ(c.eos, 7);        // a list of ids: the first
  c = config_from_hf_json(
      R"({"architectures": ["MistralForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
      "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 300,
      "max_position_embeddings": 32768, "sliding_window": 4096})",
      "config.json");
  EXPECT_EQ(c.n_ctx, 4096);  // the context stops at the window
  c = config_from_hf_json(llama_json(R"(, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})"),
                          "config.json");
  EXPECT_EQ(c.rope_scaling, RopeScaling::kLlama3);
  // Short wavelengths keep their frequency, long ones are slowed by the factor.
  const std::vector<double> div = rope_frequency_divisors(c);
  ASSERT_EQ(div.size(), 8u);
  EXPECT_DOUBLE_EQ(div.front(), 1.0);
  EXPECT_DOUBLE_EQ(div.back(), 8.0);
  c = config_from_hf_json(
      R"({"architectures": ["GPT2LMHeadModel"], "n_embd": 64, "n_layer": 2, "n_head": 4,
      "vocab_size": 300})",
      "config.json");
  EXPECT_EQ(c.n_ctx, 1024);
  EXPECT_EQ(c.d_ff, 256);
  EXPECT_TRUE(c.tied_head && c.fused_qkv && c.learned_positions);
  EXPECT_EQ(c.mlp, MlpKind::kGeluTanh);
}

TEST(HfConfig, ErrorsNameTheKey) {
  EXPECT_NE(error_of(llama_json(R"(, "num_key_value_heads": 3)")).find("not a multiple"),
            std::string::npos);
  EXPECT_NE(error_of(llama_json(R"(, "hidden_act": "relu")")).find("hidden_act 'relu'"),
            std::string::npos);
  EXPECT_NE(error_of(llama_json(R"(, "num_experts": 8)")).find("mixture-of-experts"),
            std::string::npos);
  EXPECT_NE(error_of(llama_json(R"(, "rope_scaling": {"type": "dynamic", "factor": 2})"))
                .find("rope_scaling type 'dynamic'"),
            std::string::npos);
  EXPECT_NE(error_of(llama_json(R"(, "rope_scaling": {"rope_type": "llama3", "factor": 2})"))
                .find("rope_scaling.low_freq_factor' is missing"),
            std::string::npos);
  EXPECT_NE(error_of(llama_json(R"(, "vocab_size": "many")")).find("key 'vocab_size' is \"many\""),
            std::string::npos);
  EXPECT_NE(error_of(llama_json(R"(, "partial_rotary_factor": 0.5)")).find("partial_rotary"),
            std::string::npos);
  EXPECT_NE(error_of("[1, 2]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(error_of(R"({"architectures": ["BertModel"]})").find("'BertModel' is not supported"),
            std::string::npos);
  for (const std::string& e : {error_of("{"), error_of(llama_json(R"(, "head_dim": 0)"))}) {
    EXPECT_NE(e.find("config.json"), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
}

TEST(ModelFiles, QkInterleaveIsAPermutationAndItsInverse) {
  const std::size_t heads = 3, dh = 8, cols = 5;
  std::vector<float> m(heads * dh * cols);
  std::iota(m.begin(), m.end(), 0.0f);
  const std::vector<float> p = gguf_permute_qk(m, heads, dh, cols);
  EXPECT_EQ(gguf_unpermute_qk(p, heads, dh, cols), m);
  // Row 1 of head 0 (first half, b = 1) moves to row 2; row 4 (second half,
  // b = 0) to row 1.
  EXPECT_EQ(p[2 * cols], m[1 * cols]);
  EXPECT_EQ(p[1 * cols], m[4 * cols]);
  EXPECT_THROW(gguf_permute_qk(m, heads, dh + 1, cols), Error);
}

TEST(ModelFiles, EveryLayoutNamesEachRoleOnce) {
  for (const char* layout : {"lowp-gpt", "hf-llama", "hf-gpt2", "gguf-llama", "gguf-gpt2"}) {
    std::set<TensorRole> roles;
    std::set<std::string_view> names;
    for (const TensorName& t : tensor_names(layout)) {
      EXPECT_TRUE(roles.insert(t.role).second) << layout;
      EXPECT_TRUE(names.insert(t.name).second) << layout << " " << t.name;
    }
  }
  EXPECT_THROW(tensor_names("onnx"), Error);
}

}  // namespace
}  // namespace lowp::nn
