"""The softmax unit's numbers: pipelines, ring-buffer words and the cycle function.

``rtl/softmax.py:SoftmaxUnit`` runs every row through four steps with fixed latencies,
each triggered by the one before:

1. *ingest*: the row's ``B = ceil(n / lanes)`` beats are written to the q ring buffer while
   per-lane maxima are kept (``SOFTMAX_INGEST_STAGES``); a max tree of ``T =
   ceil(log2(lanes))`` levels, ``M = len(SOFTMAX_MAX_TREE_STAGES)`` cycles each, gives the
   row maximum;
2. *exp pass*: the row is read back and the exponentials ``e`` computed
   (``SOFTMAX_EXP_STAGES``, the first is the engine's issue register), written to the e
   ring buffer and summed per lane; a sum tree (``T``) gives the row sum;
3. *reciprocal*: one radix-4 division per row, ``factor = floor(2**k / sum)``
   (``SOFTMAX_RECIP_LATENCY``);
4. *normalize pass*: ``e`` is read back, multiplied and rounded (``SOFTMAX_NORM_STAGES``);
   the last stage is the output register.

Rows overlap: the ingest of row ``r + 1`` starts ``P = max(B, SOFTMAX_RECIP_LATENCY)``
cycles after that of row ``r`` (the unit holds ``i.ready`` low for ``P - B`` cycles after a
row), and every later step of a row starts a fixed number of cycles after its ingest ends;
each step is busy at most ``P`` cycles per row, so no step is ever asked to start while
busy. Hence, with the input valid on every cycle and the output always ready, from the
first input handshake to the last output handshake (both included)::

    cycles(R, n) = (B - 1) + (R - 1) * P + softmax_row_latency(lanes, n) + 1

Ring buffers (:func:`softmax_buffer_words`; writes come at most one per cycle, in order;
a read in the cycle of a write to the same word returns the old word):

* e ring: beat ``j`` of a row is written ``B + T + SOFTMAX_RECIP_LATENCY + 1`` cycles before
  it is read, so ``Bmax + T + SOFTMAX_RECIP_LATENCY + 1`` words are never overwritten early.
* q ring: beat ``j`` is written ``I = len(SOFTMAX_INGEST_STAGES) - 1`` cycles after its
  input handshake and read ``M T + 2 + I + j`` cycles after the row's last input beat
  ``e0``; the word ``W`` beats later belongs to a later row, written no earlier than
  ``e0 + I + j + W - B + 1`` (even with input gaps), so ``W = Bmax + M T + 1`` words
  suffice.
"""

from __future__ import annotations

from numba import njit

from edgetron.golden.softmax import EXP_BITS

from .arith import beats, divider_latency, tree_depth

__all__ = [
    "SOFTMAX_EXP_STAGES",
    "SOFTMAX_INGEST_STAGES",
    "SOFTMAX_MAX_TREE_STAGES",
    "SOFTMAX_NORM_STAGES",
    "SOFTMAX_RECIP_LATENCY",
    "softmax_buffer_words",
    "softmax_cycles",
    "softmax_out_fifo_words",
    "softmax_period",
    "softmax_row_latency",
]

#: Ingest: the input beat's register (``in_reg``, which also writes the q ring), the
#: per-lane running maximum register.
SOFTMAX_INGEST_STAGES = ("in_reg", "lane_max")
#: Each level of the max tree: the comparison (its operands registered beside it), then the
#: selection.
SOFTMAX_MAX_TREE_STAGES = ("compare", "select")
#: Exp pass, one cycle each (golden/softmax.py steps): the engine's issue register, the
#: q-buffer read, the read data's register, ``d`` beside ``q < max - clamp_in`` (1), the
#: clamp to ``clamp_in`` (2), the rescale's shifts by multiples of 8 and then by the rest
#: (the low ``u_bits`` of ``mag << f`` and of ``mag >> (-f-1)``, and whether a bit of
#: ``mag`` alone reaches ``2**u_bits``), its rounding add, the clamp to ``u`` (2),
#: ``u * m_ln2`` as two partial products and their sum (3), ``>> s_ln2`` (3),
#: ``z * q_ln2`` beside ``q_b - u`` (4), ``t = (q_b - u) + z * q_ln2`` (4), ``t * t`` (5),
#: ``L = t*t + q_c`` beside ``min(z, z_cap) + g`` (5), ``e = L >> (min(z, z_cap) + g)``
#: written to the e buffer (6), the per-lane sum (7).
SOFTMAX_EXP_STAGES = ("issue", "read", "read_out", "diff", "clamp_in", "shift", "shift_fine",
                      "round", "clamp", "recip_mul", "recip_add", "recip_shift", "ln2_mul",
                      "poly_in", "square", "poly_add", "exp_shift", "lane_sum")
#: Normalize pass: issue register, e-buffer read, the read data's register, ``e * factor``,
#: the rounding shift and the clamp to 127 (step 9), then the output FIFO's two cycles from
#: a write into it empty to the word at its output, and the output skid buffer's register.
SOFTMAX_NORM_STAGES = ("issue", "read", "read_out", "mul", "round", "fifo_write", "fifo_out",
                       "out_reg")
#: The row reciprocal ``floor(2**k / sum)``: ``factor_bits = EXP_BITS`` quotient bits.
SOFTMAX_RECIP_LATENCY = divider_latency(EXP_BITS)
_INGEST = len(SOFTMAX_INGEST_STAGES)
_MAX_LEVEL = len(SOFTMAX_MAX_TREE_STAGES)
_EXP = len(SOFTMAX_EXP_STAGES)
_NORM = len(SOFTMAX_NORM_STAGES)


@njit(cache=True)
def softmax_period(lanes, n):
    """Cycles between the ingests of consecutive rows of ``n`` logits at full rate."""
    return max(beats(n, lanes), SOFTMAX_RECIP_LATENCY)


@njit(cache=True)
def softmax_row_latency(lanes, n):
    """Cycles from a row's last input handshake to its last output beat."""
    b = beats(n, lanes)
    t = tree_depth(lanes)
    return (_INGEST + _MAX_LEVEL * t) + (b - 1 + _EXP) + t + SOFTMAX_RECIP_LATENCY + (_NORM + b - 1)


@njit(cache=True)
def softmax_cycles(lanes, rows, n):
    """Cycles of ``SoftmaxUnit`` for ``rows >= 1`` rows of ``n >= 1`` logits (module docstring)."""
    b = beats(n, lanes)
    return b + (rows - 1) * softmax_period(lanes, n) + softmax_row_latency(lanes, n)


@njit(cache=True)
def softmax_buffer_words(lanes, row_max):
    """Words (beats of ``lanes`` values) of the q and e ring buffers: ``(q_words, e_words)``."""
    bmax = beats(row_max, lanes)
    t = tree_depth(lanes)
    return bmax + _MAX_LEVEL * t + 1, bmax + t + SOFTMAX_RECIP_LATENCY + 1


@njit(cache=True)
def softmax_out_fifo_words(lanes, row_max):
    """Words of the output FIFO (one output beat each): the unit takes an input beat only
    while fewer beats are pending (taken, their output not yet handed over). With ``o``
    always ready a beat is pending for at most ``softmax_row_latency(lanes, row_max) +
    Bmax - 1`` cycles (its row's later beats, then the row latency) and at most one beat is
    taken per cycle, so this bound never holds the input back."""
    return softmax_row_latency(lanes, row_max) + beats(row_max, lanes) + 1
