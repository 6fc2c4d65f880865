"""conv2d / pooling golden against naive pure-Python loop oracles."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetron.golden.conv import (
    avgpool2d,
    avgpool_constants,
    conv2d_int,
    conv2d_out_size,
    conv2d_requant,
    global_avgpool2d,
    maxpool2d,
)
from edgetron.golden.dyadic import dyadic
from edgetron.golden.intops import (
    INT8_MAX,
    INT8_MIN,
    INT32_MAX,
    M_MAX,
    S_MAX,
    S_MIN,
    requantize,
)

from .oracles import K_MAX, int8, requant_oracle

FAST = settings(deadline=None, max_examples=60)


# ---- oracles (Python ints, explicit loops, explicit padding) ---------------------------------
def sides(padding) -> tuple[int, int, int, int]:
    """``(ph, pw)`` or ``(top, bottom, left, right)`` as the four sides."""
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    return tuple(padding)


def loop_conv(x, w, bias, stride, padding, groups):
    x, w = x.tolist(), w.tolist()
    n_, h_, w_ = len(x), len(x[0][0]), len(x[0][0][0])
    k_, cg, r_, s_ = len(w), len(w[0]), len(w[0][0]), len(w[0][0][0])
    (sh, sw), (ph, pb, pw, pr) = stride, sides(padding)
    ho, wo = (h_ + ph + pb - r_) // sh + 1, (w_ + pw + pr - s_) // sw + 1
    kg = k_ // groups
    out = [[[[0] * wo for _ in range(ho)] for _ in range(k_)] for _ in range(n_)]
    for n in range(n_):
        for k in range(k_):
            g = k // kg
            for i in range(ho):
                for j in range(wo):
                    acc = int(bias[k]) if bias is not None else 0
                    for c in range(cg):
                        for r in range(r_):
                            for s in range(s_):
                                y, xx = i * sh + r - ph, j * sw + s - pw
                                if 0 <= y < h_ and 0 <= xx < w_:
                                    acc += x[n][g * cg + c][y][xx] * w[k][c][r][s]
                    out[n][k][i][j] = acc
    return out


def loop_pool(x, kernel, stride, padding, kind):
    x = x.tolist()
    (kr, ks), (sh, sw), (ph, pb, pw, pr) = kernel, stride, sides(padding)
    h_, w_ = len(x[0][0]), len(x[0][0][0])
    ho, wo = (h_ + ph + pb - kr) // sh + 1, (w_ + pw + pr - ks) // sw + 1
    out = []
    for plane_n in x:
        rows_n = []
        for plane in plane_n:
            rows = []
            for i in range(ho):
                row = []
                for j in range(wo):
                    vals = [plane[i * sh + r - ph][j * sw + s - pw]
                            for r in range(kr) for s in range(ks)
                            if 0 <= i * sh + r - ph < h_ and 0 <= j * sw + s - pw < w_]
                    # avg: padded positions count as zeros, the window size is always kr*ks
                    row.append(max(vals) if kind == "max" else avg_oracle(sum(vals), kr * ks))
                rows.append(row)
            rows_n.append(rows)
        out.append(rows_n)
    return out


def avg_oracle(total: int, n: int) -> int:
    """Window sum times the dyadic of 1/n, rounded half up (exact rationals)."""
    m, s = dyadic(Fraction(1, n))
    return requant_oracle(total, m, s)


@st.composite
def conv_case(draw, asymmetric=False):
    groups_kind = draw(st.sampled_from(["dense", "grouped", "depthwise"]))
    if groups_kind == "dense":
        groups, cg, kg = 1, draw(st.integers(1, 4)), draw(st.integers(1, 4))
    elif groups_kind == "grouped":
        groups, cg, kg = draw(st.integers(2, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    else:  # depthwise: one input channel per group, K = C * multiplier
        groups, cg, kg = draw(st.integers(1, 5)), 1, draw(st.integers(1, 2))
    r, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    # Each side of padding is at most max(kernel, stride) - 1 (golden/conv.py, Padding).
    ph_max, pw_max = max(r, stride[0]) - 1, max(s, stride[1]) - 1
    if asymmetric:  # (top, bottom, left, right), each side on its own
        padding = tuple(draw(st.integers(0, hi)) for hi in (ph_max, ph_max, pw_max, pw_max))
    else:
        padding = (draw(st.integers(0, ph_max)), draw(st.integers(0, pw_max)))
    pt, pb, pl, pr = sides(padding)
    h = draw(st.integers(max(1, r - pt - pb), 7))
    w = draw(st.integers(max(1, s - pl - pr), 7))
    return dict(
        n=draw(st.integers(1, 2)), c=groups * cg, k=groups * kg, h=h, w=w, r=r, s=s,
        stride=stride, padding=padding,
        groups=groups, bias=draw(st.booleans()), seed=draw(st.integers(0, 2**32)),
    )


def case_operands(case) -> tuple[np.random.Generator, np.ndarray, np.ndarray]:
    """The generator seeded by ``case`` and the int8 input and weights it draws first."""
    rng = np.random.default_rng(case["seed"])
    x = int8(rng, (case["n"], case["c"], case["h"], case["w"]))
    w = int8(rng, (case["k"], case["c"] // case["groups"], case["r"], case["s"]))
    return rng, x, w


@FAST
@given(conv_case())
def test_conv2d_matches_loop_oracle(case):
    rng, x, w = case_operands(case)
    bias = rng.integers(-(2**20), 2**20, size=case["k"]) if case["bias"] else None
    got = conv2d_int(x, w, bias, case["stride"], case["padding"], case["groups"])
    assert got.dtype == np.int64
    assert got.tolist() == loop_conv(x, w, bias, case["stride"], case["padding"], case["groups"])


@pytest.mark.parametrize(
    ("shape_x", "shape_w", "stride", "padding", "groups"),
    [
        ((1, 3, 9, 9), (4, 3, 3, 3), 2, 1, 1),            # stride 2, padding 1 (ResNet downsample)
        ((2, 3, 11, 10), (2, 3, 7, 7), 2, 3, 1),          # 7x7 stem shape, odd sizes
        ((1, 4, 6, 6), (8, 1, 3, 3), 1, 1, 4),            # depthwise, channel multiplier 2
        ((1, 6, 7, 5), (6, 1, 3, 3), 2, 1, 6),            # depthwise, stride 2
        ((1, 4, 5, 5), (6, 2, 1, 1), 1, 0, 2),            # grouped 1x1
        ((1, 2, 5, 8), (3, 2, 2, 3), (1, 2), (0, 1), 1),  # non-square stride and padding
    ],
)
def test_conv2d_named_cases(shape_x, shape_w, stride, padding, groups):
    rng = np.random.default_rng(sum(shape_x) + sum(shape_w))
    x, w = int8(rng, shape_x), int8(rng, shape_w)
    bias = rng.integers(-1000, 1000, size=shape_w[0])
    st_ = stride if isinstance(stride, tuple) else (stride, stride)
    pd_ = padding if isinstance(padding, tuple) else (padding, padding)
    got = conv2d_int(x, w, bias, stride, padding, groups)
    assert got.tolist() == loop_conv(x, w, bias, st_, pd_, groups)
    assert got.shape[2:] == (conv2d_out_size(shape_x[2], shape_w[2], st_[0], pd_[0]),
                             conv2d_out_size(shape_x[3], shape_w[3], st_[1], pd_[1]))


@FAST
@given(conv_case(asymmetric=True))
def test_conv2d_asymmetric_padding_matches_loop_oracle(case):
    rng, x, w = case_operands(case)
    bias = rng.integers(-(2**20), 2**20, size=case["k"]) if case["bias"] else None
    got = conv2d_int(x, w, bias, case["stride"], case["padding"], case["groups"])
    assert got.tolist() == loop_conv(x, w, bias, case["stride"], case["padding"], case["groups"])
    # The same as zero-padding the input explicitly and convolving without padding.
    pt, pb, pl, pr = case["padding"]
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    assert got.tolist() == conv2d_int(xp, w, bias, case["stride"], 0, case["groups"]).tolist()


@pytest.mark.parametrize(
    ("shape_x", "shape_w", "stride", "padding"),
    [
        ((1, 2, 8, 8), (3, 2, 3, 3), 2, (0, 1, 0, 1)),   # TensorFlow SAME, 3x3/2 on an even size
        ((1, 2, 8, 6), (3, 2, 2, 2), 1, (1, 0, 1, 0)),   # SAME for an even kernel: extra on top
        ((1, 3, 8, 9), (2, 3, 3, 3), 2, (0, 1, 0, 0)),   # SCALE-Sim partial last window (rows)
        ((1, 1, 5, 5), (1, 1, 3, 3), 1, (2, 0, 0, 2)),   # padding only on two sides
    ],
)
def test_conv2d_asymmetric_named_cases(shape_x, shape_w, stride, padding):
    rng = np.random.default_rng(sum(shape_x) + sum(padding))
    x, w = int8(rng, shape_x), int8(rng, shape_w)
    got = conv2d_int(x, w, None, stride, padding)
    assert got.tolist() == loop_conv(x, w, None, (stride, stride), padding, 1)
    pt, pb, pl, pr = padding
    assert got.shape[2:] == (conv2d_out_size(shape_x[2], shape_w[2], stride, (pt, pb)),
                             conv2d_out_size(shape_x[3], shape_w[3], stride, (pl, pr)))
    req = conv2d_requant(x, w, None, 3 << 28, 36, stride, padding)
    assert req.tolist() == [[[[requant_oracle(int(v), 3 << 28, 36) for v in row] for row in p]
                             for p in got[0]]]


def test_every_padding_form_means_the_same():
    rng = np.random.default_rng(21)
    x, w = int8(rng, (1, 2, 6, 7)), int8(rng, (2, 2, 3, 3))
    for short, full in ((1, (1, 1, 1, 1)), ((1, 0), (1, 1, 0, 0)), ([0, 1], (0, 0, 1, 1))):
        assert conv2d_int(x, w, None, 1, short).tolist() == conv2d_int(x, w, None, 1,
                                                                          full).tolist()
        assert maxpool2d(x, 3, 1, short).tolist() == maxpool2d(x, 3, 1, full).tolist()
        assert avgpool2d(x, 3, 2, short).tolist() == avgpool2d(x, 3, 2, list(full)).tolist()
    assert conv2d_out_size(5, 3, 1, 1) == conv2d_out_size(5, 3, 1, (1, 1)) == 5
    assert conv2d_out_size(5, 3, 2, (0, 1)) == 2


@FAST
@given(conv_case())
def test_conv2d_requant_per_channel_matches_oracle(case):
    rng, x, w = case_operands(case)
    bias = rng.integers(-(2**12), 2**12, size=case["k"])
    ms = rng.integers(0, M_MAX + 1, size=case["k"])
    ss = rng.integers(S_MIN, S_MAX + 1, size=case["k"])
    ss[0] = 36  # about unit gain for m near 2**31: results inside int8, rounding exercised
    got = conv2d_requant(x, w, bias, ms, ss, case["stride"], case["padding"], case["groups"])
    acc = loop_conv(x, w, bias, case["stride"], case["padding"], case["groups"])
    want = [[[[requant_oracle(v, int(ms[k]), int(ss[k])) for v in row] for row in plane]
             for k, plane in enumerate(img)] for img in acc]
    assert got.tolist() == want


def test_conv2d_requant_scalar_constants():
    rng = np.random.default_rng(3)
    x, w = int8(rng, (1, 2, 4, 4)), int8(rng, (3, 2, 3, 3))
    acc = conv2d_int(x, w, None, 1, 1)
    got = conv2d_requant(x, w, None, 3 << 28, 35, 1, 1)
    assert got.tolist() == [[[[requant_oracle(int(v), 3 << 28, 35) for v in row] for row in p]
                             for p in acc[0]]]


# ---- saturation and accumulator limits ----------------------------------------------------
def test_conv2d_accumulator_reaches_int32_max_exactly():
    # C * R * S = K_MAX products of (-128)(-128) plus the largest bias the bound allows.
    bias_max = INT32_MAX - K_MAX * INT8_MIN * INT8_MIN
    x = np.full((1, K_MAX, 1, 1), INT8_MIN, dtype=np.int8)
    acc = conv2d_int(x, x, [bias_max])
    assert acc.shape == (1, 1, 1, 1)
    assert int(acc[0, 0, 0, 0]) == INT32_MAX


def test_conv2d_requant_saturates_both_ends():
    x = np.full((1, 2, 3, 3), INT8_MAX, dtype=np.int8)
    w = np.stack([np.full((2, 3, 3), INT8_MAX), np.full((2, 3, 3), INT8_MIN)]).astype(np.int8)
    y = conv2d_requant(x, w, None, M_MAX, S_MIN, padding=1)
    assert (y[0, 0] == INT8_MAX).all()
    assert (y[0, 1] == INT8_MIN).all()
    # Unit gain (m / 2**s = 1): the corner sums 4 * 2 * 127 * 127 saturate as well.
    y1 = conv2d_requant(x, w, None, 1 << S_MIN, S_MIN, padding=1)
    assert y1[0, 0].min() == INT8_MAX and y1[0, 1].max() == INT8_MIN


def test_pools_saturate_at_both_ends():
    for v in (INT8_MIN, INT8_MAX):
        x = np.full((1, 2, 7, 7), v, dtype=np.int8)
        assert (maxpool2d(x, 3, 2, 1) == v).all()
        assert (avgpool2d(x, 2) == v).all()
        assert (global_avgpool2d(x) == v).all()
    # Max pooling never lets a padded position win, even over all -128 inputs.
    x = np.full((1, 1, 4, 4), INT8_MIN, dtype=np.int8)
    assert (maxpool2d(x, 3, 1, 1) == INT8_MIN).all()
    assert (maxpool2d(x, 3, 2, (0, 1, 1, 0)) == INT8_MIN).all()
    # With an output scale finer than the input's (here S_y = S_x / 2), the requantized
    # average saturates at both ends instead of wrapping.
    m, s = avgpool_constants(4, 0.1, 0.05)
    for v in (INT8_MIN, INT8_MAX):
        x = np.full((1, 2, 4, 4), v, dtype=np.int8)
        assert (avgpool2d(x, 2, mult=m, shift=s) == v).all()
        assert (global_avgpool2d(x, *avgpool_constants(16, 0.1, 0.05)) == v).all()
    assert (avgpool2d(np.full((1, 1, 2, 2), 50, dtype=np.int8), 2, mult=m, shift=s) == 100).all()
    # Average pooling counts padding as zeros: all-127 windows with padding average lower.
    x = np.full((1, 1, 4, 4), INT8_MAX, dtype=np.int8)
    y = avgpool2d(x, 2, 2, (1, 1, 0, 0))  # rows: pad, 0..3, pad -> 3 windows of 2 rows
    assert y[0, 0, :, 0].tolist() == [avg_oracle(2 * INT8_MAX, 4), INT8_MAX,
                                      avg_oracle(2 * INT8_MAX, 4)]


# ---- pooling ---------------------------------------------------------------------------
@st.composite
def pool_case(draw):
    kr, ks = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kr // 2)), draw(st.integers(0, ks // 2))
    return dict(
        shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)),
               draw(st.integers(max(1, kr - 2 * ph), 8)),
               draw(st.integers(max(1, ks - 2 * pw), 8))),
        kernel=(kr, ks), stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        padding=(ph, pw), seed=draw(st.integers(0, 2**32)),
    )


@st.composite
def asymmetric_pool_case(draw):
    kr, ks = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    pad = (draw(st.integers(0, kr // 2)), draw(st.integers(0, kr // 2)),
           draw(st.integers(0, ks // 2)), draw(st.integers(0, ks // 2)))
    return dict(
        shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)),
               draw(st.integers(max(1, kr - pad[0] - pad[1]), 8)),
               draw(st.integers(max(1, ks - pad[2] - pad[3]), 8))),
        kernel=(kr, ks), stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        padding=pad, seed=draw(st.integers(0, 2**32)),
    )


@FAST
@given(asymmetric_pool_case(), st.sampled_from(["max", "avg"]))
def test_pool_asymmetric_padding_matches_loop_oracle(case, kind):
    x = int8(np.random.default_rng(case["seed"]), case["shape"])
    fn = maxpool2d if kind == "max" else avgpool2d
    got = fn(x, case["kernel"], case["stride"], case["padding"])
    assert got.tolist() == loop_pool(x, case["kernel"], case["stride"], case["padding"], kind)


@pytest.mark.parametrize(
    ("shape", "kernel", "stride", "padding"),
    [
        ((1, 2, 8, 8), 3, 2, (0, 1, 0, 1)),    # TensorFlow SAME max pool on an even size
        ((1, 2, 7, 9), 2, 2, (0, 1, 0, 1)),    # SCALE-Sim partial last window of 2x2/2
        ((1, 1, 6, 6), (3, 1), (2, 1), (1, 0, 0, 0)),
    ],
)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_asymmetric_named_cases(shape, kernel, stride, padding, kind):
    x = int8(np.random.default_rng(sum(shape)), shape)
    fn = maxpool2d if kind == "max" else avgpool2d
    kern = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    strd = stride if isinstance(stride, tuple) else (stride, stride)
    assert fn(x, kernel, stride, padding).tolist() == loop_pool(x, kern, strd, padding, kind)


@FAST
@given(pool_case(), st.sampled_from(["max", "avg"]))
def test_pool_matches_loop_oracle(case, kind):
    x = int8(np.random.default_rng(case["seed"]), case["shape"])
    fn = maxpool2d if kind == "max" else avgpool2d
    got = fn(x, case["kernel"], case["stride"], case["padding"])
    assert got.dtype == np.int64
    assert got.tolist() == loop_pool(x, case["kernel"], case["stride"], case["padding"], kind)


def test_pool_stride_defaults_to_kernel():
    x = int8(np.random.default_rng(5), (1, 2, 6, 6))
    assert maxpool2d(x, 2).tolist() == loop_pool(x, (2, 2), (2, 2), (0, 0), "max")
    assert avgpool2d(x, 3).tolist() == loop_pool(x, (3, 3), (3, 3), (0, 0), "avg")


def test_avgpool_rounds_half_up():
    # Windows of two elements: sums -3, -1, 1, 3 are the ties -1.5, -0.5, 0.5, 1.5.
    x = np.array([[[[-3, 0, -1, 0, 1, 0, 3, 0]]]], dtype=np.int8)
    assert avgpool2d(x, (1, 2)).tolist() == [[[[-1, 0, 1, 2]]]]
    # Odd window: 4/3 -> 1, 5/3 -> 2, -4/3 -> -1, -5/3 -> -2.
    x = np.array([[[[4, 0, 0, 5, 0, 0, -4, 0, 0, -5, 0, 0]]]], dtype=np.int8)
    assert avgpool2d(x, (1, 3)).tolist() == [[[[1, 2, -1, -2]]]]


@pytest.mark.parametrize("n", [*range(1, 65), 147, 196, 3 * 3 * 49])
def test_default_average_equals_exact_division_except_documented_ties(n):
    # Every window sum of n int8 values: exact round-half-up division, except -- for even n
    # that is not a power of two -- at exact ties, which follow the sign of the dyadic error.
    m, s = avgpool_constants(n)
    total = np.arange(INT8_MIN * n, INT8_MAX * n + 1)
    got = requantize(total, m, s)
    exact = np.floor_divide(total + n // 2, n)
    ties = (2 * total) % (2 * n) == n
    if n % 2 or n & (n - 1) == 0:
        assert np.array_equal(got, exact)
    else:
        assert np.array_equal(got[~ties], exact[~ties])
        # A dyadic above 1/n pushes positive ties up (as exact) and negative ties down.
        above = Fraction(m, 2**s) > Fraction(1, n)
        as_exact = (total[ties] > 0) == above
        assert np.array_equal(got[ties], np.where(as_exact, exact[ties], exact[ties] - 1))


def test_avgpool_with_output_rescale():
    rng = np.random.default_rng(9)
    x = int8(rng, (1, 3, 6, 6))
    sx, sy = 0.05, 0.02  # finer output scale: the average of int8 values uses more of int8
    m, s = avgpool_constants(4, sx, sy)
    assert (m, s) == dyadic(Fraction(sx) / (4 * Fraction(sy)))
    got = avgpool2d(x, 2, mult=m, shift=s)
    want = [[[[requant_oracle(int(x[0, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2].astype(np.int64).sum()),
                              m, s) for j in range(3)] for i in range(3)] for c in range(3)]]
    assert got.tolist() == want
    gm, gs = avgpool_constants(36, sx, sy)
    g = global_avgpool2d(x, gm, gs)
    assert g.tolist() == [[requant_oracle(int(x[0, c].astype(np.int64).sum()), gm, gs)
                           for c in range(3)]]
    # The real average, quantized at S_y, is reproduced to half an LSB (no saturation here).
    real = x.astype(np.float64).reshape(3, 36).mean(axis=1) * sx / sy
    assert np.abs(g[0] - real).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("shape", [(1, 3, 7, 7), (2, 4, 1, 1), (1, 2, 3, 5)])
def test_global_avgpool_matches_oracle(shape):
    x = int8(np.random.default_rng(shape[2]), shape)
    h, w = shape[2:]
    want = [[avg_oracle(int(x[n, c].astype(np.int64).sum()), h * w) for c in range(shape[1])]
            for n in range(shape[0])]
    assert global_avgpool2d(x).tolist() == want


# ---- bad input -------------------------------------------------------------------------
def _x(shape=(1, 4, 5, 5), dtype=np.int8):
    return np.zeros(shape, dtype=dtype)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"x": _x(dtype=np.float32)}, TypeError, "x must hold integers, got dtype float32"),
        ({"w": _x((2, 4, 3, 3), np.float64)}, TypeError, "w must hold integers"),
        ({"x": _x((4, 5, 5))}, ValueError, r"x must be 4-D, got shape \(4, 5, 5\)"),
        ({"w": _x((2, 4, 3))}, ValueError, r"w must be 4-D"),
        ({"x": np.full((1, 4, 5, 5), 128)}, ValueError, r"x must lie in \[-128, 127\]"),
        ({"w": np.full((2, 4, 3, 3), -129)}, ValueError, r"w must lie in \[-128, 127\]"),
        ({"w": _x((2, 3, 3, 3))}, ValueError,
         r"shape mismatch: w has 3 input channels per group but x has C=4 with groups=1 "
         r"\(expected 4\)"),
        ({"groups": 3}, ValueError, "input channels C=4 are not divisible by groups=3"),
        ({"w": _x((3, 2, 3, 3)), "groups": 2}, ValueError,
         "output channels K=3 are not divisible by groups=2"),
        ({"groups": 0}, ValueError, "groups must be >= 1"),
        ({"groups": True}, TypeError, "groups must be an integer"),
        ({"stride": 0}, ValueError, "stride must be >= 1, got 0"),
        ({"stride": (1, 0)}, ValueError, r"stride must be >= 1, got \(1, 0\)"),
        ({"stride": 1.5}, TypeError, "stride must be an int or a pair of ints"),
        ({"stride": (1, 2, 3)}, TypeError, "stride must be an int or a pair of ints"),
        ({"padding": -1}, ValueError, "padding must be >= 0, got -1"),
        ({"padding": "1"}, TypeError, "padding must be an int or a pair of ints"),
        ({"padding": (1, 2, 3)}, TypeError, r"or four ints \(top, bottom, left, right\)"),
        ({"padding": (0, 1.0, 0, 0)}, TypeError, "padding must be an int or a pair of ints"),
        ({"padding": (0, -1, 0, 0)}, ValueError, r"padding must be >= 0, got \(0, -1, 0, 0\)"),
        ({"w": _x((2, 4, 9, 3)), "padding": (1, 2, 0, 0)}, ValueError,
         r"kernel height 9 exceeds the padded input height 8 \(5 \+ 1 \+ 2\)"),
        ({"w": _x((2, 4, 6, 3))}, ValueError,
         r"kernel height 6 exceeds the padded input height 5 \(5 \+ 2\*0\)"),
        ({"w": _x((2, 4, 3, 8)), "padding": 1}, ValueError,
         r"kernel width 8 exceeds the padded input width 7"),
        ({"w": _x((2, 4, 0, 3))}, ValueError, "kernel size must be at least 1x1"),
        ({"bias": [1, 2, 3]}, ValueError, r"bias must have shape \(2,\), got \(3,\)"),
        ({"bias": [0, -(2**31) - 1]}, ValueError, r"bias must lie in \[-2147483648"),
        ({"bias": [0.0, 1.0]}, TypeError, "bias must hold integers"),
        ({"x": _x((1, 8192, 4, 4)), "w": _x((1, 8192, 4, 4))}, ValueError,
         r"K=131072 .*int32 accumulator limit"),
        ({"x": _x((1, K_MAX, 1, 1)), "w": _x((1, K_MAX, 1, 1)), "bias": [2**14]}, ValueError,
         r"\|bias\| up to 16384 .*int32 accumulator limit"),
    ],
)
def test_conv2d_rejects_bad_input(kwargs, exc, match):
    args = {"x": _x(), "w": _x((2, 4, 3, 3)), "bias": None, "stride": 1, "padding": 0,
            "groups": 1}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        conv2d_int(**args)


def test_conv2d_depthwise_reduction_is_r_times_s():
    # Depthwise: only R*S products per output, so a huge C is fine ...
    x = np.full((1, 4096, 3, 3), INT8_MIN, dtype=np.int8)
    w = np.full((4096, 1, 3, 3), INT8_MIN, dtype=np.int8)
    assert (conv2d_int(x, w, groups=4096) == 9 * INT8_MIN * INT8_MIN).all()
    # ... but the window itself is still bounded.
    big = np.zeros((1, 1, 363, 363), dtype=np.int8)
    with pytest.raises(ValueError, match=r"K=131769 .*int32 accumulator limit"):
        conv2d_int(big, big)


@pytest.mark.parametrize(
    ("mult", "shift", "exc", "match"),
    [
        ([1, 2, 3], 8, ValueError, r"mult must be a scalar or have shape \(2,\), got \(3,\)"),
        (1, [8], ValueError, r"shift must be a scalar or have shape \(2,\), got \(1,\)"),
        (M_MAX + 1, 8, ValueError, r"mult must lie in \[0, 2147483647\]"),
        (1, 0, ValueError, r"shift must lie in \[1, 62\]"),
        (1, [8, 63], ValueError, r"shift must lie in \[1, 62\]"),
        (1.0, 8, TypeError, "mult must hold integers"),
    ],
)
def test_conv2d_requant_rejects_bad_constants(mult, shift, exc, match):
    with pytest.raises(exc, match=match):
        conv2d_requant(_x(), _x((2, 4, 3, 3)), None, mult, shift)


@pytest.mark.parametrize("fn", [maxpool2d, avgpool2d])
@pytest.mark.parametrize(
    ("x", "kernel", "stride", "padding", "exc", "match"),
    [
        (_x(dtype=np.float64), 2, None, 0, TypeError, "x must hold integers"),
        (_x((5, 5)), 2, None, 0, ValueError, "x must be 4-D"),
        (np.full((1, 1, 2, 2), 300), 2, None, 0, ValueError, r"x must lie in \[-128, 127\]"),
        (_x(), 0, None, 0, ValueError, "kernel must be >= 1"),
        (_x(), 2, 0, 0, ValueError, "stride must be >= 1"),
        (_x(), 2.0, None, 0, TypeError, "kernel must be an int or a pair of ints"),
        (_x(), 3, 1, -1, ValueError, "padding must be >= 0"),
        (_x(), 3, 1, 2, ValueError, r"padding \(2, 2\) must be at most half the kernel \(3, 3\)"),
        (_x(), 3, 1, (0, 2, 0, 0), ValueError,
         r"padding \(top, bottom, left, right\) = \(0, 2, 0, 0\) must be at most half the "
         r"kernel \(3, 3\) on each side"),
        (_x(), (3, 2), 1, (1, 1, 0, 2), ValueError, "must be at most half the kernel"),
        (_x(), 3, 1, (0, 1, 0), TypeError, "padding must be an int or a pair of ints"),
        (_x(), 3, 1, (0, 0, -1, 0), ValueError, "padding must be >= 0"),
        (_x(), (6, 2), None, 0, ValueError, "kernel height 6 exceeds the padded input height 5"),
    ],
)
def test_pool_rejects_bad_input(fn, x, kernel, stride, padding, exc, match):
    with pytest.raises(exc, match=match):
        fn(x, kernel, stride, padding)


def test_pool_rejects_windows_whose_sum_could_overflow_int32():
    # 128 * n must fit int32 (_average's bound): n = 2**24 elements cannot.
    x = np.zeros((1, 1, 1, 2**24), dtype=np.int8)
    with pytest.raises(ValueError, match=r"window of 16777216 elements .*int32 sum limit"):
        global_avgpool2d(x)
    avgpool2d(x[..., : 2**16], (1, 2**16))  # a large but legal window


def test_global_avgpool_rejects_bad_input():
    with pytest.raises(ValueError, match="empty spatial extent"):
        global_avgpool2d(np.zeros((1, 2, 0, 3), dtype=np.int8))
    with pytest.raises(TypeError, match="x must hold integers"):
        global_avgpool2d(np.zeros((1, 2, 3, 3)))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"mult": 5}, ValueError, "give both mult and shift, or neither"),
        ({"shift": 5}, ValueError, "give both mult and shift, or neither"),
        ({"mult": [1, 2], "shift": 3}, ValueError,
         r"mult and shift must be scalars \(one per-tensor scale\)"),
        ({"mult": M_MAX + 1, "shift": 3}, ValueError, r"mult must lie in \[0, 2147483647\]"),
        ({"mult": 1, "shift": 63}, ValueError, r"shift must lie in \[1, 62\]"),
        ({"mult": 1.5, "shift": 3}, TypeError, "mult must hold integers"),
    ],
)
def test_avgpool_rejects_bad_constants(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        avgpool2d(_x(), 2, **kwargs)
    with pytest.raises(exc, match=match):
        global_avgpool2d(_x(), **kwargs)


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        ((0,), ValueError, "n must be >= 1, got 0"),
        ((2.0,), TypeError, "n must be an integer"),
        ((4, 0.0, 1.0), ValueError, "in_scale must be positive"),
        ((4, 1.0, float("nan")), ValueError, "out_scale must be finite"),
        ((4, 2.0**40, 1.0), ValueError, "multiplier .* is too large"),
    ],
)
def test_avgpool_constants_reject_bad_input(args, exc, match):
    with pytest.raises(exc, match=match):
        avgpool_constants(*args)


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        ((5, 3, 0, 0), ValueError, r"stride \(height\) must be >= 1, got 0"),  # ZeroDivisionError
        ((5, 0, 1, 0), ValueError, r"kernel \(height\) must be >= 1, got 0"),
        ((-1, 1, 1, 0), ValueError, r"size \(height\) must be >= 0, got -1"),
        ((5, 3, 1.0, 0), TypeError, r"stride \(height\) must be an integer, got 1.0"),
        ((5, 3, 1, (0, 1.0)), TypeError, r"padding \(height\) must be an int or a pair"),
        ((5, 3, 1, (0, -1)), ValueError, r"padding height \(0, -1\) must lie in \[0, 2\]"),
        ((5, 3, 1, 3), ValueError, r"padding height \(3, 3\) must lie in \[0, 2\] on each side: "
                                   r"at most max\(kernel height 3, stride 1\) - 1"),
        ((5, 1, 1, 1), ValueError, r"padding height \(1, 1\) must lie in \[0, 0\]"),
        ((5, 1, 2, (0, 2)), ValueError, r"padding height \(0, 2\) must lie in \[0, 1\]"),
    ],
)
def test_conv2d_out_size_rejects_bad_arguments(args, exc, match):
    with pytest.raises(exc, match=match):
        conv2d_out_size(*args)


def test_conv2d_padding_bound_ends():
    # max(kernel, stride) - 1 per side: "full" padding for a kernel, and SCALE-Sim's partial
    # last window of a strided 1x1 convolution (stride 2 on an even size) ...
    assert conv2d_out_size(5, 3, 1, 2) == 7
    assert conv2d_out_size(4, 1, 2, (0, 1)) == 3
    rng = np.random.default_rng(4)
    x, w = int8(rng, (1, 2, 4, 4)), int8(rng, (3, 2, 1, 1))
    got = conv2d_int(x, w, None, 2, (0, 1, 0, 1))
    assert got.tolist() == loop_conv(x, w, None, (2, 2), (0, 1, 0, 1), 1)
    # ... but not more: huge padding is refused before any array is allocated (it used to
    # raise MemoryError from np.pad).
    with pytest.raises(ValueError, match=r"padding height \(1000000, 1000000\) must lie in "
                                         r"\[0, 2\]"):
        conv2d_int(_x(), _x((2, 4, 3, 3)), padding=10**6)
    with pytest.raises(ValueError, match=r"padding width \(0, 1\) must lie in \[0, 0\]"):
        conv2d_requant(_x(), _x((2, 4, 1, 1)), None, 1, 8, padding=(0, 0, 0, 1))


@pytest.mark.parametrize("fn", [maxpool2d, avgpool2d])
def test_pool_rejects_zero_stride_and_huge_padding(fn):
    with pytest.raises(ValueError, match=r"stride must be >= 1, got \(1, 0\)"):
        fn(_x(), 2, (1, 0))
    with pytest.raises(ValueError, match="must be at most half the kernel"):
        fn(_x(), 3, 1, 10**6)
