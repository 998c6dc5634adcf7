"""The sequence-level operating point on small made-up sequences whose answers are known."""
from pathlib import Path

import numpy as np
import pytest

from engines.lab.evaluation.operating_point import Sequence, alert_on, choose, episodes, measure


def _free(name, source, n, runs=(), spikes=(), base=0.1):
    s = np.full(n, base)
    for start, length, level in runs:
        s[start:start + length] = level
    for i in spikes:
        s[i] = 0.95
    return Sequence(name, source, s, 25.0)


def _polyps():
    s = np.full(600, 0.1)
    s[100:200] = 0.65                          # a long polyp, moderately scored
    s[400:404] = 0.95                          # a short one: four frames in view
    return Sequence("p", "gen", s, 25.0, {1: tuple(range(100, 200)), 2: tuple(range(400, 404))})


def test_the_filter_ignores_single_frames_and_keeps_an_episode_whole():
    s = np.array([0.1, 0.9, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9, 0.5, 0.1, 0.1, 0.1, 0.1, 0.1])
    on = alert_on(s, 0.8, 3, 5)
    assert on.tolist() == [False] * 5 + [True] * 6 + [False] * 3   # on at the third hit in five; off at the fourth
                                                                       # of five under 0.64
    assert episodes(on) == 1 and episodes(np.array([True, False, True])) == 2


def test_the_lowest_threshold_that_keeps_polyp_free_video_quiet():
    """A 30-frame run at 0.6 in 1000 polyp-free frames is 3% alert-on: the threshold must pass 0.6; isolated 0.95
    frames never raise a 3-of-5 alert. At 0.61 the long polyp (0.65) alerts on its third frame: 80 ms at 25 fps."""
    seqs = [_free("a", "A", 1000, runs=[(500, 30, 0.6)], spikes=(100, 300, 700)), _polyps()]
    m = choose(seqs, filters=((3, 5),))
    assert m["met"] and m["threshold"] == 0.61 and m["filter"] == "3 of 5"
    assert m["polyps_detected"] == 2 and m["each_polyp"][0]["first_alert_ms"] == 80.0
    assert m["alert_on_share_pooled"] == 0.0
    below = measure(seqs, 0.60, 3, 5)
    assert below["alert_on_share_pooled"] == pytest.approx(30 / 1000, abs=0.005)          # the run, whole


def test_a_source_has_its_own_floor_when_its_frames_show_it():
    """Pooled, source B's 60-frame run at 0.5 is 1.8% of 3,400 frames, under 2%; alone it is 15% of B's 400 (95%
    interval from 12%), shown to be over 10%: B's floor sets the threshold. A 31-frame sequence with one short
    episode (4 frames, 13%, interval from 5%) is not shown to be over 10%: it sets nothing."""
    seqs = [_free("a", "A", 3000), _free("b", "B", 400, runs=[(100, 60, 0.5)]), _polyps()]
    assert choose(seqs, filters=((3, 5),), source_max=1.0)["threshold"] == 0.30     # pooled rule alone
    m = choose(seqs, filters=((3, 5),))
    assert m["threshold"] == 0.51 and m["polyp_free"]["B"]["alert_on_share"] == 0.0
    small = [_free("a", "A", 3000), _free("c", "C", 31, runs=[(10, 3, 0.5)]), _polyps()]
    m = choose(small, filters=((3, 5),))
    assert m["threshold"] == 0.30 and 0.05 < m["polyp_free"]["C"]["alert_on_share"] < 0.2


def test_the_filter_that_finds_more_polyps_then_sooner():
    """5 of 8 never fires on a polyp seen in four frames; 3 of 5 and 4 of 6 both find both, 3 of 5 sooner."""
    seqs = [_free("a", "A", 1000), _polyps()]
    m = choose(seqs)
    by = {c["filter"]: c for c in m["candidates"]}
    assert by["5 of 8"]["polyps_detected"] == 1 and by["4 of 6"]["polyps_detected"] == 2
    assert m["filter"] == "3 of 5" and m["median_first_alert_ms"] < by["4 of 6"]["median_first_alert_ms"]


def test_no_threshold_quiet_enough_is_reported_not_hidden():
    seqs = [_free("a", "A", 500, runs=[(0, 100, 0.99)]), _polyps()]
    m = choose(seqs, filters=((3, 5),))
    assert not m["met"] and m["threshold"] == 0.98 and m["alert_on_share_pooled"] > 0.02
    with pytest.raises(ValueError, match="no polyp-free sequence"):
        choose([_polyps()])
    with pytest.raises(ValueError, match="visible outside"):
        Sequence("x", "s", np.zeros(5), 25.0, {1: (7,)})


