// `lowp fake-quant`: quantize then dequantize a float array (fp32 out, same
// shape), for any scalar format (a plain cast) or block format (MX, NVFP4)
// along any axis.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "arrays.h"
#include "commands.h"
#include "lowp/block/tensor.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/format/registry.h"
#include "lowp/kernels.h"
#include "lowp/storage/packed_matrix.h"

namespace lowp::cli {
namespace {

struct FakeQuantArgs {
  std::string format, round = "rne", scale_rule = "floor", in, out;
  std::optional<int> block;
  int axis = -1;
  std::uint64_t seed = 0;
  bool saturate = false;
  bool flush_subnormals = false;
};

std::vector<float> fake_quant_scalar(const Format& f, const std::vector<double>& x,
                                     const FakeQuantArgs& args) {
  const EncodeOptions opt{parse_rounding(args.round), args.saturate};
  std::vector<std::byte> codes(x.size() * static_cast<std::size_t>(code_bytes(f)));
  encode_f64(f, x, codes.data(), opt, args.seed);
  std::vector<float> out(x.size());
  decode_to_f32(f, codes.data(), out);
  return out;
}

// A scaled matrix spelling (lowp/storage/matrix_format.h): the array seen as
// rows of its --axis (every other axis runs over rows), each row stored as a
// row of a PackedMatrix.
std::vector<float> fake_quant_matrix(const MatrixFormat& f, const std::vector<double>& x,
                                     std::span<const std::int64_t> shape, int axis,
                                     const FakeQuantArgs& args) {
  if (args.round != "rne" || args.saturate || args.block || args.scale_rule != "floor" ||
      args.flush_subnormals) {
    throw Error(quoted(args.format) +
                " is a scaled matrix format: it rounds to nearest even and saturates; "
                "--round, --saturate, --block, --scale-rule and --flush-subnormals do not apply");
  }
  const std::vector<float> xf(x.begin(), x.end());
  std::vector<float> rows(x.size());
  const std::size_t length = gather_rows_along(xf, shape, axis, rows);
  const PackedMatrix m =
      PackedMatrix::quantize(f, rows, length == 0 ? 0 : rows.size() / length, length);
  m.dequantize(rows);
  std::vector<float> out(x.size());
  scatter_rows_along(rows, shape, axis, out);
  return out;
}

void run_fake_quant(const FakeQuantArgs& args) {
  BlockFormat block_format;
  const bool is_block = parse_block_format(args.format, block_format);
  if (!is_block && args.format.find(':') != std::string::npos) {
    const MatrixFormat f = parse_matrix_format(args.format);
    const io::NpyArray in = io::read_npy(args.in);
    const std::vector<double> x = real_values(in, args.in);
    const int axis = normalize_axis(args.axis, in.shape.size());
    const std::vector<float> out = fake_quant_matrix(f, x, in.shape, axis, args);
    io::write_npy(args.out, io::DType::kF32, in.shape, bytes_of(out));
    return;
  }
  const Format scalar_format = is_block ? Format{} : parse_format(args.format);
  if (!is_block && args.block) {
    throw Error("--block applies to block formats; " + quoted(args.format) + " is a scalar format");
  }
  if (is_block && args.saturate) {
    throw Error(
        "--saturate applies to scalar formats; block formats always saturate their elements");
  }
  BlockOptions opt;
  opt.rounding = parse_rounding(args.round);
  opt.scale_rule = parse_scale_rule(args.scale_rule);
  opt.seed = args.seed;
  opt.flush_subnormals = args.flush_subnormals;

  const io::NpyArray in = io::read_npy(args.in);
  const std::vector<double> x = real_values(in, args.in);
  std::vector<float> out;
  if (!is_block) {
    out = fake_quant_scalar(scalar_format, x, args);
  } else {
    const int axis = normalize_axis(args.axis, in.shape.size());
    const std::int64_t length = in.shape.empty() ? 1 : in.shape[static_cast<std::size_t>(axis)];
    if (args.block) {
      if (*args.block < 1 || *args.block > length) {
        throw Error(fmt::format("--block {} must be between 1 and the length of axis {} ({})",
                                *args.block, axis, length));
      }
      block_format.block_size = *args.block;
    }
    // Block quantization reads fp32 values; fp64 inputs are rounded to fp32 first.
    const std::vector<float> xf(x.begin(), x.end());
    out = fake_quantize(block_format, xf, in.shape, axis, opt);
  }
  io::write_npy(args.out, io::DType::kF32, in.shape, bytes_of(out));
}

}  // namespace

void add_fake_quant_command(CLI::App& app) {
  auto args = std::make_shared<FakeQuantArgs>();
  auto* cmd = app.add_subcommand(
      "fake-quant",
      "Quantize then dequantize a float array (.npy: float32, float64, float16 or bfloat16): "
      "fp32 out, same shape. Scalar formats are a plain cast; block formats (mxfp8_e4m3, "
      "mxfp4, nvfp4, mx:<element>:<k>, ...) quantize blocks along --axis; scaled matrix "
      "formats (<F>:tensor, <F>:channel, <F>:group<K>, int<N>:group<K>:asym) scale along --axis "
      "as lowp's runtime stores a matrix row");
  cmd->add_option("--format,-f", args->format,
                  "Scalar, block or scaled matrix format (see 'lowp formats')")
      ->required();
  cmd->add_option("--block", args->block, "Block size k for block formats (default: the format's)");
  cmd->add_option("--axis", args->axis, "Axis the blocks run along (negative counts from the end)")
      ->default_str("-1");
  cmd->add_option("--scale-rule", args->scale_rule,
                  "MX shared-scale rule: floor (OCP), rceil (NVIDIA), ceil, even (torchao)")
      ->default_str("floor");
  cmd->add_option("--round", args->round, "Rounding: rne, away, zero or stochastic")
      ->default_str("rne");
  cmd->add_option("--seed", args->seed, "Seed for stochastic rounding")->default_str("0");
  cmd->add_flag("--saturate", args->saturate,
                "Scalar formats: clamp overflow to ±max finite instead of Inf/NaN");
  cmd->add_flag("--flush-subnormals", args->flush_subnormals,
                "Block formats: flush fp32 subnormal inputs to zero first");
  cmd->add_option("IN", args->in, "Input .npy file")->required();
  cmd->add_option("OUT", args->out, "Output .npy file, float32 (written atomically)")->required();
  cmd->callback([args] { run_fake_quant(*args); });
}

}  // namespace lowp::cli
