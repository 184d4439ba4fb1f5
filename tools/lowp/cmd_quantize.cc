// `lowp quantize IN -o OUT --format F ...`: quantize a whole model file tensor
// by tensor, write it (safetensors, GGUF, or ONNX with --fake), and report what
// each tensor lost (MSE, SQNR, max error) and what the file saves.
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "arrays.h"
#include "calibration.h"
#include "commands.h"
#include "lowp/block/block_format.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/io/atomic_file.h"
#include "lowp/io/layouts.h"
#include "lowp/io/model.h"
#include "lowp/nn/model_files.h"
#include "lowp/nn/tokenizer.h"
#include "lowp/quant/calibrate.h"
#include "lowp/quant/export_gguf.h"
#include "lowp/quant/model_quantize.h"
#include "lowp/storage/matrix_format.h"

namespace lowp::cli {
namespace {

struct QuantizeArgs {
  std::string in, out, format, round = "rne", scale_rule = "floor", to, report_path;
  std::string layout = "lowp";
  std::string method = "rtn";
  double budget = 0;
  std::string budget_formats = "mxfp4,mxfp6_e2m3,mxfp8_e4m3";
  CalibrationArgs calib;
  std::optional<int> block;
  std::uint64_t seed = 0;
  std::uint64_t min_elements = 1;
  std::vector<std::string> include, exclude;
  unsigned threads = 0;
  std::int64_t chunk_stats = 0;  // rows per chunk; 0: no statistics
  int axis = -1;
  bool saturate = false, fake = false, quiet = false;
  bool convert = false;  // lowp convert: never the llama.cpp export
};

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s;
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "x" : "") + std::to_string(shape[i]);
  return s.empty() ? "scalar" : s;
}

std::string db_text(double db) {
  if (std::isinf(db)) return db > 0 ? "exact" : "-inf";
  return fmt::format("{:.2f}", db);
}

void print_report(const ModelReport& r) {
  std::size_t width = 6;
  for (const TensorReport& t : r.tensors) width = std::max(width, t.name.size());
  width = std::min<std::size_t>(width, 48);
  fmt::print("{:<{}}  {:<14} {:<22} {:>10} {:>9} {:>12} {:>9} {:>11}\n", "tensor", width, "shape",
             "stored as", "elements", "bits/val", "MSE", "SQNR dB", "max |err|");
  for (const TensorReport& t : r.tensors) {
    if (t.quantized) {
      fmt::print("{:<{}}  {:<14} {:<22} {:>10} {:>9.3f} {:>12.4g} {:>9} {:>11.4g}\n", t.name, width,
                 shape_text(t.shape), t.stored_as, t.elements, t.bits_per_value(), t.stats.mse(),
                 db_text(t.stats.sqnr_db()), t.stats.max_abs_error);
    } else {
      fmt::print("{:<{}}  {:<14} {:<22} {:>10} {:>9.3f} {:>12} {:>9} {:>11}\n", t.name, width,
                 shape_text(t.shape), t.stored_as, t.elements, t.bits_per_value(), "-", "kept",
                 "-");
    }
  }
  fmt::print("\n{} -> {} ({}{}): {} tensors, {} of {} parameters quantized\n", r.input, r.output,
             r.budget > 0 ? fmt::format("budget {:g} bits per value", r.budget) : r.format,
             r.fake ? ", fake" : "", r.tensors.size(), r.quantized_parameters, r.parameters);
  fmt::print(
      "bytes {} -> {} ({:.3f}x), {:.3f} bits per parameter; quantized tensors: SQNR {} dB, MSE "
      "{:.4g}, "
      "max |err| {:.4g}\n",
      r.bytes_in, r.bytes_out,
      r.bytes_out == 0 ? 0.0 : static_cast<double>(r.bytes_in) / static_cast<double>(r.bytes_out),
      r.bits_per_parameter(), db_text(r.quantized_stats.sqnr_db()), r.quantized_stats.mse(),
      r.quantized_stats.max_abs_error);
}

// A model llama.cpp runs (a Hugging Face directory, or a GGUF file of
// llama.cpp's own architectures) written as llama.cpp's GGUF.
bool is_runtime_model(const std::string& path) {
  if (std::filesystem::is_directory(path)) return true;
  if (!path.ends_with(".gguf")) return false;
  const std::unique_ptr<io::ModelReader> in = io::open_model(path);
  bool lowp = false, arch = false;
  for (const auto& [key, value] : in->metadata()) {
    lowp = lowp || key == "lowp.arch";
    arch = arch || key == "general.architecture";
  }
  return arch && !lowp;
}

