"""The dense head: the frame's score is the maximum of a stride-8 polyp map, and its boxes come from the same map, so
a score over the threshold always has a box where the evidence is."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, run_cli

from engines.model import PolypNet, fold_temperature
from engines.runtime.postprocess import heatmap_boxes


def test_the_dense_score_is_the_maximum_of_a_stride_8_map():
    torch.manual_seed(0)
    net = PolypNet(pretrained=False, head="dense8").eval()
    x = torch.randn(3, 3, 96, 128)
    with torch.no_grad():
        s, h = net(x)
        s2, h2, aux = net.forward_train(x)
    assert h.shape == (3, 1, 12, 16) and net.heat_stride == 8
    assert torch.equal(s, h.amax((1, 2, 3))) and torch.equal(s, s2) and aux.shape == (3,)
    with torch.no_grad():
        fold_temperature(net, 2.0)                           # calibration divides the map, so the score with it
        s3, h3 = net(x)
    assert torch.allclose(s3, s / 2, atol=1e-5) and torch.allclose(h3, h / 2, atol=1e-5)
    pooled = PolypNet(pretrained=False)
    assert pooled.heat_stride == 16 and not hasattr(pooled, "fuse8")
    with pytest.raises(ValueError, match="head: expected one of"):
        PolypNet(pretrained=False, head="dense4")
    with pytest.raises(ValueError, match="expected one output"):
        PolypNet(pretrained=False, head="dense8", num_classes=3)


@pytest.mark.parametrize("seed", range(25))
def test_every_cell_over_the_level_is_in_a_box(seed):
    """A lone peak: linear up-sampling lowers it under the level (no box before); with every_cell it keeps its box."""
    rng = np.random.default_rng(seed)
    heat = rng.uniform(0, 0.5, (24, 24)).astype(np.float32)
    level = 0.9
    cells = [(int(rng.integers(24)), int(rng.integers(24))) for _ in range(int(rng.integers(1, 3)))]
    for y, x in cells:
        heat[y, x] = rng.uniform(level, min(1.0, level + 0.05))
    boxes = heatmap_boxes(heat, level, 192, 192, max_boxes=5, every_cell=True)
    assert boxes
    for y, x in cells:                                       # each such cell's centre lies inside a box
        cy, cx = (y + 0.5) * 8, (x + 0.5) * 8
        assert any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in boxes), (cells, boxes)
    assert max(b[4] for b in boxes) == pytest.approx(float(heat.max()), abs=1e-6)
    lone = np.zeros((24, 24), np.float32)
    lone[10, 10] = 0.91
    assert heatmap_boxes(lone, 0.9, 192, 192) == []          # the pooled models' rule, unchanged
    assert len(heatmap_boxes(lone, 0.9, 192, 192, every_cell=True)) == 1


def test_a_dense_model_trains_exports_and_every_alerting_frame_has_a_box(data_root, tmp_path, clip, endpoint):
    import yaml
    from conftest import TINY_RECIPE
    recipe = tmp_path / "dense.yaml"
    recipe.write_text(yaml.safe_dump({**TINY_RECIPE, "head": "dense8", "aux_weight": 0.5}))
    out = tmp_path / "dense"
    r = subprocess.run([sys.executable, "tools/train", "--recipe", str(recipe), "--data-root", str(data_root),
                        "--workers", "1", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    from engines.runtime.metadata import read_onnx_metadata
    meta = read_onnx_metadata(out / "model.onnx")
    assert meta.decision == "map_max" and meta.box_threshold == min(meta.threshold, 0.5)
    from engines.backends.onnxruntime_backend import OnnxRuntimeBackend
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with OnnxRuntimeBackend(out / "model.onnx", threads=1) as be:
        o = be.infer(x)
    assert o["heatmap"].shape == (2, 1, 8, 8)
    assert np.allclose(o["score"], o["heatmap"].reshape(2, -1).max(1), atol=1e-6)   # the score is the map's max
    # the map's own threshold set at the clip's median score, so that half its frames cross it
    import dataclasses
    import shutil

    import cv2

    from engines.runtime.metadata import write_onnx_metadata
    from engines.runtime.preprocess import preprocess
    cap = cv2.VideoCapture(str(clip))
    with OnnxRuntimeBackend(out / "model.onnx", threads=1) as be:
        scores = [float(be.infer(preprocess(cap.read()[1], meta.preprocess).tensor)["score"][0]) for _ in range(40)]
    t = float(np.median(scores))
    model = tmp_path / "median.onnx"
    shutil.copy(out / "model.onnx", model)
    write_onnx_metadata(model, dataclasses.replace(meta, threshold=t, box_threshold=t))
    log = tmp_path / "d.jsonl"
    run = run_cli("run", "--source", str(clip), "--set", f"engine.model={model}", "--set",
                  f"publisher.endpoint={endpoint}", "--set", "capture.pace=false", "--set", "engine.precision=fp32",
                  "--set", f"pipeline.detections_log={log}", "--set", "pipeline.max_frames=40")
    assert run.returncode == 0, run.stderr[-2000:]
    dets = [json.loads(line) for line in log.read_text().splitlines()]
    over = [d for d in dets if d["score"] >= t + 1e-6]         # the wire rounds scores to 6 decimals
    assert len(over) >= 10 and all(d["boxes"] for d in over)   # over the threshold: a box, every time
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**TINY_RECIPE, "aux_weight": 0.5}))
    r = subprocess.run([sys.executable, "tools/train", "--recipe", str(bad), "--data-root", str(data_root),
                        "--out", str(tmp_path / "x")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "aux_weight: the auxiliary classifier is the dense8 head's" in r.stderr
