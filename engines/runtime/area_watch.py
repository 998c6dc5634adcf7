"""When to search the endoscope's active area again: cheap enough for every frame, safe when the view changes.

The search itself (``find_active_area``) costs a small resize, a morphology pass and a contour; on a GPU host it
was 0.6 ms a frame. The area does not move within a procedure, but it does change when the tower switches layout
(picture-in-picture, full screen), the scope or the processor changes, or the source size changes. So it is
searched again:
- every ``every`` frames (the configured ``preprocess.active_area_every``),
- at once when the frame size changes,
- at once when grid points that were dark border at the last search turn bright (``min_cells`` of a 16x16 grid of
  single pixels: a few microseconds a frame). A dark lumen inside the area does not trigger it; an area that
  shrinks is caught by the periodic search.
"""
from __future__ import annotations

import cv2
import numpy as np

from engines.runtime.preprocess import ActiveArea

GRID = 16


def _grid_indices(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys = ((np.arange(GRID) + 0.5) * h / GRID).astype(np.intp)
    xs = ((np.arange(GRID) + 0.5) * w / GRID).astype(np.intp)
    return ys, xs


class BorderWatch:
    def __init__(self, every: int, threshold: int, min_cells: int = 3):
        if every < 1:
            raise ValueError(f"BorderWatch.every: expected >= 1, got {every}")
        self.every, self.threshold, self.min_cells = every, threshold, min_cells
        self._shape: tuple[int, ...] = ()
        self._idx: tuple[np.ndarray, np.ndarray] | None = None
        self._dark_outside = np.zeros((GRID, GRID), bool)
        self._since = 0
        self.searches = 0
        self.triggered = 0        # searches caused by the border check (not by the schedule or a new size)

    def _bright(self, image: np.ndarray) -> np.ndarray:
        ys, xs = self._idx
        return image[ys[:, None], xs[None, :]].max(axis=2) > self.threshold

    def due(self, image: np.ndarray) -> bool:
        """True when the area must be searched on this frame (call ``searched`` after the search)."""
        if image.shape != self._shape or self._since + 1 >= self.every:
            return True
        if int((self._bright(image) & self._dark_outside).sum()) >= self.min_cells:
            self.triggered += 1
            return True
        return False

    def searched(self, image: np.ndarray, area: ActiveArea) -> None:
        h, w = image.shape[:2]
        if image.shape != self._shape:
            self._shape = image.shape
            self._idx = _grid_indices(h, w)
        ys, xs = self._idx
        inside = np.zeros((h // 8 + 1, w // 8 + 1), np.uint8)
        cv2.fillPoly(inside, [np.round(area.polygon / 8.0).astype(np.int32)], 1)
        outside = inside[ys // 8][:, xs // 8] == 0
        self._dark_outside = outside & ~self._bright(image)
        self._since = 0
        self.searches += 1

    def skipped(self) -> None:
        self._since += 1
