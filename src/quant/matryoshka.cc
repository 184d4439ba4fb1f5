// Matryoshka integers (lowp/quant/matryoshka.h).
#include "lowp/quant/matryoshka.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "lowp/block/tensor.h"
#include "lowp/error.h"

namespace lowp {

std::uint32_t matryoshka_code(std::uint32_t code, int bits, bool is_unsigned) {
  if (bits < 1 || bits > 8) {
    throw Error("matryoshka: a slice of " + std::to_string(bits) + " bits (1 to 8)");
  }
  const int shift = 8 - bits;
  const double step = std::ldexp(1.0, shift);
  if (is_unsigned) {
    const double q = static_cast<double>(code & 0xFFu);
    const double t = std::clamp(std::nearbyint(q / step), 0.0, std::ldexp(1.0, bits) - 1.0);
    return static_cast<std::uint32_t>(t * step);
  }
  const auto q = static_cast<double>(static_cast<std::int8_t>(code & 0xFFu));
  const double top = bits == 1 ? 0.0 : std::ldexp(1.0, bits - 1) - 1.0;
  const double t = std::clamp(std::nearbyint(q / step), -top, top);
  return static_cast<std::uint32_t>(static_cast<std::uint8_t>(static_cast<std::int8_t>(t * step)));
}

bool matryoshka_applies(const MatrixFormat& f) {
  const bool scaled = f.scheme == MatrixScheme::kTensor || f.scheme == MatrixScheme::kChannel ||
                      f.scheme == MatrixScheme::kGroup;
  return scaled && !f.ggml_q8_0 && f.element.kind == Kind::kInt && f.element.bits == 8 &&
         (f.zero_points() || f.element.int_range == IntRange::kSymmetric);
}

MatrixSlice matryoshka_slice(const PackedMatrix& m, int bits) {
  const MatrixFormat& f = m.format();
  if (!matryoshka_applies(f)) {
    throw Error("matryoshka: " + f.name +
                " does not hold int8 codes to slice (int8, int8:channel, int8:group<K>, "
                "int8:group<K>:asym)");
  }
  std::vector<std::uint8_t> codes(m.codes().begin(), m.codes().end());
  for (std::uint8_t& c : codes) {
    c = static_cast<std::uint8_t>(matryoshka_code(c, bits, f.zero_points()));
  }
  MatrixSlice out;
  const std::size_t code_bytes = m.codes().size();
  out.matrix = PackedMatrix::from_codes(f, m.rows(), m.cols(), std::move(codes), m.scales());
  out.bytes = m.bytes() - code_bytes + m.rows() * packed_bytes(bits, m.cols());
  return out;
}

nn::Transformer matryoshka_slice(const nn::Transformer& model, int bits) {
  nn::Transformer out = model;
  for (int layer = 0; layer <= model.config().n_layer; ++layer) {
    for (nn::LinearKind k : model.linear_kinds(layer)) {
      const PackedMatrix& w = model.linear_weight(layer, k);
      if (!matryoshka_applies(w.format())) {
        throw Error("matryoshka: " +
                    (layer == model.config().n_layer ? std::string("the head")
                                                     : "layer " + std::to_string(layer)) +
                    " " + std::string(nn::linear_kind_name(k)) + " is " + w.format().name +
                    ", not int8 codes to slice");
      }
      MatrixSlice s = matryoshka_slice(w, bits);
      out.set_linear(layer, k, std::move(s.matrix), s.bytes);
    }
  }
  return out;
}

}  // namespace lowp
