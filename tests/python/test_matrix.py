"""Tests of lowp.quantize_matrix, lowp.PackedMatrix and lowp.fake_quantize_rows
(python/src/matrix.cc over lowp/storage/packed_matrix.h).

Deterministic paths are checked bit for bit: the storage round trip
(codes/scales -> from_codes, pickle), two schemes against numpy oracles
written from the definitions in matrix_format.h (they never call lowp), the
block schemes against lowp.fake_quant, and matmul across thread counts.
matmul against numpy is checked within the float32 rounding bound of a sum.
"""
import pickle

import numpy as np
import pytest

import lowp

# Every scheme of the grammar, with odd element widths and partial groups.
FORMATS = [
    "fp32", "bf16", "fp16",                                      # plain
    "fp8_e4m3", "fp8_e5m2:tensor", "int8", "fp4_e2m1",          # tensor
    "int8:channel", "int4:channel", "fp8_e4m3:channel",          # channel
    "int4:group32", "int4:group128", "int3:group16", "fp4_e2m1:group32",
    "fp8_e4m3:group64", "uint4:group32",                         # group
    "int4:group32:asym", "int4:group128:asym", "int8:group64:asym",
    "int2:group8:asym", "fp4_e2m1:group32:asym",                 # asymmetric group
    "mxfp8_e4m3", "mxfp6_e3m2", "mxfp4", "mxint8", "nvfp4", "mx:int4:32",
    "mx:e3m4:8",                                                 # block
]

# The scales each scheme stores (the keys of scales()).
SCALE_KEYS = {
    "fp32": set(), "bf16": set(), "fp16": set(),
    "fp8_e4m3": {"tensor"}, "int8:channel": {"row"}, "int4:group32": {"group"},
    "int4:group32:asym": {"group", "zero"}, "fp4_e2m1:group32:asym": {"group"}, "mxfp4": {"block"}, "nvfp4": {"tensor", "block"},
}


