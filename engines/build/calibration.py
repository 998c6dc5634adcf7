"""INT8 calibration data: frames from a folder or a video through the project's own preprocessing."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from engines.errors import DatasetError
from engines.runtime.preprocess import PreprocessSpec, preprocess
from engines.data.datasets import IMAGE_EXT


def calibration_frames(source: str | Path, count: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Up to ``count`` BGR frames spread over a folder of images or a video file."""
    src = Path(source)
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_EXT)
        if not files:
            raise DatasetError(f"calibration folder {src}: no images")
        idx = np.random.default_rng(seed).permutation(len(files))[:count]
        for i in sorted(idx):
            img = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
            if img is None:
                raise DatasetError(f"calibration image {files[i]}: unreadable")
            yield img
        return
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise DatasetError(f"calibration video {src}: cannot be opened")
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
        raise DatasetError(f"calibration video {src}: no frames")


def calibration_batches(source: str | Path, spec: PreprocessSpec, count: int, batch: int) -> Iterator[np.ndarray]:
    """Nx3xHxW float32 batches (the last one may be smaller) of preprocessed calibration frames."""
    buf = []
    for img in calibration_frames(source, count):
        buf.append(preprocess(img, spec).tensor[0])
        if len(buf) == batch:
            yield np.stack(buf)
            buf = []
    if buf:
        yield np.stack(buf)


def make_entropy_calibrator(trt, batches: list[np.ndarray], cache_path: Path):
    """An ``IInt8EntropyCalibrator2`` over the batches (device buffers through torch), with a cache file."""
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()
            self.batches = [b for b in batches if len(b) == len(batches[0])]
            self.k = 0
            self.device = torch.empty(self.batches[0].shape, dtype=torch.float32, device="cuda")

        def get_batch_size(self):
            return int(self.batches[0].shape[0])

        def get_batch(self, names):
            if self.k >= len(self.batches):
                return None
            self.device.copy_(torch.from_numpy(self.batches[self.k]))
            self.k += 1
            return [int(self.device.data_ptr())]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache):
            cache_path.write_bytes(bytes(cache))

    return EntropyCalibrator()
