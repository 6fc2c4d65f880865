"""SCALE-Sim topology CSVs: import both forms as traces, export traces back.

SCALE-Sim (scalesim-project/scale-sim-v2, v3) describes a workload as one CSV row per
layer, in one of two forms:

* conv form, header ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter
  Width, Channels, Num Filter, Strides,`` and rows of 7 integers after the name, or 8
  with separate stride height and width (SCALE-Sim v2). SCALE-Sim reads a row's values
  by position whatever the header says, so every column of the header must name the
  column read at its position (case, spaces, ``_``, ``-`` and a plural ``s`` aside; a
  header in another order, or naming a batch size or SCALE-Sim v3's sparsity where a
  stride goes, is refused rather than misread). Padding is already folded into the
  IFMAP size.
  SCALE-Sim's output size is ``ceil((ifmap - filter + stride) / stride)``: when
  ``ifmap - filter`` is not a multiple of the stride it computes one more, partial
  window whose reads past the IFMAP it treats as padding. A layer whose name contains
  ``DP`` is depthwise: SCALE-Sim runs it as ``Channels`` separate one-channel layers of
  ``Num Filter`` filters each.
* GEMM form, header ``Layer, M, N, K,``: the product of an ``M x K`` activation
  matrix (SCALE-Sim's IFMAP operand) with a ``K x N`` weight matrix (its filter
  operand), ``M * N * K`` MACs. SCALE-Sim's loader turns a row into the conv layer
  ``IFMAP M x K, filter 1 x K, 1 channel, N filters, stride 1`` (output ``M x 1 x N``).
  Note the column order: N comes before K (a header in another order is refused).

Quirks handled on import: lines end in LF, CRLF or a lone CR (SCALE-Sim's universal
newlines); the first non-blank line is a header (SCALE-Sim always skips line 1); rows
end with a trailing comma (SCALE-Sim drops the last comma-separated field, so a row
without one loses its last value there; here it is read either way); blank lines are
skipped; text after ``#`` is a comment (SCALE-Sim's own files annotate
depthwise rows with ``#dw`` after the trailing comma); names are stripped of spaces and
tabs. Every value must be a positive decimal integer; an error names the file, the line
and the column (the columns, for a tensor too large).

Import makes one op per row, fed by external data (``inputs = ["input"]``: the CSV has
no dependencies): a conv row becomes a ``conv2d`` (``dwconv2d`` with ``k = Channels *
Num Filter`` for ``DP`` rows) whose bottom and right padding is SCALE-Sim's implicit
padding of the partial window, so that output size and MACs are SCALE-Sim's; a GEMM row,
and a conv row of exactly SCALE-Sim's GEMM shape (filter height 1, filter width = IFMAP
width, 1 channel, stride 1), becomes a ``gemm`` with weights. Widths are the int8
defaults.

Export (conv form by default, GEMM form on request) writes one row per matrix product
SCALE-Sim can run; it is lossy, as ``docs/trace-format.md`` lists: vector and memory
ops (softmax, GELU, layernorm, add, pools, concat) are dropped; widths, biases,
requantization and dependencies are dropped; padding is folded into the IFMAP size,
which is chosen so that SCALE-Sim derives the op's output size; SCALE-Sim has no batch
or head dimension, so weight GEMMs fold the batch into M, convolutions are repeated per
sample, and products of two activations (attention) become one row per sample and head
whose second operand SCALE-Sim treats as a filter. The format has no repeat count, so a
trace that unrolls into more than :data:`~.trace.MAX_OPS` rows (the import limit) is
refused, naming the op that crosses it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from edgetron.errors import ScaleSimError, TraceError
from edgetron.workload.trace.graph import Trace
from edgetron.workload.trace.jsonio import read_user_text
from edgetron.workload.trace.limits import (
    MAX_DIM,
    MAX_ELEMENTS,
    MAX_FILE_BYTES,
    MAX_OPS,
    brief,
    check_int,
    check_name,
    op_label,
)
from edgetron.workload.trace.matrix import Conv2d, DwConv2d, Gemm
from edgetron.workload.trace.op import Op

__all__ = [
    "CONV_COLUMNS",
    "CONV_HEADER",
    "CONV_HEADER_2STRIDES",
    "GEMM_COLUMNS",
    "GEMM_HEADER",
    "ScaleSimError",
    "parse_scalesim",
    "read_scalesim",
    "to_scalesim",
    "write_scalesim",
]

#: Column names of the conv form (the last is the optional stride width).
CONV_COLUMNS = (
    "Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width",
    "Channels", "Num Filter", "Strides", "Stride Width",
)
#: Column names of the GEMM form.
GEMM_COLUMNS = ("Layer", "M", "N", "K")
#: Header line written for the conv form (SCALE-Sim's own spelling).
CONV_HEADER = ", ".join(CONV_COLUMNS[:8]) + ","
#: Header line written for the conv form when some layer has unequal strides.
CONV_HEADER_2STRIDES = ", ".join((*CONV_COLUMNS[:7], "Stride Height", "Stride Width")) + ","
#: Header line written for the GEMM form.
GEMM_HEADER = ", ".join(GEMM_COLUMNS) + ","

_INT = re.compile(r"[0-9]+")
_UNSAFE = re.compile(r"[,#\x00-\x1f\x7f]")


# ------------------------------------------------------------------------------------------
# Import
# ------------------------------------------------------------------------------------------
def _fields(line: str) -> list[str]:
    """Comma-separated fields of a line, comment removed, trailing empty fields dropped."""
    fields = [f.strip() for f in line.split("#", 1)[0].split(",")]
    while fields and fields[-1] == "":
        fields.pop()
    return fields


def _lines(text: str) -> Iterator[tuple[int, list[str]]]:
    """Numbered rows with fields; lines end in LF, CRLF or a lone CR.

    SCALE-Sim opens topology files in Python's universal-newlines mode, which accepts
    all three.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for number, line in enumerate(text.split("\n"), start=1):
        fields = _fields(line)
        if fields:
            yield number, fields


