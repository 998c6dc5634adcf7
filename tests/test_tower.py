"""Tower realism and polyp-free mining: deterministic, shape and mask invariants."""
import numpy as np
import pytest

from engines.lab.data.mining import polyp_free_regions, polyp_regions, scope_outline, scope_view
from engines.lab.data.tower import CANVASES, tower_frame


def frame(h=300, w=360, polyp=True):
    rng = np.random.default_rng(1)
    img = np.clip(rng.normal(120, 30, (h, w, 3)), 30, 255).astype(np.uint8)
    img[:, :12] = 0                                        # a black border
    mask = np.zeros((h, w), np.uint8)
    if polyp:
        yy, xx = np.mgrid[:h, :w]
        mask[(yy - 150) ** 2 + (xx - 200) ** 2 < 40 ** 2] = 1
    return img, mask


@pytest.mark.parametrize("seed", range(12))
def test_tower_frame_is_deterministic_and_keeps_the_polyp_mask_aligned(seed):
    img, mask = frame()
    a, am = tower_frame(img, mask, np.random.default_rng(seed))
    b, bm = tower_frame(img, mask, np.random.default_rng(seed))
    assert np.array_equal(a, b) and np.array_equal(am, bm)
    assert a.dtype == np.uint8 and a.ndim == 3 and (a.shape[1], a.shape[0]) in CANVASES
    assert am.shape == a.shape[:2] and set(np.unique(am)) <= {0, 1}
    assert am.any()                                         # a central polyp stays in view
    ys, xs = np.nonzero(am)                                 # and where the mask says, the image is not black
    assert a[ys, xs].max(axis=1).mean() > 40


def test_tower_frame_without_mask_and_seeds_differ():
    img, _ = frame(polyp=False)
    out = [tower_frame(img, None, np.random.default_rng(s)) for s in range(6)]
    assert all(m is None for _, m in out)
    assert len({o.shape for o, _ in out}) > 1 or len({o.tobytes() for o, _ in out}) == 6
    # a tower screen has black borders around the scope view
    assert any((o[:, :20].max(axis=2) < 30).mean() > 0.5 for o, _ in out)


@pytest.mark.parametrize("seed", range(20))
def test_mined_regions_never_touch_the_mask(seed):
    rng = np.random.default_rng(seed)
    h, w = 240 + seed * 7, 300
    img = np.full((h, w, 3), 120, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    cx, cy, r = int(rng.integers(40, w - 40)), int(rng.integers(40, h - 40)), int(rng.integers(8, 40))
    yy, xx = np.mgrid[:h, :w]
    mask[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1
    regions = polyp_free_regions(img, mask, rng, 4)
    for x0, y0, x1, y1 in regions:
        assert not mask[y0:y1, x0:x1].any()
        assert x1 - x0 == y1 - y0 and 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    for x0, y0, x1, y1 in polyp_regions(mask, rng, 2):
        assert mask[y0:y1, x0:x1].sum() == mask.sum()       # the whole polyp is in a zoomed positive view


def test_mined_regions_stay_inside_the_scope_image():
    img, mask = frame(polyp=False)
    img[:, :180] = 0                                        # left half is black border
    for x0, y0, x1, y1 in polyp_free_regions(img, mask, np.random.default_rng(0), 5):
        assert (img[y0:y1, x0:x1].max(axis=2) > 24).mean() >= 0.9


@pytest.mark.parametrize("shape", ["circle", "octagon", "rounded"])
def test_scope_view_is_a_scope_shaped_frame(shape):
    keep = scope_outline(100, 100, shape, np.random.default_rng(0))
    assert keep[50, 50] == 1 and keep[0, 0] == 0 and 0.7 < keep.mean() < 0.99
    img, mask = frame()
    view, vmask = scope_view(img, mask, (150, 100, 270, 220), np.random.default_rng(0), size=200)
    assert view.shape[0] == view.shape[1] > 200 and vmask.shape == view.shape[:2]
    assert view[0, 0].max() == 0 and vmask.any()
