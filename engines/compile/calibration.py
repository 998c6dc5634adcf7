"""Calibration and check frames as compile takes them: a folder of frames, a video, or a reader of BGR frames that
the caller hands in (the lab's protocol frames: engines/lab/data/calibration.py), through the project's own
preprocessing. Compile knows nothing of data sets or sources: what the frames are and why they were chosen is the
caller's, recorded as the set's ``info``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

from engines.compile.recordings import spread_frames
from engines.runtime.preprocess import PreprocessSpec, preprocess


@dataclasses.dataclass(frozen=True)
class CalibrationSet:
    """Where calibration frames come from: ``reader(count)`` (BGR frames the caller chose) or ``path`` (a folder or
    video). ``info`` describes a reader's frames (recorded in the quantised model's metadata)."""

    name: str                                  # recorded in the quantised model's metadata
    path: str = ""
    reader: Callable[[int], Iterator[np.ndarray]] | None = None
    info: Mapping = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.reader is None) == (not self.path):
            raise ValueError(f"calibration set {self.name!r}: expected a path or a reader, exactly one")

    @classmethod
    def from_images(cls, name: str, images, info: Mapping | None = None) -> "CalibrationSet":
        """Frames already in memory: an N x H x W x 3 uint8 array or a sequence of BGR images."""
        frames = tuple(images)
        return cls(name, reader=lambda count: iter(frames[:count]), info=dict(info or {}))

    def frames(self, count: int) -> Iterator[np.ndarray]:
        if self.reader is not None:
            yield from self.reader(count)
        else:
            yield from spread_frames(self.path, count, what="calibration")

    def describe(self) -> dict:
        return {"set": self.name, **self.info} if self.reader is not None else {"set": self.name, "path": self.path}


def calibration_batches(source: CalibrationSet | str | Path, spec: PreprocessSpec, count: int,
                        batch: int) -> Iterator[np.ndarray]:
    """Nx3xHxW float32 batches (the last one may be smaller) of preprocessed calibration frames."""
    cal = source if isinstance(source, CalibrationSet) else CalibrationSet(str(source), path=str(source))
    buf = []
    for img in cal.frames(count):
        buf.append(preprocess(img, spec).tensor[0])
        if len(buf) == batch:
            yield np.stack(buf)
            buf = []
    if buf:
        yield np.stack(buf)
