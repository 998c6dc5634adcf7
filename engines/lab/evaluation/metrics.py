"""Classification and localisation metrics shared by training, evaluation and replay QA (numpy only)."""
from __future__ import annotations

import math

import numpy as np


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, thresholds), thresholds descending; starts at (0, 0)."""
    y = np.asarray(labels, bool)
    s = np.asarray(scores, np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1] if len(s) else np.array([], int)
    tps = np.cumsum(y)[distinct]
    fps = (distinct + 1) - tps
    P, N = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return np.r_[0.0, fps / N], np.r_[0.0, tps / P], np.r_[np.inf, s[distinct]]


def auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half); None when only one class is present."""
    y = np.asarray(labels, bool)
    if y.all() or not y.any():
        return None
    fpr, tpr, _ = roc_curve(y, scores)
    return float(np.trapezoid(tpr, fpr))


def sens_spec(labels: np.ndarray, predicted: np.ndarray) -> tuple[float | None, float | None]:
    """(sensitivity, specificity) of boolean predictions; None where that class is absent."""
    y = np.asarray(labels, bool)
    p = np.asarray(predicted, bool)
    sens = float((p & y).sum() / y.sum()) if y.any() else None
    spec = float((~p & ~y).sum() / (~y).sum()) if (~y).any() else None
    return sens, spec


def threshold_for_specificity(neg_scores: np.ndarray, specificity: float) -> float:
    """Smallest threshold t (score >= t is positive) with at least ``specificity`` of negatives below t."""
    s = np.sort(np.asarray(neg_scores, np.float64))
    if len(s) == 0:
        raise ValueError("threshold_for_specificity: no negative scores")
    k = int(np.ceil(specificity * len(s)))          # this many negatives must lie below t
    t = s[k - 1] if k >= 1 else 0.0
    return float(np.nextafter(t, np.inf)) if k >= 1 else float(s[0])


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


Z95 = 1.959964


def wilson(k: int, n: int) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion k/n (None when n == 0)."""
    if n <= 0:
        return None
    p = k / n
    den = 1 + Z95 ** 2 / n
    centre = (p + Z95 ** 2 / (2 * n)) / den
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n * n)) / den
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))
