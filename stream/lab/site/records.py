"""Procedure records (record.dir) as a site's footage and truth, for ``site-check --records`` and ``adapt --records``.

Polyp-free footage is each reviewed procedure's footage frames outside every case that may show a polyp: episodes
answered polyp or unsure or not answered yet, and marks not answered "not a polyp" (with ``record.mark_seconds``
around them). Reviewed false alarms stay in it: they are the alarms a site check must count and the hard negatives
commissioning must learn. Positives are the frames of episodes and marks answered "polyp", with the place the reviewer
clicked or dragged where there is one. Each procedure becomes one recording (a folder of links to its frames), so
cross-validation by recording is cross-validation by procedure.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engines.errors import ConfigError
from engines.lab.site.positives import Positive
from stream.record_files import FOOTAGE, is_procedure
from stream.truth_files import cases, footage, latest_answers, read_review, source_fps


@dataclass(frozen=True)
class RecordsFootage:
    folders: list[Path]                 # one folder of polyp-free frames per procedure (links)
    fps: list[float]                    # the kept frames' own rate (footage is denser inside episodes and marks)
    positives: list[Positive]           # the site's reviewed polyps, each named by its procedure (its recording)
    summary: dict                       # what was used and left out, per procedure


def _procedures(root: Path) -> list[Path]:
    if is_procedure(root):
        return [root]
    if not root.is_dir():
        raise ConfigError(f"--records {root}: not a folder")
    return sorted(p for p in root.iterdir() if is_procedure(p))


def _polyp_frames(case: dict, chosen: int | None, fps: float) -> list[dict]:
    """The frames of a case reviewed "polyp": every frame of an alert episode; of a mark, the frame the reviewer
    chose, else those within half a second of the mark (the seconds around a mark need not all show it)."""
    if case["kind"] == "episode":
        return case["frames"]
    if chosen is not None:
        return [f for f in case["frames"] if f["frame_index"] == chosen]
    return [f for f in case["frames"] if abs(f["frame_index"] - case["mark_frame"]) <= fps / 2]


def records_footage(root: Path, work: Path, mark_seconds: float = 3.0) -> RecordsFootage:
    """The footage and truth of every finished, reviewed procedure under ``root``, its frames linked under ``work``."""
    folders, fps, positives, per = [], [], [], []
    for proc in _procedures(root):
        if not (proc / "summary.json").is_file():
            per.append({"procedure": proc.name, "used": False, "why": "still being recorded"})
            continue
        answers, edited = read_review(proc)
        if edited is not None:
            per.append({"procedure": proc.name, "used": False,
                        "why": f"review.jsonl edited outside polypwatch at line {edited}"})
            continue
        frames = footage(proc)
        if not frames:
            per.append({"procedure": proc.name, "used": False, "why": "no footage (record.footage was off)"})
            continue
        latest = latest_answers(answers)
        excluded: set[int] = set()
        for c in cases(proc, mark_seconds):
            answer = latest.get(c["id"], {}).get("answer")
            if answer == "not_polyp":
                continue
            excluded |= set(range(c["first_frame"], c["last_frame"] + 1))
            if answer == "polyp":
                a = latest[c["id"]]
                box = tuple(a["box"]) if a.get("box") and a.get("frame_index") is not None else None
                rate = source_fps(proc)
                for f in _polyp_frames(c, a.get("frame_index"), rate):
                    positives.append(Positive(proc.name, c["id"], proc / FOOTAGE / f["file"],
                                              box if f["frame_index"] == a.get("frame_index") else None,
                                              round((f["frame_index"] - c["first_frame"]) / rate, 3)))
        kept = [f for f in frames if f["frame_index"] not in excluded]
        per.append({"procedure": proc.name, "used": bool(kept), "frames": len(frames), "polyp_free_frames": len(kept),
                    "left_out": len(frames) - len(kept), "reviewed_cases": len(latest)})
        if not kept:
            continue
        link_dir = work / proc.name
        link_dir.mkdir(parents=True, exist_ok=True)
        for f in kept:
            os.symlink((proc / FOOTAGE / f["file"]).resolve(), link_dir / f["file"])
        spanned = kept[-1]["frame_index"] - kept[0]["frame_index"] + 1          # source frames they cover
        folders.append(link_dir)
        fps.append(round(len(kept) * source_fps(proc) / max(1, spanned), 3))
    if not folders:
        raise ConfigError(f"--records {root}: no finished procedure with footage and an untampered review (record."
                          f"footage: true, then review in polypwatch web): {per[:3]}")
    return RecordsFootage(folders, fps, positives, {"procedures": per, "positives": len(positives)})
