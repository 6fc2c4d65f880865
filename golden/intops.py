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
* ``requantize(acc, mult, shift)`` is the dyadic requantizer
  (``docs/quantization.md``): ``saturate_int8(round_shift(acc * mult, shift))``
  with ``0 <= mult < 2**31``, ``1 <= shift <= 62`` and ``acc`` in int32, so
  ``acc * mult`` always fits in int64.
* ``pow2_rescale(x, f)`` moves a magnitude from scale ``S`` to ``S / 2**f``:
  an exact left shift for ``f >= 0``, ``round_shift(x, -f)`` otherwise (the
  "internal scale" step of the polynomial kernels); ``-62 <= f <= 62`` and a
  result that would leave int64 is rejected, never wrapped.
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
    "MULT_BITS",
    "M_MAX",
    "SHIFT_BITS",
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
#: Dyadic requantization limits (docs/quantization.md): the multiplier is an unsigned 31-bit
#: integer, the shift a right shift of 1 to 62, so that ``|acc * mult| < 2**62`` plus the
#: rounding constant ``2**(shift-1) <= 2**61`` stays inside int64 (``round_shift`` uses the
#: same bound).
M_MAX = (1 << 31) - 1
S_MIN, S_MAX = 1, 62
#: Widths of the hardware fields that carry the multiplier (0 .. M_MAX) and the shift
#: (S_MIN .. S_MAX): 31 and 6 bits.
MULT_BITS = M_MAX.bit_length()
SHIFT_BITS = S_MAX.bit_length()


def int_range(bits: int) -> tuple[int, int]:
    """Inclusive range ``(lo, hi)`` of a signed two's-complement integer of ``bits`` bits.

    Parameters
    ----------
    bits : int
        Width in bits, 1 to 63 (a Python or NumPy integer).

    Returns
    -------
    (lo, hi) : tuple of int
        ``(-2**(bits-1), 2**(bits-1) - 1)``.

    Raises
    ------
    ValueError
        ``bits`` is not an integer (bools included) or lies outside ``[1, 63]``.
    """
    if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or not 1 <= bits <= 63:
        raise ValueError(f"bits must be an integer in [1, 63], got {bits!r}")
    bits = int(bits)  # Python ints: a NumPy scalar would make NumPy scalars (uint8 overflows)
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def int_param(value, name: str, lo: int, hi: int) -> int:
    """A Python int parameter (a width, a count) in ``[lo, hi]``.

    Parameters
    ----------
    value : int
        The parameter (a Python or NumPy integer).
    name : str
        Its name, for the messages.
    lo, hi : int
        Inclusive allowed range.

    Returns
    -------
    int
        ``value`` as a Python int.

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

    Parameters
    ----------
    x : int or array_like of int
        Integer data of any shape and integer dtype.
    name : str
        Name of ``x`` for the messages.

    Returns
    -------
    numpy.ndarray of int64
        ``x`` itself when it already is an int64 array (no copy).

    Raises
    ------
    TypeError
        ``x`` holds floats, bools or objects.
    ValueError
        A ``uint64`` value above the int64 range.
    """
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{name} has values above the int64 range")
    return arr.astype(np.int64, copy=False)


def check_range(x: np.ndarray, lo: int, hi: int, name: str) -> None:
    """Raise ValueError naming ``name`` if any element of ``x`` lies outside ``[lo, hi]``.

    Parameters
    ----------
    x : numpy.ndarray of int
        Values to check (an empty array always passes).
    lo, hi : int
        Inclusive allowed range (Python ints: any magnitude).
    name : str
        Name of ``x`` in the message.

    Raises
    ------
    ValueError
        Some element lies outside ``[lo, hi]``; the message gives the range and
        the smallest and largest element.
    """
    if x.size == 0:
        return
    xmin, xmax = int(x.min()), int(x.max())
    if xmin < lo or xmax > hi:
        raise ValueError(
            f"{name} must lie in [{lo}, {hi}], got values in [{xmin}, {xmax}]"
        )


def check_signed(x: np.ndarray, bits: int, name: str) -> None:
    """Raise ValueError naming ``name`` unless every element fits ``bits`` signed bits.

    Parameters
    ----------
    x : numpy.ndarray of int
        Values to check.
    bits : int
        Declared signed width, 1 to 63.
    name : str
        Name of ``x`` in the message.

    Raises
    ------
    ValueError
        An element outside ``int_range(bits)``, or a bad ``bits``.
    """
    lo, hi = int_range(bits)
    check_range(x, lo, hi, name)


