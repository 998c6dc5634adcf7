"""Site adaptation (engines/lab/training/adapt.py, tools/adapt): real models, real image folders and video files."""
import hashlib
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from engines.errors import DatasetError, ModelError
from engines.lab.evaluation.metrics import threshold_for_specificity
from engines.runtime.metadata import read_onnx_metadata
from engines.lab.training.adapt import (
    AdaptConfig,
    adapt_batchnorm,
    adapt_model,
    held_out_specificity,
    load_model,
    recording_inputs,
)

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"frames_per_recording": 40, "min_adaptation_frames": 32, "min_polyp_free_frames": 32, "batch_size": 8}


def write_folder(folder: Path, seed: int, count: int, polyps: bool | None = None) -> Path:
    """``count`` generated 160x120 frames (with a polyp in view, without, or either when None) as PNG files."""
    from engines.synthetic import SceneRenderer, SynthParams
    r = SceneRenderer(SynthParams(seed=seed, seconds=60, width=160, height=120, fps=25))
    folder.mkdir(parents=True)
    made = 0
    for i in range(0, r.params.frame_count, 7):
        fr = r.render(i)
        if polyps is not None and bool(fr.polyps) != polyps:
            continue
        cv2.imwrite(str(folder / f"f{made:04d}.png"), fr.image)
        made += 1
        if made == count:
            return folder
    raise AssertionError(f"seed {seed}: only {made} frames of the kind asked for")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    return {"procedure": write_folder(root / "procedure", 41, 40),
            "free1": write_folder(root / "free1", 42, 24, polyps=False),
            "free2": write_folder(root / "free2", 43, 24, polyps=False)}


