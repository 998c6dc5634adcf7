"""Writing a synthetic clip: the video file (OpenCV mp4v, or H.264 through ffmpeg when present) and its truth."""
from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import cv2

from engines.synthetic.params import SynthParams
from engines.synthetic.renderer import SceneRenderer
from engines.truth import FramePolyp, GroundTruth, PolypTrack, intervals_from_frames
from engines.errors import PolypwatchError

log = logging.getLogger(__name__)
CODECS = ("mp4v", "h264", "mjpg")


def truth_path_for(video: str | Path) -> Path:
    """clip.mp4 -> clip.json (the name replay looks for by default)."""
    return Path(video).with_suffix(".json")


class _FfmpegWriter:
    """Raw BGR frames piped to ffmpeg's libx264 (argument list, no shell)."""

    def __init__(self, path: Path, params: SynthParams):
        exe = shutil.which("ffmpeg")
        if exe is None:
            raise PolypwatchError("codec h264: ffmpeg is not on PATH; use --codec mp4v")
        cmd = [exe, "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
               "-s", f"{params.width}x{params.height}", "-r", str(params.fps), "-i", "-",
               "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", str(path)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)

    def write(self, image) -> None:
        self.proc.stdin.write(image.tobytes())

    def release(self) -> None:
        self.proc.stdin.close()
        if self.proc.wait() != 0:
            raise PolypwatchError(f"ffmpeg failed with exit code {self.proc.returncode}")


def _open_writer(path: Path, params: SynthParams, codec: str):
    if codec == "h264":
        return _FfmpegWriter(path, params)
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if codec == "mp4v" else "MJPG"))
    w = cv2.VideoWriter(str(path), fourcc, float(params.fps), (params.width, params.height))
    if not w.isOpened():
        raise PolypwatchError(f"cannot open a {codec} video writer for {path}")
    return w


def write_clip(params: SynthParams, out: str | Path, codec: str = "mp4v",
               progress: Callable[[int, int], None] | None = None) -> GroundTruth:
    """Render the clip to ``out`` and its ground truth to ``truth_path_for(out)``; returns the truth."""
    if codec not in CODECS:
        raise PolypwatchError(f"codec: expected one of {CODECS}, got {codec!r}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    renderer = SceneRenderer(params)
    writer = _open_writer(out, params, codec)
    frames: list[tuple[FramePolyp, ...]] = []
    try:
        for i in range(params.frame_count):
            fr = renderer.render(i)
            writer.write(fr.image)
            frames.append(tuple(FramePolyp(q.polyp_id, q.box, q.polygons) for q in fr.polyps))
            if progress is not None:
                progress(i + 1, params.frame_count)
    finally:
        writer.release()
    truth = make_truth(renderer, frames, source=out.name)
    truth.write(truth_path_for(out))
    return truth


def make_truth(renderer: SceneRenderer, frames: list[tuple[FramePolyp, ...]], source: str = "") -> GroundTruth:
    p = renderer.params
    runs = intervals_from_frames([[fp.polyp_id for fp in f] for f in frames])
    kinds = {pid: sp.kind for pid, sp in renderer.sprites.items()}
    tracks = tuple(PolypTrack(pid, kinds.get(pid, ""), tuple(runs[pid])) for pid in sorted(runs))
    return GroundTruth(fps=float(p.fps), frame_count=len(frames), width=p.width, height=p.height,
                       polyps=tracks, frames=tuple(frames), source=source)
