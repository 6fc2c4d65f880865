"""golden/pool.py: the pool unit's NHWC specification against a loop oracle and golden's
NCHW pools (max: padding never wins; average: zeros for padding, divisor r*s, the dyadic
requantization; global average = the whole-map window)."""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.golden.conv import global_avgpool2d
from edgetron.golden.pool import PoolConstants, pool_constants, pool_nhwc


def _oracle(x: np.ndarray, k: PoolConstants) -> np.ndarray:
    """Window by window in exact integers: max of the positions inside the map; average
    ``floor(sum / n + 1/2)`` with padding as zeros (exact for odd n and powers of two)."""
    n, h, w, c = x.shape
    oh = (h + k.pt + k.pb - k.r) // k.sh + 1
    ow = (w + k.pl + k.pr - k.s) // k.sw + 1
    out = np.zeros((n, oh, ow, c), np.int64)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                ys = [y for y in range(oy * k.sh - k.pt, oy * k.sh - k.pt + k.r) if 0 <= y < h]
                xs = [v for v in range(ox * k.sw - k.pl, ox * k.sw - k.pl + k.s) if 0 <= v < w]
                win = x[b][np.ix_(ys, xs)].reshape(-1, c)
                if k.kind == "max":
                    out[b, oy, ox] = win.max(axis=0)
                else:
                    total = win.sum(axis=0)
                    out[b, oy, ox] = (2 * total + k.r * k.s) // (2 * k.r * k.s)
    return out


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("win", "stride", "pads"), [
    ((3, 3), (2, 2), (1, 1, 1, 1)), ((2, 2), (2, 2), (0, 0, 0, 0)),
    ((3, 3), (1, 1), (1, 1, 1, 1)), ((1, 1), (3, 3), (0, 0, 0, 0)),
    ((2, 2), (1, 1), (1, 0, 0, 1)), ((3, 1), (1, 2), (0, 1, 0, 0))])
def test_against_the_oracle(kind, win, stride, pads):
    rng = np.random.default_rng(5)
    k = pool_constants(kind, win, stride, pads)
    for x in (rng.integers(-128, 127, (2, 7, 6, 5), endpoint=True),
              np.full((1, 5, 5, 3), -128), np.full((1, 5, 5, 3), 127)):
        np.testing.assert_array_equal(pool_nhwc(x, k), _oracle(x, k))


def test_global_average_is_the_whole_map_window():
    rng = np.random.default_rng(6)
    x = rng.integers(-128, 127, (2, 7, 7, 9), endpoint=True)
    k = pool_constants("avg", (7, 7), (1, 1), in_scale=0.5, out_scale=0.25)
    want = global_avgpool2d(x.transpose(0, 3, 1, 2), k.mult, k.shift)
    np.testing.assert_array_equal(pool_nhwc(x, k)[:, 0, 0, :], want)


def test_constants_and_bad_input():
    assert pool_constants("max", (3, 3), (2, 2)).mult == 0
    k = pool_constants("avg", (3, 3), (1, 1))
    assert (k.mult, k.shift) != (0, 1)
    with pytest.raises(ValueError, match="pool kind must be one of"):
        pool_constants("min", (2, 2), (2, 2))
    with pytest.raises(ValueError, match="4-D"):
        pool_nhwc(np.zeros((3, 3), np.int64), k)
    with pytest.raises(ValueError, match="at most half the kernel"):
        pool_nhwc(np.zeros((1, 4, 4, 1), np.int64),
                  pool_constants("max", (2, 2), (1, 1), (2, 0, 0, 0)))
