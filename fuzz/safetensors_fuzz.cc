// libFuzzer target for lowp::io::parse_safetensors.
//
// Any input must either parse or throw lowp::Error with a one-line message
// naming the source; any other exception, crash or sanitizer report is a bug.
// For an accepted file every tensor's bytes must lie inside the input, every
// float tensor must read (read_f32) to exactly element_count() values, and
// every other tensor must refuse read_f32 with a lowp::Error. A tensor stored
// in a block format (packed(): lowp's packed tensors, gpt-oss MXFP4, ModelOpt NVFP4)
// must hand back codes and scales whose sizes match its shape, and the
// recognized layout must be one of the known names. Chunk statistics in the
// metadata (lowp/io/chunk_stats.h) must either read, with as many chunks as
// the tensor's shape gives, and compare with the data without throwing, or
// throw a one-line lowp::Error naming the source.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>

#include "lowp/error.h"
#include "lowp/io/chunk_stats.h"
#include "lowp/io/model.h"

namespace {

void check_message(const lowp::Error& e) {
  const std::string msg = e.what();
  if (msg.rfind("fuzz.safetensors: ", 0) != 0 || msg.find('\n') != std::string::npos) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  std::unique_ptr<lowp::io::ModelReader> reader;
  try {
    reader = lowp::io::parse_safetensors(bytes, "fuzz.safetensors");
  } catch (const lowp::Error& e) {
    check_message(e);
    return 0;
  }
  (void)reader->metadata();
  const std::string layout = reader->layout();
  if (!layout.empty() && layout != "lowp" && layout != "gpt-oss" && layout != "modelopt")
    std::abort();
  for (const lowp::io::TensorInfo& t : reader->tensors()) {
    const std::span<const std::byte> raw = reader->raw(t);
    if (raw.size() != t.nbytes || t.offset > size || raw.size() > size - t.offset) std::abort();
    if (raw.data() != bytes.data() + t.offset) std::abort();
    try {
      const std::vector<float> values = reader->read_f32(t);
      if (!t.is_float || values.size() != t.element_count()) std::abort();
    } catch (const lowp::Error& e) {
      if (t.is_float) std::abort();
      check_message(e);
    }
    if (const std::optional<lowp::PackedTensor> p = reader->packed(t)) {
      if (p->elements.size() != t.nbytes || p->shape != t.shape ||
          p->scales.size() != p->rows() * p->blocks_per_row())
        std::abort();
    }
  }
  try {
    const std::vector<lowp::io::ChunkStats> stats =
        lowp::io::read_chunk_stats(*reader, "fuzz.safetensors");
    for (const lowp::io::ChunkStats& s : stats) {
      const lowp::io::TensorInfo* t = reader->find(s.tensor);
      if (t == nullptr || s.max.size() != s.chunks() || s.amax.size() != s.chunks() ||
          s.nonfinite.size() != s.chunks())
        std::abort();
    }
    (void)lowp::io::check_chunk_stats(*reader, stats);
  } catch (const lowp::Error& e) {
    check_message(e);
  }
  return 0;
}
