// write_onnx_qdq: a copy of an ONNX model with chosen weights stored as QDQ
// (lowp/io/onnx_qdq.h).
//
// The ModelProto is re-serialized field by field: ir_version and the default
// domain's opset_import get their new values, the graph is rebuilt, every
// other field is copied byte for byte. In the graph, node and initializer
// fields that hold a replaced weight are replaced, nodes whose operator
// changed between the old and the new opset are rewritten (raise_node), and
// every other field is copied as it is.
//
// Field numbers (onnx/onnx.proto): ModelProto { ir_version 1, graph 7,
// opset_import 8 }, OperatorSetIdProto { domain 1, version 2 }, GraphProto {
// node 1, initializer 5, input 11 }, ValueInfoProto { name 1 }, NodeProto {
// input 1, output 2, name 3, op_type 4, attribute 5, domain 7 },
// AttributeProto { name 1, f 2, i 3, floats 7, ints 8, type 20 (FLOAT 1, INT
// 2, FLOATS 6, INTS 7) }, TensorProto { dims 1, data_type 2, name 8, raw_data
// 9 }.
#include "lowp/io/onnx_qdq.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <set>

#include "lowp/error.h"
#include "lowp/io/atomic_file.h"
#include "onnx_internal.h"
#include "protobuf_wire.h"

