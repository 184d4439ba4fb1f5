// ONNX model reading: the tensors stored in a ModelProto, without protobuf.
//
// Reference: onnx/onnx.proto (field numbers below) and docs/IR.md. We read
//   ModelProto { ir_version 1, producer_name 2, producer_version 3, domain 4,
//                model_version 5, graph 7, opset_import 8, metadata_props 14 }
//   GraphProto { node 1, name 2, initializer 5 }
//   NodeProto  { output 2, op_type 4, attribute 5, domain 7 }
//   AttributeProto { name 1, t 5 }
//   TensorProto { dims 1, data_type 2, segment 3, float_data 4, int32_data 5,
//                 string_data 6, int64_data 7, name 8, raw_data 9,
//                 double_data 10, uint64_data 11, external_data 13,
//                 data_location 14 }
// and skip every other field. Tensors are the graph's initializers (named by
// TensorProto.name) and the tensors of its Constant nodes' "value" attribute
// (named by the node's first output). Constant nodes inside subgraphs (If,
// Loop, Scan bodies), sparse initializers and training_info graphs are out of
// scope and not listed.
//
// Strictness (the input is hostile): every length is bounded by its parent
// message; dims are >= 0 (at most 64 of them) with an overflow-checked element
// count; the payload size must match the element count exactly; names must be
// present and distinct; a tensor's data must be in one place (raw_data, or one
// packed field, or one contiguous run of unpacked fields — split data is
// rejected); the typed field must be the one the data type uses; unknown data
// types, segmented tensors and external data are rejected with the tensor's
// name. Values in int32_data wider than the data type keep their low bits.
#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <set>

#include "lowp/error.h"
#include "lowp/format/convert.h"
#include "onnx_internal.h"
#include "protobuf_wire.h"

namespace lowp::io {
namespace onnx {
namespace {

using detail::Decode;

// ONNX's TensorProto.DataType (onnx.proto) and the lowp formats of the float
// types' codes.
constexpr DataType kTypes[] = {
    {1, "FLOAT", 32, 4, 1, Decode::kF32, kFp32},
    {2, "UINT8", 8, 5, 1, Decode::kNone},
    {3, "INT8", 8, 5, 1, Decode::kNone},
    {4, "UINT16", 16, 5, 1, Decode::kNone},
    {5, "INT16", 16, 5, 1, Decode::kNone},
    {6, "INT32", 32, 5, 1, Decode::kNone},
    {7, "INT64", 64, 7, 1, Decode::kNone},
    {8, "STRING", 0, 6, 1, Decode::kNone},
    {9, "BOOL", 8, 5, 1, Decode::kNone},
    {10, "FLOAT16", 16, 5, 1, Decode::kCode, kFp16},
    {11, "DOUBLE", 64, 10, 1, Decode::kF64},
    {12, "UINT32", 32, 11, 1, Decode::kNone},
    {13, "UINT64", 64, 11, 1, Decode::kNone},
    {14, "COMPLEX64", 64, 4, 2, Decode::kNone},
    {15, "COMPLEX128", 128, 10, 2, Decode::kNone},
    {16, "BFLOAT16", 16, 5, 1, Decode::kCode, kBf16},
    {17, "FLOAT8E4M3FN", 8, 5, 1, Decode::kCode, kFp8E4m3},
    {18, "FLOAT8E4M3FNUZ", 8, 5, 1, Decode::kCode, kFp8E4m3Fnuz},
    {19, "FLOAT8E5M2", 8, 5, 1, Decode::kCode, kFp8E5m2},
    {20, "FLOAT8E5M2FNUZ", 8, 5, 1, Decode::kCode, kFp8E5m2Fnuz},
    {21, "UINT4", 4, 0, 1, Decode::kNone},
    {22, "INT4", 4, 0, 1, Decode::kNone},
    {23, "FLOAT4E2M1", 4, 0, 1, Decode::kCode, kFp4E2m1},
    {24, "FLOAT8E8M0", 8, 5, 1, Decode::kCode, kE8m0},
};

constexpr std::size_t kMaxDims = 64;
constexpr std::uint64_t kMaxElements = std::uint64_t{1} << 56;

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// One TensorProto's parse state.
struct TensorParse {
  TensorInfo info;
  OnnxReader::Entry entry;
  bool has_name = false;
  int data_type = 0;
  bool has_type = false;
  bool external = false;
  std::uint32_t data_field = 0;  // the field holding the values
  std::size_t run_end = 0;       // end of the current unpacked run
  std::uint64_t values = 0;      // typed values seen
};

class Parser {
  using Entry = OnnxReader::Entry;

