"""Residual stool and debris drawn onto training frames: yellow-brown fragments with a wet sheen, and liquid residue.

Real colons are rarely clean: Kvasir's normal frames show stool fragments on most pictures, and the CADe literature
lists debris among the first causes of false alarms. Of the sources here only Kvasir has such negatives, so a model
trained without it (leave-one-source-out) scores stool as a polyp. Drawn on positives and negatives alike (never on
the polyp: the mask, dilated, is forbidden ground), debris becomes no cue for either label.

Works on frames already through the shared preprocessing (``engines.training.augment``), at the model's input size.
"""
from __future__ import annotations

import cv2
import numpy as np

from engines.data.mining import bright_area, near_polyp

# BGR colours of residue seen on real frames: yellow, ochre, brown, olive, pale yellow
PALETTE = np.array([(50, 175, 215), (40, 140, 195), (45, 95, 140), (60, 150, 160), (120, 205, 230)], np.float32)


def add_debris(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
               fragments: tuple[int, int] = (1, 5)) -> np.ndarray:
    """A copy of ``img`` (HxWx3 uint8) with debris fragments (and sometimes a liquid wash) drawn where ``mask``
    (HxW, > 0.5 polyp), dilated as for mined views, is not and where the image is not black. ``mask`` is unchanged
    by construction."""
    allowed = bright_area(img) & (near_polyp(mask > 0.5) == 0)    # on the scope image, away from the polyp
    if not allowed.any():
        return img.copy()
    out = img.astype(np.float32)
    if rng.random() < 0.25:
        out = _wash(out, allowed, rng)
    for _ in range(int(rng.integers(fragments[0], fragments[1] + 1))):
        out = _fragment(out, allowed, rng)
    return np.clip(out, 0, 255).astype(np.uint8)


def _blob(h: int, w: int, cx: float, cy: float, r: float, rng: np.random.Generator) -> np.ndarray:
    """HxW float 0..1: an irregular, smooth-edged fragment around (cx, cy) of radius about r."""
    n = int(rng.integers(7, 14))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * rng.uniform(0.7, 1.2, n)
    squash = rng.uniform(0.5, 1.0)
    rot = rng.uniform(0, np.pi)
    xs, ys = rad * np.cos(ang), rad * np.sin(ang) * squash
    pts = np.stack([cx + xs * np.cos(rot) - ys * np.sin(rot), cy + xs * np.sin(rot) + ys * np.cos(rot)], 1)
    shape = np.zeros((h, w), np.float32)
    cv2.fillPoly(shape, [np.round(pts).astype(np.int32)], 1.0)
    soft = cv2.GaussianBlur(shape, (0, 0), max(0.8, r * 0.2))
    return np.clip((soft - 0.2) / 0.5, 0, 1)


def _fragment(out: np.ndarray, allowed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = allowed.shape
    ys, xs = np.nonzero(allowed)
    i = int(rng.integers(len(xs)))
    r = min(h, w) * rng.uniform(0.03, 0.16)
    a = _blob(h, w, float(xs[i]), float(ys[i]), r, rng) * allowed
    if a.max() <= 0:
        return out
    colour = PALETTE[int(rng.integers(len(PALETTE)))] * rng.uniform(0.9, 1.1, 3).astype(np.float32)
    # texture (lumpy, granular) and shading: darker rim, lit towards one side
    grain = cv2.resize(rng.uniform(0.8, 1.12, (max(2, h // 10), max(2, w // 10))).astype(np.float32), (w, h),
                       interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.uniform(0.92, 1.08, (h, w)).astype(np.float32), (0, 0), 0.7)
    core = cv2.GaussianBlur((a > 0.5).astype(np.float32), (0, 0), max(0.8, r * 0.35))
    shade = 0.7 + 0.4 * core
    light = np.clip(cv2.GaussianBlur(out.mean(axis=2), (0, 0), max(1.0, r)) / 110.0, 0.4, 1.4)   # the scene's light
    body = colour[None, None, :] * (grain * fine * shade * light)[:, :, None]
    alpha = (a * rng.uniform(0.8, 1.0))[:, :, None]
    out = out * (1 - alpha) + body * alpha
    if rng.random() < 0.7:                                  # wet highlights
        for _ in range(int(rng.integers(1, 4))):
            yy, xx = np.nonzero(a > 0.6)
            if not len(xx):
                break
            j = int(rng.integers(len(xx)))
            spot = np.zeros((h, w), np.float32)
            cv2.circle(spot, (int(xx[j]), int(yy[j])), max(1, int(r * rng.uniform(0.08, 0.2))), 1.0, -1)
            spot = cv2.GaussianBlur(spot, (0, 0), 0.8)[:, :, None] * allowed[:, :, None]
            out = out * (1 - spot) + 250.0 * spot
    return out


def _wash(out: np.ndarray, allowed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Liquid residue: a large translucent yellow-brown pool."""
    h, w = allowed.shape
    ys, xs = np.nonzero(allowed)
    i = int(rng.integers(len(xs)))
    a = _blob(h, w, float(xs[i]), float(ys[i]), min(h, w) * rng.uniform(0.15, 0.35), rng)
    a = cv2.GaussianBlur(a, (0, 0), min(h, w) * 0.03) * allowed * rng.uniform(0.3, 0.6)
    colour = PALETTE[int(rng.integers(len(PALETTE)))]
    lum = out.mean(axis=2, keepdims=True) / 160.0
    return out * (1 - a[:, :, None]) + colour[None, None, :] * lum * a[:, :, None]
