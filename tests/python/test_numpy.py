"""Tests of the numpy bindings (`import lowp`) against the `lowp` tool.

Every function is run on the same inputs as the matching CLI verb (the binary
named by $LOWP, default build/bin/lowp) and must give the same bits: codes
equal, floats equal as bit patterns (NaNs included). Bad input must raise
lowp.Error (a ValueError) with the CLI's message.
"""
import json
import os
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest

import lowp

LOWP = os.environ.get("LOWP", os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin", "lowp"))


def cli(*args):
    """Runs the tool; returns stdout, or raises with its stderr."""
    r = subprocess.run([LOWP, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip())
    return r.stdout


def cli_error(*args):
    """Runs the tool expecting failure; returns its error message (without 'lowp: error: ')."""
    r = subprocess.run([LOWP, *map(str, args)], capture_output=True, text=True)
    assert r.returncode != 0, f"lowp {args} succeeded"
    line = r.stderr.strip()
    prefix = "lowp: error: "
    assert line.startswith(prefix), line
    return line[len(prefix):]


def cli_array(tmp_path, verb, x, *options):
    """`lowp VERB OPTIONS in.npy out.npy` on array x; returns the output array."""
    src, dst = tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(src, x)
    cli(verb, *options, src, dst)
    return np.load(dst)


def assert_same_bits(a, b):
    """Equal dtype, shape and bits (floats compared as their bit patterns)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.dtype.kind == "f":
        view = {2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
        a, b = a.view(view), b.view(view)
    mismatch = np.flatnonzero(a.ravel() != b.ravel())
    assert mismatch.size == 0, f"{mismatch.size} differ, first at {mismatch[0]}"


def sample(dtype=np.float32, n=4096, seed=1):
    """Values of every kind: normals over many binades, ties, subnormals, specials."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n) * np.exp2(rng.integers(-30, 30, n))
    x[:64] = rng.integers(-64, 64, 64) / 8.0  # ties of every narrow format
    specials = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-45, 3.4e38, -3.4e38, 448.0, 464.0,
                57344.0, 61440.0, 6.0, 7.0, 0.25, 1e-8]
    x[64:64 + len(specials)] = specials
    with np.errstate(over="ignore"):
        return x.astype(dtype)


SCALAR_FORMATS = [f["name"] for f in lowp.formats() if f["kind"] != "block"] + [
    "e3m4", "e4m3b11fnuz", "e2m5fin", "e5m0fn", "e3m0fnuz"]
BLOCK_FORMATS = [f["name"] for f in lowp.formats() if f["kind"] == "block"] + ["mx:int4:16", "mx:e3m4:8"]


# ---- formats ----

def test_formats_equal_cli_json():
    assert lowp.formats() == json.loads(cli("formats", "--json"))


def test_format_info():
    table = {f["name"]: f for f in lowp.formats()}
    for name, entry in table.items():
        assert lowp.format_info(name) == entry
    assert lowp.format_info("e4m3fn") == table["fp8_e4m3"]  # an alias: the canonical entry
    assert lowp.format_info("float16")["name"] == "fp16"
    e3m4 = lowp.format_info("e3m4")
    assert (e3m4["bits"], e3m4["exponent_bits"], e3m4["mantissa_bits"], e3m4["bias"]) == (8, 3, 4, 3)
    assert lowp.format_info("mx:int4:16")["block_size"] == 16
    assert lowp.format_info("mx:fp4_e2m1:32")["name"] == "mxfp4"


# ---- encode ----

@pytest.mark.parametrize("fmt", SCALAR_FORMATS)
def test_encode_every_format(tmp_path, fmt):
    for dtype in (np.float32, np.float64):
        x = sample(dtype).reshape(64, 64)
        assert_same_bits(lowp.encode(x, fmt), cli_array(tmp_path, "encode", x, "-f", fmt))


@pytest.mark.parametrize("fmt", ["fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp4_e2m1", "bf16", "e8m0", "int4",
                                 "fp8_e4m3fnuz"])
@pytest.mark.parametrize("rounding", ["rne", "away", "zero", "stochastic"])
def test_encode_options(tmp_path, fmt, rounding):
    for dtype in (np.float16, np.float32, np.float64):
        x = sample(dtype, n=1000, seed=2).reshape(10, 100)
        for saturate in (False, True):
            got = lowp.encode(x, fmt, rounding=rounding, seed=12345, saturate=saturate)
            flags = ["--round", rounding, "--seed", "12345"] + (["--saturate"] if saturate else [])
            assert_same_bits(got, cli_array(tmp_path, "encode", x, "-f", fmt, *flags))


def test_encode_layouts(tmp_path):
    x = sample(np.float32, n=4096).reshape(64, 64)
    expected = cli_array(tmp_path, "encode", np.ascontiguousarray(x.T), "-f", "fp8_e4m3",
                         "--round", "stochastic", "--seed", "3")
    # A transposed view is read in C order, like its contiguous copy.
    assert_same_bits(lowp.encode(x.T, "fp8_e4m3", rounding="stochastic", seed=3), expected)
    # 0-d, empty, big-endian, Python lists.
    assert lowp.encode(np.float32(1.0), "fp8_e4m3").shape == ()
    assert lowp.encode(np.zeros((0, 3), np.float32), "fp8_e4m3").shape == (0, 3)
    assert_same_bits(lowp.encode(x.astype(">f4"), "fp16"), lowp.encode(x, "fp16"))
    assert_same_bits(lowp.encode([3.14159, 1000.0], "fp8_e4m3"), np.array([0x45, 0x7F], np.uint8))
    assert lowp.encode([1000.0], "fp8_e4m3", saturate=True)[0] == 0x7E
    assert lowp.encode([1.0], "fp16").dtype == np.uint16
    assert lowp.encode([1.0], "fp32").dtype == np.uint32


def test_encode_large_array_uses_threads_and_matches(tmp_path):
    x = sample(np.float32, n=1 << 19, seed=5)
    assert_same_bits(lowp.encode(x, "fp8_e5m2", rounding="stochastic", seed=9),
                     cli_array(tmp_path, "encode", x, "-f", "fp8_e5m2", "--round", "stochastic", "--seed", "9"))


# ---- decode ----

@pytest.mark.parametrize("fmt", SCALAR_FORMATS)
def test_decode_every_code(tmp_path, fmt):
    info = lowp.format_info(fmt)
    if info["bits"] <= 16:
        codes = np.arange(1 << info["bits"])
    else:
        codes = np.random.default_rng(0).integers(0, 1 << 32, 1 << 16)
    codes = codes.astype({8: np.uint8, 16: np.uint16, 32: np.uint32}[8 if info["bits"] <= 8 else 16 if info["bits"] <= 16 else 32])
    for dtype in ("float32", "float64"):
        got = lowp.decode(codes, fmt, dtype=dtype)
        assert_same_bits(got, cli_array(tmp_path, "decode", codes, "-f", fmt, "--dtype", dtype))
    # Any integer dtype holding the same codes gives the same values.
    assert_same_bits(lowp.decode(codes.astype(np.int64), fmt), lowp.decode(codes, fmt))


def test_decode_roundtrip_and_layouts():
    x = sample(np.float32)
    codes = lowp.encode(x, "fp8_e4m3").reshape(64, 64)
    assert_same_bits(lowp.decode(codes.T, "fp8_e4m3"), lowp.decode(np.ascontiguousarray(codes.T), "fp8_e4m3"))
    assert_same_bits(lowp.decode(np.array([0x45, 0x7F], np.uint8), "fp8_e4m3"),
                     np.array([3.25, np.nan], np.float32))


# ---- fake_quant ----

@pytest.mark.parametrize("fmt", ["fp8_e4m3", "fp6_e3m2", "fp4_e2m1", "bf16", "int8", "e3m4", "fp32"])
def test_fake_quant_scalar(tmp_path, fmt):
    for dtype in (np.float16, np.float32, np.float64):
        x = sample(dtype, n=2048).reshape(32, 64)
        assert_same_bits(lowp.fake_quant(x, fmt), cli_array(tmp_path, "fake-quant", x, "-f", fmt))
        got = lowp.fake_quant(x, fmt, rounding="stochastic", seed=4, saturate=True)
        assert_same_bits(got, cli_array(tmp_path, "fake-quant", x, "-f", fmt, "--round", "stochastic",
                                        "--seed", "4", "--saturate"))


@pytest.mark.parametrize("fmt", BLOCK_FORMATS)
def test_fake_quant_block(tmp_path, fmt):
    x = sample(np.float32, n=96 * 40, seed=3).reshape(96, 40)
    x[5, :] = 0.0  # an all-zero block
    for axis in (0, -1):
        assert_same_bits(lowp.fake_quant(x, fmt, axis=axis),
                         cli_array(tmp_path, "fake-quant", x, "-f", fmt, "--axis", axis))
    for rule in ("floor", "rceil", "ceil", "even"):
        got = lowp.fake_quant(x, fmt, scale_rule=rule, rounding="stochastic", seed=8, block=7, axis=1)
        assert_same_bits(got, cli_array(tmp_path, "fake-quant", x, "-f", fmt, "--scale-rule", rule,
                                        "--round", "stochastic", "--seed", "8", "--block", "7", "--axis", "1"))
    got = lowp.fake_quant(x, fmt, flush_subnormals=True, rounding="zero")
    assert_same_bits(got, cli_array(tmp_path, "fake-quant", x, "-f", fmt, "--flush-subnormals", "--round", "zero"))


def test_fake_quant_block_dtypes_and_rank(tmp_path):
    x = sample(np.float64, n=2 * 3 * 64, seed=6).reshape(2, 3, 64)
    for dtype in (np.float16, np.float64):
        with np.errstate(over="ignore"):
            xd = x.astype(dtype)
        assert_same_bits(lowp.fake_quant(xd, "mxfp6_e2m3", axis=1),
                         cli_array(tmp_path, "fake-quant", xd, "-f", "mxfp6_e2m3", "--axis", "1"))


# ---- quantize / PackedTensor ----

def read_safetensors(path):
    """Tensors (raw bytes) and metadata of a safetensors file, parsed here from the spec."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    return {k: body[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in header.items()}, meta


@pytest.mark.parametrize("fmt", BLOCK_FORMATS)
def test_quantize_bytes_equal_cli(tmp_path, fmt):
    x = sample(np.float32, n=8 * 96, seed=7).reshape(8, 96)
    np.savez(tmp_path / "w.npz", weight=x)
    cli("quantize", tmp_path / "w.npz", "-o", tmp_path / "w.safetensors", "-f", fmt, "--scale-rule", "rceil", "-q")
    tensors, meta = read_safetensors(tmp_path / "w.safetensors")
    t = lowp.quantize(x, fmt, scale_rule="rceil")
    assert t.elements.tobytes() == tensors["weight"]
    assert t.scales.tobytes() == tensors["weight.scales"]
    assert t.format == lowp.format_info(fmt)["name"]
    assert (t.shape, t.axis, t.block_size) == ((8, 96), 1, lowp.format_info(fmt)["block_size"])
    # What the packed bytes decode to: the CLI's fake quantization.
    expected = cli_array(tmp_path, "fake-quant", x, "-f", fmt, "--scale-rule", "rceil")
    assert_same_bits(t.dequantize(), expected)
    assert_same_bits(np.asarray(t), expected)
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    # lowp reads its packed file back to the same values.
    assert_same_bits(lowp.open_model(tmp_path / "w.safetensors")["weight"], expected)


def test_quantize_options(tmp_path):
    x = sample(np.float32, n=6 * 50, seed=8).reshape(6, 50)
    t = lowp.quantize(x, "mxfp8_e4m3", axis=0, block=4, scale_rule="even", rounding="stochastic", seed=2,
                      flush_subnormals=True)
    expected = cli_array(tmp_path, "fake-quant", x, "-f", "mxfp8_e4m3", "--axis", "0", "--block", "4",
                         "--scale-rule", "even", "--round", "stochastic", "--seed", "2", "--flush-subnormals")
    assert_same_bits(t.dequantize(), expected)
    assert (t.axis, t.block_size, t.scales.size) == (0, 4, 50 * 2)
    assert t.codes().shape == (50, 6)  # the blocked view: axis 0 moved last


def test_packed_tensor_object():
    x = np.linspace(-3, 3, 4 * 64, dtype=np.float32).reshape(4, 64)
    t = lowp.quantize(x, "mxfp4")
    assert repr(t) == ("PackedTensor(format='mxfp4', shape=(4, 64), axis=1, block_size=32, "
                       "elements=128 bytes, scales=8 bytes)")
    assert t.tensor_scale == 1.0 and t.nbytes == 136
    assert t.elements.dtype == np.uint8 and not t.elements.flags.writeable
    with pytest.raises(ValueError):
        t.elements[0] = 1
    # Element codes: two per byte, the first in the low nibble.
    codes = t.codes()
    assert codes.shape == (4, 64)
    assert np.array_equal(t.elements, codes.ravel()[0::2] | (codes.ravel()[1::2] << 4))
    # Wider elements: 16-bit codes, little-endian in the stream.
    wide = lowp.quantize(x, "mx:fp16:8")
    assert wide.codes().dtype == np.uint16
    assert np.array_equal(wide.codes().ravel(), wide.elements.view("<u2"))
    # From parts, and through pickle.
    again = lowp.PackedTensor("mxfp4", [4, 64], t.elements, t.scales, axis=-1)
    assert_same_bits(again.dequantize(), t.dequantize())
    from_bytes = lowp.PackedTensor("mxfp4", (4, 64), t.elements.tobytes(), t.scales.tobytes())
    assert_same_bits(from_bytes.dequantize(), t.dequantize())
    with pytest.raises(lowp.Error, match="elements: expected a uint8 array or bytes"):
        lowp.PackedTensor("mxfp4", [4, 64], t.elements.astype(np.int16), t.scales)
    restored = pickle.loads(pickle.dumps(t))
    assert repr(restored) == repr(t)
    assert_same_bits(restored.dequantize(), t.dequantize())
    n = lowp.quantize(x, "nvfp4")
    assert n.tensor_scale == np.float32(3.0) / np.float32(2688.0)
    assert "tensor_scale=" in repr(n)
    assert_same_bits(pickle.loads(pickle.dumps(n)).dequantize(), n.dequantize())
    with pytest.raises(lowp.Error, match="elements: 127 bytes, but mxfp4 needs 128"):
        lowp.PackedTensor("mxfp4", [4, 64], t.elements[:127], t.scales)
    with pytest.raises(lowp.Error, match="shape: too many elements"):
        lowp.PackedTensor("mxfp4", [1 << 40, 1 << 40], t.elements, t.scales)
    with pytest.raises(lowp.Error, match="negative dimension"):
        lowp.PackedTensor("mxfp4", [4, -64], t.elements, t.scales)
    with pytest.raises(lowp.Error, match="scales: 7 bytes"):
        lowp.PackedTensor("mxfp4", [4, 64], t.elements, t.scales[:7])


# ---- model files ----

def test_open_model_and_quantize_model_equal_cli(tmp_path):
    rng = np.random.default_rng(11)
    arrays = {"a.weight": rng.standard_normal((16, 64)).astype(np.float32),
              "a.bias": rng.standard_normal(16).astype(np.float32),
              "b.weight": rng.standard_normal((32, 3, 32)).astype(np.float16)}
    np.savez(tmp_path / "m.npz", **arrays)
    m = lowp.open_model(str(tmp_path / "m.npz"))
    assert m.kind == "npz" and len(m) == 3 and "a.bias" in m and "nope" not in m
    assert sorted(m) == sorted(arrays)
    inspect = json.loads(cli("inspect", tmp_path / "m.npz", "--json"))
    assert [(t["name"], t["dtype"], tuple(t["shape"])) for t in m.tensors] == \
           [(t["name"], t["dtype"], tuple(t["shape"])) for t in inspect["tensors"]]
    for name, value in arrays.items():
        assert_same_bits(m[name], value.astype(np.float32))
    with pytest.raises(KeyError):
        m["nope"]

    for fmt, out in (("mxfp4", "q.safetensors"), ("fp8_e4m3", "q8.safetensors"), ("mxfp4", "q.gguf")):
        cli_report = tmp_path / "r.json"
        cli("quantize", tmp_path / "m.npz", "-o", tmp_path / ("cli_" + out), "-f", fmt, "--scale-rule", "rceil",
            "--exclude", "b.*", "--report", cli_report, "-q")
        report = lowp.quantize_model(str(tmp_path / "m.npz"), str(tmp_path / out), fmt, scale_rule="rceil",
                                     exclude=["b.*"])
        expected = json.loads(cli_report.read_text())
        expected["output"] = str(tmp_path / out)
        assert report == expected
        # The very same file.
        assert (tmp_path / out).read_bytes() == (tmp_path / ("cli_" + out)).read_bytes()
        q = lowp.open_model(tmp_path / out)
        assert_same_bits(q.raw(q.names()[0]), lowp.open_model(tmp_path / ("cli_" + out)).raw(q.names()[0]))


# ---- bad input ----

def test_errors_carry_the_cli_message(tmp_path):
    np.save(tmp_path / "x.npy", np.ones(4, np.float32))
    np.save(tmp_path / "x2.npy", np.ones((2, 2), np.float32))
    x = np.ones(4, np.float32)
    with pytest.raises(lowp.Error) as e:
        lowp.encode(x, "fp8_e4m4")
    assert str(e.value) == cli_error("encode", "-f", "fp8_e4m4", tmp_path / "x.npy", tmp_path / "o.npy")
    assert "fp8_e4m3" in str(e.value)  # names the closest known format
    assert issubclass(lowp.Error, ValueError)
    with pytest.raises(lowp.Error) as e:
        lowp.encode(x, "fp8_e4m3", rounding="up")
    assert str(e.value) == cli_error("encode", "-f", "fp8_e4m3", "--round", "up", tmp_path / "x.npy",
                                     tmp_path / "o.npy")
    with pytest.raises(lowp.Error) as e:
        lowp.fake_quant(x.reshape(2, 2), "mxfp4", axis=2)
    assert str(e.value) == cli_error("fake-quant", "-f", "mxfp4", "--axis", "2", tmp_path / "x2.npy",
                                     tmp_path / "o.npy")
    with pytest.raises(lowp.Error, match="scale rule|scale_rule|unknown"):
        lowp.fake_quant(x, "mxfp4", scale_rule="round")
    with pytest.raises(lowp.Error, match="dtype int32 is not a float array"):
        lowp.encode(np.ones(4, np.int32), "fp8_e4m3")
    with pytest.raises(lowp.Error, match="dtype float32 does not hold codes"):
        lowp.decode(x, "fp8_e4m3")
    with pytest.raises(lowp.Error, match="element 1 holds 256, which is not a code of fp8_e4m3"):
        lowp.decode(np.array([1, 256], np.uint16), "fp8_e4m3")
    with pytest.raises(lowp.Error, match="element 0 holds -1"):
        lowp.decode(np.array([-1], np.int8), "fp8_e4m3")
    with pytest.raises(lowp.Error, match="block applies to block formats"):
        lowp.fake_quant(x, "fp8_e4m3", block=2)
    with pytest.raises(lowp.Error, match="saturate applies to scalar formats"):
        lowp.fake_quant(x, "mxfp4", saturate=True)
    with pytest.raises(lowp.Error, match="block 5 must be between 1 and the length of axis 0"):
        lowp.fake_quant(x, "mxfp4", block=5)
    with pytest.raises(lowp.Error, match="is a scalar format; quantize"):
        lowp.quantize(x, "fp8_e4m3")
    with pytest.raises(lowp.Error, match="axis -3 is out of range"):
        lowp.quantize(x.reshape(2, 2), "mxfp4", axis=-3)
    with pytest.raises(lowp.Error, match="unknown output dtype"):
        lowp.decode(np.zeros(2, np.uint8), "fp8_e4m3", dtype="float16")
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(lowp.Error) as e:
        lowp.open_model(str(missing))
    assert str(e.value) == cli_error("inspect", missing)
    with pytest.raises(lowp.Error, match="x: not an array|is not a float array"):
        lowp.encode("text", "fp8_e4m3")


# ---- no copies, no torch, documentation ----

def test_contiguous_float32_is_read_in_place():
    x = np.arange(1024, dtype=np.float32)
    assert lowp._lowp._input_address(x) == x.ctypes.data
    # Everything else is converted first.
    assert lowp._lowp._input_address(x.astype(np.float16)) != x.ctypes.data
    strided = x[::2]
    assert lowp._lowp._input_address(strided) != strided.ctypes.data


def test_import_without_torch():
    code = "import sys; sys.modules['torch'] = None; import lowp; print(lowp.encode([1.0], 'fp8_e4m3')[0])"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "56"
    # lowp.torch is imported on first use, and says so when torch is missing.
    code = "import sys; sys.modules['torch'] = None; import lowp; lowp.torch"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
    assert r.returncode != 0 and ("ImportError" in r.stderr or "ModuleNotFoundError" in r.stderr), r.stderr


def test_missing_extension_says_how_to_build_it(tmp_path):
    (tmp_path / "lowp").mkdir()
    (tmp_path / "lowp" / "__init__.py").write_text(open(lowp.__file__).read())
    code = "import sys; sys.path.insert(0, sys.argv[1]); import lowp"
    r = subprocess.run([sys.executable, "-I", "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "ImportError: lowp: the extension module lowp._lowp is not built" in r.stderr, r.stderr


def test_docstrings():
    for name in lowp.__all__:
        assert getattr(lowp, name).__doc__, name
    for option in ("scale_rule", "rounding", "seed", "axis", "block", "PackedTensor"):
        assert option in lowp.quantize.__doc__
    assert "saturate" in lowp.encode.__doc__ and "float64" in lowp.encode.__doc__
