// Shared helpers of the CLI verbs that read and write .npy arrays.
#pragma once

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "lowp/format/convert.h"
#include "lowp/io/npy.h"

namespace lowp::cli {

template <typename T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Every element of a float32/float64/float16/bfloat16 array as a double (exact
// for all four). Throws lowp::Error naming `path` for any other dtype.
std::vector<double> real_values(const io::NpyArray& a, const std::string& path);

template <typename T>
std::vector<std::byte> bytes_of(const std::vector<T>& values) {
  std::vector<std::byte> bytes(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

}  // namespace lowp::cli
