// What ggml_quants.cc (the type table and decoders) and ggml_quantize.cc
// (ggml's reference quantizers) share: one quantizer per type, each writing
// x.size() / block_elements whole blocks to `out` (already sized).
#pragma once

#include <cstddef>
#include <cstdint>
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
void quantize_nvfp4(std::span<const float> x, std::span<std::byte> out);

// ggml's UE4M3 scale conversions for NVFP4 (ggml_ue4m3_to_fp32, which returns
// half the value, and ggml_fp32_to_ue4m3), bit for bit.
float ue4m3_half(std::uint8_t x);
std::uint8_t fp32_to_ue4m3(float x);

}  // namespace lowp::ggml_detail
