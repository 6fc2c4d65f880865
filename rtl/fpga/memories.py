"""Block-RAM reads that never use a word read in the cycle it is written.

Amaranth writes every synchronous read port with ``COLLISION_X_MASK = 0``: a read of
the word a port writes in the same cycle must return the old data. The ECP5 DP16KD
cannot promise that across its two ports, so Yosys's ``memory_libmap`` emulates it with
logic after the block: the written word and a comparison of the addresses, registered,
and a multiplexer on every data bit, between the block RAM's (slow) output and the
register that takes it.

The RTL knows when no read uses such a word (e.g. the GEMM unit's operand buffers: a
beat is read no earlier than the cycle after it is written, and a read of any other
word is discarded); it marks those memories with the attribute
:data:`edgetron.rtl.common.COLLISION_ATTR` ``= "unused"``. :func:`collision_unused` sets
``COLLISION_X_MASK`` to ones on the read ports of the marked memories in the RTLIL the
flow synthesises (the exported RTLIL is not changed): the collision's result is then
undefined, which is the promise the RTL makes, and Yosys maps the read onto the block
alone.
"""

from __future__ import annotations

import itertools
import re

from edgetron.rtl.common import COLLISION_ATTR

__all__ = ["collision_unused"]

_MODULE = re.compile(r"^module (\S+)$", re.M)
_CELL = re.compile(r"^(  cell \$memrd_v2 \S+\n)(.*?)^  end$", re.M | re.S)
_MEMID = re.compile(r'^    parameter \\MEMID "\\\\(\S+)"$', re.M)
_MASK = re.compile(r"^(    parameter \\COLLISION_X_MASK )(\d+)'([01]+)$", re.M)


def _marked(module: str) -> set[str]:
    """Names of the memories of one RTLIL module that carry the attribute."""
    names, attrs = set(), []
    for line in module.splitlines():
        if line.startswith("  attribute "):
            attrs.append(line)
        elif line.startswith("  memory "):
            if f'  attribute \\{COLLISION_ATTR} "unused"' in attrs:
                names.add(line.split()[-1].lstrip("\\"))
            attrs = []
        else:
            attrs = []
    return names


def collision_unused(rtlil: str) -> tuple[str, list[str]]:
    """``rtlil`` with ``COLLISION_X_MASK`` set to ones on every read port of a memory
    marked ``COLLISION_ATTR = "unused"``; also returns those memories
    (``module.memory``)."""
    starts = [m.start() for m in _MODULE.finditer(rtlil)] + [len(rtlil)]
    pieces, changed = [rtlil[:starts[0]]], []
    for lo, hi in itertools.pairwise(starts):
        module = rtlil[lo:hi]
        name = _MODULE.match(module).group(1).lstrip("\\")
        marked = _marked(module)

        def rewrite(cell: re.Match, marked=marked, name=name) -> str:
            memid = _MEMID.search(cell.group(2))
            if memid is None or memid.group(1) not in marked:
                return cell.group(0)
            if f"{name}.{memid.group(1)}" not in changed:
                changed.append(f"{name}.{memid.group(1)}")
            return _MASK.sub(lambda p: f"{p.group(1)}{p.group(2)}'{'1' * int(p.group(2))}",
                             cell.group(0))

        pieces.append(_CELL.sub(rewrite, module) if marked else module)
    return "".join(pieces), changed
