// quantize_model's safetensors output: scalar float formats in safetensors'
// own dtypes (F32, BF16, F16, F8_E4M3, F8_E5M2), block formats and scaled
// matrix formats (int4:group32, int8:channel, ...) in lowp's packed forms
// (codes + scales + metadata naming the format), everything else copied as it
// is.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "lowp/block/tensor.h"
#include "lowp/block_kernels.h"
#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "lowp/io/gguf.h"
#include "lowp/io/layouts.h"
#include "lowp/io/safetensors.h"
#include "lowp/quant/metrics.h"
#include "lowp/storage/packed_matrix.h"
#include "lowp/thread_pool.h"
#include "model_quantize_internal.h"

namespace lowp::detail {
namespace {

// safetensors' dtype that stores weights quantized to a scalar format, or ""
// if it has none. (E8M0, which has a dtype, holds scales: it has no zero and
// no sign, so weights are not stored in it.)
std::string stored_dtype(const Format& f) {
  if (f.specials == Specials::kE8m0) return "";
  return std::string(io::safetensors_dtype_for(f));
}

// safetensors' name for a tensor copied from `in` (plain little-endian values).
std::string safetensors_copy_dtype(const io::ModelReader& in, const io::TensorInfo& t) {
  return in.kind() == "safetensors" ? t.dtype : plain_dtype(t);
}

// The largest finite magnitude of `values`, as NVFP4's tensor scale takes it
// (nvfp4_tensor_scale_of: subnormals skipped under flush_subnormals).
float finite_amax_of(std::span<const float> values, const BlockOptions& opt) {
  float amax = 0.0f;
  for (const float v : values) {
    if (opt.flush_subnormals && std::fpclassify(v) == FP_SUBNORMAL) continue;
    if (std::isfinite(v)) amax = std::max(amax, std::fabs(v));
  }
  return amax;
}

// A block-format tensor streamed in pieces of whole rows through one pass
// (read, quantize, dequantize, error sums) per piece, the pieces spread over
// the threads: what is read stays in cache, and the only large buffers are the
// packed output's. Rows per piece: a multiple of 8, so that every piece's
// element bits start on a byte (for 4- and 6-bit elements too), and about
// 2^16 values, ErrorStats' own piece length, so the statistics come out as a
// whole-tensor add() gives them where a row's length divides 2^16.
class StreamedBlocks {
 public:
  StreamedBlocks(const io::ModelReader& in, const io::TensorInfo& t, const BlockFormat& f,
                 std::span<const std::int64_t> view, const BlockOptions& opt)
      : in_(in), t_(t), f_(f) {
    length_ = view.empty() ? 1 : static_cast<std::size_t>(view.back());
    const std::size_t n = static_cast<std::size_t>(t.element_count());
    rows_ = length_ == 0 ? 0 : n / length_;
    const std::size_t want =
        std::max<std::size_t>(1, kStatsPiece / std::max<std::size_t>(1, length_));
    piece_rows_ = (want + 7) / 8 * 8;
    pieces_ = (rows_ + piece_rows_ - 1) / piece_rows_;
    threads_ = opt.threads != 0 ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
    one_thread_ = opt;
    one_thread_.threads = 1;
  }

  // Whether the reader can read this tensor in pieces and the kernels take
  // rows alone (blocks along the last axis; stochastic rounding numbers its
  // stream from the tensor's start, so it stays on the whole-tensor path).
  static bool applies(const io::ModelReader& in, const io::TensorInfo& t, int axis,
                      std::span<const std::int64_t> view, const BlockOptions& opt) {
    if (opt.rounding == Rounding::kStochastic || view.empty() ||
        normalize_axis(axis, view.size()) != static_cast<int>(view.size()) - 1 ||
        t.element_count() == 0) {
      return false;
    }
    float probe = 0.0f;
    return in.read_f32_range(t, 0, std::span<float>(&probe, 1));
  }

