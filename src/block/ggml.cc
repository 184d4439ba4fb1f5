// ggml's block layouts: block_mxfp4 to and from lowp's packed MXFP4; the
// typed Q8_0 and MXFP4 entry points of ggml.h, which run the decoders and the
// quantizer of ggml_quants.cc.
#include "lowp/block/ggml.h"

#include <cstring>
#include <string>

#include "lowp/block/ggml_quants.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"

namespace lowp {
namespace {

constexpr std::size_t kQk = kGgmlBlockElements;

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

std::vector<GgmlBlockNvfp4> to_ggml_nvfp4(const PackedTensor& t) {
  constexpr std::size_t kBlock = kGgmlNvfp4BlockElements;
  constexpr std::size_t kSub = kGgmlNvfp4SubBlockElements;
  BlockFormat nvfp4;
  parse_block_format("nvfp4", nvfp4);
  if (t.format != nvfp4 || t.shape.empty() || t.axis != static_cast<int>(t.shape.size()) - 1 ||
      t.row_length() % kBlock != 0) {
    throw Error(
        "ggml's NVFP4 layout needs nvfp4 (blocks of 16) along the last axis, whose length is a "
        "multiple of 64; got " +
        block_format_name(t.format) + " along axis " + std::to_string(t.axis));
  }
  const std::size_t blocks_per_row = t.row_length() / kBlock;
  std::vector<GgmlBlockNvfp4> out(t.rows() * blocks_per_row);
  for (std::size_t row = 0; row < t.rows(); ++row) {
    for (std::size_t b = 0; b < blocks_per_row; ++b) {
      GgmlBlockNvfp4& g = out[row * blocks_per_row + b];
      for (std::size_t s = 0; s < kBlock / kSub; ++s) {
        const std::size_t first = b * kBlock + s * kSub;
        g.d[s] = t.scale(row, first / kSub);
        for (std::size_t j = 0; j < kSub / 2; ++j) {
          const std::uint32_t lo = t.code(row, first + j);
          const std::uint32_t hi = t.code(row, first + j + kSub / 2);
          g.qs[s * (kSub / 2) + j] = static_cast<std::uint8_t>(lo | (hi << 4));
        }
      }
    }
  }
  return out;
}

PackedTensor from_ggml_nvfp4(std::span<const GgmlBlockNvfp4> blocks,
                             std::span<const std::int64_t> shape, float tensor_scale) {
  constexpr std::size_t kBlock = kGgmlNvfp4BlockElements;
  constexpr std::size_t kSub = kGgmlNvfp4SubBlockElements;
  PackedTensor t;
  parse_block_format("nvfp4", t.format);
  t.shape.assign(shape.begin(), shape.end());
  if (shape.empty() || shape.back() < 0 || static_cast<std::size_t>(shape.back()) % kBlock != 0) {
    throw Error("ggml NVFP4 tensors need a last dimension that is a multiple of 64");
  }
  t.axis = static_cast<int>(shape.size()) - 1;
  t.tensor_scale = tensor_scale;
  const std::size_t n = t.element_count();
  if (blocks.size() * kBlock != n) {
    throw Error("ggml NVFP4 data holds " + std::to_string(blocks.size()) +
                " blocks but the shape needs " + std::to_string(n / kBlock));
  }
  t.scales.resize(n / kSub);
  std::vector<std::uint32_t> codes(n);
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    for (std::size_t s = 0; s < kBlock / kSub; ++s) {
      const auto d = static_cast<std::uint8_t>(blocks[b].d[s] & 0x7Fu);
      t.scales[b * (kBlock / kSub) + s] = d == 0x7F ? 0 : d;
      const std::size_t first = b * kBlock + s * kSub;
      for (std::size_t j = 0; j < kSub / 2; ++j) {
        const std::uint8_t q = blocks[b].qs[s * (kSub / 2) + j];
        codes[first + j] = q & 0x0Fu;
        codes[first + j + kSub / 2] = q >> 4;
      }
    }
  }
  t.elements.assign(packed_bytes(4, n), 0);
  pack_codes(4, codes, t.elements);
  return t;
}

void ggml_mxfp4_dequantize(std::span<const GgmlBlockMxfp4> blocks, std::span<float> out) {
  check_output("MXFP4", out.size(), blocks.size());
  ggml_dequantize(GgmlQuantType::kMxfp4, std::as_bytes(blocks), out);
}

std::vector<GgmlBlockQ8_0> ggml_q8_0_quantize(std::span<const float> x) {
  if (x.size() % kQk != 0) {
    throw Error("Q8_0 quantizes blocks of 32 values; got " + std::to_string(x.size()));
  }
  const std::vector<std::byte> bytes = ggml_quantize(GgmlQuantType::kQ8_0, x);
  std::vector<GgmlBlockQ8_0> out(x.size() / kQk);
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

void ggml_q8_0_dequantize(std::span<const GgmlBlockQ8_0> blocks, std::span<float> out) {
  check_output("Q8_0", out.size(), blocks.size());
  ggml_dequantize(GgmlQuantType::kQ8_0, std::as_bytes(blocks), out);
}

}  // namespace lowp
