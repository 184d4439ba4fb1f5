// lowp.formats() and lowp.format_info(): the registry as Python dicts, from the
// library's JSON (lowp/block/format_json.h), which `lowp formats --json`
// prints too (a test keeps the two equal).
#include <cstdint>
#include <cstdio>
#include <string>

#include "arrays.h"
#include "lowp/block/block_format.h"
#include "lowp/block/format_json.h"
#include "lowp/format/registry.h"

namespace lowp::python {
namespace {

py::dict scalar_info(const std::string& name, const Format& f, std::string_view summary) {
  return from_json(format_json(name, f, summary));
}

py::dict block_info(const std::string& name, const BlockFormat& f, std::string_view summary) {
  return from_json(block_format_json(name, f, summary));
}

py::list formats() { return from_json(registry_json()); }

// Any format name the CLI accepts: registered, alias, eXmY, mx:<element>:<k>.
py::dict format_info(const std::string& name) {
  BlockFormat block;
  if (parse_block_format(name, block)) {
    for (const NamedBlockFormat& nb : block_registry()) {
      if (nb.format == block) return block_info(std::string(nb.name), block, nb.summary);
    }
    return block_info(block_format_name(block), block, "");
  }
  const Format f = parse_format(name);
  for (const NamedFormat& nf : registry()) {
    if (nf.format == f) return scalar_info(std::string(nf.name), f, nf.summary);
  }
  return scalar_info(format_name(f), f, "");
}

}  // namespace

void add_formats(py::module_& m) {
  m.def("formats", &formats, R"doc(formats() -> list[dict]

Every registered format and its properties, one dict per format: first the
scalar formats, then the block formats, with the same keys and values as
``lowp formats --json``.

Scalar formats have ``name``, ``kind`` ("float", "int", "table" or "posit"), ``bits``,
``signed``, ``summary``; floats add ``exponent_bits``, ``mantissa_bits``,
``bias``, ``emax``, ``max_finite``, ``min_normal``, ``min_subnormal`` (None
without subnormals), ``has_inf``, ``has_nan``, ``has_negative_zero``,
``inf_codes``, ``nan_codes``; integers add ``min`` and ``max``; code books
(nf4, nf3, dint4) add ``min``, ``max``, ``max_finite``,
``has_negative_zero`` and ``values`` (the value of each code); posits add
``exponent_bits`` (es), ``max_finite`` (maxpos), ``min_positive`` (minpos),
``has_inf``, ``has_nan`` (NaR), ``has_negative_zero`` and ``nan_codes``.
Block formats have ``kind`` "block", ``element``, ``block_size``, ``scale``,
``bits_per_value`` (scales included), ``element_max``, ``element_emax``.

Any minifloat can also be named eXmY[bB][fn|fnuz|fin] (e.g. "e3m4") and any
MX format mx:<element>:<k> (e.g. "mx:int4:32"); see format_info().

>>> [f["name"] for f in lowp.formats() if f["kind"] == "block"][:2]
['mxfp8_e4m3', 'mxfp8_e5m2'])doc");

  m.def("format_info", &format_info, py::arg("format"), R"doc(format_info(format) -> dict

The properties of one format, as in formats(): a registered name, an alias
("float16", "e4m3fn"), a minifloat spelled eXmY[bB][fn|fnuz|fin], or a block
format (registered, or mx:<element>:<k>). The dict's ``name`` is the canonical
name. Raises lowp.Error for an unknown name (naming the closest known ones).

>>> lowp.format_info("e4m3fn")["max_finite"]
448.0)doc");
}

}  // namespace lowp::python
