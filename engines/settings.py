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


MAX_YAML_NODES = 20_000        # a configuration or recipe is a few hundred nodes; aliases may not expand past this
MAX_YAML_DEPTH = 40
MAX_SHOWN = 80                 # characters of a value echoed in a message


def show(value: Any, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters (a hostile value is never echoed whole). Large
    containers are described, never walked: a nested alias bomb must not be expanded by its own error message."""
    if isinstance(value, (list, tuple, dict, set)) and len(value) > 16:
        return f"<a {type(value).__name__} of {len(value)} items>"
    try:
        text = repr(value) if not isinstance(value, (list, tuple, dict)) else reprlib_repr(value)
    except (RecursionError, ValueError):
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= limit else f"{text[:limit - 1]}… ({len(text)} characters)"


def reprlib_repr(value: Any) -> str:
    import reprlib
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxdict, r.maxstring, r.maxother = 3, 8, 8, 60, 60
    return r.repr(value)


def load_yaml(text: str, where: str) -> Any:
    """YAML as ``yaml.safe_load`` reads it, with aliases bounded: a document whose anchors and aliases expand past
    MAX_YAML_NODES nodes, or nest past MAX_YAML_DEPTH, is refused before anything is built from it ("billion
    laughs"); an integer of thousands of digits is refused too. Raises ConfigError naming ``where``."""
    import yaml
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_node(node, where)
                return loader.construct_document(node)
            return None
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML ({str(e)[:300]})") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested deeper than YAML allows here (at most {MAX_YAML_DEPTH} levels)") from None
    except ValueError as e:                      # int('9' * 5000): Python's limit on integer digits
        raise ConfigError(f"{where}: a value YAML cannot read ({str(e)[:120]})") from None


def _check_node(root, where: str) -> None:
    """Count the nodes ``root`` expands to (aliases counted each time they are used, memoised) and its depth."""
    size: dict[int, int] = {}
    stack = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(f"{where}: nested deeper than {MAX_YAML_DEPTH} levels")
        children = [c for pair in node.value for c in pair] if isinstance(node.value, list) and node.value and \
            isinstance(node.value[0], tuple) else (node.value if isinstance(node.value, list) else [])
        if done:
            size[id(node)] = 1 + sum(size.get(id(c), 1) for c in children)
            if size[id(node)] > MAX_YAML_NODES:
                raise ConfigError(f"{where}: its anchors and aliases expand to more than {MAX_YAML_NODES} values; a "
                                  f"configuration is never that large (refused before it was built)")
            continue
        if id(node) in size:
            continue
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in children if id(c) not in size)


def suggest(key: str, options) -> str:
    close = difflib.get_close_matches(key, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def coerce(where: str, value: Any, typ) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {show(value)}")
    if typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {show(value)}")
    if typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {show(value)}")
    if typ is str:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {show(value)}")
    if get_origin(typ) is tuple:
        inner = get_args(typ)[0]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {show(value)}")
        return tuple(coerce(f"{where}[{i}]", v, inner) for i, v in enumerate(value))
    raise ConfigError(f"{where}: unsupported type {typ}")


def build_section(name: str, cls: type, raw: Any):
    """``cls(**raw)`` with every key checked; ``name`` prefixes the keys in messages (``name.key``; '' = the key
    alone)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{name or cls.__name__}: expected a mapping of keys, got {show(raw)}")
    hints = get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    ranges = getattr(cls, "_ranges", {})
    choices = getattr(cls, "_choices", {})
    kwargs = {}
    for key, value in raw.items():
        where = f"{name}.{key}" if name else str(key)
        if key not in known:
            raise ConfigError(f"{where[:120]}: unknown key{suggest(str(key)[:120], known)}; expected one of {known}")
        v = coerce(where, value, hints[key])
        if key in ranges:
            lo, hi = ranges[key]
            if not (lo <= v <= hi):
                raise ConfigError(f"{where}: expected a value in {lo}..{hi}, got {show(v)}")
        if key in choices and v not in choices[key]:
            raise ConfigError(f"{where}: expected one of {list(choices[key])}, got {show(v)}")
        kwargs[key] = v
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        check()
    return obj