def weights(rows, cols, seed=0):
    """Normal weights with a few rows and groups of exact zeros and outliers."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((rows, cols)) * np.exp2(rng.integers(-4, 4, (rows, 1)))).astype(
        np.float32)
    if rows > 2:
        w[1] = 0.0                  # a zero row: zero scales, zero codes
        w[2, : min(cols, 40)] = 0.0  # zero groups
    if rows > 3 and cols > 5:
        w[3, 5] = 30.0              # an outlier
    return w


def bits(a):
    a = np.asarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.dtype.kind == "f":
        a, b = bits(a), bits(b)
    mismatch = np.flatnonzero(a.ravel() != b.ravel())
    assert mismatch.size == 0, f"{mismatch.size} differ, first at {mismatch[0]}"


def rebuilt(m):
    return lowp.PackedMatrix.from_codes(m.format, m.shape, m.codes(), **m.scales())


# ---- storage ----

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shape", [(6, 100), (8, 256), (1, 1)])
def test_from_codes_round_trip_is_bit_identical(fmt, shape):
    m = lowp.quantize_matrix(weights(*shape), fmt)
    r = rebuilt(m)
    assert (r.format, r.shape, r.bytes) == (m.format, m.shape, m.bytes)
    assert_same_bits(r.codes(), m.codes())
    assert_same_bits(r.dequantize(), m.dequantize())
    for key, value in m.scales().items():
        assert_same_bits(r.scales()[key], value)


@pytest.mark.parametrize("fmt", FORMATS)
def test_storage_layout(fmt):
    m = lowp.quantize_matrix(weights(5, 100), fmt)
    assert m.shape == (5, 100) and (m.rows, m.cols) == m.shape
    codes = m.codes()
    assert codes.dtype == np.uint8 and codes.shape[0] == 5 and not codes.flags.writeable
    scales = m.scales()
    if fmt in SCALE_KEYS:
        assert set(scales) == SCALE_KEYS[fmt]
    stored = codes.nbytes + sum(v.nbytes for k, v in scales.items() if k != "tensor")
    assert m.bytes == stored + (4 if "tensor" in scales else 0)
    assert m.bits_per_weight == pytest.approx(8 * m.bytes / 500)
    for key in ("group", "zero", "block"):
        if key in scales:
            assert scales[key].shape[0] == 5
    if "group" in scales:
        assert scales["group"].dtype == np.float16
    if "row" in scales:
        assert scales["row"].dtype == np.float32 and scales["row"].shape == (5,)
    d = m.dequantize()
    assert d.dtype == np.float32 and d.shape == (5, 100)
    assert isinstance(m.vectorized, bool)


def test_codes_of_known_formats():
    w = weights(3, 10)
    assert_same_bits(lowp.quantize_matrix(w, "fp32").codes(), w.view(np.uint8).reshape(3, 40))
    assert_same_bits(lowp.quantize_matrix(w, "bf16").codes().view(np.uint16),
                     lowp.encode(w, "bf16"))
    m = lowp.quantize_matrix(w, "int4:group32")
    assert m.codes().shape == (3, 5)  # 10 nibbles per row, rows start on a byte
    m = lowp.quantize_matrix(w, "int3:group16")
    assert m.codes().shape == (3, 4)  # 30 bits -> 4 bytes


def test_group_scales_as_uint16_bits():
    m = lowp.quantize_matrix(weights(4, 64), "int4:group32:asym")
    s = m.scales()
    r = lowp.PackedMatrix.from_codes(m.format, m.shape, m.codes().tobytes(),
                                     group=s["group"].view(np.uint16), zero=s["zero"])
    assert_same_bits(r.dequantize(), m.dequantize())


@pytest.mark.parametrize("fmt", ["int4:group32", "int8:channel", "mxfp4", "nvfp4", "bf16",
                                 "fp8_e4m3", "int4:group128:asym"])
@pytest.mark.parametrize("shape", [(0, 64), (3, 0), (0, 0)])
def test_empty_matrices(fmt, shape):
    m = lowp.quantize_matrix(np.zeros(shape, np.float32), fmt)
    assert m.shape == shape and m.dequantize().shape == shape
    assert_same_bits(rebuilt(m).dequantize(), m.dequantize())
    y = m.matmul(np.ones((2, shape[1]), np.float32))
    assert y.shape == (2, shape[0]) and not y.any()


@pytest.mark.parametrize("fmt", FORMATS)
def test_pickle_round_trip(fmt):
    m = lowp.quantize_matrix(weights(6, 100, seed=3), fmt)
    r = pickle.loads(pickle.dumps(m))
    assert type(r) is lowp.PackedMatrix and repr(r) == repr(m)
    assert_same_bits(r.codes(), m.codes())
    assert_same_bits(r.dequantize(), m.dequantize())


def test_repr_and_module_name():
    m = lowp.quantize_matrix(np.ones((4, 64), np.float32), "int4:group32")
    assert repr(m) == "PackedMatrix(format='int4:group32', shape=(4, 64), bytes=144, " \
                      "bits_per_weight=4.5)"
    assert lowp.PackedMatrix.__module__ == "lowp"


@pytest.mark.parametrize("spelling, canonical", [
    ("float16", "fp16"), ("bfloat16", "bf16"), ("fp8_e4m3:tensor", "fp8_e4m3"),
    ("e4m3fn:channel", "fp8_e4m3:channel"), ("int4_sym:group32", "int4:group32"),
    ("uint4:group32:asym", "int4:group32:asym"), ("int4:group128:asym", "int4:group128:asym"),
    ("int8_sym", "int8"), ("uint4:group32", "uint4:group32"), ("mxfp4", "mxfp4"),
    ("mx:fp4_e2m1:32", "mxfp4"), ("mx:int4:16", "mx:int4:16"), ("e3m4:channel", "e3m4:channel"),
])
def test_format_is_canonical(spelling, canonical):
    w = weights(3, 64)
    m = lowp.quantize_matrix(w, spelling)
    assert m.format == canonical
    # The canonical spelling is the same format: same storage, same values.
    c = lowp.quantize_matrix(w, canonical)
    assert_same_bits(c.codes(), m.codes())
    assert_same_bits(c.dequantize(), m.dequantize())


def test_input_dtypes_and_layouts():
    w = weights(6, 100)
    ref = lowp.quantize_matrix(w, "int4:group32").dequantize()
    w64 = w.astype(np.float64) + 1e-12  # rounds back to w in fp32
    assert_same_bits(lowp.quantize_matrix(w64, "int4:group32").dequantize(), ref)
    assert_same_bits(lowp.quantize_matrix(np.asfortranarray(w), "int4:group32").dequantize(), ref)
    h = w.astype(np.float16)
    assert_same_bits(lowp.quantize_matrix(h, "int4:group32").dequantize(),
                     lowp.quantize_matrix(h.astype(np.float32), "int4:group32").dequantize())


# ---- oracles from the definitions (matrix_format.h) ----

def asym_oracle(w, k, bits_):
    """<intN>:group<K>:asym: [lo, hi] holds 0, s = fp16((hi - lo) / (2^N - 1)) (nearest even),
    z = rint(-lo / s) clamped, q = clamp(rint(w / s) + z, 0, 2^N - 1), value (q - z) * s;
    float32 arithmetic throughout."""
    top = np.float32(2**bits_ - 1)
    out = np.empty_like(w)
    scales, zeros = [], []
    for g0 in range(0, w.shape[1], k):
        part = w[:, g0:g0 + k]
        lo = np.minimum(part.min(axis=1), np.float32(0))
        hi = np.maximum(part.max(axis=1), np.float32(0))
        s = ((hi - lo) / top).astype(np.float16).astype(np.float32)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(s > 0, np.rint(-lo[:, None] / s), np.float32(0))
            z = np.clip(z, np.float32(0), top).astype(np.float32)
            q = np.where(s > 0, np.rint(part / s) + z, z)
        q = np.clip(q, np.float32(0), top).astype(np.uint8)  # the stored code (no -0)
        out[:, g0:g0 + k] = (q.astype(np.float32) - z) * s
        scales.append(s[:, 0].astype(np.float16))
        zeros.append(z[:, 0].astype(np.uint8))
    return out, np.stack(scales, axis=1), np.stack(zeros, axis=1)


@pytest.mark.parametrize("shape", [(8, 128), (7, 100), (1, 31)])
def test_int4_group32_asym_equals_definition(shape):
    w = weights(*shape, seed=5)
    w[0, :32] = np.abs(w[0, :32])   # lo = 0 (the range starts at zero)
    if shape[0] > 4:
        w[4, :32] = -np.abs(w[4, :32])  # hi = 0
    m = lowp.quantize_matrix(w, "int4:group32:asym")
    want, scales, zeros = asym_oracle(w, 32, 4)
    assert_same_bits(m.scales()["group"], scales)
    assert_same_bits(m.scales()["zero"], zeros)
    assert_same_bits(m.dequantize(), want)


def test_int8_channel_equals_definition():
    """<int8>:channel: s = amax_row / 127, q = rint(w / s) clamped to +-127, value q * s."""
    w = weights(9, 300, seed=7)
    amax = np.abs(w).max(axis=1, keepdims=True)
    s = amax / np.float32(127)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(s > 0, np.clip(np.rint(w / s), -127, 127), np.float32(0)).astype(np.int8)
    m = lowp.quantize_matrix(w, "int8:channel")
    assert_same_bits(m.scales()["row"], s[:, 0])
    assert_same_bits(m.codes().view(np.int8), q)
    assert_same_bits(m.dequantize(), q.astype(np.float32) * s)


def test_int4_group32_equals_definition():
    """<int4>:group32: s = fp16(amax_group / 7), q = rint(w / s) clamped to +-7, value q * s."""
    w = weights(5, 96, seed=9)
    g = w.reshape(5, 3, 32)
    s = (np.abs(g).max(axis=2, keepdims=True) / np.float32(7)).astype(np.float16).astype(
        np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(s > 0, np.clip(np.rint(g / s), -7, 7), np.float32(0)).astype(np.int8)
    m = lowp.quantize_matrix(w, "int4:group32")
    assert_same_bits(m.dequantize(), (q.astype(np.float32) * s).reshape(5, 96))


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "mxfp6_e3m2", "mxfp4", "mxint8", "nvfp4",
                                 "mx:int4:32", "mx:e3m4:8"])
def test_block_formats_equal_fake_quant(fmt):
    w = weights(6, 100, seed=11)
    assert_same_bits(lowp.quantize_matrix(w, fmt).dequantize(), lowp.fake_quant(w, fmt))


# ---- matmul ----

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("cols", [256, 100])
def test_matmul_matches_numpy(fmt, cols):
    m = lowp.quantize_matrix(weights(37, cols, seed=13), fmt)
    wd = m.dequantize().astype(np.float64)
    x = np.random.default_rng(2).standard_normal((5, cols)).astype(np.float32)
    # A float32 sum of `cols` products is within (cols + 2) * 2^-24 * sum |x w| of
    # the exact one (the exact one in float64: products of two fp32s are exact).
    exact = x.astype(np.float64) @ wd.T
    bound = (cols + 2) * 2.0**-24 * (np.abs(x).astype(np.float64) @ np.abs(wd).T) + 1e-30
    y = m.matmul(x)
    assert y.dtype == np.float32 and y.shape == (5, 37)
    assert np.all(np.abs(y - exact) <= bound)
    y1 = m.matmul(x[0])
    assert y1.shape == (37,)
    assert np.all(np.abs(y1 - exact[0]) <= bound[0])


@pytest.mark.parametrize("fmt", FORMATS)
def test_matmul_does_not_depend_on_threads(fmt):
    m = lowp.quantize_matrix(weights(37, 256, seed=17), fmt)
    x = np.random.default_rng(3).standard_normal((4, 256)).astype(np.float32)
    one = m.matmul(x[0], threads=1)
    many = m.matmul(x, threads=1)
    for t in (2, 3, 0):
        assert_same_bits(m.matmul(x[0], threads=t), one)
        assert_same_bits(m.matmul(x, threads=t), many)
    # gemv is the gemm of one row.
    assert_same_bits(m.matmul(x[:1])[0], one)


def test_matmul_of_float64_and_strided_x():
    m = lowp.quantize_matrix(weights(8, 64), "int4:group32")
    x = np.random.default_rng(4).standard_normal((3, 64))
    assert_same_bits(m.matmul(x), m.matmul(x.astype(np.float32)))
    xt = np.asfortranarray(x.astype(np.float32))
    assert_same_bits(m.matmul(xt), m.matmul(np.ascontiguousarray(xt)))


# ---- fake_quantize_rows ----

@pytest.mark.parametrize("fmt", FORMATS)
def test_fake_quantize_rows_is_each_row_as_a_matrix(fmt):
    x = weights(5, 100, seed=19)
    before = x.copy()
    y = lowp.fake_quantize_rows(x, fmt)
    assert y.dtype == np.float32 and y.shape == x.shape and y is not x
    assert_same_bits(x, before)  # the input is not touched
    for r in range(5):
        assert_same_bits(y[r], lowp.quantize_matrix(x[r:r + 1], fmt).dequantize()[0])


def test_fake_quantize_rows_scales_each_row_on_its_own():
    x = weights(4, 64)
    x[0] *= 1000.0
    per_row = lowp.fake_quantize_rows(x, "fp8_e4m3")
    whole = lowp.quantize_matrix(x, "fp8_e4m3").dequantize()
    assert not np.array_equal(per_row[3], whole[3])  # the tensor scale is row 3's own


# ---- errors ----

def error(fn, *args, **kwargs):
    with pytest.raises(ValueError) as e:
        fn(*args, **kwargs)
    assert isinstance(e.value, lowp.Error)
    return str(e.value)


@pytest.mark.parametrize("fmt, words", [
    ("fp8_e4m4", "unknown format 'fp8_e4m4'"),
    ("int4:group0", "int4:group0"),
    ("int4:chan", "unknown scaling 'chan'"),
    ("fp8_e4m3:channel:asym", "asym applies to groups"),
    ("fp32:group32:asym", "asym applies to groups"),
    ("int4:group32:sym", "unknown suffix 'sym'"),
    ("e8m0:tensor", "e8m0 cannot hold values"),
])
def test_bad_formats(fmt, words):
    w = weights(2, 32)
    assert words in error(lowp.quantize_matrix, w, fmt)
    assert words in error(lowp.fake_quantize_rows, w, fmt)
    assert words in error(lowp.PackedMatrix.from_codes, fmt, (2, 32), b"")


def test_bad_arrays():
    assert "dtype int32" in error(lowp.quantize_matrix, np.ones((2, 4), np.int32), "int8")
    assert "2-D" in error(lowp.quantize_matrix, np.ones(4, np.float32), "int8")
    assert "(2, 3, 4)" in error(lowp.quantize_matrix, np.ones((2, 3, 4), np.float32), "int8")
    assert "2-D" in error(lowp.fake_quantize_rows, np.ones(4, np.float32), "int8")
    assert "dtype complex64" in error(lowp.fake_quantize_rows, np.ones((2, 2), np.complex64),
                                      "int8")
    m = lowp.quantize_matrix(weights(3, 64), "int4:group32")
    assert "(3, 65)" in error(m.matmul, np.ones((3, 65), np.float32))
    assert "64 columns" in error(m.matmul, np.ones(63, np.float32))
    assert "64 columns" in error(m.matmul, np.ones((1, 2, 64), np.float32))
    assert "dtype int64" in error(m.matmul, np.ones(64, np.int64))
    assert "64 columns" in error(m.matmul, np.float32(1.0))
    assert "threads -1" in error(m.matmul, np.ones(64, np.float32), threads=-1)


def test_from_codes_rejects_what_does_not_fit():
    m = lowp.quantize_matrix(weights(4, 100), "int4:group32:asym")
    codes, s = m.codes(), m.scales()
    fc = lowp.PackedMatrix.from_codes
    fmt, shape = m.format, m.shape
    # codes: size and dtype
    msg = error(fc, fmt, shape, codes[:, :-1], group=s["group"], zero=s["zero"])
    assert "codes" in msg and "196" in msg and "200" in msg
    assert "codes: dtype int16" in error(fc, fmt, shape, codes.astype(np.int16),
                                         group=s["group"], zero=s["zero"])
    # group scales: size and dtype
    assert "group: 12 values, expected 16" in error(fc, fmt, shape, codes, group=s["group"][:3],
                                                    zero=s["zero"])
    assert "group: dtype float32" in error(fc, fmt, shape, codes,
                                           group=s["group"].astype(np.float32), zero=s["zero"])
    # zero points: size, dtype, range
    assert "zero: 15 values" in error(fc, fmt, shape, codes, group=s["group"],
                                      zero=s["zero"].ravel()[:15])
    assert "zero: dtype int8" in error(fc, fmt, shape, codes, group=s["group"],
                                       zero=s["zero"].astype(np.int8))
    z = s["zero"].copy()
    z[0, 0] = 16
    assert "zero point 16" in error(fc, fmt, shape, codes, group=s["group"], zero=z)
    # missing and extra scales
    assert "zero: int4:group32:asym stores zero points" in error(fc, fmt, shape, codes,
                                                                  group=s["group"])
    assert "row: int4:group32:asym has no" in error(fc, fmt, shape, codes, group=s["group"],
                                                     zero=s["zero"],
                                                     row=np.ones(4, np.float32))
    assert "tensor: int4:group32:asym has no" in error(fc, fmt, shape, codes, group=s["group"],
                                                        zero=s["zero"], tensor=1.0)
    # shape
    assert "shape" in error(fc, fmt, (4, 100, 1), codes, group=s["group"], zero=s["zero"])
    assert "negative" in error(fc, fmt, (-4, 100), codes, group=s["group"], zero=s["zero"])
    assert "too many" in error(fc, "bf16", (2**40, 2**40), b"")
    assert "too many" in error(fc, "fp32", (0, 2**62), b"")


def test_from_codes_rejects_bad_scales_of_other_schemes():
    fc = lowp.PackedMatrix.from_codes
    m = lowp.quantize_matrix(weights(4, 100), "int8:channel")
    assert "row: 3 values, expected 4" in error(fc, m.format, m.shape, m.codes(),
                                                row=m.scales()["row"][:3])
    assert "row: dtype float64" in error(fc, m.format, m.shape, m.codes(),
                                         row=m.scales()["row"].astype(np.float64))
    m = lowp.quantize_matrix(weights(4, 100), "fp8_e4m3")
    assert "tensor: fp8_e4m3 stores an FP32 tensor scale" in error(fc, m.format, m.shape,
                                                                   m.codes())
    m = lowp.quantize_matrix(weights(4, 100), "nvfp4")
    s = m.scales()
    assert "block: 27 values, expected 28" in error(fc, m.format, m.shape, m.codes(),
                                                    tensor=s["tensor"],
                                                    block=s["block"].ravel()[:27])
    assert "tensor: nvfp4 stores" in error(fc, m.format, m.shape, m.codes(), block=s["block"])
    m = lowp.quantize_matrix(weights(4, 100), "bf16")
    assert "block: bf16 has no" in error(fc, m.format, m.shape, m.codes(),
                                         block=np.zeros(4, np.uint8))
    assert "codes: 799 values" in error(fc, m.format, m.shape, m.codes().ravel()[:-1])
