"""Ground truth of a video: which polyps are visible in which frames, with boxes and outlines.

The format is documented in docs/GROUND_TRUTH.md; the synthetic-video tool writes it and replay reads it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engines.errors import TruthError

FORMAT = "polypwatch-truth"
VERSION = 1


@dataclass(frozen=True)
class FramePolyp:
    polyp_id: int
    box: tuple[float, float, float, float]                         # normalised x0, y0, x1, y1
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()    # normalised outlines (mask = their union)


@dataclass(frozen=True)
class PolypTrack:
    polyp_id: int
    kind: str
    intervals: tuple[tuple[int, int], ...]   # inclusive frame index ranges where the polyp is visible


@dataclass(frozen=True)
class GroundTruth:
    fps: float
    frame_count: int
    width: int
    height: int
    polyps: tuple[PolypTrack, ...]
    frames: tuple[tuple[FramePolyp, ...], ...]   # one entry per frame index
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.frames) != self.frame_count:
            raise TruthError(f"frames: expected {self.frame_count} entries (frame_count), got {len(self.frames)}")

    def positive(self, index: int) -> bool:
        return bool(self.frames[index])

    def to_json(self) -> dict:
        return {
            "format": FORMAT, "version": VERSION, "source": self.source,
            "fps": self.fps, "frame_count": self.frame_count, "width": self.width, "height": self.height,
            "polyps": [{"id": p.polyp_id, "kind": p.kind, "intervals": [list(iv) for iv in p.intervals]}
                       for p in self.polyps],
            "frames": [[{"id": fp.polyp_id, "box": list(fp.box), "polygons": [[list(pt) for pt in poly]
                                                                            for poly in fp.polygons]}
                        for fp in frame] for frame in self.frames],
        }

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), separators=(",", ":")))


def intervals_from_frames(frames: list[list[int]]) -> dict[int, list[tuple[int, int]]]:
    """Per polyp id, the inclusive runs of frame indices in which it is listed."""
    out: dict[int, list[tuple[int, int]]] = {}
    for i, ids in enumerate(frames):
        for pid in ids:
            runs = out.setdefault(pid, [])
            if runs and runs[-1][1] == i - 1:
                runs[-1] = (runs[-1][0], i)
            else:
                runs.append((i, i))
    return out


def _need(d: dict, key: str, typ, where: str):
    if key not in d:
        raise TruthError(f"{where}: missing key {key!r}")
    v = d[key]
    if not isinstance(v, typ) or isinstance(v, bool):
        raise TruthError(f"{where}.{key}: expected {getattr(typ, '__name__', typ)}, got {v!r:.60}")
    return v


def load_truth(path: str | Path) -> GroundTruth:
    """Read and validate a ground-truth file; raises TruthError naming what is wrong."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise TruthError(f"ground truth {path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TruthError(f"ground truth {path}: not valid JSON ({e})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise TruthError(f"ground truth {path}: expected format {FORMAT!r}, got {d.get('format') if isinstance(d, dict) else type(d).__name__!r}")
    if d.get("version") != VERSION:
        raise TruthError(f"ground truth {path}: expected version {VERSION}, got {d.get('version')!r}")
    w = str(path)
    fps = float(_need(d, "fps", (int, float), w))
    n = _need(d, "frame_count", int, w)
    frames_raw = _need(d, "frames", list, w)
    if fps <= 0 or n < 0:
        raise TruthError(f"{w}: expected fps > 0 and frame_count >= 0, got {fps}, {n}")
    frames = []
    for i, fr in enumerate(frames_raw):
        if not isinstance(fr, list):
            raise TruthError(f"{w}.frames[{i}]: expected a list of polyps, got {fr!r:.60}")
        items = []
        for j, fp in enumerate(fr):
            where = f"{w}.frames[{i}][{j}]"
            if not isinstance(fp, dict):
                raise TruthError(f"{where}: expected an object, got {fp!r:.60}")
            box = _need(fp, "box", list, where)
            if len(box) != 4 or not all(isinstance(v, (int, float)) for v in box):
                raise TruthError(f"{where}.box: expected [x0, y0, x1, y1], got {box!r:.60}")
            polys = tuple(tuple((float(x), float(y)) for x, y in poly) for poly in fp.get("polygons", []))
            items.append(FramePolyp(int(_need(fp, "id", int, where)), tuple(float(v) for v in box), polys))
        frames.append(tuple(items))
    tracks = tuple(PolypTrack(int(_need(p, "id", int, f"{w}.polyps")), str(p.get("kind", "")),
                              tuple((int(a), int(b)) for a, b in _need(p, "intervals", list, f"{w}.polyps")))
                   for p in _need(d, "polyps", list, w))
    return GroundTruth(fps=fps, frame_count=n, width=int(d.get("width", 0)), height=int(d.get("height", 0)),
                       polyps=tracks, frames=tuple(frames), source=str(d.get("source", "")))
