// libFuzzer target for lowp::io::parse_gguf.
//
// Any input must either parse or throw lowp::Error with a one-line message
// naming the source; any other exception, crash, sanitizer report, or
// inconsistent result is a bug. For accepted inputs every float tensor is
// decoded and the metadata rendered; only an NVFP4 tensor may fail to decode
// (its separate scale tensor is checked when it is read).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "lowp/error.h"
#include "lowp/io/gguf.h"
#include "lowp/io/model.h"

namespace {
void check_message(const lowp::Error& e) {
  const std::string msg = e.what();
  if (msg.rfind("fuzz.gguf: ", 0) != 0 || msg.find('\n') != std::string::npos) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  std::unique_ptr<lowp::io::ModelReader> r;
  try {
    r = lowp::io::parse_gguf(bytes, "fuzz.gguf");
  } catch (const lowp::Error& e) {
    check_message(e);
    return 0;
  }
  if (r->metadata().size() != lowp::io::gguf_kv(*r).size()) std::abort();
  for (const lowp::io::TensorInfo& t : r->tensors()) {
    const std::span<const std::byte> raw = r->raw(t);
    if (raw.size() != t.nbytes ||
        (t.nbytes > 0 &&
         (raw.data() < bytes.data() || raw.data() + raw.size() > bytes.data() + size))) {
      std::abort();
    }
    try {
      const std::vector<float> v = r->read_f32(t);
      std::uint64_t n = 1;  // (TensorInfo::element_count lives in model.cc, not linked here)
      for (std::int64_t d : t.shape) n *= static_cast<std::uint64_t>(d);
      if (!t.is_float || v.size() != n) std::abort();
    } catch (const lowp::Error& e) {
      if (t.is_float && t.dtype != "NVFP4") std::abort();
      check_message(e);
    }
  }
  return 0;
}
