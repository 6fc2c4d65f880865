"""Decomposed LayerNorm and GELU: recognise exporters' element-wise spellings as one node.

Exporters before opset 17 (LayerNormalization) and 20 (Gelu) spell these ops out:

* LayerNorm: ``m = ReduceMean(x, -1); d = Sub(x, m); v = ReduceMean(Pow(d, 2), -1);
  y = Div(d, Sqrt(Add(v, eps)))``, then ``Mul(y, gamma)`` and ``Add(., beta)``, both
  optional (``Mul(d, d)`` for the square and ``Mul(d, Reciprocal(.))`` for the division
  are accepted too);
* GELU: ``Erf(x / sqrt(2))`` (``Div`` by sqrt(2) or ``Mul`` by 1/sqrt(2)),
  ``Add(., 1)``, and the product of that with ``x`` and ``0.5`` in any grouping.

Each match is replaced by one synthetic ``LayerNormalization`` or ``Gelu`` node, placed
where its last node was, that carries the index and name of the pattern's first node. The
intermediate values must have no other reader; otherwise the pattern is left alone and
the mapping reports the first node it cannot map.
"""

from __future__ import annotations

import math

import numpy as np

from .graph import Const, Node

__all__ = ["fuse_patterns"]

_SQRT2 = math.sqrt(2.0)


class _Ctx:
    def __init__(self, nodes: list[Node], consts: dict[str, Const], outputs: list[str],
                 opset: int) -> None:
        self.consts = consts
        self.opset = opset
        self.outputs = set(outputs)
        self.producer = {o: n for n in nodes for o in n.outputs if o}
        self.users: dict[str, list[Node]] = {}
        for n in nodes:
            for x in dict.fromkeys(n.inputs):
                if x:
                    self.users.setdefault(x, []).append(n)

    def only_user(self, value: str, op_type: str | tuple[str, ...]) -> Node | None:
        """The single node reading ``value`` if it is of ``op_type`` (and ``value`` is
        not a graph output)."""
        users = self.users.get(value, [])
        types = (op_type,) if isinstance(op_type, str) else op_type
        if len(users) != 1 or value in self.outputs or users[0].op_type not in types:
            return None
        return users[0]

    def scalar(self, name: str) -> float | None:
        c = self.consts.get(name)
        return None if c is None else c.scalar()

    def other(self, node: Node, value: str) -> str | None:
        """The other input of a binary ``node`` one of whose inputs is ``value``."""
        if len(node.inputs) != 2 or value not in node.inputs:
            return None
        a, b = node.inputs
        return b if a == value else a

    def last_axis(self, node: Node, rank: int | None) -> bool:
        """Whether a ReduceMean reduces the last axis only, keeping dimensions."""
        if not node.attrs.get("keepdims", 1):
            return False
        if self.opset >= 18:
            if len(node.inputs) < 2 or node.inputs[1] not in self.consts:
                return False
            value = self.consts[node.inputs[1]].value
            axes = None if value is None else [int(a) for a in np.asarray(value).ravel()]
        else:
            axes = node.attrs.get("axes")
        if not axes or len(axes) != 1 or rank is None:
            return False
        return axes[0] in (-1, rank - 1)


def _layernorm(ctx: _Ctx, r1: Node, rank: int | None) -> tuple[Node, list[Node]] | None:
    if not ctx.last_axis(r1, rank):
        return None
    x = r1.inputs[0]
    sub = ctx.only_user(r1.outputs[0], "Sub")
    if sub is None or sub.inputs != [x, r1.outputs[0]]:
        return None
    d = sub.outputs[0]
    users = ctx.users.get(d, [])
    if d in ctx.outputs or len(users) != 2:
        return None
    square = next((u for u in users if u.op_type == "Pow" and u.inputs[0] == d
                   and ctx.scalar(u.inputs[1]) == 2.0), None) or \
        next((u for u in users if u.op_type == "Mul" and u.inputs == [d, d]), None)
    divide = next((u for u in users if u is not square), None)
    if square is None or divide is None:
        return None
    r2 = ctx.only_user(square.outputs[0], "ReduceMean")
    if r2 is None or not ctx.last_axis(r2, rank):
        return None
    add = ctx.only_user(r2.outputs[0], "Add")
    eps_name = ctx.other(add, r2.outputs[0]) if add else None
    eps = ctx.scalar(eps_name) if eps_name else None
    if eps is None or not eps >= 0:
        return None
    sqrt = ctx.only_user(add.outputs[0], "Sqrt")
    if sqrt is None:
        return None
    nodes = [r1, sub, square, r2, add, sqrt]
    if divide.op_type == "Div" and divide.inputs == [d, sqrt.outputs[0]]:
        nodes.append(divide)
    else:
        recip = ctx.only_user(sqrt.outputs[0], "Reciprocal")
        if recip is None or divide.op_type != "Mul" or \
                sorted(divide.inputs) != sorted([d, recip.outputs[0]]):
            return None
        nodes += [recip, divide]
    y = divide.outputs[0]
    gamma = beta = None
    mul = ctx.only_user(y, "Mul")
    if mul is not None and ctx.other(mul, y) in ctx.consts:
        gamma = ctx.other(mul, y)
        nodes.append(mul)
        y = mul.outputs[0]
    add2 = ctx.only_user(y, "Add")
    if add2 is not None and ctx.other(add2, y) in ctx.consts:
        beta = ctx.other(add2, y)
        nodes.append(add2)
        y = add2.outputs[0]
    fused = Node(r1.index, r1.name, "LayerNormalization", [x, gamma or "", beta or ""], [y],
                 {"axis": -1, "epsilon": eps, "decomposed": True})
    return fused, nodes


