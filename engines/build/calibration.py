"""INT8 calibration data: frames from a folder or a video through the project's own preprocessing."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from engines.data.recordings import spread_frames
from engines.runtime.preprocess import PreprocessSpec, preprocess


def calibration_batches(source: str | Path, spec: PreprocessSpec, count: int, batch: int) -> Iterator[np.ndarray]:
    """Nx3xHxW float32 batches (the last one may be smaller) of preprocessed calibration frames."""
    buf = []
    for img in spread_frames(source, count, what="calibration"):
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
