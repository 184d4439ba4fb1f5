// libFuzzer target for lowp::io::parse_npy.
//
// Any input must either parse or throw lowp::Error with a one-line message
// naming the source; any other exception, crash, sanitizer report, or
// inconsistent result is a bug. Accepted inputs must also survive a
// serialize/parse round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "lowp/error.h"
#include "lowp/io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  lowp::io::NpyArray a;
  try {
    a = lowp::io::parse_npy(bytes, "fuzz.npy");
  } catch (const lowp::Error& e) {
    const std::string msg = e.what();
    if (msg.rfind("fuzz.npy: ", 0) != 0 || msg.find('\n') != std::string::npos) std::abort();
    return 0;
  }
  // Accepted: the data must be exactly what the shape and dtype say...
  if (a.data.size() != a.element_count() * lowp::io::dtype_size(a.dtype)) std::abort();
  // ...and writing it back must give a file that reads back identically.
  const std::vector<std::byte> again = lowp::io::serialize_npy(a.dtype, a.shape, a.data);
  const lowp::io::NpyArray b = lowp::io::parse_npy(again, "roundtrip");
  if (b.dtype != a.dtype || b.shape != a.shape || b.data != a.data) std::abort();
  return 0;
}
