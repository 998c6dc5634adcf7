"""On-screen message boxes: drawn inside the region asked for and nowhere else, deterministic, the polyp mask loses
what the box covers; in training on frames of both labels; in evaluation a per-frame check."""
from pathlib import Path

import numpy as np
import pytest

from engines.lab.data.datasets import Sample
from engines.lab.data.osd import draw_centre_a_warning, draw_message_box
from engines.lab.evaluation.evaluate import FrameScore, centre_a_warned, message_boxed, summarise
from engines.runtime.preprocess import PreprocessSpec
from engines.lab.training.augment import augment
from engines.lab.training.train import TrainConfig


def _image(rng, h=120, w=160):
    return rng.integers(30, 220, (h, w, 3), dtype=np.uint8)


def test_box_is_drawn_inside_the_region_only_and_is_repeatable():
    rng = np.random.default_rng(0)
    img = _image(rng)
    region = (20, 10, 140, 110)
    for seed in range(20):
        out, _ = draw_message_box(img, np.random.default_rng(seed), region)
        changed = (out != img).any(axis=2)
        ys, xs = np.nonzero(changed)
        assert changed.sum() > 0.015 * 120 * 100                            # a box, not a speck
        assert xs.min() >= 20 and xs.max() < 140 and ys.min() >= 10 and ys.max() < 110
        box = changed[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        assert box.mean() > 0.9                                            # one filled rectangle
        w, h = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
        assert 0.3 * 120 - 2 <= w <= 0.65 * 120 + 1 and h < 0.2 * 100      # a message bar, wider than high
        again, _ = draw_message_box(img, np.random.default_rng(seed), region)
        assert np.array_equal(out, again)
    assert np.array_equal(img, _image(np.random.default_rng(0)))           # the input is untouched


def test_centre_a_warning_sits_where_its_recordings_show_it():
    img = _image(np.random.default_rng(6), 200, 200)
    for seed in range(10):
        out, _ = draw_centre_a_warning(img, np.random.default_rng(seed), (0, 0, 200, 200))
        ys, xs = np.nonzero((out != img).any(axis=2))
        assert 0 <= xs.min() <= 0.06 * 200 and 0.5 * 200 <= xs.max() <= 0.7 * 200
        assert 0.58 * 200 <= ys.min() <= 0.68 * 200 and ys.max() <= 0.76 * 200
        assert (out[ys.min() + 1, xs.max() - 1] == (150, 20, 20)).all()        # centre A's blue


def test_mask_loses_the_covered_part_only():
    rng = np.random.default_rng(1)
    img = _image(rng)
    mask = np.zeros((120, 160), np.float32)
    mask[:, 40:120] = 1.0
    out, covered = draw_message_box(img, np.random.default_rng(5), None, mask)
    changed = (out != img).any(axis=2)
    ys, xs = np.nonzero(changed)
    box = np.zeros_like(changed)
    box[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
    assert not covered[box].any()
    assert np.array_equal(covered[~box], mask[~box])
    assert draw_message_box(img, np.random.default_rng(5))[1] is None


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="draw_message_box: expected an HxWx3 uint8 image"):
        draw_message_box(np.zeros((10, 10), np.uint8), np.random.default_rng(0))
    with pytest.raises(ValueError, match="too small for a message box"):
        draw_message_box(np.zeros((40, 40, 3), np.uint8), np.random.default_rng(0), (0, 0, 5, 40))
    with pytest.raises(ValueError, match="TrainConfig.message_box"):
        TrainConfig(message_box=1.5)


def test_augmentation_draws_boxes_on_both_labels_and_leaves_the_stream_alone_when_off():
    spec = PreprocessSpec(input_height=64, input_width=64)
    rng = np.random.default_rng(2)
    img = _image(rng, 64, 64)
    mask = np.zeros((64, 64), np.float32)
    mask[20:44, 20:44] = 1.0
    a, ma = augment(img, mask, np.random.default_rng(3), spec, "strong")
    b, mb = augment(img, mask, np.random.default_rng(3), spec, "strong", 0.0)
    assert np.array_equal(a, b) and np.array_equal(ma, mb)                  # off: the same draws, the same frame
    boxed = [augment(img, mask, np.random.default_rng(k), spec, "standard", 1.0) for k in range(10)]
    plain = [augment(img, mask, np.random.default_rng(k), spec, "standard", 0.0) for k in range(10)]
    differs = [not np.array_equal(x[0], y[0]) for x, y in zip(boxed, plain, strict=True)]
    assert all(differs)
    assert all(x[1].shape == mask.shape and 0.0 <= x[1].min() and x[1].max() <= 1.0 for x in boxed)


def test_message_box_check_is_summarised_per_set():
    rng = np.random.default_rng(4)
    img = _image(rng, 200, 260)
    assert np.array_equal(message_boxed(img, PreprocessSpec(), 3), message_boxed(img, PreprocessSpec(), 3))
    assert not np.array_equal(message_boxed(img, PreprocessSpec(), 3), message_boxed(img, PreprocessSpec(), 4))

    def fs(label, score, boxed):
        return FrameScore(Sample(Path(f"f{label}{score}.png"), label, None, "", "cvc"), label, score, score, None,
                          boxed)
    scores = [fs(1, 0.9, 0.1), fs(1, 0.8, 0.85), fs(1, 0.7, 0.75), fs(1, 0.2, 0.9), fs(0, 0.1, 0.6), fs(0, 0.3, 0.2)]
    m = summarise(scores, 0.5)
    assert m["sensitivity"] == 0.75 and m["message_box"]["sensitivity_boxed"] == 0.75
    assert m["message_box"]["specificity_boxed"] == 0.5 and m["message_box"]["sensitivity_change_points"] == 0.0
    no_check = summarise([fs(1, 0.9, float("nan")), fs(0, 0.1, float("nan"))], 0.5)
    assert "message_box" not in no_check and "centre_a_warning" not in no_check


def test_centre_a_warning_check_draws_its_box_in_the_active_area_and_is_summarised():
    """The evaluation's second box check: centre A's own printer warning, inside the frame's active area (here a
    black border around the scope image), the same for the same frame index every run."""
    rng = np.random.default_rng(8)
    img = np.zeros((240, 320, 3), np.uint8)
    img[20:220, 60:260] = _image(rng, 200, 200)
    spec = PreprocessSpec()
    out = centre_a_warned(img, spec, 5)
    assert np.array_equal(out, centre_a_warned(img, spec, 5)) and not np.array_equal(out, centre_a_warned(img, spec, 6))
    ys, xs = np.nonzero((out != img).any(axis=2))
    assert xs.min() >= 60 and xs.max() < 260 and ys.min() >= 20 + 0.58 * 200 and ys.max() < 20 + 0.76 * 200
    assert (out[ys.min() + 1, xs.max() - 1] == (150, 20, 20)).all()

    def fs(label, score, warned):
        return FrameScore(Sample(Path(f"f{label}{score}.png"), label, None, "", "polypgen-A"), label, score, score,
                          None, score, warned)
    m = summarise([fs(1, 0.9, 0.2), fs(1, 0.8, 0.1), fs(1, 0.7, 0.75), fs(1, 0.6, 0.9), fs(0, 0.1, 0.1)], 0.5)
    w = m["centre_a_warning"]
    assert w["sensitivity_warned"] == 0.5 and w["specificity_warned"] == 1.0 and w["sensitivity_change_points"] == -50.0
    assert m["message_box"]["sensitivity_change_points"] == 0.0
