#!/usr/bin/env python3
"""End-to-end tests of the `lowp` tool: every verb, and every bad-input case.

Runs the binary named by $LOWP as a user would. Uses only the standard library:
.npy files are written and read here with `struct`, so the tests do not depend on
numpy (and do not trust lowp's own npy code to check itself).
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import unittest

LOWP = os.environ.get("LOWP", "build/bin/lowp")
SOURCE_DIR = os.environ.get("LOWP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def npy_bytes(descr, shape, payload, version=1, fortran=False):
    shape_text = "(" + "".join(f"{d}, " for d in shape).rstrip(" ") + ")" if len(shape) != 1 else f"({shape[0]},)"
    if len(shape) == 0:
        shape_text = "()"
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, "True" if fortran else "False", shape_text)
    prefix = 10 if version == 1 else 12
    pad = 64 - (prefix + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    if version == 1:
        head = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header))
    else:
        head = b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(header))
    return head + header.encode("latin1") + payload


def write_npy(path, descr, shape, payload, **kw):
    with open(path, "wb") as f:
        f.write(npy_bytes(descr, shape, payload, **kw))


def read_npy(path):
    data = open(path, "rb").read()
    assert data[:6] == b"\x93NUMPY", data[:10]
    if data[6] == 1:
        hlen = struct.unpack("<H", data[8:10])[0]
        start = 10
    else:
        hlen = struct.unpack("<I", data[8:12])[0]
        start = 12
    header = eval(data[start:start + hlen].decode("latin1"))  # a Python dict literal
    assert (start + hlen) % 64 == 0, "data is 64-byte aligned as numpy writes it"
    return header["descr"], header["shape"], data[start + hlen:]


def f32(values):
    return struct.pack(f"<{len(values)}f", *values)


def run(*args):
    return subprocess.run([LOWP, *args], capture_output=True, text=True)


def under_ci():
    return os.environ.get("CI") in ("true", "1")


def skip_unless_ci(test, reason):
    """Skips `test` (listed in $LOWP_SKIP_LOG for scripts/test.sh's summary), or
    fails it under CI (CI=true), where nothing may pass by skipping."""
    if under_ci():
        test.fail(f"{reason} (CI=true: skipping is not allowed)")
    log = os.environ.get("LOWP_SKIP_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"cli_test {test.id()}: {reason}\n")
    test.skipTest(reason)


# An independent decoder for E4M3 (OCP OFP8 v1.0): bias 7, NaN = S.1111.111.
def e4m3_value(code):
    s = -1.0 if code & 0x80 else 1.0
    e = (code >> 3) & 0xF
    m = code & 7
    if e == 15 and m == 7:
        return math.nan
    if e == 0:
        return s * m * 2.0 ** -9
    return s * (1 + m / 8) * 2.0 ** (e - 7)


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def assert_fails(self, args, message_part, out=None):
        """Exit 1, one line on stderr naming the problem, and no output file."""
        before = set(os.listdir(self.dir))
        r = run(*args)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("lowp: error: "), lines[0])
        self.assertIn(message_part, lines[0])
        self.assertEqual(r.stdout, "")
        if out is not None:
            self.assertFalse(os.path.exists(out), "an output file was left behind")
        self.assertEqual(set(os.listdir(self.dir)), before, "stray files left behind")
        return lines[0]


class Formats(Base):
    def test_table(self):
        r = run("formats")
        self.assertEqual(r.returncode, 0, r.stderr)
        row = next(l for l in r.stdout.splitlines() if l.startswith("fp8_e4m3 "))
        self.assertIn("448", row)
        self.assertIn("0x7F 0xFF", row)
        self.assertIn("e8m0", r.stdout)

    def test_json(self):
        r = run("formats", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        table = {f["name"]: f for f in json.loads(r.stdout)}
        self.assertGreaterEqual(len(table), 32)
        self.assertEqual(table["fp8_e5m2"]["max_finite"], 57344)
        self.assertEqual(table["fp8_e5m2"]["inf_codes"], "0x7C 0xFC")
        self.assertEqual(table["fp8_e4m3fnuz"]["nan_codes"], "0x80")
        self.assertEqual(table["fp4_e2m1"]["nan_codes"], "none")
        self.assertEqual(table["fp6_e2m3"]["min_subnormal"], 0.125)
        self.assertEqual(table["e8m0"]["min_normal"], 2.0 ** -127)
        self.assertEqual(table["int8_sym"]["min"], -127)
        self.assertEqual(table["bf16"]["max_finite"], 3.3895313892515355e38)

    def test_docs_table_is_the_registry(self):
        r = run("formats", "--markdown")
        self.assertEqual(r.returncode, 0, r.stderr)
        docs = open(os.path.join(SOURCE_DIR, "docs", "formats.md")).read()
        self.assertIn(r.stdout, docs, "docs/formats.md is stale: paste `lowp formats --markdown` into it")

    def test_help(self):
        for verb in ("formats", "encode", "decode", "fake-quant", "inspect", "quantize", "bench"):
            r = run(verb, "--help")
            self.assertEqual(r.returncode, 0)
            self.assertIn("Usage", r.stdout)


class Encode(Base):
    def test_e4m3_values_and_shape(self):
        values = [0.0, 1.0, 448.0, 464.0, 500.0, -1.0, math.nan, math.inf, 2.0 ** -10, -0.0, 0.3, -3.1e-3]
        write_npy(self.path("x.npy"), "<f4", (2, 3, 2), f32(values))
        r = run("encode", "--format", "fp8_e4m3", self.path("x.npy"), self.path("y.npy"))
        self.assertEqual(r.returncode, 0, r.stderr)
        descr, shape, data = read_npy(self.path("y.npy"))
        self.assertEqual((descr, shape), ("|u1", (2, 3, 2)))
        self.assertEqual(list(data), [0x00, 0x38, 0x7E, 0x7E, 0x7F, 0xB8, 0x7F, 0x7F, 0x00, 0x80, 0x2A, 0x82])

    def test_saturate_and_rounding_modes(self):
        write_npy(self.path("x.npy"), "<f4", (4,), f32([500.0, -math.inf, 1.0625, -1.0625]))
        out = self.path("y.npy")
        cases = {
            (): [0x7F, 0xFF, 0x38, 0xB8],
            ("--saturate",): [0x7E, 0xFE, 0x38, 0xB8],
            ("--round", "away"): [0x7F, 0xFF, 0x39, 0xB9],
            ("--round", "zero"): [0x7E, 0xFF, 0x38, 0xB8],
        }
        for extra, expected in cases.items():
            r = run("encode", "-f", "fp8_e4m3", *extra, self.path("x.npy"), out)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(list(read_npy(out)[2]), expected, extra)

    def test_stochastic_is_seeded(self):
        x = [1.3] * 4096
        write_npy(self.path("x.npy"), "<f8", (4096,), struct.pack("<4096d", *x))
        outs = {}
        for seed in ("1", "1", "2"):
            out = self.path(f"y{len(outs)}.npy")
            r = run("encode", "-f", "fp6_e2m3", "--round", "stochastic", "--seed", seed, self.path("x.npy"), out)
            self.assertEqual(r.returncode, 0, r.stderr)
            outs[len(outs)] = read_npy(out)[2]
        self.assertEqual(outs[0], outs[1])
        self.assertNotEqual(outs[0], outs[2])
        # only the two neighbours 1.25 (0x0A) and 1.375 (0x0B); 1.3 is 40% of the way up
        self.assertEqual(set(outs[0]), {0x0A, 0x0B})
        ups = outs[0].count(0x0B) / 4096
        self.assertAlmostEqual(ups, 0.4, delta=0.04)

    def test_input_dtypes(self):
        # float16 1.5 = 0x3E00, bfloat16 1.5 = 0x3FC0 (saved by ml_dtypes as '<V2')
        for descr, payload in (("<f2", struct.pack("<H", 0x3E00)), ("<V2", struct.pack("<H", 0x3FC0)),
                               ("<f8", struct.pack("<d", 1.5)), ("<f4", f32([1.5]))):
            write_npy(self.path("x.npy"), descr, (1,), payload)
            r = run("encode", "-f", "fp4_e2m1", self.path("x.npy"), self.path("y.npy"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(list(read_npy(self.path("y.npy"))[2]), [0x3], descr)

    def test_16bit_input_matches_float64_input(self):
        # fp32/bf16/fp16 inputs take the bulk kernels, fp64 the scalar
        # reference: every bf16 and fp16 bit pattern must encode to the same
        # codes as its exact value given as float64.
        bf16 = [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in range(65536)]
        fp16 = list(struct.unpack("<65536e", struct.pack("<65536H", *range(65536))))
        for descr, values in (("<V2", bf16), ("<f2", fp16)):
            write_npy(self.path("h.npy"), descr, (256, 256), struct.pack("<65536H", *range(65536)))
            write_npy(self.path("d.npy"), "<f8", (256, 256), struct.pack("<65536d", *values))
            write_npy(self.path("s.npy"), "<f4", (256, 256), struct.pack("<65536f", *values))
            for args in (("-f", "fp8_e4m3"), ("-f", "fp4_e2m1", "--round", "stochastic", "--seed", "3"),
                         ("-f", "int8", "--round", "away"), ("-f", "e8m0", "--saturate"),
                         ("-f", "bf16", "--round", "zero")):
                outs = []
                for name in ("h", "d", "s"):
                    r = run("encode", *args, self.path(f"{name}.npy"), self.path(f"{name}c.npy"))
                    self.assertEqual(r.returncode, 0, r.stderr)
                    outs.append(read_npy(self.path(f"{name}c.npy")))
                self.assertEqual(outs[0], outs[1], (descr, args))
                self.assertEqual(outs[2], outs[1], (descr, args))

    def test_wide_formats_and_versions(self):
        write_npy(self.path("x.npy"), "<f4", (), f32([1.0]), version=2)
        r = run("encode", "-f", "fp16", self.path("x.npy"), self.path("y.npy"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(read_npy(self.path("y.npy")), ("<u2", (), struct.pack("<H", 0x3C00)))
        write_npy(self.path("x.npy"), "<f4", (1,), f32([1.0]), version=3)
        r = run("encode", "-f", "e8m10", self.path("x.npy"), self.path("y.npy"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(read_npy(self.path("y.npy"))[:2], ("<u4", (1,)))
        self.assertEqual(struct.unpack("<I", read_npy(self.path("y.npy"))[2])[0], 127 << 10)

    def test_empty_array(self):
        write_npy(self.path("x.npy"), "<f4", (0, 5), b"")
        r = run("encode", "-f", "int4", self.path("x.npy"), self.path("y.npy"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(read_npy(self.path("y.npy")), ("|u1", (0, 5), b""))


class Decode(Base):
    def test_all_e4m3_codes(self):
        write_npy(self.path("c.npy"), "|u1", (16, 16), bytes(range(256)))
        for dtype, descr, fmt in (("float32", "<f4", "f"), ("float64", "<f8", "d")):
            r = run("decode", "-f", "fp8_e4m3", "--dtype", dtype, self.path("c.npy"), self.path("v.npy"))
            self.assertEqual(r.returncode, 0, r.stderr)
            got_descr, shape, data = read_npy(self.path("v.npy"))
            self.assertEqual((got_descr, shape), (descr, (16, 16)))
            values = struct.unpack(f"<256{fmt}", data)
            for code, v in enumerate(values):
                want = e4m3_value(code)
                if math.isnan(want):
                    self.assertTrue(math.isnan(v), code)
                else:
                    self.assertEqual(v, want, hex(code))
                    self.assertEqual(math.copysign(1, v), math.copysign(1, want), hex(code))

    def test_round_trip_every_code(self):
        for name, n in (("fp6_e3m2", 64), ("fp4_e2m1", 16), ("int4_sym", 16), ("e8m0", 255)):
            codes = [c for c in range(n) if not (name == "int4_sym" and c == 8)]
            write_npy(self.path("c.npy"), "|u1", (len(codes),), bytes(codes))
            self.assertEqual(run("decode", "-f", name, self.path("c.npy"), self.path("v.npy")).returncode, 0)
            self.assertEqual(run("encode", "-f", name, self.path("v.npy"), self.path("c2.npy")).returncode, 0)
            self.assertEqual(list(read_npy(self.path("c2.npy"))[2]), codes, name)


class FakeQuant(Base):
    def run_fq(self, values, shape, *args, descr="<f4"):
        payload = f32(values) if descr == "<f4" else struct.pack(f"<{len(values)}d", *values)
        write_npy(self.path("x.npy"), descr, shape, payload)
        r = run("fake-quant", *args, self.path("x.npy"), self.path("y.npy"))
        self.assertEqual(r.returncode, 0, r.stderr)
        got_descr, got_shape, data = read_npy(self.path("y.npy"))
        self.assertEqual((got_descr, got_shape), ("<f4", tuple(shape)))
        return list(struct.unpack(f"<{len(values)}f", data))

    def test_worked_example_floor_and_rceil(self):
        # OCP MX: amax 957 in MXFP8-E4M3. floor: X = 2, 957/2 = 478.5 saturates to 448 -> 896.
        # rceil: X = 4, 957/4 = 239.25 rounds to 240 -> 960.
        block = [957.0] + [1.0] * 31
        self.assertEqual(self.run_fq(block, (32,), "-f", "mxfp8_e4m3")[0], 896.0)
        self.assertEqual(self.run_fq(block, (32,), "-f", "mxfp8_e4m3", "--scale-rule", "rceil")[0], 960.0)

    def test_scalar_format_is_a_plain_cast(self):
        out = self.run_fq([1.0625, 500.0, 0.3], (3,), "-f", "fp8_e4m3")
        self.assertEqual(out[0], 1.0)
        self.assertTrue(math.isnan(out[1]))
        self.assertEqual(out[2], 0.3125)
        self.assertEqual(self.run_fq([500.0], (1,), "-f", "fp8_e4m3", "--saturate"), [448.0])

    def test_axis_and_partial_blocks(self):
        # A 3x2 array with blocks of 3 along axis 0: column 0 holds 1, 2, 100 (amax 100),
        # column 1 holds tiny values; mxfp4 floor: X = 2^(6-2) = 16 for column 0.
        x = [1.0, 0.001, 2.0, 0.002, 100.0, 0.003]
        out = self.run_fq(x, (3, 2), "-f", "mxfp4", "--axis", "0")
        self.assertEqual(out[0::2], [0.0, 0.0, 96.0])  # 1/16 and 2/16 round to 0; 100/16 = 6.25 -> 6
        self.assertNotEqual(out[1], 0.0)  # column 1 has its own small scale
        # Along the last axis with k = 2 each row is its own block: exact for these values.
        out = self.run_fq([1.0, 2.0, 3.0, 4.0, 6.0, 0.5], (3, 2), "-f", "mxfp4", "--block", "2")
        self.assertEqual(out, [1.0, 2.0, 3.0, 4.0, 6.0, 0.5])

    def test_nvfp4_and_generic_mx(self):
        x = [float(i) for i in range(-8, 8)]
        out = self.run_fq(x, (16,), "-f", "nvfp4")
        self.assertEqual(len(out), 16)
        self.assertEqual(out[8], 0.0)
        out = self.run_fq([0.5, -1.0, 0.25, 1.0], (4,), "-f", "mx:int4:4")
        self.assertEqual(out, [0.5, -1.0, 0.25, 1.0])

    def test_matrix_formats_along_an_axis(self):
        # int8:channel along the last axis: one scale per row, amax / 127.
        x = [127.0, 1.4, -63.6, 1.0, -2.0, 127.0]
        self.assertEqual(self.run_fq(x, (2, 3), "-f", "int8:channel"), [127.0, 1.0, -64.0, 1.0, -2.0, 127.0])
        # The same values along axis 0: columns (127, 1), (1.4, -2), (-63.6, 127).
        out = self.run_fq(x, (2, 3), "-f", "int8:channel", "--axis", "0")
        self.assertEqual(out[0::3], [127.0, 1.0])
        self.assertEqual(out[2::3], [-64.0, 127.0])
        # Asymmetric int4 groups: [0, 15] spans the group's range with 0 as a code.
        out = self.run_fq([0.0, 1.0, 2.0, 15.0], (4,), "-f", "int4:group4:asym")
        self.assertEqual(out, [0.0, 1.0, 2.0, 15.0])
        write_npy(self.path("x.npy"), "<f4", (2, 4), f32([1.0] * 8))
        self.assert_fails(["fake-quant", "-f", "int4:group4", "--round", "zero", self.path("x.npy"), self.path("z.npy")],
                          "do not apply", self.path("z.npy"))
        self.assert_fails(["fake-quant", "-f", "int4:group0", self.path("x.npy"), self.path("z.npy")],
                          "int4:group0", self.path("z.npy"))

    def test_bad_block_options(self):
        write_npy(self.path("x.npy"), "<f4", (2, 4), f32([1.0] * 8))
        out = self.path("y.npy")
        self.assert_fails(["fake-quant", "-f", "mxfp4", "--block", "0", self.path("x.npy"), out], "--block 0", out)
        self.assert_fails(["fake-quant", "-f", "mxfp4", "--block", "5", self.path("x.npy"), out], "length of axis 1 (4)", out)
        self.assert_fails(["fake-quant", "-f", "mxfp4", "--axis", "2", self.path("x.npy"), out], "axis 2 is out of range", out)
        self.assert_fails(["fake-quant", "-f", "mxfp4", "--scale-rule", "up", self.path("x.npy"), out], "unknown scale rule 'up'", out)
        self.assert_fails(["fake-quant", "-f", "fp8_e4m3", "--block", "2", self.path("x.npy"), out], "--block applies to block formats", out)
        self.assert_fails(["fake-quant", "-f", "mx:int4:x", self.path("x.npy"), out], "is not a positive integer", out)
        self.assert_fails(["fake-quant", "-f", "mx:e8m0:32", self.path("x.npy"), out], "scale format", out)
        write_npy(self.path("i.npy"), "|u1", (2,), b"\x01\x02")
        self.assert_fails(["fake-quant", "-f", "mxfp4", self.path("i.npy"), out], "not a float array", out)


def npz_bytes(arrays):
    """A zip of .npy members, as np.savez writes (stored)."""
    import io as _io
    import zipfile
    buf = _io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, (descr, shape, payload) in arrays.items():
            z.writestr(name + ".npy", npy_bytes(descr, shape, payload))
    return buf.getvalue()


def sample_model(path):
    """Two weight matrices, a 3-d tensor and a bias, with deterministic values."""
    import random
    rng = random.Random(7)
    w1 = [rng.gauss(0, 1) for _ in range(64 * 96)]
    w2 = [rng.gauss(0, 0.02) for _ in range(32 * 64)]
    conv = [rng.gauss(0, 0.1) for _ in range(8 * 4 * 3 * 3)]
    bias = [rng.gauss(0, 1) for _ in range(64)]
    with open(path, "wb") as f:
        f.write(npz_bytes({"w1": ("<f4", (64, 96), f32(w1)), "w2": ("<f4", (32, 64), f32(w2)),
                           "conv": ("<f4", (8, 4, 3, 3), f32(conv)), "bias": ("<f4", (64,), f32(bias))}))


class Quantize(Base):
    def test_npz_to_gguf_report_and_inspect(self):
        sample_model(self.path("m.npz"))
        sqnr = {}
        for fmt in ("fp16", "q8_0", "mxfp4"):
            out = self.path(f"m_{fmt}.gguf")
            r = run("quantize", self.path("m.npz"), "-o", out, "-f", fmt, "--report", self.path(f"{fmt}.json"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("SQNR", r.stdout)
            rep = json.load(open(self.path(f"{fmt}.json")))
            rows = {t["name"]: t for t in rep["tensors"]}
            self.assertTrue(rows["w1"]["quantized"])
            self.assertFalse(rows["bias"]["quantized"])  # 1-D: kept
            sqnr[fmt] = rep["totals"]["sqnr_db"]
            info = json.loads(run("inspect", "--json", out).stdout)
            types = {t["name"]: t["dtype"] for t in info["tensors"]}
            self.assertEqual(types["bias"], "F32")
            want = {"fp16": "F16", "q8_0": "Q8_0", "mxfp4": "MXFP4"}[fmt]
            self.assertEqual(types["w1"], want)
            if fmt == "mxfp4":
                # conv's last dimension (3) is not a multiple of 32: GGUF keeps it in F32
                self.assertEqual(types["conv"], "F32")
                self.assertAlmostEqual(rows["w1"]["bits_per_value"], 4.25)
        self.assertGreater(sqnr["fp16"], sqnr["q8_0"])
        self.assertGreater(sqnr["q8_0"], sqnr["mxfp4"])

    def test_npz_to_gguf_nvfp4(self):
        # ggml's NVFP4 (blocks of 64, a UE4M3 scale per 16) with the per-tensor
        # scale in an F32 "<name>.scale" tensor; rows not a multiple of 64 kept.
        sample_model(self.path("m.npz"))
        out, rep_path = self.path("m_nv.gguf"), self.path("nv.json")
        r = run("quantize", self.path("m.npz"), "-o", out, "-f", "nvfp4", "--report", rep_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = {t["name"]: t for t in json.load(open(rep_path))["tensors"]}
        self.assertTrue(rows["w2"]["quantized"])
        self.assertFalse(rows["w1"]["quantized"])  # 96 is not a multiple of 64
        self.assertIn("multiple of 64", rows["w1"]["stored_as"])
        # 4 bits + an 8-bit scale per 16, and the 4-byte tensor scale
        self.assertAlmostEqual(rows["w2"]["bits_per_value"], 4.5 + 32 / (32 * 64))
        info = {t["name"]: t for t in json.loads(run("inspect", "--json", out).stdout)["tensors"]}
        self.assertEqual(info["w2"]["dtype"], "NVFP4")
        self.assertEqual(info["w2"]["bytes"], 32 * 64 // 64 * 36)
        self.assertEqual(info["w2.scale"]["dtype"], "F32")
        self.assertEqual(info["w2.scale"]["shape"], [1])
        self.assertEqual(info["w1"]["dtype"], "F32")
        # Decoded back (ggml's block values times the scale tensor): the
        # report's error is that of these values, and they are within float
        # rounding of lowp's own NVFP4 decoding of the same tensor.
        back, packed, packed_back = self.path("b.safetensors"), self.path("p.safetensors"), self.path("pb.safetensors")
        for args in (["quantize", out, "-o", back, "-f", "fp32", "-q"],
                     ["quantize", self.path("m.npz"), "-o", packed, "-f", "nvfp4", "-q"],
                     ["quantize", packed, "-o", packed_back, "-f", "fp32", "-q"]):
            r = run(*args)
            self.assertEqual(r.returncode, 0, r.stderr)
        got = struct.unpack("<2048f", self.read_safetensors_f32(back)["w2"])
        lowp_own = struct.unpack("<2048f", self.read_safetensors_f32(packed_back)["w2"])
        for a, b in zip(got, lowp_own):
            self.assertLessEqual(abs(a - b), 2 ** -22 * abs(b))
        import random
        rng = random.Random(7)
        [rng.gauss(0, 1) for _ in range(64 * 96)]
        w2 = struct.unpack("<2048f", f32([rng.gauss(0, 0.02) for _ in range(32 * 64)]))
        mse = sum((x - q) ** 2 for x, q in zip(w2, got)) / len(w2)
        self.assertGreater(mse, 0)
        self.assertAlmostEqual(rows["w2"]["mse"] / mse, 1.0, places=6)
        # The scale tensor is in w2's decoded values: a decoded output drops
        # it, a re-quantized NVFP4 GGUF writes one fresh scale tensor, and a
        # w2 copied as NVFP4 keeps its scale tensor.
        self.assertNotIn("w2.scale", self.read_safetensors_f32(back))
        for fmt, has_scale in (("nvfp4", True), ("mxfp4", False)):
            again = self.path(f"again_{fmt}.gguf")
            r = run("quantize", out, "-o", again, "-f", fmt, "-q")
            self.assertEqual(r.returncode, 0, r.stderr)
            names = [t["name"] for t in json.loads(run("inspect", "--json", again).stdout)["tensors"]]
            self.assertEqual(names.count("w2.scale"), 1 if has_scale else 0, (fmt, names))
        kept = self.path("kept.gguf")
        r = run("quantize", out, "-o", kept, "-f", "q8_0", "--exclude", "w2", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        info = {t["name"]: t for t in json.loads(run("inspect", "--json", kept).stdout)["tensors"]}
        self.assertEqual(info["w2"]["dtype"], "NVFP4")
        self.assertIn("w2.scale", info)

    def read_safetensors_f32(self, path):
        data = open(path, "rb").read()
        n = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + n])
        out = {}
        for name, t in header.items():
            if name == "__metadata__":
                continue
            self.assertEqual(t["dtype"], "F32", name)
            b, e = t["data_offsets"]
            out[name] = data[8 + n + b:8 + n + e]
        return out

    def test_safetensors_packed_equals_fake(self):
        # Packed MX in safetensors, decoded by lowp, equals the fake-quantized F32 file.
        sample_model(self.path("m.npz"))
        for fmt in ("mxfp4", "nvfp4", "mxfp6_e2m3", "mx:int4:16"):
            packed, fake, back = self.path("p.safetensors"), self.path("f.safetensors"), self.path("b.safetensors")
            for args in (["-o", packed, "-f", fmt], ["-o", fake, "-f", fmt, "--fake"]):
                r = run("quantize", self.path("m.npz"), *args, "-q")
                self.assertEqual(r.returncode, 0, r.stderr)
            info = {t["name"]: t for t in json.loads(run("inspect", "--json", packed).stdout)["tensors"]}
            self.assertEqual(info["w1"]["dtype"], fmt)
            r = run("quantize", packed, "-o", back, "-f", "fp32", "-q")  # decode the packed tensors to F32
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(self.read_safetensors_f32(back)["w1"], self.read_safetensors_f32(fake)["w1"], fmt)

    def test_safetensors_input_streamed_equals_whole(self):
        # A safetensors input is quantized in pieces of whole rows on all
        # threads (src/quant/model_quantize_safetensors.cc); the same values
        # from an .npz go through the whole-tensor path. Every tensor's bytes
        # and metadata must agree, whatever the shapes: partial blocks, rows
        # that are not a multiple of the piece, rows longer than a piece,
        # rank 3, F32 and BF16 input.
        import random
        rng = random.Random(11)
        shapes = {"a": (37, 100), "b": (5, 9, 40), "c": (1000, 70), "d": (3, 70000), "e": (16, 64)}
        values = {}
        for name, shape in shapes.items():
            n = math.prod(shape)
            raw = struct.unpack(f"<{n}f", f32([rng.gauss(0, 0.05) for _ in range(n)]))
            # Values a BF16 holds exactly, so that both inputs agree.
            values[name] = [struct.unpack("<f", struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0] & 0xFFFF0000))[0]
                            for v in raw]
        with open(self.path("m.npz"), "wb") as f:
            f.write(npz_bytes({k: ("<f4", shapes[k], f32(v)) for k, v in values.items()}))
        with open(self.path("f32.safetensors"), "wb") as f:
            f.write(safetensors_bytes({k: (shapes[k], v) for k, v in values.items()}))
        header, blobs, offset = {}, [], 0
        for k, v in values.items():
            data = b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", x))[0])[2:] for x in v)
            header[k] = {"dtype": "BF16", "shape": list(shapes[k]), "data_offsets": [offset, offset + len(data)]}
            offset += len(data)
            blobs.append(data)
        h = json.dumps(header).encode()
        h += b" " * ((8 - len(h) % 8) % 8)
        with open(self.path("bf16.safetensors"), "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

        def tensors(path):
            data = open(path, "rb").read()
            n = struct.unpack("<Q", data[:8])[0]
            head = json.loads(data[8:8 + n])
            meta = head.pop("__metadata__", {})
            return {k: data[8 + n + t["data_offsets"][0]:8 + n + t["data_offsets"][1]] for k, t in head.items()}, meta

        for fmt in ("mxfp4", "nvfp4", "mxfp6_e3m2", "mxfp8_e4m3", "mx:int8:16"):
            results = {}
            for src in ("m.npz", "f32.safetensors", "bf16.safetensors"):
                out, rep = self.path(src + ".out.safetensors"), self.path(src + ".json")
                r = run("quantize", self.path(src), "-o", out, "-f", fmt, "--threads", "2", "--report", rep, "-q")
                self.assertEqual(r.returncode, 0, r.stderr)
                results[src] = (*tensors(out), {t["name"]: t for t in json.load(open(rep))["tensors"]})
            want_data, want_meta, want_rep = results["m.npz"]
            for src in ("f32.safetensors", "bf16.safetensors"):
                data, meta, rep = results[src]
                self.assertEqual(data, want_data, (fmt, src))
                for k in shapes:
                    self.assertEqual(meta["lowp." + k], want_meta["lowp." + k], (fmt, src, k))
                    self.assertEqual(rep[k]["max_abs_error"], want_rep[k]["max_abs_error"], (fmt, src, k))
                    self.assertAlmostEqual(rep[k]["mse"] / want_rep[k]["mse"], 1.0, places=9, msg=(fmt, src, k))

    def test_safetensors_matrix_formats_packed_equal_fake(self):
        # The scaled matrix spellings of the runtime (lowp/storage/matrix_format.h)
        # are written packed (codes + scales [+ zero points]) and read back exactly.
        sample_model(self.path("m.npz"))
        for fmt, bits in (("int4:group32", 4.5), ("int4:group32:asym", 4.75), ("fp4_e2m1:group32:asym", 5.0),
                          ("int8:channel", 8 + 32 / 96), ("q8_0", 8.5),
                          ("fp8_e4m3:tensor", 8 + 32 / (64 * 96)),
                          # Code books: NF4 with AFPQ's two scales, NF3, dINT4 per channel.
                          ("nf4:group32:asym", 5.0), ("nf3:group32", 3.5), ("dint4:channel", 4 + 32 / 96)):
            packed, fake, back = self.path("p.safetensors"), self.path("f.safetensors"), self.path("b.safetensors")
            for args in (["-o", packed, "-f", fmt, "--report", self.path("r.json")], ["-o", fake, "-f", fmt, "--fake"]):
                r = run("quantize", self.path("m.npz"), *args, "-q")
                self.assertEqual(r.returncode, 0, r.stderr)
            rows = {t["name"]: t for t in json.load(open(self.path("r.json")))["tensors"]}
            self.assertAlmostEqual(rows["w1"]["bits_per_value"], bits, places=6, msg=fmt)
            info = {t["name"]: t for t in json.loads(run("inspect", "--json", packed).stdout)["tensors"]}
            self.assertEqual(info["w1"]["dtype"], fmt)
            self.assertEqual(info["conv"]["shape"], [8, 4, 3, 3])  # stored as its 2-D view [8, 36]
            r = run("quantize", packed, "-o", back, "-f", "fp32", "-q")
            self.assertEqual(r.returncode, 0, r.stderr)
            got, want = self.read_safetensors_f32(back), self.read_safetensors_f32(fake)
            for name in ("w1", "w2"):  # conv (rank 4) is kept
                self.assertEqual(got[name], want[name], (fmt, name))
        self.assert_fails(["quantize", self.path("m.npz"), "-o", self.path("x.gguf"), "-f", "int4:group32"],
                          "GGUF has no tensor type for int4:group32", self.path("x.gguf"))
        self.assert_fails(["quantize", self.path("m.npz"), "-o", self.path("x.safetensors"), "-f", "int4:group32",
                           "--axis", "0"], "--axis 0 does not apply", self.path("x.safetensors"))

    def test_include_exclude_and_min_elements(self):
        sample_model(self.path("m.npz"))
        r = run("quantize", self.path("m.npz"), "-o", self.path("o.gguf"), "-f", "bf16", "--exclude", "w2",
                "--report", self.path("r.json"), "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "")
        rows = {t["name"]: t["quantized"] for t in json.load(open(self.path("r.json")))["tensors"]}
        self.assertEqual(rows, {"w1": True, "w2": False, "conv": True, "bias": False})
        r = run("quantize", self.path("m.npz"), "-o", self.path("o.gguf"), "-f", "bf16", "--include", "w*",
                "--min-elements", "4000", "--report", self.path("r.json"), "-q")
        rows = {t["name"]: t["quantized"] for t in json.load(open(self.path("r.json")))["tensors"]}
        self.assertEqual(rows, {"w1": True, "w2": False, "conv": False, "bias": False})

    def test_bad_requests_leave_nothing(self):
        sample_model(self.path("m.npz"))
        m = self.path("m.npz")
        self.assert_fails(["quantize", m, "-o", self.path("o.bin"), "-f", "mxfp4"], "cannot tell the output format", self.path("o.bin"))
        self.assert_fails(["quantize", m, "-o", self.path("o.gguf"), "-f", "mxfp6_e3m2"], "GGUF has no tensor type for mxfp6_e3m2", self.path("o.gguf"))
        self.assert_fails(["quantize", m, "-o", self.path("o.gguf"), "-f", "int8"], "needs a scale", self.path("o.gguf"))
        self.assert_fails(["quantize", m, "-o", self.path("o.gguf"), "-f", "mxfp9"], "unknown format", self.path("o.gguf"))
        self.assert_fails(["quantize", m, "-o", self.path("o.onnx"), "-f", "mxfp4", "--fake"], "ONNX output needs an ONNX input", self.path("o.onnx"))
        self.assert_fails(["quantize", self.path("none.npz"), "-o", self.path("o.gguf"), "-f", "mxfp4"], "none.npz", self.path("o.gguf"))

    def test_unwritable_report_leaves_no_model(self):
        # Bug: with a --report path that cannot be written, the model file was
        # written anyway (and the error came after it). Both or neither.
        sample_model(self.path("m.npz"))
        m = self.path("m.npz")
        for out in (self.path("o.safetensors"), self.path("o.gguf")):
            report = os.path.join(self.dir, "no_such_dir", "r.json")
            self.assert_fails(["quantize", m, "-o", out, "-f", "fp16", "--report", report], "no_such_dir", out)
            os.mkdir(self.path("a_dir"))  # a directory where the report should go
            self.assert_fails(["quantize", m, "-o", out, "-f", "fp16", "--report", self.path("a_dir")], "a_dir", out)
            os.rmdir(self.path("a_dir"))
        # An existing model keeps its content.
        out = self.path("o.safetensors")
        with open(out, "wb") as f:
            f.write(b"keep me")
        r = run("quantize", m, "-o", out, "-f", "fp16", "--report", os.path.join(self.dir, "no_such_dir", "r.json"))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(open(out, "rb").read(), b"keep me")

    def test_real_model_onnx_fake(self):
        models = os.environ.get("LOWP_MODELS_DIR", "")
        model = os.path.join(models, "ch_PP-OCRv4_rec_infer.onnx")
        if not os.path.exists(model):
            skip_unless_ci(self, "real model not fetched (scripts/fetch-models.sh)")
        sqnr = {}
        for fmt in ("mxfp8_e4m3", "mxfp6_e3m2", "mxfp4"):
            out = self.path(f"pp_{fmt}.onnx")
            r = run("quantize", model, "-o", out, "-f", fmt, "--fake", "--report", self.path("r.json"), "-q")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(os.path.getsize(out), os.path.getsize(model))
            sqnr[fmt] = json.load(open(self.path("r.json")))["totals"]["sqnr_db"]
        self.assertGreater(sqnr["mxfp8_e4m3"], sqnr["mxfp6_e3m2"])
        self.assertGreater(sqnr["mxfp6_e3m2"], sqnr["mxfp4"])
        # The written file reads back with the fake-quantized values: they lie on
        # the MX grid already, so quantizing them again changes nothing.
        r = run("quantize", self.path("pp_mxfp4.onnx"), "-o", self.path("again.onnx"), "-f", "mxfp4", "--fake",
                "--report", self.path("again.json"), "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        totals = json.load(open(self.path("again.json")))["totals"]
        self.assertEqual(totals["max_abs_error"], 0.0)
        self.assertIsNone(totals["sqnr_db"])  # infinite: no error at all
        self.assertEqual(open(self.path("again.onnx"), "rb").read(), open(self.path("pp_mxfp4.onnx"), "rb").read())
        self.assert_fails(["quantize", model, "-o", self.path("pp.gguf"), "-f", "mxfp4"], "keeps its weights in its graph", self.path("pp.gguf"))


# An independent posit decoder (Posit Standard 2022 §3.2): two's complement,
# regime run, es exponent bits, fraction; missing bits read as 0.
def posit_value(code, n, es):
    if code == 0:
        return 0.0
    if code == 1 << (n - 1):
        return math.nan
    sign = 1.0
    if code >> (n - 1):
        sign, code = -1.0, (1 << n) - code
    bits = format(code, f"0{n}b")[1:]
    run = len(bits) - len(bits.lstrip(bits[0]))
    k = run - 1 if bits[0] == "1" else -run
    rest = bits[run + 1:]
    e = int((rest[:es] + "0" * es)[:es], 2) if es else 0
    frac = rest[es:]
    f = int(frac, 2) / 2 ** len(frac) if frac else 0.0
    return sign * 2.0 ** (k * 2 ** es + e) * (1 + f)


class Posits(Base):
    def test_formats_rows(self):
        table = {f["name"]: f for f in json.loads(run("formats", "--json").stdout)}
        for name, n, es in (("posit8", 8, 2), ("posit16", 16, 2), ("posit32", 32, 2), ("posit8_es0", 8, 0),
                            ("posit16_es1", 16, 1), ("posit32_es1", 32, 1)):
            f = table[name]
            self.assertEqual((f["kind"], f["bits"], f["exponent_bits"]), ("posit", n, es), name)
            self.assertEqual(f["max_finite"], 2.0 ** ((n - 2) * 2 ** es), name)
            self.assertEqual(f["min_positive"], 2.0 ** -((n - 2) * 2 ** es), name)
            self.assertEqual(f["nan_codes"], "0x" + format(1 << (n - 1), f"0{n // 4}X"), name)
        row = next(l for l in run("formats").stdout.splitlines() if l.startswith("posit8 "))
        self.assertIn("2^24", row)
        self.assertIn("2^-24", row)

    def test_every_code_decodes_and_round_trips(self):
        for name, n, es, descr in (("posit8", 8, 2, "|u1"), ("posit8_es0", 8, 0, "|u1"), ("posit16", 16, 2, "<u2"),
                                   ("posit16_es1", 16, 1, "<u2")):
            codes = list(range(1 << n))
            payload = bytes(codes) if n == 8 else struct.pack(f"<{len(codes)}H", *codes)
            write_npy(self.path("c.npy"), descr, (len(codes),), payload)
            r = run("decode", "-f", name, "--dtype", "float64", self.path("c.npy"), self.path("v.npy"))
            self.assertEqual(r.returncode, 0, r.stderr)
            values = struct.unpack(f"<{len(codes)}d", read_npy(self.path("v.npy"))[2])
            for c, v in zip(codes, values):
                want = posit_value(c, n, es)
                self.assertTrue(math.isnan(v) if math.isnan(want) else v == want, (name, hex(c), v, want))
            r = run("encode", "-f", name, self.path("v.npy"), self.path("c2.npy"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(read_npy(self.path("c2.npy"))[2], payload, name)  # NaR included

    def test_fake_quant(self):
        x = [1.0, 144179.2, 1e-30, -1e30, math.nan, 0.3, -0.0]
        write_npy(self.path("x.npy"), "<f4", (len(x),), f32(x))
        r = run("fake-quant", "--format", "posit8", self.path("x.npy"), self.path("y.npy"))
        self.assertEqual(r.returncode, 0, r.stderr)
        y = struct.unpack(f"<{len(x)}f", read_npy(self.path("y.npy"))[2])
        # 144179.2 rounds on the bit string to 2^18; never to 0 or NaR.
        self.assertEqual(list(y[:4]), [1.0, 2.0 ** 18, 2.0 ** -24, -2.0 ** 24])
        self.assertTrue(math.isnan(y[4]))
        self.assertEqual(y[5], 0.3125)  # 0.3: posit8 0x32 (0.3125)
        self.assertEqual(math.copysign(1, y[6]), 1.0)  # one zero

    def test_quantize_and_refusals(self):
        sample_model(self.path("m.npz"))
        m = self.path("m.npz")
        out = self.path("p.safetensors")
        r = run("quantize", m, "-o", out, "-f", "posit16", "--fake", "--report", self.path("r.json"), "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = {t["name"]: t for t in json.load(open(self.path("r.json")))["tensors"]}
        self.assertTrue(rows["w1"]["quantized"])
        self.assertGreater(rows["w1"]["sqnr_db"], 60)  # posit16 holds ~12 fraction bits near 1
        self.assert_fails(["quantize", m, "-o", self.path("o.safetensors"), "-f", "posit8"], "add --fake",
                          self.path("o.safetensors"))
        self.assert_fails(["quantize", m, "-o", self.path("o.safetensors"), "-f", "posit8:channel", "--fake"],
                          "plain cast", self.path("o.safetensors"))
        self.assert_fails(["report", "--formats", "posit32"], "32-bit posits")
        write_npy(self.path("x.npy"), "<f4", (32,), f32([1.0] * 32))
        self.assert_fails(["fake-quant", "-f", "mx:posit8:32", self.path("x.npy"), self.path("y.npy")],
                          "is a posit", self.path("y.npy"))

    def test_bench_json(self):
        r = run("bench", "posit", "--sizes", "64,70", "--reps", "1", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertGreater(out["ceiling_gb_per_s"], 0)
        paths = [row["path"] for row in out["rows"] if row["n"] == 70]
        self.assertEqual(len(paths), 7)
        for row in out["rows"]:
            self.assertGreater(row["gb_per_s"], 0)
            if row["path"] == "fp32":
                self.assertEqual(row["speedup_vs_fp32"], 1.0)
        self.assert_fails(["bench", "posit", "--sizes", "0"], "--sizes")


class Bench(Base):
    def test_storage(self):
        # The embedded model's 23 matrices hold 1,064,960 values: MXFP4 stores
        # them as 532,480 code bytes and 33,280 E8M0 scales; the codecs round
        # trip (checked inside) and every figure is present.
        r = run("bench", "storage", "-f", "mxfp4,int8:channel", "--reps", "1", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual([x["format"] for x in out], ["mxfp4", "int8:channel"])
        self.assertEqual(out[0]["values"], 1064960)
        streams = {s["stream"]: s for s in out[0]["streams"]}
        self.assertEqual(streams["codes"]["bytes"], 532480)
        self.assertEqual(streams["codes"]["symbol_bits"], 4)
        self.assertLessEqual(streams["codes"]["entropy_bits"], 4)
        self.assertEqual(streams["block scales"]["bytes"], 33280)
        self.assertLess(streams["block scales"]["for_bytes"], 33280)
        self.assertEqual([c["codec"] for c in streams["codes"]["codecs"]],
                         ["zstd-1", "zstd-19", "lz4", "lz4-hc"])
        self.assertEqual({s["stream"] for s in out[1]["streams"]}, {"codes", "row scales (fp32)"})
        self.assert_fails(["bench", "storage", "-f", "fp9"], "fp9")
        self.assert_fails(["bench", "storage", self.path("missing.safetensors")], "missing")

    def test_json_rows(self):
        r = run("bench", "--elements", "5000", "--reps", "1", "--threads", "2", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["threads"], 2)
        rows = {row["kernel"]: row for row in out["results"]}
        for name in ("ceiling f32->u8", "ceiling f32->u16", "ceiling u8->f32", "encode fp8_e4m3",
                     "encode fp8_e5m2", "encode bf16", "encode fp16", "decode fp8_e4m3", "decode fp16"):
            self.assertGreater(rows[name]["ns_per_element"], 0, name)
        self.assertEqual(rows["encode bf16"]["ceiling"], "ceiling f32->u16")
        # A ceiling names the fastest of its variants; a kernel row has none.
        self.assertRegex(rows["ceiling f32->u8"]["variant"],
                         r"^(regular|non-temporal) stores, (widest|half-width) vectors$")
        self.assertEqual(rows["encode bf16"]["variant"], "")

    def test_rejects_zero(self):
        self.assertIn("positive", self.assert_fails(["bench", "--elements", "0"], "bench"))

    def test_file(self):
        # `lowp bench file` generates a BF16 file, times lowp quantize on it
        # against reading it, and removes what it wrote.
        r = run("bench", "file", "--size-mb", "2", "--formats", "mxfp4,mxfp6_e3m2", "--reps", "1",
                "--threads", "1", "--dir", self.dir, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = json.loads(r.stdout)
        self.assertEqual([row["format"] for row in rows], ["mxfp4", "mxfp6_e3m2"])
        for row in rows:
            self.assertEqual(row["file_bytes"] // (1 << 20), 2)
            self.assertEqual(row["largest_tensor_bytes"], 2 << 20)
            self.assertGreater(row["quantize_s"], 0)
            self.assertGreater(row["peak_rss_mb"], 0)
            self.assertAlmostEqual(row["vs_read"], row["read_s"] / row["quantize_s"])
        # 4.25 and 6.25 bits per value, plus the header.
        self.assertAlmostEqual(rows[0]["output_bytes"] / (1 << 20), 2 * 4.25 / 16, places=2)
        self.assertAlmostEqual(rows[1]["output_bytes"] / (1 << 20), 2 * 6.25 / 16, places=2)
        self.assertEqual(os.listdir(self.dir), [])
        self.assert_fails(["bench", "file", "--size-mb", "1", "--formats", "mxfp9", "--reps", "1",
                           "--dir", self.dir], "failed")


class NumeracyFoneSort(Base):
    def test_fone_round_trips(self):
        r = run("numeracy", "fone", "123.45", "7", "--int-digits", "3", "--frac-digits", "2",
                "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["period_exponents"], [-1, 0, 1, 2, 3])
        self.assertEqual([v["decoded"] for v in out["values"]], ["123.45", "7.00"])
        # Pair p: angle 2 pi (12345 mod 10^(p+1)) / 10^(p+1).
        for p, (c, s) in enumerate(zip(*[iter(out["values"][0]["features"])] * 2)):
            q = (12345 % 10 ** (p + 1)) / 10 ** (p + 1)
            self.assertAlmostEqual(c, math.cos(2 * math.pi * q), places=14)
            self.assertAlmostEqual(s, math.sin(2 * math.pi * q), places=14)
        r = run("numeracy", "fone", "--fp32", "--sign", "--", "-999999999999")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("-999999999999 -> decoded -999999999999", r.stdout)

    def test_fone_bad_value(self):
        self.assert_fails(["numeracy", "fone", "12.345", "--frac-digits", "2"],
                          "fone: value '12.345' has 3 fractional digits, more than frac_digits 2")
        self.assert_fails(["numeracy", "fone", "1", "abc"], "'abc' is not a decimal number")
        self.assert_fails(["numeracy", "fone", "--", "-5"], "is negative")

    def test_bench_sort(self):
        r = run("bench", "sort", "--max-size", "10000", "--reps", "1", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = json.loads(r.stdout)
        self.assertEqual(len(rows), 2 * 3 * 4)
        self.assertEqual({row["method"] for row in rows},
                         {"std::sort", "ARC sort", "lowp radix", "hwy vqsort"})
        for row in rows:
            self.assertGreater(row["ns_per_element"], 0)
            if row["method"] == "std::sort":
                self.assertEqual(row["vs_std_sort"], 1)
        self.assert_fails(["bench", "sort", "--dists", "zipf"], "unknown distribution 'zipf'")


def safetensors_bytes(tensors, metadata=None):
    """A safetensors image of float32 tensors {name: (shape, values)}."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs, offset = [], 0
    for name, (shape, values) in tensors.items():
        data = f32(values)
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


class Report(Base):
    """`lowp report` and `lowp generate` on the embedded model (small slices of
    text so the tests stay quick under the sanitizers)."""

    def setUp(self):
        super().setUp()
        val = open(os.path.join(SOURCE_DIR, "models", "kjv-char", "val.txt"), "rb").read()
        self.text = self.path("val.txt")
        with open(self.text, "wb") as f:
            f.write(val[:1500])

    def report(self, *args):
        r = run("report", "--text", self.text, "--threads", "2", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def test_json_rows_bits_and_bytes(self):
        svg = self.path("chart.svg")
        out = json.loads(self.report("--formats", "fp32,bf16,mxfp8_e4m3,mxfp4,int4:group32", "--json",
                                     "--svg", svg).stdout)
        rows = {row["format"]: row for row in out["rows"]}
        self.assertEqual([row["format"] for row in out["rows"]], ["fp32", "bf16", "mxfp8_e4m3", "mxfp4", "int4:group32"])
        # Every matrix of the model has a row length that is a multiple of 32,
        # so bits per weight are exactly element bits + scale bits / block.
        self.assertEqual(rows["fp32"]["bits_per_weight"], 32.0)
        self.assertEqual(rows["bf16"]["bits_per_weight"], 16.0)
        self.assertEqual(rows["mxfp8_e4m3"]["bits_per_weight"], 8.25)
        self.assertEqual(rows["mxfp4"]["bits_per_weight"], 4.25)
        self.assertEqual(rows["int4:group32"]["bits_per_weight"], 4.5)
        # Bytes: fp32 parameters outside the matrices + the matrices as stored.
        params = out["parameters"]
        linear = (rows["fp32"]["model_bytes"] - rows["mxfp4"]["model_bytes"]) / (4 - 4.25 / 8)
        self.assertEqual(rows["fp32"]["model_bytes"], params * 4)
        self.assertAlmostEqual(rows["bf16"]["model_bytes"], params * 4 - linear * 2, delta=1)
        self.assertEqual(rows["fp32"]["delta_bits_per_byte"], 0.0)
        self.assertEqual(rows["fp32"]["tokens"], 1500 - math.ceil(1500 / 128))
        for row in out["rows"]:
            self.assertGreater(row["tokens_per_second"], 0)
            self.assertAlmostEqual(row["bits_per_byte"], row["nats_per_byte"] / math.log(2), places=9)
            self.assertAlmostEqual(row["perplexity"], math.exp(row["nats_per_byte"]), places=6)
        # What the MX paper reports for direct casts: bf16 and MXFP8 barely move
        # the loss, MXFP4 costs clearly more.
        self.assertLess(abs(rows["bf16"]["delta_percent"]), 0.5)
        self.assertLess(abs(rows["mxfp8_e4m3"]["delta_percent"]), 2.0)
        self.assertGreater(rows["mxfp4"]["delta_bits_per_byte"], rows["mxfp8_e4m3"]["delta_bits_per_byte"])
        # The chart: one point per format, valid XML.
        import xml.etree.ElementTree as ET
        root = ET.parse(svg).getroot()
        circles = root.findall(".//{http://www.w3.org/2000/svg}circle")
        self.assertEqual(len(circles), 5)

    def test_posit_rows(self):
        # Posits are plain casts (no scale): 16 and 8 bits per weight.
        out = json.loads(self.report("--formats", "fp32,posit16,posit8", "--json", "--no-svg").stdout)
        rows = {row["format"]: row for row in out["rows"]}
        self.assertEqual(rows["posit16"]["bits_per_weight"], 16.0)
        self.assertEqual(rows["posit8"]["bits_per_weight"], 8.0)
        self.assertLess(abs(rows["posit16"]["delta_percent"]), 0.5)
        self.assertGreater(rows["posit8"]["delta_bits_per_byte"], rows["posit16"]["delta_bits_per_byte"])

    def test_table_and_determinism(self):
        a = self.report("--formats", "mxfp6_e3m2,nvfp4", "--no-svg").stdout
        self.assertIn("mxfp6_e3m2", a)
        self.assertIn("nvfp4", a)
        one = json.loads(run("report", "--text", self.text, "--threads", "1", "--formats", "nvfp4,int8:channel",
                             "--json", "--no-svg").stdout)
        two = json.loads(run("report", "--text", self.text, "--threads", "3", "--formats", "nvfp4,int8:channel",
                             "--json", "--no-svg").stdout)
        for x, y in zip(one["rows"], two["rows"]):
            self.assertEqual(x["nats_per_byte"], y["nats_per_byte"])

    def test_activations(self):
        out = json.loads(self.report("--formats", "fp32", "--activations", "mxfp4", "--json", "--no-svg").stdout)
        self.assertEqual(out["activations"], "mxfp4")
        base = json.loads(self.report("--formats", "fp32", "--json", "--no-svg").stdout)
        self.assertGreater(out["rows"][0]["nats_per_byte"], base["rows"][0]["nats_per_byte"])
        # Deltas are against the all-FP32 model, also when activations are quantized.
        self.assertEqual(out["fp32_bits_per_byte"], base["rows"][0]["bits_per_byte"])
        self.assertGreater(out["rows"][0]["delta_bits_per_byte"], 0)

    def test_bad_input(self):
        svg = self.path("chart.svg")
        self.assert_fails(["report", "--text", self.text, "--formats", "fp32,mxfp3", "--svg", svg], "mxfp3", svg)
        self.assert_fails(["report", "--text", self.text, "--activations", "bogus", "--svg", svg], "bogus", svg)
        self.assert_fails(["report", self.path("missing.safetensors"), "--svg", svg], "missing.safetensors", svg)
        empty = self.path("empty.txt")
        open(empty, "wb").close()
        self.assert_fails(["report", "--text", empty, "--svg", svg], "is empty", svg)
        latin1 = self.path("latin1.txt")
        with open(latin1, "wb") as f:
            f.write("In the beginning caf\u00e9".encode("latin1"))
        self.assert_fails(["report", "--text", latin1, "--svg", svg], "not UTF-8", svg)
        other = self.path("other.safetensors")
        with open(other, "wb") as f:
            f.write(safetensors_bytes({"conv.weight": ((2, 2), [1, 2, 3, 4])}, {"lowp.arch": "resnet"}))
        self.assert_fails(["report", other, "--text", self.text, "--svg", svg], "other.safetensors", svg)

    def calibration_text(self):
        """Verses the model was trained on (Genesis), apart from the held-out text."""
        calib = self.path("calib.txt")
        with open(calib, "w") as f:
            f.write("In the beginning God created the heaven and the earth.\n"
                    "And the earth was without form, and void; and darkness was upon the face of the deep.\n"
                    "And God said, Let there be light: and there was light.\n" * 8)
        return calib

    def test_methods(self):
        calib = self.calibration_text()
        out = json.loads(self.report("--formats", "fp32,mxfp4,int4:group32", "--methods", "rtn,mse,gptq",
                                     "--calib", calib, "--calib-tokens", "512", "--json", "--no-svg").stdout)
        rows = [(r["format"], r["method"]) for r in out["rows"]]
        self.assertEqual(rows, [("fp32", "rtn"), ("mxfp4", "rtn"), ("mxfp4", "mse"), ("mxfp4", "gptq"),
                                ("int4:group32", "rtn"), ("int4:group32", "mse"), ("int4:group32", "gptq")])
        by = {(r["format"], r["method"]): r for r in out["rows"]}
        for f in ("mxfp4", "int4:group32"):
            # Same storage, other codes: equal bits, different losses.
            self.assertEqual(by[(f, "gptq")]["bits_per_weight"], by[(f, "rtn")]["bits_per_weight"])
            self.assertNotEqual(by[(f, "gptq")]["nats_per_byte"], by[(f, "rtn")]["nats_per_byte"])
            self.assertGreater(by[(f, "gptq")]["quantize_seconds"], 0)
        # The same calibration gives the same model, for any thread count.
        again = json.loads(run("report", "--text", self.text, "--threads", "1", "--formats", "mxfp4",
                               "--methods", "gptq", "--calib", calib, "--calib-tokens", "512", "--json",
                               "--no-svg").stdout)
        self.assertEqual(again["rows"][0]["nats_per_byte"], by[("mxfp4", "gptq")]["nats_per_byte"])

    def test_split_search_methods(self):
        # fpsearch / fpvote choose each layer's exponent/mantissa split: a row per
        # scaled float format, a note (no row) for the others, a line per layer.
        calib = self.calibration_text()
        r = self.report("--formats", "fp4_e2m1:channel,int4:group32", "--methods", "rtn,fpvote,fpsearch",
                        "--calib", calib, "--calib-tokens", "512", "--json", "--no-svg")
        out = json.loads(r.stdout)
        rows = [(x["format"], x["method"]) for x in out["rows"]]
        self.assertEqual(rows, [("fp4_e2m1:channel", "rtn"), ("fp4_e2m1:channel", "fpvote"),
                                ("fp4_e2m1:channel", "fpsearch"), ("int4:group32", "rtn")])
        self.assertIn("note: no fpvote row for int4:group32", r.stderr)
        self.assertIn("fpvote layers.0.qkv: ", r.stderr)
        self.assertIn("rows voting: e1m2fin ", r.stderr)
        self.assertIn("fpsearch head: ", r.stderr)
        self.assertIn("output error: e1m2fin ", r.stderr)
        # Every split of 4 bits is stored in 4 bits + a row scale.
        by = {(x["format"], x["method"]): x for x in out["rows"]}
        for m in ("fpvote", "fpsearch"):
            self.assertEqual(by[("fp4_e2m1:channel", m)]["bits_per_weight"],
                             by[("fp4_e2m1:channel", "rtn")]["bits_per_weight"])
        svg = self.path("chart.svg")
        self.assert_fails(["report", "--text", self.text, "--formats", "int8:channel", "--methods", "fpvote",
                           "--svg", svg], "not a scaled float format", svg)
        self.assert_fails(["report", "--text", self.text, "--formats", "fp4_e2m1:channel", "--methods",
                           "fpsearch", "--svg", svg], "--calib", svg)
        # lowp quantize: fpvote per tensor with --fake; fpsearch needs the runtime.
        model = os.path.join(SOURCE_DIR, "models", "kjv-char", "model.safetensors")
        fake = self.path("v.safetensors")
        r = run("quantize", model, "-o", fake, "-f", "fp8_e4m3:channel", "--method", "fpvote", "--fake", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_fails(["quantize", model, "-o", self.path("x.safetensors"), "-f", "fp8_e4m3:channel",
                           "--method", "fpvote"], "--fake", self.path("x.safetensors"))
        self.assert_fails(["quantize", model, "-o", self.path("y.safetensors"), "-f", "fp4_e2m1:channel",
                           "--method", "fpsearch", "--fake"], "lowp report", self.path("y.safetensors"))

    def test_lorc_rows_count_their_factors(self):
        # rtn+lorc4: each matrix [rows, cols] adds int8 factors [rows, 4] and
        # [cols, 4] with an FP32 scale per factor row: 8 (rows + cols) bytes.
        out = json.loads(self.report("--formats", "mxfp4", "--methods", "rtn,rtn+lorc4", "--json",
                                     "--no-svg").stdout)
        by = {x["method"]: x for x in out["rows"]}
        # Embedded GPT: 5 x (qkv 384x128, o 128x128, fc 512x128, down 128x512) + head 256x128.
        extra = 8 * (5 * ((384 + 128) + (128 + 128) + (512 + 128) + (128 + 512)) + (256 + 128))
        self.assertEqual(by["rtn+lorc4"]["model_bytes"] - by["rtn"]["model_bytes"], extra)
        self.assertNotEqual(by["rtn+lorc4"]["nats_per_byte"], by["rtn"]["nats_per_byte"])
        svg = self.path("chart.svg")
        self.assert_fails(["report", "--text", self.text, "--methods", "rtn+lorc0", "--svg", svg],
                          "lorc", svg)
        self.assert_fails(["report", "--text", self.text, "--formats", "mxfp4", "--methods", "rtn+lorc500",
                           "--svg", svg], "--lorc-rank 500", svg)

    def test_power_rows(self):
        r = self.report("--formats", "int4:channel,mxfp4", "--methods", "rtn,power", "--json", "--no-svg")
        out = json.loads(r.stdout)
        self.assertEqual([(x["format"], x["method"]) for x in out["rows"]],
                         [("int4:channel", "rtn"), ("int4:channel", "power"), ("mxfp4", "rtn")])
        by = {x["method"]: x for x in out["rows"] if x["format"] == "int4:channel"}
        # The same storage plus a 4-byte exponent per matrix (21 matrices).
        self.assertEqual(by["power"]["model_bytes"] - by["rtn"]["model_bytes"], 4 * 21)
        self.assertIn("note: no power row for mxfp4", r.stderr)
        self.assertRegex(r.stderr, r"power layers\.0\.qkv: a = [01]\.\d+ in int4:channel")
        model = os.path.join(SOURCE_DIR, "models", "kjv-char", "model.safetensors")
        fake = self.path("p.safetensors")
        r = run("quantize", model, "-o", fake, "-f", "int4:group32", "--method", "power", "--fake", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_fails(["quantize", model, "-o", self.path("x.safetensors"), "-f", "int4:group32",
                           "--method", "power"], "--fake", self.path("x.safetensors"))

    def test_vq_rows(self):
        calib = self.calibration_text()
        r = self.report("--formats", "int2:group128,mxfp4", "--methods", "vq,gptvq", "--calib", calib,
                        "--calib-tokens", "512", "--json", "--no-svg")
        out = json.loads(r.stdout)
        self.assertEqual([(x["format"], x["method"]) for x in out["rows"]],
                         [("int2:group128", "vq"), ("int2:group128", "gptvq")])
        # 2-bit indices + per (up to 256 rows x 128 columns) a code book of 16 int8
        # pairs and an FP16 scale: 34 bytes per group.
        # qkv [384, 128]: 2 row blocks; o: 1; fc [512, 128]: 2; down [128, 512]: 4 column groups; head: 1.
        groups = 5 * (2 + 1 + 2 + 4) + 1
        weights = 5 * (384 * 128 + 128 * 128 + 512 * 128 + 128 * 512) + 256 * 128
        rtn_bytes = json.loads(self.report("--formats", "fp32", "--json", "--no-svg").stdout)["rows"][0]
        self.assertEqual(out["rows"][0]["model_bytes"] - (rtn_bytes["model_bytes"] - 4 * weights),
                         weights // 4 + 34 * groups)
        self.assertIn("note: no vq row for mxfp4", r.stderr)
        svg = self.path("chart.svg")
        self.assert_fails(["report", "--text", self.text, "--formats", "int2:group128", "--methods", "vq",
                           "--vq-dim", "3", "--svg", svg], "--vq-dim", svg)
        model = os.path.join(SOURCE_DIR, "models", "kjv-char", "model.safetensors")
        fake, packed = self.path("v.safetensors"), self.path("w.safetensors")
        r = run("quantize", model, "-o", fake, "-f", "int4:group32", "--method", "vq", "--fake", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_fails(["quantize", model, "-o", packed, "-f", "int4:group32", "--method", "vq"], "--fake",
                          packed)
        self.assert_fails(["quantize", model, "-o", packed, "-f", "int4:group32", "--method", "gptvq", "--fake"],
                          "lowp report", packed)

    def test_matryoshka_slices(self):
        out = json.loads(self.report("--formats", "int8:channel,int4:group32", "--slices", "4,2", "--json",
                                     "--no-svg").stdout)
        rows = [x["format"] for x in out["rows"]]
        self.assertEqual(rows, ["int8:channel", "int8:channel@4", "int8:channel@2", "int4:group32"])
        by = {x["format"]: x for x in out["rows"]}
        # The slices keep the int8 row scales and store r-bit codes.
        self.assertAlmostEqual(by["int8:channel@4"]["bits_per_weight"], by["int8:channel"]["bits_per_weight"] - 4)
        self.assertAlmostEqual(by["int8:channel@2"]["bits_per_weight"], by["int8:channel"]["bits_per_weight"] - 6)
        self.assertGreater(by["int8:channel@2"]["nats_per_byte"], by["int8:channel@4"]["nats_per_byte"])
        svg = self.path("chart.svg")
        self.assert_fails(["report", "--text", self.text, "--formats", "int8:channel", "--slices", "9",
                           "--svg", svg], "--slices", svg)
        self.assert_fails(["report", "--text", self.text, "--formats", "mxfp4", "--slices", "4", "--svg", svg],
                          "no int8 format", svg)

    def test_matgptq(self):
        calib = self.calibration_text()
        r = self.report("--formats", "int8:channel,int4:group32", "--methods", "matgptq", "--slices", "2",
                        "--mat-weights", "4,1", "--calib", calib, "--calib-tokens", "512", "--json", "--no-svg")
        self.assertIn("no matgptq row for int4:group32", r.stderr)
        rows = [(x["format"], x["method"]) for x in json.loads(r.stdout)["rows"]]
        self.assertEqual(rows, [("int8:channel", "matgptq"), ("int8:channel@2", "matgptq")])
        svg = self.path("chart.svg")
        self.assert_fails(["report", "--text", self.text, "--formats", "int8:channel", "--methods", "matgptq",
                           "--slices", "2", "--mat-weights", "1,2,3", "--calib", calib, "--calib-tokens", "512",
                           "--svg", svg], "weights", svg)

    def test_aqas(self):
        calib = self.calibration_text()
        r = self.report("--formats", "int4:channel", "--activations", "int4", "--aqas", "--calib", calib,
                        "--calib-tokens", "256", "--json", "--no-svg")
        lines = [x for x in r.stderr.splitlines() if x.startswith("  aqas int4:channel: layer")]
        self.assertEqual(len(lines), 10)  # 5 blocks x (attention, mlp)
        rows = json.loads(r.stdout)["rows"]
        self.assertEqual([x["format"] for x in rows], ["int4:channel"])
        svg = self.path("chart.svg")
        self.assert_fails(["report", "--text", self.text, "--formats", "int4:channel", "--aqas", "--calib", calib,
                           "--svg", svg], "--activations", svg)
        self.assert_fails(["report", "--text", self.text, "--formats", "int4:channel", "--aqas", "--activations",
                           "int8", "--smooth", "0.5", "--calib", calib, "--svg", svg], "--smooth", svg)
        self.assert_fails(["report", "--text", self.text, "--formats", "int4:channel", "--aqas", "--activations",
                           "int8", "--svg", svg], "--calib", svg)
        self.assert_fails(["report", "--text", self.text, "--formats", "int4:channel", "--smooth-pow2",
                           "--activations", "int8", "--calib", calib, "--svg", svg], "--smooth-pow2", svg)

    def test_nupes(self):
        calib = self.calibration_text()
        r = self.report("--formats", "int3:channel", "--methods", "power,nupes", "--calib", calib,
                        "--calib-tokens", "512", "--json", "--no-svg")
        rows = [(x["format"], x["method"]) for x in json.loads(r.stdout)["rows"]]
        self.assertEqual(rows, [("int3:channel", "power"), ("int3:channel", "nupes")])
        svg = self.path("chart.svg")
        self.assert_fails(["report", "--text", self.text, "--formats", "int3:channel", "--methods", "nupes",
                           "--svg", svg], "--calib", svg)

    def test_row_scale_under_mx_blocks(self):
        r = self.report("--formats", "mxfp4,int4:channel", "--methods", "rtn+row", "--json", "--no-svg")
        self.assertIn("no rtn+row row for int4:channel", r.stderr)
        rows = {(x["format"], x["method"]): x for x in json.loads(r.stdout)["rows"]}
        row = rows[("mxfp4", "rtn+row")]
        # mxfp4 is 4.25 bits; an FP32 scale per row adds 32 / cols (cols 128 or 512).
        self.assertGreater(row["bits_per_weight"], 4.25)
        self.assertLess(row["bits_per_weight"], 4.25 + 32 / 128 + 1e-9)
        svg = self.path("chart.svg")
        self.assert_fails(["report", "--text", self.text, "--formats", "mxfp4", "--methods", "rtn+lorc4+row",
                           "--svg", svg], "+row", svg)

    def test_afpq_two_scales(self):
        # fp4_e2m1:group32:asym: two FP16 scales per group of 32 = 5 bits/weight.
        # nf4:group64:asym: AFPQ's NF4-asym, 4 + 32/64 = 4.5 bits/weight.
        out = json.loads(self.report("--formats", "fp4_e2m1:group32,fp4_e2m1:group32:asym,nf4:group64:asym",
                                     "--json", "--no-svg").stdout)
        by = {x["format"]: x for x in out["rows"]}
        self.assertEqual(by["fp4_e2m1:group32"]["bits_per_weight"], 4.5)
        self.assertEqual(by["fp4_e2m1:group32:asym"]["bits_per_weight"], 5.0)
        self.assertEqual(by["nf4:group64:asym"]["bits_per_weight"], 4.5)

    def test_budget(self):
        calib = self.calibration_text()
        out = json.loads(self.report("--formats", "mxfp4", "--budget", "5", "--calib", calib,
                                     "--calib-tokens", "512", "--json", "--no-svg").stdout)
        row = out["rows"][-1]
        self.assertEqual((row["format"], row["method"]), ("budget:5", "rtn"))
        self.assertLessEqual(row["bits_per_weight"], 5.0)
        self.assertGreater(row["bits_per_weight"], 4.25)  # the leftover bits were spent
        b = out["budget"]
        self.assertEqual(b["sensitivity"], "calibration loss")
        self.assertEqual({m["format"] for m in b["matrices"]} <= {"mxfp4", "mxfp6_e2m3", "mxfp8_e4m3"}, True)
        self.assertAlmostEqual(b["assigned_bits_per_weight"], row["bits_per_weight"], places=9)
        svg = self.path("chart.svg")
        self.assert_fails(["report", "--text", self.text, "--formats", "mxfp4", "--budget", "3", "--svg", svg],
                          "over the budget", svg)

    def test_rotate_smooth_static(self):
        calib = self.calibration_text()
        base = json.loads(self.report("--formats", "fp32", "--json", "--no-svg").stdout)
        fp32 = base["rows"][0]["nats_per_byte"]
        for extra in (["--rotate", "hadamard"], ["--rotate", "hadamard-residual", "--rotate-seed", "3"],
                      ["--smooth", "0.5", "--calib", calib, "--calib-tokens", "512"]):
            out = json.loads(self.report("--formats", "fp32", "--json", "--no-svg", *extra).stdout)
            # The same function in FP32, up to rounding.
            self.assertAlmostEqual(out["rows"][0]["nats_per_byte"], fp32, delta=1e-4 * fp32, msg=extra)
        static = json.loads(self.report("--formats", "int8:channel", "--activations", "int8", "--act-scales",
                                        "static", "--act-calibrator", "percentile:99.9", "--calib", calib,
                                        "--calib-tokens", "512", "--json", "--no-svg").stdout)
        self.assertLess(abs(static["rows"][0]["delta_percent"]), 5.0)
        svg = self.path("chart.svg")
        self.assert_fails(["report", "--text", self.text, "--rotate", "givens", "--svg", svg], "givens", svg)
        self.assert_fails(["report", "--text", self.text, "--smooth", "0.5", "--svg", svg], "--calib", svg)
        self.assert_fails(["report", "--text", self.text, "--act-scales", "static", "--activations", "int8",
                           "--svg", svg], "--calib", svg)
        self.assert_fails(["report", "--text", self.text, "--act-scales", "static", "--activations", "mxfp4",
                           "--calib", calib, "--svg", svg], "mxfp4", svg)
        self.assert_fails(["report", "--text", self.text, "--act-scales", "static", "--activations", "int8",
                           "--act-calibrator", "kl", "--calib", calib, "--svg", svg], "kl", svg)

    def test_methods_bad_input(self):
        svg = self.path("chart.svg")
        calib = self.calibration_text()
        self.assert_fails(["report", "--text", self.text, "--methods", "gptq", "--svg", svg], "--calib", svg)
        self.assert_fails(["report", "--text", self.text, "--methods", "awq", "--calib", calib, "--svg", svg],
                          "awq", svg)
        short = self.path("short.txt")
        with open(short, "w") as f:
            f.write("In the beginning")
        self.assert_fails(["report", "--text", self.text, "--methods", "gptq", "--calib", short, "--svg", svg],
                          "shorter than one sequence", svg)
        out = self.path("q.safetensors")
        model = os.path.join(SOURCE_DIR, "models", "kjv-char", "model.safetensors")
        self.assert_fails(["quantize", model, "-o", out, "-f", "mxfp4", "--method", "mse"], "--fake", out)
        self.assert_fails(["quantize", model, "-o", out, "-f", "fp8_e4m3", "--method", "mse", "--fake"],
                          "fp8_e4m3", out)
        self.assert_fails(["quantize", model, "-o", out, "-f", "int4:group32", "--method", "gptq"], "gptq", out)

    def test_quantize_budget(self):
        model = os.path.join(SOURCE_DIR, "models", "kjv-char", "model.safetensors")
        out, rep = self.path("b.safetensors"), self.path("b.json")
        r = run("quantize", model, "-o", out, "--fake", "--budget", "5", "--budget-formats",
                "mxfp4,mxfp8_e4m3", "--report", rep, "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(rep) as f:
            report = json.load(f)
        self.assertEqual(report["budget_bits_per_value"], 5)
        used, bits, values = set(), 0.0, 0
        for t in report["tensors"]:
            if t["quantized"]:
                fmt = t["stored_as"].split("(fake ")[1].rstrip(")")
                used.add(fmt)
                bits += {"mxfp4": 4.25, "mxfp8_e4m3": 8.25}[fmt] * t["elements"]
                values += t["elements"]
        self.assertEqual(used, {"mxfp4", "mxfp8_e4m3"})
        self.assertLessEqual(bits / values, 5.0)
        bad = self.path("bad.safetensors")
        self.assert_fails(["quantize", model, "-o", bad, "--budget", "5"], "--fake", bad)
        self.assert_fails(["quantize", model, "-o", bad, "--fake", "--budget", "4"], "budget", bad)
        self.assert_fails(["quantize", model, "-o", bad, "--fake", "--budget", "5", "--budget-formats",
                           "mxfp4,bogus"], "bogus", bad)

    def test_quantize_mse(self):
        model = os.path.join(SOURCE_DIR, "models", "kjv-char", "model.safetensors")
        stats = {}
        for method in ("rtn", "mse"):
            out, rep = self.path(method + ".safetensors"), self.path(method + ".json")
            r = run("quantize", model, "-o", out, "-f", "int4:group32", "--method", method, "--report", rep, "-q")
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(rep) as f:
                stats[method] = json.load(f)["totals"]
        # The search never loses against the rule, and the storage is the same size.
        self.assertLess(stats["mse"]["mse"], stats["rtn"]["mse"])
        self.assertEqual(stats["mse"]["bytes_out"], stats["rtn"]["bytes_out"])

    def test_generate(self):
        args = [LOWP, "generate", "--format", "mxfp4", "-n", "40", "--seed", "7", "In the beginning"]
        a = subprocess.run(args, capture_output=True)
        self.assertEqual(a.returncode, 0, a.stderr)
        self.assertTrue(a.stdout.startswith(b"In the beginning"))
        self.assertEqual(len(a.stdout), len("In the beginning") + 40 + 1)
        b = subprocess.run(args + ["--threads", "2"], capture_output=True)
        self.assertEqual(a.stdout, b.stdout)
        greedy = run("generate", "--temperature", "0", "-n", "30", "And God said")
        self.assertEqual(greedy.returncode, 0, greedy.stderr)
        self.assert_fails(["generate", "--format", "fp9", "x"], "fp9")

    def test_integer_only(self):
        calib = self.calibration_text()
        out = json.loads(self.report("--formats", "fp32", "--integer-only", "--calib", calib, "--calib-tokens",
                                     "512", "--json", "--no-svg").stdout)
        rows = [(r["format"], r["method"]) for r in out["rows"]]
        self.assertEqual([r[0] for r in rows], ["fp32", "w8a8-static", "integer-only"])
        fp32, w8a8, integer = (r["bits_per_byte"] for r in out["rows"])
        # int8 everywhere costs little on this model; the integer kernels add little to it.
        self.assertLess(abs(w8a8 / fp32 - 1), 0.05)
        self.assertLess(abs(integer / w8a8 - 1), 0.02)
        io = out["integer_only"]
        self.assertEqual((io["attention_bits"], io["softmax_bits"]), (8, 8))
        self.assertAlmostEqual(io["delta_percent_vs_w8a8_static"], 100 * (integer / w8a8 - 1), places=6)
        # The table names the rows and prints the summary line.
        table = self.report("--formats", "fp32", "--integer-only", "--calib", calib, "--calib-tokens", "512",
                            "--int-softmax-bits", "12", "--no-svg").stdout
        self.assertIn("integer-only", table)
        self.assertIn("12-bit softmax", table)
        # generate: deterministic for a seed, the same for any thread count, greedy works.
        args = ["generate", "--integer-only", "--calib", calib, "--calib-tokens", "512", "-n", "30", "--seed", "3",
                "In the beginning"]
        a, b = run(*args), run(*args, "--threads", "2")
        self.assertEqual(a.returncode, 0, a.stderr)
        self.assertTrue(a.stdout.startswith("In the beginning"))
        self.assertEqual(a.stdout, b.stdout)
        self.assertEqual(run("generate", "--integer-only", "--calib", calib, "--calib-tokens", "512",
                             "--temperature", "0", "-n", "20", "And God said").returncode, 0)
        svg = self.path("chart.svg")
        self.assert_fails(["report", "--text", self.text, "--integer-only", "--svg", svg], "--calib", svg)
        self.assert_fails(["report", "--text", self.text, "--integer-only", "--calib", calib, "--rotate",
                           "hadamard", "--svg", svg], "hadamard", svg)
        self.assert_fails(["generate", "--integer-only", "x"], "--calib")
        self.assert_fails(["generate", "--integer-only", "--calib", calib, "--format", "mxfp4", "x"], "--format")
        self.assert_fails(["generate", "--calib", calib, "x"], "--integer-only")
        self.assert_fails(["generate", "--integer-only", "--calib", self.path("missing.txt"), "x"], "missing.txt")

def safetensors_raw(tensors, metadata=None):
    """A safetensors image of {name: (dtype, shape, bytes)} in the given order,
    with a __metadata__ object when `metadata` is given."""
    header, blobs, offset = ({} if metadata is None else {"__metadata__": metadata}), [], 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def safetensors_tensors(path):
    """{name: (dtype, shape, bytes)} of a safetensors file, and its metadata."""
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    return {k: (v["dtype"], v["shape"], data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in header.items()}, meta


# FP4 E2M1 values by code, as gpt-oss's FP4_VALUES table (Hugging Face
# transformers, src/transformers/integrations/mxfp4.py).
FP4_VALUES = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def gpt_oss_decode(blocks, scales, rows, groups):
    """transformers' convert_moe_packed_tensors, restated: byte i of a block holds
    element 2i in its low nibble and 2i+1 in its high one; the block's value is
    FP4_VALUES[code] * 2**(scale - 127)."""
    out = []
    for r in range(rows):
        for g in range(groups):
            e = scales[r * groups + g] - 127
            for b in blocks[(r * groups + g) * 16:(r * groups + g + 1) * 16]:
                out += [math.ldexp(FP4_VALUES[b & 0xF], e), math.ldexp(FP4_VALUES[b >> 4], e)]
    return out


class Layouts(Base):
    def quantize_dir(self, src, out, *extra):
        r = run("quantize", src, "-o", out, "-f", "mxfp4", "--layout", "gpt-oss", "-q", *extra)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_gpt_oss_bytes(self):
        # Hand-derived from transformers' gpt-oss reader (convert_moe_packed_tensors in
        # src/transformers/integrations/mxfp4.py): row 0 has amax 6, so its OCP floor
        # scale is 2^0 (E8M0 byte 127) and its codes are 1.0->0x2, -1.0->0xA, 2->0x4,
        # 3->0x5, 0->0x0, 6->0x7, 0.5->0x1, -6->0xF, packed two per byte low nibble
        # first: A2 54 70 F1. Row 1 is row 0 times 4: the same codes, scale byte 129.
        row = [1.0, -1.0, 2.0, 3.0, 0.0, 6.0, 0.5, -6.0] + [0.0] * 24
        w = row + [4 * v for v in row]
        odd = [0.25] * (2 * 48)  # last dimension 48: not blocks of 32, kept
        with open(self.path("in.safetensors"), "wb") as f:
            f.write(safetensors_bytes({"mlp.experts.gate_up_proj": ((2, 32), w),
                                       "mlp.experts.gate_up_proj_bias": ((2,), [0.5, 1.5]),
                                       "mlp.router.weight": ((2, 48), odd)}))
        out = self.path("out")
        self.quantize_dir(self.path("in.safetensors"), out)
        self.assertEqual(sorted(os.listdir(out)), ["config.json", "model.safetensors"])
        tensors, meta = safetensors_tensors(os.path.join(out, "model.safetensors"))
        self.assertEqual(list(tensors), ["mlp.experts.gate_up_proj_blocks", "mlp.experts.gate_up_proj_scales",
                                         "mlp.experts.gate_up_proj_bias", "mlp.router.weight"])
        dtype, shape, blocks = tensors["mlp.experts.gate_up_proj_blocks"]
        self.assertEqual((dtype, shape), ("U8", [2, 1, 16]))
        self.assertEqual(blocks, bytes([0xA2, 0x54, 0x70, 0xF1] + [0] * 12) * 2)
        self.assertEqual(tensors["mlp.experts.gate_up_proj_scales"], ("U8", [2, 1], bytes([127, 129])))
        self.assertEqual(tensors["mlp.router.weight"], ("F32", [2, 48], f32(odd)))
        self.assertEqual(gpt_oss_decode(blocks, [127, 129], 2, 1), w)
        self.assertFalse(any(k.startswith("lowp") for k in meta), meta)
        config = json.load(open(os.path.join(out, "config.json")))
        self.assertEqual(config, {"quantization_config": {"quant_method": "mxfp4",
                                                          "modules_to_not_convert": ["mlp.router"]}})
        info = json.loads(run("inspect", "--json", out).stdout)
        self.assertEqual(info["layout"], "gpt-oss")
        types = {t["name"]: (t["dtype"], t["shape"]) for t in info["tensors"]}
        self.assertEqual(types["mlp.experts.gate_up_proj"], ("mxfp4", [2, 32]))
        self.assertIn("gpt-oss layout", run("inspect", out).stdout)

    def test_gpt_oss_round_trip(self):
        # gpt-oss decodes to lowp's own MXFP4 values, and re-writing it is byte-identical.
        sample_model(self.path("m.npz"))
        out, again = self.path("g1"), self.path("g2")
        self.quantize_dir(self.path("m.npz"), out)
        packed = os.path.join(out, "model.safetensors")
        r = run("quantize", self.path("m.npz"), "-o", self.path("fake.safetensors"), "-f", "mxfp4", "--fake", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("quantize", packed, "-o", self.path("back.safetensors"), "-f", "fp32", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        fake, _ = safetensors_tensors(self.path("fake.safetensors"))
        back, _ = safetensors_tensors(self.path("back.safetensors"))
        for name in ("w1", "w2"):
            self.assertEqual(back[name], fake[name], name)
        tensors, _ = safetensors_tensors(packed)
        self.assertEqual(tensors["w1_blocks"][1], [64, 3, 16])
        self.assertEqual(tensors["conv"][0], "F32")  # last dimension 3: kept
        # The independent decoder above agrees with lowp's reading.
        w1 = struct.unpack(f"<{64 * 96}f", back["w1"][2])
        self.assertEqual(gpt_oss_decode(tensors["w1_blocks"][2], tensors["w1_scales"][2], 64, 3), list(w1))
        self.quantize_dir(out, again)
        self.assertEqual(open(os.path.join(again, "model.safetensors"), "rb").read(), open(packed, "rb").read())
        self.assertEqual(json.load(open(os.path.join(out, "config.json")))["quantization_config"]
                         ["modules_to_not_convert"], ["conv", "bias"])

    def shard(self, src_file, out_dir, split_at, config=None):
        """Splits a safetensors file into two shards and the index beside them,
        as Hugging Face's save_pretrained does; returns the shard file names."""
        tensors, _ = safetensors_tensors(src_file)
        names = list(tensors)
        os.mkdir(out_dir)
        files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        parts = [names[:split_at], names[split_at:]]
        weight_map = {}
        for file, part in zip(files, parts):
            open(os.path.join(out_dir, file), "wb").write(safetensors_raw({n: tensors[n] for n in part}))
            weight_map.update({n: file for n in part})
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map},
                  open(os.path.join(out_dir, "model.safetensors.index.json"), "w"))
        if config is not None:
            json.dump(config, open(os.path.join(out_dir, "config.json"), "w"))
        return files

    def test_sharded_checkpoint(self):
        # A gpt-oss directory saved in two shards reads as the single file does:
        # inspect names the layout, and converting it gives the same bytes.
        sample_model(self.path("m.npz"))
        whole = self.path("whole")
        self.quantize_dir(self.path("m.npz"), whole)
        config = json.load(open(os.path.join(whole, "config.json")))
        names = list(safetensors_tensors(os.path.join(whole, "model.safetensors"))[0])
        # Split after w1's pair: each shard holds whole groups.
        split = names.index("w1_scales") + 1
        sharded = self.path("sharded")
        self.shard(os.path.join(whole, "model.safetensors"), sharded, split, config)
        info = json.loads(run("inspect", "--json", sharded).stdout)
        self.assertEqual(info["layout"], "gpt-oss")
        def listing(info):  # offsets are within each file
            return [{k: v for k, v in t.items() if k != "offset"} for t in info["tensors"]]
        self.assertEqual(listing(info), listing(json.loads(run("inspect", "--json", whole).stdout)))
        for src, dst in ((whole, "a"), (sharded, "b")):
            r = run("quantize", src, "-o", self.path(dst), "-f", "nvfp4", "--layout", "modelopt", "-q")
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(open(self.path("a/model.safetensors"), "rb").read(),
                         open(self.path("b/model.safetensors"), "rb").read())
        # Decoded to plain safetensors from the directory.
        r = run("quantize", sharded, "-o", self.path("plain.safetensors"), "-f", "bf16", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(safetensors_tensors(self.path("plain.safetensors"))[0]["w1"][0], "BF16")

    def test_sharded_checkpoint_bad(self):
        sample_model(self.path("m.npz"))
        whole = self.path("whole")
        self.quantize_dir(self.path("m.npz"), whole)
        names = list(safetensors_tensors(os.path.join(whole, "model.safetensors"))[0])
        # A gpt-oss pair split between the shards.
        split = self.path("split")
        self.shard(os.path.join(whole, "model.safetensors"), split, names.index("w1_blocks") + 1)
        self.assert_fails(["inspect", split], "w1_blocks")
        # A shard the index lists is missing; an index naming a path elsewhere.
        missing = self.path("missing")
        files = self.shard(os.path.join(whole, "model.safetensors"), missing, 2)
        os.remove(os.path.join(missing, files[1]))
        self.assert_fails(["inspect", missing], "is missing")
        evil = self.path("evil")
        self.shard(os.path.join(whole, "model.safetensors"), evil, 2)
        index = os.path.join(evil, "model.safetensors.index.json")
        j = json.load(open(index))
        j["weight_map"]["w2"] = "../m.safetensors"
        json.dump(j, open(index, "w"))
        self.assert_fails(["inspect", evil], "not a .safetensors file in the same directory")
        self.assert_fails(["quantize", evil, "-o", self.path("o"), "-f", "mxfp4", "--layout", "gpt-oss"],
                          "not a .safetensors file in the same directory")

    def test_gpt_oss_model_directory(self):
        # A Hugging Face directory: its config.json gains quantization_config, its
        # tokenizer files are copied, other files are not.
        src = self.path("hf")
        os.mkdir(src)
        with open(os.path.join(src, "model.safetensors"), "wb") as f:
            f.write(safetensors_bytes({"model.layers.0.mlp.experts.down_proj": ((4, 64), [0.1 * i for i in range(256)]),
                                       "model.embed_tokens.weight": ((4, 8), [1.0] * 32)}))
        config = {"architectures": ["GptOssForCausalLM"], "hidden_size": 64}
        json.dump(config, open(os.path.join(src, "config.json"), "w"))
        for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "README.md"):
            open(os.path.join(src, name), "w").write("{}" if name != "README.md" else "hello")
        out = self.path("q")
        self.quantize_dir(src, out, "--include", "*experts*")
        self.assertEqual(sorted(os.listdir(out)), ["config.json", "generation_config.json", "model.safetensors",
                                                   "tokenizer.json", "tokenizer_config.json"])
        written = json.load(open(os.path.join(out, "config.json")))
        self.assertEqual(written["architectures"], ["GptOssForCausalLM"])
        self.assertEqual(written["quantization_config"], {"quant_method": "mxfp4",
                                                          "modules_to_not_convert": ["model.embed_tokens"]})
        self.assertEqual(json.loads(run("inspect", "--json", src).stdout).get("layout"), None)

    def test_gpt_oss_refusals(self):
        sample_model(self.path("m.npz"))
        out = self.path("out")
        base = ["quantize", self.path("m.npz"), "-o", out, "--layout", "gpt-oss"]
        self.assert_fails(base + ["-f", "nvfp4"], "--layout gpt-oss holds mxfp4 (blocks of 32), not 'nvfp4'", out)
        self.assert_fails(base + ["-f", "mxfp4", "--block", "16"], "holds mxfp4 (blocks of 32)", out)
        self.assert_fails(base + ["-f", "mxfp4", "--fake"], "--layout gpt-oss stores packed MXFP4", out)
        self.assert_fails(base + ["-f", "mxfp4", "--axis", "0"], "--axis -1", out)
        self.assert_fails(["quantize", self.path("m.npz"), "-o", out, "-f", "mxfp4", "--layout", "awq"],
                          "unknown --layout 'awq'", out)
        os.mkdir(out)
        open(os.path.join(out, "keep"), "w").write("x")
        self.assert_fails(base + ["-f", "mxfp4"], "exists: --layout gpt-oss writes a new model directory")
        self.assertEqual(os.listdir(out), ["keep"])

    def test_gpt_oss_bad_checkpoints(self):
        d = self.path("ckpt")
        os.mkdir(d)

        def write(tensors, quantization_config):
            with open(os.path.join(d, "model.safetensors"), "wb") as f:
                f.write(safetensors_raw(tensors))
            json.dump({"quantization_config": quantization_config}, open(os.path.join(d, "config.json"), "w"))

        mxfp4 = {"quant_method": "mxfp4"}
        blocks = ("U8", (2, 1, 16), bytes(32))
        write({"w_blocks": blocks}, mxfp4)
        self.assert_fails(["inspect", d], "gpt-oss MXFP4 tensor 'w_blocks' has no scales: tensor 'w_scales' is missing")
        write({"w_blocks": blocks, "w_scales": ("U8", (2, 2), bytes(4))}, mxfp4)
        self.assert_fails(["inspect", d], "scales 'w_scales' must be U8 of shape [2, 1], is U8 [2, 2]")
        write({"w_blocks": blocks, "w_scales": ("F8_E4M3", (2, 1), bytes(2))}, mxfp4)
        self.assert_fails(["inspect", d], "scales 'w_scales' must be U8 of shape [2, 1], is F8_E4M3 [2, 1]")
        write({"w": ("F32", (1,), f32([1.0]))}, mxfp4)
        self.assert_fails(["inspect", d], "config.json says quant_method \"mxfp4\" (gpt-oss) but no tensor")
        write({"w": ("F32", (1,), f32([1.0]))}, {"quant_method": "awq"})
        self.assert_fails(["inspect", d], "unknown quant_method 'awq'")
        # A valid pair reads back; quantize rejects the same faults with no output.
        write({"w_blocks": blocks, "w_scales": ("U8", (2, 1), bytes([127, 127]))}, mxfp4)
        self.assertEqual(json.loads(run("inspect", "--json", d).stdout)["layout"], "gpt-oss")
        write({"w_blocks": blocks}, mxfp4)
        self.assert_fails(["quantize", d, "-o", self.path("o"), "-f", "mxfp4", "--layout", "gpt-oss"],
                          "has no scales", self.path("o"))


    def test_modelopt_nvfp4(self):
        # ModelOpt NVFP4 as vLLM's modelopt.py loads it: <name> U8 [rows, cols/2],
        # <name>_scale F8_E4M3 [rows, cols/16], <name>_scale_2 F32 scalar; a weight is
        # e2m1 * e4m3(scale) * scale_2. Decoded here independently and against lowp's own
        # NVFP4 (--fake); re-writing is byte-identical.
        sample_model(self.path("m.npz"))
        out, again = self.path("mo"), self.path("mo2")
        r = run("quantize", self.path("m.npz"), "-o", out, "-f", "nvfp4", "--layout", "modelopt", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(os.listdir(out)), ["hf_quant_config.json", "model.safetensors"])
        hq = json.load(open(os.path.join(out, "hf_quant_config.json")))
        self.assertEqual(hq["producer"]["name"], "modelopt")
        self.assertEqual(hq["quantization"]["quant_algo"], "NVFP4")
        self.assertEqual(hq["quantization"]["group_size"], 16)
        self.assertEqual(hq["quantization"]["exclude_modules"], ["conv", "bias"])
        packed = os.path.join(out, "model.safetensors")
        tensors, meta = safetensors_tensors(packed)
        self.assertEqual(meta, {})
        self.assertEqual(tensors["w1"][:2], ("U8", [64, 48]))
        self.assertEqual(tensors["w1_scale"][:2], ("F8_E4M3", [64, 6]))
        self.assertEqual(tensors["w1_scale_2"][:2], ("F32", []))
        self.assertEqual(tensors["conv"][0], "F32")  # rank 4: kept
        r = run("quantize", self.path("m.npz"), "-o", self.path("fake.safetensors"), "-f", "nvfp4", "--fake", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("quantize", packed, "-o", self.path("back.safetensors"), "-f", "fp32", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        fake, _ = safetensors_tensors(self.path("fake.safetensors"))
        back, _ = safetensors_tensors(self.path("back.safetensors"))
        for name in ("w1", "w2"):
            self.assertEqual(back[name], fake[name], name)
        # Independent decode of w2: e2m1 * (scale_2 * e4m3) as float32 products (lowp's
        # order; each product of two floats is exact in a double, then rounded once).
        codes, scales = tensors["w2"][2], tensors["w2_scale"][2]
        scale_2 = struct.unpack("<f", tensors["w2_scale_2"][2])[0]
        f32_round = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
        want = []
        for r_ in range(32):
            for j in range(64):
                b = codes[r_ * 32 + j // 2]
                code = b & 0xF if j % 2 == 0 else b >> 4
                want.append(f32_round(FP4_VALUES[code] * f32_round(scale_2 * e4m3_value(scales[r_ * 4 + j // 16]))))
        self.assertEqual(list(struct.unpack(f"<{32 * 64}f", back["w2"][2])), want)
        info = json.loads(run("inspect", "--json", out).stdout)
        self.assertEqual(info["layout"], "modelopt")
        self.assertEqual({t["name"]: t["dtype"] for t in info["tensors"]}["w1"], "nvfp4")
        r = run("quantize", out, "-o", again, "-f", "nvfp4", "--layout", "modelopt", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(open(os.path.join(again, "model.safetensors"), "rb").read(), open(packed, "rb").read())
        self.assert_fails(["quantize", self.path("m.npz"), "-o", self.path("x"), "-f", "mxfp4", "--layout", "modelopt"],
                          "--layout modelopt holds nvfp4 (blocks of 16) or fp8_e4m3:tensor, not 'mxfp4'", self.path("x"))

    def test_modelopt_nvfp4_fused_groups(self):
        # ModelOpt's export gives the layers vLLM fuses (q/k/v, gate/up, an expert's
        # w1/w3) one weight_scale_2, the largest amax of the group / (6 * 448), and
        # every NVFP4 module an input_scale, which vLLM's NVFP4 path reads.
        import random
        rng = random.Random(3)
        amax = {"self_attn.q_proj": 1.0, "self_attn.k_proj": 4.0, "self_attn.v_proj": 2.0,
                "self_attn.o_proj": 8.0, "mlp.gate_proj": 0.5, "mlp.up_proj": 3.0, "mlp.down_proj": 6.0}
        tensors = {}
        for module, a in amax.items():
            w = [rng.uniform(-a, a) for _ in range(4 * 32)]
            w[5] = a  # the amax itself
            tensors[f"model.layers.0.{module}.weight"] = ((4, 32), w)
        with open(self.path("in.safetensors"), "wb") as f:
            f.write(safetensors_bytes(tensors))
        out = self.path("mo")
        r = run("quantize", self.path("in.safetensors"), "-o", out, "-f", "nvfp4", "--layout", "modelopt", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        got, _ = safetensors_tensors(os.path.join(out, "model.safetensors"))
        f32_round = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
        group_amax = {"self_attn.q_proj": 4.0, "self_attn.k_proj": 4.0, "self_attn.v_proj": 4.0,
                      "self_attn.o_proj": 8.0, "mlp.gate_proj": 3.0, "mlp.up_proj": 3.0, "mlp.down_proj": 6.0}
        for module, a in group_amax.items():
            name = f"model.layers.0.{module}"
            scale_2 = struct.unpack("<f", got[name + ".weight_scale_2"][2])[0]
            self.assertEqual(scale_2, f32_round(a / 2688), module)
            self.assertEqual(got[name + ".input_scale"], ("F32", [], f32([1.0])), module)
        # Read back, every weight decodes as e2m1 * e4m3 * its scale_2 and stays
        # within half an E2M1 step (of its block's scale) of the input.
        r = run("quantize", out, "-o", self.path("back.safetensors"), "-f", "fp32", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        back, _ = safetensors_tensors(self.path("back.safetensors"))
        q = struct.unpack("<128f", back["model.layers.0.self_attn.q_proj.weight"][2])
        x = struct.unpack("<128f", f32(tensors["model.layers.0.self_attn.q_proj.weight"][1]))
        for a, b in zip(q, x):
            self.assertLessEqual(abs(a - b), 1.0 / 6 + 1e-6)  # block amax <= 1: steps of at most 1/3
        self.assertEqual(back["model.layers.0.self_attn.q_proj.input_scale"][0], "F32")
        # Re-writing keeps the input's input_scale rather than adding a second one.
        r = run("quantize", out, "-o", self.path("mo2"), "-f", "nvfp4", "--layout", "modelopt", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(open(self.path("mo2/model.safetensors"), "rb").read(),
                         open(os.path.join(out, "model.safetensors"), "rb").read())

    def test_modelopt_bad_checkpoints(self):
        d = self.path("ckpt")
        os.mkdir(d)

        def write(tensors, algo="NVFP4"):
            with open(os.path.join(d, "model.safetensors"), "wb") as f:
                f.write(safetensors_raw(tensors))
            json.dump({"producer": {"name": "modelopt"}, "quantization": {"quant_algo": algo}},
                      open(os.path.join(d, "hf_quant_config.json"), "w"))

        w = ("U8", (2, 8), bytes(16))
        scale = ("F8_E4M3", (2, 1), bytes([0x38, 0x38]))
        scale_2 = ("F32", (), f32([1.0]))
        write({"l.weight": w, "l.weight_scale": scale})
        self.assert_fails(["inspect", d], "ModelOpt NVFP4 tensor 'l.weight' has no per-tensor scale: tensor 'l.weight_scale_2' is missing")
        write({"l.weight": w, "l.weight_scale": ("F8_E4M3", (2, 2), bytes(4)), "l.weight_scale_2": scale_2})
        self.assert_fails(["inspect", d], "scales 'l.weight_scale' must be F8_E4M3 of shape [2, 1], is [2, 2]")
        write({"l.weight": w, "l.weight_scale": scale, "l.weight_scale_2": ("BF16", (2,), bytes(4))})
        self.assert_fails(["inspect", d], "'l.weight_scale_2' must be one F32 value, is BF16 [2]")
        write({"l.weight": w, "l.weight_scale": scale, "l.weight_scale_2": ("F32", (), f32([math.inf]))})
        self.assert_fails(["inspect", d], "must be finite and non-negative")
        write({"l.weight": ("F32", (1,), f32([1.0]))})
        self.assert_fails(["inspect", d], "hf_quant_config.json says ModelOpt NVFP4 but no tensor")
        write({"l.weight": w, "l.weight_scale": scale, "l.weight_scale_2": scale_2}, algo="W4A8_AWQ")
        self.assert_fails(["inspect", d], "unknown ModelOpt quant_algo 'W4A8_AWQ'")
        write({"l.weight": w, "l.weight_scale": scale, "l.weight_scale_2": scale_2})
        info = json.loads(run("inspect", "--json", d).stdout)
        self.assertEqual(info["layout"], "modelopt")
        self.assertEqual(info["tensors"][0]["shape"], [2, 16])


    def test_modelopt_fp8(self):
        # ModelOpt FP8 per tensor: <name> F8_E4M3 + <name>_scale F32 scalar, value = e4m3 * scale,
        # which is lowp's fp8_e4m3:tensor; decoded independently here too.
        sample_model(self.path("m.npz"))
        out, again = self.path("fp8"), self.path("fp8b")
        r = run("quantize", self.path("m.npz"), "-o", out, "-f", "fp8_e4m3:tensor", "--layout", "modelopt", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        hq = json.load(open(os.path.join(out, "hf_quant_config.json")))
        self.assertEqual(hq["quantization"]["quant_algo"], "FP8")
        self.assertNotIn("group_size", hq["quantization"])
        packed = os.path.join(out, "model.safetensors")
        tensors, _ = safetensors_tensors(packed)
        self.assertEqual(tensors["w2"][:2], ("F8_E4M3", [32, 64]))
        self.assertEqual(tensors["w2_scale"][:2], ("F32", []))
        r = run("quantize", self.path("m.npz"), "-o", self.path("fake.safetensors"), "-f", "fp8_e4m3:tensor", "--fake", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("quantize", packed, "-o", self.path("back.safetensors"), "-f", "fp32", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        fake, _ = safetensors_tensors(self.path("fake.safetensors"))
        back, _ = safetensors_tensors(self.path("back.safetensors"))
        for name in ("w1", "w2"):  # conv (rank 4) is kept
            self.assertEqual(back[name], fake[name], name)
        scale = struct.unpack("<f", tensors["w2_scale"][2])[0]
        f32_round = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
        self.assertEqual(list(struct.unpack(f"<{32 * 64}f", back["w2"][2])),
                         [f32_round(e4m3_value(c) * scale) for c in tensors["w2"][2]])
        self.assertEqual(json.loads(run("inspect", "--json", out).stdout)["layout"], "modelopt")
        r = run("quantize", out, "-o", again, "-f", "fp8_e4m3:tensor", "--layout", "modelopt", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(open(os.path.join(again, "model.safetensors"), "rb").read(), open(packed, "rb").read())
        d = self.path("bad")
        os.mkdir(d)
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(safetensors_raw({"l.weight": ("F8_E4M3", (2, 2), bytes(4)), "l.weight_scale": ("F32", (2,), f32([1, 1]))}))
        self.assert_fails(["inspect", d], "FP8 tensor 'l.weight': scale 'l.weight_scale' must be one F32 value (per tensor), is [2]")
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(safetensors_raw({"l.weight": ("F8_E4M3", (2, 2), bytes(4))}))
        json.dump({"quantization": {"quant_algo": "FP8"}}, open(os.path.join(d, "hf_quant_config.json"), "w"))
        self.assert_fails(["inspect", d], "hf_quant_config.json says ModelOpt FP8 but no tensor")


    def test_compressed_tensors_fp8(self):
        # compressed-tensors float-quantized FP8 (per tensor and per channel): decoded values
        # equal lowp's own fake quantization and an independent e4m3 * scale; config.json
        # carries the quantization_config; re-writing is byte-identical.
        sample_model(self.path("m.npz"))
        for fmt, strategy, scale_shape in (("fp8_e4m3:tensor", "tensor", [1]), ("fp8_e4m3:channel", "channel", [32, 1])):
            out, again = self.path("ct_" + strategy), self.path("ct2_" + strategy)
            r = run("quantize", self.path("m.npz"), "-o", out, "-f", fmt, "--layout", "compressed-tensors", "-q")
            self.assertEqual(r.returncode, 0, r.stderr)
            q = json.load(open(os.path.join(out, "config.json")))["quantization_config"]
            self.assertEqual((q["quant_method"], q["format"], q["quantization_status"]),
                             ("compressed-tensors", "float-quantized", "compressed"))
            self.assertEqual(q["config_groups"]["group_0"]["targets"], ["Linear"])
            weights = q["config_groups"]["group_0"]["weights"]
            self.assertEqual((weights["num_bits"], weights["type"], weights["strategy"]), (8, "float", strategy))
            self.assertEqual(q["ignore"], ["conv", "bias"])
            packed = os.path.join(out, "model.safetensors")
            tensors, _ = safetensors_tensors(packed)
            self.assertEqual(tensors["w2"][:2], ("F8_E4M3", [32, 64]))
            self.assertEqual(tensors["w2_scale"][:2], ("F32", scale_shape))
            r = run("quantize", self.path("m.npz"), "-o", self.path("fake.safetensors"), "-f", fmt, "--fake", "-q")
            self.assertEqual(r.returncode, 0, r.stderr)
            r = run("quantize", packed, "-o", self.path("back.safetensors"), "-f", "fp32", "-q")
            self.assertEqual(r.returncode, 0, r.stderr)
            fake, _ = safetensors_tensors(self.path("fake.safetensors"))
            back, _ = safetensors_tensors(self.path("back.safetensors"))
            for name in ("w1", "w2"):
                self.assertEqual(back[name], fake[name], (fmt, name))
            scales = struct.unpack(f"<{len(tensors['w2_scale'][2]) // 4}f", tensors["w2_scale"][2])
            f32_round = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
            want = [f32_round(e4m3_value(c) * scales[i // 64 if len(scales) > 1 else 0])
                    for i, c in enumerate(tensors["w2"][2])]
            self.assertEqual(list(struct.unpack(f"<{32 * 64}f", back["w2"][2])), want)
            info = json.loads(run("inspect", "--json", out).stdout)
            self.assertEqual(info["layout"], "compressed-tensors")
            self.assertEqual({t["name"]: t["dtype"] for t in info["tensors"]}["w2"], fmt)
            r = run("quantize", out, "-o", again, "-f", fmt, "--layout", "compressed-tensors", "-q")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(open(os.path.join(again, "model.safetensors"), "rb").read(), open(packed, "rb").read())
        for bad in ("mxfp4", "int3:channel", "fp8_e4m3:group32"):
            self.assert_fails(["quantize", self.path("m.npz"), "-o", self.path("x"), "-f", bad, "--layout", "compressed-tensors"],
                              "--layout compressed-tensors holds fp8_e4m3:tensor or fp8_e4m3:channel", self.path("x"))
        d = self.path("bad")
        os.mkdir(d)
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(safetensors_raw({"l.weight": ("F8_E4M3", (2, 2), bytes(4)), "l.weight_scale": ("F32", (2, 2), f32([1] * 4))}))
        self.assert_fails(["inspect", d], "FP8 tensor 'l.weight': scale 'l.weight_scale' must be one F32 value (per tensor), is [2, 2] (per channel: [2, 1])")
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(safetensors_raw({"l.weight": ("F8_E4M3", (2, 2), bytes(4))}))
        for fmt_name, message in (("float-quantized", "says compressed-tensors float-quantized but no tensor"),
                                  ("pack-quantized", "says compressed-tensors pack-quantized but no tensor is stored as <name>_packed"),
                                  ("nvfp4-pack-quantized", "says compressed-tensors nvfp4-pack-quantized but no tensor"),
                                  ("marlin-24", "compressed-tensors format 'marlin-24' is not read by lowp")):
            json.dump({"quantization_config": {"quant_method": "compressed-tensors", "format": fmt_name}},
                      open(os.path.join(d, "config.json"), "w"))
            self.assert_fails(["inspect", d], message)


    def test_compressed_tensors_nvfp4(self):
        # nvfp4-pack-quantized (compressed-tensors compressors/nvfp4): <name>_packed U8 (element
        # 2i in the low nibble), <name>_scale F8_E4M3, <name>_global_scale F32 [1] = 448 * 6 / amax
        # (generate_gparam). Decoded independently as e2m1 * (e4m3 * fp32(1 / g)), lowp's reading.
        sample_model(self.path("m.npz"))
        out = self.path("ct")
        r = run("quantize", self.path("m.npz"), "-o", out, "-f", "nvfp4", "--layout", "compressed-tensors", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        q = json.load(open(os.path.join(out, "config.json")))["quantization_config"]
        self.assertEqual((q["quant_method"], q["format"], q["quantization_status"]),
                         ("compressed-tensors", "nvfp4-pack-quantized", "compressed"))
        weights = q["config_groups"]["group_0"]["weights"]
        self.assertEqual((weights["num_bits"], weights["type"], weights["strategy"], weights["group_size"],
                          weights["symmetric"], weights["dynamic"], weights["scale_dtype"]),
                         (4, "float", "tensor_group", 16, True, False, "torch.float8_e4m3fn"))
        self.assertEqual(q["ignore"], ["conv", "bias"])
        tensors, meta = safetensors_tensors(os.path.join(out, "model.safetensors"))
        self.assertEqual(meta, {})
        self.assertEqual(tensors["w1_packed"][:2], ("U8", [64, 48]))
        self.assertEqual(tensors["w1_scale"][:2], ("F8_E4M3", [64, 6]))
        self.assertEqual(tensors["w1_global_scale"][:2], ("F32", [1]))
        f32_round = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
        r = run("quantize", self.path("m.npz"), "-o", self.path("plain.safetensors"), "-f", "fp32", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        plain, _ = safetensors_tensors(self.path("plain.safetensors"))
        w1 = struct.unpack(f"<{64 * 96}f", plain["w1"][2])
        g = struct.unpack("<f", tensors["w1_global_scale"][2])[0]
        self.assertEqual(g, f32_round(2688.0 / max(abs(v) for v in w1)))
        t = f32_round(1.0 / g)
        packed, scales = tensors["w1_packed"][2], tensors["w1_scale"][2]
        want = [f32_round(FP4_VALUES[(packed[i // 2] >> (4 * (i % 2))) & 0xF] * f32_round(t * e4m3_value(scales[i // 16])))
                for i in range(64 * 96)]
        r = run("quantize", out, "-o", self.path("back.safetensors"), "-f", "fp32", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        back, _ = safetensors_tensors(self.path("back.safetensors"))
        self.assertEqual(list(struct.unpack(f"<{64 * 96}f", back["w1"][2])), want)
        info = json.loads(run("inspect", "--json", out).stdout)
        self.assertEqual(info["layout"], "compressed-tensors")
        self.assertEqual({t["name"]: t["dtype"] for t in info["tensors"]}["w1"], "nvfp4")
        # Into lowp's own nvfp4 and back: codes and scales copied, the same values.
        r = run("quantize", out, "-o", self.path("lowp.safetensors"), "-f", "nvfp4", "--include", "w*", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        again = self.path("ct2")
        r = run("quantize", self.path("lowp.safetensors"), "-o", again, "-f", "nvfp4", "--layout", "compressed-tensors", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        tensors2, _ = safetensors_tensors(os.path.join(again, "model.safetensors"))
        for name in ("w1_packed", "w1_scale", "w2_packed", "w2_scale"):
            self.assertEqual(tensors2[name], tensors[name], name)
        g2 = struct.unpack("<f", tensors2["w1_global_scale"][2])[0]
        self.assertEqual(f32_round(1.0 / g2), t)

    def test_compressed_tensors_pack_quantized(self):
        # pack-quantized (compressed-tensors compressors/pack_quantized): codes q + 2^(bits-1) packed
        # into int32 words, element i at bit i * bits (pack_to_int32); scales; shape I64 [2];
        # asymmetric zero points packed down the columns. Decoded independently as
        # unpack_from_int32 does, the values are lowp's own --fake ones; re-writing is byte-identical.
        sample_model(self.path("m.npz"))
        for fmt, bits, strategy, group, scale in (("int4:group32", 4, "group", 32, ("F16", [64, 3])),
                                                  ("int8:channel", 8, "channel", None, ("F32", [64, 1])),
                                                  ("int4:group16:asym", 4, "group", 16, ("F16", [64, 6]))):
            out = self.path("ct_" + fmt.replace(":", "_"))
            r = run("quantize", self.path("m.npz"), "-o", out, "-f", fmt, "--layout", "compressed-tensors", "-q")
            self.assertEqual(r.returncode, 0, r.stderr)
            q = json.load(open(os.path.join(out, "config.json")))["quantization_config"]
            self.assertEqual((q["format"], q["version"]), ("pack-quantized", "0.18.0"))
            weights = q["config_groups"]["group_0"]["weights"]
            asym = fmt.endswith(":asym")
            self.assertEqual((weights["num_bits"], weights["type"], weights["strategy"], weights["group_size"],
                              weights["symmetric"]), (bits, "int", strategy, group, not asym))
            tensors, _ = safetensors_tensors(os.path.join(out, "model.safetensors"))
            words = 96 * bits // 32
            self.assertEqual(tensors["w1_packed"][:2], ("I32", [64, words]))
            self.assertEqual(tensors["w1_scale"][:2], scale)
            self.assertEqual(tensors["w1_shape"], ("I64", [2], struct.pack("<2q", 64, 96)))
            groups = scale[1][1]
            packed = struct.unpack(f"<{64 * words}I", tensors["w1_packed"][2])
            unpack = lambda row_words, i: ((row_words[i * bits // 32] >> (i * bits % 32)) & ((1 << bits) - 1)) - (1 << (bits - 1))
            qs = [unpack(packed[r * words:(r + 1) * words], i) for r in range(64) for i in range(96)]
            fmt_code = "e" if scale[0] == "F16" else "f"
            sc = struct.unpack(f"<{64 * groups}{fmt_code}", tensors["w1_scale"][2])
            zp = [0] * (64 * groups)
            if asym:
                zwords = 64 * bits // 32
                self.assertEqual(tensors["w1_zero_point"][:2], ("I32", [zwords, groups]))
                z = struct.unpack(f"<{zwords * groups}I", tensors["w1_zero_point"][2])
                for k in range(groups):
                    column = [z[w * groups + k] for w in range(zwords)]
                    for r in range(64):
                        zp[r * groups + k] = unpack(column, r)
            else:
                self.assertNotIn("w1_zero_point", tensors)
            f32_round = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
            want = [f32_round((qs[r * 96 + i] - zp[r * groups + i * groups // 96]) * sc[r * groups + i * groups // 96])
                    for r in range(64) for i in range(96)]
            r = run("quantize", self.path("m.npz"), "-o", self.path("fake.safetensors"), "-f", fmt, "--fake", "-q")
            self.assertEqual(r.returncode, 0, r.stderr)
            r = run("quantize", out, "-o", self.path("back.safetensors"), "-f", "fp32", "-q")
            self.assertEqual(r.returncode, 0, r.stderr)
            fake, _ = safetensors_tensors(self.path("fake.safetensors"))
            back, _ = safetensors_tensors(self.path("back.safetensors"))
            self.assertEqual(list(struct.unpack(f"<{64 * 96}f", back["w1"][2])), want, fmt)
            for name in ("w1", "w2"):
                self.assertEqual(back[name], fake[name], (fmt, name))
            info = json.loads(run("inspect", "--json", out).stdout)
            self.assertEqual(info["layout"], "compressed-tensors")
            self.assertEqual({t["name"]: t["dtype"] for t in info["tensors"]}["w1"], fmt)
            again = self.path("again_" + fmt.replace(":", "_"))
            r = run("quantize", out, "-o", again, "-f", fmt, "--layout", "compressed-tensors", "-q")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(open(os.path.join(again, "model.safetensors"), "rb").read(),
                             open(os.path.join(out, "model.safetensors"), "rb").read())
        d = self.path("bad_pack")
        os.mkdir(d)
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(safetensors_raw({"l.weight_packed": ("I32", (2, 2), bytes(16)),
                                     "l.weight_shape": ("I64", (2,), struct.pack("<2q", 2, 16))}))
        self.assert_fails(["inspect", d], "compressed-tensors pack-quantized tensor 'l.weight_packed' has no scales: "
                                          "tensor 'l.weight_scale' ([rows, groups], F32, F16 or BF16) is missing")
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(safetensors_raw({"l.weight_packed": ("U8", (2, 8), bytes(16)),
                                     "l.weight_scale": ("F8_E4M3", (2, 2), bytes(4)),
                                     "l.weight_global_scale": ("F32", (1,), f32([448]))}))
        self.assert_fails(["inspect", d], "block scales 'l.weight_scale' must be F8_E4M3 of shape [2, 1], is F8_E4M3 [2, 2]")


class Analyze(Base):
    """`lowp analyze`: per-tensor format analysis of a distribution or a model file."""

    def analyze_json(self, *args):
        r = run("analyze", *args, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_dist_uniform_int8_sqnr_and_recommendation(self):
        j = self.analyze_json("--dist", "uniform", "-n", "100000", "--bits", "4,8")
        self.assertEqual(j["bits"], [4, 8])
        t = j["tensors"][0]
        names = [f["name"] for f in t["formats"]]
        for n in ("int4", "e1m2fin", "e2m1fin", "e3m0fin", "mxfp4", "nvfp4", "int8", "e4m3fin",
                  "e7m0fin", "mxfp8_e4m3", "mxint8"):
            self.assertIn(n, names)
        self.assertNotIn("int4:channel", names)  # one row: no per-row candidates
        int8 = next(f for f in t["formats"] if f["name"] == "int8")
        # Uniform data on a 255-level grid tiling its range: SQNR = 10 log10(255^2)
        # (variance 1/3 over D^2/12 with D = 2/255), measured and analytic.
        self.assertAlmostEqual(int8["sqnr_db"], 20 * math.log10(255), delta=0.1)
        self.assertAlmostEqual(int8["analytic_sqnr_db"], 20 * math.log10(255), delta=0.01)
        # The cited MAC costs (docs/analyze.md): scalar formats vs a scalar INT8
        # MAC, block formats vs an MXINT8 dot-product unit; n/a where none cited.
        cost = {f["name"]: (f["mac_cost_vs_int8"], f["mac_cost_reference"]) for f in t["formats"]}
        self.assertEqual(cost["int8"], ("1", "int8"))
        self.assertEqual(cost["e4m3fin"], ("1.5-2.8", "int8"))
        self.assertEqual(cost["mxint8"], ("1", "mxint8"))
        self.assertEqual(cost["mxfp8_e4m3"], ("1.3-1.6", "mxint8"))
        self.assertEqual(cost["nvfp4"], ("0.68-0.87", "mxint8"))
        for n in ("int4", "e2m1fin", "mxfp4", "mxfp8_e5m2"):
            self.assertEqual(cost[n], ("n/a", ""), n)
        e4m3 = next(f for f in t["formats"] if f["name"] == "e4m3fin")
        self.assertEqual(e4m3["mac_cost_source"], "van Baalen et al. 2023")
        self.assertIn("Chen et al. 2025", j["mac_cost_note"])
        self.assertIsNone(next(f for f in t["formats"] if f["name"] == "mxfp4")["clip_over_amax"])
        rec = {r["bits"]: r["format"] for r in t["recommendation"]}
        self.assertEqual(rec, {4: "int4", 8: "int8"})

    def test_dist_table_heavy_tails_recommend_fp(self):
        r = run("analyze", "--dist", "student-t:3", "--outliers", "0.001:10", "-n", "50000", "--bits", "4")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("analytic dB", r.stdout)
        self.assertIn("not measured", r.stdout)
        self.assertIn("vs an MXINT8 dot-product unit", r.stdout)
        last = r.stdout.strip().splitlines()[-1]
        self.assertTrue(last.startswith("tensor student-t:3 + outliers 0.001:10: at 4 bits use e"), last)

    def model_tensor(self):
        model = os.path.join(SOURCE_DIR, "models", "kjv-char", "model.safetensors")
        r = run("inspect", model, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        tensors = json.loads(r.stdout)["tensors"]
        t = next(t for t in tensors if len(t["shape"]) == 2 and t["shape"][0] > 1 and t["shape"][1] >= 64)
        return model, t

    def test_model_file_json_and_svg(self):
        model, info = self.model_tensor()
        svg = self.path("a.svg")
        j = self.analyze_json(model, "--tensor", info["name"], "--bits", "4,6,8", "--svg", svg)
        self.assertEqual(len(j["tensors"]), 1)
        t = j["tensors"][0]
        self.assertEqual(t["name"], info["name"])
        self.assertEqual([t["rows"], t["cols"]], info["shape"])
        names = {f["name"] for f in t["formats"]}
        self.assertTrue({"int4:channel", "e2m1fin:channel", "mxfp6_e2m3", "int8"} <= names, names)
        for f in t["formats"]:
            self.assertGreater(f["sqnr_db"], 0, f)
            self.assertIsNone(f["analytic_sqnr_db"])  # no distribution
        self.assertEqual([r["bits"] for r in t["recommendation"]], [4, 6, 8])
        with open(svg) as f:
            text = f.read()
        self.assertTrue(text.startswith("<svg"), text[:40])
        self.assertIn("polyline", text)
        self.assertTrue(text.rstrip().endswith("</svg>"))

    def test_model_file_table(self):
        model, info = self.model_tensor()
        r = run("analyze", model, "--tensor", info["name"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("kurtosis", r.stdout)
        self.assertIn(f"tensor {info['name']}: at 4 bits use ", r.stdout)
        self.assertIn(", at 8 bits ", r.stdout)

    def test_bad_input(self):
        model, _ = self.model_tensor()
        self.assert_fails(["analyze", "--dist", "cauchy"], "unknown distribution 'cauchy'")
        self.assert_fails(["analyze", "--dist", "student-t:x"], "student-t")
        self.assert_fails(["analyze", "--dist", "gaussian", "--outliers", "5:2"], "outliers '5:2'")
        for bits in ("9", "4,x", "", "1"):
            self.assert_fails(["analyze", "--dist", "gaussian", "--bits", bits], "--bits")
        self.assert_fails(["analyze", self.path("nope.safetensors")], "nope.safetensors")
        self.assert_fails(["analyze", model, "--tensor", "no.such.tensor"], "no tensor named 'no.such.tensor'")
        self.assert_fails(["analyze", model, "--min-elements", "1000000000"], "no tensor of real numbers with at least")
        self.assert_fails(["analyze"], "either a model FILE or --dist")
        self.assert_fails(["analyze", model, "--dist", "gaussian"], "either a model FILE or --dist")
        svg = self.path("x.svg")
        self.assert_fails(["analyze", "--dist", "gaussian", "--bits", "9", "--svg", svg], "--bits", svg)


class BadInput(Base):
    def setUp(self):
        super().setUp()
        write_npy(self.path("x.npy"), "<f4", (2,), f32([1.0, 2.0]))
        self.out = self.path("out.npy")

    def test_unknown_format_suggests(self):
        line = self.assert_fails(["encode", "-f", "fp8_e4m2", self.path("x.npy"), self.out], "unknown format 'fp8_e4m2'", self.out)
        self.assertIn("fp8_e4m3", line)

    def test_bad_minifloat(self):
        self.assert_fails(["encode", "-f", "e9m2", self.path("x.npy"), self.out], "exponent bits", self.out)

    def test_missing_file(self):
        self.assert_fails(["encode", "-f", "fp8_e4m3", self.path("nope.npy"), self.out], "nope.npy", self.out)

    def test_truncated(self):
        full = npy_bytes("<f4", (4,), f32([1, 2, 3, 4]))
        for cut in (5, 20, len(full) - 3):
            with open(self.path("t.npy"), "wb") as f:
                f.write(full[:cut])
            self.assert_fails(["encode", "-f", "fp8_e4m3", self.path("t.npy"), self.out], "t.npy", self.out)

    def test_not_npy(self):
        with open(self.path("t.npy"), "w") as f:
            f.write("hello, world, this is not a numpy file at all\n")
        self.assert_fails(["encode", "-f", "fp8_e4m3", self.path("t.npy"), self.out], "t.npy", self.out)

    def test_wrong_dtype(self):
        write_npy(self.path("i.npy"), "|u1", (2,), b"\x01\x02")
        self.assert_fails(["encode", "-f", "fp8_e4m3", self.path("i.npy"), self.out], "uint8 is not a float array", self.out)
        self.assert_fails(["decode", "-f", "fp8_e4m3", self.path("x.npy"), self.out], "does not hold codes", self.out)

    def test_code_out_of_range(self):
        write_npy(self.path("c.npy"), "|u1", (3,), b"\x01\x0F\x10")
        self.assert_fails(["decode", "-f", "fp4_e2m1", self.path("c.npy"), self.out], "element 2 holds 16", self.out)

    def test_big_endian_and_fortran(self):
        write_npy(self.path("b.npy"), ">f4", (1,), struct.pack(">f", 1.0))
        self.assert_fails(["encode", "-f", "fp8_e4m3", self.path("b.npy"), self.out], "big-endian", self.out)
        write_npy(self.path("o.npy"), "<f4", (1, 1), f32([1.0]), fortran=True)
        self.assert_fails(["encode", "-f", "fp8_e4m3", self.path("o.npy"), self.out], "Fortran", self.out)

    def test_unwritable_output(self):
        out = os.path.join(self.dir, "no_such_dir", "y.npy")
        self.assert_fails(["encode", "-f", "fp8_e4m3", self.path("x.npy"), out], "no_such_dir", out)

    def test_existing_output_untouched_on_error(self):
        with open(self.out, "wb") as f:
            f.write(b"keep me")
        write_npy(self.path("i.npy"), "|u1", (2,), b"\x01\x02")
        r = run("encode", "-f", "fp8_e4m3", self.path("i.npy"), self.out)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(open(self.out, "rb").read(), b"keep me")

    def test_bad_options(self):
        self.assert_fails(["encode", "-f", "fp8_e4m3", "--round", "up", self.path("x.npy"), self.out], "unknown rounding 'up'", self.out)
        self.assert_fails(["decode", "-f", "fp8_e4m3", "--dtype", "int8", self.path("x.npy"), self.out], "unknown output dtype", self.out)
        r = run("encode", self.path("x.npy"), self.out)  # --format missing: a usage error
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--format", r.stderr)
        self.assertFalse(os.path.exists(self.out))
        r = run("frobnicate")
        self.assertNotEqual(r.returncode, 0)


# The report tests that run a search per layer (seconds each in Release, minutes
# under ASan): ctest runs them as cli_heavy_test in the slow tier, the rest as
# cli_test (LOWP_CLI_PART=heavy or light; unset: all).
class Numeracy(Base):
    """`lowp numeracy digits|tasks|score|eval`."""

    LLAMA = os.path.join(SOURCE_DIR, "models", "kjv-llama")

    def test_digits(self):
        r = run("numeracy", "digits", "x=1234567.891", "-g", "l2r3", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["pieces"], ["x=", "123", "456", "7", ".", "891"])
        self.assertEqual(out["comma"], "x=1,234,567.891")
        r = run("numeracy", "digits", "12345", "--tokenizer", self.LLAMA, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        toks = json.loads(r.stdout)["tokens"]

        def cuts(pieces):
            at, out = 0, set()
            for p in pieces:
                at += len(p)
                out.add(at)
            return out

        # The KJV Llama's vocabulary has no multi-digit tokens (tokenizer_test
        # checks the regrouping on one that has): the cuts still hold.
        self.assertEqual("".join(toks["default"]), "12345")
        self.assertEqual("".join(toks["r2l3"]), "12345")
        self.assertEqual("".join(toks["comma"]), "12,345")
        self.assertIn(2, cuts(toks["r2l3"]))  # 12|345

    def test_digit_stats(self):
        text = self.path("t.txt")
        with open(text, "w") as f:
            f.write("In 1234567 and 12 and 3.14159.")
        r = run("numeracy", "digits", "--file", text, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = {x["scheme"]: x for x in json.loads(r.stdout)}
        # Groups: 1|234|567, 12, 3|.|141|59 (r2l3); bytes for default and comma.
        self.assertEqual(rows["r2l3"]["tokens"], 3 + 1 + 4)
        self.assertEqual(rows["l2r3"]["tokens"], 3 + 1 + 4)
        self.assertEqual(rows["l2r1"]["tokens"], 7 + 2 + 7)
        self.assertEqual(rows["default"]["tokens"], 7 + 2 + 7)
        self.assertEqual(rows["comma"]["tokens"], 9 + 2 + 7)
        self.assertEqual(rows["r2l3"]["numbers"], 3)
        r = run("numeracy", "digits", "--file", text, "--tokenizer", self.LLAMA)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("3 numbers", r.stdout)
        self.assert_fails(["numeracy", "digits", "12", "--file", text], "either TEXT or --file")
        self.assert_fails(["numeracy", "digits", "--file", self.path("none.txt")], "cannot open")

    def test_tasks_and_score(self):
        r = run("numeracy", "tasks", "--tasks", "add,mul", "-n", "3", "--digits", "2",
                "--style", "bare")
        self.assertEqual(r.returncode, 0, r.stderr)
        items = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual([it["task"] for it in items], ["add"] * 3 + ["mul"] * 3)
        for it in items:
            a, b = map(int, it["expression"].replace("*", "+").split("+"))
            self.assertEqual(int(it["answer"]), a + b if it["task"] == "add" else a * b)
            self.assertEqual(it["prompt"], it["expression"] + "=")
        answers = self.path("answers.jsonl")
        with open(answers, "w") as f:
            for i, it in enumerate(items):
                out = it["answer"] if i % 2 == 0 else "0"
                f.write(json.dumps({"task": it["task"], "answer": it["answer"],
                                    "output": " " + out + "\nQ: 1"}) + "\n")
        r = run("numeracy", "score", answers)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("add", r.stdout)
        self.assertRegex(r.stdout, r"add\s+66\.7%  \(2/3\)")
        self.assertRegex(r.stdout, r"mul\s+33\.3%  \(1/3\)")

    def test_eval_agrees_with_greedy_generate(self):
        # The embedded byte-level model: eval's answer to an item is what
        # `lowp generate --temperature 0` continues its prompt with.
        r = run("numeracy", "eval", "--tasks", "add", "-n", "2", "--digits", "2",
                "--schemes", "default,comma", "--json", "--show")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual([(x["scheme"], x["total"]) for x in out["results"]],
                         [("default", 2), ("comma", 2)])
        shown = [line for line in r.stderr.splitlines() if line.startswith("[fp32 default add]")]
        self.assertEqual(len(shown), 2)
        item = json.loads(run("numeracy", "tasks", "--tasks", "add", "-n", "1", "--digits",
                              "2").stdout)
        output = json.loads(shown[0].split(" -> ")[1].rsplit(" (", 1)[0])
        g = run("generate", "--temperature", "0", "-n", str(len(output)), item["prompt"])
        self.assertEqual(g.returncode, 0, g.stderr)
        self.assertEqual(g.stdout, item["prompt"] + output + "\n")

    def test_eval_tokenizer_schemes(self):
        r = run("numeracy", "eval", self.LLAMA, "--tasks", "copy,compare", "-n", "2",
                "--digits", "4", "--schemes", "default,l2r1,r2l3", "-f", "fp32,mxfp4")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("weights mxfp4", r.stdout)
        self.assertRegex(r.stdout, r"compare\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+")

    def test_bad_input(self):
        self.assert_fails(["numeracy", "tasks", "--tasks", "addition"], "unknown numeracy task")
        self.assert_fails(["numeracy", "tasks", "--tasks", "mul", "--digits", "10"],
                          "--digits must be 1 ... 9")
        self.assert_fails(["numeracy", "tasks", "--style", "chat"], "unknown prompt style")
        self.assert_fails(["numeracy", "digits", "12", "-g", "r2l0"], "unknown digit grouping")
        self.assert_fails(["numeracy", "eval", "--schemes", "r2l3", "-n", "1"],
                          "this model reads bytes")
        self.assert_fails(["numeracy", "eval", "--schemes", "x", "-n", "1"],
                          "unknown tokenization scheme")
        self.assert_fails(["numeracy", "eval", "-f", "fp9", "-n", "1"], "fp9")
        self.assert_fails(["numeracy", "score", self.path("missing.jsonl")], "cannot open")
        bad = self.path("bad.jsonl")
        with open(bad, "w") as f:
            f.write('{"answer": "1", "output": "1"}\n{"answer": 1}\n')
        self.assert_fails(["numeracy", "score", bad], "bad.jsonl:2")


HEAVY = {"test_power_rows", "test_nupes", "test_split_search_methods", "test_vq_rows"}


class Convert(Base):
    """lowp convert: another layout's codes and scales copied, never requantized."""

    def model(self):
        import random
        rng = random.Random(11)
        tensors = {"model.layers.0.mlp.down_proj.weight": ((8, 128), [rng.gauss(0, 1) for _ in range(8 * 128)]),
                   "model.layers.0.self_attn.o_proj.weight": ((4, 64), [rng.gauss(0, 0.1) for _ in range(4 * 64)]),
                   "model.norm.weight": ((64,), [1.0] * 64)}
        # A block of huge values, one of zeros: scales at both ends.
        w = tensors["model.layers.0.mlp.down_proj.weight"][1]
        w[:16] = [1e4 * (i - 8) for i in range(16)]
        w[16:32] = [0.0] * 16
        with open(self.path("in.safetensors"), "wb") as f:
            f.write(safetensors_bytes(tensors))
        return self.path("in.safetensors")

    def test_modelopt_to_gguf_and_back(self):
        src = self.model()
        mo, gguf, back = self.path("mo"), self.path("m.gguf"), self.path("mo2")
        r = run("quantize", src, "-o", mo, "-f", "nvfp4", "--layout", "modelopt", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("convert", mo, "-o", gguf, "--report", self.path("r.json"), "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        info = {t["name"]: t for t in json.loads(run("inspect", "--json", gguf).stdout)["tensors"]}
        self.assertEqual(info["model.layers.0.mlp.down_proj.weight"]["dtype"], "NVFP4")
        self.assertEqual(info["model.layers.0.mlp.down_proj.scale"]["dtype"], "F32")
        self.assertEqual(info["model.layers.0.mlp.down_proj.input_scale"]["dtype"], "F32")  # kept
        self.assertEqual(info["model.norm.weight"]["dtype"], "F32")
        # ggml's blocks hold ModelOpt's codes and scale bytes; its per-tensor scale
        # tensor holds weight_scale_2 (checked byte for byte by the way back).
        r = run("convert", gguf, "-o", back, "--layout", "modelopt", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(open(os.path.join(back, "model.safetensors"), "rb").read(),
                         open(os.path.join(mo, "model.safetensors"), "rb").read())
        self.assertEqual(json.loads(run("inspect", "--json", back).stdout)["layout"], "modelopt")

    def test_gpt_oss_to_gguf_and_back(self):
        src = self.model()
        g1, gguf, g2, lowp_file, g3 = (self.path("g1"), self.path("g.gguf"), self.path("g2"),
                                       self.path("l.safetensors"), self.path("g3"))
        r = run("quantize", src, "-o", g1, "-f", "mxfp4", "--layout", "gpt-oss", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        for args in (["convert", g1, "-o", gguf], ["convert", gguf, "-o", g2, "--layout", "gpt-oss"],
                     ["convert", g2, "-o", lowp_file], ["convert", lowp_file, "-o", g3, "--layout", "gpt-oss"]):
            r = run(*args, "-q")
            self.assertEqual(r.returncode, 0, (args, r.stderr))
        original = open(os.path.join(g1, "model.safetensors"), "rb").read()
        self.assertEqual(open(os.path.join(g2, "model.safetensors"), "rb").read(), original)
        self.assertEqual(open(os.path.join(g3, "model.safetensors"), "rb").read(), original)
        self.assertEqual(json.load(open(os.path.join(g3, "config.json"))),
                         json.load(open(os.path.join(g1, "config.json"))))

    def test_refusals(self):
        src = self.model()
        self.assert_fails(["convert", src, "-o", self.path("x.gguf")],
                          "holds no tensor in a block or scaled format", self.path("x.gguf"))
        # Two formats in one file.
        a, b, both = self.path("a.safetensors"), self.path("b.safetensors"), self.path("both.safetensors")
        for fmt, out in (("mxfp4", a), ("nvfp4", b)):
            r = run("quantize", src, "-o", out, "-f", fmt, "-q")
            self.assertEqual(r.returncode, 0, r.stderr)
        ta, _ = safetensors_tensors(a)
        tb, meta_b = safetensors_tensors(b)
        mixed = {k: v for k, v in ta.items() if "down_proj" in k}
        mixed.update({k: v for k, v in tb.items() if "o_proj" in k})
        meta = {k: v for k, v in meta_b.items() if "o_proj" in k}
        meta.update({k: v for k, v in safetensors_tensors(a)[1].items() if "down_proj" in k})
        open(both, "wb").write(safetensors_raw(mixed, meta))
        self.assert_fails(["convert", both, "-o", self.path("y.gguf")], "several formats (mxfp4, nvfp4)",
                          self.path("y.gguf"))


class ChunkStats(Base):
    """--chunk-stats on quantize/convert: per-chunk min/max/amax/non-finite
    statistics in __metadata__ (lowp_chunk_stats), read with json + struct only."""

    def quantize(self, out, *extra):
        sample_model(self.path("m.npz"))
        r = run("quantize", self.path("m.npz"), "-o", out, "-f", "mxfp4", *extra)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_plain_readers_see_the_same_tensors_and_exact_stats(self):
        plain, stats = self.path("plain.safetensors"), self.path("stats.safetensors")
        self.quantize(plain)
        self.quantize(stats, "--chunk-stats=16")
        a, meta_a = safetensors_tensors(plain)
        b, meta_b = safetensors_tensors(stats)
        self.assertEqual(a, b)  # the same entries and bytes for every tensor
        self.assertNotIn("lowp_chunk_stats", meta_a)
        st = json.loads(meta_b.pop("lowp_chunk_stats"))
        self.assertEqual(meta_a, meta_b)
        self.assertEqual(st["version"], 1)
        # The F32 tensors kept as they are: recompute from the bytes.
        for name in ("bias",):
            dtype, shape, data = b[name]
            self.assertEqual(dtype, "F32")
            e = st["tensors"][name]
            row = 1
            for d in shape[1:]:
                row *= d
            values = struct.unpack(f"<{len(data) // 4}f", data)
            rows = shape[0]
            self.assertEqual(e["rows"], 16)
            self.assertEqual(e["chunks"], (rows + 15) // 16)
            for k in range(e["chunks"]):
                chunk = values[k * 16 * row:(k + 1) * 16 * row]
                f32_of = lambda v: struct.unpack("<f", struct.pack("<f", v))[0]
                self.assertEqual(f32_of(e["min"][k]), min(chunk))
                self.assertEqual(f32_of(e["max"][k]), max(chunk))
                self.assertEqual(f32_of(e["amax"][k]), max(abs(v) for v in chunk))
                self.assertEqual(e["nonfinite"][k], 0)
        self.assertEqual(st["tensors"]["w1"]["chunks"], 4)  # packed: decoded values, 64 rows

    def test_inspect_shows_and_checks(self):
        out = self.path("s.safetensors")
        self.quantize(out, "--chunk-stats")
        r = run("inspect", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("chunk statistics (4 tensors", r.stdout)
        self.assertIn("lowp_chunk_stats: (", r.stdout)
        r = run("inspect", "--check-stats", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("chunk statistics match the data (4 tensors)", r.stdout)
        info = json.loads(run("inspect", "--json", out).stdout)
        w1 = {t["name"]: t for t in info["tensors"]}["w1"]
        self.assertEqual(w1["chunk_stats"]["chunks"], 1)  # 64 rows, 64 a chunk
        self.assertEqual(w1["chunk_stats"]["rows_per_chunk"], 64)
        # No statistics to check.
        plain = self.path("p.safetensors")
        self.quantize(plain)
        self.assert_fails(["inspect", "--check-stats", plain], "no chunk statistics")

    def rewrite_stats(self, src, dst, edit):
        """dst: src with its lowp_chunk_stats text edited (the header re-padded)."""
        data = open(src, "rb").read()
        n = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + n])
        header["__metadata__"]["lowp_chunk_stats"] = edit(header["__metadata__"]["lowp_chunk_stats"])
        h = json.dumps(header).encode()
        h += b" " * ((8 - len(h) % 8) % 8)
        with open(dst, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + data[8 + n:])

    def test_mismatch_and_malformed(self):
        good = self.path("s.safetensors")
        self.quantize(good, "--chunk-stats=16")

        def wrong_max(text):
            st = json.loads(text)
            e = st["tensors"]["w1"]
            e["max"][2] = e["max"][2] * 2
            e["amax"][2] = max(abs(e["min"][2]), e["max"][2])
            return json.dumps(st)

        bad = self.path("bad.safetensors")
        self.rewrite_stats(good, bad, wrong_max)
        line = self.assert_fails(["inspect", "--check-stats", bad], "tensor 'w1' chunk 2 (rows 32..47): stored max")
        self.assertIn(bad, line)
        for edit, msg in ((lambda t: t[:-3], "chunk statistics is not valid JSON"),
                          (lambda t: t.replace('"w1"', '"nope"'), "tensor 'nope' is not in the file"),
                          (lambda t: t.replace('"chunks":4', '"chunks":5', 1), "'chunks' must be 4")):
            broken = self.path("broken.safetensors")
            self.rewrite_stats(good, broken, edit)
            # Plain inspect: a warning, the listing still printed.
            r = run("inspect", broken)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("w1", r.stdout)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn("lowp: warning: " + broken + ": " , r.stderr)
            self.assertIn(msg, r.stderr)
            self.assertNotIn("chunk statistics (", r.stdout)
            self.assert_fails(["inspect", "--check-stats", broken], msg)
            os.remove(broken)

    def test_options(self):
        sample_model(self.path("m.npz"))
        self.assert_fails(["quantize", self.path("m.npz"), "-o", self.path("x.gguf"), "-f", "q8_0",
                           "--chunk-stats"], "only safetensors output")
        self.assert_fails(["quantize", self.path("m.npz"), "-o", self.path("x.safetensors"), "-f", "mxfp4",
                           "--chunk-stats=-2"], "--chunk-stats")
        # convert carries the option too; the input's stale statistics are dropped
        # unless asked for again.
        q = self.path("q.safetensors")
        self.quantize(q, "--chunk-stats=8")
        c = self.path("c.safetensors")
        r = run("convert", q, "-o", c)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("lowp_chunk_stats", safetensors_tensors(c)[1])
        r = run("convert", q, "-o", c, "--chunk-stats=8")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(run("inspect", "--check-stats", c).returncode, 0)
        self.assertIn("--chunk-stats", run("quantize", "--help").stdout)
        self.assertIn("--check-stats", run("inspect", "--help").stdout)


def load_tests(loader, standard_tests, pattern):
    part = os.environ.get("LOWP_CLI_PART", "")
    if part not in ("", "heavy", "light"):
        raise SystemExit(f"LOWP_CLI_PART={part!r}: expected heavy or light")
    # LOWP_CLI_SHARD=K/N: only every N-th selected test from the K-th (1-based),
    # so that ctest can run the part as N processes side by side.
    shard = os.environ.get("LOWP_CLI_SHARD", "1/1")
    try:
        k, n = (int(x) for x in shard.split("/"))
        assert 1 <= k <= n
    except (ValueError, AssertionError):
        raise SystemExit(f"LOWP_CLI_SHARD={shard!r}: expected K/N with 1 <= K <= N")
    suite = unittest.TestSuite()
    selected = []

    def walk(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                walk(t)
            elif not part or (t._testMethodName in HEAVY) == (part == "heavy"):
                selected.append(t)

    walk(standard_tests)
    for i, t in enumerate(selected):
        if i % n == k - 1:
            suite.addTest(t)
    return suite


if __name__ == "__main__":
    unittest.main(verbosity=2)
