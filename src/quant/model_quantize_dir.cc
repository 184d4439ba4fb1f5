// quantize_model_dir (model_quantize.h): a model in an engine's layout as the
// Hugging Face model directory engines load — model.safetensors, config.json
// with the layout's quantization_config, the input's tokenizer files — built
// in a temporary directory beside the target and renamed into place whole.
#include <unistd.h>

#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "lowp/block/block_format.h"
#include "lowp/error.h"
#include "lowp/io/layouts.h"
#include "lowp/quant/model_quantize.h"
#include "lowp/storage/matrix_format.h"

namespace lowp {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read " + quoted(path.string()));
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Files of a model directory an engine reads besides the weights and config.
bool is_companion_file(const std::string& name) {
  return name.starts_with("tokenizer") || name == "special_tokens_map.json" ||
         name == "generation_config.json" || name == "vocab.json" || name == "merges.txt" ||
         name == "added_tokens.json" || name.starts_with("chat_template");
}

// Removes the temporary directory unless it was renamed into place.
struct TempDir {
  fs::path path;
  bool kept = false;
  ~TempDir() {
    if (kept) return;
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

}  // namespace

ModelReport quantize_model_dir(const fs::path& in, const fs::path& out_dir,
                               const QuantizeRequest& req) {
  const std::string layout(io::layout_name(req.layout));
  if (!io::layout_has_config(req.layout)) {
    throw Error("--layout " + layout + " writes a file, not a model directory");
  }
  // Step 1: the input's weights (a directory checked against the layout its
  // config.json names) and config.
  std::unique_ptr<io::ModelReader> reader;
  std::string config;
  if (fs::is_directory(in)) {
    reader = io::open_model_directory(in).model;
    if (fs::exists(in / "config.json")) config = read_text(in / "config.json");
  } else {
    reader = io::open_model(in);
  }
  // Step 2: the target must be new (or an empty directory).
  if (fs::exists(out_dir) && !(fs::is_directory(out_dir) && fs::is_empty(out_dir))) {
    throw Error(quoted(out_dir.string()) + " exists: --layout " + layout +
                " writes a new model directory");
  }
  fs::path parent = out_dir.parent_path();
  if (parent.empty()) parent = ".";
  TempDir temp{parent / ("." + out_dir.filename().string() + ".tmp." + std::to_string(::getpid()))};
  std::error_code ec;
  if (!fs::create_directory(temp.path, ec)) {
    temp.kept = true;  // not ours
    throw Error("cannot create " + quoted(temp.path.string()) +
                (ec ? ": " + ec.message() : ": it exists"));
  }
  // Step 3: the weights.
  QuantizeRequest r = req;
  r.output_kind = "safetensors";
  ModelReport report = quantize_model(*reader, temp.path / "model.safetensors", r);
  report.output = (out_dir / "model.safetensors").string();
  // Step 4: config.json. Modules none of whose tensors were quantized are
  // listed as not converted (first appearance order).
  std::set<std::string> quantized;
  for (const TensorReport& t : report.tensors) {
    if (t.quantized) quantized.insert(io::module_of(t.name));
  }
  std::vector<std::string> kept;
  std::set<std::string> seen;
  for (const TensorReport& t : report.tensors) {
    const std::string m = io::module_of(t.name);
    if (!t.quantized && !quantized.contains(m) && seen.insert(m).second) kept.push_back(m);
  }
  const auto write_text = [](const fs::path& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    f << text;
    if (!f.flush()) throw Error("cannot write " + quoted(path.string()));
  };
  const std::string config_source = (in / "config.json").string();
  if (req.layout == io::Layout::kModelopt) {
    // ModelOpt's config is hf_quant_config.json; config.json (the input's,
    // if any) loses any quantization_config of another convention.
    BlockFormat block;
    const bool nvfp4 = parse_block_format(req.format, block);
    write_text(temp.path / "hf_quant_config.json",
               io::modelopt_quant_config(nvfp4 ? "NVFP4" : "FP8", kept));
    if (!config.empty())
      write_text(temp.path / "config.json",
                 io::config_with_quantization(config, "", config_source));
  } else if (req.layout == io::Layout::kCompressedTensors) {
    // The format as quantize_model resolved and checked it (report.format).
    std::string quantization;
    BlockFormat block;
    if (parse_block_format(report.format, block)) {
      quantization = io::compressed_nvfp4_quantization_config(kept);
    } else if (const MatrixFormat f = parse_matrix_format(report.format);
               io::compressed_pack_supports(f)) {
      quantization = io::compressed_pack_quantization_config(f, kept);
    } else {
      quantization =
          io::compressed_fp8_quantization_config(f.scheme == MatrixScheme::kChannel, kept);
    }
    write_text(temp.path / "config.json",
               io::config_with_quantization(config, quantization, config_source));
  } else {
    write_text(
        temp.path / "config.json",
        io::config_with_quantization(config, io::gpt_oss_quantization_config(kept), config_source));
  }
  // Step 5: tokenizer and generation files, copied as they are.
  try {
    if (fs::is_directory(in)) {
      for (const fs::directory_entry& e : fs::directory_iterator(in)) {
        const std::string name = e.path().filename().string();
        if (e.is_regular_file() && is_companion_file(name)) {
          fs::copy_file(e.path(), temp.path / name);
        }
      }
    }
    // Step 6: into place (an empty target directory is replaced).
    if (fs::exists(out_dir)) fs::remove(out_dir);
    fs::rename(temp.path, out_dir);
  } catch (const fs::filesystem_error& e) {
    throw Error(std::string("cannot write ") + quoted(out_dir.string()) + ": " + e.what());
  }
  temp.kept = true;
  return report;
}

}  // namespace lowp
