// OCP MX v1.0 §6 dot products: Dot of one pair of blocks, DotGeneral of two
// blocked rows, and a reference matrix product. dot.h states the contract.
//
// The exact accumulator. Every finite element value of a format is an integer
// multiple of the format's least significant unit 2^lsb:
//   floats (with subnormals):  lsb = emin - M   (E4M3: 2^-9, E5M2: 2^-16, E2M1: 2^-1)
//   N-bit integers (fixed point code * 2^-(N-2)):  lsb = -(N-2)   (MXINT8: 2^-6)
// so P_A,i = m_a,i * 2^lsb_a with an integer m_a,i of at most w_a bits (the
// format's "width": E4M3 18, E5M2 32, E3M2 9, E2M3 6, E2M1 4, INT8 8). Each
// product is m_a,i * m_b,i * 2^(lsb_a + lsb_b), an integer below 2^(w_a + w_b)
// in the common unit 2^(lsb_a + lsb_b), and a sum of n of them is below
// 2^(w_a + w_b + bit_width(n)). When that is at most 2^126 the whole sum is
// exact in a signed 128-bit integer (E5M2 x E5M2 with k = 32: 32+32+6 = 70
// bits). The block's value is then
//   sum * 2^(lsb_a + lsb_b + s_a + s_b),   s = scale code - 127,
// which is rounded once to fp32 (nearest-even, IEEE overflow to ±Inf, gradual
// underflow) by the library's scalar encoder, detail::encode_float.
//
// Formats too wide for that (E8M0 or fp32/bf16 used as elements: 255 and 277
// bits) take a fallback that sums the products in double in index order and
// rounds the scaled double to fp32: not exact in general (a double rounding is
// possible), which dot.h documents.
#include "lowp/block/dot.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <string>

#include "lowp/error.h"
#include "lowp/format/convert.h"

