"""Static textures of a synthetic clip: mucosa with vessels and highlights, the folded tunnel, polyp sprites."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def fbm(rng: np.random.Generator, h: int, w: int, octaves: tuple[int, ...] = (4, 8, 16, 32, 64)) -> np.ndarray:
    """Fractal noise in about -1..1, HxW float32, sum of up-sampled random grids."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for cells in octaves:
        g = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
        out += amp * cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.55
    return out / (total * 0.8)


def mucosa(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """HxWx3 float32 BGR 0..1: pink-red mucosa with texture, branching vessels and specular spots."""
    base = np.array([0.50, 0.60, 0.98], np.float32) * rng.uniform(0.85, 1.1, 3).astype(np.float32)
    n1, n2 = fbm(rng, h, w), fbm(rng, h, w, (32, 64, 128))
    tex = base * (1.0 + 0.18 * n1[..., None]) * (1.0 + 0.06 * n2[..., None])
    tex[..., 1] *= 1.0 + 0.08 * fbm(rng, h, w, (3, 6))   # slow hue drift: yellowish / reddish patches
    vessels = np.zeros((h, w), np.float32)
    for _ in range(int(h * w / 9000)):
        p = rng.uniform([0, 0], [w, h])
        ang = rng.uniform(0, 2 * np.pi)
        pts = [p.copy()]
        for _ in range(rng.integers(6, 18)):
            ang += rng.normal(0, 0.45)
            p = p + 7 * np.array([np.cos(ang), np.sin(ang)])
            pts.append(p.copy())
        cv2.polylines(vessels, [np.array(pts, np.int32)], False, float(rng.uniform(0.35, 0.9)),
                      thickness=int(rng.integers(1, 3)), lineType=cv2.LINE_AA)
    vessels = cv2.GaussianBlur(vessels, (0, 0), 0.8)
    tex *= 1.0 - vessels[..., None] * np.array([0.45, 0.55, 0.25], np.float32)
    spec = np.zeros((h, w), np.float32)
    for _ in range(int(h * w / 6000)):
        c = tuple(int(v) for v in rng.uniform([0, 0], [w, h]))
        ax = (int(rng.integers(1, 5)), int(rng.integers(1, 3)))
        cv2.ellipse(spec, c, ax, float(rng.uniform(0, 180)), 0, 360, 1.0, -1, cv2.LINE_AA)
    spec = cv2.GaussianBlur(spec, (0, 0), 0.7)
    tex = tex * (1 - spec[..., None]) + spec[..., None] * 1.05
    return np.clip(tex, 0, 1.2)


def tunnel(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """HxW float32 shading multiplier: dark lumen in the centre, log-periodic haustral folds around it."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = w / 2, h / 2
    r = np.hypot(xx - cx, yy - cy) / (0.5 * min(h, w)) + 1e-3
    th = np.arctan2(yy - cy, xx - cx)
    wobble = 0.10 * np.sin(3 * th + rng.uniform(0, 6)) + 0.06 * np.sin(5 * th + rng.uniform(0, 6))
    period = np.log(rng.uniform(1.45, 1.7))
    phase = (np.log(r) / period + wobble) % 1.0
    fold = np.clip(1.0 - np.abs(phase - 0.85) / 0.22, 0, 1) ** 1.2    # shadowed crevice behind each fold
    ridge = np.clip(1.0 - np.abs(phase - 0.62) / 0.25, 0, 1) ** 2      # lit fold crest
    lumen_r = rng.uniform(0.14, 0.22)
    depth = 1.0 - np.exp(-(r / lumen_r) ** 2)                         # dark lumen
    falloff = np.clip(0.25 + 0.85 * np.tanh(r / 0.5), 0, 1.1)         # nearer wall is brighter
    return (depth * falloff * (1 - 0.45 * fold) * (1 + 0.22 * ridge)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class PolypSprite:
    """A polyp drawn once at reference size: colour (BGR 0..1), alpha (mask), shadow (darkening)."""

    color: np.ndarray   # SxSx3 float32
    alpha: np.ndarray   # SxS float32 0..1
    shadow: np.ndarray  # SxS float32 0..1
    radius: float       # head radius in sprite pixels
    kind: str           # "sessile" or "pedunculated"


def polyp_sprite(rng: np.random.Generator, mucosa_bgr: np.ndarray, ref_radius: int = 64) -> PolypSprite:
    kind = "pedunculated" if rng.random() < 0.3 else "sessile"
    size = int(ref_radius * (4.2 if kind == "pedunculated" else 3.0))
    c = size / 2
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    hx, hy = c, c
    th = np.arctan2(yy - hy, xx - hx)
    rr = np.ones_like(th)
    for k in (2, 3, 4, 5):
        rr += rng.uniform(0.02, 0.10) * np.cos(k * th + rng.uniform(0, 2 * np.pi))
    elong = rng.uniform(0.75, 1.0)
    d = np.hypot((xx - hx), (yy - hy) / elong) / (ref_radius * rr)
    head = np.clip((1.0 - d) * ref_radius / 1.5, 0, 1)                   # anti-aliased edge
    alpha = head.copy()
    stalk = np.zeros_like(alpha)
    if kind == "pedunculated":
        ang = rng.uniform(0, 2 * np.pi)
        tip = (hx + 1.8 * ref_radius * np.cos(ang), hy + 1.8 * ref_radius * np.sin(ang))
        cv2.line(stalk, (int(hx), int(hy)), (int(tip[0]), int(tip[1])), 1.0,
                 int(ref_radius * rng.uniform(0.45, 0.7)), cv2.LINE_AA)
        alpha = np.maximum(alpha, stalk)
    dome = np.sqrt(np.clip(1 - d ** 2, 0, 1))
    lx, ly = -0.45, -0.55                                                  # light from upper left
    nx, ny = (xx - hx) / ref_radius, (yy - hy) / ref_radius
    light = np.clip(0.75 + 0.45 * dome + 0.45 * (nx * lx + ny * ly) * dome, 0.3, 1.4)
    hue = np.array([rng.uniform(0.75, 1.1), rng.uniform(0.65, 1.05), rng.uniform(1.0, 1.15)], np.float32)
    base = mucosa_bgr * hue
    tex = 1.0 + 0.12 * fbm(rng, size, size, (8, 16, 48)) + 0.08 * fbm(rng, size, size, (64, 96))
    rim = 0.72 + 0.28 * np.clip((1.0 - d) * 5, 0, 1)                     # shadowed outline of a raised lesion
    color = base * (light * tex * rim)[..., None]
    color = np.where(stalk[..., None] > head[..., None], base * 0.9 * tex[..., None], color)
    sx, sy = hx - 0.35 * ref_radius, hy - 0.4 * ref_radius
    spot = np.exp(-(((xx - sx) / (0.16 * ref_radius)) ** 2 + ((yy - sy) / (0.10 * ref_radius)) ** 2)) * head
    color = color * (1 - spot[..., None]) + spot[..., None] * 1.05
    shadow = cv2.GaussianBlur(alpha, (0, 0), ref_radius * 0.18)
    shadow = np.clip(np.roll(np.roll(shadow, int(0.12 * ref_radius), 0), int(0.08 * ref_radius), 1) - alpha, 0, 1)
    return PolypSprite(color=color.astype(np.float32), alpha=alpha.astype(np.float32),
                       shadow=shadow.astype(np.float32), radius=float(ref_radius), kind=kind)


def debris_sprite(rng: np.random.Generator, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Stool-like opaque debris (yellow-brown, irregular). Returns (color SxSx3, alpha SxS)."""
    n = fbm(rng, size, size, (3, 6, 12))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    d = np.hypot(xx - size / 2, yy - size / 2) / (size / 2)
    alpha = np.clip((0.75 + 0.35 * n - d) * 6, 0, 1)
    col = np.array([0.12, 0.45, 0.62], np.float32) * (0.8 + 0.25 * fbm(rng, size, size, (8, 16)))[..., None]
    return col.astype(np.float32), alpha.astype(np.float32)


def bubble_sprite(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A transparent bubble: bright rim and a glint. Returns (color SxSx3, alpha SxS)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    d = np.hypot(xx - size / 2, yy - size / 2) / (size / 2 - 1)
    rim = np.clip(1 - np.abs(d - 0.9) / 0.12, 0, 1)
    glint = np.exp(-(((xx - size * 0.35) / (size * 0.08)) ** 2 + ((yy - size * 0.33) / (size * 0.06)) ** 2))
    alpha = np.clip(0.15 * (d < 1) + 0.6 * rim + glint, 0, 1)
    col = np.ones((size, size, 3), np.float32) * 0.97
    return col, alpha.astype(np.float32)