 public:
  Parser(std::span<const std::byte> image, OnnxReader& out) : image_(image), out_(out) {}

  void model() {
    pb::Reader r(image_, 0, image_.size(), pb::Context{out_.source(), "ModelProto"});
    pb::Field f;
    bool has_graph = false;
    std::string opsets;
    std::set<std::string, std::less<>> meta_keys;
    auto& md = out_.metadata_;
    while (r.next(f)) {
      switch (f.number) {
        case 1:
          md.emplace_back("ir_version", std::to_string(r.int64(f, "ir_version")));
          break;
        case 2:
          md.emplace_back("producer_name", std::string(r.string(f, "producer_name")));
          break;
        case 3:
          md.emplace_back("producer_version", std::string(r.string(f, "producer_version")));
          break;
        case 4:
          md.emplace_back("domain", std::string(r.string(f, "domain")));
          break;
        case 5:
          md.emplace_back("model_version", std::to_string(r.int64(f, "model_version")));
          break;
        case 7:
          if (has_graph) r.fail_at(f.tag_offset, "more than one graph");
          has_graph = true;
          graph(r.sub(f, "graph"));
          break;
        case 8: {
          const OpsetId op = read_opset_id(r.sub(f, "opset_import"));
          opsets += (opsets.empty() ? "[" : ", ") + std::string("{\"domain\": ") +
                    json_string(op.domain) + ", \"version\": " + std::to_string(op.version) + "}";
          break;
        }
        case 14: {
          pb::Reader e = r.sub(f, "metadata_props");
          pb::Field g;
          std::string key, value;
          while (e.next(g)) {
            if (g.number == 1) key = e.string(g, "key");
            if (g.number == 2) value = e.string(g, "value");
          }
          if (!meta_keys.insert(key).second) {
            r.fail_at(f.tag_offset, "duplicate metadata_props key " + lowp::quoted(key));
          }
          md.emplace_back("metadata_props." + key, value);
          break;
        }
        default:
          break;
      }
    }
    if (!has_graph) throw Error(out_.source() + ": not an ONNX model (ModelProto has no graph)");
    resolve_qdq();
    if (!opsets.empty()) md.emplace_back("opset_import", opsets + "]");
    md.emplace_back("graph.name", graph_name_);
    md.emplace_back("graph.node_count", std::to_string(node_count_));
    md.emplace_back("graph.initializer_count", std::to_string(initializer_count_));
  }

 private:
  void graph(pb::Reader r) {
    pb::Field f;
    while (r.next(f)) {
      if (f.number == 1) {
        node(r.sub(f, "graph.node[" + std::to_string(node_count_) + "]"));
        ++node_count_;
      } else if (f.number == 2) {
        graph_name_ = r.string(f, "graph.name");
      } else if (f.number == 5) {
        const std::string where = "graph.initializer[" + std::to_string(initializer_count_) + "]";
        ++initializer_count_;
        tensor(r.sub(f, where), std::nullopt);
      }
    }
  }

