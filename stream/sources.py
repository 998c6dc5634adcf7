"""Video sources behind one interface: OpenCV devices, files, URLs, numbered-frame folders, synthetic video."""
from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import parse_qsl

import cv2
import numpy as np

from engines.runtime.image_files import IMAGE_EXT
from engines.runtime.media import KNOWN, sniff_file
from engines.errors import FrameUnreadable, SourceEnded, SourceError


class Source:
    """``open()``, then ``read() -> (image, index)``; raises SourceError on failure, SourceEnded at the end."""

    live = False        # a live source is reopened with backoff when it fails
    finite = False      # a finite source ends (file, folder)
    fps = 0.0
    source_id = ""

    def open(self) -> None: ...

    def read(self) -> tuple[np.ndarray, int]:
        raise NotImplementedError

    def close(self) -> None: ...

    def frame_shape(self) -> tuple[int, int, int] | None:
        """(height, width, 3) of the frames it will deliver, once open, where the source knows it; else None."""
        return None


def _check_image(img, where: str) -> np.ndarray:
    if img is None or not isinstance(img, np.ndarray):
        raise SourceError(f"{where}: no image")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype != np.uint8:
        raise SourceError(f"{where}: expected an 8-bit colour image, got shape {img.shape} dtype {img.dtype}")
    if img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


class OpenCVSource(Source):
    """A device (index or /dev/videoN, V4L2), a video file or a URL (rtsp/http), read with cv2.VideoCapture."""

    def __init__(self, target: str, width: int = 0, height: int = 0, fps: float = 0.0, fourcc: str = ""):
        self.target = target
        self.is_device = target.isdigit() or target.startswith("/dev/video")
        self.is_url = bool(re.match(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp)://", target))
        self.live = self.is_device or self.is_url
        self.finite = not self.live
        self.width, self.height, self.req_fps, self.fourcc = width, height, fps, fourcc
        self.source_id = f"device:{target}" if self.is_device else (target if self.is_url else Path(target).name)
        self.cap = None
        self.index = -1

    def open(self) -> None:
        if not self.live and not Path(self.target).is_file():
            raise SourceError(f"video {self.target}: file not found")
        if self.is_device:
            dev = int(self.target) if self.target.isdigit() else self.target
            cap = cv2.VideoCapture(dev, cv2.CAP_V4L2)
            if self.fourcc:
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc[:4].ljust(4)))
            if self.width and self.height:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            if self.req_fps:
                cap.set(cv2.CAP_PROP_FPS, self.req_fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)    # never let the driver queue old frames
        elif self.is_url:
            cap = cv2.VideoCapture(self.target)
        else:                 # a file: only as the container its first bytes name (make_source checked them)
            cap = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{'device' if self.is_device else 'video'} {self.target}: cannot be opened")
        self.cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(self.req_fps or (fps if fps and 0 < fps < 1000 else 30.0))
        self.index = -1

    def frame_shape(self) -> tuple[int, int, int] | None:
        if self.cap is None:
            return None
        w, h = int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        return (h, w, 3) if w > 0 and h > 0 else None

    def read(self) -> tuple[np.ndarray, int]:
        if self.cap is None:
            raise SourceError(f"{self.source_id}: read before open")
        ok, img = self.cap.read()
        if not ok:
            if self.finite:
                raise SourceEnded(f"{self.source_id}: end of file after {self.index + 1} frames")
            raise SourceError(f"{self.source_id}: no frame (signal lost?)")
        self.index += 1
        return _check_image(img, f"{self.source_id} frame {self.index}"), self.index

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


def numbered_frames(folder: Path) -> list[Path]:
    """Image files of a folder in numeric order of the number in their names (1.jpg, 2.jpg, ..., 10.jpg)."""
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXT]
    if not files:
        raise SourceError(f"folder {folder}: no image files ({', '.join(sorted(IMAGE_EXT))})")

    def key(p: Path):
        nums = re.findall(r"\d+", p.stem)
        return (int(nums[-1]) if nums else -1, p.name)
    return sorted(files, key=key)


class FolderSource(Source):
    """A folder of numbered frames (CVC-ClinicDB / CVC-ColonDB layout), read in numeric order at ``fps``."""

    finite = True

    def __init__(self, folder: str, fps: float = 0.0):
        self.folder = Path(folder)
        self.fps = fps or 25.0
        self.source_id = self.folder.name
        self.files: list[Path] = []
        self.index = -1

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"folder {self.folder}: not found")
        self.files = numbered_frames(self.folder)
        self.index = -1

    def frame_shape(self) -> tuple[int, int, int] | None:
        if not self.files:
            return None
        img = cv2.imread(str(self.files[0]), cv2.IMREAD_COLOR)
        return None if img is None else (img.shape[0], img.shape[1], 3)

    def read(self) -> tuple[np.ndarray, int]:
        self.index += 1
        if self.index >= len(self.files):
            raise SourceEnded(f"{self.source_id}: end of folder after {len(self.files)} frames")
        p = self.files[self.index]
        try:
            return _check_image(cv2.imread(str(p), cv2.IMREAD_COLOR), f"frame {p}"), self.index
        except SourceError as e:       # one bad file of a folder: skipped and counted by the reader, never an end
            raise FrameUnreadable(f"{e} (not an image OpenCV can decode); skipped and counted", self.index) from None


