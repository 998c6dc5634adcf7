"""The every-source protocol: fixed splits, mined views that never touch a polyp, tower views, and a
leave-one-source-out split through which no frame of the held-out source reaches training."""
import dataclasses

import numpy as np
import pytest

from engines.lab.data.datasets import Sample
from engines.lab.data.frames import read_sample
from engines.lab.data.sources import SOURCES, Protocol, build_protocol, holdout_test, load_sources, mined_views
from engines.errors import DatasetError


@pytest.fixture(scope="module")
def sources(data_root):
    return load_sources(data_root)


def test_sources_and_their_fixed_splits(sources):
    assert list(sources) == list(SOURCES)
    k = sources["kvasir"]
    assert sum(s.label == 1 for s in k.train) == 8 and sum(s.label == 1 for s in k.val) == 2
    assert len(k.test) == 2 and all(s.label == 0 for s in k.test)          # 20% of kvasir-normal, never trained
    cvc = sources["cvc-colondb"]
    assert {s.group for s in cvc.val} == {"3"} and {s.group for s in cvc.train} == {"1", "6"}
    pg = sources["polypgen-A"]
    assert {s.group for s in pg.val if s.label == 0} == {"seq2_neg"}        # negatives split by sequence
    assert {s.group for s in pg.train if s.label == 0} == {"seq1_neg", "seq3_neg"}
    again = load_sources(sources["kvasir"].train[0].image.parents[2])
    assert again["kvasir"] == sources["kvasir"] and again["polypgen-B"] == sources["polypgen-B"]
    assert again["bkai-igh"] == sources["bkai-igh"]                         # a fixed seed: the same split every time


def test_bkai_igh_is_split_by_frame_with_a_fixed_seed_and_no_frame_on_both_sides(sources):
    b = sources["bkai-igh"]
    assert (len(b.train), len(b.val), len(b.test)) == (5, 1, 0)              # 80/20 of 6 frames (seed 0)
    assert all(s.mask is not None and s.group == "" and s.dataset == "bkai-igh" for s in b.all())
    assert not {s.image for s in b.train} & {s.image for s in b.val}
    p = build_protocol(sources)
    val_images = {s.image for s in p.val if s.dataset == "bkai-igh"}
    assert val_images and not val_images & {s.image for s in p.train}       # mined and tower views stay on their side
    assert {s.dataset for s in p.train} >= {"bkai-igh"}


def test_missing_source_folder_is_named(tmp_path):
    with pytest.raises(DatasetError, match="kvasir-seg: dataset folder not found"):
        load_sources(tmp_path, ("kvasir",))
    with pytest.raises(DatasetError, match=r"unknown source\(s\) \['mayo'\]"):
        load_sources(tmp_path, ("mayo",))


@pytest.mark.parametrize("holdout", SOURCES)
def test_leave_one_source_out_keeps_the_source_out(sources, holdout):
    p = build_protocol(sources, holdout, mined_per_frame=2, tower_variants=1)
    held_images = {s.image for s in sources[holdout].all()}
    assert not any(s.dataset == holdout or s.image in held_images for s in p.train + p.val)
    assert {s.image for s in p.test} >= held_images
    assert {s.dataset for s in p.train} == set(SOURCES) - {holdout}
    if holdout != "kvasir":           # a held-out source is also scored against normals no run trained on
        assert {s.image for s in sources["kvasir"].test} <= {s.image for s in p.test}


def test_protocol_refuses_a_leak(sources):
    p = build_protocol(sources, "cvc-colondb")
    with pytest.raises(DatasetError, match="frame\\(s\\) of 'cvc-colondb' reached training"):
        Protocol("cvc-colondb", p.train + (sources["cvc-colondb"].train[0],), p.val, p.test, p.tower_test)
    with pytest.raises(DatasetError, match="test image\\(s\\) also in training"):
        Protocol("", p.train + (p.tower_test[0],), p.val, p.test, p.tower_test)


def test_unknown_holdout_is_refused(sources):
    with pytest.raises(DatasetError, match=r"--holdout-source: expected one of .*got 'mayo'"):
        build_protocol(sources, "mayo")


def test_training_views_are_recorded_mined_and_tower(sources):
    p = build_protocol(sources, mined_per_frame=2, tower_variants=1)
    views = {(s.view, s.label) for s in p.train}
    assert {("frame", 1), ("frame", 0), ("region", 0), ("region", 1), ("tower", 0), ("tower", 1),
            ("region+tower", 0)} <= views
    assert len(p.tower_test) == 2 * len(sources["kvasir"].test)
    assert all(s.view == "tower" and s.label == 0 for s in p.tower_test)


def test_mined_negatives_never_show_the_polyp(sources):
    frames = [s for s in sources["kvasir"].train + sources["cvc-colondb"].train if s.mask is not None]
    mined = [s for s in mined_views(frames, 3) if s.label == 0]
    assert len(mined) > 5
    from engines.lab.data.datasets import read_image, read_mask
    for s in mined:
        img = read_image(s.image)
        m = read_mask(s.mask, img.shape[:2])
        x0, y0, x1, y1 = s.region
        assert not m[y0:y1, x0:x1].any(), s
        view, vmask = read_sample(s)
        assert view.ndim == 3 and not vmask.any()
    holdout = holdout_test(sources, "cvc-colondb")
    assert all(s.label == 0 for s in holdout if s.region is not None)          # no zoomed positives in a test


def test_views_render_the_same_wherever_the_data_lies(sources, data_root, tmp_path):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(data_root, copy)
    a = build_protocol(sources, "polypgen-B")
    b = build_protocol(load_sources(copy), "polypgen-B")
    assert [(s.identity, s.region, s.tower_seed) for s in a.train] == \
        [(s.identity, s.region, s.tower_seed) for s in b.train]
    s = next(s for s in a.train if s.view == "region+tower")
    t = dataclasses.replace(s, image=copy / s.image.relative_to(data_root),
                            mask=copy / s.mask.relative_to(data_root))
    assert np.array_equal(read_sample(s)[0], read_sample(t)[0])


def test_sample_view_names():
    s = Sample(image=__import__("pathlib").Path("x.jpg"), label=1)
    assert s.view == "frame"
    assert dataclasses.replace(s, region=(0, 0, 4, 4)).view == "region"
    assert dataclasses.replace(s, region=(0, 0, 4, 4), tower_seed=3).view == "region+tower"
