"""Drawing on the shown frame: polyp boxes, the alert indicator, the detector's state, latency."""
from __future__ import annotations

import cv2
import numpy as np

from stream.detection import AlertState
from stream.overlay.state import Display, Verdict

STATE_COLORS = {Display.ACTIVE: (60, 200, 60), Display.STALE: (0, 165, 255), Display.NO_SIGNAL: (0, 0, 255),
                Display.OFFLINE: (0, 0, 255)}


def draw_boxes(img: np.ndarray, verdict: Verdict, color, thickness: int) -> int:
    d = verdict.detection
    if d is None or d.alert is not AlertState.ON:
        return 0
    h, w = img.shape[:2]
    for b in d.boxes:
        p0 = (int(round(b.x0 * w)), int(round(b.y0 * h)))
        p1 = (int(round(b.x1 * w)) - 1, int(round(b.y1 * h)) - 1)
        cv2.rectangle(img, p0, p1, color, thickness, cv2.LINE_AA)
    return len(d.boxes)


def alert_thickness(h: int) -> int:
    """The alert border's width: the state mark and its latency label sit inside it, never under it."""
    return max(4, h // 90)


def draw_alert(img: np.ndarray, verdict: Verdict, style: str, color) -> bool:
    """The alert indicator, driven by the filtered alert state (never by the raw score)."""
    d = verdict.detection
    if d is None or d.alert is not AlertState.ON:
        return False
    h, w = img.shape[:2]
    t = alert_thickness(h)
    if style == "border":
        cv2.rectangle(img, (t // 2, t // 2), (w - 1 - t // 2, h - 1 - t // 2), color, t)
    else:
        L = h // 8
        for (x, y, dx, dy) in ((0, 0, 1, 1), (w - 1, 0, -1, 1), (0, h - 1, 1, -1), (w - 1, h - 1, -1, -1)):
            cv2.line(img, (x, y), (x + dx * L, y), color, t)
            cv2.line(img, (x, y), (x, y + dy * L), color, t)
    return True


def draw_state(img: np.ndarray, verdict: Verdict, latency_ms: float | None, show_latency: bool) -> None:
    """A small persistent mark in the top-left corner (outside the endoscope's active area); OFFLINE and
    NO SIGNAL are also written large across the frame."""
    h, w = img.shape[:2]
    scale = max(0.4, h / 1080 * 1.0)
    th = max(1, int(round(scale * 2)))
    label = verdict.display.value
    color = STATE_COLORS[verdict.display]
    (tw, tht), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, th)
    pad = int(8 * scale)
    x0 = y0 = pad + alert_thickness(h)          # inside the alert border (drawn or not: the mark does not move)
    cv2.rectangle(img, (x0, y0), (x0 + tw + 2 * pad, y0 + tht + 2 * pad), (0, 0, 0), -1)
    cv2.rectangle(img, (x0, y0), (x0 + tw + 2 * pad, y0 + tht + 2 * pad), color, max(1, th))
    cv2.putText(img, label, (x0 + pad, y0 + pad + tht), cv2.FONT_HERSHEY_SIMPLEX, scale, color, th, cv2.LINE_AA)
    if show_latency and latency_ms is not None:
        text, s2, t2 = f"{latency_ms:.0f} ms", scale * 0.8, max(1, th - 1)
        (lw, lh), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, s2, t2)
        ly = y0 + tht + 3 * pad + lh                               # below the state mark, on its own dark plate
        cv2.rectangle(img, (x0, ly - lh - pad // 2), (x0 + lw + 2 * pad, ly + base + pad // 2), (0, 0, 0), -1)
        cv2.putText(img, text, (x0 + pad, ly), cv2.FONT_HERSHEY_SIMPLEX, s2, (200, 200, 200), t2, cv2.LINE_AA)
    if verdict.display in (Display.OFFLINE, Display.NO_SIGNAL):
        big = f"DETECTOR {label}"
        s2 = scale * 2.0
        (bw, bh), _ = cv2.getTextSize(big, cv2.FONT_HERSHEY_SIMPLEX, s2, th * 2)
        bx, by = max(0, (w - bw) // 2), h // 2 + bh // 2
        cv2.rectangle(img, (bx - pad, by - bh - pad), (bx + bw + pad, by + pad), (0, 0, 0), -1)
        cv2.putText(img, big, (bx, by), cv2.FONT_HERSHEY_SIMPLEX, s2, color, th * 2, cv2.LINE_AA)


def draw_caption(img: np.ndarray, caption: str) -> None:
    """Which model (and site) runs, small, along the bottom edge (outside the endoscope's active area)."""
    if not caption:
        return
    h, w = img.shape[:2]
    scale = max(0.35, h / 1080 * 0.7)
    th = max(1, int(round(scale * 1.5)))
    (tw, tht), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, th)
    pad = int(6 * scale) + 1
    x0, y1 = w - tw - 2 * pad, h - pad
    cv2.rectangle(img, (x0 - pad, y1 - tht - base - pad), (w - pad, h - 1), (0, 0, 0), -1)
    cv2.putText(img, caption, (x0, y1 - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (200, 200, 200), th, cv2.LINE_AA)


def render(img: np.ndarray, verdict: Verdict, cfg, latency_ms: float | None = None, caption: str = "") -> tuple[int, bool]:
    """Draw everything in place; returns (boxes drawn, alert shown)."""
    n = draw_boxes(img, verdict, cfg.box_color, cfg.box_thickness)
    shown = draw_alert(img, verdict, cfg.alert_style, cfg.alert_color)
    draw_state(img, verdict, latency_ms, cfg.show_latency)
    draw_caption(img, caption)
    return n, shown
