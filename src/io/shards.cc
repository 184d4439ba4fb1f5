// open_safetensors_shards (model.h): a checkpoint saved in shards, as Hugging
// Face's save_pretrained writes one past its shard size —
// model.safetensors.index.json {"metadata": {...}, "weight_map": {tensor name:
// shard file name}} beside model-00001-of-0000N.safetensors … — read as one
// model: each shard through open_model (so each shard's layout groups, gpt-oss
// pairs or ModelOpt triples, are recognized within it), their tensors listed
// shard after shard in the order of their file names.
#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowp/error.h"
#include "lowp/io/model.h"

namespace lowp::io {
namespace {

namespace fs = std::filesystem;

class ShardedReader final : public ModelReader {
 public:
  explicit ShardedReader(std::vector<std::unique_ptr<ModelReader>> shards)
      : shards_(std::move(shards)) {
    for (std::size_t s = 0; s < shards_.size(); ++s) {
      for (const TensorInfo& t : shards_[s]->tensors()) {
        tensors_.push_back(t);
        owner_.emplace_back(s, &t);
      }
    }
  }
  std::string_view kind() const override { return shards_.front()->kind(); }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  std::vector<std::pair<std::string, std::string>> metadata() const override {
    return shards_.front()->metadata();
  }
  std::vector<float> read_f32(const TensorInfo& t) const override {
    const auto [reader, own] = locate(t);
    return reader.read_f32(own);
  }
  void read_f32_into(const TensorInfo& t, std::vector<float>& out) const override {
    const auto [reader, own] = locate(t);
    reader.read_f32_into(own, out);
  }
  bool read_f32_range(const TensorInfo& t, std::uint64_t first,
                      std::span<float> out) const override {
    const auto [reader, own] = locate(t);
    return reader.read_f32_range(own, first, out);
  }
  std::span<const std::byte> raw(const TensorInfo& t) const override {
    const auto [reader, own] = locate(t);
    return reader.raw(own);
  }
  void release(const TensorInfo& t) const override {
    const auto [reader, own] = locate(t);
    reader.release(own);
  }
  std::optional<PackedTensor> packed(const TensorInfo& t) const override {
    const auto [reader, own] = locate(t);
    return reader.packed(own);
  }
  // The first layout a shard names (the shards of one checkpoint share it).
  std::string layout() const override {
    for (const auto& s : shards_) {
      if (std::string l = s->layout(); !l.empty()) return l;
    }
    return "";
  }

 private:
  std::pair<const ModelReader&, const TensorInfo&> locate(const TensorInfo& t) const {
    std::size_t i = 0;
    if (&t >= tensors_.data() && &t < tensors_.data() + tensors_.size()) {
      i = static_cast<std::size_t>(&t - tensors_.data());
    } else {
      while (i < tensors_.size() && tensors_[i].name != t.name) ++i;
      if (i == tensors_.size()) throw Error("no tensor " + quoted(t.name) + " in the shards");
    }
    return {*shards_[owner_[i].first], *owner_[i].second};
  }

