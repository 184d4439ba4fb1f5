// What ggml_quants.cc (the type table and decoders) and ggml_quantize.cc
// (ggml's reference quantizers) share: one quantizer per type, each writing
// x.size() / block_elements whole blocks to `out` (already sized).
#pragma once

#include <cstddef>
#include <span>

namespace lowp::ggml_detail {

void quantize_q4_0(std::span<const float> x, std::span<std::byte> out);
void quantize_q4_1(std::span<const float> x, std::span<std::byte> out);
void quantize_q5_0(std::span<const float> x, std::span<std::byte> out);
void quantize_q5_1(std::span<const float> x, std::span<std::byte> out);
void quantize_q8_0(std::span<const float> x, std::span<std::byte> out);
void quantize_q4_k(std::span<const float> x, std::span<std::byte> out);
void quantize_q6_k(std::span<const float> x, std::span<std::byte> out);
void quantize_mxfp4(std::span<const float> x, std::span<std::byte> out);

}  // namespace lowp::ggml_detail
