"""Integer primitives every golden kernel is built from.

All arithmetic is done in ``int64`` with explicit range checks, so that nothing
depends on NumPy's silent wrap-around (contract 4). The hardware widths are
parameters: ``bits`` is the two's-complement width of the destination.

Conventions
-----------
* ``round_shift(x, s)`` is an arithmetic right shift by ``s`` with rounding half
  up (towards +inf): ``(x + 2**(s-1)) >> s``. For ``s = 0`` it is the identity.
* ``saturate(x, bits)`` clamps to ``[-2**(bits-1), 2**(bits-1) - 1]``.
* ``wrap(x, bits)`` reduces modulo ``2**bits`` into the same signed range; it is
  what a register of that width does, and exists so tests can show that we do
  *not* do it where we saturate.
* ``requantize(acc, m, s)`` is the dyadic requantizer of INTEGER_KERNELS.md:
  ``saturate_int8(round_shift(acc * m, s))`` with ``0 <= m < 2**31``,
  ``1 <= s <= 62`` and ``acc`` in int32, so ``acc * m`` always fits in int64.
* ``pow2_rescale(x, f)`` moves a magnitude from scale ``S`` to ``S / 2**f``:
  an exact left shift for ``f >= 0``, ``round_shift(x, -f)`` otherwise (the
  "internal scale" step of the polynomial kernels).
* ``check_signed`` / ``check_unsigned`` are golden's width assertions: a value
  that does not fit the width the hardware declares raises ValueError naming it.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "INT8_MAX",
    "INT8_MIN",
    "INT32_MAX",
    "INT32_MIN",
    "M_MAX",
    "S_MAX",
    "S_MIN",
    "as_int64",
    "check_range",
    "check_signed",
    "check_unsigned",
    "int_param",
    "int_range",
    "pow2_rescale",
    "pow2_rescale_limit",
    "requantize",
    "round_shift",
    "saturate",
    "signed_bits",
    "wrap",
]

INT8_MIN, INT8_MAX = -(1 << 7), (1 << 7) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
#: Dyadic multiplier limits (INTEGER_KERNELS.md): m is an unsigned 31-bit integer, s a right
#: shift of at most 62, so that ``|acc * m| < 2**62`` plus the rounding constant
#: ``2**(s-1) <= 2**61`` stays inside int64 (``round_shift`` uses the same bound).
M_MAX = (1 << 31) - 1
S_MIN, S_MAX = 1, 62


def int_range(bits: int) -> tuple[int, int]:
    """Inclusive range ``(lo, hi)`` of a signed two's-complement integer of ``bits`` bits."""
    if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or not 1 <= bits <= 63:
        raise ValueError(f"bits must be an integer in [1, 63], got {bits!r}")
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def int_param(value, name: str, lo: int, hi: int) -> int:
    """A Python int parameter (a width, a count) in ``[lo, hi]``.

    Raises
    ------
    TypeError
        ``value`` is not an integer (bools included).
    ValueError
        ``value`` is outside ``[lo, hi]``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got {value}")
    return int(value)


def as_int64(x, name: str = "x") -> np.ndarray:
    """Return ``x`` as an int64 array; reject non-integer data with TypeError.

    Python ints and integer NumPy arrays are accepted; floats, bools and objects
    are not, because silently truncating a float is a wrong answer.
    """
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{name} has values above the int64 range")
    return arr.astype(np.int64, copy=False)


def check_range(x: np.ndarray, lo: int, hi: int, name: str) -> None:
    """Raise ValueError naming ``name`` if any element of ``x`` lies outside ``[lo, hi]``."""
    if x.size == 0:
        return
    xmin, xmax = int(x.min()), int(x.max())
    if xmin < lo or xmax > hi:
        raise ValueError(
            f"{name} must lie in [{lo}, {hi}], got values in [{xmin}, {xmax}]"
        )


def check_signed(x: np.ndarray, bits: int, name: str) -> None:
    """Raise ValueError naming ``name`` unless every element fits ``bits`` signed bits."""
    lo, hi = int_range(bits)
    check_range(x, lo, hi, name)


def check_unsigned(x: np.ndarray, bits: int, name: str) -> None:
    """Raise ValueError naming ``name`` unless every element fits ``bits`` unsigned bits."""
    check_range(x, 0, (1 << bits) - 1, name)


def signed_bits(lo: int, hi: int) -> int:
    """Smallest two's-complement width holding every integer in ``[lo, hi]`` (``lo < 0 < hi``)."""
    return max((-lo - 1).bit_length(), hi.bit_length()) + 1


