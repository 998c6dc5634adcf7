"""Polyp-erased frames: the polyp is painted over with mucosa of the same frame, nothing else changes, and in the
protocol they are training negatives only (never validation, never from a held-out source)."""
import dataclasses

import cv2
import numpy as np
import pytest

from engines.data.erase import KEEP_AWAY, donor_offset, erase_polyp, erase_region
from engines.data.frames import read_sample
from engines.data.mining import near_polyp
from engines.data.sources import SOURCES, build_protocol, erased_views, load_sources


def _frame(polyp_radius: int = 30, seed: int = 0):
    """A textured pink 'mucosa' in a round scope view on black, with a white polyp disc."""
    rng = np.random.default_rng(seed)
    h, w = 300, 360
    img = np.zeros((h, w, 3), np.uint8)
    tex = cv2.GaussianBlur(rng.normal(0, 18, (h, w)).astype(np.float32), (0, 0), 2)
    for c, base in enumerate((110, 120, 200)):                          # BGR pink
        img[:, :, c] = np.clip(base + tex, 0, 255).astype(np.uint8)
    scope = np.zeros((h, w), np.uint8)
    cv2.circle(scope, (w // 2, h // 2), 145, 1, -1)
    img *= scope[:, :, None]
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, (130, 120), polyp_radius, 1, -1)
    img[mask > 0] = (240, 245, 250)
    return img, mask


def test_the_polyp_is_painted_over_and_nothing_far_from_it_changes():
    img, mask = _frame()
    offset = donor_offset(img, mask, np.random.default_rng(1))
    assert offset is not None
    out = erase_polyp(img, mask, offset)
    assert out.shape == img.shape and out.dtype == np.uint8
    polyp = mask > 0
    mucosa = ~polyp & (img.max(2) > 24)
    assert img[polyp].mean() > 235 and abs(float(out[polyp].mean()) - float(img[mucosa].mean())) < 15
    region = erase_region(mask) > 0
    far = cv2.dilate(region.astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
    assert np.array_equal(out[far], img[far])
    # the donor region lies on mucosa away from the polyp
    ys, xs = np.nonzero(region)
    dx, dy = offset
    assert not near_polyp(polyp, KEEP_AWAY)[ys + dy, xs + dx].any()
    assert (img[ys + dy, xs + dx].max(axis=1) > 24).mean() > 0.95


def test_donor_choice_is_deterministic_and_large_polyps_are_not_erased():
    img, mask = _frame()
    assert donor_offset(img, mask, np.random.default_rng(5)) == donor_offset(img, mask, np.random.default_rng(5))
    big_img, big_mask = _frame(polyp_radius=110)
    assert donor_offset(big_img, big_mask, np.random.default_rng(0)) is None
    assert donor_offset(img, np.zeros_like(mask), np.random.default_rng(0)) is None


def test_a_donor_outside_the_frame_is_refused():
    img, mask = _frame()
    with pytest.raises(ValueError, match="outside the 360x300 frame"):
        erase_polyp(img, mask, (400, 0))


@pytest.fixture(scope="module")
def sources(data_root):
    return load_sources(data_root)


def test_erased_views_render_as_full_frame_negatives(sources):
    frames = [s for s in sources["kvasir"].train + sources["cvc-colondb"].train]
    erased = erased_views(frames)
    assert erased and all(s.label == 0 and s.erase_offset is not None and s.mask is not None for s in erased)
    assert len(erased) <= sum(s.label != 0 and s.mask is not None for s in frames)
    for s in erased[:4]:
        img, m = read_sample(s)
        orig, om = read_sample(dataclasses.replace(s, label=1, erase_offset=None))
        assert img.shape == orig.shape and not m.any() and om.any()
        assert not np.array_equal(img[om > 0], orig[om > 0])
        assert np.array_equal(img, read_sample(s)[0])                    # the same every time
    assert erased_views(frames) == erased


@pytest.mark.parametrize("holdout", ["", *SOURCES])
def test_erased_frames_are_training_negatives_of_the_sources_trained_on(sources, holdout):
    plain = build_protocol(sources, holdout)
    p = build_protocol(sources, holdout, erased=True)
    added = [s for s in p.train if s.erase_offset is not None]
    assert added and all(s.label == 0 and s.dataset != holdout for s in added)
    assert {s.view for s in added} == {"erased", "erased+tower"}
    assert [s for s in p.train if s.erase_offset is None] == list(plain.train)
    assert p.val == plain.val and p.test == plain.test and p.tower_test == plain.tower_test


def test_a_cache_missing_a_few_views_renders_only_those(sources, tmp_path, caplog):
    import logging

    from engines.runtime.preprocess import PreprocessSpec
    from engines.training.training_data import from_samples
    spec = PreprocessSpec(input_height=32, input_width=32)
    base = list(sources["cvc-colondb"].train)
    extra = erased_views(base)
    assert extra
    first = from_samples(base, spec, cache_dir=tmp_path)
    rendered = []
    with caplog.at_level(logging.INFO, logger="engines.training.training_data"):
        both = from_samples(base + extra, spec, progress=lambda i, n: rendered.append(n), cache_dir=tmp_path)
    assert f"arrays for {len(base)} of {len(base) + len(extra)} frames from cache" in caplog.text
    assert set(rendered) == {len(extra)}                              # only the new views were rendered
    fresh = from_samples(base + extra, spec)
    assert np.array_equal(both.images[:len(base)], first.images) and np.array_equal(both.images, fresh.images)
    assert np.array_equal(both.labels, fresh.labels) and np.allclose(both.masks, fresh.masks, atol=1 / 255)
    assert list(both.labels[len(base):]) == [0] * len(extra)
    assert len(list(tmp_path.glob("*.npz"))) == 2