namespace lowp::io {
namespace {

// ---- protobuf encoding ----

class Msg {
 public:
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      bytes_.push_back(static_cast<std::byte>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    bytes_.push_back(static_cast<std::byte>(v));
  }
  void key(std::uint32_t field, pb::WireType t) {
    varint(std::uint64_t{field} << 3 | static_cast<std::uint64_t>(t));
  }
  void int_field(std::uint32_t field, std::int64_t v) {
    key(field, pb::WireType::kVarint);
    varint(static_cast<std::uint64_t>(v));
  }
  void bytes_field(std::uint32_t field, std::span<const std::byte> b) {
    key(field, pb::WireType::kLen);
    varint(b.size());
    raw(b);
  }
  void string_field(std::uint32_t field, std::string_view s) {
    bytes_field(field, std::as_bytes(std::span(s.data(), s.size())));
  }
  void message_field(std::uint32_t field, const Msg& m) { bytes_field(field, m.bytes_); }
  void float_field(std::uint32_t field, float f) {
    key(field, pb::WireType::kFixed32);
    const auto u = std::bit_cast<std::uint32_t>(f);
    for (int b = 0; b < 4; ++b) bytes_.push_back(static_cast<std::byte>((u >> (8 * b)) & 0xFF));
  }
  void raw(std::span<const std::byte> b) { bytes_.insert(bytes_.end(), b.begin(), b.end()); }
  const std::vector<std::byte>& bytes() const { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

Msg tensor_proto(const std::string& name, int data_type, const std::vector<std::int64_t>& dims,
                 std::span<const std::byte> raw_data) {
  Msg t;
  for (std::int64_t d : dims) t.int_field(1, d);
  t.int_field(2, data_type);
  t.string_field(8, name);
  t.bytes_field(9, raw_data);
  return t;
}

std::vector<std::byte> float_bytes(std::span<const float> v) {
  std::vector<std::byte> out(v.size() * 4);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto u = std::bit_cast<std::uint32_t>(v[i]);
    for (std::size_t b = 0; b < 4; ++b)
      out[4 * i + b] = static_cast<std::byte>((u >> (8 * b)) & 0xFF);
  }
  return out;
}

std::vector<std::byte> int64_bytes(std::span<const std::int64_t> v) {
  std::vector<std::byte> out(v.size() * 8);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto u = static_cast<std::uint64_t>(v[i]);
    for (std::size_t b = 0; b < 8; ++b)
      out[8 * i + b] = static_cast<std::byte>((u >> (8 * b)) & 0xFF);
  }
  return out;
}

bool is_four_bit(int data_type) {
  return data_type == kOnnxInt4 || data_type == kOnnxUint4 || data_type == kOnnxFloat4E2m1;
}

// Codes as raw_data: one byte each, or two 4-bit codes per byte (element 2i
// in the low nibble, a last odd element's high nibble zero).
std::vector<std::byte> code_bytes(int data_type, std::span<const std::uint8_t> codes) {
  if (!is_four_bit(data_type)) {
    std::vector<std::byte> out(codes.size());
    for (std::size_t i = 0; i < codes.size(); ++i) out[i] = static_cast<std::byte>(codes[i]);
    return out;
  }
  std::vector<std::byte> out((codes.size() + 1) / 2, std::byte{0});
  for (std::size_t i = 0; i < codes.size(); ++i) {
    const auto c = static_cast<std::uint8_t>(codes[i] & 0xF);
    out[i / 2] |= static_cast<std::byte>(i % 2 == 0 ? c : c << 4);
  }
  return out;
}

struct Attribute {
  std::string name;
  Msg value;  // the AttributeProto
};

Attribute int_attribute(const std::string& name, std::int64_t v) {
  Attribute a{name, {}};
  a.value.string_field(1, name);
  a.value.int_field(3, v);
  a.value.int_field(20, 2);
  return a;
}

Msg node_proto(const std::string& name, const std::string& op_type,
               const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
               const std::vector<Attribute>& attributes = {}) {
  Msg n;
  for (const std::string& s : inputs) n.string_field(1, s);
  for (const std::string& s : outputs) n.string_field(2, s);
  n.string_field(3, name);
  n.string_field(4, op_type);
  for (const Attribute& a : attributes) n.message_field(5, a.value);
  return n;
}

std::uint64_t element_count(const std::vector<std::int64_t>& shape) {
  std::uint64_t n = 1;
  for (std::int64_t d : shape) n *= static_cast<std::uint64_t>(d);
  return n;
}

// ---- the QDQ tensors of one weight ----

void check(const std::string& name, const std::vector<std::int64_t>& w_shape, const QdqTensor& q) {
  auto fail = [&](const std::string& what) {
    throw Error("QDQ tensor " + quoted(name) + ": " + what);
  };
  for (std::int64_t d : q.shape) {
    if (d < 0) fail("negative dimension");
  }
  if (element_count(q.shape) != element_count(w_shape)) fail("codes shape has the wrong size");
  if (q.codes.size() != element_count(q.shape)) fail("code count does not match its shape");
  const bool two_level = !q.scale_codes.empty();
  const std::size_t n_scale = two_level ? q.scale_codes.size() : q.scale.size();
  if (n_scale != element_count(q.scale_shape)) fail("scale count does not match its shape");
  if (!q.zero_point.empty() && q.zero_point.size() != n_scale)
    fail("zero point count does not match the scale's");
  const auto rank = static_cast<int>(q.shape.size());
  if (!q.scale_shape.empty()) {
    if (q.axis < 0 || q.axis >= rank) fail("axis out of range");
    const auto a = static_cast<std::size_t>(q.axis);
    if (q.block_size > 0) {
      if (q.scale_shape.size() != q.shape.size()) fail("blocked scale must have the codes' rank");
      for (std::size_t i = 0; i < q.shape.size(); ++i) {
        const std::int64_t want =
            i == a ? (q.shape[i] + q.block_size - 1) / q.block_size : q.shape[i];
        if (q.scale_shape[i] != want) fail("blocked scale shape does not fit the codes");
      }
    } else if (q.scale_shape.size() != 1 || q.scale_shape[0] != q.shape[a]) {
      fail("per-axis scale must be 1-D of the axis' length");
    }
  } else if (q.block_size > 0) {
    fail("blocked quantization needs a scale of the codes' rank");
  }
}

int opset_for_type(int data_type) {
  switch (data_type) {
    case kOnnxFloat8E4m3fn:
    case kOnnxFloat8E5m2:
      return 19;
    case kOnnxInt4:
    case kOnnxUint4:
      return 21;
    case kOnnxFloat4E2m1:
      return 23;
    default:
      return 10;
  }
}

int ir_for_opset(int opset) {
  if (opset >= 23) return 11;
  if (opset >= 21) return 10;
  if (opset >= 19) return 9;
  if (opset >= 13) return 7;
  return 5;
}

// ---- raising a node to a newer opset ----

struct NodeParts {
  std::vector<std::string> inputs, outputs;
  std::string name, op_type, domain;
  std::vector<std::pair<std::string, pb::Field>> attributes;
  std::vector<pb::Field> others;  // copied as they are
};

NodeParts parse_node(const pb::Reader& parent, const pb::Field& f) {
  pb::Reader r = parent.sub(f, "node");
  NodeParts n;
  pb::Field g;
  while (r.next(g)) {
    switch (g.number) {
      case 1:
        n.inputs.emplace_back(r.string(g, "input"));
        break;
      case 2:
        n.outputs.emplace_back(r.string(g, "output"));
        break;
      case 3:
        n.name = r.string(g, "name");
        break;
      case 4:
        n.op_type = r.string(g, "op_type");
        break;
      case 7:
        n.domain = r.string(g, "domain");
        break;
      case 5: {
        pb::Reader a = r.sub(g, "attribute");
        pb::Field h;
        std::string name;
        while (a.next(h)) {
          if (h.number == 1) name = a.string(h, "name");
        }
        n.attributes.emplace_back(name, g);
        break;
      }
      default:
        n.others.push_back(g);
    }
  }
  return n;
}

// An attribute's ints (packed or not) or float.
std::vector<std::int64_t> attribute_ints(const pb::Reader& parent, const pb::Field& f) {
  pb::Reader a = parent.sub(f, "attribute");
  pb::Field h;
  std::vector<std::int64_t> out;
  while (a.next(h)) {
    if (h.number == 3 && h.type == pb::WireType::kVarint)
      out.push_back(static_cast<std::int64_t>(h.value));
    if (h.number != 8) continue;
    if (h.type == pb::WireType::kVarint) {
      out.push_back(static_cast<std::int64_t>(h.value));
    } else {
      a.expect(h, pb::WireType::kLen, "ints");
      std::size_t pos = h.offset;
      while (pos < h.offset + h.size) {
        out.push_back(static_cast<std::int64_t>(
            pb::read_varint(a.image(), pos, h.offset + h.size, a.context())));
      }
    }
  }
  return out;
}

std::optional<float> attribute_float(const pb::Reader& parent, const pb::Field& f) {
  pb::Reader a = parent.sub(f, "attribute");
  pb::Field h;
  while (a.next(h)) {
    if (h.number == 2 && h.type == pb::WireType::kFixed32) {
      return std::bit_cast<float>(static_cast<std::uint32_t>(h.value));
    }
  }
  return std::nullopt;
}

class GraphWriter {
 public:
  GraphWriter(std::span<const std::byte> image, std::string source, std::set<std::string> names)
      : image_(image), source_(std::move(source)), names_(std::move(names)) {}

  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int k = 1; names_.count(name) != 0; ++k) name = base + "_" + std::to_string(k);
    names_.insert(name);
    return name;
  }
  void claim(const std::string& name, const std::string& weight) {
    if (!names_.insert(name).second) {
      throw Error(source_ + ": cannot write weight " + quoted(weight) + " as QDQ: the name " +
                  quoted(name) + " is taken");
    }
  }

