// The files are pulled in by the assembler (.incbin), so the build needs no
// code generator and the 4 MB checkpoint costs no compile time. The paths come
// from CMake (LOWP_EMBEDDED_MODEL_PATH, LOWP_EMBEDDED_TEXT_PATH).
#include "embedded.h"

// clang-format off
__asm__(
    ".section .rodata\n"
    ".balign 64\n"
    "lowp_embedded_model_begin:\n"
    ".incbin \"" LOWP_EMBEDDED_MODEL_PATH "\"\n"
    "lowp_embedded_model_end:\n"
    ".balign 64\n"
    "lowp_embedded_text_begin:\n"
    ".incbin \"" LOWP_EMBEDDED_TEXT_PATH "\"\n"
    "lowp_embedded_text_end:\n"
    ".previous\n");
// clang-format on

extern "C" const unsigned char lowp_embedded_model_begin[];
extern "C" const unsigned char lowp_embedded_model_end[];
extern "C" const unsigned char lowp_embedded_text_begin[];
extern "C" const unsigned char lowp_embedded_text_end[];

namespace lowp::cli {

std::span<const std::byte> embedded_model() {
  return {reinterpret_cast<const std::byte*>(lowp_embedded_model_begin),
          static_cast<std::size_t>(lowp_embedded_model_end - lowp_embedded_model_begin)};
}

std::span<const std::uint8_t> embedded_validation_text() {
  return {lowp_embedded_text_begin,
          static_cast<std::size_t>(lowp_embedded_text_end - lowp_embedded_text_begin)};
}

}  // namespace lowp::cli
