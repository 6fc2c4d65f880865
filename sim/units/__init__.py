"""The simulator's hardware units, and the one registry from the trace's op kinds to them.

One module per hardware unit holds everything the simulator knows about it: its cycle
function (the timing contract of the RTL unit of the same name), its event counts, its
buffer needs and its functional Numba kernel.

* ``gemm``: the systolic array and its requantizer (kind ``gemm``, and the calls of every
  matrix op);
* ``conv``: the GEMM unit's im2col front end (``conv2d``, ``dwconv2d``);
* ``pool``: pooling on the vector lanes (``maxpool``, ``avgpool``);
* ``softmax``, ``layernorm``, ``gelu``: the non-linear units (their kinds);
* ``add``: the add unit, residual adds (``add``) and K-split partial sums;
* ``concat``: a copy through the vector unit (``concat``);
* ``pipeline``: what the vector pipelines share (no kind of its own).

:data:`REGISTRY` maps every kind of :data:`edgetron.workload.KINDS` (that dict is the one
list of op kinds), in its order, to a :class:`KindModel`: the functions of the kind's
unit module that the engine and functional mode call. Neither of them looks at op
classes; adding a kind means a unit module and one entry here. The engine's kind codes
are the positions in :data:`REGISTRY` (:data:`KIND_CODES`); a matrix kind is costed by
:func:`edgetron.sim.tiling.matrix_costs` (:data:`ON_ARRAY`), a vector kind by its unit's
``work`` through :func:`vector_work`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from edgetron.workload import KINDS

from ..memory import VectorWork
from ..records import F_KIND
from . import add, concat, conv, gelu, gemm, layernorm, pool, softmax

__all__ = ["KIND_CODES", "ON_ARRAY", "REGISTRY", "KindModel", "vector_work"]


class KindModel(NamedTuple):
    """What the simulator calls for one op kind (all of it in the kind's unit module).

    Attributes
    ----------
    unit : str
        The unit module (``edgetron.sim.units.<unit>``).
    on_array : bool
        The op runs on the GEMM unit (planned into calls by :mod:`edgetron.sim.tiling`);
        otherwise on a vector unit, costed by the unit's ``work``.
    record : callable
        ``record(op, rec)``: the kind's own fields of the flat record
        (:data:`edgetron.sim.records.FIELDS`).
    int64_bounds : callable
        ``int64_bounds(op, edge) -> ((quantity, formula, value), ...)``: exact upper bounds
        of the integers the kernels form for the op, ``edge`` the larger array edge.
    check_config : callable or None
        ``check_config(op, cfg) -> str | None``: why the config cannot run the op.
    buffer_text : callable or None
        ``buffer_text(op) -> str``: what the op keeps in the ofmap buffer (for the error
        of a row or line buffer that cannot fit).
    prepare : callable
        ``prepare(op, operands, scales, rng, q=None) -> OpData``: functional data and
        golden output; ``q`` (an :class:`~edgetron.sim.opdata.OpQuant`) gives a deployed
        model's real parameters and calibrated scales instead of seeded ones.
    run : callable
        ``run(op, data, params, tile) -> (output, calls, ok)``: the functional kernel.
    scratch_bytes : callable
        ``scratch_bytes(op) -> int``: peak bytes ``prepare`` and ``run`` allocate beyond
        the op's kept operands, weights and output (the functional-mode estimate).
    """

    unit: str
    on_array: bool
    record: Callable[..., None]
    int64_bounds: Callable[..., tuple[tuple[str, str, int], ...]]
    check_config: Callable[..., str | None] | None
    buffer_text: Callable[..., str] | None
    prepare: Callable[..., Any]
    run: Callable[..., tuple[np.ndarray, int, bool]]
    scratch_bytes: Callable[..., int]


def _array(module, record) -> KindModel:
    return KindModel(module.__name__.rsplit(".", 1)[-1], True, record, module.int64_bounds,
                     gemm.check_config, None, module.prepare, module.run,
                     module.scratch_bytes)


def _vector(module, buffer_text=None) -> KindModel:
    return KindModel(module.__name__.rsplit(".", 1)[-1], False, module.record,
                     module.int64_bounds, None, buffer_text, module.prepare, module.run,
                     module.scratch_bytes)


_MODELS = {
    "gemm": _array(gemm, gemm.matrix_record),
    "conv2d": _array(conv, conv.record),
    "dwconv2d": _array(conv, conv.record),
    "maxpool": _vector(pool, pool.buffer_text),
    "avgpool": _vector(pool, pool.buffer_text),
    "softmax": _vector(softmax, softmax.buffer_text),
    "layernorm": _vector(layernorm, layernorm.buffer_text),
    "gelu": _vector(gelu),
    "add": _vector(add),
    "concat": _vector(concat),
}
# The kind codes are compiled into the cached kernels (vector_work), whose freshness
# covers this file and not the workload package: they come from the order written here,
# which must be that of KINDS.
if list(_MODELS) != list(KINDS):
    raise ImportError(
        "edgetron.sim.units: the registry must list exactly the op kinds of "
        f"edgetron.workload.KINDS, in its order {list(KINDS)}; it lists {list(_MODELS)}")

#: Op kind -> its :class:`KindModel`, in the order of :data:`edgetron.workload.KINDS`.
REGISTRY: dict[str, KindModel] = _MODELS
#: Op kind -> its code in the flat records (its position in :data:`REGISTRY`).
KIND_CODES: dict[str, int] = {kind: i for i, kind in enumerate(REGISTRY)}
#: 1 for the codes of kinds that run on the GEMM unit, by code (a Numba constant).
ON_ARRAY = np.array([int(m.on_array) for m in REGISTRY.values()], dtype=np.int64)

_MAXPOOL = KIND_CODES["maxpool"]
_AVGPOOL = KIND_CODES["avgpool"]
_SOFTMAX = KIND_CODES["softmax"]
_LAYERNORM = KIND_CODES["layernorm"]
_GELU = KIND_CODES["gelu"]
_ADD = KIND_CODES["add"]
_CONCAT = KIND_CODES["concat"]


@njit(cache=True)
def vector_work(p, rec):
    """The :class:`~edgetron.sim.memory.VectorWork` of the vector op of flat record ``rec``.

    Calls the ``work`` of the op's unit module, by kind code. A code without a branch
    here gets ``cycles = -1``, which :func:`edgetron.sim.memory.vector_costs` turns into
    :data:`~edgetron.sim.records.ERR_NO_MODEL`.
    """
    code = rec[F_KIND]
    if code == _SOFTMAX:
        return softmax.work(p, rec)
    if code == _LAYERNORM:
        return layernorm.work(p, rec)
    if code == _GELU:
        return gelu.work(p, rec)
    if code == _ADD:
        return add.work(p, rec)
    if code == _CONCAT:
        return concat.work(p, rec)
    if code == _MAXPOOL:
        return pool.maxpool_work(p, rec)
    if code == _AVGPOOL:
        return pool.avgpool_work(p, rec)
    return VectorWork(-1, 0, 0.0, 0.0, 0.0, 0.0)
