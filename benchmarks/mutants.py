"""Mutation benchmark of the RTL verification: single-bug mutants per unit, caught or not.

Each mutant is one small edit of the RTL source that a designer could plausibly make:
a rounding mode, a saturation bound, a width, a sign extension, a skew, a fold counter,
valid timing, an ignored ready, an overwrite instead of an accumulate, a buffer depth.
For each unit (:data:`UNITS`) the benchmark copies the working tree once into a scratch
directory (tracked and untracked files, not the ignored ones; the tree itself is never
edited), checks that the unit's suites pass on the copy, then for every mutant applies
the edit to the copy, runs each suite (``pytest -x``: the first failing test catches the
mutant) and restores the file. Python in the copy imports the copy's ``edgetron``: a
``sitecustomize`` on ``PYTHONPATH`` puts a finder for it first, in the pytest process and
in the cocotb simulators' Python alike (the runner passes ``sys.path`` on).

It prints, per mutant, which test of which suite caught it, then ``name: value unit``
lines: the catch rate per unit and suite, and overall. Every mutant must be caught by at
least one suite (exit status 1 otherwise). Adding a unit's mutants means adding a
:class:`Unit` with its suites and :class:`Mutant` list. Long-running (about a minute or
two per mutant and suite; the cocotb suite rebuilds the Verilog each time), not in CI.

Usage: ``python benchmarks/mutants.py [--unit gemm] [--mutant NAME ...] [--suite cocotb]``
after ``source scripts/setup.sh``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Seconds one suite run may take before it counts as a hang (reported, not caught).
SUITE_TIMEOUT = 3600


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One bug: ``edits`` replace, in ``path`` (relative to the repository root), each
    ``old`` text (which must occur exactly once) by ``new``."""

    name: str
    what: str
    path: str
    edits: tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class Unit:
    """A unit's suites (name -> pytest arguments, run from the copy's root) and mutants."""

    suites: dict[str, tuple[str, ...]]
    mutants: tuple[Mutant, ...]


def _m(name: str, what: str, path: str, *edits: tuple[str, str]) -> Mutant:
    return Mutant(name, what, path, tuple(edits))


_REQUANT = "rtl/requant.py"
#: The start of stage 5 (WINDOW) and stage 6's rounding add, r = (t >> 1) + t[0].
_STAGE5 = "        # Stage 5 (WINDOW)"
_ROUND = "r.eq(win[1:] + win[0])"
#: A tie (the bits shifted out below the rounding bit all zero), registered beside the
#: coarse shift and once more beside the window.
_TIE = ("        tie = [Signal(name=f\"tie_{lane}_{k}\") for k in range(2)]\n"
        "        m.d.sync += [tie[0].eq((prod.as_unsigned()\n"
        "                               & ((Const(1, len(prod)) << sm1[2]) - 1)) == 0),\n"
        "                     tie[1].eq(tie[0])]\n" + _STAGE5)
#: The rounding bit dropped in a tie when ``{}`` holds (``win[0]`` is the rounding bit,
#: ``win[1]`` the result's lowest bit; ``sign[1]`` is t's sign).
_RND = "r.eq(win[1:] + Mux(tie[1] & {}, 0, win[0]))"

REQUANT_MUTANTS = (
    _m("round_half_even", "rounds ties to even instead of up", _REQUANT, (_STAGE5, _TIE),
       (_ROUND, _RND.format("~win[1]"))),
    _m("round_half_away", "rounds negative ties away from zero", _REQUANT,
       (_STAGE5, _TIE), (_ROUND, _RND.format("sign[1]"))),
    _m("truncate", "drops the rounding add (floor)", _REQUANT, (_ROUND, "r.eq(win[1:])")),
    _m("shift_off_by_one", "shifts by s instead of s - 1 before the rounding bit", _REQUANT,
       ("sm1[0].eq(self.i.p.shift[lane] - 1)", "sm1[0].eq(self.i.p.shift[lane])")),
    _m("saturate_max_126", "clamps positive results to 126", _REQUANT,
       ("top, bottom = (1 << (self._out_bits - 1)) - 1,",
        "top, bottom = (1 << (self._out_bits - 1)) - 2,")),
    _m("overflow_check_off_by_one", "lets t = 2**out_bits - 1 through, wrapped to -128",
       _REQUANT, ("win == (1 << self._out_bits) - 1", "win == (1 << self._out_bits) - 2")),
    _m("window_one_bit_short", "the window check one bit too strict: saturates in-range values",
       _REQUANT, ("k_at_most(j - (window - 1))", "k_at_most(j - (window - 2))")),
    _m("window_check_ignores_sign", "the window check asks for zeros whatever the sign",
       _REQUANT, ("fits.eq(Mux(sign[0], ones.all(), zeros.all()))", "fits.eq(zeros.all())")),
    _m("acc_zero_extended", "multiplies the accumulator as unsigned", _REQUANT,
       ("acc_lo = acc.as_unsigned()[:_PART_BITS] if split else acc\n",
        "acc_lo = acc.as_unsigned()[:_PART_BITS] if split else acc.as_unsigned()\n"),
       ("acc_hi = acc[_PART_BITS:].as_signed()", "acc_hi = acc[_PART_BITS:]")),
    _m("product_8_bits_short", "a product register 8 bits too narrow", _REQUANT,
       ("prod_bits = self._acc_bits + MULT_BITS", "prod_bits = self._acc_bits + MULT_BITS - 8")),
    _m("valid_one_cycle_early", "o.valid taken from the second stage", _REQUANT,
       ("self.o.valid.eq(valid[-1]),", "self.o.valid.eq(valid[-2]),")),
    _m("ignores_ready", "the pipeline advances whatever o.ready says", _REQUANT,
       ("advance.eq(~valid[-1] | self.o.ready),", "advance.eq(1),")),
)

