"""Frame -> model input. One function, used identically by training, evaluation and the live pipeline.

Steps: find the endoscope's active area (the bright circular/octagonal image inside the black border),
crop to it, resize to the model's input, black out everything outside the active area (burned-in tower
text) and the lower-left corner where scope-guide thumbnails sit, convert colour order, normalise.
The settings come from the model file's metadata (see ``engines.runtime.metadata``), never from constants here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np


@dataclass(frozen=True)
class PreprocessSpec:
    input_height: int = 256
    input_width: int = 256
    color_order: str = "RGB"            # channel order the model expects
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)   # in model colour order, 0..255 scale
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    border_threshold: int = 24          # grey level separating the black border from the image
    analysis_width: int = 160           # width at which the active area is searched
    min_area_fraction: float = 0.15     # smaller bright regions are not an active area: use the full frame
    corner_mask: tuple[float, float] = (0.30, 0.70)  # lower-left region x < a*W, y > b*H blacked out; (0, 1) = off

    def __post_init__(self) -> None:
        if self.color_order not in ("RGB", "BGR"):
            raise ValueError(f"PreprocessSpec.color_order: expected 'RGB' or 'BGR', got {self.color_order!r}")
        if not (16 <= self.input_height <= 2048 and 16 <= self.input_width <= 2048):
            raise ValueError(f"PreprocessSpec input size: expected 16..2048, got {self.input_width}x{self.input_height}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"PreprocessSpec mean/std: expected 3 values each, std > 0; got {self.mean}, {self.std}")
        a, b = self.corner_mask
        if not (0.0 <= a <= 1.0 and 0.0 <= b <= 1.0):
            raise ValueError(f"PreprocessSpec.corner_mask: expected two fractions 0..1, got {self.corner_mask}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"], d["corner_mask"] = list(self.mean), list(self.std), list(self.corner_mask)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessSpec":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"PreprocessSpec: unknown keys {sorted(unknown)}; expected some of {sorted(known)}")
        kw = dict(d)
        for k in ("mean", "std", "corner_mask"):
            if k in kw:
                kw[k] = tuple(float(v) for v in kw[k])
        return cls(**kw)


@dataclass(frozen=True, eq=False)
class ActiveArea:
    """Where the endoscope image lies in the full frame (pixels) and its outline polygon."""

    x0: int
    y0: int
    x1: int
    y1: int
    polygon: np.ndarray  # Nx2 int32, full-frame pixel coordinates

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


@dataclass(frozen=True, eq=False)
class Preprocessed:
    """Model input for one frame and the geometry needed to map outputs back to the full frame."""

    tensor: np.ndarray  # 1x3xHxW float32
    area: ActiveArea
    frame_width: int
    frame_height: int


def _halve(img: np.ndarray) -> np.ndarray:
    """Exact 2x2 box-average downscale (INTER_LINEAR at exactly one half): cheap anti-aliasing."""
    h, w = img.shape[:2]
    return cv2.resize(img[: h // 2 * 2, : w // 2 * 2], (w // 2, h // 2), interpolation=cv2.INTER_LINEAR)


def pyramid(image: np.ndarray, min_width: int) -> list[np.ndarray]:
    """[image, image/2, image/4, ...] down to the last level at least ``min_width`` wide."""
    levels = [image]
    while levels[-1].shape[1] >= 2 * min_width and levels[-1].shape[0] >= 32:
        levels.append(_halve(levels[-1]))
    return levels


def find_active_area(image: np.ndarray, spec: PreprocessSpec, _levels: list[np.ndarray] | None = None) -> ActiveArea:
    """Largest bright connected region of the frame, searched on a small copy (text strokes are opened away)."""
    h, w = image.shape[:2]
    levels = _levels if _levels is not None else pyramid(image, spec.analysis_width)
    scale = w / spec.analysis_width
    sw, sh = spec.analysis_width, max(8, int(round(h / scale)))
    small = cv2.resize(levels[-1], (sw, sh), interpolation=cv2.INTER_LINEAR)
    b, g, r = cv2.split(small)
    gray = cv2.max(cv2.max(b, g), r)
    binary = (gray > spec.border_threshold).astype(np.uint8)
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, _KERNEL)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    full = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.int32)
    if n <= 1:
        return ActiveArea(0, 0, w, h, full)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if stats[best, cv2.CC_STAT_AREA] < spec.min_area_fraction * sw * sh:
        return ActiveArea(0, 0, w, h, full)
    contours, _ = cv2.findContours((labels == best).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(max(contours, key=cv2.contourArea)).reshape(-1, 2).astype(np.float64)
    # pixel centres of the small image back to full-frame pixel edges
    hull = (hull + 0.5) * np.array([w / sw, h / sh])
    hull = np.clip(np.round(hull), 0, [w, h]).astype(np.int32)
    x0, y0 = hull.min(axis=0)
    x1, y1 = hull.max(axis=0)
    if x1 - x0 < 16 or y1 - y0 < 16:
        return ActiveArea(0, 0, w, h, full)
    return ActiveArea(int(x0), int(y0), int(x1), int(y1), hull)


_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


def crop_to_input(image: np.ndarray, area: ActiveArea, spec: PreprocessSpec,
                  _levels: list[np.ndarray] | None = None) -> np.ndarray:
    """Crop to the active area, resize to the model input, black out outside the outline and the corner.

    Returns HxWx3 uint8 in the frame's BGR order (what augmentation and review images work on).
    The crop is taken from the smallest pyramid level that still has at least the input's resolution.
    """
    levels = _levels if _levels is not None else [image]
    k, (x0, y0, x1, y1) = crop_level(area, spec, len(levels))
    return resize_and_mask(levels[k][y0:y1, x0:x1], area, spec)


def crop_to_input_at_depth(image: np.ndarray, area: ActiveArea, spec: PreprocessSpec, depth: int,
                           keep: np.ndarray | None = None) -> np.ndarray:
    """``crop_to_input(image, area, spec, pyramid(image, ...))`` of a pyramid ``depth`` levels deep, to the pixel,
    halving only the crop's region of the frame instead of the whole frame (the live path between area searches:
    the border and the tower's text around the scope image are never halved). A pyramid level is an exact 2x2
    average of the one above it, so the level-k crop is the crop's aligned full-resolution region halved k times.
    ``keep``: the area's keep mask, when the caller holds it already."""
    k, (x0, y0, x1, y1) = crop_level(area, spec, depth)
    region = image[y0 << k:y1 << k, x0 << k:x1 << k]
    for _ in range(k):
        region = _halve(region)
    return resize_and_mask(region, area, spec, keep)


