"""The endoscope's active area between frames: ``ActiveAreaTracker`` owns it (the area in use, when to search again,
its keep mask). When to search again: cheap enough for every frame, safe when the view changes.

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

from engines.runtime.preprocess import (
    ActiveArea,
    PreprocessSpec,
    crop_to_input,
    crop_to_input_at_depth,
    find_active_area,
    keep_mask,
    pyramid,
    pyramid_depth,
)

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


class ActiveAreaTracker:
    """The one owner of the active area's state: the area now in use, the schedule that says when to search again
    (``BorderWatch``), and its keep mask. The CPU path asks ``crop``, the device and batched paths ``area_for``."""

    def __init__(self, spec: PreprocessSpec, every: int):
        self.spec = spec
        self.watch = BorderWatch(every, spec.border_threshold)
        self.area: ActiveArea | None = None
        self._keep: tuple[ActiveArea, np.ndarray] | None = None

    def reset(self) -> None:
        """Forget the area and the schedule (after a warm-up on a made-up frame)."""
        self.area, self._keep = None, None
        self.watch = BorderWatch(self.watch.every, self.spec.border_threshold)

    def area_for(self, image: np.ndarray, levels: list[np.ndarray] | None = None) -> ActiveArea:
        """The active area of this frame, searched again when ``BorderWatch`` says so. ``levels``: the pyramid
        already built for this frame; without one it is built only when the area is searched."""
        if self.area is not None and not self.watch.due(image):
            self.watch.skipped()
            return self.area
        return self._search(image, levels)

    def _search(self, image: np.ndarray, levels: list[np.ndarray] | None) -> ActiveArea:
        if levels is None:          # the pyramid the CPU path builds, so that every path finds the same area
            levels = pyramid(image, max(self.spec.analysis_width, self.spec.input_width))
        self.area = find_active_area(image, self.spec, levels)
        self.watch.searched(image, self.area)
        return self.area

    def crop(self, image: np.ndarray) -> tuple[np.ndarray, ActiveArea]:
        """(the frame's crop at the model's input size, its area): on a search the whole pyramid is built; between
        searches only the crop's region of the frame is halved (the same pixels, less work)."""
        spec = self.spec
        if self.area is None or self.watch.due(image):
            levels = pyramid(image, max(spec.analysis_width, spec.input_width))
            area = self._search(image, levels)
            return crop_to_input(image, area, spec, levels), area
        self.watch.skipped()
        area = self.area
        h, w = image.shape[:2]
        return crop_to_input_at_depth(image, area, spec, pyramid_depth(h, w, spec), self._keep_for(area)), area

    def _keep_for(self, area: ActiveArea) -> np.ndarray:
        """The area's keep mask, drawn once per area (not once per frame)."""
        if self._keep is None or self._keep[0] is not area:
            self._keep = (area, keep_mask(area, self.spec))
        return self._keep[1]
