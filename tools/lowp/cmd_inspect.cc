// `lowp inspect FILE [--json] [--check-stats]`: the tensors of a model file
// (name, dtype or format, shape, bytes), its metadata, totals (parameters,
// bytes, bits per parameter) and, where the header holds them, each tensor's
// chunk statistics (lowp/io/chunk_stats.h). Reads only the file's index; no
// tensor data is touched, except by --check-stats, which recomputes the
// statistics from the data and compares.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowp/error.h"
#include "lowp/io/chunk_stats.h"
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

// A tensor's statistics over all its chunks.
struct StatsSummary {
  std::int64_t rows = 0;
  std::size_t chunks = 0;
  float min = NAN, max = NAN, amax = NAN;  // NaN: no finite value
  std::uint64_t nonfinite = 0;
};

StatsSummary summarize(const io::ChunkStats& s) {
  StatsSummary out;
  out.rows = s.rows;
  out.chunks = s.chunks();
  for (std::size_t i = 0; i < s.chunks(); ++i) {
    out.nonfinite += s.nonfinite[i];
    if (std::isnan(s.min[i])) continue;
    out.min = std::isnan(out.min) ? s.min[i] : std::min(out.min, s.min[i]);
    out.max = std::isnan(out.max) ? s.max[i] : std::max(out.max, s.max[i]);
    out.amax = std::isnan(out.amax) ? s.amax[i] : std::max(out.amax, s.amax[i]);
  }
  return out;
}

nlohmann::json number_or_null(float v) {
  return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(static_cast<double>(v));
}

void run_inspect(const std::string& path, bool json, bool check_stats) {
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
  // Chunk statistics: malformed ones are a warning (the tensors are still
  // what every reader loads), an error with --check-stats.
  std::map<std::string, StatsSummary> stats;
  std::size_t stats_bytes = 0;
  bool has_stats = false;
  for (const auto& [k, v] : model->metadata()) {
    if (k == io::kChunkStatsKey) {
      has_stats = true;
      stats_bytes = v.size();
    }
  }
  try {
    const std::vector<io::ChunkStats> stored = io::read_chunk_stats(*model, path);
    if (check_stats) {
      if (!has_stats) throw Error(path + ": no chunk statistics to check (lowp_chunk_stats)");
      if (const std::optional<std::string> diff = io::check_chunk_stats(*model, stored))
        throw Error(path + ": chunk statistics do not match the data: " + *diff);
    }
    for (const io::ChunkStats& s : stored) stats.emplace(s.tensor, summarize(s));
  } catch (const Error& e) {
    if (check_stats) throw;
    fmt::print(stderr, "lowp: warning: {} (statistics ignored)\n", e.what());
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
      nlohmann::json entry = {{"name", t.name},
                              {"dtype", t.dtype},
                              {"shape", t.shape},
                              {"bytes", t.nbytes},
                              {"elements", t.element_count()},
                              {"offset", t.offset}};
      if (const auto it = stats.find(t.name); it != stats.end()) {
        const StatsSummary& s = it->second;
        entry["chunk_stats"] = {{"rows_per_chunk", s.rows},       {"chunks", s.chunks},
                                {"min", number_or_null(s.min)},   {"max", number_or_null(s.max)},
                                {"amax", number_or_null(s.amax)}, {"nonfinite", s.nonfinite}};
      }
      out["tensors"].push_back(std::move(entry));
    }
    if (check_stats) out["chunk_stats_checked"] = true;
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
    for (const auto& [k, v] : metadata) {
      if (k == io::kChunkStatsKey) {
        fmt::print("  {}: ({} bytes: chunk statistics, below)\n", k, v.size());
      } else {
        fmt::print("  {}: {}\n", k, v);
      }
    }
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
  if (stats.empty()) return;
  const auto num = [](float v) {
    return std::isnan(v) ? std::string("-") : fmt::format("{:.6g}", v);
  };
  fmt::print("\nchunk statistics ({} tensors, {} bytes of metadata text):\n", stats.size(),
             stats_bytes);
  fmt::print("{:<{}}  {:>7} {:>6} {:>13} {:>13} {:>13} {:>9}\n", "name", name_width, "chunks",
             "rows", "min", "max", "amax", "nonfinite");
  for (const io::TensorInfo& t : model->tensors()) {
    const auto it = stats.find(t.name);
    if (it == stats.end()) continue;
    const StatsSummary& s = it->second;
    fmt::print("{:<{}}  {:>7} {:>6} {:>13} {:>13} {:>13} {:>9}\n", t.name, name_width, s.chunks,
               s.rows, num(s.min), num(s.max), num(s.amax), s.nonfinite);
  }
  if (check_stats) fmt::print("\nchunk statistics match the data ({} tensors)\n", stats.size());
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
      "compressed-tensors, lowp); shows each tensor's chunk statistics (range, amax, chunks) "
      "where the header holds them, without reading the data");
  cmd->add_option("FILE", *path, "Model file or directory")->required();
  auto check = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print JSON instead of a table");
  cmd->add_flag("--check-stats", *check,
                "Recompute the chunk statistics (lowp quantize --chunk-stats) from the tensor "
                "data and compare; a mismatch, missing or malformed statistics are an error");
  cmd->callback([path, json, check] { run_inspect(*path, *json, *check); });
}

}  // namespace lowp::cli
