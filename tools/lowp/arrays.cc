// Shared helpers of the CLI verbs that read and write .npy arrays.
#include "arrays.h"

#include <cstdint>

#include <fmt/core.h>

#include "lowp/error.h"

namespace lowp::cli {

using io::DType;

// Every element of a floating-point array as a double (exact for all four dtypes).
std::vector<double> real_values(const io::NpyArray& a, const std::string& path) {
  const std::size_t n = a.element_count();
  std::vector<double> out(n);
  const std::byte* p = a.data.data();
  switch (a.dtype) {
    case DType::kF64:
      for (std::size_t i = 0; i < n; ++i) out[i] = load<double>(p + 8 * i);
      break;
    case DType::kF32:
      for (std::size_t i = 0; i < n; ++i) out[i] = load<float>(p + 4 * i);
      break;
    case DType::kF16:
    case DType::kBF16: {
      const Format f = a.dtype == DType::kF16 ? kFp16 : kBf16;
      for (std::size_t i = 0; i < n; ++i) out[i] = decode(f, load<std::uint16_t>(p + 2 * i));
      break;
    }
    default:
      throw Error(
          fmt::format("{}: dtype {} is not a float array; expected float32, float64, "
                      "float16 or bfloat16",
                      path, io::dtype_name(a.dtype)));
  }
  return out;
}

}  // namespace lowp::cli
