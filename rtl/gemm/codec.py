"""The GEMM unit's stream protocol: matrices to beat payloads and back.

:func:`encode_gemm` turns one invocation's operands into the payload word of every input
beat, :func:`decode_gemm` the output beats back into the result matrix. For monitors,
:func:`decode_gemm_command` and :func:`decode_gemm_operands` invert the encoding (they
rebuild an invocation from the beats a unit accepted). These are the only definition of
the protocol; the Amaranth tests and the cocotb testbenches both use them. Payload
layouts come from :func:`edgetron.rtl.layouts.gemm_layouts`.

Beat order
----------
``R = rows``, ``C = cols``, ``x//^y = ceil(x / y)``; the number of beats on each stream is
:func:`edgetron.hw.gemm.gemm_stream_beats`. Lanes beyond the matrix are padding:
:func:`encode_gemm` sends 0 and the hardware ignores them.

* ``cmd``: one beat ``{m, k, n, out32}``.
* ``a`` (``R`` lanes), ``ws``: for each fold ``kf < K//^R``, for each row ``m < M``:
  lane ``r`` is ``A[m, kf*R + r]``. ``os``: for each row tile ``mt < M//^R``, for each
  ``k < K``: lane ``r`` is ``A[mt*R + r, k]``.
* ``w`` (``C`` lanes), both: for each column tile ``nt < N//^C``, for each ``k < K``:
  lane ``c`` is ``W[k, nt*C + c]``.
* ``ch``: channel ``n = 0 .. N-1``: ``{bias[n], mult[n], shift[n]}``.
* ``o`` (``C`` lanes of ``signed(acc_bits)``), both: for each column tile ``nt``, for each
  row ``m < M``: lane ``c`` is ``out[m, nt*C + c]`` (int8 results sign-extended); lanes
  with ``nt*C + c >= N`` carry unspecified values.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from edgetron.config import AcceleratorConfig
from edgetron.golden.gemm import accumulator_k_limit
from edgetron.golden.intops import (
    M_MAX,
    S_MAX,
    S_MIN,
    as_int64,
    check_range,
    check_signed,
    int_range,
)
from edgetron.hw import gemm as hw

from ..layouts import GemmLayouts, gemm_layouts
from .model import OUT_BITS, check_config, check_dims, check_shape

__all__ = [
    "GemmCall",
    "GemmCommand",
    "decode_gemm",
    "decode_gemm_command",
    "decode_gemm_operands",
    "encode_gemm",
]

_cdiv = hw.cdiv.py_func


class GemmCommand(NamedTuple):
    """The fields of one ``cmd`` beat."""

    m: int
    k: int
    n: int
    out32: bool


class GemmCall(NamedTuple):
    """The operands of one invocation: ``a`` (M, K), ``w`` (K, N), per-channel ``bias``,
    ``mult``, ``shift`` (N,), all int64, and the output mode."""

    a: np.ndarray
    w: np.ndarray
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    out32: bool

    @property
    def m(self) -> int:
        return self.a.shape[0]

    @property
    def k(self) -> int:
        return self.a.shape[1]

    @property
    def n(self) -> int:
        return self.w.shape[1]

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the call, ``M * K * N``."""
        return self.m * self.k * self.n


def _layouts(config: AcceleratorConfig) -> GemmLayouts:
    return gemm_layouts(config, check_config(config))


def _operand(x, name: str, shape, bits: int) -> np.ndarray:
    v = as_int64(x, name)
    if v.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {v.shape}")
    check_signed(v, bits, name)
    return v


def _per_channel(x, name: str, n: int, lo: int, hi: int) -> np.ndarray:
    v = as_int64(x, name)
    if v.ndim == 0:
        v = np.full(n, int(v), dtype=np.int64)
    if v.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {v.shape}")
    check_range(v, lo, hi, name)
    return v


