"""Polyp-pasted frames: a polyp from a masked frame of one recording, blended into a polyp-free frame of another.

The counterpart of ``engines.data.erase``. Where a source's negatives come from other recordings than its positives
(PolypGen: polyp stills from some videos, polyp-free frames from others), a network can tell the recordings apart
(colour, sharpness, texture: ``tools/style_probe``) instead of finding the polyp. Erased frames give the positives'
recordings negatives; pasted frames give the negatives' recordings positives: the host frame keeps every cue of its
recording and gains only a polyp, so as a positive it leaves the model nothing but the polyp to go by. The polyp,
with a rim of its own mucosa (``erase.MARGIN``), is scaled to the host's scope image (its share of the scope image
kept, jittered), put on a fully lit place of the host, and blended in with Poisson image editing
(``cv2.seamlessClone``: the polyp's gradients, the host's colours at the seam). The mask goes with it, so the heatmap
learns the place too. Placement is chosen once (``paste_placement``, seeded) and stored in the Sample, so that a
pasted frame renders the same everywhere.
"""
from __future__ import annotations

import cv2
import numpy as np

from engines.data.datasets import Paste
from engines.data.erase import MAX_AREA, blend_in, erase_region
from engines.data.mining import box_sum, bright_area

MIN_BRIGHT = 0.97          # the pasted region lies this much on the host's scope image (not on the border or text)
SCALE_JITTER = (0.7, 1.3)  # the polyp's share of the scope image, host against donor, varies by this factor
MIN_SIDE = 12              # a pasted region smaller than this (pixels) is not pasted


def _box(region: np.ndarray) -> tuple[int, int, int, int]:
    x, y, w, h = cv2.boundingRect(region)
    return x, y, x + w, y + h


def paste_placement(host: np.ndarray, donor: np.ndarray, donor_mask: np.ndarray, rng: np.random.Generator,
                    tries: int = 100) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1): where in ``host`` the donor's polyp region goes (its size included), or None: the polyp is
    too large, or no fully lit place of the host holds it."""
    region = erase_region(donor_mask)
    lit_donor = int(bright_area(donor).sum())
    lit = bright_area(host)
    if not region.any() or region.sum() > MAX_AREA * max(1, lit_donor) or lit.sum() == 0:
        return None
    x0, y0, x1, y1 = _box(region)
    s = float(np.sqrt(lit.sum() / max(1, lit_donor)) * rng.uniform(*SCALE_JITTER))
    w, h = round((x1 - x0) * s), round((y1 - y0) * s)
    H, W = lit.shape
    if min(w, h) < MIN_SIDE or w > W - 6 or h > H - 6:
        return None
    integral = cv2.integral(lit.astype(np.uint8))
    for _ in range(tries):
        px, py = int(rng.integers(3, W - w - 2)), int(rng.integers(3, H - h - 2))
        r = (px, py, px + w, py + h)
        if box_sum(integral, r) >= MIN_BRIGHT * w * h:
            return r
    return None


def paste_polyp(host: np.ndarray, donor: np.ndarray, donor_mask: np.ndarray, paste: Paste) -> tuple[np.ndarray,
                                                                                                    np.ndarray]:
    """(``host`` with the donor's polyp blended in at ``paste.box``, HxW uint8 0/1 mask of the pasted polyp)."""
    H, W = host.shape[:2]
    bx0, by0, bx1, by1 = paste.box
    if bx0 < 1 or by0 < 1 or bx1 > W - 1 or by1 > H - 1 or bx1 - bx0 < 2 or by1 - by0 < 2:
        raise ValueError(f"paste_polyp: the box {paste.box} does not lie inside the {W}x{H} host frame")
    region = erase_region(donor_mask)
    x0, y0, x1, y1 = _box(region)
    size = (bx1 - bx0, by1 - by0)
    patch = cv2.resize(np.ascontiguousarray(donor[y0:y1, x0:x1]), size, interpolation=cv2.INTER_AREA)
    rim = cv2.resize(region[y0:y1, x0:x1], size, interpolation=cv2.INTER_NEAREST)
    polyp = cv2.resize((donor_mask[y0:y1, x0:x1] > 0).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) & rim
    out_mask = np.zeros((H, W), np.uint8)
    out_mask[by0:by1, bx0:bx1] = polyp
    if not rim[1:-1, 1:-1].any():           # nothing inside the patch's frame to clone
        return host.copy(), np.zeros((H, W), np.uint8)
    return blend_in(host, patch, rim, (bx0, by0)), out_mask
