"""Frames spread over a recording: a folder of images or a video file (INT8 calibration, engine parity checks)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from engines.runtime.image_files import IMAGE_EXT
from engines.errors import DatasetError


def spread_frames(source: str | Path, count: int, seed: int = 0, what: str = "recording") -> Iterator[np.ndarray]:
    """Up to ``count`` BGR frames spread over a folder of images (a seeded choice, in name order) or a video file
    (every n-th frame). ``what`` names the source in error messages."""
    src = Path(source)
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_EXT)
        if not files:
            raise DatasetError(f"{what} folder {src}: no images")
        idx = np.random.default_rng(seed).permutation(len(files))[:count]
        for i in sorted(idx):
            img = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
            if img is None:
                raise DatasetError(f"{what} image {files[i]}: unreadable")
            yield img
        return
    if not src.is_file():
        raise DatasetError(f"{what} {src}: no such file or folder")
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise DatasetError(f"{what} video {src}: cannot be opened")
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or count
    step = max(1, n // count)
    got, i = 0, 0
    while got < count:
        ok, img = cap.read()
        if not ok:
            break
        if i % step == 0:
            got += 1
            yield img
        i += 1
    cap.release()
    if got == 0:
        raise DatasetError(f"{what} video {src}: no frames")