class ImageSource(FolderSource):
    """One still image file: a source of one frame."""

    def __init__(self, path: str, fps: float = 0.0):
        super().__init__(str(Path(path).parent), fps)
        self.path = Path(path)
        self.source_id = self.path.name

    def open(self) -> None:
        if not self.path.is_file():
            raise SourceError(f"image {self.path}: file not found")
        self.files = [self.path]
        self.index = -1


def check_media_file(path: str | Path) -> str:
    """'image' or 'video': what a file is, from its first bytes; anything else is a SourceError."""
    try:
        open(path, "rb").close()
    except OSError as e:
        raise SourceError(f"{path}: cannot be read ({e.strerror or e})") from None
    media = sniff_file(path)
    if media is None:
        what = "empty" if Path(path).is_file() and Path(path).stat().st_size == 0 else "not an image or a video"
        raise SourceError(f"{path}: {what} polypwatch can read ({KNOWN}; told from the file's first bytes, not "
                          f"its name)")
    return media.kind


class SyntheticSource(Source):
    """Generated colonoscopy video: ``synthetic://seed=3&size=1920x1080&fps=30&seconds=60``.

    Live-like: when paced, the frame shown is the one due at the current time (slow rendering skips frames,
    as a real tower's output would not wait either).
    """

    def __init__(self, query: str, fps: float = 0.0):
        from engines.synthetic.params import SynthParams, parse_size
        opts = dict(parse_qsl(query.replace(",", "&"), keep_blank_values=True))
        allowed = {"seed", "size", "fps", "seconds"}
        unknown = set(opts) - allowed
        if unknown:
            raise SourceError(f"synthetic source: unknown option(s) {sorted(unknown)}; expected {sorted(allowed)}")
        try:
            w, h = parse_size(opts.get("size", "640x480"))
            rate, seconds = float(opts.get("fps", fps or 30)), float(opts.get("seconds", 60))
            if not (1 <= rate <= 240) or not (0 < seconds <= 86400):
                raise ValueError(f"fps: expected 1..240 and seconds: 0..86400, got fps={rate} seconds={seconds}")
            self.params = SynthParams(seed=int(opts.get("seed", 1)), seconds=seconds, width=w, height=h, fps=int(rate))
        except (ValueError, OverflowError) as e:
            raise SourceError(f"synthetic source: {str(e)[:200]}") from None
        self.fps = float(self.params.fps)
        self.finite = True
        self.source_id = f"synthetic:seed={self.params.seed}"
        self.renderer = None
        self.index = -1
        self.clock_start: int | None = None     # set by the reader when pacing by the clock

    def open(self) -> None:
        from engines.synthetic import SceneRenderer
        if self.renderer is None:
            self.renderer = SceneRenderer(self.params)
        self.index = -1

    def frame_shape(self) -> tuple[int, int, int] | None:
        return (self.params.height, self.params.width, 3)

    def read(self) -> tuple[np.ndarray, int]:
        if self.clock_start is not None:
            due = int((time.monotonic_ns() - self.clock_start) * self.fps // 1_000_000_000)
            self.index = max(self.index + 1, due)
        else:
            self.index += 1
        if self.index >= self.params.frame_count:
            raise SourceEnded(f"{self.source_id}: end after {self.params.frame_count} frames")
        return self.renderer.render(self.index).image, self.index


def make_source(spec: str, width: int = 0, height: int = 0, fps: float = 0.0, fourcc: str = "") -> Source:
    """A source from its description: ``0``, ``/dev/video2``, ``rtsp://...``, ``clip.mp4``, ``frames/``,
    ``synthetic://seed=3``."""
    if not spec:
        raise SourceError("capture.source: expected a device, file, folder, URL or synthetic://, got ''")
    if spec.startswith("synthetic://"):
        return SyntheticSource(spec[len("synthetic://"):], fps)
    if Path(spec).is_dir():
        return FolderSource(spec, fps)
    if Path(spec).is_file() and check_media_file(spec) == "image":
        return ImageSource(spec, fps)
    return OpenCVSource(spec, width, height, fps, fourcc)
