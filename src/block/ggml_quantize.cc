// ggml's reference quantizers (ggml-quants.c quantize_row_*_ref), byte for
// byte: what ggml_quantize_chunk runs for these types when it is given no
// importance matrix (for Q4_K and Q6_K too: quantize_q4_K / quantize_q6_K
// call the _ref function over all rows at once when imatrix is NULL).
//
// Every fp32 expression keeps ggml's operand order (sums accumulate in index
// order; a*b*c is (a*b)*c; an int operand is converted first), and this file
// is compiled with -ffp-contract=off, so results match ggml's x86-64 build.
#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>

#include "ggml_quants_internal.h"
#include "lowp/block/ggml_quants.h"

namespace lowp::ggml_detail {
namespace {

constexpr std::size_t kQk = kGgmlBlockElements;        // 32
constexpr std::size_t kQkK = kGgmlSuperBlockElements;  // 256

// C's float -> integer conversion as x86-64 performs it (cvttss2si):
// truncation toward zero, and 0x80000000 for NaN or anything out of int32's
// range (C leaves that undefined; ggml's quantizers meet it for NaN/Inf
// inputs). Narrower targets keep the low bits.
std::int32_t truncate_to_i32(float v) {
  if (v >= -2147483648.0f && v < 2147483648.0f) return static_cast<std::int32_t>(v);
  return std::numeric_limits<std::int32_t>::min();
}
std::uint8_t low_byte(float v) {
  return static_cast<std::uint8_t>(static_cast<std::uint32_t>(truncate_to_i32(v)) & 0xFFu);
}
int as_int8(float v) { return static_cast<std::int8_t>(low_byte(v)); }

// ggml's nearest_int: round to nearest even by adding 1.5 * 2^23 and reading
// the low mantissa bits (exact for |v| < 2^22; other inputs give ggml's same
// garbage, never undefined behaviour here).
int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  const auto bits = std::bit_cast<std::int32_t>(shifted);
  return (bits & 0x007FFFFF) - 0x00400000;
}

float f(int i) { return static_cast<float>(i); }

float e8m0_half(std::uint8_t e) {
  const std::uint32_t bits =
      e < 2 ? (std::uint32_t{0x00200000} << e) : (std::uint32_t{e} - 1) << 23;
  return std::bit_cast<float>(bits);
}

constexpr std::int8_t kMxfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

template <typename Block>
void store(std::span<std::byte> out, std::size_t index, const Block& b) {
  std::memcpy(out.data() + index * sizeof(Block), &b, sizeof(Block));
}

// The value of largest magnitude (the first one, on ties) and its magnitude.
void signed_absmax(std::span<const float> x, float& amax, float& max) {
  amax = 0.0f;
  max = 0.0f;
  for (float v : x) {
    if (amax < std::fabs(v)) {
      amax = std::fabs(v);
      max = v;
    }
  }
}

void min_max(std::span<const float> x, float& min, float& max) {
  min = FLT_MAX;
  max = -FLT_MAX;
  for (float v : x) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
}

// Q5_0/Q5_1 packing: low nibbles as Q4_0, 5th bits into the 32-bit qh.
void pack5(const std::uint8_t (&q)[32], std::uint8_t (&qs)[16], std::uint8_t (&qh)[4]) {
  std::uint32_t bits = 0;
  for (std::size_t j = 0; j < 16; ++j) {
    qs[j] = static_cast<std::uint8_t>((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4));
    bits |= ((q[j] & 0x10u) >> 4) << j;
    bits |= ((q[j + 16] & 0x10u) >> 4) << (j + 16);
  }
  std::memcpy(qh, &bits, 4);
}

}  // namespace

void quantize_q4_0(std::span<const float> x, std::span<std::byte> out) {
  for (std::size_t b = 0; b < x.size() / kQk; ++b) {
    const std::span<const float> xb = x.subspan(b * kQk, kQk);
    float amax, max;
    signed_absmax(xb, amax, max);
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    GgmlBlockQ4_0 y;
    y.d = ggml_fp32_to_fp16(d);
    for (std::size_t j = 0; j < 16; ++j) {
      const auto q0 = static_cast<std::uint8_t>(std::min(15, as_int8(xb[j] * id + 8.5f)));
      const auto q1 = static_cast<std::uint8_t>(std::min(15, as_int8(xb[j + 16] * id + 8.5f)));
      y.qs[j] = static_cast<std::uint8_t>(q0 | (q1 << 4));
    }
    store(out, b, y);
  }
}