def _near(value: float | None, want: float) -> bool:
    return value is not None and abs(value - want) <= 1e-4 * want


def _gelu(ctx: _Ctx, erf: Node) -> tuple[Node, list[Node]] | None:
    scaled = erf.inputs[0]
    producer = ctx.producer.get(scaled)
    if producer is None or ctx.only_user(scaled, "Erf") is not erf:
        return None
    if producer.op_type == "Div" and _near(ctx.scalar(producer.inputs[1]), _SQRT2):
        x = producer.inputs[0]
    elif producer.op_type == "Mul" and len(producer.inputs) == 2:
        k = next((i for i in producer.inputs if _near(ctx.scalar(i), 1 / _SQRT2)), None)
        if k is None:
            return None
        x = ctx.other(producer, k)
    else:
        return None
    add = ctx.only_user(erf.outputs[0], "Add")
    if add is None or ctx.scalar(ctx.other(add, erf.outputs[0]) or "") != 1.0:
        return None
    nodes = [producer, erf, add]
    value, have_x, have_half = add.outputs[0], False, False
    for _ in range(2):
        mul = ctx.only_user(value, "Mul")
        if mul is None:
            return None
        other = ctx.other(mul, value)
        if other == x and not have_x:
            have_x = True
        elif _near(ctx.scalar(other or ""), 0.5) and not have_half:
            have_half = True
        else:
            half = ctx.producer.get(other or "")
            if half is None or have_x or have_half or half.op_type != "Mul" or \
                    x not in half.inputs or not _near(ctx.scalar(ctx.other(half, x) or ""), 0.5) \
                    or ctx.only_user(half.outputs[0], "Mul") is not mul:
                return None
            nodes.append(half)
            have_x = have_half = True
        nodes.append(mul)
        value = mul.outputs[0]
        if have_x and have_half:
            break
    if not (have_x and have_half):
        return None
    fused = Node(producer.index, producer.name, "Gelu", [x], [value],
                 {"approximate": "none", "decomposed": True})
    return fused, nodes


def _common_prefix(names: list[str]) -> str:
    """The path the node names share (``/blocks.0/norm1`` of ``/blocks.0/norm1/Sub``...)."""
    parts = [n.split("/") for n in names if n]
    if len(parts) != len(names) or not parts:
        return ""
    common = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return "/".join(common) if len(common) > 1 or (common and common[0]) else ""


def fuse_patterns(nodes: list[Node], consts: dict[str, Const], outputs: list[str],
                  shapes: dict[str, tuple[int, ...]], opset: int) -> list[Node]:
    """``nodes`` with every decomposed LayerNorm and GELU replaced by one fused node."""
    ctx = _Ctx(nodes, consts, outputs, opset)
    position = {id(n): i for i, n in enumerate(nodes)}
    replaced: dict[int, Node] = {}
    absorbed: set[int] = set()
    for node in nodes:
        if id(node) in absorbed:
            continue
        match = None
        if node.op_type == "ReduceMean" and node.inputs[0] not in consts:
            shape = shapes.get(node.inputs[0])
            match = _layernorm(ctx, node, None if shape is None else len(shape))
        elif node.op_type == "Erf" and node.inputs[0] not in consts:
            match = _gelu(ctx, node)
        if match is None:
            continue
        fused, members = match
        if any(id(m) in absorbed for m in members):
            continue
        absorbed.update(id(m) for m in members)
        last = max(members, key=lambda m: position[id(m)])
        fused.name = _common_prefix([m.name for m in members]) or fused.name
        replaced[id(last)] = fused
    out = []
    for node in nodes:
        if id(node) in replaced:
            out.append(replaced[id(node)])
        elif id(node) not in absorbed:
            out.append(node)
    return out