def check_unsigned(x: np.ndarray, bits: int, name: str) -> None:
    """Raise ValueError naming ``name`` unless every element fits ``bits`` unsigned bits.

    Parameters
    ----------
    x : numpy.ndarray of int
        Values to check.
    bits : int
        Declared unsigned width (``x`` must lie in ``[0, 2**bits - 1]``).
    name : str
        Name of ``x`` in the message.

    Raises
    ------
    ValueError
        An element outside ``[0, 2**bits - 1]``.
    """
    check_range(x, 0, (1 << bits) - 1, name)


def signed_bits(lo: int, hi: int) -> int:
    """Smallest two's-complement width holding every integer in ``[lo, hi]``.

    Parameters
    ----------
    lo, hi : int
        Inclusive range, ``lo <= hi`` (Python or NumPy integers, any magnitude).

    Returns
    -------
    int
        ``bits(max(-lo - 1, hi, 0)) + 1``, at least 1.

    Raises
    ------
    TypeError
        ``lo`` or ``hi`` is not an integer (bools included).
    ValueError
        ``lo > hi``.
    """
    for value, label in ((lo, "lo"), (hi, "hi")):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{label} must be an integer, got {type(value).__name__}")
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"signed_bits needs lo <= hi, got lo={lo}, hi={hi}")
    return max(-lo - 1, hi, 0).bit_length() + 1


def wrap(x, bits: int) -> np.ndarray:
    """Two's-complement wrap of ``x`` into a signed ``bits``-bit register.

    ``x & (2**bits - 1)`` is the residue in ``[0, 2**bits)``; residues above the
    signed maximum move down by ``2**bits = -2 * lo``. No intermediate leaves
    int64, even for ``bits = 63`` (no reliance on NumPy's own wrap-around).

    Parameters
    ----------
    x : int or array_like of int
        Values in the int64 range.
    bits : int
        Register width, 1 to 63.

    Returns
    -------
    numpy.ndarray of int64
        ``x`` reduced modulo ``2**bits`` into ``int_range(bits)``, the shape of ``x``.

    Raises
    ------
    TypeError
        Non-integer ``x``.
    ValueError
        A bad ``bits``.
    """
    lo, hi = int_range(bits)
    r = as_int64(x) & ((1 << bits) - 1)
    return r + (r > hi) * (2 * lo)


def saturate(x, bits: int) -> np.ndarray:
    """Clamp ``x`` to the signed ``bits``-bit range.

    Parameters
    ----------
    x : int or array_like of int
        Values in the int64 range.
    bits : int
        Destination width, 1 to 63.

    Returns
    -------
    numpy.ndarray of int64
        ``clip(x, *int_range(bits))``, the shape of ``x``.

    Raises
    ------
    TypeError
        Non-integer ``x``.
    ValueError
        A bad ``bits``.
    """
    lo, hi = int_range(bits)
    return np.clip(as_int64(x), lo, hi)


def _check_broadcast(*operands: tuple[str, np.ndarray]) -> None:
    """ValueError naming every operand and its shape unless the shapes broadcast together."""
    try:
        np.broadcast_shapes(*(v.shape for _, v in operands))
    except ValueError:
        shapes = ", ".join(f"{name} {v.shape}" for name, v in operands)
        raise ValueError(f"shapes do not broadcast together: {shapes}") from None


def round_shift(x, s) -> np.ndarray:
    """Arithmetic right shift by ``s`` with round-half-up: ``(x + 2**(s-1)) >> s``.

    ``s`` may be a scalar or broadcast against ``x``; it must lie in
    ``[0, S_MAX]`` (``S_MAX = 62``). ``x`` must satisfy ``-2**62 <= x < 2**62``
    so that adding the rounding constant (at most ``2**61``) cannot overflow int64.

    Parameters
    ----------
    x : int or array_like of int
        Values in ``[-2**62, 2**62 - 1]``.
    s : int or array_like of int
        Shifts in ``[0, 62]``, broadcast against ``x``.

    Returns
    -------
    numpy.ndarray of int64
        ``floor(x / 2**s + 1/2)``, the broadcast shape of ``x`` and ``s``.

    Raises
    ------
    TypeError
        Non-integer ``x`` or ``s``.
    ValueError
        ``s`` or ``x`` outside its range (named), or shapes that do not broadcast.
    """
    v = as_int64(x)
    sh = as_int64(s, "s")
    _check_broadcast(("x", v), ("s", sh))
    check_range(sh, 0, S_MAX, "s")
    check_range(v, -(1 << S_MAX), (1 << S_MAX) - 1, "x")
    half = np.where(sh > 0, np.left_shift(np.int64(1), np.maximum(sh - 1, 0)), 0)
    return np.right_shift(v + half, sh)