void quantize_q4_1(std::span<const float> x, std::span<std::byte> out) {
  for (std::size_t b = 0; b < x.size() / kQk; ++b) {
    const std::span<const float> xb = x.subspan(b * kQk, kQk);
    float min, max;
    min_max(xb, min, max);
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    GgmlBlockQ4_1 y;
    y.d = ggml_fp32_to_fp16(d);
    y.m = ggml_fp32_to_fp16(min);
    for (std::size_t j = 0; j < 16; ++j) {
      const auto q0 = static_cast<std::uint8_t>(std::min(15, as_int8((xb[j] - min) * id + 0.5f)));
      const auto q1 =
          static_cast<std::uint8_t>(std::min(15, as_int8((xb[j + 16] - min) * id + 0.5f)));
      y.qs[j] = static_cast<std::uint8_t>(q0 | (q1 << 4));
    }
    store(out, b, y);
  }
}

void quantize_q5_0(std::span<const float> x, std::span<std::byte> out) {
  for (std::size_t b = 0; b < x.size() / kQk; ++b) {
    const std::span<const float> xb = x.subspan(b * kQk, kQk);
    float amax, max;
    signed_absmax(xb, amax, max);
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    GgmlBlockQ5_0 y;
    y.d = ggml_fp32_to_fp16(d);
    std::uint8_t q[32];
    for (std::size_t j = 0; j < 32; ++j)
      q[j] = static_cast<std::uint8_t>(std::min(31, as_int8(xb[j] * id + 16.5f)));
    pack5(q, y.qs, y.qh);
    store(out, b, y);
  }
}

void quantize_q5_1(std::span<const float> x, std::span<std::byte> out) {
  for (std::size_t b = 0; b < x.size() / kQk; ++b) {
    const std::span<const float> xb = x.subspan(b * kQk, kQk);
    float min, max;
    min_max(xb, min, max);
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    GgmlBlockQ5_1 y;
    y.d = ggml_fp32_to_fp16(d);
    y.m = ggml_fp32_to_fp16(min);
    std::uint8_t q[32];
    for (std::size_t j = 0; j < 32; ++j) q[j] = low_byte((xb[j] - min) * id + 0.5f);
    pack5(q, y.qs, y.qh);
    store(out, b, y);
  }
}

void quantize_q8_0(std::span<const float> x, std::span<std::byte> out) {
  for (std::size_t b = 0; b < x.size() / kQk; ++b) {
    const std::span<const float> xb = x.subspan(b * kQk, kQk);
    float amax = 0.0f;
    for (float v : xb) amax = amax > std::fabs(v) ? amax : std::fabs(v);  // ggml's MAX()
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    GgmlBlockQ8_0 y;
    y.d = ggml_fp32_to_fp16(d);
    for (std::size_t j = 0; j < kQk; ++j)
      y.qs[j] = static_cast<std::int8_t>(as_int8(std::round(xb[j] * id)));
    store(out, b, y);
  }
}