def _a_vectors(config: AcceleratorConfig, a: np.ndarray) -> np.ndarray:
    """The ``a`` beats of ``a`` (M, K) as rows of ``R`` lanes, in beat order."""
    r = config.rows
    mm, kk = a.shape
    if config.dataflow == "ws":
        kf = _cdiv(kk, r)
        ap = np.zeros((mm, kf * r), np.int64)
        ap[:, :kk] = a
        return ap.reshape(mm, kf, r).transpose(1, 0, 2).reshape(-1, r)
    mt = _cdiv(mm, r)
    ap = np.zeros((mt * r, kk), np.int64)
    ap[:mm] = a
    return ap.reshape(mt, r, kk).transpose(0, 2, 1).reshape(-1, r)


def _w_vectors(config: AcceleratorConfig, w: np.ndarray) -> np.ndarray:
    """The ``w`` beats of ``w`` (K, N) as rows of ``C`` lanes, in beat order."""
    c = config.cols
    kk, nn = w.shape
    nt = _cdiv(nn, c)
    wp = np.zeros((kk, nt * c), np.int64)
    wp[:, :nn] = w
    return wp.reshape(kk, nt, c).transpose(1, 0, 2).reshape(-1, c)


def encode_gemm(config: AcceleratorConfig, a, w, bias, mult, shift,
                out32: bool) -> dict[str, list[int]]:
    """Payload words of every input beat of one :class:`~edgetron.rtl.gemm.GemmUnit`
    invocation.

    Parameters
    ----------
    config : AcceleratorConfig
        The unit's configuration (``ws`` or ``os``).
    a : array of int, shape (M, K)
        Activations in the signed ``input_bits`` range.
    w : array of int, shape (K, N)
        Weights in the signed ``weight_bits`` range.
    bias : array of int, shape (N,), or None
        Per-channel bias in the signed ``acc_bits`` range (None: zeros).
    mult, shift : int or array of int, shape (N,), or None
        Requantization multipliers (``0 .. 2**31-1``) and shifts (``1 .. 62``); may be
        None when ``out32`` (sent as 0).
    out32 : bool
        True: the unit returns the int32 accumulators; False: requantized int8.

    Returns
    -------
    dict
        ``{"cmd": [1 word], "a": [...], "w": [...], "ch": [...]}``: unsigned integers, each
        the payload bit vector of one beat (LSB first, Amaranth layout order), in the beat
        order of the module docstring.

    Raises
    ------
    TypeError
        Non-integer data.
    ValueError
        Wrong shapes, values out of range, a shape the buffers cannot hold
        (:func:`~edgetron.rtl.gemm.check_shape`), or a K and bias that could overflow the
        accumulator.
    """
    lay = _layouts(config)
    va = as_int64(a, "a")
    vw = as_int64(w, "w")
    if va.ndim != 2 or vw.ndim != 2 or va.shape[1] != vw.shape[0]:
        raise ValueError(f"a must be (M, K) and w (K, N), got shapes {va.shape} and {vw.shape}")
    mm, kk = va.shape
    nn = vw.shape[1]
    check_shape(config, mm, kk, nn)
    va = _operand(va, "a", (mm, kk), config.input_bits)
    vw = _operand(vw, "w", (kk, nn), config.weight_bits)
    acc_lo, acc_hi = int_range(config.acc_bits)
    vb = np.zeros(nn, np.int64) if bias is None else _per_channel(bias, "bias", nn, acc_lo, acc_hi)
    if out32 and mult is None and shift is None:
        vm = np.zeros(nn, np.int64)
        vs = np.zeros(nn, np.int64)
    else:
        vm = _per_channel(mult, "mult", nn, 0, M_MAX)
        vs = _per_channel(shift, "shift", nn, S_MIN, S_MAX)
    max_bias = int(np.abs(vb).max())
    k_acc = accumulator_k_limit(config.acc_bits, max_bias, config.input_bits, config.weight_bits)
    if kk > k_acc:
        raise ValueError(
            f"K={kk} with |bias| up to {max_bias} could overflow the {config.acc_bits}-bit "
            f"accumulator (K <= {k_acc} is safe); split K or narrow the bias"
        )

    def words(layout, rows):
        return [layout.const(row.tolist()).as_value().value for row in rows]

    return {
        "cmd": [lay.cmd.const({"m": mm, "k": kk, "n": nn, "out32": int(bool(out32))})
                .as_value().value],
        "a": words(lay.a, _a_vectors(config, va)),
        "w": words(lay.w, _w_vectors(config, vw)),
        "ch": [lay.ch.const({"bias": int(vb[i]), "mult": int(vm[i]), "shift": int(vs[i])})
               .as_value().value for i in range(nn)],
    }