GEMM_MUTANTS = (
    _m("os_pe_acc_24_bits", "output-stationary PE accumulator cut to 24 bits", "rtl/pe.py",
       ("acc = Signal(signed(self._acc_bits))", "acc = Signal(signed(24))")),
    _m("ws_acc_buffer_24_bits", "ws accumulator buffer keeps 24 bits of each partial sum",
       "rtl/gemm/ws_core.py",
       ("shape=acc_layout, depth=lim.acc_words, init=[],",
        "shape=data.ArrayLayout(signed(24), C), depth=lim.acc_words, init=[],"),
       ("acc_wr.data.eq(total),", "*[acc_wr.data[c].eq(total[c]) for c in range(C)],")),
    _m("ws_pe_partial_sum_16_bits", "ws partial sums wrap at 16 bits", "rtl/pe.py",
       ("self.p_out.eq(self.p_in + prod_q)",
        "self.p_out.eq((self.p_in + prod_q)[:16].as_signed())")),
    _m("pe_activation_zero_extended", "the PE multiplies the activation as unsigned",
       "rtl/pe.py",
       ("self.a_in.data * w_cur", "self.a_in.data.as_unsigned() * w_cur")),
    _m("ws_pe_no_write_bypass", "a weight written into the bank the next activation uses "
       "misses that activation's product", "rtl/pe.py",
       ("w_cur.eq(Mux(bypass, self.w_in.data, bank[self.a_in.sel]))",
        "w_cur.eq(bank[self.a_in.sel])")),
    _m("os_pe_overwrites", "os PE overwrites its accumulator instead of adding",
       "rtl/pe.py",
       ("total = Mux(first_q, 0, acc) + prod_q", "total = prod_q")),
    _m("ws_overwrites_partial_sums", "ws accumulator stage drops the earlier folds",
       "rtl/gemm/ws_core.py",
       ("Mux(pre.first, params_line[1][c].bias, acc_q[c])",
        "Mux(pre.first, params_line[1][c].bias, 0)")),
    _m("ws_params_read_late", "the ws epilogue takes the parameter word of the beat after",
       "rtl/gemm/ws_core.py",
       ('2, "params")', '1, "params")')),
    _m("ws_params_address_one_tap_late", "the parameter address register loads the tap it "
       "should address, so every word comes one cycle late", "rtl/gemm/ws_core.py",
       ("self.read_params(m, early.slot, early.nt,",
        "self.read_params(m, tag[tag.depth - 2].slot, tag[tag.depth - 2].nt,")),
    _m("acc_read_not_transparent", "the accumulator read misses a partial sum written in "
       "the cycle it is addressed (rows 2 apart)", "rtl/gemm/ws_core.py",
       ("transparent_for=(acc_wr,) if transparent else ()", "transparent_for=()")),
    _m("acc_read_ahead_on_small_arrays", "arrays of one and two rows also read their partial "
       "sums three cycles ahead (M = 1 comes back after R cycles)", "rtl/gemm/ws_core.py",
       ("ahead = min(ACC_READ_AHEAD, R)", "ahead = ACC_READ_AHEAD")),
    _m("availability_flag_late", "the registered availability check sees a beat a "
       "cycle after it can be read", "rtl/gemm/core.py",
       ("(c, ge(v, 0))", "(c, ge(v, 1))")),
    _m("availability_step_sign_ignored", "the availability check against index + k "
       "ignores the sign of cnt - index (a count behind the index reads as ahead)",
       "rtl/gemm/core.py",
       ("return ~diff[-1] & at_least(", "return at_least(")),
    _m("channels_not_awaited", "a row of a column tile issues without waiting for the "
       "tile's channels (cols <= rows)", "rtl/gemm/core.py",
       ('return self.available_ahead(m, "ch", slot, ch_top, advance, choices, "ch_in")',
        "return Const(1, 1)")),
    _m("last_row_flag_of_the_same_call", "the registered last-row check of a call's first "
       "row compares with the call before's M", "rtl/gemm/ws_core.py",
       ("(call_end, anext.m_last == 0)", "(call_end, ashape.m_last == 0)")),
    _m("weight_fold_flag_of_the_same_call", "the writer's registered last-fold check of "
       "a call's first tile compares with the call before's K", "rtl/gemm/ws_core.py",
       ("(wn_last, wnext.kf_last == 0)", "(wn_last, wshape.kf_last == 0)")),
    _m("skew_lane1_late", "operand lane 1 skewed one cycle too many", "rtl/systolic.py",
       ('return DelayLine(m, lane, index, f"{name}_skew{index}")',
        'return DelayLine(m, lane, index + (index == 1), f"{name}_skew{index}")')),
    _m("ws_fold_weight_row_drift", "ws weight-row counter skips a row at each fold",
       "rtl/gemm/ws_core.py",
       ("[wkf.eq(wkf + 1), wk.eq(wk + 1)]", "[wkf.eq(wkf + 1), wk.eq(wk + 2)]")),
    _m("os_row_tile_base_off_by_one", "os A address advances K - 1 per row tile",
       "rtl/gemm/os_core.py", ("a_base.eq(a_base + K)]", "a_base.eq(a_base + K - 1)]")),
    _m("os_extra_row_valid", "os marks one row beyond the tile valid", "rtl/gemm/os_core.py",
       ("tag.input.valid.eq(d_active & (d_row < d_rows)),",
        "tag.input.valid.eq(d_active & (d_row <= d_rows)),")),
    _m("os_drops_bias", "os epilogue forgets the bias", "rtl/gemm/os_core.py",
       ("total[c].eq(array.o[c] + params[c].bias)", "total[c].eq(array.o[c])")),
    _m("core_ignores_credits", "the core issues whether or not the output FIFO has room",
       "rtl/gemm/core.py",
       ("epi = self.schedule(m, array, room)", "epi = self.schedule(m, array, 1)")),
    _m("ws_row_takes_no_credit", "a ws row of a last fold issues without taking a credit",
       "rtl/gemm/ws_core.py", ("take=issue & last_kf,", "take=0,")),
    _m("os_tile_takes_one_credit", "an os tile takes one credit instead of one per row",
       "rtl/gemm/os_core.py",
       ("reserve=tile_rows)", "reserve=1)")),
    _m("out_fifo_one_beat_short", "the output FIFO holds one beat less than its credits",
       "rtl/gemm/slots.py",
       ("CreditFifo(beat.shape(), depth)", "CreditFifo(beat.shape(), depth - 1)")),
    _m("param_write_ignores_handshake", "the registered parameter write writes its lane "
       "every cycle, beat or not", "rtl/gemm/slots.py",
       ("p_en.eq(Mux(ch_hs, 1 << ch_lane, 0))", "p_en.eq(1 << ch_lane)")),
    _m("a_buffer_one_word_short", "the A buffer has one word less than the limits say",
       "rtl/gemm/slots.py",
       ("depth=slots * lim.a_words,", "depth=slots * lim.a_words - 1,")),
    _m("shape_check_rejects_full_a", "the shape check refuses an exactly full A buffer",
       "rtl/gemm/unit.py",
       ("at_most(a_need, lim.a_words)", "at_most(a_need, lim.a_words - 1)")),
    # The requantizer inside the GEMM unit, against the GEMM-level suites.
    dataclasses.replace(REQUANT_MUTANTS[0], name="requant_round_half_even"),
    dataclasses.replace(REQUANT_MUTANTS[4], name="requant_saturate_max_126"),
)