def pow2_rescale(x, f: int) -> np.ndarray:
    """Move non-negative magnitudes ``x`` from scale ``S`` to the scale ``S / 2**f``.

    ``x << f`` (exact) for ``f >= 0``; ``round_shift(x, -f)`` (round half up)
    for ``f < 0``. Monotone in ``x``. A left shift whose result would leave
    int64 is rejected rather than wrapped.

    Parameters
    ----------
    x : int or array_like of int
        Magnitudes (the kernels pass ``|q| >= 0``); for ``f >= 0``,
        ``x * 2**f`` must fit int64, for ``f < 0`` ``x`` must lie in
        ``[-2**62, 2**62 - 1]`` (:func:`round_shift`).
    f : int
        Exponent, ``-62 <= f <= 62`` (a Python or NumPy integer).

    Returns
    -------
    numpy.ndarray of int64
        The rescaled magnitudes, the shape of ``x``.

    Raises
    ------
    TypeError
        Non-integer ``x`` or ``f`` (bools included).
    ValueError
        ``f`` outside ``[-62, 62]``, or ``x`` outside the range above (named ``x``).
    """
    shift = int_param(f, "f", -S_MAX, S_MAX)
    v = as_int64(x)
    if shift < 0:
        return round_shift(v, -shift)
    check_range(v, -(1 << (63 - shift)), ((1 << 63) - 1) >> shift,
                f"x (x << {shift} must fit int64)")
    return np.left_shift(v, shift)


def pow2_rescale_limit(limit: int, f: int) -> int:
    """A magnitude that :func:`pow2_rescale` by ``f`` maps to ``>= limit``.

    ``ceil(limit / 2**f)`` for ``f >= 0`` and ``limit << -f`` (which maps to
    ``limit`` exactly) otherwise. Because the rescaling is monotone, clamping
    the input at this value first changes nothing once the rescaled value is
    clamped at ``limit``, and it bounds the width of the shifter.

    Parameters
    ----------
    limit : int
        The clamp applied after rescaling, ``0 <= limit < 2**63``.
    f : int
        Exponent, ``-62 <= f <= 62``, as for :func:`pow2_rescale`.

    Returns
    -------
    int
        A Python int (exact, of any magnitude).

    Raises
    ------
    TypeError
        Non-integer ``limit`` or ``f``.
    ValueError
        ``limit`` or ``f`` outside its range.
    """
    lim = int_param(limit, "limit", 0, (1 << 63) - 1)
    shift = int_param(f, "f", -S_MAX, S_MAX)
    return -((-lim) >> shift) if shift >= 0 else lim << (-shift)


def requantize(acc, mult, shift, bits: int = 8) -> np.ndarray:
    """Dyadic requantization ``saturate(round_shift(acc * mult, shift), bits)``.

    Parameters
    ----------
    acc : array of int
        Accumulator values; must fit int32.
    mult : int or array of int
        Multiplier, ``0 <= mult <= 2**31 - 1``; broadcast against ``acc`` (per
        channel along the last axis when given as a vector).
    shift : int or array of int
        Right shift, ``1 <= shift <= 62``; broadcast like ``mult``.
    bits : int
        Output width (8 for int8 activations).

    Returns
    -------
    numpy.ndarray of int64
        Values in the signed ``bits`` range, the broadcast shape of ``acc``,
        ``mult`` and ``shift``.

    Raises
    ------
    TypeError
        Non-integer ``acc``, ``mult`` or ``shift``.
    ValueError
        ``acc``, ``mult``, ``shift`` or ``bits`` outside its range (named), or
        shapes that do not broadcast.
    """
    a = as_int64(acc, "acc")
    mm = as_int64(mult, "mult")
    ss = as_int64(shift, "shift")
    _check_broadcast(("acc", a), ("mult", mm), ("shift", ss))
    check_range(a, INT32_MIN, INT32_MAX, "acc")
    check_range(mm, 0, M_MAX, "mult")
    check_range(ss, S_MIN, S_MAX, "shift")
    # round_shift without its range checks: |acc * mult| <= 2**31 * (2**31 - 1) < 2**62 and the
    # rounding constant 2**(shift-1) <= 2**61, so the sum fits int64 (docs/quantization.md).
    half = np.left_shift(np.int64(1), ss - 1)
    return saturate(np.right_shift(a * mm + half, ss), bits)