def wrap(x, bits: int) -> np.ndarray:
    """Two's-complement wrap of ``x`` into a signed ``bits``-bit register.

    ``x & (2**bits - 1)`` is the residue in ``[0, 2**bits)``; residues above the
    signed maximum move down by ``2**bits = -2 * lo``. No intermediate leaves
    int64, even for ``bits = 63`` (no reliance on NumPy's own wrap-around).
    """
    lo, hi = int_range(bits)
    r = as_int64(x) & ((1 << bits) - 1)
    return r + (r > hi) * (2 * lo)


def saturate(x, bits: int) -> np.ndarray:
    """Clamp ``x`` to the signed ``bits``-bit range."""
    lo, hi = int_range(bits)
    return np.clip(as_int64(x), lo, hi)


def round_shift(x, s) -> np.ndarray:
    """Arithmetic right shift by ``s`` with round-half-up: ``(x + 2**(s-1)) >> s``.

    ``s`` may be a scalar or broadcast against ``x``; it must lie in
    ``[0, S_MAX]`` (``S_MAX = 62``). ``x`` must satisfy ``-2**62 <= x < 2**62``
    so that adding the rounding constant (at most ``2**61``) cannot overflow int64.
    """
    v = as_int64(x)
    sh = as_int64(s, "s")
    check_range(sh, 0, S_MAX, "s")
    check_range(v, -(1 << S_MAX), (1 << S_MAX) - 1, "x")
    half = np.where(sh > 0, np.left_shift(np.int64(1), np.maximum(sh - 1, 0)), 0)
    return np.right_shift(v + half, sh)


def pow2_rescale(x, f: int) -> np.ndarray:
    """Move non-negative magnitudes ``x`` from scale ``S`` to the scale ``S / 2**f``.

    ``x << f`` (exact) for ``f >= 0``; ``round_shift(x, -f)`` (round half up)
    for ``f < 0``. Monotone in ``x``.
    """
    v = as_int64(x)
    return np.left_shift(v, f) if f >= 0 else round_shift(v, -f)


def pow2_rescale_limit(limit: int, f: int) -> int:
    """A magnitude that :func:`pow2_rescale` by ``f`` maps to ``>= limit``.

    ``ceil(limit / 2**f)`` for ``f >= 0`` and ``limit << -f`` (which maps to
    ``limit`` exactly) otherwise. Because the rescaling is monotone, clamping
    the input at this value first changes nothing once the rescaled value is
    clamped at ``limit``, and it bounds the width of the shifter.
    """
    return -((-limit) >> f) if f >= 0 else limit << (-f)


def requantize(acc, m, s, bits: int = 8) -> np.ndarray:
    """Dyadic requantization ``saturate(round_shift(acc * m, s), bits)``.

    Parameters
    ----------
    acc : array of int
        Accumulator values; must fit int32.
    m : int or array of int
        Multiplier, ``0 <= m <= 2**31 - 1``; broadcast against ``acc`` (per
        channel along the last axis when given as a vector).
    s : int or array of int
        Right shift, ``1 <= s <= 62``; broadcast like ``m``.
    bits : int
        Output width (8 for int8 activations).

    Returns
    -------
    numpy.ndarray of int64
        Values in the signed ``bits`` range.
    """
    a = as_int64(acc, "acc")
    mm = as_int64(m, "m")
    ss = as_int64(s, "s")
    check_range(a, INT32_MIN, INT32_MAX, "acc")
    check_range(mm, 0, M_MAX, "m")
    check_range(ss, S_MIN, S_MAX, "s")
    # round_shift without its range checks: |acc * m| <= 2**31 * (2**31 - 1) < 2**62 and the
    # rounding constant 2**(s-1) <= 2**61, so the sum fits int64 (docs/quantization.md).
    half = np.left_shift(np.int64(1), ss - 1)
    return saturate(np.right_shift(a * mm + half, ss), bits)
