// The quantization report as JSON (report_json in lowp/quant/model_quantize.h).
#include <cmath>

#include <nlohmann/json.hpp>

#include "lowp/quant/model_quantize.h"

namespace lowp {
namespace {

using Json = nlohmann::ordered_json;

Json finite_or_null(double v) { return std::isfinite(v) ? Json(v) : Json(); }

}  // namespace

std::string report_json(const ModelReport& r) {
  Json j;
  j["input"] = r.input;
  j["output"] = r.output;
  j["output_kind"] = r.output_kind;
  j["format"] = r.format;
  if (r.budget > 0) j["budget_bits_per_value"] = r.budget;
  j["fake"] = r.fake;
  j["tensors"] = Json::array();
  for (const TensorReport& t : r.tensors) {
    Json row;
    row["name"] = t.name;
    row["shape"] = t.shape;
    row["dtype_in"] = t.dtype_in;
    row["stored_as"] = t.stored_as;
    row["quantized"] = t.quantized;
    row["elements"] = t.elements;
    row["bytes_in"] = t.bytes_in;
    row["bytes_out"] = t.bytes_out;
    row["bits_per_value"] = t.bits_per_value();
    if (t.quantized) {
      row["mse"] = t.stats.mse();
      row["sqnr_db"] = finite_or_null(t.stats.sqnr_db());
      row["max_abs_error"] = t.stats.max_abs_error;
      row["nonfinite"] = t.stats.nonfinite;
    }
    j["tensors"].push_back(std::move(row));
  }
  Json& totals = j["totals"];
  totals["parameters"] = r.parameters;
  totals["quantized_parameters"] = r.quantized_parameters;
  totals["bytes_in"] = r.bytes_in;
  totals["bytes_out"] = r.bytes_out;
  totals["bits_per_parameter"] = r.bits_per_parameter();
  totals["mse"] = r.quantized_stats.mse();
  totals["sqnr_db"] = finite_or_null(r.quantized_stats.sqnr_db());
  totals["max_abs_error"] = r.quantized_stats.max_abs_error;
  return j.dump();
}

}  // namespace lowp
