#!/usr/bin/env python3
"""Writes the seed corpus for safetensors_fuzz into fuzz/corpus/safetensors/.

Valid files follow the safetensors layout (u64 LE header length, JSON header
padded with spaces to 8 bytes, data); they cover every dtype, a published
MXFP4 _blocks/_scales pair and lowp's packed tensors. Invalid ones each break
one rule.
"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "safetensors")


def st(entries, data=b"", metadata=None, raw_header=None):
    """entries: list of (name, dtype, shape, nbytes), laid out contiguously."""
    if raw_header is None:
        header = {}
        if metadata:
            header["__metadata__"] = metadata
        offset = 0
        for name, dtype, shape, nbytes in entries:
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
        raw_header = json.dumps(header, separators=(",", ":")).encode()
        raw_header += b" " * ((8 - len(raw_header) % 8) % 8)
    return struct.pack("<Q", len(raw_header)) + raw_header + data


def packed(name, fmt, k, axis, shape, scale_rule="floor", tensor_scale=1.0, element_bits=4, nscales=1):
    count = 1
    for d in shape:
        count *= d
    nbytes = (count * element_bits + 7) // 8
    desc = json.dumps({"format": fmt, "block_size": k, "axis": axis, "shape": shape,
                       "scale_rule": scale_rule, "tensor_scale": tensor_scale})
    entries = [(name, "U8", [nbytes], nbytes), (name + ".scales", "U8", [nscales], nscales)]
    data = bytes((i * 29 + 3) & 0xFF for i in range(nbytes)) + bytes(range(120, 120 + nscales))
    return entries, data, {"lowp." + name: desc}


DTYPES = [("F64", 8), ("F32", 4), ("F16", 2), ("BF16", 2), ("F8_E4M3", 1), ("F8_E5M2", 1), ("F8_E8M0", 1),
          ("I8", 1), ("U8", 1), ("I16", 2), ("U16", 2), ("I32", 4), ("U32", 4), ("I64", 8), ("U64", 8),
          ("BOOL", 1)]

SEEDS = {
    "f32_meta.safetensors": st([("w", "F32", [2, 2], 16), ("b", "F32", [2], 8)],
                               struct.pack("<6f", 1.0, -2.0, 0.5, 3.0, 0.0, -0.0), {"format": "pt"}),
    "all_dtypes.safetensors": st([("t_" + d, d, [2], 2 * s) for d, s in DTYPES],
                                 bytes((i * 7) & 0x7F for i in range(sum(2 * s for _, s in DTYPES)))),
    "mxfp4_pair.safetensors": st([("w_blocks", "U8", [2, 1, 16], 32), ("w_scales", "U8", [2, 1], 2)],
                                 bytes([0x21, 0xF7] + [0x35] * 30) + bytes([126, 255])),
    "mxfp4_dot_pair.safetensors": st([("m.blocks", "U8", [1, 2, 16], 32), ("m.scales", "U8", [1, 2], 2)],
                                     bytes(range(32)) + bytes([127, 130])),
    "empty.safetensors": st([]),
    "bad_overlap.safetensors": st([], b"\0" * 8, raw_header=(
        b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
        b'"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}')),
    "bad_length.safetensors": struct.pack("<Q", 1000) + b'{"a":1}',
}
for name, args in {
    "lowp_mxfp4.safetensors": ("w", "mxfp4", 32, 0, [32], "floor", 1.0, 4, 1),
    "lowp_nvfp4.safetensors": ("nv", "nvfp4", 16, 1, [2, 24], "floor", 0.0625, 4, 4),
    "lowp_mxfp6_axis0.safetensors": ("w6", "mxfp6_e3m2", 32, 0, [32, 2], "rceil", 1.0, 6, 2),
}.items():
    entries, data, meta = packed(*args)
    SEEDS[name] = st(entries, data, meta)

# lowp's packed matrices: codes + scales (+ zero points), {"format", "shape"}.
SEEDS["lowp_int4_group4_asym.safetensors"] = st(
    [("w", "U8", [4], 4), ("w.scales", "F16", [2], 4), ("w.zeros", "U8", [2], 2)],
    bytes([0x98, 0xBA, 0x76, 0x54, 0x00, 0x3C, 0x00, 0x3C, 8, 8]),
    {"lowp.w": json.dumps({"format": "int4:group4:asym", "shape": [1, 8]})})
# A zero point (16) that is not an int4 code: refused when opened (a fuzz find).
SEEDS["lowp_int4_bad_zero.safetensors"] = st(
    [("w", "U8", [4], 4), ("w.scales", "F16", [2], 4), ("w.zeros", "U8", [2], 2)],
    bytes([0x98, 0xBA, 0x76, 0x54, 0x00, 0x3C, 0x00, 0x3C, 8, 16]),
    {"lowp.w": json.dumps({"format": "int4:group4:asym", "shape": [1, 8]})})
SEEDS["lowp_int8_channel.safetensors"] = st(
    [("m", "U8", [6], 6), ("m.scales", "F32", [2], 8)],
    bytes([1, 2, 0x81, 127, 0, 0xFF]) + struct.pack("<2f", 0.5, 0.25),
    {"lowp.m": json.dumps({"format": "int8:channel", "shape": [2, 3]})})
# Chunk statistics (lowp_chunk_stats, lowp/io/chunk_stats.h): x [4, 2] in
# chunks of 2 rows, the second chunk with a NaN.
SEEDS["chunk_stats.safetensors"] = st(
    [("x", "F32", [4, 2], 32)],
    struct.pack("<8f", 1, 2, 3, 4, 5, 6, float("nan"), 8),
    {"lowp_chunk_stats": json.dumps({"version": 1, "tensors": {"x": {
        "rows": 2, "chunks": 2, "min": [1, 5], "max": [4, 8], "amax": [4, 8], "nonfinite": [0, 1]}}},
        separators=(",", ":"))})

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, content in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(content)
    print(f"wrote {len(SEEDS)} seeds to {OUT}")
