// `lowp encode` (real numbers -> codes) and `lowp decode` (codes -> real
// numbers) over .npy arrays of any shape: fp32 / bf16 / fp16 input through the
// bulk kernels, fp64 input and decoding through the scalar reference.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "arrays.h"
#include "commands.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/format/registry.h"
#include "lowp/io/npy.h"
#include "lowp/kernels.h"

namespace lowp::cli {
namespace {

using io::DType;

// Every element of an integer array as a code of `f`, checked to fit its bits.
std::vector<std::uint32_t> code_values(const io::NpyArray& a, const Format& f,
                                       const std::string& format_text, const std::string& path) {
  const std::size_t n = a.element_count();
  const std::byte* p = a.data.data();
  std::vector<std::uint32_t> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t v = 0;
    switch (a.dtype) {
      case DType::kU8:
        v = load<std::uint8_t>(p + i);
        break;
      case DType::kI8:
        v = load<std::int8_t>(p + i);
        break;
      case DType::kU16:
        v = load<std::uint16_t>(p + 2 * i);
        break;
      case DType::kI16:
        v = load<std::int16_t>(p + 2 * i);
        break;
      case DType::kU32:
        v = load<std::uint32_t>(p + 4 * i);
        break;
      case DType::kI32:
        v = load<std::int32_t>(p + 4 * i);
        break;
      case DType::kI64:
        v = load<std::int64_t>(p + 8 * i);
        break;
      case DType::kU64: {
        const auto u = load<std::uint64_t>(p + 8 * i);
        v = u > 0xFFFFFFFFu ? -1 : static_cast<std::int64_t>(u);
        break;
      }
      default:
        throw Error(
            fmt::format("{}: dtype {} does not hold codes; expected an unsigned integer "
                        "array (uint8 for formats of up to 8 bits)",
                        path, io::dtype_name(a.dtype)));
    }
    if (v < 0 || static_cast<std::uint64_t>(v) > code_mask(f)) {
      throw Error(fmt::format("{}: element {} holds {}, which is not a code of {} ({} bits)", path,
                              i, v, format_text, f.bits));
    }
    out[i] = static_cast<std::uint32_t>(v);
  }
  return out;
}

struct EncodeArgs {
  std::string format, round = "rne", in, out;
  std::uint64_t seed = 0;
  bool saturate = false;
};

// Copies an array's elements out of the file's bytes (host order, see npy.h).
template <typename T>
std::vector<T> elements_of(const io::NpyArray& a) {
  std::vector<T> out(a.element_count());
  if (!out.empty()) std::memcpy(out.data(), a.data.data(), out.size() * sizeof(T));
  return out;
}

void run_encode(const EncodeArgs& args) {
  const Format f = parse_format(args.format);
  EncodeOptions opt;
  opt.rounding = parse_rounding(args.round);
  opt.saturate = args.saturate;
  const io::NpyArray in = io::read_npy(args.in);
  const std::size_t n = in.element_count();
  const auto width = static_cast<std::size_t>(code_bytes(f));
  std::vector<std::byte> bytes(n * width);
  // fp32, bf16 and fp16 go through the bulk kernels (lowp/kernels.h), which
  // give the scalar reference's codes bit for bit with the same stochastic
  // indices; fp64 (and the error for other dtypes) through the reference.
  switch (in.dtype) {
    case DType::kF32:
      encode_f32(f, elements_of<float>(in), bytes.data(), opt, args.seed);
      break;
    case DType::kBF16:
      encode_bf16(f, elements_of<std::uint16_t>(in), bytes.data(), opt, args.seed);
      break;
    case DType::kF16:
      encode_f16(f, elements_of<std::uint16_t>(in), bytes.data(), opt, args.seed);
      break;
    default:
      encode_f64(f, real_values(in, args.in), bytes.data(), opt, args.seed);
  }
  const DType out_type = width == 1 ? DType::kU8 : width == 2 ? DType::kU16 : DType::kU32;
  io::write_npy(args.out, out_type, in.shape, bytes);
}

struct DecodeArgs {
  std::string format, dtype = "float32", in, out;
};

void run_decode(const DecodeArgs& args) {
  const Format f = parse_format(args.format);
  if (args.dtype != "float32" && args.dtype != "float64") {
    throw Error("unknown output dtype " + quoted(args.dtype) + " (expected float32 or float64)");
  }
  const io::NpyArray in = io::read_npy(args.in);
  const std::vector<std::uint32_t> codes = code_values(in, f, args.format, args.in);
  std::vector<std::byte> bytes;
  if (args.dtype == "float32") {
    std::vector<float> v(codes.size());
    for (std::size_t i = 0; i < codes.size(); ++i) v[i] = decode_f32(f, codes[i]);
    bytes = bytes_of(v);
    io::write_npy(args.out, DType::kF32, in.shape, bytes);
  } else {
    std::vector<double> v(codes.size());
    for (std::size_t i = 0; i < codes.size(); ++i) v[i] = decode(f, codes[i]);
    bytes = bytes_of(v);
    io::write_npy(args.out, DType::kF64, in.shape, bytes);
  }
}

}  // namespace

void add_encode_command(CLI::App& app) {
  auto args = std::make_shared<EncodeArgs>();
  auto* cmd = app.add_subcommand(
      "encode",
      "Encode a float array (.npy: float32, float64, float16 or bfloat16, any shape) into codes "
      "of a format: uint8 for formats of up to 8 bits (code in the low bits), uint16 up to 16, "
      "else uint32");
  cmd->add_option("--format,-f", args->format, "Target format (see 'lowp formats', or eXmY...)")
      ->required();
  cmd->add_option("--round", args->round,
                  "Rounding: rne (nearest, ties to even), away (nearest, ties away from zero), "
                  "zero (toward zero), stochastic")
      ->default_str("rne");
  cmd->add_option("--seed", args->seed,
                  "Seed for stochastic rounding; the result depends only on the seed and each "
                  "element's index")
      ->default_str("0");
  cmd->add_flag("--saturate", args->saturate,
                "Clamp overflow (and ±Inf) to ±max finite instead of giving Inf/NaN");
  cmd->add_option("IN", args->in, "Input .npy file")->required();
  cmd->add_option("OUT", args->out, "Output .npy file (written atomically)")->required();
  cmd->callback([args] { run_encode(*args); });
}

void add_decode_command(CLI::App& app) {
  auto args = std::make_shared<DecodeArgs>();
  auto* cmd = app.add_subcommand(
      "decode", "Decode an integer array of codes (.npy, any shape) into exact real values");
  cmd->add_option("--format,-f", args->format, "Format of the codes")->required();
  cmd->add_option("--dtype", args->dtype, "Output dtype: float32 or float64")
      ->default_str("float32");
  cmd->add_option("IN", args->in, "Input .npy file of codes")->required();
  cmd->add_option("OUT", args->out, "Output .npy file (written atomically)")->required();
  cmd->callback([args] { run_decode(*args); });
}

}  // namespace lowp::cli
