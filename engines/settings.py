"""Settings as frozen dataclasses, validated when they load: the one validator behind the runtime configuration
(``stream.config``) and the training recipes (``engines.lab.training.recipe``).

A dataclass declares its keys with types and defaults, and optionally ``_ranges`` ({key: (lo, hi)}),
``_choices`` ({key: (allowed, ...)}) and a ``validate()`` method for checks across keys. ``build_section`` refuses
an unknown key (naming the nearest valid one), a wrong type and a value out of range, each with the key, the value
and what was expected.
"""
from __future__ import annotations

import difflib
from dataclasses import fields
from typing import Any, get_args, get_origin, get_type_hints

from engines.errors import ConfigError


def suggest(key: str, options) -> str:
    close = difflib.get_close_matches(key, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def coerce(where: str, value: Any, typ) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if typ is str:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if get_origin(typ) is tuple:
        inner = get_args(typ)[0]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(coerce(f"{where}[{i}]", v, inner) for i, v in enumerate(value))
    raise ConfigError(f"{where}: unsupported type {typ}")


def build_section(name: str, cls: type, raw: Any):
    """``cls(**raw)`` with every key checked; ``name`` prefixes the keys in messages (``name.key``; '' = the key
    alone)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{name or cls.__name__}: expected a mapping of keys, got {raw!r}")
    hints = get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    ranges = getattr(cls, "_ranges", {})
    choices = getattr(cls, "_choices", {})
    kwargs = {}
    for key, value in raw.items():
        where = f"{name}.{key}" if name else str(key)
        if key not in known:
            raise ConfigError(f"{where}: unknown key{suggest(str(key), known)}; expected one of {known}")
        v = coerce(where, value, hints[key])
        if key in ranges:
            lo, hi = ranges[key]
            if not (lo <= v <= hi):
                raise ConfigError(f"{where}: expected a value in {lo}..{hi}, got {v!r}")
        if key in choices and v not in choices[key]:
            raise ConfigError(f"{where}: expected one of {list(choices[key])}, got {v!r}")
        kwargs[key] = v
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        check()
    return obj
