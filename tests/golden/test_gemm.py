"""int8 GEMM golden against a naive pure-Python loop oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetron.golden.gemm import (
    accumulator_bound,
    channel_vector,
    check_accumulator,
    exact_float_dtype,
    exact_matmul,
    gemm_int,
    gemm_requant,
    matmul_int,
)
from edgetron.golden.intops import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN, M_MAX, S_MAX, S_MIN

from .oracles import K_MAX, int8, requant_oracle

FAST = settings(deadline=None, max_examples=60)


def loop_gemm(a, w, bias=None):
    """Pure-Python triple loop on Python ints."""
    a, w = a.tolist(), w.tolist()
    m, k, n = len(a), len(w), len(w[0]) if w else 0
    out = []
    for i in range(m):
        row = []
        for j in range(n):
            acc = int(bias[j]) if bias is not None else 0
            for t in range(k):
                acc += a[i][t] * w[t][j]
            row.append(acc)
        out.append(row)
    return out


shape_st = st.tuples(st.integers(1, 7), st.integers(1, 9), st.integers(1, 7), st.integers(0, 2**32))


@FAST
@given(shape_st, st.booleans())
def test_gemm_matches_loop_oracle(shape, with_bias):
    m, k, n, seed = shape
    rng = np.random.default_rng(seed)
    a, w = int8(rng, (m, k)), int8(rng, (k, n))
    bias = rng.integers(-(2**20), 2**20, size=n) if with_bias else None
    got = gemm_int(a, w, bias)
    assert got.dtype == np.int64
    assert got.tolist() == loop_gemm(a, w, bias)


@FAST
@given(shape_st)
def test_gemm_requant_per_channel_matches_oracle(shape):
    m, k, n, seed = shape
    rng = np.random.default_rng(seed)
    a, w = int8(rng, (m, k)), int8(rng, (k, n))
    bias = rng.integers(-(2**16), 2**16, size=n)
    ms = rng.integers(0, M_MAX + 1, size=n)
    ss = rng.integers(S_MIN, S_MAX + 1, size=n)
    ss[0] = 20  # one channel with a shift that keeps results in range
    got = gemm_requant(a, w, bias, ms, ss)
    want = [[requant_oracle(v, int(ms[j]), int(ss[j])) for j, v in enumerate(row)]
            for row in loop_gemm(a, w, bias)]
    assert got.tolist() == want


@FAST
@given(st.integers(1, 3), shape_st)
def test_matmul_int_batched_matches_loops(batch, shape):
    m, k, n, seed = shape
    rng = np.random.default_rng(seed)
    a, b = int8(rng, (batch, m, k)), int8(rng, (batch, k, n))
    got = matmul_int(a, b)
    assert got.tolist() == [loop_gemm(a[i], b[i]) for i in range(batch)]


def test_accumulator_reaches_int32_max_exactly_without_wrapping():
    # K_MAX products of (-128)(-128) plus the largest bias the bound still allows.
    bias_max = INT32_MAX - K_MAX * INT8_MIN * INT8_MIN
    a = np.full((1, K_MAX), INT8_MIN, dtype=np.int8)
    w = np.full((K_MAX, 1), INT8_MIN, dtype=np.int8)
    assert int(gemm_int(a, w, [bias_max])[0, 0]) == INT32_MAX
    # Most negative reachable accumulator: (-128)(127) products and the most negative bias.
    w_pos = np.full((K_MAX, 1), INT8_MAX, dtype=np.int8)
    want = K_MAX * INT8_MIN * INT8_MAX - bias_max
    assert int(gemm_int(a, w_pos, [-bias_max])[0, 0]) == want
    assert want >= INT32_MIN


def test_long_reduction_is_exact():
    # The float64 BLAS path must be exact for the longest legal K with random values.
    rng = np.random.default_rng(7)
    a, w = int8(rng, (2, K_MAX)), int8(rng, (K_MAX, 3))
    want = a.astype(np.int64) @ w.astype(np.int64)  # int64 sums: exact, no overflow here
    assert np.array_equal(gemm_int(a, w), want)


def test_gemm_requant_saturates_both_ends():
    a = np.array([[INT8_MAX, INT8_MAX], [1, 0]], dtype=np.int8)
    w_pos = np.full((2, 1), INT8_MAX, dtype=np.int8)
    w_neg = np.full((2, 1), INT8_MIN, dtype=np.int8)
    # Accumulators [32258, 127] and [-32512, -128], multiplied by about 2**30.
    assert gemm_requant(a, w_pos, None, M_MAX, S_MIN).tolist() == [[INT8_MAX], [INT8_MAX]]
    assert gemm_requant(a, w_neg, None, M_MAX, S_MIN).tolist() == [[INT8_MIN], [INT8_MIN]]
    # The same accumulators at unit gain (m / 2**s = 1) pass through unless out of int8.
    unit = 1 << S_MIN
    assert gemm_requant(a, w_pos, None, unit, S_MIN).tolist() == [[INT8_MAX], [INT8_MAX]]
    assert gemm_requant(a, w_neg, None, unit, S_MIN).tolist() == [[INT8_MIN], [INT8_MIN]]
    assert gemm_requant(a, w_neg, [1], unit, S_MIN).tolist() == [[INT8_MIN], [INT8_MIN + 1]]


def test_check_accumulator_bound():
    assert accumulator_bound(K_MAX) <= INT32_MAX < accumulator_bound(K_MAX + 1)
    check_accumulator(K_MAX)
    with pytest.raises(ValueError, match=rf"K={K_MAX + 1} .*beyond the int32 accumulator limit"):
        check_accumulator(K_MAX + 1)
    with pytest.raises(ValueError, match=r"\|bias\| up to 16384 could reach"):
        check_accumulator(K_MAX, INT32_MAX - K_MAX * INT8_MIN * INT8_MIN + 1)


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        ((np.zeros((2, 3)), np.zeros((3, 2), dtype=np.int8)), TypeError,
         "a must hold integers, got dtype float64"),
        ((np.zeros((2, 3), dtype=np.int8), np.zeros((3, 2), dtype=np.float32)), TypeError,
         "w must hold integers"),
        ((np.zeros((2, 3), dtype=np.int8), np.zeros((4, 2), dtype=np.int8)), ValueError,
         r"shape mismatch: a is \(2, 3\) \(K=3\) but w is \(4, 2\) \(K=4\)"),
        ((np.zeros(3, dtype=np.int8), np.zeros((3, 2), dtype=np.int8)), ValueError,
         r"a must be 2-D, got shape \(3,\)"),
        ((np.full((1, 1), 128), np.zeros((1, 1), dtype=np.int8)), ValueError,
         r"a must lie in \[-128, 127\]"),
        ((np.zeros((1, 1), dtype=np.int8), np.full((1, 1), -129)), ValueError,
         r"w must lie in \[-128, 127\]"),
        ((np.zeros((1, 2), dtype=np.int8), np.zeros((2, 3), dtype=np.int8), [1, 2]), ValueError,
         r"bias must have shape \(3,\), got \(2,\)"),
        ((np.zeros((1, 2), dtype=np.int8), np.zeros((2, 1), dtype=np.int8), [2**31]), ValueError,
         r"bias must lie in \[-2147483648, 2147483647\]"),
        ((np.zeros((1, 2), dtype=np.int8), np.zeros((2, 1), dtype=np.int8), [0.5]), TypeError,
         "bias must hold integers"),
        ((np.zeros((1, K_MAX + 1), dtype=np.int8), np.zeros((K_MAX + 1, 1), dtype=np.int8)),
         ValueError, rf"K={K_MAX + 1} .*int32 accumulator limit"),
    ],
)
def test_gemm_int_rejects_bad_input(args, exc, match):
    with pytest.raises(exc, match=match):
        gemm_int(*args)


@pytest.mark.parametrize(
    ("mult", "shift", "match"),
    [(M_MAX + 1, 8, r"mult must lie in \[0, 2147483647\]"), (-1, 8, r"mult must lie in"),
     (1, 0, r"shift must lie in \[1, 62\]"), (1, 63, r"shift must lie in \[1, 62\]")],
)
def test_gemm_requant_rejects_bad_constants(mult, shift, match):
    a = np.ones((1, 2), dtype=np.int8)
    with pytest.raises(ValueError, match=match):
        gemm_requant(a, a.T, None, mult, shift)


def test_matmul_int_rejects_bad_input():
    with pytest.raises(ValueError, match="matmul needs 2-D or batched operands"):
        matmul_int(np.zeros(3, dtype=np.int8), np.zeros((3, 1), dtype=np.int8))
    with pytest.raises(ValueError, match=r"shape mismatch: a is \(2, 2, 3\) \(K=3\)"):
        matmul_int(np.zeros((2, 2, 3), dtype=np.int8), np.zeros((2, 4, 1), dtype=np.int8))
    with pytest.raises(ValueError, match=r"b must lie in \[-128, 127\]"):
        matmul_int(np.zeros((1, 1), dtype=np.int8), np.full((1, 1), 200))
    with pytest.raises(ValueError, match=rf"K={K_MAX + 1} "):
        matmul_int(np.zeros((1, K_MAX + 1), dtype=np.int8), np.zeros((K_MAX + 1, 1), np.int8))


def test_float32_path_is_exact_up_to_its_bound_and_float64_beyond():
    # K = 1024 products of (-128)(-128) reach exactly 2**24, the last integer run that float32
    # represents without gaps; every partial sum is an integer of at most that size.
    assert exact_float_dtype(1024) is np.float32 and exact_float_dtype(1025) is np.float64
    a = np.full((1, 1024), INT8_MIN, dtype=np.int8)
    assert int(gemm_int(a, a.T)[0, 0]) == 2**24
    # K = 1025 can reach 2**24 + 1, which float32 rounds away: the float64 path is needed.
    a = np.full((1, 1025), INT8_MIN, dtype=np.int64)
    w = a.T.copy()
    a[0, -1], w[-1, 0] = 1, 1
    assert int(gemm_int(a, w)[0, 0]) == 2**24 + 1
    assert int(np.matmul(a.astype(np.float32), w.astype(np.float32))[0, 0]) != 2**24 + 1
    assert int(matmul_int(a, w)[0, 0]) == 2**24 + 1


@pytest.mark.parametrize("k", [192, 768, 1024, 1500])
def test_int8_and_wider_integer_operands_agree(k):
    rng = np.random.default_rng(k)
    a, w = int8(rng, (5, k)), int8(rng, (k, 6))
    bias = rng.integers(-(2**20), 2**20, size=6)
    want = a.astype(np.int64) @ w.astype(np.int64) + bias
    for da, dw in [(np.int8, np.int8), (np.int64, np.int8), (np.int32, np.int64)]:
        np.testing.assert_array_equal(gemm_int(a.astype(da), w.astype(dw), bias), want)
        np.testing.assert_array_equal(matmul_int(a.astype(da), w.astype(dw)), want - bias)


def test_gemm_requant_rejects_constants_of_the_wrong_shape():
    rng = np.random.default_rng(12)
    a, w = int8(rng, (4, 5)), int8(rng, (5, 4))
    m, s = rng.integers(1 << 30, 1 << 31, 4), rng.integers(30, 40, 4)
    # A column vector broadcast along the rows of a square output used to requantize each
    # row with another row's constants: a silently wrong answer.
    with pytest.raises(ValueError, match=r"mult must be a scalar or have shape \(4,\), "
                                         r"got \(4, 1\)"):
        gemm_requant(a, w, None, m[:, None], s)
    with pytest.raises(ValueError,
                       match=r"shift must be a scalar or have shape \(4,\), got \(3,\)"):
        gemm_requant(a, w, None, m, s[:3])
    acc = gemm_int(a, w)
    want = [[requant_oracle(int(acc[i, j]), int(m[j]), int(s[j])) for j in range(4)]
            for i in range(4)]
    assert gemm_requant(a, w, None, m, s).tolist() == want
    assert gemm_requant(a, w, None, list(m), int(s[0])).tolist() == [
        [requant_oracle(int(acc[i, j]), int(m[j]), int(s[0])) for j in range(4)]
        for i in range(4)]


def test_channel_vector():
    assert channel_vector(3, 4, "m").shape == ()
    assert channel_vector(np.arange(4, dtype=np.int32), 4, "m").dtype == np.int64
    with pytest.raises(ValueError, match=r"s must be a scalar or have shape \(4,\), "
                                         r"got \(1, 4\)"):
        channel_vector(np.ones((1, 4), dtype=np.int64), 4, "s")
    with pytest.raises(TypeError, match="m must hold integers"):
        channel_vector([1.0], 1, "m")


def test_matmul_int_names_both_shapes_when_batch_axes_do_not_broadcast():
    a = np.zeros((2, 2, 3), dtype=np.int8)
    with pytest.raises(ValueError, match=r"batch shape mismatch: a is \(2, 2, 3\) \(batch "
                                         r"\(2,\)\) but b is \(3, 3, 4\) \(batch \(3,\)\)"):
        matmul_int(a, np.zeros((3, 3, 4), dtype=np.int8))
    # Batch axes that broadcast (NumPy's rules) are still fine.
    rng = np.random.default_rng(8)
    x, y = int8(rng, (1, 2, 3)), int8(rng, (5, 3, 4))
    got = matmul_int(x, y)
    assert got.shape == (5, 2, 4)
    for i in range(5):
        assert got[i].tolist() == loop_gemm(x[0], y[i])


def test_accumulator_bound_checks_its_arguments():
    assert accumulator_bound(np.int64(2), np.int32(5)) == 2 * 2**14 + 5
    check_accumulator(1, acc_bits=np.int64(16))
    with pytest.raises(ValueError, match=r"k must lie in \[0, "):
        accumulator_bound(-1)
    with pytest.raises(ValueError, match=r"max_abs_bias must lie in \[0, "):
        check_accumulator(1, -5)
    with pytest.raises(TypeError, match="k must be an integer, got float"):
        check_accumulator(2.5)
    with pytest.raises(ValueError, match=r"acc_bits must lie in \[2, 63\], got 64"):
        check_accumulator(1, acc_bits=64)
    with pytest.raises(TypeError, match="a must be an integer array, got list"):
        exact_matmul([[1]], np.ones((1, 1), dtype=np.int8))
    with pytest.raises(TypeError, match="b must be an integer array, got ndarray"):
        exact_matmul(np.ones((1, 1), dtype=np.int8), np.ones((1, 1)))
