"""
Frozen dataclasses <-> JSON-ready dicts, for the parsed fields the store
keeps beside each item (the items.summary column).

Only what the content classes use is supported: str, int, bool, None,
aware datetimes (ISO 8601), bytes (base64, under a one-key marker dict),
tuples and lists, and nested dataclasses of the same kind.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import typing
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")


def to_record(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_record(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (tuple, list)):
        return [to_record(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        if "$dt" in value and len(value) == 1:
            return datetime.fromisoformat(value["$dt"])
        if "$b" in value and len(value) == 1:
            return base64.b64decode(value["$b"])
    return value


def _empty(hint: Any) -> Any:
    """
    A neutral value for a required field an older record lacks (or that was
    deliberately left out to keep records small).
    """
    for kind, value in ((str, ""), (bool, False), (int, 0), (bytes, b""), (tuple, ())):
        if hint is kind or typing.get_origin(hint) is kind:
            return value
    return None


def from_record(cls: type[T], record: dict) -> T:
    """
    Rebuild a C{cls} instance; fields missing from an older record take
    their defaults, unknown keys are ignored (records outlive code).
    """
    values = {}
    for name, required, empty, nested, is_tuple in _plan(cls):
        if name not in record:
            if required:
                values[name] = empty
            continue
        raw = record[name]
        if nested is not None and isinstance(raw, dict):
            values[name] = from_record(nested, raw)
        elif is_tuple and isinstance(raw, list):
            if is_tuple is not True:
                values[name] = tuple(from_record(is_tuple, v) for v in raw)
            else:
                values[name] = tuple(_plain(v) if isinstance(v, dict) else v for v in raw)
        elif isinstance(raw, dict):
            values[name] = _plain(raw)
        else:
            values[name] = raw
    return cls(**values)


@functools.cache
def _plan(cls: type) -> tuple:
    """
    Per class, once: each field's name, whether it is required, its empty
    value, its nested dataclass and whether it is a tuple.  Resolving type
    hints on every call cost more than the rest of serving an item.
    """
    hints = typing.get_type_hints(cls)
    plan = []
    for f in dataclasses.fields(cls):
        hint = hints.get(f.name)
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        nested = hint if dataclasses.is_dataclass(hint) else (
            args[0] if args and dataclasses.is_dataclass(args[0]) else None)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        is_tuple = typing.get_origin(hint) is tuple
        if is_tuple and args and dataclasses.is_dataclass(args[0]):
            # tuple[SomeDataclass, ...]: the element class, not just True.
            is_tuple, nested = args[0], None
        plan.append((f.name, required, _empty(hint), nested, is_tuple))
    return tuple(plan)
