"""The site's-truth simulation (engines/lab/site/truth_simulation.py): procedures built from a data root laid out like
../shared/data, and one round run for real (commissioning footage-only and with the site's polyps, the tiny site
model) on generated procedures; the figures checked against what the scores say."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import run_cli

from engines.lab.site.positives import Positive
from engines.lab.site.truth_simulation import Procedure, features, held_out_figures, procedures, run_round
from engines.lab.site.truth_simulation_report import table


def _jpg(path: Path, value: int, size=(96, 72)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((size[1], size[0], 3), value, np.uint8)
    cv2.circle(img, (size[0] // 2, size[1] // 2), size[1] // 3, (value // 2, 40, 200 - value // 2), -1)
    cv2.imwrite(str(path), img)


def test_polypgen_procedures_are_the_towers_sequences_with_the_polyps_in_blocks_by_number(tmp_path):
    base = tmp_path / "data" / "polypgen-ab" / "centre_A"
    for s in range(1, 8):
        for i in range(3):
            _jpg(base / "negative" / f"seq{s}_neg" / f"{i}.jpg", 60 + s)
    for n in range(1, 25):                       # 24 polyp frames: 6 per procedure, by number (img2 before img10)
        _jpg(base / "positive" / f"img{n}.jpg", 100)
    procs = procedures(tmp_path / "data", "polypgen-A-sd", tmp_path / "work")
    assert [p.name for p in procs] == ["seq4_neg", "seq5_neg", "seq6_neg", "seq7_neg"]   # the SD tower only
    numbers = [[int(q.image.stem[3:]) for q in p.polyps] for p in procs]
    assert numbers == [list(range(1, 7)), list(range(7, 13)), list(range(13, 19)), list(range(19, 25))]
    assert all(q.group == p.name and q.box is None for p in procs for q in p.polyps)
    assert {q.case for q in procs[0].polyps} == {"seq4_neg-case0"}
    # a round must leave a procedure to test on, and commission on two at least
    r = run_cli("site-truth-sim", "--model", "unused.onnx", "--site", "polypgen-A-sd", "--data-root",
                str(tmp_path / "data"), "--rounds", "4", "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "--rounds" in r.stderr and "from 2 to 3" in r.stderr


@pytest.fixture(scope="module")
def generated_site(tmp_path_factory) -> list[Procedure]:
    """Three procedures of one generated tower: 40 polyp-free frames each, and the polyp frames of a second scene
    with their boxes (two cases per procedure)."""
    from engines.synthetic import SceneRenderer, SynthParams
    d = tmp_path_factory.mktemp("sim-site")
    procs = []
    for k in range(3):
        quiet = SceneRenderer(SynthParams(seed=10 + k, seconds=2, width=160, height=120, fps=25, polyps=False))
        folder = d / f"proc{k}"
        folder.mkdir()
        for i in range(40):
            cv2.imwrite(str(folder / f"{i:04d}.png"), quiet.render(i).image)
        scene = SceneRenderer(SynthParams(seed=1 + k, seconds=6, width=160, height=120, fps=25))
        polyps = []
        for i in range(0, scene.params.frame_count, 3):
            fr = scene.render(i)
            if fr.polyps and len(polyps) < 12:
                f = d / f"proc{k}-polyps" / f"{i:04d}.png"
                f.parent.mkdir(exist_ok=True)
                cv2.imwrite(str(f), fr.image)
                polyps.append(Positive(f"proc{k}", f"proc{k}-case{len(polyps) // 6}", f, fr.polyps[0].box,
                                           len(polyps) % 6 / 25))
        assert len(polyps) >= 4
        procs.append(Procedure(f"proc{k}", folder, tuple(polyps)))
    return procs


def test_a_round_commissions_both_ways_and_tests_on_the_procedures_not_used(generated_site, tiny_site_model):
    from engines.lab.site.commission import FinetuneConfig, scores
    from engines.lab.site.model import load_model
    stock, meta = load_model(tiny_site_model)
    feats = {p.name: features(stock, meta, p) for p in generated_site}
    assert len(feats["proc2"].footage) == 40 and len(feats["proc2"].polyps) == len(generated_site[2].polyps)
    row = run_round(tiny_site_model, "gen", generated_site, feats, 2, stock, meta, FinetuneConfig(steps=20))
    assert row["commissioned_on"] == ["proc0", "proc1"] and row["tested_on"] == ["proc2"]
    s = row["stock"]
    neg, pos = scores(stock, feats["proc2"].footage), scores(stock, feats["proc2"].polyps)
    assert s["negatives"] == 40 and s["positives"] == len(pos) and s["cases"] == 2
    assert s["specificity"] == round(float((neg < meta.threshold).mean()), 4)
    assert s["sensitivity"] == round(float((pos >= meta.threshold).mean()), 4)
    assert s["minutes"] == round(40 / 25 / 60, 3) and s["episodes_per_minute_ci95"][0] >= 0
    for cond in ("footage_only", "with_site_polyps"):     # a quiet model at a quiet tower: never refused
        c = row[cond]
        assert "refused" not in c and 0.5 <= c["site_threshold"] <= 0.995, c
        assert c["test"]["threshold"] == c["site_threshold"] and c["test"]["negatives"] == 40
    w = row["with_site_polyps"]         # the site's polyps were held out with their procedure in cross-validation
    assert set(w["site_polyps_held_out"]) == {"proc0", "proc1"}
    assert row["footage_only"]["site_polyps_held_out"] is None
    line = table([row]).splitlines()[-1]
    assert line.startswith("| gen 2 (proc0, proc1 → 1 procedures) |") and line.count("|") == 5


def test_the_ranking_figure_is_the_sensitivity_over_the_score_95_percent_of_test_footage_reaches(tiny_site_model):
    """sensitivity at 95% test specificity: polyp frames over the 95th-percentile footage score (ties count as not
    found), whatever the condition's threshold."""
    from engines.lab.site.model import load_model
    from engines.lab.site.truth_simulation import Features
    from engines.runtime.alerts import AlertsConfig
    net, _ = load_model(tiny_site_model)
    rng = np.random.default_rng(0)
    f = rng.normal(size=(60, *net_trunk_shape(tiny_site_model))).astype(np.float32)
    from engines.lab.site.commission import scores
    s = scores(net, f)
    order = np.argsort(s)
    fe = Features(footage=f[order[:40]], polyps=f[order[40:]], cases=("a",) * 20, zoomed=np.zeros((0,), np.float32))
    out = held_out_figures(net, 0.999, [fe], AlertsConfig())
    assert out["sensitivity_at_test_specificity_95"] == 1.0          # every polyp frame scores over every footage frame
    assert out["auroc"] == 1.0 and out["specificity"] == 1.0 and out["zoomed_sensitivity"] is None
    fe2 = Features(footage=f[order[20:]], polyps=f[order[:20]], cases=("a",) * 20, zoomed=np.zeros((0,), np.float32))
    assert held_out_figures(net, 0.999, [fe2], AlertsConfig())["sensitivity_at_test_specificity_95"] == 0.0


