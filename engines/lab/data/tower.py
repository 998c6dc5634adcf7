"""Tower realism: a dataset frame turned into what an endoscopy tower's video output looks like.

Real input is a tower screen, not a clean dataset image: a 1080p/720p/576i canvas, black borders, a round or
octagonal scope view placed left or centre, burned-in on-screen text (date, time, patient and scope fields,
video-format lines), a picture-in-picture panel of solid colour with small icons in a corner, SD video
up-scaled to HD, interlace combing, JPEG artefacts, the colour of other video processors (white balance,
narrow-band-like blue/green), motion blur, bubbles, water and glare. The same function makes training frames
(positive and negative alike) and the tower-style test set; none of it may raise a polyp score.
"""
from __future__ import annotations

import datetime as _dt

import cv2
import numpy as np

from engines.lab.data.mining import scope_outline

CANVASES = ((1920, 1080), (1280, 720), (720, 576))
PANEL_COLOURS = ((120, 170, 40), (150, 160, 30), (90, 120, 60), (160, 140, 40), (60, 60, 60), (40, 120, 200))
TEXT_COLOURS = ((255, 255, 255), (200, 200, 200), (0, 255, 255), (0, 220, 0))


def tower_frame(img: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """HxWx3 uint8 BGR frame (+ HxW mask or None) -> tower screen (canvas-sized frame and mask).

    Deterministic for a given ``rng`` state. The polyp mask follows every geometric step; what a panel
    covers is removed from it.
    """
    cw, ch = CANVASES[int(rng.integers(len(CANVASES)))]
    sd_upscale = cw > 720 and rng.random() < 0.25
    if sd_upscale:                                   # rendered as 576i, shown up-scaled on an HD screen
        out_size, (cw, ch) = (cw, ch), (720, 576)
    view, vmask = _scope_image(img, mask, rng, ch)
    canvas = np.full((ch, cw, 3), int(rng.integers(0, 10)), np.uint8)
    cmask = np.zeros((ch, cw), np.uint8) if mask is not None else None
    vh, vw = view.shape[:2]
    if vw > cw:                                      # 4:3 canvases: the view is cut at the sides
        cut = (vw - cw) // 2
        view, vw = view[:, cut:cut + cw], cw
        vmask = None if vmask is None else vmask[:, cut:cut + cw]
    x = {0: (cw - vw) // 2, 1: cw - vw - int(rng.integers(0, max(1, (cw - vw) // 8 + 1))),
         2: int(rng.integers(0, cw - vw + 1))}[int(rng.integers(3))]
    y = (ch - vh) // 2
    canvas[y:y + vh, x:x + vw] = view
    if cmask is not None:
        cmask[y:y + vh, x:x + vw] = vmask
    _text(canvas, rng, (x, x + vw))
    if rng.random() < 0.6:
        _panel(canvas, cmask, rng, (x, x + vw))
    if rng.random() < 0.3:
        _glare(canvas, rng, (x, y, x + vw, y + vh))
    if rng.random() < 0.2:
        _bubbles(canvas, rng, (x, y, x + vw, y + vh))
    if rng.random() < 0.15:                          # water in front of the lens
        roi = canvas[y:y + vh, x:x + vw].astype(np.float32)
        roi = cv2.GaussianBlur(roi, (0, 0), rng.uniform(1.5, 4)) * np.array([1.15, 1.05, 0.85], np.float32)
        canvas[y:y + vh, x:x + vw] = np.clip(roi, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        canvas = _motion_blur(canvas, rng)
    if rng.random() < 0.2:                           # interlace combing: odd lines from the other field
        canvas[1::2] = np.roll(canvas[1::2], int(rng.integers(2, 7)) * (1 if rng.random() < 0.5 else -1), axis=1)
    if sd_upscale:
        canvas = cv2.resize(canvas, out_size, interpolation=cv2.INTER_LINEAR)
        if cmask is not None:
            cmask = cv2.resize(cmask, out_size, interpolation=cv2.INTER_NEAREST)
    if rng.random() < 0.6:                           # recorded / streamed video compression
        ok, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 85))])
        canvas = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return canvas, cmask


def _scope_image(img, mask, rng, ch):
    """The frame as the processor shows it: colour mode, scaled to the canvas height, scope outline."""
    img = _processor_colour(img, rng)
    h, w = img.shape[:2]
    vh = int(ch * rng.uniform(0.82, 1.0))
    vw = int(round(w * vh / h * rng.uniform(0.95, 1.1)))
    view = cv2.resize(img, (vw, vh), interpolation=cv2.INTER_AREA if vh < h else cv2.INTER_LINEAR)
    shape = ("octagon", "circle", "rounded", "keep")[int(rng.integers(4))]
    keep = np.ones((vh, vw), np.uint8) if shape == "keep" else scope_outline(vw, vh, shape, rng)
    view = view * keep[:, :, None]
    vmask = None
    if mask is not None:
        vmask = cv2.resize((mask > 0).astype(np.uint8), (vw, vh), interpolation=cv2.INTER_NEAREST) * keep
    return view, vmask


def _processor_colour(img, rng):
    x = img.astype(np.float32)
    if rng.random() < 0.12:                          # narrow-band-like: little red, green/blue carry the image
        grey = x[..., 1] * 0.6 + x[..., 2] * 0.4
        x = np.stack([grey * rng.uniform(0.9, 1.2), grey * rng.uniform(0.8, 1.05), x[..., 2] * rng.uniform(0.25, 0.5)
                      + grey * 0.3], axis=2)
    else:
        x *= rng.uniform(0.85, 1.15, 3).astype(np.float32)          # white balance of another processor
        x = 255.0 * (x / 255.0).clip(0, 1) ** rng.uniform(0.75, 1.3)  # gamma / exposure
    return np.clip(x, 0, 255).astype(np.uint8)


