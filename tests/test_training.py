"""A tiny real training run end to end: generated images -> train -> ONNX export -> evaluate -> pipeline."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import ROOT, run_cli


TINY = ["--set", "epochs=1", "--set", "batch_size=8", "--set", "input_size=64", "--set", "pretrained=false"]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from engines.synthetic import SceneRenderer, SynthParams
    root = tmp_path_factory.mktemp("data")
    (root / "pos" / "images").mkdir(parents=True)
    (root / "pos" / "masks").mkdir()
    (root / "neg").mkdir()
    r = SceneRenderer(SynthParams(seed=7, seconds=60, width=320, height=240, fps=25))
    n_pos = n_neg = 0
    for i in range(0, 1500, 5):
        f = r.render(i)
        if f.polyps and n_pos < 16:
            m = np.zeros(f.image.shape[:2], np.uint8)
            for q in f.polyps:
                m |= f.masks[q.polyp_id]
            cv2.imwrite(str(root / "pos" / "images" / f"{i}.png"), f.image)
            cv2.imwrite(str(root / "pos" / "masks" / f"{i}.png"), m * 255)
            n_pos += 1
        elif not f.polyps and n_neg < 16:
            cv2.imwrite(str(root / "neg" / f"{i}.png"), f.image)
            n_neg += 1
    return root


def test_train_export_evaluate_and_run(tiny_dataset, tmp_path, clip, endpoint):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "tools/train", "--dataset", str(tiny_dataset / "pos"), "--negatives",
                        str(tiny_dataset / "neg"), *TINY, "--out", str(out)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ("model.onnx", "model.pt", "best.pt", "metrics.json", "confusion_matrix.png", "roc.png",
                 "top_losses.png"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    assert m["onnx_max_abs_diff"] < 1e-4
    assert m["val_count"] == 6 and sum(map(sum, m["confusion_matrix"])) == 6   # 20% of 16 + 16
    from engines.runtime.metadata import read_onnx_metadata
    meta = read_onnx_metadata(out / "model.onnx")
    assert meta.model_id == "run" and meta.preprocess.input_width == 64 and meta.threshold == m["threshold"]
    assert "tools/train" in meta.training["command"]
    from engines.lab.training.recipe import load_recipe
    assert meta.training["recipe_sha256"] == load_recipe(None, TINY[1::2]).digest() == m["recipe"]["sha256"]
    assert m["recipe"]["file"] == "" and m["recipe"]["settings"]["input_size"] == 64
    assert json.loads((out / "inputs.json").read_text())["data_fingerprint"] == m["data_fingerprint"]

    ev = subprocess.run([sys.executable, "tools/evaluate", "--model", str(out / "model.onnx"), "--dataset",
                         str(tiny_dataset / "pos"), "--negatives", str(tiny_dataset / "neg"), "--out",
                         str(tmp_path / "ev")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ev.returncode == 0, ev.stderr[-2000:]
    em = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert (em["count"], em["positives"], em["negatives"]) == (32, 16, 16)
    assert 0 <= em["auroc"] <= 1 and "sensitivity_painted" in em["shortcut"]

    run = run_cli("run", "--source", str(clip), "--set", f"engine.model={out / 'model.onnx'}", "--set",
                  f"publisher.endpoint={endpoint}", "--set", "capture.pace=false")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "model run" in run.stdout and "processed 120" in run.stdout


@pytest.mark.parametrize("args, message", [
    (["--dataset", "/nonexistent"], "dataset folder not found"),
    (["--negatives", "/nonexistent"], "dataset folder not found"),
])
def test_train_bad_inputs(tmp_path, args, message):
    r = subprocess.run([sys.executable, "tools/train", *args, "--out", str(tmp_path / "o")], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and message in r.stderr


def test_train_needs_both_classes(tiny_dataset, tmp_path):
    r = subprocess.run([sys.executable, "tools/train", "--negatives", str(tiny_dataset / "neg"), *TINY,
                        "--out", str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and "only one class" in r.stderr


def test_metadata_round_trip_and_missing_metadata(tmp_path, tiny_model):
    import onnx

    from engines.errors import ModelError
    from engines.runtime.metadata import ModelMetadata, read_onnx_metadata
    meta = read_onnx_metadata(tiny_model)
    assert ModelMetadata.from_json(meta.to_json()) == meta
    m = onnx.load(str(tiny_model))
    del m.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(m, str(bare))
    with pytest.raises(ModelError, match=r"no 'polypwatch' metadata"):
        read_onnx_metadata(bare)
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(ModelError, match=r"not a readable ONNX file"):
        read_onnx_metadata(tmp_path / "junk.onnx")


def test_multiclass_imagefolder_train_export_and_run(tmp_path, clip, endpoint):
    """Classification-only data with 3 class folders: C outputs, C x C confusion matrix, and the pipeline's
    frame score is the probability of the polyp class."""
    from engines.synthetic import SceneRenderer, SynthParams
    root = tmp_path / "kvasir-v2-like"
    r = SceneRenderer(SynthParams(seed=9, seconds=60, width=320, height=240, fps=25))
    counts = {"polyps": 0, "normal-cecum": 0, "dyed-lifted": 0}
    for i in range(0, 1500, 4):
        f = r.render(i)
        cls = "polyps" if f.polyps else ("normal-cecum" if i % 8 == 0 else "dyed-lifted")
        if counts[cls] >= 10:
            continue
        img = f.image if cls != "dyed-lifted" else (f.image * np.array([1.6, 0.8, 0.6])).clip(0, 255).astype(np.uint8)
        (root / cls).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / cls / f"{i}.png"), img)
        counts[cls] += 1
    out = tmp_path / "mc"
    res = subprocess.run([sys.executable, "tools/train", "--dataset", str(root), "--set", "multiclass=true", *TINY,
                          "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["classes"] == ["dyed-lifted", "normal-cecum", "polyps"] and m["positive_classes"] == [2]
    assert len(m["confusion_matrix"]) == 3 and sum(map(sum, m["confusion_matrix"])) == m["val_count"] == 6
    assert 0 <= m["val_accuracy"] <= 1 and m["onnx_max_abs_diff"] < 1e-4
    from engines.runtime.metadata import read_onnx_metadata
    meta = read_onnx_metadata(out / "model.onnx")
    assert meta.classes == ("dyed-lifted", "normal-cecum", "polyps") and meta.positive_classes == (2,)
    run = run_cli("run", "--source", str(clip), "--set", f"engine.model={out / 'model.onnx'}", "--set",
                  f"publisher.endpoint={endpoint}", "--set", "capture.pace=false", "--set", "pipeline.max_frames=20",
                  "--set", f"pipeline.detections_log={tmp_path / 'd.jsonl'}")
    assert run.returncode == 0, run.stderr[-2000:]
    scores = [json.loads(x)["score"] for x in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert len(scores) == 20 and all(0 <= s <= 1 for s in scores)
    from engines.backends import create_backend
    x = np.zeros((1, 3, 64, 64), np.float32)
    with create_backend("torch", {"model_path": out / "model.onnx", "device": "cpu", "model_id": "mc"}) as be:
        assert be.infer(x)["score"].shape == (1, 3)


def test_multiclass_needs_one_imagefolder(tmp_path, tiny_dataset):
    r = subprocess.run([sys.executable, "tools/train", "--dataset", str(tiny_dataset / "pos"), "--set",
                        "multiclass=true", "--out", str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 3 and "multi-class training needs the imagefolder layout" in r.stderr


def test_protocol_training_leave_one_out_calibrates_resumes_and_evaluates(data_root, tmp_path, tiny_recipe):
    """tools/train --recipe (data: protocol) with a held-out source: per-source validation, temperature, a threshold
    that holds on each negative source; --resume continues the same run; tools/evaluate scores per source."""
    out = tmp_path / "loso"
    base = [sys.executable, "tools/train", "--recipe", str(tiny_recipe), "--data-root", str(data_root),
            "--holdout-source", "polypgen-B", "--workers", "2", "--cache", str(tmp_path / "cache"), "--out", str(out)]
    r = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    first = json.loads((out / "metrics.json").read_text())
    assert first["holdout_source"] == "polypgen-B" and "polypgen-B" not in first["data_root_sources"]
    assert set(first["val_per_source"]) == {"kvasir", "cvc-colondb", "polypgen-A", "bkai-igh"}
    assert first["temperature"] > 0 and len(first["history"]) == 1
    for src, v in first["val_per_source"].items():     # the threshold holds on every source with enough negatives
        if v["own_threshold"] is not None:
            assert first["threshold"] >= min(v["own_threshold"], 0.98), src
    rule = first["threshold_rule"]
    assert "(pooled)" in rule["per_source"]              # tiny sources: fewer than 20 negatives are pooled only
    assert set(rule["per_source"]) <= {"(pooled)", "kvasir", "cvc-colondb", "polypgen-A", "bkai-igh"}
    assert first["threshold"] == pytest.approx(min(max(max(rule["per_source"].values()), 0.02), 0.98))
    from engines.runtime.metadata import read_onnx_metadata
    from engines.lab.training.recipe import load_recipe
    meta = read_onnx_metadata(out / "model.onnx")
    assert meta.training["recipe"] == str(tiny_recipe)
    assert meta.training["recipe_sha256"] == load_recipe(tiny_recipe).digest() == first["recipe"]["sha256"]
    caches = sorted((tmp_path / "cache").glob("*.npz"))
    assert len(caches) == 2                             # train + val arrays

    import torch
    state = torch.load(out / "last.pt", weights_only=False)
    assert state["epoch"] == 1
    r = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "holds a training run already (last.pt): --resume continues it" in r.stderr
    r = subprocess.run(base + ["--set", "lr=0.5", "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "was written with another configuration" in r.stderr
    r = subprocess.run(base + ["--set", "epochs=2", "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "another configuration" in r.stderr      # more epochs change the schedule
    r = subprocess.run(base + ["--set", "lr=fast"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and f"recipe {tiny_recipe}: lr: expected a number, got 'fast'" in r.stderr

    # stopped after one of two epochs and resumed = the same run uninterrupted (message boxes draw from the
    # sampler's generator, which the checkpoint keeps)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    base = base + ["--set", "message_box=0.5", "--set", "epochs=2"]
    r = subprocess.run(base + ["--out", str(whole)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run(base + ["--epochs-now", "1", "--out", str(parts)], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and "stopped after epoch 1 of 2; continue with --resume" in r.stdout
    assert not (parts / "model.onnx").exists() and (parts / "inputs.json").is_file()
    r = subprocess.run(base + ["--resume", "--out", str(parts)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    mw, mp = (json.loads((d / "metrics.json").read_text()) for d in (whole, parts))
    assert mw["data_fingerprint"] == mp["data_fingerprint"]            # the same inputs, recorded with the run
    assert mw["recipe"]["sha256"] == mp["recipe"]["sha256"] != first["recipe"]["sha256"]
    assert mw["environment"]["cpu_capability"] and mw["environment"]["torch"]
    for a, b in zip(mw["history"], mp["history"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-6)
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-6)

    # the all-source run's arrays serve the held-out run: no new cache file
    allsrc = [a for a in base if a not in ("--holdout-source", "polypgen-B")]
    r = subprocess.run(allsrc + ["--out", str(tmp_path / "all")], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    n_caches = len(list((tmp_path / "cache").glob("*.npz")))
    r = subprocess.run(base + ["--out", str(tmp_path / "loso2")], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and "from cache" in r.stderr
    assert len(list((tmp_path / "cache").glob("*.npz"))) == n_caches

    ev = subprocess.run([sys.executable, "tools/evaluate", "--model", str(out / "model.onnx"), "--data-root",
                         str(data_root), "--sources", "polypgen-B", "--synthetic-negatives", "3", "--out",
                         str(tmp_path / "ev")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert ev.returncode == 0, ev.stderr[-2000:]
    em = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    pb = em["sources"]["polypgen-B"]
    assert (pb["positives"], pb["count"]) == (5, 5 + 12 + 2)   # its 5 polyps, its 12 negatives, 2 unseen normals
    assert em["tower_test"]["count"] == 4 and em["synthetic_negatives"]["count"] == 3
    assert "| polypgen-B |" in (tmp_path / "ev" / "table.md").read_text()
    mb = pb["message_box"]                                     # every scored frame also scored with a message box
    assert 0.0 <= mb["sensitivity_boxed"] <= 1.0 and mb["sensitivity_change_points"] == pytest.approx(
        100 * (mb["sensitivity_boxed"] - pb["sensitivity"]), abs=1e-2)
    wa = pb["centre_a_warning"]                                # and with centre A's own printer warning
    assert 0.0 <= wa["sensitivity_warned"] <= 1.0 and wa["sensitivity_change_points"] == pytest.approx(
        100 * (wa["sensitivity_warned"] - pb["sensitivity"]), abs=1e-2)
    assert "centre A's warning" in (tmp_path / "ev" / "table.md").read_text()
