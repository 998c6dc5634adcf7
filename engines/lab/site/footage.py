"""A site's polyp-free footage: recordings (videos, or folders of frames in name order), frames spread over each,
and what says they come from one tower. Bad footage gets a message that names it; nothing is written."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from engines.errors import ConfigError, SourceError
from engines.runtime.image_files import IMAGE_EXT
from engines.runtime.media import sniff_file
from engines.runtime.preprocess import PreprocessSpec, find_active_area

AREA_TOLERANCE = 0.08          # the active area's edges, as a share of the frame, may differ this much within a tower
SIZE_TOLERANCE = 0.05          # frame sides may differ this much within a tower (stills cropped by hand; SD vs HD do not)


class FootageError(ConfigError):
    """The footage cannot commission a site: too little, a single recording, two towers mixed."""


@dataclass(frozen=True, eq=False)
class Recording:
    path: Path
    frames: list[np.ndarray] = field(repr=False)      # BGR frames spread over the recording
    indices: list[int]                                # their frame numbers in the recording
    size: tuple[int, int]                              # width, height
    area: tuple[float, float, float, float]            # median active area, as shares of the frame
    fps: float = 0.0                                   # a video's own frame rate; 0 for a folder of frames

    @property
    def name(self) -> str:
        return self.path.name


def _frame_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXT),
                  key=lambda p: (len(p.stem), p.stem))


def _read_folder(folder: Path, per_recording: int) -> tuple[list[np.ndarray], list[int]]:
    files = _frame_files(folder)
    if not files:
        raise SourceError(f"{folder}: a folder with no image files")
    pick = np.unique(np.linspace(0, len(files) - 1, min(per_recording, len(files))).round().astype(int))
    frames = []
    for i in pick:
        if sniff_file(files[i]) is None:
            raise SourceError(f"{files[i]}: not an image its name says (its first bytes are no known image format)")
        img = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
        if img is None:
            raise SourceError(f"{files[i]}: unreadable image")
        frames.append(img)
    return frames, pick.tolist()


def _read_video(path: Path, per_recording: int) -> tuple[list[np.ndarray], list[int], float]:
    media = sniff_file(path)
    if media is None or media.kind != "video":
        raise SourceError(f"{path}: not a video or a folder of frames (its first bytes are no known container)")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise SourceError(f"{path}: the video cannot be opened")
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    step = max(1, n // per_recording) if n > 0 else 1
    frames, idx, i = [], [], 0
    while len(frames) < per_recording:
        ok, img = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(img)
            idx.append(i)
        i += 1
    cap.release()
    if not frames:
        raise SourceError(f"{path}: no frame could be decoded")
    return frames, idx, fps if 1 <= fps <= 240 else 0.0


def read_recording(path: str | Path, per_recording: int, spec: PreprocessSpec) -> Recording:
    p = Path(path)
    if not p.exists():
        raise SourceError(f"{p}: no such file or folder")
    frames, idx, fps = (*_read_folder(p, per_recording), 0.0) if p.is_dir() else _read_video(p, per_recording)
    sizes = sorted({(f.shape[1], f.shape[0]) for f in frames})
    w, h = (int(np.median([f.shape[1] for f in frames])), int(np.median([f.shape[0] for f in frames])))
    if any(not _close((sw, sh), (w, h)) for sw, sh in sizes):
        raise FootageError(f"{p}: frames of several sizes {sizes[:2]}...{sizes[-1:]}: one recording comes from one tower")
    areas = []
    for f in frames[:: max(1, len(frames) // 20)]:
        a, fh, fw = find_active_area(f, spec), f.shape[0], f.shape[1]
        areas.append((a.x0 / fw, a.y0 / fh, a.x1 / fw, a.y1 / fh))
    area = tuple(float(v) for v in np.median(np.array(areas), axis=0).round(3))
    return Recording(p, frames, idx, (w, h), area, fps)


def _close(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return all(abs(x - y) <= SIZE_TOLERANCE * max(x, y) for x, y in zip(a, b))


def tower_groups(recs: list[Recording]) -> list[list[Recording]]:
    """Recordings grouped by tower: the same frame size and an active area within AREA_TOLERANCE."""
    groups: list[list[Recording]] = []
    for r in recs:
        for g in groups:
            ref = g[0]
            if _close(ref.size, r.size) and max(abs(a - b) for a, b in zip(ref.area, r.area)) <= AREA_TOLERANCE:
                g.append(r)
                break
        else:
            groups.append([r])
    return groups


def describe_tower(r: Recording) -> str:
    x0, y0, x1, y1 = r.area
    return f"{r.size[0]}x{r.size[1]}, active area x {x0:.2f}-{x1:.2f}, y {y0:.2f}-{y1:.2f}"


def check_one_tower(recs: list[Recording]) -> None:
    groups = tower_groups(recs)
    if len(groups) > 1:
        lines = "; ".join(f"{', '.join(r.name for r in g)} ({describe_tower(g[0])})" for g in groups)
        raise FootageError(f"footage of {len(groups)} towers mixed: {lines}. Commission each tower on its own "
                           f"footage (a site model is for one tower's picture)")


def read_footage(paths: list[str | Path], per_recording: int, spec: PreprocessSpec, min_recordings: int,
                 min_frames: int) -> list[Recording]:
    """Every recording read, then checked: enough of them, enough frames, one tower."""
    if len({Path(p).resolve() for p in paths}) != len(paths):
        raise FootageError("--polyp-free: the same recording was given twice")
    recs = [read_recording(p, per_recording, spec) for p in paths]
    if len(recs) < min_recordings:
        raise FootageError(f"--polyp-free: {len(recs)} recording(s), expected at least {min_recordings}: the site's "
                           f"operating point is chosen on recordings the model did not train on (one is held out at a "
                           f"time), so a single recording cannot both train and judge it. Give several procedures")
    total = sum(len(r.frames) for r in recs)
    if total < min_frames:
        raise FootageError(f"--polyp-free: {total} frames in {len(recs)} recordings, expected at least {min_frames} "
                           f"(longer or more recordings)")
    check_one_tower(recs)
    return recs