  // The nodes and initializers of weight `w` as QDQ.
  void add_qdq(const std::string& w, const QdqTensor& q, const std::vector<std::int64_t>& w_shape,
               Msg& nodes) {
    const std::string qn = w + "_quantized", sn = w + "_scale";
    claim(qn, w);
    claim(sn, w);
    initializers_.message_field(
        5, tensor_proto(qn, q.data_type, q.shape, code_bytes(q.data_type, q.codes)));
    std::vector<std::string> inputs{qn, sn};
    if (!q.scale_codes.empty()) {
      const std::string sq = w + "_scale_quantized", ss = w + "_scale_scale";
      claim(sq, w);
      claim(ss, w);
      initializers_.message_field(5, tensor_proto(sq, kOnnxFloat8E4m3fn, q.scale_shape,
                                                  code_bytes(kOnnxFloat8E4m3fn, q.scale_codes)));
      const float s = q.scale_scale;
      initializers_.message_field(5, tensor_proto(ss, kOnnxFloat, {}, float_bytes({&s, 1})));
      nodes.message_field(
          1, node_proto(w + "_scale_DequantizeLinear", "DequantizeLinear", {sq, ss}, {sn}));
    } else {
      initializers_.message_field(
          5, tensor_proto(sn, kOnnxFloat, q.scale_shape, float_bytes(q.scale)));
    }
    if (!q.zero_point.empty()) {
      const std::string zn = w + "_zero_point";
      claim(zn, w);
      initializers_.message_field(
          5, tensor_proto(zn, q.data_type, q.scale_shape, code_bytes(q.data_type, q.zero_point)));
      inputs.push_back(zn);
    }
    std::vector<Attribute> attributes;
    if (!q.scale_shape.empty()) attributes.push_back(int_attribute("axis", q.axis));
    if (q.block_size > 0) attributes.push_back(int_attribute("block_size", q.block_size));
    const bool reshape = q.shape != w_shape;
    const std::string out = reshape ? w + "_dequantized" : w;
    if (reshape) claim(out, w);
    nodes.message_field(
        1, node_proto(w + "_DequantizeLinear", "DequantizeLinear", inputs, {out}, attributes));
    if (reshape) {
      const std::string shape_name = w + "_shape";
      claim(shape_name, w);
      const std::vector<std::int64_t> dims{static_cast<std::int64_t>(w_shape.size())};
      initializers_.message_field(5,
                                  tensor_proto(shape_name, kOnnxInt64, dims, int64_bytes(w_shape)));
      nodes.message_field(1, node_proto(w + "_Reshape", "Reshape", {out, shape_name}, {w}));
    }
  }