def _column_key(name: str) -> str:
    """A header column name as compared: case, spaces, ``_``, ``-`` and a final ``s`` ignored."""
    return re.sub(r"[\s_-]+", "", name.lower()).removesuffix("s")


#: The names each conv-form column may have (as :func:`_column_key` gives them).
_CONV_KEYS = (
    ("layer", "layername"), ("ifmapheight",), ("ifmapwidth",), ("filterheight",),
    ("filterwidth",), ("channel",), ("numfilter",), ("stride", "strideheight"),
    ("stridewidth",),
)
#: The names each GEMM-form column may have.
_GEMM_KEYS = (("layer", "layername"), ("m",), ("n",), ("k",))


def _form_of(header: list[str], where: str) -> str:
    """``conv`` or ``gemm``: the form whose columns the header names, every one checked."""
    keys = [_column_key(h) for h in header]
    if len(keys) >= 4 and sorted(keys[1:4]) == ["k", "m", "n"]:
        _check_header(header, where, "GEMM", GEMM_COLUMNS, _GEMM_KEYS, (4,))
        return "gemm"
    if any(k.startswith(("ifmap", "filter")) for k in keys[1:]):
        if keys[1:3] == ["ifmapwidth", "ifmapwidth"]:
            # SCALE-Sim's own DeepBench and MLPerf topologies name column 2 "IFMAP Width"
            # too; SCALE-Sim reads it as the height, as it reads every column by position.
            keys[1] = "ifmapheight"
        _check_header(header, where, "conv", CONV_COLUMNS, _CONV_KEYS, (8, 9), keys)
        return "conv"
    if len(header) > 1 and _INT.fullmatch(header[1]):
        raise ScaleSimError(
            f"{where}: expected a header line (SCALE-Sim skips the first line), "
            f"got a data row"
        )
    raise ScaleSimError(
        f"{where}: header not recognised; expected {CONV_HEADER!r} (conv form) or "
        f"{GEMM_HEADER!r} (GEMM form)"
    )


def _check_header(header: list[str], where: str, form: str, columns: tuple[str, ...],
                  accepted: tuple[tuple[str, ...], ...], counts: tuple[int, ...],
                  keys: list[str] | None = None) -> None:
    """Every column of ``header`` names the column SCALE-Sim reads at its position.

    SCALE-Sim ignores the header and reads a row's values by position; a header whose
    columns are in another order, or that names something else (a batch size, SCALE-Sim
    v3's sparsity) where a stride goes, describes rows that would be misread silently.
    """
    order = ", ".join(columns[:counts[0]])
    if len(counts) > 1:
        order += "".join(f"[, {c}]" for c in columns[counts[0]:counts[-1]])
    if len(header) not in counts:
        expected = " or ".join(map(str, counts))
        raise ScaleSimError(
            f"{where}: the {form}-form header has {len(header)} columns; expected {expected}: "
            f"{order}"
        )
    keys = keys or [_column_key(h) for h in header]
    for i, (key, name) in enumerate(zip(keys, header, strict=True)):
        if key not in accepted[i]:
            raise ScaleSimError(
                f"{where}: column {i + 1}: {brief(name)} is not {columns[i]}; SCALE-Sim reads "
                f"the {form} form's columns by position, in the order {order}"
            )


