"""Colour matching between frames of a batch: a training frame takes the colour histogram of another frame.

Why: in the sources we have, a frame's global colour alone tells its label. A logistic regression on colour
statistics of the preprocessed input (no spatial layout at all; tools/style_probe, 5-fold) separates PolypGen centre
A's polyp frames from its polyp-free frames at AUROC 0.972 and centre B's at 0.984 (Kvasir 0.815; CVC-ColonDB, whose
positives and negatives are the same frames, 0.781): positives and negatives come from different recordings, each
with its processor's colour. A network can learn that shortcut first, and at a new hospital its colours mean nothing.
Giving each chosen frame the per-channel histogram of a random other frame of the batch (whatever its label or
source) makes colour carry no label; MixStyle (mixstyle.py) mixes only feature means and spreads. Training only.
"""
from __future__ import annotations

import numpy as np

LEVELS = np.arange(256, dtype=np.float64)


def _cdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the cumulative distribution at every level 0..255, which levels occur). A saturated highlight (the top
    level) maps to the reference's brightest level: glare stays glare."""
    h = np.bincount(values, minlength=256).astype(np.float64)
    return np.cumsum(h) / max(h.sum(), 1.0), h > 0


def match_colours(img: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``img`` (HxWx3 uint8) with each channel's histogram matched to ``ref``'s, over the pixels of each frame's
    scope image (black pixels, the masked outside and corner, are left out and stay black)."""
    if img.ndim != 3 or ref.ndim != 3 or img.shape[2] != ref.shape[2] or img.dtype != np.uint8 or ref.dtype != np.uint8:
        raise ValueError(f"match_colours: expected two HxWxC uint8 images, got {img.shape} {img.dtype} and "
                         f"{ref.shape} {ref.dtype}")
    inside = img.any(axis=2)
    ref_inside = ref.any(axis=2)
    if not inside.any() or not ref_inside.any():
        return img
    out = img.copy()
    for c in range(img.shape[2]):
        src = img[..., c][inside]
        cdf, _ = _cdf(src)
        rcdf, present = _cdf(ref[..., c][ref_inside])
        lut = np.interp(cdf, rcdf[present], LEVELS[present])     # strictly increasing over the levels that occur
        out[..., c][inside] = np.round(lut).astype(np.uint8)[src]
    out[inside & ~out.any(axis=2)] = 1       # a matched pixel must not read as "outside" to the next step
    return out


def match_batch(images: list[np.ndarray], rng: np.random.Generator, p: float) -> list[np.ndarray]:
    """Each image, with probability ``p``, takes the colours of another image of the batch chosen at random."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"colour_match: expected a probability in [0, 1], got {p}")
    n = len(images)
    if n < 2 or p == 0.0:
        return list(images)
    out = []
    for i, img in enumerate(images):
        if rng.random() < p:
            j = int(rng.integers(n - 1))
            out.append(match_colours(img, images[j + (j >= i)]))
        else:
            out.append(img)
    return out