  void node(pb::Reader r) {
    pb::Field f;
    std::string_view op_type, domain, name;
    std::optional<std::string_view> first_output;
    std::vector<pb::Field> attributes;
    std::vector<std::string> inputs;
    while (r.next(f)) {
      if (f.number == 1) inputs.emplace_back(r.string(f, "input"));
      if (f.number == 3) name = r.string(f, "name");
      if (f.number == 2 && !first_output) first_output = r.string(f, "output");
      if (f.number == 2) r.string(f, "output");
      if (f.number == 4) op_type = r.string(f, "op_type");
      if (f.number == 7) domain = r.string(f, "domain");
      if (f.number == 5) {
        r.expect(f, pb::WireType::kLen, "attribute");
        attributes.push_back(f);
      }
    }
    const bool default_domain = is_default_domain(domain);
    if (default_domain && (op_type == "DequantizeLinear" || op_type == "Reshape") && first_output) {
      QdqNode n;
      n.reshape = op_type == "Reshape";
      n.name = name.empty() ? std::string(*first_output) : std::string(name);
      n.inputs = std::move(inputs);
      n.output = *first_output;
      for (const pb::Field& a : attributes) {
        pb::Reader ar = r.sub(a, r.context().message + ".attribute");
        pb::Field g;
        std::string_view attr;
        std::optional<std::int64_t> value;
        while (ar.next(g)) {
          if (g.number == 1) attr = ar.string(g, "name");
          if (g.number == 3) value = ar.int64(g, "i");
        }
        if (attr == "axis" && value) n.axis = *value;
        if (attr == "block_size" && value) n.block_size = *value;
        if (attr == "allowzero" && value) n.allowzero = *value;
      }
      qdq_nodes_.push_back(std::move(n));
      return;
    }
    if (op_type != "Constant" || !default_domain) return;
    for (const pb::Field& a : attributes) {
      pb::Reader ar = r.sub(a, r.context().message + ".attribute");
      pb::Field g;
      std::string_view attr_name;
      std::optional<pb::Field> t;
      while (ar.next(g)) {
        if (g.number == 1) attr_name = ar.string(g, "name");
        if (g.number == 5) {
          ar.expect(g, pb::WireType::kLen, "t");
          t = g;
        }
      }
      if (attr_name != "value" || !t) continue;
      if (!first_output || first_output->empty()) {
        r.fail_at(a.tag_offset, "Constant node has no output name");
      }
      tensor(ar.sub(*t, r.context().message + ".attribute.t"), std::string(*first_output));
    }
  }

  // A data field's occurrence: packed payloads must be alone, unpacked
  // elements one contiguous run.
  void data(const pb::Reader& r, const pb::Field& f, TensorParse& p) {
    Storage kind;
    bool packed = f.type == pb::WireType::kLen;
    switch (f.number) {
      case 4:
        kind = packed ? Storage::kPackedFixed32 : Storage::kUnpackedFixed32;
        if (!packed) r.expect(f, pb::WireType::kFixed32, "float_data");
        break;
      case 10:
        kind = packed ? Storage::kPackedFixed64 : Storage::kUnpackedFixed64;
        if (!packed) r.expect(f, pb::WireType::kFixed64, "double_data");
        break;
      case 6:
        r.expect(f, pb::WireType::kLen, "string_data");
        kind = Storage::kUnpackedBytes;
        packed = false;
        break;
      case 9:
        r.expect(f, pb::WireType::kLen, "raw_data");
        kind = Storage::kRaw;
        packed = true;
        break;
      default:  // 5, 7, 11
        kind = packed ? Storage::kPackedVarint : Storage::kUnpackedVarint;
        if (!packed) r.expect(f, pb::WireType::kVarint, "int data");
        break;
    }
    if (p.data_field != 0) {
      const bool continues = !packed && p.data_field == f.number && p.entry.storage == kind &&
                             p.run_end == f.tag_offset;
      if (!continues) {
        r.fail_at(f.tag_offset, p.data_field == f.number
                                    ? "tensor data split into pieces (unsupported)"
                                    : "tensor data in more than one field");
      }
      ++p.values;
      p.run_end = f.offset + f.size;
      p.info.nbytes = p.run_end - p.info.offset;
      return;
    }
    p.data_field = f.number;
    p.entry.storage = kind;
    if (packed) {
      p.info.offset = f.offset;
      p.info.nbytes = f.size;
      if (kind == Storage::kPackedFixed32 || kind == Storage::kPackedFixed64) {
        const std::size_t w = kind == Storage::kPackedFixed32 ? 4 : 8;
        if (f.size % w != 0)
          r.fail_at(f.tag_offset, "packed data length not a multiple of " + std::to_string(w));
        p.values = f.size / w;
      } else if (kind == Storage::kPackedVarint) {
        std::size_t pos = f.offset;
        while (pos < f.offset + f.size) {
          pb::read_varint(image_, pos, f.offset + f.size, r.context());
          ++p.values;
        }
      }
    } else {
      p.info.offset = f.tag_offset;
      p.run_end = f.offset + f.size;
      p.info.nbytes = p.run_end - f.tag_offset;
      p.values = 1;
    }
  }

