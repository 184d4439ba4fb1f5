// lowp/block/ggml_quants.h — ggml's quantized tensor types, the block layouts
// that GGUF files carry: their byte-exact structs, decoders that give the same
// fp32 bits as ggml's dequantize_row_* (ggml-quants.c), and ggml's reference
// quantizers (quantize_row_*_ref, which is what ggml_quantize_chunk runs when
// no importance matrix is given) for the types lowp writes.
//
// Layouts (ggml-common.h; fp16 fields hold IEEE binary16 bits; QK_K = 256):
//   Q4_0   per 32: d; qs[16]: element j in the low nibble of qs[j], j+16 in the
//          high nibble; x = (q - 8) * d.
//   Q4_1   per 32: d, m; qs as Q4_0; x = q * d + m.
//   Q5_0   per 32: d; qh (32 bits, bit j = 5th bit of element j); qs as Q4_0;
//          x = (q - 16) * d.
//   Q5_1   per 32: d, m; qh; qs; x = q * d + m.
//   Q8_0   per 32: d; qs[32] int8; x = q * d.
//   Q2_K   per 256: 16 sub-blocks of 16; scales[16] (4-bit scale | 4-bit min
//          << 4); 2-bit qs[64]; d, dmin; x = d*sc * q - dmin*m.
//   Q3_K   per 256: hmask[32] (3rd bit, set = no offset), 2-bit qs[64], 16
//          6-bit signed scales packed in 12 bytes, d; x = d*(sc-32) * (q - 4*!h).
//   Q4_K   per 256: d, dmin; 8 6-bit (scale, min) pairs in 12 bytes; 4-bit
//          qs[128]; x = d*sc * q - dmin*m.
//   Q5_K   as Q4_K plus qh[32] (5th bits).
//   Q6_K   per 256: ql[128] low 4 bits, qh[64] high 2 bits, int8 scales[16]
//          (one per 16), d; x = d*sc * (q - 32).
//   IQ4_NL per 32: d; qs as Q4_0; x = d * kvalues_iq4nl[q] (a fixed
//          non-linear table of 16 int8 values).
//   IQ4_XS per 256: d; 8 6-bit scales (low 4 bits in scales_l, high 2 in
//          scales_h); qs[128] as IQ4_NL per 32; x = d*(ls-32) * kvalues[q].
//   MXFP4  lowp/block/ggml.h.
//   NVFP4  per 64: d[4], one UE4M3 byte per 16 elements (E4M3 without its
//          sign bit, exponent bias 7), then qs[32]: sub-block s (elements
//          16s..16s+15) takes qs[8s..8s+7], element 16s+j in the low nibble
//          of qs[8s+j] and 16s+j+8 in its high nibble (j < 8). The nibbles
//          are E2M1 codes; ggml decodes them from its doubled table
//          kvalues_mxfp4 times half the UE4M3 value, so x = e2m1 * ue4m3:
//          bytes 0x00 and 0x7F (and 0x80, exponent and mantissa 0) give a zero
//          scale; bit 7 is otherwise ignored. A tensor's FP32 per-tensor scale
//          is not in the blocks: llama.cpp's converter stores it as a separate
//          F32 tensor (lowp/io/gguf.h), applied to the matrix product.
// The element order inside a block and the exact fp32 operation order of each
// decoder are in src/block/ggml_quants.cc, type by type.
//
// Where ggml's C relies on behaviour C leaves undefined (a float out of an
// integer type's range converted to it, in the quantizers) lowp reproduces
// what ggml's x86-64 build does: cvttss2si's 0x80000000, then the low bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "lowp/block/ggml.h"