_SM, _LN, _GELU, _ADD, _ARITH = "rtl/softmax.py", "rtl/layernorm.py", "rtl/gelu.py", "rtl/add.py", \
    "rtl/arith.py"
#: The radix-4 divider's digit selection, each comparison ``x >= k d`` (the sign of
#: ``x - k d``) turned into ``x > k d`` (the sign of ``x - k d - 1``).
_DIGIT = ("ge1, ge2, ge3 = ~s1[-1], ~s2[-1], ~s3[-1]\n        digit = ",
          "ge1, ge2, ge3 = ~(s1 - 1)[-1], ~(s2 - 1)[-1], ~(s3 - 1)[-1]\n        digit = ")

SOFTMAX_MUTANTS = (
    _m("softmax_clamp_126", "probabilities clamp at 126", _SM,
       ("y.eq(Mux(sat, OUT_MAX, rnd))",
        "y.eq(Mux(sat | (rnd > OUT_MAX - 1), OUT_MAX - 1, rnd))")),
    _m("softmax_truncates", "the normalization truncates instead of rounding", _SM,
       ("rnd = ((prod >> (_OUT_SHIFT - 1)) + 1) >> 1", "rnd = prod >> _OUT_SHIFT")),
    _m("softmax_sums_padding", "padding lanes of a row's last beat enter the row sum", _SM,
       ("e8[j].eq(Mux(lane_ok(tags[-2].last, j), el >> cap, 0))", "e8[j].eq(el >> cap)")),
    _m("softmax_valid_one_cycle_early", "o.valid one stage ahead of its data", _SM,
       ("out_valid.eq(m_valid)", "out_valid.eq(o_valid)")),
    _m("softmax_ignores_ready", "the output FIFO is read whatever o.ready says", _SM,
       ("skid.o.ready.eq(self.o.ready)", "skid.o.ready.eq(1)")),
    _m("softmax_output_fifo_overflows", "input taken whatever the output FIFO holds", _SM,
       ("room.eq(pending_next < fifo_words)", "room.eq(1)")),
    _m("softmax_q_ring_one_word_short", "the logit ring one word short", "edgetron/hw/softmax.py",
       ("return bmax + _MAX_LEVEL * t + 1, bmax + t + SOFTMAX_RECIP_LATENCY + 1",
        "return bmax + _MAX_LEVEL * t, bmax + t + SOFTMAX_RECIP_LATENCY + 1")),
    _m("divider_off_by_one", "the divider's digit selection misses x == k d", _ARITH,
       _DIGIT),
)

