"""A threshold that means something: temperature scaling of the frame score, and an operating threshold that
holds on every negative source of the validation set, not on one.

Temperature scaling (Guo et al., 2017) divides the score's logit by one number T fitted by minimising the
negative log-likelihood on validation frames pooled over all sources; it changes no ranking (AUROC), only
what a score of, say, 0.5 means. The threshold is then the lowest one at which EVERY negative source of the
validation set keeps at least the target specificity: a source whose frames look unlike the others can no
longer hide behind a large, easy one.

``threshold_for_cells`` can also look inside each source, at each way its frames are shown (as recorded, on a
tower screen, as re-framed polyp-free views: ``Sample.view``), and ask each cell for a margin over the target that
grows as the cell shrinks (binomial standard errors, sqrt(s(1-s)/n)). Why it was tried (session 12): the all-source
v4 candidate of session 11 kept 0.962 of Kvasir's validation negatives quiet at its threshold but 0.925 of the 160
unseen normals. What it did: with one standard error the next run's threshold hit the 0.98 cap (PolypGen-A's 31
validation negatives, one sequence, shown twice) and halved sensitivity, so the default stays the per-source rule
with no margin (``tools/train --threshold-cells source --threshold-margin 0``); the model card has the figures.
"""
from __future__ import annotations

import numpy as np

from engines.evaluation.metrics import threshold_for_specificity

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


def required_specificity(specificity: float, n: int, margin_se: float) -> float:
    """The specificity a cell of ``n`` negatives must show so that the target holds with ``margin_se`` binomial
    standard errors to spare; never more than leaving one frame of the cell over the threshold."""
    want = specificity + margin_se * float(np.sqrt(specificity * (1.0 - specificity) / n))
    return min(want, max(specificity, 1.0 - 1.0 / n))


def threshold_for_cells(scores: np.ndarray, labels: np.ndarray, sources: list[str], views: list[str],
                        specificity: float, margin_se: float = 0.0,
                        min_negatives: int = 20) -> tuple[float, dict[str, float]]:
    """(threshold, {cell: its own threshold}): the strictest over the pooled negatives, each source's and, where a
    source's negatives are shown more than one way, each (source, view) cell's with at least ``min_negatives``
    negatives, each asked for ``specificity`` plus ``margin_se`` standard errors of its own size
    (``required_specificity``). ``views`` name how each row is shown (``frame``, ``tower``, ``region``,
    ``region+tower``)."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    src, view = np.asarray(sources), np.asarray(views)
    if not (len(src) == len(view) == len(scores) == len(labels)):
        raise ValueError("threshold_for_cells: scores, labels, sources and views differ in length")
    neg = labels == 0
    if not neg.any():
        raise ValueError("threshold_for_cells: no negative frames")
    cells = {"(pooled)": neg}
    for name in sorted(set(src[neg].tolist())):
        cells[name] = neg & (src == name)
        shown = sorted(set(view[cells[name]].tolist()))
        for v in shown if len(shown) > 1 else ():
            cells[f"{name} {v}"] = cells[name] & (view == v)
    per = {}
    for cell, sel in cells.items():
        n = int(sel.sum())
        if cell == "(pooled)" or n >= min_negatives:
            per[cell] = threshold_for_specificity(scores[sel], required_specificity(specificity, n, margin_se))
    return max(per.values()), per
