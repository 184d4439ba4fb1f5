// `lowp bench storage [MODEL...] [-f mxfp4,nvfp4,...] [--reps N] [--json]`:
// what the lessons of columnar file formats (dictionary encoding, lightweight
// integer encodings, optional block compression, per-chunk statistics) would
// buy a quantized model file, measured on real weights.
//
// Every 2-D float tensor of each model is quantized to each format as the
// runtime stores it (PackedMatrix); its streams are gathered: the element
// codes, and the scales (E8M0 / E4M3 block scale bytes, FP16 group scales,
// FP32 row scales). For each stream the bench reports
//   * the order-0 entropy (bits per symbol: a byte, or a nibble for 4-bit
//     codes) and the distinct symbols, i.e. what dictionary encoding could
//     reach (ceil(log2 distinct) bits per symbol plus the dictionary);
//   * frame-of-reference bit packing of 1-byte scale streams (chunks of 128:
//     the chunk's minimum and each scale minus it in ceil(log2(range+1)) bits);
//   * the size after zstd (levels 1 and 19) and LZ4 (default and HC) and their
//     decompression rate, next to memcpy of the same bytes measured in the same
//     run (best of --reps), which is what reading the plain stream costs;
//   * the size of per-chunk statistics (min, max per 64 Ki values: 8 bytes).
#include <lz4.h>
#include <lz4hc.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "embedded.h"
#include "lowp/error.h"
#include "lowp/io/model.h"
#include "lowp/storage/packed_matrix.h"