def _text(canvas, rng, view_x):
    """Burned-in tower text in the black margins (and sometimes over the top of the image)."""
    ch, cw = canvas.shape[:2]
    t = _dt.datetime(2020, 1, 1) + _dt.timedelta(seconds=int(rng.integers(0, 5 * 365 * 86400)))
    lines = [t.strftime(("%Y/%m/%d", "%d-%m-%Y", "%m/%d/%y")[int(rng.integers(3))]), t.strftime("%H:%M:%S"),
             f"ID: {int(rng.integers(10 ** 5, 10 ** 8))}", "Name:", f"Sex: {'FM'[int(rng.integers(2))]}  "
             f"Age: {int(rng.integers(30, 90))}", f"Eh:A{int(rng.integers(1, 9))} Cm:{int(rng.integers(1, 4))}",
             ("1080i", "1080p", "576i", "SD", "HD")[int(rng.integers(5))], ("CVP:1", "NBI", "WLI", "Fr:N")[int(rng.integers(4))],
             ("CV-190", "EPK-i7010", "VP-7000", "ELUXEO")[int(rng.integers(4))], "Comment:"]
    rng.shuffle(lines)
    colour = TEXT_COLOURS[int(rng.integers(len(TEXT_COLOURS)))]
    scale = ch / 1080 * rng.uniform(0.6, 1.1)
    left_room, right_room = view_x[0], cw - view_x[1]
    x = 8 if left_room >= right_room else view_x[1] + 8
    yy = int(rng.uniform(0.05, 0.2) * ch)
    for line in lines[:int(rng.integers(3, len(lines) + 1))]:
        cv2.putText(canvas, line, (x, yy), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, max(1, int(2 * scale)),
                    cv2.LINE_AA)
        yy += int(40 * scale) + 4
        if yy > ch - 10:
            break
    if rng.random() < 0.15:                          # a status line across the top of the image itself
        cv2.putText(canvas, lines[0], (view_x[0] + int(rng.integers(20, 120)), int(30 * scale) + 10),
                    cv2.FONT_HERSHEY_SIMPLEX, scale, colour, max(1, int(2 * scale)), cv2.LINE_AA)


def _panel(canvas, cmask, rng, view_x):
    """A picture-in-picture panel (scope-position guide) of solid colour with small icons in a corner."""
    ch, cw = canvas.shape[:2]
    ph = int(ch * rng.uniform(0.15, 0.3))
    pw = int(ph * rng.uniform(0.9, 1.6))
    left = view_x[0] >= cw - view_x[1]
    x0 = max(0, min(view_x[0] - pw + int(rng.integers(0, pw // 3 + 1)), cw - pw)) if left else \
        min(cw - pw, view_x[1] - int(rng.integers(0, pw // 3 + 1)))
    y0 = ch - ph - int(rng.integers(0, ch // 10))
    colour = PANEL_COLOURS[int(rng.integers(len(PANEL_COLOURS)))]
    canvas[y0:y0 + ph, x0:x0 + pw] = colour
    dark = (40, 40, 40)
    for _ in range(int(rng.integers(1, 4))):        # icons: a scope outline, a curve, a dot
        cx, cy = x0 + int(rng.integers(pw // 6, pw - pw // 6)), y0 + int(rng.integers(ph // 6, ph - ph // 6))
        cv2.circle(canvas, (cx, cy), max(2, ph // 14), dark, -1)
    pts = np.stack([np.linspace(x0 + pw * 0.2, x0 + pw * 0.8, 12),
                    y0 + ph * (0.5 + 0.3 * np.sin(np.linspace(0, rng.uniform(2, 6), 12)))], 1).astype(np.int32)
    cv2.polylines(canvas, [pts], False, dark, max(1, ph // 40))
    if rng.random() < 0.5:
        cv2.line(canvas, (x0 + pw // 2, y0), (x0 + pw // 2, y0 + ph), dark, 1)
    if cmask is not None:
        cmask[y0:y0 + ph, x0:x0 + pw] = 0


def _glare(canvas, rng, box):
    x0, y0, x1, y1 = box
    for _ in range(int(rng.integers(1, 6))):
        c = (int(rng.integers(x0, x1)), int(rng.integers(y0, y1)))
        ax = (int(rng.integers(3, max(4, (x1 - x0) // 25))), int(rng.integers(2, max(3, (y1 - y0) // 40))))
        cv2.ellipse(canvas, c, ax, float(rng.uniform(0, 180)), 0, 360, (250, 250, 250), -1, cv2.LINE_AA)


def _bubbles(canvas, rng, box):
    x0, y0, x1, y1 = box
    over = canvas.copy()
    for _ in range(int(rng.integers(3, 25))):
        c = (int(rng.integers(x0, x1)), int(rng.integers(y0, y1)))
        r = int(rng.integers(3, max(4, (x1 - x0) // 30)))
        cv2.circle(over, c, r, (235, 235, 235), max(1, r // 5), cv2.LINE_AA)
        cv2.circle(over, (c[0] - r // 3, c[1] - r // 3), max(1, r // 5), (255, 255, 255), -1, cv2.LINE_AA)
    cv2.addWeighted(over, 0.6, canvas, 0.4, 0, dst=canvas)


def _motion_blur(canvas, rng):
    k = int(rng.integers(5, 15))
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2] = 1.0 / k
    rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (k, k))
    return cv2.filter2D(canvas, -1, kernel / max(kernel.sum(), 1e-6))