// The model `method` quantized to the matrices a ggml type holds as they are
// (a model file the runtime runs, loaded once with its tokenizer).
nn::Transformer method_model(const QuantizeArgs& a, QuantMethod method) {
  const std::string storage = a.format == "q8_0"    ? "q8_0"
                              : a.format == "q4_0"  ? "int4:group32"
                              : a.format == "mxfp4" ? "mxfp4"
                                                    : "";
  if (storage.empty()) {
    throw Error("--method " + a.method + " writes q8_0, q4_0 or mxfp4 GGUF files, not " +
                quoted(a.format));
  }
  if (const std::string why = method_mismatch(method, parse_matrix_format(storage)); !why.empty()) {
    throw Error("--method " + a.method + ": " + why);
  }
  if (method_needs_data(method) && a.calib.file.empty()) {
    throw Error("--method " + a.method + " needs calibration text (--calib FILE)");
  }
  const ModelAndTokenizer loaded = load_model_and_tokenizer(a.in);
  const std::vector<std::vector<std::int32_t>> windows =
      load_calibration(loaded, a.calib, loaded.model.config().n_ctx);
  const unsigned threads =
      a.threads ? a.threads : std::max(1u, std::thread::hardware_concurrency());
  ModelQuantizeOptions o;
  o.method = method_options(method, a.calib, threads);
  o.measure_objective = false;
  if (!a.quiet) o.progress = [](const std::string& line) { fmt::print(stderr, "  {}\n", line); };
  ModelQuantization q =
      quantize_transformer(loaded.model, parse_matrix_format(storage), windows, o);
  for (const std::string& w : q.warnings) fmt::print(stderr, "warning: {}\n", w);
  return std::move(q.model);
}

void run_export(const QuantizeArgs& a) {
  if (output_kind_for(a.out, a.to) != "gguf") {
    throw Error(a.in + " is a model llama.cpp runs: it is written as GGUF (-o FILE.gguf)");
  }
  const QuantMethod method = parse_method(a.method);
  GgufExportRequest req;
  req.type = a.format;
  // With a method, its matrices are written into ggml's blocks as they are.
  req.packed = method != QuantMethod::kRtn;
  const nn::Transformer model = req.packed ? method_model(a, method) : nn::load_transformer(a.in);
  req.name = std::filesystem::path(a.in).filename().string();
  if (std::filesystem::is_directory(a.in)) {
    nn::Tokenizer::from_directory(a.in).to_gguf_kv(req.tokenizer_kv);
  } else {
    const std::unique_ptr<io::ModelReader> in = io::open_model(a.in);
    for (const io::GgufKv& kv : io::gguf_kv(*in)) {
      if (kv.first.starts_with("tokenizer.")) req.tokenizer_kv.push_back(kv);
    }
  }
  const std::vector<GgufExportTensor> written = export_gguf(model, a.out, req);
  if (a.quiet) return;
  std::uint64_t bytes = 0;
  std::map<std::string, std::size_t> types;
  for (const GgufExportTensor& t : written) {
    bytes += t.bytes;
    ++types[t.type];
  }
  std::string summary;
  for (const auto& [t, n] : types)
    summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", n, t);
  fmt::print("{} -> {} (llama.cpp GGUF, {} {}{}): {} tensors ({}), {} bytes of tensor data\n", a.in,
             a.out, model.config().family, a.format, req.packed ? " by " + a.method : std::string(),
             written.size(), summary, bytes);
}