LAYERNORM_MUTANTS = (
    _m("layernorm_output_truncates", "the affine result truncates instead of rounding",
       _ARITH,
       ("rounded = (t[1:window] + t[0])[:bits]", "rounded = t[1:window]")),
    _m("layernorm_drops_epsilon", "the variance misses q_eps", _LN,
       ("q_minus.eq(k.q_eps - sum_parts(s1sq_parts))", "q_minus.eq(-sum_parts(s1sq_parts))")),
    _m("layernorm_param_address_early", "gamma and beta one beat early", _LN,
       ('DelayLine(core, n_cnt, param_delay, "param_addr")',
        'DelayLine(core, n_cnt, param_delay - 1, "param_addr")')),
    _m("layernorm_ignores_credits", "the unit takes input whatever its output credits say",
       _LN, ("p_empty & gap_zero & room),", "p_empty & gap_zero),")),
    _m("sqrt_off_by_one", "the square root's trials miss x == 8 q k + k**2", _ARITH,
       ("ge1, ge2, ge3 = ~s1[-1], ~s2[-1], ~s3[-1]\n        k = ",
        "ge1, ge2, ge3 = ~(s1 - 1)[-1], ~(s2 - 1)[-1], ~(s3 - 1)[-1]\n        k = ")),
    _m("layernorm_divider_off_by_one", "the divider's digit selection misses x == k d", _ARITH,
       _DIGIT),
)

GELU_MUTANTS = (
    _m("gelu_truncates", "the i-GELU product truncates instead of rounding", _GELU,
       ("Cat(Const(1, 1), p_hi", "Cat(Const(0, 1), p_hi")),
    _m("gelu_int8_wraps", "int8 results wrap instead of saturating", _GELU,
       ("Mux(k.out32, res, saturate(res, _INT8_BITS))",
        "Mux(k.out32, res, res[:_INT8_BITS].as_signed())")),
    _m("gelu_clip_off_by_one", "the clip bound one below clip", _GELU,
       ("d.eq(Mux(vr > k.clip, 0, k.clip - vr))", "d.eq(Mux(vr > k.clip - 1, 1, k.clip - vr))")),
    _m("gelu_valid_one_cycle_early", "the requantizer's valid one stage early", _GELU,
       ("rq.i.valid.eq(valid[-1])", "rq.i.valid.eq(valid[-2])")),
    _m("gelu_ignores_ready", "the output buffer pops whatever o.ready says", _GELU,
       ("take = full & self.o.ready", "take = full")),
)

ADD_MUTANTS = (
    _m("add_truncates", "no rounding bit 2**(s-1)", _ADD,
       ("c.rnd[:_LO_BITS], w.lo", "Const(0, 1), w.lo"),
       ("c.rnd[_LO_BITS:], w.hi", "Const(0, 1), w.hi")),
    _m("add_wraps", "results wrap instead of saturating", _ADD,
       ("Mux(fits, window,", "Mux(1, window,")),
    _m("add_b_zero_extended", "operand b multiplied as unsigned", _ADD,
       ("a, b = self.i.payload.a[lane], self.i.payload.b[lane]",
        "a, b = self.i.payload.a[lane], self.i.payload.b[lane].as_unsigned()")),
    _m("add_shift_off_by_one", "the rounding bit (and the mask from it) one place high", _ADD,
       ("k.s == j + 1 for j", "k.s == j for j")),
    _m("add_ignores_ready", "beats taken without a credit, whatever o.ready says", _ADD,
       ("self.i.ready.eq(~self.c.valid & ((inflight != ADD_LATENCY) | o_fire))",
        "self.i.ready.eq(~self.c.valid)")),
    _m("add_constants_while_busy", "new constants taken while beats are in flight", _ADD,
       ("self.c.ready.eq(~busy)", "self.c.ready.eq(1)")),
)

