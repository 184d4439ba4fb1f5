// The names of the rounding modes (lowp/format/convert.h): the one spelling of
// --round (CLI) and `rounding` (Python, lowp.torch).
#include "lowp/format/convert.h"

#include "lowp/error.h"

namespace lowp {

std::string_view rounding_name(Rounding r) {
  switch (r) {
    case Rounding::kNearestEven:
      return "rne";
    case Rounding::kNearestAway:
      return "away";
    case Rounding::kTowardZero:
      return "zero";
    case Rounding::kStochastic:
      return "stochastic";
  }
  return "rne";
}

Rounding parse_rounding(std::string_view name) {
  for (Rounding r : {Rounding::kNearestEven, Rounding::kNearestAway, Rounding::kTowardZero,
                     Rounding::kStochastic}) {
    if (rounding_name(r) == name) return r;
  }
  throw Error("unknown rounding " + quoted(name) + " (expected rne, away, zero or stochastic)");
}

}  // namespace lowp
