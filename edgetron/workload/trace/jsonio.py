"""Reading a trace document: strict JSON, the document's keys, each op's JSON object, and
size-bounded reads of user files.

User files are data: JSON is parsed with duplicate keys, ``NaN`` and ``Infinity``
rejected, and an integer literal too long to convert is kept as a :class:`~.limits.LongInt`
so that its field's check names it; a file is read only up to its limit (:func:`read_user_text`,
also used for SCALE-Sim CSVs). :func:`document_fields` checks the document's keys and
builds its ops through the registry :data:`~.kinds.KINDS`; :class:`~.graph.Trace` then
checks the links between them. Writing (canonical JSON) is :meth:`~.graph.Trace.to_json`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgetron.errors import TraceError
from edgetron.workload.trace.kinds import KINDS
from edgetron.workload.trace.limits import (
    FORMAT,
    MAX_OPS,
    VERSION,
    LongInt,
    brief,
    check_int,
    op_label,
    show_value,
)
from edgetron.workload.trace.op import Op

__all__ = ["DOCUMENT_KEYS", "document_fields", "op_from_dict", "parse_json", "read_user_text"]

#: The keys of a trace document, in canonical order.
DOCUMENT_KEYS = ("format", "version", "name", "batch", "description", "ops")


def parse_json(text: str) -> Any:
    """Parse JSON text strictly: duplicate keys, ``NaN`` and ``Infinity`` are errors.

    An integer literal of more digits than Python converts from text becomes a
    :class:`~.limits.LongInt`, which every field's range check rejects by name.

    Raises
    ------
    TraceError
        For invalid JSON (``not valid JSON: ...``) or a repeated key (naming the op that
        holds it); the caller prefixes the file.
    """
    try:
        data = json.loads(text, object_pairs_hook=_mark_duplicates,
                          parse_constant=_no_constant, parse_int=_parse_int)
    except RecursionError:
        raise TraceError("not valid JSON: nested too deeply") from None
    except TraceError:
        raise
    except ValueError as exc:  # JSONDecodeError
        raise TraceError(f"not valid JSON: {exc}") from None
    _check_duplicates(data)
    return data


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # more digits than sys.get_int_max_str_digits()
        digits = text.lstrip("-")
        return LongInt(len(digits), negative=len(digits) < len(text))


def _no_constant(name: str) -> Any:
    raise TraceError(f"not valid JSON: {name} is not a number")


class _Duplicates(dict):
    """A parsed JSON object that repeats a key (``repeated``, the first one repeated)."""

    repeated: str


def _mark_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The JSON object of ``pairs``, a :class:`_Duplicates` if a key repeats.

    Marked rather than raised at once: the parser does not say where the object is, and
    :func:`_check_duplicates` names the op that holds it.
    """
    d = dict(pairs)
    if len(d) == len(pairs):
        return d
    marked = _Duplicates(d)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            marked.repeated = key
            break
        seen.add(key)
    return marked