_POOL = "rtl/pool.py"
POOL_MUTANTS = (
    _m("pool_padding_wins", "a padded position counts as 0 in a max (wins over negatives)",
       _POOL, ("ident = Mux(k.avg, 0, lo)", "ident = 0")),
    _m("pool_shift_off_by_one", "the average's shift passed to the requantizer minus one "
       "(the convention of a shifter that adds the rounding bit itself)", _POOL,
       ("shift.eq(Mux(kc.avg, kc.shift, 1))", "shift.eq(Mux(kc.avg, kc.shift - 1, 1))")),
    _m("pool_max_halved", "the max goes through the requantizer with mult = 1 (halved) "
       "instead of the identity", _POOL,
       ("mult.eq(Mux(kc.avg, kc.mult, 2))", "mult.eq(Mux(kc.avg, kc.mult, 1))")),
    _m("pool_first_row_unmasked", "row y-1 read in an image's first row (the previous "
       "image's last)", _POOL,
       ("use1 = ~k.glob & (k.r >= 2) & pos.y_ge1", "use1 = ~k.glob & (k.r >= 2)")),
    _m("pool_column_mask_off_by_one", "column x-2 read at x = 1", _POOL,
       ("tags.input.hx2.eq(~k.glob & (k.s == 3) & pos.x_ge2)",
        "tags.input.hx2.eq(~k.glob & (k.s == 3) & pos.x_ge1)")),
    _m("pool_line_buffer_keeps_rows", "the line buffer keeps rows y-1 and y-2 instead of "
       "reducing row y with y-1", _POOL,
       ("lw.data.q[lane].eq(_reduce(k.avg, v1, p1, in_bits))", "lw.data.q[lane].eq(q1)")),
    _m("pool_stride_one_rows", "output rows advance by 1 instead of the stride",
       "rtl/pool_grid.py",
       ("dy.eq(Mux(ey, k.sh - 1, dy - 1))", "dy.eq(Mux(ey, 0, dy - 1))"),
       ("ey.eq(Mux(ey, k.sh == 1, dy == 1))", "ey.eq(Mux(ey, 1, dy == 1))")),
    _m("pool_global_sum_carried", "the global sum is not restarted at an image", _POOL,
       ("Mux(k.glob, pos.y_ge1 | pos.x_ge1, (k.s >= 2) & pos.x_ge1)",
        "Mux(k.glob, 1, (k.s >= 2) & pos.x_ge1)")),
    _m("pool_lines_not_transparent", "the line buffer's read misses the word written in "
       "its cycle", _POOL, ("lr = lines.read_port(transparent_for=(lw,))",
                            "lr = lines.read_port()")),
    _m("pool_lines_pending_not_forwarded", "the line buffer's read misses the word waiting "
       "to be written back", _POOL, ("other.eq(Mux(again, lw.data, held))",
                                     "other.eq(held)")),
    _m("pool_lines_not_held", "the line buffer's word is not held while its position "
       "waits (the free-running read moves on)", _POOL,
       ("rd.eq(fresh & ~again)", "rd.eq(~again)")),
    _m("pool_cols_not_transparent", "the column buffer's read misses the word written in "
       "its cycle", _POOL, ("cr = cols.read_port(transparent_for=(cw,))",
                            "cr = cols.read_port()")),
    _m("pool_cols_not_forwarded", "the column buffer's registered read misses the word "
       "computed in the step it loads", _POOL,
       ("fwd = tags[1].valid & (tags[1].g == pos.g)", "fwd = 0")),
    _m("pool_cols_write_not_forwarded", "the column buffer's registered read misses the "
       "word its registered write port writes in the step it loads", _POOL,
       ("fwd2 = tags[2].valid & (tags[2].g == pos.g)", "fwd2 = 0")),
    _m("pool_pair_drops_column", "the column pair written back drops column x-2", _POOL,
       ("c_now.p[lane].eq(_reduce(k.avg, vert, a_vert, in_bits))", "c_now.p[lane].eq(vert)")),
    _m("pool_line_written_without_a_position", "the line buffer writes back in cycles no "
       "position advanced in (stalls, input gaps)", _POOL,
       ("lw.en.eq(go & ~k.glob)", "lw.en.eq(loaded & ~k.glob)")),
    _m("pool_ignores_ready", "the output buffer is read whatever o.ready says", _POOL,
       ("take.eq(~self.o.valid | self.o.ready)", "take.eq(1)")),
    _m("pool_no_credit", "positions are visited with no room in the output buffer for "
       "their beats", _POOL,
       ("go.eq(loaded & room & Mux(", "go.eq(loaded & Mux(")),
    _m("pool_credit_not_returned", "a beat read from the output buffer does not return "
       "its room", _POOL,
       ("free_next.eq(free - tags.input.emit + leaves)", "free_next.eq(free - tags.input.emit)")),
    _m("pool_constants_while_busy", "new constants taken while beats are in flight", _POOL,
       ("self.c.ready.eq(at_start & ~busy)", "self.c.ready.eq(at_start)")),
)


