// Uses the installed lowp: a matrix in int4 groups, its product, and (with
// the whole library) a packed MXFP4 tensor. Prints "ok" when every value is
// as the formats define it.
#include <cstdio>
#include <vector>

#include "lowp/storage/packed_matrix.h"
#ifndef STORAGE_ONLY
#include "lowp/block_kernels.h"
#include "lowp/format/registry.h"
#endif

int main() {
  const std::vector<float> w = {1, -2, 3, -7, 5, -6, 7, 0};  // 2 x 4
  const lowp::PackedMatrix m =
      lowp::PackedMatrix::quantize(lowp::parse_matrix_format("int4:group4"), w, 2, 4);
  const std::vector<float> x = {1, 1, 1, 1};
  std::vector<float> y(2);
  m.gemv(x.data(), y.data());
  // Both groups have amax 7 = max(int4): scale 1, every value exact.
  if (y[0] != -5.0f || y[1] != 6.0f) {
    std::printf("gemv gave %g %g\n", static_cast<double>(y[0]), static_cast<double>(y[1]));
    return 1;
  }
#ifndef STORAGE_ONLY
  lowp::BlockFormat f;
  lowp::parse_block_format("mxfp4", f);
  std::vector<float> v(32, 0.5f);
  v[0] = 6.0f;
  const std::int64_t shape[1] = {32};
  const lowp::PackedTensor t = lowp::quantize(f, v, shape, 0, {});
  if (t.value(0, 0) != 6.0f || t.value(0, 1) != 0.5f) return 1;
#endif
  std::puts("ok");
  return 0;
}
