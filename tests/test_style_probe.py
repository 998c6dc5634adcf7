"""tools/style_probe: a colour-only probe finds a planted colour cue, not an absent one; the tool runs per source."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from engines.lab.evaluation.style_probe import (
    colour_features,
    cross_validated_auroc,
    texture_features,
)

ROOT = Path(__file__).resolve().parents[1]


def _frames(rng, n, cast):
    imgs = rng.normal(110, 30, (n, 24, 24, 3)) + np.asarray(cast, float)
    imgs = np.clip(imgs, 1, 255).astype(np.uint8)
    imgs[:, :4] = 0                                     # outside the scope image: left out by the features
    return list(imgs)


def test_probe_finds_a_colour_cue_and_not_an_absent_one():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(100, int), np.zeros(100, int)]
    cued = _frames(rng, 100, (0, 0, 25)) + _frames(rng, 100, (0, 0, 0))      # positives redder
    same = _frames(rng, 200, (0, 0, 0))                                       # one recording for both labels
    X = np.stack([colour_features(f) for f in cued])
    assert X.shape == (200, 30)
    assert cross_validated_auroc(X, y) > 0.95
    assert cross_validated_auroc(np.stack([colour_features(f) for f in same]), y) < 0.7
    assert cross_validated_auroc(X, np.ones(200, int)) is None


def test_texture_probe_finds_a_sharpness_cue_and_not_an_absent_one():
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(80, int), np.zeros(80, int)]
    frames = _frames(rng, 160, (0, 0, 0))
    frames = [cv2.resize(f, (48, 48), interpolation=cv2.INTER_NEAREST) for f in frames]
    cued = frames[:80] + [cv2.GaussianBlur(f, (0, 0), 1.5) for f in frames[80:]]   # negatives recorded blurred
    T = np.stack([texture_features(f) for f in cued])
    assert T.shape == (160, 16) and np.isfinite(T).all()
    assert cross_validated_auroc(T, y) > 0.95
    assert cross_validated_auroc(np.stack([texture_features(f) for f in frames]), y) < 0.7


def test_tool_reports_every_source_and_names_a_bad_option(data_root, tmp_path):
    r = subprocess.run([sys.executable, "tools/style_probe", "--data-root", str(data_root), "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads((tmp_path / "style_probe.json").read_text())
    assert set(rows) == {"kvasir", "cvc-colondb", "polypgen-A", "polypgen-B", "bkai-igh"}
    for name, row in rows.items():
        assert 0.0 <= row["colour_auroc"] <= 1.0 and 0 < row["positives"] < row["frames"], name
        assert f"| {name} |" in r.stdout
    r = subprocess.run([sys.executable, "tools/style_probe", "--data-root", str(data_root), "--features", "texture",
                        "--out", str(tmp_path / "t")], cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads((tmp_path / "t" / "style_probe.json").read_text())
    assert all(0.0 <= row["texture_auroc"] <= 1.0 for row in rows.values()) and "AUROC from texture statistics alone" in r.stdout
    r = subprocess.run([sys.executable, "tools/style_probe", "--data-root", str(data_root), "--features", "shape"],
                       cwd=ROOT, capture_output=True, text=True, check=False, timeout=60)
    assert r.returncode == 2 and "--features: invalid choice: 'shape'" in r.stderr
    r = subprocess.run([sys.executable, "tools/style_probe", "--data-root", str(tmp_path / "none")],
                       cwd=ROOT, capture_output=True, text=True, check=False, timeout=60)
    assert r.returncode == 3 and r.stderr.startswith("polypwatch style-probe: data error: ")
