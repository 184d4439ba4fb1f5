// The fp32 values of a GPT checkpoint's tensors (shared by gpt.cc, which loads
// them, and gpt_forward.cc, which reads the embeddings and final LayerNorm).
#pragma once

#include <vector>

#include "lowp/nn/gpt.h"

namespace lowp::nn {

// Every tensor of the checkpoint as fp32, named as charlm.py names them.
struct Gpt::Checkpoint {
  struct Layer {
    std::vector<float> ln_1_weight, ln_1_bias, c_attn_weight, c_attn_bias, attn_proj_weight,
        attn_proj_bias, ln_2_weight, ln_2_bias, c_fc_weight, c_fc_bias, mlp_proj_weight,
        mlp_proj_bias;
  };
  std::vector<float> wte, wpe, ln_f_weight, ln_f_bias, lm_head;  // lm_head empty when tied
  std::vector<Layer> layers;
};

}  // namespace lowp::nn