def _positive(value: str, column: str, where: str) -> int:
    """A CSV cell as an integer in ``[1, MAX_DIM]``; its digits counted before converting."""
    if not _INT.fullmatch(value):
        raise ScaleSimError(
            f"{where}: {column}: expected a positive integer, got {brief(value)}"
        )
    digits = value.lstrip("0") or "0"
    # A cell of more digits than MAX_DIM has is out of range: say so without converting it
    # (Python refuses to convert more than 4300 digits).
    shown = digits if len(digits) <= len(str(MAX_DIM)) else f"an integer of {len(digits)} digits"
    if len(digits) > len(str(MAX_DIM)) or not 1 <= int(digits) <= MAX_DIM:
        raise ScaleSimError(f"{where}: {column}: {shown} is out of range; allowed [1, {MAX_DIM}]")
    return int(digits)


def _layer_name(value: str, column: str, where: str) -> str:
    """``value`` checked as a layer name (printable, at most :data:`~.trace.MAX_NAME`)."""
    try:
        return check_name(value, column)
    except TraceError as exc:
        raise ScaleSimError(f"{where}: {exc}") from None


def _check_sizes(where: str, batch: int, tensors: tuple[tuple[str, int, bool], ...]) -> None:
    """Each ``(columns, elements, per_sample)`` tensor of a row within :data:`MAX_ELEMENTS`.

    ``per_sample`` tensors (activations) are counted for the whole ``batch``; the
    message names the CSV columns whose product is too large.
    """
    for columns, elements, per_sample in tensors:
        total = elements * batch if per_sample else elements
        if total > MAX_ELEMENTS:
            at = f" at batch {batch}" if per_sample and batch > 1 else ""
            raise ScaleSimError(
                f"{where}: {columns}: {total} elements{at} exceed the limit of "
                f"{MAX_ELEMENTS} per tensor"
            )


