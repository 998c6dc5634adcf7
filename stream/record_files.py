"""What a procedure record folder holds, and the only files of it that polypwatch counts against record.max_mb and
prunes: folders with the record's marker, and in them the files the record wrote (its JSON files, the log, the
gallery images, the footage). A reviewer's answers (``review.jsonl``) are site truth and are never pruned: a pruned
procedure that was reviewed keeps its folder with its review."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

MARKER = ".polypwatch-procedure"      # in every procedure folder this program wrote: only those are pruned or counted
OURS = ("procedure.json", "detections.jsonl", "episodes.jsonl", "summary.json", "marks.jsonl", MARKER)
FOOTAGE = "footage"                   # the procedure's frames (record.footage): NNNNNNNN.jpg + footage.jsonl


def is_procedure(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and (path / MARKER).is_file()


def our_files(folder: Path) -> list[Path]:
    """The files a procedure record wrote in ``folder`` (by name: its JSON files, the log, the gallery images, the
    footage folder's frames and index)."""
    mine = [p for p in folder.iterdir() if p.is_file() and not p.is_symlink() and
            (p.name in OURS or (p.name.startswith("episode-") and p.suffix == ".jpg"))]
    footage = folder / FOOTAGE
    if footage.is_dir() and not footage.is_symlink():
        mine += [p for p in footage.iterdir() if p.is_file() and not p.is_symlink() and
                 (p.name == "footage.jsonl" or (p.suffix == ".jpg" and p.stem.isdigit()))]
    return mine


def records_bytes(root: Path) -> int:
    """What the procedure records under ``root`` take: the files this program wrote, nothing of the user's."""
    return sum(f.stat().st_size for p in root.iterdir() if is_procedure(p) for f in our_files(p))


def prune(root: Path, max_bytes: int, keep: Path) -> list[str]:
    """Remove the oldest procedure records under ``root`` (never ``keep``) until they take at most ``max_bytes``.
    Only folders with the marker count and go, and of those only the files the record wrote: a folder that still
    holds files of the user's stays with them (logged)."""
    gone = []
    folders = sorted((p for p in root.iterdir() if p != keep and is_procedure(p)), key=lambda p: p.name)
    total = records_bytes(root)
    for p in folders:
        if total <= max_bytes:
            break
        for f in sorted(our_files(p), key=lambda f: f.name == MARKER):      # the marker last
            total -= f.stat().st_size
            f.unlink(missing_ok=True)
        try:
            if (p / FOOTAGE).is_dir() and not (p / FOOTAGE).is_symlink():
                (p / FOOTAGE).rmdir()
            p.rmdir()
        except OSError:
            log.warning("procedure record %s pruned; the folder is kept for what polypwatch did not write there", p)
        gone.append(p.name)
    if gone:
        log.info("procedure records pruned to keep record.max_mb: %s", ", ".join(gone))
    return gone
