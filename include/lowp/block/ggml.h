// lowp/block/ggml.h — ggml's MXFP4 block layout (GGUF tensor type MXFP4), so
// MXFP4 data moves between lowp and llama.cpp/ggml files unchanged.
//
// ggml's block_mxfp4 (ggml-common.h): per 32 elements, one E8M0 byte `e`, then
// 16 bytes `qs` where qs[j] holds element j in its low nibble and element j+16
// in its high nibble (lowp's dense layout has element 2i in the low nibble of
// byte i instead). Element nibbles are E2M1 codes in both.
//
// ggml decodes with a table of doubled E2M1 values {0,1,2,3,4,6,8,12,0,-1,...}
// times 2^(e-128) (GGML_E8M0_TO_FP32_HALF), in fp32. That equals lowp's X * P
// except at three edges, which ggml_mxfp4_dequantize reproduces: the code 0x8
// (-0) decodes to +0; e = 0xFF (E8M0 NaN) decodes as the finite 2^127 instead
// of NaN; and nothing else differs (products that overflow fp32 give ±Inf in
// both).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lowp/block/tensor.h"

namespace lowp {

struct GgmlBlockMxfp4 {
  std::uint8_t e;
  std::uint8_t qs[16];
};
static_assert(sizeof(GgmlBlockMxfp4) == 17, "ggml's block_mxfp4 is 17 bytes");

// lowp's packed MXFP4 (block size 32 along the last axis, whose length is a
// multiple of 32) as ggml blocks, in row order. Throws lowp::Error otherwise.
std::vector<GgmlBlockMxfp4> to_ggml_mxfp4(const PackedTensor& t);

// ggml blocks of a tensor of `shape` (last dimension a multiple of 32) as
// lowp's packed MXFP4. Throws lowp::Error if the block count does not match.
PackedTensor from_ggml_mxfp4(std::span<const GgmlBlockMxfp4> blocks,
                             std::span<const std::int64_t> shape);

// Decodes ggml blocks exactly as ggml's dequantize_row_mxfp4 does.
void ggml_mxfp4_dequantize(std::span<const GgmlBlockMxfp4> blocks, std::span<float> out);

}  // namespace lowp