void run_quantize(const QuantizeArgs& a) {
  if (a.format.empty() && !(a.budget > 0)) throw Error("--format is required (or --budget)");
  const QuantMethod method = parse_method(a.method);
  const io::Layout layout = io::parse_layout(a.layout);
  if (a.chunk_stats < 0) throw Error("--chunk-stats: rows per chunk must be at least 1");
  if (a.chunk_stats > 0) {
    const std::string kind =
        io::layout_has_config(layout) ? "safetensors" : output_kind_for(a.out, a.to);
    if (kind != "safetensors")
      throw Error("--chunk-stats: only safetensors output carries chunk statistics, not " + kind);
  }
  // A model directory written to a file other than GGUF is quantized tensor
  // by tensor like any model file (its weights: model.safetensors or shards).
  const bool directory = std::filesystem::is_directory(a.in);
  if (!a.convert && !io::layout_has_config(layout) && is_runtime_model(a.in) &&
      !(directory && output_kind_for(a.out, a.to) != "gguf")) {
    run_export(a);
    return;
  }
  QuantizeRequest req;
  req.format = a.format;
  req.block_size = a.block;
  req.axis = a.axis;
  req.block.rounding = parse_rounding(a.round);
  req.block.scale_rule = parse_scale_rule(a.scale_rule);
  req.block.seed = a.seed;
  req.block.threads = a.threads;
  req.saturate = a.saturate;
  req.include = a.include;
  req.exclude = a.exclude;
  req.min_elements = a.min_elements;
  req.fake = a.fake;
  req.chunk_stats_rows = a.chunk_stats;
  req.layout = layout;
  // An engine's layout is a model directory: safetensors inside.
  req.output_kind = io::layout_has_config(layout) ? "safetensors" : output_kind_for(a.out, a.to);
  req.method = method;
  if (a.budget > 0) {
    req.budget = a.budget;
    req.budget_formats = split_list(a.budget_formats);
  }
  req.search.exponent_radius = a.calib.search_radius;
  // A progress line on a terminal, nothing otherwise.
  const bool progress = !a.quiet && ::isatty(STDERR_FILENO) != 0;
  if (progress) {
    req.on_tensor = [](std::size_t i, std::size_t n, const io::TensorInfo& t) {
      std::fprintf(stderr, "\r\033[K[%zu/%zu] %s", i + 1, n, t.name.c_str());
      std::fflush(stderr);
    };
  }
  // The model and its --report appear together or not at all. The report's
  // temporary is created first, so a report path that cannot be written fails
  // before the model is; a report that still fails to complete (a full disk)
  // takes the just-written model with it.
  std::optional<io::AtomicFile> report_file;
  if (!a.report_path.empty()) report_file.emplace(a.report_path);
  ModelReport report = io::layout_has_config(layout)
                           ? quantize_model_dir(a.in, a.out, req)
                           : quantize_model(directory ? *io::open_model_directory(a.in).model
                                                      : *io::open_model(a.in),
                                            a.out, req);
  report.input = a.in;
  if (progress) std::fprintf(stderr, "\r\033[K");
  if (report_file) {
    try {
      // The library's JSON, written with sorted keys and an indent of 2.
      const std::string text = nlohmann::json::parse(report_json(report)).dump(2) + "\n";
      report_file->write(std::as_bytes(std::span(text.data(), text.size())));
      report_file->commit();
    } catch (...) {
      std::error_code ignored;
      std::filesystem::remove_all(a.out, ignored);
      throw;
    }
  }
  if (!a.quiet) print_report(report);
}