namespace {

// ggml's best_index_mxfp4: the code whose doubled E2M1 value times d is
// nearest v, the lowest index on ties (NaN matches nothing: code 0).
int best_index_fp4(float v, float d) {
  int best = 0;
  float best_err = std::fabs(f(kMxfp4Values[0]) * d - v);
  for (int i = 1; i < 16; ++i) {
    const float err = std::fabs(f(kMxfp4Values[i]) * d - v);
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return best;
}

}  // namespace

void quantize_mxfp4(std::span<const float> x, std::span<std::byte> out) {
  for (std::size_t b = 0; b < x.size() / kQk; ++b) {
    const std::span<const float> xb = x.subspan(b * kQk, kQk);
    float amax = 0.0f;
    for (float v : xb) {
      if (amax < std::fabs(v)) amax = std::fabs(v);
    }
    // The shared exponent puts amax's binade at E2M1's top (2^2), as
    // floor(log2(amax)) - 2, biased by 127.
    GgmlBlockMxfp4 y;
    y.e = amax > 0.0f ? low_byte(std::floor(std::log2(amax)) - 2.0f + 127.0f) : 0;
    const float d = e8m0_half(y.e);
    for (std::size_t j = 0; j < 16; ++j) {
      y.qs[j] = static_cast<std::uint8_t>(best_index_fp4(xb[j], d) |
                                          (best_index_fp4(xb[j + 16], d) << 4));
    }
    store(out, b, y);
  }
}

// quantize_row_nvfp4_ref: per 16, the UE4M3 scale of amax / 6 (NaN inputs do
// not raise amax), then each element's nearest code under half that scale.
void quantize_nvfp4(std::span<const float> x, std::span<std::byte> out) {
  constexpr std::size_t kBlock = kGgmlNvfp4BlockElements;
  constexpr std::size_t kSub = kGgmlNvfp4SubBlockElements;
  for (std::size_t b = 0; b < x.size() / kBlock; ++b) {
    GgmlBlockNvfp4 y;
    for (std::size_t s = 0; s < kBlock / kSub; ++s) {
      const std::span<const float> xb = x.subspan(b * kBlock + s * kSub, kSub);
      float amax = 0.0f;
      for (float v : xb) {
        if (amax < std::fabs(v)) amax = std::fabs(v);
      }
      y.d[s] = fp32_to_ue4m3(amax / 6.0f);
      const float d = ue4m3_half(y.d[s]);
      for (std::size_t j = 0; j < kSub / 2; ++j) {
        y.qs[s * (kSub / 2) + j] = static_cast<std::uint8_t>(
            best_index_fp4(xb[j], d) | (best_index_fp4(xb[j + kSub / 2], d) << 4));
      }
    }
    store(out, b, y);
  }
}

namespace {

// ggml's make_qkx2_quants with use_mad = false: codes L in [0, nmax] and an
// (scale, min) pair for x ~ scale * L - the_min, minimising the weighted
// squared error over nstep+1 candidate scales around nmax / (max - min).
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, std::uint8_t* L,
                       float* the_min, std::uint8_t* Laux, float rmin, float rdelta, int nstep) {
  const auto un = static_cast<std::size_t>(n);
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (std::size_t i = 1; i < un; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (std::size_t i = 0; i < un; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  float iscale = f(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (std::size_t i = 0; i < un; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<std::uint8_t>(std::max(0, std::min(nmax, l)));
    float diff = scale * f(L[i]) + min - x[i];
    diff = diff * diff;
    best_error += weights[i] * diff;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * f(is) + f(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (std::size_t i = 0; i < un; ++i) {
      const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
      Laux[i] = static_cast<std::uint8_t>(l);
      const float w = weights[i];
      sum_l += w * f(l);
      sum_l2 += w * f(l) * f(l);
      sum_xl += w * f(l) * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (std::size_t i = 0; i < un; ++i) {
        float diff = this_scale * f(Laux[i]) + this_min - x[i];
        diff = diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (std::size_t i = 0; i < un; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// ggml's make_qx_quants with rmse_type = 1 and no weights (so w = x^2):
// signed codes L in [0, 2 nmax) (offset by nmax) and a scale, trying 19
// candidate scales -(nmax + 0.1 is) / max and keeping the best fit.
float make_qx_quants(int n, int nmax, const float* x, std::int8_t* L) {
  const auto un = static_cast<std::size_t>(n);
  float max = 0;
  float amax = 0;
  for (std::size_t i = 0; i < un; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {  // GROUP_MAX_EPS: all zero
    for (std::size_t i = 0; i < un; ++i) L[i] = 0;
    return 0.0f;
  }
  auto code = [nmax](float v) { return std::max(-nmax, std::min(nmax - 1, nearest_int(v))); };
  float iscale = f(-nmax) / max;
  float sumlx = 0;
  float suml2 = 0;
  for (std::size_t i = 0; i < un; ++i) {
    const int l = code(iscale * x[i]);
    L[i] = static_cast<std::int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * f(l);
    suml2 += w * f(l) * f(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(f(nmax) + 0.1f * f(is)) / max;
    sumlx = suml2 = 0;
    for (std::size_t i = 0; i < un; ++i) {
      const int l = code(iscale * x[i]);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * f(l);
      suml2 += w * f(l) * f(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (std::size_t i = 0; i < un; ++i)
        L[i] = static_cast<std::int8_t>(nmax + code(iscale * x[i]));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Q4_K's (scale, min) pair j, as get_scale_min_k4 reads it back.
void scale_min_k4(std::size_t j, const std::uint8_t (&q)[12], int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

}  // namespace

void quantize_q4_k(std::span<const float> xs, std::span<std::byte> out) {
  for (std::size_t b = 0; b < xs.size() / kQkK; ++b) {
    const float* x = xs.data() + b * kQkK;
    std::uint8_t L[kQkK];
    std::uint8_t Laux[32];
    float weights[32];
    float mins[kQkK / 32];
    float scales[kQkK / 32];
    // 1. Per 32-element sub-block, a (scale, min) fit weighted by av_x + |x|.
    float max_scale = 0;
    float max_min = 0;
    for (std::size_t j = 0; j < kQkK / 32; ++j) {
      const float* xj = x + 32 * j;
      float sum_x2 = 0;
      for (std::size_t l = 0; l < 32; ++l) sum_x2 += xj[l] * xj[l];
      const float av_x = std::sqrt(sum_x2 / 32.0f);
      for (std::size_t l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xj[l]);
      scales[j] =
          make_qkx2_quants(32, 15, xj, weights, L + 32 * j, &mins[j], Laux, -1.0f, 0.1f, 20);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    // 2. Scales and mins as 6-bit multiples of d = max_scale/63, dmin =
    // max_min/63, packed as get_scale_min_k4 reads them.
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    GgmlBlockQ4_K y;
    for (std::size_t j = 0; j < kQkK / 32; ++j) {
      auto ls = static_cast<std::uint8_t>(nearest_int(inv_scale * scales[j]));
      auto lm = static_cast<std::uint8_t>(nearest_int(inv_min * mins[j]));
      ls = std::min<std::uint8_t>(63, ls);
      lm = std::min<std::uint8_t>(63, lm);
      if (j < 4) {
        y.scales[j] = ls;
        y.scales[j + 4] = lm;
      } else {
        y.scales[j + 4] = static_cast<std::uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
        y.scales[j - 4] = static_cast<std::uint8_t>(y.scales[j - 4] | ((ls >> 4) << 6));
        y.scales[j] = static_cast<std::uint8_t>(y.scales[j] | ((lm >> 4) << 6));
      }
    }
    y.d = ggml_fp32_to_fp16(max_scale / 63.0f);
    y.dmin = ggml_fp32_to_fp16(max_min / 63.0f);
    // 3. Codes again against the stored (rounded) scales; a sub-block whose
    // scale is 0 keeps step 1's codes, as ggml's does.
    for (std::size_t j = 0; j < kQkK / 32; ++j) {
      int sc, m;
      scale_min_k4(j, y.scales, sc, m);
      const float d = ggml_fp16_to_fp32(y.d) * f(sc);
      if (d == 0.0f) continue;
      const float dm = ggml_fp16_to_fp32(y.dmin) * f(m);
      for (std::size_t ii = 0; ii < 32; ++ii) {
        const int l = nearest_int((x[32 * j + ii] + dm) / d);
        L[32 * j + ii] = static_cast<std::uint8_t>(std::max(0, std::min(15, l)));
      }
    }
    // 4. Per 64 elements, 32 bytes: the first 32 codes low, the next 32 high.
    for (std::size_t j = 0; j < kQkK; j += 64) {
      for (std::size_t l = 0; l < 32; ++l)
        y.qs[j / 2 + l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    }
    store(out, b, y);
  }
}

void quantize_q6_k(std::span<const float> xs, std::span<std::byte> out) {
  for (std::size_t b = 0; b < xs.size() / kQkK; ++b) {
    const float* x = xs.data() + b * kQkK;
    std::int8_t L[kQkK];
    float scales[kQkK / 16];
    // 1. Per 16-element sub-block, a signed scale from make_qx_quants.
    float max_scale = 0;
    float max_abs_scale = 0;
    for (std::size_t ib = 0; ib < kQkK / 16; ++ib) {
      const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
      scales[ib] = scale;
      if (std::fabs(scale) > max_abs_scale) {
        max_abs_scale = std::fabs(scale);
        max_scale = scale;
      }
    }
    GgmlBlockQ6_K y;
    if (max_abs_scale < 1e-15f) {  // GROUP_MAX_EPS: an all-zero block
      std::memset(&y, 0, sizeof y);
      store(out, b, y);
      continue;
    }
    // 2. Scales as int8 multiples of d = max_scale / -128.
    const float iscale = -128.0f / max_scale;
    y.d = ggml_fp32_to_fp16(1 / iscale);
    for (std::size_t ib = 0; ib < kQkK / 16; ++ib)
      y.scales[ib] = static_cast<std::int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    // 3. Codes again against the stored scales (a zero scale keeps step 1's).
    for (std::size_t j = 0; j < kQkK / 16; ++j) {
      const float d = ggml_fp16_to_fp32(y.d) * f(y.scales[j]);
      if (d == 0.0f) continue;
      for (std::size_t ii = 0; ii < 16; ++ii) {
        const int l = std::max(-32, std::min(31, nearest_int(x[16 * j + ii] / d)));
        L[16 * j + ii] = static_cast<std::int8_t>(l + 32);
      }
    }
    // 4. Per 128 elements: low nibbles in ql (elements l and l+64 share a
    // byte, l+32 and l+96 the next 32), high bit pairs four to a qh byte.
    for (std::size_t j = 0; j < kQkK; j += 128) {
      std::uint8_t* ql = y.ql + j / 2;
      std::uint8_t* qh = y.qh + j / 4;
      for (std::size_t l = 0; l < 32; ++l) {
        const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
        ql[l] = static_cast<std::uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
        ql[l + 32] = static_cast<std::uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
        qh[l] = static_cast<std::uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) |
                                          ((q4 >> 4) << 6));
      }
    }
    store(out, b, y);
  }
}

}  // namespace lowp::ggml_detail
