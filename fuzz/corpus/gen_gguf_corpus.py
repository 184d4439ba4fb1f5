#!/usr/bin/env python3
"""Writes the seed corpus for gguf_fuzz into fuzz/corpus/gguf/ (no gguf-py needed).

Valid files follow ggml's layout (docs/gguf.md); invalid ones each break one rule.
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gguf")


def s(text):
    b = text.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return s(key) + struct.pack("<I", vtype) + payload


def tinfo(name, ne, gtype, offset):
    return s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne) + struct.pack("<IQ", gtype, offset)


def pad(b, align=32):
    return b + b"\0" * (-len(b) % align)


def gguf(kvs=(), tensors=(), data=b"", version=3, align=32):
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs) + b"".join(tensors)
    return pad(head, align) + data


q8 = struct.pack("<H", 0x3800) + bytes((q & 0xFF) for q in range(-3, 29))
q4 = struct.pack("<H", 0x4000) + bytes(j | ((15 - j) << 4) for j in range(16))
mx = bytes([128]) + bytes(j | ((15 - j) << 4) for j in range(16))
# ggml's block_nvfp4: four UE4M3 scales (1.0, 2^-9, 0x7F, 0xB8), 32 code bytes.
nv = bytes([0x38, 0x01, 0x7F, 0xB8]) + bytes((j % 8) | ((15 - j % 8) << 4) for j in range(32))


def every_quant_type():
    # (ggml type, elements per block, bytes per block)
    types = [(3, 32, 20), (6, 32, 22), (7, 32, 24), (10, 256, 84), (11, 256, 110), (13, 256, 176),
             (14, 256, 210), (20, 32, 18), (23, 256, 136)]
    tensors, data, state = [], b"", 12345
    for i, (gtype, block, size) in enumerate(types):
        tensors.append(tinfo(f"t{i}", [2 * block], gtype, len(data)))
        chunk = bytearray()
        for _ in range(2 * size):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            chunk.append(state >> 16 & 0xFF)
        data += pad(bytes(chunk))
    return gguf(tensors=tensors, data=data)


SEEDS = {
    "kv_all_types.gguf": gguf(kvs=[
        kv("u8", 0, b"\xc8"), kv("i8", 1, b"\xfe"), kv("u16", 2, b"\xff\xff"), kv("i16", 3, b"\x00\x80"),
        kv("u32", 4, struct.pack("<I", 7)), kv("i32", 5, struct.pack("<i", -7)), kv("f32", 6, struct.pack("<f", 0.1)),
        kv("bool", 7, b"\x01"), kv("str", 8, s("llama")),
        kv("arr", 9, struct.pack("<IQ", 8, 2) + s("a") + s("b")), kv("u64", 10, struct.pack("<Q", 1 << 40)),
        kv("i64", 11, struct.pack("<q", -5)), kv("f64", 12, struct.pack("<d", -2.5)),
        kv("nested", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 4, 1) + struct.pack("<I", 3)),
    ]),
    "f32_2x3.gguf": gguf(tensors=[tinfo("w", [3, 2], 0, 0)], data=struct.pack("<6f", 1, 2, 3, 4, 5, 6)),
    "f16_bf16.gguf": gguf(tensors=[tinfo("h", [4], 1, 0), tinfo("b", [2], 30, 32)],
                          data=pad(struct.pack("<4H", 0x3C00, 0xC000, 0x7C00, 1)) + struct.pack("<2H", 0x3F80, 0xC0A0)),
    "q8_0.gguf": gguf(tensors=[tinfo("q", [32], 8, 0)], data=q8),
    "q4_0_mxfp4.gguf": gguf(tensors=[tinfo("q", [32, 1], 2, 0), tinfo("m", [32], 39, 32)], data=pad(q4) + mx),
    "align64_v2.gguf": gguf(kvs=[kv("general.alignment", 4, struct.pack("<I", 64))],
                            tensors=[tinfo("a", [2], 0, 0), tinfo("b", [1], 0, 64)],
                            data=pad(struct.pack("<2f", 1, 2), 64) + struct.pack("<f", 3), version=2, align=64),
    # NVFP4 tensors with their F32 ".scale" tensors (llama.cpp's converter's
    # naming; the per-expert form holds one value per outermost slice).
    "nvfp4_scale.gguf": gguf(tensors=[tinfo("w.weight", [64, 2], 40, 0), tinfo("w.scale", [1], 0, 96),
                                      tinfo("e.weight", [64, 1, 2], 40, 128), tinfo("e.scale", [2], 0, 224)],
                             data=pad(nv + nv) + struct.pack("<f", 0.25) + bytes(28) + pad(nv + nv)
                             + struct.pack("<2f", 2.0, -1.5)),
    "q4_k_listed.gguf": gguf(tensors=[tinfo("k", [256], 12, 0)], data=bytes(144)),
    # One tensor of every other quantized type read_f32 decodes, filled with
    # fixed pseudo-random bytes (fp16 NaN/Inf scales, every Q3_K/IQ4_XS scale bit).
    "quants_every_type.gguf": every_quant_type(),
    "bad_overlap.gguf": gguf(tensors=[tinfo("a", [16], 0, 0), tinfo("b", [1], 0, 32)], data=bytes(64)),
    "bad_count.gguf": b"GGUF" + struct.pack("<IQQ", 3, 1 << 60, 0),
}

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} files to {OUT}")