namespace lowp::cli {
namespace {

using nlohmann::json;

struct StorageBenchOptions {
  std::vector<std::string> models;
  std::string formats = "mxfp4,nvfp4,mxfp8_e4m3,int4:group32,int8:channel";
  int reps = 5;
  bool json = false;
};

template <typename F>
double best_seconds(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// Order-0 entropy in bits per symbol and the number of distinct symbols, of
// the bytes (nibble = false) or of the 4-bit fields (nibble = true).
std::pair<double, std::size_t> entropy(const std::vector<std::uint8_t>& s, bool nibble) {
  std::array<std::uint64_t, 256> count{};
  std::uint64_t n = 0;
  for (const std::uint8_t b : s) {
    if (nibble) {
      ++count[b & 15];
      ++count[b >> 4];
      n += 2;
    } else {
      ++count[b];
      ++n;
    }
  }
  double h = 0;
  std::size_t distinct = 0;
  for (const std::uint64_t c : count) {
    if (c == 0) continue;
    ++distinct;
    const double p = static_cast<double>(c) / static_cast<double>(n);
    h -= p * std::log2(p);
  }
  return {h, distinct};
}

// Frame-of-reference bit packing of a byte stream in chunks of 128.
std::size_t for_bytes(const std::vector<std::uint8_t>& s) {
  std::size_t bits = 0;
  for (std::size_t i = 0; i < s.size(); i += 128) {
    const std::size_t end = std::min(s.size(), i + 128);
    const auto [lo, hi] = std::minmax_element(s.begin() + static_cast<std::ptrdiff_t>(i),
                                              s.begin() + static_cast<std::ptrdiff_t>(end));
    const unsigned range = static_cast<unsigned>(*hi - *lo);
    const unsigned width = range == 0 ? 0 : static_cast<unsigned>(std::bit_width(range));
    bits += 8 + 8 + width * (end - i);  // minimum, width, packed values
  }
  return (bits + 7) / 8;
}

struct Codec {
  const char* name;
  std::size_t size = 0;
  double decode_gbs = 0;
};

json measure_stream(const std::string& kind, const std::vector<std::uint8_t>& s, bool nibble,
                    int reps) {
  json out;
  out["stream"] = kind;
  out["bytes"] = s.size();
  if (s.empty()) return out;
  const auto [h, distinct] = entropy(s, nibble);
  out["symbol_bits"] = nibble ? 4 : 8;
  out["entropy_bits"] = h;
  out["distinct"] = distinct;
  out["dictionary_bits"] = distinct <= 1 ? 0 : std::bit_width(distinct - 1);
  if (!nibble && kind.find("scale") != std::string::npos) out["for_bytes"] = for_bytes(s);
  std::vector<std::uint8_t> back(s.size());
  const double copy_s = best_seconds(reps, [&] { std::memcpy(back.data(), s.data(), s.size()); });
  out["memcpy_gbs"] = static_cast<double>(s.size()) / copy_s * 1e-9;
  json codecs = json::array();
  for (const int level : {1, 19}) {
    std::vector<std::uint8_t> z(ZSTD_compressBound(s.size()));
    const std::size_t zn = ZSTD_compress(z.data(), z.size(), s.data(), s.size(), level);
    if (ZSTD_isError(zn)) throw Error(std::string("zstd: ") + ZSTD_getErrorName(zn));
    const double t = best_seconds(reps, [&] {
      if (ZSTD_decompress(back.data(), back.size(), z.data(), zn) != s.size()) {
        throw Error("zstd: the round trip lost bytes");
      }
    });
    if (back != s) throw Error("zstd: the round trip changed bytes");
    codecs.push_back({{"codec", "zstd-" + std::to_string(level)},
                      {"bytes", zn},
                      {"decode_gbs", static_cast<double>(s.size()) / t * 1e-9}});
  }
  for (const bool hc : {false, true}) {
    const int bound = LZ4_compressBound(static_cast<int>(s.size()));
    std::vector<char> z(static_cast<std::size_t>(bound));
    const int zn = hc ? LZ4_compress_HC(reinterpret_cast<const char*>(s.data()), z.data(),
                                        static_cast<int>(s.size()), bound, LZ4HC_CLEVEL_DEFAULT)
                      : LZ4_compress_default(reinterpret_cast<const char*>(s.data()), z.data(),
                                             static_cast<int>(s.size()), bound);
    if (zn <= 0) throw Error("lz4: compression failed");
    const double t = best_seconds(reps, [&] {
      if (LZ4_decompress_safe(z.data(), reinterpret_cast<char*>(back.data()), zn,
                              static_cast<int>(back.size())) != static_cast<int>(s.size())) {
        throw Error("lz4: the round trip lost bytes");
      }
    });
    if (back != s) throw Error("lz4: the round trip changed bytes");
    codecs.push_back({{"codec", hc ? "lz4-hc" : "lz4"},
                      {"bytes", zn},
                      {"decode_gbs", static_cast<double>(s.size()) / t * 1e-9}});
  }
  out["codecs"] = codecs;
  return out;
}

void append_bytes(std::vector<std::uint8_t>& out, const void* p, std::size_t n) {
  const auto* b = static_cast<const std::uint8_t*>(p);
  out.insert(out.end(), b, b + n);
}

void run_storage_bench(const StorageBenchOptions& o) {
  if (o.reps < 1) throw Error("bench storage: --reps must be >= 1");
  std::vector<std::string> format_names;
  {
    std::string f;
    for (const char c : o.formats + ",") {
      if (c != ',') {
        f += c;
      } else if (!f.empty()) {
        format_names.push_back(f);
        f.clear();
      }
    }
  }
  if (format_names.empty()) throw Error("bench storage: --formats is empty");
  std::vector<MatrixFormat> formats;
  for (const auto& f : format_names) formats.push_back(parse_matrix_format(f));
  const std::vector<std::string> models =
      o.models.empty() ? std::vector<std::string>{""} : o.models;
  json results = json::array();
  for (const auto& path : models) {
    const std::unique_ptr<io::ModelReader> reader =
        path.empty() ? io::parse_safetensors(embedded_model(), "the embedded model")
                     : io::open_model(path);
    const std::string model_name = path.empty() ? "embedded KJV GPT" : path;
    // The 2-D float tensors (matrices) with at least 4096 values.
    std::vector<const io::TensorInfo*> matrices;
    std::size_t values = 0;
    for (const io::TensorInfo& t : reader->tensors()) {
      if (t.is_float && t.shape.size() == 2 && t.element_count() >= 4096) {
        matrices.push_back(&t);
        values += t.element_count();
      }
    }
    if (matrices.empty()) throw Error("bench storage: " + model_name + " has no float matrices");
    for (std::size_t fi = 0; fi < formats.size(); ++fi) {
      std::vector<std::uint8_t> codes, block_scales, group_scales, row_scales;
      std::size_t stats_bytes = 0;
      for (const io::TensorInfo* t : matrices) {
        const std::vector<float> w = reader->read_f32(*t);
        const auto rows = static_cast<std::size_t>(t->shape[0]);
        const auto cols = static_cast<std::size_t>(t->shape[1]);
        const PackedMatrix m = PackedMatrix::quantize(formats[fi], w, rows, cols);
        append_bytes(codes, m.codes().data(), m.codes().size());
        const MatrixScales& s = m.scales();
        append_bytes(block_scales, s.block.data(), s.block.size());
        append_bytes(group_scales, s.group.data(), s.group.size() * 2);
        append_bytes(row_scales, s.row.data(), s.row.size() * 4);
        stats_bytes += 8 * ((w.size() + 65535) / 65536);
      }
      const Format& element = formats[fi].scheme == MatrixScheme::kBlock ? formats[fi].block.element
                                                                         : formats[fi].element;
      const bool nibble = element.bits == 4;
      json streams = json::array();
      streams.push_back(measure_stream("codes", codes, nibble, o.reps));
      if (!block_scales.empty()) {
        streams.push_back(measure_stream("block scales", block_scales, false, o.reps));
      }
      if (!group_scales.empty()) {
        streams.push_back(measure_stream("group scales (fp16)", group_scales, false, o.reps));
      }
      if (!row_scales.empty()) {
        streams.push_back(measure_stream("row scales (fp32)", row_scales, false, o.reps));
      }
      results.push_back({{"model", model_name},
                         {"matrices", matrices.size()},
                         {"values", values},
                         {"format", format_names[fi]},
                         {"stats_bytes", stats_bytes},
                         {"streams", streams}});
    }
  }
  if (o.json) {
    fmt::print("{}\n", results.dump(2));
    return;
  }
  fmt::print(
      "Sizes as % of the stream; decode rates as a ratio to memcpy of the same bytes (best of "
      "{})\n",
      o.reps);
  fmt::print("{:<18} {:<15} {:<16} {:>9} {:>7} {:>5} {:>6} {:>6} {:>12} {:>12} {:>12}\n", "model",
             "format", "stream", "MiB", "H0/sym", "dict", "FOR", "memGB/s", "zstd-1", "zstd-19",
             "lz4");
  for (const auto& r : results) {
    std::string model = r["model"].get<std::string>();
    if (model.size() > 18) model = "..." + model.substr(model.size() - 15);
    for (const auto& s : r["streams"]) {
      const auto bytes = s["bytes"].get<double>();
      const double mem = s["memcpy_gbs"].get<double>();
      const auto codec = [&](std::size_t i) {
        const auto& c = s["codecs"][i];
        return fmt::format("{:.0f}%/{:.2f}x", 100.0 * c["bytes"].get<double>() / bytes,
                           c["decode_gbs"].get<double>() / mem);
      };
      fmt::print(
          "{:<18} {:<15} {:<16} {:>9.3f} {:>7.2f} {:>5} {:>6} {:>6.1f} {:>12} {:>12} {:>12}\n",
          model, r["format"].get<std::string>(), s["stream"].get<std::string>(), bytes / 1048576.0,
          s["entropy_bits"].get<double>(), s["dictionary_bits"].get<int>(),
          s.contains("for_bytes")
              ? fmt::format("{:.0f}%", 100.0 * s["for_bytes"].get<double>() / bytes)
              : std::string("-"),
          mem, codec(0), codec(1), codec(2));
    }
  }
}

}  // namespace

void add_bench_storage_command(CLI::App& bench) {
  auto o = std::make_shared<StorageBenchOptions>();
  auto* cmd = bench.add_subcommand(
      "storage",
      "What dictionary encoding, frame-of-reference packing and zstd/LZ4 block compression "
      "would save on a quantized model's code and scale streams, and what they cost to decode");
  cmd->add_option("MODEL", o->models, "Model files (default: the embedded model)");
  cmd->add_option("-f,--formats", o->formats, "Matrix formats, comma-separated");
  cmd->add_option("--reps", o->reps, "Repetitions per timing (default 5)");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([o] { run_storage_bench(*o); });
}

}  // namespace lowp::cli
