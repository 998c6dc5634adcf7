"""What the model says about one frame: the result type that leaves ``engines`` for the pipeline."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Box:
    """Normalised full-frame box (0..1, x right, y down) with its score."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    def __post_init__(self) -> None:
        for name in ("x0", "y0", "x1", "y1", "score"):
            v = getattr(self, name)
            if not (0.0 <= v <= 1.0):
                raise ValueError(f"Box.{name}: expected 0..1, got {v!r}")
        if self.x1 < self.x0 or self.y1 < self.y0:
            raise ValueError(f"Box: expected x0<=x1 and y0<=y1, got ({self.x0}, {self.y0}, {self.x1}, {self.y1})")

    def to_list(self) -> list[float]:
        return [self.x0, self.y0, self.x1, self.y1, self.score]

    @classmethod
    def from_list(cls, values: list[float]) -> "Box":
        if len(values) != 5:
            raise ValueError(f"Box: expected [x0, y0, x1, y1, score], got {len(values)} values")
        return cls(*(float(v) for v in values))


@dataclass(frozen=True)
class ModelResult:
    """One frame through the detector: raw score, full-frame boxes, and the monotonic end time of each step."""

    score: float
    boxes: tuple[Box, ...]
    t_preprocess_ns: int
    t_infer_ns: int
    t_postprocess_ns: int
    heatmap: np.ndarray | None = field(default=None, compare=False)   # frame-size HxW float32 0..1, on request
