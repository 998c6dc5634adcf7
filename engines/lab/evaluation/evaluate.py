"""Evaluating an exported model the way it is deployed: shared preprocessing, ONNX Runtime, postprocessing.

metrics.json keys (docs/MODEL_CARD.md explains them):
  count, positives, negatives, threshold, auroc, sensitivity, specificity,
  sequences: {id: {frames, detected_frames, detected, auroc, sensitivity_at_95_specificity}} (the sequence's
  polyp frames against every negative of the set), sequences_detected, sequences_total,
  iou: {count, median, mean, fraction_ge_0_5}, shortcut: {sensitivity_painted, specificity_painted,
  sensitivity_change_points}, message_box: {sensitivity_boxed, specificity_boxed, sensitivity_change_points},
  centre_a_warning: {sensitivity_warned, specificity_warned, sensitivity_change_points},
  per_dataset: {name: {count, positives, sensitivity, specificity, auroc}}
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.backends.onnxruntime_backend import OnnxRuntimeBackend
from engines.lab.data.datasets import Sample
from engines.lab.data.frames import read_sample
from engines.lab.data.osd import draw_centre_a_warning, draw_message_box
from engines.lab.evaluation.metrics import auroc, box_iou, sens_spec, threshold_for_specificity
from engines.runtime.metadata import read_onnx_metadata
from engines.runtime.postprocess import to_result
from engines.runtime.preprocess import find_active_area, preprocess

log = logging.getLogger(__name__)
CORNER = (0.34, 0.66)     # lower-left region painted black for the shortcut check (x < a*W, y > b*H)
MESSAGE_BOX_SEED = 7      # the message-box check's boxes: this seed and the frame's index


@dataclass(frozen=True)
class FrameScore:
    sample: Sample
    label: int
    score: float
    score_painted: float
    iou: float | None      # best box IoU against the mask's box (positives with a mask)
    score_boxed: float = float("nan")   # with an on-screen message box over the image (engines.lab.data.osd)
    score_warned: float = float("nan")  # with PolypGen centre A's printer warning over the image, as it records it


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    h, w = mask.shape
    return (xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h)


def paint_corner(img: np.ndarray) -> np.ndarray:
    out = img.copy()
    h, w = out.shape[:2]
    out[int(CORNER[1] * h):, : int(CORNER[0] * w)] = 0
    return out


def _drawn_in_active_area(draw, img: np.ndarray, spec, index: int) -> np.ndarray:
    a = find_active_area(img, spec)
    return draw(img, np.random.default_rng([MESSAGE_BOX_SEED, index]), (a.x0, a.y0, a.x1, a.y1))[0]


def message_boxed(img: np.ndarray, spec, index: int) -> np.ndarray:
    """The frame with an on-screen message box inside its active area, drawn from a generator seeded by ``index``."""
    return _drawn_in_active_area(draw_message_box, img, spec, index)


def centre_a_warned(img: np.ndarray, spec, index: int) -> np.ndarray:
    """The frame with centre A's printer warning where its recordings show it (the box that silenced v2 on its own
    polyp-free frames), placed from a generator seeded by ``index``."""
    return _drawn_in_active_area(draw_centre_a_warning, img, spec, index)


def score_frames(model: str | Path, frames, count: int, threads: int = 2, shortcut: bool = True,
                 progress=None) -> list[FrameScore]:
    """Score ``frames`` (an iterable of (Sample, HxWx3 BGR image, HxW mask or None)) through the deployed path.

    ``shortcut``: each frame is also scored with the lower-left corner painted black, with an on-screen message box
    drawn over its image and with centre A's printer warning (``engines.lab.data.osd``; the same box for the same frame
    index every run)."""
    meta = read_onnx_metadata(model)
    spec = meta.preprocess
    out = []
    with OnnxRuntimeBackend(model, threads=threads) as be:
        def run(img):
            pre = preprocess(img, spec)
            return to_result(be.infer(pre.tensor), pre, meta)
        for i, (s, img, m) in enumerate(frames):
            score, boxes = run(img)
            painted = run(paint_corner(img))[0] if shortcut else float("nan")
            boxed = run(message_boxed(img, spec, i))[0] if shortcut else float("nan")
            warned = run(centre_a_warned(img, spec, i))[0] if shortcut else float("nan")
            label, iou = s.label, None
            if m is not None:
                if label < 0:
                    label = int(m.any())
                mb = mask_box(m)
                if mb is not None and score >= meta.threshold:
                    iou = max((box_iou(mb, (b.x0, b.y0, b.x1, b.y1)) for b in boxes), default=0.0)
            out.append(FrameScore(s, max(label, 0), score, painted, iou, boxed, warned))
            if progress is not None:
                progress(i + 1, count)
    return out


def score_samples(model: str | Path, samples: list[Sample], threads: int = 2, shortcut: bool = True,
                  progress=None) -> list[FrameScore]:
    return score_frames(model, ((s, *read_sample(s)) for s in samples), len(samples), threads, shortcut, progress)


def synthetic_frames(count: int, seed: int = 3000, polyps: bool = False):
    """``count`` generated frames with (``polyps``) or without a polyp in view, from seeds ``seed``, ``seed+1``...
    (3000 up: never used by training or validation)."""
    from engines.synthetic import SceneRenderer, SynthParams
    rng = np.random.default_rng(seed)
    made, k = 0, 0
    while made < count and k < 100:
        r = SceneRenderer(SynthParams(seed=seed + k, seconds=60, width=1280, height=720, fps=25))
        for i in sorted(rng.choice(r.params.frame_count, 30, replace=False)):
            fr = r.render(int(i))
            if bool(fr.polyps) != polyps or made >= count:
                continue
            m = np.zeros(fr.image.shape[:2], np.uint8)
            for q in fr.polyps:
                m |= fr.masks[q.polyp_id].astype(np.uint8)
            yield Sample(Path(f"synthetic-seed{seed + k}-frame{i}.png"), int(polyps), None, f"seed{seed + k}",
                         "synthetic"), fr.image, m
            made += 1
        k += 1


def _rnd(v):
    return None if v is None else round(float(v), 4)


def sensitivity_at_specificity(y: np.ndarray, s: np.ndarray, specificity: float = 0.95) -> float | None:
    """Sensitivity at the threshold that gives ``specificity`` on these frames' own negatives."""
    y = np.asarray(y, bool)
    if y.all() or not y.any():
        return None
    return float((s[y] >= threshold_for_specificity(s[~y], specificity)).mean())