  // A node of opset `from` as nodes of opset `to` (appended to `nodes`), or
  // false where its definition is the same in both.
  bool raise_node(const pb::Reader& graph, const pb::Field& f, int from, int to, Msg& nodes) {
    const NodeParts n = parse_node(graph, f);
    if (!(n.domain.empty() || n.domain == "ai.onnx")) return false;
    const std::string& op = n.op_type;
    const std::string where = "node " + quoted(n.name.empty() ? op : n.name) + " (" + op + ")";
    auto crosses = [&](int v) { return from < v && to >= v; };
    // Operators whose float semantics are the same from opset 9 to 23 (a new
    // optional attribute or input, with the old behaviour as its default,
    // or more types).
    static const std::set<std::string, std::less<>> kSame = {"Abs",
                                                             "Add",
                                                             "And",
                                                             "ArgMax",
                                                             "ArgMin",
                                                             "AveragePool",
                                                             "BatchNormalization",
                                                             "Cast",
                                                             "Ceil",
                                                             "Concat",
                                                             "Constant",
                                                             "ConstantOfShape",
                                                             "Conv",
                                                             "ConvTranspose",
                                                             "Cos",
                                                             "DequantizeLinear",
                                                             "Div",
                                                             "Elu",
                                                             "Equal",
                                                             "Erf",
                                                             "Exp",
                                                             "Expand",
                                                             "Flatten",
                                                             "Floor",
                                                             "Gather",
                                                             "Gemm",
                                                             "GlobalAveragePool",
                                                             "GlobalMaxPool",
                                                             "Greater",
                                                             "HardSigmoid",
                                                             "Identity",
                                                             "InstanceNormalization",
                                                             "LeakyRelu",
                                                             "Less",
                                                             "Log",
                                                             "MatMul",
                                                             "Max",
                                                             "MaxPool",
                                                             "Mean",
                                                             "Min",
                                                             "Mul",
                                                             "Neg",
                                                             "Not",
                                                             "Or",
                                                             "PRelu",
                                                             "Pow",
                                                             "QuantizeLinear",
                                                             "Range",
                                                             "Reciprocal",
                                                             "Relu",
                                                             "Reshape",
                                                             "Selu",
                                                             "Shape",
                                                             "Sigmoid",
                                                             "Sign",
                                                             "Sin",
                                                             "Softplus",
                                                             "Softsign",
                                                             "Sqrt",
                                                             "Sub",
                                                             "Sum",
                                                             "Tanh",
                                                             "Tile",
                                                             "Transpose",
                                                             "Where",
                                                             "Xor"};
    static const std::set<std::string, std::less<>> kReduce18 = {
        "ReduceMean", "ReduceMax",    "ReduceMin",       "ReduceProd",     "ReduceL1",
        "ReduceL2",   "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"};
    // Attributes that become INT64 1-D inputs, in input order.
    std::vector<std::string> to_inputs;
    if (op == "Slice" && crosses(10)) to_inputs = {"starts", "ends", "axes"};
    if ((op == "Squeeze" || op == "Unsqueeze") && crosses(13)) to_inputs = {"axes"};
    if (op == "ReduceSum" && crosses(13)) to_inputs = {"axes"};
    if (kReduce18.count(op) != 0 && crosses(18)) to_inputs = {"axes"};
    if (!to_inputs.empty()) {
      rewrite_attributes_to_inputs(graph, n, to_inputs, nodes, where);
      return true;
    }
    if (op == "Clip" && crosses(11)) {
      raise_clip(graph, n, nodes);
      return true;
    }
    if ((op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") && crosses(13)) {
      raise_softmax(graph, n, nodes);
      return true;
    }
    if (kSame.count(op) != 0 || kReduce18.count(op) != 0 || op == "Slice" || op == "Squeeze" ||
        op == "Unsqueeze" || op == "ReduceSum" || op == "Clip" || op == "Softmax" ||
        op == "LogSoftmax" || op == "Hardmax") {
      return false;
    }
    throw Error(source_ + ": cannot raise the model from opset " + std::to_string(from) + " to " +
                std::to_string(to) + " for QDQ: " + where +
                " is not an operator lowp can carry across opsets (convert the model first, e.g. "
                "onnx.version_converter)");
  }

  Msg take_initializers() { return std::move(initializers_); }

 private:
  // The node with the attributes `names` moved to new INT64 inputs (an
  // absent attribute: an empty input name, or none at the end).
  void rewrite_attributes_to_inputs(const pb::Reader& graph, const NodeParts& n,
                                    const std::vector<std::string>& names, Msg& nodes,
                                    const std::string& where) {
    std::vector<std::string> inputs = n.inputs;
    if (inputs.size() != 1) {
      throw Error(source_ + ": " + where + " has " + std::to_string(inputs.size()) +
                  " inputs; expected 1 before opset raise");
    }
    std::vector<std::string> added;
    for (const std::string& name : names) {
      const auto it = std::find_if(n.attributes.begin(), n.attributes.end(),
                                   [&](const auto& a) { return a.first == name; });
      if (it == n.attributes.end()) {
        added.emplace_back();
        continue;
      }
      const std::vector<std::int64_t> v = attribute_ints(graph, it->second);
      const std::string t = fresh((n.outputs.empty() ? n.name : n.outputs[0]) + "_" + name);
      initializers_.message_field(
          5, tensor_proto(t, kOnnxInt64, {static_cast<std::int64_t>(v.size())}, int64_bytes(v)));
      added.push_back(t);
    }
    while (!added.empty() && added.back().empty()) added.pop_back();
    inputs.insert(inputs.end(), added.begin(), added.end());
    write_node(graph, n, inputs, n.outputs, names, nodes);
  }

  void raise_clip(const pb::Reader& graph, const NodeParts& n, Msg& nodes) {
    std::vector<std::string> inputs = n.inputs;
    std::vector<std::string> added;
    for (const char* name : {"min", "max"}) {
      const auto it = std::find_if(n.attributes.begin(), n.attributes.end(),
                                   [&](const auto& a) { return a.first == name; });
      std::optional<float> v;
      if (it != n.attributes.end()) v = attribute_float(graph, it->second);
      if (!v) {
        added.emplace_back();
        continue;
      }
      const std::string t = fresh((n.outputs.empty() ? n.name : n.outputs[0]) + "_" + name);
      initializers_.message_field(5, tensor_proto(t, kOnnxFloat, {}, float_bytes({&*v, 1})));
      added.push_back(t);
    }
    while (!added.empty() && added.back().empty()) added.pop_back();
    inputs.insert(inputs.end(), added.begin(), added.end());
    write_node(graph, n, inputs, n.outputs, {"min", "max"}, nodes);
  }

  // Before opset 13, Softmax(axis a) is the softmax of the input flattened
  // to 2-D [d0·...·d(a-1), da·...] (default a = 1); from 13 it runs along axis
  // a alone. Flatten(a) -> Softmax -> Reshape(Shape(x)) is the old operator
  // exactly, whatever the rank.
  void raise_softmax(const pb::Reader& graph, const NodeParts& n, Msg& nodes) {
    std::int64_t axis = 1;
    for (const auto& [name, f] : n.attributes) {
      if (name == "axis") {
        const std::vector<std::int64_t> v = attribute_ints(graph, f);
        if (!v.empty()) axis = v[0];
      }
    }
    if (n.inputs.size() != 1 || n.outputs.size() != 1) {
      throw Error(source_ + ": " + n.op_type + " node " + quoted(n.name) +
                  " needs one input and one output");
    }
    const std::string& x = n.inputs[0];
    const std::string& y = n.outputs[0];
    const std::string flat = fresh(y + "_flat"), shape = fresh(y + "_input_shape"),
                      soft = fresh(y + "_2d");
    nodes.message_field(1, node_proto(fresh(y + "_Flatten"), "Flatten", {x}, {flat},
                                      {int_attribute("axis", axis)}));
    write_node(graph, n, {flat}, {soft}, {"axis"}, nodes);
    nodes.message_field(1, node_proto(fresh(y + "_Shape"), "Shape", {x}, {shape}));
    nodes.message_field(1, node_proto(fresh(y + "_Reshape"), "Reshape", {soft, shape}, {y}));
  }

  // The node with new inputs and outputs and without the attributes `drop`.
  void write_node(const pb::Reader& graph, const NodeParts& n,
                  const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
                  const std::vector<std::string>& drop, Msg& nodes) {
    Msg m;
    for (const std::string& s : inputs) m.string_field(1, s);
    for (const std::string& s : outputs) m.string_field(2, s);
    if (!n.name.empty()) m.string_field(3, n.name);
    m.string_field(4, n.op_type);
    for (const auto& [name, f] : n.attributes) {
      if (std::find(drop.begin(), drop.end(), name) != drop.end()) continue;
      m.raw(graph.image().subspan(f.tag_offset, f.offset + f.size - f.tag_offset));
    }
    if (!n.domain.empty()) m.string_field(7, n.domain);
    for (const pb::Field& f : n.others) {
      m.raw(graph.image().subspan(f.tag_offset, f.offset + f.size - f.tag_offset));
    }
    nodes.message_field(1, m);
  }

  std::span<const std::byte> image_;
  std::string source_;
  std::set<std::string> names_;
  Msg initializers_;
};

std::span<const std::byte> field_bytes(std::span<const std::byte> image, const pb::Field& f) {
  return image.subspan(f.tag_offset, f.offset + f.size - f.tag_offset);
}

}  // namespace

