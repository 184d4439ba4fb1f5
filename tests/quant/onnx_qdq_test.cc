// ONNX QDQ (`--layout onnx-qdq`, lowp/io/onnx_qdq.h): the bytes the writer
// stores (nibble order, scale shapes, opset and IR version, node order), the
// round trip (the reader's DequantizeLinear values equal lowp's --fake values
// of the same format bit for bit), the opset raise's node rewrites, and
// malformed QDQ nodes (one-line errors naming the node). Models are built by
// hand with a tiny protobuf encoder and read back with a tiny decoder.
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "io/pb_builder.h"
#include "lowp/error.h"
#include "lowp/io/layouts.h"
#include "lowp/io/model.h"
#include "lowp/quant/model_quantize.h"
#include "lowp/storage/packed_matrix.h"

namespace lowp {
namespace {

namespace fs = std::filesystem;

using lowp::io::pb_testing::Pb;

std::string le_floats(const std::vector<float>& v) {
  std::string out;
  for (float x : v) {
    const auto u = std::bit_cast<std::uint32_t>(x);
    for (int k = 0; k < 4; ++k) out += static_cast<char>((u >> (8 * k)) & 0xff);
  }
  return out;
}

Pb float_tensor(std::string_view name, const std::vector<std::int64_t>& dims,
                const std::vector<float>& v) {
  Pb t;
  for (std::int64_t d : dims) t.i(1, d);
  t.i(2, 1);
  if (!name.empty()) t.s(8, name);
  t.s(9, le_floats(v));
  return t;
}

Pb raw_tensor(std::string_view name, int type, const std::vector<std::int64_t>& dims,
              const std::string& raw) {
  Pb t;
  for (std::int64_t d : dims) t.i(1, d);
  t.i(2, type);
  t.s(8, name);
  t.s(9, raw);
  return t;
}

Pb node(std::string_view op, const std::vector<std::string>& in,
        const std::vector<std::string>& out, std::string_view name = "") {
  Pb n;
  for (const auto& s : in) n.s(1, s);
  for (const auto& s : out) n.s(2, s);
  if (!name.empty()) n.s(3, name);
  n.s(4, op);
  return n;
}

Pb int_attr(std::string_view name, std::int64_t v) {
  Pb a;
  a.s(1, name).i(3, v).i(20, 2);
  return a;
}
Pb ints_attr(std::string_view name, const std::vector<std::int64_t>& v) {
  Pb a;
  a.s(1, name);
  for (std::int64_t x : v) a.i(8, x);
  a.i(20, 7);
  return a;
}
Pb float_attr(std::string_view name, float v) {
  Pb a;
  a.s(1, name).f32(2, v).i(20, 1);
  return a;
}

std::string model(const Pb& graph, int opset, int ir) {
  Pb op;
  op.s(1, "").i(2, opset);
  Pb m;
  m.i(1, ir).s(2, "lowp-test").m(7, graph).m(8, op);
  return m.b;
}

std::vector<float> ramp(std::size_t n, std::uint32_t seed) {
  std::vector<float> v(n);
  std::uint32_t x = seed;
  for (float& f : v) {
    x = x * 1664525u + 1013904223u;
    f = (static_cast<float>(x >> 8) / 16777216.0f - 0.5f) * 3.0f;
  }
  return v;
}

// ---- a tiny decoder of what the writer wrote ----
struct Field {
  std::uint32_t number;
  int wire;
  std::uint64_t value;
  std::string bytes;
};

std::vector<Field> fields(const std::string& b) {
  std::vector<Field> out;
  std::size_t p = 0;
  auto varint = [&] {
    std::uint64_t v = 0;
    for (int s = 0;; s += 7) {
      const auto c = static_cast<std::uint8_t>(b.at(p++));
      v |= std::uint64_t{c & 0x7fu} << s;
      if (c < 0x80) return v;
    }
  };
  while (p < b.size()) {
    const std::uint64_t k = varint();
    Field f{static_cast<std::uint32_t>(k >> 3), static_cast<int>(k & 7), 0, {}};
    if (f.wire == 0) {
      f.value = varint();
    } else if (f.wire == 2) {
      const std::uint64_t n = varint();
      f.bytes = b.substr(p, n);
      p += n;
    } else if (f.wire == 5) {
      f.bytes = b.substr(p, 4);
      p += 4;
    } else {
      f.bytes = b.substr(p, 8);
      p += 8;
    }
    out.push_back(f);
  }
  return out;
}

struct Tensor {
  std::vector<std::int64_t> dims;
  int type = 0;
  std::string raw;
};
struct Node {
  std::string op;
  std::vector<std::string> in, out;
  std::map<std::string, std::int64_t> ints;
};
struct Decoded {
  std::int64_t ir = 0, opset = 0;
  std::vector<Node> nodes;
  std::map<std::string, Tensor> inits;
  std::vector<std::string> inputs;
};

Decoded decode(const std::string& bytes) {
  Decoded d;
  for (const Field& f : fields(bytes)) {
    if (f.number == 1) d.ir = static_cast<std::int64_t>(f.value);
    if (f.number == 8) {
      for (const Field& g : fields(f.bytes))
        if (g.number == 2) d.opset = static_cast<std::int64_t>(g.value);
    }
    if (f.number != 7) continue;
    for (const Field& g : fields(f.bytes)) {
      if (g.number == 1) {
        Node n;
        for (const Field& h : fields(g.bytes)) {
          if (h.number == 1) n.in.push_back(h.bytes);
          if (h.number == 2) n.out.push_back(h.bytes);
          if (h.number == 4) n.op = h.bytes;
          if (h.number == 5) {
            std::string name;
            std::int64_t v = 0;
            for (const Field& a : fields(h.bytes)) {
              if (a.number == 1) name = a.bytes;
              if (a.number == 3) v = static_cast<std::int64_t>(a.value);
            }
            n.ints[name] = v;
          }
        }
        d.nodes.push_back(n);
      } else if (g.number == 5) {
        Tensor t;
        std::string name;
        for (const Field& h : fields(g.bytes)) {
          if (h.number == 1) t.dims.push_back(static_cast<std::int64_t>(h.value));
          if (h.number == 2) t.type = static_cast<int>(h.value);
          if (h.number == 8) name = h.bytes;
          if (h.number == 9) t.raw = h.bytes;
        }
        d.inits[name] = t;
      } else if (g.number == 11) {
        for (const Field& h : fields(g.bytes))
          if (h.number == 1) d.inputs.push_back(h.bytes);
      }
    }
  }
  return d;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("lowp_onnx_qdq_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

// A graph with weights of every geometry: a 3x3 convolution's weight and a
// 1x1 one as Constant nodes, a MatMul weight [K, N] as an initializer (also
// listed in graph.input), a bias that stays.
const std::vector<float> kConv = ramp(4 * 2 * 3 * 3, 1);
const std::vector<float> kPointwise = ramp(4 * 64, 2);
const std::vector<float> kMatMul = ramp(64 * 32, 3);

std::string weights_model(int opset = 13) {
  Pb g;
  g.s(2, "g");
  Pb c1, c2;
  c1.s(1, "value").m(5, float_tensor("", {4, 2, 3, 3}, kConv)).i(20, 4);
  c2.s(1, "value").m(5, float_tensor("", {4, 64, 1, 1}, kPointwise)).i(20, 4);
  g.m(1, node("Relu", {"x"}, {"x1"}));
  g.m(1, node("Constant", {}, {"conv_w"}).m(5, c1));
  g.m(1, node("Conv", {"x1", "conv_w"}, {"y1"}));
  g.m(1, node("Constant", {}, {"pw_w"}).m(5, c2));
  g.m(1, node("Conv", {"y1", "pw_w"}, {"y2"}));
  g.m(1, node("MatMul", {"y2", "mm_w"}, {"y"}));
  g.m(5, float_tensor("mm_w", {64, 32}, kMatMul));
  g.m(5, float_tensor("bias", {4}, {1, 2, 3, 4}));
  g.m(11, Pb{}.s(1, "x"));
  g.m(11, Pb{}.s(1, "mm_w"));
  return model(g, opset, 7);
}

fs::path write_input(const TempDir& dir, const std::string& image, const std::string& name) {
  const fs::path p = dir.path / name;
  std::ofstream(p, std::ios::binary) << image;
  return p;
}

ModelReport quantize(const fs::path& in, const fs::path& out, const std::string& format, bool fake,
                     int axis = -1, std::vector<std::string> include = {}) {
  QuantizeRequest req;
  req.format = format;
  req.output_kind = "onnx";
  req.fake = fake;
  req.axis = axis;
  req.include = std::move(include);
  if (!fake) req.layout = io::Layout::kOnnxQdq;
  return quantize_model(*io::open_model(in), out, req);
}

std::vector<std::int8_t> int4_codes(const PackedMatrix& m) {
  std::vector<std::int8_t> out;
  const std::size_t rb = PackedMatrix::row_bytes(m.format(), m.cols());
  for (std::size_t r = 0; r < m.rows(); ++r) {
    for (std::size_t c = 0; c < m.cols(); ++c) {
      const std::uint8_t b = m.codes()[r * rb + c / 2];
      const int nib = c % 2 == 0 ? (b & 0xF) : (b >> 4);
      out.push_back(static_cast<std::int8_t>(nib >= 8 ? nib - 16 : nib));
    }
  }
  return out;
}

TEST(OnnxQdq, Int4GroupBytes) {
  TempDir dir;
  const fs::path in = write_input(dir, weights_model(), "m.onnx");
  const fs::path out = dir.path / "q.onnx";
  quantize(in, out, "int4:group32", false);
  const Decoded d = decode(read_file(out));
  EXPECT_EQ(d.opset, 21);
  EXPECT_EQ(d.ir, 10);
  // The initializer's DequantizeLinear comes first; mm_w left graph.input.
  ASSERT_GE(d.nodes.size(), 2u);
  EXPECT_EQ(d.nodes[0].op, "DequantizeLinear");
  EXPECT_EQ(d.nodes[0].out, std::vector<std::string>{"mm_w"});
  EXPECT_EQ(d.nodes[0].ints.at("axis"), 1);
  EXPECT_EQ(d.nodes[0].ints.at("block_size"), 32);
  EXPECT_EQ(d.inputs, std::vector<std::string>{"x"});
  EXPECT_EQ(d.inits.count("mm_w"), 0u);
  EXPECT_EQ(d.inits.count("bias"), 1u);
  // Codes: INT4, two per byte, element 2i in the low nibble; the scale
  // [64, 1] holds the FP16 group scales widened.
  const Tensor& q = d.inits.at("mm_w_quantized");
  EXPECT_EQ(q.type, 22);
  EXPECT_EQ(q.dims, (std::vector<std::int64_t>{64, 32}));
  ASSERT_EQ(q.raw.size(), 64u * 32 / 2);
  const PackedMatrix m =
      PackedMatrix::quantize(parse_matrix_format("int4:group32"), kMatMul, 64, 32);
  const std::vector<std::int8_t> codes = int4_codes(m);
  for (std::size_t k = 0; k < codes.size(); ++k) {
    const auto b = static_cast<std::uint8_t>(q.raw[k / 2]);
    const int nib = k % 2 == 0 ? (b & 0xF) : (b >> 4);
    ASSERT_EQ(nib, codes[k] & 0xF) << k;
  }
  const Tensor& s = d.inits.at("mm_w_scale");
  EXPECT_EQ(s.type, 1);
  EXPECT_EQ(s.dims, (std::vector<std::int64_t>{64, 1}));
  for (std::size_t r = 0; r < 64; ++r) {
    float v;
    std::memcpy(&v, s.raw.data() + 4 * r, 4);
    EXPECT_EQ(v, decode_f32(kFp16, m.scales().group[r]));
  }
  // The 1x1 convolution keeps its shape (blocks along axis 1, scale
  // [4, 2, 1, 1]); the 3x3 one is stored as its 2-D view [4, 18] (one
  // partial block) and reshaped back, where its Constant node was.
  EXPECT_EQ(d.inits.at("pw_w_scale").dims, (std::vector<std::int64_t>{4, 2, 1, 1}));
  EXPECT_EQ(d.inits.at("conv_w_quantized").dims, (std::vector<std::int64_t>{4, 18}));
  EXPECT_EQ(d.inits.at("conv_w_scale").dims, (std::vector<std::int64_t>{4, 1}));
  std::vector<std::string> ops;
  for (const Node& n : d.nodes) ops.push_back(n.op);
  EXPECT_EQ(ops,
            (std::vector<std::string>{"DequantizeLinear", "Relu", "DequantizeLinear", "Reshape",
                                      "Conv", "DequantizeLinear", "Conv", "MatMul"}));
  // Read back: listed as DequantizeLinear outputs, inputs unlisted.
  const auto r = io::open_model(out);
  EXPECT_EQ(r->layout(), "onnx-qdq");
  const io::TensorInfo* t = r->find("conv_w");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, "INT4 (QDQ block 32)");
  EXPECT_EQ(t->shape, (std::vector<std::int64_t>{4, 2, 3, 3}));
  EXPECT_EQ(r->find("conv_w_quantized"), nullptr);
  EXPECT_EQ(r->find("mm_w_scale"), nullptr);
}

// Every format's DequantizeLinear values equal lowp's own --fake values.
TEST(OnnxQdq, RoundTripEqualsFakeQuantBitForBit) {
  TempDir dir;
  const fs::path in = write_input(dir, weights_model(), "m.onnx");
  struct Case {
    std::string format;
    int axis;
    int opset;
    std::string dtype;  // of mm_w
  };
  const std::vector<Case> cases = {
      {"int4:group32", -1, 21, "INT4 (QDQ block 32)"},
      {"int4:group16:asym", -1, 21, "UINT4 (QDQ block 16)"},
      {"int3:group32", -1, 21, "INT4 (QDQ block 32)"},
      {"int8:group32", -1, 21, "INT8 (QDQ block 32)"},
      {"fp4_e2m1", -1, 23, "FLOAT4E2M1 (QDQ tensor)"},
      {"mxfp8_e5m2", 0, 21, "FLOAT8E5M2 (QDQ block 32)"},
      {"int8:group32:asym", -1, 21, "UINT8 (QDQ block 32)"},
      {"int8:channel", -1, 13, "INT8 (QDQ axis 0)"},
      {"int8:tensor", -1, 13, "INT8 (QDQ tensor)"},
      {"fp8_e4m3:tensor", -1, 19, "FLOAT8E4M3FN (QDQ tensor)"},
      {"fp8_e4m3:channel", -1, 19, "FLOAT8E4M3FN (QDQ axis 0)"},
      {"fp8_e5m2", -1, 19, "FLOAT8E5M2 (QDQ tensor)"},
      {"mxfp8_e4m3", -1, 21, "FLOAT8E4M3FN (QDQ block 32)"},
      {"mxfp4", -1, 23, "FLOAT4E2M1 (QDQ block 32)"},
      {"mxfp4", 0, 23, "FLOAT4E2M1 (QDQ block 32)"},
      {"nvfp4", -1, 23, "FLOAT4E2M1 (QDQ block 16)"},
      {"nvfp4", 0, 23, "FLOAT4E2M1 (QDQ block 16)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.format + " axis " + std::to_string(c.axis));
    const fs::path q = dir.path / "q.onnx", f = dir.path / "f.onnx";
    // --axis 0 applies to the [K, N] MatMul weight only.
    const std::vector<std::string> include =
        c.axis == 0 ? std::vector<std::string>{"mm_w"} : std::vector<std::string>{};
    quantize(in, q, c.format, false, c.axis, include);
    quantize(in, f, c.format, true, c.axis, include);
    const auto rq = io::open_model(q), rf = io::open_model(f);
    EXPECT_EQ(decode(read_file(q)).opset, c.opset);
    EXPECT_EQ(rq->find("mm_w")->dtype, c.dtype);
    for (const std::string name : {"conv_w", "pw_w", "mm_w", "bias"}) {
      if (c.axis == 0 && name != "mm_w") continue;
      const io::TensorInfo* a = rq->find(name);
      const io::TensorInfo* b = rf->find(name);
      ASSERT_NE(a, nullptr) << name;
      ASSERT_NE(b, nullptr) << name;
      EXPECT_EQ(a->shape, b->shape) << name;
      const std::vector<float> va = rq->read_f32(*a), vb = rf->read_f32(*b);
      ASSERT_EQ(va.size(), vb.size()) << name;
      std::size_t differ = 0;
      for (std::size_t k = 0; k < va.size(); ++k) {
        differ += std::bit_cast<std::uint32_t>(va[k]) != std::bit_cast<std::uint32_t>(vb[k]);
      }
      EXPECT_EQ(differ, 0u) << name;
    }
  }
}

TEST(OnnxQdq, Nvfp4TwoLevelScalesAndFp4Nibbles) {
  TempDir dir;
  const fs::path in = write_input(dir, weights_model(), "m.onnx");
  const fs::path out = dir.path / "q.onnx";
  quantize(in, out, "nvfp4", false, -1, {"mm_w"});
  const Decoded d = decode(read_file(out));
  EXPECT_EQ(d.opset, 23);
  EXPECT_EQ(d.ir, 11);
  EXPECT_EQ(d.nodes[0].op, "DequantizeLinear");
  EXPECT_EQ(d.nodes[0].in, (std::vector<std::string>{"mm_w_scale_quantized", "mm_w_scale_scale"}));
  EXPECT_EQ(d.nodes[0].out, std::vector<std::string>{"mm_w_scale"});
  EXPECT_EQ(d.nodes[1].in, (std::vector<std::string>{"mm_w_quantized", "mm_w_scale"}));
  EXPECT_EQ(d.nodes[1].ints.at("block_size"), 16);
  EXPECT_EQ(d.inits.at("mm_w_scale_quantized").type, 17);
  EXPECT_EQ(d.inits.at("mm_w_scale_quantized").dims, (std::vector<std::int64_t>{64, 2}));
  EXPECT_EQ(d.inits.at("mm_w_scale_scale").dims, std::vector<std::int64_t>{});
  const Tensor& q = d.inits.at("mm_w_quantized");
  EXPECT_EQ(q.type, 23);
  const PackedMatrix m = PackedMatrix::quantize(parse_matrix_format("nvfp4"), kMatMul, 64, 32);
  // lowp's own stream is also element 2i low: the bytes are the same.
  EXPECT_EQ(0, std::memcmp(q.raw.data(), m.codes().data(), q.raw.size()));
  EXPECT_EQ(0, std::memcmp(d.inits.at("mm_w_scale_quantized").raw.data(), m.scales().block.data(),
                           m.scales().block.size()));
}

// Raising opset 9 to 19 rewrites the operators whose signature changed.
TEST(OnnxQdq, RaisesOldOpsets) {
  TempDir dir;
  Pb g;
  g.s(2, "g");
  g.m(1, node("Clip", {"x"}, {"c"}).m(5, float_attr("min", 0.0f)).m(5, float_attr("max", 6.0f)));
  g.m(1, node("Slice", {"c"}, {"s"})
             .m(5, ints_attr("axes", {0}))
             .m(5, ints_attr("starts", {1}))
             .m(5, ints_attr("ends", {2})));
  g.m(1, node("Squeeze", {"s"}, {"q"}).m(5, ints_attr("axes", {0})));
  g.m(1, node("ReduceMean", {"q"}, {"r"}).m(5, ints_attr("axes", {-1})));
  g.m(1, node("MatMul", {"r", "w"}, {"mm"}));
  g.m(1, node("Softmax", {"mm"}, {"y"}, "sm").m(5, int_attr("axis", 1)));
  g.m(5, float_tensor("w", {4, 4}, ramp(16, 5)));
  const fs::path in = write_input(dir, model(g, 9, 4), "old.onnx");
  const fs::path out = dir.path / "q.onnx";
  quantize(in, out, "fp8_e4m3:tensor", false);
  const Decoded d = decode(read_file(out));
  EXPECT_EQ(d.opset, 19);
  EXPECT_EQ(d.ir, 9);
  std::map<std::string, const Node*> by_op;
  for (const Node& n : d.nodes) by_op[n.op] = &n;
  ASSERT_EQ(by_op["Clip"]->in.size(), 3u);
  EXPECT_TRUE(by_op["Clip"]->ints.empty());
  const Tensor& clip_max = d.inits.at(by_op["Clip"]->in[2]);
  float v;
  std::memcpy(&v, clip_max.raw.data(), 4);
  EXPECT_EQ(v, 6.0f);
  EXPECT_EQ(by_op["Slice"]->in.size(), 4u);  // data, starts, ends, axes
  EXPECT_EQ(by_op["Squeeze"]->in.size(), 2u);
  EXPECT_EQ(by_op["ReduceMean"]->in.size(), 2u);
  EXPECT_EQ(d.inits.at(by_op["ReduceMean"]->in[1]).type, 7);
  // Softmax-1 along axis 1 is Flatten(1) -> Softmax -> Reshape(Shape(x)).
  EXPECT_EQ(by_op["Flatten"]->ints.at("axis"), 1);
  EXPECT_EQ(by_op["Softmax"]->in, by_op["Flatten"]->out);
  EXPECT_EQ(by_op["Reshape"]->out, std::vector<std::string>{"y"});
  // An operator lowp cannot carry across opsets is refused, naming the node.
  Pb bad;
  bad.m(1, node("Upsample", {"x", "sc"}, {"u"}, "up"));
  bad.m(5, float_tensor("w", {4, 4}, ramp(16, 5)));
  const fs::path bad_in = write_input(dir, model(bad, 9, 4), "bad.onnx");
  try {
    quantize(bad_in, out, "fp8_e4m3:tensor", false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("node 'up' (Upsample)"), std::string::npos) << e.what();
  }
}

std::string qdq_model(const std::vector<std::int64_t>& scale_dims, std::size_t scale_count,
                      bool with_scale = true, std::int64_t block_size = 0) {
  Pb g;
  g.s(2, "g");
  g.m(5, raw_tensor("w_q", 3, {2, 4}, std::string("\x01\x02\x03\x04\xff\xfe\xfd\x80", 8)));
  if (with_scale) g.m(5, float_tensor("w_s", scale_dims, std::vector<float>(scale_count, 0.5f)));
  std::vector<std::string> in = {"w_q"};
  if (with_scale) in.push_back("w_s");
  Pb dq = node("DequantizeLinear", in, {"w"}, "dq_w");
  if (block_size != 0) {
    dq.m(5, int_attr("axis", 1)).m(5, int_attr("block_size", block_size));
  } else {
    dq.m(5, int_attr("axis", 0));
  }
  g.m(1, dq);
  return model(g, 13, 7);
}

TEST(OnnxQdq, ReaderValuesAndBadNodes) {
  const std::string good = qdq_model({2}, 2);
  const auto r =
      io::parse_onnx({reinterpret_cast<const std::byte*>(good.data()), good.size()}, "t.onnx");
  ASSERT_EQ(r->tensors().size(), 1u);
  EXPECT_EQ(r->tensors()[0].dtype, "INT8 (QDQ axis 0)");
  EXPECT_EQ(r->read_f32(r->tensors()[0]),
            (std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f, -0.5f, -1.0f, -1.5f, -64.0f}));
  auto error_of = [](const std::string& image) {
    try {
      io::parse_onnx({reinterpret_cast<const std::byte*>(image.data()), image.size()}, "t.onnx");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of(qdq_model({3}, 3)),
            "t.onnx: DequantizeLinear node 'dq_w': scale 'w_s' has shape [3], expected [2]");
  EXPECT_EQ(error_of(qdq_model({}, 0, false)),
            "t.onnx: DequantizeLinear node 'dq_w': has no scale input");
  EXPECT_EQ(error_of(qdq_model({2, 2}, 4, true, 4)),
            "t.onnx: DequantizeLinear node 'dq_w': scale 'w_s' has shape [2, 2], expected [2, 1]");
  EXPECT_EQ(error_of(qdq_model({2, 1}, 2, true, -3)),
            "t.onnx: DequantizeLinear node 'dq_w': negative block_size");
  // A block_size past the axis (even INT64_MAX) is one block: no overflow.
  const std::string huge = qdq_model({2, 1}, 2, true, std::numeric_limits<std::int64_t>::max());
  const auto h =
      io::parse_onnx({reinterpret_cast<const std::byte*>(huge.data()), huge.size()}, "t.onnx");
  EXPECT_EQ(h->read_f32(h->tensors()[0]), r->read_f32(r->tensors()[0]));
}

TEST(OnnxQdq, Refusals) {
  TempDir dir;
  const fs::path in = write_input(dir, weights_model(), "m.onnx");
  const fs::path q = dir.path / "q.onnx";
  EXPECT_THROW(quantize(in, q, "fp4_e2m1:group32:asym", false), Error);  // two scales
  EXPECT_THROW(quantize(in, q, "mxfp6_e3m2", false), Error);             // no ONNX type
  quantize(in, q, "int8:channel", false);
  // A QDQ model is not quantized again, by either writer.
  EXPECT_THROW(quantize(q, dir.path / "r.onnx", "int8:channel", false), Error);
  EXPECT_THROW(quantize(q, dir.path / "r.onnx", "fp8_e4m3", true), Error);
}

}  // namespace
}  // namespace lowp
