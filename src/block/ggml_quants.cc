// ggml's quantized GGUF tensor types: the type table and decoders that match
// ggml-quants.c's dequantize_row_* bit for bit (lowp/block/ggml_quants.h).
//
// Each decoder below computes every output with the same fp32 operations in
// the same order as ggml's C (a product of a float and an int converts the int
// first; a*b*c is (a*b)*c), so that results are identical, not just close.
// This file is compiled with -ffp-contract=off, as ggml's x86-64 build (no
// FMA in its base library) effectively is.
#include "lowp/block/ggml_quants.h"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "ggml_quants_internal.h"
#include "lowp/error.h"

namespace lowp {

float ggml_fp16_to_fp32(std::uint16_t h) {
  // The binary16 bits moved to the top of a word; normal values are rebiased by
  // an exponent offset and a multiply by 2^-112, subnormals built as
  // (0.5 + m * 2^-23 * ...) - 0.5 via a magic float.
  const std::uint32_t w = std::uint32_t{h} << 16;
  const std::uint32_t sign = w & 0x80000000u;
  const std::uint32_t two_w = w + w;
  const float normalized = std::bit_cast<float>((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float denormalized = std::bit_cast<float>((two_w >> 17) | (126u << 23)) - 0.5f;
  const std::uint32_t magnitude = two_w < (1u << 27) ? std::bit_cast<std::uint32_t>(denormalized)
                                                     : std::bit_cast<std::uint32_t>(normalized);
  return std::bit_cast<float>(sign | magnitude);
}

std::uint16_t ggml_fp32_to_fp16(float f) {
  // Scaling |f| by 2^112 then 2^-110 overflows what binary16 cannot hold to
  // infinity; adding a power of two chosen from f's exponent leaves the
  // binary16 significand, rounded to nearest even, in the low bits.
  float base = (std::fabs(f) * 0x1.0p+112f) * 0x1.0p-110f;
  const std::uint32_t w = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t shl1_w = w + w;
  const std::uint32_t sign = w & 0x80000000u;
  std::uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = std::bit_cast<float>((bias >> 1) + 0x07800000u) + base;
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(base);
  const std::uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const std::uint32_t mantissa_bits = bits & 0x00000FFFu;
  const std::uint32_t nonsign = exp_bits + mantissa_bits;
  return static_cast<std::uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

namespace ggml_detail {

// ggml_ue4m3_to_fp32 (ggml-impl.h): bits 6..3 the exponent (bias 7), bits 2..0
// the mantissa, bit 7 ignored; 0x00 and 0x7F give 0; the result is halved,
// to go with the doubled E2M1 table. Every step is exact in fp32.
float ue4m3_half(std::uint8_t x) {
  if (x == 0 || x == 0x7F) return 0.0f;
  const int exp = (x >> 3) & 0xF;
  const int man = x & 0x7;
  const float raw = exp == 0 ? std::ldexp(static_cast<float>(man), -9)
                             : std::ldexp(1.0f + static_cast<float>(man) / 8.0f, exp - 7);
  return raw * 0.5f;
}

// ggml_fp32_to_ue4m3 (ggml-impl.h): 0 for x <= 0 or NaN; x clamped to 448;
// normal results round half up on the fourth mantissa bit (not to nearest
// even), and the top code is 0x7E (448); subnormals (x < 2^-6) round half up
// to m * 2^-9, and to 0 below 2^-10.
std::uint8_t fp32_to_ue4m3(float x) {
  if (!(x > 0.0f)) return 0;
  if (x > 448.0f) x = 448.0f;
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const int fp32_exp = static_cast<int>((bits >> 23) & 0xFF) - 127;
  const int fp32_man = static_cast<int>((bits >> 20) & 0x7);
  int exp = fp32_exp + 7;
  if (exp <= 0) {
    // x < 2^-6 here, so the product cannot leave int's range.
    int man = static_cast<int>(x * 512.0f + 0.5f);
    if (man > 7) man = 7;
    if (man < 1) return 0;
    return static_cast<std::uint8_t>(man);
  }
  if (exp >= 15) return 0x7E;
  int man = fp32_man + static_cast<int>((bits >> 19) & 1);
  if (man > 7) {
    man = 0;
    ++exp;
    if (exp >= 15) return 0x7E;
  }
  return static_cast<std::uint8_t>((exp << 3) | man);
}

}  // namespace ggml_detail

namespace {

constexpr std::size_t kQk = kGgmlBlockElements;        // 32
constexpr std::size_t kQkK = kGgmlSuperBlockElements;  // 256

float half(std::uint16_t h) { return ggml_fp16_to_fp32(h); }
float f(int i) { return static_cast<float>(i); }

// ggml's kvalues_iq4nl: IQ4's non-linear 4-bit code book.
constexpr std::int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                          1,    13,   25,  38,  53,  69,  89,  113};
// ggml's kvalues_mxfp4: E2M1 values doubled.
constexpr std::int8_t kMxfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// GGML_E8M0_TO_FP32_HALF: 2^(e-128) from bits; e = 0xFF gives 2^127, not NaN.
float e8m0_half(std::uint8_t e) {
  const std::uint32_t bits =
      e < 2 ? (std::uint32_t{0x00200000} << e) : (std::uint32_t{e} - 1) << 23;
  return std::bit_cast<float>(bits);
}

// Blocks of 32 whose element j sits in the low nibble of qs[j] and element
// j+16 in the high nibble; value(q, j) gives element j's float from its code.
template <typename Value>
void split_nibbles(const std::uint8_t* qs, float* y, Value value) {
  for (std::size_t j = 0; j < kQk / 2; ++j) {
    y[j] = value(qs[j] & 0x0F, j);
    y[j + kQk / 2] = value(qs[j] >> 4, j + kQk / 2);
  }
}

void decode_q4_0(const GgmlBlockQ4_0& b, float* y) {
  const float d = half(b.d);
  split_nibbles(b.qs, y, [&](int q, std::size_t) { return f(q - 8) * d; });
}

void decode_q4_1(const GgmlBlockQ4_1& b, float* y) {
  const float d = half(b.d), m = half(b.m);
  split_nibbles(b.qs, y, [&](int q, std::size_t) { return f(q) * d + m; });
}

std::uint32_t qh_word(const std::uint8_t (&qh)[4]) {
  std::uint32_t w;
  std::memcpy(&w, qh, 4);
  return w;
}

void decode_q5_0(const GgmlBlockQ5_0& b, float* y) {
  const float d = half(b.d);
  const std::uint32_t qh = qh_word(b.qh);
  split_nibbles(b.qs, y, [&](int q, std::size_t j) {
    const int high = static_cast<int>((qh >> j) & 1u) << 4;
    return f((q | high) - 16) * d;
  });
}

void decode_q5_1(const GgmlBlockQ5_1& b, float* y) {
  const float d = half(b.d), m = half(b.m);
  const std::uint32_t qh = qh_word(b.qh);
  split_nibbles(b.qs, y, [&](int q, std::size_t j) {
    const int high = static_cast<int>((qh >> j) & 1u) << 4;
    return f(q | high) * d + m;
  });
}

void decode_q8_0(const GgmlBlockQ8_0& b, float* y) {
  const float d = half(b.d);
  for (std::size_t j = 0; j < kQk; ++j) y[j] = f(b.qs[j]) * d;
}

void decode_mxfp4(const GgmlBlockMxfp4& b, float* y) {
  const float d = e8m0_half(b.e);
  split_nibbles(b.qs, y, [&](int q, std::size_t) { return f(kMxfp4Values[q]) * d; });
}

// NVFP4: four sub-blocks of 16, each split as Q4_0's 32 are (element j low,
// j + 8 high), with the halved UE4M3 scale times the doubled E2M1 table.
void decode_nvfp4(const GgmlBlockNvfp4& b, float* y) {
  constexpr std::size_t kSub = kGgmlNvfp4SubBlockElements;
  for (std::size_t s = 0; s < 4; ++s) {
    const float d = ggml_detail::ue4m3_half(b.d[s]);
    const std::uint8_t* qs = b.qs + s * (kSub / 2);
    float* yb = y + s * kSub;
    for (std::size_t j = 0; j < kSub / 2; ++j) {
      yb[j] = f(kMxfp4Values[qs[j] & 0x0F]) * d;
      yb[j + kSub / 2] = f(kMxfp4Values[qs[j] >> 4]) * d;
    }
  }
}

void decode_iq4_nl(const GgmlBlockIq4Nl& b, float* y) {
  const float d = half(b.d);
  split_nibbles(b.qs, y, [&](int q, std::size_t) { return d * f(kIq4nlValues[q]); });
}

// Q2_K and Q3_K order: each half of 128 elements takes 32 bytes of 2-bit
// codes; element 32*j + 16*h + l of the half is byte 16*h + l's bits 2j..2j+1
// and uses sub-block scale 8*half + 2*j + h.
void decode_q2_k(const GgmlBlockQ2_K& b, float* y) {
  const float d = half(b.d), dmin = half(b.dmin);
  for (std::size_t part = 0; part < 2; ++part) {
    const std::uint8_t* q = b.qs + 32 * part;
    for (int j = 0; j < 4; ++j) {
      for (std::size_t h = 0; h < 2; ++h) {
        const std::uint8_t sc = b.scales[8 * part + 2 * static_cast<std::size_t>(j) + h];
        const float dl = d * f(sc & 0xF), ml = dmin * f(sc >> 4);
        for (std::size_t l = 0; l < 16; ++l) *y++ = dl * f((q[16 * h + l] >> (2 * j)) & 3) - ml;
      }
    }
  }
}

// Q3_K's 16 6-bit scales: low 4 bits are nibbles of bytes 0..7 (scale j < 8 in
// the low nibble of byte j, scale j >= 8 in the high nibble of byte j-8), high
// 2 bits are bit pair j/4 of byte 8 + j%4.
int q3_k_scale(const std::uint8_t (&scales)[12], std::size_t j) {
  const int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
  const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

void decode_q3_k(const GgmlBlockQ3_K& b, float* y) {
  const float d_all = half(b.d);
  for (std::size_t part = 0; part < 2; ++part) {
    const std::uint8_t* q = b.qs + 32 * part;
    for (int j = 0; j < 4; ++j) {
      const int hbit = 1 << (4 * static_cast<int>(part) + j);
      for (std::size_t h = 0; h < 2; ++h) {
        const float dl =
            d_all * f(q3_k_scale(b.scales, 8 * part + 2 * static_cast<std::size_t>(j) + h));
        for (std::size_t l = 0; l < 16; ++l) {
          const int low = (q[16 * h + l] >> (2 * j)) & 3;
          const int offset = (b.hmask[16 * h + l] & hbit) ? 0 : 4;
          *y++ = dl * f(low - offset);
        }
      }
    }
  }
}

// Q4_K/Q5_K's 8 (scale, min) pairs of 6 bits (ggml's get_scale_min_k4).
void scale_min_k4(std::size_t j, const std::uint8_t (&q)[12], int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Q4_K/Q5_K order: 64 elements per pair of sub-blocks; the first 32 take the
// low nibbles of 32 bytes, the next 32 their high nibbles.
void decode_q4_k(const GgmlBlockQ4_K& b, float* y) {
  const float d = half(b.d), dmin = half(b.dmin);
  for (std::size_t j = 0; j < 4; ++j) {
    const std::uint8_t* q = b.qs + 32 * j;
    int sc, m;
    scale_min_k4(2 * j, b.scales, sc, m);
    const float d1 = d * f(sc), m1 = dmin * f(m);
    scale_min_k4(2 * j + 1, b.scales, sc, m);
    const float d2 = d * f(sc), m2 = dmin * f(m);
    for (std::size_t l = 0; l < 32; ++l) *y++ = d1 * f(q[l] & 0xF) - m1;
    for (std::size_t l = 0; l < 32; ++l) *y++ = d2 * f(q[l] >> 4) - m2;
  }
}

void decode_q5_k(const GgmlBlockQ5_K& b, float* y) {
  const float d = half(b.d), dmin = half(b.dmin);
  for (std::size_t j = 0; j < 4; ++j) {
    const std::uint8_t* ql = b.qs + 32 * j;
    const int u1 = 1 << (2 * j), u2 = 2 << (2 * j);
    int sc, m;
    scale_min_k4(2 * j, b.scales, sc, m);
    const float d1 = d * f(sc), m1 = dmin * f(m);
    scale_min_k4(2 * j + 1, b.scales, sc, m);
    const float d2 = d * f(sc), m2 = dmin * f(m);
    for (std::size_t l = 0; l < 32; ++l)
      *y++ = d1 * f((ql[l] & 0xF) + ((b.qh[l] & u1) ? 16 : 0)) - m1;
    for (std::size_t l = 0; l < 32; ++l)
      *y++ = d2 * f((ql[l] >> 4) + ((b.qh[l] & u2) ? 16 : 0)) - m2;
  }
}

// Q6_K order: each half of 128 elements takes 64 bytes of ql and 32 of qh;
// element 32*k + l of the half (k = 0..3) is the low (k < 2) or high nibble
// of ql[l + 32*(k%2)] with bit pair k of qh[l], and scale 8*half + l/16 + 2k.
void decode_q6_k(const GgmlBlockQ6_K& b, float* y) {
  const float d = half(b.d);
  for (std::size_t part = 0; part < 2; ++part) {
    const std::uint8_t* ql = b.ql + 64 * part;
    const std::uint8_t* qh = b.qh + 32 * part;
    const std::int8_t* sc = b.scales + 8 * part;
    for (std::size_t l = 0; l < 32; ++l) {
      const std::size_t is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * f(sc[is]) * f(q1);
      y[l + 32] = d * f(sc[is + 2]) * f(q2);
      y[l + 64] = d * f(sc[is + 4]) * f(q3);
      y[l + 96] = d * f(sc[is + 6]) * f(q4);
    }
    y += 128;
  }
}

void decode_iq4_xs(const GgmlBlockIq4Xs& b, float* y) {
  const float d = half(b.d);
  for (std::size_t ib = 0; ib < kQkK / 32; ++ib) {
    const int ls =
        ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((b.scales_h >> (2 * ib)) & 3) << 4);
    const float dl = d * f(ls - 32);
    const std::uint8_t* qs = b.qs + 16 * ib;
    for (std::size_t j = 0; j < 16; ++j) {
      y[j] = dl * f(kIq4nlValues[qs[j] & 0xF]);
      y[j + 16] = dl * f(kIq4nlValues[qs[j] >> 4]);
    }
    y += 32;
  }
}

using Decoder = void (*)(std::span<const std::byte>, std::span<float>);
using Quantizer = void (*)(std::span<const float>, std::span<std::byte>);

// Decodes whole blocks: each is copied out (tensor data need not be aligned
// for the struct), then decoded into its elements.
template <typename Block, std::size_t kElements, void (*kDecode)(const Block&, float*)>
void decode_blocks(std::span<const std::byte> bytes, std::span<float> out) {
  const std::size_t blocks = bytes.size() / sizeof(Block);
  for (std::size_t i = 0; i < blocks; ++i) {
    Block b;
    std::memcpy(&b, bytes.data() + i * sizeof(Block), sizeof(Block));
    kDecode(b, out.data() + i * kElements);
  }
}

struct Entry {
  GgmlQuantInfo info;
  Decoder decode;
  Quantizer quantize;  // null: lowp has no ggml quantizer for it
};

template <typename Block, std::size_t kElements, void (*kDecode)(const Block&, float*)>
constexpr Entry entry(GgmlQuantType type, std::string_view name, Quantizer q) {
  return {{type, name, kElements, sizeof(Block), q != nullptr},
          &decode_blocks<Block, kElements, kDecode>,
          q};
}

using namespace ggml_detail;
using T = GgmlQuantType;

const std::array<Entry, 14> kEntries = {{
    entry<GgmlBlockQ4_0, kQk, decode_q4_0>(T::kQ4_0, "Q4_0", quantize_q4_0),
    entry<GgmlBlockQ4_1, kQk, decode_q4_1>(T::kQ4_1, "Q4_1", quantize_q4_1),
    entry<GgmlBlockQ5_0, kQk, decode_q5_0>(T::kQ5_0, "Q5_0", quantize_q5_0),
    entry<GgmlBlockQ5_1, kQk, decode_q5_1>(T::kQ5_1, "Q5_1", quantize_q5_1),
    entry<GgmlBlockQ8_0, kQk, decode_q8_0>(T::kQ8_0, "Q8_0", quantize_q8_0),
    entry<GgmlBlockQ2_K, kQkK, decode_q2_k>(T::kQ2_K, "Q2_K", nullptr),
    entry<GgmlBlockQ3_K, kQkK, decode_q3_k>(T::kQ3_K, "Q3_K", nullptr),
    entry<GgmlBlockQ4_K, kQkK, decode_q4_k>(T::kQ4_K, "Q4_K", quantize_q4_k),
    entry<GgmlBlockQ5_K, kQkK, decode_q5_k>(T::kQ5_K, "Q5_K", nullptr),
    entry<GgmlBlockQ6_K, kQkK, decode_q6_k>(T::kQ6_K, "Q6_K", quantize_q6_k),
    entry<GgmlBlockIq4Nl, kQk, decode_iq4_nl>(T::kIq4Nl, "IQ4_NL", nullptr),
    entry<GgmlBlockIq4Xs, kQkK, decode_iq4_xs>(T::kIq4Xs, "IQ4_XS", nullptr),
    entry<GgmlBlockMxfp4, kQk, decode_mxfp4>(T::kMxfp4, "MXFP4", quantize_mxfp4),
    entry<GgmlBlockNvfp4, kGgmlNvfp4BlockElements, decode_nvfp4>(T::kNvfp4, "NVFP4",
                                                                 quantize_nvfp4),
}};

const std::array<GgmlQuantInfo, kEntries.size()> kInfos = [] {
  std::array<GgmlQuantInfo, kEntries.size()> infos{};
  for (std::size_t i = 0; i < kEntries.size(); ++i) infos[i] = kEntries[i].info;
  return infos;
}();

const Entry& entry_of(GgmlQuantType type) {
  for (const Entry& e : kEntries) {
    if (e.info.type == type) return e;
  }
  throw Error("ggml type " + std::to_string(static_cast<std::uint32_t>(type)) +
              " is not one lowp decodes");
}

}  // namespace

std::span<const GgmlQuantInfo> ggml_quant_types() { return kInfos; }

std::optional<GgmlQuantInfo> ggml_quant_info(std::uint32_t id) {
  for (const GgmlQuantInfo& i : kInfos) {
    if (static_cast<std::uint32_t>(i.type) == id) return i;
  }
  return std::nullopt;
}

std::optional<GgmlQuantInfo> ggml_quant_info(std::string_view name) {
  for (const GgmlQuantInfo& i : kInfos) {
    if (i.name == name) return i;
  }
  return std::nullopt;
}

void ggml_dequantize(GgmlQuantType type, std::span<const std::byte> bytes, std::span<float> out) {
  const Entry& e = entry_of(type);
  const GgmlQuantInfo& info = e.info;
  if (bytes.size() % info.block_bytes != 0) {
    throw Error("ggml " + std::string(info.name) + ": " + std::to_string(bytes.size()) +
                " bytes are not a whole number of " + std::to_string(info.block_bytes) +
                "-byte blocks");
  }
  const std::size_t blocks = bytes.size() / info.block_bytes;
  if (out.size() / info.block_elements != blocks || out.size() % info.block_elements != 0) {
    throw Error("ggml " + std::string(info.name) + ": output holds " + std::to_string(out.size()) +
                " values for " + std::to_string(blocks) + " blocks of " +
                std::to_string(info.block_elements));
  }
  e.decode(bytes, out);
}

std::vector<std::byte> ggml_quantize(GgmlQuantType type, std::span<const float> x) {
  const Entry& e = entry_of(type);
  const GgmlQuantInfo& info = e.info;
  if (e.quantize == nullptr)
    throw Error("lowp has no ggml quantizer for " + std::string(info.name));
  if (x.size() % info.block_elements != 0) {
    throw Error("ggml " + std::string(info.name) + " quantizes blocks of " +
                std::to_string(info.block_elements) + " values; got " + std::to_string(x.size()));
  }
  std::vector<std::byte> out(x.size() / info.block_elements * info.block_bytes);
  e.quantize(x, out);
  return out;
}

}  // namespace lowp