def _vector_unit(unit: str, mutants: tuple[Mutant, ...], amaranth: tuple[str, ...]) -> Unit:
    # The cocotb suite on Icarus only: the Verilator build of every mutant would double the
    # time, and the testbench is the same.
    return Unit(suites={"amaranth": amaranth,
                        "cocotb": ("tests/cocotb/test_runners.py", "-k",
                                   f"test_vector_unit and icarus and {unit}")},
                mutants=mutants)


_DW = "rtl/conv/depthwise.py"
CONV_MUTANTS = (
    _m("dw_window_tap_mirrored", "tap (ry, sx) takes the window column sx, not s-1-sx",
       _DW, ("tap.eq(win[t // s][s - 1 - t % s])", "tap.eq(win[t // s][t % s])")),
    _m("dw_tap_not_delayed", "tap t enters PE t undelayed (misses its partial sum)", _DW,
       ('operand = DelayLine(pipe, tap, t, f"tap{t}").output', "operand = tap")),
    _m("dw_padding_row_not_zero", "rows above and below the image read the line buffer",
       _DW, ("column.append(Mux(tag1.row_ok[ry] & tag1.col_ok, v, 0))",
             "column.append(Mux(tag1.col_ok, v, 0))")),
    _m("dw_padding_col_not_zero", "columns left and right of the image read the buffer",
       _DW, ("column.append(Mux(tag1.row_ok[ry] & tag1.col_ok, v, 0))",
             "column.append(Mux(tag1.row_ok[ry], v, 0))")),
    _m("dw_stride2_every_window", "stride 2 along a row outputs every window", _DW,
       ("((cmd.sw == 1) | ~win_end[0])", "((cmd.sw == 1) | 1)")),
    _m("dw_sweep_without_rows", "a row is swept before its last input row is in", _DW,
       ("((rows_done >= rows_need) | (rows_done == cmd.h))",
        "((rows_done + 1 >= rows_need) | (rows_done == cmd.h))")),
    _m("dw_loader_overwrites", "the loader may overwrite a row still needed", _DW,
       ("self.x.ready.eq(x_active & (iy < free_limit))",
        "self.x.ready.eq(x_active & (iy < free_limit + 1))")),
    _m("dw_one_bank", "calls share one weight and parameter bank", _DW,
       ("bank.eq(nb), rs.eq(c.r * c.s),", "bank.eq(0), rs.eq(c.r * c.s),")),
    _m("dw_clamp_missing", "the activation clamp is not applied", _DW,
       ("Mux(q < lo, lo, Mux(q > hi, hi, q))", "q")),
    _m("dw_bias_dropped", "PE 0 starts from zero, not the bias", _DW,
       ("start = bias[lane] if psum_prev is None else psum_prev[lane]",
        "start = 0 if psum_prev is None else psum_prev[lane]")),
    _m("dw_ignores_ready", "the sweep and the column advance whatever o.ready says", _DW,
       ("m.d.comb += adv.eq(rq.i.ready)", "m.d.comb += adv.eq(1)")),
)

_IM2COL = "rtl/conv/im2col.py"
_DENSE = "rtl/conv/dense.py"
CONV_DENSE_MUTANTS = (
    _m("conv_address_off_by_one", "every row reads the word after its pixel's", _IM2COL,
       ("return (addr - g.pad_off)[", "return (addr - g.pad_off + 1)[")),
    _m("conv_right_edge_not_padding", "the column right of the map reads the buffer",
       _IM2COL, ("(x >= g.pl) & (x < g.x_end)", "(x >= g.pl) & (x <= g.x_end)")),
    _m("conv_top_edge_not_padding", "the first map row counts as padding", _IM2COL,
       ("(y >= g.pt) & (y < g.y_end)", "(y > g.pt) & (y < g.y_end)")),
    _m("conv_column_stride_ignored", "the x coordinate steps 1 whatever the stride",
       _IM2COL, ("x.eq(x + 1 + g.sw2)", "x.eq(x + 1)")),
    _m("conv_row_stride_ignored", "the y coordinate steps 1 whatever the stride",
       _IM2COL, ("y.eq(y + 1 + g.sh2)", "y.eq(y + 1)")),
    _m("conv_kernel_row_contiguous", "the next kernel row starts after the last tap",
       _IM2COL, ("start_step(ti + 1, 0, 0, tap_row + g.wcb,\n"
                 "                                              tap_row + g.wcb)",
                 "start_step(ti + 1, 0, 0, tap_row + g.wcb,\n"
                 "                                              tap_addr + 1)")),
    _m("conv_channel_blocks_ignored", "an output column steps one pixel of one word",
       _DENSE, ("g.swcb.eq(Mux(sw2, cb << 1, cb))", "g.swcb.eq(Mux(sw2, 2, 1))")),
    _m("conv_zero_bit_ignored", "a padding row feeds the word it addressed, not zeros",
       "rtl/gemm/ws_core.py", ("array.a.data.eq(Mux(a_ctl.output.zero, 0, self.a_rd.data))",
                               "array.a.data.eq(self.a_rd.data)")),
    _m("conv_padding_waits", "a padding row waits for the word it addressed",
       "rtl/gemm/ws_core.py", ("row_ok = ((a_zero | a_in)", "row_ok = ((a_in)")),
    _m("conv_clamp_missing", "the activation clamp is not applied", _DENSE,
       ("Mux(q < lo, lo, Mux(q > hi, hi, q))", "q")),
    _m("conv_clamp_swapped", "the clamp queue holds (hi, lo)", _DENSE,
       ("clamps.w_data.eq(Cat(cmd.lo, cmd.hi))", "clamps.w_data.eq(Cat(cmd.hi, cmd.lo))")),
    _m("conv_clamp_of_next_call", "a call's bounds leave the queue one beat early", _DENSE,
       ("m.d.sync += last_out.eq(core.drained.valid)",
        "m.d.sync += last_out.eq(core.drained.valid | (core.o.valid & ~last_out))")),
)

