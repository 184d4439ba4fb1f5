// libFuzzer target for lowp::io::parse_onnx.
//
// Any input must either parse or throw lowp::Error with a one-line message
// naming the source; any other exception, crash, sanitizer report, or
// inconsistent result is a bug. For accepted inputs every tensor's bytes must
// lie inside the image, every float tensor must read as exactly its element
// count of values, and non-float tensors must refuse read_f32 with lowp::Error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>

#include "lowp/error.h"
#include "lowp/io/model.h"

namespace {

void check_message(const lowp::Error& e) {
  const std::string msg = e.what();
  if (msg.rfind("fuzz.onnx: ", 0) != 0 || msg.find('\n') != std::string::npos) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  std::unique_ptr<lowp::io::ModelReader> r;
  try {
    r = lowp::io::parse_onnx(bytes, "fuzz.onnx");
  } catch (const lowp::Error& e) {
    check_message(e);
    return 0;
  }
  (void)r->metadata();
  for (const lowp::io::TensorInfo& t : r->tensors()) {
    if (t.offset > size || t.nbytes > size - t.offset) std::abort();
    if (r->raw(t).size() != t.nbytes) std::abort();
    if (!t.is_float) {
      try {
        (void)r->read_f32(t);
        std::abort();
      } catch (const lowp::Error& e) {
        check_message(e);
      }
      continue;
    }
    if (t.element_count() > (std::uint64_t{1} << 24)) continue;  // bounded work per input
    if (r->read_f32(t).size() != t.element_count()) std::abort();
  }
  return 0;
}
