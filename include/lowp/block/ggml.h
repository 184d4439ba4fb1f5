// lowp/block/ggml.h — ggml's block layouts MXFP4 and Q8_0 as structs, with
// MXFP4's conversion to and from lowp's packed MXFP4, so that data moves
// between lowp and llama.cpp/ggml files unchanged. Every other quantized GGUF
// type, and the generic decoder and quantizers these typed entry points run,
// are in lowp/block/ggml_quants.h.
//
// ggml's block_q8_0 (ggml-common.h): per 32 elements, the scale d as fp16
// bits, then 32 int8 values qs; element j is qs[j] * d. ggml's reference
// quantizer and decoder are ggml_q8_0_quantize / ggml_q8_0_dequantize below.
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

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "lowp/block/tensor.h"

namespace lowp {

// Elements per block of both layouts (ggml's QK_MXFP4 and QK8_0).
inline constexpr std::size_t kGgmlBlockElements = 32;

struct GgmlBlockMxfp4 {
  std::uint8_t e;
  std::uint8_t qs[16];
};
static_assert(sizeof(GgmlBlockMxfp4) == 17, "ggml's block_mxfp4 is 17 bytes");

// The file bytes of a block are the struct's bytes on a little-endian host.
static_assert(std::endian::native == std::endian::little, "ggml's blocks are little-endian");

struct GgmlBlockQ8_0 {
  std::uint16_t d;  // the scale, fp16 bits
  std::int8_t qs[kGgmlBlockElements];
};
static_assert(sizeof(GgmlBlockQ8_0) == 34, "ggml's block_q8_0 is 34 bytes");

// lowp's packed MXFP4 (block size 32 along the last axis, whose length is a
// multiple of 32) as ggml blocks, in row order. Throws lowp::Error otherwise.
std::vector<GgmlBlockMxfp4> to_ggml_mxfp4(const PackedTensor& t);

// ggml blocks of a tensor of `shape` (last dimension a multiple of 32) as
// lowp's packed MXFP4. Throws lowp::Error if the block count does not match.
PackedTensor from_ggml_mxfp4(std::span<const GgmlBlockMxfp4> blocks,
                             std::span<const std::int64_t> shape);

// Decodes ggml blocks exactly as ggml's dequantize_row_mxfp4 does.
void ggml_mxfp4_dequantize(std::span<const GgmlBlockMxfp4> blocks, std::span<float> out);

// ggml's quantize_row_q8_0_ref, bit for bit (ggml_quantize's Q8_0): per 32
// values, amax = max |x|, d = amax / 127, q = roundf(x / d) (ties away from
// zero; via x * (1/d), as ggml does), d stored as fp16 rounded to nearest
// even (ggml_fp32_to_fp16). x.size() must be a
// multiple of 32 (else lowp::Error). Where ggml relies on undefined behaviour
// (NaN inputs make roundf NaN, which ggml converts to int8 unchecked) this
// gives q = 0, as ggml does on x86-64.
std::vector<GgmlBlockQ8_0> ggml_q8_0_quantize(std::span<const float> x);

// Decodes as ggml's dequantize_row_q8_0: out[32 b + j] = qs[j] * d in fp32.
// out.size() must be 32 * blocks.size() (else lowp::Error).
void ggml_q8_0_dequantize(std::span<const GgmlBlockQ8_0> blocks, std::span<float> out);

}  // namespace lowp