UNITS = {
    "requant": Unit(
        suites={"amaranth": ("tests/rtl/test_requant.py",),
                "cocotb": ("tests/cocotb/test_runners.py", "-k", "test_requant")},
        mutants=REQUANT_MUTANTS,
    ),
    "gemm": Unit(
        suites={"amaranth": ("tests/rtl/test_pe.py", "tests/rtl/test_systolic.py",
                             "tests/rtl/test_gemm_model.py", "tests/rtl/test_gemm.py"),
                "cocotb": ("tests/cocotb/test_runners.py", "-k", "test_gemm and not counts")},
        mutants=GEMM_MUTANTS,
    ),
    "softmax": _vector_unit("softmax", SOFTMAX_MUTANTS, ("tests/rtl/test_softmax.py",)),
    "layernorm": _vector_unit("layernorm", LAYERNORM_MUTANTS, ("tests/rtl/test_layernorm.py",)),
    "gelu": _vector_unit("gelu", GELU_MUTANTS, ("tests/rtl/test_gelu.py",)),
    "add": _vector_unit("add", ADD_MUTANTS, ("tests/rtl/test_add.py",)),
    "pool": Unit(suites={"amaranth": ("tests/rtl/test_pool.py",),
                         "cocotb": ("tests/cocotb/test_runners.py", "-k",
                                    "test_pool_unit and icarus")},
                 mutants=POOL_MUTANTS),

    "conv": Unit(
        suites={"amaranth": ("tests/rtl/test_conv.py",),
                "cocotb": ("tests/cocotb/test_runners.py", "-k",
                           "test_conv and not full and not dense")},
        mutants=CONV_MUTANTS,
    ),
    "conv_dense": Unit(
        suites={"amaranth": ("tests/rtl/test_conv_dense.py",),
                "cocotb": ("tests/cocotb/test_runners.py", "-k", "test_conv_dense and icarus")},
        mutants=CONV_DENSE_MUTANTS,
    ),
}

#: Installed first in every Python of the copy: maps the edgetron packages to the copy
#: (the editable install of the real tree would otherwise answer for them).
_SITECUSTOMIZE = '''
import importlib.util, os, sys
_root = os.environ["EDGETRON_MUTANT_ROOT"]
_map = {"edgetron": "edgetron", "edgetron.golden": "golden", "edgetron.sim": "sim",
        "edgetron.rtl": "rtl"}

class _CopyFinder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in _map:
            folder = os.path.join(_root, _map[name])
            return importlib.util.spec_from_file_location(
                name, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder])
        return None

sys.meta_path.insert(0, _CopyFinder)
'''


def _copy_tree(dest: Path) -> None:
    """Tracked and untracked (not ignored) files of the working tree into ``dest``."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, names):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def _env(copy: Path, shim: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(EDGETRON_MUTANT_ROOT=str(copy), PYTHONPATH=str(shim),
               EDGETRON_BUILD_DIR=str(copy / "build"), PYTHONDONTWRITEBYTECODE="1")
    env.pop("EDGETRON_TB_FILTER", None)
    return env


def _run_suite(copy: Path, env: dict[str, str], args: tuple[str, ...], workers: int):
    """Run one suite in the copy: ``("pass" | "caught" | "error" | "timeout", detail, s)``."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly",
           "-p", "no:cacheprovider", *(["-n", str(workers)] if workers > 1 else []), *args]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True,
                              timeout=SUITE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return "timeout", f"no result within {SUITE_TIMEOUT} s", time.perf_counter() - t0
    seconds = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    if proc.returncode == 0:
        return "pass", "", seconds
    failed = re.findall(r"^FAILED (\S+)", out, re.M)
    # pytest exits 1 on failures, 2 when xdist stops the session at the first one.
    if proc.returncode in (1, 2) and failed:
        detail = failed[0].split("::", 1)[-1]
        inner = re.search(r"(tb_\w+\.\S+) failed", out)     # a cocotb test that failed
        return "caught", f"{detail} {inner.group(1)}" if inner else detail, seconds
    return "error", out.strip().splitlines()[-1] if out.strip() else f"rc {proc.returncode}", \
        seconds