namespace lowp {
namespace {

__extension__ typedef __int128 int128;
__extension__ typedef unsigned __int128 uint128;

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Exponent of the format's least significant unit (see the top of the file).
int lsb_exponent(const Format& f) {
  return f.kind == Kind::kInt ? -mx_int_fraction_bits(f) : emin(f) - f.man_bits;
}

// Bits needed for the magnitude of any finite value in units of 2^lsb; more
// than 63 means "no exact path". A normal float with exponent field E and
// significand 1.m is (2^M + m) << (E - 1) units, so the largest takes
// E_max + M bits; integers take at most `bits` bits (|-2^(N-1)| included).
int fixed_width(const Format& f) {
  if (f.kind == Kind::kInt) return f.bits;
  if (f.specials == Specials::kE8m0) return 255;  // 2^-127 .. 2^127: no subnormals
  const auto max_field = static_cast<int>(max_magnitude_code(f) >> f.man_bits);
  return max_field == 0 ? f.man_bits : max_field + f.man_bits;
}

bool sign_of(const Format& f, std::uint32_t code) {
  return (code & code_mask(f) & sign_mask(f)) != 0;
}

// |P| / 2^lsb of a finite code, exact (requires fixed_width(f) <= 63); sets
// `negative` to the code's sign (so -0 is negative).
std::uint64_t fixed_magnitude(const Format& f, std::uint32_t code, bool& negative) {
  code &= code_mask(f);
  if (f.kind == Kind::kInt) {
    const auto v = static_cast<std::int64_t>(decode(f, code));
    negative = v < 0;
    return static_cast<std::uint64_t>(negative ? -v : v);
  }
  negative = sign_of(f, code);
  const std::uint32_t mag = code & magnitude_mask(f);
  const std::uint32_t field = mag >> f.man_bits;
  const std::uint64_t mantissa = mag & ((std::uint32_t{1} << f.man_bits) - 1);
  if (field == 0) return mantissa;  // subnormal: mantissa units of 2^(emin - M)
  return ((std::uint64_t{1} << f.man_bits) | mantissa) << (field - 1);
}

// sum * 2^exp rounded once to fp32 (sum != 0). The top 64 bits of |sum| become
// the significand of an exact Unpacked value; any lower nonzero bit is ORed
// into bit 0 as a sticky bit. That is enough for correct rounding: fp32 rounds
// at bit 40 of the significand or higher (subnormals drop more), so bit 0 only
// ever decides "exactly half" versus "more than half".
float round_to_fp32(int128 sum, int exp) {
  const bool negative = sum < 0;
  const uint128 mag = negative ? -static_cast<uint128>(sum) : static_cast<uint128>(sum);
  const auto hi = static_cast<std::uint64_t>(mag >> 64);
  const auto lo = static_cast<std::uint64_t>(mag);
  const int top = hi != 0 ? 127 - std::countl_zero(hi) : 63 - std::countl_zero(lo);
  const uint128 normalised = mag << (127 - top);  // bit 127 set
  std::uint64_t significand = static_cast<std::uint64_t>(normalised >> 64);
  if (static_cast<std::uint64_t>(normalised) != 0) significand |= 1;
  // |value| = mag * 2^exp = significand * 2^(top + exp - 63) (up to the sticky bit).
  const detail::Unpacked u{negative, detail::Unpacked::kFinite, top + exp, significand};
  return std::bit_cast<float>(detail::encode_float(kFp32, u, EncodeOptions{}, 0));
}

// The fallback for element formats too wide for the 128-bit accumulator: IEEE
// double arithmetic in index order (NaN, Inf and -0 follow from it), then one
// fp32 rounding of the scaled double.
float dot_in_double(const Format& fa, std::span<const std::uint32_t> ca, const Format& fb,
                    std::span<const std::uint32_t> cb, int scale_exp) {
  double sum = -0.0;  // the additive identity that keeps an all -0 sum negative
  for (std::size_t i = 0; i < ca.size(); ++i) {
    sum += mx_element_value(fa, ca[i]) * mx_element_value(fb, cb[i]);
  }
  return static_cast<float>(std::ldexp(sum, scale_exp));
}

std::string dims(const PackedTensor& t) {
  std::string s;
  for (std::size_t d = 0; d < t.shape.size(); ++d) {
    if (d > 0) s += "x";
    s += std::to_string(t.shape[d]);
  }
  return s.empty() ? "a scalar" : s;
}

// Throws unless `t` is an MX tensor whose storage holds its shape.
void require_mx(const PackedTensor& t, const char* op, const char* name) {
  const std::string who = std::string(op) + ": " + name;
  if (t.format.scale != BlockScale::kUe8m0) {
    throw Error(who + " is " + block_format_name(t.format) + ", not an MX format");
  }
  if (t.format.block_size < 1)
    throw Error(who + " has block size " + std::to_string(t.format.block_size));
  const std::size_t n = t.element_count();
  if (t.elements.size() < packed_bytes(t.format.element.bits, n) ||
      t.scales.size() < t.rows() * t.blocks_per_row()) {
    throw Error(who + " (" + dims(t) + ") has too few element or scale bytes for its shape");
  }
}

std::vector<std::uint32_t> row_codes(const PackedTensor& t, std::size_t row) {
  std::vector<std::uint32_t> codes(t.row_length());
  for (std::size_t j = 0; j < codes.size(); ++j) codes[j] = t.code(row, j);
  return codes;
}

// DotGeneral of two blocked rows whose codes are already unpacked: the block
// results are added in fp32 in block order, starting from block 0's result
// (so a row of -0 products stays -0; an empty row gives +0).
float dot_rows(const PackedTensor& a, std::size_t row_a, std::span<const std::uint32_t> codes_a,
               const PackedTensor& b, std::size_t row_b, std::span<const std::uint32_t> codes_b) {
  const auto k = static_cast<std::size_t>(a.format.block_size);
  const std::size_t length = codes_a.size();
  float acc = 0.0f;
  for (std::size_t block = 0; block * k < length; ++block) {
    const std::size_t first = block * k;
    const std::size_t count = std::min(k, length - first);
    const float d = mx_dot(a.format.element, a.scale(row_a, block), codes_a.subspan(first, count),
                           b.format.element, b.scale(row_b, block), codes_b.subspan(first, count));
    acc = block == 0 ? d : acc + d;
  }
  return acc;
}

}  // namespace

float mx_dot(const Format& element_a, std::uint8_t scale_a, std::span<const std::uint32_t> codes_a,
             const Format& element_b, std::uint8_t scale_b,
             std::span<const std::uint32_t> codes_b) {
  if (codes_a.size() != codes_b.size()) {
    throw Error("mx_dot: blocks of " + std::to_string(codes_a.size()) + " and " +
                std::to_string(codes_b.size()) + " elements");
  }
  if (scale_a == kE8m0Nan || scale_b == kE8m0Nan) return kNan;
  const std::size_t n = codes_a.size();
  if (n == 0) return 0.0f;
  const int scale_exp = e8m0_exponent(scale_a) + e8m0_exponent(scale_b);
  const int wa = fixed_width(element_a);
  const int wb = fixed_width(element_b);
  if (wa > 63 || wb > 63 || wa + wb + static_cast<int>(std::bit_width(n)) > 126) {
    return dot_in_double(element_a, codes_a, element_b, codes_b, scale_exp);
  }

  // Specials follow IEEE: NaN anywhere gives NaN; Inf * 0 is NaN; Inf * x is
  // ±Inf by the signs; +Inf + -Inf is NaN; any other Inf dominates the finite sum.
  int128 sum = 0;
  bool pos_inf = false;
  bool neg_inf = false;
  bool all_negative_zero = true;  // IEEE: a sum of zeros is -0 only if every term is
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t ca = codes_a[i];
    const std::uint32_t cb = codes_b[i];
    if (is_nan_code(element_a, ca) || is_nan_code(element_b, cb)) return kNan;
    const bool inf_a = is_inf_code(element_a, ca);
    const bool inf_b = is_inf_code(element_b, cb);
    if (inf_a || inf_b) {
      bool na = sign_of(element_a, ca);
      bool nb = sign_of(element_b, cb);
      if ((!inf_a && fixed_magnitude(element_a, ca, na) == 0) ||
          (!inf_b && fixed_magnitude(element_b, cb, nb) == 0)) {
        return kNan;  // Inf * 0
      }
      (na != nb ? neg_inf : pos_inf) = true;
      continue;
    }
    bool na = false;
    bool nb = false;
    const std::uint64_t ma = fixed_magnitude(element_a, ca, na);
    const std::uint64_t mb = fixed_magnitude(element_b, cb, nb);
    const auto product = static_cast<int128>(static_cast<uint128>(ma) * mb);  // < 2^126
    sum += na != nb ? -product : product;
    all_negative_zero = all_negative_zero && product == 0 && na != nb;
  }
  if (pos_inf && neg_inf) return kNan;
  if (pos_inf || neg_inf) return pos_inf ? kInf : -kInf;
  if (sum == 0) return all_negative_zero ? -0.0f : 0.0f;  // X_A * X_B > 0 keeps the sign
  return round_to_fp32(sum, lsb_exponent(element_a) + lsb_exponent(element_b) + scale_exp);
}