namespace lowp {

// Elements per K-quant super-block (ggml's QK_K).
inline constexpr std::size_t kGgmlSuperBlockElements = 256;

struct GgmlBlockQ4_0 {
  std::uint16_t d;
  std::uint8_t qs[16];
};
static_assert(sizeof(GgmlBlockQ4_0) == 18, "ggml's block_q4_0 is 18 bytes");

struct GgmlBlockQ4_1 {
  std::uint16_t d, m;
  std::uint8_t qs[16];
};
static_assert(sizeof(GgmlBlockQ4_1) == 20, "ggml's block_q4_1 is 20 bytes");

struct GgmlBlockQ5_0 {
  std::uint16_t d;
  std::uint8_t qh[4];
  std::uint8_t qs[16];
};
static_assert(sizeof(GgmlBlockQ5_0) == 22, "ggml's block_q5_0 is 22 bytes");

struct GgmlBlockQ5_1 {
  std::uint16_t d, m;
  std::uint8_t qh[4];
  std::uint8_t qs[16];
};
static_assert(sizeof(GgmlBlockQ5_1) == 24, "ggml's block_q5_1 is 24 bytes");

struct GgmlBlockQ2_K {
  std::uint8_t scales[16];
  std::uint8_t qs[64];
  std::uint16_t d, dmin;
};
static_assert(sizeof(GgmlBlockQ2_K) == 84, "ggml's block_q2_K is 84 bytes");

struct GgmlBlockQ3_K {
  std::uint8_t hmask[32];
  std::uint8_t qs[64];
  std::uint8_t scales[12];
  std::uint16_t d;
};
static_assert(sizeof(GgmlBlockQ3_K) == 110, "ggml's block_q3_K is 110 bytes");

struct GgmlBlockQ4_K {
  std::uint16_t d, dmin;
  std::uint8_t scales[12];
  std::uint8_t qs[128];
};
static_assert(sizeof(GgmlBlockQ4_K) == 144, "ggml's block_q4_K is 144 bytes");

struct GgmlBlockQ5_K {
  std::uint16_t d, dmin;
  std::uint8_t scales[12];
  std::uint8_t qh[32];
  std::uint8_t qs[128];
};
static_assert(sizeof(GgmlBlockQ5_K) == 176, "ggml's block_q5_K is 176 bytes");

struct GgmlBlockQ6_K {
  std::uint8_t ql[128];
  std::uint8_t qh[64];
  std::int8_t scales[16];
  std::uint16_t d;
};
static_assert(sizeof(GgmlBlockQ6_K) == 210, "ggml's block_q6_K is 210 bytes");

struct GgmlBlockIq4Nl {
  std::uint16_t d;
  std::uint8_t qs[16];
};
static_assert(sizeof(GgmlBlockIq4Nl) == 18, "ggml's block_iq4_nl is 18 bytes");

struct GgmlBlockIq4Xs {
  std::uint16_t d;
  std::uint16_t scales_h;
  std::uint8_t scales_l[4];
  std::uint8_t qs[128];
};
static_assert(sizeof(GgmlBlockIq4Xs) == 136, "ggml's block_iq4_xs is 136 bytes");

// Elements per block of ggml's NVFP4 (QK_NVFP4) and per UE4M3 scale (QK_NVFP4_SUB).
inline constexpr std::size_t kGgmlNvfp4BlockElements = 64;
inline constexpr std::size_t kGgmlNvfp4SubBlockElements = 16;

struct GgmlBlockNvfp4 {
  std::uint8_t d[4];    // UE4M3 scale of each 16 elements
  std::uint8_t qs[32];  // E2M1 codes, two per byte (see the layout above)
};
static_assert(sizeof(GgmlBlockNvfp4) == 36, "ggml's block_nvfp4 is 36 bytes");

// lowp's packed NVFP4 (blocks of 16 along the last axis, whose length is a
// multiple of 64) as ggml blocks, in row order: lowp's E4M3 scale bytes as
// they are (lowp's scales are positive, so the sign bit ggml ignores is
// clear) and the E2M1 codes reordered. t.tensor_scale is not in the blocks
// (llama.cpp keeps it in a separate F32 tensor, lowp/io/gguf.h). ggml decodes
// the blocks to e2m1 * e4m3, which is lowp's nvfp4_value with tensor_scale 1
// except that code 0x8 (-0) gives +0 and a NaN scale (0x7F: a block that held
// NaN or Inf) gives 0. Throws lowp::Error for any other tensor.
std::vector<GgmlBlockNvfp4> to_ggml_nvfp4(const PackedTensor& t);

// The inverse, for a tensor of `shape` (last dimension a multiple of 64) whose
// F32 scale tensor holds `tensor_scale`: lowp's packed NVFP4 along the last
// axis with ggml's codes and scale bytes, so that lowp decodes the values
// ggml does (up to the rounding of one product: ggml multiplies e2m1 * e4m3
// by the scale tensor, lowp e2m1 by tensor_scale * e4m3). A scale byte's sign
// bit, which ggml ignores, is cleared; 0x7F, which ggml reads as 0, becomes 0.
// Throws lowp::Error when the block count does not match the shape.
PackedTensor from_ggml_nvfp4(std::span<const GgmlBlockNvfp4> blocks,
                             std::span<const std::int64_t> shape, float tensor_scale);

// ggml's enum ggml_type numbers (ggml.h) of the quantized types lowp decodes.
enum class GgmlQuantType : std::uint32_t {
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kIq4Nl = 20,
  kIq4Xs = 23,
  kMxfp4 = 39,
  kNvfp4 = 40,
};

// One row of lowp's table of ggml quantized types (ggml's type_traits).
struct GgmlQuantInfo {
  GgmlQuantType type;
  std::string_view name;       // gguf-py's spelling: "Q4_0", "IQ4_XS", "MXFP4"
  std::size_t block_elements;  // blck_size
  std::size_t block_bytes;     // type_size
  bool has_quantizer;          // ggml_quantize supports it
};

// Every type above, in enum order.
std::span<const GgmlQuantInfo> ggml_quant_types();
// The row for a ggml type number or name; nullopt if lowp does not decode it.
std::optional<GgmlQuantInfo> ggml_quant_info(std::uint32_t id);
std::optional<GgmlQuantInfo> ggml_quant_info(std::string_view name);

// Decodes `bytes` (whole blocks of `type`) into `out`, one float per element,
// bit for bit as ggml's dequantize_row_* does on x86-64 (NaN payloads aside,
// which compilers may pick either operand's of). Any bytes are valid input.
// Throws lowp::Error if bytes.size() is not a whole number of blocks or
// out.size() is not the number of elements they hold.
void ggml_dequantize(GgmlQuantType type, std::span<const std::byte> bytes, std::span<float> out);

// Quantizes `x` (rows laid end to end; x.size() a multiple of the block size)
// as ggml_quantize_chunk(type, ..., imatrix = NULL) does, byte for byte.
// Supported: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K, MXFP4, NVFP4
// (has_quantizer). ggml's NVFP4 quantizer (quantize_row_nvfp4_ref) has no
// per-tensor scale: each 16 gets the UE4M3 scale amax / 6, rounded half up
// (ggml_fp32_to_ue4m3), so scales below 2^-10 flush to zero; lowp's own NVFP4
// rule (lowp/block/mx.h) with to_ggml_nvfp4 (lowp/block/ggml.h) is what
// `lowp quantize` writes.
// Throws lowp::Error for other types or a partial block.
std::vector<std::byte> ggml_quantize(GgmlQuantType type, std::span<const float> x);

// ggml's scalar fp16 conversions (ggml_compute_fp16_to_fp32 and
// ggml_compute_fp32_to_fp16 in ggml-impl.h): round to nearest even, overflow
// to infinity, every NaN to a quiet NaN (0x7E00 with the sign, when encoding).
float ggml_fp16_to_fp32(std::uint16_t h);
std::uint16_t ggml_fp32_to_fp16(float f);

}  // namespace lowp