  void tensor(pb::Reader r, std::optional<std::string> constant_output) {
    TensorParse p;
    pb::Field f;
    auto fail = [&](const std::string& what) -> void {
      const std::string who =
          p.info.name.empty() ? "" : "tensor " + lowp::quoted(p.info.name) + ": ";
      throw Error(out_.source() + ": " + who + what + " (in " + r.context().message + ")");
    };
    while (r.next(f)) {
      switch (f.number) {
        case 1: {
          const std::int64_t d = r.int64(f, "dims");
          if (d < 0) r.fail_at(f.tag_offset, "negative dimension " + std::to_string(d));
          if (p.info.shape.size() == kMaxDims) r.fail_at(f.tag_offset, "more than 64 dimensions");
          p.info.shape.push_back(d);
          break;
        }
        case 2:
          p.data_type = r.int32(f, "data_type");
          p.has_type = true;
          break;
        case 3:
          r.fail_at(f.tag_offset, "segmented tensors are not supported");
        case 8:
          p.info.name = r.string(f, "name");
          p.has_name = true;
          break;
        case 13:
          p.external = true;
          break;
        case 14:
          if (r.int64(f, "data_location") == 1) p.external = true;
          break;
        case 4:
        case 5:
        case 6:
        case 7:
        case 9:
        case 10:
        case 11:
          data(r, f, p);
          break;
        default:
          break;
      }
    }
    if (constant_output) p.info.name = *constant_output;
    if (p.info.name.empty()) fail("tensor has no name");
    if (p.external) fail("data stored externally (data_location = EXTERNAL) is not supported");
    if (!p.has_type) fail("no data_type");
    const DataType* type = find_data_type(p.data_type);
    if (type == nullptr) fail("unsupported data type " + std::to_string(p.data_type));
    p.entry.type = type;
    p.info.dtype = type->name;
    p.info.is_float = type->decode != Decode::kNone;
    std::uint64_t n = 1;
    for (std::int64_t d : p.info.shape) {
      const auto u = static_cast<std::uint64_t>(d);
      if (u != 0 && n > kMaxElements / u) fail("element count overflows");
      n *= u;
    }
    if (p.entry.storage == Storage::kNone) {
      if (n != 0) fail("has " + std::to_string(n) + " elements but no data");
    } else if (p.entry.storage == Storage::kRaw) {
      if (type->bits == 0) fail(std::string(type->name) + " data cannot be in raw_data");
      const std::uint64_t want = type->bits == 4 ? (n + 1) / 2 : n * (type->bits / 8);
      if (p.info.nbytes != want) {
        fail("raw_data has " + std::to_string(p.info.nbytes) + " bytes, expected " +
             std::to_string(want));
      }
    } else {
      if (p.data_field != type->typed) {
        fail("field " + std::to_string(p.data_field) + " cannot hold " + type->name + " data");
      }
      if (p.values != n * type->per_element) {
        fail("has " + std::to_string(p.values) + " data values, expected " +
             std::to_string(n * type->per_element));
      }
    }
    if (!names_.insert(p.info.name).second) fail("duplicate tensor name");
    out_.tensors_.push_back(std::move(p.info));
    out_.entries_.push_back(p.entry);
  }

  // A DequantizeLinear or Reshape node of the main graph (resolve_qdq).
  struct QdqNode {
    bool reshape = false;
    std::string name, output;
    std::vector<std::string> inputs;
    std::int64_t axis = 1, block_size = 0, allowzero = 0;
  };
  std::vector<QdqNode> qdq_nodes_;