// lowp convert: the input's own quantized format, copied code for code into
// the output layout. The format is the one block format (mxfp4, nvfp4, ...)
// or FP8 matrix format the input's quantized tensors hold; only those
// tensors are written in it, every other tensor is kept as it is.
void run_convert(QuantizeArgs a) {
  const std::unique_ptr<io::ModelReader> in = std::filesystem::is_directory(a.in)
                                                  ? io::open_model_directory(a.in).model
                                                  : io::open_model(a.in);
  std::set<std::string> formats;
  std::vector<std::string> held;
  for (const io::TensorInfo& t : in->tensors()) {
    std::string name = t.dtype;
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    BlockFormat block;
    bool quantized = parse_block_format(name, block);
    if (!quantized && name.find(':') != std::string::npos) {
      try {
        parse_matrix_format(name);
        quantized = true;
      } catch (const Error&) {
      }
    }
    if (!quantized) continue;
    formats.insert(name);
    held.push_back(t.name);
  }
  if (a.format.empty()) {
    if (formats.empty()) {
      throw Error(a.in +
                  " holds no tensor in a block or scaled format (mxfp4, nvfp4, fp8_e4m3:tensor, "
                  "...) to convert; give --format to quantize it");
    }
    if (formats.size() > 1) {
      std::string list;
      for (const std::string& f : formats) list += (list.empty() ? "" : ", ") + f;
      throw Error(a.in + " holds tensors in several formats (" + list +
                  "); give --format to choose one");
    }
    a.format = *formats.begin();
  }
  // The tensors already in the format, and only those (unless told which).
  if (a.include.empty()) {
    for (const std::string& name : held) a.include.push_back(name);
  }
  a.convert = true;
  run_quantize(a);
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  auto* cmd = app.add_subcommand(
      "convert",
      "Convert a quantized model between layouts without requantizing: the tensors in the "
      "input's block or FP8 format (gpt-oss MXFP4, ModelOpt NVFP4 or FP8, compressed-tensors "
      "FP8, NVFP4 or packed integers, GGUF MXFP4/NVFP4, lowp's packing) are copied code for code "
      "into the output's layout "
      "(--layout, or .gguf / .safetensors by OUT's extension), every other tensor as it is. "
      "E.g. a ModelOpt NVFP4 checkpoint to GGUF: lowp convert ckpt_dir -o model.gguf");
  cmd->add_option("IN", a->in, "Input model file or Hugging Face model directory")->required();
  cmd->add_option("-o,--output", a->out, "Output file or model directory")->required();
  cmd->add_option("--layout", a->layout,
                  "Output convention: lowp, gpt-oss, modelopt, compressed-tensors (as for "
                  "lowp quantize)")
      ->default_str("lowp");
  cmd->add_option("--to", a->to,
                  "Output kind when OUT's extension does not say: safetensors, gguf");
  cmd->add_option("--format,-f", a->format,
                  "The format to write (default: the one the input's quantized tensors hold); "
                  "tensors in another format are quantized to it");
  cmd->add_option("--include", a->include,
                  "Convert only tensors whose name matches a glob (default: those in the format)");
  cmd->add_flag("--chunk-stats{64}", a->chunk_stats,
                "safetensors output: per-chunk statistics (min, max, amax, non-finite count of "
                "each run of ROWS rows of every float tensor, at most 1024 chunks a tensor) in "
                "the header's __metadata__ (lowp_chunk_stats), shown by lowp inspect; "
                "--chunk-stats=ROWS, default 64");
  cmd->add_option("--report", a->report_path, "Also write the per-tensor report as JSON");
  cmd->add_option("--threads", a->threads, "Threads (0: one per core)")->default_str("0");
  cmd->add_flag("-q,--quiet", a->quiet, "Print nothing on success");
  cmd->callback([a] { run_convert(*a); });
}

