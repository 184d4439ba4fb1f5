// lowp.formats() and lowp.format_info(): the registry as Python dicts, with the
// same keys and values as `lowp formats --json` (a test keeps the two equal).
#include <cstdint>
#include <cstdio>
#include <string>

#include "arrays.h"
#include "lowp/block/block_format.h"
#include "lowp/format/registry.h"

namespace lowp::python {
namespace {

py::dict scalar_info(const std::string& name, const Format& f, std::string_view summary) {
  py::dict d;
  d["name"] = name;
  d["kind"] = is_float(f) ? "float" : "int";
  d["bits"] = f.bits;
  d["signed"] = is_signed(f);
  d["summary"] = std::string(summary);
  if (is_float(f)) {
    d["exponent_bits"] = f.exp_bits;
    d["mantissa_bits"] = f.man_bits;
    d["bias"] = f.bias;
    d["emax"] = emax(f);
    d["max_finite"] = max_finite(f);
    d["min_normal"] = min_normal(f);
    d["min_subnormal"] = has_subnormals(f) ? py::object(py::float_(min_positive(f))) : py::none();
    d["has_inf"] = has_inf(f);
    d["has_nan"] = has_nan(f);
    d["has_negative_zero"] = has_negative_zero(f);
    d["inf_codes"] = inf_codes_text(f);
    d["nan_codes"] = nan_codes_text(f);
  } else {
    d["min"] = int_min(f);
    d["max"] = int_max(f);
  }
  return d;
}

py::dict block_info(const std::string& name, const BlockFormat& f, std::string_view summary) {
  py::dict d;
  d["name"] = name;
  d["kind"] = "block";
  d["element"] = format_name(f.element);
  d["block_size"] = f.block_size;
  d["scale"] = block_scale_info(f.scale).description;
  d["bits_per_value"] = bits_per_value(f);
  d["element_max"] = mx_element_max(f.element);
  d["element_emax"] = mx_element_emax(f.element);
  d["summary"] = std::string(summary);
  return d;
}

py::list formats() {
  py::list out;
  for (const NamedFormat& nf : registry()) {
    out.append(scalar_info(std::string(nf.name), nf.format, nf.summary));
  }
  for (const NamedBlockFormat& nb : block_registry()) {
    out.append(block_info(std::string(nb.name), nb.format, nb.summary));
  }
  return out;
}

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

Scalar formats have ``name``, ``kind`` ("float" or "int"), ``bits``,
``signed``, ``summary``; floats add ``exponent_bits``, ``mantissa_bits``,
``bias``, ``emax``, ``max_finite``, ``min_normal``, ``min_subnormal`` (None
without subnormals), ``has_inf``, ``has_nan``, ``has_negative_zero``,
``inf_codes``, ``nan_codes``; integers add ``min`` and ``max``.
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
