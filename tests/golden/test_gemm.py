"""int8 GEMM golden against a naive loop oracle; the accumulator bound and its inverse."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetron.golden.gemm import (
    accumulator_bound,
    accumulator_k_limit,
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


# ---- accumulator bound for any operand widths, and its inverse --------------------------------
def _signed(bits: int) -> tuple[int, int]:
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


@pytest.mark.parametrize(("a_bits", "b_bits"), [(2, 2), (2, 8), (3, 5), (4, 4), (6, 7), (8, 8)])
def test_accumulator_bound_is_the_worst_product_times_k_plus_the_bias(a_bits, b_bits):
    # Oracle: the largest |x * y| over every pair of operand values, by enumeration.
    worst = max(abs(x * y) for x, y in itertools.product(range(_signed(a_bits)[0],
                                                               _signed(a_bits)[1] + 1),
                                                         range(_signed(b_bits)[0],
                                                               _signed(b_bits)[1] + 1)))
    for k, bias in ((0, 0), (1, 0), (3, 7), (1000, 2**20)):
        bound = accumulator_bound(k, bias, a_bits, b_bits)
        assert bound == k * worst + bias
        assert bound == accumulator_bound(k, bias, b_bits, a_bits)
        # Reached: k products of the two most negative values plus the bias.
        lo_a, lo_b = _signed(a_bits)[0], _signed(b_bits)[0]
        assert sum(lo_a * lo_b for _ in range(k)) + bias == bound


def test_accumulator_bound_wide_operands_and_int8_default():
    assert accumulator_bound(5, 3) == accumulator_bound(5, 3, 8, 8) == 5 * 2**14 + 3
    assert accumulator_bound(1, 0, 32, 32) == 2**62  # (-2**31) * (-2**31)
    assert accumulator_bound(2, 0, 16, 8) == 2 * 2**15 * 2**7
    assert accumulator_bound(2**63 - 1, 2**63 - 1, 32, 32) == (2**63 - 1) * (2**62 + 1)


@settings(deadline=None, max_examples=300)
@given(acc_bits=st.integers(2, 63), a_bits=st.integers(2, 32), b_bits=st.integers(2, 32),
       bias=st.one_of(st.integers(0, 2**20), st.integers(0, 2**63 - 1)))
def test_accumulator_k_limit_is_the_inverse_of_the_bound(acc_bits, a_bits, b_bits, bias):
    limit = 2 ** (acc_bits - 1) - 1
    k = accumulator_k_limit(acc_bits, bias, a_bits, b_bits)
    if bias > limit:  # not even the bias fits
        assert k == 0
        return
    assert accumulator_bound(k, bias, a_bits, b_bits) <= limit
    assert accumulator_bound(k + 1, bias, a_bits, b_bits) > limit


@pytest.mark.parametrize(
    ("acc_bits", "bias", "a_bits", "b_bits", "k"),
    [
        (32, 0, 8, 8, K_MAX),  # 131071: the int32 accumulator of the int8 GEMM
        (32, 2**14 - 1, 8, 8, K_MAX),  # K_MAX * 2**14 + 16383 = 2**31 - 1 exactly
        (32, 2**14, 8, 8, K_MAX - 1),
        (32, 2**31 - 1, 8, 8, 0),  # the bias fills the accumulator
        (32, 2**31, 8, 8, 0),  # the bias alone overflows
        (24, 0, 8, 8, 511),  # a 24-bit accumulator: 511 * 2**14 < 2**23 - 1 < 512 * 2**14
        (32, 0, 4, 4, (2**31 - 1) // 64),  # int4 x int4: products up to 64
        (32, 0, 4, 8, (2**31 - 1) // 2**10),
        (16, 0, 2, 2, (2**15 - 1) // 4),
        (2, 0, 2, 2, 0),  # one product (-2)(-2) = 4 exceeds the 2-bit maximum 1
        (4, 0, 2, 2, 1),  # 4 <= 7 < 8
        (63, 0, 32, 32, 0),  # (-2**31)**2 = 2**62 exceeds 2**62 - 1
        (63, 0, 31, 32, 1),
        (63, 0, 8, 8, (2**62 - 1) // 2**14),
    ],
)
def test_accumulator_k_limit_extremes(acc_bits, bias, a_bits, b_bits, k):
    assert accumulator_k_limit(acc_bits, bias, a_bits, b_bits) == k


def test_accumulator_k_limit_agrees_with_check_accumulator():
    for bias in (0, 1, 2**14 - 1, 2**14, 12345678):
        k = accumulator_k_limit(32, bias)
        check_accumulator(k, bias)
        with pytest.raises(ValueError, match="beyond the int32 accumulator limit"):
            check_accumulator(k + 1, bias)


@pytest.mark.parametrize(
    ("fn", "args", "exc", "match"),
    [
        (accumulator_bound, (1, 0, 1, 8), ValueError, r"a_bits must lie in \[2, 32\], got 1"),
        (accumulator_bound, (1, 0, 8, 33), ValueError, r"b_bits must lie in \[2, 32\], got 33"),
        (accumulator_bound, (1, 0, 8.0, 8), TypeError, "a_bits must be an integer, got float"),
        (accumulator_bound, (2**63,), ValueError, r"k must lie in \[0, "),
        (accumulator_k_limit, (1,), ValueError, r"acc_bits must lie in \[2, 63\], got 1"),
        (accumulator_k_limit, (64,), ValueError, r"acc_bits must lie in \[2, 63\], got 64"),
        (accumulator_k_limit, (32, -1), ValueError, r"max_abs_bias must lie in \[0, "),
        (accumulator_k_limit, (32, 0, 8, 1), ValueError, r"b_bits must lie in \[2, 32\]"),
        (accumulator_k_limit, (True,), TypeError, "acc_bits must be an integer, got bool"),
    ],
)
def test_accumulator_functions_reject_bad_arguments(fn, args, exc, match):
    with pytest.raises(exc, match=match):
        fn(*args)
