// lowp/error.h — the one exception type lowp throws for bad input.
//
// Its message is a single line that names what is wrong and where (a file, a
// tensor, an option); the CLI prints it as is and exits non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace lowp {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace lowp
