"""The code books nf4, nf3 and dint4 through the numpy bindings: every code, a
brute-force nearest search written here, and matrices with AFPQ's two scales."""

import numpy as np
import pytest

import lowp

TABLES = {
    "nf4": [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
            -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
            0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
            0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0],
    "nf3": [-1.0, -0.5350227355957031, -0.2469314038753510, 0.0, 0.1833375245332718,
            0.3819939494132996, 0.6229856610298157, 1.0],
    "dint4": [0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -0.0, -0.5, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0],
}


def values(name):
    return np.array(TABLES[name], np.float32)  # the nearest fp32 of each decimal


def brute_codes(name, x):
    """Nearest value (ties: the smaller magnitude), saturating; NaN -> +0; a
    zero keeps the input's sign where the table has -0."""
    t = values(name).astype(np.float64)
    out = np.empty(x.shape, np.uint8)
    for i, v in enumerate(x.astype(np.float64)):
        if np.isnan(v):
            out[i] = TABLES[name].index(0.0)
            continue
        d = np.abs(np.clip(v, -1e6, 1e6) - t)  # far out and +-Inf: the ends
        best = min(range(len(t)), key=lambda c: (d[c], abs(t[c]), np.signbit(t[c]) != np.signbit(v)))
        out[i] = best
    return out


@pytest.mark.parametrize("name", sorted(TABLES))
def test_formats_entry(name):
    info = lowp.format_info(name)
    assert info["kind"] == "table"
    assert info["bits"] == (3 if name == "nf3" else 4)
    assert np.array_equal(np.array(info["values"], np.float32), values(name))


@pytest.mark.parametrize("name", sorted(TABLES))
def test_decode_every_code(name):
    codes = np.arange(len(TABLES[name]), dtype=np.uint8)
    got = lowp.decode(codes, name)
    assert got.dtype == np.float32
    assert np.array_equal(got.view(np.uint32), values(name).view(np.uint32))


@pytest.mark.parametrize("name", sorted(TABLES))
def test_encode_against_brute_force(name):
    rng = np.random.default_rng(3)
    t = np.unique(values(name).astype(np.float64))
    mids = (t[:-1] + t[1:]) / 2
    x = np.concatenate([rng.uniform(-8, 8, 3000), rng.standard_normal(1000) * 0.1, mids,
                        np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf),
                        [np.nan, np.inf, -np.inf, 0.0, -0.0, -1e-30, 1e30]])
    assert np.array_equal(lowp.encode(x, name), brute_codes(name, x))
    assert np.array_equal(lowp.encode(x.astype(np.float32), name),
                          brute_codes(name, x.astype(np.float32)))


@pytest.mark.parametrize("fmt", ["nf4:group64:asym", "nf3:group32:asym", "dint4:group32", "nf4:channel"])
def test_matrix_round_trip(fmt):
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((4, 128)) * 0.02).astype(np.float32)
    w[1, :64] = np.abs(w[1, :64])  # a group of one sign
    m = lowp.quantize_matrix(w, fmt)
    assert m.format == fmt
    d = m.dequantize()
    again = lowp.PackedMatrix.from_codes(m.format, m.shape, m.codes(), **m.scales())
    assert np.array_equal(again.dequantize().view(np.uint32), d.view(np.uint32))
    element = fmt.split(":")[0]
    bits = 3 if element == "nf3" else 4
    scale_bits = {"group64:asym": 32 / 64, "group32:asym": 32 / 32, "group32": 16 / 32,
                  "channel": 32 / 128}[fmt.split(":", 1)[1]]
    assert m.bits_per_weight == pytest.approx(bits + scale_bits)
    # Every dequantized value is a table value times one of its group's scales.
    assert np.abs(d - w).max() < np.abs(w).max() * 0.3


def test_nf4_asym_by_hand():
    # One group of 4: s+ = fp16(0.5 / 1), s- = fp16(0.25 / 1).
    w = np.array([[0.5, 0.2, -0.25, -0.1]], np.float32)
    m = lowp.quantize_matrix(w, "nf4:group4:asym")
    s = m.scales()["group"].reshape(-1).astype(np.float32)
    assert list(s) == [0.5, 0.25]
    t = values("nf4")
    want = []
    for v in w[0]:
        sc = s[1] if v < 0 else s[0]
        want.append(t[np.argmin(np.abs(t.astype(np.float64) - np.float64(np.float32(v / sc))))] * sc)
    assert np.array_equal(m.dequantize()[0], np.array(want, np.float32))


def test_bad_spellings():
    with pytest.raises(ValueError, match="closest"):
        lowp.encode([1.0], "nf5")
    with pytest.raises(ValueError, match="code book"):
        lowp.quantize_matrix(np.zeros((1, 32), np.float32), "mx:nf4:32")