def decode_gemm(config: AcceleratorConfig, words, m: int, n: int, out32: bool) -> np.ndarray:
    """The (M, N) int64 result matrix from the ``o`` payload words of one invocation.

    Raises ValueError when the number of words is not ``ceil(N/C) * M``, or when an int8
    result (``out32`` false) lies outside the int8 range.
    """
    lay = _layouts(config)
    check_dims(M=m, N=n)
    c = config.cols
    nt = _cdiv(n, c)
    words = list(words)
    if len(words) != nt * m:
        raise ValueError(f"expected ceil({n}/{c}) * {m} = {nt * m} output beats, got {len(words)}")
    vecs = np.array([list(lay.o.from_bits(int(x))) for x in words], np.int64).reshape(nt, m, c)
    out = vecs.transpose(1, 0, 2).reshape(m, nt * c)[:, :n]
    if not out32:
        check_signed(out, OUT_BITS, "int8 result")
    return np.ascontiguousarray(out)


def decode_gemm_command(config: AcceleratorConfig, word: int) -> GemmCommand:
    """The fields of a ``cmd`` payload word (any word: a shape the unit rejects too)."""
    cmd = _layouts(config).cmd.from_bits(int(word))
    return GemmCommand(int(cmd["m"]), int(cmd["k"]), int(cmd["n"]), bool(cmd["out32"]))


def decode_gemm_operands(config: AcceleratorConfig, command: GemmCommand,
                         beats: dict[str, list[int]]) -> GemmCall:
    """Rebuild an invocation from the payload words of its ``a``, ``w`` and ``ch`` beats.

    The inverse of :func:`encode_gemm` for a ``command`` that fits: ``beats[name]`` holds
    exactly :func:`edgetron.hw.gemm.gemm_stream_beats` words per stream (padding lanes
    are dropped). Raises ValueError for another number of words or a command that does
    not fit.
    """
    lay = _layouts(config)
    mm, kk, nn = command.m, command.k, command.n
    check_shape(config, mm, kk, nn)
    a_beats, w_beats, ch_beats, _ = hw.gemm_stream_beats(config.sim_params(), mm, kk, nn)
    for name, want in (("a", a_beats), ("w", w_beats), ("ch", ch_beats)):
        if len(beats[name]) != want:
            raise ValueError(f"{name}: expected {want} beats for M={mm}, K={kk}, N={nn}, "
                             f"got {len(beats[name])}")
    r, c = config.rows, config.cols

    def vectors(layout, words):
        return np.array([list(layout.from_bits(int(x))) for x in words], np.int64)

    a_vecs = vectors(lay.a, beats["a"])
    if config.dataflow == "ws":
        kf = _cdiv(kk, r)
        a = a_vecs.reshape(kf, mm, r).transpose(1, 0, 2).reshape(mm, kf * r)[:, :kk]
    else:
        mt = _cdiv(mm, r)
        a = a_vecs.reshape(mt, kk, r).transpose(0, 2, 1).reshape(mt * r, kk)[:mm]
    nt = _cdiv(nn, c)
    w = vectors(lay.w, beats["w"]).reshape(nt, kk, c).transpose(1, 0, 2).reshape(kk, nt * c)
    ch = [lay.ch.from_bits(int(x)) for x in beats["ch"]]
    field = {name: np.array([int(x[name]) for x in ch], np.int64)
             for name in ("bias", "mult", "shift")}
    return GemmCall(np.ascontiguousarray(a), np.ascontiguousarray(w[:, :nn]), field["bias"],
                    field["mult"], field["shift"], command.out32)