 public:
  // DequantizeLinear nodes whose inputs are all constant (listed tensors, or
  // earlier such outputs) become listed float tensors, their inputs unlisted;
  // a Reshape of such an output by a constant INT64 shape renames it. Nodes
  // with any other input are left alone. A recognized node whose inputs do
  // not fit (scale or zero point shape, types) is an error naming it.
  void resolve_qdq() {
    std::set<std::string, std::less<>> hidden;
    std::map<std::string, std::size_t, std::less<>> index;
    for (std::size_t i = 0; i < out_.tensors_.size(); ++i) index[out_.tensors_[i].name] = i;
    auto find = [&](const std::string& n) -> std::optional<std::size_t> {
      if (n.empty() || hidden.count(n) != 0) return std::nullopt;
      const auto it = index.find(n);
      if (it == index.end()) return std::nullopt;
      return it->second;
    };
    for (const QdqNode& n : qdq_nodes_) {
      const std::string who = out_.source() + ": " + (n.reshape ? "Reshape" : "DequantizeLinear") +
                              " node " + lowp::quoted(n.name) + ": ";
      if (n.reshape) {
        if (n.inputs.size() != 2) continue;
        const auto data = find(n.inputs[0]), shape = find(n.inputs[1]);
        if (!data || !shape || out_.entries_[*data].storage != Storage::kQdq) continue;
        if (out_.tensors_[*shape].dtype != "INT64" || out_.tensors_[*shape].shape.size() != 1)
          throw Error(who + "shape " + lowp::quoted(n.inputs[1]) + " is not a 1-D INT64 tensor");
        std::vector<std::int64_t> dims;
        out_.for_each_code(*shape,
                           [&](std::uint64_t c) { dims.push_back(static_cast<std::int64_t>(c)); });
        TensorInfo& t = out_.tensors_[*data];
        const std::uint64_t count = t.element_count();
        std::uint64_t known = 1;
        std::optional<std::size_t> infer;
        for (std::size_t k = 0; k < dims.size(); ++k) {
          if (dims[k] == 0 && n.allowzero == 0) {
            if (k >= t.shape.size()) throw Error(who + "shape copies a missing dimension");
            dims[k] = t.shape[k];
          }
          if (dims[k] == -1 && !infer) {
            infer = k;
            continue;
          }
          if (dims[k] < 0) throw Error(who + "negative dimension in shape");
          const auto u = static_cast<std::uint64_t>(dims[k]);
          if (u != 0 && known > kMaxElements / u) throw Error(who + "shape overflows");
          known *= u;
        }
        if (infer) {
          if (known == 0 || count % known != 0) throw Error(who + "shape does not fit the data");
          dims[*infer] = static_cast<std::int64_t>(count / known);
          known = count;
        }
        if (known != count) {
          throw Error(who + "shape has " + std::to_string(known) + " elements, the data " +
                      std::to_string(count));
        }
        if (find(n.output)) throw Error(who + "output " + lowp::quoted(n.output) + " is taken");
        hidden.insert(n.inputs[1]);
        hidden.insert(t.name);
        names_.insert(n.output);
        index[n.output] = *data;
        t.name = n.output;
        t.shape = std::move(dims);
        continue;
      }
      if (n.inputs.empty() || !find(n.inputs[0])) continue;  // not a constant's
      if (n.inputs.size() < 2 || n.inputs[1].empty()) throw Error(who + "has no scale input");
      if (n.inputs.size() > 3) throw Error(who + "has more than 3 inputs");
      const auto x = find(n.inputs[0]), scale = find(n.inputs[1]);
      std::optional<std::size_t> zp;
      if (n.inputs.size() == 3 && !n.inputs[2].empty()) {
        zp = find(n.inputs[2]);
        if (!zp) continue;
      }
      if (!x || !scale) continue;
      const TensorInfo& xt = out_.tensors_[*x];
      const TensorInfo& st = out_.tensors_[*scale];
      const Entry& xe = out_.entries_[*x];
      const int code = xe.type->code;
      const bool int_type =
          code == 2 || code == 3 || code == 4 || code == 5 || code == 6 || code == 21 || code == 22;
      const bool float_type = (code >= 17 && code <= 20) || code == 23;
      if (xe.storage == Storage::kQdq || !(int_type || float_type)) {
        throw Error(who + "input " + lowp::quoted(xt.name) + " of type " + xt.dtype +
                    " cannot be dequantized");
      }
      if (!st.is_float)
        throw Error(who + "scale " + lowp::quoted(st.name) + " is not a float tensor");
      const auto rank = static_cast<std::int64_t>(xt.shape.size());
      OnnxReader::Qdq q;
      std::string how;
      auto shape_text = [](const std::vector<std::int64_t>& s) {
        std::string r = "[";
        for (std::size_t k = 0; k < s.size(); ++k) r += (k ? ", " : "") + std::to_string(s[k]);
        return r + "]";
      };
      if (n.block_size < 0) throw Error(who + "negative block_size");
      if (n.block_size == 0 && st.element_count() == 1 && st.shape.size() <= 1) {
        how = "tensor";
      } else {
        if (n.axis < -rank || n.axis >= rank)
          throw Error(who + "axis " + std::to_string(n.axis) + " out of range for rank " +
                      std::to_string(rank));
        q.axis = static_cast<int>(n.axis < 0 ? n.axis + rank : n.axis);
        const auto a = static_cast<std::size_t>(q.axis);
        std::vector<std::int64_t> want;
        if (n.block_size > 0) {
          want = xt.shape;
          // ceil(dim / block_size), without overflow for any block_size.
          want[a] = xt.shape[a] == 0 ? 0 : (xt.shape[a] - 1) / n.block_size + 1;
          q.block_size = n.block_size;
          how = "block " + std::to_string(n.block_size);
        } else {
          want = {xt.shape[a]};
          how = "axis " + std::to_string(q.axis);
        }
        if (st.shape != want) {
          throw Error(who + "scale " + lowp::quoted(st.name) + " has shape " +
                      shape_text(st.shape) + ", expected " + shape_text(want));
        }
      }
      if (zp) {
        const TensorInfo& zt = out_.tensors_[*zp];
        if (zt.dtype != xt.dtype || zt.shape != st.shape) {
          throw Error(who + "zero point " + lowp::quoted(zt.name) + " (" + zt.dtype + " " +
                      shape_text(zt.shape) +
                      ") does not match the input's type and the scale's "
                      "shape");
        }
        q.zero_point = zt;
        q.zero_point_entry = out_.entries_[*zp];
        q.has_zero_point = true;
      }
      if (find(n.output) && n.output != xt.name)
        throw Error(who + "output " + lowp::quoted(n.output) + " is taken");
      q.x = xt;
      q.x_entry = xe;
      q.scale = st;
      q.scale_entry = out_.entries_[*scale];
      TensorInfo y = xt;
      y.name = n.output;
      y.dtype = xt.dtype + " (QDQ " + how + ")";
      y.is_float = true;
      Entry ye;
      ye.storage = Storage::kQdq;
      ye.type = xe.type;
      ye.qdq = out_.qdq_.size();
      out_.qdq_.push_back(std::move(q));
      hidden.insert(n.inputs[0]);
      hidden.insert(n.inputs[1]);
      if (zp) hidden.insert(n.inputs[2]);
      names_.insert(n.output);
      index[n.output] = out_.tensors_.size();
      out_.tensors_.push_back(std::move(y));
      out_.entries_.push_back(ye);
    }
    // Unlist the hidden inputs.
    std::vector<TensorInfo> tensors;
    std::vector<Entry> entries;
    for (std::size_t i = 0; i < out_.tensors_.size(); ++i) {
      if (hidden.count(out_.tensors_[i].name) != 0) continue;
      tensors.push_back(std::move(out_.tensors_[i]));
      entries.push_back(out_.entries_[i]);
    }
    out_.tensors_ = std::move(tensors);
    out_.entries_ = std::move(entries);
  }

