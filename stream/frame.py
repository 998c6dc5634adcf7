"""The Frame: the one object that leaves capture."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    """One captured video frame.

    seq: per-source sequence number of the capture (gaps mean frames the pipeline never processed).
    t_capture_ns: ``time.monotonic_ns()`` when the frame was read.
    t_wall_ns: ``time.time_ns()`` at the same moment (for logs and reports only, never for latency).
    image: HxWx3 uint8, BGR.
    source: source id (from config or the source URI).
    index: frame index inside a finite source (file / folder / synthetic), else equal to seq.
    """

    seq: int
    t_capture_ns: int
    t_wall_ns: int
    image: np.ndarray
    source: str
    index: int = -1

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray):
            raise TypeError(f"Frame.image: expected numpy.ndarray, got {type(img).__name__}")
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(
                f"Frame.image: expected HxWx3 uint8 (BGR), got shape {img.shape} dtype {img.dtype}"
            )
        if img.shape[0] < 16 or img.shape[1] < 16:
            raise ValueError(f"Frame.image: expected at least 16x16 pixels, got {img.shape[1]}x{img.shape[0]}")
        if self.seq < 0:
            raise ValueError(f"Frame.seq: expected >= 0, got {self.seq}")
        if self.index < 0:
            object.__setattr__(self, "index", self.seq)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
