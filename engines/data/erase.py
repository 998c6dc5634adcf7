"""Polyp-erased frames: the same frame with its polyp painted over by mucosa from elsewhere in the frame.

A frame and its erased copy share everything a frame classifier could use as a shortcut (hospital, scope,
colour, sharpness, distance to the wall, framing) except the polyp, so the erased copy is a full-frame negative
that only the polyp itself tells from the positive. The polyp (dilated by ``MARGIN``) is replaced by a donor
region of the same shape, shifted to lie on mucosa away from the polyp, blended in with Poisson image editing
(``cv2.seamlessClone``) so that no seam shows. Frames whose polyp leaves no donor room are not erased.
"""
from __future__ import annotations

import cv2
import numpy as np

from engines.data.mining import box_sum, bright_area, near_polyp

MARGIN = 0.03            # the polyp is dilated by this fraction of the image's shorter side before erasing
KEEP_AWAY = 0.05         # a donor region keeps this far (fraction of the shorter side) from the polyp
MIN_BRIGHT = 0.97        # a donor region lies this much on the endoscope image (not on the border or text)
MAX_AREA = 0.3           # a polyp region larger than this share of the endoscope image is not erased
CANDIDATES = 6           # valid donor offsets compared by colour; the closest to the polyp's surroundings wins

Offset = tuple[int, int]  # dx, dy from the polyp's region to the donor region, in image pixels


def erase_region(mask: np.ndarray) -> np.ndarray:
    """HxW uint8 0/1: what is painted over (the polyp dilated by MARGIN)."""
    return near_polyp(mask > 0, MARGIN)


def donor_offset(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator, tries: int = 200) -> Offset | None:
    """A shift that moves the polyp's region onto polyp-free mucosa of the same frame, or None (no room)."""
    h, w = mask.shape
    region = erase_region(mask)
    bright = bright_area(img)
    if not region.any() or region.sum() > MAX_AREA * max(1, int(bright.sum())):
        return None
    x0, y0, x1, y1 = _patch_box(region)
    bw, bh = x1 - x0, y1 - y0
    away = cv2.integral(near_polyp(mask > 0, KEEP_AWAY))
    lit = cv2.integral(bright.astype(np.uint8))
    ring = cv2.dilate(region, np.ones((9, 9), np.uint8)) > region
    target = img[ring & bright].reshape(-1, 3).mean(axis=0) if (ring & bright).any() else img[bright].mean(axis=0)
    found: list[tuple[float, Offset]] = []
    for _ in range(tries):
        dx, dy = int(rng.integers(-x0, w - x1 + 1)), int(rng.integers(-y0, h - y1 + 1))
        r = (x0 + dx, y0 + dy, x1 + dx, y1 + dy)
        if box_sum(away, r) > 0 or box_sum(lit, r) < MIN_BRIGHT * bw * bh:
            continue
        donor = img[r[1]:r[3], r[0]:r[2]][region[y0:y1, x0:x1] > 0]
        found.append((float(np.abs(donor.reshape(-1, 3).mean(axis=0) - target).sum()), (dx, dy)))
        if len(found) >= CANDIDATES:
            break
    return min(found)[1] if found else None


def erase_polyp(img: np.ndarray, mask: np.ndarray, offset: Offset) -> np.ndarray:
    """``img`` with the polyp region painted over from the region ``offset`` away (Poisson-blended)."""
    h, w = mask.shape
    region = erase_region(mask)
    x0, y0, x1, y1 = _patch_box(region)
    dx, dy = offset
    if x0 + dx < 0 or y0 + dy < 0 or x1 + dx > w or y1 + dy > h:
        raise ValueError(f"erase_polyp: the donor region {offset} lies outside the {w}x{h} frame")
    src = np.ascontiguousarray(img[y0 + dy:y1 + dy, x0 + dx:x1 + dx])
    return blend_in(img, src, region[y0:y1, x0:x1], (x0, y0))


def blend_in(img: np.ndarray, src: np.ndarray, region: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
    """``img`` with ``src`` (a patch the size of ``region``, 0/1) Poisson-blended in where ``region`` is set, the
    patch's top-left corner at ``origin`` (x, y); a 1-pixel frame of the patch is never cloned (Poisson blending needs
    a border around what it fills)."""
    x0, y0 = origin
    ph, pw = region.shape
    patch_mask = region * 255
    patch_mask[[0, -1], :] = 0
    patch_mask[:, [0, -1]] = 0
    if not patch_mask.any():
        return img.copy()
    bx, by, bbw, bbh = cv2.boundingRect(patch_mask)
    centre = (x0 + bx + bbw // 2, y0 + by + bbh // 2)
    cloned = cv2.seamlessClone(src, img, patch_mask.copy(), centre, cv2.NORMAL_CLONE)   # it writes to the mask
    # seamlessClone may change the whole bounding box: keep its result on the region only, with a soft edge
    alpha = cv2.GaussianBlur(patch_mask.astype(np.float32) / 255.0, (0, 0), 1.5)[:, :, None]
    alpha = np.maximum(alpha, patch_mask[:, :, None] > 0)
    out = img.copy()
    out[y0:y0 + ph, x0:x0 + pw] = np.round(alpha * cloned[y0:y0 + ph, x0:x0 + pw]
                                           + (1 - alpha) * img[y0:y0 + ph, x0:x0 + pw]).astype(np.uint8)
    return out


def _patch_box(region: np.ndarray) -> tuple[int, int, int, int]:
    """The region's bounding box with 2 pixels around it, kept 1 pixel inside the frame (Poisson blending needs
    a border around what it fills)."""
    h, w = region.shape
    x, y, bw, bh = cv2.boundingRect(region)
    return max(1, x - 2), max(1, y - 2), min(w - 1, x + bw + 2), min(h - 1, y + bh + 2)
