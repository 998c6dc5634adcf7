"""tools/style_probe: how much of each source's label a frame's global colour (or texture) alone gives away.

A logistic regression on colour statistics of the preprocessed input (per channel: an 8-bin histogram of the
scope image's pixels, their mean and spread; no spatial layout at all), scored by 5-fold cross-validation within
each source (frames as recorded and the protocol's mined views). ``--features texture`` probes sharpness and
texture statistics instead (Laplacian and gradient strength at three scales, grey-level spread), ``both`` the two. A polyp is a few percent of the frame: where this
probe reaches AUROC near 1, the source's positives and negatives differ in recording (processor, light, video) and a
network trained on them can learn the recording instead of the polyp.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np


log = logging.getLogger("style_probe")
BINS = 8
FOLDS = 5


def colour_features(frame: np.ndarray) -> np.ndarray:
    """Per-channel histogram (``BINS`` bins over the scope image's pixels), mean and spread of an HxWx3 uint8
    preprocessed frame (black = outside the scope image)."""
    inside = frame.any(axis=2)
    v = frame[inside].astype(np.float64) if inside.any() else np.zeros((1, 3))
    f = []
    for c in range(3):
        h, _ = np.histogram(v[:, c], bins=BINS, range=(0, 256))
        f += list(h / len(v)) + [v[:, c].mean() / 255, v[:, c].std() / 255]
    return np.array(f)


def texture_features(frame: np.ndarray) -> np.ndarray:
    """Sharpness and texture of the scope image (eroded, so its outline is not an edge), at full, half and quarter
    resolution: log mean and variance of the absolute Laplacian, log 50/90/99th percentiles of the gradient
    magnitude; and the log spread of the grey levels. 16 numbers, no colour, no layout."""
    import cv2
    g = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    inside = cv2.erode(frame.any(axis=2).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    if inside.sum() < 50:
        inside[:] = True
    f = []
    for scale in (1, 2, 4):
        gs = g if scale == 1 else cv2.resize(g, None, fx=1 / scale, fy=1 / scale, interpolation=cv2.INTER_AREA)
        ins = cv2.resize(inside.astype(np.uint8), (gs.shape[1], gs.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
        lap = np.abs(cv2.Laplacian(gs, cv2.CV_32F))[ins]
        mag = np.hypot(cv2.Sobel(gs, cv2.CV_32F, 1, 0), cv2.Sobel(gs, cv2.CV_32F, 0, 1))[ins]
        f += [np.log1p(lap.mean()), np.log1p(lap.var()), *np.log1p(np.percentile(mag, [50, 90, 99]))]
    return np.array(f + [np.log1p(g[inside].std())])


FEATURES = {"colour": colour_features, "texture": texture_features,
            "both": lambda f: np.r_[colour_features(f), texture_features(f)]}


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 50):
    """Class-balanced L2 logistic regression by Newton's method; returns a scoring function."""
    mu, sd = X.mean(0), X.std(0) + 1e-9
    Z = np.c_[(X - mu) / sd, np.ones(len(X))]
    w = np.zeros(Z.shape[1])
    cw = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9))
    reg = np.full(Z.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(Z @ w, -30, 30)))
        g = Z.T @ (cw * (p - y)) / len(y) + reg * w
        H = (Z * (cw * p * (1 - p))[:, None]).T @ Z / len(y) + np.diag(reg + 1e-9)
        step = np.linalg.solve(H, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return lambda Xn: np.c_[(Xn - mu) / sd, np.ones(len(Xn))] @ w


def cross_validated_auroc(X: np.ndarray, y: np.ndarray, seed: int = 0) -> float | None:
    """AUROC of the probe's out-of-fold scores (stratified ``FOLDS``-fold)."""
    from engines.lab.evaluation.metrics import auroc
    if y.all() or not y.any():
        return None
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), int)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % FOLDS
    s = np.empty(len(y))
    for k in range(FOLDS):
        tr, te = fold != k, fold == k
        s[te] = fit_logistic(X[tr], y[tr])(X[te])
    return auroc(y, s)


def source_arrays(sources: dict, spec) -> dict[str, tuple]:
    """{source: (preprocessed frames as training sees them, labels)} over frames as recorded and mined views."""
    from engines.lab.data.arrays import from_samples
    from engines.lab.data.sources import mined_views
    out = {}
    for name, src in sources.items():
        data = from_samples(list(src.all()) + mined_views(src.all(), 2), spec)
        out[name] = (list(data.images), data.labels)
        log.info("%s: %d frames", name, len(data))
    return out


def probe(sources: dict, spec, features: str = "colour") -> dict:
    rows = {}
    for name, (frames, y) in source_arrays(sources, spec).items():
        X = np.stack([FEATURES[features](f) for f in frames])
        a = cross_validated_auroc(X, y)
        rows[name] = {"frames": len(y), "positives": int(y.sum()), "features": features,
                      f"{features}_auroc": None if a is None else round(a, 4)}
    return rows


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--data-root", required=True, metavar="DIR", help="folder laid out like ../shared/data")
    ap.add_argument("--model", default="engines/models/polypwatch-lite0-v3.onnx",
                    help="the model whose preprocessing (input size, crop, masks) the frames go through")
    ap.add_argument("--features", choices=tuple(FEATURES), default="colour",
                    help="what the probe sees: colour statistics (default), sharpness/texture statistics, or both")
    ap.add_argument("--out", default=None, help="write style_probe.json here")


def run(args) -> int:
    from engines.lab.data.sources import load_sources
    from engines.runtime.metadata import read_onnx_metadata
    spec = read_onnx_metadata(args.model).preprocess
    rows = probe(load_sources(args.data_root), spec, args.features)
    from engines.lab.evaluation.protocol import fmt
    what = "colour and texture" if args.features == "both" else args.features
    print(f"| source | frames (pos) | AUROC from {what} statistics alone (5-fold) |\n|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['frames']} ({r['positives']}) | {fmt(r[f'{args.features}_auroc'])} |")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "style_probe.json").write_text(json.dumps(rows, indent=1))
    return 0
