"""The concat op (sim/units/concat.py): closed-form cycles, and its kernel against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import AcceleratorConfig
from edgetron.golden.intops import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN
from edgetron.sim.units import concat


@pytest.mark.parametrize("elements, lanes", [(1, 1), (151296, 16), (1000, 7)])
def test_closed_form(elements, lanes):
    p = AcceleratorConfig(vector_lanes=lanes).sim_params()
    assert concat.concat_cycles(p, elements) == -(-elements // lanes) + 2


def test_copy_rows_places_each_part_after_the_previous():
    rng = np.random.default_rng(0)
    parts = [np.full((2, 1, 5), INT8_MIN), rng.integers(INT8_MIN, INT8_MAX + 1, size=(2, 3, 5)),
             np.array([[[INT32_MIN, INT32_MAX, 0, INT8_MAX, -1]]] * 2)]
    out = np.full((2, 5, 5), 7, dtype=np.int64)
    row0 = 0
    for part in parts:
        concat.copy_rows(np.ascontiguousarray(part, dtype=np.int64), out, row0)
        row0 += part.shape[1]
    np.testing.assert_array_equal(out, np.concatenate(parts, axis=1))
