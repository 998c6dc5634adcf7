"""Renders frame i of a synthetic clip and its ground truth. Random access: frame i depends only on (params, i)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from engines.synthetic import textures
from engines.synthetic.params import SynthParams
from engines.synthetic.timeline import Timeline, make_timeline, polyp_position

MIN_VISIBLE_FRACTION = 0.0008   # a polyp counts as visible when its mask covers this much of the view


@dataclass(frozen=True)
class PolypTruth:
    """One visible polyp in one frame: normalised full-frame box and outline polygon(s)."""

    polyp_id: int
    box: tuple[float, float, float, float]
    polygons: tuple[tuple[tuple[float, float], ...], ...]
    area_px: int


@dataclass(frozen=True, eq=False)
class RenderedFrame:
    index: int
    image: np.ndarray                        # HxWx3 uint8 BGR
    polyps: tuple[PolypTruth, ...]
    masks: dict[int, np.ndarray]             # polyp id -> HxW bool (full frame)


class SceneRenderer:
    """Draws the frames of one synthetic clip; ``render(i)`` is deterministic and independent of call order."""

    def __init__(self, params: SynthParams):
        self.params = p = params
        self.timeline: Timeline = make_timeline(p.seed, p.seconds)
        rng = np.random.default_rng([p.seed, 2])
        W, H = p.width, p.height
        side = int(round(0.92 * min(H, 0.8 * W)))
        cx = W - side / 2 - 0.03 * W if W / H > 1.4 else W / 2 + 0.05 * W
        self.ax0, self.ay0 = int(round(cx - side / 2)), int(round(H / 2 - side / 2))
        self.side = side
        self.octagon = bool(rng.random() < 0.7)
        self.area_mask = self._area_mask(side, self.octagon)             # side x side uint8 0/1
        k = max(1, math.ceil(side / 560))
        self.V = V = max(64, side // k)                                  # internal view size
        self.mucosa = textures.mucosa(rng, 2 * V, 2 * V)
        self.tunnel = textures.tunnel(rng, 2 * V, 2 * V)
        yy, xx = np.mgrid[0:V, 0:V].astype(np.float32)
        r = np.hypot(xx - V / 2, yy - V / 2) / (V / 2)
        self.vignette = np.clip(1.05 - 0.45 * r ** 2.2, 0.25, 1.0).astype(np.float32)
        mean_mucosa = self.mucosa.reshape(-1, 3).mean(0)
        srng = np.random.default_rng([p.seed, 3])
        self.sprites = {ev.polyp_id: textures.polyp_sprite(srng, mean_mucosa) for ev in self.timeline.events}
        drng = np.random.default_rng([p.seed, 4])
        self.debris = [(drng.uniform(0, 2 * V, 2), textures.debris_sprite(drng, int(drng.integers(20, 56))))
                       for _ in range(int(drng.integers(2, 6)))]
        self.bubbles = [(drng.uniform(0, 2 * V, 2), int(drng.integers(10, 36))) for _ in range(int(drng.integers(4, 14)))]
        self._bubble = textures.bubble_sprite(64)
        self.text_lines = ("polypwatch SYNTH", f"Seed:{p.seed}", "Eh:A5 Cm:3", "CVP:8", "Ch:2")

    # ----------------------------------------------------------------------------------------------
    @staticmethod
    def _area_mask(side: int, octagon: bool) -> np.ndarray:
        m = np.zeros((side, side), np.uint8)
        if octagon:
            c = int(side * 0.17)
            pts = np.array([[c, 0], [side - 1 - c, 0], [side - 1, c], [side - 1, side - 1 - c],
                            [side - 1 - c, side - 1], [c, side - 1], [0, side - 1 - c], [0, c]], np.int32)
            cv2.fillPoly(m, [pts], 1)
        else:
            cv2.circle(m, (side // 2, side // 2), side // 2 - 1, 1, -1)
        return m

    def _affine(self, t: float) -> tuple[np.ndarray, float, float, float, float]:
        zoom, rot, dx, dy = self.timeline.camera(t)
        V = self.V
        c, s = math.cos(rot), math.sin(rot)
        R = zoom * np.array([[c, -s], [s, c]])
        shift = np.array([V / 2 + dx * V, V / 2 + dy * V]) - R @ np.array([V, V])
        return np.hstack([R, shift[:, None]]).astype(np.float64), zoom, rot, dx, dy

    def _blit(self, img: np.ndarray, color: np.ndarray, alpha: np.ndarray, centre: tuple[float, float],
              scale: float, rot: float, shade: np.ndarray | None = None,
              shadow: np.ndarray | None = None) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
        """Warp a sprite into ``img`` (in place). Returns (alpha in ROI, roi) or None when off-view."""
        V = self.V
        S = alpha.shape[0]
        c, s = math.cos(rot) * scale, math.sin(rot) * scale
        A = np.array([[c, -s, 0.0], [s, c, 0.0]])
        A[:, 2] = np.array(centre) - A[:, :2] @ np.array([S / 2, S / 2])
        half = S * scale * 0.75
        x0, y0 = int(max(0, centre[0] - half)), int(max(0, centre[1] - half))
        x1, y1 = int(min(V, centre[0] + half + 1)), int(min(V, centre[1] + half + 1))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        A[:, 2] -= (x0, y0)
        size = (x1 - x0, y1 - y0)
        stack = np.dstack([color, alpha])
        w = cv2.warpAffine(stack, A, size, flags=cv2.INTER_LINEAR, borderValue=0)
        col, a = w[..., :3], w[..., 3]
        roi = img[y0:y1, x0:x1]
        if shadow is not None:
            sh = cv2.warpAffine(shadow, A, size, flags=cv2.INTER_LINEAR, borderValue=0)
            roi *= (1 - 0.5 * sh)[..., None]
        if shade is not None:          # a raised lesion catches more light than the wall behind it
            col = col * (0.45 + 0.55 * shade[y0:y1, x0:x1, None])
        roi *= (1 - a)[..., None]
        roi += col * a[..., None]
        return a, (x0, y0, x1, y1)

    # ----------------------------------------------------------------------------------------------
    def render(self, index: int) -> RenderedFrame:
        p, V = self.params, self.V
        t = index / p.fps
        M, zoom, rot, dx, dy = self._affine(t)
        img = cv2.warpAffine(self.mucosa, M, (V, V), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        shade = cv2.warpAffine(self.tunnel, M, (V, V), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        img *= shade[..., None]
        background = img.copy()
        view_masks: dict[int, np.ndarray] = {}
        if p.polyps:
            for ev in self.timeline.events:
                pos = polyp_position(ev, t)
                if pos is None:
                    continue
                sp = self.sprites[ev.polyp_id]
                centre = (V / 2 + (pos[0] * 0.5 + dx) * V, V / 2 + (pos[1] * 0.5 + dy) * V)
                scale = ev.radius * V * zoom / 1.25 / sp.radius
                drawn = self._blit(img, sp.color, sp.alpha, centre, scale, rot, shade, sp.shadow)
                if drawn is None:
                    continue
                a, (x0, y0, x1, y1) = drawn
                m = np.zeros((V, V), bool)
                m[y0:y1, x0:x1] = a > 0.5
                if ev.occlusion is not None and ev.occlusion[0] <= t <= ev.occlusion[1]:
                    m = self._occlude(img, background, m, ev, t, centre, ev.radius * V)
                view_masks[ev.polyp_id] = m
        self._debris_and_bubbles(img, M, view_masks)
        f = self.timeline.flushing(t)
        if f > 0:
            water = cv2.GaussianBlur(img, (0, 0), 1 + 6 * f)
            img[:] = water * (1 - 0.8 * f) + 0.8 * f * np.array([0.78, 0.74, 0.72], np.float32)
            if f >= 0.6:
                view_masks = {}
        self._motion_blur(img, t, zoom, rot, dx, dy)
        img *= self.vignette[..., None]
        return self._compose(index, t, img, view_masks)

    def _occlude(self, img, background, m, ev, t, centre, r) -> np.ndarray:
        o0, o1, ang = ev.occlusion
        x = (t - o0) / (o1 - o0)
        u = 1.3 - 1.8 * min(x, 1 - x) * 2                   # fold edge: 1.3 r -> -0.5 r -> 1.3 r
        V = self.V
        yy, xx = np.mgrid[0:V, 0:V].astype(np.float32)
        proj = ((xx - centre[0]) * math.cos(ang) + (yy - centre[1]) * math.sin(ang)) / max(r, 1.0)
        cover = proj > u
        img[cover] = background[cover] * 1.05
        near = np.hypot(xx - centre[0], yy - centre[1]) < 1.4 * r
        edge = (np.abs(proj - u) < 0.06) & near
        img[edge] *= 0.55
        return m & ~cover

    def _debris_and_bubbles(self, img: np.ndarray, M: np.ndarray, view_masks: dict[int, np.ndarray]) -> None:
        V = self.V
        rot = math.atan2(M[1, 0], M[0, 0])
        zoom = math.hypot(M[0, 0], M[1, 0])
        for wp, (col, alpha) in self.debris:
            c = M[:, :2] @ wp + M[:, 2]
            drawn = self._blit(img, col, alpha, (float(c[0]), float(c[1])), zoom * V / 500, rot)
            if drawn is None:
                continue
            a, (x0, y0, x1, y1) = drawn
            for pid, m in view_masks.items():
                m[y0:y1, x0:x1] &= ~(a > 0.5)
        bcol, balpha = self._bubble
        for wp, size in self.bubbles:
            c = M[:, :2] @ wp + M[:, 2]
            self._blit(img, bcol, balpha, (float(c[0]), float(c[1])), zoom * size * V / 500 / 64, 0.0)

    def _motion_blur(self, img, t, zoom, rot, dx, dy) -> None:
        z0, r0, dx0, dy0 = self.timeline.camera(t - 1.0 / self.params.fps)
        V = self.V
        mx, my = (dx - dx0) * V, (dy - dy0) * V
        spin = abs(rot - r0) * V / 2 + abs(zoom - z0) * V / 2
        length = math.hypot(mx, my) + spin
        if length < 2.0:
            return
        L = int(min(21, round(length))) | 1
        k = np.zeros((L, L), np.float32)
        ang = math.atan2(my, mx) if math.hypot(mx, my) > 0.5 else 0.0
        c = L // 2
        cv2.line(k, (int(c - c * math.cos(ang)), int(c - c * math.sin(ang))),
                 (int(c + c * math.cos(ang)), int(c + c * math.sin(ang))), 1.0, 1)
        k /= k.sum()
        cv2.filter2D(img, -1, k, dst=img, borderType=cv2.BORDER_REFLECT)

    def _compose(self, index: int, t: float, img: np.ndarray, view_masks: dict[int, np.ndarray]) -> RenderedFrame:
        p, V, side = self.params, self.V, self.side
        view = np.clip(img * 255.0, 0, 255).astype(np.uint8)
        if V != side:
            view = cv2.resize(view, (side, side), interpolation=cv2.INTER_LINEAR)
        view *= self.area_mask[..., None]
        frame = np.zeros((p.height, p.width, 3), np.uint8)
        frame[self.ay0:self.ay0 + side, self.ax0:self.ax0 + side] = view
        self._draw_text(frame, t)
        polyps, masks = [], {}
        min_px = MIN_VISIBLE_FRACTION * V * V
        for pid, m in sorted(view_masks.items()):
            if m.sum() < min_px:
                continue
            big = cv2.resize(m.astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST) & self.area_mask
            if big.sum() < min_px * (side / V) ** 2:
                continue
            full = np.zeros((p.height, p.width), bool)
            full[self.ay0:self.ay0 + side, self.ax0:self.ax0 + side] = big.astype(bool)
            ys, xs = np.nonzero(big)
            box = ((self.ax0 + xs.min()) / p.width, (self.ay0 + ys.min()) / p.height,
                   (self.ax0 + xs.max() + 1) / p.width, (self.ay0 + ys.max() + 1) / p.height)
            contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            polys = []
            for cnt in contours:
                cnt = cv2.approxPolyDP(cnt, 1.0, True).reshape(-1, 2)
                if len(cnt) >= 3:
                    polys.append(tuple((round((self.ax0 + x) / p.width, 5), round((self.ay0 + y) / p.height, 5))
                                       for x, y in cnt))
            polyps.append(PolypTruth(pid, tuple(round(v, 5) for v in box), tuple(polys), int(big.sum())))
            masks[pid] = full
        return RenderedFrame(index=index, image=frame, polyps=tuple(polyps), masks=masks)

    def _draw_text(self, frame: np.ndarray, t: float) -> None:
        p = self.params
        scale = p.height / 1080 * 0.9
        if scale < 0.25:
            return
        secs = 9 * 3600 + 12 * 60 + int(t)
        lines = ("23/11/2026", f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}") + self.text_lines
        th = max(1, int(round(scale * 2)))
        for k, line in enumerate(lines):
            y = int((0.12 + 0.05 * k) * p.height)
            cv2.putText(frame, line, (int(0.015 * p.width), y), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (235, 235, 235), th, cv2.LINE_AA)
