"""Output folders of replay and studies: polypwatch owns only what it wrote there.

Every folder replay writes carries a marker file (``MARKER``) that is also its manifest: the names of the files
replay wrote there (as pip's RECORD). A folder given as ``--out`` is accepted when it does not exist, is empty, or
carries the marker; anything else (a file, a folder of the user's) is refused with ``ConfigError`` before any work
is done. A new run into a folder polypwatch wrote replaces the files of its manifest and nothing else: what the user
added there (a sign-off, a copy of the video) stays. An input that lies inside ``--out`` is refused: a run must never
write over what it reads, and ``/`` is never an output folder.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from engines.errors import ConfigError

log = logging.getLogger(__name__)
MARKER = ".polypwatch-output"


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def is_ours(path: Path) -> bool:
    return path.is_dir() and (path / MARKER).is_file()


def written_files(path: Path) -> set[str]:
    """The names polypwatch wrote in ``path`` (its manifest; empty for a folder of an older version, which then
    keeps everything but what a new run writes)."""
    try:
        files = json.loads((path / MARKER).read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {f for f in files if isinstance(f, str) and f and "/" not in f and f not in (".", "..")}


def check_output_dir(path: Path, what: str = "--out", inputs: list[Path] | tuple = ()) -> None:
    """Refuse, before any work, an output folder that replay could not write without loss."""
    if path.absolute() == Path(path.absolute().anchor):
        raise ConfigError(f"{what} {path}: the root folder is never an output folder (nothing was written)")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path}: exists and is not a folder; expected a new folder, an empty one, or one "
                          f"polypwatch wrote (nothing was written)")
    if path.is_dir() and not is_ours(path) and any(path.iterdir()):
        raise ConfigError(f"{what} {path}: a folder polypwatch did not write (it holds files and no {MARKER} "
                          f"marker); choose a new or empty folder (nothing was written, nothing deleted)")
    out = path.resolve()
    for inp in inputs:
        src = Path(inp).resolve()
        if src == out or out in src.parents or src in out.parents:
            raise ConfigError(f"{what} {path}: the input {inp} lies {'inside' if out in src.parents else 'at or above'} "
                              f"the output folder; a replay must not write where it reads (choose another {what}; "
                              f"nothing was written)")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise ConfigError(f"{what} {path}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: folder {base} is not writable")


def _write_marker(path: Path, kind: str, files: set[str]) -> None:
    tmp = path / (MARKER + ".tmp")
    tmp.write_text(json.dumps({"written_by": f"polypwatch {kind}", "files": sorted(files),
                               "note": "polypwatch replaces and deletes only the files listed here; everything else "
                                       "in this folder is left as it is"}, indent=1) + "\n")
    os.replace(tmp, path / MARKER)


def make_output_dir(path: Path, what: str = "--out", kind: str = "replay") -> None:
    """Create (or keep) an output folder checked by ``check_output_dir`` and put the marker in it."""
    check_output_dir(path, what)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not (path / MARKER).is_file():
            _write_marker(path, kind, set())
    except OSError as e:
        raise ConfigError(f"{what} {path}: cannot be written ({e.strerror or e}); nothing was run") from None


def record_written(path: Path, names, kind: str = "replay") -> None:
    """Add ``names`` (files polypwatch just wrote in ``path``) to its manifest."""
    _write_marker(path, kind, written_files(path) | {str(n) for n in names})


def install(tmp: Path, out: Path, kind: str = "replay") -> list[str]:
    """Move the files of a finished run (``tmp``, a folder polypwatch wrote) into ``out``: the files of ``out``'s
    manifest are replaced or deleted, nothing else is touched. Returns what was kept of the user's (logged)."""
    make_output_dir(out, kind=kind)
    old = written_files(out)
    new = {p.name for p in tmp.iterdir() if p.name != MARKER}
    clash = sorted(n for n in new if (out / n).exists() and n not in old and old)
    if clash:
        raise ConfigError(f"--out {out}: {clash[0]} is there and polypwatch did not write it; move it away and run "
                          f"again (the new outputs are in {tmp})")
    for n in sorted(new):
        os.replace(tmp / n, out / n)
    for n in sorted(old - new):
        p = out / n
        if p.is_dir() and not p.is_symlink():
            if is_ours(p):
                shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    _write_marker(out, kind, new)
    remove_ours(tmp)
    kept = sorted(p.name for p in out.iterdir() if p.name not in new and p.name != MARKER)
    if kept:
        log.info("%s: kept what polypwatch did not write: %s", out, ", ".join(kept))
    return kept


def remove_ours(path: Path) -> None:
    """Delete a folder polypwatch wrote; a folder without the marker is refused, never deleted. A folder with files
    beside its manifest (the user's) is not deleted either: only the listed files go, and the folder stays."""
    if not path.exists():
        return
    if not is_ours(path):
        raise ConfigError(f"{path}: not a folder polypwatch wrote (no {MARKER} marker); it was left as it is")
    listed = written_files(path)
    foreign = [p for p in path.iterdir() if p.name != MARKER and p.name not in listed]
    if listed and foreign:
        for n in listed:
            p = path / n
            if p.is_file() or p.is_symlink():
                p.unlink()
        log.warning("%s: kept %d file(s) polypwatch did not write (e.g. %s)", path, len(foreign), foreign[0].name)
        return
    shutil.rmtree(path)