def _check_copy_imports(copy: Path, env: dict[str, str]) -> None:
    code = ("import edgetron, edgetron.golden, edgetron.sim, edgetron.rtl.gemm as g; "
            "print('\\n'.join(m.__file__ for m in (edgetron, edgetron.golden, edgetron.sim, g)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=copy, env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    outside = [f for f in out if not Path(f).resolve().is_relative_to(copy.resolve())]
    if outside:
        raise SystemExit(f"the copy imports modules of another tree: {outside}")


class StaleMutant(ValueError):
    """A mutant's edit does not match its file exactly once (the source changed)."""


def mutate(text: str, mutant: Mutant) -> str:
    """``text`` (the contents of ``mutant.path``) with the mutant's edits applied in turn.

    Raises
    ------
    StaleMutant
        An edit's ``old`` text does not occur exactly once (after the earlier edits), or an
        edit changes nothing.
    """
    for old, new in mutant.edits:
        count = text.count(old)
        if count != 1 or old == new:
            raise StaleMutant(f"mutant {mutant.name}: {mutant.path} has {count} occurrences of "
                              f"{old!r}{' (an edit that changes nothing)' if old == new else ''}"
                              " (the source changed: update the mutant)")
        text = text.replace(old, new)
    return text


def _apply(copy: Path, mutant: Mutant) -> str:
    """Apply ``mutant`` to the copy (checked not stale before any suite ran); return the
    original text of its file."""
    path = copy / mutant.path
    original = path.read_text(encoding="utf-8")
    path.write_text(mutate(original, mutant), encoding="utf-8")
    return original


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unit", choices=sorted(UNITS), action="append",
                        help="unit(s) to mutate (default: all)")
    parser.add_argument("--mutant", action="append", help="only these mutant names")
    parser.add_argument("--suite", action="append", help="only these suites")
    parser.add_argument("--workers", type=int, default=2,
                        help="pytest-xdist workers for the amaranth suites (default 2; the "
                             "cocotb suites always run one build at a time)")
    args = parser.parse_args(argv)
    units = args.unit or list(UNITS)
    rates: dict[tuple[str, str], list[bool]] = {}
    survivors, tried = [], 0
    with tempfile.TemporaryDirectory(prefix="edgetron-mutants-") as tmp:
        copy, shim = Path(tmp) / "tree", Path(tmp) / "shim"
        shim.mkdir()
        (shim / "sitecustomize.py").write_text(_SITECUSTOMIZE, encoding="utf-8")
        copy.mkdir()
        _copy_tree(copy)
        env = _env(copy, shim)
        _check_copy_imports(copy, env)
        for unit_name in units:     # every edit matches before any suite runs
            for mutant in UNITS[unit_name].mutants:
                try:
                    mutate((copy / mutant.path).read_text(encoding="utf-8"), mutant)
                except StaleMutant as exc:
                    raise SystemExit(str(exc)) from None
        for unit_name in units:
            unit = UNITS[unit_name]
            suites = {k: v for k, v in unit.suites.items() if not args.suite or k in args.suite}
            mutants = [m for m in unit.mutants if not args.mutant or m.name in args.mutant]
            for suite, suite_args in suites.items():
                workers = args.workers if suite == "amaranth" else 1
                status, detail, seconds = _run_suite(copy, env, suite_args, workers)
                print(f"[{unit_name}] baseline {suite}: {status} ({seconds:.0f} s) {detail}",
                      flush=True)
                if status != "pass":
                    raise SystemExit(f"{unit_name}: the {suite} suite fails without a mutant")
            for mutant in mutants:
                tried += 1
                original = _apply(copy, mutant)
                try:
                    caught_by = []
                    for suite, suite_args in suites.items():
                        workers = args.workers if suite == "amaranth" else 1
                        status, detail, seconds = _run_suite(copy, env, suite_args, workers)
                        caught = status in ("caught", "timeout")
                        rates.setdefault((unit_name, suite), []).append(caught)
                        if caught:
                            caught_by.append(suite)
                        print(f"[{unit_name}] {mutant.name:<30} {suite:<9} {status:<8} "
                              f"{seconds:6.0f} s  {detail}", flush=True)
                    if not caught_by:
                        survivors.append(f"{unit_name}.{mutant.name}")
                finally:
                    (copy / mutant.path).write_text(original, encoding="utf-8")
    print()
    for (unit_name, suite), caught in rates.items():
        print(f"mutants_caught_{unit_name}_{suite}: {sum(caught)} of {len(caught)}")
        print(f"catch_rate_{unit_name}_{suite}: {100.0 * sum(caught) / len(caught):.1f} %")
    print(f"mutants_tried: {tried} mutants")
    print(f"mutants_survived: {len(survivors)} mutants")
    for name in survivors:
        print(f"  survived: {name}")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
