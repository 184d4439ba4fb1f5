"""Tests of lowp.fone_encode, lowp.fone_decode, lowp.arc_sort and lowp.radix_sort
(the numeracy layer, docs/numeracy.md). The features are checked against the
FoNE definition cos/sin(2 pi x / 10^k) computed here with numpy (exact range
reduction by Python's integers), the sorts against numpy.sort."""

import math

import numpy as np
import pytest

import lowp


def reference_features(n, int_digits, frac_digits):
    """FoNE of the decimal n * 10^-frac_digits (n a Python int), one pair per
    digit, smallest period first: angle 2 pi (n mod 10^(p+1)) / 10^(p+1)."""
    out = []
    for p in range(int_digits + frac_digits):
        q = (n % 10 ** (p + 1)) / 10 ** (p + 1)
        out += [math.cos(2 * math.pi * q), math.sin(2 * math.pi * q)]
    return out


def test_fone_features_match_the_definition():
    values = [0, 7, 25, 999_999_999_999, 123_456_789_012, 10 ** 11]
    f = lowp.fone_encode(values)
    assert f.shape == (6, 24) and f.dtype == np.float64
    for row, n in zip(f, values):
        np.testing.assert_allclose(row, reference_features(n, 12, 0), rtol=0, atol=2e-15)


def test_fone_round_trip_integers_and_decimals():
    rng = np.random.default_rng(5)
    ints = rng.integers(0, 10 ** 12, size=20000, dtype=np.int64)
    for dtype in (np.float64, np.float32):
        f = lowp.fone_encode(ints, dtype=dtype)
        assert f.dtype == dtype
        back = lowp.fone_decode(f)
        np.testing.assert_array_equal(back, ints.astype(np.float64))
    decimals = np.arange(0, 1_000_000, 7) / 1000.0  # ddd.ddd
    for dtype in (np.float64, np.float32):
        f = lowp.fone_encode(decimals, int_digits=3, frac_digits=3, dtype=dtype)
        assert f.shape == (len(decimals), 12)
        back = lowp.fone_decode(f, int_digits=3, frac_digits=3)
        np.testing.assert_array_equal(back, decimals)


def test_fone_strings_and_sign():
    f = lowp.fone_encode(["-12.5", "3.25", "0"], int_digits=2, frac_digits=2, sign=True)
    assert f.shape == (3, 9)
    assert list(f[:, -1]) == [-1, 1, 1]
    np.testing.assert_allclose(f[1, :8], reference_features(325, 2, 2), atol=2e-15)
    np.testing.assert_array_equal(
        lowp.fone_decode(f, int_digits=2, frac_digits=2, sign=True), [-12.5, 3.25, 0])


def test_fone_bad_input():
    with pytest.raises(lowp.Error, match="more than int_digits 3"):
        lowp.fone_encode([1000], int_digits=3)
    with pytest.raises(lowp.Error, match="fractional digits"):
        lowp.fone_encode([0.125], int_digits=3, frac_digits=2)
    with pytest.raises(lowp.Error, match="negative"):
        lowp.fone_encode([-1])
    with pytest.raises(lowp.Error, match="not a decimal number"):
        lowp.fone_encode(["1e5"])
    with pytest.raises(lowp.Error, match="digit layout"):
        lowp.fone_encode([1], int_digits=15, frac_digits=5)
    with pytest.raises(lowp.Error, match="last axis of 24"):
        lowp.fone_decode(np.zeros((2, 23)))
    with pytest.raises(ValueError):
        lowp.fone_encode([math.nan], int_digits=3)


@pytest.mark.parametrize("sort", [lowp.arc_sort, lowp.radix_sort])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint32, np.uint64])
def test_sorts_integers_like_numpy(sort, dtype):
    rng = np.random.default_rng(11)
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, size=50_000, dtype=dtype, endpoint=True)
    x[:5] = [info.min, info.max, 0, 1, info.min]
    x = np.concatenate([x, rng.integers(0, 30, size=1000).astype(dtype)])
    before = x.copy()
    y = sort(x)
    np.testing.assert_array_equal(y, np.sort(x))
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(x, before)  # a copy: the input is untouched


@pytest.mark.parametrize("sort", [lowp.arc_sort, lowp.radix_sort])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sorts_floats_in_total_order(sort, dtype):
    rng = np.random.default_rng(12)
    x = (rng.standard_normal(20_000) * 10.0 ** rng.integers(-30, 30, 20_000)).astype(dtype)
    specials = np.array([np.inf, -np.inf, -0.0, 0.0, np.finfo(dtype).smallest_subnormal,
                         -np.finfo(dtype).smallest_subnormal, np.finfo(dtype).max], dtype=dtype)
    x = np.concatenate([x, specials, specials])
    y = sort(x)
    np.testing.assert_array_equal(y, np.sort(x))
    zeros = y[y == 0]
    assert list(np.signbit(zeros)) == [True, True, False, False]  # -0 before +0
    # NaNs: the negative ones first, the positive ones last (numpy puts all last).
    with_nan = np.array([1.0, np.nan, -np.nan, -2.0], dtype=dtype)
    z = sort(with_nan)
    assert np.isnan(z[0]) and np.signbit(z[0])
    assert list(z[1:3]) == [-2.0, 1.0]
    assert np.isnan(z[3]) and not np.signbit(z[3])


def test_sort_bad_input():
    with pytest.raises(lowp.Error, match="1-D"):
        lowp.arc_sort(np.zeros((2, 2)))
    with pytest.raises(lowp.Error, match="is not int32"):
        lowp.arc_sort(np.zeros(3, dtype=np.int16))
    assert lowp.arc_sort(np.array([], dtype=np.int64)).size == 0
