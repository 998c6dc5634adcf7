import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from engines.synthetic import SceneRenderer, SynthParams
from engines.synthetic.params import parse_size
from engines.truth import load_truth

P = SynthParams(seed=5, seconds=12, width=320, height=240, fps=25)


def test_same_arguments_same_pixels_in_any_order():
    a, b = SceneRenderer(P), SceneRenderer(P)
    idx = [0, 77, 150, 299]
    first = [a.render(i).image for i in idx]
    second = [b.render(i).image for i in reversed(idx)][::-1]
    assert all(np.array_equal(x, y) for x, y in zip(first, second))
    assert not np.array_equal(first[0], SceneRenderer(SynthParams(seed=6, seconds=12, width=320, height=240,
                                                                  fps=25)).render(0).image)


def test_masks_lie_where_the_polyp_was_drawn_and_nowhere_else():
    with_p = SceneRenderer(P)
    without = SceneRenderer(SynthParams(**{**P.__dict__, "polyps": False}))
    seen = 0
    for i in range(0, P.frame_count, 5):
        fr, bg = with_p.render(i), without.render(i)
        absdiff = np.abs(fr.image.astype(int) - bg.image.astype(int)).max(axis=2)
        diff = absdiff > 40
        if not fr.polyps:
            # no polyp visible: the frames differ at most in a few pixels of a polyp's edge or shadow
            assert diff.mean() < 0.002, f"frame {i}: pixels changed with no polyp in the truth"
            continue
        seen += 1
        union = np.zeros(diff.shape, bool)
        for q in fr.polyps:
            m = fr.masks[q.polyp_id]
            ys, xs = np.nonzero(m)
            x0, y0, x1, y1 = q.box
            # box consistent with the mask
            assert abs(xs.min() / P.width - x0) < 0.01 and abs((ys.max() + 1) / P.height - y1) < 0.01
            union |= m
        grown = cv2.dilate(union.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        assert (diff & ~grown).sum() <= 0.05 * max(diff.sum(), 1), f"frame {i}: drawn pixels outside the mask"
        assert (absdiff[union] > 8).mean() > 0.6, f"frame {i}: the mask covers pixels where nothing was drawn"
    assert seen >= 5


def test_clip_file_truth_intervals_length_and_fps(clip):
    truth = load_truth(clip.with_suffix(".json"))
    cap = cv2.VideoCapture(str(clip))
    n = 0
    while cap.read()[0]:
        n += 1
    assert (n, truth.frame_count, round(cap.get(cv2.CAP_PROP_FPS))) == (120, 120, 30)
    assert (truth.width, truth.height, truth.fps) == (320, 240, 30.0)
    for track in truth.polyps:
        frames_listed = {i for i, f in enumerate(truth.frames) if any(fp.polyp_id == track.polyp_id for fp in f)}
        from_intervals = {i for a, b in track.intervals for i in range(a, b + 1)}
        assert frames_listed == from_intervals
    assert any(truth.frames) and not all(truth.frames)


def test_cli_writes_clip_and_refuses_bad_size(tmp_path):
    out = tmp_path / "c.mp4"
    r = subprocess.run([sys.executable, "tools/synth_video", "--seconds", "1", "--fps", "25", "--size", "200x160",
                        "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.with_suffix(".json").read_text())["frame_count"] == 25
    r = subprocess.run([sys.executable, "tools/synth_video", "--size", "4000x100", "--out", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "size: expected between 160x120 and 1920x1080" in r.stderr


@pytest.mark.parametrize("kw, message", [
    (dict(fps=24), r"fps: expected one of \(25, 30, 50, 60\)"),
    (dict(width=4000), r"size: expected between"),
    (dict(seconds=0), r"seconds: expected"),
])
def test_bad_params(kw, message):
    with pytest.raises(ValueError, match=message):
        SynthParams(**kw)
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size("big")
