// lowp/error.h — the one exception type lowp throws for bad input.
//
// Its message is a single line that names what is wrong and where (a file, a
// tensor, an option); the CLI prints it as is and exits non-zero.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace lowp {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Untrusted text (a user's format name, a file's header field) quoted for an
// error message: printable ASCII is kept, everything else (newlines included)
// is escaped as \xHH, and text past 40 characters is cut with "...", so the
// message stays one readable line.
std::string quoted(std::string_view text);
// For std::string arguments: a non-template exact match, so that argument-
// dependent lookup does not pick std::quoted instead.
inline std::string quoted(const std::string& text) { return quoted(std::string_view(text)); }
inline std::string quoted(std::string& text) { return quoted(std::string_view(text)); }

}  // namespace lowp
