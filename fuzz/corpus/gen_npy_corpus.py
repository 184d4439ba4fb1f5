#!/usr/bin/env python3
"""Writes the seed corpus for npy_fuzz into fuzz/corpus/npy/ (no numpy needed).

Valid files follow np.save's layout exactly; invalid ones each break one rule.
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "npy")


def npy(descr, shape, data=b"", fortran=False, major=1, growth=True, raw_dict=None):
    if raw_dict is None:
        shape_repr = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
        raw_dict = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape_repr)
        if growth and shape:
            raw_dict += " " * max(0, 21 - len(str(shape[0])))
    header = raw_dict.encode("utf-8" if major == 3 else "latin-1")
    fmt = "<H" if major == 1 else "<I"
    prefix = 8 + struct.calcsize(fmt)
    hlen = len(header) + 1
    pad = 64 - (prefix + hlen) % 64
    return b"\x93NUMPY" + bytes([major, 0]) + struct.pack(fmt, hlen + pad) + header + b" " * pad + b"\n" + data


SEEDS = {
    "f4_1d.npy": npy("<f4", (3,), struct.pack("<3f", 1.0, -2.0, 0.5)),
    "f8_0d.npy": npy("<f8", (), struct.pack("<d", 3.25)),
    "u1_3d.npy": npy("|u1", (2, 3, 4), bytes(range(24))),
    "bf16_v2.npy": npy("<V2", (2,), b"\x80\x3f\x00\x40"),
    "b1_empty.npy": npy("|b1", (0, 5)),
    "i2_v2.npy": npy("<i2", (2,), b"\x01\x00\xff\xff", major=2),
    "u8_v3.npy": npy("<u8", (1,), struct.pack("<Q", 7), major=3),
    "bad_big_endian.npy": npy(">f4", (1,), b"\0\0\0\0"),
    "bad_fortran.npy": npy("<f4", (1, 1), b"\0\0\0\0", fortran=True),
    "bad_truncated.npy": npy("<i4", (4,), b"\0" * 10),
    "bad_overflow.npy": npy("<f4", (2**62, 2**62)),
    "bad_dict.npy": npy(None, None, raw_dict="{'descr': '<f4', 'shape': (1,, }"),
}

os.makedirs(OUT, exist_ok=True)
for name, content in SEEDS.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(content)
