"""A threshold that means something: temperature scaling of the frame score, and an operating threshold that
holds on every negative source of the validation set, not on one.

Temperature scaling (Guo et al., 2017) divides the score's logit by one number T fitted by minimising the
negative log-likelihood on validation frames pooled over all sources; it changes no ranking (AUROC), only
what a score of, say, 0.5 means. The threshold is then the lowest one at which EVERY negative source of the
validation set keeps at least the target specificity: a source whose frames look unlike the others can no
longer hide behind a large, easy one.

The rule's history (a stricter rule per way of showing a frame, with a margin, tried in session 12 and removed:
it over-corrected) is in docs/EXPERIMENTS.md.
"""
from __future__ import annotations

import numpy as np

from engines.lab.evaluation.metrics import threshold_for_specificity

EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def calibrated(p: np.ndarray, temperature: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logit(p) / temperature))


def nll(labels: np.ndarray, p: np.ndarray) -> float:
    y = np.asarray(labels, np.float64)
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def fit_temperature(labels: np.ndarray, p: np.ndarray, lo: float = 0.05, hi: float = 20.0) -> float:
    """T > 0 minimising the NLL of sigmoid(logit(p) / T) (golden-section search on log T; the NLL is unimodal)."""
    y = np.asarray(labels)
    if y.min() == y.max():
        raise ValueError("fit_temperature: the validation frames must hold both classes")
    f = lambda lt: nll(y, calibrated(p, float(np.exp(lt))))  # noqa: E731
    a, b = np.log(lo), np.log(hi)
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    for _ in range(80):
        if f(c) < f(d):
            b = d
        else:
            a = c
        c, d = b - g * (b - a), a + g * (b - a)
    return float(np.exp((a + b) / 2))


def threshold_for_sources(scores: np.ndarray, labels: np.ndarray, sources: list[str], specificity: float,
                          min_negatives: int = 20) -> tuple[float, dict[str, float]]:
    """(threshold, {cell: its own threshold}): the strictest of the pooled negatives' and each source's with at least
    ``min_negatives`` negatives, each the lowest threshold giving ``specificity`` on that cell."""
    scores, labels, src = np.asarray(scores), np.asarray(labels), np.asarray(sources)
    if not (len(src) == len(scores) == len(labels)):
        raise ValueError("threshold_for_sources: scores, labels and sources differ in length")
    neg = labels == 0
    if not neg.any():
        raise ValueError("threshold_for_sources: no negative frames")
    cells = {"(pooled)": neg, **{name: neg & (src == name) for name in sorted(set(src[neg].tolist()))}}
    per = {cell: threshold_for_specificity(scores[sel], specificity) for cell, sel in cells.items()
           if cell == "(pooled)" or int(sel.sum()) >= min_negatives}
    return max(per.values()), per
