// ggml's block layouts: block_mxfp4 to and from lowp's packed MXFP4, and
// ggml's own decoding (ggml.h explains the differences it reproduces);
// block_q8_0's reference quantizer and decoder.
#include "lowp/block/ggml.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "lowp/error.h"
#include "lowp/format/convert.h"

namespace lowp {
namespace {

constexpr std::size_t kQk = kGgmlBlockElements;

// ggml's kvalues_mxfp4: E2M1 values doubled, so they are integers.
constexpr std::int8_t kDoubledE2m1[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// GGML_E8M0_TO_FP32_HALF: 2^(e-128) built from bits (2^-128 and 2^-127 are fp32
// subnormals); e = 0xFF gives 2^127.
float e8m0_half(std::uint8_t e) {
  const std::uint32_t bits =
      e < 2 ? (std::uint32_t{0x00200000} << e) : (std::uint32_t{e} - 1) << 23;
  return std::bit_cast<float>(bits);
}

BlockFormat mxfp4_format() {
  BlockFormat f;
  parse_block_format("mxfp4", f);
  return f;
}

// A dequantizer's output must hold exactly the blocks' values.
void check_output(const std::string& type, std::size_t values, std::size_t blocks) {
  if (values != blocks * kQk) {
    throw Error("ggml " + type + ": output holds " + std::to_string(values) + " values for " +
                std::to_string(blocks) + " blocks");
  }
}

bool is_ggml_compatible(const PackedTensor& t) {
  return t.format == mxfp4_format() && !t.shape.empty() &&
         t.axis == static_cast<int>(t.shape.size()) - 1 && t.row_length() % kQk == 0;
}

}  // namespace

std::vector<GgmlBlockMxfp4> to_ggml_mxfp4(const PackedTensor& t) {
  if (!is_ggml_compatible(t)) {
    throw Error(
        "ggml's MXFP4 layout needs mxfp4 with 32-element blocks along the last axis, "
        "whose length is a multiple of 32; got " +
        block_format_name(t.format) + " along axis " + std::to_string(t.axis));
  }
  const std::size_t blocks_per_row = t.blocks_per_row();
  std::vector<GgmlBlockMxfp4> out(t.rows() * blocks_per_row);
  for (std::size_t row = 0; row < t.rows(); ++row) {
    for (std::size_t b = 0; b < blocks_per_row; ++b) {
      GgmlBlockMxfp4& g = out[row * blocks_per_row + b];
      g.e = t.scale(row, b);
      for (std::size_t j = 0; j < kQk / 2; ++j) {
        const std::uint32_t lo = t.code(row, b * kQk + j);
        const std::uint32_t hi = t.code(row, b * kQk + j + kQk / 2);
        g.qs[j] = static_cast<std::uint8_t>(lo | (hi << 4));
      }
    }
  }
  return out;
}

PackedTensor from_ggml_mxfp4(std::span<const GgmlBlockMxfp4> blocks,
                             std::span<const std::int64_t> shape) {
  PackedTensor t;
  t.format = mxfp4_format();
  t.shape.assign(shape.begin(), shape.end());
  if (shape.empty() || shape.back() < 0 || static_cast<std::size_t>(shape.back()) % kQk != 0) {
    throw Error("ggml MXFP4 tensors need a last dimension that is a multiple of 32");
  }
  t.axis = static_cast<int>(shape.size()) - 1;
  const std::size_t n = t.element_count();
  if (blocks.size() * kQk != n) {
    throw Error("ggml MXFP4 data holds " + std::to_string(blocks.size()) +
                " blocks but the shape needs " + std::to_string(n / kQk));
  }
  t.scales.resize(blocks.size());
  std::vector<std::uint32_t> codes(n);
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    t.scales[b] = blocks[b].e;
    for (std::size_t j = 0; j < kQk / 2; ++j) {
      codes[b * kQk + j] = blocks[b].qs[j] & 0x0Fu;
      codes[b * kQk + j + kQk / 2] = blocks[b].qs[j] >> 4;
    }
  }
  t.elements.assign(packed_bytes(4, n), 0);
  pack_codes(4, codes, t.elements);
  return t;
}

void ggml_mxfp4_dequantize(std::span<const GgmlBlockMxfp4> blocks, std::span<float> out) {
  check_output("MXFP4", out.size(), blocks.size());
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const float d = e8m0_half(blocks[b].e);
    for (std::size_t j = 0; j < kQk / 2; ++j) {
      out[b * kQk + j] = static_cast<float>(kDoubledE2m1[blocks[b].qs[j] & 0x0F]) * d;
      out[b * kQk + j + kQk / 2] = static_cast<float>(kDoubledE2m1[blocks[b].qs[j] >> 4]) * d;
    }
  }
}

std::vector<GgmlBlockQ8_0> ggml_q8_0_quantize(std::span<const float> x) {
  if (x.size() % kQk != 0) {
    throw Error("Q8_0 quantizes blocks of 32 values; got " + std::to_string(x.size()));
  }
  std::vector<GgmlBlockQ8_0> out(x.size() / kQk);
  for (std::size_t b = 0; b < out.size(); ++b) {
    const std::span<const float> blk = x.subspan(b * kQk, kQk);
    float amax = 0.0f;
    for (float v : blk) {
      const float a = std::fabs(v);
      amax = amax > a ? amax : a;  // ggml's MAX(amax, fabsf(v)), NaN behaviour included
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;  // NaN d is "true" in C too
    out[b].d = static_cast<std::uint16_t>(encode(kFp16, static_cast<double>(d)));
    for (std::size_t j = 0; j < kQk; ++j) {
      const float r = std::round(blk[j] * id);
      // C's float -> int8_t conversion of roundf's result; out of int32 range
      // (only Inf or NaN here) x86-64's cvttss2si gives 0x80000000, whose low
      // byte is 0.
      const std::uint32_t q = std::fabs(r) < 2147483648.0f
                                  ? static_cast<std::uint32_t>(static_cast<std::int32_t>(r))
                                  : 0x80000000u;
      out[b].qs[j] = static_cast<std::int8_t>(static_cast<std::uint8_t>(q & 0xFF));
    }
  }
  return out;
}

void ggml_q8_0_dequantize(std::span<const GgmlBlockQ8_0> blocks, std::span<float> out) {
  check_output("Q8_0", out.size(), blocks.size());
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const float d = decode_f32(kFp16, blocks[b].d);
    for (std::size_t j = 0; j < kQk; ++j)
      out[b * kQk + j] = static_cast<float>(blocks[b].qs[j]) * d;
  }
}

}  // namespace lowp