def resize_and_mask(crop: np.ndarray, area: ActiveArea, spec: PreprocessSpec,
                    keep: np.ndarray | None = None) -> np.ndarray:
    """The crop at the model's input size (INTER_AREA), black outside the outline and in the corner."""
    out = cv2.resize(crop, (spec.input_width, spec.input_height), interpolation=cv2.INTER_AREA)
    keep = keep_mask(area, spec) if keep is None else keep
    return cv2.bitwise_and(out, out, mask=keep)      # = out * keep (0/1), without numpy's broadcast multiply


def crop_level(area: ActiveArea, spec: PreprocessSpec, n_levels: int) -> tuple[int, tuple[int, int, int, int]]:
    """The pyramid level the crop is taken from (the smallest with at least the input's resolution) and the crop
    box in that level's pixels."""
    H, W = spec.input_height, spec.input_width
    k = 0
    while k + 1 < n_levels and area.width >> (k + 1) >= W and area.height >> (k + 1) >= H:
        k += 1
    return k, (area.x0 >> k, area.y0 >> k, max((area.x0 >> k) + 1, area.x1 >> k), max((area.y0 >> k) + 1, area.y1 >> k))


def pyramid_depth(height: int, width: int, spec: PreprocessSpec) -> int:
    """How many levels ``pyramid`` builds for a frame of this size in the live path (Detector.preprocess)."""
    n, min_width = 1, max(spec.analysis_width, spec.input_width)
    while width >= 2 * min_width and height >= 32:
        width, height, n = width // 2, height // 2, n + 1
    return n


def keep_mask(area: ActiveArea, spec: PreprocessSpec) -> np.ndarray:
    """Model-input-sized HxW uint8 0/1: inside the active-area outline and outside the blacked-out corner."""
    H, W = spec.input_height, spec.input_width
    keep = np.zeros((H, W), dtype=np.uint8)
    poly = (area.polygon - np.array([area.x0, area.y0])) * np.array([W / area.width, H / area.height])
    cv2.fillPoly(keep, [np.round(poly).astype(np.int32)], 1)
    return apply_corner_mask(keep, spec)


def normalise(img_bgr: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """HxWx3 uint8 BGR -> 1x3xHxW float32 in the model's colour order and normalisation."""
    order = [2, 1, 0] if spec.color_order == "RGB" else [0, 1, 2]
    planes = img_bgr.transpose(2, 0, 1)[order].astype(np.float32)   # 3xHxW, model colour order
    planes -= np.asarray(spec.mean, dtype=np.float32)[:, None, None]
    planes *= (1.0 / np.asarray(spec.std, dtype=np.float32))[:, None, None]
    return planes[None]


def preprocess(image: np.ndarray, spec: PreprocessSpec) -> Preprocessed:
    """The whole preprocessing of one full frame (HxWx3 uint8 BGR)."""
    levels = pyramid(image, max(spec.analysis_width, spec.input_width))
    area = find_active_area(image, spec, levels)
    tensor = normalise(crop_to_input(image, area, spec, levels), spec)
    return Preprocessed(tensor=tensor, area=area, frame_width=image.shape[1], frame_height=image.shape[0])


def input_to_frame_box(box_xyxy: tuple[float, float, float, float], pre: Preprocessed,
                       spec: PreprocessSpec) -> tuple[float, float, float, float]:
    """Model-input pixel box -> normalised full-frame box (0..1)."""
    a = pre.area
    sx, sy = a.width / spec.input_width, a.height / spec.input_height
    x0 = (a.x0 + box_xyxy[0] * sx) / pre.frame_width
    y0 = (a.y0 + box_xyxy[1] * sy) / pre.frame_height
    x1 = (a.x0 + box_xyxy[2] * sx) / pre.frame_width
    y1 = (a.y0 + box_xyxy[3] * sy) / pre.frame_height
    return (min(max(x0, 0.0), 1.0), min(max(y0, 0.0), 1.0), min(max(x1, 0.0), 1.0), min(max(y1, 0.0), 1.0))


def crop_mask(mask: np.ndarray, area: ActiveArea, spec: PreprocessSpec) -> np.ndarray:
    """A full-frame mask (HxW, any dtype, >0 = polyp) through the same crop and resize: HxW float32 0..1."""
    crop = (mask[area.y0:area.y1, area.x0:area.x1] > 0).astype(np.float32)
    return cv2.resize(crop, (spec.input_width, spec.input_height), interpolation=cv2.INTER_AREA)


def apply_corner_mask(img: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Black out the lower-left corner region in place (after augmentation too, so it is always black)."""
    a, b = spec.corner_mask
    if a > 0 and b < 1:
        H, W = img.shape[:2]
        img[int(round(b * H)):, : int(round(a * W))] = 0
    return img
