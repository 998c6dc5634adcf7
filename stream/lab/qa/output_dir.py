"""Output folders of replay and studies: only a folder this project wrote is ever replaced or deleted.

Every folder replay writes carries a marker file (``MARKER``). A folder given as ``--out`` is accepted when it
does not exist, is empty, or carries the marker; anything else (a file, a folder of the user's) is refused with
``ConfigError`` before any work is done, so nothing the user did not ask to lose is lost.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from engines.errors import ConfigError

MARKER = ".polypwatch-output"


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def is_ours(path: Path) -> bool:
    return path.is_dir() and (path / MARKER).is_file()


def check_output_dir(path: Path, what: str = "--out") -> None:
    """Refuse, before any work, an output folder that replay could not write without loss."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path}: exists and is not a folder; expected a new folder, an empty one, or one "
                          f"polypwatch wrote (nothing was written)")
    if path.is_dir() and not is_ours(path) and any(path.iterdir()):
        raise ConfigError(f"{what} {path}: a folder polypwatch did not write (it holds files and no {MARKER} "
                          f"marker); choose a new or empty folder (nothing was written, nothing deleted)")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise ConfigError(f"{what} {path}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: folder {base} is not writable")


def make_output_dir(path: Path, what: str = "--out", kind: str = "replay") -> None:
    """Create (or keep) an output folder checked by ``check_output_dir`` and put the marker in it."""
    check_output_dir(path, what)
    path.mkdir(parents=True, exist_ok=True)
    marker = path / MARKER
    if not marker.is_file():
        marker.write_text(json.dumps({"written_by": f"polypwatch {kind}",
                                      "note": "polypwatch may replace this folder; it never replaces one without "
                                              "this file"}) + "\n")


def remove_ours(path: Path) -> None:
    """Delete a folder polypwatch wrote; a folder without the marker is refused, never deleted."""
    if not path.exists():
        return
    if not is_ours(path):
        raise ConfigError(f"{path}: not a folder polypwatch wrote (no {MARKER} marker); it was left as it is")
    shutil.rmtree(path)