int qdq_min_opset(const QdqTensor& t) {
  int v = opset_for_type(t.data_type);
  if (t.block_size > 0) v = std::max(v, 21);
  if (!t.scale_codes.empty()) v = std::max(v, 19);
  if (!t.scale_shape.empty()) v = std::max(v, 13);
  return v;
}

void write_onnx_qdq(const std::filesystem::path& path_out, const ModelReader& in,
                    const OnnxQdqReplacement& replacement) {
  if (in.kind() != "onnx") {
    throw Error(path_out.string() + ": QDQ output needs an ONNX model as input, not " +
                std::string(in.kind()));
  }
  if (in.layout() == "onnx-qdq") {
    throw Error(path_out.string() + ": the input already holds QDQ weights");
  }
  // 1. The replacements, and the opset they need.
  std::map<std::string, std::pair<QdqTensor, std::vector<std::int64_t>>, std::less<>> qdq;
  std::set<std::string> names;
  int need = 0;
  for (const TensorInfo& t : in.tensors()) {
    names.insert(t.name);
    if (!t.is_float) continue;
    std::optional<QdqTensor> q = replacement(t);
    if (!q) continue;
    check(t.name, t.shape, *q);
    need = std::max(need, qdq_min_opset(*q));
    qdq.emplace(t.name, std::make_pair(std::move(*q), t.shape));
  }

  const auto* reader = dynamic_cast<const onnx::OnnxReader*>(&in);
  if (reader == nullptr) throw Error(path_out.string() + ": QDQ output needs an ONNX reader");
  const std::span<const std::byte> image = reader->image();
  const std::string& source = reader->source();
  const pb::Context ctx{source, "ModelProto"};

  // 2. The current default opset; the names the graph's nodes produce; which
  // weights are Constant nodes' values.
  int from = 0;
  std::set<std::string, std::less<>> constants;
  {
    pb::Reader r(image, 0, image.size(), ctx);
    pb::Field f;
    while (r.next(f)) {
      if (f.number == 8) {
        const onnx::OpsetId op = onnx::read_opset_id(r.sub(f, "opset_import"));
        if (onnx::is_default_domain(op.domain)) from = static_cast<int>(op.version);
      } else if (f.number == 7) {
        pb::Reader g = r.sub(f, "graph");
        pb::Field h;
        while (g.next(h)) {
          if (h.number != 1) continue;
          const NodeParts n = parse_node(g, h);
          for (const std::string& o : n.outputs) names.insert(o);
          if (n.op_type == "Constant" && onnx::is_default_domain(n.domain) && !n.outputs.empty())
            constants.insert(n.outputs[0]);
        }
      }
    }
  }
  const int to = std::max(from, need);
  if (from < to && from < 9) {
    throw Error(source + ": cannot raise the model from opset " + std::to_string(from) +
                " (below 9) to " + std::to_string(to) + " for QDQ");
  }

  // 3. The graph.
  GraphWriter gw(image, source, names);
  auto rebuild_graph = [&](const pb::Reader& model, const pb::Field& gf) {
    pb::Reader g = model.sub(gf, "graph");
    Msg out;
    pb::Field f;
    bool first_node = true;
    std::set<std::string, std::less<>> written;
    auto initializer_nodes = [&] {
      for (const auto& [name, entry] : qdq) {
        if (constants.count(name) == 0) {
          gw.add_qdq(name, entry.first, entry.second, out);
          written.insert(name);
        }
      }
    };
    while (g.next(f)) {
      if (f.number == 1) {
        if (first_node) {
          initializer_nodes();
          first_node = false;
        }
        const NodeParts n = parse_node(g, f);
        if (n.op_type == "Constant" && onnx::is_default_domain(n.domain) && !n.outputs.empty()) {
          const auto it = qdq.find(n.outputs[0]);
          if (it != qdq.end()) {
            gw.add_qdq(it->first, it->second.first, it->second.second, out);
            written.insert(it->first);
            continue;
          }
        }
        if (from < to && gw.raise_node(g, f, from, to, out)) continue;
        out.raw(field_bytes(image, f));
      } else if (f.number == 5 || f.number == 11) {
        pb::Reader t = g.sub(f, f.number == 5 ? "initializer" : "input");
        pb::Field h;
        std::string_view name;
        while (t.next(h)) {
          if ((f.number == 5 && h.number == 8) || (f.number == 11 && h.number == 1))
            name = t.string(h, "name");
        }
        if (qdq.count(name) == 0) out.raw(field_bytes(image, f));
      } else {
        out.raw(field_bytes(image, f));
      }
    }
    if (first_node) initializer_nodes();
    for (const auto& [name, entry] : qdq) {
      if (written.count(name) == 0) {
        throw Error(source + ": weight " + quoted(name) +
                    " is neither an initializer nor a Constant node's value of the main graph");
      }
    }
    out.raw(gw.take_initializers().bytes());
    return out;
  };

  // 4. The model: ir_version, the default opset and the graph replaced.
  Msg model;
  pb::Reader r(image, 0, image.size(), ctx);
  pb::Field f;
  bool has_default = false;
  while (r.next(f)) {
    if (f.number == 1 && from < to) {
      model.int_field(1, std::max<std::int64_t>(r.int64(f, "ir_version"), ir_for_opset(to)));
    } else if (f.number == 7) {
      model.message_field(7, rebuild_graph(r, f));
    } else if (f.number == 8) {
      const std::string domain = onnx::read_opset_id(r.sub(f, "opset_import")).domain;
      if (onnx::is_default_domain(domain)) {
        has_default = true;
        Msg op;
        if (!domain.empty()) op.string_field(1, domain);
        op.int_field(2, to);
        model.message_field(8, op);
      } else {
        model.raw(field_bytes(image, f));
      }
    } else {
      model.raw(field_bytes(image, f));
    }
  }
  if (!has_default && to > 0) {
    Msg op;
    op.int_field(2, to);
    model.message_field(8, op);
  }
  AtomicFile file(path_out);
  file.write(model.bytes());
  file.commit();
}

}  // namespace lowp::io
