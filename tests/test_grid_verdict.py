"""tools/grid_verdict on made-up fold results with known answers: the pre-registered conditions 1-3 per candidate,
pending while folds are missing, final as soon as one fold fails, and the candidate that goes on to conditions 4-5."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engines.errors import DatasetError
from engines.lab.evaluation.grid_verdict import FAILED, MET, PENDING, judge, load_arm, next_step

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["a", "b", "cvc-colondb"]


def write_arm(root: Path, name: str, folds: dict[str, tuple[float, float]], seq: tuple[int, int] = (15, 15)) -> Path:
    arm = root / name
    arm.mkdir(parents=True)
    for source, (auroc, sens) in folds.items():
        (arm / source).mkdir()
        detected, total = seq if source == "cvc-colondb" else (0, 0)
        (arm / source / "eval.json").write_text(json.dumps(
            {"source": source, "auroc": auroc, "sensitivity_at_95_specificity": sens,
             "sequences_detected": detected, "sequences_total": total}))
    return arm


BASE = {"a": (0.90, 0.70), "b": (0.95, 0.80), "cvc-colondb": (0.93, 0.75)}


def verdict(tmp_path, cand_folds, seq=(15, 15)):
    base = load_arm(write_arm(tmp_path, "base", BASE), SOURCES)
    cand = load_arm(write_arm(tmp_path, "cand", cand_folds, seq), SOURCES)
    return judge("cand", base, cand, SOURCES)


def states(v):
    return [c.state for c in v.conditions]


def test_a_candidate_better_everywhere_meets_all_three(tmp_path):
    v = verdict(tmp_path, {"a": (0.92, 0.75), "b": (0.96, 0.85), "cvc-colondb": (0.94, 0.80)})
    assert states(v) == [MET, MET, MET] and v.state == MET
    assert v.mean_auroc == pytest.approx((0.92 + 0.96 + 0.94) / 3)
    assert v.fold_targets.endswith(": a, cvc-colondb")   # b reaches AUROC 0.95 and sens 0.85, the others do not


def test_a_higher_mean_auroc_with_a_lower_mean_sensitivity_fails_condition_1(tmp_path):
    v = verdict(tmp_path, {"a": (0.95, 0.60), "b": (0.96, 0.80), "cvc-colondb": (0.94, 0.75)})
    assert states(v)[0] == FAILED and v.state == FAILED


def test_one_fold_more_than_the_margin_below_fails_condition_2_even_before_the_grid_ends(tmp_path):
    v = verdict(tmp_path, {"a": (0.869, 0.90)})       # 0.031 below the baseline's 0.90; two folds still to come
    assert states(v) == [PENDING, FAILED, PENDING] and v.state == FAILED
    ok = verdict(tmp_path / "x", {"a": (0.871, 0.90)})  # 0.029 below: within the margin
    assert states(ok)[1] == PENDING and ok.state == PENDING


def test_one_missed_sequence_fails_condition_3(tmp_path):
    v = verdict(tmp_path, {"a": (0.92, 0.75), "b": (0.96, 0.85), "cvc-colondb": (0.94, 0.80)}, seq=(14, 15))
    assert states(v) == [MET, MET, FAILED]
    assert "14/15" in v.conditions[2].detail


def test_a_sequence_fold_without_sequences_is_a_failure_not_a_pass(tmp_path):
    v = verdict(tmp_path, {"a": (0.92, 0.75), "b": (0.96, 0.85), "cvc-colondb": (0.94, 0.80)}, seq=(0, 0))
    assert states(v)[2] == FAILED


def test_the_best_candidate_that_meets_1_to_3_goes_on_and_a_failed_one_never_does(tmp_path):
    base = load_arm(write_arm(tmp_path, "base", BASE), SOURCES)
    good = {"a": (0.92, 0.75), "b": (0.96, 0.85), "cvc-colondb": (0.94, 0.80)}
    better_but_misses = {"a": (0.99, 0.95), "b": (0.99, 0.95), "cvc-colondb": (0.99, 0.95)}
    best = {"a": (0.95, 0.80), "b": (0.97, 0.86), "cvc-colondb": (0.95, 0.81)}
    vs = [judge("good", base, load_arm(write_arm(tmp_path, "good", good), SOURCES), SOURCES),
          judge("miss", base, load_arm(write_arm(tmp_path, "miss", better_but_misses, (14, 15)), SOURCES), SOURCES),
          judge("best", base, load_arm(write_arm(tmp_path, "best", best), SOURCES), SOURCES)]
    step = next_step(vs)
    assert step.startswith("check conditions 4-5 with best") and "good" in step and "miss" not in step
    assert next_step(vs[1:2]).startswith("no candidate")
    pending = judge("p", base, load_arm(write_arm(tmp_path, "p", {"a": (0.95, 0.8)}), SOURCES), SOURCES)
    assert next_step([vs[1], pending]).startswith("grid unfinished: p")


def test_a_malformed_fold_result_is_named(tmp_path):
    arm = write_arm(tmp_path, "arm", {"a": (0.9, 0.7)})
    (arm / "a" / "eval.json").write_text(json.dumps({"source": "a", "auroc": 0.9}))
    with pytest.raises(DatasetError, match=r"a/eval.json.*sensitivity_at_95_specificity"):
        load_arm(arm, SOURCES)
    (arm / "a" / "eval.json").write_text(json.dumps({"source": "b", "auroc": 0.9, "sensitivity_at_95_specificity": 1}))
    with pytest.raises(DatasetError, match="holds the fold of 'b'"):
        load_arm(arm, SOURCES)


def test_cli_prints_the_table_and_rejects_a_missing_arm(tmp_path):
    base = write_arm(tmp_path, "base", BASE)
    cand = write_arm(tmp_path, "cand", {"a": (0.92, 0.75), "b": (0.96, 0.85), "cvc-colondb": (0.94, 0.80)})
    cmd = [sys.executable, str(ROOT / "tools" / "grid_verdict"), "--baseline", str(base), "--sources", *SOURCES,
           "--json", str(tmp_path / "v.json"), "--candidate"]
    ok = subprocess.run([*cmd, str(cand)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "| cand | 3/3 | 0.940 |" in ok.stdout and "check conditions 4-5 with cand" in ok.stdout
    assert json.loads((tmp_path / "v.json").read_text())[0]["state"] == MET
    bad = subprocess.run([*cmd, str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert bad.returncode == 3 and "nowhere: no such arm folder" in bad.stderr