 private:
  std::span<const std::byte> image_;
  OnnxReader& out_;
  std::set<std::string, std::less<>> names_;
  std::string graph_name_;
  std::size_t node_count_ = 0;
  std::size_t initializer_count_ = 0;
};

}  // namespace

const DataType* find_data_type(int code) {
  for (const DataType& t : kTypes) {
    if (t.code == code) return &t;
  }
  return nullptr;
}

const DataType& data_type_of(const TensorInfo& t) {
  for (const DataType& d : kTypes) {
    if (t.dtype == d.name) return d;
  }
  throw Error("onnx: unknown data type " + lowp::quoted(t.dtype));
}

std::size_t OnnxReader::index_of(const TensorInfo& t) const {
  // One of ours (the usual case): O(1). std::less orders unrelated pointers too.
  const std::less<const TensorInfo*> before;
  if (!tensors_.empty() && !before(&t, tensors_.data()) &&
      before(&t, tensors_.data() + tensors_.size())) {
    return static_cast<std::size_t>(&t - tensors_.data());
  }
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    const TensorInfo& o = tensors_[i];
    if (o.name == t.name && o.offset == t.offset && o.nbytes == t.nbytes && o.dtype == t.dtype)
      return i;
  }
  throw Error(source_ + ": tensor " + lowp::quoted(t.name) + " is not in this model");
}

std::span<const std::byte> OnnxReader::raw(const TensorInfo& t) const {
  const TensorInfo& o = tensors_[index_of(t)];
  return image_.subspan(static_cast<std::size_t>(o.offset), static_cast<std::size_t>(o.nbytes));
}

void OnnxReader::for_each_code(std::size_t i,
                               const std::function<void(std::uint64_t)>& sink) const {
  for_each_code(tensors_[i], entries_[i], sink);
}

void OnnxReader::for_each_code(const TensorInfo& t, const Entry& e,
                               const std::function<void(std::uint64_t)>& sink) const {
  if (e.storage == Storage::kQdq) {
    const Qdq& q = qdq_[e.qdq];
    for_each_code(q.x, q.x_entry, sink);
    return;
  }
  const auto begin = static_cast<std::size_t>(t.offset);
  const auto end = begin + static_cast<std::size_t>(t.nbytes);
  const pb::Context ctx{source_, "tensor " + lowp::quoted(t.name)};
  const std::byte* p = image_.data() + begin;
  switch (e.storage) {
    case Storage::kNone:
    case Storage::kQdq:
      return;
    case Storage::kRaw: {
      const unsigned bits = e.type->bits;
      if (bits == 4) {
        const std::uint64_t n = t.element_count();
        for (std::uint64_t k = 0; k < n; ++k) {
          const auto b = static_cast<std::uint8_t>(p[k / 2]);
          sink((k % 2 == 0 ? b : b >> 4) & 0xF);
        }
        return;
      }
      const std::size_t w = bits / 8;
      for (std::size_t k = 0; k + w <= t.nbytes; k += w) {
        if (w == 16) {  // COMPLEX128: two codes per element (not float: never decoded)
          sink(pb::load_le64(p + k));
          sink(pb::load_le64(p + k + 8));
          continue;
        }
        std::uint64_t v = 0;
        for (std::size_t b = w; b-- > 0;) v = (v << 8) | static_cast<std::uint8_t>(p[k + b]);
        sink(v);
      }
      return;
    }
    case Storage::kPackedFixed32:
      for (std::size_t k = 0; k + 4 <= t.nbytes; k += 4) sink(pb::load_le32(p + k));
      return;
    case Storage::kPackedFixed64:
      for (std::size_t k = 0; k + 8 <= t.nbytes; k += 8) sink(pb::load_le64(p + k));
      return;
    case Storage::kPackedVarint:
      for (std::size_t pos = begin; pos < end;) sink(pb::read_varint(image_, pos, end, ctx));
      return;
    case Storage::kUnpackedFixed32:
    case Storage::kUnpackedFixed64:
    case Storage::kUnpackedVarint:
    case Storage::kUnpackedBytes: {
      pb::Reader r(image_, begin, end, ctx, 1);
      pb::Field f;
      while (r.next(f)) sink(f.value);
      return;
    }
  }
}

std::vector<float> OnnxReader::read_f32(const TensorInfo& t) const {
  const std::size_t i = index_of(t);
  return values(tensors_[i], entries_[i]);
}

OpsetId read_opset_id(pb::Reader o) {
  OpsetId id;
  pb::Field g;
  while (o.next(g)) {
    if (g.number == 1) id.domain = o.string(g, "domain");
    if (g.number == 2) id.version = o.int64(g, "version");
  }
  return id;
}

namespace {

// The value of integer code c of an ONNX integer type (sign-extended where signed).
std::int64_t integer_value(int type_code, std::uint64_t c) {
  switch (type_code) {
    case 3:  // INT8
      return static_cast<std::int8_t>(static_cast<std::uint8_t>(c));
    case 5:  // INT16
      return static_cast<std::int16_t>(static_cast<std::uint16_t>(c));
    case 6:  // INT32
      return static_cast<std::int32_t>(static_cast<std::uint32_t>(c));
    case 22:  // INT4
      return static_cast<std::int64_t>(c & 0xF) - ((c & 0x8) != 0 ? 16 : 0);
    case 21:  // UINT4
      return static_cast<std::int64_t>(c & 0xF);
    case 2:  // UINT8
      return static_cast<std::int64_t>(c & 0xFF);
    default:  // UINT16
      return static_cast<std::int64_t>(c & 0xFFFF);
  }
}

}  // namespace

std::vector<float> OnnxReader::values(const TensorInfo& t, const Entry& e) const {
  std::vector<float> out;
  out.reserve(static_cast<std::size_t>(t.element_count()));
  if (e.storage == Storage::kQdq) {
    // DequantizeLinear (onnx/docs/Operators.md): y = (x - x_zero_point) *
    // x_scale. Integers: the difference in integers, converted to fp32 (as
    // onnxruntime's kernels do), times the scale; floats: the decoded values'
    // fp32 difference (zero points of FLOAT8/FLOAT4 are 0) times the scale.
    const Qdq& q = qdq_[e.qdq];
    const DataType& type = *q.x_entry.type;
    const std::vector<float> scale = values(q.scale, q.scale_entry);
    std::vector<std::uint64_t> x, zp;
    x.reserve(out.capacity());
    for_each_code(q.x, q.x_entry, [&](std::uint64_t c) { x.push_back(c); });
    if (q.has_zero_point) {
      for_each_code(q.zero_point, q.zero_point_entry, [&](std::uint64_t c) { zp.push_back(c); });
    }
    // Element k's scale index: strides of x's shape.
    const std::vector<std::int64_t>& shape = q.x.shape;
    std::size_t inner = 1;
    for (std::size_t d = static_cast<std::size_t>(q.axis) + 1; d < shape.size(); ++d)
      inner *= static_cast<std::size_t>(shape[d]);
    const bool per_tensor = scale.size() == 1 && q.scale.shape.size() <= 1 && q.block_size == 0;
    const auto dim = shape.empty()
                         ? std::size_t{1}
                         : static_cast<std::size_t>(shape[static_cast<std::size_t>(q.axis)]);
    const auto block = static_cast<std::size_t>(q.block_size);
    const std::size_t blocks = block == 0 ? dim : (dim + block - 1) / block;
    for (std::size_t k = 0; k < x.size(); ++k) {
      std::size_t s = 0;
      if (!per_tensor) {
        const std::size_t outer = k / (inner * dim), along = (k / inner) % dim, in = k % inner;
        s = block == 0 ? along : (outer * blocks + along / block) * inner + in;
      }
      const std::uint64_t z = zp.empty() ? 0 : zp[s];
      float v;
      if (type.decode == Decode::kCode) {
        const auto mask = static_cast<std::uint32_t>((std::uint64_t{1} << type.format.bits) - 1);
        const float xv = decode_f32(type.format, static_cast<std::uint32_t>(x[k]) & mask);
        v = zp.empty() ? xv : xv - decode_f32(type.format, static_cast<std::uint32_t>(z) & mask);
      } else {
        v = static_cast<float>(integer_value(type.code, x[k]) - integer_value(type.code, z));
      }
      out.push_back(v * scale[s]);
    }
    return out;
  }
  const DataType& type = *e.type;
  switch (type.decode) {
    case Decode::kNone:
      throw Error(source_ + ": tensor " + lowp::quoted(t.name) + " of type " + type.name +
                  " is not a float tensor");
    case Decode::kF32:
      for_each_code(t, e, [&](std::uint64_t c) {
        out.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(c)));
      });
      break;
    case Decode::kF64:
      // The conversion rounds to nearest-even (the default floating-point environment).
      for_each_code(t, e, [&](std::uint64_t c) {
        out.push_back(static_cast<float>(std::bit_cast<double>(c)));
      });
      break;
    case Decode::kCode: {
      const Format& f = type.format;
      const auto mask = static_cast<std::uint32_t>((std::uint64_t{1} << f.bits) - 1);
      for_each_code(t, e, [&](std::uint64_t c) {
        out.push_back(decode_f32(f, static_cast<std::uint32_t>(c) & mask));
      });
      break;
    }
  }
  return out;
}

}  // namespace onnx

std::unique_ptr<ModelReader> parse_onnx(std::span<const std::byte> image, std::string source,
                                        ImageOwner owner) {
  auto reader = std::make_unique<onnx::OnnxReader>(image, std::move(source), std::move(owner));
  onnx::Parser(image, *reader).model();
  return reader;
}

}  // namespace lowp::io