def _repeated_key(value: Any) -> str | None:
    """The repeated key of some JSON object within ``value``, or None.

    Iterative: a document may nest deeper than Python's recursion limit.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Duplicates):
            return item.repeated
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _check_duplicates(data: Any) -> None:
    """Raise TraceError for a repeated key, naming the op (index and name) that holds it."""
    ops = data.get("ops") if isinstance(data, dict) else None
    for i, op in enumerate(ops if isinstance(ops, list) else ()):
        key = _repeated_key(op)
        if key is not None:
            raise TraceError(f"{_op_where(i, op)}: duplicate key {brief(key)}")
    key = _repeated_key(data)
    if key is not None:
        raise TraceError(f"duplicate key {brief(key)}")


def _op_where(i: int, d: Any) -> str:
    """``op i ('name')`` for messages about the JSON op ``d`` (``op i`` without a name)."""
    return op_label(i, d.get("name") if isinstance(d, Mapping) else None)


def _key_text(key: Any) -> str:
    """An unknown key for a message: as written if short, else cut (:func:`~.limits.brief`)."""
    text = brief(key)
    return key if isinstance(key, str) and key.isprintable() and text == repr(key) else text


def document_fields(data: Any) -> dict[str, Any]:
    """The :class:`~.graph.Trace` fields of a parsed document, its ops built and validated.

    Checks the document's keys, ``format`` and ``version`` and builds every op
    (:func:`op_from_dict`); the links between ops are the trace's to check.

    Raises
    ------
    TraceError
        Naming the key, or the op index and name and the field; the caller prefixes the
        file.
    """
    if not isinstance(data, Mapping):
        raise TraceError(f"expected a JSON object, got {show_value(data)}")
    unknown = [_key_text(k) for k in data if k not in DOCUMENT_KEYS]
    if unknown:
        raise TraceError(
            f"unknown key(s) {', '.join(sorted(unknown))}; allowed keys are "
            f"{', '.join(DOCUMENT_KEYS)}"
        )
    for key in ("format", "version", "name", "batch", "ops"):
        if key not in data:
            raise TraceError(f"{key}: missing")
    if data["format"] != FORMAT:
        raise TraceError(f"format: expected {FORMAT!r}, got {show_value(data['format'])}")
    version = data["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise TraceError(f"version: expected an integer, got {show_value(version)}")
    if version != VERSION:
        raise TraceError(
            f"version: unsupported trace version {brief(version)}; this edgetron reads "
            f"version {VERSION}"
        )
    raw_ops = data["ops"]
    if not isinstance(raw_ops, list):
        raise TraceError(f"ops: expected a list, got {show_value(raw_ops)}")
    if len(raw_ops) > MAX_OPS:
        raise TraceError(f"ops: {len(raw_ops)} ops exceed the limit of {MAX_OPS}")
    return {
        "name": data["name"], "batch": data["batch"],
        "ops": tuple(op_from_dict(i, d) for i, d in enumerate(raw_ops)),
        "description": data.get("description", ""),
    }


def op_from_dict(i: int, d: Any) -> Op:
    """Op ``i`` of a document from its JSON object (kind, fields, derived fields checked).

    Raises
    ------
    TraceError
        ``op i ('name'): <field>: <problem>``.
    """
    if not isinstance(d, Mapping):
        raise TraceError(f"op {i}: expected a JSON object, got {show_value(d)}")
    where = _op_where(i, d)
    try:
        if "kind" not in d:
            raise TraceError("kind: missing")
        kind = d["kind"]
        if not isinstance(kind, str) or kind not in KINDS:
            raise TraceError(f"kind: {brief(kind)} is not one of {', '.join(KINDS)}")
        cls = KINDS[kind]
        allowed = ("id", "name", "kind", "inputs", *cls._FIELDS)
        unknown = [k for k in d if k not in allowed]
        if unknown:
            raise TraceError(
                f"{_key_text(unknown[0])}: unknown field for kind {kind!r}; allowed fields "
                f"are {', '.join(allowed)}"
            )
        for key in ("id", "name", "inputs", *cls._REQUIRED):
            if key not in d:
                raise TraceError(f"{key}: missing (required for kind {kind!r})")
        if type(d["id"]) is not int or d["id"] != i:
            raise TraceError(
                f"id: expected {i} (the op's position in the list), got {show_value(d['id'])}"
            )
        if not isinstance(d["inputs"], list):
            raise TraceError(f"inputs: expected a list, got {show_value(d['inputs'])}")
        kwargs = {
            k: d[k] for k in cls._FIELDS if k in d and k not in cls._DERIVED_FIELDS
        }
        op = cls(name=d["name"], inputs=tuple(d["inputs"]), **kwargs)
        for key in cls._DERIVED_FIELDS:
            if key in d and check_int(d[key], key) != getattr(op, key):
                raise TraceError(
                    f"{key}: {show_value(d[key])} does not match the value "
                    f"{getattr(op, key)} derived from the other fields"
                )
        for key in cls._FIELDS:
            reason = op._unused(key) if key in d else None
            if reason:
                raise TraceError(f"{key}: {reason}")
    except TraceError as exc:
        raise TraceError(f"{where}: {exc}") from None
    return op


def read_user_text(path: Path, *, limit: int, encoding: str, error: type[TraceError]) -> str:
    """The text of a user file (trace or CSV), refused when larger than ``limit`` bytes.

    At most ``limit + 1`` bytes are read, whatever size the file system reports (pipes,
    ``/proc`` files and files still growing report none or too little). Raises ``error``
    naming ``path`` for a file that is too large or not UTF-8 text (``encoding`` is
    ``utf-8`` or ``utf-8-sig``), and OSError if it cannot be read.
    """
    with path.open("rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise error(f"{path}: the file exceeds the limit of {limit} bytes")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text: {exc}") from None
