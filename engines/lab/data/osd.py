"""On-screen message boxes drawn over the endoscope image, as processors and recorders show them.

Why: 148 of PolypGen centre A's 250 polyp-free frames carry the processor's printer warning ("Imprim. non connectee
E405 / Connecter imprimante": white text on a blue box over the lower third of the image) and none of its polyp
frames do. v2 learned it: with that box drawn over polyp frames of every source, its sensitivity at the shipped
threshold fell from 0.92-0.96 to 0.02-0.23 (docs/MODEL_CARD.md). A warning on the tower's screen must not silence the
detector. Training draws such boxes on frames of both labels (``engines.lab.training.augment``); ``tools/evaluate`` draws
them on every scored frame and reports how much sensitivity changes.
"""
from __future__ import annotations

import cv2
import numpy as np

BOX_COLOURS = ((150, 20, 20), (170, 60, 10), (40, 40, 40), (0, 0, 0), (30, 110, 30), (0, 120, 200), (160, 160, 160),
               (90, 30, 120))          # BGR: blue (centre A's), light blue, grey, black, green, orange, silver, purple
TEXT_COLOURS = ((255, 255, 255), (0, 255, 255), (230, 230, 230), (0, 0, 0))
MESSAGES = ("Imprim. non connectee E405", "Connecter imprimante", "Printer not connected", "Check printer",
            "REC", "Recording 00:12:31", "Freeze", "Capture 12/40", "Release", "Memory full", "USB not found",
            "Check light source", "Lamp life 10%", "Video out 1080i", "Image saved", "Zoom x1.5", "Enhance A5",
            "Network disconnected", "Remove USB memory", "CO2 ON")


def draw_centre_a_warning(img: np.ndarray, rng: np.random.Generator, region: tuple[int, int, int, int] | None = None,
                          mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Centre A's printer warning as its recordings show it: blue, two lines, from 3% to 62% of the image's width and
    63% to 70% of its height, placed and sized within a few percent of that. Training draws it on frames of both
    labels, since the frames it came on are all polyp-free. Same contract as ``draw_message_box``."""
    _check_image(img, "draw_centre_a_warning")
    H, W = img.shape[:2]
    x0, y0, x1, y1 = region if region is not None else (0, 0, W, H)
    rw, rh = x1 - x0, y1 - y0
    bx = x0 + int(rw * (0.03 + rng.uniform(-0.02, 0.02)))
    bw = int(rw * 0.59 * rng.uniform(0.9, 1.1))
    by = y0 + int(rh * (0.63 + rng.uniform(-0.03, 0.03)))
    bh = max(6, int(rh * 0.07 * rng.uniform(0.85, 1.15)))
    return _draw(img, mask, (bx, by, min(bw, x1 - bx), min(bh, y1 - by)), BOX_COLOURS[0], (255, 255, 255),
                 MESSAGES[:2])


def draw_message_box(img: np.ndarray, rng: np.random.Generator, region: tuple[int, int, int, int] | None = None,
                     mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A copy of ``img`` (HxWx3 uint8 BGR) with a filled message box of one or two text lines inside ``region``
    (x0, y0, x1, y1; default the whole image): 30-65% of the region's width, 5-10% of its height, anywhere from
    just below its top to just above its bottom. ``mask`` (HxW, polyp truth) comes back with the covered part
    removed. Deterministic for a given ``rng`` state."""
    _check_image(img, "draw_message_box")
    H, W = img.shape[:2]
    x0, y0, x1, y1 = region if region is not None else (0, 0, W, H)
    rw, rh = x1 - x0, y1 - y0
    if rw < 8 or rh < 8:
        raise ValueError(f"draw_message_box: region {region} is too small for a message box")
    lines = int(rng.integers(1, 3))
    bw = int(rw * rng.uniform(0.3, 0.65))
    bh = max(6, int(rh * rng.uniform(0.05, 0.1) * (1 + 0.6 * (lines - 1)) / 1.3))
    bx = x0 + int(rng.integers(0, max(1, rw - bw)))
    by = y0 + int(rng.uniform(0.05, 0.92) * rh - bh / 2)
    by = min(max(by, y0), y1 - bh)
    colour = BOX_COLOURS[int(rng.integers(len(BOX_COLOURS)))]
    text = TEXT_COLOURS[int(rng.integers(len(TEXT_COLOURS)))]
    if text == (0, 0, 0) and max(colour) < 100:          # black on a dark box: white instead
        text = (255, 255, 255)
    messages = [MESSAGES[int(rng.integers(len(MESSAGES)))] for _ in range(lines)]
    return _draw(img, mask, (bx, by, bw, bh), colour, text, messages)


def _check_image(img: np.ndarray, who: str) -> None:
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"{who}: expected an HxWx3 uint8 image, got {img.shape} {img.dtype}")


def _draw(img, mask, box, colour, text, messages) -> tuple[np.ndarray, np.ndarray | None]:
    bx, by, bw, bh = box
    patch = np.empty((bh, bw, 3), np.uint8)              # the text is drawn on the box alone: it never runs past it
    patch[:] = colour
    line_h = bh / len(messages)
    scale = line_h / 36
    for k, msg in enumerate(messages):
        cv2.putText(patch, msg, (max(1, bw // 40), int(line_h * (k + 0.78))), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, text, max(1, round(scale * 1.6)), cv2.LINE_AA)
    out = img.copy()
    out[by:by + bh, bx:bx + bw] = patch
    if mask is None:
        return out, None
    covered = mask.copy()
    covered[by:by + bh, bx:bx + bw] = 0
    return out, covered