float mx_dot_general(const PackedTensor& a, std::size_t row_a, const PackedTensor& b,
                     std::size_t row_b) {
  require_mx(a, "mx_dot_general", "A");
  require_mx(b, "mx_dot_general", "B");
  if (a.format.block_size != b.format.block_size) {
    throw Error("mx_dot_general: block sizes differ (A " + std::to_string(a.format.block_size) +
                ", B " + std::to_string(b.format.block_size) + ")");
  }
  if (a.row_length() != b.row_length()) {
    throw Error("mx_dot_general: rows of A have " + std::to_string(a.row_length()) +
                " elements but rows of B have " + std::to_string(b.row_length()));
  }
  const std::size_t rows_a = a.rows();
  const std::size_t rows_b = b.rows();
  if (row_a >= rows_a || row_b >= rows_b) {
    throw Error("mx_dot_general: row " + std::to_string(row_a >= rows_a ? row_a : row_b) + " of " +
                (row_a >= rows_a ? "A" : "B") + " is out of range (it has " +
                std::to_string(row_a >= rows_a ? rows_a : rows_b) + " rows)");
  }
  const std::vector<std::uint32_t> ca = row_codes(a, row_a);
  const std::vector<std::uint32_t> cb = row_codes(b, row_b);
  return dot_rows(a, row_a, ca, b, row_b, cb);
}

std::vector<float> mx_matmul(const PackedTensor& a, const PackedTensor& b) {
  if (a.shape.size() != 2 || b.shape.size() != 2) {
    throw Error(std::string("mx_matmul: ") + (a.shape.size() != 2 ? "A" : "B") +
                " must be 2-D, but it is " + dims(a.shape.size() != 2 ? a : b));
  }
  require_mx(a, "mx_matmul", "A");
  require_mx(b, "mx_matmul", "B");
  if (a.shape[1] != b.shape[0]) {
    throw Error("mx_matmul: A is " + dims(a) + " but B is " + dims(b));
  }
  if (a.axis != 1) {
    throw Error("mx_matmul: A must be blocked along axis 1 (K), but its axis is " +
                std::to_string(a.axis));
  }
  if (b.axis != 0) {
    throw Error("mx_matmul: B must be blocked along axis 0 (K), but its axis is " +
                std::to_string(b.axis));
  }
  if (a.format.block_size != b.format.block_size) {
    throw Error("mx_matmul: block sizes differ (A " + std::to_string(a.format.block_size) + ", B " +
                std::to_string(b.format.block_size) + ")");
  }
  const auto m_rows = static_cast<std::size_t>(a.shape[0]);
  const auto k_len = static_cast<std::size_t>(a.shape[1]);
  const auto n_cols = static_cast<std::size_t>(b.shape[1]);
  std::vector<float> c(m_rows * n_cols, 0.0f);
  if (k_len == 0) return c;  // empty sums
  // Blocked views: A's row m is row m of A; with axis 0 of a K×N array the view
  // has outer = 1 and inner = N, so B's row n is column n of B.
  std::vector<std::vector<std::uint32_t>> a_codes(m_rows);
  std::vector<std::vector<std::uint32_t>> b_codes(n_cols);
  for (std::size_t m = 0; m < m_rows; ++m) a_codes[m] = row_codes(a, m);
  for (std::size_t n = 0; n < n_cols; ++n) b_codes[n] = row_codes(b, n);
  for (std::size_t m = 0; m < m_rows; ++m) {
    for (std::size_t n = 0; n < n_cols; ++n) {
      c[m * n_cols + n] = dot_rows(a, m, a_codes[m], b, n, b_codes[n]);
    }
  }
  return c;
}

}  // namespace lowp
