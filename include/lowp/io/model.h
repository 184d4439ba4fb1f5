// lowp/io/model.h — model files as lists of named tensors, read lazily from a
// memory-mapped file: safetensors, GGUF, ONNX, npy and npz behind one
// interface.
//
// A reader parses only the file's index (header, tensor infos) when it opens;
// tensor data is touched when asked for. Every offset, length and count in the
// index is checked against the file size (with overflow-safe arithmetic) when
// the file opens, so a reader that opened successfully never reads out of
// bounds. Errors are lowp::Error with one line naming the file (and the tensor
// or field at fault).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lowp/block/tensor.h"

namespace lowp::io {

// A read-only memory map of a whole file (empty files map to an empty span).
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);  // throws lowp::Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  // Drops the whole pages inside `range` (a part of bytes()) from the
  // process's memory (madvise MADV_DONTNEED: a read-only file mapping reads
  // them again from the file if touched). Ranges outside the map are ignored.
  void release(std::span<const std::byte> range) const;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

// One tensor of a model file.
struct TensorInfo {
  std::string name;
  // The stored element type, in the file format's own words where it has them
  // ("F32", "BF16", "F8_E4M3" for safetensors; "F32", "Q8_0", "MXFP4" for
  // GGUF; "FLOAT", "FLOAT16" for ONNX; "float32" for npy), or a lowp format
  // name for lowp's own packed tensors ("mxfp4", "nvfp4", ...).
  std::string dtype;
  std::vector<std::int64_t> shape;  // logical shape, outermost first
  std::uint64_t offset = 0;         // of the tensor's bytes within the file
  std::uint64_t nbytes = 0;         // stored bytes (packed size for block formats)
  bool is_float = true;             // can be read as real numbers (read_f32)

  std::uint64_t element_count() const;
};

class ModelReader {
 public:
  virtual ~ModelReader() = default;

  // "safetensors", "gguf", "onnx", "npy" or "npz".
  virtual std::string_view kind() const = 0;
  virtual const std::vector<TensorInfo>& tensors() const = 0;
  // The file's metadata, each value rendered as text (JSON-like for arrays).
  virtual std::vector<std::pair<std::string, std::string>> metadata() const = 0;
  // The tensor's values as fp32 in C order, decoded exactly as the file's
  // format defines them (ggml's dequantization for GGUF block types, lowp's for
  // lowp's packed formats). Throws lowp::Error for a non-float tensor.
  virtual std::vector<float> read_f32(const TensorInfo& t) const = 0;
  // The same values into `out` (resized to the tensor's element count), for
  // a caller that reads tensor after tensor into one buffer: a reader may
  // reuse its memory (safetensors does) instead of mapping fresh pages.
  virtual void read_f32_into(const TensorInfo& t, std::vector<float>& out) const {
    out = read_f32(t);
  }
  // Values [first, first + out.size()) of the tensor into `out`, exactly as
  // read_f32 gives them, for a caller that streams a tensor in pieces. Returns
  // false, touching nothing, where the reader cannot read a piece alone (the
  // default; safetensors can for its plain dtypes). Throws lowp::Error for a
  // range outside the tensor.
  virtual bool read_f32_range(const TensorInfo& t, std::uint64_t first,
                              std::span<float> out) const {
    (void)t, (void)first, (void)out;
    return false;
  }
  // The tensor's stored bytes.
  virtual std::span<const std::byte> raw(const TensorInfo& t) const = 0;
  // A hint that the caller is done with t's stored bytes: where they are pages
  // of the mapped file, those pages are dropped from the process (they stay in
  // the page cache and come back if read again), so a pass over a large file
  // holds about one tensor in memory rather than the whole file. Spans from
  // raw(t) stay valid. Does nothing for readers over memory they do not map.
  virtual void release(const TensorInfo& t) const;
  // Set by open_model: the mapping the reader's image lies in.
  void set_mapping(std::shared_ptr<const MappedFile> file) { mapping_ = std::move(file); }
  // A tensor stored in a block format (lowp's packed tensors, gpt-oss MXFP4)
  // as its PackedTensor (codes and scales as stored), so a writer can copy it
  // without requantizing; nullopt for any other tensor.
  virtual std::optional<PackedTensor> packed(const TensorInfo& /*t*/) const { return std::nullopt; }
  // The checkpoint convention recognized in the file ("gpt-oss", "lowp"), or
  // "" for none (lowp/io/layouts.h).
  virtual std::string layout() const { return ""; }

  const TensorInfo* find(std::string_view name) const;

 private:
  std::shared_ptr<const MappedFile> mapping_;
};

// Opens a model file, choosing the reader by its magic bytes (GGUF, npy, zip
// for npz) and then its extension (.safetensors, .onnx). Throws lowp::Error
// naming the path if the file is missing, unreadable, of an unknown kind, or
// malformed.
std::unique_ptr<ModelReader> open_model(const std::filesystem::path& path);

// A checkpoint in shards: Hugging Face's model.safetensors.index.json (its
// "weight_map" of tensor name -> shard file in the same directory) and the
// shards it lists, read as one model, the shards' tensors in the order of
// their file names. Each shard is read by open_model, so a layout's groups
// (gpt-oss pairs, ModelOpt triples) are recognized within a shard; a group
// whose parts lie in different shards is refused. Throws lowp::Error naming
// the index for a malformed index, a file name that is not a .safetensors
// file beside it, a missing shard, a tensor stored twice or not where the
// index says.
std::unique_ptr<ModelReader> open_safetensors_shards(const std::filesystem::path& index);

// Per-format parsers over an in-memory image (open_model maps the file and
// calls one of these; tests and fuzz targets call them directly). `source`
// names the image in errors. `owner` keeps the bytes alive for the reader's
// lifetime (the MappedFile), or is null when the caller guarantees it.
using ImageOwner = std::shared_ptr<const void>;
std::unique_ptr<ModelReader> parse_safetensors(std::span<const std::byte> image, std::string source,
                                               ImageOwner owner = nullptr);
std::unique_ptr<ModelReader> parse_gguf(std::span<const std::byte> image, std::string source,
                                        ImageOwner owner = nullptr);
std::unique_ptr<ModelReader> parse_onnx(std::span<const std::byte> image, std::string source,
                                        ImageOwner owner = nullptr);
std::unique_ptr<ModelReader> parse_npy_model(std::span<const std::byte> image, std::string source,
                                             ImageOwner owner = nullptr);
std::unique_ptr<ModelReader> parse_npz(std::span<const std::byte> image, std::string source,
                                       ImageOwner owner = nullptr);

// ---- writing (streaming: the header first, then one tensor at a time) ----

// A tensor to write: its name, dtype in the target file format's words (see
// each writer), logical shape and stored byte count.
struct OutputTensor {
  std::string name;
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t nbytes = 0;
};
// Produces the stored bytes of output tensor `index` (exactly its nbytes);
// writers call it once per tensor, in order, so only one tensor's bytes need
// be in memory at a time.
using ProduceTensor = std::function<std::vector<std::byte>(std::size_t index)>;

}  // namespace lowp::io