  // NVFP4's tensor scale, from the tensor's largest finite magnitude. The
  // scale grows with the magnitude, so the pieces' largest scale is the
  // tensor's.
  float tensor_scale() const { return max_over_pieces(&nvfp4_tensor_scale_of); }

  // compressed-tensors' NVFP4 global scale (io::compressed_nvfp4_global_scale)
  // of the tensor's largest finite magnitude: the pieces' largest.
  float global_scale() const {
    return io::compressed_nvfp4_global_scale(max_over_pieces(&finite_amax_of));
  }

  // Quantizes into elements (packed_bytes of the tensor) and scales (rows x
  // blocks per row); returns the error statistics against the decoded values.
  ErrorStats run(float tensor_scale, std::span<std::uint8_t> elements,
                 std::span<std::uint8_t> scales) const {
    const auto k = static_cast<std::size_t>(f_.block_size);
    const std::size_t blocks_per_row = (length_ + k - 1) / k;
    std::vector<ErrorStats> stats(pieces_);
    parallel_for(pieces_, threads_, [&](std::size_t p0, std::size_t p1) {
      std::vector<float> values, decoded;
      for (std::size_t p = p0; p < p1; ++p) {
        const std::size_t row = p * piece_rows_, n = read_piece(p, values);
        const std::size_t first = row * length_;
        const std::size_t byte = first * static_cast<std::size_t>(f_.element.bits) / 8;
        const std::size_t bytes = packed_bytes(f_.element.bits, n);
        std::uint8_t* e = elements.data() + byte;
        std::uint8_t* s = scales.data() + row * blocks_per_row;
        std::fill(e, e + bytes, std::uint8_t{0});  // quantize_blocked ORs codes in
        quantize_blocked(f_, values, length_, tensor_scale, one_thread_, e, s);
        decoded.resize(n);
        dequantize_blocked(f_, e, s, tensor_scale, length_, decoded, 1);
        // In ErrorStats' own pieces, one add() each, so that add() never
        // starts threads of its own inside this one.
        for (std::size_t i = 0; i < n; i += kStatsPiece) {
          const std::size_t m = std::min(kStatsPiece, n - i);
          stats[p].add(std::span(values).subspan(i, m), std::span(decoded).subspan(i, m));
        }
      }
    });
    ErrorStats total;
    for (const ErrorStats& s : stats) total.merge(s);
    return total;
  }

 private:
  // The largest `measure` of the pieces' values, the pieces read in parallel.
  float max_over_pieces(float (*measure)(std::span<const float>, const BlockOptions&)) const {
    std::vector<float> most(pieces_, 0.0f);
    parallel_for(pieces_, threads_, [&](std::size_t p0, std::size_t p1) {
      std::vector<float> values;
      for (std::size_t p = p0; p < p1; ++p) {
        read_piece(p, values);
        most[p] = measure(values, one_thread_);
      }
    });
    return *std::max_element(most.begin(), most.end());
  }

  static constexpr std::size_t kStatsPiece = std::size_t{1} << 16;

  std::size_t read_piece(std::size_t p, std::vector<float>& values) const {
    const std::size_t row = p * piece_rows_;
    const std::size_t n = (std::min(rows_, row + piece_rows_) - row) * length_;
    values.resize(n);
    if (!in_.read_f32_range(t_, row * length_, values)) {
      throw Error("tensor " + quoted(t_.name) + " can no longer be read in pieces");
    }
    return n;
  }

