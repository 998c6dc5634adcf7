"""Polyp-pasted frames: a masked positive's polyp is blended into a polyp-free frame of another source at a lit place;
nothing far from it changes; the mask goes with it; in the protocol they are training positives only, and neither
host nor donor ever comes from a held-out source."""
import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_erase import _frame

from engines.data.datasets import Paste
from engines.data.frames import read_sample
from engines.data.paste import paste_placement, paste_polyp
from engines.data.sources import (
    SOURCES,
    Protocol,
    build_protocol,
    load_sources,
    pasted_views,
)
from engines.errors import DatasetError


def _host(seed: int = 3):
    img, _ = _frame(seed=seed)
    return img


def test_the_polyp_lands_on_lit_mucosa_with_its_mask_and_nothing_far_changes():
    donor, dmask = _frame()
    host = _host()
    box = paste_placement(host, donor, dmask, np.random.default_rng(2))
    assert box is not None
    x0, y0, x1, y1 = box
    assert (host[y0:y1, x0:x1].max(axis=2) > 24).mean() >= 0.97           # inside the scope image
    out, m = paste_polyp(host, donor, dmask, Paste(Path("d.png"), Path("m.png"), "other", box))
    assert out.shape == host.shape and out.dtype == np.uint8 and m.dtype == np.uint8
    assert m.any() and not m[:y0].any() and not m[y1:].any() and not m[:, :x0].any() and not m[:, x1:].any()
    # the donor's polyp is a bright disc: the pasted mask covers bright pixels, the host had none there
    assert out[m > 0].mean() > 200 and host[m > 0].mean() < 200
    # its size follows the scope images' ratio (same size here) within the jitter
    ratio = np.sqrt(m.sum() / dmask.sum())
    assert 0.6 < ratio < 1.4
    far = np.ones(host.shape[:2], np.uint8)
    far[max(0, y0 - 6):y1 + 6, max(0, x0 - 6):x1 + 6] = 0
    assert np.array_equal(out[far > 0], host[far > 0])


def test_placement_is_deterministic_and_refuses_what_does_not_fit():
    donor, dmask = _frame()
    host = _host()
    assert paste_placement(host, donor, dmask, np.random.default_rng(4)) == \
        paste_placement(host, donor, dmask, np.random.default_rng(4))
    big, big_mask = _frame(polyp_radius=110)
    assert paste_placement(host, big, big_mask, np.random.default_rng(0)) is None        # polyp too large
    assert paste_placement(host, donor, np.zeros_like(dmask), np.random.default_rng(0)) is None
    assert paste_placement(np.zeros_like(host), donor, dmask, np.random.default_rng(0)) is None   # nothing lit
    with pytest.raises(ValueError, match="does not lie inside the 360x300 host frame"):
        paste_polyp(host, donor, dmask, Paste(Path("d"), Path("m"), "x", (300, 10, 400, 60)))


@pytest.fixture(scope="module")
def sources(data_root):
    return load_sources(data_root)


def test_pasted_views_render_as_positives_with_a_donor_of_another_source(sources):
    hosts = list(sources["polypgen-A"].train)
    donors = list(sources["kvasir"].train) + list(sources["cvc-colondb"].train)
    pasted = pasted_views(hosts, donors)
    assert pasted and len(pasted) <= sum(s.label == 0 for s in hosts)
    for s in pasted:
        assert s.label == 1 and s.mask is None and s.dataset == "polypgen-A" and s.view == "pasted"
        assert s.paste.dataset in ("kvasir", "cvc-colondb") and s.paste.mask is not None
    for s in pasted[:4]:
        img, m = read_sample(s)
        host, hm = read_sample(dataclasses.replace(s, label=0, paste=None))
        assert hm is None and m is not None and m.any() and img.shape == host.shape
        assert not np.array_equal(img[m > 0], host[m > 0])
        assert np.array_equal(img, read_sample(s)[0])                    # the same every time
    assert pasted_views(hosts, donors) == pasted
    assert pasted_views(hosts, []) == []


@pytest.mark.parametrize("holdout", ["", *SOURCES])
def test_pasted_frames_are_training_positives_of_the_sources_trained_on(sources, holdout):
    plain = build_protocol(sources, holdout)
    p = build_protocol(sources, holdout, pasted=True)
    added = [s for s in p.train if s.paste is not None]
    assert added and all(s.label == 1 for s in added)
    assert all(holdout not in (s.dataset, s.paste.dataset) for s in added)
    masked = {"kvasir", "cvc-colondb"} - {holdout}                       # the sources with masks trained on
    assert all(s.paste.dataset != s.dataset for s in added if len(masked) > 1 or s.dataset not in masked)
    assert {s.view for s in added} == {"pasted", "pasted+tower"}
    assert [s for s in p.train if s.paste is None] == list(plain.train)
    assert p.val == plain.val and p.test == plain.test and p.tower_test == plain.tower_test


def test_a_donor_from_the_held_out_source_is_refused(sources):
    p = build_protocol(sources, "kvasir", pasted=True)
    host = next(s for s in p.train if s.label == 0 and s.paste is None and s.region is None)
    donor = next(s for s in sources["kvasir"].train if s.mask is not None)
    leak = dataclasses.replace(host, label=1, paste=Paste(donor.image, donor.mask, "kvasir", (5, 5, 40, 40)))
    with pytest.raises(DatasetError, match="of 'kvasir' reached training"):
        Protocol("kvasir", p.train + (leak,), p.val, p.test, p.tower_test)


def test_pasted_frames_train_the_heatmap(sources):
    from engines.runtime.preprocess import PreprocessSpec
    from engines.training.training_data import from_samples
    pasted = pasted_views(list(sources["polypgen-B"].train), list(sources["cvc-colondb"].train))[:3]
    data = from_samples(pasted, PreprocessSpec(input_height=64, input_width=64))
    assert list(data.labels) == [1, 1, 1] and data.has_mask.all()
    assert all(m.any() for m in data.masks)
    assert cv2.countNonZero((data.masks[0] > 0.5).astype(np.uint8)) > 0
