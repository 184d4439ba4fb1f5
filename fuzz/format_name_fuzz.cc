// libFuzzer target for the format-name parsers (parse_format,
// parse_block_format): any string either names a format or throws lowp::Error
// with a one-line message. A parsed format must survive its canonical name:
// parsing format_name(f) gives f back, and every code decodes into fp32.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lowp/block/block_format.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"

namespace {

void check_one_line(const lowp::Error& e) {
  if (std::string_view(e.what()).find('\n') != std::string_view::npos) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string name(reinterpret_cast<const char*>(data), size);
  try {
    lowp::BlockFormat b;
    if (lowp::parse_block_format(name, b)) {
      if (b.block_size < 1) std::abort();
      lowp::BlockFormat again;
      if (!lowp::parse_block_format(lowp::block_format_name(b), again) || !(again == b))
        std::abort();
      return 0;
    }
  } catch (const lowp::Error& e) {
    check_one_line(e);
  }
  try {
    const lowp::Format f = lowp::parse_format(name);
    if (!(lowp::parse_format(lowp::format_name(f)) == f)) std::abort();
    if (f.bits <= 12) {
      for (std::uint32_t c = 0; c <= lowp::code_mask(f); ++c) {
        const double v = lowp::decode(f, c);
        if (v == v && static_cast<double>(static_cast<float>(v)) != v) std::abort();
      }
    }
  } catch (const lowp::Error& e) {
    check_one_line(e);
  }
  return 0;
}
