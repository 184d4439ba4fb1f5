// Format properties as JSON (lowp/block/format_json.h).
#include "lowp/block/format_json.h"

#include <nlohmann/json.hpp>

#include "lowp/format/registry.h"

namespace lowp {

std::string block_format_json(std::string_view name, const BlockFormat& f,
                              std::string_view summary) {
  nlohmann::ordered_json j;
  j["name"] = name;
  j["kind"] = "block";
  j["element"] = format_name(f.element);
  j["block_size"] = f.block_size;
  j["scale"] = block_scale_info(f.scale).description;
  j["bits_per_value"] = bits_per_value(f);
  j["element_max"] = mx_element_max(f.element);
  j["element_emax"] = mx_element_emax(f.element);
  j["summary"] = summary;
  return j.dump();
}

std::string registry_json() {
  std::string out = "[";
  for (const NamedFormat& nf : registry()) {
    out += (out.size() > 1 ? "," : "") + format_json(nf.name, nf.format, nf.summary);
  }
  for (const NamedBlockFormat& nb : block_registry()) {
    out += "," + block_format_json(nb.name, nb.format, nb.summary);
  }
  return out + "]";
}

}  // namespace lowp
