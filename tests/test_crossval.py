"""tools/crossval: leave-one-source-out over several seeds, on a tiny copy of the data layout (real training runs,
real ONNX Runtime scoring)."""
import json
import statistics
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

from engines.lab.training.crossval import spread_table

def _crossval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "tools/crossval", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)


def test_every_fold_once_per_seed_with_the_spread(data_root, tmp_path, tiny_recipe):
    out = tmp_path / "grid"
    args = ["--recipe", str(tiny_recipe), "--data-root", str(data_root), "--out", str(out), "--sources", "polypgen-B",
            "--seeds", "0", "1", "--workers", "1", "--cache", str(tmp_path / "cache")]
    r = _crossval(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads((out / "crossval.json").read_text())
    assert set(rows) == {"polypgen-B/seed0", "polypgen-B/seed1"}
    for seed in (0, 1):
        fold = out / "polypgen-B" / f"seed{seed}"
        m = json.loads((fold / "metrics.json").read_text())
        assert m["holdout_source"] == "polypgen-B"
        assert m["recipe"]["file"] == str(tiny_recipe) and m["recipe"]["settings"]["seed"] == seed
        assert torch.load(fold / "last.pt", weights_only=False)["config"]["seed"] == seed
        assert rows[f"polypgen-B/seed{seed}"]["seed"] == seed
    aurocs = [rows[k]["auroc"] for k in sorted(rows)]
    table = (out / "table.md").read_text()
    spread_row = next(line for line in table.splitlines() if line.startswith("| polypgen-B | 0, 1 |"))
    assert f"{statistics.fmean(aurocs):.3f} ± {statistics.stdev(aurocs):.3f}" in spread_row

    r = _crossval(*args)                                   # resumable: finished folds are not trained again
    assert r.returncode == 0 and r.stderr.count("done already") == 2, r.stderr[-2000:]


def test_seed_options_that_conflict_are_refused(data_root, tmp_path, tiny_recipe):
    base = ["--recipe", str(tiny_recipe), "--data-root", str(data_root), "--out", str(tmp_path / "o"), "--sources",
            "polypgen-B"]
    r = _crossval(*base, "--seeds", "0", "1", "--set", "seed=3")
    assert r.returncode == 2 and "--set seed=...: not with --seeds" in r.stderr
    folders = tmp_path / "folders.yaml"
    folders.write_text("data: folders\n")
    r = _crossval(*base[2:], "--recipe", str(folders))
    assert r.returncode == 2 and "needs a protocol recipe (data: protocol)" in r.stderr
    r = _crossval(*base, "--seeds", "1", "1")
    assert r.returncode == 2 and "--seeds: expected distinct seeds, got [1, 1]" in r.stderr
    assert not (tmp_path / "o").exists()


def _row(source, seed, auroc, tower):
    return {"source": source, "seed": seed, "auroc": auroc, "sensitivity_at_95_specificity": None,
            "specificity": 0.9, "tower_test": {"specificity": tower}}


def test_spread_table_means_and_sample_deviation():
    rows = {"a/seed0": _row("a", 0, 0.90, 0.5), "a/seed1": _row("a", 1, 0.94, 0.7), "b/seed0": _row("b", 0, 0.8, 1.0)}
    lines = spread_table(rows).splitlines()
    assert lines[2] == "| a | 0, 1 | 0.920 ± 0.028 | – | 0.900 ± 0.000 | 0.600 ± 0.141 |"
    assert lines[3] == "| b | 0 | 0.800 ± – | – | 0.900 ± – | 1.000 ± – |"
    with pytest.raises(KeyError):
        spread_table({"x": {"source": "x"}})