def summarise(scores: list[FrameScore], threshold: float) -> dict:
    y = np.array([f.label for f in scores])
    s = np.array([f.score for f in scores])
    sp = np.array([f.score_painted for f in scores])
    sens, spec = sens_spec(y, s >= threshold)
    m = {"count": len(scores), "positives": int(y.sum()), "negatives": int((1 - y).sum()),
         "threshold": round(threshold, 4), "auroc": _rnd(auroc(y, s)), "sensitivity": _rnd(sens),
         "specificity": _rnd(spec), "sensitivity_at_95_specificity": _rnd(sensitivity_at_specificity(y, s))}
    seqs: dict[str, dict] = {}
    seq_scores: dict[str, list[float]] = {}
    for f in scores:
        if f.sample.group and f.label:
            key = f"{f.sample.dataset}/{f.sample.group}"
            e = seqs.setdefault(key, {"frames": 0, "detected_frames": 0})
            e["frames"] += 1
            e["detected_frames"] += int(f.score >= threshold)
            seq_scores.setdefault(key, []).append(f.score)
    neg = s[y == 0]
    for key, e in seqs.items():
        e["detected"] = e["detected_frames"] > 0
        yy = np.r_[np.ones(len(seq_scores[key]), int), np.zeros(len(neg), int)]     # one sequence's polyps, all negatives
        ss = np.r_[seq_scores[key], neg]
        e["auroc"] = _rnd(auroc(yy, ss))
        e["sensitivity_at_95_specificity"] = _rnd(sensitivity_at_specificity(yy, ss))
    m["sequences"] = seqs
    m["sequences_total"] = len(seqs)
    m["sequences_detected"] = sum(e["detected"] for e in seqs.values())
    ious = np.array([f.iou for f in scores if f.iou is not None])
    m["iou"] = {"count": int(len(ious)), "median": _rnd(np.median(ious)) if len(ious) else None,
                "mean": _rnd(ious.mean()) if len(ious) else None,
                "fraction_ge_0_5": _rnd((ious >= 0.5).mean()) if len(ious) else None}
    for key, suffix, changed in (("shortcut", "painted", sp),
                                 ("message_box", "boxed", np.array([f.score_boxed for f in scores])),
                                 ("centre_a_warning", "warned", np.array([f.score_warned for f in scores]))):
        if np.isfinite(changed).all():      # the frames scored again: corner painted, message box, centre A's
            cs, cspec = sens_spec(y, changed >= threshold)
            m[key] = {f"sensitivity_{suffix}": _rnd(cs), f"specificity_{suffix}": _rnd(cspec),
                      "sensitivity_change_points": _rnd(None if cs is None or sens is None else 100 * (cs - sens))}
    per = {}
    for name in sorted({f.sample.dataset for f in scores}):
        sub = [f for f in scores if f.sample.dataset == name]
        yy = np.array([f.label for f in sub])
        ss = np.array([f.score for f in sub])
        se, spc = sens_spec(yy, ss >= threshold)
        per[name] = {"count": len(sub), "positives": int(yy.sum()), "sensitivity": _rnd(se),
                     "specificity": _rnd(spc), "auroc": _rnd(auroc(yy, ss)),
                     "sensitivity_at_95_specificity": _rnd(sensitivity_at_specificity(yy, ss))}
    m["per_dataset"] = per
    return m
