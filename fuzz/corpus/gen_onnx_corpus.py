#!/usr/bin/env python3
"""Writes the seed corpus for onnx_fuzz into fuzz/corpus/onnx/ (no onnx package needed).

ModelProto images built with a tiny protobuf encoder, the same images the
hand-built cases of tests/io/onnx_test.cc parse (onnx.proto field numbers:
ModelProto 1 ir_version, 2 producer_name, 3 producer_version, 7 graph,
8 opset_import, 14 metadata_props; GraphProto 1 node, 2 name, 5 initializer;
NodeProto 2 output, 3 name, 4 op_type, 5 attribute; AttributeProto 1 name,
5 t, 20 type; TensorProto 1 dims, 2 data_type, 4 float_data, 5 int32_data,
8 name, 9 raw_data, 10 double_data, 14 data_location). Valid files hold a
tensor in every storage the reader knows; invalid ones each break one rule.
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx")

# TensorProto.DataType
FLOAT, INT64, FLOAT16, DOUBLE, BFLOAT16, FLOAT8E4M3FN, FLOAT4E2M1 = 1, 7, 10, 11, 16, 17, 23
UINT4 = 21


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def u(field, v):  # varint field
    return key(field, 0) + varint(v)


def i(field, v):  # int64 field: negative values as their 64-bit two's complement
    return u(field, v & (2**64 - 1))


def s(field, payload):  # length-delimited field (bytes, string or message)
    if isinstance(payload, str):
        payload = payload.encode()
    return key(field, 2) + varint(len(payload)) + payload


def f32(field, v):  # fixed32 field
    return key(field, 5) + struct.pack("<f", v)


def le_floats(values):
    return struct.pack(f"<{len(values)}f", *values)


def tensor(name, data_type, dims):
    t = b"".join(i(1, d) for d in dims) + i(2, data_type)
    return t + s(8, name) if name else t


def constant_node(output, t):
    attr = s(1, "value") + s(5, t) + u(20, 4)  # type TENSOR
    return s(2, output) + s(3, "const_node") + s(4, "Constant") + s(5, attr)


def model(graph):
    opset = s(1, "") + i(2, 13)
    meta = s(1, "author") + s(2, "lowp")
    return i(1, 8) + s(2, "lowp-test") + s(3, "1.0") + s(7, graph) + s(8, opset) + s(14, meta)


def one_tensor(t):
    return model(s(5, t))


def full_model():
    """One tensor in every storage the reader knows."""
    g = s(2, "g")
    g += s(1, constant_node("c0", tensor("", FLOAT, [2]) + s(9, le_floats([0.5, -4.0]))))
    g += s(1, s(1, "x") + s(1, "c0") + s(2, "y") + s(4, "Add"))
    g += s(5, tensor("raw", FLOAT, [2, 3]) + s(9, le_floats([1, 2, 3, 4, 5, 6])))
    g += s(5, tensor("packed", FLOAT, [3]) + s(4, le_floats([-1.5, 0.25, 1e30])))
    g += s(5, tensor("unpacked", FLOAT, [2, 2]) + b"".join(f32(4, x) for x in (7.0, 8.0, 9.0, 10.0)))
    half = varint(0x3C00) + varint(0xC000) + varint(0x7C00)  # 1, -2, inf
    g += s(5, tensor("half", FLOAT16, [3]) + s(5, half))
    g += s(5, tensor("ints", INT64, [2]) + s(9, struct.pack("<qq", 5, -1)))
    g += s(5, tensor("empty", FLOAT, [0, 4]))
    return model(g)


def constant_fp8_fp4():
    g = s(1, constant_node("c", tensor("", BFLOAT16, [2]) + s(9, struct.pack("<HH", 0x3F80, 0xC040))))
    g += s(5, tensor("e4", FLOAT8E4M3FN, [3]) + s(9, b"\x38\xC4\x7F"))
    g += s(5, tensor("f4", FLOAT4E2M1, [3]) + s(9, b"\x72\x0F"))
    return model(g)


def qdq():
    """DequantizeLinear weights (lowp/io/onnx_qdq.h): UINT4 blocks of 4 with a
    zero point, reshaped to [2, 2, 2]; FLOAT4E2M1 under FP8 scales dequantized
    by an FP32 scale (two levels, NVFP4's form)."""
    def node(op, inputs, output, *attrs):
        return (b"".join(s(1, x) for x in inputs) + s(2, output) + s(3, output + "_node") +
                s(4, op) + b"".join(attrs))
    def int_attr(name, v):
        return s(5, s(1, name) + i(3, v) + u(20, 2))
    g = s(2, "g")
    g += s(5, tensor("u_q", UINT4, [2, 4]) + s(9, b"\x10\x32\xFE\x87"))
    g += s(5, tensor("u_s", FLOAT, [2, 1]) + s(9, le_floats([0.5, 2.0])))
    g += s(5, tensor("u_z", UINT4, [2, 1]) + s(9, b"\x38"))
    g += s(5, tensor("u_shape", INT64, [3]) + s(9, struct.pack("<qqq", 2, 2, -1)))
    g += s(1, node("DequantizeLinear", ["u_q", "u_s", "u_z"], "u_2d", int_attr("axis", 1),
                   int_attr("block_size", 4)))
    g += s(1, node("Reshape", ["u_2d", "u_shape"], "u"))
    g += s(5, tensor("f_q", FLOAT4E2M1, [1, 16]) + s(9, bytes(range(0, 256, 32))))
    g += s(5, tensor("f_sq", FLOAT8E4M3FN, [1, 1]) + s(9, b"\x38"))
    g += s(5, tensor("f_ss", FLOAT, []) + s(9, le_floats([0.25])))
    g += s(1, node("DequantizeLinear", ["f_sq", "f_ss"], "f_s"))
    g += s(1, node("DequantizeLinear", ["f_q", "f_s"], "f", int_attr("axis", 1),
                   int_attr("block_size", 16)))
    return model(g)


SEEDS = {
    "qdq.onnx": qdq(),
    "full.onnx": full_model(),
    "raw_only.onnx": one_tensor(tensor("w", FLOAT, [2, 2]) + s(9, le_floats([1, 2, 3, 4]))),
    "constant_fp8_fp4.onnx": constant_fp8_fp4(),
    "double.onnx": one_tensor(tensor("dd", DOUBLE, [1]) + s(10, struct.pack("<d", 2.5))),
    # data_location EXTERNAL: the reader refuses external data.
    "external.onnx": one_tensor(tensor("ext", FLOAT, [2]) + i(14, 1)),
    # raw_data shorter than the dims say.
    "bad_size.onnx": one_tensor(tensor("short", FLOAT, [3]) + s(9, le_floats([1, 2]))),
}

os.makedirs(OUT, exist_ok=True)
for name, content in SEEDS.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(content)