def _conv_row(fields: list[str], batch: int, where: str) -> Op:
    if len(fields) not in (8, 9):
        raise ScaleSimError(
            f"{where}: expected 8 fields ({', '.join(CONV_COLUMNS[:8])}) or 9 (with "
            f"{CONV_COLUMNS[8]}), got {len(fields)}"
        )
    name = _layer_name(fields[0], CONV_COLUMNS[0], where)
    h, w, r, s, c, nf, sh = (
        _positive(v, col, where) for v, col in zip(fields[1:8], CONV_COLUMNS[1:8], strict=True)
    )
    sw = _positive(fields[8], CONV_COLUMNS[8], where) if len(fields) == 9 else sh
    # SCALE-Sim's partial last window reads padding past the IFMAP's bottom/right edge.
    pads = {"pad_bottom": -(h - r) % sh, "pad_right": -(w - s) % sw}
    if r > h:
        raise ScaleSimError(
            f"{where}: {CONV_COLUMNS[3]}: {r} exceeds {CONV_COLUMNS[1]} {h} (SCALE-Sim folds "
            "padding into the IFMAP size)"
        )
    if s > w:
        raise ScaleSimError(
            f"{where}: {CONV_COLUMNS[4]}: {s} exceeds {CONV_COLUMNS[2]} {w} (SCALE-Sim folds "
            "padding into the IFMAP size)"
        )
    depthwise = "DP" in name
    k = c * nf if depthwise else nf
    if k > MAX_DIM:
        raise ScaleSimError(
            f"{where}: {CONV_COLUMNS[5]} x {CONV_COLUMNS[6]}: the {k} output channels of a "
            f"depthwise layer exceed {MAX_DIM}"
        )
    out_h, out_w = -(-(h - r) // sh) + 1, -(-(w - s) // sw) + 1
    _check_sizes(where, batch, (
        (f"{CONV_COLUMNS[1]} x {CONV_COLUMNS[2]} x {CONV_COLUMNS[5]}", h * w * c, True),
        (f"{CONV_COLUMNS[3]} x {CONV_COLUMNS[4]} x {CONV_COLUMNS[5]} x {CONV_COLUMNS[6]}",
         r * s * c * nf, False),
        (f"the output ({out_h} x {out_w} x {k} from the IFMAP size, filter, strides and "
         f"{CONV_COLUMNS[6]})", out_h * out_w * k, True),
    ))
    if depthwise:
        return DwConv2d(
            name=name, inputs=("input",), n=batch, h=h, w=w, c=c, k=k, r=r, s=s,
            stride_h=sh, stride_w=sw, **pads,
        )
    if r == 1 and s == w and c == 1 and sh == sw == 1:
        return Gemm(name=name, inputs=("input",), batch=batch, m=h, k=w, n=nf,
                    weights=True, requant="channel")
    return Conv2d(
        name=name, inputs=("input",), n=batch, h=h, w=w, c=c, k=k, r=r, s=s,
        stride_h=sh, stride_w=sw, **pads,
    )


def _gemm_row(fields: list[str], batch: int, where: str) -> Op:
    if len(fields) != 4:
        raise ScaleSimError(
            f"{where}: expected 4 fields ({', '.join(GEMM_COLUMNS)}), got {len(fields)}"
        )
    name = _layer_name(fields[0], GEMM_COLUMNS[0], where)
    m, n, k = (
        _positive(v, col, where) for v, col in zip(fields[1:], GEMM_COLUMNS[1:], strict=True)
    )
    _check_sizes(where, batch, (("M x K", m * k, True), ("K x N", k * n, False),
                                ("M x N", m * n, True)))
    return Gemm(name=name, inputs=("input",), batch=batch, m=m, k=k, n=n, weights=True,
                requant="channel")


def parse_scalesim(text: str, *, name: str = "scalesim", batch: int = 1,
                   source: str = "<csv>") -> Trace:
    """A trace from the text of a SCALE-Sim topology CSV (either form, told by its header).

    Parameters
    ----------
    text : str
        The CSV text.
    name : str
        Trace name.
    batch : int
        Samples; SCALE-Sim layers are per sample, so each op gets this batch.
    source : str
        Name used in error messages (the file path).

    Raises
    ------
    ScaleSimError
        Naming ``source``, the line and the column of the first problem.
    """
    try:
        check_int(batch, "batch")
    except TraceError as exc:
        raise ScaleSimError(f"{source}: {exc}") from None
    rows = _lines(text)
    first = next(rows, None)
    if first is None:
        raise ScaleSimError(f"{source}: empty file; expected a header line and layer rows")
    number, header = first
    form = _form_of(header, f"{source}:{number}")
    parse = _gemm_row if form == "gemm" else _conv_row
    ops: list[Op] = []
    for number, fields in rows:
        if len(ops) == MAX_OPS:
            raise ScaleSimError(f"{source}:{number}: more than {MAX_OPS} layers")
        ops.append(parse(fields, batch, f"{source}:{number}"))
    if not ops:
        raise ScaleSimError(f"{source}: no layer rows after the header")
    try:
        return Trace(name=name, batch=batch, ops=tuple(ops),
                     description=f"imported from SCALE-Sim {form}-form topology {source}")
    except TraceError as exc:
        raise ScaleSimError(f"{source}: {exc}") from None


def read_scalesim(path: str | Path, *, batch: int = 1, name: str | None = None) -> Trace:
    """Read a SCALE-Sim topology CSV file (name defaults to the file stem).

    Raises
    ------
    ScaleSimError
        If the file is too large, not UTF-8, or malformed (naming line and column).
    OSError
        If it cannot be read.
    """
    path = Path(path)
    # utf-8-sig: a byte-order mark, which spreadsheet programs write, is dropped.
    text = read_user_text(path, limit=MAX_FILE_BYTES, encoding="utf-8-sig", error=ScaleSimError)
    return parse_scalesim(text, name=name or path.stem, batch=batch, source=str(path))


# ------------------------------------------------------------------------------------------
# Export
# ------------------------------------------------------------------------------------------
def _safe(name: str, depthwise: bool | None) -> str:
    """A layer name SCALE-Sim reads back unchanged and interprets as intended.

    ``depthwise`` None (GEMM form) leaves ``DP`` alone; in the conv form a depthwise
    layer's name must contain ``DP`` and any other layer's must not.
    """
    name = _UNSAFE.sub("_", name).strip() or "layer"
    if depthwise is None:
        return name
    if depthwise:
        return name if "DP" in name else name + "_DP"
    return name.replace("DP", "Dp")


def _ifmap_extent(leading: int, kernel: int, stride: int, out: int) -> int:
    """The IFMAP size from which SCALE-Sim derives ``out`` windows, nearest to ``leading``.

    SCALE-Sim's output is ``ceil((X - kernel) / stride) + 1``, which equals ``out`` for
    ``X`` in ``[hi - stride + 1, hi]`` with ``hi = (out - 1) * stride + kernel`` (only
    ``X = kernel`` when ``out`` is 1). ``leading`` is the input plus its leading padding:
    trailing padding SCALE-Sim supplies itself, and rows no window reads are cut.
    """
    hi = (out - 1) * stride + kernel
    lo = hi - stride + 1 if out > 1 else hi
    return min(max(leading, lo), hi)


def _suffixes(batch: int, count: int) -> Iterator[str]:
    for b in range(batch):
        for j in range(count):
            yield (f".b{b}" if batch > 1 else "") + (f".h{j}" if count > 1 else "")


def _conv_rows(op: Op) -> Iterator[tuple]:
    """Conv-form rows (name, ifmap h, ifmap w, filter h, filter w, channels, filters, sh, sw).

    Generated lazily: an op may unroll into more rows than :func:`to_scalesim` accepts.
    """
    if isinstance(op, Gemm):
        if op.weights:
            # Weights shared by the batch: fold it into M (SCALE-Sim's own GEMM mapping).
            names = (op.name + s for s in _suffixes(1, op.count))
            m = op.batch * op.m
        else:
            names = (op.name + s for s in _suffixes(op.batch, op.count))
            m = op.m
        for nm in names:
            yield (_safe(nm, False), m, op.k, 1, op.k, 1, op.n, 1, 1)
    elif isinstance(op, (Conv2d, DwConv2d)):
        dw = isinstance(op, DwConv2d)
        groups = 1 if dw else op.groups
        h = _ifmap_extent(op.h + op.pad_top, op.r, op.stride_h, op.out_h)
        w = _ifmap_extent(op.w + op.pad_left, op.s, op.stride_w, op.out_w)
        c, k = (op.c, op.multiplier) if dw else (op.c // groups, op.k // groups)
        for nm in (op.name + s for s in _suffixes(op.n, 1)):
            for g in range(groups):
                label = f"{nm}.g{g}" if groups > 1 else nm
                yield (_safe(label, dw), h, w, op.r, op.s, c, k, op.stride_h, op.stride_w)


def _gemm_rows(op: Op) -> Iterator[tuple]:
    """GEMM-form rows (name, M, N, K), one per independent matrix product (lazily)."""
    shape = op.gemm
    if shape is None:
        return
    if isinstance(op, Gemm) and not op.weights:
        names = (op.name + s for s in _suffixes(op.batch, op.count))
    else:
        label = ".g" if isinstance(op, (Conv2d, DwConv2d)) else ".h"
        names = (op.name + (f"{label}{j}" if shape.count > 1 else "")
                 for j in range(shape.count))
    for nm in names:
        yield (_safe(nm, None), shape.m, shape.n, shape.k)


def to_scalesim(trace: Trace, *, form: str = "conv") -> str:
    """The SCALE-Sim topology CSV text of ``trace``'s matrix products.

    Parameters
    ----------
    trace : Trace
        The workload.
    form : {"conv", "gemm"}
        Conv form (default; depthwise layers as ``DP`` rows, convolutions with their
        windows) or GEMM form (every product as ``M, N, K``; convolutions im2col'ed with
        the batch in M, one row per group, so a depthwise layer becomes one row per
        channel).

    Raises
    ------
    ScaleSimError
        If ``form`` is unknown, the trace has no matrix products, or it unrolls into more
        than :data:`~.trace.MAX_OPS` rows (the most a CSV may have to be read back; the
        message names the op that crosses it).
    """
    if form not in ("conv", "gemm"):
        raise ScaleSimError(f"form: {form!r} is not one of conv, gemm")
    rows_of = _conv_rows if form == "conv" else _gemm_rows
    rows: list[tuple] = []
    for i, op in enumerate(trace):
        for row in rows_of(op):
            if len(rows) == MAX_OPS:
                raise ScaleSimError(
                    f"{trace.name}: {op_label(i, op.name)}: the CSV would have more than "
                    f"{MAX_OPS} layer rows, the most edgetron reads back; SCALE-Sim has no "
                    "batch or head column, so each sample, head and group is a row of its "
                    "own (export a smaller batch)"
                )
            rows.append(row)
    if not rows:
        raise ScaleSimError(
            f"{trace.name}: no gemm, conv2d or dwconv2d ops; SCALE-Sim has nothing to run"
        )
    if form == "gemm":
        header = GEMM_HEADER
    elif all(row[7] == row[8] for row in rows):
        header = CONV_HEADER
        rows = [row[:8] for row in rows]
    else:
        header = CONV_HEADER_2STRIDES
    lines = [header] + [",".join(map(str, row)) + "," for row in rows]
    return "\n".join(lines) + "\n"


def write_scalesim(trace: Trace, path: str | Path, *, form: str = "conv") -> None:
    """Write :func:`to_scalesim` of ``trace`` to ``path``."""
    Path(path).write_text(to_scalesim(trace, form=form), encoding="utf-8")
