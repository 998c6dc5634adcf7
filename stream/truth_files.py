"""The site's truth in a procedure record folder: marks made during the procedure (``marks.jsonl``: "polyp here",
the detector missed it or was late) and a reviewer's answers afterwards (``review.jsonl``). Both are appended, never
rewritten. Each review line carries the SHA-256 of its own fields (``sha256``) and of the line before it (``prev``),
so a file edited by hand is seen (tamper evidence against careless edits, not a signature): answers from the first
line that does not check are not used, and nothing more is appended after it.

The cases a reviewer answers are the procedure's alert episodes (``episodes.jsonl``) and its marks; each is shown
with the footage frames (``footage/footage.jsonl``, record.footage) of its frame range.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from pathlib import Path

from engines.errors import PolypwatchError

MARKS, REVIEW, EPISODES, FOOTAGE_INDEX = "marks.jsonl", "review.jsonl", "episodes.jsonl", "footage/footage.jsonl"
ANSWERS = ("polyp", "not_polyp", "unsure")
REVIEWER = re.compile(r"[^\x00-\x1f\x7f<>\"'&]{1,60}")
CASE = re.compile(r"(episode|mark)-(\d{1,6})")
MAX_LINE = 4096
GENESIS = "0" * 64


class TruthError(PolypwatchError):
    """A mark or an answer that cannot be taken (no such case, a procedure being recorded, a review file edited)."""


def _lines(path: Path, limit: int = 200_000) -> list[dict]:
    """JSON objects of a .jsonl file, a line being written (no newline yet) and bad lines left out."""
    try:
        raw = path.read_bytes()
    except OSError:
        return []
    out = []
    for line in raw.split(b"\n")[:-1][:limit]:
        try:
            v = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(v, dict):
            out.append(v)
    return out


def _append(path: Path, entry: dict) -> None:
    """One line, one write, O_APPEND: lines from two processes never interleave."""
    data = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
    if len(data) > MAX_LINE:
        raise TruthError(f"{path.name}: an entry of {len(data)} bytes, more than {MAX_LINE}")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _int(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


# --------------------------------------------------------------------------------------------------- marks
def append_mark(folder: Path, by: str, seq: int, frame_index: int, t_capture_ns: int) -> dict:
    """Mark "polyp here" at the frame the marker last saw (its seq, index and capture time on the pipeline's clock)."""
    if (folder / "summary.json").is_file():
        raise TruthError(f"procedure {folder.name} has ended: marks are made while it is recorded")
    n = len(read_marks(folder)) + 1
    entry = {"mark": n, "by": str(by)[:20], "seq": int(seq), "frame_index": int(frame_index),
             "t_capture_ns": int(t_capture_ns), "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _append(folder / MARKS, entry)
    return entry


def read_marks(folder: Path) -> list[dict]:
    return [m for m in _lines(folder / MARKS) if _int(m.get("mark")) and _int(m.get("frame_index")) is not None
            and _int(m.get("t_capture_ns")) is not None]


# --------------------------------------------------------------------------------------------------- cases
def footage(folder: Path) -> list[dict]:
    """The footage frames kept (record.footage), in order: {seq, frame_index, t_s, file, alert, score, why}."""
    return [f for f in _lines(folder / FOOTAGE_INDEX) if _int(f.get("frame_index")) is not None
            and isinstance(f.get("file"), str) and re.fullmatch(r"\d{1,12}\.jpg", f["file"])]


def source_fps(folder: Path) -> float:
    """The procedure's source frame rate (procedure.json; 25 where an older record does not say)."""
    try:
        fps = json.loads((folder / "procedure.json").read_text()).get("source_fps")
    except (OSError, ValueError, AttributeError):
        fps = None
    return float(fps) if isinstance(fps, (int, float)) and not isinstance(fps, bool) and 0 < fps <= 1000 else 25.0


def cases(folder: Path, mark_seconds: float = 3.0) -> list[dict]:
    """Every alert episode and every mark of a procedure (a mark with ``mark_seconds`` of frames either side), each
    with its frame range and footage frames."""
    frames = footage(folder)
    mark_frames = int(round(mark_seconds * source_fps(folder)))
    out = []
    for e in _lines(folder / EPISODES):
        n, a, b = _int(e.get("episode")), _int(e.get("first_frame")), _int(e.get("last_frame"))
        if n and a is not None and b is not None and a <= b:
            out.append({"id": f"episode-{n}", "kind": "episode", "first_frame": a, "last_frame": b,
                        "start_s": e.get("start_s") if isinstance(e.get("start_s"), (int, float)) else None,
                        "peak_frame": _int(e.get("peak_frame")), "peak_score": e.get("peak_score"),
                        "boxes": e.get("boxes") if isinstance(e.get("boxes"), list) else []})
    for m in read_marks(folder):
        i = m["frame_index"]
        out.append({"id": f"mark-{m['mark']}", "kind": "mark", "first_frame": max(0, i - mark_frames),
                    "last_frame": i + mark_frames, "mark_frame": i, "by": m.get("by", ""), "utc": m.get("utc", ""),
                    "t_capture_ns": m["t_capture_ns"]})
    for c in out:
        c["frames"] = [f for f in frames if c["first_frame"] <= f["frame_index"] <= c["last_frame"]]
    return out


# --------------------------------------------------------------------------------------------------- review
def _digest(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _own_digest(entry: dict) -> str:
    """The SHA-256 of an answer's own fields (everything but ``sha256``): an edit of any line shows at that line."""
    body = {k: v for k, v in entry.items() if k != "sha256"}
    return _digest(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def read_review(folder: Path) -> tuple[list[dict], int | None]:
    """(the answers that follow one another, the 1-based line from which the file was edited by hand or None)."""
    try:
        raw = (folder / REVIEW).read_bytes()
    except OSError:
        return [], None
    prev, out = GENESIS, []
    for k, line in enumerate(raw.split(b"\n")[:-1], start=1):
        try:
            v = json.loads(line)
        except (ValueError, RecursionError):
            return out, k
        if not isinstance(v, dict) or v.get("prev") != prev or v.get("sha256") != _own_digest(v):
            return out, k
        out.append(v)
        prev = _digest(line)
    if raw and not raw.endswith(b"\n"):
        return out, raw.count(b"\n") + 1
    return out, None


def append_answer(folder: Path, case_id: str, answer: str, reviewer: str, point=None, frame_index=None) -> dict:
    """Append one answer (never rewrite): the case must be one of this procedure's, the frame one of its footage, the
    point inside the frame. Raises TruthError with what is wrong."""
    if not (folder / "summary.json").is_file():
        raise TruthError(f"procedure {folder.name} is still being recorded: review it when it has ended")
    if answer not in ANSWERS:
        raise TruthError(f"answer: expected one of {list(ANSWERS)}, got {str(answer)[:40]!r}")
    if not isinstance(reviewer, str) or not REVIEWER.fullmatch(reviewer.strip()):
        raise TruthError("reviewer: expected a name of 1 to 60 printable characters")
    known = {c["id"]: c for c in cases(folder)}
    if not isinstance(case_id, str) or case_id not in known:
        raise TruthError(f"case {str(case_id)[:40]!r}: not an alert episode or mark of procedure {folder.name}")
    case = known[case_id]
    entry = {"case": case_id, "answer": answer, "reviewer": reviewer.strip(),
             "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if frame_index is not None:
        fi = _int(frame_index)
        if fi is None or fi not in {f["frame_index"] for f in case["frames"]}:
            raise TruthError(f"frame {str(frame_index)[:20]}: not a footage frame of {case_id} in procedure "
                             f"{folder.name}")
        entry["frame_index"] = fi
    if point is not None:
        if entry.get("frame_index") is None:
            raise TruthError("point: give the frame it was clicked on (frame_index)")
        ok = (isinstance(point, list) and len(point) == 4 and all(isinstance(v, (int, float)) and not isinstance(
            v, bool) and math.isfinite(v) and 0 <= v <= 1 for v in point) and point[0] <= point[2] and point[1] <= point[3])
        if not ok:
            raise TruthError("point: expected [x0, y0, x1, y1] within 0..1 of the frame (a click is x0 = x1, y0 = y1)")
        entry["box"] = [round(float(v), 4) for v in point]
    answers, broken = read_review(folder)
    if broken is not None:
        raise TruthError(f"{REVIEW} of procedure {folder.name} was edited outside polypwatch (line {broken} does not "
                         f"follow the one before): nothing more is appended; restore it or move it away")
    try:
        last = (folder / REVIEW).read_bytes().split(b"\n")[-2] if answers else None
    except OSError:
        last = None
    entry["prev"] = _digest(last) if last else GENESIS
    entry["sha256"] = _own_digest(entry)
    _append(folder / REVIEW, entry)
    return entry


def latest_answers(answers: list[dict]) -> dict[str, dict]:
    """Each case's newest answer (a reviewer may change their mind; every answer stays in the file)."""
    out: dict[str, dict] = {}
    for a in answers:
        if isinstance(a.get("case"), str):
            out[a["case"]] = a
    return out
