"""Polyp-free views mined from polyp frames, and zoomed views of the polyp itself.

A polyp-only data set (CVC-ColonDB, Kvasir-SEG) still shows plenty of normal mucosa of its hospital and scope:
square regions that do not touch the (dilated) polyp mask, at several scales, put back into a scope-shaped
view, are negatives of that hospital. The same zoom-and-reframe is applied to regions holding the whole polyp,
so "zoomed, re-framed texture" cannot become a shortcut for "no polyp".
"""
from __future__ import annotations

import cv2
import numpy as np

SCALES = (0.38, 0.5, 0.65)        # side of a mined square as a fraction of the active area's shorter side
MARGIN = 0.04                     # the mask is dilated by this fraction of the image's shorter side first
MIN_INSIDE = 0.9                  # a region must lie at least this much inside the bright active area
SHAPES = ("circle", "octagon", "rounded")

Region = tuple[int, int, int, int]  # x0, y0, x1, y1 in image pixels


def near_polyp(polyp: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    """HxW uint8 0/1: the polyp (HxW bool) dilated by ``margin`` of the image's shorter side: ground a polyp-free
    view must not touch."""
    k = max(3, int(round(margin * min(polyp.shape))) * 2 + 1)
    return cv2.dilate(polyp.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))


def bright_area(img: np.ndarray, level: int = 24) -> np.ndarray:
    """HxW bool: pixels of the endoscope image (not the black border around it)."""
    return img.max(axis=2) > level


def polyp_free_regions(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator, count: int,
                       scales: tuple[float, ...] = SCALES, tries: int = 60) -> list[Region]:
    """Up to ``count`` square regions that do not touch ``mask`` (HxW, >0 polyp) dilated by MARGIN."""
    h, w = mask.shape
    side_ref = min(h, w)
    f_int = cv2.integral(near_polyp(mask > 0))
    b_int = cv2.integral(bright_area(img).astype(np.uint8))
    out: list[Region] = []
    for _ in range(tries):
        if len(out) >= count:
            break
        s = int(round(side_ref * scales[int(rng.integers(len(scales)))]))
        if s < 32 or s >= min(h, w):
            continue
        x0, y0 = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
        r = (x0, y0, x0 + s, y0 + s)
        if box_sum(f_int, r) > 0 or box_sum(b_int, r) < MIN_INSIDE * s * s:
            continue
        if any(_overlap(r, q) > 0.5 for q in out):
            continue
        out.append(r)
    return out


def polyp_regions(mask: np.ndarray, rng: np.random.Generator, count: int) -> list[Region]:
    """Up to ``count`` regions that contain the whole polyp with a margin (zoomed positive views)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return []
    h, w = mask.shape
    bx0, by0, bx1, by1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    out = []
    for _ in range(count):
        s = int(max(bx1 - bx0, by1 - by0) * rng.uniform(1.4, 2.6))
        s = min(max(s, 32), min(h, w))
        x0 = int(np.clip(rng.integers(bx1 - s, bx0 + 1) if bx1 - s < bx0 + 1 else bx0, 0, w - s))
        y0 = int(np.clip(rng.integers(by1 - s, by0 + 1) if by1 - s < by0 + 1 else by0, 0, h - s))
        out.append((x0, y0, x0 + s, y0 + s))
    return out


def scope_view(img: np.ndarray, mask: np.ndarray | None, region: Region, rng: np.random.Generator,
               size: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """The region re-framed as an endoscope image: resized, a circular/octagonal/rounded outline, black outside,
    on a black canvas a little larger (as a dataset frame is)."""
    x0, y0, x1, y1 = region
    size = size or int(rng.integers(420, 640))
    crop = cv2.resize(img[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_LINEAR)
    keep = scope_outline(size, size, SHAPES[int(rng.integers(len(SHAPES)))], rng)
    pad = int(rng.integers(4, size // 10 + 5))
    canvas = np.zeros((size + 2 * pad, size + 2 * pad, 3), np.uint8)
    canvas[pad:pad + size, pad:pad + size] = crop * keep[:, :, None]
    out_mask = None
    if mask is not None:
        m = cv2.resize((mask[y0:y1, x0:x1] > 0).astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
        out_mask = np.zeros(canvas.shape[:2], np.uint8)
        out_mask[pad:pad + size, pad:pad + size] = m * keep
    return canvas, out_mask


def scope_outline(w: int, h: int, shape: str, rng: np.random.Generator) -> np.ndarray:
    """HxW uint8 0/1 outline of an endoscope image of that shape filling the box."""
    keep = np.zeros((h, w), np.uint8)
    if shape == "circle":
        cv2.ellipse(keep, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, 1, -1)
    elif shape == "octagon":
        c = rng.uniform(0.12, 0.28)
        cx, cy = int(c * w), int(c * h)
        pts = np.array([[cx, 0], [w - cx, 0], [w - 1, cy], [w - 1, h - cy], [w - cx, h - 1], [cx, h - 1],
                        [0, h - cy], [0, cy]], np.int32)
        cv2.fillPoly(keep, [pts], 1)
    else:
        r = int(min(w, h) * rng.uniform(0.08, 0.2))
        cv2.rectangle(keep, (r, 0), (w - 1 - r, h - 1), 1, -1)
        cv2.rectangle(keep, (0, r), (w - 1, h - 1 - r), 1, -1)
        for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
            cv2.circle(keep, (cx, cy), r, 1, -1)
    return keep


def box_sum(integral: np.ndarray, r: Region) -> int:
    x0, y0, x1, y1 = r
    return int(integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0])


def _overlap(a: Region, b: Region) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / max(1, min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])))