  std::vector<std::unique_ptr<ModelReader>> shards_;
  std::vector<TensorInfo> tensors_;
  std::vector<std::pair<std::size_t, const TensorInfo*>> owner_;  // shard, its own info
};

// A layout group whose parts lie in different shards (each shard's reader
// groups only its own tensors): the first such pair found, or "".
std::string split_group(const std::vector<std::unique_ptr<ModelReader>>& shards,
                        const std::vector<std::string>& files) {
  std::map<std::string, std::pair<std::size_t, std::string>> where;  // name -> shard, dtype
  for (std::size_t s = 0; s < shards.size(); ++s) {
    for (const TensorInfo& t : shards[s]->tensors()) where.emplace(t.name, std::pair{s, t.dtype});
  }
  auto in_other = [&](const std::string& name, std::size_t s) {
    const auto it = where.find(name);
    return it != where.end() && it->second.first != s ? it : where.end();
  };
  for (const auto& [name, at] : where) {
    const auto& [s, dtype] = at;
    std::string partner;
    if (name.ends_with("_blocks") && dtype == "U8") {
      partner = name.substr(0, name.size() - 7) + "_scales";  // gpt-oss
    } else if (dtype == "U8" || dtype == "F8_E4M3") {
      partner = name + "_scale";  // ModelOpt NVFP4, FP8 with its scale
    }
    if (partner.empty()) continue;
    if (const auto it = in_other(partner, s); it != where.end()) {
      return quoted(name) + " (in " + files[s] + ") and " + quoted(partner) + " (in " +
             files[it->second.first] + ")";
    }
  }
  return "";
}

}  // namespace

std::unique_ptr<ModelReader> open_safetensors_shards(const fs::path& index) {
  const std::string where = index.string();
  std::ifstream f(index, std::ios::binary);
  if (!f) throw Error("cannot read " + quoted(where));
  std::ostringstream text;
  text << f.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") ||
      !j["weight_map"].is_object() || j["weight_map"].empty()) {
    throw Error(where + ": not a shard index (no \"weight_map\" object of tensor -> file)");
  }
  std::set<std::string> files;
  std::map<std::string, std::string> file_of;
  for (const auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string()) {
      throw Error(where + ": weight_map entry " + quoted(name) + " is not a file name string");
    }
    const std::string s = file.get<std::string>();
    // A file beside the index, nothing else (no paths into other directories).
    if (s.empty() || s.find('/') != std::string::npos || s.find('\\') != std::string::npos ||
        s == "." || s == ".." || !s.ends_with(".safetensors")) {
      throw Error(where + ": weight_map entry " + quoted(name) + " names " + quoted(s) +
                  ", not a .safetensors file in the same directory");
    }
    files.insert(s);
    file_of.emplace(name, s);
  }
  std::vector<std::unique_ptr<ModelReader>> shards;
  std::vector<std::string> names(files.begin(), files.end());
  for (const std::string& file : names) {
    const fs::path path = index.parent_path() / file;
    if (!fs::exists(path)) {
      throw Error(where + ": shard " + quoted(file) + " it lists is missing");
    }
    shards.push_back(open_model(path));
    if (shards.back()->kind() != "safetensors") {
      throw Error(path.string() + ": a shard listed in " + where + " is not a safetensors file");
    }
  }
  // Every tensor the index names is in the shard it names (a grouped tensor's
  // parts, "<name>_blocks" and the like, are found under the group's name).
  std::set<std::string> seen;
  for (std::size_t s = 0; s < shards.size(); ++s) {
    for (const TensorInfo& t : shards[s]->tensors()) {
      if (!seen.insert(t.name).second) {
        throw Error(where + ": tensor " + quoted(t.name) + " is stored in more than one shard");
      }
    }
  }
  if (const std::string split = split_group(shards, names); !split.empty()) {
    throw Error(where + ": the parts of one quantized tensor lie in different shards: " + split +
                "; lowp reads a layout's parts from one file");
  }
  for (const auto& [name, file] : file_of) {
    const auto shard = static_cast<std::size_t>(std::lower_bound(names.begin(), names.end(), file) -
                                                names.begin());
    if (shards[shard]->find(name) != nullptr) continue;
    // A part of a group ("<name>_blocks", "<name>_scale_2", ...): the group is
    // listed under the name before one of the part's underscores.
    bool part = false;
    for (std::size_t cut = name.rfind('_'); !part && cut != std::string::npos && cut > 0;
         cut = name.rfind('_', cut - 1)) {
      part = shards[shard]->find(std::string_view(name).substr(0, cut)) != nullptr;
    }
    if (!part) {
      throw Error(where + ": tensor " + quoted(name) + " is not in the shard it names, " +
                  quoted(file));
    }
  }
  return std::make_unique<ShardedReader>(std::move(shards));
}

}  // namespace lowp::io
