"""Where an ONNX tensor's elements lie in a trace op's stored output: strided views.

The trace stores every op output as one row-major tensor (``out_shape``, NHWC for feature
maps) and an op reads each operand as the row-major reshape of its producer's (sliced)
output. ONNX tensors are NCHW, and exporters reshape, transpose, slice and split them
freely. The importer tracks each ONNX activation as a :class:`View` of the flat stored
output it comes from: per logical axis a list of sub-axes ``(size, stride)`` (outer
first) and an element offset. Transposes, reshapes and slices are exact operations on
views; a reshape that would need data movement (a copy) is refused (:class:`ViewError`).

Two views address the same elements in the same order exactly when their
:meth:`View.canonical` forms are equal, so "this trace operand is that ONNX tensor" is a
comparison of canonical forms, whatever chain of reshapes produced either.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

__all__ = ["View", "ViewError"]

SubAxis = tuple[int, int]


class ViewError(Exception):
    """A view operation that is not a pure re-indexing of the stored elements."""


def _merge(subs: Sequence[SubAxis]) -> tuple[SubAxis, ...]:
    """Drop size-1 sub-axes and merge neighbours that are contiguous (outer = inner * size)."""
    out: list[SubAxis] = []
    for size, stride in subs:
        if size == 1:
            continue
        if out and out[-1][1] == size * stride:
            outer = out.pop()
            out.append((outer[0] * size, stride))
        else:
            out.append((size, stride))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class View:
    """A tensor of logical ``shape`` whose element ``i`` lies at a position of a flat buffer.

    Attributes
    ----------
    shape : tuple of int
        Logical (ONNX) shape.
    axes : tuple of tuple of (size, stride)
        Per logical axis, its sub-axes outer first; their sizes multiply to the axis size
        (an empty tuple is an axis of size 1).
    offset : int
        Position of element 0.
    """

    shape: tuple[int, ...]
    axes: tuple[tuple[SubAxis, ...], ...]
    offset: int = 0

    @classmethod
    def row_major(cls, shape: Sequence[int], offset: int = 0,
                  strides: Sequence[int] | None = None) -> View:
        """The row-major view of ``shape`` (or the given element ``strides``)."""
        shape = tuple(int(d) for d in shape)
        if strides is None:
            strides, step = [], 1
            for d in reversed(shape):
                strides.append(step)
                step *= d
            strides = strides[::-1]
        axes = tuple(((d, int(t)),) if d != 1 else () for d, t in zip(shape, strides,
                                                                       strict=True))
        return cls(shape, axes, offset)

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    def canonical(self) -> tuple[int, tuple[SubAxis, ...]]:
        """``(offset, sub-axes)`` with every sub-axis in logical order, merged where contiguous.

        Equal canonical forms (and equal sizes) mean the same elements in the same order.
        """
        return self.offset, _merge([s for axis in self.axes for s in axis])

    def same_elements(self, other: View) -> bool:
        """Whether both views enumerate the same positions in the same (row-major) order."""
        return self.size == other.size and self.canonical() == other.canonical()

    def transpose(self, perm: Sequence[int]) -> View:
        """The view with axes permuted as numpy's ``transpose(perm)``."""
        perm = tuple(int(p) for p in perm)
        if sorted(perm) != list(range(len(self.shape))):
            raise ViewError(f"perm {list(perm)} is not a permutation of {len(self.shape)} axes")
        return View(tuple(self.shape[p] for p in perm), tuple(self.axes[p] for p in perm),
                    self.offset)

    def reshape(self, shape: Sequence[int]) -> View:
        """The view of the same elements in row-major order with a new logical ``shape``.

        Raises ViewError when the new axes cannot be expressed as strided sub-axes of the
        old ones (the reshape would need a copy: e.g. merging two axes that a transpose
        has made non-adjacent in memory while splitting them differently).
        """
        shape = tuple(int(d) for d in shape)
        if math.prod(shape) != self.size:
            raise ViewError(f"cannot reshape {list(self.shape)} to {list(shape)}")
        subs = list(_merge([s for axis in self.axes for s in axis]))
        out: list[tuple[SubAxis, ...]] = []
        for d in shape:
            group: list[SubAxis] = []
            need = d
            while need > 1:
                size, stride = subs[0]
                if size <= need and need % size == 0:
                    group.append((size, stride))
                    need //= size
                    subs.pop(0)
                elif size > need and size % need == 0:
                    group.append((need, stride * (size // need)))
                    subs[0] = (size // need, stride)
                    need = 1
                else:
                    raise ViewError(
                        f"cannot reshape {list(self.shape)} to {list(shape)} without moving "
                        "data (the axes are not contiguous in memory)"
                    )
            out.append(tuple(group))
        return View(shape, tuple(out), self.offset)

    def slice(self, axis: int, start: int, stop: int) -> View:
        """Elements ``start:stop`` (step 1) along ``axis``."""
        size = self.shape[axis]
        if not 0 <= start < stop <= size:
            raise ViewError(f"slice {start}:{stop} of an axis of {size}")
        if start == 0 and stop == size:
            return self
        group = self.axes[axis]
        inner = math.prod(s for s, _ in group[1:])
        if start % inner or stop % inner:
            raise ViewError(f"slice {start}:{stop} cuts across a merged axis of {size}")
        stride = group[0][1]
        new_group = (((stop - start) // inner, stride), *group[1:])
        shape = (*self.shape[:axis], stop - start, *self.shape[axis + 1:])
        axes = (*self.axes[:axis], new_group, *self.axes[axis + 1:])
        return View(shape, axes, self.offset + (start // inner) * stride)

    def select(self, axis: int, index: int) -> View:
        """Element ``index`` along ``axis``, the axis removed (numpy's ``take`` of a scalar)."""
        v = self.slice(axis, index, index + 1)
        return View(v.shape[:axis] + v.shape[axis + 1:], v.axes[:axis] + v.axes[axis + 1:],
                    v.offset)

    def strides(self) -> tuple[int, ...] | None:
        """Element strides per logical axis, or None if an axis has several sub-axes."""
        out = []
        for d, axis in zip(self.shape, self.axes, strict=True):
            merged = _merge(axis)
            if len(merged) > 1:
                return None
            out.append(merged[0][1] if merged else (0 if d == 1 else 1))
        return tuple(out)

    def positions(self) -> np.ndarray:
        """The flat position of every element, an int64 array of ``shape``."""
        pos = np.full((1,), self.offset, dtype=np.int64)
        for size, stride in (s for axis in self.axes for s in axis):
            pos = (pos[:, None] + stride * np.arange(size, dtype=np.int64)[None, :]).ravel()
        return pos.reshape(self.shape)

    def is_permutation_of(self, total: int) -> bool:
        """Whether the view visits each position ``0 .. total - 1`` exactly once."""
        if self.size != total or self.offset != 0:
            return False
        subs = sorted(self.canonical()[1], key=lambda s: s[1])
        step = 1
        for size, stride in subs:
            if stride != step:
                return False
            step *= size
        return step == total
