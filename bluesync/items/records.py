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
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in record:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                values[f.name] = _empty(hints.get(f.name))
            continue
        raw = record[f.name]
        hint = hints.get(f.name)
        origin = typing.get_origin(hint)
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if dataclasses.is_dataclass(hint) and isinstance(raw, dict):
            values[f.name] = from_record(hint, raw)
        elif args and dataclasses.is_dataclass(args[0]) and isinstance(raw, dict):
            values[f.name] = from_record(args[0], raw)
        elif origin is tuple and isinstance(raw, list):
            values[f.name] = tuple(_plain(v) for v in raw)
        else:
            values[f.name] = _plain(raw)
    return cls(**values)
