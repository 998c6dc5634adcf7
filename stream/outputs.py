"""Files a command writes are never what it reads, and never a file of the user's.

Before any work a command names its outputs (option or key -> path) and its inputs; an output that is an input
(the source video, the configuration, the model), another output, or an existing file that is not one polypwatch
writes of that kind (a detections log, a run summary) is refused with the key and the path, so a mistyped path
never turns a recording into JSON lines.
"""
from __future__ import annotations

import json
from pathlib import Path

from engines.errors import ConfigError


def _resolved(path: str) -> Path | None:
    if not path or "://" in path or path.isdigit():
        return None
    return Path(path).resolve()


def _is_json_lines(p: Path) -> bool:
    with p.open("rb") as f:
        head = f.readline(1 << 16)
    if not head.strip():
        return True
    try:
        return isinstance(json.loads(head), dict)
    except (ValueError, UnicodeDecodeError):
        return False


def _is_json_object(p: Path) -> bool:
    if p.stat().st_size == 0:
        return True
    if p.stat().st_size > 64 << 20:
        return False
    try:
        return isinstance(json.loads(p.read_bytes()), dict)
    except (ValueError, UnicodeDecodeError):
        return False


KINDS = {"jsonl": (_is_json_lines, "a JSON-lines log"), "json": (_is_json_object, "a JSON summary")}


def check_outputs(outputs: dict[str, tuple[str, str]], inputs: dict[str, str]) -> None:
    """``outputs``: key -> (path, kind in KINDS or "" for any new file); ``inputs``: key -> path. Raises ConfigError
    before any work when an output would overwrite an input, another output, or a file of another kind."""
    seen: dict[Path, str] = {}
    ins = {r: k for k, v in inputs.items() if (r := _resolved(v)) is not None}
    for key, (path, kind) in outputs.items():
        out = _resolved(path)
        if out is None:
            continue
        if out in ins:
            raise ConfigError(f"{key} {path}: is the {ins[out]} this run reads; an output never overwrites an input "
                              f"(choose another path; nothing was written)")
        if out in seen:
            raise ConfigError(f"{key} {path}: is also {seen[out]}; two outputs cannot share a file")
        seen[out] = key
        if out.exists() and out.is_file() and kind:
            looks, what = KINDS[kind]
            if not looks(out):
                raise ConfigError(f"{key} {path}: exists and is not {what} polypwatch wrote; it would be overwritten "
                                  f"(choose another path or move the file away; nothing was written)")