def net_trunk_shape(model: Path) -> tuple[int, int, int]:
    from engines.lab.site.commission import trunk
    from engines.lab.site.model import load_model
    net, meta = load_model(model)
    x = np.zeros((1, 3, meta.preprocess.input_height, meta.preprocess.input_width), np.float32)
    return trunk(net, x).shape[1:]


def _row(with_sens, with_spec, only_sens, only_spec, zoomed=None, only_zoomed=None):
    t = lambda s, p, z: {"test": {"sensitivity": s, "specificity": p, "zoomed_sensitivity": z}}   # noqa: E731
    return {"footage_only": t(only_sens, only_spec, only_zoomed), "with_site_polyps": t(with_sens, with_spec, zoomed)}


def test_the_protocols_decision_rule():
    from engines.lab.site.truth_simulation_report import lifted, verdict
    assert lifted(_row(0.8, 0.96, 0.7, 0.97)) == "lift"
    assert lifted(_row(0.8, 0.94, 0.7, 0.97)) == "no lift"              # specificity missed with the site's polyps
    assert lifted(_row(0.7, 0.96, 0.7, 0.97)) == "no lift"              # not higher
    assert lifted(_row(0.5, 0.96, 0.9, 0.80)) == "lift"                 # footage only missed specificity
    assert lifted(_row(0.8, 0.96, 0.7, 0.97, zoomed=0.6, only_zoomed=0.65)) == "framing"
    assert lifted(_row(0.8, 0.96, 0.7, 0.97, zoomed=0.6, only_zoomed=0.5)) == "lift"   # both lean on framing alike
    assert lifted({"footage_only": {}, "with_site_polyps": {"refused": "x"}}) == "refused"
    assert verdict([_row(0.8, 0.96, 0.7, 0.97)] * 3 + [_row(0.7, 0.9, 0.7, 0.97)]).startswith("yes: lifted in 3 of 4")
    assert verdict([_row(0.8, 0.96, 0.7, 0.97)] * 2 + [_row(0.7, 0.9, 0.7, 0.97)] * 2).startswith("mixed")
    assert verdict([_row(0.8, 0.96, 0.7, 0.97)] + [_row(0.7, 0.9, 0.7, 0.97)] * 3).startswith("no")