def test_the_validation_sequences_of_a_data_root_through_a_real_model(data_root, tiny_model, tmp_path):
    import json
    import subprocess
    import sys

    from conftest import ROOT

    from engines.lab.evaluation.sequences import generated_sequences, recorded_sequences
    rec = recorded_sequences(tiny_model, data_root, threads=1)
    assert [s.name for s in rec] == ["polypgen-A/seq2_neg", "tower/polypgen-A/seq2_neg", "polypgen-B/seq5_neg",
                                     "tower/polypgen-B/seq5_neg", "cvc-colondb/3", "tower/cvc-colondb/3"]
    assert all(s.polyp_free for s in rec[:4]) and len(rec[0].scores) == 4
    assert {s.source for s in rec if s.name.startswith("tower/")} == {"tower"}
    assert rec[4].polyps == {3: (0, 1, 2, 3)}                                # CVC: a polyp in every frame
    assert set(rec[5].polyps[3]) <= set(rec[4].polyps[3]) and rec[5].polyps[3]   # shown where the screen leaves it
    assert [s.name for s in recorded_sequences(tiny_model, data_root, threads=1, tower=False)] == \
        ["polypgen-A/seq2_neg", "polypgen-B/seq5_neg", "cvc-colondb/3"]
    gen = generated_sequences(tiny_model, seconds=4, size=(160, 120), threads=1, seeds=(3,))   # a polyp by 4 s
    assert [s.name for s in gen] == ["generated/seed3", "generated/seed3-polyp-free"]
    assert len(gen[0].scores) == 100 and gen[0].polyps and gen[1].polyp_free
    r = subprocess.run([sys.executable, "tools/operating_point", "--model", str(tiny_model), "--data-root",
                        str(data_root), "--seconds", "2", "--threads", "1", "--out", str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((tmp_path / "operating_point.json").read_text())
    assert m["own"]["filter"] == "3 of 5" and m["chosen"]["filter"] in ("3 of 5", "4 of 6", "5 of 8")
    assert "the rule's choice" in r.stdout


def test_a_tower_stream_is_one_screen_for_the_whole_sequence_and_the_same_each_time():
    from engines.lab.data.datasets import Sample
    from engines.lab.evaluation.sequences import on_tower
    rng = np.random.default_rng(0)
    read = []
    for i in range(3):                           # three different frames of one recording, a polyp in each
        img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        mask = np.zeros((120, 160), np.uint8)
        mask[40 + i:70 + i, 60:90] = 1
        read.append((Sample(Path(f"f{i}.png"), 1), img, mask))
    screen = on_tower("cvc-colondb/7", read)
    assert len({f.shape for _, f, _ in screen}) == 1 and screen[0][1].shape[1] >= 720   # one canvas, a tower's size
    lit = [f.max(axis=2) > 12 for _, f, _ in screen]                                   # where the picture is drawn
    assert all((a == lit[0]).mean() > 0.97 for a in lit[1:])                          # the same layout in every frame
    assert all(m is not None and m.any() for _, _, m in screen)
    again = on_tower("cvc-colondb/7", read)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(screen, again))
    other = on_tower("cvc-colondb/8", read)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(screen, other))


def test_the_chosen_threshold_is_written_into_the_model_and_refused_when_it_does_not_hold(tiny_model, tmp_path):
    import dataclasses
    import shutil

    from engines.runtime.metadata import read_onnx_metadata, write_onnx_metadata
    from engines.lab.evaluation.operating_point import apply_to_model
    seqs = [_free("a", "A", 1000), _polyps()]
    chosen = choose(seqs, filters=((3, 5),))
    assert chosen["met"] and chosen["filter"] == "3 of 5"
    model = tmp_path / "m.onnx"
    shutil.copy(tiny_model, model)
    new = apply_to_model(model, chosen, ["a", "p"])
    meta = read_onnx_metadata(model)
    assert meta.threshold == new.threshold == chosen["threshold"] != 0.5 and meta.box_threshold == 0.5   # pooled
    op = meta.scores["operating_point"]
    assert op["frame_rule_threshold"] == 0.5 and op["sequences"] == ["a", "p"] and op["filter"] == "3 of 5"
    apply_to_model(model, {**chosen, "threshold": 0.4}, ["a"])                  # again: the frame rule's is kept
    assert read_onnx_metadata(model).scores["operating_point"]["frame_rule_threshold"] == 0.5
    write_onnx_metadata(model, dataclasses.replace(read_onnx_metadata(model), decision="map_max", box_threshold=0.4))
    assert apply_to_model(model, {**chosen, "threshold": 0.3}, ["a"]).box_threshold == 0.3   # every alert keeps a box
    assert apply_to_model(model, {**chosen, "threshold": 0.8}, ["a"]).box_threshold == 0.5
    before = model.read_bytes()
    with pytest.raises(ValueError, match="the rule is not met"):
        apply_to_model(model, {**chosen, "met": False}, ["a"])
    with pytest.raises(ValueError, match="the rule chose the filter 4 of 6, not the live 3 of 5"):
        apply_to_model(model, {**chosen, "filter": "4 of 6"}, ["a"])
    assert model.read_bytes() == before                                        # a refusal changes nothing
