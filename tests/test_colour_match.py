"""Colour matching between training frames: colours move, structure and the outside of the scope stay."""
import numpy as np
import pytest

from engines.training.colour_match import match_batch, match_colours
from engines.training.train import TrainConfig


def _frame(rng, cast, size=48):
    """A scope-like frame: a disc of textured mucosa with a colour cast, black outside."""
    yy, xx = np.mgrid[:size, :size]
    inside = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 2 - 2) ** 2
    tex = rng.normal(0, 25, (size, size, 1)) + np.linspace(0, 60, size)[None, :, None]
    img = np.clip(np.array(cast, float) + tex, 1, 255).astype(np.uint8)
    img[~inside] = 0
    return img, inside


def test_matched_frame_takes_the_reference_histogram_keeps_its_structure_and_its_black_outside():
    rng = np.random.default_rng(0)
    img, inside = _frame(rng, (60, 90, 170))       # reddish (BGR)
    ref, ref_inside = _frame(rng, (170, 120, 90))  # bluish, another scope
    out = match_colours(img, ref)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert not out[~inside].any()                                   # outside stays black
    assert out[inside].any(axis=1).all()                            # inside never turns into "outside"
    for c in range(3):
        q = np.linspace(0.05, 0.95, 10)
        got, want = np.quantile(out[..., c][inside], q), np.quantile(ref[..., c][ref_inside], q)
        assert np.abs(got - want).max() <= 6, c                      # the reference's histogram
        assert abs(np.quantile(img[..., c][inside], 0.5) - want[4]) > 20   # which was far from the frame's
        order = np.argsort(img[..., c][inside], kind="stable")
        assert (np.diff(out[..., c][inside][order].astype(int)) >= 0).all()   # monotone: same structure
    assert np.array_equal(match_colours(img, img), img)             # its own colours: unchanged


def test_batch_matching_removes_a_colour_cue_of_the_label():
    """Two classes told apart by colour alone (as PolypGen's recordings are): after matching with p=1 the class
    means of every channel are close; with p=0 nothing changes."""
    rng = np.random.default_rng(1)
    frames = [_frame(rng, (60, 90, 200) if k % 2 else (150, 110, 120))[0] for k in range(40)]
    labels = np.arange(40) % 2

    def gap(imgs):
        means = np.array([[im[..., c][im.any(axis=2)].mean() for c in range(3)] for im in imgs])
        return np.abs(means[labels == 1].mean(0) - means[labels == 0].mean(0)).max()

    assert gap(frames) > 60
    same = match_batch(frames, np.random.default_rng(2), 0.0)
    assert all(a is b for a, b in zip(same, frames, strict=True))
    mixed = match_batch(frames, np.random.default_rng(2), 1.0)
    assert gap(mixed) < 25
    again = match_batch(frames, np.random.default_rng(2), 1.0)
    assert all(np.array_equal(a, b) for a, b in zip(mixed, again, strict=True))   # deterministic with the seed


def test_bad_inputs_are_named():
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="colour_match: expected a probability"):
        match_batch([img, img], np.random.default_rng(0), 1.5)
    with pytest.raises(ValueError, match="match_colours: expected two HxWxC uint8 images"):
        match_colours(img.astype(np.float32), img)
    with pytest.raises(ValueError, match="TrainConfig.colour_match"):
        TrainConfig(colour_match=-0.1)
    assert np.array_equal(match_colours(img, img), img)               # all outside: nothing to match