def bn_stats(net):
    from torch import nn
    return [(m.running_mean.clone(), m.running_var.clone()) for m in net.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def test_batchnorm_statistics_follow_the_site_and_weights_stay(tiny_model, site):
    import torch
    net, meta = load_model(tiny_model)
    x, rec = recording_inputs([site["procedure"]], meta.preprocess, 40, 0)
    assert x.shape == (40, 3, 64, 64) and set(rec.tolist()) == {0}
    weights = {k: v.clone() for k, v in net.named_parameters()}
    before = bn_stats(net)
    adapt_batchnorm(net, x, batch_size=8, seed=0)
    after = bn_stats(net)
    assert all(not (torch.allclose(a[0], b[0]) and torch.allclose(a[1], b[1])) for a, b in zip(before, after))
    assert all(torch.equal(v, dict(net.named_parameters())[k]) for k, v in weights.items())
    with torch.no_grad():        # the first layer's statistics are those of the site's frames (equal batches)
        conv = net.stem[0](torch.from_numpy(x))
    torch.testing.assert_close(after[0][0], conv.mean((0, 2, 3)), rtol=1e-4, atol=1e-4)
    order = np.random.default_rng(0).permutation(40)          # the batches adapt_batchnorm draws with seed 0
    var = torch.stack([conv[np.sort(order[i:i + 8])].var((0, 2, 3), unbiased=True) for i in range(0, 40, 8)]).mean(0)
    torch.testing.assert_close(after[0][1], var, rtol=1e-4, atol=1e-4)
    assert not net.training and all(not m.training for m in net.modules())


def test_adapted_model_is_a_new_file_with_a_threshold_from_the_polyp_free_frames(tiny_model, site, tmp_path):
    from engines.backends.onnxruntime_backend import OnnxRuntimeBackend
    from engines.backends.torch_backend import TorchBackend
    from engines.runtime.preprocess import preprocess
    original = hashlib.sha256(tiny_model.read_bytes()).hexdigest()
    out = tmp_path / "site.onnx"
    res = adapt_model(tiny_model, [site["procedure"], site["free1"]], [site["free1"], site["free2"]],
                      AdaptConfig(site="ward-3", specificity=0.9, **SMALL), out)
    assert hashlib.sha256(tiny_model.read_bytes()).hexdigest() == original
    meta = read_onnx_metadata(out)
    assert meta.model_id == res.model_id == "tiny-test-ward-3"
    info = meta.training["site_adaptation"]
    assert info["adapted_from"] == "tiny-test" and info["adaptation_frames"] == 64 and info["polyp_free_frames"] == 48
    assert res.parity < 1e-3 and len(res.held_out_specificity) == 2
    # the threshold holds through the deployed path: ONNX Runtime on the polyp-free frames
    neg = [cv2.imread(str(p)) for d in (site["free1"], site["free2"]) for p in sorted(d.iterdir())]
    with OnnxRuntimeBackend(out, threads=1) as be:
        scores = np.array([float(be.infer(preprocess(img, meta.preprocess).tensor)[meta.score_output][0])
                           for img in neg])
    assert meta.threshold == pytest.approx(threshold_for_specificity(scores, 0.9), abs=1e-4)
    assert (scores < meta.threshold).mean() >= 0.9 - 1 / len(scores)
    with TorchBackend(out, device="cpu", model_id=meta.model_id) as tb:     # the checkpoint beside it matches
        t = tb.infer(preprocess(neg[0], meta.preprocess).tensor)[meta.score_output][0]
    assert float(t) == pytest.approx(scores[0], abs=1e-2)     # the checkpoint is fp16


def test_held_out_specificity_per_recording():
    s = np.r_[np.linspace(0.0, 0.5, 20), np.linspace(0.4, 0.9, 20)]
    r = np.r_[np.zeros(20, int), np.ones(20, int)]
    low, high = held_out_specificity(s, r, 0.95)
    assert low == 1.0 and high < 0.5             # the second procedure's frames score higher than the first's
    assert held_out_specificity(s, np.zeros(40, int), 0.95) == []


@pytest.mark.parametrize("change, error, match", [
    ({"out": "same"}, ValueError, "is the model being adapted"),
    ({"out": "site.pt"}, ValueError, "ending in .onnx"),
    ({"recordings": ["missing.mp4"]}, DatasetError, "no such file or folder"),
    ({"recordings": ["broken.mp4"]}, DatasetError, "cannot be opened"),
    ({"recordings": ["procedure"], "min_adaptation_frames": 100}, ValueError, "40 frames, expected at least 100"),
    ({"polyp_free": ["empty"]}, DatasetError, "no images"),
    ({"no_checkpoint": True}, ModelError, "needs the weights beside the ONNX file"),
])
def test_bad_input_is_named(tiny_model, site, tmp_path, change, error, match):
    import shutil
    model = tiny_model
    if change.get("no_checkpoint"):
        model = tmp_path / "alone.onnx"
        shutil.copy(tiny_model, model)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    (tmp_path / "empty").mkdir()
    named = {"procedure": site["procedure"], "missing.mp4": tmp_path / "missing.mp4",
             "broken.mp4": tmp_path / "broken.mp4", "empty": tmp_path / "empty"}
    recordings = [named[r] for r in change.get("recordings", ["procedure"])]
    polyp_free = [named.get(r, r) for r in change.get("polyp_free", [site["free1"]])]
    out = {"same": model, "site.pt": tmp_path / "site.pt"}.get(change.get("out"), tmp_path / "site.onnx")
    cfg = AdaptConfig(site="s1", **(SMALL | {k: v for k, v in change.items() if k.startswith("min_")}))
    with pytest.raises(error, match=match):
        adapt_model(model, recordings, polyp_free, cfg, out)
    assert not (tmp_path / "site.onnx").exists()


@pytest.mark.parametrize("kw, match", [
    ({"site": "Ward 3"}, "site: expected"), ({"site": ""}, "site: expected"),
    ({"specificity": 1.0}, r"specificity: expected a value in \[0.5, 1\)"),
    ({"batch_size": 1}, "batch_size: expected an integer >= 2"),
])
def test_config_names_the_bad_key(kw, match):
    with pytest.raises(ValueError, match=match):
        AdaptConfig(**({"site": "ok"} | kw))


def test_cli_reports_errors_with_exit_codes(tiny_model, site, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, str(ROOT / "tools" / "adapt"), "--model", str(tiny_model), *args],
                              check=False, capture_output=True, text=True, timeout=120)
    # one folder of 40 frames: fewer than the 200 the tool asks for by default
    p = run("--recordings", str(site["procedure"]), "--polyp-free", str(site["free1"]), "--site", "a",
            "--out", str(tmp_path / "a.onnx"))
    assert p.returncode == 2 and "recordings: 40 frames, expected at least 200" in p.stderr
    p = run("--recordings", str(tmp_path / "nothing"), "--polyp-free", str(site["free1"]), "--site", "a",
            "--out", str(tmp_path / "a.onnx"))
    assert p.returncode == 3 and "no such file or folder" in p.stderr      # a data error (README)
    assert not (tmp_path / "a.onnx").exists()


@pytest.mark.parametrize("flagged, held, expected", [
    (0.1, (0.97, 0.95), []),
    (0.8, (0.97, 0.95), ["score over the threshold: recordings should be whole procedures"]),
    (0.1, (0.97, 0.62), ["keeps only 0.62 of frames quiet (target 0.95)"]),
    (0.1, (), []),
])
def test_doubtful_site_models_are_logged(caplog, flagged, held, expected):
    from engines.lab.training.adapt import AdaptResult, warn
    r = AdaptResult("m-site", Path("m-site.onnx"), 0.6, 0.9, 300, flagged, 300, 1.0, 0.99, held, 0.0)
    with caplog.at_level("WARNING", logger="engines.lab.training.adapt"):
        warn(r, 0.95)
    assert len(caplog.records) == len(expected)
    for rec, text in zip(caplog.records, expected):
        assert text in rec.getMessage()
