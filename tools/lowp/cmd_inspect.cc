// `lowp inspect FILE [--json]`: the tensors of a model file (name, dtype or
// format, shape, bytes), its metadata, and totals (parameters, bytes, bits per
// parameter). Reads only the file's index; no tensor data is touched.
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowp/io/layouts.h"
#include "lowp/io/model.h"

namespace lowp::cli {
namespace {

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string bytes_text(std::uint64_t b) {
  if (b < 10 * 1024) return fmt::format("{} B", b);
  if (b < 10ull * 1024 * 1024) return fmt::format("{:.1f} KiB", static_cast<double>(b) / 1024);
  if (b < 10ull * 1024 * 1024 * 1024)
    return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1024.0 * 1024));
  return fmt::format("{:.1f} GiB", static_cast<double>(b) / (1024.0 * 1024 * 1024));
}

void run_inspect(const std::string& path, bool json) {
  // A Hugging Face model directory: its model.safetensors, checked against
  // the layout its config.json names.
  std::unique_ptr<io::ModelReader> model;
  std::string layout;
  if (std::filesystem::is_directory(path)) {
    io::ModelDirectory d = io::open_model_directory(path);
    model = std::move(d.model);
    layout = d.layout;
  } else {
    model = io::open_model(path);
    layout = model->layout();
  }
  std::uint64_t params = 0;
  std::uint64_t bytes = 0;
  for (const io::TensorInfo& t : model->tensors()) {
    params += t.element_count();
    bytes += t.nbytes;
  }
  const double bits_per_param =
      params == 0 ? 0.0 : 8.0 * static_cast<double>(bytes) / static_cast<double>(params);
  if (json) {
    nlohmann::json out;
    out["file"] = path;
    out["kind"] = model->kind();
    if (!layout.empty()) out["layout"] = layout;
    out["metadata"] = nlohmann::json::object();
    for (const auto& [k, v] : model->metadata()) out["metadata"][k] = v;
    out["tensors"] = nlohmann::json::array();
    for (const io::TensorInfo& t : model->tensors()) {
      out["tensors"].push_back({{"name", t.name},
                                {"dtype", t.dtype},
                                {"shape", t.shape},
                                {"bytes", t.nbytes},
                                {"elements", t.element_count()},
                                {"offset", t.offset}});
    }
    out["totals"] = {{"tensors", model->tensors().size()},
                     {"parameters", params},
                     {"bytes", bytes},
                     {"bits_per_parameter", bits_per_param}};
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("{} ({}{})\n", path, model->kind(), layout.empty() ? "" : ", " + layout + " layout");
  const auto metadata = model->metadata();
  if (!metadata.empty()) {
    fmt::print("\nmetadata:\n");
    for (const auto& [k, v] : metadata) fmt::print("  {}: {}\n", k, v);
  }
  std::size_t name_width = 4;
  for (const io::TensorInfo& t : model->tensors()) name_width = std::max(name_width, t.name.size());
  name_width = std::min<std::size_t>(name_width, 60);
  fmt::print("\n{:<{}}  {:<12} {:<22} {:>12}\n", "name", name_width, "dtype", "shape", "bytes");
  for (const io::TensorInfo& t : model->tensors()) {
    fmt::print("{:<{}}  {:<12} {:<22} {:>12}\n", t.name, name_width, t.dtype, shape_text(t.shape),
               t.nbytes);
  }
  fmt::print("\n{} tensors, {} parameters, {} ({} bytes), {:.3f} bits per parameter\n",
             model->tensors().size(), params, bytes_text(bytes), bytes, bits_per_param);
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "inspect",
      "List the tensors (name, dtype or format, shape, bytes), metadata and totals of a "
      "model file: .safetensors, .gguf, .onnx, .npy or .npz, or a Hugging Face model "
      "directory (model.safetensors checked against config.json's quantization_config or "
      "hf_quant_config.json); names the checkpoint layout it recognizes (gpt-oss, modelopt, "
      "compressed-tensors, lowp)");
  cmd->add_option("FILE", *path, "Model file or directory")->required();
  cmd->add_flag("--json", *json, "Print JSON instead of a table");
  cmd->callback([path, json] { run_inspect(*path, *json); });
}

}  // namespace lowp::cli
