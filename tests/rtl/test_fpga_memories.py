"""rtl/fpga/memories.py: the read ports of the memories the RTL marks get an undefined
read-write collision, the others keep theirs; Yosys then maps the read onto the block RAM
alone."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, Signal
from amaranth.lib import memory

from edgetron.commands.fpga import apply_overrides
from edgetron.config import PRESETS
from edgetron.rtl.common import COLLISION_ATTR
from edgetron.rtl.export import build_unit
from edgetron.rtl.fpga.memories import collision_unused
from edgetron.rtl.fpga.tools import YOSYS, tool_command

_MASK = re.compile(r"COLLISION_X_MASK (\d+)'([01]+)")


def _toy(marked: bool, width: int = 32) -> str:
    """Two memories written and read every cycle at independent addresses; the read of
    ``a`` is registered. ``a`` carries the attribute when ``marked``, ``b`` never."""
    m = Module()
    attrs = {COLLISION_ATTR: "unused"} if marked else None
    m.submodules.a = a = memory.Memory(shape=width, depth=512, init=[], attrs=attrs)
    m.submodules.b = b = memory.Memory(shape=8, depth=16, init=[])
    wa, ra = a.write_port(), a.read_port()
    wb, rb = b.write_port(), b.read_port()
    wr, rd, data = Signal(9), Signal(9), Signal(width)
    q, out = Signal(width), Signal(width + 8)
    m.d.sync += q.eq(ra.data)
    m.d.comb += [wa.addr.eq(wr), wa.data.eq(data), wa.en.eq(1), ra.addr.eq(rd),
                 wb.addr.eq(wr), wb.data.eq(data), wb.en.eq(1), rb.addr.eq(rd),
                 out.eq(q + rb.data)]
    return rtlil.convert(m, ports=[wr, rd, data, out])


def test_only_the_marked_memory_reads_change():
    text, changed = collision_unused(_toy(True))
    assert changed == ["top.a"]
    masks = _MASK.findall(text)
    assert masks == [("1", "1"), ("1", "0")]          # a's read port, then b's
    # Nothing else differs.
    assert _MASK.sub("", text) == _MASK.sub("", _toy(True))


def test_unmarked_design_is_unchanged():
    text = _toy(False)
    assert collision_unused(text) == (text, [])


def _synth_cells(tmp_path, text: str) -> dict[str, int]:
    (tmp_path / "toy.il").write_text(text)
    subprocess.run([*tool_command(*YOSYS), "-q", "-p",
                    "read_rtlil toy.il; synth_ecp5 -top top; tee -q -o toy.json stat -json"],
                   cwd=tmp_path, check=True, capture_output=True)
    stat = json.loads((tmp_path / "toy.json").read_text())
    return stat["design"]["num_cells_by_type"]


def test_yosys_maps_the_marked_read_onto_the_block_alone(tmp_path):
    """Without the mark Yosys emulates the collision with logic after the DP16KD (the
    written word, registered, and a multiplexer per data bit); with it, the 32-bit read
    is the block and its 32 output flip-flops."""
    plain = _synth_cells(tmp_path, _toy(True))
    marked = _synth_cells(tmp_path, collision_unused(_toy(True))[0])
    assert plain["DP16KD"] == marked["DP16KD"] == 1
    assert plain["TRELLIS_FF"] >= marked["TRELLIS_FF"] + 32
    assert plain.get("LUT4", 0) >= marked.get("LUT4", 0) + 32


@pytest.mark.parametrize("rows, acc_marked", [(2, False), (3, False), (4, True)])
def test_gemm_marks_its_operand_buffers_and_the_accumulators_when_no_read_bypasses(
        rows, acc_marked):
    """The A and W buffers always; the accumulator buffer only on arrays of more rows
    than its read is ahead (ws_core.ACC_READ_AHEAD), where the read is not transparent."""
    cfg = apply_overrides(PRESETS["edge-8"], [f"rows={rows}", "cols=2",
                                              "ifmap_sram_bytes=1024",
                                              "weight_sram_bytes=1024",
                                              "ofmap_sram_bytes=1024"])
    text, changed = collision_unused(build_unit("gemm", cfg).rtlil_text)
    names = {c.rsplit(".", 1)[1] for c in changed}
    assert {"a_mem", "w_mem"} <= names
    assert ("acc_mem" in names) == acc_marked
    assert "p_mem" not in names and "storage" not in names
    assert ("TRANSPARENCY_MASK 1'1" in text) == (not acc_marked)
