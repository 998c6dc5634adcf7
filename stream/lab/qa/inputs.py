"""What replay reads: a video file or a folder of numbered frames, and the ground truth that goes with it."""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engines.truth import FramePolyp, GroundTruth, PolypTrack, intervals_from_frames, load_truth
from engines.errors import SourceError, TruthError
from stream.sources import IMAGE_EXT, check_media_file, numbered_frames

VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".m4v", ".webm", ".ts"}


@dataclass(frozen=True)
class ReplayInput:
    name: str
    source: str                  # what capture opens (a video file or a folder of frames)
    frame_count: int
    fps: float
    truth: GroundTruth | None
    sequence_starts: tuple[int, ...] = ()    # frame indices where another recorded sequence begins


LIST_EXT = {".txt", ".list"}


def _is_frame_folder(p: Path) -> bool:
    return p.is_dir() and ((p / "images").is_dir() or any(q.suffix.lower() in IMAGE_EXT for q in p.iterdir()))


def _folder_inputs(p: Path) -> list[Path]:
    """A folder of recordings: its videos and its frame folders, sorted by name."""
    found = sorted(q for q in p.iterdir() if (q.is_file() and q.suffix.lower() in VIDEO_EXT) or _is_frame_folder(q))
    if not found:
        raise SourceError(f"{p}: no videos ({', '.join(sorted(VIDEO_EXT))}), no frames and no frame folders")
    return found


def _list_file(p: Path) -> list[Path]:
    """One input per line (relative to the list file's folder); blank lines and # comments are skipped."""
    out = []
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SourceError(f"list file {p}: not UTF-8 text (one input path a line was expected)") from None
    except OSError as e:
        raise SourceError(f"list file {p}: cannot be read ({e.strerror or e})") from None
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            q = Path(line)
            out.append(q if q.is_absolute() else p.parent / q)
    if not out:
        raise SourceError(f"list file {p}: names no input")
    return out


def expand_inputs(paths: list[str]) -> tuple[list[Path], bool]:
    """(inputs, whether they make a study). An input is a video or a folder of frames; a folder of recordings,
    a list file (.txt/.list, one path a line) or a glob pattern stands for every input it names, and makes a
    study (one output folder per input) even when it names one."""
    out, study = [], len(paths) > 1
    for arg in paths:
        p = Path(arg)
        if any(ch in arg for ch in "*?[") and not p.exists():
            hits = sorted(Path(h) for h in glob.glob(arg, recursive=True))
            hits = [h for h in hits if (h.is_file() and h.suffix.lower() in VIDEO_EXT) or _is_frame_folder(h)]
            if not hits:
                raise SourceError(f"{arg}: the pattern matches no video and no frame folder")
            out += hits
            study = True
        elif p.is_dir() and not _is_frame_folder(p):
            out += _folder_inputs(p)
            study = True
        elif p.is_file() and p.suffix.lower() in LIST_EXT:
            out += _list_file(p)
            study = True
        elif p.exists():
            out.append(p)
        else:
            raise SourceError(f"{p}: not found")
    return out, study or len(out) > 1


def _video_info(path: Path) -> tuple[int, float]:
    if check_media_file(path) == "image":
        return 1, 0.0
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise SourceError(f"video {path}: cannot be opened")
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or 25.0
    cap.release()
    if n <= 0:
        raise SourceError(f"video {path}: no frames")
    return n, fps


def truth_from_masks(frames: list[Path], mask_dir: Path, fps: float, sequences: dict[str, str]) -> GroundTruth:
    """Frames with masks: positive when the mask is non-empty; each sequence of the table is one polyp."""
    masks = {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() in IMAGE_EXT}
    per_frame, ids = [], []
    w = h = 0
    for f in frames:
        mp = masks.get(f.stem)
        if mp is None:
            raise TruthError(f"{mask_dir}: no mask for frame {f.name}")
        m = cv2.imread(str(mp), cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise TruthError(f"{mp}: unreadable mask")
        h, w = m.shape
        ys, xs = np.nonzero(m > 127)
        if len(xs) == 0:
            per_frame.append(())
            ids.append([])
            continue
        pid = int(sequences.get(f.stem, "1")) if sequences.get(f.stem, "1").isdigit() else 1
        box = (xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h)
        per_frame.append((FramePolyp(pid, tuple(round(v, 5) for v in box)),))
        ids.append([pid])
    runs = intervals_from_frames(ids)
    tracks = tuple(PolypTrack(pid, "", tuple(runs[pid])) for pid in sorted(runs))
    return GroundTruth(fps=fps, frame_count=len(frames), width=w, height=h, polyps=tracks, frames=tuple(per_frame),
                       source=str(mask_dir))


def sequence_starts(frames: list[Path], table: dict[str, str]) -> tuple[int, ...]:
    """Where each recorded sequence of a frame folder begins (after the first), from its sequence table."""
    ids = [table.get(f.stem, "") for f in frames]
    return tuple(i for i in range(1, len(ids)) if ids[i] != ids[i - 1])


def resolve_input(path: Path, truth_path: str | None, fps: float = 0.0) -> ReplayInput:
    """The source, frame count and truth of one replay input; raises with a clear message if they disagree."""
    if path.is_dir():
        from engines.lab.data.datasets import _sequence_table
        # a dataset's layout (DIR/images beside DIR/masks): its tables are DIR's; a plain folder of frames has its own
        # and never reads its parent's (a README or sequences.csv there belongs to someone else)
        if (path / "images").is_dir():
            root, frames_dir = path, path / "images"
        elif path.name == "images" and (path.parent / "masks").is_dir():
            root, frames_dir = path.parent, path
        else:
            root, frames_dir = path, path
        frames = numbered_frames(frames_dir)
        rate = fps or 25.0
        table = _sequence_table(root, {f.stem for f in frames})
        truth = None
        if truth_path:
            truth = load_truth(truth_path)
        elif (root / "masks").is_dir():
            truth = truth_from_masks(frames, root / "masks", rate, table)
        inp = ReplayInput(path.name, str(frames_dir), len(frames), rate, truth, sequence_starts(frames, table))
    else:
        n, vfps = _video_info(path)
        tp = Path(truth_path) if truth_path else path.with_suffix(".json")
        truth = load_truth(tp) if (truth_path or tp.is_file()) else None
        inp = ReplayInput(path.stem, str(path), n, fps or vfps or 25.0, truth)
    if inp.truth is not None and inp.truth.frame_count != inp.frame_count:
        raise TruthError(f"ground truth has {inp.truth.frame_count} frames, the input {inp.source} has "
                         f"{inp.frame_count}: they do not belong together")
    return inp
