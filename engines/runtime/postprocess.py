"""Backend outputs (dict of arrays) -> frame score and full-frame boxes. The only place raw tensors are read."""
from __future__ import annotations

import cv2
import numpy as np

from engines.runtime.metadata import ModelMetadata
from engines.runtime.preprocess import Preprocessed, input_to_frame_box
from engines.runtime.result import Box

HEATMAP_UPSAMPLE = 4     # boxes are outlined on the heatmap up-sampled this many times


def heatmap_boxes(heat: np.ndarray, level: float, input_w: int, input_h: int, max_boxes: int = 3,
                  every_cell: bool = False) -> list[tuple[float, float, float, float, float]]:
    """Connected regions of ``heat`` (h x w probabilities) above ``level`` as model-input pixel boxes + score.

    ``every_cell``: every cell at or over ``level`` lies in a box, also a lone peak that the smooth up-sampling would
    lower under it (a map-max model: its frame score is that cell, so a score over the threshold has a box there)."""
    h, w = heat.shape
    up = cv2.resize(heat.astype(np.float32), (w * HEATMAP_UPSAMPLE, h * HEATMAP_UPSAMPLE),
                    interpolation=cv2.INTER_LINEAR)
    binary = (up >= level).astype(np.uint8)
    if every_cell:
        cells = cv2.resize((heat >= level).astype(np.uint8), (up.shape[1], up.shape[0]), interpolation=cv2.INTER_NEAREST)
        binary |= cells
        up = np.maximum(up, cv2.resize(heat.astype(np.float32), (up.shape[1], up.shape[0]),
                                       interpolation=cv2.INTER_NEAREST) * cells)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    sx, sy = input_w / up.shape[1], input_h / up.shape[0]
    out = []
    for k in range(1, n):
        x, y, bw, bh, _ = stats[k]
        score = float(up[labels == k].max())
        out.append((x * sx, y * sy, (x + bw) * sx, (y + bh) * sy, score))
    out.sort(key=lambda b: -b[4])
    return out[:max_boxes]


def to_result(outputs: dict[str, np.ndarray], pre: Preprocessed, meta: ModelMetadata) -> tuple[float, tuple[Box, ...]]:
    """One frame's (score, boxes) from batch-of-one backend outputs."""
    try:
        first = np.asarray(outputs[meta.score_output])
        score = float(first[0, list(meta.positive_classes)].sum() if meta.classes else first.reshape(-1)[0])
        heat = np.asarray(outputs[meta.heatmap_output])[0, 0]
    except (KeyError, IndexError) as e:
        raise ValueError(f"backend outputs: expected {meta.score_output!r} (N,) and {meta.heatmap_output!r} "
                         f"(N,1,h,w), got { {k: np.shape(v) for k, v in outputs.items()} } ({e})") from None
    if not np.isfinite(score):
        raise ValueError(f"backend outputs: score is {score}")
    spec = meta.preprocess
    boxes = []
    for x0, y0, x1, y1, s in heatmap_boxes(heat, meta.box_threshold, spec.input_width, spec.input_height,
                                           every_cell=meta.decision == "map_max"):
        fx0, fy0, fx1, fy1 = input_to_frame_box((x0, y0, x1, y1), pre, spec)
        boxes.append(Box(fx0, fy0, fx1, fy1, min(max(s, 0.0), 1.0)))
    return min(max(score, 0.0), 1.0), tuple(boxes)


def frame_heatmap(outputs: dict[str, np.ndarray], pre: Preprocessed, meta: ModelMetadata) -> np.ndarray:
    """The model's localisation heat map placed back on the full frame (HxW float32 0..1; 0 outside the crop)."""
    heat = np.clip(np.asarray(outputs[meta.heatmap_output], np.float32)[0, 0], 0.0, 1.0)
    out = np.zeros((pre.frame_height, pre.frame_width), np.float32)
    a = pre.area
    if a.width > 0 and a.height > 0:
        out[a.y0:a.y1, a.x0:a.x1] = cv2.resize(heat, (a.width, a.height), interpolation=cv2.INTER_LINEAR)
    return out