  const io::ModelReader& in_;
  const io::TensorInfo& t_;
  const BlockFormat& f_;
  BlockOptions one_thread_;  // the caller's options on one thread
  std::size_t length_ = 1, rows_ = 0, piece_rows_ = 8, pieces_ = 0;
  unsigned threads_ = 1;
};

}  // namespace

void write_safetensors_output(const io::ModelReader& in, const std::filesystem::path& out,
                              const ResolvedFormat& f, const QuantizeRequest& req,
                              ModelReport& report) {
  reject_onnx_input(in, "safetensors");
  const bool packed_matrix = f.matrix && !req.fake;
  const std::string scalar_dtype = f.is_block || f.matrix ? "" : stored_dtype(f.scalar);
  if (!req.fake && !f.is_block && !f.matrix && scalar_dtype.empty()) {
    if (is_posit(f.scalar)) throw Error("safetensors has no dtype for " + f.name + "; add --fake");
    throw Error("safetensors has no dtype for " + f.name +
                "; use a block format (e.g. mx:" + f.name + ":32) or add --fake");
  }
  // Step 1: plan every output tensor (the header comes first). A packed
  // tensor's sizes follow from its shape, so a PackedTensor without data
  // stands in for it until the tensor is quantized.
  struct Plan {
    const io::TensorInfo* in;
    bool quantize;
    std::size_t first_output;  // index into outputs
    std::size_t parts;         // outputs it owns (2 for packed: elements, scales)
    // An engine layout whose format the input already holds along its last
    // dimension: the stored codes and scales are copied, not requantized.
    bool copy_packed = false;
    // NVFP4 of an engine layout (a matrix, blocks along its rows) under the
    // tensor scale planned for it (planned_scale), not its own.
    bool planned_tensor_scale = false;
  };
  const bool gpt_oss = req.layout == io::Layout::kGptOss;
  const bool modelopt = req.layout == io::Layout::kModelopt;
  const bool compressed = req.layout == io::Layout::kCompressedTensors;
  std::vector<Plan> plans;
  std::vector<float> planned_scale;   // NVFP4 tensor scales written into the header
  std::vector<float> planned_global;  // compressed-tensors NVFP4 global scales
  std::vector<io::OutputTensor> outputs;
  io::Metadata metadata = in.kind() == "safetensors" ? in.metadata() : io::Metadata{};
  // lowp's own keys describe the input's packing, not the output's; the
  // model architecture ("lowp.arch") stays, so the runtime can load the output.
  std::erase_if(metadata, [](const auto& kv) {
    return kv.first != "lowp.arch" &&
           (kv.first.rfind("lowp.", 0) == 0 || kv.first.rfind("lowp_", 0) == 0);
  });
  if (!gpt_oss && !modelopt && !compressed)
    metadata.emplace_back("lowp_quantized_format", f.name + (req.fake ? " (fake)" : ""));
  // One buffer for the values of every tensor in turn, one for their
  // quantized values: tensor after tensor reuses the same memory.
  std::vector<float> values_buffer, quantized_buffer;
  // A GGUF input's NVFP4 scale tensors are in their tensors' values already.
  const std::map<std::string, std::string> folded_scales = io::gguf_nvfp4_scales(in);
  // NVFP4 in an engine's layout: the layers an engine fuses (q/k/v, gate/up,
  // an expert's w1/w3) share one global scale, vLLM loading one per fused
  // layer. ModelOpt's export gives them the largest tensor scale of the group,
  // llm-compressor the smallest global scale (the largest amax). fused_max:
  // tensor name -> the largest `measure` of its group's tensors, one extra
  // read of each (with `skip_copied`, inputs copied with their own scale left
  // out).
  const bool modelopt_nvfp4 = modelopt && f.is_block && !req.fake;
  const auto engine_quantizes = [&](const io::TensorInfo& t) {
    return is_selected(t, req) && t.shape.size() == 2 && t.shape[1] % 16 == 0;
  };
  const auto fused_max = [&](float (*measure)(std::span<const float>, const BlockOptions&),
                             bool skip_copied) {
    std::map<std::string, std::string> group_of;
    std::map<std::string, float> group_max;
    for (const io::TensorInfo& t : in.tensors()) {
      const std::string group = io::modelopt_fused_group(t.name);
      if (group.empty() || !engine_quantizes(t)) continue;
      if (skip_copied) {
        if (const std::optional<PackedTensor> stored = in.packed(t);
            stored && stored->format == f.block && stored->axis == 1)
          continue;
      }
      in.read_f32_into(t, values_buffer);
      in.release(t);
      group_of.emplace(t.name, group);
      float& m = group_max.try_emplace(group, 0.0f).first->second;
      m = std::max(m, measure(values_buffer, req.block));
    }
    std::map<std::string, float> by_tensor;
    for (const auto& [name, group] : group_of) by_tensor.emplace(name, group_max[group]);
    return by_tensor;
  };
  const std::map<std::string, float> shared_scale =
      modelopt_nvfp4 ? fused_max(&nvfp4_tensor_scale_of, false) : std::map<std::string, float>{};
  const std::map<std::string, float> shared_amax = compressed && f.is_block && !req.fake
                                                       ? fused_max(&finite_amax_of, true)
                                                       : std::map<std::string, float>{};
  for (const io::TensorInfo& t : in.tensors()) {
    if (folded_scales.count(t.name) != 0) continue;
    Plan p{&t, is_selected(t, req), outputs.size(), 1};
    float tensor_scale = 1.0f;
    float global_scale = 1.0f;  // compressed-tensors NVFP4
    // gpt-oss blocks run along the last dimension: a tensor whose last
    // dimension is not a multiple of 32 is kept as it is.
    if (gpt_oss && p.quantize && t.shape.back() % 32 != 0) p.quantize = false;
    // ModelOpt quantizes matrices [rows, cols] with cols in blocks of 16.
    if (modelopt && p.quantize && (t.shape.size() != 2 || (f.is_block && t.shape[1] % 16 != 0)))
      p.quantize = false;
    // compressed-tensors quantizes matrices; NVFP4 ones in blocks of 16 along the rows.
    if (compressed && p.quantize && t.shape.size() != 2) p.quantize = false;
    if (compressed && p.quantize && f.is_block && t.shape[1] % 16 != 0) p.quantize = false;
    // Integer groups must divide the row: a reader finds the group size as
    // cols / groups (and vLLM requires it too).
    if (compressed && p.quantize && f.matrix && f.matrix->scheme == MatrixScheme::kGroup &&
        t.shape[1] % f.matrix->group != 0)
      p.quantize = false;
    if (p.quantize && compressed) {
      std::vector<io::OutputTensor> parts;
      if (f.is_block) {  // nvfp4-pack-quantized
        if (const std::optional<PackedTensor> stored = in.packed(t)) {
          p.copy_packed = stored->format == f.block && stored->axis == 1;
          if (p.copy_packed) {
            tensor_scale = stored->tensor_scale;
            global_scale = io::compressed_global_scale(tensor_scale);
          }
        }
        if (!p.copy_packed) {
          // compressed-tensors' global scale from the tensor's largest
          // finite magnitude (the one lowp's own tensor scale is taken from),
          // and lowp's tensor scale its exact reciprocal.
          const std::vector<std::int64_t> view = block_view(t.shape);
          if (const auto shared = shared_amax.find(t.name); shared != shared_amax.end()) {
            global_scale = io::compressed_nvfp4_global_scale(shared->second);
          } else if (StreamedBlocks::applies(in, t, req.axis, view, req.block)) {
            global_scale = StreamedBlocks(in, t, f.block, view, req.block).global_scale();
          } else {
            in.read_f32_into(t, values_buffer);
            global_scale =
                io::compressed_nvfp4_global_scale(finite_amax_of(values_buffer, req.block));
          }
          in.release(t);
          tensor_scale = io::compressed_nvfp4_tensor_scale(global_scale);
          p.planned_tensor_scale = true;
        }
        parts = io::compressed_nvfp4_outputs(t.name, t.shape);
      } else if (io::compressed_pack_supports(*f.matrix)) {  // pack-quantized
        parts = io::compressed_pack_outputs(t.name, *f.matrix, t.shape);
      } else {  // float-quantized
        parts =
            io::compressed_fp8_outputs(t.name, t.shape, f.matrix->scheme == MatrixScheme::kChannel);
      }
      p.parts = parts.size();
      for (io::OutputTensor& o : parts) outputs.push_back(std::move(o));
    } else if (p.quantize && (gpt_oss || modelopt)) {
      if (const std::optional<PackedTensor> stored = in.packed(t)) {
        p.copy_packed = f.is_block && stored->format == f.block &&
                        stored->axis == static_cast<int>(t.shape.size()) - 1;
      }
      std::vector<io::OutputTensor> parts = gpt_oss ? io::gpt_oss_outputs(t.name, t.shape)
                                            : f.matrix
                                                ? io::modelopt_fp8_outputs(t.name, t.shape)
                                                : io::modelopt_nvfp4_outputs(t.name, t.shape);
      // vLLM's NVFP4 path reads each module's input_scale (the activations'
      // global scale); without activation statistics lowp writes 1 unless the
      // input has one (then copied as it is).
      if (const auto shared = shared_scale.find(t.name);
          shared != shared_scale.end() && !p.copy_packed) {
        tensor_scale = shared->second;
        p.planned_tensor_scale = true;
      }
      const std::string input_scale = io::modelopt_input_scale_name(t.name);
      if (modelopt_nvfp4 && !input_scale.empty() && in.find(input_scale) == nullptr) {
        parts.push_back(io::OutputTensor{input_scale, "F32", {}, 4});
      }
      p.parts = parts.size();
      for (io::OutputTensor& o : parts) outputs.push_back(std::move(o));
    } else if (p.quantize && f.is_block && !req.fake) {
      PackedTensor shape_only;
      shape_only.format = f.block;
      shape_only.shape = block_view(t.shape);
      shape_only.axis = normalize_axis(req.axis, shape_only.shape.size());
      shape_only.elements.resize(packed_bytes(f.block.element.bits, shape_only.element_count()));
      shape_only.scales.resize(shape_only.rows() * shape_only.blocks_per_row());
      // An input already in this format along the same axis (another
      // layout's, GGUF's) keeps its codes and scales.
      if (const std::optional<PackedTensor> stored =
              stored_in_format(in, t, f.block, f.name, shape_only.shape, shape_only.axis)) {
        p.copy_packed = true;
        tensor_scale = stored->tensor_scale;
      }
      // NVFP4's FP32 tensor scale goes into the header, before the data: one
      // extra read of the tensor finds it.
      if (p.copy_packed) {
        // (its own)
      } else if (has_tensor_scale(f.block)) {
        if (StreamedBlocks::applies(in, t, req.axis, shape_only.shape, req.block)) {
          tensor_scale = StreamedBlocks(in, t, f.block, shape_only.shape, req.block).tensor_scale();
        } else {
          in.read_f32_into(t, values_buffer);
          tensor_scale = nvfp4_tensor_scale_of(values_buffer, req.block);
        }
        in.release(t);
      }
      shape_only.tensor_scale = tensor_scale;
      std::vector<io::OutputTensor> parts =
          io::packed_tensor_outputs(t.name, shape_only, req.block.scale_rule, metadata);
      if (shape_only.shape != t.shape) {
        // Stored in its 2-D block view; keep the original shape on record.
        std::string text = "[";
        for (std::size_t i = 0; i < t.shape.size(); ++i)
          text += (i ? ", " : "") + std::to_string(t.shape[i]);
        metadata.emplace_back("lowp_original_shape." + t.name, text + "]");
      }
      p.parts = parts.size();
      for (io::OutputTensor& o : parts) outputs.push_back(std::move(o));
    } else if (p.quantize && packed_matrix) {
      std::vector<io::OutputTensor> parts =
          io::packed_matrix_outputs(t.name, *f.matrix, t.shape, metadata);
      p.parts = parts.size();
      for (io::OutputTensor& o : parts) outputs.push_back(std::move(o));
    } else {
      io::OutputTensor o{t.name, "", t.shape, 0};
      if (p.quantize) {
        o.dtype =
            req.fake ? (t.dtype == "BF16" || t.dtype == "F16" ? t.dtype : "F32") : scalar_dtype;
      } else {
        o.dtype = safetensors_copy_dtype(in, t);
        if (o.dtype.empty()) {
          throw Error("tensor " + quoted(t.name) + " of type " + t.dtype +
                      " cannot be copied into safetensors");
        }
      }
      o.nbytes = t.element_count() * io::safetensors_dtype_size(o.dtype);
      outputs.push_back(std::move(o));
    }
    plans.push_back(p);
    planned_scale.push_back(tensor_scale);
    planned_global.push_back(global_scale);
  }
  std::vector<std::size_t> owner(outputs.size());
  for (std::size_t i = 0; i < plans.size(); ++i) {
    for (std::size_t k = 0; k < plans[i].parts; ++k) owner[plans[i].first_output + k] = i;
  }

  // Step 2: stream. A packed tensor is quantized when its first part is
  // asked for; its scales (the next part) are kept until then.
  std::optional<PackedTensor> pending;
  std::optional<PackedMatrix> pending_matrix;
  // A streamed block tensor's packed bytes, reused tensor after tensor.
  std::vector<std::uint8_t> streamed_elements, streamed_scales;
  bool streamed = false;
  std::vector<std::byte> kept;  // the bytes of the other paths, alive while written
  const auto keep = [&](std::vector<std::byte> bytes) {
    kept = std::move(bytes);
    return std::span<const std::byte>(kept);
  };
  const io::SafetensorsWriteOptions write_options{req.chunk_stats_rows};
  const auto produce = [&](std::size_t index) -> std::span<const std::byte> {
    const Plan& p = plans[owner[index]];
    const io::TensorInfo& t = *p.in;
    const io::OutputTensor& o = outputs[index];
    const std::size_t part = index - p.first_output;
    if (part > 0) {
      if (compressed && f.is_block && part == 2)  // the F32 global scale, as planned
        return keep(io::f32_bytes(std::span(&planned_global[owner[index]], 1)));
      if (streamed) return std::as_bytes(std::span(streamed_scales));
      if (modelopt && !packed_matrix && part == 3) {
        const float unit = 1.0f;
        std::vector<std::byte> bytes(4);
        std::memcpy(bytes.data(), &unit, 4);
        return keep(std::move(bytes));
      }
      if (compressed && packed_matrix && io::compressed_pack_supports(*f.matrix))
        return keep(io::compressed_pack_part_bytes(*pending_matrix, part));
      if (modelopt && !packed_matrix) return keep(io::modelopt_part_bytes(*pending, part));
      return keep(packed_matrix ? io::packed_matrix_bytes(*pending_matrix, part)
                                : io::packed_tensor_bytes(*pending, part));
    }
    streamed = false;
    if (req.on_tensor) req.on_tensor(owner[index], plans.size(), t);
    TensorReport r = base_report(t);
    r.stored_as = o.dtype;
    r.bytes_out = 0;
    for (std::size_t k = 0; k < p.parts; ++k) r.bytes_out += outputs[p.first_output + k].nbytes;
    if (!p.quantize) {
      report.tensors.push_back(std::move(r));
      return in.raw(t);
    }
    const std::vector<std::int64_t> view = block_view(t.shape);
    // Streamed: lowp's packing and gpt-oss's (the same bytes under other
    // names), not ModelOpt's scale parts nor a copy of the input's codes.
    if (f.is_block && !req.fake && !modelopt && !p.copy_packed &&
        StreamedBlocks::applies(in, t, req.axis, view, req.block)) {
      // Sizes as planned: outputs[index] (elements) and the next (scales).
      streamed_elements.resize(o.nbytes);
      streamed_scales.resize(outputs[index + 1].nbytes);
      r.stats = StreamedBlocks(in, t, f.block, view, req.block)
                    .run(planned_scale[owner[index]], streamed_elements, streamed_scales);
      in.release(t);
      r.quantized = true;
      r.stored_as = f.name;
      report.tensors.push_back(std::move(r));
      streamed = true;
      return std::as_bytes(std::span(streamed_elements));
    }
    in.read_f32_into(t, values_buffer);
    const std::vector<float>& values = values_buffer;
    std::vector<float>& q = quantized_buffer;
    std::vector<std::byte> bytes;
    if (packed_matrix) {
      const std::size_t rows = view.size() < 2 ? 1 : static_cast<std::size_t>(view[0]);
      // A compressed-tensors matrix already in the format asked for (into or
      // out of that layout) is copied: its codes and scales unchanged.
      std::optional<PackedMatrix> stored;
      if (compressed || in.layout() == "compressed-tensors")
        stored = io::safetensors_packed_matrix(in, t);
      if (stored && stored->format().name == f.matrix->name && stored->rows() == rows) {
        pending_matrix = std::move(stored);
      } else {
        pending_matrix = quantize_matrix_by(*f.matrix, values, rows, req);
      }
      q.resize(values.size());
      pending_matrix->dequantize(q);
      bytes = compressed && io::compressed_pack_supports(*f.matrix)
                  ? io::compressed_pack_part_bytes(*pending_matrix, 0)
                  : io::packed_matrix_bytes(*pending_matrix, 0);
      r.stored_as = f.name;
    } else if (p.copy_packed) {
      // The input's own codes and scales: decoded values and bytes unchanged.
      pending = in.packed(t);
      q.resize(values.size());
      dequantize(*pending, q);
      bytes = io::packed_tensor_bytes(*pending, 0);
      r.stored_as = f.name;
    } else if (p.planned_tensor_scale) {
      // A matrix [rows, cols] in blocks along its rows, under the planned
      // tensor scale (ModelOpt: its fused group's; compressed-tensors: the
      // global scale's exact reciprocal).
      const auto rows = static_cast<std::size_t>(t.shape[0]);
      PackedTensor packed;
      packed.format = f.block;
      packed.shape = t.shape;
      packed.axis = 1;
      packed.tensor_scale = planned_scale[owner[index]];
      packed.elements.assign(packed_bytes(f.block.element.bits, values.size()), 0);
      packed.scales.assign(rows * packed.blocks_per_row(), 0);
      if (rows != 0) {
        quantize_blocked(f.block, values, static_cast<std::size_t>(t.shape[1]), packed.tensor_scale,
                         req.block, packed.elements.data(), packed.scales.data());
      }
      pending = std::move(packed);
      q.resize(values.size());
      dequantize(*pending, q);
      bytes = io::packed_tensor_bytes(*pending, 0);
      r.stored_as = f.name;
    } else if (f.is_block && !req.fake) {
      pending = quantize(f.block, values, block_view(t.shape), req.axis, req.block);
      // (modelopt stores the tensor scale as data, after the codes.)
      if (!modelopt && pending->tensor_scale != planned_scale[owner[index]]) {
        throw Error("tensor " + quoted(t.name) + " changed while it was being quantized");
      }
      q.resize(values.size());
      dequantize(*pending, q);
      bytes = io::packed_tensor_bytes(*pending, 0);
      r.stored_as = f.name;
    } else if (req.fake) {
      std::string used;
      q = fake_values(f, t, values, req, used);
      // The container's own rounding (nearest-even), not the request's.
      bytes = encode_codes(*io::safetensors_dtype_format(o.dtype), q, {});
      r.stored_as = o.dtype + " (fake " + used + ")";
    } else {
      bytes = encode_codes(f.scalar, values, req);
      q = decode_codes(f.scalar, bytes);
    }
    r.quantized = true;
    r.stats.add(values, q);
    report.tensors.push_back(std::move(r));
    in.release(t);
    return keep(std::move(bytes));
  };
  io::write_safetensors_views(out, outputs, metadata, produce, write_options);
}

}  // namespace lowp::detail