void add_quantize_command(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  auto* cmd = app.add_subcommand(
      "quantize",
      "Quantize a model file (.safetensors, .gguf, .onnx, .npz, .npy) "
      "tensor by tensor and report what each "
      "tensor lost. By default float tensors of rank >= 2 are quantized "
      "and the rest (norms, biases) kept. "
      "Outputs: .safetensors (any format; block formats packed), .gguf "
      "(fp32, fp16, bf16, mxfp4, nvfp4, q8_0; nvfp4 as ggml's NVFP4 with its "
      "per-tensor scale in an F32 <name>.scale tensor), "
      ".onnx (--fake; --layout onnx-qdq). A Hugging Face model directory (Llama, "
      "Mistral, Qwen2, Qwen3, GPT-2) or a llama.cpp GGUF of one is "
      "written as the GGUF llama.cpp loads (-o X.gguf; -f fp32, fp16, "
      "bf16, q8_0, q4_0, q4_k, mxfp4, nvfp4); to .safetensors, a directory's weights "
      "(model.safetensors or the shards of model.safetensors.index.json) are "
      "quantized tensor by tensor. --layout gpt-oss writes the "
      "Hugging Face model directory transformers and vLLM load as "
      "gpt-oss MXFP4 (-o DIR -f mxfp4), --layout modelopt the directory vLLM "
      "loads as ModelOpt NVFP4 or FP8 (-o DIR -f nvfp4), --layout "
      "compressed-tensors the llm-compressor directory (-f fp8_e4m3:channel, nvfp4, "
      "int4:group128, int8:channel, ...); --layout onnx-qdq an ONNX model's weights as "
      "DequantizeLinear");
  cmd->add_option("IN", a->in, "Input model file or Hugging Face model directory")->required();
  cmd->add_option("-o,--output", a->out, "Output file (written atomically)")->required();
  cmd->add_option("--format,-f", a->format,
                  "Format (see 'lowp formats'; q8_0 for GGUF); required unless --budget");
  cmd->add_option("--block", a->block, "Block size for block formats");
  cmd->add_option(
         "--axis", a->axis,
         "Block axis in each tensor's 2-D view (rank 3+ is seen as [d0, rest]): -1 for [out, in] "
         "weights, 0 for [in, out] (ONNX MatMul)")
      ->default_str("-1");
  cmd->add_option("--scale-rule", a->scale_rule, "MX shared-scale rule: floor, rceil, ceil, even")
      ->default_str("floor");
  cmd->add_option("--round", a->round, "Rounding: rne, away, zero, stochastic")->default_str("rne");
  cmd->add_option("--seed", a->seed, "Seed for stochastic rounding")->default_str("0");
  cmd->add_flag("--saturate", a->saturate, "Scalar formats: clamp overflow to ±max finite");
  cmd->add_option("--include", a->include,
                  "Quantize only tensors whose name matches a glob (repeatable)");
  cmd->add_option("--exclude", a->exclude,
                  "Never quantize tensors whose name matches a glob (repeatable)");
  cmd->add_option("--min-elements", a->min_elements, "Keep tensors with fewer elements")
      ->default_str("1");
  cmd->add_option("--method", a->method,
                  "rtn (the format's rule); mse (search each block/group/channel scale for "
                  "the least squared error: block and scaled matrix formats, with --fake or "
                  "as packed safetensors; and a model the runtime runs written as q8_0, q4_0 "
                  "or mxfp4 GGUF); gptq (that GGUF only, with --calib); fpvote (each "
                  "tensor's exponent/mantissa split by a vote of its rows: scaled float "
                  "formats such as fp8_e4m3:channel, with --fake); power (sign(w)|w|^a in a "
                  "scaled format, a searched per tensor, with --fake); fpsearch, gptvq, "
                  "matgptq, nupes: lowp report only")
      ->default_str("rtn");
  add_calibration_options(cmd, a->calib);
  cmd->add_option("--budget", a->budget,
                  "Mixed precision (with --fake): each tensor takes one of --budget-formats so "
                  "that the average bits per value (scales included) stay within BITS, chosen "
                  "by the relative weight error; the table shows each tensor's format")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--budget-formats", a->budget_formats,
                  "Candidate formats of --budget (default: mxfp4,mxfp6_e2m3,mxfp8_e4m3)");
  cmd->add_flag("--fake", a->fake, "Keep each tensor's dtype, holding fake-quantized values");
  cmd->add_option("--to", a->to,
                  "Output kind when OUT's extension does not say: safetensors, gguf, onnx");
  cmd->add_option("--layout", a->layout,
                  "safetensors convention: lowp (lowp's packed tensors, read back by lowp); "
                  "gpt-oss (OpenAI gpt-oss MXFP4: <name>_blocks/<name>_scales, -f mxfp4; OUT is "
                  "a model directory: model.safetensors, config.json with quantization_config, "
                  "the input directory's tokenizer files); modelopt (NVIDIA ModelOpt NVFP4: <name> "
                  "U8, <name>_scale F8_E4M3, <name>_scale_2 F32, -f nvfp4; OUT is a model "
                  "directory with hf_quant_config.json; or -f fp8_e4m3:tensor, FP8); "
                  "compressed-tensors (llm-compressor: float-quantized FP8, -f fp8_e4m3:tensor or "
                  "fp8_e4m3:channel; nvfp4-pack-quantized, -f nvfp4: <name>_packed U8, "
                  "<name>_scale F8_E4M3, <name>_global_scale F32 = 1 / lowp's tensor scale; "
                  "pack-quantized, -f intN:channel, intN:group<K> or intN:group<K>:asym with N = "
                  "2, 4, 8: <name>_packed I32, <name>_scale, <name>_shape[, <name>_zero_point]; "
                  "OUT is a model directory); onnx-qdq (ONNX input and "
                  "output: each weight as DequantizeLinear of INT8/INT4/UINT4/FLOAT8/FLOAT4E2M1 "
                  "codes and FP32 scales, e.g. -f int4:group32, int4:group32:asym, "
                  "fp8_e4m3:channel, int8:channel, mxfp4, nvfp4; the opset is raised as needed)")
      ->default_str("lowp");
  cmd->add_flag("--chunk-stats{64}", a->chunk_stats,
                "safetensors output: per-chunk statistics (min, max, amax, non-finite count of "
                "each run of ROWS rows of every float tensor, at most 1024 chunks a tensor) in "
                "the header's __metadata__ (lowp_chunk_stats), shown by lowp inspect; "
                "--chunk-stats=ROWS, default 64");
  cmd->add_option("--report", a->report_path, "Also write the per-tensor report as JSON");
  cmd->add_option("--threads", a->threads, "Threads (0: one per core)")->default_str("0");
  cmd->add_flag("-q,--quiet", a->quiet, "Print nothing on success");
  cmd->callback([a] { run_quantize(*a); });
}

}  // namespace lowp::cli
