"""Augmentation for endoscopy frames already through the shared preprocessing (HxWx3 uint8 + HxW mask)."""
from __future__ import annotations

import cv2
import numpy as np

from engines.lab.data.osd import draw_centre_a_warning, draw_message_box
from engines.runtime.preprocess import PreprocessSpec, apply_corner_mask

AUGMENTATIONS = ("standard", "strong")


def augment(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
            spec: PreprocessSpec, strength: str = "standard",
            message_box: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Any rotation (the scope turns freely), flips, scale/shift, colour and brightness jitter, blur.

    ``strong`` adds wider scale, hue shifts, gamma and JPEG compression (other scopes and towers). ``message_box``:
    the probability of an on-screen message box (``engines.lab.data.osd``) over the frame, of either label.
    """
    H, W = img.shape[:2]
    strong = strength == "strong"
    boxed = message_box > 0 and rng.random() < message_box
    before = boxed and rng.random() < 0.5
    if before:          # turned, scaled and coloured with the frame, as a box recorded into a training frame is
        img, mask = _message_box(img, mask, rng)
    ang = rng.uniform(0, 360)
    scale = rng.uniform(0.75, 1.35) if strong else rng.uniform(0.85, 1.25)
    M = cv2.getRotationMatrix2D((W / 2, H / 2), ang, scale)
    M[:, 2] += rng.uniform(-0.08, 0.08, 2) * (W, H)
    if rng.random() < 0.5:
        M[0] = -M[0]
        M[0, 2] += W
    img = cv2.warpAffine(img, M, (W, H), flags=cv2.INTER_LINEAR, borderValue=0)
    mask = cv2.warpAffine(mask, M, (W, H), flags=cv2.INTER_LINEAR, borderValue=0)
    x = img.astype(np.float32)
    x *= rng.uniform(0.7, 1.3)                                              # brightness
    mean = x.mean()
    x = (x - mean) * rng.uniform(0.75, 1.25) + mean                         # contrast
    x *= rng.uniform(0.88, 1.12, 3).astype(np.float32)                      # white balance / hue
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.7, 1.3)                           # saturation
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 2.0))
    out = np.clip(x, 0, 255).astype(np.uint8)
    if boxed and not before:        # upright, over the frame's colours, as a tower draws it
        out, mask = _message_box(out, mask, rng)
    if not strong:
        return apply_corner_mask(out, spec), mask
    if rng.random() < 0.5:                                                  # hue: other scopes, light sources
        hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + int(rng.integers(-8, 9))) % 180).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    if rng.random() < 0.5:                                                  # gamma: exposure of other towers
        lut = (255 * (np.arange(256) / 255) ** rng.uniform(0.7, 1.4)).astype(np.uint8)
        out = cv2.LUT(out, lut)
    if rng.random() < 0.3:                                                  # compression of recorded video
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 90))])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return apply_corner_mask(out, spec), mask


def _message_box(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One message box: a third of them centre A's printer warning (the one its polyp-free frames carry), the rest
    any box (engines.lab.data.osd)."""
    draw = draw_centre_a_warning if rng.random() < 1 / 3 else draw_message_box
    return draw(img, rng, mask=mask)
